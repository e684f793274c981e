//! Shop-wide rules an operator edits at run time (earning rules, check-in rules), stored as JSON
//! under a key in `shop_setting`.

use chrono::{DateTime, Utc};
use entity::shop_setting;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

/// The stored value, or `None` if the operator never saved one.
pub async fn get<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    key: &str,
) -> AppResult<Option<T>> {
    let Some(row) = shop_setting::Entity::find_by_id(key.to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_str(&row.value)
        .map(Some)
        .map_err(|e| AppError::internal(format!("shop setting {key}: {e}")))
}

pub async fn put<T: Serialize>(
    db: &impl ConnectionTrait,
    key: &str,
    value: &T,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let json = serde_json::to_string(value).map_err(|e| AppError::internal(e.to_string()))?;
    match shop_setting::Entity::find_by_id(key.to_string())
        .one(db)
        .await?
    {
        Some(row) => {
            let mut active: shop_setting::ActiveModel = row.into();
            active.value = Set(json);
            active.updated_at = Set(now);
            active.update(db).await?;
        }
        None => {
            shop_setting::ActiveModel {
                key: Set(key.to_string()),
                value: Set(json),
                updated_at: Set(now),
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}
