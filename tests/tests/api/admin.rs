//! Operator sign-in, roles, and the audit log.

use api::auth::AdminRole;
use loyalty_tests::{ADMIN_PASSWORD, spawn_app, spawn_app_with};
use serde_json::json;

const ADMIN_LOGIN: &str = "mutation($u: String!, $p: String!) { adminLogin(username: $u, password: $p) { accessToken expiresAt admin { username role } } }";
const AUDIT_LOG: &str =
    "{ auditLog(first: 50) { nodes { adminUsername action detail } pageInfo { hasNextPage } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_with_the_right_password_only() {
    let app = spawn_app().await;
    app.create_admin("ops", AdminRole::Operator).await;
    let ok = app
        .admin_gql(
            None,
            ADMIN_LOGIN,
            json!({ "u": "ops", "p": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(ok.data()["adminLogin"]["admin"]["role"], "OPERATOR");
    let token = ok.data()["adminLogin"]["accessToken"].as_str().unwrap();
    let me = app
        .admin_gql(Some(token), "{ adminMe { username role } }", json!({}))
        .await;
    assert_eq!(me.data()["adminMe"]["username"], "ops");

    app.admin_gql(
        None,
        ADMIN_LOGIN,
        json!({ "u": "ops", "p": "wrong password!" }),
    )
    .await
    .expect_error("UNAUTHENTICATED");
    let unknown = app
        .admin_gql(
            None,
            ADMIN_LOGIN,
            json!({ "u": "nobody", "p": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(
        unknown.expect_error("UNAUTHENTICATED")["message"],
        "wrong username or password",
        "an unknown username reads the same as a wrong password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_admin_is_created_only_when_there_is_no_admin() {
    let app = spawn_app_with(|env| {
        env.insert(
            "ADMIN_BOOTSTRAP_PASSWORD".into(),
            "bootstrap-password-1".into(),
        );
    })
    .await;
    let ok = app
        .admin_gql(
            None,
            ADMIN_LOGIN,
            json!({ "u": "admin", "p": "bootstrap-password-1" }),
        )
        .await;
    assert_eq!(ok.data()["adminLogin"]["admin"]["role"], "SUPERADMIN");
    // A second start with another bootstrap password changes nothing.
    let again = api::auth::bootstrap_admin(
        &app.state.db,
        Some(&secrecy::SecretString::from("another-password-2")),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(!again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_admin_fields() {
    let app = spawn_app().await;
    let auditor = app.admin(AdminRole::Auditor).await;
    let integration = app.admin(AdminRole::Integration).await;
    let superadmin = app.admin(AdminRole::Superadmin).await;
    auditor.gql(AUDIT_LOG, json!({})).await.data();
    superadmin.gql(AUDIT_LOG, json!({})).await.data();
    integration
        .gql(AUDIT_LOG, json!({}))
        .await
        .expect_error("FORBIDDEN");
    // Every role may ask who it is.
    let me = integration.gql("{ adminMe { role } }", json!({})).await;
    assert_eq!(me.data()["adminMe"]["role"], "INTEGRATION");
    app.admin_gql(None, AUDIT_LOG, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_admin_loses_access_at_once() {
    use entity::admin_user;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    let gone = app.admin(AdminRole::Operator).await;
    gone.gql("{ adminMe { id } }", json!({})).await.data();
    admin_user::Entity::delete_many()
        .filter(admin_user::Column::Role.eq("OPERATOR"))
        .exec(&app.state.db)
        .await
        .unwrap();
    gone.gql("{ adminMe { id } }", json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_mutation_is_audited_without_secrets() {
    let app = spawn_app().await;
    app.create_admin("ops", AdminRole::Operator).await;
    app.admin_gql(
        None,
        ADMIN_LOGIN,
        json!({ "u": "ops", "p": ADMIN_PASSWORD }),
    )
    .await
    .data();
    app.admin_gql(
        None,
        ADMIN_LOGIN,
        json!({ "u": "ops", "p": "not the password" }),
    )
    .await
    .expect_error("UNAUTHENTICATED");
    let auditor = app.admin(AdminRole::Auditor).await;
    let log = auditor.gql(AUDIT_LOG, json!({})).await;
    let nodes = log.data()["auditLog"]["nodes"].as_array().unwrap().clone();
    let ops: Vec<_> = nodes
        .iter()
        .filter(|n| n["detail"]["input"]["username"] == "ops")
        .collect();
    assert_eq!(ops.len(), 2, "{nodes:?}");
    // Newest first: the failed attempt, then the successful one. A failed attempt names no
    // actor: the username was the caller's choice (see auth_hardening, item 4).
    assert_eq!(ops[0]["action"], "adminLogin");
    assert_eq!(ops[0]["adminUsername"], "(anonymous)");
    assert_eq!(ops[0]["detail"]["outcome"], "UNAUTHENTICATED");
    assert_eq!(ops[1]["adminUsername"], "ops");
    assert_eq!(ops[1]["detail"]["outcome"], "ok");
    assert_eq!(ops[1]["detail"]["input"]["username"], "ops");
    assert_eq!(ops[1]["detail"]["input"]["password"], "***");
    assert!(!log.body.to_string().contains(ADMIN_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_login_is_rate_limited_per_username() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_ADMIN_LOGIN_USERNAME".into(), "3/15m".into());
    })
    .await;
    app.create_admin("ops", AdminRole::Operator).await;
    app.at("2030-01-01T00:00:00Z");
    for _ in 0..3 {
        app.admin_gql(None, ADMIN_LOGIN, json!({ "u": "ops", "p": "guess" }))
            .await
            .expect_error("UNAUTHENTICATED");
    }
    // Even the right password is refused until the window passes.
    app.admin_gql(
        None,
        ADMIN_LOGIN,
        json!({ "u": "ops", "p": ADMIN_PASSWORD }),
    )
    .await
    .expect_error("RATE_LIMITED");
    app.at("2030-01-01T00:15:00Z");
    app.admin_gql(
        None,
        ADMIN_LOGIN,
        json!({ "u": "ops", "p": ADMIN_PASSWORD }),
    )
    .await
    .data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_pages_through_with_cursors() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let admin = app.admin(AdminRole::Superadmin).await;
    for _ in 0..5 {
        admin
            .gql(
                "mutation($m: ID!) { unblacklistMember(memberId: $m, reason: \"x\") { id } }",
                json!({ "m": member.id }),
            )
            .await
            .data();
    }
    let page = "query($after: String) { auditLog(first: 2, after: $after) { nodes { action } pageInfo { hasNextPage endCursor } } }";
    let mut seen = 0;
    let mut after = serde_json::Value::Null;
    loop {
        let answer = admin.gql(page, json!({ "after": after })).await;
        let log = &answer.data()["auditLog"];
        seen += log["nodes"].as_array().unwrap().len();
        if !log["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = log["pageInfo"]["endCursor"].clone();
    }
    // Five mutations plus the superadmin's own login.
    assert_eq!(seen, 6);
    let too_big = admin
        .gql("{ auditLog(first: 101) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        too_big.expect_error("VALIDATION")["extensions"]["field"],
        "first"
    );
    admin
        .gql("{ auditLog(after: \"bogus\") { nodes { id } } }", json!({}))
        .await
        .expect_error("VALIDATION");
}
