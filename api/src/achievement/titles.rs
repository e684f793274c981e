//! Titles: earned with achievements (or granted as prizes), worn on the profile.

use chrono::{DateTime, Utc};
use entity::{achievement, member, member_title};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use crate::error::{AppError, AppResult};
use crate::member::MemberId;

/// Wears an earned title, or takes it off with `None`.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn equip_title(
    db: &DatabaseConnection,
    member: MemberId,
    code: Option<&str>,
) -> AppResult<member::Model> {
    let member_id = member.get();
    if let Some(code) = code {
        let held = member_title::Entity::find()
            .filter(member_title::Column::MemberId.eq(member_id))
            .filter(member_title::Column::Code.eq(code))
            .count(db)
            .await?;
        if held == 0 {
            return Err(AppError::validation(
                "titleCode",
                "only an earned title can be worn",
            ));
        }
    }
    crate::member::set_active_title(db, member, code).await?;
    crate::member::require(db, member).await
}

/// The name of a title some achievement defines, if any (blind boxes give titles as prizes).
#[tracing::instrument(skip_all)]
pub async fn title_name(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<String>> {
    Ok(achievement::Entity::find()
        .filter(achievement::Column::TitleCode.eq(code))
        .one(db)
        .await?
        .and_then(|a| a.title_name))
}

/// Grants a title; granting one already held changes nothing.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn grant_title(
    txn: &DatabaseTransaction,
    member: MemberId,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.get();
    let name = title_name(txn, code)
        .await?
        .ok_or(AppError::NotFound("title"))?;
    if title_of(txn, MemberId::new(member_id), code)
        .await?
        .is_none()
    {
        member_title::ActiveModel {
            member_id: Set(member_id),
            code: Set(code.to_string()),
            name: Set(name),
            granted_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn title_of(
    db: &impl ConnectionTrait,
    member: MemberId,
    code: &str,
) -> AppResult<Option<member_title::Model>> {
    let member_id = member.get();
    Ok(member_title::Entity::find()
        .filter(member_title::Column::MemberId.eq(member_id))
        .filter(member_title::Column::Code.eq(code))
        .one(db)
        .await?)
}
