//! The points mall over HTTP: races for stock, idempotency, limits, the points+cash ladder,
//! unpaid orders, coupons, shipping, crowdfunds, donations and price campaigns.

use api::auth::AdminRole;
use loyalty_tests::{Gql, TestAdmin, TestMember, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::points::{adjust, assert_audit_ok, points_of};

const UPSERT_ITEM: &str =
    "mutation($input: MallItemInput!) { upsertMallItem(input: $input) { id name stock active } }";
const REDEEM: &str = "mutation($input: RedeemInput!) { redeem(input: $input) { id quantity pointsCost cashDue status coupon { name value status } } }";
const QUOTE: &str = "query($id: ID!, $q: Int!, $p: Int) { redeemQuote(itemId: $id, quantity: $q, pointsToUse: $p) { pointsCost cashDue maxPointsDeduction affordable reasonIfNot } }";
const ITEM: &str = "query($id: ID!) { mallItem(id: $id) { id pointsPrice cashPrice stock } }";

async fn item(admin: &TestAdmin<'_>, fields: Value) -> String {
    let mut input = json!({ "name": "奶瓶", "description": "", "category": "supplies", "kind": "PHYSICAL", "pointsPrice": 10, "stock": 5 });
    input
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let answer = admin.gql(UPSERT_ITEM, json!({ "input": input })).await;
    answer.data()["upsertMallItem"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn redeem(
    member: &TestMember<'_>,
    item: &str,
    quantity: i64,
    points_to_use: Option<i64>,
    key: &str,
) -> Gql {
    member
        .gql(REDEEM, json!({ "input": { "itemId": item, "quantity": quantity, "pointsToUse": points_to_use, "idempotencyKey": key } }))
        .await
}

async fn stock(member: &TestMember<'_>, item: &str) -> i64 {
    member.gql(ITEM, json!({ "id": item })).await.data()["mallItem"]["stock"]
        .as_i64()
        .unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_members_race_for_five_units_and_exactly_five_win() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 5, "pointsPrice": 10 })).await;
    let mut members = Vec::new();
    for i in 0..24 {
        let m = app.login(&format!("racer{i}")).await;
        adjust(&admin, &m, 50, &format!("seed{i}")).await.data();
        members.push(m);
    }
    let attempts = members.iter().enumerate().map(|(i, m)| {
        let (id, key) = (&id, format!("buy{i}"));
        async move { redeem(m, id, 1, None, &key).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let won = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(won, 5);
    assert!(
        answers
            .iter()
            .filter(|a| a.body.get("errors").is_some())
            .all(|a| a.error_code() == Some("OUT_OF_STOCK"))
    );
    let mut untouched = 0;
    for m in &members {
        match points_of(m).await.0 {
            50 => untouched += 1,
            40 => {}
            other => panic!("a member has {other} points"),
        }
    }
    assert_eq!(untouched, 19);
    assert_eq!(stock(&members[0], &id).await, 0);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_returns_the_same_order_and_another_input_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({})).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    let first = redeem(&alice, &id, 1, None, "k1").await;
    let again = redeem(&alice, &id, 1, None, "k1").await;
    assert_eq!(first.data()["redeem"]["id"], again.data()["redeem"]["id"]);
    assert_eq!(first.data()["redeem"]["status"], "PAID");
    redeem(&alice, &id, 2, None, "k1")
        .await
        .expect_error("CONFLICT");
    assert_eq!(points_of(&alice).await.0, 90);
    assert_eq!(stock(&alice, &id).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_item_sold_out_still_returns_its_order() {
    // Sold-out attempts are refused before the gate; the retry of one that went through is not.
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 1 })).await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    adjust(&admin, &alice, 100, "fund-a").await.data();
    adjust(&admin, &bob, 100, "fund-b").await.data();
    let first = redeem(&alice, &id, 1, None, "k1").await;
    let order = first.data()["redeem"]["id"].clone();
    redeem(&bob, &id, 1, None, "k1")
        .await
        .expect_error("OUT_OF_STOCK");
    let retry = redeem(&alice, &id, 1, None, "k1").await;
    assert_eq!(retry.data()["redeem"]["id"], order);
    redeem(&alice, &id, 1, None, "k2")
        .await
        .expect_error("OUT_OF_STOCK");
    assert_eq!(points_of(&alice).await.0, 90);
    assert_eq!(points_of(&bob).await.0, 100);
    assert_eq!(stock(&alice, &id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_member_limit_holds_when_one_member_fires_ten_at_once() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 100, "perMemberLimit": 2 })).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let attempts = (0..10).map(|i| {
        let (alice, id, key) = (&alice, &id, format!("k{i}"));
        async move { redeem(alice, id, 1, None, &key).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body.get("errors").is_none())
            .count(),
        2
    );
    let refused = answers
        .iter()
        .find(|a| a.body.get("errors").is_some())
        .unwrap();
    assert_eq!(
        refused.expect_error("LIMIT_REACHED")["extensions"]["limit"],
        2
    );
    assert_eq!(points_of(&alice).await.0, 980);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_sets_how_much_points_may_pay_and_unpaid_orders_are_cancelled() {
    let app = spawn_app().await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let cash = |yuan: &str| json!({ "pointsPrice": 0, "cashPrice": yuan, "stock": 10 });
    let (i200, i300, i50) = (
        item(&admin, cash("200.00")).await,
        item(&admin, cash("300.00")).await,
        item(&admin, cash("50.00")).await,
    );
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 5000, "fund").await.data();
    let max = |id: String| {
        let alice = &alice;
        async move {
            alice.gql(QUOTE, json!({ "id": id, "q": 1 })).await.data()["redeemQuote"]["maxPointsDeduction"].as_i64().unwrap()
        }
    };
    assert_eq!(max(i200.clone()).await, 1000);
    assert_eq!(max(i300.clone()).await, 2400);
    assert_eq!(max(i50.clone()).await, 0);
    let quoted = alice
        .gql(QUOTE, json!({ "id": i200, "q": 1, "p": 500 }))
        .await;
    assert_eq!(
        quoted.data()["redeemQuote"],
        json!({ "pointsCost": 500, "cashDue": "150.00", "maxPointsDeduction": 1000, "affordable": true, "reasonIfNot": null })
    );
    let order = redeem(&alice, &i200, 1, Some(500), "cash-1").await;
    let order = order.data()["redeem"].clone();
    assert_eq!(
        (
            order["status"].as_str(),
            order["cashDue"].as_str(),
            order["pointsCost"].as_i64()
        ),
        (Some("PENDING_PAYMENT"), Some("150.00"), Some(500))
    );
    assert_eq!(
        points_of(&alice).await.0,
        4500,
        "points are held while payment is pending"
    );
    assert_eq!(stock(&alice, &i200).await, 9);

    // 29 minutes later nothing happens; past 30 the order is cancelled, points and stock return.
    app.at("2026-06-01T10:29:00+08:00");
    assert_eq!(run_job(&admin, "CANCEL_UNPAID_ORDERS").await, 0);
    app.at("2026-06-01T10:31:00+08:00");
    assert_eq!(run_job(&admin, "CANCEL_UNPAID_ORDERS").await, 1);
    assert_eq!(points_of(&alice).await.0, 5000);
    assert_eq!(stock(&alice, &i200).await, 10);
    let orders = alice
        .gql("{ myOrders { nodes { status } } }", json!({}))
        .await;
    assert_eq!(orders.data()["myOrders"]["nodes"][0]["status"], "CANCELLED");
    // Paying a cancelled order is refused.
    let shop = app.admin(AdminRole::Integration).await;
    shop.gql("mutation($o: ID!) { confirmOrderPayment(orderId: $o, transactionId: \"wx-1\") { status } }", json!({ "o": order["id"] }))
        .await
        .expect_error("NOT_AVAILABLE");
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_points_plus_cash_order_ships() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let shop = app.admin(AdminRole::Integration).await;
    let id = item(&admin, json!({ "pointsPrice": 100, "cashPrice": "300.00" })).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 10_000, "fund").await.data();
    // Asking for more than the ladder allows is capped at 80 % of 300 yuan.
    let order = redeem(&alice, &id, 1, Some(9000), "k").await;
    let order = order.data()["redeem"].clone();
    assert_eq!(
        (order["pointsCost"].as_i64(), order["cashDue"].as_str()),
        (Some(100 + 2400), Some("60.00"))
    );
    let confirm = "mutation($o: ID!, $t: String!) { confirmOrderPayment(orderId: $o, transactionId: $t) { status } }";
    shop.gql(confirm, json!({ "o": order["id"], "t": "wx-9" }))
        .await
        .data();
    let again = shop
        .gql(confirm, json!({ "o": order["id"], "t": "wx-9" }))
        .await;
    assert_eq!(again.data()["confirmOrderPayment"]["status"], "PAID");
    admin
        .gql(confirm, json!({ "o": order["id"], "t": "wx-9" }))
        .await
        .expect_error("FORBIDDEN");
    let ship =
        "mutation($o: ID!) { shipOrder(orderId: $o, trackingNo: \"SF123\") { status trackingNo } }";
    let shipped = admin.gql(ship, json!({ "o": order["id"] })).await;
    assert_eq!(
        shipped.data()["shipOrder"],
        json!({ "status": "SHIPPED", "trackingNo": "SF123" })
    );
    alice
        .gql(
            "mutation($o: ID!) { cancelOrder(orderId: $o) { status } }",
            json!({ "o": order["id"] }),
        )
        .await
        .expect_error("NOT_AVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupon_items_issue_coupons_and_cancelling_takes_them_back() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(
        &admin,
        json!({ "name": "满100减20券", "kind": "COUPON", "pointsPrice": 30, "couponValue": "20.00", "couponThreshold": "100.00", "couponValidDays": 30 }),
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    let order = redeem(&alice, &id, 2, None, "c1").await;
    let order = order.data()["redeem"].clone();
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(
        order["coupon"],
        json!({ "name": "满100减20券", "value": "20.00", "status": "AVAILABLE" })
    );
    let coupons = alice
        .gql(
            "{ myCoupons(status: AVAILABLE) { name threshold } }",
            json!({}),
        )
        .await;
    assert_eq!(coupons.data()["myCoupons"].as_array().unwrap().len(), 2);
    let cancelled = alice
        .gql(
            "mutation($o: ID!) { cancelOrder(orderId: $o) { status } }",
            json!({ "o": order["id"] }),
        )
        .await;
    assert_eq!(cancelled.data()["cancelOrder"]["status"], "CANCELLED");
    assert_eq!(
        alice.gql("{ myCoupons { id } }", json!({})).await.data()["myCoupons"],
        json!([])
    );
    assert_eq!(points_of(&alice).await.0, 100);
    let ledger = alice
        .gql(
            "{ pointsLedger(first: 1) { nodes { kind delta } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ledger.data()["pointsLedger"]["nodes"][0],
        json!({ "kind": "REFUND", "delta": 60 })
    );
    alice
        .gql(
            "mutation($o: ID!) { cancelOrder(orderId: $o) { status } }",
            json!({ "o": order["id"] }),
        )
        .await
        .expect_error("ALREADY_DONE");
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_redemptions_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let plain = item(&admin, json!({})).await;
    let later = item(&admin, json!({ "startsAt": "2026-07-01T00:00:00Z" })).await;
    let gold = item(&admin, json!({ "minTierRank": 2 })).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    for quantity in [0, -1, 101] {
        let refused = redeem(&alice, &plain, quantity, None, &format!("q{quantity}")).await;
        assert_eq!(
            refused.expect_error("VALIDATION")["extensions"]["field"],
            "quantity"
        );
    }
    let negative = redeem(&alice, &plain, 1, Some(-5), "neg").await;
    assert_eq!(
        negative.expect_error("VALIDATION")["extensions"]["field"],
        "pointsToUse"
    );
    redeem(&alice, "999999", 1, None, "nf")
        .await
        .expect_error("NOT_FOUND");
    redeem(&alice, &later, 1, None, "w")
        .await
        .expect_error("NOT_AVAILABLE");
    redeem(&alice, &gold, 1, None, "t")
        .await
        .expect_error("NOT_AVAILABLE");
    let poor = app.login("bob").await;
    let short = redeem(&poor, &plain, 1, None, "p").await;
    assert_eq!(
        short.expect_error("INSUFFICIENT_POINTS")["extensions"]["needed"],
        10
    );
    assert_eq!(points_of(&alice).await.0, 100);
    assert_eq!(stock(&alice, &plain).await, 5);
    let quote = alice.gql(QUOTE, json!({ "id": gold, "q": 1 })).await;
    assert_eq!(quote.data()["redeemQuote"]["affordable"], false);
    assert!(
        quote.data()["redeemQuote"]["reasonIfNot"]
            .as_str()
            .unwrap()
            .contains("tier")
    );
    let listed = alice.gql("{ mallItems { nodes { id } } }", json!({})).await;
    let ids: Vec<&str> = listed.data()["mallItems"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&plain.as_str()) && !ids.contains(&later.as_str()),
        "items outside their window are not listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowdfund_funded_by_three_creates_one_order_and_an_expired_one_refunds_all() {
    let app = spawn_app().await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(
        &admin,
        json!({ "name": "婴儿车", "pointsPrice": 300, "stock": 2, "crowdfundable": true }),
    )
    .await;
    let names = ["alice", "bob", "carol"];
    let mut members = Vec::new();
    for name in names {
        let m = app.login(name).await;
        adjust(&admin, &m, 200, "fund").await.data();
        members.push(m);
    }
    let start = "mutation($i: ID!) { startCrowdfund(itemId: $i) { id targetPoints status } }";
    let give = "mutation($c: ID!, $p: Int!, $k: String!) { contributeCrowdfund(crowdfundId: $c, points: $p, idempotencyKey: $k) {
        raisedPoints status contributions { memberNo points } } }";
    let pool = members[0].gql(start, json!({ "i": id })).await;
    let pool_id = pool.data()["startCrowdfund"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pool.data()["startCrowdfund"]["targetPoints"], 300);
    for m in &members {
        m.gql(give, json!({ "c": pool_id, "p": 100, "k": "g1" }))
            .await
            .data();
    }
    // A retry changes nothing; a fourth gift would pass the target.
    members[0]
        .gql(give, json!({ "c": pool_id, "p": 100, "k": "g1" }))
        .await
        .data();
    let funded = members[1]
        .gql(
            "query($c: ID!) { crowdfund(id: $c) { raisedPoints status contributions { points } } }",
            json!({ "c": pool_id }),
        )
        .await;
    assert_eq!(funded.data()["crowdfund"]["status"], "FUNDED");
    assert_eq!(
        funded.data()["crowdfund"]["contributions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let orders = members[0]
        .gql(
            "{ myOrders { nodes { pointsCost status item { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orders.data()["myOrders"]["nodes"],
        json!([{ "pointsCost": 300, "status": "PAID", "item": { "name": "婴儿车" } }])
    );
    members[1]
        .gql(give, json!({ "c": pool_id, "p": 10, "k": "late" }))
        .await
        .expect_error("NOT_AVAILABLE");

    let second = members[1].gql(start, json!({ "i": id })).await;
    let second_id = second.data()["startCrowdfund"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for m in &members {
        m.gql(give, json!({ "c": second_id, "p": 50, "k": "g2" }))
            .await
            .data();
    }
    members[0]
        .gql(give, json!({ "c": second_id, "p": 200, "k": "over" }))
        .await
        .expect_error("VALIDATION");
    app.at("2026-06-08T10:00:01+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    assert_eq!(run_job(&admin, "EXPIRE_CROWDFUNDS").await, 1);
    assert_eq!(run_job(&admin, "EXPIRE_CROWDFUNDS").await, 0);
    for name in names {
        let m = app.login(name).await;
        assert_eq!(
            points_of(&m).await.0,
            100,
            "{name} got the expired pool's 50 back"
        );
    }
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donations_add_up_and_count_each_donor_once() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let project = admin
        .gql("mutation { upsertDonationProject(input: { name: \"山区儿童图书\", description: \"\", targetPoints: 1000 }) { id raisedPoints } }", json!({}))
        .await;
    let pid = project.data()["upsertDonationProject"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (alice, bob) = (app.login("alice").await, app.login("bob").await);
    adjust(&admin, &alice, 500, "fund").await.data();
    adjust(&admin, &bob, 500, "fund").await.data();
    let donate = "mutation($p: ID!, $n: Int!, $k: String!) { donatePoints(projectId: $p, points: $n, idempotencyKey: $k) { raisedPoints donorCount progress } }";
    alice
        .gql(donate, json!({ "p": pid, "n": 200, "k": "d1" }))
        .await
        .data();
    alice
        .gql(donate, json!({ "p": pid, "n": 200, "k": "d1" }))
        .await
        .data();
    alice
        .gql(donate, json!({ "p": pid, "n": 100, "k": "d2" }))
        .await
        .data();
    let last = bob
        .gql(donate, json!({ "p": pid, "n": 200, "k": "d1" }))
        .await;
    assert_eq!(
        last.data()["donatePoints"],
        json!({ "raisedPoints": 500, "donorCount": 2, "progress": 0.5 })
    );
    alice
        .gql(donate, json!({ "p": pid, "n": 300, "k": "d1" }))
        .await
        .expect_error("CONFLICT");
    bob.gql(donate, json!({ "p": pid, "n": 0, "k": "d3" }))
        .await
        .expect_error("VALIDATION");
    assert_eq!(points_of(&alice).await.0, 200);
    let listed = alice
        .gql("{ donationProjects { name raisedPoints } }", json!({}))
        .await;
    assert_eq!(listed.data()["donationProjects"][0]["raisedPoints"], 500);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumption_week_lowers_points_prices_while_it_runs() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_MUTATION_MEMBER".into(), "1000/60s".into());
    })
    .await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "pointsPrice": 100 })).await;
    let week = admin
        .gql(
            "mutation { upsertPriceCampaign(input: { name: \"积分消费周\", multiplier: \"0.7\", startsAt: \"2026-06-02T00:00:00+08:00\", endsAt: \"2026-06-09T00:00:00+08:00\" }) { id multiplier } }",
            json!({}),
        )
        .await;
    assert_eq!(week.data()["upsertPriceCampaign"]["multiplier"], "0.7");
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    assert_eq!(
        alice.gql(ITEM, json!({ "id": id })).await.data()["mallItem"]["pointsPrice"],
        100
    );
    app.at("2026-06-03T10:00:00+08:00");
    let alice = app.login("alice").await;
    assert_eq!(
        alice.gql(ITEM, json!({ "id": id })).await.data()["mallItem"]["pointsPrice"],
        70
    );
    assert_eq!(
        redeem(&alice, &id, 1, None, "w").await.data()["redeem"]["pointsCost"],
        70
    );
    let admin = app.admin(AdminRole::Operator).await;
    admin
        .gql("mutation { upsertPriceCampaign(input: { name: \"x\", multiplier: \"0\", startsAt: \"2026-06-02T00:00:00Z\", endsAt: \"2026-06-03T00:00:00Z\" }) { id } }", json!({}))
        .await
        .expect_error("VALIDATION");
    let bad_item = admin
        .gql(UPSERT_ITEM, json!({ "input": { "name": "x", "description": "", "category": "c", "kind": "TOY", "pointsPrice": 1, "stock": 1 } }))
        .await;
    assert_eq!(
        bad_item.expect_error("VALIDATION")["extensions"]["field"],
        "kind"
    );
}

