//! The achievement wall: badges unlocked from member metrics, titles, the showcase, rarity and
//! leaderboards. It learns of events only through `progress`.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{AchievementAdminMutation, AchievementMutation, AchievementQuery};
pub use service::{
    ACHIEVEMENTS, AchievementChange, LeaderboardCache, backfill, grant_title, title_name, title_of,
    upsert,
};

/// The member profile's worn title, registered by the composition root.
pub struct Titles;

#[async_trait::async_trait]
impl crate::member::TitleSource for Titles {
    async fn earned_title(
        &self,
        db: &sea_orm::DatabaseConnection,
        member: crate::member::MemberId,
        code: &str,
    ) -> crate::AppResult<Option<crate::progress::TitleView>> {
        Ok(service::title_of(db, member, code)
            .await?
            .map(|t| crate::progress::TitleView {
                code: t.code,
                name: t.name,
            }))
    }
}
