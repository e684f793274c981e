//! The only code that changes a member's points. Each change is a conditional update of the
//! cached balance, one append-only ledger row, and the matching lots, all in the caller's
//! transaction. Debits take from lots earliest-expiry first; credits open lots.

use chrono::{DateTime, Duration, Utc};
use entity::{member, points_ledger, points_lot};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::rules::{self, LedgerKind, LotBalance, LotDraw};
use crate::error::{AppError, AppResult};

/// One change of points. `amount` is always positive; the kind says which way it goes.
#[derive(Debug, Clone)]
pub struct Movement {
    pub member_id: i64,
    pub amount: i64,
    pub kind: LedgerKind,
    pub source: String,
    pub source_id: Option<String>,
    pub note: Option<String>,
    /// The effect's key, if it must happen once (see `once`).
    pub idempotency_key: Option<String>,
    pub now: DateTime<Utc>,
}

impl Movement {
    pub fn new(
        member_id: i64,
        amount: i64,
        kind: LedgerKind,
        source: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Movement {
            member_id,
            amount,
            kind,
            source: source.to_string(),
            source_id: None,
            note: None,
            idempotency_key: None,
            now,
        }
    }

    pub fn source_id(mut self, id: impl ToString) -> Self {
        self.source_id = Some(id.to_string());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Makes the movement happen at most once for `key` (a check-in's day, an achievement's
    /// reward, an order's refund): a second movement under it fails as a unique violation.
    /// Requests from clients are made idempotent by `idempotency::run_once`, not here.
    pub fn once(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// Where credited points expire: one lot `ttl` from now, or lots mirroring the ones a debit drew
/// from (a transfer passes its points on with their original expiry).
#[derive(Debug, Clone)]
pub enum Expiry {
    After(Duration),
    Mirror(Vec<LotDraw>),
}

/// The ledger row of a member's earlier request with this key, if any.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_by_key(
    db: &impl ConnectionTrait,
    member_id: i64,
    key: &str,
) -> AppResult<Option<points_ledger::Model>> {
    Ok(points_ledger::Entity::find()
        .filter(points_ledger::Column::MemberId.eq(member_id))
        .filter(points_ledger::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

/// One ledger row, by id (the entry a use case wrote and remembered).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn entry(db: &impl ConnectionTrait, id: i64) -> AppResult<points_ledger::Model> {
    points_ledger::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(format!("ledger row {id} missing")))
}

async fn balance(db: &impl ConnectionTrait, member_id: i64) -> AppResult<i64> {
    let points: Option<i64> = member::Entity::find_by_id(member_id)
        .select_only()
        .column(member::Column::Points)
        .into_tuple()
        .one(db)
        .await?;
    points.ok_or(AppError::NotFound("member"))
}

/// Runs a conditional change of one member's balance; returns the new balance, or `None` when
/// the condition held no row. PostgreSQL and SQLite return it from the update itself.
async fn update_balance(
    db: &impl ConnectionTrait,
    update: sea_orm::UpdateMany<member::Entity>,
    member_id: i64,
) -> AppResult<Option<i64>> {
    if db.support_returning() {
        return Ok(update
            .exec_with_returning(db)
            .await?
            .first()
            .map(|row| row.points));
    }
    if update.exec(db).await?.rows_affected != 1 {
        return Ok(None);
    }
    Ok(Some(balance(db, member_id).await?))
}

/// Something the member did (not an expiry, an operator's change or a gift received) counts as
/// activity for the at-risk and dormant counts; it rides on the balance update, so it is free.
fn touch_activity(
    update: sea_orm::UpdateMany<member::Entity>,
    m: &Movement,
) -> sea_orm::UpdateMany<member::Entity> {
    match m.kind {
        LedgerKind::Earn | LedgerKind::Spend | LedgerKind::TransferOut => {
            update.col_expr(member::Column::LastActiveAt, Expr::value(m.now))
        }
        _ => update,
    }
}

async fn write_row(
    db: &impl ConnectionTrait,
    m: &Movement,
    delta: i64,
    balance_after: i64,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<points_ledger::Model> {
    let row = points_ledger::ActiveModel {
        member_id: Set(m.member_id),
        delta: Set(delta),
        balance_after: Set(balance_after),
        kind: Set(m.kind),
        source: Set(m.source.clone()),
        source_id: Set(m.source_id.clone()),
        note: Set(m.note.clone()),
        idempotency_key: Set(m.idempotency_key.clone()),
        request_hash: Set(None),
        expires_at: Set(expires_at),
        created_at: Set(m.now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    // Counted when the transaction commits (see `metrics::on_commit`).
    let (kind, direction) = (m.kind.as_str(), if delta > 0 { "in" } else { "out" });
    let amount = delta.unsigned_abs();
    crate::metrics::on_commit(move || {
        metrics::counter!(crate::metrics::names::POINTS, "kind" => kind, "direction" => direction)
            .increment(amount);
    });
    Ok(row)
}

/// Adds points. A blacklisted member receives nothing (BLACKLISTED).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn credit(
    db: &impl ConnectionTrait,
    m: &Movement,
    expiry: Expiry,
) -> AppResult<points_ledger::Model> {
    if m.amount <= 0 {
        return Err(AppError::internal(format!("credit of {} points", m.amount)));
    }
    let update = touch_activity(member::Entity::update_many(), m)
        .col_expr(
            member::Column::Points,
            Expr::col(member::Column::Points).add(m.amount),
        )
        .filter(member::Column::Id.eq(m.member_id))
        .filter(member::Column::BlacklistedAt.is_null());
    let Some(balance_after) = update_balance(db, update, m.member_id).await? else {
        balance(db, m.member_id).await?;
        return Err(AppError::Blacklisted);
    };
    let lots: Vec<(i64, DateTime<Utc>)> = match expiry {
        Expiry::After(ttl) => vec![(m.amount, m.now + ttl)],
        Expiry::Mirror(draws) => draws.iter().map(|d| (d.amount, d.expires_at)).collect(),
    };
    if lots.iter().map(|(n, _)| n).sum::<i64>() != m.amount {
        return Err(AppError::internal(
            "credited lots do not add up to the credit",
        ));
    }
    let single_expiry = match lots.as_slice() {
        [(_, at)] => Some(*at),
        _ => lots.iter().map(|(_, at)| *at).min(),
    };
    let row = write_row(db, m, m.amount, balance_after, single_expiry).await?;
    for (amount, expires_at) in lots {
        points_lot::ActiveModel {
            member_id: Set(m.member_id),
            ledger_id: Set(row.id),
            amount: Set(amount),
            remaining: Set(amount),
            expires_at: Set(expires_at),
            expired_at: Set(None),
            created_at: Set(m.now),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(row)
}

/// Takes points, or fails with INSUFFICIENT_POINTS and changes nothing. Returns the ledger row
/// and the lots it drew from.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn debit(
    db: &impl ConnectionTrait,
    m: &Movement,
) -> AppResult<(points_ledger::Model, Vec<LotDraw>)> {
    if m.amount <= 0 {
        return Err(AppError::internal(format!("debit of {} points", m.amount)));
    }
    let update = touch_activity(member::Entity::update_many(), m)
        .col_expr(
            member::Column::Points,
            Expr::col(member::Column::Points).sub(m.amount),
        )
        .filter(member::Column::Id.eq(m.member_id))
        .filter(member::Column::Points.gte(m.amount));
    let Some(balance_after) = update_balance(db, update, m.member_id).await? else {
        let available = balance(db, m.member_id).await?;
        return Err(AppError::InsufficientPoints {
            needed: m.amount,
            available,
        });
    };
    let lots: Vec<LotBalance> = points_lot::Entity::find()
        .filter(points_lot::Column::MemberId.eq(m.member_id))
        .filter(points_lot::Column::Remaining.gt(0i64))
        .order_by_asc(points_lot::Column::ExpiresAt)
        .order_by_asc(points_lot::Column::Id)
        // A locking read sees the latest committed lots whatever the isolation level.
        .lock_exclusive()
        .all(db)
        .await?
        .into_iter()
        .map(|l| LotBalance {
            id: l.id,
            remaining: l.remaining,
            expires_at: l.expires_at,
        })
        .collect();
    let draws = rules::plan_debit(&lots, m.amount);
    if draws.iter().map(|d| d.amount).sum::<i64>() != m.amount {
        return Err(AppError::internal(format!(
            "member {}: lots hold less than the balance",
            m.member_id
        )));
    }
    take_from_lots(db, &draws).await?;
    let row = write_row(db, m, -m.amount, balance_after, None).await?;
    Ok((row, draws))
}

/// Takes each draw's amount from its lot in one statement (a debit of check-in points may draw
/// on dozens of small lots): `remaining - CASE id WHEN .. THEN amount ..`, on the condition that
/// every lot still holds its amount. The lots were read under a lock, so a miss is a bug.
async fn take_from_lots(db: &impl ConnectionTrait, draws: &[LotDraw]) -> AppResult<()> {
    let Some((first, rest)) = draws.split_first() else {
        return Ok(());
    };
    let lot = || Expr::col(points_lot::Column::Id);
    let mut amount = Expr::case(lot().eq(first.lot_id), first.amount);
    for draw in rest {
        amount = amount.case(lot().eq(draw.lot_id), draw.amount);
    }
    let amount: Expr = amount.finally(0i64).into();
    let remaining = || Expr::col(points_lot::Column::Remaining);
    let taken = points_lot::Entity::update_many()
        .col_expr(
            points_lot::Column::Remaining,
            remaining().sub(amount.clone()),
        )
        .filter(points_lot::Column::Id.is_in(draws.iter().map(|d| d.lot_id)))
        .filter(remaining().gte(amount))
        .exec(db)
        .await?;
    if taken.rows_affected != draws.len() as u64 {
        return Err(AppError::internal(format!(
            "lots changed under a debit: {} of {} taken",
            taken.rows_affected,
            draws.len()
        )));
    }
    Ok(())
}

/// Expires what is left of one lot: one EXPIRE row, keyed by the lot, so running the job twice
/// (or on two instances) expires it once. Returns `None` when there was nothing to do.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn expire_lot(
    db: &impl ConnectionTrait,
    lot: &points_lot::Model,
    now: DateTime<Utc>,
) -> AppResult<Option<points_ledger::Model>> {
    let key = format!("expire:lot:{}", lot.id);
    if find_by_key(db, lot.member_id, &key).await?.is_some() {
        return Ok(None);
    }
    // Member first, then lot: the same lock order as a debit. The job read the lot before this
    // transaction and the member may have spent from it since (soak finding 1): expire what it
    // holds now, under the member's lock.
    crate::member::lock(db, &[crate::member::MemberId::new(lot.member_id)]).await?;
    let Some(lot) = points_lot::Entity::find_by_id(lot.id).one(db).await? else {
        return Ok(None);
    };
    if lot.remaining <= 0 || lot.expires_at > now {
        return Ok(None);
    }
    let updated = member::Entity::update_many()
        .col_expr(
            member::Column::Points,
            Expr::col(member::Column::Points).sub(lot.remaining),
        )
        .filter(member::Column::Id.eq(lot.member_id))
        .filter(member::Column::Points.gte(lot.remaining))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::internal(format!(
            "member {} holds less than lot {}",
            lot.member_id, lot.id
        )));
    }
    let emptied = points_lot::Entity::update_many()
        .col_expr(points_lot::Column::Remaining, Expr::value(0i64))
        .col_expr(points_lot::Column::ExpiredAt, Expr::value(now))
        .filter(points_lot::Column::Id.eq(lot.id))
        .filter(points_lot::Column::Remaining.eq(lot.remaining))
        .exec(db)
        .await?;
    if emptied.rows_affected != 1 {
        // Spent from meanwhile: the caller rolls back and the next run sees the new amount.
        return Err(AppError::Conflict(format!(
            "lot {} changed while expiring",
            lot.id
        )));
    }
    let balance_after = balance(db, lot.member_id).await?;
    let m = Movement::new(
        lot.member_id,
        lot.remaining,
        LedgerKind::Expire,
        "expiry",
        now,
    )
    .source_id(lot.id)
    .once(key);
    Ok(Some(
        write_row(db, &m, -lot.remaining, balance_after, Some(lot.expires_at)).await?,
    ))
}
