//! Points resolvers: the member's ledger and transfers; the operator's adjustments, audit and
//! health report.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::points_ledger;
use rust_decimal::Decimal;

use super::rules::Flow;
use super::service::{self, HealthSettings, TransferReceipt};
use crate::anticheat::{self, Action};
use crate::auth::RoleGuard;
use crate::auth::rules::{OPERATORS, READERS};
use crate::context::ContextExt;
use crate::member::{MemberAdminView, MemberId, MemberView};
use crate::pagination::{PageInfo, finish_page, page_request};
use crate::scalars::{Date, id_number};

/// Which way a ledger entry moved points, and why.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "LedgerKind", remote = "entity::points_ledger::LedgerKind")]
pub enum LedgerKindView {
    Earn,
    Spend,
    Refund,
    Expire,
    TransferIn,
    TransferOut,
    Adjust,
    Revoke,
}

#[derive(SimpleObject)]
pub struct LedgerEntry {
    id: ID,
    delta: i64,
    balance_after: i64,
    kind: LedgerKindView,
    /// What caused it: checkin, task, purchase, redeem, draw, transfer, expiry, admin, ...
    source: String,
    source_id: Option<String>,
    note: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<points_ledger::Model> for LedgerEntry {
    fn from(row: points_ledger::Model) -> Self {
        LedgerEntry {
            id: ID(row.id.to_string()),
            delta: row.delta,
            balance_after: row.balance_after,
            kind: row.kind.into(),
            source: row.source,
            source_id: row.source_id,
            note: row.note,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct LedgerEntryConnection {
    nodes: Vec<LedgerEntry>,
    page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct PointsTransfer {
    id: ID,
    amount: i64,
    to_member_no: String,
    created_at: DateTime<Utc>,
    /// The sender, after the transfer.
    member: MemberView,
}

impl From<TransferReceipt> for PointsTransfer {
    fn from(r: TransferReceipt) -> Self {
        PointsTransfer {
            id: ID(r.id.to_string()),
            amount: r.amount,
            to_member_no: r.to_member_no,
            created_at: r.created_at,
            member: MemberView(r.sender),
        }
    }
}

#[derive(Default)]
pub struct PointsQuery;

#[Object]
impl PointsQuery {
    /// The member's points ledger, newest first.
    #[graphql(complexity = "crate::pagination::page_cost(first, 20, child_complexity)")]
    async fn points_ledger(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<LedgerEntryConnection> {
        let member_id = ctx.member_id()?;
        let page = page_request(first, after.as_deref())?;
        let rows = service::ledger_page(&ctx.app()?.db, member_id, page).await?;
        let (rows, page_info) = finish_page(rows, page, |r| r.id);
        Ok(LedgerEntryConnection {
            nodes: rows.into_iter().map(Into::into).collect(),
            page_info,
        })
    }
}

#[derive(Default)]
pub struct PointsMutation;

#[Object]
impl PointsMutation {
    /// Give points to a friend, by their memberNo. Retrying with the same key is safe.
    async fn transfer_points(
        &self,
        ctx: &Context<'_>,
        to_member_no: String,
        amount: i32,
        idempotency_key: String,
    ) -> async_graphql::Result<PointsTransfer> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Transfer).await?;
        let receipt = service::transfer(
            &app.db,
            member_id,
            &to_member_no,
            i64::from(amount),
            &idempotency_key,
            app.settings.points.transfer_max,
            req.now,
        )
        .await?;
        Ok(receipt.into())
    }
}

#[derive(SimpleObject)]
pub struct LedgerAudit {
    ok: bool,
    members_checked: i64,
    violations: Vec<String>,
}

#[derive(SimpleObject)]
pub struct PointsDay {
    date: Date,
    issued: i64,
    spent: i64,
    expired: i64,
}

impl PointsDay {
    fn new(date: chrono::NaiveDate, flow: Flow) -> Self {
        PointsDay {
            date: Date(date),
            issued: flow.issued,
            spent: flow.spent,
            expired: flow.expired,
        }
    }
}

#[derive(SimpleObject)]
pub struct PointsHealth {
    issued: i64,
    spent: i64,
    expired: i64,
    outstanding: i64,
    /// outstanding x point value, in yuan.
    liability: Decimal,
    /// issued / spent over the range.
    earn_spend_ratio: Option<f64>,
    /// Members holding more than the hoarding threshold.
    hoarders: i64,
    /// Outstanding points above the configured budget by the alert margin (20%).
    budget_exceeded: bool,
    daily: Vec<PointsDay>,
}

#[derive(Default)]
pub struct PointsAdminQuery;

#[Object]
impl PointsAdminQuery {
    /// Checks every ledger invariant; ok=false lists the members that break one.
    #[graphql(guard = "RoleGuard(READERS)")]
    async fn ledger_audit(&self, ctx: &Context<'_>) -> async_graphql::Result<LedgerAudit> {
        let report = service::audit(&ctx.app()?.db).await?;
        Ok(LedgerAudit {
            ok: report.violations.is_empty(),
            members_checked: report.members_checked as i64,
            violations: report.violations,
        })
    }

    /// Points issued, spent, expired and outstanding, and the liability in yuan.
    #[graphql(guard = "RoleGuard(READERS)")]
    async fn points_health(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> async_graphql::Result<PointsHealth> {
        let app = ctx.app()?;
        let points = &app.settings.points;
        let settings = HealthSettings {
            point_value_yuan: points.point_value_yuan,
            hoarding_threshold: points.hoarding_threshold,
            budget: points.budget,
            timezone: app.settings.timezone,
        };
        let report = service::health(
            &app.db,
            from.map(|d| d.0),
            to.map(|d| d.0),
            ctx.now()?,
            &settings,
        )
        .await?;
        let flow = report.flow;
        Ok(PointsHealth {
            issued: flow.issued,
            spent: flow.spent,
            expired: flow.expired,
            outstanding: report.outstanding,
            liability: report.liability,
            earn_spend_ratio: (flow.spent > 0).then(|| flow.issued as f64 / flow.spent as f64),
            hoarders: report.hoarders as i64,
            budget_exceeded: report.budget_exceeded,
            daily: report
                .daily
                .into_iter()
                .map(|(d, f)| PointsDay::new(d, f))
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct PointsAdminMutation;

#[Object]
impl PointsAdminMutation {
    /// Add (positive delta) or remove points, with a reason; retrying with the same key is safe.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn adjust_points(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        delta: i32,
        reason: String,
        idempotency_key: String,
    ) -> async_graphql::Result<MemberAdminView> {
        let (app, admin) = (ctx.app()?, ctx.admin()?);
        let member = service::adjust(
            &app.db,
            MemberId::new(id_number(&member_id, "memberId")?),
            i64::from(delta),
            &reason,
            &idempotency_key,
            &admin.username,
            app.settings.points.ttl,
            ctx.now()?,
        )
        .await?;
        Ok(MemberAdminView(member))
    }
}
