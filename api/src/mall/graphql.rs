//! Member-facing mall resolvers: the catalog, quotes, redemptions and orders, coupons,
//! crowdfunds and donations.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{coupon, crowdfund, donation_project, mall_item, mall_order, member};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use super::redeem::{self, RedeemRequest};
use super::rules::{self, CouponStatus};
use super::{catalog, crowdfund as pools, donation, stock_gate};
use crate::anticheat::{self, Action};
use crate::context::ContextExt;
use crate::error::{AppError, AppResult};
use crate::loaders::{ById, LoadExt, RequestLoader};
use crate::pagination::{PageInfo, finish_page, page_request};
use crate::scalars::id_number;

// An item with its points price as it is now (campaigns applied). A plain comment, not a doc
// comment: the schema gives the MallItem type no description.
#[derive(SimpleObject)]
pub struct MallItem {
    id: ID,
    name: String,
    description: String,
    category: String,
    kind: MallItemKindView,
    image_url: Option<String>,
    /// Points price per unit, after any running price campaign.
    points_price: i64,
    /// Cash price per unit in yuan for points+cash items; null for points-only items.
    cash_price: Option<Decimal>,
    stock: i64,
    per_member_limit: Option<i32>,
    min_tier_rank: i32,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
}

impl MallItem {
    pub fn new(item: mall_item::Model, multipliers: &[Decimal]) -> Self {
        MallItem {
            id: ID(item.id.to_string()),
            name: item.name,
            description: item.description,
            category: item.category,
            kind: item.kind.into(),
            image_url: item.image_url,
            points_price: rules::price_now(item.points_price, multipliers),
            cash_price: item.cash_price_fen.map(rules::fen_to_yuan),
            stock: item.stock.max(0),
            per_member_limit: item.per_member_limit,
            min_tier_rank: item.min_tier_rank,
            starts_at: item.starts_at,
            ends_at: item.ends_at,
        }
    }

    /// The item a row of a list names (an order's, a crowdfund's), batched per request.
    async fn of_row(ctx: &Context<'_>, id: i64) -> AppResult<Self> {
        let item = ctx
            .load_one::<ById<mall_item::Entity>>(id)
            .await?
            .ok_or(AppError::NotFound("mall item"))?;
        Ok(MallItem::new(
            item,
            &catalog::cached_running_multipliers(ctx.app()?, ctx.now()?).await?,
        ))
    }
}

#[derive(SimpleObject)]
pub struct MallItemConnection {
    nodes: Vec<MallItem>,
    page_info: PageInfo,
}

pub struct Coupon(coupon::Model);

#[Object]
impl Coupon {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Money off in yuan.
    async fn value(&self) -> Decimal {
        rules::fen_to_yuan(self.0.value_fen)
    }
    /// Minimum order amount in yuan for it to apply.
    async fn threshold(&self) -> Decimal {
        rules::fen_to_yuan(self.0.threshold_fen)
    }
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.valid_from
    }
    async fn valid_until(&self) -> DateTime<Utc> {
        self.0.valid_until
    }
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<CouponStatus> {
        Ok(rules::coupon_status(
            self.0.used_at,
            self.0.valid_until,
            ctx.now()?,
        ))
    }
    async fn source(&self) -> &str {
        &self.0.source
    }
}

pub struct Order(pub mall_order::Model);

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn item(&self, ctx: &Context<'_>) -> async_graphql::Result<MallItem> {
        Ok(MallItem::of_row(ctx, self.0.item_id).await?)
    }
    async fn quantity(&self) -> i64 {
        self.0.quantity
    }
    async fn points_cost(&self) -> i64 {
        self.0.points_cost
    }
    async fn cash_due(&self) -> Decimal {
        rules::fen_to_yuan(self.0.cash_due_fen)
    }
    async fn status(&self) -> OrderStatusView {
        self.0.status.into()
    }
    /// The coupon a COUPON order issued (the first, for orders of several).
    async fn coupon(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Coupon>> {
        Ok(ctx
            .load_one::<FirstCouponOfOrder>(self.0.id)
            .await?
            .map(Coupon))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject)]
pub struct OrderConnection {
    nodes: Vec<Order>,
    page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct RedeemQuote {
    points_cost: i64,
    cash_due: Decimal,
    /// Most points the deduction ladder allows on this order.
    max_points_deduction: i64,
    affordable: bool,
    reason_if_not: Option<String>,
}

#[derive(InputObject)]
pub struct RedeemInput {
    item_id: ID,
    #[graphql(default = 1)]
    quantity: i32,
    /// For points+cash items: how many points to put toward the cash price (capped by the deduction ladder).
    points_to_use: Option<i32>,
    /// Where physical goods go; kept by the merchant's own address book.
    address_id: Option<ID>,
    idempotency_key: String,
}

/// A crowdfund is open until funded, or until its deadline expires it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(
    name = "CrowdfundStatus",
    remote = "entity::crowdfund::CrowdfundStatus"
)]
pub enum CrowdfundStatusView {
    Open,
    Funded,
    Expired,
}

