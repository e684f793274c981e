//! Task use cases: definitions, what a member sees with progress, progress from events,
//! client-reported events, claims, hidden-task unlocks and invite rewards.

use chrono::{DateTime, Utc};
use entity::{member, reported_event, task, task_progress, task_unlock};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::rules::{self, Audience, TaskKind, Visibility};
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event, Grant, Progress, ProgressHandler, Unlocked};

/// A task with what the member has done of it in the current period.
pub struct TaskStatus {
    pub task: task::Model,
    pub progress: i64,
    pub completed: bool,
    pub claimed: bool,
    pub period_ends_at: Option<DateTime<Utc>>,
}

pub fn kind_of(task: &task::Model) -> TaskKind {
    task.kind
}

/// An operator's task definition.
pub struct TaskChange {
    pub id: Option<i64>,
    pub code: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub event: String,
    pub target: i64,
    pub reward_points: i64,
    pub active: bool,
    pub min_tier_rank: Option<i32>,
    pub audience_segment: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &impl ConnectionTrait,
    change: TaskChange,
    now: DateTime<Utc>,
) -> AppResult<task::Model> {
    let kind = TaskKind::parse(&change.kind).ok_or_else(|| {
        AppError::validation(
            "kind",
            "kind is DAILY, WEEKLY, ONCE, GROWTH, CHALLENGE or HIDDEN",
        )
    })?;
    let code = change.code.trim().to_ascii_lowercase();
    if !crate::input::is_code(&code) {
        return Err(AppError::validation(
            "code",
            "code is 1 to 64 of a-z, 0-9, '_' or '.'",
        ));
    }
    let event = change.event.trim().to_string();
    if !crate::input::is_code(&event) {
        return Err(AppError::validation(
            "event",
            "event is an event kind such as checkin or browse_item",
        ));
    }
    let name = change.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 64 characters",
        ));
    }
    if change.description.chars().count() > 255 {
        return Err(AppError::validation(
            "description",
            "description must be at most 255 characters",
        ));
    }
    if !(1..=1_000_000_000).contains(&change.target) {
        return Err(AppError::validation("target", "target must be at least 1"));
    }
    if !(0..=100_000).contains(&change.reward_points) {
        return Err(AppError::validation(
            "rewardPoints",
            "rewardPoints must be 0 to 100,000",
        ));
    }
    let existing = match change.id {
        Some(id) => Some(
            task::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound("task"))?,
        ),
        None => {
            task::Entity::find()
                .filter(task::Column::Code.eq(&code))
                .one(db)
                .await?
        }
    };
    let is_new = existing.is_none();
    let mut active: task::ActiveModel = match existing {
        Some(row) => row.into(),
        None => task::ActiveModel {
            starts_at: Set(None),
            ends_at: Set(None),
            ..Default::default()
        },
    };
    active.code = Set(code);
    active.name = Set(name.to_string());
    active.description = Set(change.description.trim().to_string());
    active.kind = Set(kind);
    active.event = Set(event);
    active.target = Set(change.target);
    active.reward_points = Set(change.reward_points);
    active.active = Set(change.active);
    active.min_tier_rank = Set(change.min_tier_rank);
    active.audience_segment = Set(change
        .audience_segment
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty()));
    active.updated_at = Set(now);
    let saved = if is_new {
        active.insert(db).await
    } else {
        active.update(db).await
    };
    saved.map_err(|e| {
        AppError::on_unique_violation(e, AppError::Conflict("another task has this code".into()))
    })
}

struct Viewer {
    tier_rank: i32,
    segment: Option<String>,
    unlocked: Vec<i64>,
}

async fn viewer(db: &impl ConnectionTrait, member_id: i64) -> AppResult<Viewer> {
    let m = crate::member::require(db, crate::member::MemberId::new(member_id)).await?;
    let unlocked = task_unlock::Entity::find()
        .filter(task_unlock::Column::MemberId.eq(member_id))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.task_id)
        .collect();
    Ok(Viewer {
        tier_rank: crate::member::tier_rank(db, &m).await?,
        segment: m.rfm_segment,
        unlocked,
    })
}

