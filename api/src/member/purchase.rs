//! Purchases from the merchant's order system: points and growth for a paid order, once per
//! order number, and their reversal on refund. Earning rules live in `shop_setting`.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{member, purchase};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};

use super::rules::birthday::is_birthday_month;
use super::rules::earning::{self as rules, Boosts, Earning, Line};
use super::rules::tier::in_sprint;
use super::tier;
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event};
use crate::shop_settings;

const EARNING_RULES_KEY: &str = "earning_rules";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEarning {
    points_per_yuan: String,
    category_multipliers: Vec<(String, String)>,
    double_points_days: Vec<NaiveDate>,
    max_points_ratio: String,
}

/// The operator's earning rules, or the defaults from the settings.
#[tracing::instrument(skip_all)]
pub async fn earning_rules(db: &impl ConnectionTrait, settings: &Settings) -> AppResult<Earning> {
    let Some(s) = shop_settings::get::<StoredEarning>(db, EARNING_RULES_KEY).await? else {
        return Ok(Earning {
            points_per_yuan: settings.member.points_per_yuan,
            category_multipliers: Vec::new(),
            double_points_days: Vec::new(),
            max_points_ratio: settings.member.max_points_ratio,
        });
    };
    let dec = |v: &str| {
        Decimal::from_str(v).map_err(|e| AppError::internal(format!("stored earning rules: {e}")))
    };
    Ok(Earning {
        points_per_yuan: dec(&s.points_per_yuan)?,
        category_multipliers: s
            .category_multipliers
            .iter()
            .map(|(c, m)| Ok((c.clone(), dec(m)?)))
            .collect::<AppResult<_>>()?,
        double_points_days: s.double_points_days,
        max_points_ratio: dec(&s.max_points_ratio)?,
    })
}

/// Saves new earning rules after checking them.
#[tracing::instrument(skip_all)]
pub async fn update_earning_rules(
    db: &impl ConnectionTrait,
    rules: Earning,
    now: DateTime<Utc>,
) -> AppResult<Earning> {
    let in_range = |d: Decimal, low: Decimal, high: Decimal| d > low && d <= high;
    if !in_range(rules.points_per_yuan, Decimal::ZERO, Decimal::from(100)) {
        return Err(AppError::validation(
            "pointsPerYuan",
            "pointsPerYuan must be above 0 and at most 100",
        ));
    }
    if !in_range(rules.max_points_ratio, Decimal::ZERO, Decimal::ONE) {
        return Err(AppError::validation(
            "maxPointsRatio",
            "maxPointsRatio must be above 0 and at most 1",
        ));
    }
    let mut categories: Vec<&str> = Vec::new();
    for (category, multiplier) in &rules.category_multipliers {
        let category = category.trim();
        if category.is_empty() || category.len() > 64 || categories.contains(&category) {
            return Err(AppError::validation(
                "categoryMultipliers",
                "categories must be named, at most 64 characters, once each",
            ));
        }
        if !in_range(*multiplier, Decimal::ZERO, Decimal::from(10)) {
            return Err(AppError::validation(
                "categoryMultipliers",
                "a multiplier must be above 0 and at most 10",
            ));
        }
        categories.push(category);
    }
    if rules.double_points_days.len() > 366 {
        return Err(AppError::validation(
            "doublePointsDays",
            "at most 366 double-points days",
        ));
    }
    let stored = StoredEarning {
        points_per_yuan: rules.points_per_yuan.normalize().to_string(),
        category_multipliers: rules
            .category_multipliers
            .iter()
            .map(|(c, m)| (c.trim().to_string(), m.normalize().to_string()))
            .collect(),
        double_points_days: rules.double_points_days.clone(),
        max_points_ratio: rules.max_points_ratio.normalize().to_string(),
    };
    shop_settings::put(db, EARNING_RULES_KEY, &stored, now).await?;
    Ok(rules)
}

/// Who bought: by openid or by memberNo.
pub enum Buyer {
    Openid(String),
    MemberNo(String),
}

pub struct PurchaseRequest {
    pub order_no: String,
    pub buyer: Buyer,
    pub amount: Decimal,
    pub lines: Vec<Line>,
    pub paid_at: DateTime<Utc>,
}

pub struct PurchaseOutcome {
    pub order_no: String,
    pub points: i64,
    pub growth: i64,
    pub member: member::Model,
    pub applied: bool,
}

fn fen(amount: Decimal) -> i64 {
    (amount * Decimal::from(100)).round().to_i64().unwrap_or(0)
}

fn fingerprint(r: &PurchaseRequest) -> String {
    let buyer = match &r.buyer {
        Buyer::Openid(o) => format!("openid:{o}"),
        Buyer::MemberNo(m) => format!("member:{m}"),
    };
    let lines: Vec<String> = r
        .lines
        .iter()
        .map(|l| format!("{}={}", l.category, fen(l.amount)))
        .collect();
    crate::idempotency::rules::fingerprint(&[
        &r.order_no,
        &buyer,
        &fen(r.amount).to_string(),
        &lines.join(","),
        &r.paid_at.timestamp_micros().to_string(),
    ])
}

