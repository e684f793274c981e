//! Tasks: daily, weekly, once, growth, challenge and hidden tasks that events advance and
//! members claim; client-reported events; invite rewards (single level).
//!
//! Owns: task definitions, progress rows and claims, reportable events, invites' rewards.
//! May call: the core (`member`, `points`, `progress`, `idempotency`), the platform and the
//! infrastructure; no other feature module.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{TaskAdminMutation, TaskMutation, TaskQuery};
pub use service::{TASK_PROGRESS, TaskChange, hidden_task_exists, unlock_hidden, upsert};

use crate::config::{ConfigError, Settings};
use crate::extensions::Extensions;

/// `REPORTABLE_EVENTS`, parsed: the client-reported event kinds this shop counts.
#[derive(Debug, Clone)]
pub struct Reportables(pub Vec<rules::Reportable>);

/// The task module's settings parser, registered by the composition root (`startup`).
pub fn parse_settings(settings: &Settings, parsed: Extensions) -> Result<Extensions, ConfigError> {
    let reportable = rules::parse_reportables(&settings.tasks.reportable_events)
        .map_err(|e| ConfigError::new("REPORTABLE_EVENTS", e))?;
    Ok(parsed.with(Reportables(reportable)))
}