fn sees(v: &Viewer, t: &task::Model, now: DateTime<Utc>) -> bool {
    let task = Visibility {
        kind: kind_of(t),
        active: t.active,
        starts_at: t.starts_at,
        ends_at: t.ends_at,
        min_tier_rank: t.min_tier_rank,
        audience_segment: t.audience_segment.as_deref(),
    };
    let who = Audience {
        tier_rank: v.tier_rank,
        segment: v.segment.as_deref(),
        hidden_unlocked: v.unlocked.contains(&t.id),
    };
    rules::visible(&task, &who, now)
}

/// The tasks with the member's progress in each one's current period, read in one query.
async fn statuses_of(
    db: &impl ConnectionTrait,
    member_id: i64,
    tasks: Vec<task::Model>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatus>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let today = business_date(now, settings.timezone);
    let periods: Vec<String> = tasks
        .iter()
        .map(|t| rules::period_of(kind_of(t), today))
        .collect();
    let rows = task_progress::Entity::find()
        .filter(task_progress::Column::MemberId.eq(member_id))
        .filter(task_progress::Column::TaskId.is_in(tasks.iter().map(|t| t.id)))
        .filter(task_progress::Column::Period.is_in(periods.clone()))
        .all(db)
        .await?;
    Ok(tasks
        .into_iter()
        .zip(periods)
        .map(|(t, period)| {
            let kind = kind_of(&t);
            let row = rows
                .iter()
                .find(|r| r.task_id == t.id && r.period == period);
            TaskStatus {
                progress: row.map_or(0, |r| std::cmp::min(r.progress, t.target)),
                completed: row.is_some_and(|r| r.completed_at.is_some()),
                claimed: row.is_some_and(|r| r.claimed_at.is_some()),
                period_ends_at: rules::period_end(kind, today, settings.timezone),
                task: t,
            }
        })
        .collect())
}

/// The tasks this member sees now, with progress in the current period.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn visible_tasks(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatus>> {
    let member_id = member.get();
    let v = viewer(db, member_id).await?;
    let tasks = task::Entity::find()
        .filter(task::Column::Active.eq(true))
        .order_by_asc(task::Column::Id)
        .all(db)
        .await?;
    let seen = tasks.into_iter().filter(|t| sees(&v, t, now)).collect();
    statuses_of(db, member_id, seen, settings, now).await
}

/// Advances every active task that counts this event, in the event's transaction.
pub struct TaskProgressHandler;

pub static TASK_PROGRESS: TaskProgressHandler = TaskProgressHandler;

#[async_trait::async_trait]
impl ProgressHandler for TaskProgressHandler {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        p: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>> {
        let day = business_date(p.now, p.settings.timezone);
        let mut counted: Vec<(String, i64)> = Vec::new();
        for event in p.events {
            if let Event::Granted(Grant::HiddenTask { code }) = event {
                unlock_hidden(txn, MemberId::new(p.member_id), code, p.now).await?;
            }
            counted.extend(
                rules::task_events(event)
                    .into_iter()
                    .filter(|(_, amount)| *amount > 0),
            );
        }
        if counted.is_empty() {
            return Ok(Vec::new());
        }
        // One read of the tasks every event counts for; then one statement per event.
        let names: Vec<&str> = counted.iter().map(|(name, _)| name.as_str()).collect();
        let tasks = task::Entity::find()
            .filter(task::Column::Active.eq(true))
            .filter(task::Column::Event.is_in(names))
            .all(txn)
            .await?;
        for (event, amount) in &counted {
            let counting: Vec<task::Model> = tasks
                .iter()
                .filter(|t| &t.event == event)
                .cloned()
                .collect();
            advance(txn, p.member_id, &counting, day, *amount, p.now).await?;
        }
        Ok(Vec::new())
    }

    async fn resolves(&self, txn: &DatabaseTransaction, grant: &Grant) -> AppResult<Option<bool>> {
        Ok(match grant {
            Grant::HiddenTask { code } => Some(hidden_task_exists(txn, code).await?),
            _ => None,
        })
    }
}

