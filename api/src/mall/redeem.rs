//! Redemption: quotes, orders (points-only, or points+cash awaiting the merchant's payment),
//! cancellation, shipping, payment confirmation and the unpaid-order job; coupons.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use entity::{coupon, crowdfund, mall_item, mall_order, member};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::catalog;
use super::rules::{self, CrowdfundStatus, OrderOrigin, OrderStatus, Quote};
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::pagination::PageRequest;
use crate::points::{self, Expiry, LedgerKind, Movement, rules::LotDraw};
use crate::progress::{self, Event};

pub struct RedeemRequest {
    pub item_id: i64,
    pub quantity: i64,
    pub points_to_use: Option<i64>,
    pub address_id: Option<String>,
    pub idempotency_key: String,
}

fn check_quantity(quantity: i64) -> AppResult<()> {
    if (1..=rules::MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(AppError::validation(
            "quantity",
            format!("quantity must be 1 to {}", rules::MAX_QUANTITY),
        ))
    }
}

fn check_points_to_use(points_to_use: Option<i64>) -> AppResult<i64> {
    match points_to_use {
        Some(p) if p < 0 => Err(AppError::validation(
            "pointsToUse",
            "pointsToUse must not be negative",
        )),
        other => Ok(other.unwrap_or(0)),
    }
}

/// Why this member cannot redeem this item now, as the error a redemption would give.
/// Whether `member` may have `quantity` more units of `item` now: the item's window, its tier,
/// the per-member limit and the stock. Crowdfunds check their initiator with it too, when a
/// pool opens (`quantity` 1) and when it is funded (`quantity` 0: the open pool already counts).
pub(super) async fn availability(
    db: &impl ConnectionTrait,
    item: &mall_item::Model,
    member: &member::Model,
    quantity: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if !catalog::on_sale(item, now) {
        return Err(AppError::NotAvailable(
            "this item is not on sale now".into(),
        ));
    }
    if crate::member::tier_rank(db, member).await? < item.min_tier_rank {
        return Err(AppError::NotAvailable(
            "this item is for a higher tier".into(),
        ));
    }
    if let Some(limit) = item.per_member_limit {
        let held = units_held(db, member.id, item.id).await?;
        if held + quantity > i64::from(limit) {
            return Err(AppError::LimitReached {
                limit: i64::from(limit),
                message: format!("at most {limit} of this item per member"),
            });
        }
    }
    if item.stock < quantity {
        return Err(AppError::OutOfStock);
    }
    Ok(())
}

/// Units of the item the member has or is getting: orders not cancelled, and one for each
/// crowdfund they started that is still open.
async fn units_held(db: &impl ConnectionTrait, member_id: i64, item_id: i64) -> AppResult<i64> {
    let ordered: Vec<i64> = mall_order::Entity::find()
        .select_only()
        .column(mall_order::Column::Quantity)
        .filter(mall_order::Column::MemberId.eq(member_id))
        .filter(mall_order::Column::ItemId.eq(item_id))
        .filter(mall_order::Column::Status.ne(OrderStatus::Cancelled))
        .into_tuple()
        .all(db)
        .await?;
    let pooling = crowdfund::Entity::find()
        .filter(crowdfund::Column::InitiatorId.eq(member_id))
        .filter(crowdfund::Column::ItemId.eq(item_id))
        .filter(crowdfund::Column::Status.eq(CrowdfundStatus::Open))
        .count(db)
        .await?;
    Ok(ordered.iter().sum::<i64>() + pooling as i64)
}

/// What prices an order: the settings (the deduction ladder, the point's value) and the running
/// campaigns' multipliers from the cache the listing reads.
#[derive(Clone, Copy)]
pub struct Pricing<'a> {
    pub settings: &'a Settings,
    pub multipliers: &'a [Decimal],
}

/// The price of `quantity` units now. `multipliers` are the running campaigns' multipliers from
/// the same cache the listing reads (`catalog::cached_running_multipliers`), so an instance
/// charges the price it shows.
fn price(
    Pricing {
        settings,
        multipliers,
    }: Pricing<'_>,
    item: &mall_item::Model,
    quantity: i64,
    points_to_use: i64,
    balance: i64,
) -> AppResult<Quote> {
    let unit_points = rules::price_now(item.points_price, multipliers);
    rules::quote(
        unit_points,
        item.cash_price_fen.unwrap_or(0),
        quantity,
        points_to_use,
        settings.parsed.get::<rules::Ladder>()?,
        settings.points.point_value_yuan,
        balance,
    )
    .ok_or_else(|| AppError::validation("quantity", "this order is too large"))
}

