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

pub struct Task(task::Model);

#[Object]
impl Task {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn kind(&self) -> TaskKindView {
        kind_of(&self.0).into()
    }
    /// The event kind that advances it.
    async fn event(&self) -> &str {
        &self.0.event
    }
    async fn target(&self) -> i64 {
        self.0.target
    }
    async fn reward_points(&self) -> i64 {
        self.0.reward_points
    }
}

pub struct TaskProgress(TaskStatus);

#[Object]
impl TaskProgress {
    async fn task(&self) -> Task {
        Task(self.0.task.clone())
    }
    async fn progress(&self) -> i64 {
        self.0.progress
    }
    async fn completed(&self) -> bool {
        self.0.completed
    }
    async fn claimed(&self) -> bool {
        self.0.claimed
    }
    /// End of the current period for DAILY/WEEKLY tasks.
    async fn period_ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.period_ends_at
    }
}

pub struct TaskClaim(ClaimOutcome);

#[Object]
impl TaskClaim {
    async fn task(&self) -> Task {
        Task(self.0.task.clone())
    }
    async fn points_awarded(&self) -> i64 {
        self.0.points
    }
    async fn member(&self) -> MemberView {
        MemberView(self.0.member.clone())
    }
    async fn unlocked(&self) -> Vec<crate::progress::AchievementView> {
        crate::progress::unlocked_achievements(&self.0.unlocked)
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
        Ok(tasks.into_iter().map(TaskProgress).collect())
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
        Ok(tasks.into_iter().map(TaskProgress).collect())
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
        Ok(TaskClaim(outcome))
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
