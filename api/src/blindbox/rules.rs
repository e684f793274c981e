//! Pure rules of blind boxes: provably fair randomness, an exact mapping to weights without
//! modulo bias, disclosed odds with stock, pity, and seed rotation.
//!
//! A draw is verifiable by anyone once the box's server seed is revealed:
//!
//! 1. `seedCommitment` = lowercase hex SHA-256 of the UTF-8 bytes `"{serverSeed}\n{prizeTable}"`,
//!    where `prizeTable` is the canonical table of the box's prizes when the seed was committed
//!    (`prize_table`): the operator cannot re-weight or restock the pool without a new seed.
//! 2. `r` = the first 8 bytes, big-endian, of HMAC-SHA256(key = server seed string, message =
//!    `"{clientSeed}:{memberId}:{memberNonce}"`). If `r >= 2^64 - (2^64 mod W)` (W = the pool's
//!    total weight), the message gets the suffix `":1"`, then `":2"`, ... until it is not.
//! 3. `x = r mod W`; walk the pool in its published order, subtracting weights; the prize is the
//!    one where `x` falls.
//!
//! The client seed is the member's (random until they choose one) and the nonce counts the
//! member's draws, so nobody holding only the server seed can work out a member's draws ahead.
//! Draws made before client seeds existed used the message `"{memberId}:{nonce}"` (the box's
//! nonce) and a commitment over the seed alone (`verify_legacy`, `legacy_commitment`).

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use entity::blind_box_prize::{PrizeKind, Rarity};

/// A prize as a draw sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub weight: u64,
    /// `None`: unlimited.
    pub stock: Option<i64>,
    pub rarity: Rarity,
}

impl Candidate {
    pub fn in_stock(&self) -> bool {
        self.stock.is_none_or(|s| s > 0)
    }
}