async fn outcome(
    db: &impl ConnectionTrait,
    row: &purchase::Model,
    applied: bool,
    sign: i64,
) -> AppResult<PurchaseOutcome> {
    let member = crate::member::require(db, crate::member::MemberId::new(row.member_id)).await?;
    let points_back = row.points_awarded - row.points_not_recovered.unwrap_or(0);
    Ok(PurchaseOutcome {
        order_no: row.order_no.clone(),
        points: if sign < 0 {
            -points_back
        } else {
            row.points_awarded
        },
        growth: sign * row.growth_awarded,
        member,
        applied,
    })
}

/// An order already recorded under this number: answered as a repeat (`applied: false`), or
/// CONFLICT when it was recorded with other details.
async fn replay(
    db: &impl ConnectionTrait,
    order_no: &str,
    request_hash: &str,
) -> AppResult<Option<(purchase::Model, PurchaseOutcome)>> {
    let Some(row) = purchase::Entity::find()
        .filter(purchase::Column::OrderNo.eq(order_no))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.request_hash != request_hash {
        return Err(AppError::Conflict(
            "this orderNo was already recorded with other details".into(),
        ));
    }
    let done = outcome(db, &row, false, 1).await?;
    Ok(Some((row, done)))
}

/// `recordPurchase`: points = the earning formula (see `rules::earning::purchase_points`), growth =
/// yuan x the spend weight, in one transaction with the purchase row, idempotent on orderNo.
#[tracing::instrument(skip_all)]
pub async fn record(
    db: &DatabaseConnection,
    settings: &Settings,
    request: PurchaseRequest,
    now: DateTime<Utc>,
) -> AppResult<PurchaseOutcome> {
    let order_no = request.order_no.trim().to_string();
    if order_no.is_empty() || order_no.len() > 64 || order_no.chars().any(char::is_control) {
        return Err(AppError::validation(
            "orderNo",
            "orderNo must be 1 to 64 printable characters",
        ));
    }
    let request = PurchaseRequest {
        order_no,
        ..request
    };
    rules::validate_purchase(request.amount, &request.lines, request.paid_at, now)
        .map_err(|(field, message)| AppError::validation(field, message))?;
    let request_hash = fingerprint(&request);
    let buyer = match &request.buyer {
        Buyer::Openid(o) => {
            member::Entity::find()
                .filter(member::Column::Openid.eq(o.trim()))
                .one(db)
                .await?
        }
        Buyer::MemberNo(m) => {
            member::Entity::find()
                .filter(member::Column::MemberNo.eq(m.trim().to_ascii_uppercase()))
                .one(db)
                .await?
        }
    }
    .ok_or(AppError::NotFound("member"))?;
    let once = Request::external(
        MemberId::new(buyer.id),
        "purchase",
        "orderNo",
        &request.order_no,
        &[&request_hash],
    )?;
    let (request, request_hash, buyer) = (&request, &request_hash, &buyer);
    let work = |txn: DatabaseTransaction| async move {
        // The order number is unique across members: a repeat answers what the first one did.
        if let Some(done) = replay(&txn, &request.order_no, request_hash).await? {
            let stored = Recorded {
                purchase_id: done.0.id,
            };
            return Ok((txn, done.1, stored));
        }
        let tiers = tier::all(&txn).await?;
        let member_tier = tier::current(buyer, &tiers)?;
        let earning = earning_rules(&txn, settings).await?;
        let paid_day = business_date(request.paid_at, settings.timezone);
        let boosts = Boosts {
            birthday_month: is_birthday_month(buyer.birthday, paid_day),
            sprint: member_tier.rank > 0 && in_sprint(buyer.tier_valid_until, request.paid_at),
            double_day: earning.double_points_days.contains(&paid_day),
        };
        // A blacklisted member's purchase is recorded, and earns nothing.
        let earns = buyer.blacklisted_at.is_none();
        let points = if earns {
            rules::purchase_points(
                &request.lines,
                &earning,
                member_tier.points_multiplier,
                boosts,
                settings.member.sprint_multiplier,
                settings.points.point_value_yuan,
            )
            .ok_or_else(|| AppError::validation("amount", "this purchase is too large to score"))?
        } else {
            0
        };
        let growth = if earns {
            rules::growth_from_spend(request.amount, settings.member.growth_spend_weight)
        } else {
            0
        };
        let lines_json = serde_json::to_string(
            &request
                .lines
                .iter()
                .map(|l| (l.category.clone(), l.amount.to_string()))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| AppError::internal(e.to_string()))?;
        let inserted = purchase::ActiveModel {
            order_no: Set(request.order_no.clone()),
            member_id: Set(buyer.id),
            amount_fen: Set(fen(request.amount)),
            lines: Set(lines_json),
            points_awarded: Set(points),
            growth_awarded: Set(growth),
            request_hash: Set(request_hash.clone()),
            paid_at: Set(request.paid_at),
            refunded_at: Set(None),
            points_not_recovered: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            // Only another member's order under the same number can race this one here.
            AppError::on_unique_violation(
                e,
                AppError::Conflict("this orderNo was already recorded with other details".into()),
            )
        })?;
        let row = inserted;
        if points > 0 {
            let earn = Movement::new(buyer.id, points, LedgerKind::Earn, "purchase", now)
                .source_id(&row.order_no)
                .once(format!("purchase:{}", row.order_no));
            points::credit(&txn, &earn, Expiry::After(settings.points.ttl)).await?;
        }
        tier::add_growth(&txn, buyer.id, growth, "purchase", Some(&row.order_no), now).await?;
        let last_purchase = buyer
            .last_purchase_at
            .map_or(request.paid_at, |t| t.max(request.paid_at));
        member::Entity::update_many()
            .col_expr(member::Column::LastPurchaseAt, Expr::value(last_purchase))
            .col_expr(member::Column::LastActiveAt, Expr::value(now))
            .filter(member::Column::Id.eq(buyer.id))
            .exec(&txn)
            .await?;
        let yuan = request.amount.floor().to_i64().unwrap_or(0);
        progress::record(&txn, settings, buyer.id, &Event::PurchasePaid { yuan }, now).await?;
        if points > 0 {
            let earned = Event::PointsEarned {
                amount: points,
                interaction: false,
            };
            progress::record(&txn, settings, buyer.id, &earned, now).await?;
        }
        let done = outcome(&txn, &row, true, 1).await?;
        Ok((
            txn,
            done,
            Recorded {
                purchase_id: row.id,
            },
        ))
    };
    idempotency::run_once(db, &once, now, work, |stored| async move {
        outcome(db, &purchase_row(db, stored.purchase_id).await?, false, 1).await
    })
    .await
}

