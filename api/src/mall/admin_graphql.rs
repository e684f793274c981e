//! Operator resolvers of the mall: catalog, price campaigns, donation projects, shipping, and
//! payment confirmation from the merchant's payment system.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{mall_order, price_campaign};
use rust_decimal::Decimal;
use std::str::FromStr;

use super::catalog::{self, ItemChange};
use super::{donation, redeem};
use crate::auth::RoleGuard;
use crate::auth::rules::{INTEGRATIONS, OPERATORS};
use crate::context::ContextExt;
use crate::scalars::id_number;

#[derive(InputObject)]
pub struct MallItemInput {
    id: Option<ID>,
    name: String,
    description: String,
    category: String,
    kind: String,
    points_price: i64,
    cash_price: Option<Decimal>,
    stock: i64,
    per_member_limit: Option<i32>,
    #[graphql(default = 0)]
    min_tier_rank: i32,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// For COUPON items: the coupon each unit issues.
    coupon_value: Option<Decimal>,
    coupon_threshold: Option<Decimal>,
    coupon_valid_days: Option<i32>,
    /// Members may pool points to redeem it together.
    #[graphql(default = false)]
    crowdfundable: bool,
    #[graphql(default = true)]
    active: bool,
}

#[derive(SimpleObject)]
pub struct MallItemAdmin {
    id: ID,
    name: String,
    stock: i64,
    active: bool,
}

#[derive(InputObject)]
pub struct DonationProjectInput {
    id: Option<ID>,
    name: String,
    description: String,
    target_points: i64,
    #[graphql(default = true)]
    active: bool,
}

#[derive(SimpleObject)]
pub struct DonationProjectAdmin {
    id: ID,
    name: String,
    raised_points: i64,
}

#[derive(SimpleObject)]
pub struct OrderAdmin {
    id: ID,
    status: String,
    tracking_no: Option<String>,
}

impl From<mall_order::Model> for OrderAdmin {
    fn from(o: mall_order::Model) -> Self {
        OrderAdmin {
            id: ID(o.id.to_string()),
            status: o.status.as_str().to_string(),
            tracking_no: o.tracking_no,
        }
    }
}

#[derive(InputObject)]
pub struct PriceCampaignInput {
    id: Option<ID>,
    name: String,
    multiplier: Decimal,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct PriceCampaign {
    id: ID,
    name: String,
    multiplier: Decimal,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl From<price_campaign::Model> for PriceCampaign {
    fn from(c: price_campaign::Model) -> Self {
        PriceCampaign {
            id: ID(c.id.to_string()),
            name: c.name,
            multiplier: Decimal::from_str(&c.multiplier).unwrap_or(Decimal::ONE),
            starts_at: c.starts_at,
            ends_at: c.ends_at,
        }
    }
}

#[derive(Default)]
pub struct MallAdminMutation;

#[Object]
impl MallAdminMutation {
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_mall_item(
        &self,
        ctx: &Context<'_>,
        input: MallItemInput,
    ) -> async_graphql::Result<MallItemAdmin> {
        let change = ItemChange {
            id: input
                .id
                .as_ref()
                .map(|id| id_number(id, "id"))
                .transpose()?,
            name: input.name,
            description: input.description,
            category: input.category,
            kind: input.kind,
            points_price: input.points_price,
            cash_price: input.cash_price,
            stock: input.stock,
            per_member_limit: input.per_member_limit,
            min_tier_rank: input.min_tier_rank,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            coupon_value: input.coupon_value,
            coupon_threshold: input.coupon_threshold,
            coupon_valid_days: input.coupon_valid_days,
            crowdfundable: input.crowdfundable,
            active: input.active,
        };
        let app = ctx.app()?;
        let item = catalog::upsert(&app.db, change, ctx.now()?).await?;
        // Its stock or window may have changed: the gate reads it again.
        super::stock_gate::forget(app, item.id).await;
        Ok(MallItemAdmin {
            id: ID(item.id.to_string()),
            name: item.name,
            stock: item.stock,
            active: item.active,
        })
    }

    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_donation_project(
        &self,
        ctx: &Context<'_>,
        input: DonationProjectInput,
    ) -> async_graphql::Result<DonationProjectAdmin> {
        let id = input
            .id
            .as_ref()
            .map(|id| id_number(id, "id"))
            .transpose()?;
        let project = donation::upsert(
            &ctx.app()?.db,
            id,
            &input.name,
            &input.description,
            input.target_points,
            input.active,
            ctx.now()?,
        )
        .await?;
        Ok(DonationProjectAdmin {
            id: ID(project.id.to_string()),
            name: project.name,
            raised_points: project.raised_points,
        })
    }

    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn ship_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        tracking_no: String,
    ) -> async_graphql::Result<OrderAdmin> {
        let order = redeem::ship(
            &ctx.app()?.db,
            id_number(&order_id, "orderId")?,
            &tracking_no,
            ctx.now()?,
        )
        .await?;
        Ok(order.into())
    }

    /// The merchant's payment system confirms the cash part of a points+cash order.
    #[graphql(guard = "RoleGuard(INTEGRATIONS)")]
    async fn confirm_order_payment(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        transaction_id: String,
    ) -> async_graphql::Result<OrderAdmin> {
        let order = redeem::confirm_payment(
            &ctx.app()?.db,
            id_number(&order_id, "orderId")?,
            &transaction_id,
            ctx.now()?,
        )
        .await?;
        Ok(order.into())
    }

    /// A points price multiplier over a period, e.g. 0.7 for a consumption week.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_price_campaign(
        &self,
        ctx: &Context<'_>,
        input: PriceCampaignInput,
    ) -> async_graphql::Result<PriceCampaign> {
        let id = input
            .id
            .as_ref()
            .map(|id| id_number(id, "id"))
            .transpose()?;
        let app = ctx.app()?;
        let campaign = catalog::upsert_campaign(
            &app.db,
            id,
            &input.name,
            input.multiplier,
            input.starts_at,
            input.ends_at,
            ctx.now()?,
        )
        .await;
        // Also after a failure: the write may have committed before the error.
        crate::cache_bus::invalidate(app, crate::cache_bus::PRICE_CAMPAIGNS).await;
        Ok(campaign?.into())
    }
}
