//! The achievement wall: badges unlocked from member metrics, titles, the showcase, rarity and
//! leaderboards. It learns of events only through `progress`.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{
    Achievement, AchievementAdminMutation, AchievementMutation, AchievementQuery, Title,
    unlocked_achievements,
};
pub use service::{
    ACHIEVEMENTS, AchievementChange, LeaderboardCache, backfill, grant_title, title_name, title_of,
    upsert,
};