pub struct QuoteOutcome {
    pub quote: Quote,
    pub refusal: Option<String>,
}

/// `redeemQuote`: what a redemption would cost and whether it would go through; writes nothing.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn quote(
    db: &DatabaseConnection,
    pricing: Pricing<'_>,
    member: MemberId,
    item_id: i64,
    quantity: i64,
    points_to_use: Option<i64>,
    now: DateTime<Utc>,
) -> AppResult<QuoteOutcome> {
    let member_id = member.get();
    check_quantity(quantity)?;
    let points_to_use = check_points_to_use(points_to_use)?;
    let item = catalog::find(db, item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    let member = crate::member::require(db, crate::member::MemberId::new(member_id)).await?;
    let quote = price(pricing, &item, quantity, points_to_use, member.points)?;
    let refusal = match availability(db, &item, &member, quantity, now).await {
        Err(AppError::Db(e)) => return Err(AppError::Db(e)),
        Err(e) => Some(e.to_string()),
        Ok(()) if quote.points_cost > member.points => Some(
            AppError::InsufficientPoints {
                needed: quote.points_cost,
                available: member.points,
            }
            .to_string(),
        ),
        Ok(()) => None,
    };
    Ok(QuoteOutcome { quote, refusal })
}

fn draws_json(draws: &[LotDraw]) -> String {
    let pairs: Vec<(i64, DateTime<Utc>)> = draws.iter().map(|d| (d.amount, d.expires_at)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub fn draws_from_json(json: &str) -> Vec<LotDraw> {
    let pairs: Vec<(i64, DateTime<Utc>)> = serde_json::from_str(json).unwrap_or_default();
    pairs
        .into_iter()
        .map(|(amount, expires_at)| LotDraw {
            lot_id: 0,
            amount,
            expires_at,
        })
        .collect()
}

/// What a redemption or cancellation stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderRow {
    pub order_id: i64,
}

pub(super) async fn order_by_id(
    db: &impl ConnectionTrait,
    stored: OrderRow,
) -> AppResult<mall_order::Model> {
    mall_order::Entity::find_by_id(stored.order_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("order"))
}

/// The runner's request for a redemption, with `pointsToUse` checked.
pub(super) fn request_of(member: MemberId, r: &RedeemRequest) -> AppResult<(Request, i64)> {
    check_quantity(r.quantity)?;
    let points_to_use = check_points_to_use(r.points_to_use)?;
    let request = Request::new(
        member,
        "redeem",
        Some(&r.idempotency_key),
        &[
            &r.item_id.to_string(),
            &r.quantity.to_string(),
            &points_to_use.to_string(),
        ],
    )?;
    Ok((request, points_to_use))
}

/// `redeem`: in one transaction, the item's window, the member's tier and per-member limit,
/// a conditional stock decrement, the points debit and the order. Points-only orders are paid at
/// once; points+cash orders wait for the merchant's payment, holding points and stock.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn redeem(
    db: &DatabaseConnection,
    pricing: Pricing<'_>,
    member: MemberId,
    r: RedeemRequest,
    now: DateTime<Utc>,
) -> AppResult<Redeemed> {
    let member_id = member.get();
    let settings = pricing.settings;
    let (request, points_to_use) = request_of(member, &r)?;
    let r = &r;
    let work = |txn: DatabaseTransaction| async move {
        // Under the member's lock: the per-member limit is exact, and the order's foreign key
        // cannot deadlock with the debit (MySQL).
        let buyer = crate::member::require(&txn, member).await?;
        let item = catalog::find(&txn, r.item_id)
            .await?
            .ok_or(AppError::NotFound("mall item"))?;
        availability(&txn, &item, &buyer, r.quantity, now).await?;
        let kind = item.kind;
        let quote = price(pricing, &item, r.quantity, points_to_use, buyer.points)?;
        // From the stock decrement to the commit every other buyer of the item waits for its
        // row (in a flash sale this wait is the queue), so as little as possible comes after it.
        // On PostgreSQL and SQLite the stock is taken last: the order's foreign key to the item
        // does not conflict with the decrement there. On MySQL it would (the key check share-locks
        // the item's row, and two buyers each holding that lock deadlock on the decrement), so
        // there the stock is taken before the order is written.
        progress::record(&txn, settings, member_id, &Event::Redeemed, now).await?;
        let stock_last = txn.get_database_backend() != DbBackend::MySql;
        if !stock_last && !catalog::take_stock(&txn, item.id, r.quantity).await? {
            return Err(AppError::OutOfStock);
        }
        let status = if quote.cash_due_fen > 0 {
            OrderStatus::PendingPayment
        } else {
            rules::status_when_paid(kind)
        };
        let order = mall_order::ActiveModel {
            member_id: Set(member_id),
            item_id: Set(item.id),
            quantity: Set(r.quantity),
            points_cost: Set(quote.points_cost),
            cash_due_fen: Set(quote.cash_due_fen),
            status: Set(status),
            idempotency_key: Set(None),
            request_hash: Set(String::new()),
            points_draws: Set("[]".into()),
            tracking_no: Set(None),
            transaction_id: Set(None),
            crowdfund_id: Set(None),
            origin: Set(OrderOrigin::Redemption),
            address_id: Set(r.address_id.clone()),
            pay_by: Set(
                (status == OrderStatus::PendingPayment).then(|| now + settings.mall.payment_window)
            ),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let order = if quote.points_cost > 0 {
            let spend = Movement::new(
                member_id,
                quote.points_cost,
                LedgerKind::Spend,
                "redeem",
                now,
            )
            .source_id(order.id);
            let (_, draws) = points::debit(&txn, &spend).await?;
            let mut active: mall_order::ActiveModel = order.into();
            active.points_draws = Set(draws_json(&draws));
            active.update(&txn).await?
        } else {
            order
        };
        if status != OrderStatus::PendingPayment {
            issue_coupons(&txn, &order, &item, now).await?;
        }
        if stock_last && !catalog::take_stock(&txn, item.id, r.quantity).await? {
            return Err(AppError::OutOfStock);
        }
        let kind = kind.as_str();
        crate::metrics::on_commit(move || {
            metrics::counter!(crate::metrics::names::REDEMPTIONS, "kind" => kind).increment(1);
        });
        let stored = OrderRow { order_id: order.id };
        Ok((txn, order, stored))
    };
    let replayed = AtomicBool::new(false);
    let replay = |stored| {
        replayed.store(true, Ordering::Relaxed);
        order_by_id(db, stored)
    };
    let outcome = idempotency::run_once(db, &request, now, work, replay).await;
    count_sold_out(&outcome);
    outcome.map(|order| Redeemed {
        order,
        sold_now: !replayed.load(Ordering::Relaxed),
    })
}

/// A redemption's order, and whether this call sold it (not a retry answered from the record).
pub struct Redeemed {
    pub order: mall_order::Model,
    pub sold_now: bool,
}

/// Counts a redemption refused because the item was sold out.
fn count_sold_out<T>(outcome: &AppResult<T>) {
    if let Err(AppError::OutOfStock) = outcome {
        metrics::counter!(crate::metrics::names::SOLD_OUT).increment(1);
    }
}

/// Coupons of a paid COUPON order, one per unit.
async fn issue_coupons(
    txn: &DatabaseTransaction,
    order: &mall_order::Model,
    item: &mall_item::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let (Some(value), Some(days)) = (item.coupon_value_fen, item.coupon_valid_days) else {
        return Ok(());
    };
    for _ in 0..order.quantity {
        coupon::ActiveModel {
            member_id: Set(order.member_id),
            order_id: Set(Some(order.id)),
            name: Set(item.name.clone()),
            value_fen: Set(value),
            threshold_fen: Set(item.coupon_threshold_fen.unwrap_or(0)),
            valid_from: Set(now),
            valid_until: Set(now + Duration::days(i64::from(days))),
            used_at: Set(None),
            revoked_at: Set(None),
            source: Set("mall".into()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Moves an order from one status to another only if it is still in `from`.
async fn transition(
    txn: &DatabaseTransaction,
    order_id: i64,
    from: &[OrderStatus],
    to: OrderStatus,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let moved = mall_order::Entity::update_many()
        .col_expr(mall_order::Column::Status, Expr::value(to))
        .col_expr(mall_order::Column::UpdatedAt, Expr::value(now))
        .filter(mall_order::Column::Id.eq(order_id))
        .filter(mall_order::Column::Status.is_in(from.iter().copied()))
        .exec(txn)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Cancels an order in the caller's transaction: points back (with their old expiry), stock
/// back, unused coupons revoked. A coupon already used blocks it.
async fn cancel_in(
    txn: &DatabaseTransaction,
    order: &mall_order::Model,
    now: DateTime<Utc>,
) -> AppResult<mall_order::Model> {
    let used = coupon::Entity::find()
        .filter(coupon::Column::OrderId.eq(order.id))
        .filter(coupon::Column::UsedAt.is_not_null())
        .one(txn)
        .await?;
    if used.is_some() {
        return Err(AppError::NotAvailable(
            "a coupon of this order was already used".into(),
        ));
    }
    let item = catalog::find(txn, order.item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    let from = rules::cancellable_from(item.kind, order.origin)
        .map_err(|why| AppError::NotAvailable(why.into()))?;
    if !transition(txn, order.id, from, OrderStatus::Cancelled, now).await? {
        return Err(AppError::NotAvailable(
            "this order can no longer be cancelled".into(),
        ));
    }
    crate::member::lock(txn, &[MemberId::new(order.member_id)]).await?;
    if order.points_cost > 0 {
        let refund = Movement::new(
            order.member_id,
            order.points_cost,
            LedgerKind::Refund,
            "redeem",
            now,
        )
        .source_id(order.id)
        .once(format!("cancel:order:{}", order.id));
        points::credit(
            txn,
            &refund,
            Expiry::Mirror(draws_from_json(&order.points_draws)),
        )
        .await?;
    }
    catalog::return_stock(txn, order.item_id, order.quantity).await?;
    coupon::Entity::update_many()
        .col_expr(coupon::Column::RevokedAt, Expr::value(now))
        .filter(coupon::Column::OrderId.eq(order.id))
        .filter(coupon::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    mall_order::Entity::find_by_id(order.id)
        .one(txn)
        .await?
        .ok_or(AppError::NotFound("order"))
}

/// `cancelOrder`: the member's own order, before it ships.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn cancel(
    db: &DatabaseConnection,
    member: MemberId,
    order_id: i64,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<mall_order::Model> {
    let member_id = member.get();
    let request = Request::new(member, "cancel", idempotency_key, &[&order_id.to_string()])?;
    let work = |txn: DatabaseTransaction| async move {
        let order = mall_order::Entity::find_by_id(order_id)
            .one(&txn)
            .await?
            .filter(|o| o.member_id == member_id)
            .ok_or(AppError::NotFound("order"))?;
        if order.status == OrderStatus::Cancelled {
            return Err(AppError::AlreadyDone(
                "this order is already cancelled".into(),
            ));
        }
        let cancelled = cancel_in(&txn, &order, now).await?;
        let stored = OrderRow {
            order_id: cancelled.id,
        };
        Ok((txn, cancelled, stored))
    };
    idempotency::run_once(db, &request, now, work, |stored| order_by_id(db, stored)).await
}

/// Admin `shipOrder`: a paid physical order leaves with a tracking number.
#[tracing::instrument(skip_all)]
pub async fn ship(
    db: &DatabaseConnection,
    order_id: i64,
    tracking_no: &str,
    now: DateTime<Utc>,
) -> AppResult<mall_order::Model> {
    let tracking_no = tracking_no.trim();
    if tracking_no.is_empty() || tracking_no.len() > 64 {
        return Err(AppError::validation(
            "trackingNo",
            "trackingNo must be 1 to 64 characters",
        ));
    }
    let txn = db.begin().await?;
    let order = mall_order::Entity::find_by_id(order_id)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    if !transition(
        &txn,
        order.id,
        &[OrderStatus::Paid],
        OrderStatus::Shipped,
        now,
    )
    .await?
    {
        return Err(AppError::NotAvailable(format!(
            "an order that is {} cannot be shipped",
            order.status.as_str()
        )));
    }
    mall_order::Entity::update_many()
        .col_expr(mall_order::Column::TrackingNo, Expr::value(tracking_no))
        .filter(mall_order::Column::Id.eq(order.id))
        .exec(&txn)
        .await?;
    let shipped = mall_order::Entity::find_by_id(order.id)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(shipped)
}

/// Admin `confirmOrderPayment`: the merchant's payment system says the cash part was paid.
/// Idempotent on the same transaction id; an order cancelled for non-payment is NOT_AVAILABLE.
#[tracing::instrument(skip_all)]
pub async fn confirm_payment(
    db: &DatabaseConnection,
    order_id: i64,
    transaction_id: &str,
    now: DateTime<Utc>,
) -> AppResult<mall_order::Model> {
    let transaction_id = transaction_id.trim();
    if transaction_id.is_empty() || transaction_id.len() > 64 {
        return Err(AppError::validation(
            "transactionId",
            "transactionId must be 1 to 64 characters",
        ));
    }
    let txn = db.begin().await?;
    let order = mall_order::Entity::find_by_id(order_id)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    if order.transaction_id.as_deref() == Some(transaction_id) {
        return Ok(order);
    }
    let item = catalog::find(&txn, order.item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    let paid = rules::status_when_paid(item.kind);
    if !transition(&txn, order.id, &[OrderStatus::PendingPayment], paid, now).await? {
        return Err(AppError::NotAvailable(format!(
            "an order that is {} cannot be paid",
            order.status.as_str()
        )));
    }
    mall_order::Entity::update_many()
        .col_expr(
            mall_order::Column::TransactionId,
            Expr::value(transaction_id),
        )
        .filter(mall_order::Column::Id.eq(order.id))
        .exec(&txn)
        .await?;
    issue_coupons(&txn, &order, &item, now).await?;
    let order = mall_order::Entity::find_by_id(order.id)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(order)
}

/// Job CANCEL_UNPAID_ORDERS: points+cash orders past their payment window are cancelled and
/// give back points and stock. One transaction per order. Returns the items of the orders it
/// cancelled (one entry per order).
#[tracing::instrument(skip_all)]
pub async fn cancel_unpaid(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
    let due = mall_order::Entity::find()
        .filter(mall_order::Column::Status.eq(OrderStatus::PendingPayment))
        .filter(mall_order::Column::PayBy.lte(now))
        .all(db)
        .await?;
    let mut cancelled = Vec::new();
    for order in due {
        let txn = db.begin().await?;
        match cancel_in(&txn, &order, now).await {
            Ok(_) => {
                txn.commit().await?;
                crate::metrics::committed();
                cancelled.push(order.item_id);
            }
            // Paid or cancelled meanwhile.
            Err(AppError::NotAvailable(_)) => {
                txn.rollback().await?;
                crate::metrics::rolled_back();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cancelled)
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn orders_of(
    db: &DatabaseConnection,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Vec<mall_order::Model>> {
    let member_id = member.get();
    let mut query = mall_order::Entity::find()
        .filter(mall_order::Column::MemberId.eq(member_id))
        .order_by_desc(mall_order::Column::Id)
        .limit(page.limit + 1);
    if let Some(after) = page.after_id {
        query = query.filter(mall_order::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn coupons_of(
    db: &impl ConnectionTrait,
    member: MemberId,
) -> AppResult<Vec<coupon::Model>> {
    let member_id = member.get();
    Ok(coupon::Entity::find()
        .filter(coupon::Column::MemberId.eq(member_id))
        .filter(coupon::Column::RevokedAt.is_null())
        .order_by_desc(coupon::Column::Id)
        .all(db)
        .await?)
}

/// The coupons (not taken back) that these orders issued, in issue order.
#[tracing::instrument(skip_all)]
pub async fn coupons_of_orders(
    db: &impl ConnectionTrait,
    order_ids: &[i64],
) -> AppResult<Vec<coupon::Model>> {
    Ok(coupon::Entity::find()
        .filter(coupon::Column::OrderId.is_in(order_ids.iter().copied()))
        .filter(coupon::Column::RevokedAt.is_null())
        .order_by_asc(coupon::Column::Id)
        .all(db)
        .await?)
}

/// A coupon given as a prize (blind boxes), valid `valid_days` from now.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn grant_coupon(
    txn: &DatabaseTransaction,
    member: MemberId,
    name: &str,
    value_fen: i64,
    valid_days: i64,
    source: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.get();
    coupon::ActiveModel {
        member_id: Set(member_id),
        order_id: Set(None),
        name: Set(name.to_string()),
        value_fen: Set(value_fen),
        threshold_fen: Set(0),
        valid_from: Set(now),
        valid_until: Set(now + Duration::days(valid_days)),
        used_at: Set(None),
        revoked_at: Set(None),
        source: Set(source.to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// A mall item given as a prize: a paid order at 0 points. The prize's own stock governs how
/// many are given; the mall's stock is the operator's to align.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn grant_item(
    txn: &DatabaseTransaction,
    member: MemberId,
    item_id: i64,
    source_key: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.get();
    let item = catalog::find(txn, item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    let status = rules::status_when_paid(item.kind);
    mall_order::ActiveModel {
        member_id: Set(member_id),
        item_id: Set(item.id),
        quantity: Set(1),
        points_cost: Set(0),
        cash_due_fen: Set(0),
        status: Set(status),
        idempotency_key: Set(Some(source_key.to_string())),
        request_hash: Set(String::new()),
        points_draws: Set("[]".into()),
        tracking_no: Set(None),
        transaction_id: Set(None),
        crowdfund_id: Set(None),
        origin: Set(OrderOrigin::Prize),
        address_id: Set(None),
        pay_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}
