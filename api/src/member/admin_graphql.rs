//! Operator resolvers of the member center: member search, purchases from the merchant's order
//! system, tiers, earning rules and RFM segments.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::graphql::MemberAdminView;
use super::purchase::{self, Buyer, PurchaseOutcome, PurchaseRequest};
use super::rules::earning::{Earning, Line};
use super::{rfm, service, tier};
use crate::auth::RoleGuard;
use crate::auth::rules::{INTEGRATIONS, OPERATORS, READERS};
use crate::context::ContextExt;
use crate::error::AppError;
use crate::pagination::{PageInfo, finish_page, page_request};
use crate::scalars::{Date, id_number};

#[derive(SimpleObject)]
pub struct MemberAdminConnection {
    nodes: Vec<MemberAdminView>,
    page_info: PageInfo,
}

#[derive(InputObject)]
pub struct PurchaseLineInput {
    category: String,
    amount: Decimal,
}

#[derive(InputObject)]
pub struct PurchaseInput {
    /// The merchant's order number; a second call with it changes nothing.
    order_no: String,
    /// The member, by openid or memberNo.
    openid: Option<String>,
    member_no: Option<String>,
    amount: Decimal,
    /// Per-category split, for category point multipliers; default one line of category 'default'.
    lines: Option<Vec<PurchaseLineInput>>,
    paid_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct PurchaseResult {
    order_no: String,
    /// Points credited (negative on a refund: what was taken back).
    points_awarded: i64,
    /// Growth added (negative on a refund).
    growth_awarded: i64,
    member: MemberAdminView,
    /// False when this orderNo was seen before and nothing changed.
    applied: bool,
}

impl From<PurchaseOutcome> for PurchaseResult {
    fn from(o: PurchaseOutcome) -> Self {
        PurchaseResult {
            order_no: o.order_no,
            points_awarded: o.points,
            growth_awarded: o.growth,
            member: MemberAdminView(o.member),
            applied: o.applied,
        }
    }
}

#[derive(InputObject)]
pub struct TierInput {
    code: String,
    name: String,
    rank: i32,
    growth_threshold: i64,
    discount: Decimal,
    points_multiplier: Decimal,
    benefits: Vec<String>,
}

#[derive(SimpleObject)]
pub struct TierAdmin {
    code: String,
    name: String,
    rank: i32,
    growth_threshold: i64,
}

#[derive(SimpleObject)]
pub struct CategoryMultiplier {
    category: String,
    multiplier: Decimal,
}

#[derive(InputObject)]
pub struct CategoryMultiplierInput {
    category: String,
    multiplier: Decimal,
}

#[derive(SimpleObject)]
pub struct EarningRules {
    /// Points per yuan before multipliers.
    points_per_yuan: Decimal,
    category_multipliers: Vec<CategoryMultiplier>,
    /// Days on which purchase points are doubled.
    double_points_days: Vec<Date>,
    /// Most points one order can earn, as a share of its value in points.
    max_points_ratio: Decimal,
}

impl From<Earning> for EarningRules {
    fn from(e: Earning) -> Self {
        EarningRules {
            points_per_yuan: e.points_per_yuan,
            category_multipliers: e
                .category_multipliers
                .into_iter()
                .map(|(category, multiplier)| CategoryMultiplier {
                    category,
                    multiplier,
                })
                .collect(),
            double_points_days: e.double_points_days.into_iter().map(Date).collect(),
            max_points_ratio: e.max_points_ratio,
        }
    }
}

#[derive(InputObject)]
pub struct EarningRulesInput {
    points_per_yuan: Decimal,
    category_multipliers: Vec<CategoryMultiplierInput>,
    double_points_days: Vec<Date>,
    max_points_ratio: Decimal,
}

#[derive(SimpleObject)]
pub struct RfmSegment {
    segment: String,
    members: i64,
}

#[derive(Default)]
pub struct MemberAdminQuery;

#[Object]
impl MemberAdminQuery {
    /// Members, newest first; `search` matches a memberNo or openid exactly, or part of a nickname.
    #[graphql(
        guard = "RoleGuard(READERS)",
        complexity = "crate::pagination::page_cost(first, 20, child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MemberAdminConnection> {
        let page = page_request(first, after.as_deref())?;
        let rows = service::search(&ctx.app()?.db, search.as_deref(), page).await?;
        let (rows, page_info) = finish_page(rows, page, |m| m.id);
        Ok(MemberAdminConnection {
            nodes: rows.into_iter().map(MemberAdminView).collect(),
            page_info,
        })
    }

