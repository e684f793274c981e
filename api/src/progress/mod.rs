//! The one place where events meet tasks and achievements. A use case calls `record` inside its
//! own transaction; the event's metrics are updated, then every registered handler is asked what
//! changed for it, so a check-in never needs to know an achievement exists.
//!
//! Owns: member metrics and the event dispatch; handlers are registered by `startup`.
//! May call: the infrastructure only (settings, clock, errors); no feature module.

pub mod rules;
mod view;

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use entity::member_metric;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use rules::Update;
pub use rules::{Event, Grant, Period};
pub use view::{AchievementView, TitleView, unlocked_achievements};

use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};

/// A metric's value after an event moved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricValue {
    pub metric: String,
    pub period: String,
    pub value: i64,
}

/// Something an event unlocked, for the mutation's `unlocked` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    Achievement(AchievementView),
}

/// What a handler is told about one event.
pub struct Progress<'a> {
    pub member_id: i64,
    pub event: &'a Event,
    /// The metrics the event moved, with their new values.
    pub changed: &'a [MetricValue],
    pub now: DateTime<Utc>,
    pub settings: &'a Settings,
}

/// A module that reacts to events (member growth, tasks, achievements), in the caller's
/// transaction.
#[async_trait::async_trait]
pub trait ProgressHandler: Send + Sync {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        progress: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>>;

    /// For a grant this handler gives: whether it can be given (the title, task or item
    /// exists). `None` for grants it does not give.
    async fn resolves(
        &self,
        _txn: &DatabaseTransaction,
        _grant: &Grant,
    ) -> AppResult<Option<bool>> {
        Ok(None)
    }
}

/// Gives the member `grant` through the module that owns it (see `Event::Granted`).
pub async fn grant(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    grant: Grant,
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    record(txn, settings, member_id, &Event::Granted(grant), now).await
}

/// Whether some module can give `grant` (checked when a blind box is saved, so every prize
/// resolves before anyone can win it).
pub async fn grant_resolves(txn: &DatabaseTransaction, grant: &Grant) -> AppResult<bool> {
    for handler in handlers()? {
        if let Some(answer) = handler.resolves(txn, grant).await? {
            return Ok(answer);
        }
    }
    Ok(false)
}

static HANDLERS: OnceLock<Vec<&'static dyn ProgressHandler>> = OnceLock::new();

/// Installs the modules that react to events; the composition root (`startup`) calls it once,
/// so this module names none of them. Later calls change nothing.
pub fn install(handlers: Vec<&'static dyn ProgressHandler>) {
    let _ = HANDLERS.set(handlers);
}

/// The handlers asked after every event. Recording an event before any are installed is a bug
/// (an event would count for nothing), so it fails instead of passing silently.
fn handlers() -> AppResult<&'static [&'static dyn ProgressHandler]> {
    HANDLERS
        .get()
        .map(Vec::as_slice)
        .ok_or_else(|| AppError::internal("progress handlers were not installed at start-up"))
}

/// Records `event` for the member and returns what it unlocked. Counters for days and weeks
/// use the business time zone.
pub async fn record(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    event: &Event,
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    let day = business_date(now, settings.timezone);
    let mut changed = Vec::new();
    for (metric, update, periods) in rules::changes_for(event) {
        let keys: Vec<String> = periods
            .iter()
            .map(|&period| rules::period_key(period, day))
            .collect();
        for (period, value) in apply_periods(txn, member_id, &metric, keys, update, now).await? {
            changed.push(MetricValue {
                metric: metric.clone(),
                period,
                value,
            });
        }
    }
    let progress = Progress {
        member_id,
        event,
        changed: &changed,
        now,
        settings,
    };
    let mut unlocked = Vec::new();
    for handler in handlers()? {
        unlocked.extend(handler.on_progress(txn, &progress).await?);
    }
    Ok(unlocked)
}

/// Adds to one counter without asking the handlers (for counters the handlers keep themselves,
/// such as the number of achievements unlocked).
pub async fn add(
    txn: &DatabaseTransaction,
    member_id: i64,
    metric: &str,
    period: &str,
    amount: i64,
    now: DateTime<Utc>,
) -> AppResult<i64> {
    apply(txn, member_id, metric, period, Update::Add(amount), now).await
}

/// The member's value of a metric in a period (0 when never moved).
pub async fn value(
    db: &impl ConnectionTrait,
    member_id: i64,
    metric: &str,
    period: &str,
) -> AppResult<i64> {
    Ok(find(db, member_id, metric, period)
        .await?
        .map_or(0, |m| m.value))
}

/// A member's metric in a period with when it last moved (when the value was reached).
pub async fn entry(
    db: &impl ConnectionTrait,
    member_id: i64,
    metric: &str,
    period: &str,
) -> AppResult<Option<(i64, DateTime<Utc>)>> {
    Ok(find(db, member_id, metric, period)
        .await?
        .map(|m| (m.value, m.updated_at)))
}

