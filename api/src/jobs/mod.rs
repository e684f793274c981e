//! Scheduled jobs: a timer in every instance, but each job runs on one instance at a time and
//! once per `JOB_INTERVAL` across the fleet (see `lease`); and on demand through the admin
//! `runJob`. Jobs that change many rows work in small id-ordered batches (`crate::batch`), so
//! they neither deadlock with members' requests nor lose work when stopped.
//!
//! Part of the composition root: it may call any module's job entry point. Owns: job leases.

pub mod lease;

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Duration, Utc};

use crate::auth::RoleGuard;
use crate::auth::rules::OPERATORS;
use crate::batch::{Batches, DEFAULT_BATCH_SIZE};
use crate::context::ContextExt;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::{achievement, blindbox, mall, member, points};

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
    /// Check every ledger invariant (as `ledgerAudit`) and export the result to `/metrics`;
    /// daily. `affected` is the number of members that break one.
    AuditLedger,
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
        JobName::AuditLedger,
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
            JobName::AuditLedger => "audit_ledger",
        }
    }

    /// How often the scheduler runs it: every `JOB_INTERVAL`; the audit, which reads the whole
    /// ledger, at most daily.
    pub fn period(self, interval: Duration) -> Duration {
        match self {
            JobName::AuditLedger => interval.max(Duration::days(1)),
            _ => interval,
        }
    }
}

/// Runs the ledger audit and exports its result.
async fn audit_ledger(app: &AppState, now: DateTime<Utc>) -> AppResult<u64> {
    use crate::metrics::names;
    let report = points::audit(&app.db).await?;
    let violations = report.violations.len() as u64;
    metrics::gauge!(names::LEDGER_AUDIT_OK).set(if violations == 0 { 1.0 } else { 0.0 });
    metrics::gauge!(names::LEDGER_AUDIT_VIOLATIONS).set(violations as f64);
    metrics::gauge!(names::LEDGER_AUDIT_LAST_RUN).set(crate::metrics::unix_seconds(now));
    if violations > 0 {
        tracing::error!(
            violations,
            "the ledger audit found members whose points break an invariant; see ledgerAudit"
        );
    }
    Ok(violations)
}

pub struct JobReport {
    pub name: JobName,
    pub affected: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// Runs one job now, at `now`; CONFLICT if another run holds its lease.
pub async fn run(app: &AppState, name: JobName, now: DateTime<Utc>) -> AppResult<JobReport> {
    let Some(lease) = lease::acquire(app, name.key(), now).await? else {
        return Err(AppError::Conflict(format!(
            "{} is already running",
            name.key()
        )));
    };
    run_holding(app, name, now, lease).await
}

/// The scheduler's run: none when another instance holds the job or ran it less than `every`
/// ago.
pub async fn run_if_due(
    app: &AppState,
    name: JobName,
    now: DateTime<Utc>,
    every: Duration,
) -> AppResult<Option<JobReport>> {
    let Some(lease) = lease::acquire(app, name.key(), now).await? else {
        return Ok(None);
    };
    // Read under the lease: a run that finished elsewhere has recorded its time by now.
    let last = match lease::last_run(app, name.key()).await {
        Ok(last) => last,
        Err(e) => {
            lease.finish(app, None).await.ok();
            return Err(e);
        }
    };
    if let Some(last) = last {
        metrics::gauge!(crate::metrics::names::JOB_LAST_RUN, "job" => name.key())
            .set(crate::metrics::unix_seconds(last));
    }
    if last.is_some_and(|last| now - last < every && now >= last) {
        lease.finish(app, None).await?;
        return Ok(None);
    }
    run_holding(app, name, now, lease).await.map(Some)
}

async fn run_holding(
    app: &AppState,
    name: JobName,
    now: DateTime<Utc>,
    lease: lease::Lease,
) -> AppResult<JobReport> {
    let started = std::time::Instant::now();
    let batches = Batches::new(DEFAULT_BATCH_SIZE, app.shutdown.clone());
    let outcome = crate::metrics::collecting(async {
        match name {
            JobName::ExpirePoints => points::expire_due(&app.db, now, &batches).await,
            JobName::EvaluateTiers => member::evaluate_tiers(&app.db, now, &batches).await,
            JobName::BirthdayRewards => {
                member::give_birthday_gifts(&app.db, &app.settings, now, &batches).await
            }
            JobName::RefreshRfm => member::refresh_rfm(&app.db, now, &batches).await,
            JobName::CancelUnpaidOrders => mall::cancel_unpaid_orders(app, now).await,
            JobName::ExpireCrowdfunds => mall::expire_crowdfunds(&app.db, now).await,
            JobName::BackfillAchievements => {
                achievement::backfill(&app.db, &app.settings, now).await
            }
            JobName::RotateBlindBoxSeeds => {
                blindbox::rotate_due_seeds(&app.db, app.settings.blindbox.seed_rotation, now).await
            }
            JobName::AuditLedger => audit_ledger(app, now).await,
        }
    })
    .await;
    // A run cut short by shutdown or an error is not a run: the next tick carries on.
    let completed = outcome.is_ok() && !app.shutdown.is_cancelled();
    if let Err(e) = lease.finish(app, completed.then_some(now)).await {
        tracing::warn!(error = %e, job = name.key(), "giving the job's lease back failed; it expires on its own");
    }
    record_run(name, &outcome, completed, started.elapsed(), now);
    let affected = outcome?;
    let elapsed = Duration::from_std(started.elapsed()).unwrap_or_default();
    Ok(JobReport {
        name,
        affected,
        started_at: now,
        finished_at: now + elapsed,
    })
}

fn record_run(
    name: JobName,
    outcome: &AppResult<u64>,
    completed: bool,
    took: std::time::Duration,
    now: DateTime<Utc>,
) {
    use crate::metrics::names;
    let job = name.key();
    let result = match outcome {
        Ok(_) if completed => "ok",
        Ok(_) => "interrupted",
        Err(_) => "failed",
    };
    metrics::counter!(names::JOB_RUNS, "job" => job, "outcome" => result).increment(1);
    metrics::histogram!(names::JOB_SECONDS, "job" => job).record(took.as_secs_f64());
    if let Ok(rows) = outcome {
        metrics::counter!(names::JOB_ROWS, "job" => job).increment(*rows);
    }
    if completed {
        metrics::gauge!(names::JOB_LAST_RUN, "job" => job).set(crate::metrics::unix_seconds(now));
    }
}

/// Runs every due job each `JOB_INTERVAL`, on the system clock, until the process stops. A job
/// batch that has started finishes; nothing starts after `shutdown` is cancelled.
pub fn spawn_scheduler(app: AppState) -> tokio::task::JoinHandle<()> {
    let every = app
        .settings
        .jobs
        .interval
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(3600));
    let interval = Duration::from_std(every).unwrap_or(Duration::hours(1));
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
                let period = job.period(interval);
                metrics::gauge!(crate::metrics::names::JOB_INTERVAL, "job" => job.key())
                    .set(period.num_seconds() as f64);
                match run_if_due(&app, job, app.clock.now(), period).await {
                    Ok(Some(report)) => {
                        tracing::info!(job = job.key(), affected = report.affected, "job done")
                    }
                    Ok(None) => tracing::debug!(job = job.key(), "job ran or runs elsewhere"),
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
