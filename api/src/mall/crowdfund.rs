//! Crowdfunds: members pool points to redeem one item for the initiator. Contributions are held
//! in escrow (debited at once); reaching the target creates the order, missing the deadline
//! refunds everyone.

use chrono::{DateTime, Utc};
use entity::{crowdfund, crowdfund_contribution, mall_order};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::catalog;
use super::redeem::{availability, draws_from_json};
use super::rules::{self, CrowdfundStatus, OrderOrigin};
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event};

#[tracing::instrument(skip_all)]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<crowdfund::Model>> {
    Ok(crowdfund::Entity::find_by_id(id).one(db).await?)
}

#[tracing::instrument(skip_all)]
pub async fn contributions(
    db: &impl ConnectionTrait,
    crowdfund_id: i64,
) -> AppResult<Vec<crowdfund_contribution::Model>> {
    Ok(crowdfund_contribution::Entity::find()
        .filter(crowdfund_contribution::Column::CrowdfundId.eq(crowdfund_id))
        .order_by_asc(crowdfund_contribution::Column::Id)
        .all(db)
        .await?)
}

/// A pool's contributions, oldest first, each with its contributor's public member number.
#[tracing::instrument(skip_all)]
pub async fn contributions_with_member_numbers(
    db: &impl ConnectionTrait,
    crowdfund_id: i64,
) -> AppResult<Vec<(String, crowdfund_contribution::Model)>> {
    let rows = contributions(db, crowdfund_id).await?;
    let ids: Vec<MemberId> = rows.iter().map(|c| MemberId::new(c.member_id)).collect();
    let numbers = crate::member::member_numbers(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|c| {
            let number = numbers
                .get(&MemberId::new(c.member_id))
                .cloned()
                .unwrap_or_default();
            (number, c)
        })
        .collect())
}

