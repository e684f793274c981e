//! A virtual member: signs in through `login`, keeps its session alive across the moving clock,
//! and does a random mix of every member operation, with idempotency keys reused on purpose,
//! some requests sent twice at once, captchas solved, and some inputs out of range.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use super::world::{Answer, History, Item, Rng, Shared, solve_prompt};

const LOGIN: &str = "mutation L($c: String!, $i: String) { login(code: $c, inviteCode: $i) { \
    accessToken refreshToken expiresAt member { id memberNo inviteCode points } } }";
const REFRESH: &str = "mutation R($t: String!) { refreshSession(refreshToken: $t) { \
    accessToken refreshToken expiresAt member { id } } }";
const SOLVE: &str =
    "mutation S($c: ID!, $a: String!) { solveCaptcha(challengeId: $c, answer: $a) }";
const ME: &str = "{ me { id memberNo nickname points growthValue tier { code rank } \
    tierValidUntil nextTier { tier { code } growthNeeded ratio } protectionSprint \
    downgradePreview { code } activeTitle { code name } checkInStreak pointsExpiringSoon createdAt } }";
const LEDGER: &str = "query P($a: String) { pointsLedger(first: 10, after: $a) { nodes { id delta \
    balanceAfter kind source sourceId note expiresAt createdAt } pageInfo { hasNextPage endCursor } } }";
const CALENDAR: &str = "query C($m: String) { checkInCalendar(month: $m) { month checkedDays \
    madeUpDays streak makeUpsLeft makeUpCost todayCheckedIn } }";
const TASKS: &str = "{ tasks { task { id code kind event target rewardPoints } progress completed \
    claimed periodEndsAt } }";
const CLAIM: &str = "mutation T($t: ID!) { claimTask(taskId: $t) { pointsAwarded task { code } \
    member { points } unlocked { code } } }";
const CHECK_IN: &str = "mutation C($k: String) { checkIn(idempotencyKey: $k) { date pointsAwarded \
    streak streakBonus member { points checkInStreak } unlocked { code title { code } } } }";
const MAKE_UP: &str = "mutation M($d: Date!, $k: String) { makeUpCheckIn(date: $d, idempotencyKey: $k) \
    { date pointsAwarded streak member { points } unlocked { code } } }";
const REPORT: &str = "mutation E($kind: String!, $t: String, $k: String) { reportEvent(kind: $kind, \
    targetId: $t, idempotencyKey: $k) { task { code } progress completed claimed } }";
const MALL: &str = "query I($c: String, $a: String, $f: Int) { mallItems(category: $c, first: $f, \
    after: $a) { nodes { id name category kind pointsPrice cashPrice stock perMemberLimit \
    minTierRank startsAt endsAt } pageInfo { hasNextPage endCursor } } }";
const MALL_ITEM: &str =
    "query I($i: ID!) { mallItem(id: $i) { id kind stock pointsPrice cashPrice } }";
const QUOTE: &str = "query Q($i: ID!, $q: Int!, $p: Int) { redeemQuote(itemId: $i, quantity: $q, \
    pointsToUse: $p) { pointsCost cashDue maxPointsDeduction affordable reasonIfNot } }";
const REDEEM: &str = "mutation R($in: RedeemInput!) { redeem(input: $in) { id status quantity \
    pointsCost cashDue item { id kind } coupon { id status value } createdAt } }";
const ORDERS: &str = "query O($a: String) { myOrders(first: 20, after: $a) { nodes { id status \
    quantity pointsCost cashDue item { id kind name } coupon { status } } pageInfo { hasNextPage endCursor } } }";
const CANCEL: &str = "mutation X($o: ID!) { cancelOrder(orderId: $o) { id status } }";
const COUPONS: &str = "query K($s: CouponStatus) { myCoupons(status: $s) { id name value threshold status validUntil source } }";
const START_CF: &str = "mutation S($i: ID!) { startCrowdfund(itemId: $i) { id targetPoints \
    raisedPoints status deadline item { id } } }";
const CONTRIBUTE: &str = "mutation G($c: ID!, $p: Int!, $k: String!) { contributeCrowdfund(\
    crowdfundId: $c, points: $p, idempotencyKey: $k) { id raisedPoints targetPoints status } }";
const CROWDFUND: &str = "query F($c: ID!) { crowdfund(id: $c) { id status raisedPoints targetPoints \
    deadline initiatorMemberNo item { id name } contributions { memberNo points createdAt } } }";
const PROJECTS: &str =
    "{ donationProjects { id name targetPoints raisedPoints donorCount progress } }";
const DONATE: &str = "mutation D($p: ID!, $n: Int!, $k: String!) { donatePoints(projectId: $p, \
    points: $n, idempotencyKey: $k) { id raisedPoints donorCount progress } }";
const BOXES: &str = "{ blindBoxes { id pointsPrice dailyLimit pityThreshold myPityCount \
    seedCommitment prizeTable prizes { id name rarity kind probability stock } } }";
const BOX: &str = "query B($b: ID!) { blindBox(id: $b) { id pointsPrice myPityCount prizes { id stock probability } } }";
const DRAW: &str = "mutation D($b: ID!, $c: Int!, $k: String!) { drawBlindBox(boxId: $b, count: $c, \
    idempotencyKey: $k) { pointsSpent draws { id pity memberNonce nonce prize { id kind rarity } } \
    member { points } unlocked { code title { code } } } }";
