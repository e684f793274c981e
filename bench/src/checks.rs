//! The invariants after a run, read from the operator API and straight from the database.

use std::collections::HashMap;

use entity::{
    blind_box, blind_box_draw, blind_box_prize, checkin, mall_item, mall_order, points_ledger,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
};
use serde::Serialize;

use crate::driver::{self, Call};
use crate::scenarios::World;

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

/// Stock each item started with, by id.
pub struct Seeded {
    pub item_stock: HashMap<i64, i64>,
    pub prize_stock: HashMap<i64, i64>,
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
    })
}

#[derive(FromQueryResult)]
struct Sum {
    key: i64,
    total: Option<i64>,
}

pub async fn run(
    client: &reqwest::Client,
    world: &World,
    db: &DatabaseConnection,
    seeded: &Seeded,
    flash_stock: i64,
) -> Result<Vec<Check>, String> {
    let e = |e: sea_orm::DbErr| e.to_string();
    let mut checks = Vec::new();

    let audit = driver::call_json(
        client,
        Call {
            url: world.admin_url.clone(),
            body: r#"{"query":"{ ledgerAudit { ok membersChecked violations } }"}"#.into(),
            token: Some(world.admin_token.clone()),
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
    let ordered: HashMap<i64, i64> = mall_order::Entity::find()
        .select_only()
        .column_as(mall_order::Column::ItemId, "key")
        .column_as(Expr::cust("CAST(SUM(quantity) AS BIGINT)"), "total")
        .filter(mall_order::Column::Status.ne("CANCELLED"))
        .group_by(mall_order::Column::ItemId)
        .into_model::<Sum>()
        .all(db)
        .await
        .map_err(e)?
        .into_iter()
        .map(|s| (s.key, s.total.unwrap_or(0)))
        .collect();
    let negative = items.iter().filter(|(_, s)| *s < 0).count();
    checks.push(check(
        "mall stock never below 0",
        negative == 0,
        format!("{negative} items below 0"),
    ));
    let mismatched: Vec<String> = items
        .iter()
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
    let flash_orders = ordered.get(&world.flash_item_id).copied().unwrap_or(0);
    checks.push(check(
        "flash sale: exactly the stock sold",
        flash_orders == flash_stock,
        format!("{flash_orders} orders for stock {flash_stock}"),
    ));

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

    // One check-in per member per business day.
    let checkins = checkin::Entity::find()
        .select_only()
        .column_as(Expr::col(checkin::Column::Id).count(), "total")
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(e)?
        .unwrap_or(0);
    let distinct: i64 = checkin::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("COUNT(DISTINCT member_id || '/' || day)"),
            "total",
        )
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(e)?
        .unwrap_or(0);
    checks.push(check(
        "one check-in per member per day",
        checkins == distinct,
        format!("{checkins} check-ins, {distinct} member-days"),
    ));
    Ok(checks)
}
