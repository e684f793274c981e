//! Black-box test harness: each test gets the real app on a random port, with its own database
//! and its own Redis key prefix, and talks GraphQL over HTTP like a front end does.
//!
//! - `TEST_DATABASE_URL` unset: a fresh SQLite file per test.
//! - `TEST_DATABASE_URL=postgres://…/postgres`: a database per test, cloned from a template
//!   migrated once per test process (`CREATE DATABASE … TEMPLATE …`).
//! - `TEST_DATABASE_URL=mysql://…/test`: a fresh database per test, migrated by the app
//!   (MySQL has no template databases; cloning would cost the same DDL).
//! - `REDIS_URL` set: the app uses Redis, with a key prefix of its own.
//! - `TEST_LOG` set: the app's logs are printed.

pub mod contract;

use std::collections::HashMap;
use std::sync::Mutex;

use api::auth::{AdminRole, create_admin};
use api::startup::{Application, Stopper};
use api::state::AppState;
use secrecy::SecretString;
use serde_json::{Value, json};

pub use api;

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    now: Mutex<Option<String>>,
    admins_created: Mutex<u32>,
    stopper: Stopper,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Declared last so it is dropped last: the app stops before its database goes.
    _database: TestDatabase,
}

/// A GraphQL answer: the HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data`, after asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "expected no errors, got {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, if any.
    pub fn error_code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn first_error(&self) -> &Value {
        &self.body["errors"][0]
    }

    /// Asserts the first error's code and returns the error.
    pub fn expect_error(&self, code: &str) -> &Value {
        assert_eq!(
            self.error_code(),
            Some(code),
            "expected {code}, got {}",
            self.body
        );
        self.first_error()
    }
}

/// Spawns the app with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after `customize` has changed the settings (as environment variables).
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        api::telemetry::init();
    }
    let database = TestDatabase::create().await;
    let mut env: HashMap<String, String> = [
        ("APP_ENV", "test"),
        ("APP_HOST", "127.0.0.1"),
        ("APP_PORT", "0"),
        ("JWT_SECRET", TEST_JWT_SECRET),
        ("SEED_DEMO_DATA", "false"),
        // Tests sign in many members from one address; the login limit has its own test.
        ("LIMIT_LOGIN_IP", "100000/60s"),
        // Scheduled jobs would race the test for its rows (and, in `development`, run at
        // start-up); a test about them switches them on.
        ("JOBS_ENABLED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATABASE_URL".into(), database.url.clone());
    env.insert("DATABASE_MAX_CONNECTIONS".into(), "5".into());
    if let Ok(redis) = std::env::var("REDIS_URL") {
        env.insert("REDIS_URL".into(), redis);
        env.insert(
            "REDIS_KEY_PREFIX".into(),
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        );
    }
    customize(&mut env);
    let settings = api::config::Settings::from_map(&env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let stopper = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        state,
        client: reqwest::Client::new(),
        now: Mutex::new(None),
        admins_created: Mutex::new(0),
        stopper,
        running: Some(running),
        _database: database,
    }
}

/// How long the teardown waits for each step before it moves on regardless.
const TEARDOWN_STEP: std::time::Duration = std::time::Duration::from_secs(10);

impl Drop for TestApp {
    /// Stops the app (server, jobs, then its pool) before the database is dropped. That needs
    /// the runtime that drives the app's connections to keep running, which a multi-threaded
    /// test runtime does while this thread waits. On a current-thread runtime nothing here may
    /// wait (the runtime would be blocked with it), so only the stop is sent; the database drop
    /// then ends whatever connections are left.
    fn drop(&mut self) {
        let stopped = self.stopper.stop(false);
        let running = self.running.take();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let _ = tokio::time::timeout(TEARDOWN_STEP, stopped).await;
                if let Some(running) = running {
                    let _ = tokio::time::timeout(TEARDOWN_STEP, running).await;
                }
            })
        });
    }
}

