//! HTTP in front of the two schemas, following GraphQL over HTTP: JSON in, JSON or
//! `application/graphql-response+json` out by the Accept header; 400 for requests that cannot be
//! parsed, 405 for mutations over GET, 413 for oversized bodies. Plus the playground (GraphiQL,
//! for browsers that GET an endpoint), `/health` (liveness) and `/ready` (readiness).

use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Executor, Value};
use serde_json::json;
use tracing::Instrument;

use crate::anticheat;
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

    fn label(self) -> &'static str {
        match self {
            Endpoint::Member => "member",
            Endpoint::Admin => "admin",
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
    .route("/health", web::get().to(health))
    .route("/ready", web::get().to(ready));
}

/// `/metrics` (Prometheus text format), on the main port or on `METRICS_PORT`.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(app: web::Data<AppState>) -> HttpResponse {
    match crate::metrics::install() {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(crate::metrics::render(&app, &handle)),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn member_post(
    req: HttpRequest,
    body: web::Bytes,
    app: web::Data<AppState>,
    schema: web::Data<MemberSchema>,
) -> HttpResponse {
    match parse_post(&req, &body) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Member).await,
        Err(early) => early.respond_to(&req, Endpoint::Member),
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
        Err(early) => early.respond_to(&req, Endpoint::Admin),
    }
}

async fn member_get(
    req: HttpRequest,
    app: web::Data<AppState>,
    schema: web::Data<MemberSchema>,
) -> HttpResponse {
    match parse_get(&req, &app, Endpoint::Member) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Member).await,
        Err(early) => early.respond_to(&req, Endpoint::Member),
    }
}

async fn admin_get(
    req: HttpRequest,
    app: web::Data<AppState>,
    schema: web::Data<AdminSchema>,
) -> HttpResponse {
    match parse_get(&req, &app, Endpoint::Admin) {
        Ok(request) => serve(&req, &app, schema.get_ref(), request, Endpoint::Admin).await,
        Err(early) => early.respond_to(&req, Endpoint::Admin),
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

    /// Answers a request refused before the schema ran, and counts it (operation `(refused)`).
    fn respond_to(self, req: &HttpRequest, endpoint: Endpoint) -> HttpResponse {
        let request_id = crate::request_id::of(req);
        if let Early::Refused { code, .. } = &self {
            record_refused(endpoint, code, &request_id);
        } else if let Early::MutationOverGet = &self {
            record_refused(endpoint, "VALIDATION", &request_id);
        }
        self.respond(&request_id)
    }

    fn respond(self, request_id: &str) -> HttpResponse {
        let error = |code: &str, message: &str| json!({ "errors": [{ "message": message, "extensions": { "code": code, "requestId": request_id } }] });
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

/// actix answers an oversized body with a bare 413 before any handler runs; this gives it the
/// GraphQL JSON shape and code every other refusal has.
pub fn payload_too_large<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let endpoint = if req.path().starts_with("/admin") {
        Endpoint::Admin
    } else {
        Endpoint::Member
    };
    let response = Early::bad(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than this server accepts (GRAPHQL_MAX_BODY_BYTES)",
    )
    .respond_to(&req, endpoint);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
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

async fn serve<E: Executor + Clone + 'static>(
    req: &HttpRequest,
    app: &AppState,
    schema: &E,
    request: async_graphql::Request,
    endpoint: Endpoint,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let request_id = crate::request_id::of(req);
    let headers = RequestHeaders::read(req, app);
    let (app, schema) = (app.clone(), schema.clone());
    let operation = crate::graphql::OperationSlot::default();
    let slot = operation.clone();
    // The work runs on the process's own runtime, not on the actix worker's: a worker's runtime
    // ends when the server stops, and the database connections opened on it would break under
    // requests still running on other workers and under the jobs (on SIGTERM they answered
    // INTERNAL, "a Tokio context ... is being shutdown"). Connections thus live as long as the
    // process; the worker only parses and answers HTTP. The request's span goes along.
    let span = tracing::Span::current();
    let work = app.runtime.clone().spawn(
        async move {
            let context = request_context(headers, &app, endpoint).await?;
            let member = match &context.caller {
                Caller::Member { id, .. } => {
                    tracing::Span::current().record("member_id", id);
                    Some(*id)
                }
                _ => None,
            };
            let request = request
                .data(context)
                .data(slot)
                .data(crate::loaders::Loaders::new(app.db.clone()));
            let response = crate::metrics::collecting(execute_caught(&schema, request)).await;
            Ok((member, response))
        }
        .instrument(span),
    );
    let (member, outcome) = match work.await {
        Ok(Ok((member, Some(response)))) => (member, Ok(response)),
        Ok(Ok((member, None))) => (member, Err(None)),
        Ok(Err(refusal)) => (None, Err(Some(refusal))),
        Err(e) => {
            tracing::error!(error = %e, "a request's task failed; answered INTERNAL");
            (None, Err(None))
        }
    };
    let operation = operation.take();
    match outcome {
        Ok(mut response) => {
            give_every_error_a_code(&mut response, &request_id);
            let errors = &response.errors;
            record_request(endpoint, &operation, errors, started, member, &request_id);
            graphql_response(req, response)
        }
        Err(None) => {
            let errors = &[internal_error()];
            record_request(endpoint, &operation, errors, started, member, &request_id);
            panic_response(req)
        }
        Err(Some(Refusal {
            status,
            code,
            message,
        })) => {
            record_refused(endpoint, code, &request_id);
            Early::Refused {
                status,
                code,
                message,
            }
            .respond(&request_id)
        }
    }
}

fn internal_error() -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new("internal error", None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "INTERNAL");
    error.extensions = Some(ext);
    error
}

/// Every error carries a code (ours come from AppError; the executor's own, about parsing,
/// validation, limits and input coercion, are all about the request) and the request's id.
fn give_every_error_a_code(response: &mut async_graphql::Response, request_id: &str) {
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "VALIDATION");
        }
        ext.set("requestId", request_id);
    }
}

