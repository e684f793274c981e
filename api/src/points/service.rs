//! Points use cases: the member's ledger and transfers, operator adjustments, the audit, the
//! health report and the expiry job. Each public function is one transaction (the expiry job is
//! one per lot, so a long run never holds locks for long).

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};
use entity::{member, points_ledger, points_lot};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use serde::{Deserialize, Serialize};

use super::ledger::{self, Expiry, Movement};
use super::rules::{self, HealthRow, LedgerKind, MemberLedgerFacts};
use crate::batch::Batches;
use crate::clock::business_date;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::pagination::PageRequest;

/// How far ahead `pointsExpiringSoon` looks.
pub const EXPIRING_SOON_DAYS: i64 = 30;
const SCAN_CHUNK: u64 = 5_000;

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn ledger_page(
    db: &DatabaseConnection,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Vec<points_ledger::Model>> {
    let member_id = member.get();
    let mut query = points_ledger::Entity::find()
        .filter(points_ledger::Column::MemberId.eq(member_id))
        .order_by_desc(points_ledger::Column::Id)
        .limit(page.limit + 1);
    if let Some(after) = page.after_id {
        query = query.filter(points_ledger::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn expiring_soon(
    db: &impl ConnectionTrait,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<i64> {
    let member_id = member.get();
    let remaining: Vec<i64> = points_lot::Entity::find()
        .select_only()
        .column(points_lot::Column::Remaining)
        .filter(points_lot::Column::MemberId.eq(member_id))
        .filter(points_lot::Column::Remaining.gt(0i64))
        .filter(points_lot::Column::ExpiresAt.gt(now))
        .filter(points_lot::Column::ExpiresAt.lte(now + Duration::days(EXPIRING_SOON_DAYS)))
        .into_tuple()
        .all(db)
        .await?;
    Ok(remaining.into_iter().sum())
}

/// A transfer as the sender sees it.
pub struct TransferReceipt {
    pub id: i64,
    pub amount: i64,
    pub to_member_no: String,
    pub created_at: DateTime<Utc>,
    pub sender: member::Model,
}

async fn receipt(
    db: &impl ConnectionTrait,
    out: points_ledger::Model,
) -> AppResult<TransferReceipt> {
    let sender = crate::member::require(db, crate::member::MemberId::new(out.member_id)).await?;
    Ok(TransferReceipt {
        id: out.id,
        amount: -out.delta,
        to_member_no: out.source_id.unwrap_or_default(),
        created_at: out.created_at,
        sender,
    })
}

/// What a points request stored to answer its retries: the ledger row it wrote.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRow {
    pub ledger_id: i64,
}

/// Moves points to another member: both sides in one transaction, the recipient's lots keeping
/// the expiry of the points they came from. Idempotent on the sender's key.
#[tracing::instrument(skip_all)]
pub async fn transfer(
    db: &DatabaseConnection,
    from: MemberId,
    to_member_no: &str,
    amount: i64,
    idempotency_key: &str,
    max_amount: i64,
    now: DateTime<Utc>,
) -> AppResult<TransferReceipt> {
    let to_member_no = to_member_no.trim().to_ascii_uppercase();
    if amount <= 0 || amount > max_amount {
        return Err(AppError::validation(
            "amount",
            format!("amount must be between 1 and {max_amount}"),
        ));
    }
    let request = Request::new(
        from,
        "transfer",
        Some(idempotency_key),
        &[&to_member_no, &amount.to_string()],
    )?;
    let replay = |stored: LedgerRow| async move {
        receipt(db, ledger::entry(db, stored.ledger_id).await?).await
    };
    // A retry is answered before the recipient is looked at again.
    if let Some(stored) = idempotency::recorded(db, &request).await? {
        return replay(stored).await;
    }
    let recipient = member::Entity::find()
        .filter(member::Column::MemberNo.eq(&to_member_no))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("member"))?;
    if recipient.id == from.get() {
        return Err(AppError::validation(
            "toMemberNo",
            "you cannot transfer points to yourself",
        ));
    }
    let to = MemberId::new(recipient.id);
    let request = request.locking(to);
    let work = |txn: DatabaseTransaction| async move {
        // Read again under the lock: blacklisting takes the same lock.
        let recipient = crate::member::require(&txn, to).await?;
        if recipient.blacklisted_at.is_some() {
            return Err(AppError::NotAvailable(
                "that member cannot receive points".into(),
            ));
        }
        let out = Movement::new(from.get(), amount, LedgerKind::TransferOut, "transfer", now)
            .source_id(&recipient.member_no);
        let (out_row, draws) = ledger::debit(&txn, &out).await?;
        let sender_no = crate::member::require(&txn, from).await?.member_no;
        let incoming = Movement::new(
            recipient.id,
            amount,
            LedgerKind::TransferIn,
            "transfer",
            now,
        )
        .source_id(sender_no)
        .note(format!("transfer #{}", out_row.id));
        ledger::credit(&txn, &incoming, Expiry::Mirror(draws)).await?;
        let stored = LedgerRow {
            ledger_id: out_row.id,
        };
        let answer = receipt(&txn, out_row).await?;
        Ok((txn, answer, stored))
    };
    idempotency::run_once(db, &request, now, work, replay).await
}

/// An operator's correction: ADJUST in either direction, with a reason. Idempotent on the key.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all)]
pub async fn adjust(
    db: &DatabaseConnection,
    member_id: MemberId,
    delta: i64,
    reason: &str,
    idempotency_key: &str,
    admin_username: &str,
    points_ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<member::Model> {
    if delta == 0 || delta.abs() > 10_000_000 {
        return Err(AppError::validation(
            "delta",
            "delta must be non-zero and at most 10,000,000 either way",
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 255 {
        return Err(AppError::validation(
            "reason",
            "a reason of 1 to 255 characters is required",
        ));
    }
    let request = Request::new(
        member_id,
        "adjust",
        Some(idempotency_key),
        &[&delta.to_string(), reason],
    )?;
    crate::member::require(db, member_id).await?;
    let work = |txn: DatabaseTransaction| async move {
        let movement = Movement::new(
            member_id.get(),
            delta.abs(),
            LedgerKind::Adjust,
            "admin",
            now,
        )
        .source_id(admin_username)
        .note(reason);
        let row = if delta > 0 {
            ledger::credit(&txn, &movement, Expiry::After(points_ttl)).await?
        } else {
            ledger::debit(&txn, &movement).await?.0
        };
        Ok((txn, (), LedgerRow { ledger_id: row.id }))
    };
    idempotency::run_once(db, &request, now, work, |_: LedgerRow| async { Ok(()) }).await?;
    crate::member::require(db, member_id).await
}

pub struct AuditReport {
    pub members_checked: u64,
    pub violations: Vec<String>,
}

/// Reads a table in id order, `SCAN_CHUNK` rows at a time: `fetch(after)` returns the rows with
/// ids above `after`, `each` takes every chunk. Bounded memory per query, whatever the table size.
async fn scan_by_id<T, F, Fut>(
    mut fetch: F,
    id_of: impl Fn(&T) -> i64,
    mut each: impl FnMut(Vec<T>),
) -> AppResult<()>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, sea_orm::DbErr>>,
{
    let mut after = 0;
    loop {
        let chunk = fetch(after).await?;
        let Some(last) = chunk.last() else {
            return Ok(());
        };
        after = id_of(last);
        each(chunk);
    }
}

/// Reads every member, ledger row and lot in chunks and checks the invariants of `rules`.
#[tracing::instrument(skip_all)]
pub async fn audit(db: &DatabaseConnection) -> AppResult<AuditReport> {
    let mut facts: HashMap<i64, MemberLedgerFacts> = HashMap::new();
    scan_by_id(
        |after| {
            member::Entity::find()
                .select_only()
                .columns([
                    member::Column::Id,
                    member::Column::MemberNo,
                    member::Column::Points,
                ])
                .filter(member::Column::Id.gt(after))
                .order_by_asc(member::Column::Id)
                .limit(SCAN_CHUNK)
                .into_tuple::<(i64, String, i64)>()
                .all(db)
        },
        |row| row.0,
        |chunk| {
            for (id, member_no, points) in chunk {
                let f = facts.entry(id).or_default();
                f.member_no = member_no;
                f.cached_balance = points;
            }
        },
    )
    .await?;
    scan_by_id(
        |after| {
            points_ledger::Entity::find()
                .select_only()
                .columns([
                    points_ledger::Column::Id,
                    points_ledger::Column::MemberId,
                    points_ledger::Column::Delta,
                    points_ledger::Column::BalanceAfter,
                ])
                .filter(points_ledger::Column::Id.gt(after))
                .order_by_asc(points_ledger::Column::Id)
                .limit(SCAN_CHUNK)
                .into_tuple::<(i64, i64, i64, i64)>()
                .all(db)
        },
        |row| row.0,
        |chunk| {
            for (_, member_id, delta, balance_after) in chunk {
                let f = facts.entry(member_id).or_default();
                f.ledger_sum += delta;
                // Rows come in id order, so the last one seen is the newest.
                f.last_balance_after = Some(balance_after);
            }
        },
    )
    .await?;
    scan_by_id(
        |after| {
            points_lot::Entity::find()
                .select_only()
                .columns([
                    points_lot::Column::Id,
                    points_lot::Column::MemberId,
                    points_lot::Column::Remaining,
                ])
                .filter(points_lot::Column::Id.gt(after))
                .order_by_asc(points_lot::Column::Id)
                .limit(SCAN_CHUNK)
                .into_tuple::<(i64, i64, i64)>()
                .all(db)
        },
        |row| row.0,
        |chunk| {
            for (_, member_id, remaining) in chunk {
                let f = facts.entry(member_id).or_default();
                f.lots_remaining += remaining;
                f.lowest_lot_remaining = Some(
                    f.lowest_lot_remaining
                        .map_or(remaining, |low| low.min(remaining)),
                );
            }
        },
    )
    .await?;

    let mut ids: Vec<_> = facts.keys().copied().collect();
    ids.sort_unstable();
    let violations = ids
        .iter()
        .flat_map(|id| rules::audit_member(&facts[id]))
        .take(1_000)
        .collect();
    Ok(AuditReport {
        members_checked: facts.len() as u64,
        violations,
    })
}

pub struct HealthReport {
    pub flow: rules::Flow,
    pub daily: Vec<(NaiveDate, rules::Flow)>,
    pub outstanding: i64,
    pub liability: Decimal,
    pub hoarders: u64,
    pub budget_exceeded: bool,
}

pub struct HealthSettings {
    pub point_value_yuan: Decimal,
    pub hoarding_threshold: i64,
    pub budget: Option<i64>,
    pub timezone: FixedOffset,
}

fn day_start(day: NaiveDate, tz: FixedOffset) -> AppResult<DateTime<Utc>> {
    day.and_time(NaiveTime::MIN)
        .and_local_timezone(tz)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| AppError::internal("day start out of range"))
}

/// Points issued, spent and expired over business days `from..=to` (default: the last 30),
/// with what is outstanding now and what it is worth.
#[tracing::instrument(skip_all)]
pub async fn health(
    db: &DatabaseConnection,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
    settings: &HealthSettings,
) -> AppResult<HealthReport> {
    let tz = settings.timezone;
    let to = to.unwrap_or_else(|| business_date(now, tz));
    let from = from.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(AppError::validation("from", "from must not be after to"));
    }
    if (to - from).num_days() > 366 {
        return Err(AppError::validation(
            "from",
            "ask for at most 366 days at a time",
        ));
    }
    let (start, end) = (day_start(from, tz)?, day_start(to + Duration::days(1), tz)?);

    let mut rows = Vec::new();
    scan_by_id(
        |after| {
            points_ledger::Entity::find()
                .select_only()
                .columns([
                    points_ledger::Column::Id,
                    points_ledger::Column::Kind,
                    points_ledger::Column::Delta,
                    points_ledger::Column::CreatedAt,
                ])
                .filter(points_ledger::Column::CreatedAt.gte(start))
                .filter(points_ledger::Column::CreatedAt.lt(end))
                .filter(points_ledger::Column::Id.gt(after))
                .order_by_asc(points_ledger::Column::Id)
                .limit(SCAN_CHUNK)
                .into_tuple::<(i64, LedgerKind, i64, DateTime<Utc>)>()
                .all(db)
        },
        |row| row.0,
        |chunk| {
            rows.extend(chunk.into_iter().map(|(_, kind, delta, at)| HealthRow {
                kind,
                delta,
                day: business_date(at, tz),
            }))
        },
    )
    .await?;
    let (flow, by_day) = rules::flows(&rows);
    let daily = std::iter::successors(Some(from), |d| d.succ_opt().filter(|n| *n <= to))
        .map(|day| (day, by_day.get(&day).copied().unwrap_or_default()))
        .collect();

    let mut outstanding = 0i64;
    scan_by_id(
        |after| {
            member::Entity::find()
                .select_only()
                .columns([member::Column::Id, member::Column::Points])
                .filter(member::Column::Id.gt(after))
                .order_by_asc(member::Column::Id)
                .limit(SCAN_CHUNK)
                .into_tuple::<(i64, i64)>()
                .all(db)
        },
        |row| row.0,
        |chunk| outstanding += chunk.iter().map(|(_, points)| points).sum::<i64>(),
    )
    .await?;
    let hoarders = member::Entity::find()
        .filter(member::Column::Points.gt(settings.hoarding_threshold))
        .count(db)
        .await?;
    Ok(HealthReport {
        flow,
        daily,
        outstanding,
        liability: rules::liability(outstanding, settings.point_value_yuan),
        hoarders,
        budget_exceeded: rules::budget_exceeded(outstanding, settings.budget),
    })
}

/// Expires every lot whose time has come, one transaction per lot, in id-ordered pages. Safe to
/// run twice, or on two instances at once: a lot is expired by exactly one EXPIRE row. A run
/// stopped between pages is carried on by the next.
#[tracing::instrument(skip_all)]
pub async fn expire_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    batches: &Batches,
) -> AppResult<u64> {
    let mut expired = 0;
    let mut after = 0i64;
    loop {
        if batches.stopping() {
            break;
        }
        let due = points_lot::Entity::find()
            .filter(points_lot::Column::Remaining.gt(0i64))
            .filter(points_lot::Column::ExpiresAt.lte(now))
            .filter(points_lot::Column::Id.gt(after))
            .order_by_asc(points_lot::Column::Id)
            .limit(batches.size() as u64)
            .all(db)
            .await?;
        let Some(last) = due.last() else { break };
        after = last.id;
        for lot in due {
            let done = idempotency::retry_transient(|| expire_one(db, &lot, now)).await?;
            expired += u64::from(done);
        }
    }
    Ok(expired)
}

async fn expire_one(
    db: &DatabaseConnection,
    lot: &points_lot::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let txn = db.begin().await?;
    match ledger::expire_lot(&txn, lot, now).await {
        Ok(Some(_)) => {
            txn.commit().await?;
            crate::metrics::committed();
            Ok(true)
        }
        Ok(None) | Err(AppError::Conflict(_)) => {
            txn.rollback().await?;
            crate::metrics::rolled_back();
            Ok(false)
        }
        Err(AppError::Db(e)) if AppError::is_unique_violation(&e) => {
            txn.rollback().await?;
            crate::metrics::rolled_back();
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
