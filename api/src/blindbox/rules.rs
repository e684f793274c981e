//! Pure rules of blind boxes: provably fair randomness (commit-reveal with HMAC-SHA256), an
//! exact mapping to weights without modulo bias, disclosed odds with stock, and pity.
//!
//! A draw is verifiable by anyone once the box's seed is revealed:
//!
//! 1. `seedCommitment` = lowercase hex SHA-256 of the seed string's UTF-8 bytes.
//! 2. `r` = the first 8 bytes, big-endian, of HMAC-SHA256(key = seed string, message =
//!    `"{memberId}:{nonce}"`). If `r >= 2^64 - (2^64 mod W)` (W = the pool's total weight), the
//!    message becomes `"{memberId}:{nonce}:1"`, then `:2`, ... until it is not.
//! 3. `x = r mod W`; walk the pool in its published order, subtracting weights; the prize is the
//!    one where `x` falls.

use async_graphql::Enum;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Enum)]
pub enum Rarity {
    Common,
    Rare,
    Epic,
    Legendary,
}

impl Rarity {
    pub fn as_str(self) -> &'static str {
        match self {
            Rarity::Common => "COMMON",
            Rarity::Rare => "RARE",
            Rarity::Epic => "EPIC",
            Rarity::Legendary => "LEGENDARY",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Rarity::Common,
            Rarity::Rare,
            Rarity::Epic,
            Rarity::Legendary,
        ]
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PrizeKind {
    Points,
    Coupon,
    Item,
    HiddenTask,
    Title,
}

impl PrizeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrizeKind::Points => "POINTS",
            PrizeKind::Coupon => "COUPON",
            PrizeKind::Item => "ITEM",
            PrizeKind::HiddenTask => "HIDDEN_TASK",
            PrizeKind::Title => "TITLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            PrizeKind::Points,
            PrizeKind::Coupon,
            PrizeKind::Item,
            PrizeKind::HiddenTask,
            PrizeKind::Title,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

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

pub fn commitment(seed: &str) -> String {
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

/// A uniform number in `0..total` from the seed, member and nonce, by rejection (no modulo bias).
pub fn roll(seed: &str, member_id: i64, nonce: i64, total: u64) -> u64 {
    assert!(total > 0, "a pool has weight");
    let zone = acceptance_limit(total);
    let mut attempt = 0u32;
    loop {
        let message = if attempt == 0 {
            format!("{member_id}:{nonce}")
        } else {
            format!("{member_id}:{nonce}:{attempt}")
        };
        let r = hmac_u64(seed, &message);
        if r <= zone {
            return r % total;
        }
        attempt += 1;
    }
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

/// Recomputes a draw from its revealed seed, member, nonce and pool.
pub fn verify(seed: &str, member_id: i64, nonce: i64, pool: &[(i64, u64)]) -> Option<i64> {
    let total: u64 = pool.iter().map(|(_, w)| w).sum();
    (total > 0)
        .then(|| pick(pool, roll(seed, member_id, nonce, total)))
        .flatten()
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
    fn the_commitment_is_the_sha256_of_the_seed_text() {
        assert_eq!(
            commitment("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_same_inputs_give_the_same_draw() {
        let pool = [(1, 5), (2, 3), (3, 2)];
        assert_eq!(verify("seed", 7, 42, &pool), verify("seed", 7, 42, &pool));
        let outcomes: std::collections::HashSet<_> =
            (0..200).map(|n| verify("seed", 7, n, &pool)).collect();
        assert_eq!(outcomes.len(), 3, "every prize comes up");
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
            assert_eq!(verify("s", 1, nonce, &pool), Some(1));
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
                let id = verify(&seed, 42, nonce, &pool).unwrap();
                counts[(id - 1) as usize] += 1;
            }
            for (i, w) in [w1, w2, w3].iter().enumerate() {
                let expected = *w as f64 / total;
                let observed = counts[i] as f64 / n as f64;
                // Five standard deviations of a binomial proportion.
                let tolerance = 5.0 * (expected * (1.0 - expected) / n as f64).sqrt() + 1e-9;
                prop_assert!((observed - expected).abs() <= tolerance, "prize {} expected {expected} got {observed}", i + 1);
            }
        }
    }
}
