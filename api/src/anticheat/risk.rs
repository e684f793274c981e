//! Risk events: what a rule flagged rather than blocked, for an operator to dismiss or act on.

use chrono::{DateTime, Utc};
use entity::risk_event::{self, RiskStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::error::{AppError, AppResult};
use crate::pagination::PageRequest;

#[tracing::instrument(level = "debug", skip_all)]
pub async fn record(
    db: &impl ConnectionTrait,
    member_id: Option<i64>,
    device_id: Option<&str>,
    rule: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> AppResult<risk_event::Model> {
    Ok(risk_event::ActiveModel {
        member_id: Set(member_id),
        device_id: Set(device_id.map(str::to_string)),
        rule: Set(rule.to_string()),
        detail: Set(detail.to_string()),
        status: Set(RiskStatus::Open),
        resolved_by: Set(None),
        resolution_note: Set(None),
        resolved_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    db: &DatabaseConnection,
    status: Option<RiskStatus>,
    page: PageRequest,
) -> AppResult<Vec<risk_event::Model>> {
    let mut query = risk_event::Entity::find()
        .order_by_desc(risk_event::Column::Id)
        .limit(page.limit + 1);
    if let Some(status) = status {
        query = query.filter(risk_event::Column::Status.eq(status));
    }
    if let Some(after) = page.after_id {
        query = query.filter(risk_event::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

/// Closes an open event as DISMISSED or ACTIONED. Closing it twice is ALREADY_DONE.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn close(
    db: &impl ConnectionTrait,
    id: i64,
    status: RiskStatus,
    admin_username: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<risk_event::Model> {
    let event = risk_event::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("risk event"))?;
    let closed = risk_event::Entity::update_many()
        .col_expr(risk_event::Column::Status, Expr::value(status))
        .col_expr(risk_event::Column::ResolvedBy, Expr::value(admin_username))
        .col_expr(
            risk_event::Column::ResolutionNote,
            Expr::value(note.map(str::to_string)),
        )
        .col_expr(risk_event::Column::ResolvedAt, Expr::value(now))
        .filter(risk_event::Column::Id.eq(event.id))
        .filter(risk_event::Column::Status.eq(RiskStatus::Open))
        .exec(db)
        .await?;
    if closed.rows_affected != 1 {
        return Err(AppError::AlreadyDone(format!(
            "risk event {id} is already resolved"
        )));
    }
    risk_event::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("risk event"))
}

/// An event that is still open, or NOT_FOUND / ALREADY_DONE.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_open(db: &impl ConnectionTrait, id: i64) -> AppResult<risk_event::Model> {
    let event = risk_event::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("risk event"))?;
    if event.status != RiskStatus::Open {
        return Err(AppError::AlreadyDone(format!(
            "risk event {id} is already resolved"
        )));
    }
    Ok(event)
}
