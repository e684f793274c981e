//! The points ledger over HTTP: adjustments, transfers, idempotency, expiry, audit and health.

use api::auth::AdminRole;
use loyalty_tests::{Gql, TestAdmin, TestMember, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const ADJUST: &str = "mutation($m: ID!, $d: Int!, $r: String!, $k: String!) {
    adjustPoints(memberId: $m, delta: $d, reason: $r, idempotencyKey: $k) { id points } }";
const TRANSFER: &str = "mutation($to: String!, $n: Int!, $k: String!) {
    transferPoints(toMemberNo: $to, amount: $n, idempotencyKey: $k) { id amount toMemberNo member { points } } }";
const LEDGER: &str = "query($first: Int, $after: String) { pointsLedger(first: $first, after: $after) {
    nodes { delta balanceAfter kind source sourceId note expiresAt } pageInfo { hasNextPage endCursor } } }";
const ME_POINTS: &str = "{ me { points pointsExpiringSoon } }";
const AUDIT: &str = "{ ledgerAudit { ok membersChecked violations } }";

pub async fn adjust(admin: &TestAdmin<'_>, member: &TestMember<'_>, delta: i64, key: &str) -> Gql {
    admin
        .gql(
            ADJUST,
            json!({ "m": member.id, "d": delta, "r": "test", "k": key }),
        )
        .await
}

pub async fn points_of(member: &TestMember<'_>) -> (i64, i64) {
    let me = member.gql(ME_POINTS, json!({})).await;
    let me = &me.data()["me"];
    (
        me["points"].as_i64().unwrap(),
        me["pointsExpiringSoon"].as_i64().unwrap(),
    )
}

pub async fn assert_audit_ok(admin: &TestAdmin<'_>) -> Value {
    let audit = admin.gql(AUDIT, json!({})).await;
    let audit = audit.data()["ledgerAudit"].clone();
    assert_eq!(audit["ok"], true, "{audit}");
    audit
}

async fn transfer(from: &TestMember<'_>, to: &TestMember<'_>, amount: i64, key: &str) -> Gql {
    from.gql(
        TRANSFER,
        json!({ "to": to.member_no, "n": amount, "k": key }),
    )
    .await
}

