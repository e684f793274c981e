//! One holder per job at a time, across instances: a Redis key set with NX and a TTL, or a row
//! in `job_lease` when there is no Redis. The TTL frees a lock whose holder died.

use chrono::{DateTime, Duration, Utc};
use entity::job_lease;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Takes the lock for `name`; false when another holder has it.
pub async fn acquire(
    app: &AppState,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    if let Some(redis) = &app.redis {
        let mut con = redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}job:{name}", app.settings.redis_key_prefix))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl.num_milliseconds())
            .query_async(&mut con)
            .await?;
        return Ok(set.is_some());
    }
    let inserted = job_lease::ActiveModel {
        name: Set(name.to_string()),
        holder: Set(holder.to_string()),
        expires_at: Set(now + ttl),
    }
    .insert(&app.db)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if AppError::is_unique_violation(&e) => {
            // Someone holds it; take it over only if their lease ran out.
            let taken = job_lease::Entity::update_many()
                .col_expr(job_lease::Column::Holder, Expr::value(holder))
                .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + ttl))
                .filter(job_lease::Column::Name.eq(name))
                .filter(job_lease::Column::ExpiresAt.lt(now))
                .exec(&app.db)
                .await?;
            Ok(taken.rows_affected == 1)
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives the lock back, if this holder still has it.
pub async fn release(app: &AppState, name: &str, holder: &str) -> AppResult<()> {
    if let Some(redis) = &app.redis {
        let mut con = redis.clone();
        redis::Script::new(RELEASE_SCRIPT)
            .key(format!("{}job:{name}", app.settings.redis_key_prefix))
            .arg(holder)
            .invoke_async::<i64>(&mut con)
            .await?;
        return Ok(());
    }
    job_lease::Entity::delete_many()
        .filter(job_lease::Column::Name.eq(name))
        .filter(job_lease::Column::Holder.eq(holder))
        .exec(&app.db)
        .await?;
    Ok(())
}
