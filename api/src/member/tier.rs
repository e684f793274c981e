//! Tiers: the catalog, the member's standing, growth that upgrades at once, and the yearly
//! re-evaluation that drops at most one tier.

use std::str::FromStr;

use chrono::{DateTime, Months, Utc};
use entity::{growth_ledger, member, tier};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::rules::tier::{self as rules, TierRule};
use crate::batch::Batches;
use crate::error::{AppError, AppResult};
use crate::idempotency;

/// A tier with its decimals parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub code: String,
    pub name: String,
    pub rank: i32,
    pub growth_threshold: i64,
    pub discount: Decimal,
    pub points_multiplier: Decimal,
    pub benefits: Vec<String>,
    pub birthday_gift: i64,
}

impl Tier {
    fn from_row(row: tier::Model) -> AppResult<Tier> {
        let decimal = |s: &str| {
            Decimal::from_str(s)
                .map_err(|_| AppError::internal(format!("tier {}: bad decimal {s:?}", row.code)))
        };
        Ok(Tier {
            discount: decimal(&row.discount)?,
            points_multiplier: decimal(&row.points_multiplier)?,
            benefits: serde_json::from_str(&row.benefits).unwrap_or_default(),
            code: row.code,
            name: row.name,
            rank: row.rank,
            growth_threshold: row.growth_threshold,
            birthday_gift: row.birthday_gift,
        })
    }

    pub fn rule(&self) -> TierRule {
        TierRule {
            code: self.code.clone(),
            rank: self.rank,
            growth_threshold: self.growth_threshold,
            points_multiplier: self.points_multiplier,
            birthday_gift: self.birthday_gift,
        }
    }
}

/// All tiers, lowest first.
#[tracing::instrument(skip_all)]
pub async fn all(db: &impl ConnectionTrait) -> AppResult<Vec<Tier>> {
    tier::Entity::find()
        .order_by_asc(tier::Column::Rank)
        .all(db)
        .await?
        .into_iter()
        .map(Tier::from_row)
        .collect()
}

/// The member's tier: the one named on the member, or the lowest.
pub fn current<'a>(member: &member::Model, tiers: &'a [Tier]) -> AppResult<&'a Tier> {
    member
        .tier_code
        .as_deref()
        .and_then(|code| tiers.iter().find(|t| t.code == code))
        .or_else(|| tiers.first())
        .ok_or_else(|| AppError::internal("there are no tiers"))
}

fn rules_of(tiers: &[Tier]) -> Vec<TierRule> {
    tiers.iter().map(Tier::rule).collect()
}

/// Growth earned in the 12 months up to `now`.
#[tracing::instrument(skip_all)]
pub async fn growth_last_12_months(
    db: &impl ConnectionTrait,
    member_id: i64,
    now: DateTime<Utc>,
) -> AppResult<i64> {
    let since = now.checked_sub_months(Months::new(12)).unwrap_or(now);
    let deltas: Vec<i64> = growth_ledger::Entity::find()
        .select_only()
        .column(growth_ledger::Column::Delta)
        .filter(growth_ledger::Column::MemberId.eq(member_id))
        .filter(growth_ledger::Column::CreatedAt.gt(since))
        .filter(growth_ledger::Column::CreatedAt.lte(now))
        .into_tuple()
        .all(db)
        .await?;
    Ok(std::cmp::max(deltas.into_iter().sum::<i64>(), 0))
}

