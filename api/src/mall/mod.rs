//! The points mall: catalog and price campaigns, redemption (points, or points+cash through the
//! deduction ladder), orders, coupons, crowdfunds and donations. It never oversells, overspends
//! or loses a member's points: stock and points move by conditional updates in one transaction.
//!
//! Owns: items, campaigns, orders, coupons, crowdfunds, donations, the deduction ladder.
//! May call: the core (`member`, `points`, `progress`, `idempotency`), the platform and the
//! infrastructure; no other feature module.

mod admin_graphql;
mod catalog;
mod crowdfund;
mod donation;
mod graphql;
mod prizes;
mod redeem;
pub mod rules;
mod stock_gate;

pub use admin_graphql::MallAdminMutation;
pub use catalog::find as find_item;
pub use catalog::{ItemChange, upsert as upsert_item};
pub use crowdfund::expire_due as expire_crowdfunds;
pub use donation::upsert as upsert_donation_project;
pub use graphql::{MallMutation, MallQuery};
pub use prizes::PRIZES;
pub use stock_gate::StockGate;

use chrono::{DateTime, Utc};

use crate::config::{ConfigError, Settings};
use crate::error::AppResult;
use crate::extensions::Extensions;
use crate::state::AppState;

/// Job CANCEL_UNPAID_ORDERS (see `redeem::cancel_unpaid`); the stock gate forgets the items
/// whose stock came back. Returns how many orders were cancelled.
pub async fn cancel_unpaid_orders(app: &AppState, now: DateTime<Utc>) -> AppResult<u64> {
    let mut items = redeem::cancel_unpaid(&app.db, now).await?;
    let cancelled = items.len() as u64;
    items.sort_unstable();
    items.dedup();
    for item_id in items {
        stock_gate::forget(app, item_id).await;
    }
    Ok(cancelled)
}

/// The mall's settings parser (`DEDUCTION_LADDER`), registered by the composition root
/// (`startup`).
pub fn parse_settings(settings: &Settings, parsed: Extensions) -> Result<Extensions, ConfigError> {
    let ladder = rules::Ladder::parse(&settings.mall.deduction_ladder)
        .map_err(|e| ConfigError::new("DEDUCTION_LADDER", e))?;
    Ok(parsed.with(ladder))
}