fn error_code(error: &async_graphql::ServerError) -> &str {
    match error.extensions.as_ref().and_then(|ext| ext.get("code")) {
        Some(Value::String(code)) => code,
        _ => "VALIDATION",
    }
}

/// Counts a request that ran: per operation and per root field, its errors by code and its
/// latency; and writes its access-log line.
fn record_request(
    endpoint: Endpoint,
    operation: &crate::graphql::OperationInfo,
    errors: &[async_graphql::ServerError],
    started: std::time::Instant,
    member: Option<i64>,
    request_id: &str,
) {
    use crate::metrics::names;
    let seconds = started.elapsed().as_secs_f64();
    let endpoint_label = endpoint.label();
    let op = crate::metrics::operation_label(operation.name.as_deref());
    tracing::Span::current().record("operation", op.as_str());
    metrics::counter!(names::REQUESTS, "endpoint" => endpoint_label, "operation" => op.clone())
        .increment(1);
    metrics::histogram!(names::REQUEST_SECONDS, "endpoint" => endpoint_label, "operation" => op.clone())
        .record(seconds);
    for field in operation.fields() {
        metrics::counter!(names::ROOT_FIELDS, "endpoint" => endpoint_label, "field" => field.clone())
            .increment(1);
        metrics::histogram!(names::ROOT_FIELD_SECONDS, "endpoint" => endpoint_label, "field" => field)
            .record(seconds);
    }
    for error in errors {
        let code = error_code(error).to_string();
        metrics::counter!(names::ERRORS, "endpoint" => endpoint_label, "operation" => op.clone(), "code" => code.clone())
            .increment(1);
        let key = error.path.first().and_then(|segment| match segment {
            async_graphql::PathSegment::Field(key) => Some(key.as_str()),
            async_graphql::PathSegment::Index(_) => None,
        });
        if let Some(field) = key.and_then(|key| operation.field_of(key)) {
            metrics::counter!(names::ROOT_FIELD_ERRORS, "endpoint" => endpoint_label, "field" => field, "code" => code)
                .increment(1);
        }
    }
    let code = errors.first().map_or("OK", error_code);
    tracing::info!(
        target: "access",
        request_id,
        endpoint = endpoint_label,
        operation = %op,
        member_id = member,
        code,
        errors = errors.len(),
        latency_ms = (seconds * 1000.0 * 10.0).round() / 10.0,
        "graphql request"
    );
}

/// Counts a request refused before it ran (not JSON, too big, a bad token header, ...).
fn record_refused(endpoint: Endpoint, code: &str, request_id: &str) {
    use crate::metrics::names;
    let endpoint_label = endpoint.label();
    metrics::counter!(names::REQUESTS, "endpoint" => endpoint_label, "operation" => "(refused)")
        .increment(1);
    metrics::counter!(names::ERRORS, "endpoint" => endpoint_label, "operation" => "(refused)", "code" => code.to_string())
        .increment(1);
    tracing::info!(target: "access", request_id, endpoint = endpoint_label, operation = "(refused)", code, "graphql request refused");
}

