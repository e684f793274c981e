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
    // The count restarts at the last rare prize: usually the tenth draw, by pity; once in a few
    // thousand runs chance gives one earlier, and the draws after it count again.
    let last_rare = rarities.iter().rposition(|r| r != "COMMON").unwrap();
    let after = alice.gql(BOX, json!({ "b": id })).await;
    assert_eq!(
        after.data()["blindBox"]["myPityCount"],
        9 - last_rare as i64
    );
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

// ------------------------------------------------------------------ provably fair

const FAIR_DRAWS: &str =
    "{ myDraws(first: 100) { nodes { id memberId memberNonce clientSeed seedCommitment
    prizeTable revealedSeed pool pity nonce prize { id } } } }";
const CLIENT_SEED: &str = "{ myClientSeed { clientSeed nextMemberNonce } }";
const SET_CLIENT_SEED: &str =
    "mutation($s: String!) { setBlindBoxClientSeed(seed: $s) { clientSeed nextMemberNonce } }";
const ROTATE: &str = "mutation($b: ID!) { rotateBlindBoxSeed(boxId: $b) { seedCommitment prizeTable revealedSeeds } }";
const ROTATE_JOB: &str = "mutation { runJob(name: ROTATE_BLIND_BOX_SEEDS) { affected } }";
const FAIR_BOX: &str =
    "query($b: ID!) { blindBox(id: $b) { seedCommitment prizeTable prizes { id } } }";

/// `prizeId:weight,...` as the draws show it.
fn pool_of(d: &Value) -> Vec<(i64, u64)> {
    d["pool"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|p| {
            let (id, w) = p.split_once(':').unwrap();
            (id.parse().unwrap(), w.parse().unwrap())
        })
        .collect()
}

