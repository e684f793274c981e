//! Daily check-in: one per member per business day, streaks with bonuses, make-ups at a cost.
//!
//! Owns: check-in rows, streaks, make-ups.
//! May call: the core (`member`, `points`, `progress`, `idempotency`), the platform and the
//! infrastructure; no other feature module.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{CheckInAdminMutation, CheckInAdminQuery, CheckInMutation, CheckInQuery};
pub use service::current_streak;

/// The member profile's check-in streak, registered by the composition root.
pub struct Streaks;

#[async_trait::async_trait]
impl crate::member::StreakSource for Streaks {
    async fn current_streak(
        &self,
        db: &sea_orm::DatabaseConnection,
        member: crate::member::MemberId,
        today: chrono::NaiveDate,
    ) -> crate::AppResult<i64> {
        service::current_streak(db, member, today).await
    }
}