/// A request refused before it runs (`Early::Refused`, in a form that crosses threads).
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// What the request context needs from the HTTP request, read on the worker (an `HttpRequest`
/// stays on its thread).
struct RequestHeaders {
    test_now: Option<String>,
    authorization: Option<String>,
    device_id: Option<String>,
    ip: Option<String>,
}

impl RequestHeaders {
    fn read(req: &HttpRequest, app: &AppState) -> Self {
        let header_value = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // A header that is not text still counts as a hop, one that names no address.
        let lines = |name: &str| -> Vec<&str> {
            req.headers()
                .get_all(name)
                .map(|v| v.to_str().unwrap_or("unknown"))
                .collect()
        };
        let ip = req.peer_addr().map(|peer| {
            anticheat::client_address(
                peer.ip(),
                &app.settings.trusted_proxies,
                &lines(header::X_FORWARDED_FOR.as_str()),
                &lines(header::FORWARDED.as_str()),
            )
            .to_string()
        });
        RequestHeaders {
            test_now: header_value(TEST_NOW_HEADER),
            authorization: header_value(header::AUTHORIZATION.as_str()),
            device_id: header_value(DEVICE_ID_HEADER)
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty() && d.len() <= 128),
            ip,
        }
    }
}

/// Runs the operation; `None` if it panicked. A panic is our bug, but it must still be answered
/// (JSON, code INTERNAL) rather than close the connection; what panicked is in the log.
async fn execute_caught(
    schema: &impl Executor,
    request: async_graphql::Request,
) -> Option<async_graphql::Response> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(schema.execute(request))
        .catch_unwind()
        .await
    {
        Ok(response) => Some(response),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a request panicked; answered INTERNAL");
            None
        }
    }
}

fn panic_response(req: &HttpRequest) -> HttpResponse {
    let request_id = crate::request_id::of(req);
    let body = json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL", "requestId": request_id } }] });
    if wants_graphql_json(req) {
        HttpResponse::InternalServerError()
            .content_type(GRAPHQL_RESPONSE_JSON)
            .json(body)
    } else {
        HttpResponse::Ok()
            .content_type("application/json; charset=utf-8")
            .json(body)
    }
}

fn wants_graphql_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/graphql-response+json"))
}

async fn request_context(
    headers: RequestHeaders,
    app: &AppState,
    endpoint: Endpoint,
) -> Result<RequestContext, Refusal> {
    let now = app
        .clock
        .request_now(headers.test_now.as_deref())
        .map_err(|msg| Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION",
            message: msg.to_string(),
        })?;
    let caller = match headers.authorization.as_deref() {
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
                    return Err(Refusal {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        code: "INTERNAL",
                        message: gql.message,
                    });
                }
            },
        },
    };
    Ok(RequestContext {
        now,
        caller,
        device_id: headers.device_id,
        ip: headers.ip,
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
            let (id, session) = member_from_claims(app, &claims, now).await?;
            Ok(Caller::Member { id, session })
        }
        Endpoint::Admin => {
            let claims = app.jwt.verify(token, TokenKind::Admin, now)?;
            Ok(Caller::Admin(admin_from_claims(&app.db, &claims).await?))
        }
    }
}

fn graphql_response(req: &HttpRequest, response: async_graphql::Response) -> HttpResponse {
    let wants_graphql_json = wants_graphql_json(req);
    let failed_before_execution = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let body = if failed_before_execution {
        json!({ "errors": response.errors })
    } else {
        serde_json::to_value(&response)
            .unwrap_or_else(|_| json!({ "errors": [{ "message": "internal error" }] }))
    };
    // A dependency that is down is the server's trouble, not the request's: with nothing else
    // to show, 503 and Retry-After, so clients and gateways retry later.
    let unavailable_retry = (!has_data(&response.data))
        .then(|| {
            response
                .errors
                .iter()
                .filter_map(|e| e.extensions.as_ref())
                .filter(|ext| {
                    matches!(ext.get("code"), Some(Value::String(code)) if code == "UNAVAILABLE")
                })
                .map(|ext| match ext.get("retryAfterSeconds") {
                    Some(Value::Number(n)) => n.as_u64().unwrap_or(1),
                    _ => 1,
                })
                .max()
        })
        .flatten();
    let (status, content_type) = match (wants_graphql_json, failed_before_execution) {
        (true, true) => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE_JSON),
        (true, false) if unavailable_retry.is_some() => {
            (StatusCode::SERVICE_UNAVAILABLE, GRAPHQL_RESPONSE_JSON)
        }
        (true, false) => (StatusCode::OK, GRAPHQL_RESPONSE_JSON),
        (false, _) => (StatusCode::OK, "application/json; charset=utf-8"),
    };
    let mut answer = HttpResponse::build(status);
    if let (StatusCode::SERVICE_UNAVAILABLE, Some(seconds)) = (status, unavailable_retry) {
        answer.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    answer.content_type(content_type).json(body)
}

