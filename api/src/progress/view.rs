//! How what events unlock is shown to members: the `Achievement` and `Title` types of every
//! mutation's `unlocked` list, of the wall and of the profile. The achievement module fills them
//! from its rows; other modules only pass them on, so none of them reads its tables.

use async_graphql::SimpleObject;

/// An earned title, worn on the profile.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Title")]
pub struct TitleView {
    pub code: String,
    pub name: String,
}

#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Achievement")]
pub struct AchievementView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub icon_url: Option<String>,
    /// Hidden achievements show only once unlocked.
    pub hidden: bool,
    pub threshold: i64,
    pub reward_points: i64,
    pub title: Option<TitleView>,
}

/// The achievements among what an action unlocked, for its `unlocked` list.
pub fn unlocked_achievements(unlocked: &[super::Unlocked]) -> Vec<AchievementView> {
    unlocked
        .iter()
        .map(|u| match u {
            super::Unlocked::Achievement(card) => card.clone(),
        })
        .collect()
}
