//! The achievement wall: badges unlocked from member metrics, titles, the showcase, rarity and
//! leaderboards. It learns of events only through `progress`.
//!
//! Owns: achievement definitions and unlocks, titles, showcase slots, rarity, leaderboards.
//! May call: the core (`member`, `points`, `progress`), the platform (`auth`, `anticheat`) and the
//! infrastructure; no other feature module.

mod definitions;
mod graphql;
mod leaderboard;
pub mod rules;
mod titles;
mod unlocking;
mod wall;

pub use definitions::{AchievementChange, upsert};
pub use graphql::{AchievementAdminMutation, AchievementMutation, AchievementQuery};
pub use leaderboard::LeaderboardCache;
pub use titles::{grant_title, title_name, title_of};
pub use unlocking::{ACHIEVEMENTS, backfill};

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
        Ok(titles::title_of(db, member, code)
            .await?
            .map(|t| crate::progress::TitleView {
                code: t.code,
                name: t.name,
            }))
    }
}