/// Adds (or, for refunds, takes back) growth, in the caller's transaction. Crossing a threshold
/// upgrades at once, valid 12 months from now. Lifetime growth never goes below zero.
#[tracing::instrument(skip_all)]
pub async fn add_growth(
    db: &impl ConnectionTrait,
    member_id: i64,
    delta: i64,
    source: &str,
    source_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if delta == 0 {
        return Ok(());
    }
    growth_ledger::ActiveModel {
        member_id: Set(member_id),
        delta: Set(delta),
        source: Set(source.to_string()),
        source_id: Set(source_id.map(str::to_string)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    // Lifetime growth never shows below zero, even after refunds of old purchases.
    let grown = Expr::col(member::Column::GrowthValue).add(delta);
    let clamped = Expr::case(grown.clone().lt(0i64), 0i64).finally(grown);
    let update = member::Entity::update_many()
        .col_expr(member::Column::GrowthValue, clamped.into())
        .filter(member::Column::Id.eq(member_id));
    // The upgrade check needs the member: where the database returns rows (PostgreSQL), the
    // update gives it back.
    let updated = if db.support_returning() {
        update.exec_with_returning(db).await?.into_iter().next()
    } else {
        update.exec(db).await?;
        None
    };
    if delta > 0 {
        let member = match updated {
            Some(member) => member,
            None => crate::member::require(db, crate::member::MemberId::new(member_id)).await?,
        };
        upgrade_if_earned(db, &member, now).await?;
    }
    Ok(())
}

async fn upgrade_if_earned(
    db: &impl ConnectionTrait,
    member: &member::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.id;
    let tiers = all(db).await?;
    let current_rank = current(member, &tiers)?.rank;
    let growth = growth_last_12_months(db, member_id, now).await?;
    if let Some(up) = rules::upgrade(current_rank, growth, &rules_of(&tiers)) {
        member::Entity::update_many()
            .col_expr(member::Column::TierCode, Expr::value(up.code.clone()))
            .col_expr(
                member::Column::TierValidUntil,
                Expr::value(rules::validity_end(now)),
            )
            .filter(member::Column::Id.eq(member_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// What the member would hold if re-evaluated at `now`, when that differs from today's tier.
#[tracing::instrument(skip_all)]
pub async fn downgrade_preview(
    db: &impl ConnectionTrait,
    member: &member::Model,
    tiers: &[Tier],
    now: DateTime<Utc>,
) -> AppResult<Option<Tier>> {
    let current_rank = current(member, tiers)?.rank;
    let growth = growth_last_12_months(db, member.id, now).await?;
    let rules = rules_of(tiers);
    Ok(rules::reevaluate(current_rank, growth, &rules)
        .and_then(|to| tiers.iter().find(|t| t.code == to.code))
        .cloned())
}

/// Job EVALUATE_TIERS: every tier whose validity has ended is re-evaluated on the last 12
/// months' growth: it drops at most one tier, or is renewed for 12 months. Members are taken in
/// id-ordered pages, one short transaction each (retried when the database picks it as a
/// deadlock victim); a re-evaluated member is no longer due, so a run that stops between pages
/// is carried on by the next. Returns how many were re-evaluated.
#[tracing::instrument(skip_all)]
pub async fn evaluate_expired(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    batches: &Batches,
) -> AppResult<u64> {
    let tiers = all(db).await?;
    let rules = rules_of(&tiers);
    let mut evaluated = 0;
    let mut after = 0i64;
    loop {
        if batches.stopping() {
            break;
        }
        let due: Vec<i64> = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .filter(member::Column::TierValidUntil.lte(now))
            .filter(member::Column::Id.gt(after))
            .order_by_asc(member::Column::Id)
            .limit(batches.size() as u64)
            .into_tuple()
            .all(db)
            .await?;
        let Some(&last) = due.last() else { break };
        after = last;
        for member_id in due {
            let done =
                idempotency::retry_transient(|| reevaluate_one(db, member_id, &tiers, &rules, now))
                    .await?;
            evaluated += u64::from(done);
        }
    }
    Ok(evaluated)
}

/// Re-evaluates one member if still due; false when another run did it first.
async fn reevaluate_one(
    db: &DatabaseConnection,
    member_id: i64,
    tiers: &[Tier],
    rules: &[TierRule],
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let txn = db.begin().await?;
    let Some(m) = member::Entity::find_by_id(member_id).one(&txn).await? else {
        return Ok(false);
    };
    if m.tier_valid_until.is_none_or(|end| end > now) {
        return Ok(false);
    }
    let current_rank = current(&m, tiers)?.rank;
    let growth = growth_last_12_months(&txn, member_id, now).await?;
    let (code, valid_until) = match rules::reevaluate(current_rank, growth, rules) {
        Some(down) if down.rank == 0 => (down.code.clone(), None),
        Some(down) => (down.code.clone(), Some(rules::validity_end(now))),
        None => (
            current(&m, tiers)?.code.clone(),
            Some(rules::validity_end(now)),
        ),
    };
    // Conditional on still being due: a concurrent run that got here first wins, once.
    let updated = member::Entity::update_many()
        .col_expr(member::Column::TierCode, Expr::value(code))
        .col_expr(member::Column::TierValidUntil, Expr::value(valid_until))
        .filter(member::Column::Id.eq(member_id))
        .filter(member::Column::TierValidUntil.lte(now))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(updated.rows_affected == 1)
}

/// An operator's tier definition.
pub struct TierChange {
    pub code: String,
    pub name: String,
    pub rank: i32,
    pub growth_threshold: i64,
    pub discount: Decimal,
    pub points_multiplier: Decimal,
    pub benefits: Vec<String>,
}

/// Creates or updates the tier with this code. Ranks and thresholds must stay in step, so a
/// higher tier never needs less growth, and the lowest tier needs none.
#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &DatabaseConnection,
    change: TierChange,
    now: DateTime<Utc>,
) -> AppResult<Tier> {
    let code = change.code.trim().to_ascii_lowercase();
    if code.is_empty()
        || code.len() > 32
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(AppError::validation(
            "code",
            "code must be 1 to 32 letters, digits or '_'",
        ));
    }
    let name = change.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 64 characters",
        ));
    }
    crate::input::bounded("rank", change.rank.into(), 0..=1000)?;
    crate::input::bounded(
        "growthThreshold",
        change.growth_threshold,
        0..=1_000_000_000,
    )?;
    if change.discount <= Decimal::ZERO || change.discount > Decimal::ONE {
        return Err(AppError::validation(
            "discount",
            "discount is a price factor above 0 and at most 1",
        ));
    }
    if change.points_multiplier < Decimal::ONE || change.points_multiplier > Decimal::from(10) {
        return Err(AppError::validation(
            "pointsMultiplier",
            "pointsMultiplier must be between 1 and 10",
        ));
    }
    let txn = db.begin().await?;
    let mut tiers = all(&txn).await?;
    tiers.retain(|t| t.code != code);
    let proposed = Tier {
        code: code.clone(),
        name: name.to_string(),
        rank: change.rank,
        growth_threshold: change.growth_threshold,
        discount: change.discount,
        points_multiplier: change.points_multiplier,
        benefits: change
            .benefits
            .iter()
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect(),
        birthday_gift: 0,
    };
    if tiers.iter().any(|t| t.rank == proposed.rank) {
        return Err(AppError::validation("rank", "another tier has this rank"));
    }
    tiers.push(proposed.clone());
    tiers.sort_by_key(|t| t.rank);
    if !rules::ladder_is_consistent(&tiers.iter().map(Tier::rule).collect::<Vec<_>>()) {
        return Err(AppError::validation(
            "growthThreshold",
            "thresholds must rise with rank, and the lowest tier must start at 0",
        ));
    }
    let existing = tier::Entity::find()
        .filter(tier::Column::Code.eq(&code))
        .one(&txn)
        .await?;
    let benefits =
        serde_json::to_string(&proposed.benefits).map_err(|e| AppError::internal(e.to_string()))?;
    let saved = match existing {
        Some(row) => {
            let mut active: tier::ActiveModel = row.into();
            active.name = Set(proposed.name.clone());
            active.rank = Set(proposed.rank);
            active.growth_threshold = Set(proposed.growth_threshold);
            active.discount = Set(proposed.discount.to_string());
            active.points_multiplier = Set(proposed.points_multiplier.to_string());
            active.benefits = Set(benefits);
            active.updated_at = Set(now);
            active.update(&txn).await?
        }
        None => {
            tier::ActiveModel {
                code: Set(code.clone()),
                name: Set(proposed.name.clone()),
                rank: Set(proposed.rank),
                growth_threshold: Set(proposed.growth_threshold),
                discount: Set(proposed.discount.to_string()),
                points_multiplier: Set(proposed.points_multiplier.to_string()),
                benefits: Set(benefits),
                // New tiers start with the gift of the tier just below, editable later.
                birthday_gift: Set(tiers
                    .iter()
                    .filter(|t| t.rank < proposed.rank)
                    .map(|t| t.birthday_gift)
                    .next_back()
                    .unwrap_or(0)),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?
        }
    };
    txn.commit().await?;
    crate::metrics::committed();
    Tier::from_row(saved)
}
