//! The use-case runner (`api::idempotency::run_once`) on the real database: random interleavings
//! of retries under one key take effect once, and a deadlock is run again instead of failing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api::error::AppError;
use api::idempotency::{self, Request};
use api::member::MemberId;
use api::points::{self, Expiry, LedgerKind, Movement};
use chrono::{Duration, Utc};
use loyalty_tests::{TestApp, spawn_app};
use proptest::prelude::*;
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Credited {
    ledger_id: i64,
}

/// One request: a key (of a few), an input (of two), credited `amount` points if it runs.
#[derive(Debug, Clone, Copy)]
struct Op {
    key: u8,
    input: u8,
}

/// Credits `1 + input` points under `key`, through the runner: the answer is the ledger row.
async fn credit_once(app: &TestApp, member: MemberId, op: Op) -> Result<Credited, AppError> {
    let amount = 1 + i64::from(op.input);
    let key = format!("k{}", op.key);
    let request = Request::new(member, "test", Some(&key), &[&amount.to_string()])?;
    let now = Utc::now();
    let work = |txn: DatabaseTransaction| async move {
        let movement = Movement::new(member.get(), amount, LedgerKind::Earn, "test", now);
        let row = points::credit(&txn, &movement, Expiry::After(Duration::days(1))).await?;
        let answer = Credited { ledger_id: row.id };
        Ok((txn, answer, answer))
    };
    idempotency::run_once(&app.state.db, &request, now, work, |stored| async move {
        Ok(stored)
    })
    .await
}

async fn balance(app: &TestApp, member: MemberId) -> i64 {
    api::member::require(&app.state.db, member)
        .await
        .unwrap()
        .points
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waves of requests, each wave sent at once: whatever the interleaving, each key takes effect
/// exactly once, every answer under a key is that one effect (same input) or CONFLICT (other
/// input), and the balance is the sum of the effects.
#[test]
fn random_interleavings_of_same_key_retries_take_effect_once() {
    let rt = runtime();
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let next_member = std::sync::atomic::AtomicU32::new(0);
    proptest!(config, |(waves in prop::collection::vec(
        prop::collection::vec((0u8..3, 0u8..2).prop_map(|(key, input)| Op { key, input }), 1..6),
        1..5,
    ))| {
        rt.block_on(async {
            let n = next_member.fetch_add(1, Ordering::Relaxed);
            let login = app.login(&format!("prop{n}")).await;
            let member = MemberId::new(login.id.parse().unwrap());
            // key -> (input, ledger id) of the run that took effect
            let mut effects: std::collections::HashMap<u8, (u8, i64)> = Default::default();
            for wave in &waves {
                let answers = futures_util::future::join_all(
                    wave.iter().map(|&op| credit_once(&app, member, op)),
                )
                .await;
                // Within a wave, the first success for a key fixes its input.
                for (op, answer) in wave.iter().zip(&answers) {
                    if let Ok(done) = answer {
                        let (input, id) = *effects.entry(op.key).or_insert((op.input, done.ledger_id));
                        assert_eq!((input, id), (op.input, done.ledger_id), "{op:?} answered another effect");
                    }
                }
                for (op, answer) in wave.iter().zip(answers) {
                    match answer {
                        Ok(_) => {}
                        Err(AppError::Conflict(_)) => {
                            let (input, _) = effects[&op.key];
                            assert_ne!(input, op.input, "{op:?}: CONFLICT for the same input");
                        }
                        Err(e) => panic!("{op:?}: {e:?}"),
                    }
                }
            }
            let expected: i64 = effects.values().map(|(input, _)| 1 + i64::from(*input)).sum();
            assert_eq!(balance(&app, member).await, expected);
        });
    });
    rt.block_on(async { drop(app) });
}

/// Two use cases that lock two members in opposite order deadlock on PostgreSQL and MariaDB;
/// the database fails one side, and the runner runs it again instead of answering INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_use_case_is_run_again_not_answered_internal() {
    let app = spawn_app().await;
    if app.state.db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        // One connection: SQLite runs them one after the other and cannot deadlock.
        return;
    }
    let a = MemberId::new(app.login("dl_a").await.id.parse().unwrap());
    let b = MemberId::new(app.login("dl_b").await.id.parse().unwrap());
    let both_locked = Arc::new(tokio::sync::Barrier::new(2));
    let (first_a, first_b) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    // Each locks its own member (the runner), waits until the other has too (first attempt
    // only), then takes the other's lock: a cycle the database must break.
    let crossing = |me: MemberId, other: MemberId, first: Arc<AtomicBool>| {
        let (app, both_locked) = (&app, both_locked.clone());
        async move {
            let request = Request::new(me, "test", Some("cross"), &[])?;
            let now = Utc::now();
            let work = |txn: DatabaseTransaction| {
                let (both_locked, first) = (both_locked.clone(), first.clone());
                async move {
                    if first.swap(false, Ordering::SeqCst) {
                        both_locked.wait().await;
                    }
                    api::member::lock(&txn, &[other]).await?;
                    Ok((txn, (), ()))
                }
            };
            idempotency::run_once(&app.state.db, &request, now, work, |()| async { Ok(()) }).await
        }
    };
    let (left, right) = tokio::join!(
        crossing(a, b, first_a.clone()),
        crossing(b, a, first_b.clone())
    );
    left.expect("the first side succeeds, at once or after a retry");
    right.expect("the second side succeeds, at once or after a retry");
}
