//! Blind boxes over HTTP: disclosed odds, pity, stock under concurrency, daily limits,
//! commit-reveal verification, prizes and the operator's statistics.

use api::auth::AdminRole;
use loyalty_tests::{Gql, TestAdmin, TestMember, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::points::{adjust, assert_audit_ok, points_of};

const UPSERT: &str = "mutation($input: BlindBoxInput!) { upsertBlindBox(input: $input) { id seedCommitment revealedSeeds } }";
const DRAW: &str = "mutation($b: ID!, $n: Int!, $k: String!) { drawBlindBox(boxId: $b, count: $n, idempotencyKey: $k) {
    pointsSpent draws { id pity nonce seedCommitment pool prize { id name rarity } } member { points } } }";
const BOX: &str = "query($b: ID!) { blindBox(id: $b) { myPityCount seedCommitment prizes { id name rarity probability stock } } }";

fn prize(name: &str, rarity: &str, weight: i64, stock: Option<i64>, payload: &str) -> Value {
    json!({ "name": name, "rarity": rarity, "kind": "POINTS", "weight": weight, "stock": stock, "payload": payload })
}

async fn make_box(
    admin: &TestAdmin<'_>,
    pity: Option<i64>,
    daily: Option<i64>,
    prizes: Vec<Value>,
) -> String {
    let input = json!({ "name": "萌宠盲盒", "description": "", "pointsPrice": 50, "dailyLimit": daily, "pityThreshold": pity, "prizes": prizes });
    let answer = admin.gql(UPSERT, json!({ "input": input })).await;
    answer.data()["upsertBlindBox"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn draw(member: &TestMember<'_>, box_id: &str, count: i64, key: &str) -> Gql {
    member
        .gql(DRAW, json!({ "b": box_id, "n": count, "k": key }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pity_gives_a_one_in_ten_thousand_prize_within_ten_draws() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(
        &admin,
        Some(10),
        None,
        vec![
            prize("贴纸", "COMMON", 9999, None, "1"),
            prize("金色徽章", "LEGENDARY", 1, None, "100"),
        ],
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let mut rarities = Vec::new();
    let mut pity_flags = Vec::new();
    for i in 0..10 {
        let answer = draw(&alice, &id, 1, &format!("d{i}")).await;
        let d = &answer.data()["drawBlindBox"]["draws"][0];
        rarities.push(d["prize"]["rarity"].as_str().unwrap().to_string());
        pity_flags.push(d["pity"].as_bool().unwrap());
    }
    let first_rare = rarities
        .iter()
        .position(|r| r != "COMMON")
        .expect("a rare prize within 10 draws");
    assert!(first_rare <= 9);
    if first_rare == 9 {
        assert!(pity_flags[9], "the tenth draw was decided by pity");
    }
    assert!(pity_flags.iter().filter(|p| **p).count() <= 1);
    let after = alice.gql(BOX, json!({ "b": id })).await;
    assert_eq!(after.data()["blindBox"]["myPityCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prize_of_stock_one_is_won_exactly_once_across_concurrent_draws() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(
        &admin,
        None,
        None,
        vec![
            prize("谢谢参与", "COMMON", 1, None, "1"),
            prize("限量公仔", "EPIC", 1_000_000, Some(1), "500"),
        ],
    )
    .await;
    let mut members = Vec::new();
    for i in 0..12 {
        let m = app.login(&format!("drawer{i}")).await;
        adjust(&admin, &m, 100, &format!("f{i}")).await.data();
        members.push(m);
    }
    let attempts = members.iter().map(|m| draw(m, &id, 1, "once"));
    let answers = futures_util::future::join_all(attempts).await;
    let winners = answers
        .iter()
        .filter(|a| a.data()["drawBlindBox"]["draws"][0]["prize"]["name"] == "限量公仔")
        .count();
    assert_eq!(winners, 1);
    let shown = members[0].gql(BOX, json!({ "b": id })).await;
    let prizes = shown.data()["blindBox"]["prizes"]
        .as_array()
        .unwrap()
        .clone();
    let doll = prizes.iter().find(|p| p["name"] == "限量公仔").unwrap();
    assert_eq!(
        (doll["stock"].as_i64(), doll["probability"].as_f64()),
        (Some(0), Some(0.0))
    );
    assert_eq!(
        prizes.iter().find(|p| p["name"] == "谢谢参与").unwrap()["probability"],
        1.0
    );
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_holds_and_resets_the_next_business_day() {
    let app = spawn_app().await;
    app.at("2026-06-01T22:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(
        &admin,
        None,
        Some(3),
        vec![prize("贴纸", "COMMON", 1, None, "1")],
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    draw(&alice, &id, 2, "a").await.data();
    let over = draw(&alice, &id, 2, "b").await;
    assert_eq!(over.expect_error("LIMIT_REACHED")["extensions"]["limit"], 3);
    draw(&alice, &id, 1, "c").await.data();
    draw(&alice, &id, 1, "d")
        .await
        .expect_error("LIMIT_REACHED");
    // 00:30 the next day at +08:00 is a new business day.
    app.at("2026-06-02T00:30:00+08:00");
    let alice = app.login("alice").await;
    draw(&alice, &id, 3, "e").await.data();
    assert_eq!(points_of(&alice).await.0, 1000 - 6 * 50 + 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revealed_seed_matches_its_commitment_and_reproduces_every_draw() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let prizes = vec![
        prize("贴纸", "COMMON", 70, None, "1"),
        prize("徽章", "RARE", 25, Some(50), "10"),
        prize("公仔", "EPIC", 5, Some(5), "100"),
    ];
    let id = make_box(&admin, Some(8), None, prizes).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 5000, "fund").await.data();
    let result = draw(&alice, &id, 10, "ten").await;
    let draws = result.data()["drawBlindBox"]["draws"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(draws.len(), 10);
    let commitment = draws[0]["seedCommitment"].as_str().unwrap().to_string();

    let rotated = admin
        .gql(
            "mutation($b: ID!) { rotateBlindBoxSeed(boxId: $b) { seedCommitment revealedSeeds } }",
            json!({ "b": id }),
        )
        .await;
    let rotated = &rotated.data()["rotateBlindBoxSeed"];
    let seed = rotated["revealedSeeds"][0].as_str().unwrap().to_string();
    assert_ne!(
        rotated["seedCommitment"].as_str().unwrap(),
        commitment,
        "a new seed is committed"
    );
    assert_eq!(api::blindbox::rules::commitment(&seed), commitment);

    let member_id: i64 = alice.id.parse().unwrap();
    let mine = alice
        .gql(
            "{ myDraws(first: 10) { nodes { id nonce revealedSeed pool prize { id } } } }",
            json!({}),
        )
        .await;
    for d in mine.data()["myDraws"]["nodes"].as_array().unwrap() {
        assert_eq!(d["revealedSeed"], seed.as_str());
        let pool: Vec<(i64, u64)> = d["pool"]
            .as_str()
            .unwrap()
            .split(',')
            .map(|p| {
                let (id, w) = p.split_once(':').unwrap();
                (id.parse().unwrap(), w.parse().unwrap())
            })
            .collect();
        let nonce = d["nonce"].as_i64().unwrap();
        let recomputed = api::blindbox::rules::verify(&seed, member_id, nonce, &pool).unwrap();
        assert_eq!(
            recomputed.to_string(),
            d["prize"]["id"].as_str().unwrap(),
            "draw {} verifies",
            d["id"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_ten_draws_keep_stock_and_points_whole() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_DRAW_MEMBER".into(), "1000/60s".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let prizes = vec![
        prize("贴纸", "COMMON", 50, None, "1"),
        prize("徽章", "RARE", 30, Some(40), "5"),
        prize("公仔", "EPIC", 20, Some(15), "20"),
    ];
    let id = make_box(&admin, Some(5), None, prizes).await;
    let mut members = Vec::new();
    for i in 0..50 {
        let m = app.login(&format!("m{i}")).await;
        adjust(&admin, &m, 500, &format!("f{i}")).await.data();
        members.push(m);
    }
    let attempts = members.iter().map(|m| draw(m, &id, 10, "ten"));
    let answers = futures_util::future::join_all(attempts).await;
    let mut drawn = 0;
    for a in &answers {
        let r = &a.data()["drawBlindBox"];
        assert_eq!(r["pointsSpent"], 500);
        drawn += r["draws"].as_array().unwrap().len();
    }
    assert_eq!(drawn, 500);
    let stats = admin
        .gql("query($b: ID!) { blindBoxStats(boxId: $b) { draws prizes { name count configuredProbability observedFrequency } } }", json!({ "b": id }))
        .await;
    let stats = &stats.data()["blindBoxStats"];
    assert_eq!(stats["draws"], 500);
    let count = |name: &str| {
        stats["prizes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["count"]
            .as_i64()
            .unwrap()
    };
    assert!(
        count("徽章") <= 40 && count("公仔") <= 15,
        "no prize beyond its stock"
    );
    let shown = members[0].gql(BOX, json!({ "b": id })).await;
    for p in shown.data()["blindBox"]["prizes"].as_array().unwrap() {
        assert!(p["stock"].as_i64().is_none_or(|s| s >= 0));
    }
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_draw_returns_the_same_draws() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(
        &admin,
        None,
        None,
        vec![prize("贴纸", "COMMON", 1, None, "1")],
    )
    .await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 500, "fund").await.data();
    let first = draw(&alice, &id, 3, "k").await;
    let again = draw(&alice, &id, 3, "k").await;
    assert_eq!(
        first.data()["drawBlindBox"]["draws"],
        again.data()["drawBlindBox"]["draws"]
    );
    draw(&alice, &id, 2, "k").await.expect_error("CONFLICT");
    assert_eq!(points_of(&alice).await.0, 500 - 150 + 3);
    let poor = app.login("bob").await;
    draw(&poor, &id, 1, "p")
        .await
        .expect_error("INSUFFICIENT_POINTS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prizes_are_given_as_points_coupons_items_and_hidden_tasks() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    admin
        .gql(
            "mutation { upsertTask(input: { code: \"secret\", name: \"秘密任务\", description: \"\", kind: \"HIDDEN\", event: \"checkin\", target: 1, rewardPoints: 5 }) { id } }",
            json!({}),
        )
        .await
        .data();
    let item = admin
        .gql(
            "mutation { upsertMallItem(input: { name: \"玩偶\", description: \"\", category: \"toys\", kind: \"PHYSICAL\", pointsPrice: 100, stock: 5 }) { id } }",
            json!({}),
        )
        .await;
    let item_id = item.data()["upsertMallItem"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .gql(
            "mutation { upsertAchievement(input: { code: \"lucky\", name: \"幸运儿\", description: \"\", category: \"x\", metric: \"blindbox.draws\", threshold: 1000, titleCode: \"lucky_star\", titleName: \"幸运星\" }) { code } }",
            json!({}),
        )
        .await
        .data();
    let kinds = [
        ("COUPON", "5.00"),
        ("ITEM", item_id.as_str()),
        ("HIDDEN_TASK", "secret"),
        ("TITLE", "lucky_star"),
    ];
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 500, "fund").await.data();
    for (kind, payload) in kinds {
        let only = json!({ "name": kind, "rarity": "COMMON", "kind": kind, "weight": 1, "stock": null, "payload": payload });
        let id = make_box(&admin, None, None, vec![only]).await;
        draw(&alice, &id, 1, kind).await.data();
    }
    let coupons = alice
        .gql("{ myCoupons { name value source } }", json!({}))
        .await;
    assert_eq!(
        coupons.data()["myCoupons"][0],
        json!({ "name": "COUPON", "value": "5.00", "source": "blindbox" })
    );
    let orders = alice
        .gql(
            "{ myOrders { nodes { pointsCost status item { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orders.data()["myOrders"]["nodes"][0],
        json!({ "pointsCost": 0, "status": "PAID", "item": { "name": "玩偶" } })
    );
    let tasks = alice.gql("{ tasks { task { code } } }", json!({})).await;
    assert!(
        tasks.data()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["task"]["code"] == "secret")
    );
    let titles = alice
        .gql("{ achievementWall { titles { code name } } }", json!({}))
        .await;
    assert_eq!(
        titles.data()["achievementWall"]["titles"],
        json!([{ "code": "lucky_star", "name": "幸运星" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boxes_must_disclose_a_prize_that_never_runs_out_and_payloads_that_resolve() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let attempt = |prizes: Vec<Value>, price: i64| {
        let input =
            json!({ "name": "x", "description": "", "pointsPrice": price, "prizes": prizes });
        admin.gql(UPSERT, json!({ "input": input }))
    };
    let field = |g: Gql| {
        g.expect_error("VALIDATION")["extensions"]["field"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        field(attempt(vec![prize("a", "COMMON", 1, Some(5), "1")], 50).await),
        "prizes"
    );
    assert_eq!(
        field(attempt(vec![prize("a", "COMMON", 0, None, "1")], 50).await),
        "prizes"
    );
    assert_eq!(
        field(attempt(vec![prize("a", "SHINY", 1, None, "1")], 50).await),
        "prizes"
    );
    assert_eq!(
        field(attempt(vec![prize("a", "COMMON", 1, None, "lots")], 50).await),
        "prizes"
    );
    let title = json!({ "name": "t", "rarity": "RARE", "kind": "TITLE", "weight": 1, "payload": "no_such_title" });
    assert_eq!(
        field(attempt(vec![prize("a", "COMMON", 1, None, "1"), title], 50).await),
        "prizes"
    );
    assert_eq!(
        field(attempt(vec![prize("a", "COMMON", 1, None, "1")], 0).await),
        "pointsPrice"
    );
    let id = make_box(&admin, None, None, vec![prize("a", "COMMON", 1, None, "1")]).await;
    let alice = app.login("alice").await;
    for count in [0, 11] {
        assert_eq!(
            draw(&alice, &id, count, "c")
                .await
                .expect_error("VALIDATION")["extensions"]["field"],
            "count"
        );
    }
}
