//! Typed settings, read once from the environment (`.env` is loaded by `main` first).
//! Validation happens here, so an unsafe production setting stops the process before it binds.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{Duration, FixedOffset};
use ipnet::IpNet;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

use crate::extensions::Extensions;

/// The JWT secret used when none is set outside production. Production refuses it.
const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-do-not-use-in-production";
/// Shortest JWT secret production accepts, in bytes (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_LEN: usize = 32;
/// Fewest different byte values production accepts in the JWT secret: 32 copies of one byte
/// are long but guessable.
pub const MIN_JWT_SECRET_DISTINCT_BYTES: usize = 16;
/// Shortest bootstrap admin password production accepts.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl AppEnv {
    pub fn is_production(self) -> bool {
        self == AppEnv::Production
    }
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(AppEnv::Development),
            "test" => Ok(AppEnv::Test),
            "production" | "prod" => Ok(AppEnv::Production),
            other => Err(format!(
                "unknown value {other:?}, expected development, test or production"
            )),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        })
    }
}

/// A rate-limit policy: at most `count` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub count: u64,
    pub window: Duration,
}

impl FromStr for RatePolicy {
    type Err = String;
    /// `COUNT/WINDOW`, e.g. `30/60s`, `20/1d`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, window) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not COUNT/WINDOW, e.g. 30/60s"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a whole number"))?;
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        let window = parse_duration(window)?;
        Ok(RatePolicy { count, window })
    }
}

/// How many different byte values `s` holds: a cheap floor on a secret's entropy.
fn distinct_bytes(s: &str) -> usize {
    let mut seen = [false; 256];
    s.bytes().for_each(|b| seen[usize::from(b)] = true);
    seen.iter().filter(|&&b| b).count()
}

/// Parses `90s`, `15m`, `2h`, `30d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 60s, 15m, 2h or 30d"))?;
    let d = match unit {
        "" | "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => None,
    };
    match d {
        Some(d) if d > Duration::zero() => Ok(d),
        _ => Err(format!(
            "{s:?} is not a positive duration like 60s, 15m, 2h or 30d"
        )),
    }
}

/// Parses a list of networks, CIDRs or bare addresses (a bare address is a network of one),
/// IPv4 or IPv6, separated by commas or spaces: `10.0.0.0/8, 192.168.1.7, fd00::/8`.
pub fn parse_networks(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "{part:?} is not an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8"
                    )
                })
        })
        .collect()
}

/// Parses a fixed UTC offset such as `+08:00`, `-05:30` or `Z`.
pub fn parse_offset(s: &str) -> Result<FixedOffset, String> {
    let s = s.trim();
    if s == "Z" || s.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0).ok_or_else(|| "bad offset".into());
    }
    let err = || format!("{s:?} is not an offset like +08:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(err()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(err)?;
    let h: i32 = h.parse().map_err(|_| err())?;
    let m: i32 = m.parse().map_err(|_| err())?;
    if h > 14 || m > 59 {
        return Err(err());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(err)
}

#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// `None` means the mock login (development and test only).
    pub appid: Option<String>,
    pub secret: Option<SecretString>,
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub login_ip: RatePolicy,
    /// Failed admin logins (successes never count) per username, and per address, before the
    /// key is locked for `admin_lockout_base`, doubling with each further failure.
    pub admin_login_username: RatePolicy,
    pub admin_login_ip: RatePolicy,
    pub admin_lockout_base: Duration,
    pub admin_lockout_max: Duration,
    /// Soft: over it, a captcha.
    pub checkin_device: RatePolicy,
    pub share_member: RatePolicy,
    pub transfer_device: RatePolicy,
    /// Flag only: over it, a risk event for review.
    pub earn_member: RatePolicy,
    /// Hard: over it, RATE_LIMITED.
    pub mutation_member: RatePolicy,
    pub draw_member: RatePolicy,
}

#[derive(Debug, Clone)]
pub struct PointsSettings {
    /// Points expire this long after they are credited.
    pub ttl: Duration,
    /// What one point is worth, for the liability in `pointsHealth`.
    pub point_value_yuan: Decimal,
    /// Members holding more than this count as hoarders.
    pub hoarding_threshold: i64,
    /// Outstanding points the shop budgets for; 20 % above it raises `budgetExceeded`.
    pub budget: Option<i64>,
    /// Most points one transfer may move.
    pub transfer_max: i64,
}

