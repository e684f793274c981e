//! One contract for both limiter backends: the same tests run in-process and on real Redis.

use api::anticheat::{InProcessLimiter, Limiter, RedisLimiter};
use api::config::RatePolicy;
use chrono::{DateTime, Duration, Utc};

fn policy(count: u64, seconds: i64) -> RatePolicy {
    RatePolicy {
        count,
        window: Duration::seconds(seconds),
    }
}

/// Seconds after an instant that starts a minute (and so a 60 s window).
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_899_999_960 + seconds, 0).unwrap()
}

async fn redis_limiter() -> RedisLimiter {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let manager = api::redis_conn::connect(&url, false)
        .await
        .expect("Redis is running for the limiter contract tests (start it: see README)");
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    RedisLimiter::new(manager, prefix)
        .await
        .expect("the script loads")
}

async fn allows_up_to_the_count_then_refuses(limiter: &dyn Limiter) {
    let p = policy(3, 60);
    for n in 1..=3 {
        let d = limiter.hit("act", "dev-1", p, at(10)).await.unwrap();
        assert!(d.allowed, "hit {n}");
        assert_eq!(d.count, n);
    }
    let refused = limiter.hit("act", "dev-1", p, at(10)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_seconds, 50);
}

async fn subjects_and_actions_are_counted_apart(limiter: &dyn Limiter) {
    let p = policy(1, 60);
    assert!(limiter.hit("act", "a", p, at(0)).await.unwrap().allowed);
    assert!(limiter.hit("act", "b", p, at(0)).await.unwrap().allowed);
    assert!(limiter.hit("other", "a", p, at(0)).await.unwrap().allowed);
    assert!(!limiter.hit("act", "a", p, at(0)).await.unwrap().allowed);
}

async fn a_new_window_starts_afresh(limiter: &dyn Limiter) {
    let p = policy(1, 60);
    assert!(limiter.hit("act", "w", p, at(59)).await.unwrap().allowed);
    assert!(!limiter.hit("act", "w", p, at(59)).await.unwrap().allowed);
    assert!(limiter.hit("act", "w", p, at(60)).await.unwrap().allowed);
}

async fn concurrent_hits_never_exceed_the_count(limiter: &dyn Limiter) {
    let p = policy(10, 60);
    let hits = (0..50).map(|_| limiter.hit("burst", "x", p, at(0)));
    let decisions = futures_util::future::join_all(hits).await;
    let allowed = decisions
        .into_iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(allowed, 10);
}

async fn run_contract(limiter: &dyn Limiter) {
    allows_up_to_the_count_then_refuses(limiter).await;
    subjects_and_actions_are_counted_apart(limiter).await;
    a_new_window_starts_afresh(limiter).await;
    concurrent_hits_never_exceed_the_count(limiter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_limiter_keeps_the_contract() {
    run_contract(&InProcessLimiter::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_limiter_keeps_the_contract() {
    let limiter = redis_limiter().await;
    assert_eq!(limiter.backend(), "redis");
    run_contract(&limiter).await;
}