async fn my_fair_draws(member: &TestMember<'_>) -> Vec<Value> {
    member.gql(FAIR_DRAWS, json!({})).await.data()["myDraws"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

/// The commitment a revealed seed and a prize table make, by the server's own rule.
fn commitment_of(seed: &str, table: &str) -> String {
    api::blindbox::rules::commitment(seed, table)
}

/// The prize the server's own verifier recomputes for a revealed draw.
fn recompute(seed: &str, d: &Value) -> i64 {
    api::blindbox::rules::verify(
        seed,
        d["clientSeed"].as_str().unwrap(),
        d["memberId"].as_str().unwrap().parse().unwrap(),
        d["memberNonce"].as_i64().unwrap(),
        &pool_of(d),
    )
    .unwrap()
}

fn three_prizes() -> Vec<Value> {
    vec![
        prize("贴纸", "COMMON", 70, None, "1"),
        prize("徽章", "RARE", 25, Some(50), "10"),
        prize("公仔", "EPIC", 5, Some(5), "100"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_the_commitment_covers_the_server_seed_and_the_canonical_prize_table() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, Some(8), None, three_prizes()).await;
    let alice = app.login("alice").await;
    let shown = alice.gql(FAIR_BOX, json!({ "b": id })).await;
    let shown = &shown.data()["blindBox"];
    let ids: Vec<&str> = shown["prizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    // Published order, `id:weight:stock:rarity`, `-` for unlimited stock.
    let table = format!(
        "{}:70:-:COMMON,{}:25:50:RARE,{}:5:5:EPIC",
        ids[0], ids[1], ids[2]
    );
    assert_eq!(shown["prizeTable"], table.as_str());
    let committed = shown["seedCommitment"].as_str().unwrap().to_string();

    adjust(&admin, &alice, 5000, "fund").await.data();
    draw(&alice, &id, 10, "ten").await.data();
    let rotated = admin.gql(ROTATE, json!({ "b": id })).await;
    let rotated = &rotated.data()["rotateBlindBoxSeed"];
    let seed = rotated["revealedSeeds"][0].as_str().unwrap();
    assert_eq!(commitment_of(seed, &table), committed);
    assert_ne!(
        api::blindbox::rules::commitment(seed, &table.replace(":70:", ":71:")),
        committed,
        "a re-weighted table does not match the commitment"
    );
    // The new seed commits to the table as it is now: stock taken by the draws shows.
    assert_ne!(rotated["seedCommitment"], committed.as_str());
    let new_table = rotated["prizeTable"].as_str().unwrap();
    for d in my_fair_draws(&alice).await {
        assert_eq!(d["seedCommitment"], committed.as_str());
        assert_eq!(d["prizeTable"], table.as_str());
        assert_eq!(d["revealedSeed"], seed);
    }
    let sold: i64 = new_table
        .split(',')
        .filter_map(|e| e.split(':').nth(2)?.parse::<i64>().ok())
        .sum();
    let won_limited = my_fair_draws(&alice)
        .await
        .iter()
        .filter(|d| d["prize"]["id"] != ids[0])
        .count() as i64;
    assert_eq!(sold, 55 - won_limited, "the new table has the stock left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_every_draw_is_the_hmac_of_client_seed_member_and_member_nonce() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    // Pity every third draw (a RARE-or-better is all but impossible by chance), so some draws
    // come from the whole pool and some from the pity pool.
    let prizes = vec![
        prize("贴纸", "COMMON", 9999, None, "1"),
        prize("卡片", "COMMON", 5000, None, "2"),
        prize("徽章", "RARE", 1, Some(50), "10"),
        prize("公仔", "EPIC", 1, None, "100"),
    ];
    let id = make_box(&admin, Some(3), None, prizes).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 5000, "fund").await.data();
    alice
        .gql(SET_CLIENT_SEED, json!({ "s": "lucky-7" }))
        .await
        .data();
    draw(&alice, &id, 10, "ten").await.data();
    draw(&alice, &id, 3, "three").await.data();
    let rotated = admin.gql(ROTATE, json!({ "b": id })).await;
    let seed = rotated.data()["rotateBlindBoxSeed"]["revealedSeeds"][0]
        .as_str()
        .unwrap()
        .to_string();
    let draws = my_fair_draws(&alice).await;
    assert_eq!(draws.len(), 13);
    let mut nonces: Vec<i64> = draws
        .iter()
        .map(|d| d["memberNonce"].as_i64().unwrap())
        .collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..13).collect::<Vec<_>>());
    assert!(
        draws.iter().any(|d| d["pity"] == true),
        "pity draws verify too"
    );
    for d in &draws {
        assert_eq!(d["clientSeed"], "lucky-7");
        assert_eq!(d["memberId"], alice.id.as_str());
        assert_eq!(
            recompute(&seed, d).to_string(),
            d["prize"]["id"].as_str().unwrap(),
            "draw {} verifies",
            d["id"]
        );
    }
    // Another client seed gives other draws from the same server seed and nonces.
    let ten_ways = [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 1),
        (9, 1),
        (10, 1),
    ];
    let picks = |client: &str| -> Vec<i64> {
        draws
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d["clientSeed"] = json!(client);
                d["pool"] = json!(ten_ways.map(|(i, w)| format!("{i}:{w}")).join(","));
                recompute(&seed, &d)
            })
            .collect()
    };
    assert_ne!(picks("lucky-7"), picks("someone-else"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_a_member_gets_a_random_client_seed_and_may_choose_one() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, None, None, three_prizes()).await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    let first = alice.gql(CLIENT_SEED, json!({})).await.data()["myClientSeed"].clone();
    let seed = first["clientSeed"].as_str().unwrap().to_string();
    assert!(
        seed.len() >= 16
            && seed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{seed}"
    );
    assert_eq!(first["nextMemberNonce"], 0);
    assert_eq!(
        alice.gql(CLIENT_SEED, json!({})).await.data()["myClientSeed"]["clientSeed"],
        seed.as_str(),
        "the default is kept"
    );
    assert_ne!(
        bob.gql(CLIENT_SEED, json!({})).await.data()["myClientSeed"]["clientSeed"],
        seed.as_str()
    );
    adjust(&admin, &alice, 500, "fund").await.data();
    draw(&alice, &id, 2, "a").await.data();
    let drawn = my_fair_draws(&alice).await;
    assert!(drawn.iter().all(|d| d["clientSeed"] == seed.as_str()));

    for bad in ["", &"a".repeat(65), "two words", "a:b", "种子"] {
        let refused = alice.gql(SET_CLIENT_SEED, json!({ "s": bad })).await;
        assert_eq!(
            refused.expect_error("VALIDATION")["extensions"]["field"],
            "seed",
            "{bad:?}"
        );
    }
    let set = alice
        .gql(SET_CLIENT_SEED, json!({ "s": "My_Seed-42" }))
        .await;
    assert_eq!(
        set.data()["setBlindBoxClientSeed"],
        json!({ "clientSeed": "My_Seed-42", "nextMemberNonce": 2 })
    );
    draw(&alice, &id, 1, "b").await.data();
    let latest = &my_fair_draws(&alice).await[0];
    assert_eq!(
        (
            latest["clientSeed"].as_str(),
            latest["memberNonce"].as_i64()
        ),
        (Some("My_Seed-42"), Some(2))
    );
    app.gql(None, CLIENT_SEED, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_member_nonces_never_repeat_under_concurrent_draws() {
    let app = spawn_app_with(|env| {
        env.insert("LIMIT_DRAW_MEMBER".into(), "1000/60s".into());
        env.insert("LIMIT_MUTATION_MEMBER".into(), "1000/60s".into());
    })
    .await;
    let admin = app.admin(AdminRole::Operator).await;
    let one = make_box(&admin, Some(5), None, three_prizes()).await;
    let two = make_box(&admin, None, None, three_prizes()).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 100 * 50, "fund").await.data();
    // 24 requests of 1 to 3 draws at once, over two boxes: 48 draws.
    let attempts = (0..24).map(|i| {
        let box_id = if i % 2 == 0 { &one } else { &two };
        let alice = &alice;
        async move { draw(alice, box_id, 1 + i % 3, &format!("k{i}")).await }
    });
    for answer in futures_util::future::join_all(attempts).await {
        answer.data();
    }
    let draws = my_fair_draws(&alice).await;
    assert_eq!(draws.len(), 48);
    let mut nonces: Vec<i64> = draws
        .iter()
        .map(|d| d["memberNonce"].as_i64().unwrap())
        .collect();
    nonces.sort_unstable();
    assert_eq!(
        nonces,
        (0..48).collect::<Vec<_>>(),
        "each nonce used once, none skipped"
    );
    assert_eq!(
        alice.gql(CLIENT_SEED, json!({})).await.data()["myClientSeed"]["nextMemberNonce"],
        48
    );
    assert_audit_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_editing_the_prizes_rotates_the_seed_and_reveals_the_old_one() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, None, None, three_prizes()).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 500, "fund").await.data();
    draw(&alice, &id, 3, "before").await.data();
    let before = alice.gql(FAIR_BOX, json!({ "b": id })).await;
    let (committed, table) = (
        before.data()["blindBox"]["seedCommitment"]
            .as_str()
            .unwrap()
            .to_string(),
        before.data()["blindBox"]["prizeTable"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let edit = json!({ "id": id, "name": "萌宠盲盒", "description": "", "pointsPrice": 50,
        "prizes": [prize("贴纸", "COMMON", 1, None, "1"), prize("徽章", "RARE", 99, None, "10")] });
    let edited = admin.gql(UPSERT, json!({ "input": edit })).await;
    let edited = &edited.data()["upsertBlindBox"];
    assert_ne!(edited["seedCommitment"], committed.as_str());
    let revealed = edited["revealedSeeds"].as_array().unwrap();
    assert_eq!(revealed.len(), 1);
    let seed = revealed[0].as_str().unwrap();
    assert_eq!(commitment_of(seed, &table), committed);
    for d in my_fair_draws(&alice).await {
        assert_eq!(d["revealedSeed"], seed);
        assert_eq!(
            recompute(seed, &d).to_string(),
            d["prize"]["id"].as_str().unwrap()
        );
    }
    let after = alice.gql(FAIR_BOX, json!({ "b": id })).await;
    let after = &after.data()["blindBox"];
    assert_eq!(after["seedCommitment"], edited["seedCommitment"]);
    assert!(after["prizeTable"].as_str().unwrap().contains(":99:-:RARE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_seeds_rotate_on_the_blindbox_seed_rotation_schedule() {
    let app = spawn_app().await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, None, None, three_prizes()).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 500, "fund").await.data();
    draw(&alice, &id, 2, "a").await.data();
    let committed =
        alice.gql(FAIR_BOX, json!({ "b": id })).await.data()["blindBox"]["seedCommitment"].clone();

    // BLINDBOX_SEED_ROTATION is 1d by default: not due a minute early.
    app.at("2026-06-02T09:59:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        0
    );
    let alice = app.login("alice").await;
    assert_eq!(
        alice.gql(FAIR_BOX, json!({ "b": id })).await.data()["blindBox"]["seedCommitment"],
        committed
    );

    app.at("2026-06-02T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        1
    );
    let alice = app.login("alice").await;
    assert_ne!(
        alice.gql(FAIR_BOX, json!({ "b": id })).await.data()["blindBox"]["seedCommitment"],
        committed
    );
    for d in my_fair_draws(&alice).await {
        let seed = d["revealedSeed"].as_str().expect("revealed by the job");
        assert_eq!(
            recompute(seed, &d).to_string(),
            d["prize"]["id"].as_str().unwrap()
        );
    }
    // The new seed is a day old only a day later.
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_a_shorter_blindbox_seed_rotation_is_honoured() {
    let app = spawn_app_with(|env| {
        env.insert("BLINDBOX_SEED_ROTATION".into(), "2h".into());
    })
    .await;
    app.at("2026-06-01T10:00:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    make_box(&admin, None, None, three_prizes()).await;
    app.at("2026-06-01T11:59:00+08:00");
    let admin = app.admin(AdminRole::Operator).await;
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        0
    );
    app.at("2026-06-01T12:00:00+08:00");
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_a_seed_committed_without_a_prize_table_is_never_drawn_from() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, None, None, three_prizes()).await;
    let old =
        admin.gql(ROTATE, json!({ "b": id })).await.data()["rotateBlindBoxSeed"]["seedCommitment"]
            .clone();
    // As a box committed before the upgrade: the seed's commitment covers the seed alone.
    app.state
        .db
        .execute_unprepared("UPDATE blind_box_seed SET prize_table = NULL")
        .await
        .unwrap();
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 500, "fund").await.data();
    draw(&alice, &id, 1, "a").await.data();
    let d = &my_fair_draws(&alice).await[0];
    assert_ne!(d["seedCommitment"], old, "a new seed, with a table");
    assert!(d["prizeTable"].is_string());
    // The job does the same for boxes nobody draws from.
    let idle = make_box(&admin, None, None, three_prizes()).await;
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE blind_box_seed SET prize_table = NULL WHERE box_id = {idle}"
        ))
        .await
        .unwrap();
    assert_eq!(
        admin.gql(ROTATE_JOB, json!({})).await.data()["runJob"]["affected"],
        1
    );
}