/// `startCrowdfund`: a pool for one unit of a crowdfundable item, targeting its points price now.
/// The pool is a redemption for its initiator, so the item's window, tier and per-member limit
/// apply to them (an open pool holds one of their units), now and again when it is funded.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn start(
    db: &DatabaseConnection,
    settings: &Settings,
    multipliers: &[rust_decimal::Decimal],
    member: MemberId,
    item_id: i64,
    now: DateTime<Utc>,
) -> AppResult<crowdfund::Model> {
    let member_id = member.get();
    let txn = db.begin().await?;
    // One start at a time per member keeps the per-member limit exact.
    crate::member::lock(&txn, &[member]).await?;
    let initiator = crate::member::require(&txn, crate::member::MemberId::new(member_id)).await?;
    let item = catalog::find(&txn, item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    if !item.crowdfundable {
        return Err(AppError::NotAvailable(
            "this item cannot be crowdfunded".into(),
        ));
    }
    availability(&txn, &item, &initiator, 1, now).await?;
    // The price the listing shows (the same cache), so the pool targets what the member saw.
    let target = rules::price_now(item.points_price, multipliers);
    if target <= 0 || item.cash_price_fen.is_some() {
        return Err(AppError::NotAvailable(
            "only points-priced items can be crowdfunded".into(),
        ));
    }
    let pool = crowdfund::ActiveModel {
        item_id: Set(item.id),
        initiator_id: Set(member_id),
        target_points: Set(target),
        raised_points: Set(0),
        status: Set(CrowdfundStatus::Open),
        deadline: Set(now + settings.mall.crowdfund_window),
        order_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(pool)
}

/// What a contribution stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contributed {
    crowdfund_id: i64,
}

/// `contributeCrowdfund`: escrows points toward the target (never past it), idempotent on the
/// key. The contribution that reaches the target takes the stock and creates the initiator's order.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn contribute(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    crowdfund_id: i64,
    amount: i64,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> AppResult<crowdfund::Model> {
    let member_id = member.get();
    let request = Request::new(
        member,
        "crowdfund",
        Some(idempotency_key),
        &[&crowdfund_id.to_string(), &amount.to_string()],
    )?;
    let replay = |stored: Contributed| async move {
        find(db, stored.crowdfund_id)
            .await?
            .ok_or(AppError::NotFound("crowdfund"))
    };
    if let Some(stored) = idempotency::recorded(db, &request).await? {
        return replay(stored).await;
    }
    if amount <= 0 {
        return Err(AppError::validation("points", "points must be at least 1"));
    }
    // The contribution that funds the pool creates the initiator's order: lock them too.
    let initiator = find(db, crowdfund_id)
        .await?
        .ok_or(AppError::NotFound("crowdfund"))?
        .initiator_id;
    let request = request.locking(MemberId::new(initiator));
    let work = |txn: DatabaseTransaction| async move {
        let pool = find(&txn, crowdfund_id)
            .await?
            .ok_or(AppError::NotFound("crowdfund"))?;
        if pool.status != CrowdfundStatus::Open || pool.deadline <= now {
            return Err(AppError::NotAvailable("this crowdfund is closed".into()));
        }
        // Never past the target, even when contributions race.
        let raised = crowdfund::Entity::update_many()
            .col_expr(
                crowdfund::Column::RaisedPoints,
                Expr::col(crowdfund::Column::RaisedPoints).add(amount),
            )
            .filter(crowdfund::Column::Id.eq(pool.id))
            .filter(crowdfund::Column::Status.eq(CrowdfundStatus::Open))
            .filter(
                Expr::col(crowdfund::Column::RaisedPoints)
                    .add(amount)
                    .lte(Expr::col(crowdfund::Column::TargetPoints)),
            )
            .exec(&txn)
            .await?;
        if raised.rows_affected != 1 {
            let left = pool.target_points - pool.raised_points;
            return Err(AppError::validation(
                "points",
                format!("at most {left} points are still needed"),
            ));
        }
        let escrow = Movement::new(member_id, amount, LedgerKind::Spend, "crowdfund", now)
            .source_id(pool.id);
        let (_, draws) = points::debit(&txn, &escrow).await?;
        let pairs: Vec<(i64, DateTime<Utc>)> =
            draws.iter().map(|d| (d.amount, d.expires_at)).collect();
        crowdfund_contribution::ActiveModel {
            crowdfund_id: Set(pool.id),
            member_id: Set(member_id),
            points: Set(amount),
            points_draws: Set(serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())),
            refunded_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let pool = find(&txn, pool.id)
            .await?
            .ok_or(AppError::NotFound("crowdfund"))?;
        if pool.raised_points == pool.target_points {
            fund(&txn, settings, &pool, now).await?;
        }
        let pool = find(&txn, pool.id)
            .await?
            .ok_or(AppError::NotFound("crowdfund"))?;
        let stored = Contributed {
            crowdfund_id: pool.id,
        };
        Ok((txn, pool, stored))
    };
    idempotency::run_once(db, &request, now, work, replay).await
}

/// The target is reached: one unit of stock and a paid order for the initiator.
async fn fund(
    txn: &sea_orm::DatabaseTransaction,
    settings: &Settings,
    pool: &crowdfund::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let item = catalog::find(txn, pool.item_id)
        .await?
        .ok_or(AppError::NotFound("mall item"))?;
    let initiator =
        crate::member::require(txn, crate::member::MemberId::new(pool.initiator_id)).await?;
    availability(txn, &item, &initiator, 0, now).await?;
    if !catalog::take_stock(txn, pool.item_id, 1).await? {
        return Err(AppError::OutOfStock);
    }
    let status = rules::status_when_paid(item.kind);
    let order = mall_order::ActiveModel {
        member_id: Set(pool.initiator_id),
        item_id: Set(pool.item_id),
        quantity: Set(1),
        points_cost: Set(pool.target_points),
        cash_due_fen: Set(0),
        status: Set(status),
        idempotency_key: Set(None),
        request_hash: Set(String::new()),
        points_draws: Set("[]".into()),
        tracking_no: Set(None),
        transaction_id: Set(None),
        crowdfund_id: Set(Some(pool.id)),
        origin: Set(OrderOrigin::Crowdfund),
        address_id: Set(None),
        pay_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    crowdfund::Entity::update_many()
        .col_expr(
            crowdfund::Column::Status,
            Expr::value(CrowdfundStatus::Funded),
        )
        .col_expr(crowdfund::Column::OrderId, Expr::value(order.id))
        .filter(crowdfund::Column::Id.eq(pool.id))
        .exec(txn)
        .await?;
    progress::record(txn, settings, pool.initiator_id, &Event::Redeemed, now).await?;
    Ok(())
}

/// Job EXPIRE_CROWDFUNDS: every open pool past its deadline refunds each contribution (with the
/// points' original expiry) and closes as EXPIRED. One transaction per pool.
#[tracing::instrument(skip_all)]
pub async fn expire_due(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    let due = crowdfund::Entity::find()
        .filter(crowdfund::Column::Status.eq(CrowdfundStatus::Open))
        .filter(crowdfund::Column::Deadline.lte(now))
        .all(db)
        .await?;
    let mut expired = 0;
    for pool in due {
        let txn = db.begin().await?;
        // Members before the pool row, the order a contribution takes them in.
        let members: Vec<i64> = contributions(&txn, pool.id)
            .await?
            .iter()
            .map(|c| c.member_id)
            .collect();
        let members: Vec<MemberId> = members.into_iter().map(MemberId::new).collect();
        crate::member::lock(&txn, &members).await?;
        let closed = crowdfund::Entity::update_many()
            .col_expr(
                crowdfund::Column::Status,
                Expr::value(CrowdfundStatus::Expired),
            )
            .filter(crowdfund::Column::Id.eq(pool.id))
            .filter(crowdfund::Column::Status.eq(CrowdfundStatus::Open))
            .exec(&txn)
            .await?;
        if closed.rows_affected != 1 {
            txn.rollback().await?;
            crate::metrics::rolled_back();
            continue;
        }
        for c in contributions(&txn, pool.id)
            .await?
            .into_iter()
            .filter(|c| c.refunded_at.is_none())
        {
            let refund = Movement::new(c.member_id, c.points, LedgerKind::Refund, "crowdfund", now)
                .source_id(pool.id)
                .once(format!("crowdfund-refund:{}", c.id));
            match points::credit(
                &txn,
                &refund,
                Expiry::Mirror(draws_from_json(&c.points_draws)),
            )
            .await
            {
                // A member blacklisted since keeps nothing; the escrow is simply not returned.
                Ok(_) | Err(AppError::Blacklisted) => {}
                Err(e) => return Err(e),
            }
            crowdfund_contribution::Entity::update_many()
                .col_expr(crowdfund_contribution::Column::RefundedAt, Expr::value(now))
                .filter(crowdfund_contribution::Column::Id.eq(c.id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        crate::metrics::committed();
        expired += 1;
    }
    Ok(expired)
}
