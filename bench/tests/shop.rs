//! The benchmark's shop seeder: what it writes must be what the use cases would have written, so
//! a benchmark measures a shop whose ledgers, tiers and check-ins the API itself agrees with.

use api::auth::AdminRole;
use api::auth::jwt::TokenKind;
use bench::shop::{ShopSize, seed_shop};
use chrono::{DateTime, Duration, Utc};
use loyalty_tests::{TestAdmin, spawn_app};
use serde_json::json;

async fn assert_audit_ok(admin: &TestAdmin<'_>) -> serde_json::Value {
    let audit = admin
        .gql(
            "{ ledgerAudit { ok membersChecked violations } }",
            json!({}),
        )
        .await;
    let audit = audit.data()["ledgerAudit"].clone();
    assert_eq!(audit["ok"], true, "{audit}");
    audit
}

const NOW: &str = "2026-05-20T10:00:00+08:00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_shop_passes_the_audit_and_reads_back_through_the_api() {
    let app = spawn_app().await;
    app.at(NOW);
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let size = ShopSize {
        members: 30,
        mall_items: 12,
        history_days: 7,
        starting_points: 1_000,
        flash_stock: 3,
        ..ShopSize::default()
    };
    let shop = seed_shop(&app.state.db, &app.state.settings, now, &size)
        .await
        .unwrap();
    assert_eq!(shop.member_ids.len(), 30);
    assert_eq!(shop.item_ids.len(), 12);
    assert_eq!(shop.boxes.len(), 3);

    let admin = app.admin(AdminRole::Auditor).await;
    let audit = assert_audit_ok(&admin).await;
    assert_eq!(audit["membersChecked"], 30);

    // Member 3 has 4 days of history up to yesterday, 6,000 growth (金卡), and 1,000 + 4 x 5 points.
    let (token, _) = app
        .state
        .jwt
        .issue(
            TokenKind::Member,
            &shop.member_ids[3].to_string(),
            None,
            now,
            Duration::hours(1),
        )
        .unwrap();
    let me = app
        .gql(
            Some(&token),
            "{ me { points checkInStreak tier { name } }
               achievementWall { achievements { unlocked achievement { code rewardPoints } } } }",
            json!({}),
        )
        .await;
    let data = me.data();
    // What the history earned is held, and paid for, through the real backfill.
    let held: Vec<(String, i64)> = data["achievementWall"]["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["unlocked"] == true)
        .map(|a| {
            let a = &a["achievement"];
            (
                a["code"].as_str().unwrap().to_string(),
                a["rewardPoints"].as_i64().unwrap(),
            )
        })
        .collect();
    let codes: Vec<&str> = held.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "checkin_total_1",
            "checkin_streak_3",
            "points_earned_100",
            "points_earned_1000"
        ]
    );
    let rewards: i64 = held.iter().map(|(_, r)| r).sum();
    assert_eq!(data["me"]["points"], 1_020 + rewards);
    assert_eq!(data["me"]["checkInStreak"], 4);
    assert_eq!(data["me"]["tier"]["name"], "金卡");

    // Today's check-in continues the seeded streak.
    let checked = app
        .gql(
            Some(&token),
            "mutation { checkIn(idempotencyKey: \"k1\") { streak pointsAwarded } }",
            json!({}),
        )
        .await;
    assert_eq!(checked.data()["checkIn"]["streak"], 5);

    let items = app
        .gql(
            Some(&token),
            "{ mallItems(first: 100) { nodes { id stock } } }",
            json!({}),
        )
        .await;
    let nodes = items.data()["mallItems"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 12);
    let flash = nodes
        .iter()
        .find(|n| n["id"].as_str().and_then(|id| id.parse().ok()) == Some(shop.flash_item_id))
        .unwrap();
    assert_eq!(flash["stock"], 3);

    let board = app
        .gql(
            Some(&token),
            "{ leaderboard(kind: CHECKIN_STREAK, first: 1) { entries { score } } }",
            json!({}),
        )
        .await;
    assert_eq!(board.data()["leaderboard"]["entries"][0]["score"], 7);

    // Only into an empty shop.
    let again = seed_shop(&app.state.db, &app.state.settings, now, &size).await;
    assert!(again.is_err());
    assert_audit_ok(&admin).await;
}
