//! Pure rules of authentication: what each admin role may do, and refresh-token material.

use async_graphql::Enum;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum AdminRole {
    /// Everything.
    Superadmin,
    /// Catalog, campaigns, members, risk.
    Operator,
    /// Read only.
    Auditor,
    /// The merchant's order system: recordPurchase / refundPurchase only.
    Integration,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Superadmin => "SUPERADMIN",
            AdminRole::Operator => "OPERATOR",
            AdminRole::Auditor => "AUDITOR",
            AdminRole::Integration => "INTEGRATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SUPERADMIN" => Some(AdminRole::Superadmin),
            "OPERATOR" => Some(AdminRole::Operator),
            "AUDITOR" => Some(AdminRole::Auditor),
            "INTEGRATION" => Some(AdminRole::Integration),
            _ => None,
        }
    }
}

/// Roles that may read the operator views (everyone but the integration account).
pub const READERS: &[AdminRole] = &[AdminRole::Operator, AdminRole::Auditor];
/// Roles that may change catalog, campaigns, members and risk.
pub const OPERATORS: &[AdminRole] = &[AdminRole::Operator];
/// Roles that may post purchases from the merchant's order system.
pub const INTEGRATIONS: &[AdminRole] = &[AdminRole::Integration];
/// Only SUPERADMIN, who may do everything.
pub const SUPERADMINS: &[AdminRole] = &[];
/// Every signed-in admin.
pub const ANY_ADMIN: &[AdminRole] = &[
    AdminRole::Operator,
    AdminRole::Auditor,
    AdminRole::Integration,
];

/// SUPERADMIN may do everything; the others only what a field lists.
pub fn role_allows(role: AdminRole, allowed: &[AdminRole]) -> bool {
    role == AdminRole::Superadmin || allowed.contains(&role)
}

/// A new refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a refresh token: its SHA-256, so a database leak yields no usable token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The refresh token that replaces `spent`: derived from it with a server key, not drawn at
/// random, so a second refresh racing the first (an app resuming fires two) can be answered with
/// the very same successor although only its hash is stored.
pub fn successor_refresh_token(key: &[u8], spent: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"loyalty refresh-token successor\0");
    mac.update(spent.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether a refresh token spent at `spent_at` may still be answered with its successor at
/// `now`. Later, presenting it again is reuse: someone else may hold a copy.
pub fn within_refresh_grace(spent_at: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> bool {
    now - spent_at <= grace
}

/// A random id for a login's family of refresh tokens.
pub fn new_session_id() -> String {
    random_hex(16)
}

/// `bytes` random bytes as hex: ids that only need to be unguessable and unique (sessions,
/// captcha challenges, job-lease holders, readiness probe keys).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// How long an admin-login key (a username, an address) is locked after its `failures`-th
/// failed login in the counting window: not at all before `allowed` failures, then `base`,
/// doubling with every further failure, never longer than `max`. Successes never count.
pub fn lockout_after(
    failures: u64,
    allowed: u64,
    base: Duration,
    max: Duration,
) -> Option<Duration> {
    let past = failures.checked_sub(allowed)?;
    // 2^20 x base is far beyond any sensible max; stop doubling before it can overflow.
    let factor = 1i32 << past.min(20);
    Some((base * factor).min(max))
}

pub fn valid_admin_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superadmin_may_do_everything_and_others_only_what_is_listed() {
        assert!(role_allows(AdminRole::Superadmin, &[]));
        assert!(role_allows(AdminRole::Auditor, READERS));
        assert!(!role_allows(AdminRole::Integration, READERS));
        assert!(!role_allows(AdminRole::Auditor, OPERATORS));
        assert!(role_allows(AdminRole::Integration, INTEGRATIONS));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [
            AdminRole::Superadmin,
            AdminRole::Operator,
            AdminRole::Auditor,
            AdminRole::Integration,
        ] {
            assert_eq!(AdminRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(AdminRole::parse("root"), None);
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), a);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
    }

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_key_only() {
        let token = new_refresh_token();
        let next = successor_refresh_token(b"key-1", &token);
        assert_eq!(next, successor_refresh_token(b"key-1", &token));
        assert_eq!(next.len(), 43, "as long as a random token");
        assert_ne!(next, token);
        assert_ne!(next, successor_refresh_token(b"key-2", &token));
        assert_ne!(
            next,
            successor_refresh_token(b"key-1", &new_refresh_token())
        );
    }

    #[test]
    fn the_grace_window_includes_its_last_second_and_not_the_next() {
        let spent = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let grace = Duration::seconds(30);
        assert!(within_refresh_grace(spent, spent, grace));
        assert!(within_refresh_grace(spent, spent + grace, grace));
        assert!(!within_refresh_grace(
            spent,
            spent + grace + Duration::seconds(1),
            grace
        ));
    }

    #[test]
    fn a_lockout_starts_at_the_allowed_count_and_doubles_up_to_the_max() {
        let (base, max) = (Duration::minutes(1), Duration::hours(1));
        let lock = |failures| lockout_after(failures, 5, base, max);
        assert_eq!(lock(0), None);
        assert_eq!(lock(4), None);
        assert_eq!(lock(5), Some(Duration::minutes(1)));
        assert_eq!(lock(6), Some(Duration::minutes(2)));
        assert_eq!(lock(7), Some(Duration::minutes(4)));
        assert_eq!(lock(10), Some(Duration::minutes(32)));
        assert_eq!(lock(11), Some(Duration::hours(1)));
        assert_eq!(lock(u64::MAX), Some(Duration::hours(1)));
    }

    #[test]
    fn only_superadmin_passes_the_superadmin_list() {
        assert!(role_allows(AdminRole::Superadmin, SUPERADMINS));
        for role in [
            AdminRole::Operator,
            AdminRole::Auditor,
            AdminRole::Integration,
        ] {
            assert!(!role_allows(role, SUPERADMINS));
        }
    }

    #[test]
    fn admin_usernames_are_plain_lowercase() {
        assert!(valid_admin_username("ops.team-1"));
        assert!(!valid_admin_username("Admin"));
        assert!(!valid_admin_username("ab"));
        assert!(!valid_admin_username("a b c"));
    }
}