#[derive(Debug, Clone)]
pub struct MemberSettings {
    /// Growth per yuan spent.
    pub growth_spend_weight: Decimal,
    /// Growth per interaction point (check-ins, tasks).
    pub growth_interaction_weight: Decimal,
    /// Purchase points multiplier in the last 30 days of a tier's validity.
    pub sprint_multiplier: Decimal,
    /// Earning rules used until an operator saves their own.
    pub points_per_yuan: Decimal,
    pub max_points_ratio: Decimal,
}

#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// `REPORTABLE_EVENTS` as written: client-reported event kinds with daily caps, parsed by the
    /// task module at start-up (see `startup::parse_settings`).
    pub reportable_events: String,
    /// Points the inviter earns for each friend who joins with their code (single level).
    pub invite_reward_points: i64,
}

#[derive(Debug, Clone)]
pub struct MallSettings {
    /// `DEDUCTION_LADDER` as written: how much of an order's cash value points may pay, parsed
    /// by the mall at start-up (see `startup::parse_settings`).
    pub deduction_ladder: String,
    /// Points+cash orders not paid within this are cancelled and give back points and stock.
    pub payment_window: Duration,
    /// How long a crowdfund stays open.
    pub crowdfund_window: Duration,
}

#[derive(Debug, Clone)]
pub struct BlindBoxSettings {
    /// A box's server seed is revealed and replaced once it is this old (by the rotation job).
    pub seed_rotation: Duration,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Run scheduled jobs in this process (they take a lock, so several instances are fine).
    pub enabled: bool,
    pub interval: Duration,
}

/// How log lines are written: text for people, JSON (one object per line) for log shippers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not text or json")),
        }
    }
}

/// What operators' tools read: `/metrics`, log format, trace export (README "Observability").
#[derive(Debug, Clone)]
pub struct ObservabilitySettings {
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics_enabled: bool,
    /// Serve `/metrics` on this port (bound to APP_HOST) instead of the main one.
    pub metrics_port: Option<u16>,
    pub log_format: LogFormat,
    /// Export traces over OTLP/HTTP to this collector (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
}

/// How long a stopping process waits for requests in flight and the current job.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    pub grace: Duration,
}

#[derive(Debug, Clone)]
pub struct GraphqlLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_body_bytes: usize,
    /// Most root fields (aliases included) one operation may select.
    pub max_root_fields: usize,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub env: AppEnv,
    pub host: String,
    pub port: u16,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` name the client; empty: none.
    pub trusted_proxies: Vec<IpNet>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER=true`: `REDIS_URL` names a node of a Redis Cluster (a `redis+cluster://`
    /// URL says so by itself).
    pub redis_cluster: bool,
    /// Prepended to every Redis key, so several apps (or tests) can share one Redis.
    pub redis_key_prefix: String,
    pub jwt_secret: SecretString,
    pub jwt_issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a spent refresh token still returns the pair it was exchanged for (racing
    /// refreshes); after that, presenting it again revokes the session.
    pub refresh_grace: Duration,
    pub timezone: FixedOffset,
    pub wechat: WeChatSettings,
    pub admin_bootstrap_password: Option<SecretString>,
    pub graphiql: bool,
    pub introspection: bool,
    pub seed_demo_data: bool,
    pub rate_limits: RateLimits,
    pub graphql: GraphqlLimits,
    pub points: PointsSettings,
    pub member: MemberSettings,
    pub tasks: TaskSettings,
    pub mall: MallSettings,
    pub blindbox: BlindBoxSettings,
    pub jobs: JobSettings,
    pub shutdown: ShutdownSettings,
    pub observability: ObservabilitySettings,
    /// Settings whose values belong to a module's domain (`REPORTABLE_EVENTS`,
    /// `DEDUCTION_LADDER`), as their modules parsed them: filled by `startup::parse_settings`,
    /// so this module names no feature module.
    pub parsed: Extensions,
}

impl ConfigError {
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        invalid(setting, message)
    }
}

