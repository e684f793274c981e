//! Job BIRTHDAY_REWARDS: once a year, in the birthday month, a gift of points by tier that grows
//! with the member's purchases in the last 12 months.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use entity::{member, purchase};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::rules::birthday as rules;
use super::tier;
use crate::batch::Batches;
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency;
use crate::points::{self, Expiry, LedgerKind, Movement};

/// Gives this year's gift to every member whose birthday month it is and who has not had it;
/// the ledger key `birthday:<year>` makes a second run (or a second instance) give nothing.
/// Members go in id-ordered pages, one short transaction each, so a run stopped between pages
/// is carried on by the next.
#[tracing::instrument(skip_all)]
pub async fn give_gifts(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
    batches: &Batches,
) -> AppResult<u64> {
    let today = business_date(now, settings.timezone);
    let key = format!("birthday:{}", today.year());
    let tiers = tier::all(db).await?;
    let mut given = 0;
    let mut after = 0i64;
    loop {
        if batches.stopping() {
            break;
        }
        let candidates: Vec<(i64, Option<NaiveDate>)> = member::Entity::find()
            .select_only()
            .columns([member::Column::Id, member::Column::Birthday])
            .filter(member::Column::Birthday.is_not_null())
            .filter(member::Column::BlacklistedAt.is_null())
            .filter(member::Column::Id.gt(after))
            .order_by_asc(member::Column::Id)
            .limit(batches.size() as u64)
            .into_tuple()
            .all(db)
            .await?;
        let Some(&(last, _)) = candidates.last() else {
            break;
        };
        after = last;
        for (member_id, birthday) in candidates {
            if !rules::is_birthday_month(birthday, today)
                || points::find_by_key(db, member_id, &key).await?.is_some()
            {
                continue;
            }
            let gave = idempotency::retry_transient(|| {
                give_one(db, settings, &tiers, member_id, &key, today, now)
            })
            .await?;
            given += u64::from(gave);
        }
    }
    Ok(given)
}

async fn give_one(
    db: &DatabaseConnection,
    settings: &Settings,
    tiers: &[tier::Tier],
    member_id: i64,
    key: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let since = now.checked_sub_months(Months::new(12)).unwrap_or(now);
    let txn = db.begin().await?;
    let Some(m) = member::Entity::find_by_id(member_id).one(&txn).await? else {
        return Ok(false);
    };
    let purchases = purchase::Entity::find()
        .filter(purchase::Column::MemberId.eq(member_id))
        .filter(purchase::Column::PaidAt.gt(since))
        .filter(purchase::Column::RefundedAt.is_null())
        .count(&txn)
        .await?;
    let gift = rules::birthday_gift(tier::current(&m, tiers)?.birthday_gift, purchases as i64);
    if gift <= 0 {
        return Ok(false);
    }
    let movement = Movement::new(member_id, gift, LedgerKind::Earn, "birthday", now)
        .note(format!("birthday gift {}", today.year()))
        .once(key.to_string());
    match points::credit(&txn, &movement, Expiry::After(settings.points.ttl)).await {
        Ok(_) => {
            txn.commit().await?;
            crate::metrics::committed();
            Ok(true)
        }
        // Another run gave it meanwhile, or the member was blacklisted since.
        Err(AppError::Db(e)) if AppError::is_unique_violation(&e) => {
            txn.rollback().await?;
            crate::metrics::rolled_back();
            Ok(false)
        }
        Err(AppError::Blacklisted) => {
            txn.rollback().await?;
            crate::metrics::rolled_back();
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
