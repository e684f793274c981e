//! One holder per job at a time, across instances, and one run per interval across the fleet.
//!
//! A lease is short (`LEASE_TTL`) and renewed while the job runs, so a holder killed with -9
//! frees the job within one TTL instead of blocking it for the length of a job. Beside the lease
//! sits the time the job last ran: the scheduler on every instance takes the lease, sees the job
//! ran less than an interval ago and gives it back, so a job runs once per interval, not once per
//! instance. With Redis both are keys under one hash tag (`{job:<name>}`, one cluster slot);
//! without Redis, a row of `job_lease`.

use chrono::{DateTime, Duration, Utc};
use entity::job_lease;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};
use tokio::task::JoinHandle;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How long a lease lasts without renewal; renewed every third of it.
pub const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Takes the lease if it is free: 1, or 2 when the last holder never gave it back (it stopped
/// without finishing and its lease expired: a takeover); 0 if another holder has it.
const ACQUIRE_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local previous = redis.call('GET', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  if previous then return 2 end
  return 1
end
return 0
";

/// Gives the lease back and records when the run started, if this holder still has it.
const FINISH_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
  redis.call('DEL', KEYS[3])
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// How long the marker of a holder that never gave its lease back is kept.
const HELD_MARKER_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn lease_key(app: &AppState, name: &str) -> String {
    format!("{}{{job:{name}}}:lease", app.settings.redis_key_prefix)
}

fn last_run_key(app: &AppState, name: &str) -> String {
    format!("{}{{job:{name}}}:last", app.settings.redis_key_prefix)
}

fn held_key(app: &AppState, name: &str) -> String {
    format!("{}{{job:{name}}}:held", app.settings.redis_key_prefix)
}

fn ttl() -> Duration {
    Duration::from_std(LEASE_TTL).unwrap_or(Duration::seconds(30))
}

/// A held lease; renewed in the background until `finish`.
pub struct Lease {
    name: String,
    holder: String,
    renewer: JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Takes the lease for `name`; `None` when another holder has it. `now` is the job's clock
/// (the rows' times without Redis), the renewal runs on the system clock.
pub async fn acquire(app: &AppState, name: &str, now: DateTime<Utc>) -> AppResult<Option<Lease>> {
    let holder = crate::auth::rules::random_hex(8);
    let taken = match &app.redis {
        Some(redis) => {
            let mut con = redis.clone();
            let outcome: i64 = redis::Script::new(ACQUIRE_SCRIPT)
                .key(lease_key(app, name))
                .key(held_key(app, name))
                .arg(&holder)
                .arg(LEASE_TTL.as_millis() as u64)
                .arg(HELD_MARKER_TTL.as_millis() as u64)
                .invoke_async(&mut con)
                .await?;
            match outcome {
                0 => Taken::No,
                2 => Taken::Over,
                _ => Taken::Free,
            }
        }
        None => acquire_row(app, name, &holder, now).await?,
    };
    match taken {
        Taken::No => return Ok(None),
        Taken::Over => {
            tracing::warn!(
                job = name,
                "took over the job's lease from a holder that stopped without giving it back"
            );
            metrics::counter!(crate::metrics::names::LEASE_TAKEOVERS, "job" => name.to_string())
                .increment(1);
        }
        Taken::Free => {}
    }
    let renewer = tokio::spawn(renew_until_aborted(
        app.clone(),
        name.to_string(),
        holder.clone(),
        now,
    ));
    Ok(Some(Lease {
        name: name.to_string(),
        holder,
        renewer,
    }))
}

enum Taken {
    No,
    Free,
    /// From a holder that stopped without giving it back.
    Over,
}

async fn acquire_row(
    app: &AppState,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> AppResult<Taken> {
    let inserted = job_lease::ActiveModel {
        name: Set(name.to_string()),
        holder: Set(holder.to_string()),
        expires_at: Set(now + ttl()),
        last_run_at: Set(None),
    }
    .insert(&app.db)
    .await;
    match inserted {
        Ok(_) => Ok(Taken::Free),
        Err(e) if AppError::is_unique_violation(&e) => {
            // Free (given back), or its holder stopped renewing: take it over.
            let take = |condition: Condition| {
                job_lease::Entity::update_many()
                    .col_expr(job_lease::Column::Holder, Expr::value(holder))
                    .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + ttl()))
                    .filter(job_lease::Column::Name.eq(name))
                    .filter(condition)
                    .exec(&app.db)
            };
            if take(Condition::all().add(job_lease::Column::Holder.eq("")))
                .await?
                .rows_affected
                == 1
            {
                return Ok(Taken::Free);
            }
            let over = take(Condition::all().add(job_lease::Column::ExpiresAt.lt(now))).await?;
            Ok(if over.rows_affected == 1 {
                Taken::Over
            } else {
                Taken::No
            })
        }
        Err(e) => Err(e.into()),
    }
}

async fn renew_until_aborted(app: AppState, name: String, holder: String, started: DateTime<Utc>) {
    let since = std::time::Instant::now();
    loop {
        tokio::time::sleep(LEASE_TTL / 3).await;
        let renewed = match &app.redis {
            Some(redis) => {
                let mut con = redis.clone();
                redis::Script::new(RENEW_SCRIPT)
                    .key(lease_key(&app, &name))
                    .arg(&holder)
                    .arg(LEASE_TTL.as_millis() as u64)
                    .invoke_async::<i64>(&mut con)
                    .await
                    .map(|n| n == 1)
                    .map_err(AppError::from)
            }
            None => {
                let elapsed = Duration::from_std(since.elapsed()).unwrap_or_default();
                job_lease::Entity::update_many()
                    .col_expr(
                        job_lease::Column::ExpiresAt,
                        Expr::value(started + elapsed + ttl()),
                    )
                    .filter(job_lease::Column::Name.eq(name.as_str()))
                    .filter(job_lease::Column::Holder.eq(holder.as_str()))
                    .exec(&app.db)
                    .await
                    .map(|r| r.rows_affected == 1)
                    .map_err(AppError::from)
            }
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %name, "the job's lease was lost; another instance may run it too");
                return;
            }
            Err(e) => tracing::warn!(job = %name, error = %e, "renewing the job's lease failed"),
        }
    }
}

