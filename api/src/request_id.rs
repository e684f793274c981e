//! Request ids: every request gets one, the client's `X-Request-Id` if it sent a usable one (a
//! gateway's or the mini-program's own), a new one otherwise. It comes back in the response's
//! `X-Request-Id` header and in every GraphQL error's `extensions.requestId`, and it is a field of
//! the request's span, so every log line of the request and its exported trace carry it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The id of the request being served.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The id for a request that sent `sent`: kept if it is 1 to 128 characters from the set ids
/// are written in (letters, digits, `-_.:/+=`), replaced by a new one otherwise, so a client
/// cannot write arbitrary text into logs and traces.
pub fn accept_or_create(sent: Option<&str>) -> String {
    match sent.map(str::trim) {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:/+=".contains(c)) =>
        {
            id.to_string()
        }
        _ => crate::auth::rules::random_hex(16),
    }
}

/// The id `middleware` gave this request (an empty string if it did not run, as in unit tests).
pub fn of(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default()
}

/// Gives the request its id and its span (`http request`, with the id, method and path; the
/// member and operation are recorded on it once known), and puts the id on the response.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = accept_or_create(req.headers().get(HEADER).and_then(|v| v.to_str().ok()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "http request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        member_id = tracing::field::Empty,
        operation = tracing::field::Empty,
    );
    let mut response = next.call(req).instrument(span).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_id_is_kept_when_it_is_an_id_and_replaced_otherwise() {
        assert_eq!(accept_or_create(Some("abc-123_x.y:z")), "abc-123_x.y:z");
        assert_eq!(
            accept_or_create(Some("0af7651916cd43dd8448eb211c80319c")),
            "0af7651916cd43dd8448eb211c80319c"
        );
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("line\nbreak"),
            Some("<script>"),
        ] {
            let made = accept_or_create(bad);
            assert_eq!(made.len(), 32, "{bad:?}");
            assert!(made.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_eq!(accept_or_create(Some(&"a".repeat(129))).len(), 32);
    }
}
