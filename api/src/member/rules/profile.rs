//! Pure rules of the member profile: public codes, nickname, avatar and birthday checks.

use chrono::NaiveDate;
use rand::Rng;

use crate::error::{AppError, AppResult};

/// Letters and digits that cannot be misread for one another (no 0/O, 1/I).
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const MEMBER_NO_LEN: usize = 8;
pub const INVITE_CODE_LEN: usize = 6;
pub const NICKNAME_MAX_CHARS: usize = 32;
pub const AVATAR_URL_MAX_LEN: usize = 512;

pub fn public_code(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Invite codes are typed or scanned; accept them in any case and with stray spaces.
pub fn normalize_code(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

pub fn default_nickname(member_no: &str) -> String {
    format!("会员{member_no}")
}

pub fn nickname(raw: &str) -> AppResult<String> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > NICKNAME_MAX_CHARS {
        return Err(AppError::validation(
            "nickname",
            format!("nickname must be 1 to {NICKNAME_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::validation(
            "nickname",
            "nickname must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

pub fn avatar_url(raw: &str) -> AppResult<String> {
    let url = raw.trim();
    let bad = |msg: &str| Err(AppError::validation("avatarUrl", msg));
    if url.len() > AVATAR_URL_MAX_LEN {
        return bad("avatarUrl must be at most 512 characters");
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") =>
        {
            rest
        }
        _ => return bad("avatarUrl must be an http(s) URL"),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("avatarUrl must be an http(s) URL with a host and no spaces");
    }
    Ok(url.to_string())
}

/// What to do with a birthday in a profile update: it can be set once, to a day in the past.
/// Returns `None` when nothing changes (the same birthday sent again).
pub fn birthday(
    new: NaiveDate,
    current: Option<NaiveDate>,
    today: NaiveDate,
) -> AppResult<Option<NaiveDate>> {
    match current {
        Some(existing) if existing == new => Ok(None),
        Some(_) => Err(AppError::validation(
            "birthday",
            "birthday can be set only once",
        )),
        None if new >= today => Err(AppError::validation(
            "birthday",
            "birthday must be a day in the past",
        )),
        None if new < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) => Err(
            AppError::validation("birthday", "birthday must be after 1900-01-01"),
        ),
        None => Ok(Some(new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn nicknames_are_trimmed_and_counted_in_characters() {
        assert_eq!(nickname("  小明  ").unwrap(), "小明");
        assert!(nickname(&"字".repeat(32)).is_ok());
        assert_eq!(nickname(&"字".repeat(33)).unwrap_err().code(), "VALIDATION");
        assert!(nickname("   ").is_err());
        assert!(nickname("a\u{0007}b").is_err());
    }

    #[test]
    fn an_avatar_must_be_an_http_url_with_a_host() {
        assert!(avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(avatar_url("http://x.cn").is_ok());
        assert!(avatar_url("javascript:alert(1)").is_err());
        assert!(avatar_url("ftp://x.cn/a.png").is_err());
        assert!(avatar_url("https:///a.png").is_err());
        assert!(avatar_url("https://x.cn/a b.png").is_err());
        let long = format!("https://x.cn/{}", "a".repeat(512));
        match avatar_url(&long).unwrap_err() {
            AppError::Validation { field, .. } => assert_eq!(field, "avatarUrl"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_birthday_is_set_once_and_in_the_past() {
        let today = day("2026-11-24");
        assert_eq!(
            birthday(day("1990-05-01"), None, today).unwrap(),
            Some(day("1990-05-01"))
        );
        assert_eq!(
            birthday(day("1990-05-01"), Some(day("1990-05-01")), today).unwrap(),
            None
        );
        assert!(birthday(day("1991-05-01"), Some(day("1990-05-01")), today).is_err());
        assert!(birthday(today, None, today).is_err());
        assert!(birthday(day("2027-01-01"), None, today).is_err());
        assert!(birthday(day("1899-12-31"), None, today).is_err());
        // A leap-day birthday is a real birthday.
        assert!(birthday(day("2000-02-29"), None, today).is_ok());
    }

    #[test]
    fn invite_codes_are_matched_without_case_or_spaces() {
        assert_eq!(normalize_code(" ab3k9z "), "AB3K9Z");
    }

    proptest! {
        #[test]
        fn public_codes_use_only_the_unambiguous_alphabet(seed: u64, len in 1usize..16) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let code = public_code(&mut rng, len);
            prop_assert_eq!(code.len(), len);
            prop_assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        }
    }
}
