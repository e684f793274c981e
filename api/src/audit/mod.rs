//! The admin audit log: every admin mutation, successful or not, leaves one row saying who did
//! what with which input. It is written by a schema extension, so no mutation can forget it.

mod graphql;

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value, Variables};
use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

pub use graphql::AuditQuery;

use crate::context::{Caller, RequestContext};
use crate::error::AppResult;
use crate::state::AppState;

/// Argument names whose values never reach the log.
const SECRET_ARGUMENTS: &[&str] = &["password", "secret", "token", "refreshToken"];

pub async fn record(
    db: &impl ConnectionTrait,
    actor: (Option<i64>, &str),
    action: &str,
    detail: &serde_json::Value,
    now: DateTime<Utc>,
) -> AppResult<()> {
    audit_log::ActiveModel {
        admin_id: Set(actor.0),
        admin_username: Set(actor.1.chars().take(64).collect()),
        action: Set(action.to_string()),
        detail: Set(detail.to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Add to the admin schema with `.extension(AuditMutations)`.
pub struct AuditMutations;

impl ExtensionFactory for AuditMutations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditExtension {
            variables: Mutex::new(Variables::default()),
        })
    }
}

struct AuditExtension {
    variables: Mutex<Variables>,
}

#[async_trait::async_trait]
impl Extension for AuditExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut vars) = self.variables.lock() {
            *vars = request.variables.clone();
        }
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let top_level_mutation = info.parent_type == "Mutation" && info.path_node.parent.is_none();
        if !top_level_mutation {
            return next.run(ctx, info).await;
        }
        let action = info.name.to_string();
        let input = self.arguments(info.field);
        let result = next.run(ctx, info).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .map(|code| code.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "ERROR".to_string()),
        };
        if let (Some(app), Some(req)) =
            (ctx.data_opt::<AppState>(), ctx.data_opt::<RequestContext>())
        {
            let actor = match &req.caller {
                Caller::Admin(admin) => (Some(admin.id), admin.username.clone()),
                // adminLogin has no admin yet: name the account that was tried.
                _ => (
                    None,
                    input
                        .get("username")
                        .and_then(|u| u.as_str())
                        .unwrap_or("(anonymous)")
                        .to_string(),
                ),
            };
            let detail = serde_json::json!({ "input": input, "outcome": outcome, "ip": req.ip });
            if let Err(e) = record(&app.db, (actor.0, &actor.1), &action, &detail, req.now).await {
                tracing::error!(error = %e, action, "writing the audit log failed");
            }
        }
        result
    }
}

impl AuditExtension {
    /// The field's arguments with variables filled in and secrets blanked.
    fn arguments(&self, field: &async_graphql::parser::types::Field) -> serde_json::Value {
        let vars = self.variables.lock().map(|v| v.clone()).unwrap_or_default();
        let mut out = serde_json::Map::new();
        for (name, value) in &field.arguments {
            let name = name.node.as_str();
            let json = if SECRET_ARGUMENTS.contains(&name) {
                serde_json::Value::String("***".into())
            } else {
                value
                    .node
                    .clone()
                    .into_const_with(|var| vars.get(&var).cloned().ok_or(()))
                    .ok()
                    .and_then(|v| v.into_json().ok())
                    .unwrap_or(serde_json::Value::Null)
            };
            out.insert(name.to_string(), json);
        }
        serde_json::Value::Object(out)
    }
}