/// The README's Python snippet, as a verifier would copy it.
fn readme_python_snippet() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let section = &readme[readme.find("### Verifying a draw").expect("the section")..];
    let start = section.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + section[start..].find("\n```").unwrap();
    section[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provably_fair_the_readme_python_snippet_and_verify_draw_agree_with_the_server() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let id = make_box(&admin, Some(3), None, three_prizes()).await;
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 5000, "fund").await.data();
    alice
        .gql(SET_CLIENT_SEED, json!({ "s": "readme-check" }))
        .await
        .data();
    draw(&alice, &id, 10, "ten").await.data();
    admin.gql(ROTATE, json!({ "b": id })).await.data();
    let snippet = readme_python_snippet();
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    if !python {
        eprintln!("python3 is missing: checking only `verify-draw`, not the README snippet");
    }
    for d in my_fair_draws(&alice).await {
        let args: Vec<String> = [
            &d["revealedSeed"],
            &d["clientSeed"],
            &d["memberId"],
            &json!(d["memberNonce"].to_string()),
            &d["pool"],
            &d["prizeTable"],
        ]
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
        let expected = format!(
            "commitment {}\nprize {}\n",
            d["seedCommitment"].as_str().unwrap(),
            d["prize"]["id"].as_str().unwrap()
        );
        let cli = api::blindbox::verify_draw_command(&args).expect("verify-draw accepts it");
        assert_eq!(cli, expected, "verify-draw on draw {}", d["id"]);
        if python {
            let run = std::process::Command::new("python3")
                .arg("-c")
                .arg(&snippet)
                .args(&args)
                .output()
                .expect("python3 runs");
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert_eq!(
                String::from_utf8(run.stdout).unwrap(),
                expected,
                "the README snippet on draw {}",
                d["id"]
            );
        }
    }
    // A pool the committed table does not hold (re-weighted) is refused by both.
    let d = &my_fair_draws(&alice).await[0];
    let pool = pool_of(d);
    let reweighted = pool
        .iter()
        .map(|(id, w)| format!("{id}:{}", w + 1))
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<String> = vec![
        d["revealedSeed"].as_str().unwrap().into(),
        d["clientSeed"].as_str().unwrap().into(),
        d["memberId"].as_str().unwrap().into(),
        d["memberNonce"].to_string(),
        reweighted,
        d["prizeTable"].as_str().unwrap().into(),
    ];
    assert!(api::blindbox::verify_draw_command(&args).is_err());
    if python {
        let run = std::process::Command::new("python3")
            .arg("-c")
            .arg(&snippet)
            .args(&args)
            .output()
            .unwrap();
        assert!(!run.status.success(), "the snippet refuses it too");
    }
}

