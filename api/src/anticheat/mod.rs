//! Anti-cheat: one gate that resolvers call before a points action. It refuses blacklisted
//! members, applies the hard and soft rate limits of DESIGN.md s6 (soft ones ask for a captcha),
//! and flags members who earn too fast. Modules call `gate` and never touch the limiter's keys.
//!
//! Owns: rate-limit counters, captcha tokens, risk events, the blacklist decision.
//! May call: `member` (to mark a member blacklisted), `points` and `idempotency` (blacklisting
//! revokes points through the runner), `auth` and the infrastructure; no feature module.

mod blacklist;
mod captcha;
mod graphql;
mod limiter;
mod risk;
pub mod rules;
mod store;

use chrono::{DateTime, Duration, Utc};

pub use blacklist::{blacklist_member, is_blacklisted, unblacklist_member};
pub use captcha::{ArithmeticCaptcha, CaptchaProvider};
pub use graphql::{AnticheatAdminMutation, AnticheatAdminQuery, CaptchaMutation};
pub use limiter::{Decision, InProcessLimiter, Limiter, RedisLimiter};
pub use risk::record as record_risk_event;
pub use rules::client_address;
pub use store::{MemoryStore, RedisStore, Store};

use crate::config::RatePolicy;
use crate::context::{ContextExt, RequestContext};
use crate::error::{AppError, AppResult, UNAVAILABLE_RETRY_SECONDS, redis_unreachable};
use crate::member::MemberId;
use crate::state::AppState;

const CAPTCHA_TTL_MINUTES: i64 = 5;

/// Counts one hit of `action` by `subject` (an IP, a member, a device) and refuses it with
/// RATE_LIMITED once the policy's count for the current window is used up.
pub async fn enforce(
    limiter: &dyn Limiter,
    action: &str,
    subject: &str,
    policy: RatePolicy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    within_limit(limiter.hit(action, subject, policy, now).await?)
}

/// `enforce` for sign-in limits: while Redis is unreachable they are counted in this process
/// (logged), so members and admins can still sign in; each instance then limits on its own.
pub async fn enforce_sign_in(
    limiter: &dyn Limiter,
    action: &str,
    subject: &str,
    policy: RatePolicy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    within_limit(limiter.hit_or_local(action, subject, policy, now).await?)
}

fn within_limit(decision: Decision) -> AppResult<()> {
    if decision.allowed {
        Ok(())
    } else {
        Err(AppError::RateLimited {
            retry_after_seconds: decision.retry_after_seconds,
        })
    }
}

/// The points actions the gate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CheckIn,
    Share,
    /// Any other action that earns points (tasks, reported events).
    Earn,
    Transfer,
    Draw,
    /// Any other action that spends points (redeem, donate, contribute).
    Spend,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::CheckIn => "checkin",
            Action::Share => "share",
            Action::Earn => "earn",
            Action::Transfer => "transfer",
            Action::Draw => "draw",
            Action::Spend => "spend",
        }
    }

    fn earns_points(self) -> bool {
        matches!(self, Action::CheckIn | Action::Share | Action::Earn)
    }
}

/// Who is acting, as the gate keys its limits.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub member_id: i64,
    pub device_id: Option<&'a str>,
}

impl Subject<'_> {
    /// Device limits fall back to the member when the client sends no `X-Device-Id`.
    fn device_key(&self) -> String {
        match self.device_id {
            Some(device) => format!("d:{device}"),
            None => format!("m:{}", self.member_id),
        }
    }

    /// The counters of a device-keyed soft limit: the device's, and the member's allowance
    /// (`rules::member_allowance`), which a rotated device id does not reset.
    fn device_counters(&self, action: Action, device: RatePolicy) -> [Counter; 2] {
        [
            Counter {
                action: action.name().to_string(),
                subject: self.device_key(),
                policy: device,
            },
            Counter {
                action: format!("{}_member", action.name()),
                subject: self.member_id.to_string(),
                policy: rules::member_allowance(device),
            },
        ]
    }
}

/// One limiter counter a soft limit moves.
struct Counter {
    action: String,
    subject: String,
    policy: RatePolicy,
}

/// What a points-moving resolver starts with: the signed-in member, let through the gate for
/// `action` (keyed by member and `X-Device-Id`), with the app and the request.
pub async fn gated<'c>(
    ctx: &'c async_graphql::Context<'_>,
    action: Action,
) -> AppResult<(&'c AppState, &'c RequestContext, MemberId)> {
    let (app, req, member) = (ctx.app()?, ctx.request()?, ctx.member_id()?);
    let who = Subject {
        member_id: member.get(),
        device_id: req.device_id.as_deref(),
    };
    gate(app, action, who, req.now).await?;
    Ok((app, req, member))
}

