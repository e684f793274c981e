//! Daily check-in: one per member per business day, streaks with bonuses, make-ups at a cost.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{CheckInAdminMutation, CheckInAdminQuery, CheckInMutation, CheckInQuery};
pub use service::current_streak;
