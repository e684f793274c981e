//! The blacklist: a blacklisted member's points are revoked through the ledger and every points
//! action is refused. Cached for the per-request check; the cache is dropped on every change.

use chrono::{DateTime, Duration, Utc};
use entity::member;

use sea_orm::{DatabaseTransaction, EntityTrait, QuerySelect};

use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, LedgerKind, Movement};
use crate::state::AppState;

fn cache_key(member_id: i64) -> String {
    format!("blacklist:{{{member_id}}}")
}

#[tracing::instrument(skip_all)]
pub async fn is_blacklisted(app: &AppState, member_id: i64, now: DateTime<Utc>) -> AppResult<bool> {
    let key = cache_key(member_id);
    if let Some(cached) = app.store.get(&key, now).await? {
        return Ok(cached == "1");
    }
    let blacklisted_at: Option<Option<DateTime<Utc>>> = member::Entity::find_by_id(member_id)
        .select_only()
        .column(member::Column::BlacklistedAt)
        .into_tuple()
        .one(&app.db)
        .await?;
    let listed = matches!(blacklisted_at, Some(Some(_)));
    app.store
        .put(
            &key,
            if listed { "1" } else { "0" },
            Duration::seconds(60),
            now,
        )
        .await?;
    Ok(listed)
}

/// Blacklists a member and revokes every point they hold with one REVOKE entry. Blacklisting
/// someone already on the list changes nothing.
#[tracing::instrument(skip_all)]
pub async fn blacklist_member(
    app: &AppState,
    member_id: i64,
    reason: &str,
    admin_username: &str,
    now: DateTime<Utc>,
) -> AppResult<member::Model> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 255 {
        return Err(AppError::validation(
            "reason",
            "a reason of 1 to 255 characters is required",
        ));
    }
    let member = MemberId::new(member_id);
    // Moves points, so it runs like every such use case: the member locked, one transaction,
    // run again after a deadlock. It has no key of its own: blacklisting twice changes nothing.
    let request = Request::new(member, "blacklist", None, &[])?;
    let work = |txn: DatabaseTransaction| async move {
        if crate::member::mark_blacklisted(&txn, member, reason, admin_username, now).await? {
            // The row is locked: no credit can slip in between this read and the revoke.
            let points = crate::member::require(&txn, member).await?.points;
            if points > 0 {
                let revoke = Movement::new(member_id, points, LedgerKind::Revoke, "blacklist", now)
                    .source_id(admin_username)
                    .note(reason);
                points::debit(&txn, &revoke).await?;
            }
        }
        let listed = crate::member::require(&txn, member).await?;
        Ok((txn, listed, ()))
    };
    let listed = idempotency::run_once(&app.db, &request, now, work, |()| async {
        crate::member::require(&app.db, member).await
    })
    .await?;
    forget_cached(app, member_id).await;
    Ok(listed)
}

/// Drops the cached state after a change. The database already holds the truth, so a cache
/// that cannot be reached is logged, not answered: the change stands, a blacklisted member's
/// points are already revoked and the ledger refuses them credits, and a stale entry expires
/// within its 60 s.
async fn forget_cached(app: &AppState, member_id: i64) {
    if let Err(e) = app.store.delete(&cache_key(member_id)).await {
        tracing::warn!(error = %e, member_id, "dropping the cached blacklist state failed; it expires on its own");
    }
}

/// Lifts the blacklist. Revoked points are not restored.
#[tracing::instrument(skip_all)]
pub async fn unblacklist_member(
    app: &AppState,
    member_id: i64,
    now: DateTime<Utc>,
) -> AppResult<member::Model> {
    crate::member::clear_blacklist(&app.db, MemberId::new(member_id), now).await?;
    forget_cached(app, member_id).await;
    crate::member::require(&app.db, crate::member::MemberId::new(member_id)).await
}
