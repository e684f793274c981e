//! The catalog: items as operators define them, price campaigns, and what members can browse.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use entity::{mall_item, price_campaign};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::rules::MallItemKind;
use crate::error::{AppError, AppResult};
use crate::input;
use crate::pagination::PageRequest;

/// The multipliers of the price campaigns running at `now`, from the process's cache of every
/// campaign (see `cache`): the listing, the quote and the charge all read it, so an instance
/// charges the price it shows.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn cached_running_multipliers(
    app: &crate::state::AppState,
    now: DateTime<Utc>,
) -> AppResult<Vec<Decimal>> {
    let campaigns = app
        .price_campaigns
        .get(|| async { Ok(price_campaign::Entity::find().all(&app.db).await?) })
        .await?;
    Ok(multipliers_at(&campaigns, now))
}

fn multipliers_at(campaigns: &[price_campaign::Model], now: DateTime<Utc>) -> Vec<Decimal> {
    campaigns
        .iter()
        .filter(|c| c.starts_at <= now && now < c.ends_at)
        .filter_map(|c| Decimal::from_str(&c.multiplier).ok())
        .collect()
}

/// Takes `quantity` units of stock if that many are left; false when they are not. Every path
/// that sells stock (redemption, a funded crowdfund) goes through here, so the statement is
/// always built with the same parameter types: PostgreSQL caches prepared statements by their
/// text, and the same text bound once as `i32` and once as `i64` fails on a shared connection.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn take_stock(
    txn: &impl ConnectionTrait,
    item_id: i64,
    quantity: i64,
) -> AppResult<bool> {
    let taken = mall_item::Entity::update_many()
        .col_expr(
            mall_item::Column::Stock,
            Expr::col(mall_item::Column::Stock).sub(quantity),
        )
        .filter(mall_item::Column::Id.eq(item_id))
        .filter(mall_item::Column::Stock.gte(quantity))
        .exec(txn)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Puts `quantity` units back (a cancelled order).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn return_stock(
    txn: &impl ConnectionTrait,
    item_id: i64,
    quantity: i64,
) -> AppResult<()> {
    mall_item::Entity::update_many()
        .col_expr(
            mall_item::Column::Stock,
            Expr::col(mall_item::Column::Stock).add(quantity),
        )
        .filter(mall_item::Column::Id.eq(item_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Whether members can redeem the item at `now` (active and inside its window).
pub fn on_sale(item: &mall_item::Model, now: DateTime<Utc>) -> bool {
    item.active && item.starts_at.is_none_or(|s| s <= now) && item.ends_at.is_none_or(|e| now < e)
}

/// Active items in their window, in catalog order (sold-out ones included, with stock 0).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    category: Option<&str>,
    page: PageRequest,
    now: DateTime<Utc>,
) -> AppResult<Vec<mall_item::Model>> {
    let mut query = mall_item::Entity::find()
        .filter(mall_item::Column::Active.eq(true))
        .filter(
            Condition::any()
                .add(mall_item::Column::StartsAt.is_null())
                .add(mall_item::Column::StartsAt.lte(now)),
        )
        .filter(
            Condition::any()
                .add(mall_item::Column::EndsAt.is_null())
                .add(mall_item::Column::EndsAt.gt(now)),
        )
        .order_by_asc(mall_item::Column::Id)
        .limit(page.limit + 1);
    if let Some(category) = category.map(str::trim).filter(|c| !c.is_empty()) {
        query = query.filter(mall_item::Column::Category.eq(category));
    }
    if let Some(after) = page.after_id {
        query = query.filter(mall_item::Column::Id.gt(after));
    }
    Ok(query.all(db).await?)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<mall_item::Model>> {
    Ok(mall_item::Entity::find_by_id(id).one(db).await?)
}

/// An operator's item definition; money in yuan.
pub struct ItemChange {
    pub id: Option<i64>,
    pub name: String,
    pub description: String,
    pub category: String,
    pub kind: String,
    pub points_price: i64,
    pub cash_price: Option<Decimal>,
    pub stock: i64,
    pub per_member_limit: Option<i32>,
    pub min_tier_rank: i32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub coupon_value: Option<Decimal>,
    pub coupon_threshold: Option<Decimal>,
    pub coupon_valid_days: Option<i32>,
    pub crowdfundable: bool,
    pub active: bool,
}

fn fen(field: &str, yuan: Option<Decimal>) -> AppResult<Option<i64>> {
    yuan.map(|y| input::yuan_to_fen(field, y)).transpose()
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn upsert(
    db: &impl ConnectionTrait,
    c: ItemChange,
    now: DateTime<Utc>,
) -> AppResult<mall_item::Model> {
    let kind = MallItemKind::parse(&c.kind)
        .ok_or_else(|| AppError::validation("kind", "kind is PHYSICAL, COUPON or PRIVILEGE"))?;
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 128 characters",
        ));
    }
    let category = c.category.trim();
    if category.is_empty() || category.len() > 64 {
        return Err(AppError::validation(
            "category",
            "category must be 1 to 64 characters",
        ));
    }
    let cash_fen = fen("cashPrice", c.cash_price)?.filter(|f| *f > 0);
    input::bounded("pointsPrice", c.points_price, input::POINTS)?;
    if c.points_price == 0 && cash_fen.is_none() {
        return Err(AppError::validation(
            "pointsPrice",
            "an item needs a points price, a cash price, or both",
        ));
    }
    input::bounded("stock", c.stock, input::STOCK)?;
    if let Some(limit) = c.per_member_limit {
        input::bounded("perMemberLimit", limit.into(), input::COUNT)?;
    }
    input::bounded("minTierRank", c.min_tier_rank.into(), 0..=1000)?;
    if let (Some(s), Some(e)) = (c.starts_at, c.ends_at)
        && s >= e
    {
        return Err(AppError::validation(
            "endsAt",
            "endsAt must be after startsAt",
        ));
    }
    let coupon_value = fen("couponValue", c.coupon_value)?;
    let coupon_threshold = fen("couponThreshold", c.coupon_threshold)?;
    if kind == MallItemKind::Coupon
        && (coupon_value.is_none_or(|v| v <= 0)
            || c.coupon_valid_days.is_none_or(|d| !(1..=3650).contains(&d)))
    {
        return Err(AppError::validation(
            "couponValue",
            "a COUPON item needs couponValue and couponValidDays (1 to 3650)",
        ));
    }
    let existing = match c.id {
        Some(id) => Some(find(db, id).await?.ok_or(AppError::NotFound("mall item"))?),
        None => None,
    };
    let is_new = existing.is_none();
    let mut item: mall_item::ActiveModel = existing.map(Into::into).unwrap_or_default();
    item.name = Set(name.to_string());
    item.description = Set(c.description.trim().to_string());
    item.category = Set(category.to_string());
    item.kind = Set(kind);
    if is_new {
        item.image_url = Set(None);
    }
    item.points_price = Set(c.points_price);
    item.cash_price_fen = Set(cash_fen);
    item.stock = Set(c.stock);
    item.per_member_limit = Set(c.per_member_limit);
    item.min_tier_rank = Set(c.min_tier_rank);
    item.starts_at = Set(c.starts_at);
    item.ends_at = Set(c.ends_at);
    item.coupon_value_fen = Set(coupon_value);
    item.coupon_threshold_fen = Set(coupon_threshold
        .or(Some(0))
        .filter(|_| kind == MallItemKind::Coupon));
    item.coupon_valid_days = Set(c.coupon_valid_days.filter(|_| kind == MallItemKind::Coupon));
    item.crowdfundable = Set(c.crowdfundable);
    item.active = Set(c.active);
    item.updated_at = Set(now);
    Ok(if is_new {
        item.insert(db).await?
    } else {
        item.update(db).await?
    })
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn upsert_campaign(
    db: &impl ConnectionTrait,
    id: Option<i64>,
    name: &str,
    multiplier: Decimal,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<price_campaign::Model> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 128 characters",
        ));
    }
    if multiplier <= Decimal::ZERO || multiplier > Decimal::from(10) {
        return Err(AppError::validation(
            "multiplier",
            "multiplier must be above 0 and at most 10",
        ));
    }
    if starts_at >= ends_at {
        return Err(AppError::validation(
            "endsAt",
            "endsAt must be after startsAt",
        ));
    }
    let existing = match id {
        Some(id) => Some(
            price_campaign::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound("price campaign"))?,
        ),
        None => None,
    };
    let is_new = existing.is_none();
    let mut campaign: price_campaign::ActiveModel = existing.map(Into::into).unwrap_or_default();
    campaign.name = Set(name.to_string());
    campaign.multiplier = Set(multiplier.normalize().to_string());
    campaign.starts_at = Set(starts_at);
    campaign.ends_at = Set(ends_at);
    campaign.updated_at = Set(now);
    Ok(if is_new {
        campaign.insert(db).await?
    } else {
        campaign.update(db).await?
    })
}
