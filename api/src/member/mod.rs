//! Member center: profile and public codes, tiers and growth, purchases from the merchant's
//! order system, birthday gifts and RFM segments.
//!
//! Owns: the `member` row (profile, tier, growth, blacklist flag, showcase, worn title), tiers,
//! purchases, birthday gifts, RFM. The core every module may use (`require`, `lock`, `MemberId`).
//! May call: `points`, `progress`, `idempotency`, `auth` and the infrastructure; no feature module (streaks
//! and titles for the member view come from sources registered at start-up).

mod admin_graphql;
mod birthday;
mod core;
mod graphql;
mod growth;
mod invite;
mod profile_sources;
mod purchase;
mod rfm;
pub mod rules;
mod service;
mod tier;

pub use admin_graphql::{MemberAdminMutation, MemberAdminQuery};
pub use birthday::give_gifts as give_birthday_gifts;
pub use core::{MemberId, lock, member_numbers, require};
pub use graphql::{MemberAdminView, MemberQuery, MemberView, ProfileMutation};
pub use growth::GROWTH_FROM_INTERACTION;
pub use invite::invite_joined;
pub use profile_sources::{StreakSource, Streaks, TitleSource, Titles};
pub use purchase::update_earning_rules;
pub use rfm::refresh as refresh_rfm;
pub use service::{
    ProfileChange, clear_blacklist, find, mark_blacklisted, set_active_title, set_showcase,
    update_profile, upsert_on_login,
};
pub use tier::Tier;
pub use tier::all as tier_ladder;
pub use tier::evaluate_expired as evaluate_tiers;

/// The rank of the member's tier (0 for the base tier).
pub async fn tier_rank(
    db: &impl sea_orm::ConnectionTrait,
    member: &entity::member::Model,
) -> crate::AppResult<i32> {
    let tiers = tier::all(db).await?;
    Ok(tier::current(member, &tiers)?.rank)
}

/// The tier ladder for read paths, from the process's cache (see `cache`).
pub async fn cached_tiers(
    app: &crate::state::AppState,
) -> crate::AppResult<std::sync::Arc<Vec<Tier>>> {
    app.tiers.get(|| tier::all(&app.db)).await
}
