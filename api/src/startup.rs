//! Builds the application for `main.rs` and for the tests alike: connect, migrate, seed, bind.
//! Binding port 0 works; `port()` says which port was given.
//!
//! The composition root (DESIGN s2): the one place that sees every module. It wires progress
//! handlers, caches and settings parsers into the state, so the core and the feature modules never
//! name each other. Owns: start-up order (settings, database, migrations, seed, Redis, jobs, server).

use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::anticheat::{
    ArithmeticCaptcha, InProcessLimiter, Limiter, MemoryStore, RedisLimiter, RedisStore, Store,
};
use crate::auth::jwt::JwtKeys;
use crate::auth::wechat::{MockWeChat, WeChatApi, WeChatLogin};
use crate::clock::Clock;
use crate::config::{AppEnv, ConfigError, Settings};
use crate::extensions::Extensions;
use crate::redis_conn::{self, RedisConnection};
use crate::state::AppState;
use crate::{
    achievement, auth, checkin, db, graphql, http, jobs, mall, member, progress, seed, task,
};

/// Why the application could not start, with what it was doing.
#[derive(Debug)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

fn context<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StartupError {
    move |e| StartupError(format!("{what}: {e}"))
}

/// The modules that react to events (see `progress`): member growth, tasks, achievements, and
/// the mall's goods and coupons given as prizes.
fn install_progress_handlers() {
    progress::install(vec![
        &member::GROWTH_FROM_INTERACTION,
        &task::TASK_PROGRESS,
        &achievement::ACHIEVEMENTS,
        &mall::PRIZES,
    ]);
}

/// A module's parser of the settings that belong to its domain.
type SettingParser = fn(&Settings, Extensions) -> Result<Extensions, ConfigError>;

/// Settings whose values belong to a module's domain, each parsed by its module.
const SETTING_PARSERS: &[SettingParser] = &[task::parse_settings, mall::parse_settings];

/// Parses the settings that belong to a module's domain into `settings.parsed`. `Application`
/// does it before it binds, so a bad value stops the process with the setting's name.
pub fn parse_settings(mut settings: Settings) -> Result<Settings, ConfigError> {
    let mut parsed = std::mem::take(&mut settings.parsed);
    for parse in SETTING_PARSERS {
        parsed = parse(&settings, parsed)?;
    }
    settings.parsed = parsed;
    Ok(settings)
}

/// How long start-up waits for an unreachable Redis before it gives up.
const REDIS_START_WAIT: Duration = Duration::from_secs(60);

