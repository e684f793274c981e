//! What an on-call engineer sees: `/metrics` after a scripted session, request ids in headers,
//! errors and log lines, JSON logs, and traces exported over OTLP. These run the real binary, so
//! each server's counters are its own and exact.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::Server;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADMIN_PASSWORD: &str = "observability-admin-password";

fn start(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        (
            "JWT_SECRET",
            "observability-test-jwt-secret-0123456789abcdef",
        ),
        ("ADMIN_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD),
        ("LOG_FORMAT", "json"),
        // A second check-in attempt within the hour asks for a captcha.
        ("LIMIT_CHECKIN_DEVICE", "1/1h"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// The samples of a Prometheus text exposition: `name{labels}` -> value.
fn scrape_text(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(url: &str) -> BTreeMap<String, f64> {
    let response = reqwest::get(url).await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    scrape_text(&response.text().await.unwrap())
}

/// A series' labels parsed, so tests need not know the exporter's label order.
fn find(samples: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let Some(rest) = series.strip_prefix(name) else {
                return false;
            };
            if labels.is_empty() {
                return rest.is_empty();
            }
            rest.starts_with('{')
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                && rest.matches('=').count() == labels.len()
        })
        .map(|(_, v)| *v)
        .sum()
}

fn delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    find(after, name, labels) - find(before, name, labels)
}

async fn member_token(server: &Server, code: &str) -> (String, String) {
    let login = server
        .post(
            "/graphql",
            None,
            "mutation Login($code: String!) { login(code: $code) { accessToken member { id } } }",
            json!({ "code": code }),
        )
        .await;
    let payload = &login["data"]["login"];
    (
        payload["accessToken"]
            .as_str()
            .expect("a token")
            .to_string(),
        payload["member"]["id"].as_str().expect("an id").to_string(),
    )
}

async fn admin_token(server: &Server) -> String {
    let login = server
        .post(
            "/admin/graphql",
            None,
            "mutation AdminLogin($p: String!) { adminLogin(username: \"admin\", password: $p) { accessToken } }",
            json!({ "p": ADMIN_PASSWORD }),
        )
        .await;
    login["data"]["adminLogin"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("admin login: {login}"))
        .to_string()
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("OK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_moves_each_counter_by_what_happened() {
    let server = start(&[]);
    let metrics_url = server.url("/metrics");
    let admin = admin_token(&server).await;
    let (token, member_id) = member_token(&server, "metrics-member").await;
    // An item of stock 1 for 30 points, and 100 points to spend.
    let item = server
        .post(
            "/admin/graphql",
            Some(&admin),
            "mutation Item { upsertMallItem(input: { name: \"券\", description: \"d\", category: \"c\", kind: \"COUPON\", pointsPrice: 30, stock: 1, couponValue: \"5\", couponThreshold: \"0\", couponValidDays: 30 }) { id } }",
            json!({}),
        )
        .await;
    let item_id = item["data"]["upsertMallItem"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("item: {item}"))
        .to_string();
    let adjusted = server
        .post(
            "/admin/graphql",
            Some(&admin),
            "mutation Adjust($m: ID!) { adjustPoints(memberId: $m, delta: 100, reason: \"test\", idempotencyKey: \"adj-1\") { id } }",
            json!({ "m": member_id }),
        )
        .await;
    assert_eq!(code(&adjusted), "OK", "{adjusted}");

    let before = scrape(&metrics_url).await;

    // A check-in, then a second attempt within the hour: a captcha.
    let check_in = "mutation CheckIn { checkIn { pointsAwarded } }";
    let first = server
        .post("/graphql", Some(&token), check_in, json!({}))
        .await;
    assert_eq!(code(&first), "OK", "{first}");
    let awarded = first["data"]["checkIn"]["pointsAwarded"].as_f64().unwrap();
    let second = server
        .post("/graphql", Some(&token), check_in, json!({}))
        .await;
    assert_eq!(code(&second), "CAPTCHA_REQUIRED", "{second}");
    // A redemption, then the item is sold out.
    let redeem = "mutation Redeem($item: ID!, $key: String!) { redeem(input: { itemId: $item, idempotencyKey: $key }) { id } }";
    let bought = server
        .post(
            "/graphql",
            Some(&token),
            redeem,
            json!({ "item": item_id, "key": "r1" }),
        )
        .await;
    assert_eq!(code(&bought), "OK", "{bought}");
    let refused = server
        .post(
            "/graphql",
            Some(&token),
            redeem,
            json!({ "item": item_id, "key": "r2" }),
        )
        .await;
    assert_eq!(code(&refused), "OUT_OF_STOCK", "{refused}");
    // A job run, and the ledger audit.
    for job in ["EXPIRE_POINTS", "AUDIT_LEDGER"] {
        let ran = server
            .post(
                "/admin/graphql",
                Some(&admin),
                "mutation Run($name: JobName!) { runJob(name: $name) { affected } }",
                json!({ "name": job }),
            )
            .await;
        assert_eq!(code(&ran), "OK", "{ran}");
    }

    let after = scrape(&metrics_url).await;
    let requests = "loyalty_graphql_requests_total";
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    assert_eq!(
        d(
            requests,
            &[("endpoint", "member"), ("operation", "CheckIn")]
        ),
        2.0
    );
    assert_eq!(
        d(requests, &[("endpoint", "member"), ("operation", "Redeem")]),
        2.0
    );
    assert_eq!(
        d(requests, &[("endpoint", "admin"), ("operation", "Run")]),
        2.0
    );
    assert_eq!(
        d(
            "loyalty_graphql_errors_total",
            &[
                ("endpoint", "member"),
                ("operation", "CheckIn"),
                ("code", "CAPTCHA_REQUIRED")
            ]
        ),
        1.0
    );
    assert_eq!(
        d(
            "loyalty_graphql_root_field_errors_total",
            &[
                ("endpoint", "member"),
                ("field", "redeem"),
                ("code", "OUT_OF_STOCK")
            ]
        ),
        1.0
    );
    assert_eq!(
        d(
            "loyalty_graphql_root_fields_total",
            &[("endpoint", "member"), ("field", "checkIn")]
        ),
        2.0
    );
    assert_eq!(
        d(
            "loyalty_graphql_request_duration_seconds_count",
            &[("endpoint", "member"), ("operation", "CheckIn")]
        ),
        2.0
    );
    let gate = "loyalty_gate_decisions_total";
    assert_eq!(
        d(gate, &[("action", "checkin"), ("outcome", "allowed")]),
        1.0
    );
    assert_eq!(
        d(gate, &[("action", "checkin"), ("outcome", "captcha")]),
        1.0
    );
    // The sold-out refusal answers before the gate.
    assert_eq!(d(gate, &[("action", "spend"), ("outcome", "allowed")]), 1.0);
    assert_eq!(d("loyalty_checkins_total", &[("kind", "daily")]), 1.0);
    let points = "loyalty_points_total";
    assert_eq!(d(points, &[("kind", "EARN"), ("direction", "in")]), awarded);
    assert_eq!(d(points, &[("kind", "SPEND"), ("direction", "out")]), 30.0);
    assert_eq!(d("loyalty_redemptions_total", &[("kind", "COUPON")]), 1.0);
    assert_eq!(d("loyalty_sold_out_refusals_total", &[]), 1.0);
    let runs = "loyalty_job_runs_total";
    assert_eq!(d(runs, &[("job", "expire_points"), ("outcome", "ok")]), 1.0);
    assert_eq!(d(runs, &[("job", "audit_ledger"), ("outcome", "ok")]), 1.0);
    assert_eq!(find(&after, "loyalty_ledger_audit_ok", &[]), 1.0);
    assert_eq!(find(&after, "loyalty_ledger_audit_violations", &[]), 0.0);
    // Infrastructure: the pool, statements, build info.
    assert_eq!(
        find(&after, "loyalty_db_pool_connections", &[("state", "max")]),
        1.0
    );
    assert!(
        d(
            "loyalty_db_query_duration_seconds_count",
            &[("statement", "INSERT")]
        ) >= 3.0
    );
    assert!(
        after
            .keys()
            .any(|series| series.starts_with("loyalty_build_info{")),
        "no build info"
    );
    // Nothing about members: no label names a member or holds their login code or token.
    let text = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("member_id") && !text.contains("metrics-member"));
    assert!(!text.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_invented_operation_names_keep_the_label_set_bounded() {
    let server = start(&[("METRICS_PORT", "0")]);
    // With METRICS_PORT the main port has no /metrics.
    let main = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(main.status(), 404);
    let client = reqwest::Client::new();
    for i in 0..1_000 {
        let answer: Value = client
            .post(server.url("/graphql"))
            .json(&json!({ "query": format!("query Invented{i}x{} {{ __typename }}", i * 7919) }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["data"]["__typename"], "Query");
    }
    let metrics_port = server
        .lines()
        .iter()
        .find_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            (line["message"] == "serving /metrics").then(|| line["port"].as_u64())?
        })
        .expect("a line naming the metrics port");
    let samples = scrape(&format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    let operations: HashSet<&str> = samples
        .keys()
        .filter(|s| s.starts_with("loyalty_graphql_requests_total{"))
        .filter_map(|s| s.split("operation=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        operations.len() <= 200 + 1,
        "{} operation labels",
        operations.len()
    );
    assert!(operations.contains("(other)"));
    let total: f64 = samples
        .iter()
        .filter(|(s, _)| s.starts_with("loyalty_graphql_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 1_000.0, "every request is still counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_comes_back_in_headers_errors_and_the_log_line() {
    let server = start(&[]);
    let client = reqwest::Client::new();
    // An error (no token) with the client's id.
    let response = client
        .post(server.url("/graphql"))
        .header("X-Request-Id", "mini-program-req-42")
        .json(&json!({ "query": "mutation CheckIn { checkIn { pointsAwarded } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "mini-program-req-42");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(code(&answer), "UNAUTHENTICATED", "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["requestId"],
        "mini-program-req-42"
    );
    // A request refused before it runs carries it too, and one without an id gets one.
    let response = client
        .post(server.url("/graphql"))
        .header("X-Request-Id", "refused-7")
        .header("content-type", "text/plain")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "refused-7");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"][0]["extensions"]["requestId"], "refused-7");
    let response = client.get(server.url("/health")).send().await.unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(made.len(), 32);
    // An id that is not an id is replaced, not logged.
    let response = client
        .post(server.url("/graphql"))
        .header("X-Request-Id", "evil\" injected")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "evil\" injected");

    let lines = server.stop();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access = parsed
        .iter()
        .find(|l| l["target"] == "access" && l["request_id"] == "mini-program-req-42")
        .unwrap_or_else(|| panic!("no access line with the id in {lines:#?}"));
    assert_eq!(access["operation"], "CheckIn");
    assert_eq!(access["code"], "UNAUTHENTICATED");
    assert!(access["latency_ms"].is_number());
    assert!(access["timestamp"].is_string() && access["level"] == "INFO");
    assert!(
        parsed.iter().all(|l| !l.to_string().contains("evil")),
        "a refused id reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_to_the_otlp_collector_with_the_request_id() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let server = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.uri())]);
    let (token, _) = member_token(&server, "traced-member").await;
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .header("X-Request-Id", "traced-request-9")
        .json(&json!({ "query": "mutation CheckIn { checkIn { pointsAwarded } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // SIGTERM: the server stops and sends the spans it buffered.
    let lines = server.terminate();
    let received = collector.received_requests().await.unwrap_or_default();
    let bodies: Vec<&[u8]> = received
        .iter()
        .filter(|r| r.url.path() == "/v1/traces")
        .map(|r| r.body.as_slice())
        .collect();
    assert!(
        !bodies.is_empty(),
        "no export; the server printed {lines:#?}"
    );
    let contains = |needle: &str| {
        bodies
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    assert!(
        contains("traced-request-9"),
        "the request id is not in the trace"
    );
    assert!(
        contains("use_case"),
        "the use case's span is not in the trace"
    );
    assert!(
        contains("loyalty-api"),
        "the service name is not in the trace"
    );
}

/// The dashboard and the alert rules name only metrics the server exports (a renamed metric
/// would leave a panel empty and an alert silent). `ops/check.sh` checks their PromQL.
#[test]
fn the_dashboard_and_the_alerts_name_only_exported_metrics() {
    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops");
    let mut used = HashSet::new();
    for file in ["grafana/loyalty.json", "prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(ops.join(file)).unwrap();
        for (i, _) in text.match_indices("loyalty_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name)
                .to_string();
            used.insert((file, base));
        }
    }
    let unknown: Vec<_> = used
        .iter()
        .filter(|(_, name)| !api::metrics::names::ALL.contains(&name.as_str()))
        .collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
    let dashboard: HashSet<&String> = used
        .iter()
        .filter(|(file, _)| file.starts_with("grafana"))
        .map(|(_, name)| name)
        .collect();
    assert!(
        dashboard.len() >= 25,
        "the dashboard shows {} metrics",
        dashboard.len()
    );
}
