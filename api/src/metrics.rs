//! Prometheus metrics, served at `/metrics` (README "Observability"): traffic, errors and
//! latency per operation, anti-cheat decisions, points flow, jobs, pool, Redis and caches. Never
//! anything about a member: no label carries an id, a name or a value a member chose, and the one
//! label a client names (the operation) is capped.
//!
//! Recorded through the `metrics` facade from any module (`metrics::counter!(names::X)`); one
//! recorder per process, installed by `install`. Effects of a use case are counted when its
//! transaction commits (`on_commit`), so a rolled-back run counts nothing.
//!
//! Owns: metric names, label capping, the commit-time buffer. May call: nothing but `state`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Every metric's name, so the dashboard, the alerts and the tests have one list to check.
pub mod names {
    pub const REQUESTS: &str = "loyalty_graphql_requests_total";
    pub const REQUEST_SECONDS: &str = "loyalty_graphql_request_duration_seconds";
    pub const ERRORS: &str = "loyalty_graphql_errors_total";
    pub const ROOT_FIELDS: &str = "loyalty_graphql_root_fields_total";
    pub const ROOT_FIELD_ERRORS: &str = "loyalty_graphql_root_field_errors_total";
    pub const ROOT_FIELD_SECONDS: &str = "loyalty_graphql_root_field_duration_seconds";
    pub const GATE: &str = "loyalty_gate_decisions_total";
    pub const POINTS: &str = "loyalty_points_total";
    pub const REDEMPTIONS: &str = "loyalty_redemptions_total";
    pub const SOLD_OUT: &str = "loyalty_sold_out_refusals_total";
    pub const DRAWS: &str = "loyalty_draws_total";
    pub const CHECKINS: &str = "loyalty_checkins_total";
    pub const JOB_RUNS: &str = "loyalty_job_runs_total";
    pub const JOB_SECONDS: &str = "loyalty_job_duration_seconds";
    pub const JOB_ROWS: &str = "loyalty_job_rows_affected_total";
    pub const JOB_LAST_RUN: &str = "loyalty_job_last_run_timestamp_seconds";
    pub const JOB_INTERVAL: &str = "loyalty_job_interval_seconds";
    pub const LEASE_TAKEOVERS: &str = "loyalty_job_lease_takeovers_total";
    pub const LEDGER_AUDIT_OK: &str = "loyalty_ledger_audit_ok";
    pub const LEDGER_AUDIT_VIOLATIONS: &str = "loyalty_ledger_audit_violations";
    pub const LEDGER_AUDIT_LAST_RUN: &str = "loyalty_ledger_audit_last_run_timestamp_seconds";
    pub const DB_POOL: &str = "loyalty_db_pool_connections";
    pub const DB_QUERY_SECONDS: &str = "loyalty_db_query_duration_seconds";
    pub const DB_QUERY_ERRORS: &str = "loyalty_db_query_errors_total";
    pub const REDIS_SECONDS: &str = "loyalty_redis_command_duration_seconds";
    pub const REDIS_ERRORS: &str = "loyalty_redis_command_errors_total";
    pub const CACHE_LOOKUPS: &str = "loyalty_cache_lookups_total";
    pub const CACHE_INVALIDATIONS: &str = "loyalty_cache_invalidations_total";
    pub const BUILD_INFO: &str = "loyalty_build_info";
    pub const START_TIME: &str = "loyalty_start_time_seconds";

    pub const ALL: &[&str] = &[
        REQUESTS,
        REQUEST_SECONDS,
        ERRORS,
        ROOT_FIELDS,
        ROOT_FIELD_ERRORS,
        ROOT_FIELD_SECONDS,
        GATE,
        POINTS,
        REDEMPTIONS,
        SOLD_OUT,
        DRAWS,
        CHECKINS,
        JOB_RUNS,
        JOB_SECONDS,
        JOB_ROWS,
        JOB_LAST_RUN,
        JOB_INTERVAL,
        LEASE_TAKEOVERS,
        LEDGER_AUDIT_OK,
        LEDGER_AUDIT_VIOLATIONS,
        LEDGER_AUDIT_LAST_RUN,
        DB_POOL,
        DB_QUERY_SECONDS,
        DB_QUERY_ERRORS,
        REDIS_SECONDS,
        REDIS_ERRORS,
        CACHE_LOOKUPS,
        CACHE_INVALIDATIONS,
        BUILD_INFO,
        START_TIME,
    ];
}

/// Latency buckets (seconds) for requests, queries and Redis commands.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Jobs run for seconds to minutes.
const JOB_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls, from more apps in one test process, share
/// it). `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(names::JOB_SECONDS.into()), JOB_BUCKETS)
                .and_then(|b| b.set_buckets(LATENCY_BUCKETS));
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::error!(error = %e, "metrics buckets refused; /metrics is off");
                    return None;
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics is off");
                return None;
            }
            describe();
            metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => build_commit())
                .set(1.0);
            metrics::gauge!(names::START_TIME).set(unix_seconds(chrono::Utc::now()));
            Some(handle)
        })
        .clone()
}

