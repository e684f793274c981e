//! What the member's profile shows that other modules own (the check-in streak, the worn
//! title's name). The member core defines what it asks; the owners answer, registered by the
//! composition root in `AppState::extensions`, so the core imports no feature module.

use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::DatabaseConnection;

use super::MemberId;
use crate::error::AppResult;
use crate::progress::TitleView;

#[async_trait::async_trait]
pub trait StreakSource: Send + Sync {
    /// The member's current check-in streak through `today` (0 once a day was missed).
    async fn current_streak(
        &self,
        db: &DatabaseConnection,
        member: MemberId,
        today: NaiveDate,
    ) -> AppResult<i64>;
}

#[async_trait::async_trait]
pub trait TitleSource: Send + Sync {
    /// The title `code` as the member earned it, if they did.
    async fn earned_title(
        &self,
        db: &DatabaseConnection,
        member: MemberId,
        code: &str,
    ) -> AppResult<Option<TitleView>>;
}

/// The registered streak source (check-in).
#[derive(Clone)]
pub struct Streaks(pub Arc<dyn StreakSource>);

/// The registered title source (achievements).
#[derive(Clone)]
pub struct Titles(pub Arc<dyn TitleSource>);
