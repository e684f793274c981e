//! Tearing a test app down never waits on the app: a test that leaves work behind (an open
//! transaction, a running job) must not hang the suite when its database is dropped.

use loyalty_tests::{spawn_app, spawn_app_with};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

/// Leaves a transaction that wrote a row open on a connection of its own, then drops the app:
/// on MariaDB that transaction holds the metadata lock `DROP DATABASE` waits for.
async fn leave_a_transaction_open_then_tear_down() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let db = sea_orm::Database::connect(app.database_url())
        .await
        .expect("a second connection to the test database");
    let txn = db.begin().await.expect("a transaction");
    txn.execute_unprepared(&format!(
        "UPDATE member SET nickname = 'held' WHERE id = {}",
        alice.id
    ))
    .await
    .expect("the update runs");
    std::mem::forget(txn);
    std::mem::forget(db);
    let me = alice.gql("{ me { memberNo } }", json!({})).await;
    assert_eq!(me.data()["me"]["memberNo"], alice.member_no.as_str());
    drop(app); // returns: the teardown ends what the test left open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_does_not_hang_the_teardown() {
    leave_a_transaction_open_then_tear_down().await;
}

/// On a current-thread runtime the teardown cannot wait for the app at all; the database drop
/// alone must still finish.
#[tokio::test]
async fn a_transaction_left_open_does_not_hang_the_teardown_on_a_current_thread_runtime() {
    leave_a_transaction_open_then_tear_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_in_development_with_its_jobs_running_stops_before_its_database_is_dropped() {
    let app = spawn_app_with(|env| {
        env.insert("APP_ENV".into(), "development".into());
        env.insert("SEED_DEMO_DATA".into(), "true".into());
        env.insert("JOBS_ENABLED".into(), "true".into());
    })
    .await;
    let alice = app.login("alice").await;
    let me = alice.gql("{ me { points } }", json!({})).await;
    assert!(me.data()["me"]["points"].as_i64().unwrap() > 0);
    drop(app);
}
