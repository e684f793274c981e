//! The admin audit log: every admin mutation leaves a row saying who did what with which input
//! and how it ended. It is written by a schema extension, so no mutation can forget it.
//!
//! What an attacker can repeat for free is sampled instead (`rules::write_for`): refusals of a
//! caller without a valid admin token (failed `adminLogin`s included), and role-guard refusals of
//! an admin, write one row per caller (address, or admin) a minute. Such a request may also carry
//! only one mutation field; more is refused before anything runs.
//!
//! Owns: the `audit_log` table.
//! May call: `auth` (who is calling) and the infrastructure; no feature module.

mod graphql;
pub mod rules;

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextResolve,
    ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Value, Variables};
use chrono::{DateTime, Duration, Utc};
use entity::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

pub use graphql::AuditQuery;

use crate::config::RatePolicy;
use crate::context::{Caller, RequestContext};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Argument names whose values never reach the log.
const SECRET_ARGUMENTS: &[&str] = &["password", "secret", "token", "refreshToken"];

/// The actor of rows written for callers without a valid admin token.
const ANONYMOUS: &str = "(anonymous)";

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

/// A page of the log, newest first (one row more than the page when there is a next page).
pub async fn recent(
    db: &impl ConnectionTrait,
    page: crate::pagination::PageRequest,
) -> AppResult<Vec<audit_log::Model>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .limit(page.limit + 1);
    if let Some(after) = page.after_id {
        query = query.filter(audit_log::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

/// Add to the admin schema with `.extension(AuditMutations)`.
pub struct AuditMutations;

impl ExtensionFactory for AuditMutations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditExtension {
            request: Mutex::new((Variables::default(), None)),
        })
    }
}

struct AuditExtension {
    /// The request's variables and operation name.
    request: Mutex<(Variables, Option<String>)>,
}

#[async_trait::async_trait]
impl Extension for AuditExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut kept) = self.request.lock() {
            *kept = (request.variables.clone(), request.operation_name.clone());
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let signed_in = ctx
            .data_opt::<RequestContext>()
            .is_some_and(|req| matches!(req.caller, Caller::Admin(_)));
        let operation = self.request.lock().ok().and_then(|r| r.1.clone());
        if !signed_in
            && rules::mutation_fields(&doc, operation.as_deref())
                > rules::MAX_ANONYMOUS_MUTATION_FIELDS
        {
            let refusal: async_graphql::Error = AppError::unauthenticated(
                "sign in first: a request without a valid admin token may carry one mutation field",
            )
            .into();
            return Err(refusal.into_server_error(Default::default()));
        }
        Ok(doc)
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
            && let Err(e) = write(app, req, &action, input, &outcome).await
        {
            tracing::error!(error = %e, action, "writing the audit log failed");
        }
        result
    }
}

async fn write(
    app: &AppState,
    req: &RequestContext,
    action: &str,
    input: serde_json::Value,
    outcome: &str,
) -> AppResult<()> {
    let admin = match &req.caller {
        Caller::Admin(admin) => Some(admin),
        _ => None,
    };
    let sampled = rules::write_for(admin.is_some(), outcome) == rules::Write::Sampled;
    if sampled {
        let caller = match admin {
            Some(admin) => format!("admin:{}", admin.id),
            None => format!("ip:{}", req.ip.as_deref().unwrap_or("unknown")),
        };
        let policy = RatePolicy {
            count: rules::SAMPLED_ROWS,
            window: Duration::seconds(rules::SAMPLE_WINDOW_SECONDS),
        };
        if !app
            .limiter
            .hit("audit_refused", &caller, policy, req.now)
            .await?
            .allowed
        {
            return Ok(());
        }
    }
    let (actor, input) = match admin {
        Some(admin) => ((Some(admin.id), admin.username.clone()), input),
        None => anonymous_actor(app, action, input, outcome).await?,
    };
    let mut detail = serde_json::json!({ "input": input, "outcome": outcome, "ip": req.ip });
    if sampled {
        // Later refusals of this caller within the window are not written.
        detail["sampled"] = serde_json::Value::Bool(true);
    }
    record(&app.db, (actor.0, &actor.1), action, &detail, req.now).await
}

/// Who a row without a signed-in admin names, and what of their input it keeps. Only a
/// successful `adminLogin` names an account (the one that signed in); anything else such a
/// caller sends is theirs to choose, so it is not the actor, and only a plausible username is
/// kept of it.
async fn anonymous_actor(
    app: &AppState,
    action: &str,
    input: serde_json::Value,
    outcome: &str,
) -> AppResult<((Option<i64>, String), serde_json::Value)> {
    let anonymous = (None, ANONYMOUS.to_string());
    if action != "adminLogin" {
        return Ok((anonymous, serde_json::Value::Null));
    }
    let username = input
        .get("username")
        .and_then(|u| u.as_str())
        .map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| crate::auth::rules::valid_admin_username(u));
    let kept = serde_json::json!({
        "username": username.as_deref().unwrap_or("(not a valid username)"),
        "password": "***",
    });
    if outcome == "ok"
        && let Some(username) = &username
        && let Some(admin) = crate::auth::admin_by_username(&app.db, username).await?
    {
        return Ok(((Some(admin.id), admin.username), kept));
    }
    Ok((anonymous, kept))
}

impl AuditExtension {
    /// The field's arguments with variables filled in and secrets blanked.
    fn arguments(&self, field: &async_graphql::parser::types::Field) -> serde_json::Value {
        let vars = self.request.lock().map(|r| r.0.clone()).unwrap_or_default();
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
