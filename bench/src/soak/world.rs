//! What the soak's virtual members and its operator share: the clock, the ids they have seen,
//! the counters, the failures, and the one way to send a request and judge its answer.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::checks::Seeded;
use crate::driver::{self, Call};

/// The error codes of DESIGN s5 a client may see; INTERNAL is a failure, and so is any other.
pub const CODES: [&str; 14] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BLACKLISTED",
    "NOT_FOUND",
    "VALIDATION",
    "INSUFFICIENT_POINTS",
    "OUT_OF_STOCK",
    "LIMIT_REACHED",
    "ALREADY_DONE",
    "NOT_AVAILABLE",
    "RATE_LIMITED",
    "CAPTCHA_REQUIRED",
    "CONFLICT",
    "UNAVAILABLE",
];

/// SplitMix64: small, fast, and the same sequence from the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[cfg(test)]
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for `stream` (a member's index, the operator...).
    pub fn derive(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.below(items.len() as u64) as usize].clone())
        }
    }

    /// An index into `weights`, with the chance of each proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < u64::from(*w) {
                return i;
            }
            x -= u64::from(*w);
        }
        weights.len().saturating_sub(1)
    }
}

/// A mall item as members see it.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub cash_price: Option<f64>,
    pub crowdfundable: bool,
}

impl Item {
    pub fn from_json(v: &Value) -> Option<Item> {
        Some(Item {
            id: v["id"].as_str()?.parse().ok()?,
            cash_price: v["cashPrice"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v["cashPrice"].as_f64()),
            crowdfundable: false,
        })
    }
}

/// One failure: who, doing what, and why it fails the run.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The virtual member's index, or None for the operator.
    pub member: Option<usize>,
    pub what: String,
    /// The member's last operations, this one last.
    pub history: Vec<String>,
}

/// Everything the tasks share.
pub struct Shared {
    pub client: reqwest::Client,
    pub url: Arc<str>,
    pub admin_url: Arc<str>,
    pub admin_token: Arc<str>,
    /// The test clock every request sends as `X-Test-Now`, in Unix seconds.
    clock: AtomicI64,
    pub stop: AtomicBool,
    pub member_nos: Mutex<Vec<String>>,
    pub member_ids: Vec<i64>,
    pub items: Mutex<Vec<Item>>,
    pub boxes: Mutex<Vec<i64>>,
    pub projects: Mutex<Vec<i64>>,
    /// Open crowdfunds anyone may contribute to.
    pub crowdfunds: Mutex<Vec<i64>>,
    /// Orders waiting for the merchant's payment system (points+cash), and paid goods to ship.
    pub pending_orders: Mutex<Vec<i64>>,
    pub paid_orders: Mutex<Vec<i64>>,
    pub seeded: Mutex<Seeded>,
    /// (operation, outcome) -> count; outcome is "ok" or the error code.
    pub counts: Mutex<BTreeMap<(String, String), u64>>,
    pub failures: Mutex<Vec<Failure>>,
    pub failed_members: Mutex<HashSet<usize>>,
}

/// Keep this many failures in full; the rest are only counted.
const MAX_FAILURES: usize = 200;