const MY_DRAWS: &str = "query W($a: String) { myDraws(first: 10, after: $a) { nodes { id pity pool \
    memberNonce clientSeed seedCommitment prizeTable revealedSeed createdAt prize { id } } \
    pageInfo { hasNextPage endCursor } } }";
const CLIENT_SEED: &str = "{ myClientSeed { clientSeed nextMemberNonce } }";
const SET_SEED: &str =
    "mutation S($s: String!) { setBlindBoxClientSeed(seed: $s) { clientSeed nextMemberNonce } }";
const WALL: &str = "{ achievementWall { unlockedCount showcase { code } achievements { \
    achievement { code name threshold rewardPoints hidden title { code } } progress unlocked \
    unlockedAt rarity } titles { code name } } }";
const SHOWCASE: &str = "mutation S($c: [String!]!) { setShowcase(achievementCodes: $c) { showcase { code } unlockedCount } }";
const EQUIP: &str = "mutation T($t: String) { equipTitle(titleCode: $t) { activeTitle { code } } }";
const LEADERBOARD: &str = "query L($k: LeaderboardKind!, $f: Int) { leaderboard(kind: $k, first: $f) \
    { kind myRank entries { rank memberNo nickname score } } }";
const TIERS: &str =
    "{ tiers { code name rank growthThreshold discount pointsMultiplier benefits } }";
const TRANSFER: &str = "mutation T($to: String!, $n: Int!, $k: String!) { transferPoints(toMemberNo: \
    $to, amount: $n, idempotencyKey: $k) { id amount toMemberNo createdAt member { points } } }";
const PROFILE: &str = "mutation P($in: ProfileInput!) { updateProfile(input: $in) { nickname \
    avatarUrl birthday } }";
const LOGOUT: &str = "mutation { logout }";

/// Every operation a member picks from, with its weight.
const OPS: [(&str, u32); 38] = [
    ("me", 6),
    ("pointsLedger", 3),
    ("checkInCalendar", 2),
    ("tasks+claimTask", 6),
    ("checkIn", 6),
    ("makeUpCheckIn", 2),
    ("reportEvent", 8),
    ("mallItems", 4),
    ("mallItem", 1),
    ("redeemQuote", 2),
    ("redeem", 7),
    ("redeem points+cash", 3),
    ("myOrders", 2),
    ("cancelOrder", 3),
    ("myCoupons", 1),
    ("startCrowdfund", 2),
    ("contributeCrowdfund", 4),
    ("crowdfund", 1),
    ("donationProjects", 1),
    ("donatePoints", 3),
    ("blindBoxes", 2),
    ("blindBox", 1),
    ("drawBlindBox x1", 5),
    ("drawBlindBox x10", 2),
    ("myDraws", 1),
    ("myClientSeed", 1),
    ("setBlindBoxClientSeed", 1),
    ("achievementWall", 2),
    ("setShowcase", 1),
    ("equipTitle", 1),
    ("leaderboard", 3),
    ("tiers", 1),
    ("transferPoints", 5),
    ("updateProfile", 1),
    ("refreshSession", 1),
    ("logout", 1),
    ("login invited", 1),
    ("out-of-range input", 4),
];

const REPORT_KINDS: [&str; 4] = ["browse_item", "share", "review", "ugc_post"];

pub struct Member {
    idx: usize,
    seed: u64,
    rng: Rng,
    shared: Arc<Shared>,
    device: String,
    access: Option<String>,
    refresh: Option<String>,
    expires_at: DateTime<Utc>,
    member_no: String,
    invite_code: String,
    keys: u64,
    invited: u64,
    history: History,
    orders: Vec<i64>,
    unlocked: Vec<String>,
    titles: Vec<String>,
}

/// The business date at `now` (the soak's server runs at +08:00, the default).
fn business_date(now: DateTime<Utc>) -> NaiveDate {
    (now + Duration::hours(8)).date_naive()
}

fn id_of(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok())
}

impl Member {
    pub fn new(idx: usize, seed: u64, shared: Arc<Shared>) -> Member {
        Member {
            idx,
            seed,
            rng: Rng::derive(seed, idx as u64 + 1),
            shared,
            device: format!("soak-device-{idx}"),
            access: None,
            refresh: None,
            expires_at: DateTime::<Utc>::MIN_UTC,
            member_no: String::new(),
            invite_code: String::new(),
            keys: 0,
            invited: 0,
            history: History::default(),
            orders: Vec::new(),
            unlocked: Vec::new(),
            titles: Vec::new(),
        }
    }

    pub fn member_no(&self) -> &str {
        &self.member_no
    }

    /// The tier ladder, as the operator's `upsertTier` inputs.
    pub async fn tiers(&mut self) -> Option<Vec<Value>> {
        let answer = self.call("tiers", TIERS, json!({})).await;
        answer.data()["tiers"].as_array().cloned()
    }

    /// Every item on sale, for the members to pick from.
    pub async fn browse_all(&mut self) {
        self.browse(None).await;
    }

    /// The member's login code: the seeded shop gives member i the openid `mock_soak_{i}`.
    fn code(&self) -> String {
        format!("soak_{}", self.idx)
    }

    fn key(&mut self) -> String {
        self.keys += 1;
        format!("soak-{}-{}-{}", self.seed, self.idx, self.keys)
    }