/// The commit the binary was built from (`LOYALTY_COMMIT` at build time, set by `build.rs`).
pub fn build_commit() -> &'static str {
    option_env!("LOYALTY_COMMIT").unwrap_or("unknown")
}

pub fn unix_seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(REQUESTS, "GraphQL requests by endpoint and operation name");
    describe_histogram!(REQUEST_SECONDS, Unit::Seconds, "GraphQL request latency");
    describe_counter!(ERRORS, "GraphQL errors by extensions.code");
    describe_counter!(ROOT_FIELDS, "Root fields selected, by field");
    describe_counter!(
        ROOT_FIELD_ERRORS,
        "Errors by the root field they came from and code"
    );
    describe_histogram!(
        ROOT_FIELD_SECONDS,
        Unit::Seconds,
        "Latency of requests, by each root field they selected"
    );
    describe_counter!(GATE, "Anti-cheat gate decisions by action and outcome");
    describe_counter!(
        POINTS,
        "Points moved, by flow and ledger kind (committed only)"
    );
    describe_counter!(
        REDEMPTIONS,
        "Mall redemptions by item kind (committed only)"
    );
    describe_counter!(
        SOLD_OUT,
        "Redemptions refused because the item was sold out"
    );
    describe_counter!(DRAWS, "Blind-box prizes drawn, by rarity (committed only)");
    describe_counter!(CHECKINS, "Check-ins by kind (committed only)");
    describe_counter!(JOB_RUNS, "Job runs by job and outcome");
    describe_histogram!(JOB_SECONDS, Unit::Seconds, "Job run time");
    describe_counter!(JOB_ROWS, "Rows a job changed");
    describe_gauge!(
        JOB_LAST_RUN,
        "When the job last completed anywhere in the fleet"
    );
    describe_gauge!(
        JOB_INTERVAL,
        "How often the job is due (JOB_INTERVAL, or its own period)"
    );
    describe_counter!(
        LEASE_TAKEOVERS,
        "Job leases taken over from a holder that stopped"
    );
    describe_gauge!(
        LEDGER_AUDIT_OK,
        "1 if the last ledger audit found every invariant held"
    );
    describe_gauge!(
        LEDGER_AUDIT_VIOLATIONS,
        "Members the last ledger audit flagged"
    );
    describe_gauge!(LEDGER_AUDIT_LAST_RUN, "When the last ledger audit ran");
    describe_gauge!(
        DB_POOL,
        "Database pool connections by state (max, open, idle, in_use)"
    );
    describe_histogram!(
        DB_QUERY_SECONDS,
        Unit::Seconds,
        "Database statement latency"
    );
    describe_counter!(DB_QUERY_ERRORS, "Database statements that failed");
    describe_histogram!(REDIS_SECONDS, Unit::Seconds, "Redis command latency");
    describe_counter!(REDIS_ERRORS, "Redis commands that failed");
    describe_counter!(
        CACHE_LOOKUPS,
        "In-process cache lookups by cache and result"
    );
    describe_counter!(
        CACHE_INVALIDATIONS,
        "Cache invalidations by cache and origin"
    );
    describe_gauge!(BUILD_INFO, "Version and commit of the running binary");
    describe_gauge!(START_TIME, "When this process started");
}

/// The text `/metrics` answers, with the pool's gauges read now.
pub fn render(app: &AppState, handle: &PrometheusHandle) -> String {
    let pool = pool_state(app);
    for (state, value) in [
        ("max", pool.max),
        ("open", pool.open),
        ("idle", pool.idle),
        ("in_use", pool.open.saturating_sub(pool.idle)),
    ] {
        metrics::gauge!(names::DB_POOL, "state" => state).set(value as f64);
    }
    handle.run_upkeep();
    handle.render()
}

struct PoolState {
    max: u32,
    open: u32,
    idle: u32,
}

fn pool_state(app: &AppState) -> PoolState {
    use sea_orm::DbBackend;
    let max = if app.settings.is_sqlite() {
        1
    } else {
        app.settings.database_max_connections
    };
    let (open, idle) = match app.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = app.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        DbBackend::MySql => {
            let pool = app.db.get_mysql_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        DbBackend::Sqlite => {
            let pool = app.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        #[allow(unreachable_patterns)]
        _ => (0, 0),
    };
    PoolState { max, open, idle }
}

/// Times a database statement (called by the pool's statement hook).
pub fn record_statement(info: &sea_orm::metric::Info<'_>) {
    let verb = statement_verb(&info.statement.sql);
    metrics::histogram!(names::DB_QUERY_SECONDS, "statement" => verb)
        .record(info.elapsed.as_secs_f64());
    if info.failed {
        metrics::counter!(names::DB_QUERY_ERRORS, "statement" => verb).increment(1);
    }
}

/// The statement's kind, a bounded label.
fn statement_verb(sql: &str) -> &'static str {
    let first = sql
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    const VERBS: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK",
    ];
    VERBS
        .iter()
        .find(|v| first.eq_ignore_ascii_case(v))
        .copied()
        .unwrap_or("OTHER")
}

