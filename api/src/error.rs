//! The one error type of the API. Each variant knows its `extensions.code` (DESIGN.md s5);
//! `From<AppError> for async_graphql::Error` is the single place that builds a GraphQL error,
//! so every `?` in a resolver carries a code and no database text reaches a client.

use async_graphql::ErrorExtensions;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this member is blacklisted")]
    Blacklisted,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("not enough points: {needed} needed, {available} available")]
    InsufficientPoints { needed: i64, available: i64 },
    #[error("out of stock")]
    OutOfStock,
    #[error("{message}")]
    LimitReached { limit: i64, message: String },
    #[error("{0}")]
    AlreadyDone(String),
    #[error("{0}")]
    NotAvailable(String),
    #[error("too many requests; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("please answer the challenge, then retry")]
    CaptchaRequired {
        challenge_id: String,
        prompt: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// A dependency (Redis, WeChat) is down; the client should retry later.
    #[error("a service this needs is unavailable; retry in {retry_after_seconds} s")]
    Unavailable { retry_after_seconds: u64 },
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// Anything else that is our fault; the text goes to the log only.
    #[error("{0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

/// How long a client is asked to wait when a dependency is down.
pub const UNAVAILABLE_RETRY_SECONDS: u64 = 5;

/// Whether a Redis error means Redis is unreachable or not serving right now (refused, dropped,
/// timed out, loading, failing over), as opposed to a bug such as a wrong type or a bad script.
pub fn redis_unreachable(err: &redis::RedisError) -> bool {
    !matches!(err.retry_method(), redis::RetryMethod::NoRetry)
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AppError::Unauthenticated(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AppError::Internal(message.into())
    }

    /// A dependency is down: `detail` goes to the log, the client gets UNAVAILABLE.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        tracing::warn!(detail = detail.into(), "a dependency is unavailable");
        AppError::Unavailable {
            retry_after_seconds: UNAVAILABLE_RETRY_SECONDS,
        }
    }

    /// A dependency is down (Redis unreachable, WeChat not answering), whichever variant says so.
    pub fn is_unavailable(&self) -> bool {
        self.code() == "UNAVAILABLE"
    }

    /// The machine-readable code a client sees in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Blacklisted => "BLACKLISTED",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Validation { .. } => "VALIDATION",
            AppError::InsufficientPoints { .. } => "INSUFFICIENT_POINTS",
            AppError::OutOfStock => "OUT_OF_STOCK",
            AppError::LimitReached { .. } => "LIMIT_REACHED",
            AppError::AlreadyDone(_) => "ALREADY_DONE",
            AppError::NotAvailable(_) => "NOT_AVAILABLE",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::CaptchaRequired { .. } => "CAPTCHA_REQUIRED",
            AppError::Conflict(_) => "CONFLICT",
            AppError::Unavailable { .. } => "UNAVAILABLE",
            AppError::Redis(e) if redis_unreachable(e) => "UNAVAILABLE",
            AppError::Db(_) | AppError::Redis(_) | AppError::Internal(_) => "INTERNAL",
        }
    }

    /// Maps a unique-key violation to the client error it means (e.g. a second check-in on
    /// one day is ALREADY_DONE); any other database error stays INTERNAL.
    pub fn on_unique_violation(err: sea_orm::DbErr, meaning: AppError) -> AppError {
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => meaning,
            _ => AppError::Db(err),
        }
    }

    pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        )
    }

    /// The database failed this side of a deadlock or a serialization conflict, or SQLite was
    /// busy: the transaction was rolled back whole and may simply run again.
    pub fn is_transient(&self) -> bool {
        let AppError::Db(err) = self else {
            return false;
        };
        database_code(err).is_some_and(|code| TRANSIENT_CODES.contains(&code.as_str()))
    }
}

/// SQLSTATEs (PostgreSQL, MySQL/MariaDB) and SQLite result codes of a transient failure:
/// serialization failure, deadlock detected, database busy or locked.
const TRANSIENT_CODES: &[&str] = &["40001", "40P01", "5", "6", "261", "517"];

/// The database's own error code of `err`, if it came from the database.
fn database_code(err: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|code| code.into_owned()),
        _ => None,
    }
}

/// SQLSTATE 22021: text the database's encoding cannot hold (PostgreSQL refuses NUL). Inputs are
/// checked at the boundary (`input::PlainTextInputs`); this is the backstop for any path that
/// is not, so such text is the client's VALIDATION rather than our INTERNAL.
const UNSTORABLE_TEXT: &str = "22021";