    /// Sends one request as this member (or anonymously), judges the answer, keeps it in the
    /// history. A captcha is solved (after a wrong answer now and then) and the request retried.
    async fn call(&mut self, op: &str, query: &str, vars: Value) -> Answer {
        let mut answer = self.send(op, query, vars.clone()).await;
        if answer.code() == Some("CAPTCHA_REQUIRED") && self.solve_captcha(&answer).await {
            answer = self
                .send(&format!("{op} (after captcha)"), query, vars)
                .await;
        }
        if answer.code() == Some("UNAUTHENTICATED") {
            // A clock jump can outrun the check before the request; sign in again.
            self.access = None;
        }
        answer
    }

    async fn send(&mut self, op: &str, query: &str, vars: Value) -> Answer {
        let now = self.shared.now();
        let answer = self
            .shared
            .send_at(
                false,
                self.access.as_deref(),
                query,
                vars.clone(),
                now,
                Some(self.device.clone()),
            )
            .await;
        self.note(op, &vars, now, &answer);
        answer
    }

    fn note(&mut self, op: &str, vars: &Value, now: DateTime<Utc>, answer: &Answer) {
        let outcome = answer.outcome();
        let detail = if outcome == "ok" {
            String::new()
        } else {
            format!(" {}", answer.first_error()["message"])
        };
        self.history.push(format!(
            "{} {op} {vars} -> {outcome}{detail}",
            now.to_rfc3339()
        ));
        self.shared
            .judge(Some(self.idx), op, answer, &self.history.lines());
    }

    async fn solve_captcha(&mut self, refused: &Answer) -> bool {
        let ext = &refused.first_error()["extensions"];
        let (Some(challenge), Some(prompt)) = (ext["challengeId"].as_str(), ext["prompt"].as_str())
        else {
            self.shared.fail(
                Some(self.idx),
                format!(
                    "CAPTCHA_REQUIRED without challengeId and prompt: {}",
                    refused.body
                ),
                &self.history.lines(),
            );
            return false;
        };
        let Some(sum) = solve_prompt(prompt) else {
            self.shared.fail(
                Some(self.idx),
                format!("a captcha prompt that is not \"What is a + b?\": {prompt}"),
                &self.history.lines(),
            );
            return false;
        };
        let challenge = challenge.to_string();
        if self.rng.chance(0.2) {
            let wrong = self
                .send(
                    "solveCaptcha (wrong)",
                    SOLVE,
                    json!({ "c": challenge, "a": (sum + 1).to_string() }),
                )
                .await;
            if wrong.ok() && wrong.data()["solveCaptcha"] != false {
                self.fail("solveCaptcha accepted a wrong answer");
            }
        }
        let solved = self
            .send(
                "solveCaptcha",
                SOLVE,
                json!({ "c": challenge, "a": sum.to_string() }),
            )
            .await;
        solved.ok() && solved.data()["solveCaptcha"] == true
    }

    fn fail(&self, what: &str) {
        self.shared
            .fail(Some(self.idx), what.to_string(), &self.history.lines());
    }

    /// Signs in (again) through the mock WeChat login.
    pub async fn login(&mut self) -> bool {
        self.access = None;
        let code = self.code();
        let answer = self
            .send("login", LOGIN, json!({ "c": code, "i": null }))
            .await;
        self.take_session(&answer, "login")
    }

