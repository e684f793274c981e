//! Member-facing resolvers of the profile.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use entity::member;

use super::service::{self, ProfileChange};
use crate::context::ContextExt;
use crate::error::AppError;
use crate::points;
use crate::scalars::Date;

/// A member as the member sees themself.
pub struct MemberView(pub member::Model);

#[Object(name = "Member")]
impl MemberView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Short public code, shown to friends for transfers and invites.
    async fn member_no(&self) -> &str {
        &self.0.member_no
    }

    async fn nickname(&self) -> &str {
        &self.0.nickname
    }

    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }

    async fn birthday(&self) -> Option<Date> {
        self.0.birthday.map(Date)
    }

    async fn invite_code(&self) -> &str {
        &self.0.invite_code
    }

    async fn points(&self) -> i64 {
        self.0.points
    }

    /// Points that expire within the next 30 days.
    async fn points_expiring_soon(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let app = ctx.app()?;
        Ok(points::expiring_soon(&app.db, self.0.id, ctx.now()?).await?)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A member as an operator sees them.
pub struct MemberAdminView(pub member::Model);

#[Object]
impl MemberAdminView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn member_no(&self) -> &str {
        &self.0.member_no
    }
    async fn openid(&self) -> &str {
        &self.0.openid
    }
    async fn nickname(&self) -> &str {
        &self.0.nickname
    }
    async fn points(&self) -> i64 {
        self.0.points
    }
    async fn blacklisted(&self) -> bool {
        self.0.blacklisted_at.is_some()
    }
    async fn blacklist_reason(&self) -> Option<&str> {
        self.0.blacklist_reason.as_deref()
    }
    async fn last_active_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_active_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Default)]
pub struct MemberQuery;

#[Object]
impl MemberQuery {
    /// The signed-in member.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<MemberView> {
        let app = ctx.app()?;
        let member = service::find(&app.db, ctx.member_id()?)
            .await?
            .ok_or_else(|| AppError::unauthenticated("member not found"))?;
        Ok(MemberView(member))
    }
}

#[derive(InputObject)]
pub struct ProfileInput {
    nickname: Option<String>,
    /// null removes the avatar.
    avatar_url: MaybeUndefined<String>,
    /// Can be set once; birthday rewards follow it.
    birthday: Option<Date>,
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: ProfileInput,
    ) -> async_graphql::Result<MemberView> {
        let app = ctx.app()?;
        let change = ProfileChange {
            nickname: input.nickname,
            avatar_url: match input.avatar_url {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(url) => Some(Some(url)),
            },
            birthday: input.birthday.map(|d| d.0),
        };
        let member = service::update_profile(
            &app.db,
            ctx.member_id()?,
            change,
            ctx.now()?,
            app.settings.timezone,
        )
        .await?;
        Ok(MemberView(member))
    }
}
