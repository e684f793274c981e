//! Web front ends built with npm and committed as a `dist/` folder, embedded in the binary with
//! rust-embed, so the server needs neither Node.js nor a CDN. Serves a folder's files with their
//! content types, a strict CSP and cache headers, and its HTML pages with settings filled in.

use std::borrow::Cow;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

/// The CSP of every page and asset served from an embedded folder. Everything comes from the
/// server's own origin: no inline or eval'd script, no third-party origin. Inline styles are
/// allowed because the editor (Monaco) writes its theme and decorations into `<style>` elements
/// at run time; styles cannot run code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     worker-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     font-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Where a page finds its settings: `<meta name="app-config" content="...">`, filled by the
/// server. A meta tag rather than an inline script, which the CSP forbids.
const CONFIG_META: &str = r#"<meta name="app-config" content="{}" />"#;

/// The content type of an embedded file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a file's name carries a hash of its content (Vite's `assets/name-HASH.ext`): such a
/// file never changes under its name, so browsers may keep it for good.
pub fn is_content_hashed(path: &str) -> bool {
    let Some(file) = path.strip_prefix("assets/") else {
        return false;
    };
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    // Vite's hash is 8 characters of base64url, which may themselves hold '-' or '_'.
    let Some(split) = stem.len().checked_sub(HASH_LEN + 1) else {
        return false;
    };
    let (Some(name), Some(hash)) = (stem.get(..split), stem.get(split..)) else {
        return false;
    };
    !name.is_empty()
        && hash.starts_with('-')
        && hash[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Length of the content hash in Vite's asset names (its default).
const HASH_LEN: usize = 8;

/// The Cache-Control header for an embedded file.
pub fn cache_control(path: &str) -> &'static str {
    if is_content_hashed(path) {
        "public, max-age=31536000, immutable"
    } else {
        // Revalidated every time (cheap: the ETag answers 304).
        "no-cache"
    }
}

/// `html` with `config` (serialised JSON) in its `app-config` meta tag, escaped for an
/// attribute; `None` when the page has no such tag.
pub fn with_config(html: &str, config: &serde_json::Value) -> Option<String> {
    if !html.contains(CONFIG_META) {
        return None;
    }
    let json = config.to_string();
    let mut escaped = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    Some(html.replacen(
        CONFIG_META,
        &format!(r#"<meta name="app-config" content="{escaped}" />"#),
        1,
    ))
}

/// Headers every answer from an embedded folder carries.
fn secured(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found")
}

/// The file at `path` (relative to the folder) from the embedded folder `Dist`, or 404.
pub fn asset<Dist: RustEmbed>(req: &HttpRequest, path: &str) -> HttpResponse {
    let Some(file) = Dist::get(path) else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let cached = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache_control(path)))
        .insert_header((header::ETAG, etag));
    let response = if cached {
        response.finish()
    } else {
        response
            .content_type(content_type(path))
            .body(match file.data {
                Cow::Borrowed(bytes) => actix_web::body::BoxBody::new(bytes),
                Cow::Owned(bytes) => actix_web::body::BoxBody::new(bytes),
            })
    };
    secured(response)
}

/// The HTML page at `path` from the embedded folder `Dist`, with `config` in its `app-config`
/// meta tag. Never cached: the settings can differ between requests and servers.
pub fn page<Dist: RustEmbed>(path: &str, config: &serde_json::Value) -> HttpResponse {
    let page = Dist::get(path)
        .and_then(|file| String::from_utf8(file.data.into_owned()).ok())
        .and_then(|html| with_config(&html, config));
    match page {
        Some(html) => secured(
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(html),
        ),
        None => {
            tracing::error!(
                path,
                "an embedded page is missing or has no app-config meta tag"
            );
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("the page is missing from this build")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type("assets/index-B7VBVN9o.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-C1wxTApS.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("assets/codicon-DCmgc-ay.ttf"), "font/ttf");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("index.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn hashed_assets_are_kept_for_good_and_the_rest_revalidated() {
        assert!(is_content_hashed("assets/index-B7VBVN9o.js"));
        assert!(is_content_hashed("assets/editor.worker-KabINPEd.js"));
        assert!(is_content_hashed("assets/codicon-DCmgc-ay.ttf"));
        assert!(!is_content_hashed("favicon.svg"));
        assert!(!is_content_hashed("assets/logo.svg"));
        assert!(
            !is_content_hashed("index-B7VBVN9o.js"),
            "only Vite's assets/ folder"
        );
        assert_eq!(cache_control("favicon.svg"), "no-cache");
        assert!(cache_control("assets/index-B7VBVN9o.js").contains("immutable"));
    }

    #[test]
    fn the_config_is_filled_in_escaped_for_an_attribute() {
        let html = r#"<head><meta name="app-config" content="{}" /></head>"#;
        let page = with_config(html, &json!({ "title": "a \"b\" <c> & 'd'" })).unwrap();
        assert_eq!(
            page,
            r#"<head><meta name="app-config" content="{&quot;title&quot;:&quot;a \&quot;b\&quot; &lt;c&gt; &amp; &#39;d&#39;&quot;}" /></head>"#
        );
        assert_eq!(with_config("<head></head>", &json!({})), None);
    }

    #[test]
    fn the_policy_allows_only_the_servers_own_origin() {
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
        let script = CONTENT_SECURITY_POLICY
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert_eq!(script.trim(), "script-src 'self'");
    }

    #[test]
    fn the_readme_states_the_policy_that_is_sent() {
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words(include_str!("../../README.md")).contains(&words(CONTENT_SECURITY_POLICY)),
            "README.md's Playground section shows another CSP than web_assets.rs sends"
        );
    }
}
