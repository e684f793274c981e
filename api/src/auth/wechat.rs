//! WeChat mini-program login: `wx.login()` gives the front end a one-time code, and
//! `jscode2session` turns it into the member's openid. The session key stays on the server.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::WeChatSettings;
use crate::error::{AppError, AppResult};

#[derive(Clone, PartialEq, Eq)]
pub struct WeChatSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: Option<String>,
}

/// Written by hand so that no `{:?}` can put the session key in a log.
impl std::fmt::Debug for WeChatSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatSession")
            .field("openid", &self.openid)
            .field("unionid", &self.unionid)
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

#[async_trait::async_trait]
pub trait WeChatLogin: Send + Sync {
    async fn code_to_session(&self, code: &str) -> AppResult<WeChatSession>;
}

/// Checks the code's shape before anything is sent anywhere.
fn check_code(code: &str) -> AppResult<&str> {
    let code = code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(AppError::validation(
            "code",
            "the login code must be 1 to 128 characters",
        ));
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::validation(
            "code",
            "the login code may hold only letters, digits, '_' and '-'",
        ));
    }
    Ok(code)
}

/// Development and test only: any code signs in the member `mock_<code>`.
pub struct MockWeChat;

#[async_trait::async_trait]
impl WeChatLogin for MockWeChat {
    async fn code_to_session(&self, code: &str) -> AppResult<WeChatSession> {
        let code = check_code(code)?;
        Ok(WeChatSession {
            openid: format!("mock_{code}"),
            unionid: None,
            session_key: None,
        })
    }
}

/// The real `GET {base}/sns/jscode2session` client.
pub struct WeChatApi {
    http: reqwest::Client,
    appid: String,
    secret: SecretString,
    base: String,
}

// No Debug: it holds the session key.
#[derive(Deserialize)]
struct Code2SessionReply {
    openid: Option<String>,
    unionid: Option<String>,
    session_key: Option<String>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl WeChatApi {
    pub fn new(settings: &WeChatSettings) -> AppResult<Option<Self>> {
        let (Some(appid), Some(secret)) = (&settings.appid, &settings.secret) else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AppError::internal(format!("building the WeChat HTTP client: {e}")))?;
        Ok(Some(WeChatApi {
            http,
            appid: appid.clone(),
            secret: secret.clone(),
            base: settings.api_base.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl WeChatLogin for WeChatApi {
    async fn code_to_session(&self, code: &str) -> AppResult<WeChatSession> {
        let code = check_code(code)?;
        let url = format!("{}/sns/jscode2session", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[
                ("appid", self.appid.as_str()),
                ("secret", self.secret.expose_secret()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|e| {
                AppError::unavailable(format!(
                    "WeChat jscode2session unreachable: {}",
                    without_url(e)
                ))
            })?;
        let status = response.status();
        // WeChat answers JSON with a text/plain content type, so parse the body ourselves.
        let body = response.bytes().await.map_err(|e| {
            AppError::unavailable(format!("WeChat jscode2session body: {}", without_url(e)))
        })?;
        let reply: Code2SessionReply = serde_json::from_slice(&body).map_err(|e| {
            AppError::internal(format!(
                "WeChat jscode2session answered {status} with no JSON: {e}"
            ))
        })?;
        session_from_reply(reply)
    }
}

/// A reqwest error as text for the log: its URL carries `secret=`, so it is dropped, and the
/// causes (refused, timed out, reset) are kept.
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn session_from_reply(reply: Code2SessionReply) -> AppResult<WeChatSession> {
    match reply.errcode {
        0 => match reply.openid {
            Some(openid) if !openid.is_empty() => Ok(WeChatSession {
                openid,
                unionid: reply.unionid.filter(|u| !u.is_empty()),
                session_key: reply.session_key,
            }),
            _ => Err(AppError::internal(
                "WeChat jscode2session answered without an openid",
            )),
        },
        40029 => Err(AppError::unauthenticated(
            "the login code is invalid or expired; call wx.login again",
        )),
        40163 => Err(AppError::unauthenticated(
            "the login code was already used; call wx.login again",
        )),
        45011 => Err(AppError::RateLimited {
            retry_after_seconds: 60,
        }),
        code => Err(AppError::internal(format!(
            "WeChat jscode2session error {code}: {}",
            reply.errmsg
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(json: &str) -> AppResult<WeChatSession> {
        session_from_reply(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn wechat_error_codes_map_to_our_codes() {
        assert_eq!(
            reply(r#"{"errcode":40029,"errmsg":"invalid code"}"#)
                .unwrap_err()
                .code(),
            "UNAUTHENTICATED"
        );
        assert_eq!(
            reply(r#"{"errcode":45011,"errmsg":"freq limit"}"#)
                .unwrap_err()
                .code(),
            "RATE_LIMITED"
        );
        assert_eq!(
            reply(r#"{"errcode":-1,"errmsg":"busy"}"#)
                .unwrap_err()
                .code(),
            "INTERNAL"
        );
        assert_eq!(reply(r#"{"errcode":0}"#).unwrap_err().code(), "INTERNAL");
    }

    #[test]
    fn a_good_reply_keeps_openid_unionid_and_the_session_key() {
        let s = reply(r#"{"openid":"o1","unionid":"u1","session_key":"k"}"#).unwrap();
        assert_eq!(s.openid, "o1");
        assert_eq!(s.unionid.as_deref(), Some("u1"));
        assert_eq!(s.session_key.as_deref(), Some("k"));
    }

    #[test]
    fn item2_a_session_never_debug_prints_its_key() {
        let s = reply(r#"{"openid":"o1","session_key":"the-key"}"#).unwrap();
        let printed = format!("{s:?}");
        assert!(
            printed.contains("o1") && !printed.contains("the-key"),
            "{printed}"
        );
    }

    #[test]
    fn codes_with_odd_characters_are_refused_before_any_call() {
        assert!(check_code("abc-123_X").is_ok());
        assert_eq!(check_code("").unwrap_err().code(), "VALIDATION");
        assert_eq!(check_code("a b").unwrap_err().code(), "VALIDATION");
        assert_eq!(check_code("a&secret=x").unwrap_err().code(), "VALIDATION");
    }
}
