//! Job REFRESH_RFM scores every member on recency, frequency and monetary value into the eight
//! classic segments; `rfmSegments` counts them, with the at-risk and dormant members beside.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Months, Utc};
use entity::{member, purchase};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::rules::rfm::{self as rules, Rfm};
use crate::batch::Batches;
use crate::error::AppResult;
use crate::idempotency;

/// Recency given to members who never bought.
const NO_PURCHASE_RECENCY_DAYS: i64 = 366;

/// Scores everyone; returns how many members were scored. The scores need everyone at once
/// (segments are quantiles), so they are computed from one read; the writes go in id-ordered
/// batches, each its own short transaction that locks its rows in id order first, as
/// `member::lock` does for use cases: a transfer and this job queue instead of deadlocking.
/// Running it again (after a crash or a shutdown between batches) only rewrites what changed.
#[tracing::instrument(skip_all)]
pub async fn refresh(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    batches: &Batches,
) -> AppResult<u64> {
    let members: Vec<(i64, Option<DateTime<Utc>>)> = member::Entity::find()
        .select_only()
        .columns([member::Column::Id, member::Column::LastPurchaseAt])
        .order_by_asc(member::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let since = now.checked_sub_months(Months::new(12)).unwrap_or(now);
    let purchases: Vec<(i64, i64)> = purchase::Entity::find()
        .select_only()
        .columns([purchase::Column::MemberId, purchase::Column::AmountFen])
        .filter(purchase::Column::PaidAt.gt(since))
        .filter(purchase::Column::RefundedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let mut spend: HashMap<i64, (i64, i64)> = HashMap::new();
    for (member_id, fen) in purchases {
        let entry = spend.entry(member_id).or_default();
        entry.0 += 1;
        entry.1 += fen;
    }
    let scores: Vec<Rfm> = members
        .iter()
        .map(|(id, last_purchase)| {
            let (frequency, fen) = spend.get(id).copied().unwrap_or_default();
            Rfm {
                // Never bought: worse recency than anyone who did within the year.
                recency_days: last_purchase
                    .map_or(NO_PURCHASE_RECENCY_DAYS, |t| (now - t).num_days().max(0)),
                frequency,
                monetary: Decimal::new(fen, 2),
            }
        })
        .collect();
    let segments = rules::rfm_segments(&scores);
    let assigned: Vec<(i64, &'static str)> = members
        .iter()
        .zip(segments)
        .map(|((id, _), segment)| (*id, segment))
        .collect();
    let mut scored = 0;
    for batch in assigned.chunks(batches.size()) {
        if batches.stopping() {
            break;
        }
        idempotency::retry_transient(|| write_segments(db, batch)).await?;
        scored += batch.len() as u64;
    }
    Ok(scored)
}

/// One batch (ids ascending) in one transaction: lock the rows in id order, then rewrite the
/// segments that changed, one statement per segment.
async fn write_segments(db: &DatabaseConnection, batch: &[(i64, &'static str)]) -> AppResult<()> {
    let txn = db.begin().await?;
    let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
    let current: HashMap<i64, Option<String>> = member::Entity::find()
        .select_only()
        .columns([member::Column::Id, member::Column::RfmSegment])
        .filter(member::Column::Id.is_in(ids))
        .order_by_asc(member::Column::Id)
        .lock_exclusive()
        .into_tuple::<(i64, Option<String>)>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let mut changed: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (id, segment) in batch {
        if let Some(now_in) = current.get(id)
            && now_in.as_deref() != Some(*segment)
        {
            changed.entry(segment).or_default().push(*id);
        }
    }
    for (segment, ids) in changed {
        member::Entity::update_many()
            .col_expr(member::Column::RfmSegment, Expr::value(segment))
            .filter(member::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    crate::metrics::committed();
    Ok(())
}

/// Members per RFM segment (the eight, then `unscored`), then `at_risk` and `dormant` by activity.
#[tracing::instrument(skip_all)]
pub async fn counts(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for segment in rules::RFM_SEGMENTS {
        let n = member::Entity::find()
            .filter(member::Column::RfmSegment.eq(*segment))
            .count(db)
            .await?;
        out.push((segment.to_string(), n as i64));
    }
    let unscored = member::Entity::find()
        .filter(member::Column::RfmSegment.is_null())
        .count(db)
        .await?;
    out.push(("unscored".to_string(), unscored as i64));
    let activity: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = member::Entity::find()
        .select_only()
        .columns([member::Column::CreatedAt, member::Column::LastActiveAt])
        .into_tuple()
        .all(db)
        .await?;
    let state = |s: &str| {
        activity
            .iter()
            .filter(|(created, last)| rules::activity_state(*last, *created, now) == Some(s))
            .count() as i64
    };
    out.push(("at_risk".to_string(), state("at_risk")));
    out.push(("dormant".to_string(), state("dormant")));
    Ok(out)
}