/// Moves every task in `tasks` on by `amount` for the member, each in its current period, in one
/// statement: an insert that, on the (member, task, period) key, adds to the row instead.
/// Reaching the target completes a task (completing does not pay, claiming does) in the same
/// statement; each row's target is picked by task id. `completed_at` is assigned before
/// `progress` because MySQL evaluates the assignments in order and would otherwise see the new
/// progress; PostgreSQL and SQLite see the old row in both.
async fn advance(
    txn: &DatabaseTransaction,
    member_id: i64,
    tasks: &[task::Model],
    day: chrono::NaiveDate,
    amount: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let Some(first) = tasks.first() else {
        return Ok(());
    };
    let col = |c: task_progress::Column| Expr::col((task_progress::Entity, c));
    let mut target = Expr::case(
        col(task_progress::Column::TaskId).eq(first.id),
        first.target,
    );
    for t in &tasks[1..] {
        target = target.case(col(task_progress::Column::TaskId).eq(t.id), t.target);
    }
    let completes_now = col(task_progress::Column::CompletedAt).is_null().and(
        col(task_progress::Column::Progress)
            .add(amount)
            .gte(target.finally(i64::MAX)),
    );
    let rows = tasks.iter().map(|t| task_progress::ActiveModel {
        member_id: Set(member_id),
        task_id: Set(t.id),
        period: Set(rules::period_of(kind_of(t), day)),
        progress: Set(amount),
        completed_at: Set((amount >= t.target).then_some(now)),
        claimed_at: Set(None),
        updated_at: Set(now),
        ..Default::default()
    });
    task_progress::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                task_progress::Column::MemberId,
                task_progress::Column::TaskId,
                task_progress::Column::Period,
            ])
            .value(
                task_progress::Column::CompletedAt,
                Expr::case(completes_now, Expr::value(now))
                    .finally(col(task_progress::Column::CompletedAt)),
            )
            .value(
                task_progress::Column::Progress,
                col(task_progress::Column::Progress).add(amount),
            )
            .value(task_progress::Column::UpdatedAt, Expr::value(now))
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// `reportEvent`: a client-side action on the allow-list, at most `daily_cap` a business day;
/// browse-type kinds count a target once a day, and a key once ever. Returns the tasks it moves.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn report(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    kind: &str,
    target_id: Option<&str>,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatus>> {
    let member_id = member.get();
    let kind = kind.trim();
    let allowed = settings
        .parsed
        .get::<super::Reportables>()?
        .0
        .iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| {
            AppError::validation("kind", format!("{kind:?} is not an event this shop counts"))
        })?;
    let target = target_id.map(str::trim).filter(|t| !t.is_empty());
    if target.is_some_and(|t| t.len() > 128) {
        return Err(AppError::validation(
            "targetId",
            "targetId must be at most 128 characters",
        ));
    }
    if allowed.distinct_targets && target.is_none() {
        return Err(AppError::validation(
            "targetId",
            format!("{kind} needs the targetId it is about"),
        ));
    }
    let request = Request::new(
        member,
        "report",
        idempotency_key,
        &[kind, target.unwrap_or_default()],
    )?;
    let today = business_date(now, settings.timezone);
    let day = &progress::rules::period_key(progress::Period::Day, today);
    let work = |txn: DatabaseTransaction| async move {
        // Under the member's lock the daily cap is read and counted as one step.
        let counts = !allowed.distinct_targets
            || first_time(&txn, member_id, kind, target.unwrap_or_default(), day, now).await?;
        if counts {
            let today_count =
                progress::value(&txn, member_id, &format!("event.{kind}"), day).await?;
            if today_count >= allowed.daily_cap {
                return Err(AppError::LimitReached {
                    limit: allowed.daily_cap,
                    message: format!("{kind} counts at most {} times a day", allowed.daily_cap),
                });
            }
            let event = Event::Reported {
                kind: kind.to_string(),
            };
            progress::record(&txn, settings, member_id, &event, now).await?;
        }
        let statuses = statuses_for(&txn, settings, member_id, kind, now).await?;
        Ok((txn, statuses, ()))
    };
    // A retry counts nothing again; it shows the tasks as they are now.
    let replay = |()| statuses_for(db, settings, member_id, kind, now);
    idempotency::run_once(db, &request, now, work, replay).await
}

