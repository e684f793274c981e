//! Member center over HTTP: tiers, purchases and refunds, upgrades and re-evaluation,
//! birthdays, earning rules, RFM and the operator's member views.

use api::auth::AdminRole;
use loyalty_tests::{Gql, TestAdmin, TestApp, TestMember, spawn_app};
use serde_json::{Value, json};

use crate::points::assert_audit_ok;

const RECORD: &str = "mutation($input: PurchaseInput!) { recordPurchase(input: $input) {
    orderNo pointsAwarded growthAwarded applied member { points growthValue tierCode } } }";
const REFUND: &str = "mutation($o: String!) { refundPurchase(orderNo: $o) {
    pointsAwarded growthAwarded applied member { points growthValue } } }";
const ME: &str = "{ me { points growthValue tier { code name } tierValidUntil protectionSprint
    nextTier { tier { code } growthNeeded ratio } downgradePreview { code } } }";

async fn buy(
    shop: &TestAdmin<'_>,
    member: &TestMember<'_>,
    order: &str,
    amount: &str,
    paid_at: &str,
) -> Gql {
    shop.gql(
        RECORD,
        json!({ "input": { "orderNo": order, "memberNo": member.member_no, "amount": amount, "paidAt": paid_at } }),
    )
    .await
}

async fn me(member: &TestMember<'_>) -> Value {
    member.gql(ME, json!({})).await.data()["me"].clone()
}

async fn run_job(admin: &TestAdmin<'_>, name: &str) -> i64 {
    let run = admin
        .gql(
            "mutation($n: JobName!) { runJob(name: $n) { affected } }",
            json!({ "n": name }),
        )
        .await;
    run.data()["runJob"]["affected"].as_i64().unwrap()
}

