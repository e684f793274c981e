//! The real jscode2session client, against a local fake of WeChat's API.

use loyalty_tests::spawn_app_with;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LOGIN: &str = "mutation($code: String!) { login(code: $code) { accessToken member { id } } }";

async fn fake_wechat() -> MockServer {
    let server = MockServer::start().await;
    let reply = |code: &str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/sns/jscode2session"))
            .and(query_param("appid", "wx-test-app"))
            .and(query_param("secret", "wx-test-secret"))
            .and(query_param("grant_type", "authorization_code"))
            .and(query_param("js_code", code))
            // WeChat sends JSON as text/plain.
            .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_string(), "text/plain"))
    };
    reply(
        "good",
        json!({ "openid": "o-real-1", "session_key": "SECRET-SESSION-KEY", "unionid": "u-1" }),
    )
    .mount(&server)
    .await;
    reply("bad", json!({ "errcode": 40029, "errmsg": "invalid code" }))
        .mount(&server)
        .await;
    reply(
        "busy",
        json!({ "errcode": 45011, "errmsg": "api minute-quota reach limit" }),
    )
    .mount(&server)
    .await;
    reply("oops", json!({ "errcode": -1, "errmsg": "system error" }))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("js_code", "html"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_maps_every_wechat_answer() {
    let wechat = fake_wechat().await;
    let app = spawn_app_with(|env| {
        env.insert("WECHAT_APPID".into(), "wx-test-app".into());
        env.insert("WECHAT_SECRET".into(), "wx-test-secret".into());
        env.insert("WECHAT_API_BASE".into(), wechat.uri());
    })
    .await;

    let ok = app.gql(None, LOGIN, json!({ "code": "good" })).await;
    ok.data();
    assert!(!ok.body.to_string().contains("SECRET-SESSION-KEY"));
    let member_id: i64 = ok.data()["login"]["member"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = {
        use sea_orm::EntityTrait;
        entity::member::Entity::find_by_id(member_id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(stored.openid, "o-real-1");
    assert_eq!(stored.unionid.as_deref(), Some("u-1"));
    assert_eq!(
        stored.wechat_session_key.as_deref(),
        Some("SECRET-SESSION-KEY")
    );

    let bad = app.gql(None, LOGIN, json!({ "code": "bad" })).await;
    assert!(
        bad.expect_error("UNAUTHENTICATED")["message"]
            .as_str()
            .unwrap()
            .contains("wx.login")
    );
    let busy = app.gql(None, LOGIN, json!({ "code": "busy" })).await;
    assert!(
        busy.expect_error("RATE_LIMITED")["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    let oops = app.gql(None, LOGIN, json!({ "code": "oops" })).await;
    assert_eq!(oops.expect_error("INTERNAL")["message"], "internal error");
    assert!(
        !oops.body.to_string().contains("system error"),
        "WeChat's text stays in the log"
    );
    app.gql(None, LOGIN, json!({ "code": "html" }))
        .await
        .expect_error("INTERNAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_wechat_is_unavailable_and_creates_nobody() {
    // Hardening item 7: a dependency that is down says "retry later", not INTERNAL.
    let app = spawn_app_with(|env| {
        env.insert("WECHAT_APPID".into(), "wx-test-app".into());
        env.insert("WECHAT_SECRET".into(), "wx-test-secret".into());
        // Nothing listens on port 9 of loopback.
        env.insert("WECHAT_API_BASE".into(), "http://127.0.0.1:9".into());
    })
    .await;
    let answer = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Accept", "application/graphql-response+json")
        .json(&json!({ "query": LOGIN, "variables": { "code": "good" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(
        body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::member::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}