/// The member's tasks that `kind` moves, as they stand.
async fn statuses_for(
    db: &impl ConnectionTrait,
    settings: &Settings,
    member_id: i64,
    kind: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatus>> {
    let v = viewer(db, member_id).await?;
    let tasks = task::Entity::find()
        .filter(task::Column::Active.eq(true))
        .filter(task::Column::Event.eq(kind))
        .order_by_asc(task::Column::Id)
        .all(db)
        .await?;
    let seen = tasks.into_iter().filter(|t| sees(&v, t, now)).collect();
    statuses_of(db, member_id, seen, settings, now).await
}

/// Records that something was seen; false when it already was (it then counts no more).
/// A savepoint keeps the outer transaction usable after a duplicate on every database.
async fn first_time(
    txn: &DatabaseTransaction,
    member_id: i64,
    kind: &str,
    target: &str,
    period: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let savepoint = txn.begin().await?;
    let inserted = reported_event::ActiveModel {
        member_id: Set(member_id),
        kind: Set(kind.to_string()),
        target_id: Set(target.to_string()),
        period: Set(period.to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&savepoint)
    .await;
    match inserted {
        Ok(_) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(e) if AppError::is_unique_violation(&e) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

pub struct ClaimOutcome {
    pub task: task::Model,
    pub points: i64,
    pub member: member::Model,
    pub unlocked: Vec<Unlocked>,
}

/// What a claim stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claimed {
    task_id: i64,
    points: i64,
}

/// `claimTask`: pays a completed task once per period.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn claim(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    task_id: i64,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<ClaimOutcome> {
    let member_id = member.get();
    let request = Request::new(member, "claim", idempotency_key, &[&task_id.to_string()])?;
    let work = |txn: DatabaseTransaction| async move {
        let t = task::Entity::find_by_id(task_id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("task"))?;
        let v = viewer(&txn, member_id).await?;
        if !sees(&v, &t, now) {
            return Err(AppError::NotFound("task"));
        }
        let period = rules::period_of(kind_of(&t), business_date(now, settings.timezone));
        let progress_row = task_progress::Entity::find()
            .filter(task_progress::Column::MemberId.eq(member_id))
            .filter(task_progress::Column::TaskId.eq(t.id))
            .filter(task_progress::Column::Period.eq(&period))
            .one(&txn)
            .await?;
        let Some(row) = progress_row.filter(|r| r.completed_at.is_some()) else {
            return Err(AppError::NotAvailable(
                "this task is not completed yet".into(),
            ));
        };
        let claimed = task_progress::Entity::update_many()
            .col_expr(task_progress::Column::ClaimedAt, Expr::value(now))
            .filter(task_progress::Column::Id.eq(row.id))
            .filter(task_progress::Column::ClaimedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(AppError::AlreadyDone("this task is already claimed".into()));
        }
        let mut events = Vec::new();
        if t.reward_points > 0 {
            let reward = Movement::new(member_id, t.reward_points, LedgerKind::Earn, "task", now)
                .source_id(&t.code)
                .once(format!("task:{}:{period}", t.id));
            points::credit(&txn, &reward, Expiry::After(settings.points.ttl)).await?;
            events.push(Event::PointsEarned {
                amount: t.reward_points,
                interaction: true,
            });
        }
        events.push(Event::TaskClaimed);
        let unlocked = progress::record_all(&txn, settings, member_id, &events, now).await?;
        let stored = Claimed {
            task_id: t.id,
            points: t.reward_points,
        };
        let outcome = ClaimOutcome {
            points: t.reward_points,
            task: t,
            member: crate::member::require(&txn, member).await?,
            unlocked,
        };
        Ok((txn, outcome, stored))
    };
    let replay = |stored: Claimed| async move {
        Ok(ClaimOutcome {
            task: task::Entity::find_by_id(stored.task_id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound("task"))?,
            points: stored.points,
            member: crate::member::require(db, member).await?,
            unlocked: Vec::new(),
        })
    };
    idempotency::run_once(db, &request, now, work, replay).await
}

/// Whether a HIDDEN task has this code (blind boxes check their prizes with it).
#[tracing::instrument(skip_all)]
pub async fn hidden_task_exists(db: &impl ConnectionTrait, code: &str) -> AppResult<bool> {
    Ok(task::Entity::find()
        .filter(task::Column::Code.eq(code))
        .filter(task::Column::Kind.eq(TaskKind::Hidden))
        .one(db)
        .await?
        .is_some())
}

/// Shows a hidden task to one member (blind boxes hand these out). Unlocking twice is harmless.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn unlock_hidden<C>(
    db: &C,
    member: MemberId,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let member_id = member.get();
    let t = task::Entity::find()
        .filter(task::Column::Code.eq(code))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("task"))?;
    let savepoint = db.begin().await?;
    let inserted = task_unlock::ActiveModel {
        member_id: Set(member_id),
        task_id: Set(t.id),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&savepoint)
    .await;
    match inserted {
        Ok(_) => savepoint.commit().await?,
        Err(e) if AppError::is_unique_violation(&e) => savepoint.rollback().await?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
