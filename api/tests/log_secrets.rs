//! Item 2 of the hardening issue: no log line, at any level, carries the WeChat app secret, the
//! JWT secret, a password, a refresh token or a `session_key`. These tests run the real `api`
//! binary with `RUST_LOG=trace`, read everything it prints, and look for each secret.

use std::net::TcpListener;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_ID: &str = "wx-log-test-app";
const APP_SECRET: &str = "wx-app-secret-7f3a9c51";
const JWT_SECRET: &str = "jwt-secret-of-the-log-test-0123456789abcdef";
const BOOTSTRAP_PASSWORD: &str = "bootstrap-password-9d2e41";
const WRONG_PASSWORD: &str = "wrong-password-4b1c77";
const SESSION_KEY: &str = "wx-session-key-5e8d03";

mod common;

use common::Server;

/// The server for these tests: every level logged, WeChat at `wechat_base`.
fn start(wechat_base: &str) -> Server {
    Server::start(&[
        ("RUST_LOG", "trace"),
        ("JWT_SECRET", JWT_SECRET),
        ("WECHAT_APPID", APP_ID),
        ("WECHAT_SECRET", APP_SECRET),
        ("WECHAT_API_BASE", wechat_base),
        ("ADMIN_BOOTSTRAP_PASSWORD", BOOTSTRAP_PASSWORD),
    ])
}

/// Fails naming every line that holds one of `secrets`.
fn assert_no_secret(lines: &[String], secrets: &[(&str, String)]) {
    let leaks: Vec<String> = lines
        .iter()
        .flat_map(|line| {
            secrets
                .iter()
                .filter(|(_, secret)| line.contains(secret.as_str()))
                .map(move |(what, _)| format!("{what} in: {line}"))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "secrets in the log:\n{}",
        leaks.join("\n")
    );
}

fn fixed_secrets() -> Vec<(&'static str, String)> {
    vec![
        ("the WeChat app secret", APP_SECRET.to_string()),
        ("the JWT secret", JWT_SECRET.to_string()),
        ("the bootstrap password", BOOTSTRAP_PASSWORD.to_string()),
        ("a wrong password", WRONG_PASSWORD.to_string()),
        ("the session_key", SESSION_KEY.to_string()),
    ]
}

const LOGIN: &str = "mutation($code: String!) { login(code: $code) { accessToken refreshToken } }";

/// A WeChat failure still answers the client with a code, and the server logs it.
async fn login_fails_with_a_code(server: &Server) {
    let answer = server
        .post("/graphql", None, LOGIN, json!({ "code": "good" }))
        .await;
    let code = answer["errors"][0]["extensions"]["code"].as_str();
    assert!(matches!(code, Some("INTERNAL" | "UNAVAILABLE")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item2_an_unreachable_wechat_does_not_put_the_app_secret_in_the_log() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = start(&format!("http://127.0.0.1:{closed_port}"));
    login_fails_with_a_code(&server).await;
    let lines = server.stop();
    assert!(
        lines.iter().any(|l| l.contains("jscode2session")),
        "the failure is logged: {lines:#?}"
    );
    assert_no_secret(&lines, &fixed_secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item2_a_wechat_that_never_answers_does_not_put_the_app_secret_in_the_log() {
    // Accepts every connection and never writes a byte.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    let server = start(&format!("http://127.0.0.1:{port}"));
    login_fails_with_a_code(&server).await;
    let lines = server.stop();
    assert!(
        lines.iter().any(|l| l.contains("jscode2session")),
        "the failure is logged: {lines:#?}"
    );
    assert_no_secret(&lines, &fixed_secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item2_login_refresh_logout_and_admin_login_log_no_secret() {
    let wechat = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .and(query_param("appid", APP_ID))
        .and(query_param("secret", APP_SECRET))
        .and(query_param("js_code", "good"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            json!({ "openid": "o-log-1", "session_key": SESSION_KEY }).to_string(),
            "text/plain",
        ))
        .mount(&wechat)
        .await;
    // An answer WeChat might give that is not JSON.
    Mock::given(method("GET"))
        .and(query_param("js_code", "html"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&wechat)
        .await;
    let server = start(&wechat.uri());
    let mut secrets = fixed_secrets();

    let login = server
        .post("/graphql", None, LOGIN, json!({ "code": "good" }))
        .await;
    let first_refresh = login["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_string();
    secrets.push(("the first refresh token", first_refresh.clone()));
    let refreshed = server
        .post(
            "/graphql",
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }",
            json!({ "t": first_refresh }),
        )
        .await;
    let session = &refreshed["data"]["refreshSession"];
    let access = session["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"))
        .to_string();
    secrets.push((
        "the second refresh token",
        session["refreshToken"].as_str().unwrap().to_string(),
    ));
    secrets.push(("an access token", access.clone()));
    let logout = server
        .post("/graphql", Some(&access), "mutation { logout }", json!({}))
        .await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    // A WeChat answer that is not JSON is logged too.
    server
        .post("/graphql", None, LOGIN, json!({ "code": "html" }))
        .await;

    let admin_login = "mutation($u: String!, $p: String!) { adminLogin(username: $u, password: $p) { accessToken } }";
    let wrong = server
        .post(
            "/admin/graphql",
            None,
            admin_login,
            json!({ "u": "admin", "p": WRONG_PASSWORD }),
        )
        .await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{wrong}"
    );
    let admin = server
        .post(
            "/admin/graphql",
            None,
            admin_login,
            json!({ "u": "admin", "p": BOOTSTRAP_PASSWORD }),
        )
        .await;
    let admin_token = admin["data"]["adminLogin"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{admin}"))
        .to_string();
    secrets.push(("the admin's access token", admin_token.clone()));
    server
        .post(
            "/admin/graphql",
            Some(&admin_token),
            "{ auditLog { nodes { action detail } } }",
            json!({}),
        )
        .await;
    // A client that sends the password in a URL is refused, and the URL is not logged either.
    let over_get = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/admin/graphql", server.port))
        .query(&[(
            "query",
            format!("mutation {{ adminLogin(username: \"admin\", password: \"{WRONG_PASSWORD}\") {{ accessToken }} }}"),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(over_get.status(), 405);

    let lines = server.stop();
    assert!(
        lines.iter().any(|l| l.contains("jscode2session")),
        "the non-JSON answer is logged: {lines:#?}"
    );
    assert_no_secret(&lines, &secrets);
}