/// Whether any root field produced a value.
fn has_data(data: &Value) -> bool {
    match data {
        Value::Null => false,
        Value::Object(fields) => fields.values().any(|v| *v != Value::Null),
        _ => true,
    }
}

/// Runs a probe's checks on the process's runtime (see `serve`).
async fn on_main_runtime<F>(app: &AppState, check: F) -> HttpResponse
where
    F: std::future::Future<Output = (StatusCode, serde_json::Value)> + Send + 'static,
{
    match app.runtime.spawn(check).await {
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({ "status": "down" })),
    }
}

async fn health(app: web::Data<AppState>) -> HttpResponse {
    let state = app.get_ref().clone();
    on_main_runtime(&app, async move { health_check(state).await }).await
}

/// The database answers a ping within 2 s (both probes ask it the same way).
async fn database_answers(app: &AppState) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await,
        Ok(Ok(()))
    )
}

async fn health_check(app: AppState) -> (StatusCode, serde_json::Value) {
    let database_ok = database_answers(&app).await;
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
    (
        status,
        json!({
            "status": overall,
            "database": if database_ok { "ok" } else { "down" },
            "redis": redis,
            "limiter": app.limiter.backend(),
        }),
    )
}

/// Readiness, for a load balancer: 200 only when this instance can serve, that is, it has
/// migrated (it listens only after), the database answers, Redis answers a real key round trip
/// (a write and a read of a key, so a Redis that refuses or misroutes keys fails it), and it is
/// not shutting down. `/health` stays the liveness probe.
async fn ready(app: web::Data<AppState>) -> HttpResponse {
    let state = app.get_ref().clone();
    on_main_runtime(&app, async move { ready_check(state).await }).await
}

async fn ready_check(app: AppState) -> (StatusCode, serde_json::Value) {
    if app.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "stopping" }),
        );
    }
    let database_ok = database_answers(&app).await;
    let redis = match &app.redis {
        None => "disabled",
        Some(redis) => {
            let mut con = redis.clone();
            let token = crate::auth::rules::random_hex(8);
            let key = format!("{}{{ready:{token}}}", app.settings.redis_key_prefix);
            let round_trip = async {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("PX")
                    .arg(5_000)
                    .query_async::<()>(&mut con)
                    .await?;
                redis::cmd("GETDEL")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut con)
                    .await
            };
            match tokio::time::timeout(Duration::from_secs(2), round_trip).await {
                Ok(Ok(Some(read))) if read == token => "ok",
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "not ready: Redis failed a key round trip");
                    "down"
                }
                _ => "down",
            }
        }
    };
    let ready = database_ok && redis != "down";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({
            "status": if ready { "ready" } else { "not ready" },
            "database": if database_ok { "ok" } else { "down" },
            "redis": redis,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Panicking;

    #[Object]
    impl Panicking {
        async fn boom(&self, divisor: i32) -> i32 {
            // A bug the type system cannot see: unwrapping what is not there.
            let none: Option<i32> = (divisor > 100).then_some(divisor);
            none.expect("a bug in a resolver")
        }

        async fn fine(&self) -> i32 {
            1
        }
    }

    #[tokio::test]
    async fn a_panicking_resolver_is_caught_and_a_working_one_answers() {
        let schema = Schema::new(Panicking, EmptyMutation, EmptySubscription);
        assert!(
            execute_caught(&schema, "{ boom(divisor: 0) }".into())
                .await
                .is_none()
        );
        let fine = execute_caught(&schema, "{ fine }".into()).await.unwrap();
        assert!(fine.errors.is_empty());
    }

    #[test]
    fn a_panic_is_answered_as_json_internal() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let response = panic_response(&req);
        assert_eq!(response.status(), StatusCode::OK);
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::ACCEPT, "application/graphql-response+json"))
            .to_http_request();
        assert_eq!(
            panic_response(&req).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
