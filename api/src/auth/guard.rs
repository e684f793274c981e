//! The role guard on admin fields: `#[graphql(guard = "RoleGuard(READERS)")]`.

use async_graphql::{Context, Guard};

use super::rules::{AdminRole, role_allows};
use crate::context::ContextExt;
use crate::error::AppError;

pub struct RoleGuard(pub &'static [AdminRole]);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let admin = ctx.admin()?;
        if role_allows(admin.role, self.0) {
            Ok(())
        } else {
            Err(
                AppError::forbidden(format!("the {} role may not do this", admin.role.as_str()))
                    .into(),
            )
        }
    }
}
