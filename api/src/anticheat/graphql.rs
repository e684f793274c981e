//! Anti-cheat resolvers: members answer captchas; operators manage the blacklist and risk events.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::risk_event;

use super::{blacklist, risk, solve_captcha};
use crate::auth::RoleGuard;
use crate::auth::rules::{OPERATORS, READERS};
use crate::context::ContextExt;
use crate::error::AppError;
use crate::member::MemberAdminView;
use crate::pagination::{PageInfo, finish_page, page_request};
use crate::scalars::id_number;

#[derive(Default)]
pub struct CaptchaMutation;

#[Object]
impl CaptchaMutation {
    /// Answer a challenge from a CAPTCHA_REQUIRED error; then retry the action.
    async fn solve_captcha(
        &self,
        ctx: &Context<'_>,
        challenge_id: ID,
        answer: String,
    ) -> async_graphql::Result<bool> {
        let member_id = ctx.member_id()?;
        Ok(solve_captcha(ctx.app()?, member_id, &challenge_id, &answer, ctx.now()?).await?)
    }
}

/// An event is open until an operator dismisses it or acts on it (blacklists its member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::risk_event::RiskStatus")]
pub enum RiskStatus {
    Open,
    Dismissed,
    Actioned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RiskAction {
    Dismiss,
    Blacklist,
}

#[derive(SimpleObject)]
pub struct RiskEvent {
    id: ID,
    member_id: Option<ID>,
    device_id: Option<String>,
    rule: String,
    detail: serde_json::Value,
    status: RiskStatus,
    created_at: DateTime<Utc>,
}

impl From<risk_event::Model> for RiskEvent {
    fn from(e: risk_event::Model) -> Self {
        RiskEvent {
            id: ID(e.id.to_string()),
            member_id: e.member_id.map(|m| ID(m.to_string())),
            device_id: e.device_id,
            rule: e.rule,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
            status: e.status.into(),
            created_at: e.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct RiskEventConnection {
    nodes: Vec<RiskEvent>,
    page_info: PageInfo,
}

#[derive(Default)]
pub struct AnticheatAdminQuery;

#[Object]
impl AnticheatAdminQuery {
    #[graphql(
        guard = "RoleGuard(READERS)",
        complexity = "crate::pagination::page_cost(first, 20, child_complexity)"
    )]
    async fn risk_events(
        &self,
        ctx: &Context<'_>,
        status: Option<RiskStatus>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<RiskEventConnection> {
        let page = page_request(first, after.as_deref())?;
        let rows = risk::list(&ctx.app()?.db, status.map(Into::into), page).await?;
        let (rows, page_info) = finish_page(rows, page, |r| r.id);
        Ok(RiskEventConnection {
            nodes: rows.into_iter().map(Into::into).collect(),
            page_info,
        })
    }
}

#[derive(Default)]
pub struct AnticheatAdminMutation;

#[Object]
impl AnticheatAdminMutation {
    /// Revokes all the member's points (one REVOKE entry) and refuses every points action.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn blacklist_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        reason: String,
    ) -> async_graphql::Result<MemberAdminView> {
        let (app, admin) = (ctx.app()?, ctx.admin()?);
        let member_id = id_number(&member_id, "memberId")?;
        let member =
            blacklist::blacklist_member(app, member_id, &reason, &admin.username, ctx.now()?)
                .await?;
        Ok(MemberAdminView(member))
    }

    /// Lifts the blacklist; revoked points are not restored.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn unblacklist_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        reason: String,
    ) -> async_graphql::Result<MemberAdminView> {
        if reason.trim().is_empty() {
            return Err(AppError::validation("reason", "a reason is required").into());
        }
        let member_id = id_number(&member_id, "memberId")?;
        let member = blacklist::unblacklist_member(ctx.app()?, member_id, ctx.now()?).await?;
        Ok(MemberAdminView(member))
    }

    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn resolve_risk_event(
        &self,
        ctx: &Context<'_>,
        id: ID,
        action: RiskAction,
        note: Option<String>,
    ) -> async_graphql::Result<RiskEvent> {
        let (app, admin, now) = (ctx.app()?, ctx.admin()?, ctx.now()?);
        let id = id_number(&id, "id")?;
        let status = match action {
            RiskAction::Dismiss => RiskStatus::Dismissed,
            RiskAction::Blacklist => {
                let event = risk::find_open(&app.db, id).await?;
                let member_id = event.member_id.ok_or_else(|| {
                    AppError::validation("action", "this event names no member to blacklist")
                })?;
                let reason = format!("risk event #{id}: {}", event.rule);
                blacklist::blacklist_member(app, member_id, &reason, &admin.username, now).await?;
                RiskStatus::Actioned
            }
        };
        let event = risk::close(
            &app.db,
            id,
            status.into(),
            &admin.username,
            note.as_deref(),
            now,
        )
        .await?;
        Ok(event.into())
    }
}
