//! Admin-login lockouts. Failed logins (never successes) are counted per username and per
//! address with the anti-cheat `Limiter` (atomic, shared through Redis); past the policy's count
//! the key is locked for `ADMIN_LOCKOUT_BASE`, doubling with each further failure up to
//! `ADMIN_LOCKOUT_MAX`. The lock lives in the anti-cheat `Store`.
//!
//! Keying the address separately is what stops one attacker from locking the admin out: an
//! address is locked after 5 failures, before it alone can reach the username's 10. A SUPERADMIN
//! lifts a lockout with `clearAdminLockout`, which also restarts the key's count: the count's key
//! carries an epoch that clearing replaces, because the limiter has no way to reset a counter.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::rules;
use crate::config::RatePolicy;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Username,
    Ip,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Username => "username",
            Kind::Ip => "ip",
        }
    }

    fn policy(self, app: &AppState) -> RatePolicy {
        let limits = &app.settings.rate_limits;
        match self {
            Kind::Username => limits.admin_login_username,
            Kind::Ip => limits.admin_login_ip,
        }
    }
}

/// What the store keeps per key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Part of the failure counter's key; replaced when a SUPERADMIN clears the lockout.
    #[serde(default)]
    epoch: String,
    /// Unix seconds until which logins for this key are refused.
    #[serde(default)]
    until: Option<i64>,
}

/// One key an admin login is counted under, with its state as read before the attempt.
pub struct Key {
    kind: Kind,
    subject: String,
    state: State,
}

fn store_key(kind: Kind, subject: &str) -> String {
    format!("admin_lockout:{}:{{{subject}}}", kind.name())
}

async fn read(app: &AppState, kind: Kind, subject: &str, now: DateTime<Utc>) -> AppResult<State> {
    let raw = app.store.get(&store_key(kind, subject), now).await?;
    // A state that does not parse is treated as none: it can only come from an older build.
    Ok(raw
        .and_then(|raw| serde_json::from_str(&raw).ok())
        .unwrap_or_default())
}

async fn write(
    app: &AppState,
    kind: Kind,
    subject: &str,
    state: &State,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let raw = serde_json::to_string(state).map_err(|e| AppError::internal(e.to_string()))?;
    // Kept past the lock for two counting windows, so the epoch outlives its counters.
    let locked_for = state
        .until
        .map(|until| Duration::seconds((until - now.timestamp()).max(0)))
        .unwrap_or_default();
    let ttl = locked_for + kind.policy(app).window * 2;
    app.store
        .put(&store_key(kind, subject), &raw, ttl, now)
        .await
}

/// The keys a login for `username` from `ip` counts under, refused with RATE_LIMITED while any
/// is locked. A username no admin can have (wrong shape) is counted by address only.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn check(
    app: &AppState,
    username: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Key>> {
    let mut keys = Vec::with_capacity(2);
    if rules::valid_admin_username(username) {
        keys.push((Kind::Username, username));
    }
    if let Some(ip) = ip {
        keys.push((Kind::Ip, ip));
    }
    let mut read_keys = Vec::with_capacity(keys.len());
    let mut locked_for = 0;
    for (kind, subject) in keys {
        let state = match read(app, kind, subject, now).await {
            Ok(state) => state,
            // Redis unreachable: admins can still sign in (DESIGN s6: logins fall back), and
            // the per-address login limit, counted in this process meanwhile, still bounds
            // guessing; locks resume when Redis is back.
            Err(e) if e.is_unavailable() => {
                tracing::warn!(
                    kind = kind.name(),
                    "admin lockout state unreachable; not checked"
                );
                State::default()
            }
            Err(e) => return Err(e),
        };
        if let Some(until) = state.until {
            locked_for = locked_for.max(until - now.timestamp());
        }
        read_keys.push(Key {
            kind,
            subject: subject.to_string(),
            state,
        });
    }
    if locked_for > 0 {
        return Err(AppError::RateLimited {
            retry_after_seconds: locked_for as u64,
        });
    }
    Ok(read_keys)
}

/// Counts a failed login under each key, and locks those past their policy's count.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn record_failure(app: &AppState, keys: Vec<Key>, now: DateTime<Utc>) -> AppResult<()> {
    let limits = &app.settings.rate_limits;
    for Key {
        kind,
        subject,
        mut state,
    } in keys
    {
        let policy = kind.policy(app);
        let counter = format!("{subject}#{}", state.epoch);
        let failures = app
            .limiter
            .hit_or_local(
                &format!("admin_login_failed_{}", kind.name()),
                &counter,
                policy,
                now,
            )
            .await?
            .count;
        if let Some(lock) = rules::lockout_after(
            failures,
            policy.count,
            limits.admin_lockout_base,
            limits.admin_lockout_max,
        ) {
            state.until = Some((now + lock).timestamp());
            match write(app, kind, &subject, &state, now).await {
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(
                        kind = kind.name(),
                        "admin lockout not stored: Redis unreachable"
                    )
                }
                other => other?,
            }
        }
    }
    Ok(())
}

/// `clearAdminLockout`: lifts the lock of a username and/or an address and restarts its count.
/// True if one of them was locked.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn clear(
    app: &AppState,
    username: Option<&str>,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let mut keys = Vec::with_capacity(2);
    if let Some(username) = username {
        keys.push((Kind::Username, username));
    }
    if let Some(ip) = ip {
        keys.push((Kind::Ip, ip));
    }
    let mut was_locked = false;
    for (kind, subject) in keys {
        let before = read(app, kind, subject, now).await?;
        was_locked |= before.until.is_some_and(|until| until > now.timestamp());
        let fresh = State {
            epoch: rules::new_session_id(),
            until: None,
        };
        write(app, kind, subject, &fresh, now).await?;
    }
    Ok(was_locked)
}
