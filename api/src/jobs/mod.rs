//! Scheduled jobs: run on a timer in every instance, but by one instance at a time (see `lock`),
//! and on demand through the admin `runJob`.
//!
//! Part of the composition root: it may call any module's job entry point. Owns: job leases.

mod lock;

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

use crate::auth::RoleGuard;
use crate::auth::rules::OPERATORS;
use crate::context::ContextExt;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::{achievement, blindbox, mall, member, points};

/// A job still running after this long is presumed dead and its lock expires.
const LOCK_TTL_MINUTES: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum JobName {
    /// Expire lots whose time has come (one EXPIRE entry per lot).
    ExpirePoints,
    /// Re-evaluate tiers whose validity has ended (down at most one tier, or renewed).
    EvaluateTiers,
    /// This year's birthday gifts for members whose birthday month it is.
    BirthdayRewards,
    /// Score every member into the RFM segments.
    RefreshRfm,
    /// Cancel points+cash orders not paid in time; points and stock come back.
    CancelUnpaidOrders,
    /// Close crowdfunds past their deadline and refund every contribution.
    ExpireCrowdfunds,
    /// Unlock achievements members already meet (after a new one is defined).
    BackfillAchievements,
    /// Reveal and replace blind-box seeds older than `BLINDBOX_SEED_ROTATION`.
    RotateBlindBoxSeeds,
}

impl JobName {
    pub const ALL: &[JobName] = &[
        JobName::ExpirePoints,
        JobName::EvaluateTiers,
        JobName::BirthdayRewards,
        JobName::RefreshRfm,
        JobName::CancelUnpaidOrders,
        JobName::ExpireCrowdfunds,
        JobName::BackfillAchievements,
        JobName::RotateBlindBoxSeeds,
    ];

    fn key(self) -> &'static str {
        match self {
            JobName::ExpirePoints => "expire_points",
            JobName::EvaluateTiers => "evaluate_tiers",
            JobName::BirthdayRewards => "birthday_rewards",
            JobName::RefreshRfm => "refresh_rfm",
            JobName::CancelUnpaidOrders => "cancel_unpaid_orders",
            JobName::ExpireCrowdfunds => "expire_crowdfunds",
            JobName::BackfillAchievements => "backfill_achievements",
            JobName::RotateBlindBoxSeeds => "rotate_blind_box_seeds",
        }
    }
}

pub struct JobReport {
    pub name: JobName,
    pub affected: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// Runs one job now, at `now`; CONFLICT if another run holds its lock.
pub async fn run(app: &AppState, name: JobName, now: DateTime<Utc>) -> AppResult<JobReport> {
    let holder = {
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        hex::encode(id)
    };
    if !lock::acquire(
        app,
        name.key(),
        &holder,
        Duration::minutes(LOCK_TTL_MINUTES),
        now,
    )
    .await?
    {
        return Err(AppError::Conflict(format!(
            "{} is already running",
            name.key()
        )));
    }
    let started = std::time::Instant::now();
    let outcome = match name {
        JobName::ExpirePoints => points::expire_due(&app.db, now).await,
        JobName::EvaluateTiers => member::evaluate_tiers(&app.db, now).await,
        JobName::BirthdayRewards => member::give_birthday_gifts(&app.db, &app.settings, now).await,
        JobName::RefreshRfm => member::refresh_rfm(&app.db, now).await,
        JobName::CancelUnpaidOrders => mall::cancel_unpaid_orders(&app.db, now).await,
        JobName::ExpireCrowdfunds => mall::expire_crowdfunds(&app.db, now).await,
        JobName::BackfillAchievements => achievement::backfill(&app.db, &app.settings, now).await,
        JobName::RotateBlindBoxSeeds => {
            blindbox::rotate_due_seeds(&app.db, app.settings.blindbox.seed_rotation, now).await
        }
    };
    if let Err(e) = lock::release(app, name.key(), &holder).await {
        tracing::warn!(error = %e, job = name.key(), "releasing the job lock failed; it expires on its own");
    }
    let affected = outcome?;
    let elapsed = Duration::from_std(started.elapsed()).unwrap_or_default();
    Ok(JobReport {
        name,
        affected,
        started_at: now,
        finished_at: now + elapsed,
    })
}

/// Runs every job each `JOB_INTERVAL`, on the system clock, until the process stops. A job
/// that has started finishes; none starts after `shutdown` is cancelled.
pub fn spawn_scheduler(app: AppState) -> tokio::task::JoinHandle<()> {
    let every = app
        .settings
        .jobs
        .interval
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = app.shutdown.cancelled() => return,
            }
            for &job in JobName::ALL {
                if app.shutdown.is_cancelled() {
                    return;
                }
                match run(&app, job, app.clock.now()).await {
                    Ok(report) => {
                        tracing::info!(job = job.key(), affected = report.affected, "job done")
                    }
                    Err(AppError::Conflict(_)) => {
                        tracing::debug!(job = job.key(), "job running elsewhere")
                    }
                    Err(e) => tracing::error!(job = job.key(), error = %e, "job failed"),
                }
            }
        }
    })
}

#[derive(SimpleObject)]
pub struct JobRun {
    name: JobName,
    affected: i64,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct JobsAdminMutation;

#[Object]
impl JobsAdminMutation {
    /// Run a scheduled job now (they also run on their own schedule).
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn run_job(&self, ctx: &Context<'_>, name: JobName) -> async_graphql::Result<JobRun> {
        let report = run(ctx.app()?, name, ctx.now()?).await?;
        Ok(JobRun {
            name: report.name,
            affected: report.affected as i64,
            started_at: report.started_at,
            finished_at: report.finished_at,
        })
    }
}