    fn take_session(&mut self, answer: &Answer, field: &str) -> bool {
        if !answer.ok() {
            return false;
        }
        let session = &answer.data()[field];
        self.access = session["accessToken"].as_str().map(str::to_string);
        self.refresh = session["refreshToken"].as_str().map(str::to_string);
        self.expires_at = session["expiresAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc));
        if let Some(no) = session["member"]["memberNo"].as_str() {
            self.member_no = no.to_string();
        }
        if let Some(code) = session["member"]["inviteCode"].as_str() {
            self.invite_code = code.to_string();
        }
        self.access.is_some()
    }

    /// A session that is valid now: refreshed shortly before it runs out (sometimes by two
    /// refreshes at once, as a resuming app does), or a new sign-in.
    async fn ensure_session(&mut self) -> bool {
        let now = self.shared.now();
        // A wide margin: the clock moves on while requests are in flight.
        if self.access.is_some() && now + Duration::minutes(30) < self.expires_at {
            return true;
        }
        if self.access.is_some()
            && let Some(token) = self.refresh.clone()
            && self.refresh_session(&token).await
        {
            return true;
        }
        self.login().await
    }

    async fn refresh_session(&mut self, token: &str) -> bool {
        let vars = json!({ "t": token });
        if self.rng.chance(0.15) {
            // Two refreshes with one token at once both get the same new pair (REFRESH_GRACE).
            let now = self.shared.now();
            let (a, b) = futures_util::join!(
                self.shared
                    .send_at(false, None, REFRESH, vars.clone(), now, None),
                self.shared
                    .send_at(false, None, REFRESH, vars.clone(), now, None)
            );
            self.note("refreshSession (twice at once)", &vars, now, &a);
            self.note("refreshSession (twice at once)", &vars, now, &b);
            if a.ok() != b.ok()
                || (a.ok()
                    && a.data()["refreshSession"]["refreshToken"]
                        != b.data()["refreshSession"]["refreshToken"])
            {
                self.fail("two refreshes at once with one token did not get the same pair");
            }
            return self.take_session(&a, "refreshSession");
        }
        let answer = self.send("refreshSession", REFRESH, vars).await;
        self.take_session(&answer, "refreshSession")
    }

    /// Runs until the soak stops.
    pub async fn run(mut self) {
        let weights: Vec<u32> = OPS.iter().map(|(_, w)| *w).collect();
        while !self.shared.stopped() {
            if !self.ensure_session().await {
                // Not even a login went through: that was judged already; don't spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            let op = OPS[self.rng.weighted(&weights)].0;
            self.op(op).await;
        }
    }

    async fn op(&mut self, op: &str) {
        match op {
            "me" => {
                self.call(op, ME, json!({})).await;
            }
            "pointsLedger" => {
                let first = self.call(op, LEDGER, json!({ "a": null })).await;
                if let Some(cursor) = first.data()["pointsLedger"]["pageInfo"]["endCursor"].as_str()
                {
                    let cursor = cursor.to_string();
                    self.call(op, LEDGER, json!({ "a": cursor })).await;
                }
            }
            "checkInCalendar" => {
                let month = business_date(self.shared.now()).format("%Y-%m").to_string();
                let month = if self.rng.chance(0.2) {
                    None
                } else {
                    Some(month)
                };
                self.call(op, CALENDAR, json!({ "m": month })).await;
            }
            "tasks+claimTask" => self.tasks_and_claim().await,
            "checkIn" => {
                let key = self.rng.chance(0.8).then(|| self.key());
                self.keyed(op, CHECK_IN, json!({ "k": key }), None, |d| {
                    d["checkIn"]["date"].clone()
                })
                .await;
            }
            "makeUpCheckIn" => {
                let today = business_date(self.shared.now());
                let day = today
                    .with_day(self.rng.range(1, i64::from(today.day())) as u32)
                    .unwrap_or(today);
                let key = self.key();
                self.keyed(
                    op,
                    MAKE_UP,
                    json!({ "d": day.to_string(), "k": key }),
                    None,
                    |d| d["makeUpCheckIn"]["date"].clone(),
                )
                .await;
            }
            "reportEvent" => {
                let kind = self.rng.pick(&REPORT_KINDS).unwrap_or("share");
                let target =
                    (kind == "browse_item").then(|| format!("item-{}", self.rng.below(60)));
                let key = self.rng.chance(0.7).then(|| self.key());
                self.call(op, REPORT, json!({ "kind": kind, "t": target, "k": key }))
                    .await;
            }
            "mallItems" => self.browse_mall().await,
            "mallItem" => {
                if let Some(item) = self.pick_item(|_| true) {
                    self.call(op, MALL_ITEM, json!({ "i": item.id.to_string() }))
                        .await;
                }
            }
            "redeemQuote" => {
                if let Some(item) = self.pick_item(|_| true) {
                    let points = item.cash_price.map(|_| self.rng.range(0, 3_000));
                    let vars =
                        json!({ "i": item.id.to_string(), "q": self.rng.range(1, 3), "p": points });
                    self.call(op, QUOTE, vars).await;
                }
            }
            "redeem" => {
                if let Some(item) = self.pick_item(|i| i.cash_price.is_none()) {
                    let quantity = self.rng.range(1, 2);
                    self.redeem(op, &item, quantity, None).await;
                }
            }
            "redeem points+cash" => {
                if let Some(item) = self.pick_item(|i| i.cash_price.is_some()) {
                    // Up to the ladder's cap, and now and then past it (VALIDATION or capped).
                    let cap = (item.cash_price.unwrap_or(0.0) * 10.0 * 0.8) as i64;
                    let points = self.rng.range(0, cap.max(0) + 200);
                    self.redeem(op, &item, 1, Some(points)).await;
                }
            }
            "myOrders" => self.my_orders().await,
            "cancelOrder" => {
                if self.orders.is_empty() || self.rng.chance(0.2) {
                    self.my_orders().await;
                }
                if let Some(order) = self.rng.pick(&self.orders) {
                    let answer = self
                        .call(op, CANCEL, json!({ "o": order.to_string() }))
                        .await;
                    if answer.ok() {
                        self.orders.retain(|o| *o != order);
                    }
                }
            }
            "myCoupons" => {
                let status = self
                    .rng
                    .pick(&[None, Some("AVAILABLE"), Some("USED"), Some("EXPIRED")])
                    .flatten();
                self.call(op, COUPONS, json!({ "s": status })).await;
            }
            "startCrowdfund" => {
                if let Some(item) = self.pick_item(|i| i.crowdfundable) {
                    let answer = self
                        .call(op, START_CF, json!({ "i": item.id.to_string() }))
                        .await;
                    if let Some(id) = id_of(&answer.data()["startCrowdfund"]["id"]) {
                        self.shared
                            .crowdfunds
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(id);
                    }
                }
            }
            "contributeCrowdfund" => self.contribute().await,
            "crowdfund" => {
                let open = self
                    .shared
                    .crowdfunds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(id) = self.rng.pick(&open) {
                    self.call(op, CROWDFUND, json!({ "c": id.to_string() }))
                        .await;
                }
            }
            "donationProjects" => {
                self.call(op, PROJECTS, json!({})).await;
            }
            "donatePoints" => {
                let projects = self
                    .shared
                    .projects
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(project) = self.rng.pick(&projects) {
                    let (points, key) = (self.rng.range(1, 300), self.key());
                    self.keyed(
                        op,
                        DONATE,
                        json!({ "p": project.to_string(), "n": points, "k": key }),
                        Some(json!({ "p": project.to_string(), "n": points + 1, "k": key })),
                        |d| d["donatePoints"]["id"].clone(),
                    )
                    .await;
                }
            }
            "blindBoxes" => {
                self.call(op, BOXES, json!({})).await;
            }
            "blindBox" => {
                if let Some(b) = self.pick_box() {
                    self.call(op, BOX, json!({ "b": b.to_string() })).await;
                }
            }
            "drawBlindBox x1" | "drawBlindBox x10" => {
                if let Some(b) = self.pick_box() {
                    let count = if op == "drawBlindBox x1" { 1 } else { 10 };
                    let key = self.key();
                    let answer = self
                        .keyed(
                            op,
                            DRAW,
                            json!({ "b": b.to_string(), "c": count, "k": key }),
                            Some(json!({ "b": b.to_string(), "c": 11 - count, "k": key })),
                            |d| {
                                Value::Array(
                                    d["drawBlindBox"]["draws"]
                                        .as_array()
                                        .map(|a| a.iter().map(|x| x["id"].clone()).collect())
                                        .unwrap_or_default(),
                                )
                            },
                        )
                        .await;
                    self.take_unlocked(&answer.data()["drawBlindBox"]["unlocked"]);
                }
            }
            "myDraws" => {
                self.call(op, MY_DRAWS, json!({ "a": null })).await;
            }
            "myClientSeed" => {
                self.call(op, CLIENT_SEED, json!({})).await;
            }
            "setBlindBoxClientSeed" => {
                let seed = format!("lucky-{}", self.rng.below(1_000_000));
                self.call(op, SET_SEED, json!({ "s": seed })).await;
            }
            "achievementWall" => self.wall().await,
            "setShowcase" => {
                if self.unlocked.is_empty() {
                    self.wall().await;
                }
                let mut codes: Vec<String> = Vec::new();
                for _ in 0..self.rng.range(0, 6) {
                    if let Some(c) = self.rng.pick(&self.unlocked)
                        && !codes.contains(&c)
                    {
                        codes.push(c);
                    }
                }
                self.call(op, SHOWCASE, json!({ "c": codes })).await;
            }
            "equipTitle" => {
                let title = if self.rng.chance(0.2) {
                    None
                } else {
                    self.rng.pick(&self.titles)
                };
                self.call(op, EQUIP, json!({ "t": title })).await;
            }
            "leaderboard" => {
                let kind = self
                    .rng
                    .pick(&["POINTS_EARNED_MONTH", "CHECKIN_STREAK", "ACHIEVEMENTS"])
                    .unwrap_or("ACHIEVEMENTS");
                let first = self
                    .rng
                    .pick(&[None, Some(10), Some(50), Some(100)])
                    .flatten();
                self.call(op, LEADERBOARD, json!({ "k": kind, "f": first }))
                    .await;
            }
            "tiers" => {
                self.call(op, TIERS, json!({})).await;
            }
            "transferPoints" => {
                let nos = self
                    .shared
                    .member_nos
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(to) = self.rng.pick(&nos).filter(|n| *n != self.member_no) {
                    let (amount, key) = (self.rng.range(1, 1_000), self.key());
                    self.keyed(
                        op,
                        TRANSFER,
                        json!({ "to": to, "n": amount, "k": key }),
                        Some(json!({ "to": to, "n": amount % 1_000 + 1, "k": key })),
                        |d| d["transferPoints"]["id"].clone(),
                    )
                    .await;
                }
            }
            "updateProfile" => {
                let nickname = format!("会员{}号🐼", self.rng.below(100_000));
                let mut input = json!({ "nickname": nickname });
                if self.rng.chance(0.3) {
                    let today = business_date(self.shared.now());
                    let birthday = NaiveDate::from_ymd_opt(
                        self.rng.range(1970, 2005) as i32,
                        today.month(),
                        self.rng.range(1, 28) as u32,
                    );
                    input["birthday"] = json!(birthday.map(|b| b.to_string()));
                }
                if self.rng.chance(0.3) {
                    input["avatarUrl"] = if self.rng.chance(0.5) {
                        json!(format!(
                            "https://img.example.com/{}.png",
                            self.rng.below(1000)
                        ))
                    } else {
                        Value::Null
                    };
                }
                self.call(op, PROFILE, json!({ "in": input })).await;
            }
            "refreshSession" => {
                if let Some(token) = self.refresh.clone()
                    && !self.refresh_session(&token).await
                {
                    self.login().await;
                }
            }
            "logout" => {
                let answer = self.call(op, LOGOUT, json!({})).await;
                if answer.ok() {
                    // The ended session's token must not work any more.
                    let after = self.send("me (after logout)", ME, json!({})).await;
                    if after.ok() {
                        self.fail("an access token worked after its session's logout");
                    }
                    self.access = None;
                }
            }
            "login invited" => {
                // A friend joins with this member's code: the invite reward, once.
                self.invited += 1;
                let code = format!("soak_new_{}_{}_{}", self.seed, self.idx, self.invited);
                let invite = if self.rng.chance(0.8) {
                    self.invite_code.clone()
                } else {
                    self.invite_code.to_lowercase()
                };
                let answer = self
                    .shared
                    .send(false, None, LOGIN, json!({ "c": code, "i": invite }))
                    .await;
                self.note(
                    op,
                    &json!({ "c": code, "i": invite }),
                    self.shared.now(),
                    &answer,
                );
            }
            "out-of-range input" => self.out_of_range().await,
            other => self.fail(&format!("the soak has no operation {other}")),
        }
    }

    /// A keyed (idempotent) mutation: sometimes sent twice at once; after a success, sometimes
    /// retried with the same key and input (must answer the same), and sometimes with the same
    /// key and `other` input (must not succeed).
    async fn keyed(
        &mut self,
        op: &str,
        query: &str,
        vars: Value,
        other: Option<Value>,
        identity: fn(&Value) -> Value,
    ) -> Answer {
        let first = if self.rng.chance(0.05) {
            let now = self.shared.now();
            let token = self.access.clone();
            let device = Some(self.device.clone());
            let (a, b) = futures_util::join!(
                self.shared.send_at(
                    false,
                    token.as_deref(),
                    query,
                    vars.clone(),
                    now,
                    device.clone()
                ),
                self.shared
                    .send_at(false, token.as_deref(), query, vars.clone(), now, device)
            );
            let twice = format!("{op} (twice at once)");
            self.note(&twice, &vars, now, &a);
            self.note(&twice, &vars, now, &b);
            if a.ok() && b.ok() && identity(a.data()) != identity(b.data()) {
                self.fail(&format!(
                    "{op}: one key sent twice at once did two things: {} and {}",
                    identity(a.data()),
                    identity(b.data())
                ));
            }
            if a.ok() { a } else { b }
        } else {
            self.call(op, query, vars.clone()).await
        };
        if !first.ok() {
            return first;
        }
        if self.rng.chance(0.08) {
            let again = self.call(&format!("{op} (retry)"), query, vars).await;
            if again.ok() && identity(again.data()) != identity(first.data()) {
                self.fail(&format!(
                    "{op}: a retry with the same key and input did something else: {} then {}",
                    identity(first.data()),
                    identity(again.data())
                ));
            }
        } else if let Some(other) = other
            && self.rng.chance(0.04)
        {
            let conflicting = self
                .call(&format!("{op} (same key, other input)"), query, other)
                .await;
            if conflicting.ok() {
                self.fail(&format!(
                    "{op}: the same key with other input succeeded (CONFLICT expected)"
                ));
            }
        }
        first
    }

    fn pick_item(&mut self, filter: impl Fn(&Item) -> bool) -> Option<Item> {
        let items: Vec<Item> = self
            .shared
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|i| filter(i))
            .cloned()
            .collect();
        self.rng.pick(&items)
    }

    fn pick_box(&mut self) -> Option<i64> {
        let boxes = self
            .shared
            .boxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.rng.pick(&boxes)
    }

    async fn redeem(&mut self, op: &str, item: &Item, quantity: i64, points: Option<i64>) {
        let key = self.key();
        let input = json!({ "itemId": item.id.to_string(), "quantity": quantity,
            "pointsToUse": points, "idempotencyKey": key });
        let mut other = input.clone();
        other["quantity"] = json!(quantity + 1);
        let answer = self
            .keyed(
                op,
                REDEEM,
                json!({ "in": input }),
                Some(json!({ "in": other })),
                |d| d["redeem"]["id"].clone(),
            )
            .await;
        let order = &answer.data()["redeem"];
        if let Some(id) = id_of(&order["id"]) {
            self.orders.push(id);
            let list = match order["status"].as_str() {
                Some("PENDING_PAYMENT") => Some(&self.shared.pending_orders),
                Some("PAID") => Some(&self.shared.paid_orders),
                _ => None,
            };
            if let Some(list) = list {
                list.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            }
        }
    }

    async fn my_orders(&mut self) {
        let answer = self.call("myOrders", ORDERS, json!({ "a": null })).await;
        if let Some(nodes) = answer.data()["myOrders"]["nodes"].as_array() {
            self.orders = nodes
                .iter()
                .filter(|o| o["status"] != "CANCELLED")
                .filter_map(|o| id_of(&o["id"]))
                .collect();
        }
    }

    async fn browse_mall(&mut self) {
        let category = self
            .rng
            .pick(&[
                None,
                Some("milk_powder"),
                Some("gear"),
                Some("coupon"),
                Some("soak"),
            ])
            .flatten();
        self.browse(category).await;
    }

    async fn browse(&mut self, category: Option<&str>) {
        let mut after: Option<String> = None;
        for _ in 0..3 {
            let answer = self
                .call(
                    "mallItems",
                    MALL,
                    json!({ "c": category, "a": after, "f": 50 }),
                )
                .await;
            let page = &answer.data()["mallItems"];
            if let Some(nodes) = page["nodes"].as_array() {
                let mut items = self.shared.items.lock().unwrap_or_else(|e| e.into_inner());
                for node in nodes {
                    if let Some(seen) = Item::from_json(node)
                        && !items.iter().any(|i| i.id == seen.id)
                    {
                        items.push(seen);
                    }
                }
            }
            match page["pageInfo"]["endCursor"].as_str() {
                Some(c) if page["pageInfo"]["hasNextPage"] == true => after = Some(c.to_string()),
                _ => break,
            }
        }
    }

    async fn tasks_and_claim(&mut self) {
        let answer = self.call("tasks", TASKS, json!({})).await;
        let Some(tasks) = answer.data()["tasks"].as_array() else {
            return;
        };
        let claimable: Vec<String> = tasks
            .iter()
            .filter(|t| t["completed"] == true && t["claimed"] == false)
            .filter_map(|t| t["task"]["id"].as_str().map(str::to_string))
            .collect();
        let any: Vec<String> = tasks
            .iter()
            .filter_map(|t| t["task"]["id"].as_str().map(str::to_string))
            .collect();
        // Mostly what is due; now and then one that is not (NOT_AVAILABLE, ALREADY_DONE).
        let pick = if claimable.is_empty() || self.rng.chance(0.1) {
            self.rng.pick(&any)
        } else {
            self.rng.pick(&claimable)
        };
        if let Some(task) = pick {
            let vars = json!({ "t": task });
            let answer = if self.rng.chance(0.05) {
                // Two claims at once: one pays.
                let now = self.shared.now();
                let token = self.access.clone();
                let device = Some(self.device.clone());
                let (a, b) = futures_util::join!(
                    self.shared.send_at(
                        false,
                        token.as_deref(),
                        CLAIM,
                        vars.clone(),
                        now,
                        device.clone()
                    ),
                    self.shared
                        .send_at(false, token.as_deref(), CLAIM, vars.clone(), now, device)
                );
                self.note("claimTask (twice at once)", &vars, now, &a);
                self.note("claimTask (twice at once)", &vars, now, &b);
                if a.ok() && b.ok() {
                    self.fail("one task claimed twice at once paid twice");
                }
                if a.ok() { a } else { b }
            } else {
                self.call("claimTask", CLAIM, vars).await
            };
            self.take_unlocked(&answer.data()["claimTask"]["unlocked"]);
        }
    }

    async fn contribute(&mut self) {
        let open = self
            .shared
            .crowdfunds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(id) = self.rng.pick(&open) else {
            return;
        };
        // Often exactly what is left (so pools get funded), otherwise a random share.
        let mut points = self.rng.range(50, 2_000);
        if self.rng.chance(0.4) {
            let pool = self
                .call("crowdfund", CROWDFUND, json!({ "c": id.to_string() }))
                .await;
            let cf = &pool.data()["crowdfund"];
            if let (Some(target), Some(raised)) =
                (cf["targetPoints"].as_i64(), cf["raisedPoints"].as_i64())
                && target > raised
            {
                points = target - raised;
            }
        }
        let key = self.key();
        let answer = self
            .keyed(
                "contributeCrowdfund",
                CONTRIBUTE,
                json!({ "c": id.to_string(), "p": points, "k": key }),
                Some(json!({ "c": id.to_string(), "p": points + 1, "k": key })),
                |d| d["contributeCrowdfund"]["id"].clone(),
            )
            .await;
        let status = answer.data()["contributeCrowdfund"]["status"].as_str();
        if status.is_some_and(|s| s != "OPEN") || answer.code() == Some("NOT_AVAILABLE") {
            self.shared
                .crowdfunds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|c| *c != id);
        }
    }

