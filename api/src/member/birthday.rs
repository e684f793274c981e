//! Job BIRTHDAY_REWARDS: once a year, in the birthday month, a gift of points by tier that grows
//! with the member's purchases in the last 12 months.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use entity::{member, purchase};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

use super::rules::birthday as rules;
use super::tier;
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::points::{self, Expiry, LedgerKind, Movement};

/// Gives this year's gift to every member whose birthday month it is and who has not had it;
/// the ledger key `birthday:<year>` makes a second run (or a second instance) give nothing.
#[tracing::instrument(skip_all)]
pub async fn give_gifts(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let today = business_date(now, settings.timezone);
    let key = format!("birthday:{}", today.year());
    let tiers = tier::all(db).await?;
    let candidates: Vec<(i64, Option<NaiveDate>)> = member::Entity::find()
        .select_only()
        .columns([member::Column::Id, member::Column::Birthday])
        .filter(member::Column::Birthday.is_not_null())
        .filter(member::Column::BlacklistedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let since = now.checked_sub_months(Months::new(12)).unwrap_or(now);
    let mut given = 0;
    for (member_id, birthday) in candidates {
        if !rules::is_birthday_month(birthday, today)
            || points::find_by_key(db, member_id, &key).await?.is_some()
        {
            continue;
        }
        let txn = db.begin().await?;
        let Some(m) = member::Entity::find_by_id(member_id).one(&txn).await? else {
            continue;
        };
        let purchases = purchase::Entity::find()
            .filter(purchase::Column::MemberId.eq(member_id))
            .filter(purchase::Column::PaidAt.gt(since))
            .filter(purchase::Column::RefundedAt.is_null())
            .count(&txn)
            .await?;
        let gift = rules::birthday_gift(tier::current(&m, &tiers)?.birthday_gift, purchases as i64);
        if gift <= 0 {
            continue;
        }
        let movement = Movement::new(member_id, gift, LedgerKind::Earn, "birthday", now)
            .note(format!("birthday gift {}", today.year()))
            .once(key.clone());
        match points::credit(&txn, &movement, Expiry::After(settings.points.ttl)).await {
            Ok(_) => {
                txn.commit().await?;
                given += 1;
            }
            // Another run gave it meanwhile, or the member was blacklisted since.
            Err(AppError::Db(e)) if AppError::is_unique_violation(&e) => txn.rollback().await?,
            Err(AppError::Blacklisted) => txn.rollback().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(given)
}
