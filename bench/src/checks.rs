//! The invariants after a run, read from the operator API and straight from the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use entity::crowdfund::CrowdfundStatus;
use entity::{
    blind_box, blind_box_draw, blind_box_prize, checkin, mall_item, mall_order, points_ledger,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
};
use serde::Serialize;

use crate::driver::{self, Call};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Stock each item and prize started with, by id.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub item_stock: HashMap<i64, i64>,
    pub prize_stock: HashMap<i64, i64>,
    /// Items whose stock an operator set again during the run (`upsertMallItem` sets it, not
    /// adds to it): for those only "never below 0" can be checked.
    pub restocked: HashSet<i64>,
}

pub async fn seeded(db: &DatabaseConnection) -> Result<Seeded, String> {
    let items: Vec<(i64, i64)> = mall_item::Entity::find()
        .select_only()
        .columns([mall_item::Column::Id, mall_item::Column::Stock])
        .into_tuple()
        .all(db)
        .await
        .map_err(|e| e.to_string())?;
    let prizes: Vec<(i64, Option<i64>)> = blind_box_prize::Entity::find()
        .select_only()
        .columns([blind_box_prize::Column::Id, blind_box_prize::Column::Stock])
        .into_tuple()
        .all(db)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Seeded {
        item_stock: items.into_iter().collect(),
        prize_stock: prizes
            .into_iter()
            .filter_map(|(id, stock)| Some((id, stock?)))
            .collect(),
        restocked: HashSet::new(),
    })
}

/// `mall_order.origin` of a blind-box prize.
const PRIZE_ORIGIN: &str = "PRIZE";

#[derive(FromQueryResult)]
struct Sum {
    key: i64,
    total: Option<i64>,
}

