//! Defects an outside probe found, each pinned by the test named after it: numbers that
//! overflow, decimals that panic, strings the database refuses, and requests that cost too much.

use api::auth::AdminRole;
use loyalty_tests::{TestAdmin, spawn_app};
use serde_json::{Value, json};

use crate::points::{adjust, assert_audit_ok, points_of};

const UPSERT_ITEM: &str =
    "mutation($input: MallItemInput!) { upsertMallItem(input: $input) { id stock } }";

fn item_input(fields: Value) -> Value {
    let mut input = json!({ "name": "奶瓶", "description": "", "category": "supplies",
        "kind": "PHYSICAL", "pointsPrice": 10, "stock": 5 });
    input
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    input
}

async fn refused_field(admin: &TestAdmin<'_>, query: &str, input: Value) -> String {
    let answer = admin.gql(query, json!({ "input": input })).await;
    answer.expect_error("VALIDATION")["extensions"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Hardening item 13: a points price of 2^62+1 times quantity 2 wrapped to a negative cost, and
/// the order was PAID with no debit. Operator numbers are bounded where they come in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_numbers_that_could_overflow_are_refused_at_input() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let huge = (1i64 << 62) + 1;
    for (fields, field) in [
        (json!({ "pointsPrice": huge }), "pointsPrice"),
        (json!({ "pointsPrice": -5 }), "pointsPrice"),
        (json!({ "stock": huge }), "stock"),
        (json!({ "perMemberLimit": i32::MAX }), "perMemberLimit"),
    ] {
        assert_eq!(
            refused_field(&admin, UPSERT_ITEM, item_input(fields.clone())).await,
            field,
            "{fields}"
        );
    }
    let task = admin
        .gql(
            "mutation($input: TaskInput!) { upsertTask(input: $input) { id } }",
            json!({ "input": { "code": "t", "name": "t", "description": "", "kind": "DAILY",
                "event": "checkin", "target": 1, "rewardPoints": huge } }),
        )
        .await;
    assert_eq!(
        task.expect_error("VALIDATION")["extensions"]["field"],
        "rewardPoints"
    );
    let achievement = admin
        .gql(
            "mutation($input: AchievementInput!) { upsertAchievement(input: $input) { code } }",
            json!({ "input": { "code": "a", "name": "a", "description": "", "category": "c",
                "metric": "checkin.total", "threshold": huge, "rewardPoints": 1 } }),
        )
        .await;
    assert_eq!(
        achievement.expect_error("VALIDATION")["extensions"]["field"],
        "threshold"
    );
    let rules = admin
        .gql(
            "mutation($input: CheckInRulesInput!) { updateCheckInRules(input: $input) { basePoints } }",
            json!({ "input": { "basePoints": huge, "streakBonuses": [], "makeUpCost": 20, "makeUpsPerMonth": 3 } }),
        )
        .await;
    assert_eq!(
        rules.expect_error("VALIDATION")["extensions"]["field"],
        "basePoints"
    );
    let project = admin
        .gql(
            "mutation($input: DonationProjectInput!) { upsertDonationProject(input: $input) { id } }",
            json!({ "input": { "name": "p", "description": "", "targetPoints": huge } }),
        )
        .await;
    assert_eq!(
        project.expect_error("VALIDATION")["extensions"]["field"],
        "targetPoints"
    );

    // Fifty prizes of weight 2^62 would overflow the pool's total weight.
    let prizes: Vec<Value> = (0..50)
        .map(|i| json!({ "name": format!("p{i}"), "rarity": "COMMON", "kind": "POINTS", "weight": huge, "payload": "1" }))
        .collect();
    let the_box = admin
        .gql(
            "mutation($input: BlindBoxInput!) { upsertBlindBox(input: $input) { id } }",
            json!({ "input": { "name": "b", "description": "", "pointsPrice": 10, "prizes": prizes } }),
        )
        .await;
    assert_eq!(
        the_box.expect_error("VALIDATION")["extensions"]["field"],
        "prizes"
    );

    // The largest price an operator may set, times the largest quantity, is still exact.
    let dear = admin
        .gql(
            UPSERT_ITEM,
            json!({ "input": item_input(json!({ "pointsPrice": 10_000_000, "stock": 1000 })) }),
        )
        .await;
    let dear = dear.data()["upsertMallItem"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let alice = app.login("alice").await;
    adjust(&admin, &alice, 1000, "fund").await.data();
    let quote = alice
        .gql(
            "query($i: ID!) { redeemQuote(itemId: $i, quantity: 100) { pointsCost affordable } }",
            json!({ "i": dear }),
        )
        .await;
    assert_eq!(
        quote.data()["redeemQuote"],
        json!({ "pointsCost": 1_000_000_000i64, "affordable": false })
    );
    let redeemed = alice
        .gql(
            "mutation($i: ID!) { redeem(input: { itemId: $i, quantity: 100, idempotencyKey: \"k\" }) { id } }",
            json!({ "i": dear }),
        )
        .await;
    redeemed.expect_error("INSUFFICIENT_POINTS");
    assert_eq!(points_of(&alice).await.0, 1000);
    assert_audit_ok(&admin).await;
}

/// Hardening item 18: a cash price of Decimal::MAX panicked in the yuan-to-fen multiplication
/// and the connection closed with no answer. Money is bounded and answers VALIDATION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_decimals_are_refused_with_a_field_instead_of_dropping_the_connection() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let decimal_max = "79228162514264337593543950335";
    for (fields, field) in [
        (json!({ "cashPrice": decimal_max }), "cashPrice"),
        (json!({ "cashPrice": "1000000.01" }), "cashPrice"),
        (json!({ "cashPrice": "0.001" }), "cashPrice"),
        (
            json!({ "kind": "COUPON", "couponValue": decimal_max, "couponValidDays": 30 }),
            "couponValue",
        ),
        (
            json!({ "kind": "COUPON", "couponValue": "5", "couponThreshold": decimal_max, "couponValidDays": 30 }),
            "couponThreshold",
        ),
    ] {
        assert_eq!(
            refused_field(&admin, UPSERT_ITEM, item_input(fields.clone())).await,
            field,
            "{fields}"
        );
    }
    let shop = app.admin(AdminRole::Integration).await;
    let alice = app.login("alice").await;
    let purchase = shop
        .gql(
            "mutation($input: PurchaseInput!) { recordPurchase(input: $input) { applied } }",
            json!({ "input": { "orderNo": "O-1", "memberNo": alice.member_no, "amount": "100",
                "paidAt": "2026-01-01T00:00:00Z",
                "lines": [ { "category": "a", "amount": decimal_max }, { "category": "b", "amount": decimal_max } ] } }),
        )
        .await;
    assert_eq!(
        purchase.expect_error("VALIDATION")["extensions"]["field"],
        "lines"
    );
    assert_eq!(points_of(&alice).await.0, 0);
}

/// Hardening item 17: a NUL byte in almost any string input answered INTERNAL on PostgreSQL
/// (`22021 invalid byte sequence`); SQLite stored it. Control characters are refused at the
/// boundary, for every field, with the field's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_any_string_input_are_validation_errors() {
    let app = spawn_app().await;
    let admin = app.admin(AdminRole::Operator).await;
    let alice = app.login("alice").await;
    let nul = "x\u{0}y";
    let member_cases = [
        (
            "mutation($v: String) { equipTitle(titleCode: $v) { memberNo } }",
            "titleCode",
        ),
        (
            "mutation($v: String!) { transferPoints(toMemberNo: $v, amount: 1, idempotencyKey: \"k\") { id } }",
            "toMemberNo",
        ),
        (
            "query($v: String) { mallItems(category: $v) { nodes { id } } }",
            "category",
        ),
        (
            "mutation($v: String) { reportEvent(kind: \"browse_item\", targetId: $v) { progress } }",
            "targetId",
        ),
    ];
    for (query, field) in member_cases {
        let answer = alice.gql(query, json!({ "v": nul })).await;
        assert_eq!(
            answer.expect_error("VALIDATION")["extensions"]["field"],
            field,
            "{query}"
        );
    }
    let login = app
        .gql(
            None,
            "mutation($v: String) { login(code: \"zoe\", inviteCode: $v) { accessToken } }",
            json!({ "v": nul }),
        )
        .await;
    assert_eq!(
        login.expect_error("VALIDATION")["extensions"]["field"],
        "inviteCode"
    );
    let admin_cases = [
        (
            "query($v: String) { members(search: $v) { nodes { id } } }",
            "search",
        ),
        (
            "mutation($v: String!) { refundPurchase(orderNo: $v) { applied } }",
            "orderNo",
        ),
        (
            "mutation($v: String!) { blacklistMember(memberId: \"1\", reason: $v) { id } }",
            "reason",
        ),
        (
            "mutation($v: String!) { adjustPoints(memberId: \"1\", delta: 5, reason: $v, idempotencyKey: \"k\") { id } }",
            "reason",
        ),
    ];
    for (query, field) in admin_cases {
        let answer = admin.gql(query, json!({ "v": nul })).await;
        assert_eq!(
            answer.expect_error("VALIDATION")["extensions"]["field"],
            field,
            "{query}"
        );
    }
    let item = admin
        .gql(
            UPSERT_ITEM,
            json!({ "input": item_input(json!({ "name": nul })) }),
        )
        .await;
    assert_eq!(
        item.expect_error("VALIDATION")["extensions"]["field"],
        "name"
    );
    let inline = admin
        .gql(
            "{ members(search: \"a\\u0000b\") { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        inline.expect_error("VALIDATION")["extensions"]["field"],
        "search"
    );
    let admin_login = app
        .admin_gql(
            None,
            "mutation($v: String!) { adminLogin(username: $v, password: \"whatever-password\") { accessToken } }",
            json!({ "v": nul }),
        )
        .await;
    assert_eq!(
        admin_login.expect_error("VALIDATION")["extensions"]["field"],
        "username"
    );
    // Line breaks and tabs in long text are fine.
    let described = admin
        .gql(
            UPSERT_ITEM,
            json!({ "input": item_input(json!({ "description": "第一行\n\t第二行" })) }),
        )
        .await;
    described.data();
}

