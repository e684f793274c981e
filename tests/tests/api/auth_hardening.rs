//! The authentication items of the hardening issue (4, 9 and 10), one test or more per item,
//! named after it.

use loyalty_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

const ME: &str = "{ me { id } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken member { id } } }";

fn pair(answer: &loyalty_tests::Gql) -> (String, String) {
    let session = &answer.data()["refreshSession"];
    (
        session["accessToken"].as_str().unwrap().to_string(),
        session["refreshToken"].as_str().unwrap().to_string(),
    )
}

/// A second instance of the app on the same database and the same Redis (prefix included), as a
/// load balancer would run it.
struct Twin {
    address: String,
    client: reqwest::Client,
    stopper: api::startup::Stopper,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Twin {
    async fn start(app: &TestApp) -> Twin {
        let mut settings = (*app.state.settings).clone();
        settings.port = 0;
        let twin = api::startup::Application::build(settings)
            .await
            .expect("the twin starts");
        let address = format!("http://127.0.0.1:{}", twin.port());
        let stopper = twin.stopper();
        let running = Some(tokio::spawn(twin.run_until_stopped()));
        Twin {
            address,
            client: reqwest::Client::new(),
            stopper,
            running,
        }
    }

    async fn me(&self, token: &str) -> Value {
        self.client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .expect("the twin answers")
            .json()
            .await
            .expect("a JSON body")
    }

    async fn stop(mut self) {
        self.stopper.stop(false).await;
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
    }
}

// ------------------------------------------------------------------ item 10

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_parallel_refreshes_of_one_token_all_get_the_same_working_pair() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let attempts = (0..8).map(|_| app.gql(None, REFRESH, json!({ "t": member.refresh_token })));
    let answers = futures_util::future::join_all(attempts).await;
    let pairs: Vec<_> = answers.iter().map(pair).collect();
    assert!(
        pairs.iter().all(|p| *p == pairs[0]),
        "every racer gets the same successor pair: {pairs:?}"
    );
    let (access, refresh) = pairs[0].clone();
    assert_ne!(refresh, member.refresh_token);
    // The pair works: the session was not revoked by the race.
    app.gql(Some(&access), ME, json!({})).await.data();
    app.gql(None, REFRESH, json!({ "t": refresh })).await.data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_a_spent_token_replays_its_pair_within_the_grace_window_and_revokes_the_session_after_it()
 {
    let app = spawn_app().await;
    app.at("2030-01-01T00:00:00Z");
    let member = app.login("alice").await;
    app.at("2030-01-01T00:00:01Z");
    let first = pair(
        &app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
            .await,
    );
    app.at("2030-01-01T00:00:30Z");
    let replayed = pair(
        &app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
            .await,
    );
    assert_eq!(replayed, first, "within 30 s the same pair comes back");

    // Past the window a replay is reuse: the whole session ends, access tokens included.
    app.at("2030-01-01T00:00:32Z");
    app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(None, REFRESH, json!({ "t": first.1 }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&first.0), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&member.token), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_logout_ends_the_sessions_access_tokens_at_once() {
    let app = spawn_app().await;
    let phone = app.login("alice").await;
    let tablet = app.login("alice").await;
    phone.gql("mutation { logout }", json!({})).await.data();
    phone
        .gql(ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    phone
        .gql("mutation { logout }", json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    // Another sign-in of the same member is another session.
    tablet.gql(ME, json!({})).await.data();
    // A token refreshed a moment before the logout ends with it (grace replay included).
    let refreshed = pair(
        &app.gql(None, REFRESH, json!({ "t": tablet.refresh_token }))
            .await,
    );
    app.gql(Some(&refreshed.0), "mutation { logout }", json!({}))
        .await
        .data();
    app.gql(None, REFRESH, json!({ "t": tablet.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&refreshed.0), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_a_revoked_session_is_refused_by_every_instance() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let early = Twin::start(&app).await;
    early.me(&member.token).await["data"]["me"]["id"]
        .as_str()
        .expect("the twin knows the session");
    member.gql("mutation { logout }", json!({})).await.data();

    // An instance started after the logout (or restarted) knows it: from Redis, or from the
    // database without Redis.
    let late = Twin::start(&app).await;
    let refused = late.me(&member.token).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    // With Redis, an instance that was already running knows it at its next request. Without
    // Redis (one instance only) it would within 30 s.
    if std::env::var("REDIS_URL").is_ok() {
        let refused = early.me(&member.token).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{refused}"
        );
    }
    late.stop().await;
    early.stop().await;
}

// ------------------------------------------------------------------ item 9

const ADMIN_LOGIN: &str =
    "mutation($u: String!, $p: String!) { adminLogin(username: $u, password: $p) { accessToken } }";

/// `adminLogin` sent from the loopback address `from` (127.0.0.x: Linux routes all of
/// 127.0.0.0/8 to loopback), at the test time `at`.
async fn admin_login_from(
    app: &TestApp,
    from: [u8; 4],
    at: &str,
    username: &str,
    password: &str,
) -> loyalty_tests::Gql {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/admin/graphql", app.address))
        .header("X-Test-Now", at)
        .json(&json!({ "query": ADMIN_LOGIN, "variables": { "u": username, "p": password } }))
        .send()
        .await
        .expect("the app answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    loyalty_tests::Gql { status, body }
}

const T0: &str = "2030-01-01T00:00:00Z";
const HOME: [u8; 4] = [127, 0, 0, 1];
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_successful_logins_never_count_toward_a_lockout() {
    let app = spawn_app().await;
    app.create_admin("ops", api::auth::AdminRole::Operator)
        .await;
    for _ in 0..15 {
        admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
            .await
            .data();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_wrong_passwords_from_one_address_do_not_lock_the_admin_out_from_another() {
    let app = spawn_app().await;
    app.create_admin("ops", api::auth::AdminRole::Operator)
        .await;
    for attempt in 1..=12 {
        let answer = admin_login_from(&app, ATTACKER, T0, "ops", "guess").await;
        let expected = if attempt <= 5 {
            "UNAUTHENTICATED"
        } else {
            "RATE_LIMITED"
        };
        assert_eq!(answer.error_code(), Some(expected), "attempt {attempt}");
    }
    // The attacker's address is locked even for the right password; the admin's is not.
    admin_login_from(&app, ATTACKER, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .expect_error("RATE_LIMITED");
    admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_the_lockout_doubles_with_each_failure_past_the_fifth() {
    let app = spawn_app().await;
    app.create_admin("ops", api::auth::AdminRole::Operator)
        .await;
    let retry_after = |answer: &loyalty_tests::Gql| {
        answer.expect_error("RATE_LIMITED")["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
    };
    for _ in 0..5 {
        admin_login_from(&app, ATTACKER, T0, "ops", "guess")
            .await
            .expect_error("UNAUTHENTICATED");
    }
    let locked = admin_login_from(&app, ATTACKER, T0, "ops", "guess").await;
    assert_eq!(retry_after(&locked), 60);
    // The sixth failure locks for twice as long.
    let t60 = "2030-01-01T00:01:00Z";
    admin_login_from(&app, ATTACKER, t60, "ops", "guess")
        .await
        .expect_error("UNAUTHENTICATED");
    let locked = admin_login_from(&app, ATTACKER, t60, "ops", "guess").await;
    assert_eq!(retry_after(&locked), 120);
    let t179 = "2030-01-01T00:02:59Z";
    let locked = admin_login_from(&app, ATTACKER, t179, "ops", loyalty_tests::ADMIN_PASSWORD).await;
    assert_eq!(retry_after(&locked), 1);
    admin_login_from(
        &app,
        ATTACKER,
        "2030-01-01T00:03:00Z",
        "ops",
        loyalty_tests::ADMIN_PASSWORD,
    )
    .await
    .data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_a_superadmin_clears_a_lockout_and_it_is_audited() {
    let app = spawn_app().await;
    app.at(T0);
    app.create_admin("ops", api::auth::AdminRole::Operator)
        .await;
    let superadmin = app.admin(api::auth::AdminRole::Superadmin).await;
    let operator = app.admin(api::auth::AdminRole::Operator).await;
    // Ten failures for one username from three addresses, none of them locked on its own.
    for (from, times) in [
        ([127, 0, 0, 2], 4),
        ([127, 0, 0, 3], 4),
        ([127, 0, 0, 4], 2),
    ] {
        for _ in 0..times {
            admin_login_from(&app, from, T0, "ops", "guess")
                .await
                .expect_error("UNAUTHENTICATED");
        }
    }
    admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .expect_error("RATE_LIMITED");

    let clear = "mutation($u: String, $ip: String) { clearAdminLockout(username: $u, ip: $ip) }";
    operator
        .gql(clear, json!({ "u": "ops" }))
        .await
        .expect_error("FORBIDDEN");
    let cleared = superadmin.gql(clear, json!({ "u": "OPS " })).await;
    assert_eq!(cleared.data()["clearAdminLockout"], true);
    admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .data();
    // The count restarted: one more failure does not lock the username again.
    admin_login_from(&app, [127, 0, 0, 5], T0, "ops", "guess")
        .await
        .expect_error("UNAUTHENTICATED");
    admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .data();

    // An address, too.
    for _ in 0..6 {
        admin_login_from(&app, ATTACKER, T0, "nobody", "guess").await;
    }
    admin_login_from(&app, ATTACKER, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .expect_error("RATE_LIMITED");
    let cleared = superadmin.gql(clear, json!({ "ip": "127.0.0.2" })).await;
    assert_eq!(cleared.data()["clearAdminLockout"], true);
    admin_login_from(&app, ATTACKER, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .data();
    superadmin
        .gql(clear, json!({}))
        .await
        .expect_error("VALIDATION");

    let log = superadmin
        .gql(
            "{ auditLog(first: 50) { nodes { adminUsername action detail } } }",
            json!({}),
        )
        .await;
    let clears: Vec<&Value> = log.data()["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["action"] == "clearAdminLockout" && n["detail"]["outcome"] == "ok")
        .collect();
    assert_eq!(clears.len(), 2, "{log:?}");
    assert_eq!(clears[1]["detail"]["input"]["username"], "OPS ");
    assert!(
        clears[1]["adminUsername"]
            .as_str()
            .unwrap()
            .starts_with("superadmin")
    );
}

// ------------------------------------------------------------------ item 4

async fn audit_rows(app: &TestApp) -> Vec<entity::audit_log::Model> {
    use sea_orm::{EntityTrait, QueryOrder};
    entity::audit_log::Entity::find()
        .order_by_asc(entity::audit_log::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

fn unblacklist_many(n: usize) -> String {
    let fields: String = (0..n)
        .map(|i| format!("m{i}: unblacklistMember(memberId: \"1\", reason: \"x\") {{ id }} "))
        .collect();
    format!("mutation {{ {fields}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_an_unauthenticated_request_with_several_mutations_is_refused_before_anything_runs() {
    let app = spawn_app().await;
    app.login("alice").await;
    // 490 fields are over any operation's root-field limit; a few are over an anonymous caller's.
    for (fields, code) in [(490, "VALIDATION"), (5, "UNAUTHENTICATED")] {
        let flood = app
            .admin_gql(None, &unblacklist_many(fields), json!({}))
            .await;
        flood.expect_error(code);
        assert!(flood.body["data"].is_null(), "{}", flood.body);
        assert_eq!(
            flood.body["errors"].as_array().unwrap().len(),
            1,
            "one error for the request, not one per field"
        );
    }
    // Two logins in one request, with a token that is not valid either.
    let two_logins = r#"mutation { a: adminLogin(username: "ops", password: "one") { accessToken }
        b: adminLogin(username: "ops", password: "two") { accessToken } }"#;
    app.admin_gql(Some("not-a-token"), two_logins, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    // Fragments count too.
    let spread = r#"mutation { ...Both } fragment Both on Mutation {
        a: adminLogin(username: "ops", password: "one") { accessToken }
        b: adminLogin(username: "ops", password: "two") { accessToken } }"#;
    app.admin_gql(None, spread, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    assert_eq!(audit_rows(&app).await.len(), 0);

    // A signed-in admin may send several at once; each is audited.
    let superadmin = app.admin(api::auth::AdminRole::Superadmin).await;
    let before = audit_rows(&app).await.len();
    superadmin.gql(&unblacklist_many(2), json!({})).await.data();
    assert_eq!(audit_rows(&app).await.len(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_refused_calls_write_at_most_one_audit_row_per_caller_a_minute() {
    let app = spawn_app().await;
    app.at(T0);
    app.login("alice").await;
    let one = unblacklist_many(1);
    for _ in 0..20 {
        app.admin_gql(None, &one, json!({}))
            .await
            .expect_error("UNAUTHENTICATED");
        app.admin_gql(Some("not-a-token"), &one, json!({}))
            .await
            .expect_error("UNAUTHENTICATED");
    }
    let rows = audit_rows(&app).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].admin_username, "(anonymous)");
    assert_eq!(rows[0].admin_id, None);
    let detail: Value = serde_json::from_str(&rows[0].detail).unwrap();
    assert_eq!(detail["outcome"], "UNAUTHENTICATED");
    assert_eq!(detail["ip"], "127.0.0.1");

    // A signed-in admin refused by the role guard: one row a minute too, naming the admin.
    let auditor = app.admin(api::auth::AdminRole::Auditor).await;
    for _ in 0..20 {
        auditor.gql(&one, json!({})).await.expect_error("FORBIDDEN");
    }
    let rows = audit_rows(&app).await;
    let forbidden: Vec<_> = rows
        .iter()
        .filter(|r| r.detail.contains("FORBIDDEN"))
        .collect();
    assert_eq!(forbidden.len(), 1, "{rows:#?}");
    assert!(forbidden[0].admin_username.starts_with("auditor"));

    // The next minute gets its row.
    app.at("2030-01-01T00:01:00Z");
    app.admin_gql(None, &one, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    let anonymous = audit_rows(&app)
        .await
        .into_iter()
        .filter(|r| r.admin_username == "(anonymous)")
        .count();
    assert_eq!(anonymous, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_a_failed_admin_login_does_not_name_the_tried_username_as_the_actor() {
    let app = spawn_app().await;
    app.at(T0);
    app.create_admin("ops", api::auth::AdminRole::Operator)
        .await;
    admin_login_from(&app, ATTACKER, T0, "ops", "guess")
        .await
        .expect_error("UNAUTHENTICATED");
    admin_login_from(&app, HOME, T0, "ops", loyalty_tests::ADMIN_PASSWORD)
        .await
        .data();
    let rows = audit_rows(&app).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0].admin_username, "(anonymous)");
    assert_eq!(rows[0].admin_id, None);
    let failed: Value = serde_json::from_str(&rows[0].detail).unwrap();
    assert_eq!(failed["outcome"], "UNAUTHENTICATED");
    assert_eq!(failed["input"]["password"], "***");
    // The successful login names the admin who signed in.
    assert_eq!(rows[1].admin_username, "ops");
    assert!(rows[1].admin_id.is_some());
}
