//! The anti-cheat gate over HTTP: captcha on soft limits, hard limits, the blacklist, risk
//! events, and what happens when Redis goes away.

use api::anticheat::{Action, Subject, gate};
use api::auth::AdminRole;
use loyalty_tests::{Gql, TestApp, TestMember, spawn_app, spawn_app_with};
use serde_json::json;

use crate::points::{adjust, assert_audit_ok, points_of};

const TRANSFER: &str = "mutation($to: String!, $n: Int!, $k: String!) {
    transferPoints(toMemberNo: $to, amount: $n, idempotencyKey: $k) { id } }";
const LOGIN: &str = "mutation { login(code: \"alice\") { accessToken } }";
const SOLVE: &str =
    "mutation($id: ID!, $a: String!) { solveCaptcha(challengeId: $id, answer: $a) }";

async fn transfer_from_device(
    app: &loyalty_tests::TestApp,
    from: &TestMember<'_>,
    to: &str,
    key: &str,
) -> loyalty_tests::Gql {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&from.token)
        .header("X-Device-Id", "phone-1")
        .json(&json!({ "query": TRANSFER, "variables": { "to": to, "n": 1, "k": key } }))
        .send()
        .await
        .unwrap();
    loyalty_tests::Gql {
        status: response.status().as_u16(),
        body: response.json().await.unwrap(),
    }
}

