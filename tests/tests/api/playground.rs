//! The playground: GraphiQL built into playground/dist and served from the binary, with a
//! strict CSP and nothing from another origin; off in production unless GRAPHIQL=true.
//! (playground/e2e/ drives it in a real browser.)

use std::collections::HashMap;

use loyalty_tests::{TestApp, spawn_app, spawn_app_with};
use serde_json::Value;

async fn get_html(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("the app answers")
}

/// The value of `attribute` on each tag of the page that has it, in order.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The settings the server filled into `<meta name="app-config">`.
fn page_config(html: &str) -> Value {
    let start = html
        .find(r#"<meta name="app-config" content=""#)
        .expect("the page has its config meta tag");
    let content = attribute_values(&html[start..], "content")
        .into_iter()
        .next()
        .unwrap();
    serde_json::from_str(&content.replace("&quot;", "\"").replace("&amp;", "&"))
        .expect("the config is JSON")
}

/// The playground's own assets that the page loads.
fn asset_paths(html: &str) -> Vec<String> {
    let mut paths = attribute_values(html, "src");
    paths.extend(attribute_values(html, "href"));
    paths
}

/// Settings production accepts, on the test's database; Redis is the one the tests use.
fn production(env: &mut HashMap<String, String>) {
    env.insert("APP_ENV".into(), "production".into());
    // Production wants a secret with some entropy, which the tests' default has not.
    env.insert(
        "JWT_SECRET".into(),
        "Kq3vZ8pW1xR7mN2bT5yH9cJ4fL6dS0gA-prod-test".into(),
    );
    env.insert("SQLITE_IN_PRODUCTION".into(), "true".into());
    env.insert("WECHAT_APPID".into(), "wx-test".into());
    env.insert("WECHAT_SECRET".into(), "test-secret".into());
    env.insert("WECHAT_API_BASE".into(), "http://127.0.0.1:9".into());
    if !env.contains_key("REDIS_URL") {
        env.insert("REDIS_URL".into(), "redis://127.0.0.1:6379/".into());
        env.insert(
            "REDIS_KEY_PREFIX".into(),
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_page_comes_from_the_server_with_a_strict_csp_and_no_third_party_origin() {
    let app = spawn_app().await;
    for (path, endpoint, sign_in_as) in [
        ("/graphql", "member", true),
        ("/admin/graphql", "admin", false),
    ] {
        let page = get_html(&app, path).await;
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(
            page.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp} lacks {directive}");
        }
        assert!(
            !csp.contains("http") && !csp.contains('*') && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("//unpkg"),
            "{path} names another origin: {html}"
        );
        assert!(!html.contains("<script>"), "{path} has an inline script");
        let assets = asset_paths(&html);
        assert!(
            assets.iter().any(|a| a.ends_with(".js")),
            "{path} loads no script: {html}"
        );
        for asset in &assets {
            assert!(asset.starts_with("/playground/"), "{path} loads {asset}");
        }
        let config = page_config(&html);
        assert_eq!(config["endpoint"], endpoint, "{config}");
        assert_eq!(config["url"], path, "{config}");
        assert_eq!(config["signInAs"], sign_in_as, "{config}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playgrounds_assets_are_served_with_their_content_types_and_cached_for_good() {
    let app = spawn_app().await;
    let html = get_html(&app, "/graphql").await.text().await.unwrap();
    let assets = asset_paths(&html);
    let script = assets.iter().find(|a| a.ends_with(".js")).unwrap();
    let style = assets.iter().find(|a| a.ends_with(".css")).unwrap();
    for (path, content_type) in [
        (script, "text/javascript; charset=utf-8"),
        (style, "text/css; charset=utf-8"),
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["content-type"], content_type, "{path}");
        assert_eq!(
            answer.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert!(answer.headers().contains_key("content-security-policy"));
        assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
        assert!(!answer.bytes().await.unwrap().is_empty(), "{path}");
    }
    let icon = app.get("/playground/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert_eq!(icon.headers()["cache-control"], "no-cache");
    let etag = icon.headers()["etag"].clone();
    let again = app
        .client
        .get(format!("{}/playground/favicon.svg", app.address))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    assert_eq!(
        app.get("/playground/assets/nothing-here.js").await.status(),
        404
    );
    // The page only comes with its settings, from an endpoint.
    assert_eq!(app.get("/playground/index.html").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_clients_that_get_an_endpoint_without_a_query_get_an_error_not_the_page() {
    let app = spawn_app().await;
    let answer = app.get("/graphql").await;
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_graphiql_answers_no_page_and_no_assets() {
    let served = spawn_app().await;
    let html = get_html(&served, "/graphql").await.text().await.unwrap();
    let script = asset_paths(&html)
        .into_iter()
        .find(|a| a.ends_with(".js"))
        .unwrap();

    let app = spawn_app_with(production).await;
    for path in ["/graphql", "/admin/graphql"] {
        let answer = get_html(&app, path).await;
        assert_eq!(answer.status(), 400, "{path}");
        let text = answer.text().await.unwrap();
        assert!(!text.contains("<html"), "{path}: {text}");
    }
    assert_eq!(app.get(&script).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_with_graphiql_true_serves_the_page_without_sign_in_as() {
    let app = spawn_app_with(|env| {
        production(env);
        env.insert("GRAPHIQL".into(), "true".into());
    })
    .await;
    let page = get_html(&app, "/graphql").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(page_config(&html)["signInAs"], false);
    let script = asset_paths(&html)
        .into_iter()
        .find(|a| a.ends_with(".js"))
        .unwrap();
    assert_eq!(app.get(&script).await.status(), 200);
}
