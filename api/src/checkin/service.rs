//! Check-in use cases: today's check-in, make-ups, the calendar, and the rules.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{checkin, member};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use super::rules::{self, CheckInRules};
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event, Unlocked};
use crate::shop_settings;

const RULES_KEY: &str = "checkin_rules";
/// How far back streaks are read: a streak longer than a year is counted as a year.
const STREAK_LOOKBACK_DAYS: i64 = 400;

#[tracing::instrument(skip_all)]
pub async fn rules(db: &impl ConnectionTrait) -> AppResult<CheckInRules> {
    Ok(shop_settings::get(db, RULES_KEY).await?.unwrap_or_default())
}

#[tracing::instrument(skip_all)]
pub async fn update_rules(
    db: &impl ConnectionTrait,
    rules: CheckInRules,
    now: DateTime<Utc>,
) -> AppResult<CheckInRules> {
    rules
        .validate()
        .map_err(|(field, message)| AppError::validation(field, message))?;
    shop_settings::put(db, RULES_KEY, &rules, now).await?;
    Ok(rules)
}

pub struct CheckInOutcome {
    pub day: NaiveDate,
    pub points: i64,
    pub streak: i64,
    pub bonus: i64,
    pub member: member::Model,
    /// What this check-in unlocked (achievements).
    pub unlocked: Vec<Unlocked>,
}

async fn checked_days(
    db: &impl ConnectionTrait,
    member_id: i64,
    through: NaiveDate,
) -> AppResult<Vec<NaiveDate>> {
    Ok(checkin::Entity::find()
        .select_only()
        .column(checkin::Column::Day)
        .filter(checkin::Column::MemberId.eq(member_id))
        .filter(checkin::Column::Day.gt(through - Duration::days(STREAK_LOOKBACK_DAYS)))
        .filter(checkin::Column::Day.lte(through))
        .order_by_desc(checkin::Column::Day)
        .into_tuple()
        .all(db)
        .await?)
}

/// `me.checkInStreak`: the streak through today (or yesterday while today is open).
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn current_streak(
    db: &impl ConnectionTrait,
    member: MemberId,
    today: NaiveDate,
) -> AppResult<i64> {
    let member_id = member.get();
    Ok(rules::current_streak(
        &checked_days(db, member_id, today).await?,
        today,
    ))
}

/// What a check-in stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckinRow {
    checkin_id: i64,
}

/// The answer of an earlier check-in (or make-up), rebuilt from its row.
async fn replay(db: &impl ConnectionTrait, stored: CheckinRow) -> AppResult<CheckInOutcome> {
    let row = checkin::Entity::find_by_id(stored.checkin_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(format!("check-in {} missing", stored.checkin_id)))?;
    Ok(CheckInOutcome {
        day: row.day,
        points: row.points,
        streak: i64::from(row.streak),
        bonus: row.streak_bonus,
        member: crate::member::require(db, MemberId::new(row.member_id)).await?,
        unlocked: Vec::new(),
    })
}

/// Today's check-in: base points plus the bonus of a streak reached today, flat for every tier.
/// A second check-in the same business day is ALREADY_DONE; a retry with the first one's key
/// gets the first answer.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn check_in(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CheckInOutcome> {
    let request = Request::new(member, "checkin", idempotency_key, &[])?;
    let today = business_date(now, settings.timezone);
    let rules = &rules(db).await?;
    let work = |txn: DatabaseTransaction| async move {
        let member_id = member.get();
        let mut days = checked_days(&txn, member_id, today).await?;
        days.push(today);
        let streak = rules::streak_ending(&days, today);
        let bonus = rules.bonus_for(streak);
        let awarded = rules.base_points + bonus;
        let row = checkin::ActiveModel {
            member_id: Set(member_id),
            day: Set(today),
            made_up: Set(false),
            points: Set(awarded),
            streak_bonus: Set(bonus),
            streak: Set(streak as i32),
            idempotency_key: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            AppError::on_unique_violation(
                e,
                AppError::AlreadyDone("already checked in today".into()),
            )
        })?;
        let unlocked =
            credit_and_record(&txn, settings, member_id, today, awarded, streak, now).await?;
        let outcome = CheckInOutcome {
            day: today,
            points: awarded,
            streak,
            bonus,
            member: crate::member::require(&txn, member).await?,
            unlocked,
        };
        Ok((txn, outcome, CheckinRow { checkin_id: row.id }))
    };
    idempotency::run_once(db, &request, now, work, |stored| replay(db, stored)).await
}

async fn credit_and_record(
    txn: &sea_orm::DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    day: NaiveDate,
    points: i64,
    streak: i64,
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    let kind = if day == business_date(now, settings.timezone) {
        "daily"
    } else {
        "make_up"
    };
    crate::metrics::on_commit(move || {
        metrics::counter!(crate::metrics::names::CHECKINS, "kind" => kind).increment(1);
    });
    let earn = Movement::new(member_id, points, LedgerKind::Earn, "checkin", now)
        .source_id(day)
        .once(format!("checkin:{day}"));
    points::credit(txn, &earn, Expiry::After(settings.points.ttl)).await?;
    let events = [
        Event::CheckedIn { streak },
        Event::PointsEarned {
            amount: points,
            interaction: true,
        },
    ];
    progress::record_all(txn, settings, member_id, &events, now).await
}