// ------------------------------------------------------------------ item 15

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_15_blind_box_hides_inactive_boxes_from_members_and_anonymous_callers() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let input = json!({ "name": "未发布", "description": "", "pointsPrice": 50, "active": false,
        "prizes": [prize("贴纸", "COMMON", 1, None, "1")] });
    let answer = admin.gql(UPSERT, json!({ "input": input })).await;
    let id = answer.data()["upsertBlindBox"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let query = "query($b: ID!) { blindBox(id: $b) { name prizes { name } } }";
    let alice = app.login("alice").await;
    alice
        .gql(query, json!({ "b": id }))
        .await
        .expect_error("NOT_FOUND");
    app.gql(None, query, json!({ "b": id }))
        .await
        .expect_error("NOT_FOUND");
    let listed = alice.gql("{ blindBoxes { id } }", json!({})).await;
    assert_eq!(listed.data()["blindBoxes"], json!([]));
    // A box that does not exist answers the same, so an inactive one cannot be told apart.
    alice
        .gql(query, json!({ "b": "999999" }))
        .await
        .expect_error("NOT_FOUND");

    let mut released = input.clone();
    released["id"] = json!(id);
    released["active"] = json!(true);
    admin.gql(UPSERT, json!({ "input": released })).await.data();
    assert_eq!(
        app.gql(None, query, json!({ "b": id })).await.data()["blindBox"]["name"],
        "未发布"
    );
}