/// Lets a points action through, or says why not. With Redis unreachable it fails closed:
/// no points move unchecked (UNAVAILABLE: the member did nothing wrong, retry later).
pub async fn gate(
    app: &AppState,
    action: Action,
    who: Subject<'_>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let decision = match check(app, action, who, now).await {
        Err(AppError::Redis(e)) if redis_unreachable(&e) => {
            tracing::error!(error = %e, action = action.name(), "anti-cheat store unreachable; refusing");
            Err(AppError::Unavailable {
                retry_after_seconds: UNAVAILABLE_RETRY_SECONDS,
            })
        }
        other => other,
    };
    let outcome = match &decision {
        Ok(()) => "allowed",
        Err(AppError::CaptchaRequired { .. }) => "captcha",
        Err(AppError::RateLimited { .. }) => "rate_limited",
        Err(AppError::Blacklisted) => "blacklisted",
        Err(AppError::Unavailable { .. }) => "unavailable",
        Err(_) => "error",
    };
    metrics::counter!(crate::metrics::names::GATE, "action" => action.name(), "outcome" => outcome)
        .increment(1);
    decision
}

async fn check(
    app: &AppState,
    action: Action,
    who: Subject<'_>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if is_blacklisted(app, who.member_id, now).await? {
        return Err(AppError::Blacklisted);
    }
    let limits = &app.settings.rate_limits;
    let limiter = app.limiter.as_ref();
    let member_key = who.member_id.to_string();
    enforce(
        limiter,
        "mutation",
        &member_key,
        limits.mutation_member,
        now,
    )
    .await?;
    match action {
        Action::CheckIn => {
            let counters = who.device_counters(action, limits.checkin_device);
            soft_limit(app, action, &counters, who, now).await?
        }
        Action::Share => {
            let counter = Counter {
                action: action.name().to_string(),
                subject: member_key.clone(),
                policy: limits.share_member,
            };
            soft_limit(app, action, &[counter], who, now).await?
        }
        Action::Transfer => {
            let counters = who.device_counters(action, limits.transfer_device);
            soft_limit(app, action, &counters, who, now).await?
        }
        Action::Draw => enforce(limiter, "draw", &member_key, limits.draw_member, now).await?,
        Action::Earn | Action::Spend => {}
    }
    if action.earns_points() {
        let policy = limits.earn_member;
        let decision = limiter.hit("earn", &member_key, policy, now).await?;
        // Flag, do not block; once per window, not once per request.
        if decision.count == policy.count + 1 {
            risk::record(
                &app.db,
                Some(who.member_id),
                who.device_id,
                "earn_rate",
                serde_json::json!({ "limit": policy.count, "windowSeconds": policy.window.num_seconds(), "action": action.name() }),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

fn pass_key(member_id: i64, action: &str) -> String {
    format!("captcha_pass:{{{member_id}}}:{action}")
}

fn challenge_key(challenge_id: &str) -> String {
    format!("captcha:{challenge_id}")
}

/// Over a soft limit (any of its counters), a solved captcha's pass lets one more through;
/// without one, a challenge. Every counter counts every attempt.
async fn soft_limit(
    app: &AppState,
    action: Action,
    counters: &[Counter],
    who: Subject<'_>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut within = true;
    for c in counters {
        within &= app
            .limiter
            .hit(&c.action, &c.subject, c.policy, now)
            .await?
            .allowed;
    }
    if within {
        return Ok(());
    }
    if app
        .store
        .take(&pass_key(who.member_id, action.name()), now)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let challenge_id = crate::auth::rules::random_hex(16);
    let (prompt, answer) = app.captcha.challenge();
    let challenge = rules::Challenge {
        member_id: who.member_id,
        action: action.name().to_string(),
        answer,
        attempts_left: rules::CAPTCHA_ATTEMPTS,
    };
    let stored =
        serde_json::to_string(&challenge).map_err(|e| AppError::internal(e.to_string()))?;
    app.store
        .put(
            &challenge_key(&challenge_id),
            &stored,
            Duration::minutes(CAPTCHA_TTL_MINUTES),
            now,
        )
        .await?;
    Err(AppError::CaptchaRequired {
        challenge_id,
        prompt,
    })
}

/// `solveCaptcha`: true grants a one-use pass for that member and action; false is a wrong
/// answer (three per challenge). An unknown, expired, used-up or foreign challenge is NOT_FOUND.
pub async fn solve_captcha(
    app: &AppState,
    member: MemberId,
    challenge_id: &str,
    answer: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let member_id = member.get();
    let key = challenge_key(challenge_id.trim());
    let Some(raw) = app.store.get(&key, now).await? else {
        return Err(AppError::NotFound("challenge"));
    };
    let challenge: rules::Challenge = serde_json::from_str(&raw)
        .map_err(|e| AppError::internal(format!("stored challenge: {e}")))?;
    if challenge.member_id != member_id {
        return Err(AppError::NotFound("challenge"));
    }
    // Taken, not read, so two concurrent answers cannot both use it.
    if app.store.take(&key, now).await?.is_none() {
        return Err(AppError::NotFound("challenge"));
    }
    let ttl = Duration::minutes(CAPTCHA_TTL_MINUTES);
    if app.captcha.accepts(&challenge.answer, answer) {
        app.store
            .put(&pass_key(member_id, &challenge.action), "1", ttl, now)
            .await?;
        return Ok(true);
    }
    if let Some(left) = rules::after_wrong_answer(challenge) {
        let stored = serde_json::to_string(&left).map_err(|e| AppError::internal(e.to_string()))?;
        app.store.put(&key, &stored, ttl, now).await?;
    }
    Ok(false)
}