// ---- Operation names: the one label a client chooses ----

/// Distinct operation names one process labels before it counts the rest as `(other)`.
pub const MAX_OPERATION_LABELS: usize = 200;
pub const UNNAMED: &str = "(unnamed)";
pub const OTHER: &str = "(other)";

static OPERATIONS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The label for an operation name: the name itself while the set of names seen is below the cap
/// (and the name is a GraphQL name of at most 64 characters), `(other)` beyond it, `(unnamed)`
/// for an anonymous operation. A client inventing names cannot grow the series without bound.
pub fn operation_label(name: Option<&str>) -> String {
    let Some(name) = name else {
        return UNNAMED.to_string();
    };
    if !is_graphql_name(name) {
        return OTHER.to_string();
    }
    let Ok(mut seen) = OPERATIONS.lock() else {
        return OTHER.to_string();
    };
    let seen = seen.get_or_insert_with(HashSet::new);
    if seen.contains(name) {
        return name.to_string();
    }
    if seen.len() >= MAX_OPERATION_LABELS {
        return OTHER.to_string();
    }
    seen.insert(name.to_string());
    name.to_string()
}

fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

// ---- Counting at commit ----

type Pending = RefCell<Vec<Box<dyn FnOnce() + Send>>>;

tokio::task_local! {
    static PENDING: Pending;
}

/// Counts `record` once the transaction it belongs to commits (`committed`). Outside a
/// `collecting` scope (a tool, a unit test) it counts at once.
pub fn on_commit(record: impl FnOnce() + Send + 'static) {
    let mut record = Some(record);
    let _in_scope = PENDING.try_with(|pending| {
        if let Some(r) = record.take() {
            pending.borrow_mut().push(Box::new(r));
        }
    });
    if let Some(r) = record {
        r();
    }
}

/// Call right after a commit: counts what the transaction queued.
pub fn committed() {
    let records = PENDING
        .try_with(|pending| std::mem::take(&mut *pending.borrow_mut()))
        .unwrap_or_default();
    records.into_iter().for_each(|record| record());
}

/// Call after a rollback (or before retrying a failed attempt): forgets what it queued.
pub fn rolled_back() {
    let _in_scope = PENDING.try_with(|pending| pending.borrow_mut().clear());
}

/// Runs `work` (a request, a job run) with a queue for `on_commit`; what is still queued when it
/// ends never committed, and is not counted.
pub async fn collecting<T>(work: impl Future<Output = T>) -> T {
    PENDING.scope(RefCell::new(Vec::new()), work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_label_set_stays_bounded_whatever_names_clients_send() {
        let mut labels = HashSet::new();
        for i in 0..1_000 {
            labels.insert(operation_label(Some(&format!("Random{i}"))));
        }
        labels.insert(operation_label(Some("not a name")));
        labels.insert(operation_label(None));
        // This test may share the process's set with others; the cap holds regardless.
        assert!(labels.len() <= MAX_OPERATION_LABELS + 2, "{}", labels.len());
        assert!(labels.contains(OTHER));
        assert!(labels.contains(UNNAMED));
    }

    #[test]
    fn statements_are_labelled_by_their_verb_only() {
        assert_eq!(statement_verb("  select * from member"), "SELECT");
        assert_eq!(statement_verb("WITH x AS (select 1) select 1"), "WITH");
        assert_eq!(statement_verb("SAVEPOINT a"), "OTHER");
    }

    #[tokio::test]
    async fn what_a_use_case_counted_is_recorded_only_when_it_commits() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let counted = Arc::new(AtomicU32::new(0));
        let count = |c: &Arc<AtomicU32>| {
            let c = c.clone();
            move || {
                c.fetch_add(1, Ordering::Relaxed);
            }
        };
        collecting(async {
            // A rolled-back attempt, a committed one, and one left hanging.
            on_commit(count(&counted));
            rolled_back();
            assert_eq!(counted.load(Ordering::Relaxed), 0);
            on_commit(count(&counted));
            on_commit(count(&counted));
            committed();
            assert_eq!(counted.load(Ordering::Relaxed), 2);
            on_commit(count(&counted));
        })
        .await;
        assert_eq!(counted.load(Ordering::Relaxed), 2);
        // Outside a request or a job: at once.
        on_commit(count(&counted));
        assert_eq!(counted.load(Ordering::Relaxed), 3);
    }
}
