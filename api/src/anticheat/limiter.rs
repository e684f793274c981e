//! Fixed-window counters behind one trait: Redis for any number of instances, in-process for the
//! single-instance default. Windows are computed from the request clock, so tests can travel.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use crate::config::RatePolicy;
use crate::error::{AppError, AppResult, redis_unreachable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Seconds until the window resets (at least 1).
    pub retry_after_seconds: u64,
}

#[async_trait::async_trait]
pub trait Limiter: Send + Sync {
    /// Records one hit and says whether it is within the policy.
    async fn hit(
        &self,
        action: &str,
        subject: &str,
        policy: RatePolicy,
        now: DateTime<Utc>,
    ) -> AppResult<Decision>;

    /// As `hit`, but while a shared store is unreachable the hit is counted in this process
    /// instead, so what must not stop with Redis (signing in) keeps a per-instance limit.
    async fn hit_or_local(
        &self,
        action: &str,
        subject: &str,
        policy: RatePolicy,
        now: DateTime<Utc>,
    ) -> AppResult<Decision> {
        self.hit(action, subject, policy, now).await
    }

    /// "redis" or "in-process", for /health and the start-up log.
    fn backend(&self) -> &'static str;
}

/// Which window an instant falls in, and how many seconds are left of it.
fn window_of(policy: RatePolicy, now: DateTime<Utc>) -> (i64, u64) {
    let len = policy.window.num_seconds().max(1);
    let t = now.timestamp();
    let index = t.div_euclid(len);
    let left = (index + 1) * len - t;
    (index, left.max(1) as u64)
}

fn decide(policy: RatePolicy, count: u64, retry_after_seconds: u64) -> Decision {
    Decision {
        allowed: count <= policy.count,
        count,
        retry_after_seconds,
    }
}

/// Counters in this process's memory: correct for one instance only.
#[derive(Default)]
pub struct InProcessLimiter {
    counters: Mutex<HashMap<String, (i64, u64)>>,
}

/// Past this many keys, counters of finished windows are swept out.
const SWEEP_AT: usize = 10_000;

#[async_trait::async_trait]
impl Limiter for InProcessLimiter {
    async fn hit(
        &self,
        action: &str,
        subject: &str,
        policy: RatePolicy,
        now: DateTime<Utc>,
    ) -> AppResult<Decision> {
        let (window, left) = window_of(policy, now);
        let key = format!("{action}:{subject}:{}", policy.window.num_seconds());
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counters.len() >= SWEEP_AT {
            counters.retain(|_, (w, _)| *w >= window);
        }
        let entry = counters.entry(key).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        Ok(decide(policy, entry.1, left))
    }

    fn backend(&self) -> &'static str {
        "in-process"
    }
}

/// Counts in Redis with one Lua script per hit: atomic, and one round trip.
pub struct RedisLimiter {
    redis: crate::redis_conn::RedisConnection,
    prefix: String,
    script: redis::Script,
    /// Counts `hit_or_local` while Redis is unreachable.
    local: InProcessLimiter,
    /// Whether the last `hit_or_local` fell back, so only the changes are logged.
    falling_back: AtomicBool,
}

const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
";

impl RedisLimiter {
    /// Loads the script now, so a bad script or an unreachable Redis fails the boot.
    pub async fn new(redis: crate::redis_conn::RedisConnection, prefix: String) -> AppResult<Self> {
        let script = redis::Script::new(HIT_SCRIPT);
        let mut con = redis.clone();
        script.prepare_invoke().load_async(&mut con).await?;
        Ok(RedisLimiter {
            redis,
            prefix,
            script,
            local: InProcessLimiter::default(),
            falling_back: AtomicBool::new(false),
        })
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn hit(
        &self,
        action: &str,
        subject: &str,
        policy: RatePolicy,
        now: DateTime<Utc>,
    ) -> AppResult<Decision> {
        let (window, left) = window_of(policy, now);
        // The braces are a Redis Cluster hash tag: one subject's keys share a slot.
        let key = format!(
            "{}limit:{action}:{{{subject}}}:{}:{window}",
            self.prefix,
            policy.window.num_seconds()
        );
        // Kept two windows, so a clock a little ahead of Redis's still finds its counter.
        let ttl = policy.window.num_seconds().max(1) * 2;
        let mut con = self.redis.clone();
        let count: u64 = self.script.key(key).arg(ttl).invoke_async(&mut con).await?;
        Ok(decide(policy, count, left))
    }

    async fn hit_or_local(
        &self,
        action: &str,
        subject: &str,
        policy: RatePolicy,
        now: DateTime<Utc>,
    ) -> AppResult<Decision> {
        match self.hit(action, subject, policy, now).await {
            Err(AppError::Redis(e)) if redis_unreachable(&e) => {
                if !self.falling_back.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "Redis unreachable: sign-in limits are counted in this process until it is back"
                    );
                }
                self.local.hit(action, subject, policy, now).await
            }
            other => {
                if other.is_ok() && self.falling_back.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis reachable again: sign-in limits are shared again");
                }
                other
            }
        }
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn windows_are_aligned_and_report_the_seconds_left() {
        let policy = RatePolicy {
            count: 3,
            window: Duration::seconds(60),
        };
        let t = DateTime::from_timestamp(1_800_000_030, 0).unwrap();
        assert_eq!(window_of(policy, t), (30_000_000, 30));
        let edge = DateTime::from_timestamp(1_800_000_060, 0).unwrap();
        assert_eq!(window_of(policy, edge), (30_000_001, 60));
    }

    #[test]
    fn a_decision_allows_up_to_the_count() {
        let policy = RatePolicy {
            count: 2,
            window: Duration::seconds(60),
        };
        assert!(decide(policy, 2, 5).allowed);
        assert!(!decide(policy, 3, 5).allowed);
    }
}
