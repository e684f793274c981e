//! Donation projects: members give points to a cause; the project shows raised, target, donors.

use chrono::{DateTime, Utc};
use entity::{donation_donor, donation_project};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::member::MemberId;
use crate::points::{self, LedgerKind, Movement};
use crate::progress::{self, Event};

#[tracing::instrument(skip_all)]
pub async fn active_projects(db: &impl ConnectionTrait) -> AppResult<Vec<donation_project::Model>> {
    Ok(donation_project::Entity::find()
        .filter(donation_project::Column::Active.eq(true))
        .order_by_asc(donation_project::Column::Id)
        .all(db)
        .await?)
}

#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &impl ConnectionTrait,
    id: Option<i64>,
    name: &str,
    description: &str,
    target_points: i64,
    active: bool,
    now: DateTime<Utc>,
) -> AppResult<donation_project::Model> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 128 characters",
        ));
    }
    crate::input::bounded("targetPoints", target_points, crate::input::TOTAL)?;
    let existing = match id {
        Some(id) => Some(
            donation_project::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound("donation project"))?,
        ),
        None => None,
    };
    let is_new = existing.is_none();
    let mut project: donation_project::ActiveModel = existing.map(Into::into).unwrap_or_default();
    if is_new {
        project.raised_points = Set(0);
        project.donor_count = Set(0);
    }
    project.name = Set(name.to_string());
    project.description = Set(description.trim().to_string());
    project.target_points = Set(target_points);
    project.active = Set(active);
    project.updated_at = Set(now);
    Ok(if is_new {
        project.insert(db).await?
    } else {
        project.update(db).await?
    })
}

/// What a donation stored to answer its retries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Donated {
    project_id: i64,
}

/// `donatePoints`: debits the member and adds to the project, counting each donor once.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn donate(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    project_id: i64,
    amount: i64,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> AppResult<donation_project::Model> {
    let member_id = member.get();
    let request = Request::new(
        member,
        "donate",
        Some(idempotency_key),
        &[&project_id.to_string(), &amount.to_string()],
    )?;
    let project = || async move {
        donation_project::Entity::find_by_id(project_id)
            .one(db)
            .await?
            .ok_or(AppError::NotFound("donation project"))
    };
    if let Some(Donated { .. }) = idempotency::recorded(db, &request).await? {
        return project().await;
    }
    if !(1..=1_000_000).contains(&amount) {
        return Err(AppError::validation(
            "points",
            "points must be 1 to 1,000,000",
        ));
    }
    if !project().await?.active {
        return Err(AppError::NotAvailable("this project is closed".into()));
    }
    let work = |txn: DatabaseTransaction| async move {
        let gift = Movement::new(member_id, amount, LedgerKind::Spend, "donation", now)
            .source_id(project_id);
        points::debit(&txn, &gift).await?;
        let savepoint = txn.begin().await?;
        let first_gift = match (donation_donor::ActiveModel {
            project_id: Set(project_id),
            member_id: Set(member_id),
            ..Default::default()
        })
        .insert(&savepoint)
        .await
        {
            Ok(_) => {
                savepoint.commit().await?;
                true
            }
            Err(e) if AppError::is_unique_violation(&e) => {
                savepoint.rollback().await?;
                false
            }
            Err(e) => return Err(e.into()),
        };
        donation_project::Entity::update_many()
            .col_expr(
                donation_project::Column::RaisedPoints,
                Expr::col(donation_project::Column::RaisedPoints).add(amount),
            )
            .col_expr(
                donation_project::Column::DonorCount,
                Expr::col(donation_project::Column::DonorCount).add(i64::from(first_gift)),
            )
            .filter(donation_project::Column::Id.eq(project_id))
            .exec(&txn)
            .await?;
        progress::record(
            &txn,
            settings,
            member_id,
            &Event::Donated { points: amount },
            now,
        )
        .await?;
        Ok((txn, (), Donated { project_id }))
    };
    idempotency::run_once(db, &request, now, work, |_| async { Ok(()) }).await?;
    project().await
}