/// Connects to Redis, waiting (with a log line per attempt) while it is unreachable: instances
/// often start before their Redis does. A bad URL fails at once.
async fn connect_redis(url: &str, cluster: bool) -> Result<RedisConnection, StartupError> {
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(500);
    loop {
        match redis_conn::connect(url, cluster).await {
            Ok(connection) => {
                tracing::info!(kind = connection.kind(), "connected to Redis");
                return Ok(connection);
            }
            Err(e) if crate::error::redis_unreachable(&e) || e.is_io_error() || e.is_timeout() => {
                if started.elapsed() >= REDIS_START_WAIT {
                    return Err(context("connecting to REDIS_URL")(e));
                }
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Redis is unreachable; waiting for it before serving");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(context("connecting to REDIS_URL")(e)),
        }
    }
}

/// What modules keep in the shared state without `AppState` naming them.
fn extensions() -> Extensions {
    Extensions::default()
        .with(achievement::LeaderboardCache::default())
        .with(mall::StockGate::default())
        .with(member::Streaks(Arc::new(checkin::Streaks)))
        .with(member::Titles(Arc::new(achievement::Titles)))
}

/// Everything but the HTTP server: database (migrated), Redis, limiter, WeChat, keys.
pub async fn build_state(settings: Settings) -> Result<AppState, StartupError> {
    install_progress_handlers();
    let settings = parse_settings(settings).map_err(context("settings"))?;
    let db_stats = Arc::new(db::DbStats::default());
    let database = db::connect(&settings, db_stats.clone())
        .await
        .map_err(context("connecting to DATABASE_URL"))?;
    db::migrate(&database)
        .await
        .map_err(context("running database migrations"))?;

    let redis = match &settings.redis_url {
        Some(url) => Some(connect_redis(url, settings.redis_cluster).await?),
        None => None,
    };
    let limiter: Arc<dyn Limiter> = match &redis {
        Some(manager) => Arc::new(
            RedisLimiter::new(manager.clone(), settings.redis_key_prefix.clone())
                .await
                .map_err(context("loading the Redis limiter script"))?,
        ),
        None => {
            tracing::warn!(
                "REDIS_URL is not set: rate limits are kept in this process, which is right for \
                 one instance only"
            );
            Arc::new(InProcessLimiter::default())
        }
    };
    let store: Arc<dyn Store> = match &redis {
        Some(manager) => Arc::new(RedisStore::new(
            manager.clone(),
            settings.redis_key_prefix.clone(),
        )),
        None => Arc::new(MemoryStore::default()),
    };
    let wechat: Arc<dyn WeChatLogin> = match WeChatApi::new(&settings.wechat)
        .map_err(context("WeChat client"))?
    {
        Some(api) => Arc::new(api),
        None => {
            tracing::warn!(
                "WECHAT_APPID is not set: using the mock WeChat login (any code signs in mock_<code>)"
            );
            Arc::new(MockWeChat)
        }
    };

    let clock = Clock::new(settings.env == AppEnv::Test);
    let now = clock.now();
    if auth::bootstrap_admin(&database, settings.admin_bootstrap_password.as_ref(), now)
        .await
        .map_err(context("creating the bootstrap admin"))?
    {
        tracing::info!(
            "created the bootstrap admin 'admin' (SUPERADMIN) from ADMIN_BOOTSTRAP_PASSWORD"
        );
    }
    if settings.seed_demo_data
        && seed::seed_demo_data(&database, &settings, now)
            .await
            .map_err(context("seeding demo data"))?
    {
        tracing::info!("seeded demo data into the empty database");
    }

    Ok(AppState {
        jwt: Arc::new(JwtKeys::new(&settings.jwt_secret, &settings.jwt_issuer)),
        settings: Arc::new(settings),
        db: database,
        redis,
        clock,
        limiter,
        store,
        captcha: Arc::new(ArithmeticCaptcha),
        wechat,
        revoked_sessions: Default::default(),
        tiers: Arc::new(crate::cache::Cached::named("tiers")),
        price_campaigns: Arc::new(crate::cache::Cached::named("price_campaigns")),
        extensions: Arc::new(extensions()),
        shutdown: CancellationToken::new(),
        runtime: tokio::runtime::Handle::current(),
        db_stats,
    })
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own port (`METRICS_PORT`), stopped with the main server.
    metrics_server: Option<Server>,
    state: AppState,
    scheduler: Option<JoinHandle<()>>,
}

/// Stops a running [`Application`] from outside, the way SIGTERM does: for `main`, the tests
/// and the benchmark's server.
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    shutdown: CancellationToken,
}

impl Stopper {
    /// Stops accepting and tells background work to start nothing new. `graceful` lets
    /// requests in flight finish (up to `SHUTDOWN_GRACE`); otherwise they are dropped. The
    /// future ends when the HTTP server has stopped; `run_until_stopped` then finishes the
    /// running job and closes the pools.
    pub fn stop(&self, graceful: bool) -> impl std::future::Future<Output = ()> + use<> {
        self.shutdown.cancel();
        self.server.stop(graceful)
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = parse_settings(settings).map_err(context("settings"))?;
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .map_err(context("binding APP_HOST:APP_PORT"))?;
        let state = build_state(settings).await?;
        let scheduler = state
            .settings
            .jobs
            .enabled
            .then(|| jobs::spawn_scheduler(state.clone()));
        // Other instances' cache invalidations; it stops with the shutdown token.
        crate::cache_bus::spawn_listener(state.clone());
        let mut app = Self::serve(state, listener)?;
        app.scheduler = scheduler;
        Ok(app)
    }