async fn ledger(member: &TestMember<'_>) -> Vec<Value> {
    let page = member.gql(LEDGER, json!({ "first": 100 })).await;
    page.data()["pointsLedger"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn run_job(admin: &TestAdmin<'_>) -> i64 {
    let run = admin
        .gql(
            "mutation { runJob(name: EXPIRE_POINTS) { affected } }",
            json!({}),
        )
        .await;
    run.data()["runJob"]["affected"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_moves_points_through_the_ledger() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    let answer = adjust(&admin, &alice, 500, "k1").await;
    assert_eq!(answer.data()["adjustPoints"]["points"], 500);
    adjust(&admin, &alice, -120, "k2").await.data();
    assert_eq!(points_of(&alice).await.0, 380);
    let rows = ledger(&alice).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["delta"], -120, "newest first");
    assert_eq!(rows[0]["balanceAfter"], 380);
    assert_eq!(rows[0]["kind"], "ADJUST");
    assert_eq!(rows[1]["balanceAfter"], 500);
    assert!(
        rows[1]["expiresAt"].is_string(),
        "a credit says when it expires"
    );
    let audit = assert_audit_ok(&admin).await;
    assert_eq!(audit["membersChecked"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_needs_a_reason_a_role_and_points_to_take() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let auditor = app.admin(AdminRole::Auditor).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "k0").await.data();
    let short = adjust(&admin, &alice, -150, "k1").await;
    let error = short.expect_error("INSUFFICIENT_POINTS");
    assert_eq!(
        (
            error["extensions"]["needed"].as_i64(),
            error["extensions"]["available"].as_i64()
        ),
        (Some(150), Some(100))
    );
    adjust(&auditor, &alice, 10, "k2")
        .await
        .expect_error("FORBIDDEN");
    admin
        .gql(
            ADJUST,
            json!({ "m": alice.id, "d": 10, "r": "  ", "k": "k3" }),
        )
        .await
        .expect_error("VALIDATION");
    adjust(&admin, &alice, 0, "k4")
        .await
        .expect_error("VALIDATION");
    admin
        .gql(
            ADJUST,
            json!({ "m": "999999", "d": 10, "r": "x", "k": "k5" }),
        )
        .await
        .expect_error("NOT_FOUND");
    assert_eq!(points_of(&alice).await.0, 100);
    assert_eq!(ledger(&alice).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_adjustment_changes_nothing_and_a_reused_key_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    for _ in 0..3 {
        assert_eq!(
            adjust(&admin, &alice, 200, "same").await.data()["adjustPoints"]["points"],
            200
        );
    }
    adjust(&admin, &alice, 300, "same")
        .await
        .expect_error("CONFLICT");
    // Concurrent retries too.
    let retries = (0..10).map(|_| adjust(&admin, &alice, 50, "burst"));
    for answer in futures_util::future::join_all(retries).await {
        answer.data();
    }
    assert_eq!(points_of(&alice).await.0, 250);
    assert_eq!(ledger(&alice).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_points_between_both_ledgers_once() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 300, "fund").await.data();
    let sent = transfer(&alice, &bob, 120, "t1").await;
    let receipt = sent.data()["transferPoints"].clone();
    assert_eq!(receipt["amount"], 120);
    assert_eq!(receipt["toMemberNo"], bob.member_no.as_str());
    assert_eq!(receipt["member"]["points"], 180);
    // The retry answers the same transfer and moves nothing.
    let again = transfer(&alice, &bob, 120, "t1").await;
    assert_eq!(again.data()["transferPoints"]["id"], receipt["id"]);
    transfer(&alice, &bob, 121, "t1")
        .await
        .expect_error("CONFLICT");
    assert_eq!(points_of(&alice).await.0, 180);
    assert_eq!(points_of(&bob).await.0, 120);
    let bob_rows = ledger(&bob).await;
    assert_eq!(bob_rows[0]["kind"], "TRANSFER_IN");
    assert_eq!(bob_rows[0]["sourceId"], alice.member_no.as_str());
    assert_eq!(ledger(&alice).await[0]["kind"], "TRANSFER_OUT");
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfers_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 2000, "fund").await.data();
    transfer(&alice, &alice, 10, "a")
        .await
        .expect_error("VALIDATION");
    for amount in [0, -5, 1001] {
        let refused = transfer(&alice, &bob, amount, "b").await;
        assert_eq!(
            refused.expect_error("VALIDATION")["extensions"]["field"],
            "amount"
        );
    }
    alice
        .gql(TRANSFER, json!({ "to": "NOSUCH99", "n": 10, "k": "c" }))
        .await
        .expect_error("NOT_FOUND");
    transfer(&alice, &bob, 10, "bad key!")
        .await
        .expect_error("VALIDATION");
    let carol = app.login("carol").await;
    transfer(&carol, &bob, 10, "d")
        .await
        .expect_error("INSUFFICIENT_POINTS");
    assert_eq!(points_of(&alice).await.0, 2000);
    assert_eq!(points_of(&bob).await.0, 0);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_expire_after_two_years_once_and_members_see_it_coming() {
    let app = spawn_app().await;
    app.at("2026-01-10T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "old").await.data();
    app.at("2026-05-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "newer").await.data();
    // Spending draws from the lot that expires first.
    adjust(&admin, &alice, -30, "spend").await.data();
    assert_eq!(points_of(&alice).await, (170, 0));

    app.at("2027-12-20T10:00:00+08:00");
    let (admin, alice) = (
        app.admin(AdminRole::Operator).await,
        app.login("alice").await,
    );
    assert_eq!(
        points_of(&alice).await,
        (170, 70),
        "the old lot's 70 expire within 30 days"
    );
    assert_eq!(run_job(&admin).await, 0, "nothing is due yet");

    app.at("2028-01-11T10:00:00+08:00");
    let (admin, alice) = (
        app.admin(AdminRole::Operator).await,
        app.login("alice").await,
    );
    assert_eq!(run_job(&admin).await, 1);
    assert_eq!(
        run_job(&admin).await,
        0,
        "a second run expires nothing twice"
    );
    assert_eq!(points_of(&alice).await.0, 100);
    let rows = ledger(&alice).await;
    assert_eq!(
        (rows[0]["kind"].as_str(), rows[0]["delta"].as_i64()),
        (Some("EXPIRE"), Some(-70))
    );
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_expiry_runs_expire_each_lot_once() {
    let app = spawn_app().await;
    app.at("2026-01-10T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(app.login(&format!("m{i}")).await);
    }
    for (i, m) in members.iter().enumerate() {
        adjust(&admin, m, 10 + i as i64, &format!("f{i}"))
            .await
            .data();
    }
    app.at("2028-02-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let runs = (0..4).map(|_| {
        admin.gql(
            "mutation { runJob(name: EXPIRE_POINTS) { affected } }",
            json!({}),
        )
    });
    let answers = futures_util::future::join_all(runs).await;
    let expired: i64 = answers
        .iter()
        .filter_map(|a| a.body["data"]["runJob"]["affected"].as_i64())
        .sum();
    assert!(
        answers
            .iter()
            .all(|a| a.body.get("errors").is_none() || a.error_code() == Some("CONFLICT"))
    );
    assert_eq!(expired + run_job(&admin).await, 5);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_passes_points_on_with_their_expiry() {
    let app = spawn_app().await;
    app.at("2026-01-10T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    app.at("2027-12-25T10:00:00+08:00");
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    transfer(&alice, &bob, 40, "gift").await.data();
    assert_eq!(
        points_of(&bob).await,
        (40, 40),
        "gifted points keep their old expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_report_adds_up_issued_spent_expired_and_liability() {
    let app = spawn_app_with(|env| {
        env.insert("POINTS_BUDGET".into(), "100".into());
        env.insert("HOARDING_THRESHOLD".into(), "150".into());
    })
    .await;
    app.at("2026-03-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 200, "a").await.data();
    adjust(&admin, &bob, 50, "b").await.data();
    app.at("2026-03-02T10:00:00+08:00");
    let (admin, alice) = (
        app.admin(AdminRole::Operator).await,
        app.login("alice").await,
    );
    adjust(&admin, &alice, -40, "c").await.data();
    transfer(&alice, &bob, 10, "t").await.data();
    let report = admin
        .gql(
            "{ pointsHealth(from: \"2026-03-01\", to: \"2026-03-03\") { issued spent expired outstanding liability
               earnSpendRatio hoarders budgetExceeded daily { date issued spent expired } } }",
            json!({}),
        )
        .await;
    let h = &report.data()["pointsHealth"];
    assert_eq!(h["issued"], 250);
    assert_eq!(h["outstanding"], 210);
    assert_eq!(h["liability"], "21.00");
    assert_eq!(h["hoarders"], 0);
    assert_eq!(h["budgetExceeded"], true);
    assert_eq!(h["daily"].as_array().unwrap().len(), 3);
    assert_eq!(
        h["daily"][0],
        json!({ "date": "2026-03-01", "issued": 250, "spent": 0, "expired": 0 })
    );
    admin
        .gql(
            "{ pointsHealth(from: \"2026-03-05\", to: \"2026-03-01\") { issued } }",
            json!({}),
        )
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_pages_newest_first() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    for i in 1..=5 {
        adjust(&admin, &alice, i, &format!("k{i}")).await.data();
    }
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = alice
            .gql(LEDGER, json!({ "first": 2, "after": after }))
            .await;
        let conn = &page.data()["pointsLedger"];
        seen.extend(
            conn["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["delta"].as_i64().unwrap()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    alice
        .gql(LEDGER, json!({ "first": 101 }))
        .await
        .expect_error("VALIDATION");
}

/// Twenty members, 200 debits and transfers at once: every invariant holds afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_debits_and_transfers_keep_the_ledger_whole() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_TRANSFER_DEVICE".into(), "100000/1h".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(app.login(&format!("racer{i}")).await);
    }
    for (i, m) in members.iter().enumerate() {
        adjust(&admin, m, 100, &format!("seed{i}")).await.data();
    }
    let ops = (0..200).map(|i| {
        let from = &members[i % 20];
        let to = &members[(i * 7 + 3) % 20];
        let amount = (i % 37 + 5) as i64;
        let admin = &admin;
        async move {
            if i % 3 == 0 || std::ptr::eq(from, to) {
                (
                    amount,
                    adjust(admin, from, -amount, &format!("debit{i}")).await,
                )
            } else {
                (0, transfer(from, to, amount, &format!("tr{i}")).await)
            }
        }
    });
    let answers = futures_util::future::join_all(ops).await;
    let mut debited = 0;
    for (amount, answer) in &answers {
        match answer.error_code() {
            None => debited += amount,
            Some("INSUFFICIENT_POINTS") => {}
            Some(other) => panic!("unexpected {other}: {}", answer.body),
        }
    }
    let mut total = 0;
    for m in &members {
        let (points, _) = points_of(m).await;
        assert!(points >= 0);
        total += points;
    }
    assert_eq!(
        total,
        20 * 100 - debited,
        "transfers conserve points; only debits remove them"
    );
    let audit = assert_audit_ok(&admin).await;
    assert_eq!(audit["membersChecked"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_takes_from_several_lots_in_order_in_one_step_and_the_audit_holds() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    for i in 0..4 {
        adjust(&admin, &alice, 10, &format!("lot{i}")).await.data();
    }
    adjust(&admin, &alice, -25, "spend").await.data();
    assert_eq!(points_of(&alice).await.0, 15);
    let member_id: i64 = alice.id.parse().unwrap();
    let remaining: Vec<i64> = entity::points_lot::Entity::find()
        .filter(entity::points_lot::Column::MemberId.eq(member_id))
        .order_by_asc(entity::points_lot::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|lot| lot.remaining)
        .collect();
    assert_eq!(remaining, vec![0, 0, 5, 10]);
    assert_audit_ok(&admin).await;
}
