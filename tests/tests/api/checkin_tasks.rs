//! Check-in and tasks over HTTP, travelling through business days with `X-Test-Now`.

use api::auth::AdminRole;
use loyalty_tests::{Gql, TestAdmin, TestApp, TestMember, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::points::{adjust, assert_audit_ok, points_of};

const CHECK_IN: &str = "mutation($k: String) { checkIn(idempotencyKey: $k) { date pointsAwarded streak streakBonus member { points } } }";
const MAKE_UP: &str = "mutation($d: Date!) { makeUpCheckIn(date: $d) { date pointsAwarded streak member { points } } }";
const CALENDAR: &str = "query($m: String) { checkInCalendar(month: $m) { month checkedDays madeUpDays streak makeUpsLeft makeUpCost todayCheckedIn } }";
const TASKS: &str = "{ tasks { task { id code kind event target rewardPoints } progress completed claimed periodEndsAt } }";
const REPORT: &str = "mutation($k: String!, $t: String, $key: String) { reportEvent(kind: $k, targetId: $t, idempotencyKey: $key) { task { code } progress completed } }";
const CLAIM: &str = "mutation($id: ID!) { claimTask(taskId: $id) { task { code } pointsAwarded member { points } } }";
const UPSERT_TASK: &str =
    "mutation($input: TaskInput!) { upsertTask(input: $input) { id code active } }";

/// Signs alice in at `time` (tokens last two hours on the test clock) and checks her in.
async fn check_in_at<'a>(app: &'a TestApp, time: &str) -> (TestMember<'a>, Gql) {
    app.at(time);
    let alice = app.login("alice").await;
    let answer = alice.gql(CHECK_IN, json!({})).await;
    (alice, answer)
}