/// The canonical prize table a seed commits to: each prize in published order as
/// `id:weight:stock:RARITY` (stock `-` when unlimited), joined by `,`. Plain ASCII, so its bytes
/// are the same in any language.
pub fn prize_table(prizes: &[Candidate]) -> String {
    prizes
        .iter()
        .map(|p| {
            let stock = p.stock.map_or_else(|| "-".to_string(), |s| s.to_string());
            format!("{}:{}:{stock}:{}", p.id, p.weight, p.rarity.as_str())
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a table `prize_table` wrote back; `None` if it is not one.
pub fn parse_prize_table(table: &str) -> Option<Vec<Candidate>> {
    table
        .split(',')
        .map(|entry| {
            let mut parts = entry.split(':');
            let (id, weight, stock, rarity) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            Some(Candidate {
                id: id.parse().ok()?,
                weight: weight.parse().ok()?,
                stock: if stock == "-" {
                    None
                } else {
                    Some(stock.parse().ok()?)
                },
                rarity: Rarity::parse(rarity).filter(|r| r.as_str() == rarity)?,
            })
        })
        .collect()
}

/// The commitment published before a seed is used: SHA-256 over the seed and the prize table.
pub fn commitment(seed: &str, prize_table: &str) -> String {
    hex::encode(Sha256::digest(format!("{seed}\n{prize_table}").as_bytes()))
}

/// The commitment of seeds committed before prize tables were: SHA-256 over the seed alone.
pub fn legacy_commitment(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn hmac_u64(seed: &str, message: &str) -> u64 {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(seed.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    let bytes = mac.finalize().into_bytes();
    u64::from_be_bytes(bytes[..8].try_into().expect("32 bytes"))
}

/// The largest value `r` may take so that `r % total` is uniform: one below the largest multiple
/// of `total` that fits in 2^64 (values from there on would favour small results).
fn acceptance_limit(total: u64) -> u64 {
    u64::MAX - (u64::MAX % total + 1) % total
}

/// A uniform number in `0..total` from the seed and a message, by rejection (no modulo bias):
/// a rejected value is drawn again with `":1"`, `":2"`, ... appended to the message.
fn roll(seed: &str, message: &str, total: u64) -> u64 {
    assert!(total > 0, "a pool has weight");
    let zone = acceptance_limit(total);
    let mut attempt = 0u32;
    loop {
        let r = if attempt == 0 {
            hmac_u64(seed, message)
        } else {
            hmac_u64(seed, &format!("{message}:{attempt}"))
        };
        if r <= zone {
            return r % total;
        }
        attempt += 1;
    }
}

/// The HMAC message of a member's draw.
pub fn draw_message(client_seed: &str, member_id: i64, member_nonce: i64) -> String {
    format!("{client_seed}:{member_id}:{member_nonce}")
}

/// The prize `x` lands on, walking `pool` (id, weight) in order.
pub fn pick(pool: &[(i64, u64)], x: u64) -> Option<i64> {
    let mut left = x;
    for (id, weight) in pool {
        if left < *weight {
            return Some(*id);
        }
        left -= weight;
    }
    None
}

/// The pool one draw uses: the prizes in stock, or with pity only the RARE-or-better ones (if
/// any are in stock). Returns the pool and whether pity decided it.
pub fn pool_for(
    prizes: &[Candidate],
    pity_count: i64,
    pity_threshold: Option<i64>,
) -> (Vec<(i64, u64)>, bool) {
    let in_stock: Vec<&Candidate> = prizes
        .iter()
        .filter(|p| p.in_stock() && p.weight > 0)
        .collect();
    let pity_due = pity_threshold.is_some_and(|t| pity_count >= t - 1);
    if pity_due {
        let rare: Vec<(i64, u64)> = in_stock
            .iter()
            .filter(|p| p.rarity >= Rarity::Rare)
            .map(|p| (p.id, p.weight))
            .collect();
        if !rare.is_empty() {
            return (rare, true);
        }
    }
    (in_stock.iter().map(|p| (p.id, p.weight)).collect(), false)
}

/// Whether a draw's pool could come from the committed table: each of its prizes is in the
/// table with the same weight and some stock, in the table's order. A pool re-weighted or
/// re-ordered after the commitment fails this.
pub fn pool_fits_table(pool: &[(i64, u64)], table: &[Candidate]) -> bool {
    let mut rest = table.iter();
    !pool.is_empty()
        && pool.iter().all(|(id, weight)| {
            rest.by_ref()
                .find(|p| p.id == *id)
                .is_some_and(|p| p.weight == *weight && p.stock != Some(0))
        })
}

fn pick_from(seed: &str, message: &str, pool: &[(i64, u64)]) -> Option<i64> {
    let total: u64 = pool.iter().map(|(_, w)| w).sum();
    (total > 0)
        .then(|| pick(pool, roll(seed, message, total)))
        .flatten()
}

/// The prize of a draw: from the server seed, the member's client seed, the member and their
/// nonce, and the pool. The server draws with this, and verifiers recompute with it.
pub fn verify(
    server_seed: &str,
    client_seed: &str,
    member_id: i64,
    member_nonce: i64,
    pool: &[(i64, u64)],
) -> Option<i64> {
    pick_from(
        server_seed,
        &draw_message(client_seed, member_id, member_nonce),
        pool,
    )
}

/// Recomputes a draw made before client seeds: the message was `"{memberId}:{nonce}"`.
pub fn verify_legacy(seed: &str, member_id: i64, nonce: i64, pool: &[(i64, u64)]) -> Option<i64> {
    pick_from(seed, &format!("{member_id}:{nonce}"), pool)
}

/// The most characters a client seed may have.
pub const CLIENT_SEED_MAX_CHARS: usize = 64;

/// A client seed a member may choose: 1 to 64 of `A-Z a-z 0-9 - _` (no `:`, which separates
/// the parts of the HMAC message, and nothing whose bytes differ between encodings).
pub fn check_client_seed(seed: &str) -> Result<(), String> {
    if seed.is_empty() || seed.len() > CLIENT_SEED_MAX_CHARS {
        return Err(format!(
            "a client seed has 1 to {CLIENT_SEED_MAX_CHARS} characters"
        ));
    }
    if !seed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("a client seed uses only letters, digits, - and _".into());
    }
    Ok(())
}

/// Whether a box's seed is due for rotation: it is older than the rotation period, or it was
/// committed without a prize table (before tables were committed to).
pub fn rotation_due(
    committed_at: DateTime<Utc>,
    has_prize_table: bool,
    rotation: Duration,
    now: DateTime<Utc>,
) -> bool {
    !has_prize_table || now >= committed_at + rotation
}

/// Disclosed odds now: weight over the total weight of prizes still in stock; sold-out is 0.
pub fn probabilities(prizes: &[Candidate]) -> Vec<f64> {
    let total: u64 = prizes
        .iter()
        .filter(|p| p.in_stock())
        .map(|p| p.weight)
        .sum();
    prizes
        .iter()
        .map(|p| {
            if p.in_stock() && total > 0 {
                p.weight as f64 / total as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// The pity counter after a draw: back to 0 on RARE or better, else one more.
pub fn pity_after(count: i64, rarity: Rarity) -> i64 {
    if rarity >= Rarity::Rare { 0 } else { count + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prize(id: i64, weight: u64, stock: Option<i64>, rarity: Rarity) -> Candidate {
        Candidate {
            id,
            weight,
            stock,
            rarity,
        }
    }

    #[test]
    fn the_commitment_is_the_sha256_of_the_seed_a_newline_and_the_prize_table() {
        // sha256(b"abc\n1:5:-:COMMON"), from Python's hashlib.
        assert_eq!(
            commitment("abc", "1:5:-:COMMON"),
            "573f3fe01c7c58405ee9aec1f339fef9cead4da87666ef1a3dfcbb7e2b3077b9"
        );
        assert_ne!(
            commitment("abc", "1:6:-:COMMON"),
            commitment("abc", "1:5:-:COMMON")
        );
        assert_eq!(
            legacy_commitment("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_prize_table_lists_id_weight_stock_and_rarity_in_published_order() {
        let prizes = [
            prize(12, 600, None, Rarity::Common),
            prize(9, 45, Some(3), Rarity::Epic),
            prize(30, 5, Some(0), Rarity::Legendary),
        ];
        let table = prize_table(&prizes);
        assert_eq!(table, "12:600:-:COMMON,9:45:3:EPIC,30:5:0:LEGENDARY");
        assert_eq!(parse_prize_table(&table), Some(prizes.to_vec()));
        for bad in [
            "",
            "1:2:-",
            "1:2:-:COMMON:x",
            "1:2:-:common",
            "a:2:-:RARE",
            "1:2:?:RARE",
        ] {
            assert_eq!(parse_prize_table(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_draw_is_keyed_by_client_seed_member_and_member_nonce() {
        // Known answers from an independent Python implementation of the README's steps.
        let pool = [(1, 5), (2, 3), (3, 2)];
        let picks: Vec<_> = (0..5)
            .map(|n| verify("seed", "client", 7, n, &pool).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 2, 3, 1]);
        assert_eq!(draw_message("client", 7, 42), "client:7:42");
        let outcomes: std::collections::HashSet<_> = (0..200)
            .map(|n| verify("seed", "client", 7, n, &pool))
            .collect();
        assert_eq!(outcomes.len(), 3, "every prize comes up");
        let other: Vec<_> = (0..40)
            .map(|n| verify("seed", "other", 7, n, &pool))
            .collect();
        let mine: Vec<_> = (0..40)
            .map(|n| verify("seed", "client", 7, n, &pool))
            .collect();
        assert_ne!(other, mine, "the client seed changes the draws");
    }

    #[test]
    fn draws_made_before_client_seeds_still_verify_as_they_were_made() {
        let pool = [(1, 5), (2, 3), (3, 2)];
        let picks: Vec<_> = (0..5)
            .map(|n| verify_legacy("seed", 7, n, &pool).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 1, 2]);
    }

    #[test]
    fn a_rejected_roll_is_drawn_again_with_a_numbered_suffix() {
        // W = 2^63 + 1 rejects about half of all values; these nonces were rejected 1 to 5
        // times first (known answers from Python).
        let pool = [(1, 1u64 << 62), (2, (1u64 << 62) + 1)];
        let picks: Vec<_> = [0, 1, 3, 10]
            .iter()
            .map(|n| verify("seed", "client", 7, *n, &pool).unwrap())
            .collect();
        assert_eq!(picks, [2, 1, 2, 1]);
    }

    #[test]
    fn a_pool_fits_the_table_only_with_its_weights_order_and_stock() {
        let table = [
            prize(1, 60, None, Rarity::Common),
            prize(2, 30, Some(0), Rarity::Rare),
            prize(3, 10, Some(4), Rarity::Epic),
        ];
        assert!(pool_fits_table(&[(1, 60), (3, 10)], &table));
        assert!(
            pool_fits_table(&[(3, 10)], &table),
            "pity pools are subsets"
        );
        assert!(!pool_fits_table(&[(1, 61), (3, 10)], &table), "re-weighted");
        assert!(!pool_fits_table(&[(3, 10), (1, 60)], &table), "re-ordered");
        assert!(
            !pool_fits_table(&[(1, 60), (2, 30)], &table),
            "sold out when committed"
        );
        assert!(!pool_fits_table(&[(4, 1)], &table), "not in the table");
        assert!(!pool_fits_table(&[], &table));
    }

    #[test]
    fn client_seeds_are_1_to_64_letters_digits_dashes_or_underscores() {
        for good in ["a", "My_Seed-42", &"z".repeat(64)] {
            assert!(check_client_seed(good).is_ok(), "{good:?}");
        }
        for bad in ["", &"z".repeat(65), "two words", "a:b", "种子", "tab\t"] {
            assert!(check_client_seed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_seed_rotates_once_its_period_is_over_or_if_it_has_no_table() {
        let committed = DateTime::parse_from_rfc3339("2026-06-01T02:00:00Z")
            .unwrap()
            .to_utc();
        let day = Duration::days(1);
        let almost = committed + day - Duration::seconds(1);
        assert!(!rotation_due(committed, true, day, almost));
        assert!(rotation_due(committed, true, day, committed + day));
        assert!(rotation_due(committed, false, day, committed), "no table");
    }

    #[test]
    fn pick_walks_the_pool_in_order() {
        let pool = [(10, 1), (20, 3), (30, 6)];
        assert_eq!(pick(&pool, 0), Some(10));
        assert_eq!(pick(&pool, 1), Some(20));
        assert_eq!(pick(&pool, 3), Some(20));
        assert_eq!(pick(&pool, 4), Some(30));
        assert_eq!(pick(&pool, 9), Some(30));
        assert_eq!(pick(&pool, 10), None);
    }

    #[test]
    fn odds_are_disclosed_with_stock_and_sum_to_one() {
        let prizes = [
            prize(1, 60, None, Rarity::Common),
            prize(2, 30, Some(0), Rarity::Rare),
            prize(3, 40, Some(3), Rarity::Epic),
        ];
        let p = probabilities(&prizes);
        assert_eq!(p[1], 0.0, "sold out shows 0");
        assert!((p[0] - 0.6).abs() < 1e-12 && (p[2] - 0.4).abs() < 1e-12);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pity_takes_the_draw_among_rare_prizes_in_stock() {
        let prizes = [
            prize(1, 9999, None, Rarity::Common),
            prize(2, 1, Some(0), Rarity::Legendary),
            prize(3, 1, None, Rarity::Rare),
        ];
        assert!(!pool_for(&prizes, 8, Some(10)).1);
        let (pool, pity) = pool_for(&prizes, 9, Some(10));
        assert!(pity);
        assert_eq!(pool, vec![(3, 1)], "the sold-out legendary is left out");
        assert!(!pool_for(&prizes, 50, None).1, "no threshold, no pity");
        let no_rare = [prize(1, 1, None, Rarity::Common)];
        assert_eq!(pool_for(&no_rare, 99, Some(3)), (vec![(1, 1)], false));
    }

    #[test]
    fn a_sold_out_prize_is_never_picked() {
        let prizes = [
            prize(1, 1, None, Rarity::Common),
            prize(2, 1_000_000, Some(0), Rarity::Rare),
        ];
        let (pool, _) = pool_for(&prizes, 0, None);
        for nonce in 0..100 {
            assert_eq!(verify("s", "c", 1, nonce, &pool), Some(1));
        }
    }

    #[test]
    fn the_pity_counter_resets_on_rare_or_better() {
        assert_eq!(pity_after(4, Rarity::Common), 5);
        assert_eq!(pity_after(4, Rarity::Rare), 0);
        assert_eq!(pity_after(4, Rarity::Legendary), 0);
    }

    #[test]
    fn the_rejection_zone_keeps_every_result_equally_likely() {
        // With W = 3, 2^64 mod 3 = 1: the one value at the very top is rejected.
        assert_eq!(acceptance_limit(3), u64::MAX - 1);
        // A power of two needs no rejection.
        assert_eq!(acceptance_limit(4), u64::MAX);
        assert_eq!(acceptance_limit(1), u64::MAX);
        // Whatever the weight, the accepted values split into whole rounds of it.
        for total in [3u64, 7, 10, 1_000_003, u64::MAX / 3 + 7] {
            assert_eq!(
                (u128::from(acceptance_limit(total)) + 1) % u128::from(total),
                0,
                "{total}"
            );
        }
    }

    proptest! {
        /// Over many nonces each prize comes up about as often as its weight says.
        #[test]
        fn frequencies_follow_the_weights(seed in "[a-f0-9]{16}", w1 in 1u64..50, w2 in 1u64..50, w3 in 1u64..50) {
            let pool = [(1, w1), (2, w2), (3, w3)];
            let total = (w1 + w2 + w3) as f64;
            let n = 4000;
            let mut counts = [0usize; 3];
            for nonce in 0..n {
                let id = verify(&seed, "client", 42, nonce, &pool).unwrap();
                counts[(id - 1) as usize] += 1;
            }
            for (i, w) in [w1, w2, w3].iter().enumerate() {
                let expected = *w as f64 / total;
                let observed = counts[i] as f64 / n as f64;
                // Six standard deviations of a binomial proportion: over 256 cases of 3 prizes a
                // fair pick strays this far about once in a million runs (five sigma failed a
                // fair run once in a few thousand, which made CI flaky).
                let tolerance = 6.0 * (expected * (1.0 - expected) / n as f64).sqrt() + 1e-9;
                prop_assert!((observed - expected).abs() <= tolerance, "prize {} expected {expected} got {observed}", i + 1);
            }
        }
    }
}