impl TestApp {
    /// Every later request runs at `time` (RFC 3339), through the `X-Test-Now` header.
    pub fn at(&self, time: &str) -> &Self {
        *self.now.lock().unwrap() = Some(time.to_string());
        self
    }

    /// Stops the app as SIGTERM does: no new requests; those in flight and the job batch in hand
    /// finish; then the pool closes. The future ends when the HTTP server has stopped.
    pub fn stop_gracefully(&self) -> impl std::future::Future<Output = ()> + use<> {
        self.stopper.stop(true)
    }

    /// Back to the real clock.
    pub fn now_real(&self) -> &Self {
        *self.now.lock().unwrap() = None;
        self
    }

    fn request(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = self.client.post(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(now) = self.now.lock().unwrap().clone() {
            request = request.header("X-Test-Now", now);
        }
        request
    }

    async fn send(&self, path: &str, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let response = self
            .request(path, token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the app answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("a JSON body");
        Gql { status, body }
    }

    /// A request to the member endpoint `/graphql`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.send("/graphql", token, query, variables).await
    }

    /// A request to the operator endpoint `/admin/graphql`.
    pub async fn admin_gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.send("/admin/graphql", token, query, variables).await
    }

    /// Signs in the member `mock_<name>` through the mock WeChat login.
    pub async fn login(&self, name: &str) -> TestMember<'_> {
        self.login_invited(name, None).await
    }

    pub async fn login_invited(&self, name: &str, invite_code: Option<&str>) -> TestMember<'_> {
        let answer = self
            .gql(
                None,
                "mutation($code: String!, $invite: String) { login(code: $code, inviteCode: $invite) {
                    accessToken refreshToken expiresAt member { id memberNo inviteCode } } }",
                json!({ "code": name, "invite": invite_code }),
            )
            .await;
        let login = &answer.data()["login"];
        TestMember {
            app: self,
            token: login["accessToken"].as_str().unwrap().to_string(),
            refresh_token: login["refreshToken"].as_str().unwrap().to_string(),
            id: login["member"]["id"].as_str().unwrap().to_string(),
            member_no: login["member"]["memberNo"].as_str().unwrap().to_string(),
            invite_code: login["member"]["inviteCode"].as_str().unwrap().to_string(),
        }
    }

    /// Creates an admin with `role` and signs it in.
    pub async fn admin(&self, role: AdminRole) -> TestAdmin<'_> {
        let username = {
            let mut n = self.admins_created.lock().unwrap();
            *n += 1;
            format!("{}{}", role.as_str().to_ascii_lowercase(), *n)
        };
        self.create_admin(&username, role).await;
        self.admin_login(&username).await
    }

    pub async fn create_admin(&self, username: &str, role: AdminRole) {
        create_admin(
            &self.state.db,
            username,
            &SecretString::from(ADMIN_PASSWORD),
            role,
            chrono::Utc::now(),
        )
        .await
        .expect("admin created");
    }

    pub async fn admin_login(&self, username: &str) -> TestAdmin<'_> {
        let answer = self
            .admin_gql(
                None,
                "mutation($u: String!, $p: String!) { adminLogin(username: $u, password: $p) { accessToken } }",
                json!({ "u": username, "p": ADMIN_PASSWORD }),
            )
            .await;
        TestAdmin {
            app: self,
            token: answer.data()["adminLogin"]["accessToken"]
                .as_str()
                .unwrap()
                .to_string(),
        }
    }

    /// The URL of this test's own database.
    pub fn database_url(&self) -> &str {
        &self._database.url
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the app answers")
    }
}

pub struct TestMember<'a> {
    pub app: &'a TestApp,
    pub token: String,
    pub refresh_token: String,
    pub id: String,
    pub member_no: String,
    pub invite_code: String,
}

impl TestMember<'_> {
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        self.app.gql(Some(&self.token), query, variables).await
    }
}

pub struct TestAdmin<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl TestAdmin<'_> {
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        self.app
            .admin_gql(Some(&self.token), query, variables)
            .await
    }
}

// ------------------------------------------------------------------ databases

enum Backend {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { server_url: String, name: String },
    MySql { server_url: String, name: String },
}