/// Hardening item 1: on PostgreSQL a prepared statement is cached per connection by its text, so
/// two code paths that build the same stock update with different integer types break each
/// other. One pooled connection makes every path share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redemptions_and_crowdfunds_share_one_connection_without_statement_clashes() {
    let app = spawn_app_with(|env| {
        env.insert("DATABASE_MAX_CONNECTIONS".into(), "1".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let plain = item(&admin, json!({ "stock": 10, "pointsPrice": 10 })).await;
    let pooled = item(
        &admin,
        json!({ "name": "婴儿车", "pointsPrice": 30, "stock": 10, "crowdfundable": true }),
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let start = "mutation($i: ID!) { startCrowdfund(itemId: $i) { id } }";
    let give = "mutation($c: ID!, $p: Int!, $k: String!) { contributeCrowdfund(crowdfundId: $c, points: $p, idempotencyKey: $k) { status } }";
    for round in 0..2 {
        redeem(&alice, &plain, 1, None, &format!("buy{round}"))
            .await
            .data();
        let pool = alice.gql(start, json!({ "i": pooled })).await;
        let pool_id = pool.data()["startCrowdfund"]["id"].as_str().unwrap();
        let funded = alice
            .gql(
                give,
                json!({ "c": pool_id, "p": 30, "k": format!("give{round}") }),
            )
            .await;
        assert_eq!(funded.data()["contributeCrowdfund"]["status"], "FUNDED");
    }
    assert_eq!(stock(&alice, &plain).await, 8);
    assert_eq!(stock(&alice, &pooled).await, 8);
    assert_audit_ok(&admin).await;
}

const START_POOL: &str = "mutation($i: ID!) { startCrowdfund(itemId: $i) { id status } }";
const GIVE: &str = "mutation($c: ID!, $p: Int!, $k: String!) { contributeCrowdfund(crowdfundId: $c, points: $p, idempotencyKey: $k) { status } }";

/// Hardening item 6: a crowdfund is a redemption for its initiator, under the item's rules:
/// a tier-0 member got 3 units of a rank-1, limit-1 item through three self-funded crowdfunds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowdfunds_keep_the_items_tier_and_per_member_limit_for_the_initiator() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let for_silver = item(
        &admin,
        json!({ "pointsPrice": 30, "stock": 10, "crowdfundable": true, "minTierRank": 1 }),
    )
    .await;
    let one_each = item(
        &admin,
        json!({ "pointsPrice": 30, "stock": 10, "crowdfundable": true, "perMemberLimit": 1 }),
    )
    .await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    adjust(&admin, &alice, 1000, "fund-a").await.data();
    adjust(&admin, &bob, 1000, "fund-b").await.data();

    alice
        .gql(START_POOL, json!({ "i": for_silver }))
        .await
        .expect_error("NOT_AVAILABLE");

    let pool = alice.gql(START_POOL, json!({ "i": one_each })).await;
    let pool_id = pool.data()["startCrowdfund"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An open pool holds the member's one unit: a second pool, or a redemption, is over it.
    let second = alice.gql(START_POOL, json!({ "i": one_each })).await;
    assert_eq!(
        second.expect_error("LIMIT_REACHED")["extensions"]["limit"],
        1
    );
    redeem(&alice, &one_each, 1, None, "direct")
        .await
        .expect_error("LIMIT_REACHED");
    // A friend's gift funds it; then the initiator has had their one.
    let funded = bob
        .gql(GIVE, json!({ "c": pool_id, "p": 30, "k": "gift" }))
        .await;
    assert_eq!(funded.data()["contributeCrowdfund"]["status"], "FUNDED");
    alice
        .gql(START_POOL, json!({ "i": one_each }))
        .await
        .expect_error("LIMIT_REACHED");
    // Bob may still start his own.
    bob.gql(START_POOL, json!({ "i": one_each })).await.data();
    assert_eq!(stock(&alice, &one_each).await, 9);
    assert_audit_ok(&admin).await;
}

/// Hardening item 6: the sale window is checked again when the pool would be funded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowdfund_cannot_be_funded_after_the_items_sale_ended() {
    let app = spawn_app().await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(
        &admin,
        json!({ "pointsPrice": 30, "stock": 10, "crowdfundable": true,
                "endsAt": "2026-06-02T10:00:00+08:00" }),
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let pool = alice.gql(START_POOL, json!({ "i": id })).await;
    let pool_id = pool.data()["startCrowdfund"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice
        .gql(GIVE, json!({ "c": pool_id, "p": 10, "k": "g1" }))
        .await
        .data();
    app.at("2026-06-03T10:00:00+08:00");
    let alice = app.login("alice").await;
    alice
        .gql(GIVE, json!({ "c": pool_id, "p": 20, "k": "g2" }))
        .await
        .expect_error("NOT_AVAILABLE");
    assert_eq!(points_of(&alice).await.0, 990);
    assert_eq!(stock(&alice, &id).await, 10);
    assert_audit_ok(&app.admin(AdminRole::Operator).await).await;
}

const CANCEL: &str = "mutation($o: ID!) { cancelOrder(orderId: $o) { id status } }";

/// Hardening item 11: a blind-box ITEM prize took no mall stock, yet cancelling its order added
/// stock back; a PRIVILEGE is delivered at redemption, yet its order could be cancelled for a
/// full refund. Neither can be cancelled now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prize_orders_and_delivered_privileges_cannot_be_cancelled() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let stroller = item(&admin, json!({ "name": "婴儿车", "stock": 5 })).await;
    let vip = item(
        &admin,
        json!({ "name": "VIP 客服", "kind": "PRIVILEGE", "stock": 5, "pointsPrice": 20 }),
    )
    .await;
    let the_box = admin
        .gql(
            "mutation($input: BlindBoxInput!) { upsertBlindBox(input: $input) { id } }",
            json!({ "input": { "name": "一定中", "description": "", "pointsPrice": 10, "prizes": [
                { "name": "婴儿车", "rarity": "COMMON", "kind": "ITEM", "weight": 1, "payload": stroller }
            ] } }),
        )
        .await;
    let box_id = the_box.data()["upsertBlindBox"]["id"].as_str().unwrap();
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    alice
        .gql(
            "mutation($b: ID!) { drawBlindBox(boxId: $b, count: 1, idempotencyKey: \"d1\") { pointsSpent } }",
            json!({ "b": box_id }),
        )
        .await
        .data();
    let privilege = redeem(&alice, &vip, 1, None, "vip").await;
    assert_eq!(privilege.data()["redeem"]["status"], "COMPLETED");
    let orders = alice
        .gql("{ myOrders { nodes { id item { name } } } }", json!({}))
        .await;
    for order in orders.data()["myOrders"]["nodes"].as_array().unwrap() {
        let refused = alice.gql(CANCEL, json!({ "o": order["id"] })).await;
        assert_eq!(
            refused.error_code(),
            Some("NOT_AVAILABLE"),
            "{}: {}",
            order["item"]["name"],
            refused.body
        );
    }
    assert_eq!(stock(&alice, &stroller).await, 5);
    assert_eq!(stock(&alice, &vip).await, 4);
    assert_eq!(points_of(&alice).await.0, 100 - 10 - 20);
    assert_audit_ok(&admin).await;
}

/// Sets an item's stock behind the stock gate's back (as another system writing the row would).
async fn set_stock_in_database(app: &loyalty_tests::TestApp, item: &str, stock: i64) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::mall_item::Entity::update_many()
        .col_expr(entity::mall_item::Column::Stock, Expr::value(stock))
        .filter(entity::mall_item::Column::Id.eq(item.parse::<i64>().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_out_item_is_refused_by_the_gate_until_a_write_puts_stock_back() {
    // With Redis the gate's count, without it the instance's sold-out flag, answers for a
    // sold-out item; stock that appears behind its back is not seen until an operator's edit or
    // a cancellation tells it.
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 1 })).await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    adjust(&admin, &alice, 100, "fund-a").await.data();
    adjust(&admin, &bob, 100, "fund-b").await.data();
    let order = redeem(&alice, &id, 1, None, "a1").await;
    let order = order.data()["redeem"]["id"].clone();
    redeem(&bob, &id, 1, None, "b1")
        .await
        .expect_error("OUT_OF_STOCK");

    set_stock_in_database(&app, &id, 3).await;
    redeem(&bob, &id, 1, None, "b2")
        .await
        .expect_error("OUT_OF_STOCK");
    assert_eq!(points_of(&bob).await.0, 100);

    // The operator's edit makes the gate read the stock again.
    let edit = json!({ "id": id, "name": "奶瓶", "description": "", "category": "supplies", "kind": "PHYSICAL", "pointsPrice": 10, "stock": 1 });
    admin
        .gql(UPSERT_ITEM, json!({ "input": edit }))
        .await
        .data();
    redeem(&bob, &id, 1, None, "b3").await.data();
    redeem(&bob, &id, 1, None, "b4")
        .await
        .expect_error("OUT_OF_STOCK");

    // So does a cancellation: its unit can be bought at once.
    let cancelled = alice
        .gql(
            "mutation($o: ID!) { cancelOrder(orderId: $o) { status } }",
            json!({ "o": order }),
        )
        .await;
    assert_eq!(cancelled.data()["cancelOrder"]["status"], "CANCELLED");
    redeem(&bob, &id, 1, None, "b5").await.data();
    assert_eq!(points_of(&bob).await.0, 80);
    assert_eq!(stock(&bob, &id).await, 0);
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_that_fails_after_the_gate_gives_its_unit_back() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 1, "pointsPrice": 50 })).await;
    let poor = app.login("poor").await;
    let rich = app.login("rich").await;
    adjust(&admin, &rich, 100, "fund").await.data();
    // Each of these passes the gate, then fails: the unit must stay for sale.
    for i in 0..3 {
        redeem(&poor, &id, 1, None, &format!("p{i}"))
            .await
            .expect_error("INSUFFICIENT_POINTS");
    }
    redeem(&rich, &id, 1, None, "r1").await.data();
    assert_eq!(stock(&rich, &id).await, 0);
    assert_eq!(points_of(&rich).await.0, 50);
}

