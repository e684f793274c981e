//! The progress fan-out, on the real database: counters per period, records, concurrency.

use api::progress::{Event, record, value};
use loyalty_tests::spawn_app;
use sea_orm::TransactionTrait;
use serde_json::json;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_move_counters_per_business_period() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let (settings, db) = (&app.state.settings, &app.state.db);
    // Sunday 23:30 and Monday 00:10 in +08:00: two days, two ISO weeks.
    for (when, streak) in [
        ("2026-11-29T23:30:00+08:00", 3),
        ("2026-11-30T00:10:00+08:00", 2),
    ] {
        let txn = db.begin().await.unwrap();
        let unlocked = record(&txn, settings, id, &Event::CheckedIn { streak }, at(when))
            .await
            .unwrap();
        assert!(unlocked.is_empty(), "nothing to unlock yet");
        txn.commit().await.unwrap();
    }
    assert_eq!(value(db, id, "checkin.total", "all").await.unwrap(), 2);
    assert_eq!(
        value(db, id, "checkin.total", "w:2026-W48").await.unwrap(),
        1
    );
    assert_eq!(
        value(db, id, "checkin.total", "w:2026-W49").await.unwrap(),
        1
    );
    assert_eq!(
        value(db, id, "checkin.streak", "all").await.unwrap(),
        3,
        "the best streak is kept"
    );
    assert_eq!(value(db, id, "purchase.count", "all").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_event_leaves_no_trace() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let txn = app.state.db.begin().await.unwrap();
    let event = Event::Drew { count: 10 };
    record(&txn, &app.state.settings, id, &event, chrono::Utc::now())
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(
        value(&app.state.db, id, "blindbox.draws", "all")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_count_every_one() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let now = chrono::Utc::now();
    let settings = &app.state.settings;
    let tasks = (0..20).map(|_| {
        let db = app.state.db.clone();
        async move {
            let txn = db.begin().await.unwrap();
            record(&txn, settings, id, &Event::Redeemed, now)
                .await
                .unwrap();
            txn.commit().await.unwrap();
        }
    });
    futures_util::future::join_all(tasks).await;
    assert_eq!(
        value(&app.state.db, id, "mall.redemptions", "all")
            .await
            .unwrap(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_points_grow_the_growth_value_and_purchase_points_do_not() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let settings = &app.state.settings;
    let now = chrono::Utc::now();
    let txn = app.state.db.begin().await.unwrap();
    let interaction = Event::PointsEarned {
        amount: 25,
        interaction: true,
    };
    record(&txn, settings, id, &interaction, now).await.unwrap();
    let purchase = Event::PointsEarned {
        amount: 500,
        interaction: false,
    };
    record(&txn, settings, id, &purchase, now).await.unwrap();
    txn.commit().await.unwrap();
    let me = alice.gql("{ me { growthValue } }", json!({})).await;
    // 25 interaction points x 0.4 = 10 growth.
    assert_eq!(me.data()["me"]["growthValue"], 10);
}
