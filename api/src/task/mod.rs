//! Tasks: daily, weekly, once, growth, challenge and hidden tasks that events advance and
//! members claim; client-reported events; invite rewards (single level).

mod graphql;
pub mod rules;
mod service;

pub use graphql::{TaskAdminMutation, TaskMutation, TaskQuery};
pub use service::{
    TASK_PROGRESS, TaskChange, hidden_task_exists, invite_joined, unlock_hidden, upsert,
};
