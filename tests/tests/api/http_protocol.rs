//! GraphQL over HTTP: content types, status codes, GET, limits, GraphiQL and /health.

use api::auth::AdminRole;
use loyalty_tests::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn post_raw(
    app: &loyalty_tests::TestApp,
    content_type: &str,
    accept: Option<&str>,
    body: String,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", content_type)
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_type_follows_the_accept_header() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    let plain = post_raw(
        &app,
        "application/json",
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_eq!(plain.status(), 200);
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let modern = post_raw(
        &app,
        "application/json",
        Some("application/graphql-response+json"),
        body,
    )
    .await;
    assert_eq!(modern.status(), 200);
    assert!(
        modern.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    assert_eq!(
        modern.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_does_not_parse_is_400_for_graphql_response_json() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ me { " }).to_string();
    let modern = post_raw(
        &app,
        "application/json",
        Some("application/graphql-response+json"),
        body.clone(),
    )
    .await;
    assert_eq!(modern.status(), 400);
    let answer: Value = modern.json().await.unwrap();
    assert!(answer.get("data").is_none());
    assert_eq!(answer["errors"][0]["extensions"]["code"], "VALIDATION");
    // Legacy application/json clients get 200 with the same errors.
    let legacy = post_raw(&app, "application/json", None, body).await;
    assert_eq!(legacy.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_graphql_requests_are_refused() {
    let app = spawn_app().await;
    let not_json = post_raw(&app, "application/json", None, "{not json".into()).await;
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
    let wrong_type = post_raw(
        &app,
        "text/plain",
        None,
        json!({ "query": "{ __typename }" }).to_string(),
    )
    .await;
    assert_eq!(wrong_type.status(), 415);
    let batch = post_raw(
        &app,
        "application/json",
        None,
        json!([{ "query": "{ __typename }" }]).to_string(),
    )
    .await;
    assert_eq!(batch.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413() {
    let app = spawn_app_with(|env| {
        env.insert("GRAPHQL_MAX_BODY_BYTES".into(), "1024".into());
    })
    .await;
    let padding = " ".repeat(2048);
    let response = post_raw(
        &app,
        "application/json",
        None,
        json!({ "query": format!("{{ __typename {padding} }}") }).to_string(),
    )
    .await;
    assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_work_over_get_but_mutations_do_not() {
    let app = spawn_app().await;
    let query = app.get("/graphql?query=%7B__typename%7D").await;
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );
    let mutation = app
        .get("/graphql?query=mutation%7Blogin(code%3A%22x%22)%7BaccessToken%7D%7D")
        .await;
    assert_eq!(mutation.status(), 405);
    assert_eq!(mutation.headers()["allow"], "POST");
    let admin = app.get("/admin/graphql?query=mutation%7BadminLogin(username%3A%22a%22%2Cpassword%3A%22b%22)%7BaccessToken%7D%7D").await;
    assert_eq!(admin.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_served_outside_production_and_can_be_switched_off() {
    let app = spawn_app().await;
    let browse = |app: &loyalty_tests::TestApp, path: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("Accept", "text/html")
            .send()
    };
    let page = browse(&app, "/graphql").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("playground")
    );
    assert_eq!(browse(&app, "/admin/graphql").await.unwrap().status(), 200);
    let off = spawn_app_with(|env| {
        env.insert("GRAPHIQL".into(), "false".into());
        env.insert("INTROSPECTION".into(), "false".into());
    })
    .await;
    assert_eq!(browse(&off, "/graphql").await.unwrap().status(), 400);
    let introspect = off
        .gql(None, "{ __schema { types { name } } }", json!({}))
        .await;
    assert_eq!(
        introspect.body["data"]["__schema"],
        Value::Null,
        "{}",
        introspect.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_aliases_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let aliases: String = (0..2000).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let answer = alice.gql(&format!("{{ {aliases} }}"), json!({})).await;
    let error = answer.expect_error("VALIDATION");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("root fields"),
        "{error}"
    );
    assert!(answer.body.get("data").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_schema_is_invisible_from_the_member_endpoint() {
    let app = spawn_app().await;
    let answer = app
        .gql(
            None,
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let text = answer.data().to_string();
    assert!(text.contains("\"me\""));
    for admin_field in ["adminMe", "adminLogin", "auditLog"] {
        assert!(
            !text.contains(admin_field),
            "{admin_field} leaked into the member schema"
        );
    }
    app.gql(None, "{ auditLog { nodes { id } } }", json!({}))
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_database_and_redis() {
    let app = spawn_app().await;
    let ok = app.get("/health").await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let expected_redis = if std::env::var("REDIS_URL").is_ok() {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(body["redis"], expected_redis);

    app.state.db.clone().close().await.unwrap();
    let down = app.get("/health").await;
    assert_eq!(down.status(), 503);
    assert_eq!(down.json::<Value>().await.unwrap()["database"], "down");
}

/// The benchmark's bare baseline (`/bench/bare-checkin`) runs the check-in's three statements in
/// the test environment, once per member-day, and does not exist anywhere else. Its ledger row
/// keeps the ledger audit whole (a benchmark run once failed the audit: the row said balance 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_baseline_route_exists_only_under_app_env_test() {
    let app = spawn_app().await;
    let member = app.login("ann").await;
    let id: i64 = member.id.parse().unwrap();
    let admin = app.admin(AdminRole::Superadmin).await;
    admin
        .gql(
            "mutation($m: ID!) { adjustPoints(memberId: $m, delta: 120, reason: \"t\", idempotencyKey: \"bare-1\") { id } }",
            json!({ "m": member.id }),
        )
        .await
        .data();
    let post = |app: &TestApp| {
        app.client
            .post(format!("{}/bench/bare-checkin", app.address))
            .json(&json!({ "member": id, "day": "2026-05-01" }))
            .send()
    };
    let first: Value = post(&app).await.unwrap().json().await.unwrap();
    assert_eq!(first["data"]["ok"], true, "{first}");
    let again: Value = post(&app).await.unwrap().json().await.unwrap();
    assert_eq!(again["errors"][0]["extensions"]["code"], "ALREADY_DONE");
    let audit = admin
        .gql("{ ledgerAudit { ok violations } }", json!({}))
        .await;
    let audit = audit.data();
    assert_eq!(audit["ledgerAudit"]["ok"], true, "{audit}");

    let development = spawn_app_with(|env| {
        env.insert("APP_ENV".into(), "development".into());
    })
    .await;
    assert_eq!(post(&development).await.unwrap().status().as_u16(), 404);
}