    #[graphql(guard = "RoleGuard(READERS)")]
    async fn member(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<MemberAdminView>> {
        let id = id_number(&id, "id")?;
        let found = service::find(&ctx.app()?.db, id).await?;
        Ok(found.map(MemberAdminView))
    }

    #[graphql(guard = "RoleGuard(READERS)")]
    async fn rfm_segments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RfmSegment>> {
        let counts = rfm::counts(&ctx.app()?.db, ctx.now()?).await?;
        Ok(counts
            .into_iter()
            .map(|(segment, members)| RfmSegment { segment, members })
            .collect())
    }

    #[graphql(guard = "RoleGuard(READERS)")]
    async fn earning_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<EarningRules> {
        let app = ctx.app()?;
        Ok(purchase::earning_rules(&app.db, &app.settings)
            .await?
            .into())
    }
}

#[derive(Default)]
pub struct MemberAdminMutation;

#[Object]
impl MemberAdminMutation {
    /// A purchase paid in the merchant's shop; idempotent on orderNo. Awards points and growth.
    #[graphql(guard = "RoleGuard(INTEGRATIONS)")]
    async fn record_purchase(
        &self,
        ctx: &Context<'_>,
        input: PurchaseInput,
    ) -> async_graphql::Result<PurchaseResult> {
        let app = ctx.app()?;
        let buyer = match (input.openid, input.member_no) {
            (Some(openid), None) => Buyer::Openid(openid),
            (None, Some(member_no)) => Buyer::MemberNo(member_no),
            _ => {
                return Err(AppError::validation(
                    "openid",
                    "give exactly one of openid and memberNo",
                )
                .into());
            }
        };
        let lines = match input.lines {
            Some(lines) if !lines.is_empty() => lines
                .into_iter()
                .map(|l| Line {
                    category: l.category.trim().to_string(),
                    amount: l.amount,
                })
                .collect(),
            _ => vec![Line {
                category: "default".into(),
                amount: input.amount,
            }],
        };
        let request = PurchaseRequest {
            order_no: input.order_no,
            buyer,
            amount: input.amount,
            lines,
            paid_at: input.paid_at,
        };
        Ok(
            purchase::record(&app.db, &app.settings, request, ctx.now()?)
                .await?
                .into(),
        )
    }

    /// Reverses the points and growth of a recorded purchase.
    #[graphql(guard = "RoleGuard(INTEGRATIONS)")]
    async fn refund_purchase(
        &self,
        ctx: &Context<'_>,
        order_no: String,
    ) -> async_graphql::Result<PurchaseResult> {
        Ok(purchase::refund(&ctx.app()?.db, &order_no, ctx.now()?)
            .await?
            .into())
    }

    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_tier(
        &self,
        ctx: &Context<'_>,
        input: TierInput,
    ) -> async_graphql::Result<TierAdmin> {
        let change = tier::TierChange {
            code: input.code,
            name: input.name,
            rank: input.rank,
            growth_threshold: input.growth_threshold,
            discount: input.discount,
            points_multiplier: input.points_multiplier,
            benefits: input.benefits,
        };
        let app = ctx.app()?;
        let saved = tier::upsert(&app.db, change, ctx.now()?).await;
        // Also after a failure: the write may have committed before the error.
        crate::cache_bus::invalidate(app, crate::cache_bus::TIERS).await;
        let saved = saved?;
        Ok(TierAdmin {
            code: saved.code,
            name: saved.name,
            rank: saved.rank,
            growth_threshold: saved.growth_threshold,
        })
    }

    /// Category multipliers and double-points days for purchase points.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn update_earning_rules(
        &self,
        ctx: &Context<'_>,
        input: EarningRulesInput,
    ) -> async_graphql::Result<EarningRules> {
        let rules = Earning {
            points_per_yuan: input.points_per_yuan,
            category_multipliers: input
                .category_multipliers
                .into_iter()
                .map(|c| (c.category, c.multiplier))
                .collect(),
            double_points_days: input.double_points_days.into_iter().map(|d| d.0).collect(),
            max_points_ratio: input.max_points_ratio,
        };
        Ok(
            purchase::update_earning_rules(&ctx.app()?.db, rules, ctx.now()?)
                .await?
                .into(),
        )
    }
}
