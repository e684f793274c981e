//! The member's wall: every achievement with progress and rarity, and the pinned showcase.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{achievement, member, member_achievement, member_title};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::definitions::by_codes;
use super::rules::{self};
use crate::error::{AppError, AppResult};
use crate::member::MemberId;
use crate::progress::{self};

pub struct WallEntry {
    pub achievement: achievement::Model,
    pub progress: i64,
    pub unlocked_at: Option<DateTime<Utc>>,
    pub rarity: f64,
}

pub struct Wall {
    pub showcase: Vec<achievement::Model>,
    pub entries: Vec<WallEntry>,
    pub titles: Vec<member_title::Model>,
}

fn showcase_codes(m: &member::Model) -> Vec<String> {
    m.showcase
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn wall(db: &DatabaseConnection, member: MemberId) -> AppResult<Wall> {
    let member_id = member.get();
    let m = crate::member::require(db, crate::member::MemberId::new(member_id)).await?;
    let unlocked: HashMap<i64, DateTime<Utc>> = member_achievement::Entity::find()
        .filter(member_achievement::Column::MemberId.eq(member_id))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.achievement_id, u.unlocked_at))
        .collect();
    let metrics: HashMap<String, i64> = progress::values_of(db, member_id, "all")
        .await?
        .into_iter()
        .collect();
    let members = member::Entity::find().count(db).await? as i64;
    let entries = achievement::Entity::find()
        .order_by_asc(achievement::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|a| !a.hidden || unlocked.contains_key(&a.id))
        .map(|a| WallEntry {
            progress: rules::progress(metrics.get(&a.metric).copied().unwrap_or(0), a.threshold),
            unlocked_at: unlocked.get(&a.id).copied(),
            rarity: rules::rarity(a.unlocked_count, members),
            achievement: a,
        })
        .collect();
    let titles = member_title::Entity::find()
        .filter(member_title::Column::MemberId.eq(member_id))
        .order_by_asc(member_title::Column::Id)
        .all(db)
        .await?;
    Ok(Wall {
        showcase: by_codes(db, &showcase_codes(&m)).await?,
        entries,
        titles,
    })
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn set_showcase(
    db: &DatabaseConnection,
    member: MemberId,
    codes: Vec<String>,
) -> AppResult<()> {
    let member_id = member.get();
    let held_ids: Vec<i64> = member_achievement::Entity::find()
        .select_only()
        .column(member_achievement::Column::AchievementId)
        .filter(member_achievement::Column::MemberId.eq(member_id))
        .into_tuple()
        .all(db)
        .await?;
    let held: Vec<String> = achievement::Entity::find()
        .filter(achievement::Column::Id.is_in(held_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.code)
        .collect();
    rules::check_showcase(&codes, &held).map_err(|(message, code)| {
        AppError::validation(
            "achievementCodes",
            code.map_or(message.to_string(), |c| format!("{message}: {c}")),
        )
    })?;
    let json = serde_json::to_string(&codes).map_err(|e| AppError::internal(e.to_string()))?;
    crate::member::set_showcase(db, MemberId::new(member_id), &json).await
}