    fn serve(state: AppState, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener
            .local_addr()
            .map_err(context("reading the bound port"))?
            .port();
        let settings = &state.settings;
        let introspection = settings.introspection;
        let member_schema = web::Data::new(graphql::member_schema(
            &settings.graphql,
            introspection,
            Some(state.clone()),
        ));
        let admin_schema = web::Data::new(graphql::admin_schema(
            &settings.graphql,
            introspection,
            Some(state.clone()),
        ));
        let max_body = settings.graphql.max_body_bytes;
        // The benchmark's bare baseline exists only where the test clock does.
        let bare_baseline = settings.env == AppEnv::Test;
        let observability = &settings.observability;
        if observability.metrics_enabled {
            crate::metrics::install();
        }
        let metrics_on_main_port =
            observability.metrics_enabled && observability.metrics_port.is_none();
        let metrics_server = match (observability.metrics_enabled, observability.metrics_port) {
            (true, Some(port)) => Some(metrics_server(&state, port)?),
            _ => None,
        };
        let app_state = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::PAYLOAD_TOO_LARGE, http::payload_too_large),
                )
                .wrap(actix_web::middleware::from_fn(
                    crate::request_id::middleware,
                ))
                .app_data(app_state.clone())
                .app_data(member_schema.clone())
                .app_data(admin_schema.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .configure(http::routes)
                .configure(|cfg| {
                    if metrics_on_main_port {
                        http::metrics_route(cfg);
                    }
                    if bare_baseline {
                        cfg.route("/bench/bare-checkin", web::post().to(crate::bare::check_in));
                    }
                })
        })
        .listen(listener)
        .map_err(context("listening"))?
        // Signals are ours to handle (`run_until_signalled`), so an app inside a test process
        // never swallows the SIGTERM meant for that process.
        .disable_signals()
        .shutdown_timeout(settings.shutdown.grace.num_seconds().max(1) as u64)
        .run();
        tracing::info!(
            port,
            env = %state.settings.env,
            limiter = state.limiter.backend(),
            graphiql = state.settings.graphiql,
            "serving /graphql, /admin/graphql and /health"
        );
        Ok(Application {
            port,
            server,
            metrics_server,
            state,
            scheduler: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            shutdown: self.state.shutdown.clone(),
        }
    }

    /// Serves until SIGINT or SIGTERM, then stops as [`Stopper::stop`] does, gracefully.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        let signals = tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: no new requests; finishing those in flight");
            stopper.stop(true).await;
        });
        let served = self.run_until_stopped().await;
        signals.abort();
        served
    }

    /// Serves until a [`Stopper`] stops the server; then lets the running job finish (within
    /// `SHUTDOWN_GRACE`) and closes the database pool, in that order, so no work is cut off
    /// half-done and nothing holds a connection after the pool is gone.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let served = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(false).await;
            let _ = task.await;
        }
        self.state.shutdown.cancel();
        let grace = self
            .state
            .settings
            .shutdown
            .grace
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(30));
        if let Some(scheduler) = self.scheduler
            && tokio::time::timeout(grace, scheduler).await.is_err()
        {
            tracing::warn!("the running job did not finish within SHUTDOWN_GRACE");
        }
        if let Err(e) = self.state.db.clone().close().await {
            tracing::warn!(error = %e, "closing the database pool");
        }
        served
    }
}

/// The server for `METRICS_PORT`: `/metrics` only, on APP_HOST.
fn metrics_server(state: &AppState, port: u16) -> Result<Server, StartupError> {
    let listener = TcpListener::bind((state.settings.host.as_str(), port))
        .map_err(context("binding APP_HOST:METRICS_PORT"))?;
    let port = listener
        .local_addr()
        .map_err(context("reading the metrics port"))?
        .port();
    tracing::info!(port, "serving /metrics");
    let app_state = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .configure(http::metrics_route)
    })
    .workers(1)
    .listen(listener)
    .map_err(context("listening on METRICS_PORT"))?
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    Ok(server)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
