//! Blind boxes: weighted prize pools with disclosed odds, stock, a pity guarantee, daily limits
//! and verifiable draws (commit-reveal), bought with points only.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{BlindBoxAdminMutation, BlindBoxAdminQuery, BlindBoxMutation, BlindBoxQuery};
pub use service::{BoxChange, PrizeChange, upsert, upsert_in};
