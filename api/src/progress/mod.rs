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
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Set,
};

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

/// What a handler is told about the events of one use case.
pub struct Progress<'a> {
    pub member_id: i64,
    /// What happened, in order (usually one event; a check-in is the check-in and its points).
    pub events: &'a [Event],
    /// The metrics the events moved, with their new values.
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
    record_all(txn, settings, member_id, std::slice::from_ref(event), now).await
}

/// Records several events of one use case at once: their counters in one statement per kind of
/// update, and each handler asked once about all of them, so a check-in and the points it earns
/// cost one round of progress, not two.
pub async fn record_all(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    events: &[Event],
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    let day = business_date(now, settings.timezone);
    let updates = rules::merged_updates(events, day);
    let (adds, maxes): (Vec<_>, Vec<_>) = updates
        .into_iter()
        .partition(|u| matches!(u.update, Update::Add(_)));
    let mut changed = apply_all(txn, member_id, adds, UpdateKind::Add, now).await?;
    changed.extend(apply_all(txn, member_id, maxes, UpdateKind::Max, now).await?);
    let progress = Progress {
        member_id,
        events,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateKind {
    Add,
    Max,
}

impl UpdateKind {
    fn of(update: Update) -> Self {
        match update {
            Update::Add(_) => UpdateKind::Add,
            Update::Max(_) => UpdateKind::Max,
        }
    }
}

/// Writes counters of one kind of update (all added to, or all records) in one statement: an
/// insert of each counter's initial value that, on the (member, metric, period) key, updates the
/// row with the inserted value instead. Where the database returns rows (PostgreSQL) it gives
/// back the new values; elsewhere they are read after, in one more statement.
async fn apply_all(
    txn: &DatabaseTransaction,
    member_id: i64,
    updates: Vec<rules::KeyedUpdate>,
    kind: UpdateKind,
    now: DateTime<Utc>,
) -> AppResult<Vec<MetricValue>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = updates.iter().map(|u| member_metric::ActiveModel {
        member_id: Set(member_id),
        metric: Set(u.metric.clone()),
        period: Set(u.period.clone()),
        value: Set(u.update.initial()),
        updated_at: Set(now),
        ..Default::default()
    });
    let upsert = member_metric::Entity::insert_many(rows).on_conflict(upsert_with_inserted(
        txn.get_database_backend(),
        kind,
        now,
    ));
    let saved = if txn.support_returning() {
        upsert.exec_with_returning(txn).await?
    } else {
        upsert.exec_without_returning(txn).await?;
        let metrics: Vec<&str> = updates.iter().map(|u| u.metric.as_str()).collect();
        let periods: Vec<&str> = updates.iter().map(|u| u.period.as_str()).collect();
        member_metric::Entity::find()
            .filter(member_metric::Column::MemberId.eq(member_id))
            .filter(member_metric::Column::Metric.is_in(metrics))
            .filter(member_metric::Column::Period.is_in(periods))
            .all(txn)
            .await?
    };
    updates
        .into_iter()
        .map(|u| {
            let value = saved
                .iter()
                .find(|row| row.metric == u.metric && row.period == u.period)
                .map(|row| row.value)
                .ok_or_else(|| {
                    AppError::internal(format!("metric {} {} not returned", u.metric, u.period))
                })?;
            Ok(MetricValue {
                metric: u.metric,
                period: u.period,
                value,
            })
        })
        .collect()
}

/// On the (member, metric, period) key: add the inserted value, or keep the larger of the two.
/// The inserted row is `excluded` on PostgreSQL and SQLite, `VALUES(...)` on MySQL. Used for one
/// counter (`apply`) and for many (`apply_all`).
fn upsert_with_inserted(backend: DbBackend, kind: UpdateKind, now: DateTime<Utc>) -> OnConflict {
    let current = Expr::col((member_metric::Entity, member_metric::Column::Value));
    let inserted = match backend {
        DbBackend::MySql => Expr::cust("VALUES(`value`)"),
        _ => Expr::cust("\"excluded\".\"value\""),
    };
    let updated: Expr = match kind {
        UpdateKind::Add => current.add(inserted),
        UpdateKind::Max => Expr::case(current.clone().lt(inserted.clone()), inserted)
            .finally(current)
            .into(),
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
    .on_conflict(upsert_with_inserted(
        txn.get_database_backend(),
        UpdateKind::of(update),
        now,
    ));
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
