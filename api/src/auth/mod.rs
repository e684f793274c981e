//! Who is calling: WeChat login and refresh tokens for members, passwords and roles for admins,
//! and the JWTs that carry either.
//!
//! Owns: admin accounts, member sessions and refresh tokens, JWTs.
//! May call: `member` (first login creates one), `anticheat` (device checks, admin lockout) and the
//! infrastructure; no feature module.

mod graphql;
mod guard;
pub mod jwt;
mod lockout;
pub mod rules;
mod service;
mod sessions;
pub mod wechat;

pub use graphql::{AdminAuthMutation, AdminAuthQuery, MemberAuthMutation};
pub use guard::RoleGuard;
pub use rules::AdminRole;
pub use service::{
    AdminPrincipal, admin_by_username, admin_from_claims, bootstrap_admin, create_admin,
    hash_password, member_from_claims,
};
pub use sessions::RevokedSessions;