/// What redeeming an item gives: goods to ship, coupons, or a privilege delivered at once.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MallItemKind", remote = "entity::mall_item::MallItemKind")]
pub enum MallItemKindView {
    Physical,
    Coupon,
    Privilege,
}

/// Where an order is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "OrderStatus", remote = "entity::mall_order::OrderStatus")]
pub enum OrderStatusView {
    PendingPayment,
    Paid,
    Shipped,
    Completed,
    Cancelled,
}

#[derive(SimpleObject)]
pub struct CrowdfundContribution {
    member_no: String,
    points: i64,
    created_at: DateTime<Utc>,
}

pub struct Crowdfund(crowdfund::Model);

/// The first coupon each order issued, for a page of orders in one statement.
pub struct FirstCouponOfOrder(DatabaseConnection);

impl RequestLoader for FirstCouponOfOrder {
    fn new(db: DatabaseConnection) -> Self {
        FirstCouponOfOrder(db)
    }
}

impl Loader<i64> for FirstCouponOfOrder {
    type Value = coupon::Model;
    type Error = Arc<AppError>;

    async fn load(&self, order_ids: &[i64]) -> Result<HashMap<i64, coupon::Model>, Self::Error> {
        let coupons = redeem::coupons_of_orders(&self.0, order_ids)
            .await
            .map_err(Arc::new)?;
        let mut first = HashMap::new();
        for c in coupons {
            if let Some(order) = c.order_id {
                first.entry(order).or_insert(c);
            }
        }
        Ok(first)
    }
}