/// A member request with extra headers (Accept, X-Forwarded-For, X-Device-Id, X-Test-Now), and
/// the Retry-After header of the answer.
async fn send_with(
    app: &TestApp,
    token: Option<&str>,
    headers: &[(&str, &str)],
    query: &str,
    variables: serde_json::Value,
) -> (Gql, Option<String>) {
    let mut request = app.client.post(format!("{}/graphql", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let gql = Gql {
        status: response.status().as_u16(),
        body: response.json().await.unwrap(),
    };
    (gql, retry_after)
}

/// "What is 7 + 5?" -> "12"
fn solve(prompt: &str) -> String {
    let numbers: Vec<i64> = prompt
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers.iter().sum::<i64>().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_device_asks_for_a_captcha_that_lets_one_retry_through() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_TRANSFER_DEVICE".into(), "2/1h".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    transfer_from_device(&app, &alice, &bob.member_no, "t1")
        .await
        .data();
    transfer_from_device(&app, &alice, &bob.member_no, "t2")
        .await
        .data();
    let asked = transfer_from_device(&app, &alice, &bob.member_no, "t3").await;
    let ext = asked.expect_error("CAPTCHA_REQUIRED")["extensions"].clone();
    let (challenge, prompt) = (
        ext["challengeId"].as_str().unwrap(),
        ext["prompt"].as_str().unwrap(),
    );
    assert!(prompt.starts_with("What is "), "{prompt}");

    // Another member cannot answer it; a wrong answer is false.
    bob.gql(SOLVE, json!({ "id": challenge, "a": solve(prompt) }))
        .await
        .expect_error("NOT_FOUND");
    let wrong = alice
        .gql(SOLVE, json!({ "id": challenge, "a": "-1" }))
        .await;
    assert_eq!(wrong.data()["solveCaptcha"], false);
    let right = alice
        .gql(SOLVE, json!({ "id": challenge, "a": solve(prompt) }))
        .await;
    assert_eq!(right.data()["solveCaptcha"], true);
    // A solved challenge is spent.
    alice
        .gql(SOLVE, json!({ "id": challenge, "a": solve(prompt) }))
        .await
        .expect_error("NOT_FOUND");

    transfer_from_device(&app, &alice, &bob.member_no, "t3")
        .await
        .data();
    transfer_from_device(&app, &alice, &bob.member_no, "t4")
        .await
        .expect_error("CAPTCHA_REQUIRED");
    assert_eq!(points_of(&bob).await.0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_allows_three_answers() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_TRANSFER_DEVICE".into(), "1/1h".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    transfer_from_device(&app, &alice, &bob.member_no, "t1")
        .await
        .data();
    let asked = transfer_from_device(&app, &alice, &bob.member_no, "t2").await;
    let ext = asked.expect_error("CAPTCHA_REQUIRED")["extensions"].clone();
    let challenge = ext["challengeId"].as_str().unwrap();
    for _ in 0..3 {
        let wrong = alice
            .gql(SOLVE, json!({ "id": challenge, "a": "-1" }))
            .await;
        assert_eq!(wrong.data()["solveCaptcha"], false);
    }
    alice
        .gql(
            SOLVE,
            json!({ "id": challenge, "a": solve(ext["prompt"].as_str().unwrap()) }),
        )
        .await
        .expect_error("NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_mutations_a_minute_are_rate_limited() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_MUTATION_MEMBER".into(), "3/60s".into());
    })
    .await;
    app.at("2030-01-01T00:00:00Z");
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    for i in 0..3 {
        alice
            .gql(
                TRANSFER,
                json!({ "to": bob.member_no, "n": 1, "k": format!("k{i}") }),
            )
            .await
            .data();
    }
    let refused = alice
        .gql(TRANSFER, json!({ "to": bob.member_no, "n": 1, "k": "k9" }))
        .await;
    assert!(
        refused.expect_error("RATE_LIMITED")["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            <= 60
    );
    assert_eq!(points_of(&alice).await.0, 97);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_member_loses_their_points_and_every_points_action() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 300, "fund").await.data();
    adjust(&admin, &bob, 50, "fund").await.data();
    let listed = admin
        .gql(
            "mutation($m: ID!) { blacklistMember(memberId: $m, reason: \"points farm\") { points blacklisted blacklistReason } }",
            json!({ "m": alice.id }),
        )
        .await;
    assert_eq!(
        listed.data()["blacklistMember"],
        json!({ "points": 0, "blacklisted": true, "blacklistReason": "points farm" })
    );
    let ledger = alice
        .gql("{ pointsLedger { nodes { kind delta } } }", json!({}))
        .await;
    assert_eq!(
        ledger.data()["pointsLedger"]["nodes"][0],
        json!({ "kind": "REVOKE", "delta": -300 })
    );

    alice
        .gql(TRANSFER, json!({ "to": bob.member_no, "n": 1, "k": "a" }))
        .await
        .expect_error("BLACKLISTED");
    bob.gql(TRANSFER, json!({ "to": alice.member_no, "n": 1, "k": "b" }))
        .await
        .expect_error("NOT_AVAILABLE");
    adjust(&admin, &alice, 10, "after")
        .await
        .expect_error("BLACKLISTED");

    admin
        .gql("mutation($m: ID!) { unblacklistMember(memberId: $m, reason: \"appeal\") { blacklisted } }", json!({ "m": alice.id }))
        .await
        .data();
    assert_eq!(
        points_of(&alice).await.0,
        0,
        "revoked points are not restored"
    );
    bob.gql(TRANSFER, json!({ "to": alice.member_no, "n": 5, "k": "c" }))
        .await
        .data();
    assert_eq!(points_of(&alice).await.0, 5);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earning_too_fast_raises_one_risk_event_that_an_operator_can_act_on() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_EARN_MEMBER".into(), "3/1h".into());
    })
    .await;
    let alice = app.login("alice").await;
    let member_id: i64 = alice.id.parse().unwrap();
    let now = chrono::Utc::now();
    for _ in 0..6 {
        let who = Subject {
            member_id,
            device_id: Some("phone-9"),
        };
        // Flagged, not blocked.
        gate(&app.state, Action::Earn, who, now).await.unwrap();
    }
    let operator = app.admin(AdminRole::Operator).await;
    let events = operator
        .gql(
            "{ riskEvents(status: OPEN) { nodes { id memberId deviceId rule status detail } } }",
            json!({}),
        )
        .await;
    let nodes = events.data()["riskEvents"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(
        (nodes[0]["rule"].as_str(), nodes[0]["deviceId"].as_str()),
        (Some("earn_rate"), Some("phone-9"))
    );
    assert_eq!(nodes[0]["memberId"], alice.id.as_str());
    assert_eq!(nodes[0]["detail"]["limit"], 3);

    let resolve = "mutation($id: ID!, $a: RiskAction!) { resolveRiskEvent(id: $id, action: $a, note: \"farm\") { status } }";
    let acted = operator
        .gql(resolve, json!({ "id": nodes[0]["id"], "a": "BLACKLIST" }))
        .await;
    assert_eq!(acted.data()["resolveRiskEvent"]["status"], "ACTIONED");
    operator
        .gql(resolve, json!({ "id": nodes[0]["id"], "a": "DISMISS" }))
        .await
        .expect_error("ALREADY_DONE");
    let who = Subject {
        member_id,
        device_id: None,
    };
    assert_eq!(
        gate(&app.state, Action::Earn, who, now)
            .await
            .unwrap_err()
            .code(),
        "BLACKLISTED"
    );
    let auditor = app.admin(AdminRole::Auditor).await;
    auditor
        .gql(resolve, json!({ "id": nodes[0]["id"], "a": "DISMISS" }))
        .await
        .expect_error("FORBIDDEN");
}