impl Shared {
    pub fn new(
        client: reqwest::Client,
        url: &str,
        admin_token: Arc<str>,
        start: DateTime<Utc>,
        member_ids: Vec<i64>,
        seeded: Seeded,
    ) -> Shared {
        Shared {
            client,
            url: url.into(),
            admin_url: url.replace("/graphql", "/admin/graphql").into(),
            admin_token,
            clock: AtomicI64::new(start.timestamp()),
            stop: AtomicBool::new(false),
            member_nos: Mutex::new(Vec::new()),
            member_ids,
            items: Mutex::new(Vec::new()),
            boxes: Mutex::new(Vec::new()),
            projects: Mutex::new(Vec::new()),
            crowdfunds: Mutex::new(Vec::new()),
            pending_orders: Mutex::new(Vec::new()),
            paid_orders: Mutex::new(Vec::new()),
            seeded: Mutex::new(seeded),
            counts: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
            failed_members: Mutex::new(HashSet::new()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.clock.load(Ordering::SeqCst), 0).unwrap_or_default()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sends one GraphQL request at the shared clock's now.
    pub async fn send(&self, admin: bool, token: Option<&str>, query: &str, vars: Value) -> Answer {
        self.send_at(admin, token, query, vars, self.now(), None)
            .await
    }

    pub async fn send_at(
        &self,
        admin: bool,
        token: Option<&str>,
        query: &str,
        vars: Value,
        now: DateTime<Utc>,
        device: Option<String>,
    ) -> Answer {
        self.send_within(admin, token, query, vars, now, device, None)
            .await
    }

    /// As `send_at`, with a time limit other than the client's 30 s (jobs over every member).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_within(
        &self,
        admin: bool,
        token: Option<&str>,
        query: &str,
        vars: Value,
        now: DateTime<Utc>,
        device: Option<String>,
        limit: Option<std::time::Duration>,
    ) -> Answer {
        let call = Call {
            url: if admin {
                self.admin_url.clone()
            } else {
                self.url.clone()
            },
            body: json!({ "query": query, "variables": vars }).to_string(),
            token: token.map(Arc::from),
            device,
            now: Some(now.to_rfc3339().into()),
        };
        let mut request = driver::request(&self.client, call);
        if let Some(limit) = limit {
            request = request.timeout(limit);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Answer::transport(e),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(bytes) => Answer {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or_else(
                    |_| json!({ "unparsed": String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>() }),
                ),
                transport: None,
            },
            Err(e) => Answer::transport(e),
        }
    }

    /// Counts the answer under `op`, and records a failure if it is one: a 5xx, INTERNAL, an
    /// error without a code or with a code outside DESIGN's list, or no answer at all.
    pub fn judge(&self, who: Option<usize>, op: &str, answer: &Answer, history: &[String]) -> bool {
        let outcome = answer.outcome();
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((op.to_string(), outcome.clone()))
            .or_default() += 1;
        let bad = if let Some(t) = &answer.transport {
            Some(format!("no answer: {t}"))
        } else if answer.status >= 500 {
            Some(format!("HTTP {}: {}", answer.status, answer.body))
        } else if outcome == "INTERNAL" {
            Some(format!("INTERNAL: {}", answer.first_error()))
        } else if outcome != "ok" && !CODES.contains(&outcome.as_str()) {
            Some(format!("error code {outcome}: {}", answer.first_error()))
        } else {
            None
        };
        match bad {
            Some(why) => {
                self.fail(who, format!("{op}: {why}"), history);
                false
            }
            None => true,
        }
    }

    pub fn fail(&self, who: Option<usize>, what: String, history: &[String]) {
        eprintln!(
            "FAILURE ({}): {what}",
            who.map_or("operator".to_string(), |m| format!("member {m}"))
        );
        if let Some(m) = who {
            self.failed_members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(m);
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < MAX_FAILURES {
            failures.push(Failure {
                member: who,
                what,
                history: history.to_vec(),
            });
        }
    }

    pub fn failure_count(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// An answer, or the lack of one.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub transport: Option<String>,
}

impl Answer {
    fn transport(e: reqwest::Error) -> Answer {
        let kind = if e.is_timeout() {
            "timed out: "
        } else if e.is_connect() {
            "could not connect: "
        } else {
            ""
        };
        let e = e.without_url();
        let mut why = format!("{kind}{e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            why.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Answer {
            status: 0,
            body: Value::Null,
            transport: Some(why),
        }
    }

    pub fn ok(&self) -> bool {
        self.transport.is_none()
            && (200..300).contains(&self.status)
            && self.body.get("errors").is_none()
            && self.body.get("data").is_some_and(|d| !d.is_null())
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn first_error(&self) -> &Value {
        &self.body["errors"][0]
    }

    pub fn code(&self) -> Option<&str> {
        self.first_error()["extensions"]["code"].as_str()
    }

    /// "ok", the error code, or what stands in for one.
    pub fn outcome(&self) -> String {
        if self.transport.is_some() {
            return "NO_ANSWER".into();
        }
        if self.ok() {
            return "ok".into();
        }
        if self.body.get("errors").is_some() {
            return self.code().unwrap_or("NO_CODE").to_string();
        }
        format!("HTTP_{}", self.status)
    }
}

/// A member's last operations, for the report of a failure.
#[derive(Debug, Default)]
pub struct History(VecDeque<String>);

const HISTORY: usize = 30;

impl History {
    pub fn push(&mut self, line: String) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

/// The answer to the arithmetic captcha's prompt, "What is a + b?".
pub fn solve_prompt(prompt: &str) -> Option<i64> {
    let sum = prompt
        .trim()
        .strip_prefix("What is ")?
        .trim_end_matches('?')
        .trim();
    let (a, b) = sum.split_once('+')?;
    Some(a.trim().parse::<i64>().ok()? + b.trim().parse::<i64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, 1);
                move |_| r.next()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, 1);
                move |_| r.next()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, 2);
                move |_| r.next()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn weighted_picks_stay_in_range_and_skip_zero_weights() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let i = r.weighted(&[0, 3, 0, 1]);
            assert!(i == 1 || i == 3);
        }
    }

    #[test]
    fn the_captcha_prompt_is_solved() {
        assert_eq!(solve_prompt("What is 7 + 5?"), Some(12));
        assert_eq!(solve_prompt("What is seven?"), None);
    }

    #[test]
    fn answers_are_judged_by_status_code_and_error_code() {
        let ok = Answer {
            status: 200,
            body: json!({"data": {"me": {"id": "1"}}}),
            transport: None,
        };
        assert_eq!(ok.outcome(), "ok");
        let refused = Answer {
            status: 200,
            body: json!({"data": null, "errors": [{"message": "x", "extensions": {"code": "OUT_OF_STOCK"}}]}),
            transport: None,
        };
        assert_eq!(refused.outcome(), "OUT_OF_STOCK");
        let uncoded = Answer {
            status: 200,
            body: json!({"errors": [{"message": "Unknown field"}]}),
            transport: None,
        };
        assert_eq!(uncoded.outcome(), "NO_CODE");
        let crashed = Answer {
            status: 502,
            body: Value::Null,
            transport: None,
        };
        assert_eq!(crashed.outcome(), "HTTP_502");
    }
}
