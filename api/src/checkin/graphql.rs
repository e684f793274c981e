//! Check-in resolvers: the member's check-in, make-ups and calendar; the operator's rules.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::rules::CheckInRules as Rules;
use super::service::{self, Calendar, CheckInOutcome};
use crate::anticheat::{self, Action};
use crate::auth::RoleGuard;
use crate::auth::rules::{OPERATORS, READERS};
use crate::context::ContextExt;
use crate::member::MemberView;
use crate::scalars::Date;

#[derive(SimpleObject)]
pub struct CheckInResult {
    date: Date,
    /// All points this check-in credited, streak bonus included.
    points_awarded: i64,
    streak: i64,
    /// Extra points for reaching a streak milestone today, 0 if none.
    streak_bonus: i64,
    member: MemberView,
    /// Achievements unlocked by this action.
    unlocked: Vec<crate::progress::AchievementView>,
}

impl From<CheckInOutcome> for CheckInResult {
    fn from(o: CheckInOutcome) -> Self {
        CheckInResult {
            date: Date(o.day),
            points_awarded: o.points,
            streak: o.streak,
            streak_bonus: o.bonus,
            member: MemberView(o.member),
            unlocked: crate::progress::unlocked_achievements(&o.unlocked),
        }
    }
}

#[derive(SimpleObject)]
pub struct CheckInCalendar {
    month: String,
    checked_days: Vec<Date>,
    made_up_days: Vec<Date>,
    streak: i64,
    make_ups_left: i64,
    make_up_cost: i64,
    today_checked_in: bool,
}

impl From<Calendar> for CheckInCalendar {
    fn from(c: Calendar) -> Self {
        CheckInCalendar {
            month: c.month,
            checked_days: c.checked_days.into_iter().map(Date).collect(),
            made_up_days: c.made_up_days.into_iter().map(Date).collect(),
            streak: c.streak,
            make_ups_left: c.make_ups_left,
            make_up_cost: c.make_up_cost,
            today_checked_in: c.today_checked_in,
        }
    }
}

#[derive(Default)]
pub struct CheckInQuery;

#[Object]
impl CheckInQuery {
    /// One month of check-ins; month is YYYY-MM, default the current month.
    async fn check_in_calendar(
        &self,
        ctx: &Context<'_>,
        month: Option<String>,
    ) -> async_graphql::Result<CheckInCalendar> {
        let app = ctx.app()?;
        let calendar = service::calendar(
            &app.db,
            &app.settings,
            ctx.member_id()?,
            month.as_deref(),
            ctx.now()?,
        )
        .await?;
        Ok(calendar.into())
    }
}

#[derive(Default)]
pub struct CheckInMutation;

#[Object]
impl CheckInMutation {
    async fn check_in(
        &self,
        ctx: &Context<'_>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CheckInResult> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::CheckIn).await?;
        let outcome = service::check_in(
            &app.db,
            &app.settings,
            member_id,
            idempotency_key.as_deref(),
            req.now,
        )
        .await?;
        Ok(outcome.into())
    }

    /// Check in for a missed day of the current month, at a points cost.
    async fn make_up_check_in(
        &self,
        ctx: &Context<'_>,
        date: Date,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CheckInResult> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::CheckIn).await?;
        let outcome = service::make_up(
            &app.db,
            &app.settings,
            member_id,
            date.0,
            idempotency_key.as_deref(),
            req.now,
        )
        .await?;
        Ok(outcome.into())
    }
}

#[derive(SimpleObject)]
pub struct StreakBonus {
    days: i64,
    points: i64,
}

#[derive(InputObject)]
pub struct StreakBonusInput {
    days: i64,
    points: i64,
}

#[derive(SimpleObject)]
pub struct CheckInRules {
    base_points: i64,
    /// Extra points on reaching these streak lengths.
    streak_bonuses: Vec<StreakBonus>,
    make_up_cost: i64,
    make_ups_per_month: i64,
}

impl From<Rules> for CheckInRules {
    fn from(r: Rules) -> Self {
        CheckInRules {
            base_points: r.base_points,
            streak_bonuses: r
                .streak_bonuses
                .into_iter()
                .map(|(days, points)| StreakBonus { days, points })
                .collect(),
            make_up_cost: r.make_up_cost,
            make_ups_per_month: r.make_ups_per_month,
        }
    }
}

#[derive(InputObject)]
pub struct CheckInRulesInput {
    base_points: i64,
    streak_bonuses: Vec<StreakBonusInput>,
    make_up_cost: i64,
    make_ups_per_month: i64,
}

#[derive(Default)]
pub struct CheckInAdminQuery;

#[Object]
impl CheckInAdminQuery {
    #[graphql(guard = "RoleGuard(READERS)")]
    async fn check_in_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<CheckInRules> {
        Ok(service::rules(&ctx.app()?.db).await?.into())
    }
}

#[derive(Default)]
pub struct CheckInAdminMutation;

#[Object]
impl CheckInAdminMutation {
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn update_check_in_rules(
        &self,
        ctx: &Context<'_>,
        input: CheckInRulesInput,
    ) -> async_graphql::Result<CheckInRules> {
        let rules = Rules {
            base_points: input.base_points,
            streak_bonuses: input
                .streak_bonuses
                .into_iter()
                .map(|b| (b.days, b.points))
                .collect(),
            make_up_cost: input.make_up_cost,
            make_ups_per_month: input.make_ups_per_month,
        };
        Ok(service::update_rules(&ctx.app()?.db, rules, ctx.now()?)
            .await?
            .into())
    }
}
