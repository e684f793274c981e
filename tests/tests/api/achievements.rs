//! The achievement wall over HTTP: unlocking through real actions, rewards paid once, titles,
//! showcase, rarity, backfill, and leaderboards.

use api::auth::AdminRole;
use loyalty_tests::{TestAdmin, TestApp, TestMember, spawn_app};
use serde_json::{Value, json};

use crate::points::{adjust, assert_audit_ok, points_of};

const UPSERT: &str = "mutation($input: AchievementInput!) { upsertAchievement(input: $input) { code metric threshold } }";
const WALL: &str = "{ achievementWall { unlockedCount showcase { code } titles { code name }
    achievements { achievement { code hidden title { code name } } progress unlocked unlockedAt rarity } } }";
const CHECK_IN: &str = "mutation($k: String) { checkIn(idempotencyKey: $k) { streak unlocked { code name rewardPoints title { name } } } }";

async fn define(
    admin: &TestAdmin<'_>,
    code: &str,
    metric: &str,
    threshold: i64,
    reward: i64,
    title: Option<(&str, &str)>,
) {
    let input = json!({ "code": code, "name": code, "description": "", "category": "demo", "metric": metric,
        "threshold": threshold, "rewardPoints": reward, "titleCode": title.map(|t| t.0), "titleName": title.map(|t| t.1) });
    admin.gql(UPSERT, json!({ "input": input })).await.data();
}

async fn wall(member: &TestMember<'_>) -> Value {
    member.gql(WALL, json!({})).await.data()["achievementWall"].clone()
}

fn entry<'v>(wall: &'v Value, code: &str) -> Option<&'v Value> {
    wall["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["achievement"]["code"] == code)
}