/// Every metric of a member in a period.
pub async fn values_of(
    db: &impl ConnectionTrait,
    member_id: i64,
    period: &str,
) -> AppResult<Vec<(String, i64)>> {
    Ok(member_metric::Entity::find()
        .filter(member_metric::Column::MemberId.eq(member_id))
        .filter(member_metric::Column::Period.eq(period))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.metric, r.value))
        .collect())
}

/// Every member whose metric in a period is at least `at_least`: (member, value, reached at),
/// leaving out `excluded` members.
pub async fn holders(
    db: &impl ConnectionTrait,
    metric: &str,
    period: &str,
    at_least: i64,
    excluded: Vec<i64>,
) -> AppResult<Vec<(i64, i64, DateTime<Utc>)>> {
    Ok(member_metric::Entity::find()
        .filter(member_metric::Column::Metric.eq(metric))
        .filter(member_metric::Column::Period.eq(period))
        .filter(member_metric::Column::Value.gte(at_least))
        .filter(member_metric::Column::MemberId.is_not_in(excluded))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.member_id, r.value, r.updated_at))
        .collect())
}

async fn find(
    db: &impl ConnectionTrait,
    member_id: i64,
    metric: &str,
    period: &str,
) -> AppResult<Option<member_metric::Model>> {
    Ok(member_metric::Entity::find()
        .filter(member_metric::Column::MemberId.eq(member_id))
        .filter(member_metric::Column::Metric.eq(metric))
        .filter(member_metric::Column::Period.eq(period))
        .one(db)
        .await?)
}

/// Updates one metric in several periods (all time, this week, this month) with one statement
/// where the database returns the new values; returns (period, value) in the order given.
async fn apply_periods(
    txn: &DatabaseTransaction,
    member_id: i64,
    metric: &str,
    periods: Vec<String>,
    update: Update,
    now: DateTime<Utc>,
) -> AppResult<Vec<(String, i64)>> {
    if periods.len() < 2 || !txn.support_returning() {
        let mut values = Vec::with_capacity(periods.len());
        for period in periods {
            let value = apply(txn, member_id, metric, &period, update, now).await?;
            values.push((period, value));
        }
        return Ok(values);
    }
    let rows = periods.iter().map(|period| member_metric::ActiveModel {
        member_id: Set(member_id),
        metric: Set(metric.to_string()),
        period: Set(period.clone()),
        value: Set(update.initial()),
        updated_at: Set(now),
        ..Default::default()
    });
    let saved = member_metric::Entity::insert_many(rows)
        .on_conflict(upsert_metric(update, now))
        .exec_with_returning(txn)
        .await?;
    periods
        .into_iter()
        .map(|period| {
            let value = saved
                .iter()
                .find(|row| row.period == period)
                .map(|row| row.value)
                .ok_or_else(|| {
                    AppError::internal(format!("metric {metric} {period} not returned"))
                })?;
            Ok((period, value))
        })
        .collect()
}

/// On the (member, metric, period) key: add to the value, or keep the larger one.
fn upsert_metric(update: Update, now: DateTime<Utc>) -> OnConflict {
    let current = Expr::col((member_metric::Entity, member_metric::Column::Value));
    let updated: Expr = match update {
        Update::Add(n) => current.add(n),
        Update::Max(n) => Expr::case(current.clone().lt(n), n).finally(current).into(),
    };
    OnConflict::columns([
        member_metric::Column::MemberId,
        member_metric::Column::Metric,
        member_metric::Column::Period,
    ])
    .value(member_metric::Column::Value, updated)
    .value(member_metric::Column::UpdatedAt, Expr::value(now))
    .to_owned()
}

/// Updates one counter in one statement: an insert that, on the unique key, updates the row
/// instead (`ON CONFLICT DO UPDATE` / `ON DUPLICATE KEY UPDATE`), so concurrent events never
/// race between a read and a write.
async fn apply(
    txn: &DatabaseTransaction,
    member_id: i64,
    metric: &str,
    period: &str,
    update: Update,
    now: DateTime<Utc>,
) -> AppResult<i64> {
    let upsert = member_metric::Entity::insert(member_metric::ActiveModel {
        member_id: Set(member_id),
        metric: Set(metric.to_string()),
        period: Set(period.to_string()),
        value: Set(update.initial()),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(upsert_metric(update, now));
    // PostgreSQL and SQLite hand the new value back in the same round trip; MySQL reads it after.
    if txn.support_returning() {
        return Ok(upsert.exec_with_returning(txn).await?.value);
    }
    upsert.exec_without_returning(txn).await?;
    find(txn, member_id, metric, period)
        .await?
        .map(|row| row.value)
        .ok_or_else(|| {
            AppError::internal(format!("metric {metric} of member {member_id} vanished"))
        })
}
