//! SeaORM entities, one file per table. These are storage shapes, not API types:
//! each module maps them to its own GraphQL types.

pub mod admin_user;
pub mod audit_log;
pub mod member;
pub mod refresh_token;
