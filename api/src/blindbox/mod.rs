//! Blind boxes: weighted prize pools with disclosed odds, stock, a pity guarantee, daily limits
//! and provably fair draws (committed seeds over the prize table, members' client seeds),
//! bought with points only.
//!
//! Owns: boxes, prizes, seeds, draws, pity counters.
//! May call: the core (`member`, `points`, `progress`, `idempotency`), the platform and the
//! infrastructure; prizes of another module are `progress` grants.

mod graphql;
pub mod rules;
mod service;
mod verify;

pub use graphql::{BlindBoxAdminMutation, BlindBoxAdminQuery, BlindBoxMutation, BlindBoxQuery};
pub use service::{BoxChange, PrizeChange, rotate_due_seeds, upsert, upsert_in};
pub use verify::verify_draw_command;