/// The benchmark's invariants (and the soak's first ones). `flash` is the flash-sale item and
/// its stock, when there was a flash sale.
pub async fn run(
    client: &reqwest::Client,
    admin_url: &Arc<str>,
    admin_token: &Arc<str>,
    db: &DatabaseConnection,
    seeded: &Seeded,
    flash: Option<(i64, i64)>,
) -> Result<Vec<Check>, String> {
    let e = |e: sea_orm::DbErr| e.to_string();
    let mut checks = Vec::new();

    let audit = driver::call_json(
        client,
        Call {
            url: admin_url.clone(),
            body: r#"{"query":"{ ledgerAudit { ok membersChecked violations } }"}"#.into(),
            token: Some(admin_token.clone()),
            device: None,
            now: None,
        },
    )
    .await?;
    let audit = &audit["data"]["ledgerAudit"];
    checks.push(check(
        "ledgerAudit ok (balance = ledger sum = lots)",
        audit["ok"] == true,
        format!(
            "{} members checked, violations: {}",
            audit["membersChecked"], audit["violations"]
        ),
    ));

    // Stock never below zero, and what left the shelf is what was ordered.
    let items: Vec<(i64, i64)> = mall_item::Entity::find()
        .select_only()
        .columns([mall_item::Column::Id, mall_item::Column::Stock])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    // Summed here, not in SQL: SUM's type differs between the three databases. Prize orders
    // (blind-box ITEM prizes) take no mall stock; the prize's own stock governs them.
    let orders: Vec<(i64, i64, String, String)> = mall_order::Entity::find()
        .select_only()
        .columns([
            mall_order::Column::ItemId,
            mall_order::Column::Quantity,
            mall_order::Column::Status,
            mall_order::Column::Origin,
        ])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let mut ordered: HashMap<i64, i64> = HashMap::new();
    for (item, quantity, status, origin) in &orders {
        if status != "CANCELLED" && origin != PRIZE_ORIGIN {
            *ordered.entry(*item).or_default() += quantity;
        }
    }
    let negative = items.iter().filter(|(_, s)| *s < 0).count();
    checks.push(check(
        "mall stock never below 0",
        negative == 0,
        format!("{negative} items below 0"),
    ));
    let mismatched: Vec<String> = items
        .iter()
        .filter(|(id, _)| !seeded.restocked.contains(id))
        .filter_map(|(id, stock)| {
            let sold = seeded.item_stock.get(id).copied().unwrap_or(0) - stock;
            let orders = ordered.get(id).copied().unwrap_or(0);
            (sold != orders).then(|| format!("item {id}: sold {sold}, ordered {orders}"))
        })
        .collect();
    checks.push(check(
        "orders = stock sold, every item",
        mismatched.is_empty(),
        if mismatched.is_empty() {
            format!("{} units ordered", ordered.values().sum::<i64>())
        } else {
            mismatched.join("; ")
        },
    ));
    if let Some((flash_item, flash_stock)) = flash {
        let flash_orders = ordered.get(&flash_item).copied().unwrap_or(0);
        checks.push(check(
            "flash sale: exactly the stock sold",
            flash_orders == flash_stock,
            format!("{flash_orders} orders for stock {flash_stock}"),
        ));
    }

    // Draws = points spent / price, box by box; prize stock = stock drawn.
    let boxes: Vec<(i64, i64)> = blind_box::Entity::find()
        .select_only()
        .columns([blind_box::Column::Id, blind_box::Column::PointsPrice])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let draws: HashMap<i64, i64> = blind_box_draw::Entity::find()
        .select_only()
        .column_as(blind_box_draw::Column::BoxId, "key")
        .column_as(Expr::col(blind_box_draw::Column::Id).count(), "total")
        .group_by(blind_box_draw::Column::BoxId)
        .into_model::<Sum>()
        .all(db)
        .await
        .map_err(e)?
        .into_iter()
        .map(|s| (s.key, s.total.unwrap_or(0)))
        .collect();
    let spent: Vec<(Option<String>, i64)> = points_ledger::Entity::find()
        .select_only()
        .columns([
            points_ledger::Column::SourceId,
            points_ledger::Column::Delta,
        ])
        .filter(points_ledger::Column::Source.eq("blindbox"))
        .filter(points_ledger::Column::Kind.eq("SPEND"))
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let mut spent_by_box: HashMap<i64, i64> = HashMap::new();
    for (source_id, delta) in spent {
        if let Some(id) = source_id.and_then(|s| s.parse().ok()) {
            *spent_by_box.entry(id).or_default() -= delta;
        }
    }
    let mut detail = Vec::new();
    let mut ok = true;
    for (id, price) in &boxes {
        let (n, points) = (
            draws.get(id).copied().unwrap_or(0),
            spent_by_box.get(id).copied().unwrap_or(0),
        );
        ok &= n * price == points;
        detail.push(format!(
            "box {id}: {n} draws x {price} = {points} points spent"
        ));
    }
    checks.push(check("draws = points spent / price", ok, detail.join("; ")));

    let prizes: Vec<(i64, Option<i64>)> = blind_box_prize::Entity::find()
        .select_only()
        .columns([blind_box_prize::Column::Id, blind_box_prize::Column::Stock])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let won: HashMap<i64, i64> = blind_box_draw::Entity::find()
        .select_only()
        .column_as(blind_box_draw::Column::PrizeId, "key")
        .column_as(Expr::col(blind_box_draw::Column::Id).count(), "total")
        .group_by(blind_box_draw::Column::PrizeId)
        .into_model::<Sum>()
        .all(db)
        .await
        .map_err(e)?
        .into_iter()
        .map(|s| (s.key, s.total.unwrap_or(0)))
        .collect();
    let bad: Vec<String> = prizes
        .iter()
        .filter_map(|(id, stock)| {
            let stock = (*stock)?;
            let start = seeded.prize_stock.get(id).copied()?;
            let n = won.get(id).copied().unwrap_or(0);
            (stock < 0 || start - stock != n)
                .then(|| format!("prize {id}: stock {start} -> {stock}, won {n}"))
        })
        .collect();
    checks.push(check(
        "prize stock never below 0, and = stock drawn",
        bad.is_empty(),
        bad.join("; "),
    ));

    // One check-in per member per business day (counted here: string concatenation is not
    // portable SQL).
    let days: Vec<(i64, chrono::NaiveDate)> = checkin::Entity::find()
        .select_only()
        .columns([checkin::Column::MemberId, checkin::Column::Day])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let distinct = days.iter().collect::<HashSet<_>>().len();
    checks.push(check(
        "one check-in per member per day",
        days.len() == distinct,
        format!("{} check-ins, {distinct} member-days", days.len()),
    ));
    Ok(checks)
}

