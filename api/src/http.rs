//! HTTP in front of the two schemas, following GraphQL over HTTP: JSON in, JSON or
//! `application/graphql-response+json` out by the Accept header; 400 for requests that cannot be
//! parsed, 405 for mutations over GET, 413 for oversized bodies. Plus the playground (GraphiQL,
//! for browsers that GET an endpoint) and `/health`.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Executor, Value};
use serde_json::json;

use crate::auth::jwt::TokenKind;
use crate::auth::{admin_from_claims, member_from_claims};
use crate::clock::TEST_NOW_HEADER;
use crate::context::{Caller, RequestContext};
use crate::error::AppError;
use crate::graphql::{AdminSchema, MemberSchema};
use crate::playground;
use crate::state::AppState;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const DEVICE_ID_HEADER: &str = "x-device-id";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Member,
    Admin,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Member => "/graphql",
            Endpoint::Admin => "/admin/graphql",
        }
    }

    fn playground(self) -> playground::Endpoint {
        match self {
            Endpoint::Member => playground::Endpoint::Member,
            Endpoint::Admin => playground::Endpoint::Admin,
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(member_post))
            .route(web::get().to(member_get)),
    )
    .service(
        web::resource("/admin/graphql")
            .route(web::post().to(admin_post))
            .route(web::get().to(admin_get)),
    )
    .route(
        &format!("{}/{{path:.*}}", playground::PREFIX),
        web::get().to(playground::asset),
    )
    .route("/health", web::get().to(health));
}

async fn member_post(
    req: HttpRequest,
    body: web::Bytes,
    app: web::Data<AppState>,
    schema: web::Data<MemberSchema>,
) -> HttpResponse {
    match parse_post(&req, &body) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Member).await,
        Err(early) => early.respond(),
    }
}

async fn admin_post(
    req: HttpRequest,
    body: web::Bytes,
    app: web::Data<AppState>,
    schema: web::Data<AdminSchema>,
) -> HttpResponse {
    match parse_post(&req, &body) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Admin).await,
        Err(early) => early.respond(),
    }
}

async fn member_get(
    req: HttpRequest,
    app: web::Data<AppState>,
    schema: web::Data<MemberSchema>,
) -> HttpResponse {
    match parse_get(&req, &app, Endpoint::Member) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Member).await,
        Err(early) => early.respond(),
    }
}

async fn admin_get(
    req: HttpRequest,
    app: web::Data<AppState>,
    schema: web::Data<AdminSchema>,
) -> HttpResponse {
    match parse_get(&req, &app, Endpoint::Admin) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Admin).await,
        Err(early) => early.respond(),
    }
}

/// An answer given before the schema runs.
enum Early {
    /// One request-level error, shaped like any GraphQL error.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    MutationOverGet,
    /// The playground page, for a browser.
    Playground(Box<HttpResponse>),
}

impl Early {
    fn bad(status: StatusCode, message: impl Into<String>) -> Early {
        Early::Refused {
            status,
            code: "VALIDATION",
            message: message.into(),
        }
    }

    fn respond(self) -> HttpResponse {
        let error = |code: &str, message: &str| json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
        match self {
            Early::Refused {
                status,
                code,
                message,
            } => HttpResponse::build(status)
                .content_type("application/json; charset=utf-8")
                .json(error(code, &message)),
            Early::MutationOverGet => HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "POST"))
                .content_type("application/json; charset=utf-8")
                .json(error("VALIDATION", "mutations must be sent with POST")),
            Early::Playground(page) => *page,
        }
    }
}

fn parse_post(req: &HttpRequest, body: &[u8]) -> Result<async_graphql::Request, Early> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return Err(Early::bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/json",
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Early::bad(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported; send one operation per request",
        ));
    }
    serde_json::from_slice::<async_graphql::Request>(body).map_err(|e| {
        Early::bad(
            StatusCode::BAD_REQUEST,
            format!("the body is not a GraphQL request: {e}"),
        )
    })
}

fn parse_get(
    req: &HttpRequest,
    app: &AppState,
    endpoint: Endpoint,
) -> Result<async_graphql::Request, Early> {
    let query_string = req.query_string();
    let has_query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(query_string)
            .map(|q| q.contains_key("query"))
            .unwrap_or(false);
    if !has_query {
        if app.settings.graphiql && accepts_html(req) {
            return Err(Early::Playground(Box::new(playground::page(
                endpoint.playground(),
                endpoint.path(),
                &app.settings,
            ))));
        }
        return Err(Early::bad(
            StatusCode::BAD_REQUEST,
            "missing the query parameter; POST application/json to this endpoint",
        ));
    }
    let request = async_graphql::http::parse_query_string(query_string)
        .map_err(|e| Early::bad(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))?;
    if selects_mutation(&request) {
        return Err(Early::MutationOverGet);
    }
    Ok(request)
}