/// Starts a private Redis on a free port, so the test can stop it.
struct PrivateRedis {
    child: std::process::Child,
    url: String,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (see README)");
        // Owned at once, so Drop stops it on every path.
        let redis = PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        for _ in 0..50 {
            if let Ok(client) = redis::Client::open(redis.url.as_str())
                && client.get_multiplexed_async_connection().await.is_ok()
            {
                return redis;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the private redis-server did not start");
    }
}

impl PrivateRedis {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_points_actions_fail_closed_with_unavailable() {
    // Hardening item 7: UNAVAILABLE (503 under graphql-response+json), not RATE_LIMITED.
    let mut redis = PrivateRedis::start().await;
    let url = redis.url.clone();
    let app = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), url);
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    alice
        .gql(
            TRANSFER,
            json!({ "to": bob.member_no, "n": 10, "k": "before" }),
        )
        .await
        .data();

    redis.stop();
    let vars = json!({ "to": bob.member_no, "n": 10, "k": "after" });
    let accept = [("Accept", "application/graphql-response+json")];
    let (refused, retry_after) =
        send_with(&app, Some(&alice.token), &accept, TRANSFER, vars.clone()).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let retry = refused.expect_error("UNAVAILABLE")["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    assert!(retry > 0);
    assert_eq!(retry_after, Some(retry.to_string()));
    // Plain JSON keeps 200 for every GraphQL error.
    let (plain, _) = send_with(&app, Some(&alice.token), &[], TRANSFER, vars).await;
    assert_eq!(plain.status, 200);
    plain.expect_error("UNAVAILABLE");
    alice
        .gql("mutation { checkIn { date } }", json!({}))
        .await
        .expect_error("UNAVAILABLE");
    // Reads still work, and health says what is wrong.
    assert_eq!(points_of(&alice).await.0, 90);
    assert_eq!(points_of(&bob).await.0, 10);
    let health: serde_json::Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(
        (health["status"].as_str(), health["redis"].as_str()),
        (Some("degraded"), Some("down"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_logins_fall_back_to_the_in_process_limiter() {
    // Hardening item 7: members and admins still sign in, and the login limit still holds.
    let mut redis = PrivateRedis::start().await;
    let url = redis.url.clone();
    let app = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), url);
        env.insert("LIMIT_LOGIN_IP".into(), "3/60s".into());
    })
    .await;
    app.at("2030-01-01T00:00:10Z");
    app.create_admin("ops", AdminRole::Operator).await;
    app.login("alice").await;

    redis.stop();
    for _ in 0..3 {
        app.gql(None, LOGIN, json!({})).await.data();
    }
    app.gql(None, LOGIN, json!({}))
        .await
        .expect_error("RATE_LIMITED");
    let admin = app.admin_login("ops").await;
    admin
        .gql("{ adminMe { username } }", json!({}))
        .await
        .data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_no_member_or_admin_path_answers_internal() {
    // Hardening item 7: captcha answers say UNAVAILABLE; the blacklist, whose truth is the
    // database, still changes; leaderboards read the database; runJob cannot take its lock.
    let mut redis = PrivateRedis::start().await;
    let url = redis.url.clone();
    let app = spawn_app_with(move |env| {
        env.insert("REDIS_URL".into(), url);
        env.insert("LIMIT_TRANSFER_DEVICE".into(), "1/1h".into());
    })
    .await;
    app.at("2030-01-01T00:00:10Z");
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    alice
        .gql(TRANSFER, json!({ "to": bob.member_no, "n": 1, "k": "t1" }))
        .await
        .data();
    let asked = alice
        .gql(TRANSFER, json!({ "to": bob.member_no, "n": 1, "k": "t2" }))
        .await;
    let ext = asked.expect_error("CAPTCHA_REQUIRED")["extensions"].clone();

    redis.stop();
    alice
        .gql(
            SOLVE,
            json!({ "id": ext["challengeId"], "a": solve(ext["prompt"].as_str().unwrap()) }),
        )
        .await
        .expect_error("UNAVAILABLE");
    let listed = admin
        .gql(
            "mutation($m: ID!) { blacklistMember(memberId: $m, reason: \"farm\") { blacklisted points } }",
            json!({ "m": bob.id }),
        )
        .await;
    assert_eq!(
        listed.data()["blacklistMember"],
        json!({ "blacklisted": true, "points": 0 })
    );
    admin
        .gql(
            "mutation($m: ID!) { unblacklistMember(memberId: $m, reason: \"appeal\") { blacklisted } }",
            json!({ "m": bob.id }),
        )
        .await
        .data();
    alice
        .gql(
            "{ leaderboard(kind: POINTS_EARNED_MONTH) { entries { memberNo } } me { points } }",
            json!({}),
        )
        .await
        .data();
    admin
        .gql(
            "mutation { runJob(name: EXPIRE_POINTS) { affected } }",
            json!({}),
        )
        .await
        .expect_error("UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_challenges_are_not_found() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    alice
        .gql(SOLVE, json!({ "id": "nope", "a": "1" }))
        .await
        .expect_error("NOT_FOUND");
    app.gql(None, SOLVE, json!({ "id": "nope", "a": "1" }))
        .await
        .expect_error("UNAUTHENTICATED");
}

const NOW: &str = "2030-01-01T00:00:10Z";

async fn transfer_as(
    app: &TestApp,
    from: &TestMember<'_>,
    to: &str,
    key: &str,
    device: &str,
) -> Gql {
    let headers = [("X-Device-Id", device), ("X-Test-Now", NOW)];
    let vars = json!({ "to": to, "n": 1, "k": key });
    send_with(app, Some(&from.token), &headers, TRANSFER, vars)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_device_id_still_hits_the_transfer_captcha() {
    // Hardening item 12: the member allowance (2x the device's) holds across device ids.
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_TRANSFER_DEVICE".into(), "2/1h".into());
    })
    .await;
    app.at(NOW);
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 100, "fund").await.data();
    for i in 0..4 {
        transfer_as(
            &app,
            &alice,
            &bob.member_no,
            &format!("t{i}"),
            &format!("phone-{i}"),
        )
        .await
        .data();
    }
    transfer_as(&app, &alice, &bob.member_no, "t4", "phone-4")
        .await
        .expect_error("CAPTCHA_REQUIRED");
    assert_eq!(points_of(&bob).await.0, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_device_id_still_hits_the_check_in_captcha() {
    // Hardening item 12.
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_CHECKIN_DEVICE".into(), "2/60s".into());
    })
    .await;
    app.at(NOW);
    let alice = app.login("alice").await;
    let check_in = |device: String| {
        let alice = &alice;
        let app = &app;
        async move {
            let headers = [("X-Device-Id", device.as_str()), ("X-Test-Now", NOW)];
            send_with(
                app,
                Some(&alice.token),
                &headers,
                "mutation { checkIn { date } }",
                json!({}),
            )
            .await
            .0
        }
    };
    check_in("phone-0".into()).await.data();
    for i in 1..4 {
        // Past the gate; the day is already done.
        check_in(format!("phone-{i}"))
            .await
            .expect_error("ALREADY_DONE");
    }
    check_in("phone-4".into())
        .await
        .expect_error("CAPTCHA_REQUIRED");
}
async fn login_via(app: &TestApp, headers: &[(&str, &str)]) -> Gql {
    let mut headers = headers.to_vec();
    headers.push(("X-Test-Now", NOW));
    send_with(app, None, &headers, LOGIN, json!({})).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_login_limit_counts_each_forwarded_client() {
    // Hardening item 8: the proxy's own address no longer makes one global login limit.
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_LOGIN_IP".into(), "2/60s".into());
        env.insert(
            "TRUSTED_PROXIES".into(),
            "10.0.0.0/8, 127.0.0.1, ::1".into(),
        );
    })
    .await;
    let client = [("X-Forwarded-For", "203.0.113.7")];
    login_via(&app, &client).await.data();
    login_via(&app, &client).await.data();
    login_via(&app, &client).await.expect_error("RATE_LIMITED");
    // Another member behind the same proxy has an allowance of their own.
    login_via(&app, &[("X-Forwarded-For", "203.0.113.8")])
        .await
        .data();
    // What a client writes itself stays left of the hop the proxy appends, so it cannot pick
    // a fresh address; hops through other trusted proxies are skipped.
    login_via(
        &app,
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3")],
    )
    .await
    .expect_error("RATE_LIMITED");
    // RFC 7239 Forwarded: quoted IPv6 with a port.
    let forwarded = [("Forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
    login_via(&app, &forwarded).await.data();
    login_via(&app, &forwarded).await.data();
    login_via(&app, &forwarded)
        .await
        .expect_error("RATE_LIMITED");

    // The audit log records the forwarded client of an admin sign-in.
    app.create_admin("ops", AdminRole::Operator).await;
    let signed_in = app
        .client
        .post(format!("{}/admin/graphql", app.address))
        .header("X-Forwarded-For", "203.0.113.99")
        .json(&json!({
            "query": "mutation($u: String!, $p: String!) { adminLogin(username: $u, password: $p) { accessToken } }",
            "variables": { "u": "ops", "p": loyalty_tests::ADMIN_PASSWORD },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let auditor = app.admin(AdminRole::Auditor).await;
    let log = auditor
        .gql(
            "{ auditLog(first: 50) { nodes { adminUsername detail } } }",
            json!({}),
        )
        .await;
    let ops = log.data()["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["adminUsername"] == "ops")
        .cloned()
        .unwrap();
    assert_eq!(ops["detail"]["ip"], "203.0.113.99");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_untrusted_peer_forwarded_headers_are_ignored() {
    // Hardening item 8: only a trusted proxy may name the client; by default none is trusted.
    for trusted in [None, Some("10.0.0.0/8")] {
        let app = spawn_app_with(|env| {
            env.insert("LIMIT_LOGIN_IP".into(), "2/60s".into());
            if let Some(trusted) = trusted {
                env.insert("TRUSTED_PROXIES".into(), trusted.into());
            }
        })
        .await;
        login_via(&app, &[("X-Forwarded-For", "203.0.113.1")])
            .await
            .data();
        login_via(&app, &[("Forwarded", "for=203.0.113.2")])
            .await
            .data();
        login_via(&app, &[("X-Forwarded-For", "203.0.113.3")])
            .await
            .expect_error("RATE_LIMITED");
    }
}
