//! Task resolvers: the member's tasks, reported events and claims; the operator's definitions.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::task;

use super::service::{self, ClaimOutcome, TaskChange, TaskStatus, kind_of};
use crate::anticheat::{self, Action};
use crate::auth::RoleGuard;
use crate::auth::rules::OPERATORS;
use crate::context::ContextExt;
use crate::member::MemberView;
use crate::scalars::id_number;

/// How a task's progress is counted: per business day, per ISO week, once, or for ever;
/// HIDDEN tasks show once unlocked.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TaskKind", remote = "entity::task::TaskKind")]
pub enum TaskKindView {
    Daily,
    Weekly,
    Once,
    Growth,
    Challenge,
    Hidden,
}

#[derive(SimpleObject)]
pub struct Task {
    id: ID,
    code: String,
    name: String,
    description: String,
    kind: TaskKindView,
    /// The event kind that advances it.
    event: String,
    target: i64,
    reward_points: i64,
}

impl From<task::Model> for Task {
    fn from(t: task::Model) -> Self {
        let kind = kind_of(&t).into();
        Task {
            id: ID(t.id.to_string()),
            code: t.code,
            name: t.name,
            description: t.description,
            kind,
            event: t.event,
            target: t.target,
            reward_points: t.reward_points,
        }
    }
}

#[derive(SimpleObject)]
pub struct TaskProgress {
    task: Task,
    progress: i64,
    completed: bool,
    claimed: bool,
    /// End of the current period for DAILY/WEEKLY tasks.
    period_ends_at: Option<DateTime<Utc>>,
}

impl From<TaskStatus> for TaskProgress {
    fn from(s: TaskStatus) -> Self {
        TaskProgress {
            task: s.task.into(),
            progress: s.progress,
            completed: s.completed,
            claimed: s.claimed,
            period_ends_at: s.period_ends_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct TaskClaim {
    task: Task,
    points_awarded: i64,
    member: MemberView,
    unlocked: Vec<crate::progress::AchievementView>,
}

impl From<ClaimOutcome> for TaskClaim {
    fn from(o: ClaimOutcome) -> Self {
        TaskClaim {
            task: o.task.into(),
            points_awarded: o.points,
            member: MemberView(o.member),
            unlocked: crate::progress::unlocked_achievements(&o.unlocked),
        }
    }
}

#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// Tasks visible to this member now, with progress.
    async fn tasks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TaskProgress>> {
        let app = ctx.app()?;
        let tasks =
            service::visible_tasks(&app.db, &app.settings, ctx.member_id()?, ctx.now()?).await?;
        Ok(tasks.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Report something the member did in the app (browse_item, share, review, ugc_post, ...).
    async fn report_event(
        &self,
        ctx: &Context<'_>,
        kind: String,
        target_id: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Vec<TaskProgress>> {
        let action = if kind.trim() == "share" {
            Action::Share
        } else {
            Action::Earn
        };
        let (app, req, member_id) = anticheat::gated(ctx, action).await?;
        let tasks = service::report(
            &app.db,
            &app.settings,
            member_id,
            &kind,
            target_id.as_deref(),
            idempotency_key.as_deref(),
            req.now,
        )
        .await?;
        Ok(tasks.into_iter().map(Into::into).collect())
    }

    /// Pays a completed task's reward, once per period. A retry with the same
    /// `idempotencyKey` answers what the first call did; without one, a repeat is ALREADY_DONE.
    async fn claim_task(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<TaskClaim> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Earn).await?;
        let outcome = service::claim(
            &app.db,
            &app.settings,
            member_id,
            id_number(&task_id, "taskId")?,
            idempotency_key.as_deref(),
            req.now,
        )
        .await?;
        Ok(outcome.into())
    }
}

#[derive(InputObject)]
pub struct TaskInput {
    id: Option<ID>,
    code: String,
    name: String,
    description: String,
    kind: String,
    event: String,
    target: i64,
    reward_points: i64,
    #[graphql(default = true)]
    active: bool,
    /// Only members at or above this tier rank see it.
    min_tier_rank: Option<i32>,
    /// Only members in this RFM segment see it.
    audience_segment: Option<String>,
}

#[derive(SimpleObject)]
pub struct TaskAdmin {
    id: ID,
    code: String,
    active: bool,
}

#[derive(Default)]
pub struct TaskAdminMutation;

#[Object]
impl TaskAdminMutation {
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_task(
        &self,
        ctx: &Context<'_>,
        input: TaskInput,
    ) -> async_graphql::Result<TaskAdmin> {
        let change = TaskChange {
            id: input
                .id
                .as_ref()
                .map(|id| id_number(id, "id"))
                .transpose()?,
            code: input.code,
            name: input.name,
            description: input.description,
            kind: input.kind,
            event: input.event,
            target: input.target,
            reward_points: input.reward_points,
            active: input.active,
            min_tier_rank: input.min_tier_rank,
            audience_segment: input.audience_segment,
        };
        let saved = service::upsert(&ctx.app()?.db, change, ctx.now()?).await?;
        Ok(TaskAdmin {
            id: ID(saved.id.to_string()),
            code: saved.code,
            active: saved.active,
        })
    }
}