async fn check_in_on<'a>(app: &'a TestApp, day: &str, key: &str) -> (TestMember<'a>, Value) {
    app.at(&format!("{day}T09:00:00+08:00"));
    let alice = app.login("alice").await;
    let answer = alice.gql(CHECK_IN, json!({ "k": key })).await;
    let result = answer.data()["checkIn"].clone();
    (alice, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_day_streak_unlocks_on_the_third_check_in_and_pays_once() {
    let app = spawn_app().await;
    app.at("2026-03-01T08:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    define(
        &admin,
        "streak_3",
        "checkin.streak",
        3,
        50,
        Some(("early_bird", "早起鸟")),
    )
    .await;
    let (_, day1) = check_in_on(&app, "2026-03-01", "d1").await;
    assert_eq!(day1["unlocked"], json!([]));
    let (alice, day2) = check_in_on(&app, "2026-03-02", "d2").await;
    assert_eq!(day2["unlocked"], json!([]));
    assert_eq!(
        entry(&wall(&alice).await, "streak_3").unwrap()["progress"],
        2
    );
    let (alice, day3) = check_in_on(&app, "2026-03-03", "d3").await;
    assert_eq!(
        day3["unlocked"],
        json!([{ "code": "streak_3", "name": "streak_3", "rewardPoints": 50, "title": { "name": "早起鸟" } }])
    );
    // The retried third check-in answers the first result and pays nothing more.
    alice.gql(CHECK_IN, json!({ "k": "d3" })).await.data();
    assert_eq!(points_of(&alice).await.0, 3 * 5 + 50);
    let w = wall(&alice).await;
    let streak = entry(&w, "streak_3").unwrap();
    assert_eq!(
        (streak["unlocked"].as_bool(), streak["progress"].as_i64()),
        (Some(true), Some(3))
    );
    assert_eq!(streak["rarity"], 1.0);
    assert_eq!(
        w["titles"],
        json!([{ "code": "early_bird", "name": "早起鸟" }])
    );
    assert_eq!(w["unlockedCount"], 1);
    assert_audit_ok(&app.admin(AdminRole::Auditor).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titles_and_the_showcase_take_only_what_was_earned() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    define(
        &admin,
        "first_check_in",
        "checkin.total",
        1,
        0,
        Some(("rookie", "新人")),
    )
    .await;
    define(
        &admin,
        "ten_check_ins",
        "checkin.total",
        10,
        0,
        Some(("regular", "常客")),
    )
    .await;
    let alice = app.login("alice").await;
    alice.gql(CHECK_IN, json!({})).await.data();
    let worn = alice
        .gql(
            "mutation { equipTitle(titleCode: \"rookie\") { activeTitle { code name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        worn.data()["equipTitle"]["activeTitle"],
        json!({ "code": "rookie", "name": "新人" })
    );
    let refused = alice
        .gql(
            "mutation { equipTitle(titleCode: \"regular\") { activeTitle { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused.expect_error("VALIDATION")["extensions"]["field"],
        "titleCode"
    );
    let off = alice
        .gql(
            "mutation { equipTitle(titleCode: null) { activeTitle { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(off.data()["equipTitle"]["activeTitle"], Value::Null);

    let shown = alice.gql("mutation { setShowcase(achievementCodes: [\"first_check_in\"]) { showcase { code } } }", json!({})).await;
    assert_eq!(
        shown.data()["setShowcase"]["showcase"],
        json!([{ "code": "first_check_in" }])
    );
    for codes in [
        json!(["ten_check_ins"]),
        json!(["nope"]),
        json!(["first_check_in", "first_check_in"]),
    ] {
        let bad = alice.gql("mutation($c: [String!]!) { setShowcase(achievementCodes: $c) { showcase { code } } }", json!({ "c": codes })).await;
        assert_eq!(
            bad.expect_error("VALIDATION")["extensions"]["field"],
            "achievementCodes",
            "{codes}"
        );
    }
    assert_eq!(
        wall(&alice).await["showcase"],
        json!([{ "code": "first_check_in" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_unlocks_an_achievement_through_a_real_action() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let metrics = [
        ("m_streak", "checkin.streak"),
        ("m_checkins", "checkin.total"),
        ("m_invite", "invite.count"),
        ("m_purchases", "purchase.count"),
        ("m_spend", "purchase.amount"),
        ("m_redeem", "mall.redemptions"),
        ("m_draws", "blindbox.draws"),
        ("m_earned", "points.earned"),
        ("m_tasks", "tasks.claimed"),
        ("m_donated", "donation.points"),
        ("m_collector", "achievements.unlocked"),
    ];
    for (code, metric) in metrics {
        let threshold = if metric == "achievements.unlocked" {
            10
        } else {
            1
        };
        define(&admin, code, metric, threshold, 0, None).await;
    }
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    // Check-in: streak, total and points earned.
    alice.gql(CHECK_IN, json!({})).await.data();
    // Invite: a friend joins with alice's code.
    app.login_invited("bob", Some(&alice.invite_code)).await;
    // Purchase: count and amount.
    let shop = app.admin(AdminRole::Integration).await;
    shop.gql(
        "mutation($m: String!) { recordPurchase(input: { orderNo: \"SO-1\", memberNo: $m, amount: \"10.00\", paidAt: \"2026-01-01T00:00:00Z\" }) { applied } }",
        json!({ "m": alice.member_no }),
    )
    .await
    .data();
    // Mall redemption.
    let item = admin
        .gql("mutation { upsertMallItem(input: { name: \"x\", description: \"\", category: \"c\", kind: \"PHYSICAL\", pointsPrice: 10, stock: 5 }) { id } }", json!({}))
        .await;
    let item_id = item.data()["upsertMallItem"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice
        .gql(
            "mutation($i: ID!) { redeem(input: { itemId: $i, idempotencyKey: \"r\" }) { id } }",
            json!({ "i": item_id }),
        )
        .await
        .data();
    // Blind box draw.
    let bx = admin
        .gql(
            "mutation { upsertBlindBox(input: { name: \"b\", description: \"\", pointsPrice: 10, prizes: [{ name: \"p\", rarity: \"COMMON\", kind: \"POINTS\", weight: 1, payload: \"1\" }] }) { id } }",
            json!({}),
        )
        .await;
    let box_id = bx.data()["upsertBlindBox"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let drew = alice.gql("mutation($b: ID!) { drawBlindBox(boxId: $b, idempotencyKey: \"d\") { unlocked { code } } }", json!({ "b": box_id })).await;
    assert_eq!(
        drew.data()["drawBlindBox"]["unlocked"],
        json!([{ "code": "m_draws" }])
    );
    // Donation.
    let project = admin.gql("mutation { upsertDonationProject(input: { name: \"p\", description: \"\", targetPoints: 100 }) { id } }", json!({})).await;
    let project_id = project.data()["upsertDonationProject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice
        .gql("mutation($p: ID!) { donatePoints(projectId: $p, points: 5, idempotencyKey: \"g\") { raisedPoints } }", json!({ "p": project_id }))
        .await
        .data();

    // Task claim.
    let task = admin
        .gql("mutation { upsertTask(input: { code: \"t\", name: \"t\", description: \"\", kind: \"ONCE\", event: \"checkin\", target: 1, rewardPoints: 1 }) { id } }", json!({}))
        .await;
    let task_id = task.data()["upsertTask"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The task counts check-ins from now on: check in tomorrow, then claim.
    app.at(&(chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339());
    let alice = app.login("alice").await;
    alice.gql(CHECK_IN, json!({})).await.data();
    let claimed = alice
        .gql(
            "mutation($t: ID!) { claimTask(taskId: $t) { unlocked { code } } }",
            json!({ "t": task_id }),
        )
        .await;
    assert!(
        claimed.data()["claimTask"]["unlocked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["code"] == "m_tasks")
    );
    let w = wall(&alice).await;
    for (code, metric) in metrics {
        assert_eq!(
            entry(&w, code).unwrap()["unlocked"],
            true,
            "{code} on {metric} did not unlock"
        );
    }
    assert_eq!(w["unlockedCount"], 11);
    assert_audit_ok(&app.admin(AdminRole::Auditor).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_achievements_show_once_unlocked_and_backfill_unlocks_what_members_already_meet() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    admin
        .gql(UPSERT, json!({ "input": { "code": "secret", "name": "秘密", "description": "", "category": "x", "metric": "checkin.total", "threshold": 1, "hidden": true } }))
        .await
        .data();
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    assert!(entry(&wall(&alice).await, "secret").is_none());
    alice.gql(CHECK_IN, json!({})).await.data();
    assert_eq!(
        entry(&wall(&alice).await, "secret").unwrap()["achievement"]["hidden"],
        true
    );
    assert!(entry(&wall(&bob).await, "secret").is_none());
    assert_eq!(entry(&wall(&alice).await, "secret").unwrap()["rarity"], 0.5);

    // Defined after alice already checked in: the backfill job unlocks it at once.
    define(&admin, "late", "checkin.total", 1, 20, None).await;
    assert_eq!(
        entry(&wall(&alice).await, "late").unwrap()["unlocked"],
        false
    );
    let run = admin
        .gql(
            "mutation { runJob(name: BACKFILL_ACHIEVEMENTS) { affected } }",
            json!({}),
        )
        .await;
    assert_eq!(run.data()["runJob"]["affected"], 1);
    assert_eq!(
        entry(&wall(&alice).await, "late").unwrap()["unlocked"],
        true
    );
    let again = admin
        .gql(
            "mutation { runJob(name: BACKFILL_ACHIEVEMENTS) { affected } }",
            json!({}),
        )
        .await;
    assert_eq!(again.data()["runJob"]["affected"], 0);
    assert_eq!(points_of(&alice).await.0, 5 + 20);
    admin
        .gql(UPSERT, json!({ "input": { "code": "x", "name": "x", "description": "", "category": "x", "metric": "likes", "threshold": 1 } }))
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderboards_rank_by_score_then_by_who_got_there_first() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let shop = app.admin(AdminRole::Integration).await;
    let mut members = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        members.push(app.login(name).await);
    }
    // Points earned this month: ann 300, ben 100, cat 300 (after ann), dan blacklisted with 900.
    for (member, yuan, order) in [
        (&members[0], "300", "A"),
        (&members[1], "100", "B"),
        (&members[2], "300", "C"),
        (&members[3], "900", "D"),
    ] {
        shop.gql(
            "mutation($m: String!, $a: Decimal!, $o: String!) { recordPurchase(input: { orderNo: $o, memberNo: $m, amount: $a, paidAt: \"2026-01-01T00:00:00Z\" }) { applied } }",
            json!({ "m": member.member_no, "a": yuan, "o": order }),
        )
        .await
        .data();
    }
    admin
        .gql(
            "mutation($m: ID!) { blacklistMember(memberId: $m, reason: \"fraud\") { id } }",
            json!({ "m": members[3].id }),
        )
        .await
        .data();
    let board = members[2]
        .gql("{ leaderboard(kind: POINTS_EARNED_MONTH, first: 10) { kind myRank entries { rank memberNo score } } }", json!({}))
        .await;
    let board = &board.data()["leaderboard"];
    assert_eq!(
        board["entries"],
        json!([
            { "rank": 1, "memberNo": members[0].member_no, "score": 300 },
            { "rank": 2, "memberNo": members[2].member_no, "score": 300 },
            { "rank": 3, "memberNo": members[1].member_no, "score": 100 },
        ])
    );
    assert_eq!(board["myRank"], 2);
    // With Redis configured, the board was read from a sorted set.
    if let Some(redis) = &app.state.redis {
        let month = chrono::Utc::now()
            .with_timezone(&app.state.settings.timezone)
            .format("%Y-%m");
        let key = format!(
            "{}{{lb:points.earned:m:{month}}}",
            app.state.settings.redis_key_prefix
        );
        let mut con = redis.clone();
        let size: i64 = redis::cmd("ZCARD")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(size, 3, "{key}");
    }
    let top1 = members[1]
        .gql(
            "{ leaderboard(kind: POINTS_EARNED_MONTH, first: 1) { myRank entries { rank } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        top1.data()["leaderboard"]["myRank"],
        3,
        "myRank counts beyond the page"
    );
    let empty = members[3]
        .gql(
            "{ leaderboard(kind: CHECKIN_STREAK) { myRank entries { rank } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        empty.data()["leaderboard"],
        json!({ "myRank": null, "entries": [] })
    );
    members[0]
        .gql(
            "{ leaderboard(kind: ACHIEVEMENTS, first: 500) { myRank } }",
            json!({}),
        )
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_check_ins_that_unlock_the_same_achievements_all_succeed() {
    // Each check-in unlocks two achievements on two metrics, so every transaction writes the same
    // two holder counts; they used to deadlock under load.
    let app = spawn_app().await;
    app.at("2026-03-01T08:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    define(&admin, "first_checkin", "checkin.total", 1, 5, None).await;
    define(&admin, "first_points", "points.earned", 1, 5, None).await;
    let mut members = Vec::new();
    for i in 0..16 {
        members.push(app.login(&format!("m{i}")).await);
    }
    let attempts = members
        .iter()
        .map(|m| m.gql(CHECK_IN, json!({ "k": "day1" })));
    let answers = futures_util::future::join_all(attempts).await;
    for answer in &answers {
        let unlocked = answer.data()["checkIn"]["unlocked"].as_array().unwrap();
        assert_eq!(unlocked.len(), 2, "{}", answer.body);
    }
    let wall = wall(&members[0]).await;
    for code in ["first_checkin", "first_points"] {
        assert_eq!(entry(&wall, code).unwrap()["rarity"], 1.0, "{code}");
    }
    assert_audit_ok(&admin).await;
}