fn is_unstorable_text(err: &sea_orm::DbErr) -> bool {
    database_code(err).is_some_and(|code| code == UNSTORABLE_TEXT)
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let err = match err {
            AppError::Db(e) if is_unstorable_text(&e) => {
                AppError::validation("input", "the text holds a character that cannot be stored")
            }
            other => other,
        };
        let code = err.code();
        if code == "INTERNAL" {
            tracing::error!(error = %err, detail = ?err, "internal error answered as INTERNAL");
            return async_graphql::Error::new("internal error")
                .extend_with(|_, ext| ext.set("code", "INTERNAL"));
        }
        if let AppError::Redis(e) = &err
            && code == "UNAVAILABLE"
        {
            // The Redis text stays in the log, like any INTERNAL detail.
            tracing::warn!(error = %e, "Redis unreachable; answered UNAVAILABLE");
            return AppError::Unavailable {
                retry_after_seconds: UNAVAILABLE_RETRY_SECONDS,
            }
            .into();
        }
        let message = err.to_string();
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            match &err {
                AppError::Validation { field, .. } => ext.set("field", field.as_str()),
                AppError::InsufficientPoints { needed, available } => {
                    ext.set("needed", *needed);
                    ext.set("available", *available);
                }
                AppError::LimitReached { limit, .. } => ext.set("limit", *limit),
                AppError::RateLimited {
                    retry_after_seconds,
                }
                | AppError::Unavailable {
                    retry_after_seconds,
                } => ext.set("retryAfterSeconds", *retry_after_seconds),
                AppError::CaptchaRequired {
                    challenge_id,
                    prompt,
                } => {
                    ext.set("challengeId", challenge_id.as_str());
                    ext.set("prompt", prompt.as_str());
                }
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(err: AppError) -> (String, serde_json::Value) {
        let gql: async_graphql::Error = err.into();
        let ext = serde_json::to_value(gql.extensions.unwrap()).unwrap();
        (gql.message, ext)
    }

    #[test]
    fn database_errors_are_masked_as_internal() {
        let (message, ext) = extensions(AppError::Db(sea_orm::DbErr::Custom(
            "relation \"member\" does not exist".into(),
        )));
        assert_eq!(message, "internal error");
        assert_eq!(ext["code"], "INTERNAL");
        assert!(!ext.to_string().contains("relation"));
    }

    #[test]
    fn client_errors_carry_their_code_and_details() {
        let (_, ext) = extensions(AppError::InsufficientPoints {
            needed: 50,
            available: 20,
        });
        assert_eq!(ext["code"], "INSUFFICIENT_POINTS");
        assert_eq!(ext["needed"], 50);
        assert_eq!(ext["available"], 20);
        let (message, ext) = extensions(AppError::validation("nickname", "too long"));
        assert_eq!(
            (message.as_str(), &ext["field"]),
            ("too long", &"nickname".into())
        );
        let (_, ext) = extensions(AppError::RateLimited {
            retry_after_seconds: 7,
        });
        assert_eq!(ext["retryAfterSeconds"], 7);
        let (_, ext) = extensions(AppError::Unavailable {
            retry_after_seconds: 5,
        });
        assert_eq!(
            (&ext["code"], &ext["retryAfterSeconds"]),
            (&"UNAVAILABLE".into(), &5.into())
        );
        let (_, ext) = extensions(AppError::CaptchaRequired {
            challenge_id: "c1".into(),
            prompt: "What is 7 + 5?".into(),
        });
        assert_eq!(
            (&ext["challengeId"], &ext["prompt"]),
            (&"c1".into(), &"What is 7 + 5?".into())
        );
    }

    #[test]
    fn an_unreachable_redis_is_unavailable_and_other_redis_errors_internal() {
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let (message, ext) = extensions(AppError::Redis(refused));
        assert_eq!(
            (&ext["code"], &ext["retryAfterSeconds"]),
            (&"UNAVAILABLE".into(), &UNAVAILABLE_RETRY_SECONDS.into())
        );
        assert!(!message.contains("refused"), "{message}");
        let wrong_type = redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "response was of incompatible type",
        ));
        let (message, ext) = extensions(AppError::Redis(wrong_type));
        assert_eq!(
            (message.as_str(), &ext["code"]),
            ("internal error", &"INTERNAL".into())
        );
    }
}
