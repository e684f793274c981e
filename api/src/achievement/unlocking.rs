//! Unlocking: after every metric change, in the event's transaction, the achievements a member
//! now meets are unlocked once, paid once and counted; the backfill job does the same for
//! achievements defined after members met them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{achievement, member, member_achievement, member_title};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::rules::{self};
use super::titles::{grant_title, title_name};
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event, Grant, Progress, ProgressHandler, Unlocked};

/// Unlocks one achievement for one member, once: the reward through the ledger, the title and
/// the member's `achievements.unlocked` metric. False if already held. The caller counts the
/// holder (see `count_holders`).
async fn unlock(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    a: &achievement::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let savepoint = txn.begin().await?;
    let inserted = member_achievement::ActiveModel {
        member_id: Set(member_id),
        achievement_id: Set(a.id),
        unlocked_at: Set(now),
        ..Default::default()
    }
    .insert(&savepoint)
    .await;
    match inserted {
        Ok(_) => savepoint.commit().await?,
        Err(e) if AppError::is_unique_violation(&e) => {
            savepoint.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    let blacklisted = member::Entity::find_by_id(member_id)
        .one(txn)
        .await?
        .is_none_or(|m| m.blacklisted_at.is_some());
    if a.reward_points > 0 && !blacklisted {
        let reward = Movement::new(
            member_id,
            a.reward_points,
            LedgerKind::Earn,
            "achievement",
            now,
        )
        .source_id(&a.code)
        .once(format!("achievement:{}", a.code));
        points::credit(txn, &reward, Expiry::After(settings.points.ttl)).await?;
    }
    if let (Some(code), Some(name)) = (&a.title_code, &a.title_name) {
        let held = member_title::Entity::find()
            .filter(member_title::Column::MemberId.eq(member_id))
            .filter(member_title::Column::Code.eq(code))
            .count(txn)
            .await?;
        if held == 0 {
            member_title::ActiveModel {
                member_id: Set(member_id),
                code: Set(code.clone()),
                name: Set(name.clone()),
                granted_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
    }
    progress::add(txn, member_id, "achievements.unlocked", "all", 1, now).await?;
    Ok(true)
}

/// Unlocks whatever the member now meets among achievements on `metrics`; repeats for
/// achievements on the count of achievements. Returns the codes unlocked.
async fn unlock_met(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    metrics: Vec<(String, i64)>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    let mut unlocked = Vec::new();
    let mut holders_of = Vec::new();
    let mut pending = metrics;
    while !pending.is_empty() {
        // One query for every metric that moved, leaving out what the member already holds, so
        // an event that unlocks nothing costs one round trip.
        let mut met = Condition::any();
        for (metric, value) in pending.drain(..) {
            met = met.add(
                Condition::all()
                    .add(achievement::Column::Metric.eq(metric))
                    .add(achievement::Column::Threshold.lte(value)),
            );
        }
        let held = Query::select()
            .column(member_achievement::Column::AchievementId)
            .from(member_achievement::Entity)
            .and_where(member_achievement::Column::MemberId.eq(member_id))
            .to_owned();
        let candidates = achievement::Entity::find()
            .filter(met)
            .filter(achievement::Column::Id.not_in_subquery(held))
            .order_by_asc(achievement::Column::Id)
            .all(txn)
            .await?;
        let mut any = false;
        for a in candidates {
            if unlock(txn, settings, member_id, &a, now).await? {
                holders_of.push(a.id);
                unlocked.push(Unlocked::Achievement(super::graphql::view(&a)));
                any = true;
            }
        }
        if any {
            let count = progress::value(txn, member_id, "achievements.unlocked", "all").await?;
            pending.push(("achievements.unlocked".to_string(), count));
        }
    }
    count_holders(txn, holders_of).await?;
    Ok(unlocked)
}

/// Adds the new holders to each achievement's count. Every member's event that unlocks a popular
/// achievement writes the same row, so it is done last (the row lock is held only until the
/// commit) and in id order (two events that unlock the same two achievements queue instead of
/// deadlocking).
async fn count_holders(txn: &DatabaseTransaction, mut ids: Vec<i64>) -> AppResult<()> {
    ids.sort_unstable();
    for id in ids {
        achievement::Entity::update_many()
            .col_expr(
                achievement::Column::UnlockedCount,
                Expr::col(achievement::Column::UnlockedCount).add(1i64),
            )
            .filter(achievement::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Asks achievements after every metric change, in the same transaction.
pub struct AchievementUnlocker;

pub static ACHIEVEMENTS: AchievementUnlocker = AchievementUnlocker;

#[async_trait::async_trait]
impl ProgressHandler for AchievementUnlocker {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        p: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>> {
        for event in p.events {
            if let Event::Granted(Grant::Title { code }) = event {
                grant_title(txn, MemberId::new(p.member_id), code, p.now).await?;
            }
        }
        let all_time: Vec<(String, i64)> = p
            .changed
            .iter()
            .filter(|m| m.period == "all" && rules::known_metric(&m.metric))
            .map(|m| (m.metric.clone(), m.value))
            .collect();
        if all_time.is_empty() {
            return Ok(Vec::new());
        }
        unlock_met(txn, p.settings, p.member_id, all_time, p.now).await
    }

    async fn resolves(&self, txn: &DatabaseTransaction, grant: &Grant) -> AppResult<Option<bool>> {
        Ok(match grant {
            Grant::Title { code } => Some(title_name(txn, code).await?.is_some()),
            _ => None,
        })
    }
}

/// Job BACKFILL_ACHIEVEMENTS: unlocks every achievement members already meet (after an operator
/// defines a new one), without waiting for their next event. One transaction per member.
#[tracing::instrument(skip_all)]
pub async fn backfill(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let achievements = achievement::Entity::find().all(db).await?;
    let mut by_member: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    for a in &achievements {
        for (member_id, value, _) in
            progress::holders(db, &a.metric, "all", a.threshold, Vec::new()).await?
        {
            by_member
                .entry(member_id)
                .or_default()
                .push((a.metric.clone(), value));
        }
    }
    let mut unlocked = 0;
    for (member_id, metrics) in by_member {
        let txn = db.begin().await?;
        unlocked += unlock_met(&txn, settings, member_id, metrics, now)
            .await?
            .len() as u64;
        txn.commit().await?;
        crate::metrics::committed();
    }
    Ok(unlocked)
}
