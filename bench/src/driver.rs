//! The load generator: virtual users send GraphQL requests back to back for a fixed time, and
//! every answer is classified: a success is a 2xx whose body has no `errors`; anything else is
//! counted under its `extensions.code` (business refusals such as OUT_OF_STOCK included).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// One request to send.
pub struct Call {
    pub url: Arc<str>,
    pub body: String,
    pub token: Option<Arc<str>>,
    pub device: Option<String>,
    /// `X-Test-Now` (the server runs with APP_ENV=test so the benchmark can move days).
    pub now: Option<Arc<str>>,
}

/// Makes the n-th call of a run (n counts from 0 across all virtual users).
pub type MakeCall = Arc<dyn Fn(u64) -> Call + Send + Sync>;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub seconds: f64,
    pub rps: f64,
    pub ok_rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    fn from(
        mut latencies: Vec<u32>,
        ok: u64,
        errors: BTreeMap<String, u64>,
        elapsed: Duration,
    ) -> Stats {
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i] as f64 / 1000.0
        };
        let requests = latencies.len() as u64;
        let seconds = elapsed.as_secs_f64();
        Stats {
            requests,
            ok,
            errors,
            seconds,
            rps: requests as f64 / seconds,
            ok_rps: ok as f64 / seconds,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: latencies.last().map_or(0.0, |&l| l as f64 / 1000.0),
        }
    }
}

pub fn client(max_connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(max_connections)
        // The server closes a connection idle for 5 s (actix's keep-alive); a client that kept
        // it longer could send on it as it closes and see "connection closed before message
        // completed" (the soak's only failure in one CI run). Drop idle ones well before.
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client with default TLS settings builds")
}

pub fn request(client: &reqwest::Client, call: Call) -> reqwest::RequestBuilder {
    let mut req = client
        .post(&*call.url)
        .header("content-type", "application/json")
        .body(call.body);
    if let Some(token) = &call.token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(device) = &call.device {
        req = req.header("x-device-id", device.as_str());
    }
    if let Some(now) = &call.now {
        req = req.header("x-test-now", &**now);
    }
    req
}

/// What one answer was: None for a success, or the error code.
async fn send(client: &reqwest::Client, call: Call) -> Option<String> {
    let response = match request(client, call).send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("TRANSPORT({})", transport_kind(&e))),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Some(format!("TRANSPORT({})", transport_kind(&e))),
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let first_error = json
        .as_ref()
        .and_then(|j| j.get("errors"))
        .and_then(|e| e.as_array())
        .and_then(|a| a.first());
    match (status.is_success(), first_error) {
        (true, None) if json.is_some() => None,
        (_, Some(error)) => Some(
            error
                .pointer("/extensions/code")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    // PostGraphile's errors carry no code; keep the start of the message.
                    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                    format!("NO_CODE({})", message.chars().take(60).collect::<String>())
                }),
        ),
        _ => Some(format!("HTTP_{}", status.as_u16())),
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    }
}

/// Runs `concurrency` virtual users for `duration`; returns the stats and how many calls were
/// made (so a scenario that consumes members or days knows how far it got).
pub async fn run_for(
    client: &reqwest::Client,
    concurrency: usize,
    duration: Duration,
    make: MakeCall,
) -> Stats {
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut users = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, counter, make) = (client.clone(), counter.clone(), make.clone());
        users.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut ok = 0u64;
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let call = make(n);
                let sent = Instant::now();
                let outcome = send(&client, call).await;
                latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match outcome {
                    None => ok += 1,
                    Some(code) => *errors.entry(code).or_default() += 1,
                }
            }
            (latencies, ok, errors)
        }));
    }
    collect(users, started).await
}

/// Sends `total` calls all at once (the flash sale), one per virtual user.
pub async fn burst(client: &reqwest::Client, total: usize, make: MakeCall) -> Stats {
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Barrier::new(total));
    let mut users = Vec::with_capacity(total);
    for n in 0..total {
        let (client, make, gate) = (client.clone(), make.clone(), gate.clone());
        users.push(tokio::spawn(async move {
            let call = make(n as u64);
            gate.wait().await;
            let sent = Instant::now();
            let outcome = send(&client, call).await;
            let latency = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
            let mut errors = BTreeMap::new();
            let ok = match outcome {
                None => 1,
                Some(code) => {
                    errors.insert(code, 1);
                    0
                }
            };
            (vec![latency], ok, errors)
        }));
    }
    collect(users, started).await
}

type UserResult = (Vec<u32>, u64, BTreeMap<String, u64>);

async fn collect(users: Vec<tokio::task::JoinHandle<UserResult>>, started: Instant) -> Stats {
    let mut latencies = Vec::new();
    let mut ok = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for user in futures_util::future::join_all(users).await {
        match user {
            Ok((l, o, e)) => {
                latencies.extend(l);
                ok += o;
                for (code, n) in e {
                    *errors.entry(code).or_default() += n;
                }
            }
            Err(e) => *errors.entry(format!("DRIVER_PANIC({e})")).or_default() += 1,
        }
    }
    Stats::from(latencies, ok, errors, started.elapsed())
}

/// Sends one call and returns the whole answer (setup and checks, not measured).
pub async fn call_json(client: &reqwest::Client, call: Call) -> Result<Value, String> {
    let response = request(client, call)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let json: Value = response.json().await.map_err(|e| e.to_string())?;
    if let Some(errors) = json.get("errors") {
        return Err(errors.to_string());
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_all_answers() {
        let latencies: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let s = Stats::from(latencies, 90, BTreeMap::new(), Duration::from_secs(2));
        assert_eq!(
            (s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!((s.requests, s.rps, s.ok_rps), (100, 50.0, 45.0));
    }

    #[test]
    fn no_answers_give_zeros_not_a_panic() {
        let s = Stats::from(Vec::new(), 0, BTreeMap::new(), Duration::from_secs(1));
        assert_eq!((s.requests, s.p99_ms), (0, 0.0));
    }
}
