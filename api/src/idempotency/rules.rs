//! Keys and fingerprints of idempotent requests, and when a failed attempt is worth another.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

/// Longest key a client may send.
pub const MAX_KEY_LEN: usize = 64;

/// A client's key: 1 to 64 letters, digits, `-`, `_`, `:` or `.` (a UUID is ideal).
pub fn client_key(key: &str) -> AppResult<String> {
    let key = key.trim();
    let ok_len = (1..=MAX_KEY_LEN).contains(&key.len());
    let ok_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
    if !ok_len || !ok_chars {
        return Err(AppError::validation(
            "idempotencyKey",
            "idempotencyKey must be 1 to 64 letters, digits, '-', '_', ':' or '.' (a UUID is ideal)",
        ));
    }
    Ok(key.to_string())
}

/// A key from another system (the merchant's order number): 1 to 64 printable characters.
pub fn external_key(field: &str, key: &str) -> AppResult<String> {
    let key = key.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 1 to {MAX_KEY_LEN} printable characters"),
        ));
    }
    Ok(key.to_string())
}

/// A key for a request that came without one. Nobody can retry with it, so its run is never
/// recorded: it simply runs once.
pub fn generated_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("gen:{}", hex::encode(bytes))
}

pub fn is_generated(key: &str) -> bool {
    key.starts_with("gen:")
}

/// A fingerprint of a request's input, stored beside its key: a retry matches it, a reuse of
/// the key for another request does not. Parts are separated, so ("ab", "c") ≠ ("a", "bc").
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

/// Whether a stored run answers this request: the same input, or a record carried over from
/// before fingerprints were kept (empty), which answers any.
pub fn replays(stored_fingerprint: &str, request_fingerprint: &str) -> bool {
    stored_fingerprint.is_empty() || stored_fingerprint == request_fingerprint
}

/// Attempts of one use case when the database breaks a deadlock or a serialization conflict by
/// failing one side: the loser is rolled back whole, so it can simply run again.
pub const MAX_ATTEMPTS: u32 = 4;

/// How long to wait before attempt `attempt` (2, 3, …): a few milliseconds growing with the
/// attempt, jittered so the two sides of a deadlock do not collide again in step.
pub fn backoff_ms(attempt: u32, jitter: u64) -> u64 {
    let base = 5u64 << attempt.min(6);
    base + jitter % base
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_keys_are_short_and_plain() {
        assert_eq!(client_key(" abc-1 ").unwrap(), "abc-1");
        assert_eq!(client_key("").unwrap_err().code(), "VALIDATION");
        assert!(client_key(&"x".repeat(65)).is_err());
        assert!(client_key("a b").is_err());
        assert!(client_key("5f0c9a8e-1b2c-4d3e-9f00-123456789abc").is_ok());
    }

    #[test]
    fn external_keys_take_any_printable_characters() {
        assert_eq!(
            external_key("orderNo", " 订单/2026 #1 ").unwrap(),
            "订单/2026 #1"
        );
        assert!(external_key("orderNo", "a\u{0}b").is_err());
        assert!(external_key("orderNo", "").is_err());
    }

    #[test]
    fn generated_keys_are_fresh_and_known_as_generated() {
        let (a, b) = (generated_key(), generated_key());
        assert_ne!(a, b);
        assert!(is_generated(&a) && !is_generated("client-key"));
        // A client's key can never look generated: ':' is allowed, but a client key may well
        // start with "gen:"; the runner generates only when none was sent, so that is harmless.
        assert!(a.len() <= MAX_KEY_LEN);
    }

    #[test]
    fn the_same_input_replays_and_other_input_does_not() {
        let first = fingerprint(&["DEMOB002", "50"]);
        assert!(replays(&first, &fingerprint(&["DEMOB002", "50"])));
        assert!(!replays(&first, &fingerprint(&["DEMOB002", "51"])));
        assert!(
            replays("", &first),
            "carried-over records replay for any input"
        );
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    proptest! {
        #[test]
        fn backoff_grows_and_stays_small(attempt in 1u32..10, jitter in any::<u64>()) {
            let wait = backoff_ms(attempt, jitter);
            let base = 5u64 << attempt.min(6);
            prop_assert!(wait >= base && wait < 2 * base);
            prop_assert!(wait < 700);
        }
    }
}
