//! Achievement definitions: what operators define (metric, threshold, reward, title), and
//! reading them back by code.

use chrono::{DateTime, Utc};
use entity::achievement;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::rules::{self};
use crate::error::{AppError, AppResult};

pub struct AchievementChange {
    pub code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub icon_url: Option<String>,
    pub metric: String,
    pub threshold: i64,
    pub reward_points: i64,
    pub title_code: Option<String>,
    pub title_name: Option<String>,
    pub hidden: bool,
}

#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &impl ConnectionTrait,
    c: AchievementChange,
    now: DateTime<Utc>,
) -> AppResult<achievement::Model> {
    let code = c.code.trim().to_ascii_lowercase();
    if !crate::input::is_code(&code) {
        return Err(AppError::validation(
            "code",
            "code is 1 to 64 of a-z, 0-9, '_' or '.'",
        ));
    }
    if !rules::known_metric(c.metric.trim()) {
        return Err(AppError::validation(
            "metric",
            format!("metric is one of {}", rules::METRICS.join(", ")),
        ));
    }
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 64 characters",
        ));
    }
    crate::input::bounded("threshold", c.threshold, crate::input::TOTAL)?;
    if !(0..=100_000).contains(&c.reward_points) {
        return Err(AppError::validation(
            "rewardPoints",
            "rewardPoints must be 0 to 100,000",
        ));
    }
    let title_code = c
        .title_code
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    let title_name = c
        .title_name
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if title_code.is_some() != title_name.is_some()
        || title_code
            .as_deref()
            .is_some_and(|t| !crate::input::is_code(t))
    {
        return Err(AppError::validation(
            "titleCode",
            "a title needs both a code (a-z, 0-9, '_') and a name",
        ));
    }
    let existing = achievement::Entity::find()
        .filter(achievement::Column::Code.eq(&code))
        .one(db)
        .await?;
    let is_new = existing.is_none();
    let mut a: achievement::ActiveModel = existing.map(Into::into).unwrap_or_default();
    if is_new {
        a.unlocked_count = Set(0);
    }
    a.code = Set(code);
    a.name = Set(name.to_string());
    a.description = Set(c.description.trim().chars().take(255).collect());
    a.category = Set(c.category.trim().chars().take(32).collect());
    a.icon_url = Set(c.icon_url.filter(|u| !u.trim().is_empty()));
    a.metric = Set(c.metric.trim().to_string());
    a.threshold = Set(c.threshold);
    a.reward_points = Set(c.reward_points);
    a.title_code = Set(title_code);
    a.title_name = Set(title_name);
    a.hidden = Set(c.hidden);
    a.updated_at = Set(now);
    Ok(if is_new {
        a.insert(db).await?
    } else {
        a.update(db).await?
    })
}

#[tracing::instrument(skip_all)]
pub async fn by_codes(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> AppResult<Vec<achievement::Model>> {
    let rows = achievement::Entity::find()
        .filter(achievement::Column::Code.is_in(codes.iter().cloned()))
        .all(db)
        .await?;
    // In the order asked for.
    Ok(codes
        .iter()
        .filter_map(|c| rows.iter().find(|a| &a.code == c).cloned())
        .collect())
}
