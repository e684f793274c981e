//! Points: the append-only ledger, lots and expiry, transfers, and the operator's audit and
//! health views. Every module changes points through `credit` and `debit` here, nowhere else.
//!
//! Owns: the ledger, lots and balances, transfers.
//! May call: `member`, `idempotency`, the platform (`auth`, `anticheat`) and the infrastructure;
//! no feature module.

mod graphql;
mod ledger;
pub mod rules;
mod service;

pub use graphql::{PointsAdminMutation, PointsAdminQuery, PointsMutation, PointsQuery};
pub use ledger::{Expiry, Movement, credit, debit, entry, find_by_key};
pub use rules::LedgerKind;
pub use service::{EXPIRING_SOON_DAYS, audit, expire_due, expiring_soon};