    async fn wall(&mut self) {
        let answer = self.call("achievementWall", WALL, json!({})).await;
        let wall = &answer.data()["achievementWall"];
        if let Some(all) = wall["achievements"].as_array() {
            self.unlocked = all
                .iter()
                .filter(|a| a["unlocked"] == true)
                .filter_map(|a| a["achievement"]["code"].as_str().map(str::to_string))
                .collect();
        }
        if let Some(titles) = wall["titles"].as_array() {
            self.titles = titles
                .iter()
                .filter_map(|t| t["code"].as_str().map(str::to_string))
                .collect();
        }
    }

    fn take_unlocked(&mut self, unlocked: &Value) {
        for a in unlocked.as_array().into_iter().flatten() {
            if let Some(code) = a["code"].as_str() {
                self.unlocked.push(code.to_string());
            }
            if let Some(title) = a["title"]["code"].as_str() {
                self.titles.push(title.to_string());
            }
        }
    }

    /// Inputs out of range, unknown ids, wrong formats: refusals with a code, never INTERNAL.
    async fn out_of_range(&mut self) {
        let key = self.key();
        let item = self.pick_item(|_| true).map_or(1, |i| i.id).to_string();
        let b = self.pick_box().unwrap_or(1).to_string();
        let big = i64::from(i32::MAX);
        let cases: Vec<(&str, &str, Value)> = vec![
            (
                "redeem quantity 0",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 0, "idempotencyKey": key } }),
            ),
            (
                "redeem quantity 101",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 101, "idempotencyKey": key } }),
            ),
            (
                "redeem huge pointsToUse",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 1, "pointsToUse": big, "idempotencyKey": key } }),
            ),
            (
                "redeem negative pointsToUse",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 1, "pointsToUse": -5, "idempotencyKey": key } }),
            ),
            (
                "redeem unknown item",
                REDEEM,
                json!({ "in": { "itemId": "987654321", "quantity": 1, "idempotencyKey": key } }),
            ),
            (
                "redeem id not a number",
                REDEEM,
                json!({ "in": { "itemId": "abc", "quantity": 1, "idempotencyKey": key } }),
            ),
            (
                "redeem empty key",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 1, "idempotencyKey": "" } }),
            ),
            (
                "redeem key of 300 chars",
                REDEEM,
                json!({ "in": { "itemId": item, "quantity": 1, "idempotencyKey": "k".repeat(300) } }),
            ),
            (
                "redeemQuote quantity -1",
                QUOTE,
                json!({ "i": item, "q": -1, "p": null }),
            ),
            (
                "transfer 0",
                TRANSFER,
                json!({ "to": self.member_no, "n": 0, "k": key }),
            ),
            (
                "transfer to self",
                TRANSFER,
                json!({ "to": self.member_no, "n": 5, "k": key }),
            ),
            (
                "transfer over max",
                TRANSFER,
                json!({ "to": "B0000001", "n": 1_001, "k": key }),
            ),
            (
                "transfer huge",
                TRANSFER,
                json!({ "to": "B0000001", "n": big, "k": key }),
            ),
            (
                "transfer to nobody",
                TRANSFER,
                json!({ "to": "NOBODY99", "n": 5, "k": key }),
            ),
            ("draw count 0", DRAW, json!({ "b": b, "c": 0, "k": key })),
            ("draw count 11", DRAW, json!({ "b": b, "c": 11, "k": key })),
            (
                "draw unknown box",
                DRAW,
                json!({ "b": "987654321", "c": 1, "k": key }),
            ),
            ("donate 0", DONATE, json!({ "p": "1", "n": 0, "k": key })),
            (
                "donate huge",
                DONATE,
                json!({ "p": "1", "n": big, "k": key }),
            ),
            (
                "donate unknown project",
                DONATE,
                json!({ "p": "987654321", "n": 5, "k": key }),
            ),
            (
                "contribute unknown crowdfund",
                CONTRIBUTE,
                json!({ "c": "987654321", "p": 5, "k": key }),
            ),
            (
                "contribute negative",
                CONTRIBUTE,
                json!({ "c": "1", "p": -5, "k": key }),
            ),
            (
                "startCrowdfund non-crowdfundable",
                START_CF,
                json!({ "i": item }),
            ),
            (
                "makeUp in the future",
                MAKE_UP,
                json!({ "d": "2099-01-01", "k": key }),
            ),
            (
                "makeUp today",
                MAKE_UP,
                json!({ "d": business_date(self.shared.now()).to_string(), "k": key }),
            ),
            (
                "makeUp bad date",
                MAKE_UP,
                json!({ "d": "2026-02-30", "k": key }),
            ),
            (
                "reportEvent unknown kind",
                REPORT,
                json!({ "kind": "hack", "t": null, "k": key }),
            ),
            (
                "reportEvent browse without target",
                REPORT,
                json!({ "kind": "browse_item", "t": null, "k": key }),
            ),
            (
                "reportEvent long target",
                REPORT,
                json!({ "kind": "browse_item", "t": "x".repeat(500), "k": key }),
            ),
            (
                "reportEvent control character",
                REPORT,
                json!({ "kind": "share", "t": "a\u{0}b", "k": key }),
            ),
            ("claimTask unknown", CLAIM, json!({ "t": "987654321" })),
            ("cancelOrder unknown", CANCEL, json!({ "o": "987654321" })),
            ("crowdfund unknown", CROWDFUND, json!({ "c": "987654321" })),
            ("blindBox unknown", BOX, json!({ "b": "987654321" })),
            (
                "mallItems first 101",
                MALL,
                json!({ "c": null, "a": null, "f": 101 }),
            ),
            (
                "mallItems first -1",
                MALL,
                json!({ "c": null, "a": null, "f": -1 }),
            ),
            (
                "mallItems bad cursor",
                MALL,
                json!({ "c": null, "a": "not-a-cursor", "f": 5 }),
            ),
            ("pointsLedger bad cursor", LEDGER, json!({ "a": "%%%" })),
            (
                "leaderboard first 1000",
                LEADERBOARD,
                json!({ "k": "ACHIEVEMENTS", "f": 1000 }),
            ),
            (
                "leaderboard first 0",
                LEADERBOARD,
                json!({ "k": "CHECKIN_STREAK", "f": 0 }),
            ),
            (
                "checkInCalendar bad month",
                CALENDAR,
                json!({ "m": "2026-13" }),
            ),
            (
                "checkInCalendar year 0",
                CALENDAR,
                json!({ "m": "0000-01" }),
            ),
            (
                "setShowcase 7 codes",
                SHOWCASE,
                json!({ "c": ["a", "b", "c", "d", "e", "f", "g"] }),
            ),
            (
                "setShowcase locked",
                SHOWCASE,
                json!({ "c": ["checkin_total_100", "checkin_total_100"] }),
            ),
            ("equipTitle unknown", EQUIP, json!({ "t": "no_such_title" })),
            (
                "setBlindBoxClientSeed bad",
                SET_SEED,
                json!({ "s": "bad seed!" }),
            ),
            (
                "setBlindBoxClientSeed long",
                SET_SEED,
                json!({ "s": "s".repeat(65) }),
            ),
            (
                "updateProfile future birthday",
                PROFILE,
                json!({ "in": { "birthday": "2099-01-01" } }),
            ),
            (
                "updateProfile long nickname",
                PROFILE,
                json!({ "in": { "nickname": "名".repeat(200) } }),
            ),
            (
                "updateProfile empty nickname",
                PROFILE,
                json!({ "in": { "nickname": "  " } }),
            ),
            (
                "solveCaptcha unknown",
                SOLVE,
                json!({ "c": "987654321", "a": "3" }),
            ),
            ("refreshSession garbage", REFRESH, json!({ "t": "garbage" })),
        ];
        let pick = self.rng.below(cases.len() as u64) as usize;
        let (name, query, vars) = cases[pick].clone();
        let answer = self
            .call(&format!("out-of-range: {name}"), query, vars)
            .await;
        // Inputs a shop must refuse: an answer that accepts them is a finding too.
        let must_refuse = [
            "redeem quantity 0",
            "redeem quantity 101",
            "redeem negative pointsToUse",
            "redeem unknown item",
            "transfer 0",
            "transfer to self",
            "transfer over max",
            "transfer huge",
            "draw count 0",
            "draw count 11",
            "donate 0",
            "contribute negative",
            "makeUp in the future",
            "makeUp today",
            "reportEvent unknown kind",
        ];
        if answer.ok() && must_refuse.contains(&name) {
            self.fail(&format!("out-of-range input accepted: {name}"));
        }
    }
}
