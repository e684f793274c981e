//! `api verify-draw`: recomputes a revealed draw from the data the draw shows, as the README's
//! Python snippet does, so a member need not trust the server's word for it.

use super::rules;

const USAGE: &str = "usage: api verify-draw SERVER_SEED CLIENT_SEED MEMBER_ID MEMBER_NONCE POOL PRIZE_TABLE
       api verify-draw SEED MEMBER_ID NONCE POOL   (a draw without a memberNonce, made before client seeds)
POOL is prizeId:weight,...; PRIZE_TABLE is id:weight:stock:RARITY,... (both as the draw shows them)";

fn number(value: &str, name: &str) -> Result<i64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name} is a number, not {value:?}"))
}

fn pool(value: &str) -> Result<Vec<(i64, u64)>, String> {
    value
        .split(',')
        .map(|p| {
            let (id, w) = p.split_once(':')?;
            Some((id.trim().parse().ok()?, w.trim().parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("POOL is prizeId:weight,..., not {value:?}"))
}

/// Runs `verify-draw` on its arguments: the lines `commitment <hex>` and `prize <id>` to compare
/// with the draw's `seedCommitment` and prize, or what is wrong with the input.
pub fn verify_draw_command(args: &[String]) -> Result<String, String> {
    match args {
        [
            server_seed,
            client_seed,
            member,
            nonce,
            pool_text,
            table_text,
        ] => {
            let (member, nonce) = (number(member, "MEMBER_ID")?, number(nonce, "MEMBER_NONCE")?);
            let pool = pool(pool_text)?;
            let table = rules::parse_prize_table(table_text)
                .ok_or("PRIZE_TABLE is id:weight:stock:RARITY,... as the draw shows it")?;
            if !rules::pool_fits_table(&pool, &table) {
                return Err(
                    "the pool is not in the committed prize table: a prize's weight, \
                            order or stock differs from what the seed committed to"
                        .into(),
                );
            }
            let prize = rules::verify(server_seed, client_seed, member, nonce, &pool)
                .ok_or("the pool has no weight")?;
            // The commitment is over the table's bytes exactly as published.
            Ok(format!(
                "commitment {}\nprize {prize}\n",
                rules::commitment(server_seed, table_text)
            ))
        }
        [seed, member, nonce, pool_text] => {
            let (member, nonce) = (number(member, "MEMBER_ID")?, number(nonce, "NONCE")?);
            let prize = rules::verify_legacy(seed, member, nonce, &pool(pool_text)?)
                .ok_or("the pool has no weight")?;
            Ok(format!(
                "commitment {}\nprize {prize}\n",
                rules::legacy_commitment(seed)
            ))
        }
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_draw_is_recomputed_with_its_commitment() {
        let table = "1:5:-:COMMON,2:3:10:RARE,3:2:1:EPIC";
        let out = verify_draw_command(&args(&["seed", "client", "7", "3", "1:5,2:3,3:2", table]));
        assert_eq!(
            out,
            Ok(format!(
                "commitment {}\nprize 3\n",
                rules::commitment("seed", table)
            ))
        );
    }

    #[test]
    fn a_pool_outside_the_committed_table_is_refused() {
        let table = "1:5:-:COMMON,2:3:10:RARE";
        let out = verify_draw_command(&args(&["seed", "client", "7", "3", "1:5,2:4", table]));
        assert!(
            out.unwrap_err()
                .contains("not in the committed prize table")
        );
    }

    #[test]
    fn older_draws_verify_with_four_arguments() {
        let out = verify_draw_command(&args(&["seed", "7", "2", "1:5,2:3,3:2"]));
        assert_eq!(
            out,
            Ok(format!(
                "commitment {}\nprize 1\n",
                rules::legacy_commitment("seed")
            ))
        );
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        assert!(
            verify_draw_command(&args(&["a", "b"]))
                .unwrap_err()
                .starts_with("usage")
        );
        let bad_nonce = verify_draw_command(&args(&["s", "c", "7", "x", "1:1", "1:1:-:COMMON"]));
        assert!(bad_nonce.unwrap_err().contains("MEMBER_NONCE"));
        let bad_pool = verify_draw_command(&args(&["s", "c", "7", "1", "1-1", "1:1:-:COMMON"]));
        assert!(bad_pool.unwrap_err().contains("POOL"));
        let bad_table = verify_draw_command(&args(&["s", "c", "7", "1", "1:1", "1:1"]));
        assert!(bad_table.unwrap_err().contains("PRIZE_TABLE"));
    }
}
