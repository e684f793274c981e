//! The benchmark's bare baseline (`POST /bench/bare-checkin`, served only in APP_ENV=test): the
//! check-in's transaction with nothing around it. A check-in row, a ledger row, a conditional
//! balance update, one round trip each, in one transaction; no GraphQL, no token, no rules. The
//! benchmark drives it with the same load generator as the real mutations and reports each write
//! scenario as a ratio to it, so targets hold from one machine to another (README Performance).

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use entity::{checkin, member, points_ledger};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde::Deserialize;

use crate::state::AppState;

/// It moves no points: the statements cost the same, and the benchmark's ledger audit (balance =
/// ledger sum = lots) still holds without writing a lot, which the bare transaction does not.
const POINTS: i64 = 0;

#[derive(Deserialize)]
pub struct BareCheckIn {
    member: i64,
    day: NaiveDate,
}

pub async fn check_in(app: web::Data<AppState>, body: web::Json<BareCheckIn>) -> HttpResponse {
    let state = app.get_ref().clone();
    let BareCheckIn { member, day } = body.into_inner();
    // On the process's runtime, like every request (see `http::serve`).
    let done = app
        .runtime
        .spawn(async move { run(&state, member, day).await })
        .await;
    match done {
        Ok(Ok(true)) => HttpResponse::Ok().json(serde_json::json!({ "data": { "ok": true } })),
        Ok(Ok(false)) => HttpResponse::Ok().json(
            serde_json::json!({ "errors": [{ "message": "already checked in", "extensions": { "code": "ALREADY_DONE" } }] }),
        ),
        _ => HttpResponse::InternalServerError().json(
            serde_json::json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }] }),
        ),
    }
}

async fn run(app: &AppState, member_id: i64, day: NaiveDate) -> Result<bool, sea_orm::DbErr> {
    let now = app.clock.now();
    let txn = app.db.begin().await?;
    let inserted = checkin::ActiveModel {
        member_id: Set(member_id),
        day: Set(day),
        made_up: Set(false),
        points: Set(POINTS),
        streak_bonus: Set(0),
        streak: Set(1),
        idempotency_key: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    if let Err(e) = inserted {
        txn.rollback().await?;
        return if crate::error::AppError::is_unique_violation(&e) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    // The ledger row carries the balance it leaves (the audit checks it): read in the insert
    // itself (INSERT ... SELECT), still one round trip.
    let balance = Query::select()
        .expr(Expr::val(member_id))
        .expr(Expr::val(POINTS))
        .expr(Expr::col(member::Column::Points).add(POINTS))
        .expr(Expr::val(points_ledger::LedgerKind::Earn.as_str()))
        .expr(Expr::val("bare"))
        .expr(Expr::val(now))
        .from(member::Entity)
        .and_where(Expr::col(member::Column::Id).eq(member_id))
        .to_owned();
    let insert = Query::insert()
        .into_table(points_ledger::Entity)
        .columns([
            points_ledger::Column::MemberId,
            points_ledger::Column::Delta,
            points_ledger::Column::BalanceAfter,
            points_ledger::Column::Kind,
            points_ledger::Column::Source,
            points_ledger::Column::CreatedAt,
        ])
        .select_from(balance)
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?
        .to_owned();
    txn.execute(&insert).await?;
    member::Entity::update_many()
        .col_expr(
            member::Column::Points,
            Expr::col(member::Column::Points).add(POINTS),
        )
        .filter(member::Column::Id.eq(member_id))
        .filter(member::Column::Points.gte(-POINTS))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}