/// When the job last started a run that finished.
pub async fn last_run(app: &AppState, name: &str) -> AppResult<Option<DateTime<Utc>>> {
    match &app.redis {
        Some(redis) => {
            let mut con = redis.clone();
            let millis: Option<i64> = redis::cmd("GET")
                .arg(last_run_key(app, name))
                .query_async(&mut con)
                .await?;
            Ok(millis.and_then(DateTime::from_timestamp_millis))
        }
        None => Ok(job_lease::Entity::find_by_id(name.to_string())
            .one(&app.db)
            .await?
            .and_then(|row| row.last_run_at)),
    }
}

impl Lease {
    /// Gives the lease back; `ran_at` (the run's start) becomes the job's last run.
    pub async fn finish(self, app: &AppState, ran_at: Option<DateTime<Utc>>) -> AppResult<()> {
        self.renewer.abort();
        match &app.redis {
            Some(redis) => {
                let mut con = redis.clone();
                redis::Script::new(FINISH_SCRIPT)
                    .key(lease_key(app, &self.name))
                    .key(last_run_key(app, &self.name))
                    .key(held_key(app, &self.name))
                    .arg(&self.holder)
                    .arg(ran_at.map_or(String::new(), |t| t.timestamp_millis().to_string()))
                    .invoke_async::<i64>(&mut con)
                    .await?;
            }
            None => {
                let mut update = job_lease::Entity::update_many()
                    .col_expr(job_lease::Column::Holder, Expr::value(""));
                if let Some(ran_at) = ran_at {
                    update =
                        update.col_expr(job_lease::Column::LastRunAt, Expr::value(Some(ran_at)));
                }
                update
                    .filter(job_lease::Column::Name.eq(self.name.as_str()))
                    .filter(job_lease::Column::Holder.eq(self.holder.as_str()))
                    .exec(&app.db)
                    .await?;
            }
        }
        Ok(())
    }
}
