//! Member center: the member's profile and public codes. Tiers, growth and benefits join here.

mod graphql;
pub mod rules;
mod service;

pub use graphql::{MemberAdminView, MemberQuery, MemberView, ProfileMutation};
pub use service::{ProfileChange, find, update_profile, upsert_on_login};
