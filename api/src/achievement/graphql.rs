//! Achievement-wall resolvers: the wall, showcase, titles and leaderboards; the operator's
//! definitions.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{achievement, member_title};

use super::definitions::{self, AchievementChange};
use super::rules::LeaderboardKind;
use super::wall::{self, Wall, WallEntry};
use super::{leaderboard, titles};
use crate::auth::RoleGuard;
use crate::auth::rules::OPERATORS;
use crate::context::ContextExt;
use crate::error::AppError;
use crate::member::MemberView;
use crate::pagination::MAX_PAGE_SIZE;
use crate::progress::{AchievementView, TitleView};

/// How an achievement shows, in the wall and in the `unlocked` lists of other modules' mutations.
pub fn view(a: &achievement::Model) -> AchievementView {
    AchievementView {
        code: a.code.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        category: a.category.clone(),
        icon_url: a.icon_url.clone(),
        hidden: a.hidden,
        threshold: a.threshold,
        reward_points: a.reward_points,
        title: match (&a.title_code, &a.title_name) {
            (Some(code), Some(name)) => Some(TitleView {
                code: code.clone(),
                name: name.clone(),
            }),
            _ => None,
        },
    }
}

fn title_view(t: member_title::Model) -> TitleView {
    TitleView {
        code: t.code,
        name: t.name,
    }
}

#[derive(SimpleObject)]
pub struct AchievementProgress {
    achievement: AchievementView,
    progress: i64,
    unlocked: bool,
    unlocked_at: Option<DateTime<Utc>>,
    /// Share of members who have unlocked it, 0..1.
    rarity: f64,
}

impl From<WallEntry> for AchievementProgress {
    fn from(e: WallEntry) -> Self {
        AchievementProgress {
            achievement: view(&e.achievement),
            progress: e.progress,
            unlocked: e.unlocked_at.is_some(),
            unlocked_at: e.unlocked_at,
            rarity: e.rarity,
        }
    }
}

#[derive(SimpleObject)]
pub struct AchievementWall {
    showcase: Vec<AchievementView>,
    achievements: Vec<AchievementProgress>,
    unlocked_count: i64,
    titles: Vec<TitleView>,
}

impl From<Wall> for AchievementWall {
    fn from(w: Wall) -> Self {
        AchievementWall {
            showcase: w.showcase.iter().map(view).collect(),
            unlocked_count: w.entries.iter().filter(|e| e.unlocked_at.is_some()).count() as i64,
            achievements: w.entries.into_iter().map(Into::into).collect(),
            titles: w.titles.into_iter().map(title_view).collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct LeaderboardEntry {
    rank: i64,
    member_no: String,
    nickname: String,
    score: i64,
}

#[derive(SimpleObject)]
pub struct Leaderboard {
    kind: LeaderboardKind,
    entries: Vec<LeaderboardEntry>,
    my_rank: Option<i64>,
}

#[derive(Default)]
pub struct AchievementQuery;

#[Object]
impl AchievementQuery {
    async fn achievement_wall(&self, ctx: &Context<'_>) -> async_graphql::Result<AchievementWall> {
        Ok(wall::wall(&ctx.app()?.db, ctx.member_id()?).await?.into())
    }

    #[graphql(complexity = "crate::pagination::page_cost(first, 50, child_complexity)")]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        kind: LeaderboardKind,
        #[graphql(default = 50)] first: Option<i32>,
    ) -> async_graphql::Result<Leaderboard> {
        // The contract types it nullable: an explicit null means the default.
        let first = first.unwrap_or(50);
        if !(1..=MAX_PAGE_SIZE).contains(&first) {
            return Err(AppError::validation(
                "first",
                format!("first must be 1 to {MAX_PAGE_SIZE}"),
            )
            .into());
        }
        let app = ctx.app()?;
        let board =
            leaderboard::leaderboard(app, kind, first as u64, ctx.member_id()?, ctx.now()?).await?;
        Ok(Leaderboard {
            kind,
            entries: board
                .entries
                .into_iter()
                .map(|(rank, m, score)| LeaderboardEntry {
                    rank,
                    member_no: m.member_no,
                    nickname: m.nickname,
                    score,
                })
                .collect(),
            my_rank: board.my_rank,
        })
    }
}

#[derive(Default)]
pub struct AchievementMutation;

#[Object]
impl AchievementMutation {
    /// Pin up to 6 unlocked achievements on the wall, in this order.
    async fn set_showcase(
        &self,
        ctx: &Context<'_>,
        achievement_codes: Vec<String>,
    ) -> async_graphql::Result<AchievementWall> {
        let (app, member_id) = (ctx.app()?, ctx.member_id()?);
        wall::set_showcase(&app.db, member_id, achievement_codes).await?;
        Ok(wall::wall(&app.db, member_id).await?.into())
    }

    /// Wear an earned title on the profile; null takes it off.
    async fn equip_title(
        &self,
        ctx: &Context<'_>,
        title_code: Option<String>,
    ) -> async_graphql::Result<MemberView> {
        let member =
            titles::equip_title(&ctx.app()?.db, ctx.member_id()?, title_code.as_deref()).await?;
        Ok(MemberView(member))
    }
}

#[derive(InputObject)]
pub struct AchievementInput {
    code: String,
    name: String,
    description: String,
    category: String,
    /// The member metric it watches, e.g. checkin.streak, invite.count, mall.redemptions, blindbox.draws, points.earned.
    metric: String,
    threshold: i64,
    #[graphql(default = 0)]
    reward_points: i64,
    title_code: Option<String>,
    title_name: Option<String>,
    #[graphql(default = false)]
    hidden: bool,
    icon_url: Option<String>,
}

#[derive(SimpleObject)]
pub struct AchievementAdmin {
    code: String,
    metric: String,
    threshold: i64,
}

#[derive(Default)]
pub struct AchievementAdminMutation;

#[Object]
impl AchievementAdminMutation {
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_achievement(
        &self,
        ctx: &Context<'_>,
        input: AchievementInput,
    ) -> async_graphql::Result<AchievementAdmin> {
        let change = AchievementChange {
            code: input.code,
            name: input.name,
            description: input.description,
            category: input.category,
            icon_url: input.icon_url,
            metric: input.metric,
            threshold: input.threshold,
            reward_points: input.reward_points,
            title_code: input.title_code,
            title_name: input.title_name,
            hidden: input.hidden,
        };
        let saved = definitions::upsert(&ctx.app()?.db, change, ctx.now()?).await?;
        Ok(AchievementAdmin {
            code: saved.code,
            metric: saved.metric,
            threshold: saved.threshold,
        })
    }
}
