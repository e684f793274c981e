//! Logging: `RUST_LOG` decides; by default info, with sqlx's per-statement lines kept quiet.

use tracing_subscriber::EnvFilter;

pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn";

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // A second init (tests) is harmless.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