/// Signs in the shop's order system, an operator and a member, at the current test time.
async fn cast(app: &TestApp) -> (TestAdmin<'_>, TestAdmin<'_>, TestMember<'_>) {
    (
        app.admin(AdminRole::Integration).await,
        app.admin(AdminRole::Operator).await,
        app.login("alice").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tier_ladder_is_served_lowest_first() {
    let app = spawn_app().await;
    let tiers = app
        .gql(
            None,
            "{ tiers { code name rank growthThreshold discount pointsMultiplier benefits } }",
            json!({}),
        )
        .await;
    let tiers = tiers.data()["tiers"].as_array().unwrap().clone();
    let names: Vec<_> = tiers.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["普通", "银卡", "金卡", "钻石"]);
    assert_eq!(tiers[1]["growthThreshold"], 1000);
    assert_eq!(tiers[1]["discount"], "0.95");
    assert_eq!(tiers[3]["pointsMultiplier"], "2.0");
    assert!(!tiers[2]["benefits"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_earns_points_and_growth_once_and_a_refund_takes_both_back() {
    let app = spawn_app().await;
    app.at("2026-06-10T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    let first = buy(&shop, &alice, "SO-1", "100.00", "2026-06-10T11:00:00+08:00").await;
    let r = &first.data()["recordPurchase"];
    assert_eq!(
        (
            r["pointsAwarded"].as_i64(),
            r["growthAwarded"].as_i64(),
            r["applied"].as_bool()
        ),
        (Some(100), Some(60), Some(true))
    );
    let again = buy(&shop, &alice, "SO-1", "100.00", "2026-06-10T11:00:00+08:00").await;
    assert_eq!(again.data()["recordPurchase"]["applied"], false);
    assert_eq!(again.data()["recordPurchase"]["pointsAwarded"], 100);
    buy(&shop, &alice, "SO-1", "120.00", "2026-06-10T11:00:00+08:00")
        .await
        .expect_error("CONFLICT");
    let mine = me(&alice).await;
    assert_eq!(
        (mine["points"].as_i64(), mine["growthValue"].as_i64()),
        (Some(100), Some(60))
    );

    let refund = shop.gql(REFUND, json!({ "o": "SO-1" })).await;
    let r = &refund.data()["refundPurchase"];
    assert_eq!(
        (
            r["pointsAwarded"].as_i64(),
            r["growthAwarded"].as_i64(),
            r["applied"].as_bool()
        ),
        (Some(-100), Some(-60), Some(true))
    );
    assert_eq!(r["member"], json!({ "points": 0, "growthValue": 0 }));
    let again = shop.gql(REFUND, json!({ "o": "SO-1" })).await;
    assert_eq!(again.data()["refundPurchase"]["applied"], false);
    assert_eq!(me(&alice).await["points"], 0);
    shop.gql(REFUND, json!({ "o": "NOPE" }))
        .await
        .expect_error("NOT_FOUND");
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_never_takes_the_balance_below_zero() {
    let app = spawn_app().await;
    let (shop, operator, alice) = cast(&app).await;
    let bob = app.login("bob").await;
    buy(&shop, &alice, "SO-2", "100", "2026-01-01T00:00:00Z")
        .await
        .data();
    alice
        .gql(
            "mutation($to: String!) { transferPoints(toMemberNo: $to, amount: 80, idempotencyKey: \"gift\") { id } }",
            json!({ "to": bob.member_no }),
        )
        .await
        .data();
    let refund = shop.gql(REFUND, json!({ "o": "SO-2" })).await;
    assert_eq!(
        refund.data()["refundPurchase"]["pointsAwarded"],
        -20,
        "only what was left is taken back"
    );
    assert_eq!(me(&alice).await["points"], 0);
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_order_sent_ten_times_at_once_counts_once() {
    let app = spawn_app().await;
    let (shop, operator, alice) = cast(&app).await;
    let sends = (0..10).map(|_| buy(&shop, &alice, "SO-X", "50.00", "2026-01-01T00:00:00Z"));
    let answers = futures_util::future::join_all(sends).await;
    let applied = answers
        .iter()
        .filter(|a| a.data()["recordPurchase"]["applied"] == true)
        .count();
    assert_eq!(applied, 1);
    assert_eq!(me(&alice).await["points"], 50);
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_one_thousand_growth_upgrades_to_silver_at_once() {
    let app = spawn_app().await;
    app.at("2026-06-10T12:00:00+08:00");
    let (shop, _, alice) = cast(&app).await;
    let before = me(&alice).await;
    assert_eq!(before["tier"]["code"], "normal");
    assert_eq!(before["nextTier"]["growthNeeded"], 1000);
    buy(
        &shop,
        &alice,
        "SO-1",
        "1666.00",
        "2026-06-10T11:00:00+08:00",
    )
    .await
    .data();
    assert_eq!(
        me(&alice).await["tier"]["code"],
        "normal",
        "999 growth is not enough"
    );
    buy(&shop, &alice, "SO-2", "2.00", "2026-06-10T11:30:00+08:00")
        .await
        .data();
    let after = me(&alice).await;
    assert_eq!(after["growthValue"], 1000);
    assert_eq!(after["tier"], json!({ "code": "silver", "name": "银卡" }));
    assert_eq!(after["tierValidUntil"], "2027-06-10T04:00:00+00:00");
    assert_eq!(after["nextTier"]["tier"]["code"], "gold");
    assert_eq!(after["nextTier"]["growthNeeded"], 4000);
    assert_eq!(after["protectionSprint"], false);
    // Silver earns 1.2 points per yuan.
    let silver = buy(&shop, &alice, "SO-3", "100.00", "2026-06-10T11:40:00+08:00").await;
    assert_eq!(silver.data()["recordPurchase"]["pointsAwarded"], 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_end_of_validity_little_growth_drops_one_tier() {
    let app = spawn_app().await;
    app.at("2026-01-15T12:00:00+08:00");
    let (shop, _, alice) = cast(&app).await;
    buy(
        &shop,
        &alice,
        "SO-1",
        "8500.00",
        "2026-01-15T11:00:00+08:00",
    )
    .await
    .data();
    assert_eq!(me(&alice).await["tier"]["code"], "gold");

    // In the last 30 days the sprint is on, purchase points double, and the preview warns.
    app.at("2026-12-25T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    let sprint = me(&alice).await;
    assert_eq!(sprint["protectionSprint"], true);
    assert_eq!(
        sprint["downgradePreview"],
        Value::Null,
        "the old purchase still counts"
    );
    let doubled = buy(&shop, &alice, "SO-2", "10.00", "2026-12-25T11:00:00+08:00").await;
    assert_eq!(
        doubled.data()["recordPurchase"]["pointsAwarded"],
        30,
        "10 x 1.5 x 2"
    );
    assert_eq!(
        run_job(&operator, "EVALUATE_TIERS").await,
        0,
        "validity has not ended yet"
    );

    app.at("2027-01-16T12:00:00+08:00");
    let (_, operator, alice) = cast(&app).await;
    assert_eq!(me(&alice).await["downgradePreview"]["code"], "silver");
    assert_eq!(run_job(&operator, "EVALUATE_TIERS").await, 1);
    let after = me(&alice).await;
    assert_eq!(
        after["tier"]["code"], "silver",
        "gold drops one step, not to the bottom"
    );
    assert_eq!(after["tierValidUntil"], "2028-01-16T04:00:00+00:00");
    assert_eq!(run_job(&operator, "EVALUATE_TIERS").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_birthday_month_purchase_earns_double_and_the_gift_comes_once_a_year() {
    let app = spawn_app().await;
    app.at("2026-05-10T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    alice
        .gql(
            "mutation { updateProfile(input: { birthday: \"1990-05-20\" }) { birthday } }",
            json!({}),
        )
        .await
        .data();
    let doubled = buy(&shop, &alice, "SO-1", "100.00", "2026-05-10T11:00:00+08:00").await;
    assert_eq!(doubled.data()["recordPurchase"]["pointsAwarded"], 200);
    let june = buy(&shop, &alice, "SO-2", "100.00", "2026-04-30T11:00:00+08:00").await;
    assert_eq!(
        june.data()["recordPurchase"]["pointsAwarded"],
        100,
        "April is not her month"
    );

    // Normal tier's gift is 20, plus half of it per purchase in the last 12 months.
    assert_eq!(run_job(&operator, "BIRTHDAY_REWARDS").await, 1);
    assert_eq!(
        run_job(&operator, "BIRTHDAY_REWARDS").await,
        0,
        "once a year"
    );
    assert_eq!(me(&alice).await["points"], 300 + 40);
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earning_rules_multiply_by_category_and_on_double_points_days() {
    let app = spawn_app().await;
    app.at("2026-11-11T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    let rules = operator
        .gql(
            "mutation($input: EarningRulesInput!) { updateEarningRules(input: $input) {
                pointsPerYuan categoryMultipliers { category multiplier } doublePointsDays maxPointsRatio } }",
            json!({ "input": { "pointsPerYuan": "1", "categoryMultipliers": [{ "category": "milk_powder", "multiplier": "3" }],
                "doublePointsDays": ["2026-11-11"], "maxPointsRatio": "0.5" } }),
        )
        .await;
    assert_eq!(
        rules.data()["updateEarningRules"]["doublePointsDays"],
        json!(["2026-11-11"])
    );
    let order = json!({ "input": { "orderNo": "SO-1", "memberNo": alice.member_no, "amount": "150.00",
        "lines": [{ "category": "milk_powder", "amount": "100.00" }, { "category": "toys", "amount": "50.00" }],
        "paidAt": "2026-11-11T10:00:00+08:00" } });
    let earned = shop.gql(RECORD, order).await;
    // (100 x 3 + 50 x 1) x 2 on 11.11 = 700, under the cap of 150 yuan x 10 x 0.5 = 750.
    assert_eq!(earned.data()["recordPurchase"]["pointsAwarded"], 700);
    operator
        .gql(
            "mutation($input: EarningRulesInput!) { updateEarningRules(input: $input) { maxPointsRatio } }",
            json!({ "input": { "pointsPerYuan": "0", "categoryMultipliers": [], "doublePointsDays": [], "maxPointsRatio": "0.5" } }),
        )
        .await
        .expect_error("VALIDATION");
    let read = operator
        .gql(
            "{ earningRules { maxPointsRatio categoryMultipliers { category } } }",
            json!({}),
        )
        .await;
    assert_eq!(read.data()["earningRules"]["maxPointsRatio"], "0.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_purchases_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    app.at("2026-06-10T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    let input = |extra: Value| {
        let mut base = json!({ "orderNo": "SO-BAD", "memberNo": alice.member_no, "amount": "100.00",
            "paidAt": "2026-06-10T11:00:00+08:00" });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "input": base })
    };
    let cases = [
        (json!({ "memberNo": "NOSUCH00" }), "NOT_FOUND", None),
        (json!({ "amount": "-5" }), "VALIDATION", Some("amount")),
        (json!({ "amount": "0" }), "VALIDATION", Some("amount")),
        (
            json!({ "amount": "99999999" }),
            "VALIDATION",
            Some("amount"),
        ),
        (json!({ "amount": "0.001" }), "VALIDATION", Some("amount")),
        (
            json!({ "lines": [{ "category": "a", "amount": "60" }] }),
            "VALIDATION",
            Some("lines"),
        ),
        (
            json!({ "paidAt": "2026-06-11T11:00:00+08:00" }),
            "VALIDATION",
            Some("paidAt"),
        ),
        (
            json!({ "openid": "mock_alice" }),
            "VALIDATION",
            Some("openid"),
        ),
        (json!({ "orderNo": "" }), "VALIDATION", Some("orderNo")),
    ];
    for (extra, code, field) in cases {
        let answer = shop.gql(RECORD, input(extra.clone())).await;
        let error = answer.expect_error(code);
        if let Some(field) = field {
            assert_eq!(error["extensions"]["field"], field, "{extra}");
        }
    }
    assert_eq!(me(&alice).await["points"], 0);
    // The order number is still free for the real order.
    buy(
        &shop,
        &alice,
        "SO-BAD",
        "100.00",
        "2026-06-10T11:00:00+08:00",
    )
    .await
    .data();
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_order_system_posts_purchases_and_it_reads_nothing_else() {
    let app = spawn_app().await;
    let (shop, operator, alice) = cast(&app).await;
    let auditor = app.admin(AdminRole::Auditor).await;
    buy(&operator, &alice, "SO-1", "10", "2026-01-01T00:00:00Z")
        .await
        .expect_error("FORBIDDEN");
    buy(&auditor, &alice, "SO-1", "10", "2026-01-01T00:00:00Z")
        .await
        .expect_error("FORBIDDEN");
    shop.gql("{ members { nodes { id } } }", json!({}))
        .await
        .expect_error("FORBIDDEN");
    shop.gql("{ ledgerAudit { ok } }", json!({}))
        .await
        .expect_error("FORBIDDEN");
    buy(&shop, &alice, "SO-1", "10", "2026-01-01T00:00:00Z")
        .await
        .data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_members_and_see_their_standing() {
    let app = spawn_app().await;
    let (shop, operator, alice) = cast(&app).await;
    app.login("bob").await;
    alice
        .gql(
            "mutation { updateProfile(input: { nickname: \"小爱同学\" }) { nickname } }",
            json!({}),
        )
        .await
        .data();
    buy(&shop, &alice, "SO-1", "2000", "2026-01-01T00:00:00Z")
        .await
        .data();
    let by = |search: &str| {
        operator.gql(
            "query($s: String) { members(search: $s) { nodes { id memberNo openid nickname points growthValue tierCode } } }",
            json!({ "s": search }),
        )
    };
    for search in [
        alice.member_no.to_lowercase(),
        "mock_alice".to_string(),
        "小爱".to_string(),
    ] {
        let found = by(&search).await;
        let nodes = found.data()["members"]["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes.len(), 1, "{search}");
        assert_eq!(nodes[0]["tierCode"], "silver");
        assert_eq!(nodes[0]["growthValue"], 1200);
    }
    let all = by("").await;
    assert_eq!(all.data()["members"]["nodes"].as_array().unwrap().len(), 2);
    let one = operator
        .gql(
            "query($id: ID!) { member(id: $id) { memberNo points } }",
            json!({ "id": alice.id }),
        )
        .await;
    assert_eq!(one.data()["member"]["points"], 2000);
    let none = operator
        .gql("{ member(id: \"999999\") { memberNo } }", json!({}))
        .await;
    assert_eq!(none.data()["member"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfm_scores_everyone_into_a_segment() {
    let app = spawn_app().await;
    app.at("2026-06-10T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    app.login("bob").await;
    app.login("carol").await;
    for (i, paid) in ["2026-06-01", "2026-06-05", "2026-06-09"]
        .iter()
        .enumerate()
    {
        buy(
            &shop,
            &alice,
            &format!("SO-{i}"),
            "500",
            &format!("{paid}T10:00:00+08:00"),
        )
        .await
        .data();
    }
    assert_eq!(run_job(&operator, "REFRESH_RFM").await, 3);
    let segments = operator
        .gql("{ rfmSegments { segment members } }", json!({}))
        .await;
    let segments = segments.data()["rfmSegments"].as_array().unwrap().clone();
    let count = |name: &str| {
        segments.iter().find(|s| s["segment"] == name).unwrap()["members"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("important_value"), 1);
    assert_eq!(count("unscored"), 0);
    assert_eq!(
        segments
            .iter()
            .take(8)
            .map(|s| s["members"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
    let view = operator
        .gql(
            "query($id: ID!) { member(id: $id) { rfmSegment } }",
            json!({ "id": alice.id }),
        )
        .await;
    assert_eq!(view.data()["member"]["rfmSegment"], "important_value");
    // Ninety idle days later everyone is dormant.
    app.at("2026-09-10T12:00:00+08:00");
    let operator = app.admin(AdminRole::Operator).await;
    let later = operator
        .gql("{ rfmSegments { segment members } }", json!({}))
        .await;
    let dormant = later.data()["rfmSegments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == "dormant")
        .unwrap()["members"]
        .clone();
    assert_eq!(dormant, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_edit_tiers_within_a_consistent_ladder() {
    let app = spawn_app().await;
    let operator = app.admin(AdminRole::Operator).await;
    let upsert = "mutation($input: TierInput!) { upsertTier(input: $input) { code name rank growthThreshold } }";
    let tier = |code: &str, rank: i32, threshold: i64| {
        json!({ "input": { "code": code, "name": "黑金", "rank": rank, "growthThreshold": threshold,
            "discount": "0.80", "pointsMultiplier": "2.5", "benefits": ["专属管家"] } })
    };
    let added = operator.gql(upsert, tier("black", 4, 50000)).await;
    assert_eq!(added.data()["upsertTier"]["rank"], 4);
    let renamed = operator
        .gql(
            upsert,
            json!({ "input": { "code": "silver", "name": "白银", "rank": 1, "growthThreshold": 1200,
            "discount": "0.95", "pointsMultiplier": "1.2", "benefits": [] } }),
        )
        .await;
    assert_eq!(renamed.data()["upsertTier"]["growthThreshold"], 1200);
    operator
        .gql(upsert, tier("odd", 5, 100))
        .await
        .expect_error("VALIDATION");
    operator
        .gql(upsert, tier("dup", 2, 60000))
        .await
        .expect_error("VALIDATION");
    let tiers = app.gql(None, "{ tiers { code } }", json!({})).await;
    assert_eq!(tiers.data()["tiers"].as_array().unwrap().len(), 5);
    let auditor = app.admin(AdminRole::Auditor).await;
    auditor
        .gql(upsert, tier("x", 6, 90000))
        .await
        .expect_error("FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_after_a_downgrade_takes_back_growth_and_leaves_the_tier_to_evaluation() {
    let app = spawn_app().await;
    app.at("2026-01-15T12:00:00+08:00");
    let (shop, _, alice) = cast(&app).await;
    buy(
        &shop,
        &alice,
        "SO-1",
        "2000.00",
        "2026-01-15T11:00:00+08:00",
    )
    .await
    .data();
    assert_eq!(me(&alice).await["tier"]["code"], "silver");
    app.at("2027-01-16T12:00:00+08:00");
    let (shop, operator, alice) = cast(&app).await;
    assert_eq!(run_job(&operator, "EVALUATE_TIERS").await, 1);
    assert_eq!(me(&alice).await["tier"]["code"], "normal");
    let refund = shop.gql(REFUND, json!({ "o": "SO-1" })).await;
    assert_eq!(refund.data()["refundPurchase"]["growthAwarded"], -1200);
    let after = me(&alice).await;
    assert_eq!(
        (after["growthValue"].as_i64(), after["points"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(after["tier"]["code"], "normal");
    assert_eq!(
        after["downgradePreview"],
        Value::Null,
        "nothing below the base tier"
    );
    assert_audit_ok(&operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_activity_keeps_a_member_off_the_at_risk_list() {
    let app = spawn_app().await;
    app.at("2026-01-01T12:00:00+08:00");
    let (_, operator, alice) = cast(&app).await;
    let bob = app.login("bob").await;
    crate::points::adjust(&operator, &alice, 100, "fund")
        .await
        .data();
    // Twenty days on, alice comes back through her refresh token (not a login) and gives points.
    app.at("2026-01-21T12:00:00+08:00");
    let refreshed = app
        .gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({ "t": alice.refresh_token }),
        )
        .await;
    let token = refreshed.data()["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&token),
        "mutation($to: String!) { transferPoints(toMemberNo: $to, amount: 5, idempotencyKey: \"k\") { id } }",
        json!({ "to": bob.member_no }),
    )
    .await
    .data();
    // 45 days after the logins: bob, who only received points, is at risk; alice is not.
    app.at("2026-02-15T12:00:00+08:00");
    let operator = app.admin(AdminRole::Operator).await;
    let list = operator
        .gql("{ rfmSegments { segment members } }", json!({}))
        .await;
    let count = |name: &str| {
        list.data()["rfmSegments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["segment"] == name)
            .unwrap()["members"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("at_risk"), 1);
}