/// Whether a GET comes from a browser that asks for a page (a GraphQL client asks for JSON).
fn accepts_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// Whether the operation a GET would run is a mutation (unparsable documents are left to the
/// executor, which reports them as usual).
fn selects_mutation(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    match &doc.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => match &request.operation_name {
            Some(name) => ops
                .get(name.as_str())
                .is_some_and(|op| op.node.ty == OperationType::Mutation),
            None => ops.values().any(|op| op.node.ty == OperationType::Mutation),
        },
    }
}

async fn serve(
    req: &HttpRequest,
    app: &AppState,
    schema: &impl Executor,
    request: async_graphql::Request,
    endpoint: Endpoint,
) -> HttpResponse {
    let context = match request_context(req, app, endpoint).await {
        Ok(context) => context,
        Err(early) => return early.respond(),
    };
    let response = schema.execute(request.data(context)).await;
    graphql_response(req, response)
}

async fn request_context(
    req: &HttpRequest,
    app: &AppState,
    endpoint: Endpoint,
) -> Result<RequestContext, Early> {
    let header_value = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = app
        .clock
        .request_now(header_value(TEST_NOW_HEADER))
        .map_err(|msg| Early::bad(StatusCode::BAD_REQUEST, msg))?;
    let caller = match header_value(header::AUTHORIZATION.as_str()) {
        None => Caller::Anonymous,
        Some(value) => match value.strip_prefix("Bearer ").map(str::trim) {
            None | Some("") => {
                Caller::Refused("send the token as 'Authorization: Bearer <token>'".into())
            }
            Some(token) => match caller_from_token(app, token, endpoint, now).await {
                Ok(caller) => caller,
                Err(AppError::Unauthenticated(reason)) => Caller::Refused(reason),
                Err(other) => {
                    let gql: async_graphql::Error = other.into();
                    return Err(Early::Refused {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        code: "INTERNAL",
                        message: gql.message,
                    });
                }
            },
        },
    };
    let device_id = header_value(DEVICE_ID_HEADER)
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= 128)
        .map(str::to_string);
    Ok(RequestContext {
        now,
        caller,
        device_id,
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    })
}

async fn caller_from_token(
    app: &AppState,
    token: &str,
    endpoint: Endpoint,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Caller, AppError> {
    match endpoint {
        Endpoint::Member => {
            let claims = app.jwt.verify(token, TokenKind::Member, now)?;
            let (id, session) = member_from_claims(&claims)?;
            Ok(Caller::Member { id, session })
        }
        Endpoint::Admin => {
            let claims = app.jwt.verify(token, TokenKind::Admin, now)?;
            Ok(Caller::Admin(admin_from_claims(&app.db, &claims).await?))
        }
    }
}

fn graphql_response(req: &HttpRequest, mut response: async_graphql::Response) -> HttpResponse {
    let wants_graphql_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/graphql-response+json"));
    // Every error carries a code: ours come from AppError; the executor's own (parse, validation,
    // limits, input coercion) are all about the request.
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "VALIDATION");
        }
    }
    let failed_before_execution = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let body = if failed_before_execution {
        json!({ "errors": response.errors })
    } else {
        serde_json::to_value(&response)
            .unwrap_or_else(|_| json!({ "errors": [{ "message": "internal error" }] }))
    };
    let (status, content_type) = match (wants_graphql_json, failed_before_execution) {
        (true, true) => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE_JSON),
        (true, false) => (StatusCode::OK, GRAPHQL_RESPONSE_JSON),
        (false, _) => (StatusCode::OK, "application/json; charset=utf-8"),
    };
    HttpResponse::build(status)
        .content_type(content_type)
        .json(body)
}

async fn health(app: web::Data<AppState>) -> HttpResponse {
    let database_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await,
        Ok(Ok(()))
    );
    let redis = match &app.redis {
        None => "disabled",
        Some(redis) => {
            let mut con = redis.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut con);
            match tokio::time::timeout(Duration::from_secs(2), ping).await {
                Ok(Ok(_)) => "ok",
                _ => "down",
            }
        }
    };
    let (status, overall) = match (database_ok, redis) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "down"),
        (true, "down") => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ok"),
    };
    HttpResponse::build(status).json(json!({
        "status": overall,
        "database": if database_ok { "ok" } else { "down" },
        "redis": redis,
        "limiter": app.limiter.backend(),
    }))
}