/// A setting that could not be used, with the setting's name first so an operator knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings from a map; tests use this instead of mutating the process environment.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|key| map.get(key).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Empty values count as unset, the way `.env` files are usually written.
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        fn parse<T: FromStr>(
            setting: &'static str,
            raw: Option<String>,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: fmt::Display,
        {
            match raw {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|e: T::Err| invalid(setting, e.to_string())),
            }
        }
        let positive = |setting: &'static str,
                        raw: Option<String>,
                        default: i64|
         -> Result<i64, ConfigError> {
            let n: i64 = parse(setting, raw, default)?;
            if n > 0 {
                Ok(n)
            } else {
                Err(invalid(setting, "must be at least 1"))
            }
        };
        let flag = |setting: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(setting)
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(other) => Err(invalid(setting, format!("{other:?} is not true or false"))),
            }
        };
        let duration = |setting: &'static str, default: &str| -> Result<Duration, ConfigError> {
            parse_duration(&get(setting).unwrap_or_else(|| default.to_string()))
                .map_err(|e| invalid(setting, e))
        };
        let policy = |setting: &'static str, default: &str| -> Result<RatePolicy, ConfigError> {
            get(setting)
                .unwrap_or_else(|| default.to_string())
                .parse()
                .map_err(|e: String| invalid(setting, e))
        };

        let env: AppEnv = parse("APP_ENV", get("APP_ENV"), AppEnv::Development)?;
        let production = env.is_production();

        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| "sqlite://data/loyalty.db?mode=rwc".to_string());
        let sqlite = database_url.starts_with("sqlite:");
        if production && sqlite && !flag("SQLITE_IN_PRODUCTION", false)? {
            return Err(invalid(
                "DATABASE_URL",
                "production refuses SQLite unless SQLITE_IN_PRODUCTION=true is set explicitly",
            ));
        }

        let redis_url = get("REDIS_URL");
        if production && redis_url.is_none() {
            return Err(invalid(
                "REDIS_URL",
                "production needs Redis for rate limits shared by every instance",
            ));
        }

        let jwt_secret = match get("JWT_SECRET") {
            Some(s) => s,
            None if production => {
                return Err(invalid("JWT_SECRET", "production needs a JWT secret"));
            }
            None => DEV_JWT_SECRET.to_string(),
        };
        if production
            && (jwt_secret == DEV_JWT_SECRET
                || jwt_secret.len() < MIN_JWT_SECRET_LEN
                || distinct_bytes(&jwt_secret) < MIN_JWT_SECRET_DISTINCT_BYTES)
        {
            return Err(invalid(
                "JWT_SECRET",
                format!(
                    "production needs a random secret: at least {MIN_JWT_SECRET_LEN} bytes, \
                     {MIN_JWT_SECRET_DISTINCT_BYTES} of them different, and not the development \
                     default (e.g. openssl rand -base64 48)"
                ),
            ));
        }

        let wechat = WeChatSettings {
            appid: get("WECHAT_APPID"),
            secret: get("WECHAT_SECRET").map(SecretString::from),
            api_base: get("WECHAT_API_BASE")
                .unwrap_or_else(|| "https://api.weixin.qq.com".to_string())
                .trim_end_matches('/')
                .to_string(),
        };
        if wechat.appid.is_some() != wechat.secret.is_some() {
            return Err(invalid(
                "WECHAT_SECRET",
                "set both WECHAT_APPID and WECHAT_SECRET, or neither for the mock login",
            ));
        }
        if production && wechat.appid.is_none() {
            return Err(invalid(
                "WECHAT_APPID",
                "production refuses the mock WeChat login; set WECHAT_APPID and WECHAT_SECRET",
            ));
        }

        let admin_bootstrap_password = get("ADMIN_BOOTSTRAP_PASSWORD").map(SecretString::from);
        if production
            && admin_bootstrap_password
                .as_ref()
                .is_some_and(|p| p.expose_secret().chars().count() < MIN_ADMIN_PASSWORD_LEN)
        {
            return Err(invalid(
                "ADMIN_BOOTSTRAP_PASSWORD",
                format!("production needs at least {MIN_ADMIN_PASSWORD_LEN} characters"),
            ));
        }

        let access_token_ttl = duration("ACCESS_TOKEN_TTL", "2h")?;
        let refresh_token_ttl = duration("REFRESH_TOKEN_TTL", "30d")?;
        let refresh_grace = duration("REFRESH_GRACE", "30s")?;
        if refresh_grace > Duration::minutes(5) {
            return Err(invalid(
                "REFRESH_GRACE",
                "at most 5m: a longer window lets a stolen spent token in for longer",
            ));
        }
        let admin_lockout_base = duration("ADMIN_LOCKOUT_BASE", "1m")?;
        let admin_lockout_max = duration("ADMIN_LOCKOUT_MAX", "1h")?;
        if admin_lockout_max < admin_lockout_base {
            return Err(invalid(
                "ADMIN_LOCKOUT_MAX",
                "must be at least ADMIN_LOCKOUT_BASE",
            ));
        }
        let timezone = parse_offset(&get("APP_TIMEZONE").unwrap_or_else(|| "+08:00".into()))
            .map_err(|e| invalid("APP_TIMEZONE", e))?;

        Ok(Settings {
            env,
            host: get("APP_HOST").unwrap_or_else(|| "127.0.0.1".to_string()),
            port: parse("APP_PORT", get("APP_PORT"), 8080u16)?,
            trusted_proxies: parse_networks(&get("TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|e| invalid("TRUSTED_PROXIES", e))?,
            database_max_connections: parse(
                "DATABASE_MAX_CONNECTIONS",
                get("DATABASE_MAX_CONNECTIONS"),
                10u32,
            )?,
            database_url,
            redis_url,
            redis_cluster: flag("REDIS_CLUSTER", false)?,
            redis_key_prefix: get("REDIS_KEY_PREFIX").unwrap_or_else(|| "loyalty:".to_string()),
            jwt_secret: SecretString::from(jwt_secret),
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "loyalty".to_string()),
            access_token_ttl,
            refresh_token_ttl,
            refresh_grace,
            timezone,
            wechat,
            admin_bootstrap_password,
            graphiql: flag("GRAPHIQL", !production)?,
            introspection: flag("INTROSPECTION", !production)?,
            seed_demo_data: flag("SEED_DEMO_DATA", env == AppEnv::Development)?,
            rate_limits: RateLimits {
                login_ip: policy("LIMIT_LOGIN_IP", "30/60s")?,
                admin_login_username: policy("LIMIT_ADMIN_LOGIN_USERNAME", "10/15m")?,
                admin_login_ip: policy("LIMIT_ADMIN_LOGIN_IP", "5/15m")?,
                admin_lockout_base,
                admin_lockout_max,
                checkin_device: policy("LIMIT_CHECKIN_DEVICE", "5/60s")?,
                share_member: policy("LIMIT_SHARE_MEMBER", "20/1d")?,
                transfer_device: policy("LIMIT_TRANSFER_DEVICE", "10/1h")?,
                earn_member: policy("LIMIT_EARN_MEMBER", "120/1h")?,
                mutation_member: policy("LIMIT_MUTATION_MEMBER", "60/60s")?,
                draw_member: policy("LIMIT_DRAW_MEMBER", "30/60s")?,
            },
            points: PointsSettings {
                ttl: Duration::days(positive("POINTS_TTL_DAYS", get("POINTS_TTL_DAYS"), 730)?),
                point_value_yuan: parse(
                    "POINT_VALUE_YUAN",
                    get("POINT_VALUE_YUAN"),
                    Decimal::new(1, 1),
                )?,
                hoarding_threshold: parse(
                    "HOARDING_THRESHOLD",
                    get("HOARDING_THRESHOLD"),
                    5000i64,
                )?,
                budget: get("POINTS_BUDGET")
                    .map(|v| {
                        v.parse::<i64>()
                            .map_err(|e| invalid("POINTS_BUDGET", e.to_string()))
                    })
                    .transpose()?,
                transfer_max: positive("TRANSFER_MAX_POINTS", get("TRANSFER_MAX_POINTS"), 1000)?,
            },
            member: MemberSettings {
                growth_spend_weight: parse(
                    "GROWTH_SPEND_WEIGHT",
                    get("GROWTH_SPEND_WEIGHT"),
                    Decimal::new(6, 1),
                )?,
                growth_interaction_weight: parse(
                    "GROWTH_INTERACTION_WEIGHT",
                    get("GROWTH_INTERACTION_WEIGHT"),
                    Decimal::new(4, 1),
                )?,
                sprint_multiplier: parse(
                    "SPRINT_MULTIPLIER",
                    get("SPRINT_MULTIPLIER"),
                    Decimal::TWO,
                )?,
                points_per_yuan: parse("POINTS_PER_YUAN", get("POINTS_PER_YUAN"), Decimal::ONE)?,
                max_points_ratio: parse(
                    "MAX_POINTS_RATIO",
                    get("MAX_POINTS_RATIO"),
                    Decimal::new(3, 1),
                )?,
            },
            tasks: TaskSettings {
                reportable_events: get("REPORTABLE_EVENTS").unwrap_or_else(|| {
                    "browse_item:50:distinct,share:20,review:5,ugc_post:5".into()
                }),
                invite_reward_points: parse(
                    "INVITE_REWARD_POINTS",
                    get("INVITE_REWARD_POINTS"),
                    50i64,
                )?,
            },
            mall: MallSettings {
                deduction_ladder: get("DEDUCTION_LADDER")
                    .unwrap_or_else(|| "100:0.5,300:0.8".into()),
                payment_window: duration("PAYMENT_WINDOW", "30m")?,
                crowdfund_window: duration("CROWDFUND_WINDOW", "7d")?,
            },
            blindbox: BlindBoxSettings {
                seed_rotation: duration("BLINDBOX_SEED_ROTATION", "1d")?,
            },
            jobs: JobSettings {
                enabled: flag("JOBS_ENABLED", env != AppEnv::Test)?,
                interval: duration("JOB_INTERVAL", "1h")?,
            },
            parsed: Extensions::default(),
            observability: ObservabilitySettings {
                metrics_enabled: flag("METRICS_ENABLED", true)?,
                metrics_port: get("METRICS_PORT")
                    .map(|v| {
                        v.parse::<u16>()
                            .map_err(|e| invalid("METRICS_PORT", e.to_string()))
                    })
                    .transpose()?,
                log_format: parse("LOG_FORMAT", get("LOG_FORMAT"), LogFormat::Text)?,
                otlp_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            },
            shutdown: ShutdownSettings {
                grace: duration("SHUTDOWN_GRACE", "30s")?,
            },
            graphql: GraphqlLimits {
                max_depth: parse("GRAPHQL_MAX_DEPTH", get("GRAPHQL_MAX_DEPTH"), 15usize)?,
                max_complexity: parse(
                    "GRAPHQL_MAX_COMPLEXITY",
                    get("GRAPHQL_MAX_COMPLEXITY"),
                    5000usize,
                )?,
                max_root_fields: parse(
                    "GRAPHQL_MAX_ROOT_FIELDS",
                    get("GRAPHQL_MAX_ROOT_FIELDS"),
                    20usize,
                )?,
                max_body_bytes: parse(
                    "GRAPHQL_MAX_BODY_BYTES",
                    get("GRAPHQL_MAX_BODY_BYTES"),
                    64 * 1024usize,
                )?,
            },
        })
    }

    pub fn uses_mock_wechat(&self) -> bool {
        self.wechat.appid.is_none()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_map(&map)
    }

    const SAFE_PRODUCTION: &[(&str, &str)] = &[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://u@localhost/db"),
        ("REDIS_URL", "redis://127.0.0.1/"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef-long"),
        ("WECHAT_APPID", "wx123"),
        ("WECHAT_SECRET", "s3cret"),
    ];

    fn production_without(setting: &str) -> Vec<(&'static str, &'static str)> {
        SAFE_PRODUCTION
            .iter()
            .copied()
            .filter(|(k, _)| *k != setting)
            .collect()
    }

    #[test]
    fn defaults_suit_a_fresh_development_machine() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.env, AppEnv::Development);
        assert_eq!(s.port, 8080);
        assert_eq!(s.database_url, "sqlite://data/loyalty.db?mode=rwc");
        assert!(s.redis_url.is_none());
        assert!(s.uses_mock_wechat());
        assert!(s.graphiql && s.introspection && s.seed_demo_data);
        assert_eq!(s.access_token_ttl, Duration::hours(2));
        assert_eq!(s.refresh_token_ttl, Duration::days(30));
        assert_eq!(s.refresh_grace, Duration::seconds(30));
        assert_eq!(
            (
                s.rate_limits.admin_login_ip.count,
                s.rate_limits.admin_login_username.count
            ),
            (5, 10)
        );
        assert_eq!(
            (
                s.rate_limits.admin_lockout_base,
                s.rate_limits.admin_lockout_max
            ),
            (Duration::minutes(1), Duration::hours(1))
        );
        assert_eq!(
            settings(&[("ADMIN_LOCKOUT_BASE", "2h")])
                .unwrap_err()
                .setting,
            "ADMIN_LOCKOUT_MAX"
        );
        assert_eq!(
            settings(&[("REFRESH_GRACE", "1h")]).unwrap_err().setting,
            "REFRESH_GRACE"
        );
        assert_eq!(s.timezone.local_minus_utc(), 8 * 3600);
        assert_eq!(s.rate_limits.login_ip.count, 30);
        assert_eq!(s.points.ttl, Duration::days(730));
        assert_eq!(s.points.point_value_yuan.to_string(), "0.1");
        assert_eq!(
            (s.points.hoarding_threshold, s.points.transfer_max),
            (5000, 1000)
        );
        assert!(s.jobs.enabled);
        assert!(!settings(&[("APP_ENV", "test")]).unwrap().jobs.enabled);
        assert_eq!(
            settings(&[("POINTS_TTL_DAYS", "0")]).unwrap_err().setting,
            "POINTS_TTL_DAYS"
        );
    }

    #[test]
    fn safe_production_settings_are_accepted_with_graphiql_off() {
        let s = settings(SAFE_PRODUCTION).unwrap();
        assert!(!s.graphiql && !s.introspection && !s.seed_demo_data);
    }

    #[test]
    fn production_refuses_the_mock_wechat_login() {
        let err = settings(&production_without("WECHAT_APPID")).unwrap_err();
        assert_eq!(err.setting, "WECHAT_SECRET");
        let both: Vec<_> = production_without("WECHAT_APPID")
            .into_iter()
            .filter(|(k, _)| *k != "WECHAT_SECRET")
            .collect();
        assert_eq!(settings(&both).unwrap_err().setting, "WECHAT_APPID");
    }

    #[test]
    fn production_refuses_a_missing_short_or_default_jwt_secret() {
        assert_eq!(
            settings(&production_without("JWT_SECRET"))
                .unwrap_err()
                .setting,
            "JWT_SECRET"
        );
        let mut short = production_without("JWT_SECRET");
        short.push(("JWT_SECRET", "too-short"));
        assert_eq!(settings(&short).unwrap_err().setting, "JWT_SECRET");
        let mut default = production_without("JWT_SECRET");
        default.push(("JWT_SECRET", DEV_JWT_SECRET));
        assert_eq!(settings(&default).unwrap_err().setting, "JWT_SECRET");
    }

    #[test]
    fn item15_production_refuses_a_jwt_secret_of_repeated_bytes() {
        let mut repeated = production_without("JWT_SECRET");
        let same_byte = "a".repeat(64);
        repeated.push(("JWT_SECRET", same_byte.as_str()));
        assert_eq!(settings(&repeated).unwrap_err().setting, "JWT_SECRET");
        // 15 distinct bytes, repeated to 45: long enough, still too little entropy.
        let mut fifteen = production_without("JWT_SECRET");
        let few = "abcdefghijklmno".repeat(3);
        fifteen.push(("JWT_SECRET", few.as_str()));
        assert_eq!(settings(&fifteen).unwrap_err().setting, "JWT_SECRET");
        let mut sixteen = production_without("JWT_SECRET");
        let enough = "abcdefghijklmnop".repeat(2);
        sixteen.push(("JWT_SECRET", enough.as_str()));
        assert!(settings(&sixteen).is_ok());
        // Outside production the same secret is only a development convenience.
        assert!(settings(&[("JWT_SECRET", same_byte.as_str())]).is_ok());
    }

    #[test]
    fn item2_settings_never_debug_print_their_secrets() {
        let mut s = SAFE_PRODUCTION.to_vec();
        s.push(("ADMIN_BOOTSTRAP_PASSWORD", "bootstrap-password-1"));
        let printed = format!("{:?}", settings(&s).unwrap());
        for secret in [
            "0123456789abcdef0123456789abcdef-long",
            "s3cret",
            "bootstrap-password-1",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }

    #[test]
    fn production_refuses_sqlite_without_an_explicit_opt_in() {
        let mut sqlite = production_without("DATABASE_URL");
        sqlite.push(("DATABASE_URL", "sqlite://x.db"));
        assert_eq!(settings(&sqlite).unwrap_err().setting, "DATABASE_URL");
        sqlite.push(("SQLITE_IN_PRODUCTION", "true"));
        assert!(settings(&sqlite).is_ok());
    }

    #[test]
    fn production_refuses_to_run_without_redis() {
        assert_eq!(
            settings(&production_without("REDIS_URL"))
                .unwrap_err()
                .setting,
            "REDIS_URL"
        );
    }

    #[test]
    fn production_refuses_a_short_bootstrap_password() {
        let mut s = SAFE_PRODUCTION.to_vec();
        s.push(("ADMIN_BOOTSTRAP_PASSWORD", "short"));
        assert_eq!(
            settings(&s).unwrap_err().setting,
            "ADMIN_BOOTSTRAP_PASSWORD"
        );
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let err = settings(&[("APP_PORT", "eighty")]).unwrap_err();
        assert_eq!(err.setting, "APP_PORT");
        assert!(err.to_string().starts_with("APP_PORT: "));
        assert_eq!(
            settings(&[("APP_ENV", "staging")]).unwrap_err().setting,
            "APP_ENV"
        );
        assert_eq!(
            settings(&[("LIMIT_LOGIN_IP", "30")]).unwrap_err().setting,
            "LIMIT_LOGIN_IP"
        );
    }

    #[test]
    fn durations_and_policies_parse_in_the_documented_forms() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::seconds(60));
        assert_eq!(parse_duration("90").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::minutes(15));
        assert_eq!(parse_duration("1d").unwrap(), Duration::days(1));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("h").is_err());
        let p: RatePolicy = "20/1d".parse().unwrap();
        assert_eq!((p.count, p.window), (20, Duration::days(1)));
        assert!("0/60s".parse::<RatePolicy>().is_err());
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_bare_addresses_of_both_families() {
        assert!(settings(&[]).unwrap().trusted_proxies.is_empty());
        let s = settings(&[(
            "TRUSTED_PROXIES",
            "10.0.0.0/8, 192.168.1.7 fd00::/8,::1 172.16.5.4/12",
        )])
        .unwrap();
        let nets: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            [
                "10.0.0.0/8",
                "192.168.1.7/32",
                "fd00::/8",
                "::1/128",
                "172.16.0.0/12"
            ]
        );
        for bad in [
            "10.0.0.0/33",
            "example.com",
            "10.0.0",
            "fd00::/129",
            "10.0.0.0/8;",
        ] {
            let err = settings(&[("TRUSTED_PROXIES", bad)]).unwrap_err();
            assert_eq!(err.setting, "TRUSTED_PROXIES", "{bad}");
        }
    }

    #[test]
    fn blindbox_seeds_rotate_daily_unless_set_otherwise() {
        let default = settings(&[]).unwrap();
        assert_eq!(default.blindbox.seed_rotation, Duration::days(1));
        let set = settings(&[("BLINDBOX_SEED_ROTATION", "12h")]).unwrap();
        assert_eq!(set.blindbox.seed_rotation, Duration::hours(12));
        for bad in ["0s", "soon"] {
            assert_eq!(
                settings(&[("BLINDBOX_SEED_ROTATION", bad)])
                    .unwrap_err()
                    .setting,
                "BLINDBOX_SEED_ROTATION"
            );
        }
    }

    #[test]
    fn offsets_parse_with_sign_hours_and_minutes() {
        assert_eq!(parse_offset("+08:00").unwrap().local_minus_utc(), 28800);
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -19800);
        assert_eq!(parse_offset("Z").unwrap().local_minus_utc(), 0);
        assert!(parse_offset("08:00").is_err());
        assert!(parse_offset("+25:00").is_err());
    }
}
