//! Access tokens: HS256 only, with `iss`, `aud`, `sub`, `exp` and a `typ` claim, so a member
//! token is never taken as an admin token or the other way round. `exp` is checked against the
//! request clock (not the system clock), so a test that travels in time sees tokens expire.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Member,
    Admin,
}

impl TokenKind {
    fn audience(self) -> &'static str {
        match self {
            TokenKind::Member => "loyalty-member",
            TokenKind::Admin => "loyalty-admin",
        }
    }

    fn typ(self) -> &'static str {
        match self {
            TokenKind::Member => "member",
            TokenKind::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub typ: String,
    /// Member tokens: the refresh-token family (the session) this token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
}

impl JwtKeys {
    pub fn new(secret: &SecretString, issuer: &str) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        JwtKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            issuer: issuer.to_string(),
        }
    }

    /// Signs a token for `subject`, valid for `ttl` from `now`; returns it with its expiry.
    pub fn issue(
        &self,
        kind: TokenKind,
        subject: &str,
        session: Option<&str>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> AppResult<(String, DateTime<Utc>)> {
        // Whole seconds, so `expiresAt` is exactly the token's `exp`.
        let expires_at = DateTime::from_timestamp((now + ttl).timestamp(), 0)
            .ok_or_else(|| AppError::internal("token expiry out of range"))?;
        let claims = Claims {
            sub: subject.to_string(),
            iss: self.issuer.clone(),
            aud: kind.audience().to_string(),
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            typ: kind.typ().to_string(),
            sid: session.map(str::to_string),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(format!("signing a token failed: {e}")))?;
        Ok((token, expires_at))
    }

    /// Checks signature, algorithm, issuer, audience, kind and expiry.
    pub fn verify(&self, token: &str, kind: TokenKind, now: DateTime<Utc>) -> AppResult<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[kind.audience()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                AppError::unauthenticated("invalid access token")
            })?
            .claims;
        if claims.typ != kind.typ() {
            return Err(AppError::unauthenticated("invalid access token"));
        }
        if claims.exp <= now.timestamp() {
            return Err(AppError::unauthenticated(
                "access token expired; refresh the session",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            &SecretString::from("a-test-secret-that-is-long-enough!!"),
            "loyalty",
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    #[test]
    fn a_token_verifies_for_its_own_kind_until_it_expires() {
        let k = keys();
        let (token, exp) = k
            .issue(
                TokenKind::Member,
                "42",
                Some("fam"),
                now(),
                Duration::hours(2),
            )
            .unwrap();
        assert_eq!(exp, now() + Duration::hours(2));
        let claims = k.verify(&token, TokenKind::Member, now()).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_deref()),
            ("42", Some("fam"))
        );
        assert!(k.verify(&token, TokenKind::Admin, now()).is_err());
        assert!(k.verify(&token, TokenKind::Member, exp).is_err());
    }

    #[test]
    fn unsigned_and_foreign_tokens_are_refused() {
        let k = keys();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = serde_json::json!({"sub":"1","iss":"loyalty","aud":"loyalty-member",
            "exp": now().timestamp() + 60, "iat": now().timestamp(), "typ":"member"});
        let body = b64.encode(claims.to_string());
        let none = format!("{}.{body}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert!(k.verify(&none, TokenKind::Member, now()).is_err());
        let other = JwtKeys::new(
            &SecretString::from("another-secret-another-secret-xx"),
            "loyalty",
        );
        let (token, _) = other
            .issue(TokenKind::Member, "1", None, now(), Duration::hours(1))
            .unwrap();
        assert!(k.verify(&token, TokenKind::Member, now()).is_err());
    }
}