/// What a purchase or refund stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    purchase_id: i64,
}

async fn purchase_row(db: &impl ConnectionTrait, id: i64) -> AppResult<purchase::Model> {
    purchase::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("purchase"))
}

/// `refundPurchase`: takes back the order's growth, and its points as far as the balance
/// allows (REVOKE; a balance never goes negative, the shortfall is recorded on the purchase).
/// The tier is left to the yearly re-evaluation. A second refund changes nothing.
#[tracing::instrument(skip_all)]
pub async fn refund(
    db: &DatabaseConnection,
    order_no: &str,
    now: DateTime<Utc>,
) -> AppResult<PurchaseOutcome> {
    let row = purchase::Entity::find()
        .filter(purchase::Column::OrderNo.eq(order_no.trim()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("purchase"))?;
    let once = Request::external(
        MemberId::new(row.member_id),
        "refund",
        "orderNo",
        &row.order_no,
        &[],
    )?;
    let row = &row;
    let work = |txn: DatabaseTransaction| async move {
        let marked = purchase::Entity::update_many()
            .col_expr(purchase::Column::RefundedAt, Expr::value(now))
            .filter(purchase::Column::Id.eq(row.id))
            .filter(purchase::Column::RefundedAt.is_null())
            .exec(&txn)
            .await?;
        let stored = Recorded {
            purchase_id: row.id,
        };
        if marked.rows_affected != 1 {
            let done = outcome(&txn, &purchase_row(&txn, row.id).await?, false, -1).await?;
            return Ok((txn, done, stored));
        }
        let balance = member::Entity::find_by_id(row.member_id)
            .one(&txn)
            .await?
            .map_or(0, |m| m.points);
        let take_back = row.points_awarded.min(balance).max(0);
        if take_back > 0 {
            let revoke = Movement::new(row.member_id, take_back, LedgerKind::Revoke, "refund", now)
                .source_id(&row.order_no)
                .once(format!("refund:{}", row.order_no));
            points::debit(&txn, &revoke).await?;
        }
        purchase::Entity::update_many()
            .col_expr(
                purchase::Column::PointsNotRecovered,
                Expr::value(row.points_awarded - take_back),
            )
            .filter(purchase::Column::Id.eq(row.id))
            .exec(&txn)
            .await?;
        tier::add_growth(
            &txn,
            row.member_id,
            -row.growth_awarded,
            "refund",
            Some(&row.order_no),
            now,
        )
        .await?;
        let done = outcome(&txn, &purchase_row(&txn, row.id).await?, true, -1).await?;
        Ok((txn, done, stored))
    };
    idempotency::run_once(db, &once, now, work, |stored| async move {
        outcome(db, &purchase_row(db, stored.purchase_id).await?, false, -1).await
    })
    .await
}