struct TestDatabase {
    url: String,
    backend: Backend,
}

/// `scheme://user@host:port/db?params` with the database swapped.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match params {
        Some(p) => format!("{root}/{database}?{p}"),
        None => format!("{root}/{database}"),
    }
}

static POSTGRES_TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
/// `CREATE DATABASE … TEMPLATE` refuses while another clone of the template is being made.
static CLONE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `sql` statements in order on one connection (so a `SET SESSION` holds for the rest).
async fn exec(url: &str, sql: &[&str]) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let mut options = sea_orm::ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .connect_timeout(TEARDOWN_STEP)
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await?;
    let mut result = Ok(());
    for statement in sql {
        if let Err(e) = db.execute_unprepared(statement).await {
            result = Err(e);
            break;
        }
    }
    let _ = db.close().await;
    result
}

async fn query_names(url: &str, sql: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let Ok(db) = sea_orm::Database::connect(url).await else {
        return vec![];
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_default();
    let _ = db.close().await;
    rows.iter()
        .filter_map(|r| {
            r.try_get_by_index::<String>(0)
                .or_else(|_| r.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .or_else(|_| r.try_get_by_index::<u64>(0).map(|n| n.to_string()))
                .ok()
        })
        .collect()
}

/// Drops a MariaDB/MySQL database even while connections still use it: they are killed first
/// (their transactions roll back on the server, freeing the metadata locks DROP waits for), and
/// the drop itself gives up after a few seconds instead of MariaDB's default of a day.
async fn drop_mysql_database(server_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    let mut outcome = Ok(());
    // A pool that is still alive may reconnect between the kill and the drop; try again.
    for _ in 0..3 {
        for id in query_names(
            server_url,
            &format!(
                "SELECT id FROM information_schema.processlist WHERE db = '{name}' \
                 AND id <> CONNECTION_ID()"
            ),
        )
        .await
        {
            let _ = exec(server_url, &[&format!("KILL CONNECTION {id}")]).await;
        }
        outcome = exec(
            server_url,
            &[
                "SET SESSION lock_wait_timeout = 5",
                &format!("DROP DATABASE IF EXISTS {name}"),
            ],
        )
        .await;
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// How old a test database must be before another run may drop it. Databases are named with
/// the time they were made (`lt_<unix seconds>_…`), so several test runs on one server (a
/// developer's and CI's, say) never drop each other's databases or templates, however idle.
const LEFTOVER_AGE_SECS: u64 = 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh test database (or template) name: `lt_<unix seconds>_<uuid>`.
fn new_database_name(kind: &str) -> String {
    format!("lt_{kind}{}_{}", unix_now(), uuid::Uuid::new_v4().simple())
}

/// Whether `name` is a test database left behind long enough ago to drop. One named before
/// names carried a time is left over when nobody is connected to it.
fn is_leftover(name: &str, now: u64, in_use: bool) -> bool {
    let rest = name.strip_prefix("lt_").unwrap_or(name);
    let rest = rest.strip_prefix("tmpl_").unwrap_or(rest);
    match rest
        .split_once('_')
        .and_then(|(secs, _)| secs.parse::<u64>().ok())
    {
        Some(made) => now.saturating_sub(made) > LEFTOVER_AGE_SECS,
        None => !in_use,
    }
}

/// Drops test databases that earlier runs left behind (a run that was killed mid-test), even if
/// a connection of theirs is still open.
async fn sweep_leftovers(server_url: &str, postgres: bool) {
    let (all, connected) = if postgres {
        (
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'lt\\_%'",
            "SELECT DISTINCT datname::text FROM pg_stat_activity WHERE datname IS NOT NULL",
        )
    } else {
        (
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'lt\\_%'",
            "SELECT DISTINCT db FROM information_schema.processlist WHERE db IS NOT NULL",
        )
    };
    let connected = query_names(server_url, connected).await;
    let now = unix_now();
    for name in query_names(server_url, all).await {
        if !is_leftover(&name, now, connected.contains(&name)) {
            continue;
        }
        let _ = if postgres {
            exec(
                server_url,
                &[&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
            )
            .await
        } else {
            drop_mysql_database(server_url, &name).await
        };
    }
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        let server_url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty());
        let name = new_database_name("");
        match server_url {
            None => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                TestDatabase {
                    url,
                    backend: Backend::Sqlite { _dir: dir },
                }
            }
            Some(server_url) if server_url.starts_with("postgres") => {
                SWEPT
                    .get_or_init(|| sweep_leftovers(&server_url, true))
                    .await;
                let template = POSTGRES_TEMPLATE
                    .get_or_init(|| migrated_postgres_template(&server_url))
                    .await;
                {
                    let _guard = CLONE_LOCK.lock().await;
                    exec(
                        &server_url,
                        &[&format!("CREATE DATABASE {name} TEMPLATE {template}")],
                    )
                    .await
                    .expect("clone the template database");
                }
                TestDatabase {
                    url: with_database(&server_url, &name),
                    backend: Backend::Postgres { server_url, name },
                }
            }
            Some(server_url) if server_url.starts_with("mysql") => {
                SWEPT
                    .get_or_init(|| sweep_leftovers(&server_url, false))
                    .await;
                exec(
                    &server_url,
                    &[&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")],
                )
                .await
                .expect("create the test database");
                TestDatabase {
                    url: with_database(&server_url, &name),
                    backend: Backend::MySql { server_url, name },
                }
            }
            Some(other) => {
                panic!("TEST_DATABASE_URL {other:?} is neither postgres:// nor mysql://")
            }
        }
    }
}

async fn migrated_postgres_template(server_url: &str) -> String {
    use migration::MigratorTrait;
    let name = new_database_name("tmpl_");
    exec(server_url, &[&format!("CREATE DATABASE {name}")])
        .await
        .expect("create the template database");
    let db = sea_orm::Database::connect(with_database(server_url, &name))
        .await
        .expect("connect to the template");
    migration::Migrator::up(&db, None)
        .await
        .expect("migrate the template");
    db.close().await.expect("close the template");
    name
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server_url, name, postgres) = match &self.backend {
            Backend::Sqlite { .. } => return,
            Backend::Postgres { server_url, name } => (server_url.clone(), name.clone(), true),
            Backend::MySql { server_url, name } => (server_url.clone(), name.clone(), false),
        };
        // Drop runs inside the test's runtime; the clean-up gets a thread and a runtime of its
        // own, and a bounded wait: a database that cannot be dropped now is swept by a later run,
        // never waited for.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(async {
                    if postgres {
                        // FORCE ends the sessions still connected.
                        exec(
                            &server_url,
                            &[&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
                        )
                        .await
                    } else {
                        drop_mysql_database(&server_url, &name).await
                    }
                });
            }
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(std::time::Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::{LEFTOVER_AGE_SECS, is_leftover, new_database_name, unix_now, with_database};

    #[test]
    fn only_databases_an_hour_old_or_unused_of_the_old_naming_are_leftovers() {
        let now = unix_now();
        let fresh = new_database_name("");
        let template = new_database_name("tmpl_");
        // A run's databases are never another run's leftovers while it could still be going,
        // connected or not (a template has no connections).
        assert!(!is_leftover(&fresh, now, false));
        assert!(!is_leftover(&template, now, false));
        assert!(is_leftover(&fresh, now + LEFTOVER_AGE_SECS + 1, true));
        assert!(is_leftover(&template, now + LEFTOVER_AGE_SECS + 1, false));
        let old_naming = "lt_e99e0123456789abcdef0123456789ab";
        assert!(is_leftover(old_naming, now, false));
        assert!(!is_leftover(old_naming, now, true));
    }

    #[test]
    fn the_database_name_is_swapped_and_parameters_kept() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "lt_1"),
            "postgres://u@127.0.0.1:5432/lt_1"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "lt_1"),
            "mysql://root@127.0.0.1:3306/lt_1?ssl-mode=disabled"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
    }
}
