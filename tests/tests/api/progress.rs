//! The progress fan-out, on the real database: counters per period, records, concurrency.

use api::progress::{Event, record, value};
use loyalty_tests::spawn_app;
use sea_orm::TransactionTrait;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn events_move_counters_per_business_period() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let tz = app.state.settings.timezone;
    let db = &app.state.db;
    // Sunday 23:30 and Monday 00:10 in +08:00: two days, two ISO weeks.
    for (when, streak) in [
        ("2026-11-29T23:30:00+08:00", 3),
        ("2026-11-30T00:10:00+08:00", 2),
    ] {
        let txn = db.begin().await.unwrap();
        let unlocked = record(&txn, id, &Event::CheckedIn { streak }, at(when), tz)
            .await
            .unwrap();
        assert!(unlocked.is_empty(), "no handlers are registered yet");
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

#[tokio::test]
async fn a_rolled_back_event_leaves_no_trace() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let id: i64 = alice.id.parse().unwrap();
    let txn = app.state.db.begin().await.unwrap();
    record(
        &txn,
        id,
        &Event::Drew { count: 10 },
        chrono::Utc::now(),
        app.state.settings.timezone,
    )
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
    let tz = app.state.settings.timezone;
    let tasks = (0..20).map(|_| {
        let db = app.state.db.clone();
        async move {
            let txn = db.begin().await.unwrap();
            record(&txn, id, &Event::Redeemed, now, tz).await.unwrap();
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