async fn task(
    admin: &TestAdmin<'_>,
    code: &str,
    kind: &str,
    event: &str,
    target: i64,
    reward: i64,
) -> String {
    let answer = admin
        .gql(
            UPSERT_TASK,
            json!({ "input": { "code": code, "name": code, "description": "", "kind": kind, "event": event,
                "target": target, "rewardPoints": reward } }),
        )
        .await;
    answer.data()["upsertTask"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn tasks(member: &TestMember<'_>) -> Vec<Value> {
    member.gql(TASKS, json!({})).await.data()["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

fn find<'v>(tasks: &'v [Value], code: &str) -> Option<&'v Value> {
    tasks.iter().find(|t| t["task"]["code"] == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_day_made_up_restores_the_streak() {
    let app = spawn_app().await;
    app.at("2026-03-01T09:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    let (_, day1) = check_in_at(&app, "2026-03-01T09:00:00+08:00").await;
    assert_eq!(
        (
            day1.data()["checkIn"]["streak"].as_i64(),
            day1.data()["checkIn"]["pointsAwarded"].as_i64()
        ),
        (Some(1), Some(5))
    );
    let (_, day2) = check_in_at(&app, "2026-03-02T09:00:00+08:00").await;
    assert_eq!(day2.data()["checkIn"]["streak"], 2);
    let (alice, day4) = check_in_at(&app, "2026-03-04T09:00:00+08:00").await;
    assert_eq!(
        day4.data()["checkIn"]["streak"],
        1,
        "skipping day 3 broke it"
    );
    let made_up = alice.gql(MAKE_UP, json!({ "d": "2026-03-03" })).await;
    let r = &made_up.data()["makeUpCheckIn"];
    assert_eq!(
        (
            r["date"].as_str(),
            r["pointsAwarded"].as_i64(),
            r["streak"].as_i64()
        ),
        (Some("2026-03-03"), Some(5), Some(4))
    );
    // 100 + 5 + 5 + 5, then -20 for the make-up and +5 for the day.
    assert_eq!(r["member"]["points"], 100);
    let me = alice.gql("{ me { checkInStreak } }", json!({})).await;
    assert_eq!(me.data()["me"]["checkInStreak"], 4);
    let calendar = alice.gql(CALENDAR, json!({})).await;
    assert_eq!(
        calendar.data()["checkInCalendar"],
        json!({ "month": "2026-03", "checkedDays": ["2026-03-01", "2026-03-02", "2026-03-04"], "madeUpDays": ["2026-03-03"],
            "streak": 4, "makeUpsLeft": 2, "makeUpCost": 20, "todayCheckedIn": true })
    );
    // Two days later, with a day missed, the streak is gone.
    app.at("2026-03-06T09:00:00+08:00");
    let alice = app.login("alice").await;
    assert_eq!(
        alice
            .gql("{ me { checkInStreak } }", json!({}))
            .await
            .data()["me"]["checkInStreak"],
        0
    );
    assert_audit_ok(&app.admin(AdminRole::Auditor).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streak_bonus_is_paid_on_the_day_the_streak_reaches_it() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let rules = admin
        .gql(
            "mutation { updateCheckInRules(input: { basePoints: 5, streakBonuses: [{ days: 3, points: 20 }], makeUpCost: 20, makeUpsPerMonth: 3 }) { streakBonuses { days points } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        rules.data()["updateCheckInRules"]["streakBonuses"],
        json!([{ "days": 3, "points": 20 }])
    );
    let mut awarded = Vec::new();
    // Across a month and a year end.
    for day in ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"] {
        let (_, answer) = check_in_at(&app, &format!("{day}T20:00:00+08:00")).await;
        let r = &answer.data()["checkIn"];
        awarded.push((
            r["streak"].as_i64().unwrap(),
            r["streakBonus"].as_i64().unwrap(),
            r["pointsAwarded"].as_i64().unwrap(),
        ));
    }
    assert_eq!(awarded, vec![(1, 0, 5), (2, 0, 5), (3, 20, 25), (4, 0, 5)]);
    let admin = app.admin(AdminRole::Operator).await;
    admin
        .gql("mutation { updateCheckInRules(input: { basePoints: 0, streakBonuses: [], makeUpCost: 1, makeUpsPerMonth: 1 }) { basePoints } }", json!({}))
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_days_follow_the_shop_time_zone() {
    let app = spawn_app().await;
    check_in_at(&app, "2026-03-01T23:30:00+08:00")
        .await
        .1
        .data();
    let (_, next) = check_in_at(&app, "2026-03-02T00:10:00+08:00").await;
    assert_eq!(
        next.data()["checkIn"]["date"],
        "2026-03-02",
        "23:30 and 00:10 are two days"
    );
    // 15:50Z is 23:50 +08:00: the same business day as 23:10 +08:00.
    check_in_at(&app, "2026-03-03T23:10:00+08:00")
        .await
        .1
        .data();
    check_in_at(&app, "2026-03-03T15:50:00Z")
        .await
        .1
        .expect_error("ALREADY_DONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_check_ins_give_one_check_in() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_CHECKIN_DEVICE".into(), "1000/60s".into());
    })
    .await;
    let alice = app.login("alice").await;
    let taps = (0..10).map(|_| alice.gql(CHECK_IN, json!({})));
    let answers = futures_util::future::join_all(taps).await;
    let ok = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| a.body.get("errors").is_some())
            .all(|a| a.error_code() == Some("ALREADY_DONE"))
    );
    assert_eq!(points_of(&alice).await.0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_check_in_returns_the_first_answer() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let first = alice.gql(CHECK_IN, json!({ "k": "tap-1" })).await;
    let retry = alice.gql(CHECK_IN, json!({ "k": "tap-1" })).await;
    assert_eq!(first.data(), retry.data());
    alice
        .gql(CHECK_IN, json!({ "k": "tap-2" }))
        .await
        .expect_error("ALREADY_DONE");
    assert_eq!(points_of(&alice).await.0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_ups_are_for_past_days_of_this_month_and_limited() {
    // Many tries in a minute from one device would ask for a captcha; that has its own test.
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_CHECKIN_DEVICE".into(), "1000/60s".into());
    })
    .await;
    app.at("2026-03-10T09:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    alice
        .gql(MAKE_UP, json!({ "d": "2026-03-02" }))
        .await
        .expect_error("INSUFFICIENT_POINTS");
    adjust(&admin, &alice, 1000, "fund").await.data();
    for day in ["2026-03-10", "2026-03-11", "2026-02-28"] {
        let refused = alice.gql(MAKE_UP, json!({ "d": day })).await;
        assert_eq!(
            refused.expect_error("VALIDATION")["extensions"]["field"],
            "date",
            "{day}"
        );
    }
    for day in ["2026-03-01", "2026-03-02", "2026-03-03"] {
        alice.gql(MAKE_UP, json!({ "d": day })).await.data();
    }
    alice
        .gql(MAKE_UP, json!({ "d": "2026-03-02" }))
        .await
        .expect_error("ALREADY_DONE");
    let over = alice.gql(MAKE_UP, json!({ "d": "2026-03-04" })).await;
    assert_eq!(over.expect_error("LIMIT_REACHED")["extensions"]["limit"], 3);
    let calendar = alice.gql(CALENDAR, json!({ "m": "2026-03" })).await;
    assert_eq!(calendar.data()["checkInCalendar"]["makeUpsLeft"], 0);
    alice
        .gql(CALENDAR, json!({ "m": "March" }))
        .await
        .expect_error("VALIDATION");
    // 1000 - 3 x 20 + 3 x 5
    assert_eq!(points_of(&alice).await.0, 955);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_points_grow_the_growth_value() {
    let app = spawn_app().await;
    let (alice, _) = check_in_at(&app, "2026-03-01T09:00:00+08:00").await;
    // 5 interaction points x 0.4.
    assert_eq!(
        alice.gql("{ me { growthValue } }", json!({})).await.data()["me"]["growthValue"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_share_task_completes_is_claimed_once_and_resets_the_next_day() {
    let app = spawn_app().await;
    app.at("2026-03-01T09:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = task(&admin, "daily_share", "DAILY", "share", 2, 10).await;
    let alice = app.login("alice").await;
    alice
        .gql(CLAIM, json!({ "id": id }))
        .await
        .expect_error("NOT_AVAILABLE");
    let first = alice.gql(REPORT, json!({ "k": "share" })).await;
    assert_eq!(
        first.data()["reportEvent"][0],
        json!({ "task": { "code": "daily_share" }, "progress": 1, "completed": false })
    );
    let second = alice.gql(REPORT, json!({ "k": "share" })).await;
    assert_eq!(second.data()["reportEvent"][0]["completed"], true);
    let listed = tasks(&alice).await;
    let share = find(&listed, "daily_share").unwrap();
    assert_eq!(
        (share["completed"].as_bool(), share["claimed"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(share["periodEndsAt"], "2026-03-01T16:00:00+00:00");
    let claimed = alice.gql(CLAIM, json!({ "id": id })).await;
    assert_eq!(claimed.data()["claimTask"]["pointsAwarded"], 10);
    alice
        .gql(CLAIM, json!({ "id": id }))
        .await
        .expect_error("ALREADY_DONE");
    assert_eq!(points_of(&alice).await.0, 10);

    app.at("2026-03-02T09:00:00+08:00");
    let alice = app.login("alice").await;
    let next_day = tasks(&alice).await;
    let share = find(&next_day, "daily_share").unwrap();
    assert_eq!(
        (share["progress"].as_i64(), share["claimed"].as_bool()),
        (Some(0), Some(false))
    );
    alice
        .gql(CLAIM, json!({ "id": id }))
        .await
        .expect_error("NOT_AVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_counts_a_target_once_a_day_within_the_cap() {
    let app = spawn_app_with(|env| {
        env.insert(
            "REPORTABLE_EVENTS".into(),
            "browse_item:3:distinct,share:20".into(),
        );
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    task(&admin, "browse_5", "DAILY", "browse_item", 5, 5).await;
    let alice = app.login("alice").await;
    let browse = |target: &str| alice.gql(REPORT, json!({ "k": "browse_item", "t": target }));
    assert_eq!(
        browse("sku-1").await.data()["reportEvent"][0]["progress"],
        1
    );
    assert_eq!(
        browse("sku-1").await.data()["reportEvent"][0]["progress"],
        1,
        "the same item counts once"
    );
    browse("sku-2").await.data();
    browse("sku-3").await.data();
    let capped = browse("sku-4").await;
    assert_eq!(
        capped.expect_error("LIMIT_REACHED")["extensions"]["limit"],
        3
    );
    let unknown = alice.gql(REPORT, json!({ "k": "like_spam" })).await;
    assert_eq!(
        unknown.expect_error("VALIDATION")["extensions"]["field"],
        "kind"
    );
    alice
        .gql(REPORT, json!({ "k": "browse_item" }))
        .await
        .expect_error("VALIDATION");
    // A key counts once, however often it is sent.
    let keyed = |key: &str| alice.gql(REPORT, json!({ "k": "share", "key": key }));
    keyed("s1").await.data();
    keyed("s1").await.data();
    assert_eq!(
        api::progress::value(
            &app.state.db,
            alice.id.parse().unwrap(),
            "event.share",
            "all"
        )
        .await
        .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_in_a_burst_asks_for_a_captcha() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_SHARE_MEMBER".into(), "2/1d".into());
    })
    .await;
    let alice = app.login("alice").await;
    alice.gql(REPORT, json!({ "k": "share" })).await.data();
    alice.gql(REPORT, json!({ "k": "share" })).await.data();
    alice
        .gql(REPORT, json!({ "k": "share" }))
        .await
        .expect_error("CAPTCHA_REQUIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_counts_once_and_only_for_a_first_login() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    task(&admin, "invite_2", "CHALLENGE", "invite", 2, 300).await;
    let alice = app.login("alice").await;
    let carol = app.login("carol").await;
    app.login_invited("bob", Some(&alice.invite_code)).await;
    app.login_invited("bob", Some(&alice.invite_code)).await;
    app.login_invited("carol", Some(&alice.invite_code)).await;
    // Single level: bob's invitee earns bob the reward, never alice.
    let bob = app.login("bob").await;
    app.login_invited("dave", Some(&bob.invite_code)).await;
    assert_eq!(points_of(&alice).await.0, 50);
    assert_eq!(points_of(&bob).await.0, 50);
    assert_eq!(points_of(&carol).await.0, 0);
    let invite = tasks(&alice).await;
    assert_eq!(find(&invite, "invite_2").unwrap()["progress"], 1);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_tasks_and_audience_rules_decide_who_sees_a_task() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let hidden = task(&admin, "lucky", "HIDDEN", "draw", 1, 50).await;
    admin
        .gql(
            UPSERT_TASK,
            json!({ "input": { "code": "gold_only", "name": "Gold", "description": "", "kind": "WEEKLY", "event": "checkin",
                "target": 1, "rewardPoints": 5, "minTierRank": 2 } }),
        )
        .await
        .data();
    let alice = app.login("alice").await;
    let listed = tasks(&alice).await;
    assert!(find(&listed, "lucky").is_none());
    assert!(find(&listed, "gold_only").is_none());
    alice
        .gql(CLAIM, json!({ "id": hidden }))
        .await
        .expect_error("NOT_FOUND");
    api::task::unlock_hidden(
        &app.state.db,
        api::member::MemberId::new(alice.id.parse().unwrap()),
        "lucky",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(find(&tasks(&alice).await, "lucky").is_some());
    let bad = admin
        .gql(
            UPSERT_TASK,
            json!({ "input": { "code": "x", "name": "x", "description": "", "kind": "MONTHLY", "event": "checkin", "target": 1, "rewardPoints": 1 } }),
        )
        .await;
    assert_eq!(
        bad.expect_error("VALIDATION")["extensions"]["field"],
        "kind"
    );
    // Switching a task off hides it.
    admin
        .gql(
            UPSERT_TASK,
            json!({ "input": { "code": "lucky", "name": "lucky", "description": "", "kind": "HIDDEN", "event": "draw",
                "target": 1, "rewardPoints": 50, "active": false } }),
        )
        .await
        .data();
    assert!(find(&tasks(&alice).await, "lucky").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growth_tasks_count_purchases_and_spend() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    task(&admin, "first_purchase", "GROWTH", "purchase", 1, 100).await;
    task(&admin, "spend_1000", "GROWTH", "spend", 1000, 200).await;
    let shop = app.admin(AdminRole::Integration).await;
    let alice = app.login("alice").await;
    shop.gql(
        "mutation($m: String!) { recordPurchase(input: { orderNo: \"SO-1\", memberNo: $m, amount: \"600.50\", paidAt: \"2026-01-01T00:00:00Z\" }) { applied } }",
        json!({ "m": alice.member_no }),
    )
    .await
    .data();
    let listed = tasks(&alice).await;
    assert_eq!(find(&listed, "first_purchase").unwrap()["completed"], true);
    assert_eq!(find(&listed, "spend_1000").unwrap()["progress"], 600);
}

/// Hardening item 5: a daily cap read and then written without a lock let parallel reports
/// through (14 of 20 counted against a cap of 5 on PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reports_never_count_past_the_daily_cap() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    task(&admin, "review_many", "DAILY", "review", 100, 5).await;
    let alice = app.login("alice").await;
    let reports = (0..20).map(|i| {
        alice.gql(
            REPORT,
            json!({ "k": "review", "key": format!("review-{i}") }),
        )
    });
    let answers = futures_util::future::join_all(reports).await;
    let counted = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(counted, 5, "review's daily cap is 5");
    assert!(
        answers
            .iter()
            .filter(|a| a.body.get("errors").is_some())
            .all(|a| a.error_code() == Some("LIMIT_REACHED")),
        "the rest are LIMIT_REACHED"
    );
    let review = tasks(&alice).await;
    assert_eq!(find(&review, "review_many").unwrap()["progress"], 5);
}

/// Hardening item 5, the same audit: make-ups are 3 a month however many arrive at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_make_ups_never_pass_the_monthly_limit() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_CHECKIN_DEVICE".into(), "1000/60s".into());
    })
    .await;
    app.at("2026-03-20T09:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let days: Vec<String> = (1..=12).map(|d| format!("2026-03-{d:02}")).collect();
    let make_ups = days
        .iter()
        .map(|day| alice.gql(MAKE_UP, json!({ "d": day })));
    let answers = futures_util::future::join_all(make_ups).await;
    let made = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(made, 3);
    assert!(
        answers
            .iter()
            .filter(|a| a.body.get("errors").is_some())
            .all(|a| a.error_code() == Some("LIMIT_REACHED"))
    );
    // 1000 - 3 x 20 + 3 x 5
    assert_eq!(points_of(&alice).await.0, 955);
    assert_audit_ok(&admin).await;
}
