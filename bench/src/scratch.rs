//! Scratch databases for the benchmark and the soak: a temporary SQLite file, or a PostgreSQL or
//! MariaDB database whose name carries a random suffix (so two runs on one server never collide),
//! dropped again by `Scratch::drop_database`.

use sea_orm::{ConnectionTrait, Database};

/// The databases a run can use.
pub const KINDS: [&str; 3] = ["sqlite", "postgres", "mysql"];

/// A scratch database and the server settings that point at it.
pub struct Scratch {
    pub kind: String,
    pub env: Vec<(String, String)>,
    pub database_url: String,
    /// The maintenance URL and the database name to drop at the end (not for SQLite).
    drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Creates the database `kind` (sqlite, postgres or mysql; the last two with Redis) named
/// `{prefix}_{random}`, with the settings a server under test needs (APP_ENV=test, so
/// `X-Test-Now` moves its clock; no demo data; no scheduled jobs).
pub async fn create(kind: &str, prefix: &str) -> Result<Scratch, String> {
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut env: Vec<(String, String)> = [
        ("APP_ENV", "test"),
        ("SEED_DEMO_DATA", "false"),
        ("JOBS_ENABLED", "false"),
        ("RUST_LOG", "warn"),
        ("GRAPHIQL", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("JWT_SECRET".into(), secret));
    if kind == "sqlite" {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = format!("sqlite://{}/{prefix}.db?mode=rwc", dir.path().display());
        env.push(("DATABASE_URL".into(), url.clone()));
        return Ok(Scratch {
            kind: kind.into(),
            env,
            database_url: url,
            drop: None,
            _dir: Some(dir),
        });
    }
    let (admin_url, options) = match kind {
        "postgres" => (
            env_or(
                "BENCH_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            // Loopback: no TLS, as PostGraphile's default connection has none either.
            "?sslmode=disable",
        ),
        "mysql" => (
            env_or("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
            "",
        ),
        other => return Err(format!("no scratch database of kind {other:?}")),
    };
    let name = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let conn = Database::connect(&admin_url)
        .await
        .map_err(|e| format!("connecting to {admin_url}: {e}"))?;
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("creating {name}: {e}"))?;
    let _ = conn.close().await;
    let base = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(b, _)| b.to_string())
        .ok_or_else(|| format!("{admin_url} has no database name"))?;
    let url = format!("{base}/{name}{options}");
    env.push(("DATABASE_URL".into(), url.clone()));
    env.push((
        "REDIS_URL".into(),
        env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
    ));
    env.push((
        "REDIS_KEY_PREFIX".into(),
        format!("{prefix}:{}:", uuid::Uuid::new_v4().simple()),
    ));
    Ok(Scratch {
        kind: kind.into(),
        env,
        database_url: url,
        drop: Some((admin_url, name)),
        _dir: None,
    })
}

impl Scratch {
    /// Drops the scratch database (call it once the server and every connection to it are
    /// closed; PostgreSQL's FORCE ends any that are not). SQLite's file goes with the value.
    pub async fn drop_database(&self) -> Result<(), String> {
        let Some((admin_url, name)) = &self.drop else {
            return Ok(());
        };
        let conn = Database::connect(admin_url)
            .await
            .map_err(|e| format!("connecting to {admin_url}: {e}"))?;
        let sql = if self.kind == "postgres" {
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        } else {
            format!("DROP DATABASE IF EXISTS {name}")
        };
        let dropped = conn
            .execute_unprepared(&sql)
            .await
            .map(|_| ())
            .map_err(|e| format!("dropping {name}: {e}"));
        let _ = conn.close().await;
        dropped
    }

    /// Sets (or replaces) a server setting.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
    }
}
