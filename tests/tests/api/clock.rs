//! `X-Test-Now` moves the clock in APP_ENV=test only.

use api::auth::AdminRole;
use chrono::{DateTime, Duration, Utc};
use loyalty_tests::{spawn_app, spawn_app_with};
use serde_json::json;

const LOGIN: &str = "mutation { login(code: \"alice\") { expiresAt } }";

fn parse(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_sets_now_on_both_endpoints() {
    let app = spawn_app().await;
    app.create_admin("ops", AdminRole::Operator).await;
    app.at("2031-06-01T12:00:00+08:00");
    let member = app.gql(None, LOGIN, json!({})).await;
    assert_eq!(
        parse(&member.data()["login"]["expiresAt"]).to_rfc3339(),
        "2031-06-01T06:00:00+00:00"
    );
    let admin = app
        .admin_gql(
            None,
            "mutation { adminLogin(username: \"ops\", password: \"correct horse battery staple\") { expiresAt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        parse(&admin.data()["adminLogin"]["expiresAt"]).to_rfc3339(),
        "2031-06-01T06:00:00+00:00"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_is_ignored_outside_the_test_environment() {
    let app = spawn_app_with(|env| {
        env.insert("APP_ENV".into(), "development".into());
    })
    .await;
    app.at("2031-06-01T12:00:00+08:00");
    let answer = app.gql(None, LOGIN, json!({})).await;
    let expires = parse(&answer.data()["login"]["expiresAt"]);
    let expected = Utc::now() + Duration::hours(2);
    assert!(
        (expires - expected).num_seconds().abs() < 60,
        "{expires} is not about two hours from now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_test_clock_is_a_bad_request() {
    let app = spawn_app().await;
    app.at("next tuesday");
    let answer = app.gql(None, LOGIN, json!({})).await;
    assert_eq!(answer.status, 400);
    answer.expect_error("VALIDATION");
}
