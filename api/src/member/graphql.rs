//! Member-facing resolvers of the profile.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::member;
use rust_decimal::Decimal;

use super::MemberId;
use super::rules::tier as tier_rules;
use super::service::{self, ProfileChange};
use super::tier;
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

    async fn growth_value(&self) -> i64 {
        self.0.growth_value
    }

    async fn tier(&self, ctx: &Context<'_>) -> async_graphql::Result<TierView> {
        let app = ctx.app()?;
        let tiers = super::cached_tiers(app).await?;
        Ok(tier::current(&self.0, &tiers)?.clone().into())
    }

    async fn tier_valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.tier_valid_until
    }

    /// Growth value still needed for the next tier; null at the top.
    async fn next_tier(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TierProgress>> {
        let (app, now) = (ctx.app()?, ctx.now()?);
        let tiers = super::cached_tiers(app).await?;
        let rank = tier::current(&self.0, &tiers)?.rank;
        let growth = tier::growth_last_12_months(&app.db, self.0.id, now).await?;
        let rules: Vec<_> = tiers.iter().map(tier::Tier::rule).collect();
        Ok(
            tier_rules::next_tier(rank, growth, &rules).and_then(|(next, growth_needed, ratio)| {
                let tier = tiers.iter().find(|t| t.code == next.code)?.clone();
                Some(TierProgress {
                    tier: tier.into(),
                    growth_needed,
                    ratio,
                })
            }),
        )
    }

    /// True during the last days of tier validity, when purchase points are multiplied.
    async fn protection_sprint(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let upper_tier = self.0.tier_code.is_some();
        Ok(upper_tier && tier_rules::in_sprint(self.0.tier_valid_until, ctx.now()?))
    }

    /// The tier the member would hold if re-evaluated now; null when it would not change.
    async fn downgrade_preview(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<TierView>> {
        let (app, now) = (ctx.app()?, ctx.now()?);
        let tiers = super::cached_tiers(app).await?;
        Ok(tier::downgrade_preview(&app.db, &self.0, &tiers, now)
            .await?
            .map(Into::into))
    }

    async fn active_title(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::progress::TitleView>> {
        let Some(code) = &self.0.active_title_code else {
            return Ok(None);
        };
        let app = ctx.app()?;
        let titles = app.extensions.get::<super::Titles>()?;
        Ok(titles
            .0
            .earned_title(&app.db, MemberId::new(self.0.id), code)
            .await?)
    }

    async fn check_in_streak(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let app = ctx.app()?;
        let today = crate::clock::business_date(ctx.now()?, app.settings.timezone);
        let streaks = app.extensions.get::<super::Streaks>()?;
        Ok(streaks
            .0
            .current_streak(&app.db, MemberId::new(self.0.id), today)
            .await?)
    }

    /// Points that expire within the next 30 days.
    async fn points_expiring_soon(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let app = ctx.app()?;
        Ok(points::expiring_soon(&app.db, MemberId::new(self.0.id), ctx.now()?).await?)
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
    async fn growth_value(&self) -> i64 {
        self.0.growth_value
    }
    async fn tier_code(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        // From the cached ladder: one statement per row would grow with the page.
        let tiers = super::cached_tiers(ctx.app()?).await?;
        Ok(tier::current(&self.0, &tiers)?.code.clone())
    }
    async fn rfm_segment(&self) -> Option<&str> {
        self.0.rfm_segment.as_deref()
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

// A tier with its benefits. A plain comment, not a doc comment: the schema gives the Tier type
// no description.
#[derive(SimpleObject)]
#[graphql(name = "Tier")]
pub struct TierView {
    code: String,
    name: String,
    rank: i32,
    growth_threshold: i64,
    /// Price factor for the member's purchases, e.g. 0.95.
    discount: Decimal,
    /// Multiplier on earned points, e.g. 1.2.
    points_multiplier: Decimal,
    benefits: Vec<String>,
}

impl From<tier::Tier> for TierView {
    fn from(t: tier::Tier) -> Self {
        TierView {
            code: t.code,
            name: t.name,
            rank: t.rank,
            growth_threshold: t.growth_threshold,
            discount: t.discount,
            points_multiplier: t.points_multiplier,
            benefits: t.benefits,
        }
    }
}

#[derive(SimpleObject)]
pub struct TierProgress {
    tier: TierView,
    growth_needed: i64,
    /// 0..1, for a progress bar.
    ratio: f64,
}

#[derive(Default)]
pub struct MemberQuery;

#[Object]
impl MemberQuery {
    /// All tiers, lowest first, with their benefits and thresholds.
    async fn tiers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TierView>> {
        let app = ctx.app()?;
        Ok(super::cached_tiers(app)
            .await?
            .iter()
            .cloned()
            .map(Into::into)
            .collect())
    }

    /// The signed-in member.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<MemberView> {
        let app = ctx.app()?;
        let member = service::find(&app.db, (ctx.member_id()?).get())
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
