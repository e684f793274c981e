//! Sign-in resolvers of both endpoints.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::guard::RoleGuard;
use super::rules::{ANY_ADMIN, AdminRole, SUPERADMINS};
use super::service::{self, AdminPrincipal, MemberSession};
use crate::context::{Caller, ContextExt};
use crate::member::MemberView;

#[derive(SimpleObject)]
pub struct AuthPayload {
    access_token: String,
    refresh_token: String,
    expires_at: DateTime<Utc>,
    member: MemberView,
}

impl From<MemberSession> for AuthPayload {
    fn from(s: MemberSession) -> Self {
        AuthPayload {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_at: s.expires_at,
            member: MemberView(s.member),
        }
    }
}

#[derive(Default)]
pub struct MemberAuthMutation;

#[Object]
impl MemberAuthMutation {
    /// Exchange a wx.login code for a session. Creates the member on first login.
    async fn login(
        &self,
        ctx: &Context<'_>,
        code: String,
        invite_code: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        let (app, req) = (ctx.app()?, ctx.request()?);
        let session = service::login(
            app,
            req.now,
            req.ip.as_deref(),
            &code,
            invite_code.as_deref(),
        )
        .await?;
        Ok(session.into())
    }

    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let session = service::refresh(ctx.app()?, ctx.now()?, &refresh_token).await?;
        Ok(session.into())
    }

    /// Ends this sign-in: its refresh token stops working, and so do its access tokens.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let member_id = ctx.member_id()?;
        let session = match &ctx.request()?.caller {
            Caller::Member { session, .. } => session.clone(),
            _ => None,
        };
        service::logout(ctx.app()?, member_id, session.as_deref(), ctx.now()?).await?;
        Ok(true)
    }
}

#[derive(SimpleObject)]
#[graphql(name = "AdminUser")]
pub struct AdminUserView {
    id: ID,
    username: String,
    role: AdminRole,
}

impl From<&AdminPrincipal> for AdminUserView {
    fn from(a: &AdminPrincipal) -> Self {
        AdminUserView {
            id: ID(a.id.to_string()),
            username: a.username.clone(),
            role: a.role,
        }
    }
}

#[derive(SimpleObject)]
pub struct AdminAuthPayload {
    access_token: String,
    expires_at: DateTime<Utc>,
    admin: AdminUserView,
}

#[derive(Default)]
pub struct AdminAuthQuery;

#[Object]
impl AdminAuthQuery {
    #[graphql(guard = "RoleGuard(ANY_ADMIN)")]
    async fn admin_me(&self, ctx: &Context<'_>) -> async_graphql::Result<AdminUserView> {
        Ok(ctx.admin()?.into())
    }
}

#[derive(Default)]
pub struct AdminAuthMutation;

#[Object]
impl AdminAuthMutation {
    async fn admin_login(
        &self,
        ctx: &Context<'_>,
        username: String,
        #[graphql(secret)] password: String,
    ) -> async_graphql::Result<AdminAuthPayload> {
        let (app, req) = (ctx.app()?, ctx.request()?);
        let session =
            service::admin_login(app, req.now, req.ip.as_deref(), &username, &password).await?;
        Ok(AdminAuthPayload {
            access_token: session.access_token,
            expires_at: session.expires_at,
            admin: (&session.admin).into(),
        })
    }

    /// Lifts an admin-login lockout (after repeated wrong passwords) of a username, an IP
    /// address, or both, and restarts their failure counts. True if one of them was locked.
    #[graphql(guard = "RoleGuard(SUPERADMINS)")]
    async fn clear_admin_lockout(
        &self,
        ctx: &Context<'_>,
        username: Option<String>,
        ip: Option<String>,
    ) -> async_graphql::Result<bool> {
        Ok(
            service::clear_admin_lockout(
                ctx.app()?,
                username.as_deref(),
                ip.as_deref(),
                ctx.now()?,
            )
            .await?,
        )
    }
}