/// (member, delta, kind, source, source id, idempotency key)
type LedgerRow = (i64, i64, String, String, Option<String>, Option<String>);

/// The caps and limits the soak's server runs with, for `soak`.
pub struct Limits {
    /// Reportable event kinds and their daily caps.
    pub report_caps: Vec<(String, i64)>,
    pub make_ups_per_month: i64,
    pub transfer_max: i64,
    pub timezone: chrono::FixedOffset,
}

/// The soak's invariants beyond the benchmark's: crowdfund escrow, donation totals, and the
/// caps and per-member limits, read straight from the database after the run.
pub async fn soak(db: &DatabaseConnection, limits: &Limits) -> Result<Vec<Check>, String> {
    use entity::{
        blind_box, crowdfund, crowdfund_contribution, donation_donor, donation_project,
        member_metric,
    };
    let e = |e: sea_orm::DbErr| e.to_string();
    let mut checks = Vec::new();
    let ledger: Vec<LedgerRow> = points_ledger::Entity::find()
        .select_only()
        .columns([
            points_ledger::Column::MemberId,
            points_ledger::Column::Delta,
            points_ledger::Column::Kind,
            points_ledger::Column::Source,
            points_ledger::Column::SourceId,
            points_ledger::Column::IdempotencyKey,
        ])
        .filter(points_ledger::Column::Source.is_in(["crowdfund", "donation", "transfer"]))
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;

    // Crowdfunds: what each pool holds is what was given and not refunded; the ledger took
    // exactly the contributions; a refund gives back exactly one contribution.
    let pools = crowdfund::Entity::find().all(db).await.map_err(e)?;
    let gifts = crowdfund_contribution::Entity::find()
        .all(db)
        .await
        .map_err(e)?;
    let mut escrowed: HashMap<i64, i64> = HashMap::new();
    let mut refunds: HashMap<String, i64> = HashMap::new();
    for (_, delta, kind, source, source_id, key) in &ledger {
        if source != "crowdfund" {
            continue;
        }
        match kind.as_str() {
            "SPEND" => {
                if let Some(pool) = source_id.as_deref().and_then(|s| s.parse().ok()) {
                    *escrowed.entry(pool).or_default() -= delta;
                }
            }
            "REFUND" => {
                if let Some(key) = key {
                    *refunds.entry(key.clone()).or_default() += delta;
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for pool in &pools {
        let mine: Vec<&crowdfund_contribution::Model> =
            gifts.iter().filter(|g| g.crowdfund_id == pool.id).collect();
        let given: i64 = mine.iter().map(|g| g.points).sum();
        let held: i64 = mine
            .iter()
            .filter(|g| g.refunded_at.is_none())
            .map(|g| g.points)
            .sum();
        let expected_held = match pool.status.as_str() {
            "EXPIRED" => 0,
            _ => pool.raised_points,
        };
        if given != pool.raised_points {
            bad.push(format!(
                "crowdfund {}: raised {} but contributions {given}",
                pool.id, pool.raised_points
            ));
        }
        if held != expected_held {
            bad.push(format!(
                "crowdfund {} ({}): holds {held}, should hold {expected_held}",
                pool.id,
                pool.status.as_str()
            ));
        }
        if pool.raised_points > pool.target_points
            || (pool.status == CrowdfundStatus::Funded) != (pool.order_id.is_some())
            || (pool.status == CrowdfundStatus::Funded && pool.raised_points != pool.target_points)
        {
            bad.push(format!(
                "crowdfund {} ({}): raised {} of {}, order {:?}",
                pool.id,
                pool.status.as_str(),
                pool.raised_points,
                pool.target_points,
                pool.order_id
            ));
        }
        let debited = escrowed.get(&pool.id).copied().unwrap_or(0);
        if debited != given {
            bad.push(format!(
                "crowdfund {}: the ledger took {debited}, contributions are {given}",
                pool.id
            ));
        }
        for g in &mine {
            let refunded = refunds.get(&format!("crowdfund-refund:{}", g.id)).copied();
            // A contributor blacklisted before the refund keeps nothing (no ledger row).
            if refunded.is_some_and(|r| r != g.points)
                || (refunded.is_some() && g.refunded_at.is_none())
            {
                bad.push(format!(
                    "contribution {}: {} points, refunded {refunded:?} (marked {:?})",
                    g.id, g.points, g.refunded_at
                ));
            }
        }
    }
    checks.push(check(
        "crowdfund escrow = contributions not refunded",
        bad.is_empty(),
        if bad.is_empty() {
            format!(
                "{} pools ({} funded, {} expired), {} contributions",
                pools.len(),
                pools
                    .iter()
                    .filter(|p| p.status == CrowdfundStatus::Funded)
                    .count(),
                pools
                    .iter()
                    .filter(|p| p.status == CrowdfundStatus::Expired)
                    .count(),
                gifts.len()
            )
        } else {
            bad.join("; ")
        },
    ));

    // Donations: each project's total and donor count are what the ledger says.
    let projects = donation_project::Entity::find().all(db).await.map_err(e)?;
    let donors = donation_donor::Entity::find().all(db).await.map_err(e)?;
    let mut given: HashMap<i64, (i64, HashSet<i64>)> = HashMap::new();
    for (member, delta, kind, source, source_id, _) in &ledger {
        if source == "donation"
            && kind == "SPEND"
            && let Some(project) = source_id.as_deref().and_then(|s| s.parse().ok())
        {
            let entry = given.entry(project).or_default();
            entry.0 -= delta;
            entry.1.insert(*member);
        }
    }
    let bad: Vec<String> = projects
        .iter()
        .filter_map(|p| {
            let (points, members) = given.get(&p.id).cloned().unwrap_or_default();
            let rows = donors.iter().filter(|d| d.project_id == p.id).count() as i64;
            (points != p.raised_points
                || members.len() as i64 != p.donor_count
                || rows != p.donor_count)
                .then(|| {
                    format!(
                        "project {}: raised {} / {} donors, ledger {points} / {} donors, {rows} donor rows",
                        p.id,
                        p.raised_points,
                        p.donor_count,
                        members.len()
                    )
                })
        })
        .collect();
    checks.push(check(
        "donation totals and donors = ledger",
        bad.is_empty(),
        if bad.is_empty() {
            format!(
                "{} projects, {} points donated",
                projects.len(),
                projects.iter().map(|p| p.raised_points).sum::<i64>()
            )
        } else {
            bad.join("; ")
        },
    ));

    // Transfers: never above the cap, and every transfer out has its transfer in.
    let outs: Vec<i64> = ledger
        .iter()
        .filter(|l| l.2 == "TRANSFER_OUT")
        .map(|l| -l.1)
        .collect();
    let ins: i64 = ledger
        .iter()
        .filter(|l| l.2 == "TRANSFER_IN")
        .map(|l| l.1)
        .sum();
    let over = outs
        .iter()
        .filter(|a| **a > limits.transfer_max || **a <= 0)
        .count();
    checks.push(check(
        "transfers within 1..=TRANSFER_MAX_POINTS, out = in",
        over == 0 && outs.iter().sum::<i64>() == ins,
        format!(
            "{} transfers, {over} out of range, {} out, {ins} in",
            outs.len(),
            outs.iter().sum::<i64>()
        ),
    ));

    // Reported events: never past a kind's daily cap.
    let counted: Vec<(i64, String, String, i64)> = member_metric::Entity::find()
        .select_only()
        .columns([
            member_metric::Column::MemberId,
            member_metric::Column::Metric,
            member_metric::Column::Period,
            member_metric::Column::Value,
        ])
        .filter(member_metric::Column::Metric.starts_with("event."))
        .filter(member_metric::Column::Period.starts_with("d:"))
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let bad: Vec<String> = counted
        .iter()
        .filter_map(|(member, metric, period, value)| {
            let kind = metric.trim_start_matches("event.");
            let cap = limits.report_caps.iter().find(|(k, _)| k == kind)?.1;
            (*value > cap).then(|| format!("member {member} {kind} {period}: {value} > {cap}"))
        })
        .collect();
    checks.push(check(
        "reported events within their daily caps",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} member-days-kinds", counted.len())
        } else {
            bad.join("; ")
        },
    ));

    // Blind boxes: draws per member, box and business day within the box's daily limit.
    let limits_by_box: HashMap<i64, Option<i32>> = blind_box::Entity::find()
        .select_only()
        .columns([blind_box::Column::Id, blind_box::Column::DailyLimit])
        .into_tuple::<(i64, Option<i32>)>()
        .all(db)
        .await
        .map_err(e)?
        .into_iter()
        .collect();
    let draws: Vec<(i64, i64, chrono::DateTime<chrono::Utc>)> = blind_box_draw::Entity::find()
        .select_only()
        .columns([
            blind_box_draw::Column::MemberId,
            blind_box_draw::Column::BoxId,
            blind_box_draw::Column::CreatedAt,
        ])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let mut per_day: HashMap<(i64, i64, chrono::NaiveDate), i64> = HashMap::new();
    for (member, b, at) in &draws {
        let day = at.with_timezone(&limits.timezone).date_naive();
        *per_day.entry((*member, *b, day)).or_default() += 1;
    }
    let bad: Vec<String> = per_day
        .iter()
        .filter_map(|((member, b, day), n)| {
            let limit = i64::from((*limits_by_box.get(b)?)?);
            (*n > limit).then(|| format!("member {member} box {b} on {day}: {n} > {limit}"))
        })
        .collect();
    checks.push(check(
        "blind-box draws within the daily limit",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} draws, {} member-box-days", draws.len(), per_day.len())
        } else {
            bad.join("; ")
        },
    ));

    // Make-ups: at most the monthly count per member and month.
    let made_up: Vec<(i64, chrono::NaiveDate)> = checkin::Entity::find()
        .select_only()
        .columns([checkin::Column::MemberId, checkin::Column::Day])
        .filter(checkin::Column::MadeUp.eq(true))
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let mut per_month: HashMap<(i64, String), i64> = HashMap::new();
    for (member, day) in &made_up {
        *per_month
            .entry((*member, day.format("%Y-%m").to_string()))
            .or_default() += 1;
    }
    let bad: Vec<String> = per_month
        .iter()
        .filter(|(_, n)| **n > limits.make_ups_per_month)
        .map(|((member, month), n)| format!("member {member} in {month}: {n} make-ups"))
        .collect();
    checks.push(check(
        "make-ups within the monthly count",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} make-ups", made_up.len())
        } else {
            bad.join("; ")
        },
    ));

    // Per-member limits: units held (orders not cancelled, prizes aside, and open pools the
    // member started) never above the item's limit.
    let items: HashMap<i64, Option<i32>> = mall_item::Entity::find()
        .select_only()
        .columns([mall_item::Column::Id, mall_item::Column::PerMemberLimit])
        .into_tuple::<(i64, Option<i32>)>()
        .all(db)
        .await
        .map_err(e)?
        .into_iter()
        .collect();
    let orders: Vec<(i64, i64, i64, String, String)> = mall_order::Entity::find()
        .select_only()
        .columns([
            mall_order::Column::MemberId,
            mall_order::Column::ItemId,
            mall_order::Column::Quantity,
            mall_order::Column::Status,
            mall_order::Column::Origin,
        ])
        .into_tuple()
        .all(db)
        .await
        .map_err(e)?;
    let mut held: HashMap<(i64, i64), i64> = HashMap::new();
    for (member, item, quantity, status, origin) in &orders {
        if status != "CANCELLED" && origin != PRIZE_ORIGIN {
            *held.entry((*member, *item)).or_default() += quantity;
        }
    }
    for pool in pools.iter().filter(|p| p.status == CrowdfundStatus::Open) {
        *held.entry((pool.initiator_id, pool.item_id)).or_default() += 1;
    }
    let bad: Vec<String> = held
        .iter()
        .filter_map(|((member, item), n)| {
            let limit = i64::from((*items.get(item)?)?);
            (*n > limit).then(|| format!("member {member} item {item}: {n} > {limit}"))
        })
        .collect();
    checks.push(check(
        "per-member item limits held",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} member-items", held.len())
        } else {
            bad.join("; ")
        },
    ));
    Ok(checks)
}
