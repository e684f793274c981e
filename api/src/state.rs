//! What every request can reach: settings, database, Redis, clock, limiter, WeChat client, keys.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::anticheat::{CaptchaProvider, Limiter, Store};
use crate::auth::jwt::JwtKeys;
use crate::auth::wechat::WeChatLogin;
use crate::cache::Cached;
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Option<crate::redis_conn::RedisConnection>,
    pub clock: Clock,
    pub limiter: Arc<dyn Limiter>,
    /// Captcha challenges and passes, the blacklist cache.
    pub store: Arc<dyn Store>,
    pub captcha: Arc<dyn CaptchaProvider>,
    pub wechat: Arc<dyn WeChatLogin>,
    pub jwt: Arc<JwtKeys>,
    /// Ended sessions, when there is no Redis to hold them; see `auth::sessions`.
    pub revoked_sessions: Arc<crate::auth::RevokedSessions>,
    /// Rarely-changed rows for the read paths; see `cache`.
    pub tiers: Arc<Cached<Vec<crate::member::Tier>>>,
    pub price_campaigns: Arc<Cached<Vec<entity::price_campaign::Model>>>,
    /// What modules registered at start-up (their caches, their lookups): see `extensions`.
    pub extensions: Arc<crate::extensions::Extensions>,
    /// Cancelled when the process is asked to stop: background work finishes what it is doing
    /// and starts nothing new.
    pub shutdown: CancellationToken,
    /// The process's runtime (the one that built the state): requests run on it, so database
    /// connections never belong to an actix worker's runtime, which ends with the server.
    pub runtime: tokio::runtime::Handle,
    /// Counts of what the database pool ran.
    pub db_stats: Arc<crate::db::DbStats>,
}