#[Object]
impl Crowdfund {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn item(&self, ctx: &Context<'_>) -> async_graphql::Result<MallItem> {
        Ok(MallItem::of_row(ctx, self.0.item_id).await?)
    }
    async fn initiator_member_no(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(ctx
            .load_one::<ById<member::Entity>>(self.0.initiator_id)
            .await?
            .map(|m| m.member_no)
            .unwrap_or_default())
    }
    async fn target_points(&self) -> i64 {
        self.0.target_points
    }
    async fn raised_points(&self) -> i64 {
        self.0.raised_points
    }
    async fn status(&self) -> CrowdfundStatusView {
        self.0.status.into()
    }
    async fn deadline(&self) -> DateTime<Utc> {
        self.0.deadline
    }
    async fn contributions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<CrowdfundContribution>> {
        let rows = pools::contributions_with_member_numbers(&ctx.app()?.db, self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(|(member_no, c)| CrowdfundContribution {
                member_no,
                points: c.points,
                created_at: c.created_at,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct DonationProject {
    id: ID,
    name: String,
    description: String,
    target_points: i64,
    raised_points: i64,
    donor_count: i64,
    /// 0..1 for the progress bar.
    progress: f64,
}

impl From<donation_project::Model> for DonationProject {
    fn from(p: donation_project::Model) -> Self {
        DonationProject {
            id: ID(p.id.to_string()),
            progress: (p.raised_points as f64 / p.target_points.max(1) as f64).clamp(0.0, 1.0),
            name: p.name,
            description: p.description,
            target_points: p.target_points,
            raised_points: p.raised_points,
            donor_count: p.donor_count,
        }
    }
}

#[derive(Default)]
pub struct MallQuery;

#[Object]
impl MallQuery {
    #[graphql(complexity = "crate::pagination::page_cost(first, 20, child_complexity)")]
    async fn mall_items(
        &self,
        ctx: &Context<'_>,
        category: Option<String>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MallItemConnection> {
        let (app, now) = (ctx.app()?, ctx.now()?);
        let page = page_request(first, after.as_deref())?;
        let rows = catalog::list(&app.db, category.as_deref(), page, now).await?;
        let multipliers = catalog::cached_running_multipliers(app, now).await?;
        let (rows, page_info) = finish_page(rows, page, |i| i.id);
        Ok(MallItemConnection {
            nodes: rows
                .into_iter()
                .map(|i| MallItem::new(i, &multipliers))
                .collect(),
            page_info,
        })
    }

    async fn mall_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<MallItem>> {
        let (app, now) = (ctx.app()?, ctx.now()?);
        let Some(item) = catalog::find(&app.db, id_number(&id, "id")?)
            .await?
            .filter(|i| i.active)
        else {
            return Ok(None);
        };
        Ok(Some(MallItem::new(
            item,
            &catalog::cached_running_multipliers(app, now).await?,
        )))
    }

    /// What a redemption would cost, without doing it.
    async fn redeem_quote(
        &self,
        ctx: &Context<'_>,
        item_id: ID,
        #[graphql(default = 1)] quantity: i32,
        points_to_use: Option<i32>,
    ) -> async_graphql::Result<RedeemQuote> {
        let app = ctx.app()?;
        let now = ctx.now()?;
        let multipliers = catalog::cached_running_multipliers(app, now).await?;
        let pricing = redeem::Pricing {
            settings: &app.settings,
            multipliers: &multipliers,
        };
        let q = redeem::quote(
            &app.db,
            pricing,
            ctx.member_id()?,
            id_number(&item_id, "itemId")?,
            i64::from(quantity),
            points_to_use.map(i64::from),
            ctx.now()?,
        )
        .await?;
        Ok(RedeemQuote {
            points_cost: q.quote.points_cost,
            cash_due: rules::fen_to_yuan(q.quote.cash_due_fen),
            max_points_deduction: q.quote.max_deduction,
            affordable: q.refusal.is_none(),
            reason_if_not: q.refusal,
        })
    }

    #[graphql(complexity = "crate::pagination::page_cost(first, 20, child_complexity)")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<OrderConnection> {
        let page = page_request(first, after.as_deref())?;
        let rows = redeem::orders_of(&ctx.app()?.db, ctx.member_id()?, page).await?;
        let (rows, page_info) = finish_page(rows, page, |o| o.id);
        Ok(OrderConnection {
            nodes: rows.into_iter().map(Order).collect(),
            page_info,
        })
    }

    async fn my_coupons(
        &self,
        ctx: &Context<'_>,
        status: Option<CouponStatus>,
    ) -> async_graphql::Result<Vec<Coupon>> {
        let now = ctx.now()?;
        let rows = redeem::coupons_of(&ctx.app()?.db, ctx.member_id()?).await?;
        Ok(rows
            .into_iter()
            .filter(|c| {
                status.is_none_or(|s| rules::coupon_status(c.used_at, c.valid_until, now) == s)
            })
            .map(Coupon)
            .collect())
    }

    async fn crowdfund(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Crowdfund>> {
        ctx.member_id()?;
        Ok(pools::find(&ctx.app()?.db, id_number(&id, "id")?)
            .await?
            .map(Crowdfund))
    }

    async fn donation_projects(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<DonationProject>> {
        Ok(donation::active_projects(&ctx.app()?.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct MallMutation;

#[Object]
impl MallMutation {
    async fn redeem(&self, ctx: &Context<'_>, input: RedeemInput) -> async_graphql::Result<Order> {
        let request = RedeemRequest {
            item_id: id_number(&input.item_id, "itemId")?,
            quantity: i64::from(input.quantity),
            points_to_use: input.points_to_use.map(i64::from),
            address_id: input.address_id.map(|a| a.0.chars().take(64).collect()),
            idempotency_key: input.idempotency_key,
        };
        // A sold-out item is refused here, before the anti-cheat gate and the database; while
        // there is stock, at most as many redemptions as units go on (see `stock_gate`).
        let app = ctx.app()?;
        let (keyed, _) = redeem::request_of(ctx.member_id()?, &request)?;
        stock_gate::look(app, &keyed, &request).await?;
        let (app, req, member_id) = anticheat::gated(ctx, Action::Spend).await?;
        // Reserved only after the anti-cheat gate, so refused callers never hold a unit.
        let admission = stock_gate::admit(app, &keyed, &request).await?;
        let outcome = async {
            let multipliers = catalog::cached_running_multipliers(app, req.now).await?;
            redeem::redeem(
                &app.db,
                redeem::Pricing {
                    settings: &app.settings,
                    multipliers: &multipliers,
                },
                member_id,
                request,
                req.now,
            )
            .await
        }
        .await;
        let sold_now = outcome.as_ref().is_ok_and(|r| r.sold_now);
        stock_gate::settle(app, admission, &outcome, sold_now).await;
        Ok(Order(outcome?.order))
    }

    /// Cancels the member's own order and gives back its points, stock and unused coupons. A
    /// retry with the same `idempotencyKey` answers what the first call did; without one, a
    /// repeat is ALREADY_DONE.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Order> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Spend).await?;
        let order = redeem::cancel(
            &app.db,
            member_id,
            id_number(&order_id, "orderId")?,
            idempotency_key.as_deref(),
            req.now,
        )
        .await?;
        // The stock came back: the gate learns it from the database.
        stock_gate::forget(app, order.item_id).await;
        Ok(Order(order))
    }

    async fn start_crowdfund(
        &self,
        ctx: &Context<'_>,
        item_id: ID,
    ) -> async_graphql::Result<Crowdfund> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Spend).await?;
        let pool = pools::start(
            &app.db,
            &app.settings,
            &catalog::cached_running_multipliers(app, req.now).await?,
            member_id,
            id_number(&item_id, "itemId")?,
            req.now,
        )
        .await?;
        Ok(Crowdfund(pool))
    }

    async fn contribute_crowdfund(
        &self,
        ctx: &Context<'_>,
        crowdfund_id: ID,
        points: i32,
        idempotency_key: String,
    ) -> async_graphql::Result<Crowdfund> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Spend).await?;
        let pool = pools::contribute(
            &app.db,
            &app.settings,
            member_id,
            id_number(&crowdfund_id, "crowdfundId")?,
            i64::from(points),
            &idempotency_key,
            req.now,
        )
        .await?;
        Ok(Crowdfund(pool))
    }

    async fn donate_points(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        points: i32,
        idempotency_key: String,
    ) -> async_graphql::Result<DonationProject> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Spend).await?;
        let project = donation::donate(
            &app.db,
            &app.settings,
            member_id,
            id_number(&project_id, "projectId")?,
            i64::from(points),
            &idempotency_key,
            req.now,
        )
        .await?;
        Ok(project.into())
    }
}