/// Statements of the test database waiting for a row lock (PostgreSQL, MySQL); none on SQLite.
async fn lock_waiters(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        }
        DbBackend::MySql => {
            // MariaDB does not list a statement waiting for a row lock in innodb_trx; the
            // process list shows the runner's member lock (an UPDATE of `member`) waiting.
            "SELECT count(*) AS n FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE 'UPDATE `member`%'"
        }
        _ => return 0,
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_first_attempt_still_runs_gets_its_order_not_out_of_stock() {
    // The first attempt holds the last unit and waits for the member's lock (held here); its
    // retry, under the same key, must wait for it and replay, not be told the item is sold out.
    use sea_orm::{DbBackend, EntityTrait, QuerySelect, TransactionTrait};
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = item(&admin, json!({ "stock": 1 })).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100, "fund").await.data();
    let db = &app.state.db;
    let lock = db.begin().await.unwrap();
    let locking = db.get_database_backend() != DbBackend::Sqlite;
    if locking {
        entity::member::Entity::find_by_id(alice.id.parse::<i64>().unwrap())
            .lock_exclusive()
            .one(&lock)
            .await
            .unwrap();
    }
    let first = redeem(&alice, &id, 1, None, "same");
    let retry = redeem(&alice, &id, 1, None, "same");
    tokio::pin!(first, retry);
    let (mut first_answer, mut retry_answer) = (None, None);
    // Until both wait for the lock, or one has answered (which a correct gate never lets happen).
    while locking && first_answer.is_none() && retry_answer.is_none() {
        tokio::select! {
            answer = &mut first => first_answer = Some(answer),
            answer = &mut retry => retry_answer = Some(answer),
            _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {
                if lock_waiters(db).await >= 2 {
                    break;
                }
            }
        }
    }
    lock.commit().await.unwrap();
    let first_answer = match first_answer {
        Some(answer) => answer,
        None => first.await,
    };
    let retry_answer = match retry_answer {
        Some(answer) => answer,
        None => retry.await,
    };
    assert_eq!(
        first_answer.data()["redeem"]["id"],
        retry_answer.data()["redeem"]["id"]
    );
    assert_eq!(points_of(&alice).await.0, 90);
    assert_eq!(stock(&alice, &id).await, 0);
}
