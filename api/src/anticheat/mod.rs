//! Anti-cheat: rate limits now; captcha, blacklist and risk events build on the same limiter.
//! Modules call `anticheat::enforce` before a use case and never touch the limiter's keys.

mod limiter;

pub use limiter::{Decision, InProcessLimiter, Limiter, RedisLimiter};

use chrono::{DateTime, Utc};

use crate::config::RatePolicy;
use crate::error::{AppError, AppResult};

/// Counts one hit of `action` by `subject` (an IP, a member, a device) and refuses it with
/// RATE_LIMITED once the policy's count for the current window is used up.
pub async fn enforce(
    limiter: &dyn Limiter,
    action: &str,
    subject: &str,
    policy: RatePolicy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let decision = limiter.hit(action, subject, policy, now).await?;
    if decision.allowed {
        Ok(())
    } else {
        Err(AppError::RateLimited {
            retry_after_seconds: decision.retry_after_seconds,
        })
    }
}
