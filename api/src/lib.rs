//! The loyalty backend: a library that `main.rs` and the black-box tests both start.

pub mod achievement;
pub mod anticheat;
pub mod audit;
pub mod auth;
pub mod blindbox;
pub mod cache;
pub mod checkin;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod extensions;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod input;
pub mod jobs;
pub mod loaders;
pub mod mall;
pub mod member;
pub mod pagination;
pub mod playground;
pub mod points;
pub mod progress;
pub mod scalars;
pub mod seed;
pub mod shop_settings;
pub mod startup;
pub mod state;
pub mod task;
pub mod telemetry;
pub mod web_assets;

pub use error::{AppError, AppResult};