/// A missed day of this month, before today, for `makeUpCost` points: it earns the base points
/// and the streak is counted again across the filled gap. Limited per month.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn make_up(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    day: NaiveDate,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CheckInOutcome> {
    let request = Request::new(member, "makeup", idempotency_key, &[&day.to_string()])?;
    let today = business_date(now, settings.timezone);
    rules::check_make_up(day, today).map_err(|m| AppError::validation("date", m))?;
    let rules = &rules(db).await?;
    let work = |txn: DatabaseTransaction| async move {
        let member_id = member.get();
        // Under the member's lock: the monthly limit holds however many arrive at once.
        let taken = checkin::Entity::find()
            .filter(checkin::Column::MemberId.eq(member_id))
            .filter(checkin::Column::Day.eq(day))
            .count(&txn)
            .await?;
        if taken > 0 {
            return Err(AppError::AlreadyDone(format!(
                "{day} is already checked in"
            )));
        }
        let month_start = rules::parse_month(&day.format("%Y-%m").to_string()).unwrap_or(day);
        let used = checkin::Entity::find()
            .filter(checkin::Column::MemberId.eq(member_id))
            .filter(checkin::Column::MadeUp.eq(true))
            .filter(checkin::Column::Day.gte(month_start))
            .filter(checkin::Column::Day.lt(rules::next_month(month_start)))
            .count(&txn)
            .await? as i64;
        if used >= rules.make_ups_per_month {
            return Err(AppError::LimitReached {
                limit: rules.make_ups_per_month,
                message: format!(
                    "no make-ups left this month ({} a month)",
                    rules.make_ups_per_month
                ),
            });
        }
        let mut days = checked_days(&txn, member_id, today).await?;
        days.push(day);
        let row = checkin::ActiveModel {
            member_id: Set(member_id),
            day: Set(day),
            made_up: Set(true),
            points: Set(rules.base_points),
            streak_bonus: Set(0),
            streak: Set(rules::streak_ending(&days, day) as i32),
            idempotency_key: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            AppError::on_unique_violation(
                e,
                AppError::AlreadyDone(format!("{day} is already checked in")),
            )
        })?;
        if rules.make_up_cost > 0 {
            let cost = Movement::new(
                member_id,
                rules.make_up_cost,
                LedgerKind::Spend,
                "checkin_makeup",
                now,
            )
            .source_id(day);
            points::debit(&txn, &cost).await?;
        }
        let streak = rules::current_streak(&days, today);
        let unlocked = credit_and_record(
            &txn,
            settings,
            member_id,
            day,
            rules.base_points,
            streak,
            now,
        )
        .await?;
        let outcome = CheckInOutcome {
            day,
            points: rules.base_points,
            streak,
            bonus: 0,
            member: crate::member::require(&txn, member).await?,
            unlocked,
        };
        Ok((txn, outcome, CheckinRow { checkin_id: row.id }))
    };
    idempotency::run_once(db, &request, now, work, |stored| replay(db, stored)).await
}

pub struct Calendar {
    pub month: String,
    pub checked_days: Vec<NaiveDate>,
    pub made_up_days: Vec<NaiveDate>,
    pub streak: i64,
    pub make_ups_left: i64,
    pub make_up_cost: i64,
    pub today_checked_in: bool,
}

/// One month of check-ins (default this month).
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn calendar(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    month: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Calendar> {
    let member_id = member.get();
    let today = business_date(now, settings.timezone);
    let first = match month {
        Some(m) => rules::parse_month(m)
            .ok_or_else(|| AppError::validation("month", "month is YYYY-MM"))?,
        None => rules::parse_month(&today.format("%Y-%m").to_string()).unwrap_or(today),
    };
    let rows = checkin::Entity::find()
        .filter(checkin::Column::MemberId.eq(member_id))
        .filter(checkin::Column::Day.gte(first))
        .filter(checkin::Column::Day.lt(rules::next_month(first)))
        .order_by_asc(checkin::Column::Day)
        .all(db)
        .await?;
    let rules = rules(db).await?;
    let this_month =
        first == rules::parse_month(&today.format("%Y-%m").to_string()).unwrap_or(today);
    let used = rows.iter().filter(|r| r.made_up).count() as i64;
    Ok(Calendar {
        month: first.format("%Y-%m").to_string(),
        checked_days: rows.iter().filter(|r| !r.made_up).map(|r| r.day).collect(),
        made_up_days: rows.iter().filter(|r| r.made_up).map(|r| r.day).collect(),
        streak: current_streak(db, MemberId::new(member_id), today).await?,
        make_ups_left: if this_month {
            (rules.make_ups_per_month - used).max(0)
        } else {
            0
        },
        make_up_cost: rules.make_up_cost,
        today_checked_in: rows.iter().any(|r| r.day == today),
    })
}
