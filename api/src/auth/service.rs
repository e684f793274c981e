//! Sign-in use cases: member login through WeChat, refresh-token rotation, logout, and admin
//! accounts with argon2id passwords.

use std::sync::OnceLock;

use argon2::password_hash::{SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use chrono::{DateTime, SubsecRound, Utc};
use entity::{admin_user, member, refresh_token};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

use super::jwt::{Claims, TokenKind};
use super::rules::{self, AdminRole};
use super::{lockout, sessions};
use crate::anticheat;
use crate::error::{AppError, AppResult};
use crate::member as members;
use crate::member::MemberId;
use crate::state::AppState;

pub const MIN_PASSWORD_LEN: usize = 8;

/// A signed-in member session as the API answers it.
pub struct MemberSession {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub member: member::Model,
}

#[derive(Debug, Clone)]
pub struct AdminPrincipal {
    pub id: i64,
    pub username: String,
    pub role: AdminRole,
}

pub struct AdminSession {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    pub admin: AdminPrincipal,
}

/// `login(code, inviteCode)`: WeChat first (outside any transaction), then one transaction that
/// creates or touches the member and opens a refresh-token family.
#[tracing::instrument(skip_all)]
pub async fn login(
    app: &AppState,
    now: DateTime<Utc>,
    ip: Option<&str>,
    code: &str,
    invite_code: Option<&str>,
) -> AppResult<MemberSession> {
    if let Some(ip) = ip {
        anticheat::enforce_sign_in(
            app.limiter.as_ref(),
            "login",
            ip,
            app.settings.rate_limits.login_ip,
            now,
        )
        .await?;
    }
    let wechat = app.wechat.code_to_session(code).await?;
    let txn = app.db.begin().await?;
    let (member, created) = members::upsert_on_login(&txn, &wechat, invite_code, now).await?;
    // An invite counts once, at the friend's first login, for the direct inviter only.
    if let (true, Some(inviter)) = (created, member.invited_by) {
        members::invite_joined(&txn, &app.settings, inviter, member.id, now).await?;
    }
    let session_id = rules::new_session_id();
    let refresh_token = open_refresh_token(&txn, app, member.id, &session_id, now).await?;
    txn.commit().await?;
    crate::metrics::committed();
    member_session(app, member, &session_id, refresh_token, now)
}

/// `refreshSession`: the presented token is spent and its successor issued in its family.
/// Presented again within `REFRESH_GRACE` (two refreshes racing on app resume), it returns the
/// same successor pair; later, someone else may hold a copy, and the whole session is revoked.
#[tracing::instrument(skip_all)]
pub async fn refresh(app: &AppState, now: DateTime<Utc>, token: &str) -> AppResult<MemberSession> {
    let token = token.trim();
    // A refresh that loses the race for the token tries once more: it then finds the token spent
    // a moment ago, within the grace window, and answers the winner's pair.
    for _ in 0..2 {
        if let Some(session) = refresh_once(app, now, token).await? {
            return Ok(session);
        }
    }
    Err(AppError::unauthenticated(
        "this refresh token was already used; sign in again",
    ))
}

/// One try; `None` when a concurrent refresh spent the token first.
async fn refresh_once(
    app: &AppState,
    now: DateTime<Utc>,
    token: &str,
) -> AppResult<Option<MemberSession>> {
    let hash = rules::hash_refresh_token(token);
    let txn = app.db.begin().await?;
    let current = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::unauthenticated("invalid refresh token; sign in again"))?;
    let successor =
        rules::successor_refresh_token(app.settings.jwt_secret.expose_secret().as_bytes(), token);
    if let Some(spent_at) = current.revoked_at {
        if rules::within_refresh_grace(spent_at, now, app.settings.refresh_grace)
            && let Some(session) = replay(&txn, app, &current, successor, spent_at, now).await?
        {
            return Ok(Some(session));
        }
        match revoke_session(app, &txn, &current.family_id, current.member_id, now).await {
            // The row is written; instances read it while Redis fails. Revoking the refresh
            // tokens matters more than the fast copy.
            Err(AppError::Redis(e)) => {
                tracing::error!(error = %e, "marking a reused session in Redis failed");
            }
            other => other?,
        }
        txn.commit().await?;
        crate::metrics::committed();
        return Err(AppError::unauthenticated(
            "this refresh token was already used; sign in again",
        ));
    }
    if current.expires_at <= now {
        return Err(AppError::unauthenticated(
            "refresh token expired; sign in again",
        ));
    }
    // Whole seconds: the access token's `iat` is whole seconds, and a replay reissues it from
    // this stored instant, so it must come back from every database exactly as written.
    let spent_at = now.trunc_subsecs(0);
    // Conditional: of two concurrent refreshes with one token, exactly one spends it.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(spent_at))
        .filter(refresh_token::Column::Id.eq(current.id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        return Ok(None);
    }
    let member = members::find(&txn, current.member_id)
        .await?
        .ok_or_else(|| AppError::unauthenticated("member not found"))?;
    refresh_token::ActiveModel {
        member_id: Set(member.id),
        family_id: Set(current.family_id.clone()),
        token_hash: Set(rules::hash_refresh_token(&successor)),
        expires_at: Set(spent_at + app.settings.refresh_token_ttl),
        revoked_at: Set(None),
        created_at: Set(spent_at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    crate::metrics::committed();
    member_session(app, member, &current.family_id, successor, spent_at).map(Some)
}

/// The pair a spent token was exchanged for, issued again exactly (same refresh token, same
/// access token: same claims, same instant), if its successor is still live.
async fn replay(
    txn: &impl ConnectionTrait,
    app: &AppState,
    spent: &refresh_token::Model,
    successor: String,
    spent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<Option<MemberSession>> {
    let live = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(rules::hash_refresh_token(&successor)))
        .filter(refresh_token::Column::FamilyId.eq(&spent.family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .one(txn)
        .await?;
    if live.is_none() {
        return Ok(None);
    }
    let Some(member) = members::find(txn, spent.member_id).await? else {
        return Ok(None);
    };
    member_session(app, member, &spent.family_id, successor, spent_at).map(Some)
}

/// `logout`: ends this sign-in: its refresh tokens, and its access tokens from the next request.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn logout(
    app: &AppState,
    member: MemberId,
    session_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.get();
    if let Some(session_id) = session_id {
        let txn = app.db.begin().await?;
        revoke_session(app, &txn, session_id, member_id, now).await?;
        txn.commit().await?;
        crate::metrics::committed();
    }
    Ok(())
}

/// Revokes every refresh token of the session and refuses its access tokens.
async fn revoke_session(
    app: &AppState,
    txn: &impl ConnectionTrait,
    family_id: &str,
    member_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    sessions::revoke(app, txn, family_id, member_id, now).await
}

async fn open_refresh_token(
    db: &impl ConnectionTrait,
    app: &AppState,
    member_id: i64,
    family_id: &str,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let token = rules::new_refresh_token();
    refresh_token::ActiveModel {
        member_id: Set(member_id),
        family_id: Set(family_id.to_string()),
        token_hash: Set(rules::hash_refresh_token(&token)),
        expires_at: Set(now + app.settings.refresh_token_ttl),
        revoked_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token)
}

fn member_session(
    app: &AppState,
    member: member::Model,
    session_id: &str,
    refresh_token: String,
    now: DateTime<Utc>,
) -> AppResult<MemberSession> {
    let (access_token, expires_at) = app.jwt.issue(
        TokenKind::Member,
        &member.id.to_string(),
        Some(session_id),
        now,
        app.settings.access_token_ttl,
    )?;
    Ok(MemberSession {
        access_token,
        refresh_token,
        expires_at,
        member,
    })
}

/// Who a verified member token names, unless its session has ended (logout, revoked family).
#[tracing::instrument(skip_all)]
pub async fn member_from_claims(
    app: &AppState,
    claims: &Claims,
    now: DateTime<Utc>,
) -> AppResult<(i64, Option<String>)> {
    let id = claims
        .sub
        .parse()
        .map_err(|_| AppError::unauthenticated("invalid access token"))?;
    if let Some(session) = &claims.sid
        && sessions::is_revoked(app, session, now).await?
    {
        return Err(AppError::unauthenticated(
            "this session has ended; sign in again",
        ));
    }
    Ok((id, claims.sid.clone()))
}

/// Who a verified admin token names, with the role as it is now in the database, so a removed
/// or demoted admin loses access at once rather than when the token expires.
#[tracing::instrument(skip_all)]
pub async fn admin_from_claims(
    db: &DatabaseConnection,
    claims: &Claims,
) -> AppResult<AdminPrincipal> {
    let id: i64 = claims
        .sub
        .parse()
        .map_err(|_| AppError::unauthenticated("invalid access token"))?;
    let admin = admin_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("this admin account no longer exists"))?;
    principal(admin)
}

/// The admin with this (normalised) username, if any.
#[tracing::instrument(skip_all)]
pub async fn admin_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> AppResult<Option<AdminPrincipal>> {
    admin_user::Entity::find()
        .filter(admin_user::Column::Username.eq(username))
        .one(db)
        .await?
        .map(principal)
        .transpose()
}

fn principal(admin: admin_user::Model) -> AppResult<AdminPrincipal> {
    let role = AdminRole::parse(&admin.role).ok_or_else(|| {
        AppError::internal(format!(
            "admin {} has unknown role {}",
            admin.id, admin.role
        ))
    })?;
    Ok(AdminPrincipal {
        id: admin.id,
        username: admin.username,
        role,
    })
}

/// `adminLogin`: limited per address (every attempt) and locked out per username and per
/// address after repeated failures (see `lockout`); as slow for an unknown username as for a
/// wrong password, so it tells an attacker nothing.
#[tracing::instrument(skip_all)]
pub async fn admin_login(
    app: &AppState,
    now: DateTime<Utc>,
    ip: Option<&str>,
    username: &str,
    password: &str,
) -> AppResult<AdminSession> {
    let username = username.trim().to_ascii_lowercase();
    if let Some(ip) = ip {
        anticheat::enforce_sign_in(
            app.limiter.as_ref(),
            "admin_login",
            ip,
            app.settings.rate_limits.login_ip,
            now,
        )
        .await?;
    }
    // Checked before the password, so a locked key answers the same whatever was typed.
    let keys = lockout::check(app, &username, ip, now).await?;
    let admin = admin_user::Entity::find()
        .filter(admin_user::Column::Username.eq(&username))
        .one(&app.db)
        .await?;
    let hash = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::internal(format!("password check task failed: {e}")))?;
    let admin = match admin {
        Some(admin) if matches => principal(admin)?,
        _ => {
            lockout::record_failure(app, keys, now).await?;
            return Err(AppError::unauthenticated("wrong username or password"));
        }
    };
    let (access_token, expires_at) = app.jwt.issue(
        TokenKind::Admin,
        &admin.id.to_string(),
        None,
        now,
        app.settings.access_token_ttl,
    )?;
    Ok(AdminSession {
        access_token,
        expires_at,
        admin,
    })
}

/// `clearAdminLockout` (SUPERADMIN): lifts the lockout of a username and/or an address.
#[tracing::instrument(skip_all)]
pub async fn clear_admin_lockout(
    app: &AppState,
    username: Option<&str>,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let username = username
        .map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| !u.is_empty());
    let ip = match ip.map(str::trim).filter(|ip| !ip.is_empty()) {
        None => None,
        // The canonical form, as the address of a request is written.
        Some(ip) => Some(
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| AppError::validation("ip", "not an IP address"))?
                .to_string(),
        ),
    };
    if username.is_none() && ip.is_none() {
        return Err(AppError::validation(
            "username",
            "give a username, an IP address, or both",
        ));
    }
    lockout::clear(app, username.as_deref(), ip.as_deref(), now).await
}

pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("hashing a password failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing anyone knows, verified against when the username does not exist.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&rules::new_refresh_token()).unwrap_or_default())
}

/// Creates an admin account (used by the bootstrap, the `create-admin` command and tests).
#[tracing::instrument(skip_all)]
pub async fn create_admin(
    db: &impl ConnectionTrait,
    username: &str,
    password: &SecretString,
    role: AdminRole,
    now: DateTime<Utc>,
) -> AppResult<AdminPrincipal> {
    let username = username.trim().to_ascii_lowercase();
    if !rules::valid_admin_username(&username) {
        return Err(AppError::validation(
            "username",
            "3 to 64 characters of a-z, 0-9, '.', '_' or '-'",
        ));
    }
    if password.expose_secret().chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::validation(
            "password",
            format!("at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let password = password.expose_secret().to_string();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::internal(format!("password hash task failed: {e}")))??;
    let admin = admin_user::ActiveModel {
        username: Set(username),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        AppError::on_unique_violation(e, AppError::Conflict("that username is taken".into()))
    })?;
    principal(admin)
}

/// Creates the SUPERADMIN `admin` when there is no admin at all and a bootstrap password is set.
#[tracing::instrument(skip_all)]
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    password: Option<&SecretString>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let Some(password) = password else {
        return Ok(false);
    };
    if admin_user::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    create_admin(db, "admin", password, AdminRole::Superadmin, now).await?;
    Ok(true)
}
