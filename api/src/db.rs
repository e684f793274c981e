//! Connecting to the database and bringing its schema up to date.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::Settings;

/// What the pool has run: every statement, through a transaction or not.
#[derive(Debug, Default)]
pub struct DbStats {
    statements: AtomicU64,
}

impl DbStats {
    /// Statements run since start-up.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn record(&self, info: &sea_orm::metric::Info<'_>) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        crate::metrics::record_statement(info);
    }
}

pub async fn connect(
    settings: &Settings,
    stats: Arc<DbStats>,
) -> Result<DatabaseConnection, DbErr> {
    if settings.is_sqlite() {
        ensure_sqlite_dir(&settings.database_url);
    }
    let mut opts = ConnectOptions::new(settings.database_url.clone());
    // No ping before every checkout: that was a round trip per query. A connection that died
    // fails its next query, and the pool replaces it.
    opts.acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .sqlx_logging(false);
    if settings.is_sqlite() {
        // One writer at a time is what SQLite can do; a single pooled connection turns
        // "database is locked" into a short wait for the pool instead.
        opts.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                // In WAL mode NORMAL still never corrupts the file and keeps every transaction
                // atomic; an OS crash or power cut (not an app crash) can lose the last commits.
                // FULL would fsync on every commit, which halves write throughput.
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
        });
    } else {
        opts.max_connections(settings.database_max_connections)
            .min_connections(1);
    }
    // InnoDB defaults to REPEATABLE READ, whose snapshot would let a transaction that waited for
    // a row lock read lots as they were before the wait, and whose gap locks turn concurrent
    // inserts into deadlocks. PostgreSQL's default, READ COMMITTED, is what the ledger assumes.
    opts.map_sqlx_mysql_pool_opts(|pool| {
        pool.after_connect(|conn, _meta| {
            Box::pin(async move {
                use sea_orm::sqlx::Executor;
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map(|_| ())
            })
        })
    });
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(move |info| stats.record(info));
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// `sqlite://data/loyalty.db?mode=rwc` creates the file but not its folder.
fn ensure_sqlite_dir(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not create the SQLite folder");
    }
}
