use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_log;

use crate::auth::RoleGuard;
use crate::auth::rules::READERS;
use crate::context::ContextExt;
use crate::pagination::{PageInfo, finish_page, page_request};

#[derive(SimpleObject)]
pub struct AuditLogEntry {
    id: ID,
    admin_username: String,
    action: String,
    detail: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<audit_log::Model> for AuditLogEntry {
    fn from(row: audit_log::Model) -> Self {
        AuditLogEntry {
            id: ID(row.id.to_string()),
            admin_username: row.admin_username,
            action: row.action,
            detail: serde_json::from_str(&row.detail)
                .unwrap_or(serde_json::Value::String(row.detail)),
            created_at: row.created_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuditLogConnection {
    nodes: Vec<AuditLogEntry>,
    page_info: PageInfo,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Admin mutations, newest first.
    #[graphql(
        guard = "RoleGuard(READERS)",
        complexity = "crate::pagination::page_cost(first, 20, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuditLogConnection> {
        let page = page_request(first, after.as_deref())?;
        let rows = super::recent(&ctx.app()?.db, page).await?;
        let (rows, page_info) = finish_page(rows, page, |r| r.id);
        Ok(AuditLogConnection {
            nodes: rows.into_iter().map(Into::into).collect(),
            page_info,
        })
    }
}
