//! What every request can reach: settings, database, Redis, clock, limiter, WeChat client, keys.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::anticheat::Limiter;
use crate::auth::jwt::JwtKeys;
use crate::auth::wechat::WeChatLogin;
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub clock: Clock,
    pub limiter: Arc<dyn Limiter>,
    pub wechat: Arc<dyn WeChatLogin>,
    pub jwt: Arc<JwtKeys>,
}