/// Hardening item 17, the backstop: should a NUL reach PostgreSQL by a path the boundary check
/// does not see, the refusal (SQLSTATE 22021) is the client's VALIDATION, not INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_the_database_cannot_store_is_a_validation_error() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let db = &app.state.db;
    let stored = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE member SET nickname = $1 WHERE id = 0".replace(
                "$1",
                if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
                    "$1"
                } else {
                    "?"
                },
            ),
            ["a\u{0}b".into()],
        ))
        .await;
    match stored {
        // SQLite and MariaDB store it; only PostgreSQL refuses.
        Ok(_) => {}
        Err(e) => {
            let error: async_graphql::Error = api::AppError::Db(e).into();
            let code = error
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .cloned();
            assert_eq!(code, Some(async_graphql::Value::from("VALIDATION")));
        }
    }
}

/// Hardening item 14: with introspection off (production), "Did you mean ledgerAudit?" still
/// told anonymous callers the admin schema's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_suggestions_do_not_leak_the_schema_when_introspection_is_off() {
    let off = loyalty_tests::spawn_app_with(|env| {
        env.insert("INTROSPECTION".into(), "false".into());
    })
    .await;
    let answer = off
        .admin_gql(None, "{ ledgerAudi { ok } }", json!({}))
        .await;
    let message = answer.expect_error("VALIDATION")["message"].to_string();
    assert!(!message.contains("Did you mean"), "{message}");
    assert!(!message.contains("ledgerAudit"), "{message}");
    // With introspection on (development), suggestions help.
    let on = spawn_app().await;
    let answer = on.admin_gql(None, "{ ledgerAudi { ok } }", json!({})).await;
    assert!(
        answer.first_error()["message"]
            .to_string()
            .contains("ledgerAudit")
    );
}

/// Hardening item 15: an oversized body was answered 413 in text/plain; it is GraphQL JSON
/// with a code, like every other refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_answered_as_graphql_json() {
    let app = loyalty_tests::spawn_app_with(|env| {
        env.insert("GRAPHQL_MAX_BODY_BYTES".into(), "1024".into());
    })
    .await;
    let padding = " ".repeat(4096);
    for path in ["/graphql", "/admin/graphql"] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(json!({ "query": format!("{{ __typename {padding} }}") }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("json")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "VALIDATION",
            "{body}"
        );
    }
}
