//! Sessions ended before their access tokens expire (`logout`, a refresh-token family revoked on
//! reuse): every instance refuses those tokens from the next request on.
//!
//! The database keeps one row per ended session until its last access token would have expired.
//! The per-request check never reads the database while nothing fails:
//! - with Redis, each ended session is also a key with that TTL, and a request costs one `GET`
//!   (if Redis fails, that request reads the row instead);
//! - without Redis (one instance), the set lives in this process, reloaded from the database at
//!   most every `cache::TTL` (30 s), so a restart forgets nothing and a request costs no round trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use entity::revoked_session;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::error::AppResult;
use crate::state::AppState;

fn key(session_id: &str) -> String {
    format!("revoked_session:{session_id}")
}

/// This process's copy of the ended sessions, for when there is no Redis.
#[derive(Default)]
pub struct RevokedSessions {
    local: Mutex<Local>,
}

#[derive(Default)]
struct Local {
    loaded_at: Option<Instant>,
    /// Session id -> when its last access token expires.
    until: HashMap<String, DateTime<Utc>>,
}

impl RevokedSessions {
    fn with<T>(&self, f: impl FnOnce(&mut Local) -> T) -> T {
        f(&mut self.local.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn remember(&self, session_id: &str, until: DateTime<Utc>) {
        self.with(|local| {
            local.until.insert(session_id.to_string(), until);
        });
    }

    /// Reloads from the database when the copy is older than `cache::TTL`. Entries are only
    /// added (and dropped once expired), so a load that raced a revocation loses nothing.
    async fn refresh_local(&self, app: &AppState, now: DateTime<Utc>) -> AppResult<()> {
        let stale = self.with(|local| {
            let stale = local
                .loaded_at
                .is_none_or(|at| at.elapsed() >= crate::cache::TTL);
            if stale {
                // Claimed now, so concurrent requests do not all load.
                local.loaded_at = Some(Instant::now());
            }
            stale
        });
        if !stale {
            return Ok(());
        }
        let rows = revoked_session::Entity::find()
            .filter(revoked_session::Column::ExpiresAt.gt(now))
            .all(&app.db)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.with(|local| local.loaded_at = None);
                return Err(e.into());
            }
        };
        self.with(|local| {
            local.until.retain(|_, until| *until > now);
            for row in rows {
                local.until.insert(row.session_id, row.expires_at);
            }
        });
        Ok(())
    }
}

/// Whether the session's access tokens are refused.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn is_revoked(app: &AppState, session_id: &str, now: DateTime<Utc>) -> AppResult<bool> {
    if app.redis.is_some() {
        return match app.store.get(&key(session_id), now).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "revoked-session check in Redis failed; reading the database");
                in_database(&app.db, session_id, now).await
            }
        };
    }
    let sessions = &app.revoked_sessions;
    sessions.refresh_local(app, now).await?;
    Ok(sessions.with(|local| {
        local
            .until
            .get(session_id)
            .is_some_and(|until| *until > now)
    }))
}

async fn in_database(
    db: &impl ConnectionTrait,
    session_id: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    Ok(revoked_session::Entity::find_by_id(session_id.to_string())
        .filter(revoked_session::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .is_some())
}

/// Ends the session's access tokens: the row, in the caller's transaction, and the fast copy
/// (Redis or this process). The copy is written before the caller commits, so no instance can
/// see the logout done and the tokens still working; an error here fails the caller.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    app: &AppState,
    txn: &impl ConnectionTrait,
    session_id: &str,
    member_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    // No access token of the session was issued after now, so none outlives this.
    let until = now + app.settings.access_token_ttl;
    revoked_session::Entity::insert(revoked_session::ActiveModel {
        session_id: Set(session_id.to_string()),
        member_id: Set(member_id),
        revoked_at: Set(now),
        expires_at: Set(until),
    })
    .on_conflict(
        OnConflict::column(revoked_session::Column::SessionId)
            .update_columns([
                revoked_session::Column::RevokedAt,
                revoked_session::Column::ExpiresAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    if app.redis.is_some() {
        app.store
            .put(&key(session_id), "1", until - now, now)
            .await?;
    }
    app.revoked_sessions.remember(session_id, until);
    Ok(())
}
