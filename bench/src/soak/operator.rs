//! The operator: sets up what the seeded shop lacks (points+cash, crowdfundable and scarce items,
//! donation projects, a box with every prize kind), then does admin mutations at a low rate
//! while the members play; and the clock, which moves through business days with jumps between
//! them, running the jobs that a jump makes due.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{Value, json};

use super::world::{Answer, History, Item, Rng, Shared};

const UPSERT_ITEM: &str =
    "mutation U($in: MallItemInput!) { upsertMallItem(input: $in) { id name stock active } }";
const UPSERT_BOX: &str = "mutation U($in: BlindBoxInput!) { upsertBlindBox(input: $in) { id name \
    seedCommitment prizeTable revealedSeeds } }";
const UPSERT_TASK: &str =
    "mutation U($in: TaskInput!) { upsertTask(input: $in) { id code active } }";
const UPSERT_TIER: &str =
    "mutation U($in: TierInput!) { upsertTier(input: $in) { code rank growthThreshold } }";
const UPSERT_CAMPAIGN: &str = "mutation U($in: PriceCampaignInput!) { upsertPriceCampaign(input: $in) \
    { id multiplier startsAt endsAt } }";
const UPSERT_PROJECT: &str = "mutation U($in: DonationProjectInput!) { upsertDonationProject(input: $in) \
    { id name raisedPoints } }";
const UPSERT_ACHIEVEMENT: &str = "mutation U($in: AchievementInput!) { upsertAchievement(input: $in) \
    { code metric threshold } }";
const ADJUST: &str = "mutation A($m: ID!, $d: Int!, $r: String!, $k: String!) { adjustPoints(memberId: $m, \
    delta: $d, reason: $r, idempotencyKey: $k) { id points } }";
const BLACKLIST: &str = "mutation B($m: ID!, $r: String!) { blacklistMember(memberId: $m, reason: $r) \
    { id points blacklisted } }";
const UNBLACKLIST: &str = "mutation B($m: ID!, $r: String!) { unblacklistMember(memberId: $m, reason: $r) \
    { id points blacklisted } }";
const RUN_JOB: &str =
    "mutation J($n: JobName!) { runJob(name: $n) { name affected startedAt finishedAt } }";
const CONFIRM: &str = "mutation P($o: ID!, $t: String!) { confirmOrderPayment(orderId: $o, transactionId: $t) \
    { id status } }";
const SHIP: &str = "mutation S($o: ID!, $t: String!) { shipOrder(orderId: $o, trackingNo: $t) { id status trackingNo } }";
const PURCHASE: &str = "mutation P($in: PurchaseInput!) { recordPurchase(input: $in) { orderNo \
    pointsAwarded growthAwarded applied member { points tierCode } } }";
const REFUND: &str = "mutation R($o: String!) { refundPurchase(orderNo: $o) { orderNo pointsAwarded \
    growthAwarded applied } }";
const RISK_EVENTS: &str =
    "{ riskEvents(status: OPEN, first: 10) { nodes { id memberId rule status } } }";
const RESOLVE: &str = "mutation R($i: ID!, $a: RiskAction!, $n: String) { resolveRiskEvent(id: $i, \
    action: $a, note: $n) { id status } }";
const ROTATE: &str =
    "mutation R($b: ID!) { rotateBlindBoxSeed(boxId: $b) { id seedCommitment revealedSeeds } }";
const CHECKIN_RULES: &str =
    "{ checkInRules { basePoints streakBonuses { days points } makeUpCost makeUpsPerMonth } }";
const UPDATE_CHECKIN_RULES: &str = "mutation C($in: CheckInRulesInput!) { updateCheckInRules(input: $in) \
    { basePoints makeUpsPerMonth } }";
const EARNING_RULES: &str = "{ earningRules { pointsPerYuan categoryMultipliers { category multiplier } \
    doublePointsDays maxPointsRatio } }";
const UPDATE_EARNING_RULES: &str = "mutation E($in: EarningRulesInput!) { updateEarningRules(input: $in) \
    { pointsPerYuan maxPointsRatio } }";
const READS: [(&str, &str); 9] = [
    (
        "pointsHealth",
        "{ pointsHealth { issued spent expired outstanding liability earnSpendRatio hoarders budgetExceeded daily { date issued spent expired } } }",
    ),
    (
        "members",
        "{ members(search: \"会员1\", first: 20) { nodes { id memberNo points tierCode rfmSegment blacklisted } pageInfo { hasNextPage endCursor } } }",
    ),
    ("rfmSegments", "{ rfmSegments { segment members } }"),
    (
        "auditLog",
        "{ auditLog(first: 20) { nodes { id adminUsername action detail createdAt } pageInfo { hasNextPage } } }",
    ),
    ("earningRules", EARNING_RULES),
    ("checkInRules", CHECKIN_RULES),
    ("riskEvents", RISK_EVENTS),
    ("adminMe", "{ adminMe { username role } }"),
    (
        "members (no search)",
        "{ members(first: 50) { nodes { id memberNo points growthValue tierCode lastActiveAt createdAt } } }",
    ),
];
pub const JOBS: [&str; 8] = [
    "EXPIRE_POINTS",
    "EVALUATE_TIERS",
    "BIRTHDAY_REWARDS",
    "REFRESH_RFM",
    "CANCEL_UNPAID_ORDERS",
    "EXPIRE_CROWDFUNDS",
    "BACKFILL_ACHIEVEMENTS",
    "ROTATE_BLIND_BOX_SEEDS",
];
/// The jobs a jump of the clock makes due.
const DUE_AFTER_A_JUMP: [&str; 4] = [
    "CANCEL_UNPAID_ORDERS",
    "EXPIRE_CROWDFUNDS",
    "EXPIRE_POINTS",
    "EVALUATE_TIERS",
];

/// A box the operator owns: its input, kept so an edit keeps the price and the daily limit
/// (the invariants price draws and count daily limits by the box as it is at the end).
struct OwnBox {
    input: Value,
}

pub struct Operator {
    shared: Arc<Shared>,
    rng: Rng,
    history: History,
    keys: u64,
    seed: u64,
    blacklisted: Vec<i64>,
    items: Vec<Value>,
    boxes: Vec<OwnBox>,
    tasks: Vec<Value>,
    tiers: Vec<Value>,
    purchases: Vec<String>,
    job: Option<tokio::task::JoinHandle<()>>,
}

fn id_of(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// The prize ids and their stock at commitment, from a box's `prizeTable`
/// (`id:weight:stock:RARITY,...`, stock `-` for unlimited).
pub fn prize_stocks(table: &str) -> Vec<(i64, i64)> {
    table
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let id = parts.next()?.parse().ok()?;
            let stock = parts.nth(1)?.parse().ok()?;
            Some((id, stock))
        })
        .collect()
}

impl Operator {
    pub fn new(shared: Arc<Shared>, seed: u64, tiers: Vec<Value>) -> Operator {
        Operator {
            shared,
            rng: Rng::derive(seed, 0),
            history: History::default(),
            keys: 0,
            seed,
            blacklisted: Vec::new(),
            items: Vec::new(),
            boxes: Vec::new(),
            tasks: Vec::new(),
            tiers,
            purchases: Vec::new(),
            job: None,
        }
    }

    async fn call(&mut self, op: &str, query: &str, vars: Value) -> Answer {
        let now = self.shared.now();
        // A job works through every member: give it the time it needs (the soak waits for it
        // before the checks, which must not race a running job).
        let limit = (query == RUN_JOB).then_some(StdDuration::from_secs(900));
        let answer = self
            .shared
            .send_within(
                true,
                Some(&self.shared.admin_token.clone()),
                query,
                vars.clone(),
                now,
                None,
                limit,
            )
            .await;
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
            .judge(None, &format!("admin {op}"), &answer, &self.history.lines());
        answer
    }

    fn key(&mut self) -> String {
        self.keys += 1;
        format!("soak-op-{}-{}", self.seed, self.keys)
    }

    fn fail(&self, what: String) {
        self.shared.fail(None, what, &self.history.lines());
    }

    /// Items, projects, a hidden task, a titled achievement and a box with every prize kind.
    /// Returns false if a setup step failed (the run would prove little).
    pub async fn set_up(&mut self) -> bool {
        let now = self.shared.now();
        let item = |name: &str,
                    kind: &str,
                    points: i64,
                    cash: Option<&str>,
                    stock: i64,
                    limit: Option<i64>| {
            json!({
                "name": name, "description": "soak", "category": "soak", "kind": kind,
                "pointsPrice": points, "cashPrice": cash, "stock": stock, "perMemberLimit": limit,
                "minTierRank": 0, "crowdfundable": false, "active": true,
            })
        };
        let mut inputs = vec![
            item(
                "现金+积分 80元",
                "PHYSICAL",
                0,
                Some("80.00"),
                5_000,
                Some(20),
            ),
            item(
                "现金+积分 150元",
                "PHYSICAL",
                200,
                Some("150.00"),
                5_000,
                Some(20),
            ),
            item(
                "现金+积分 450元",
                "PHYSICAL",
                0,
                Some("450.00"),
                5_000,
                Some(20),
            ),
            item(
                "现金+积分 会员权益",
                "PRIVILEGE",
                100,
                Some("120.00"),
                5_000,
                Some(20),
            ),
            item("限量 15件", "PHYSICAL", 300, None, 15, Some(2)),
            item("限量 5件", "PHYSICAL", 500, None, 5, Some(1)),
            item("会员权益", "PRIVILEGE", 400, None, 10_000, Some(3)),
        ];
        let mut coupon = item("满100减20券", "COUPON", 150, None, 10_000, Some(10));
        coupon["couponValue"] = json!("20.00");
        coupon["couponThreshold"] = json!("100.00");
        coupon["couponValidDays"] = json!(7);
        inputs.push(coupon);
        let mut gold = item("金卡专享", "PHYSICAL", 600, None, 10_000, Some(5));
        gold["minTierRank"] = json!(2);
        inputs.push(gold);
        let mut window = item("限时商品", "PHYSICAL", 250, None, 10_000, Some(5));
        window["startsAt"] = json!((now + Duration::days(3)).to_rfc3339());
        window["endsAt"] = json!((now + Duration::days(12)).to_rfc3339());
        inputs.push(window);
        for (name, price, stock) in [
            ("众筹 婴儿车", 6_000, 40),
            ("众筹 安全座椅", 3_000, 60),
            ("众筹 小件", 800, 8),
        ] {
            let mut cf = item(name, "PHYSICAL", price, None, stock, Some(2));
            cf["crowdfundable"] = json!(true);
            inputs.push(cf);
        }
        let mut ok = true;
        for input in inputs {
            ok &= self.create_item(input, false).await.is_some();
        }
        for (name, target) in [("希望小学", 500_000), ("流浪动物", 50_000)] {
            let answer = self
                .call(
                    "upsertDonationProject",
                    UPSERT_PROJECT,
                    json!({ "in": { "name": name, "description": "soak", "targetPoints": target } }),
                )
                .await;
            match id_of(&answer.data()["upsertDonationProject"]["id"]) {
                Some(id) => self
                    .shared
                    .projects
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(id),
                None => ok = false,
            }
        }
        let hidden = json!({ "code": "soak_hidden", "name": "隐藏任务", "description": "soak",
            "kind": "HIDDEN", "event": "checkin", "target": 1, "rewardPoints": 15 });
        ok &= self
            .call("upsertTask", UPSERT_TASK, json!({ "in": hidden }))
            .await
            .ok();
        let titled = json!({ "code": "soak_titled", "name": "幸运星", "description": "soak",
            "category": "soak", "metric": "checkin.total", "threshold": 500, "rewardPoints": 10,
            "titleCode": "soak_lucky", "titleName": "幸运星" });
        ok &= self
            .call(
                "upsertAchievement",
                UPSERT_ACHIEVEMENT,
                json!({ "in": titled }),
            )
            .await
            .ok();
        let prize_item = self
            .shared
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .map(|i| i.id.to_string())
            .unwrap_or_default();
        let prizes = json!([
            { "name": "5积分", "rarity": "COMMON", "kind": "POINTS", "weight": 500, "stock": null, "payload": "5" },
            { "name": "2元券", "rarity": "COMMON", "kind": "COUPON", "weight": 300, "stock": null, "payload": "2.00" },
            { "name": "实物奖品", "rarity": "RARE", "kind": "ITEM", "weight": 80, "stock": 30, "payload": prize_item },
            { "name": "隐藏任务", "rarity": "RARE", "kind": "HIDDEN_TASK", "weight": 80, "stock": 200, "payload": "soak_hidden" },
            { "name": "称号", "rarity": "EPIC", "kind": "TITLE", "weight": 30, "stock": 50, "payload": "soak_lucky" },
            { "name": "500积分", "rarity": "LEGENDARY", "kind": "POINTS", "weight": 10, "stock": 5, "payload": "500" }
        ]);
        let input = json!({ "name": "全奖池盲盒", "description": "soak", "pointsPrice": 30,
            "dailyLimit": 15, "pityThreshold": 5, "prizes": prizes, "active": true });
        ok &= self.create_box(input).await;
        ok
    }

    /// Creates an item; `editable` ones are edited later (their stock is then set again, so
    /// the checks hold them only to "never below 0"); the set-up items keep the exact check.
    async fn create_item(&mut self, input: Value, editable: bool) -> Option<i64> {
        let answer = self
            .call(
                "upsertMallItem",
                UPSERT_ITEM,
                json!({ "in": input.clone() }),
            )
            .await;
        let saved = &answer.data()["upsertMallItem"];
        let id = id_of(&saved["id"])?;
        let stock = saved["stock"].as_i64().unwrap_or(0);
        self.shared
            .seeded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .item_stock
            .insert(id, stock);
        let mut item_input = input.clone();
        item_input["id"] = json!(id.to_string());
        if input["active"] != false {
            self.shared
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Item {
                    id,
                    cash_price: input["cashPrice"].as_str().and_then(|c| c.parse().ok()),
                    crowdfundable: input["crowdfundable"] == true,
                });
        }
        if editable {
            self.items.push(item_input);
        }
        Some(id)
    }

    async fn create_box(&mut self, input: Value) -> bool {
        let answer = self
            .call("upsertBlindBox", UPSERT_BOX, json!({ "in": input.clone() }))
            .await;
        let saved = &answer.data()["upsertBlindBox"];
        let Some(id) = id_of(&saved["id"]) else {
            return false;
        };
        self.note_prizes(saved);
        self.shared
            .boxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        let mut input = input;
        input["id"] = json!(id.to_string());
        self.boxes.push(OwnBox { input });
        true
    }

    /// New prizes start at the stock their box's commitment shows.
    fn note_prizes(&self, saved_box: &Value) {
        if let Some(table) = saved_box["prizeTable"].as_str() {
            let mut seeded = self.shared.seeded.lock().unwrap_or_else(|e| e.into_inner());
            for (id, stock) in prize_stocks(table) {
                seeded.prize_stock.entry(id).or_insert(stock);
            }
        }
    }

    /// Runs admin operations until the soak stops.
    pub async fn run(mut self) {
        const OPS: [(&str, u32); 22] = [
            ("adjustPoints", 4),
            ("blacklistMember", 1),
            ("unblacklistMember", 2),
            ("runJob", 4),
            ("upsertMallItem new", 1),
            ("upsertMallItem edit", 2),
            ("upsertBlindBox new", 1),
            ("upsertBlindBox edit", 1),
            ("upsertTask", 1),
            ("upsertTier", 1),
            ("upsertPriceCampaign", 1),
            ("upsertDonationProject", 1),
            ("confirmOrderPayment", 4),
            ("shipOrder", 2),
            ("recordPurchase", 3),
            ("refundPurchase", 1),
            ("resolveRiskEvent", 1),
            ("rotateBlindBoxSeed", 1),
            ("upsertAchievement", 1),
            ("updateCheckInRules", 1),
            ("updateEarningRules", 1),
            ("read", 4),
        ];
        let weights: Vec<u32> = OPS.iter().map(|(_, w)| *w).collect();
        while !self.shared.stopped() {
            let op = OPS[self.rng.weighted(&weights)].0;
            self.op(op).await;
            tokio::time::sleep(StdDuration::from_millis(self.rng.range(20, 120) as u64)).await;
        }
        // Whoever is still blacklisted stays so; that is a state the checks must also hold in.
        if let Some(job) = self.job.take() {
            let _ = job.await;
        }
    }

    fn member(&mut self) -> (i64, String) {
        let i = self.rng.below(self.shared.member_ids.len() as u64) as usize;
        let no = self
            .shared
            .member_nos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .cloned()
            .unwrap_or_default();
        (self.shared.member_ids[i], no)
    }

    async fn op(&mut self, op: &str) {
        let now = self.shared.now();
        match op {
            "adjustPoints" => {
                let (member, _) = self.member();
                let delta = if self.rng.chance(0.3) {
                    -self.rng.range(1, 500)
                } else {
                    self.rng.range(1, 5_000)
                };
                let key = self.key();
                let vars = json!({ "m": member.to_string(), "d": delta, "r": "soak adjustment", "k": key });
                let first = self.call(op, ADJUST, vars.clone()).await;
                if first.ok() && self.rng.chance(0.3) {
                    // The replay answers the member as they are now, so only its success counts.
                    self.call("adjustPoints (retry)", ADJUST, vars).await;
                    let conflicting = self
                        .call(
                            "adjustPoints (same key, other input)",
                            ADJUST,
                            json!({ "m": member.to_string(), "d": delta + 1, "r": "soak adjustment", "k": key }),
                        )
                        .await;
                    if conflicting.ok() {
                        self.fail("adjustPoints: the same key with other input succeeded".into());
                    }
                }
            }
            "blacklistMember" => {
                // A few members at most, so most of the run stays playable.
                if self.blacklisted.len() < 3 {
                    let (member, _) = self.member();
                    if self
                        .call(
                            op,
                            BLACKLIST,
                            json!({ "m": member.to_string(), "r": "soak" }),
                        )
                        .await
                        .ok()
                    {
                        self.blacklisted.push(member);
                    }
                }
            }
            "unblacklistMember" => {
                if let Some(member) = self.rng.pick(&self.blacklisted)
                    && self
                        .call(
                            op,
                            UNBLACKLIST,
                            json!({ "m": member.to_string(), "r": "soak" }),
                        )
                        .await
                        .ok()
                {
                    self.blacklisted.retain(|m| *m != member);
                }
            }
            "runJob" => {
                // In the background: a job over every member takes a while, and the operator
                // goes on meanwhile (a second run of a job that is running is CONFLICT).
                if self.job.as_ref().is_none_or(|j| j.is_finished()) {
                    let job = self.rng.pick(&JOBS).unwrap_or("REFRESH_RFM");
                    let mut runner =
                        Operator::new(self.shared.clone(), self.rng.next(), Vec::new());
                    self.job = Some(tokio::spawn(async move {
                        runner
                            .call(&format!("runJob {job}"), RUN_JOB, json!({ "n": job }))
                            .await;
                    }));
                }
            }
            "upsertMallItem new" => {
                let n = self.rng.below(1_000_000);
                let input = json!({ "name": format!("新品{n}"), "description": "soak", "category": "soak",
                    "kind": "PHYSICAL", "pointsPrice": self.rng.range(100, 2_000), "stock": self.rng.range(5, 500),
                    "perMemberLimit": self.rng.range(1, 5), "minTierRank": 0,
                    "crowdfundable": self.rng.chance(0.3), "active": true });
                self.create_item(input, true).await;
            }
            "upsertMallItem edit" => {
                if let Some(mut input) = self.rng.pick(&self.items) {
                    let id = id_of(&input["id"]).unwrap_or(0);
                    // Price, stock, or switching it off and on; the per-member limit stays (the
                    // checks read the limit as it is at the end).
                    match self.rng.below(3) {
                        0 => input["pointsPrice"] = json!(self.rng.range(0, 3_000)),
                        1 => input["stock"] = json!(self.rng.range(0, 300)),
                        _ => input["active"] = json!(!input["active"].as_bool().unwrap_or(true)),
                    }
                    if input["pointsPrice"] == 0 && input["cashPrice"].is_null() {
                        input["pointsPrice"] = json!(100);
                    }
                    // Every save sets the stock too: it is the stock as this operator last saved it.
                    self.shared
                        .seeded
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .restocked
                        .insert(id);
                    if self
                        .call(
                            "upsertMallItem",
                            UPSERT_ITEM,
                            json!({ "in": input.clone() }),
                        )
                        .await
                        .ok()
                        && let Some(own) = self.items.iter_mut().find(|i| i["id"] == input["id"])
                    {
                        *own = input;
                    }
                }
            }
            "upsertBlindBox new" => {
                let input = json!({ "name": format!("新盲盒{}", self.rng.below(1_000)), "description": "soak",
                    "pointsPrice": self.rng.range(10, 80), "dailyLimit": self.rng.range(3, 30),
                    "pityThreshold": self.rng.range(3, 12), "active": true, "prizes": [
                        { "name": "3积分", "rarity": "COMMON", "kind": "POINTS", "weight": 700, "stock": null, "payload": "3" },
                        { "name": "1元券", "rarity": "RARE", "kind": "COUPON", "weight": 250, "stock": self.rng.range(1, 50), "payload": "1.00" },
                        { "name": "100积分", "rarity": "EPIC", "kind": "POINTS", "weight": 50, "stock": self.rng.range(1, 10), "payload": "100" }
                    ] });
                self.create_box(input).await;
            }
            "upsertBlindBox edit" => {
                if !self.boxes.is_empty() {
                    let i = self.rng.below(self.boxes.len() as u64) as usize;
                    let mut input = self.boxes[i].input.clone();
                    // New weights and stock (a new commitment); price and daily limit stay.
                    if let Some(prizes) = input["prizes"].as_array_mut() {
                        for p in prizes.iter_mut() {
                            p["weight"] = json!(self.rng.range(1, 800));
                            if !p["stock"].is_null() {
                                p["stock"] = json!(self.rng.range(0, 60));
                            }
                        }
                    }
                    let answer = self
                        .call("upsertBlindBox", UPSERT_BOX, json!({ "in": input.clone() }))
                        .await;
                    if answer.ok() {
                        self.note_prizes(&answer.data()["upsertBlindBox"]);
                        self.boxes[i].input = input;
                    }
                }
            }
            "upsertTask" => {
                if self.tasks.is_empty() || self.rng.chance(0.4) {
                    let n = self.tasks.len();
                    let (kind, event) = self
                        .rng
                        .pick(&[
                            ("DAILY", "share"),
                            ("DAILY", "browse_item"),
                            ("WEEKLY", "draw"),
                            ("ONCE", "redeem"),
                            ("CHALLENGE", "donate"),
                        ])
                        .unwrap_or(("DAILY", "share"));
                    let task = json!({ "code": format!("soak_task_{}_{n}", self.seed), "name": format!("运营任务{n}"),
                        "description": "soak", "kind": kind, "event": event, "target": self.rng.range(1, 5),
                        "rewardPoints": self.rng.range(1, 50), "active": true });
                    let answer = self
                        .call(op, UPSERT_TASK, json!({ "in": task.clone() }))
                        .await;
                    if let Some(id) = answer.data()["upsertTask"]["id"].as_str() {
                        let mut task = task;
                        task["id"] = json!(id);
                        self.tasks.push(task);
                    }
                } else if let Some(mut task) = self.rng.pick(&self.tasks) {
                    task["active"] = json!(!task["active"].as_bool().unwrap_or(true));
                    if self
                        .call(op, UPSERT_TASK, json!({ "in": task.clone() }))
                        .await
                        .ok()
                        && let Some(own) = self.tasks.iter_mut().find(|t| t["id"] == task["id"])
                    {
                        *own = task;
                    }
                }
            }
            "upsertTier" => {
                if let Some(tier) = self.rng.pick(&self.tiers) {
                    let mut input = tier.clone();
                    let mut benefits: Vec<Value> =
                        input["benefits"].as_array().cloned().unwrap_or_default();
                    if benefits.len() > 3 {
                        benefits.pop();
                    } else {
                        benefits.push(json!(format!("soak benefit {}", self.rng.below(100))));
                    }
                    input["benefits"] = json!(benefits);
                    self.call(op, UPSERT_TIER, json!({ "in": input })).await;
                }
            }
            "upsertPriceCampaign" => {
                let start = now + Duration::hours(self.rng.range(-12, 48));
                let end = start + Duration::hours(self.rng.range(1, 96));
                let multiplier = self
                    .rng
                    .pick(&["0.7", "0.8", "0.9", "1.2", "0.5"])
                    .unwrap_or("0.8");
                self.call(
                    op,
                    UPSERT_CAMPAIGN,
                    json!({ "in": { "name": "积分消费周", "multiplier": multiplier,
                    "startsAt": start.to_rfc3339(), "endsAt": end.to_rfc3339() } }),
                )
                .await;
            }
            "upsertDonationProject" => {
                let projects = self
                    .shared
                    .projects
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(id) = self.rng.pick(&projects).filter(|_| self.rng.chance(0.7)) {
                    let vars = json!({ "in": { "id": id.to_string(), "name": "希望小学",
                        "description": format!("soak {}", self.rng.below(100)), "targetPoints": self.rng.range(10_000, 900_000) } });
                    self.call(op, UPSERT_PROJECT, vars).await;
                } else {
                    let vars = json!({ "in": { "name": format!("公益{}", self.rng.below(1000)),
                        "description": "soak", "targetPoints": self.rng.range(1_000, 100_000) } });
                    let answer = self.call(op, UPSERT_PROJECT, vars).await;
                    if let Some(id) = id_of(&answer.data()["upsertDonationProject"]["id"]) {
                        self.shared
                            .projects
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(id);
                    }
                }
            }
            "confirmOrderPayment" => {
                let order = {
                    let mut pending = self
                        .shared
                        .pending_orders
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if pending.is_empty() {
                        None
                    } else {
                        let i = self.rng.below(pending.len() as u64) as usize;
                        Some(pending.swap_remove(i))
                    }
                };
                if let Some(order) = order {
                    let txid = format!("wx-{}-{order}", self.seed);
                    let answer = self
                        .call(op, CONFIRM, json!({ "o": order.to_string(), "t": txid }))
                        .await;
                    if answer.ok() {
                        self.shared
                            .paid_orders
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(order);
                        if self.rng.chance(0.2) {
                            // The payment system retries: idempotent on the transaction id.
                            let again = self
                                .call(
                                    "confirmOrderPayment (retry)",
                                    CONFIRM,
                                    json!({ "o": order.to_string(), "t": txid }),
                                )
                                .await;
                            if !again.ok() {
                                self.fail(format!(
                                    "confirmOrderPayment: the same transaction again answered {}",
                                    again.outcome()
                                ));
                            }
                        }
                    }
                }
            }
            "shipOrder" => {
                let order = {
                    let mut paid = self
                        .shared
                        .paid_orders
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if paid.is_empty() {
                        None
                    } else {
                        let i = self.rng.below(paid.len() as u64) as usize;
                        Some(paid.swap_remove(i))
                    }
                };
                if let Some(order) = order {
                    let vars = json!({ "o": order.to_string(), "t": format!("SF{}", self.rng.below(1_000_000_000)) });
                    self.call(op, SHIP, vars).await;
                }
            }
            "recordPurchase" => {
                let (_, no) = self.member();
                let order_no = format!("SOAK-{}", self.key());
                let fen = self.rng.range(100, 200_000);
                let amount = format!("{}.{:02}", fen / 100, fen % 100);
                let paid_at = (now - Duration::minutes(self.rng.range(0, 600))).to_rfc3339();
                let input = json!({ "orderNo": order_no, "memberNo": no, "amount": amount, "paidAt": paid_at });
                let answer = self
                    .call(op, PURCHASE, json!({ "in": input.clone() }))
                    .await;
                if answer.ok() {
                    self.purchases.push(order_no.clone());
                    if self.rng.chance(0.2) {
                        let again = self
                            .call("recordPurchase (retry)", PURCHASE, json!({ "in": input }))
                            .await;
                        if again.ok() && again.data()["recordPurchase"]["applied"] != false {
                            self.fail("recordPurchase: the same orderNo applied twice".into());
                        }
                    }
                }
            }
            "refundPurchase" => {
                if let Some(order_no) = self.rng.pick(&self.purchases) {
                    self.call(op, REFUND, json!({ "o": order_no })).await;
                }
            }
            "resolveRiskEvent" => {
                let open = self.call("riskEvents", RISK_EVENTS, json!({})).await;
                let ids: Vec<String> = open.data()["riskEvents"]["nodes"]
                    .as_array()
                    .map(|n| {
                        n.iter()
                            .filter_map(|e| e["id"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(id) = self.rng.pick(&ids) {
                    self.call(op, RESOLVE, json!({ "i": id, "a": "DISMISS", "n": "soak" }))
                        .await;
                }
            }
            "rotateBlindBoxSeed" => {
                let boxes = self
                    .shared
                    .boxes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(b) = self.rng.pick(&boxes) {
                    self.call(op, ROTATE, json!({ "b": b.to_string() })).await;
                }
            }
            "upsertAchievement" => {
                let n = self.rng.below(50);
                let metric = self
                    .rng
                    .pick(&[
                        "checkin.total",
                        "blindbox.draws",
                        "mall.redemptions",
                        "points.earned",
                        "donation.points",
                        "tasks.claimed",
                    ])
                    .unwrap_or("checkin.total");
                let vars = json!({ "in": { "code": format!("soak_ach_{n}"), "name": format!("成就{n}"),
                    "description": "soak", "category": "soak", "metric": metric, "threshold": self.rng.range(1, 40),
                    "rewardPoints": self.rng.range(0, 30) } });
                self.call(op, UPSERT_ACHIEVEMENT, vars).await;
            }
            "updateCheckInRules" => {
                // Saved as they are: the checks hold make-ups to the rules' monthly count.
                let rules = self.call("checkInRules", CHECKIN_RULES, json!({})).await;
                let rules = rules.data()["checkInRules"].clone();
                if rules.is_object() {
                    self.call(op, UPDATE_CHECKIN_RULES, json!({ "in": rules }))
                        .await;
                }
            }
            "updateEarningRules" => {
                let days: Vec<String> = (0..self.rng.range(0, 3))
                    .map(|d| (now + Duration::days(d * 2)).date_naive().to_string())
                    .collect();
                self.call(op, UPDATE_EARNING_RULES, json!({ "in": { "pointsPerYuan": "1",
                    "categoryMultipliers": [ { "category": "milk_powder", "multiplier": "3" }, { "category": "supplies", "multiplier": "1" } ],
                    "doublePointsDays": days, "maxPointsRatio": "0.3" } })).await;
            }
            "read" => {
                let (name, query) = self.rng.pick(&READS).unwrap_or(READS[0]);
                self.call(name, query, json!({})).await;
                if self.rng.chance(0.3) {
                    let (member, _) = self.member();
                    self.call(
                        "member",
                        "query M($i: ID!) { member(id: $i) { id points blacklisted tierCode } }",
                        json!({ "i": member.to_string() }),
                    )
                    .await;
                    let boxes = self
                        .shared
                        .boxes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if let Some(b) = self.rng.pick(&boxes) {
                        self.call("blindBoxStats", "query S($b: ID!) { blindBoxStats(boxId: $b) { draws prizes { prizeId configuredProbability observedFrequency count } } }", json!({ "b": b.to_string() })).await;
                    }
                }
            }
            other => self.fail(format!("the soak's operator has no operation {other}")),
        }
    }

    /// Points for every virtual member, credited now: they outlive the run.
    pub async fn welcome(&mut self, points: i64) {
        let ids = self.shared.member_ids.clone();
        for chunk in ids.chunks(16) {
            let calls = chunk.iter().map(|id| {
                let shared = self.shared.clone();
                let id = *id;
                async move {
                    let answer = shared
                        .send(
                            true,
                            Some(&shared.admin_token.clone()),
                            ADJUST,
                            json!({ "m": id.to_string(), "d": points, "r": "welcome",
                                "k": format!("welcome-{id}") }),
                        )
                        .await;
                    shared.judge(None, "admin adjustPoints (welcome)", &answer, &[]);
                }
            });
            futures_util::future::join_all(calls).await;
        }
    }

    /// Runs the jobs a jump of the clock made due, as the scheduler would.
    pub async fn run_due_jobs(&mut self) {
        for job in DUE_AFTER_A_JUMP {
            self.call(&format!("runJob {job}"), RUN_JOB, json!({ "n": job }))
                .await;
        }
    }
}

/// The clock: business time moves a few minutes every tick, and jumps (hours, days, a month)
/// between phases, so tokens, unpaid orders, crowdfunds, points and tiers expire mid-run.
/// After each jump it runs the jobs that became due.
pub async fn run_clock(shared: Arc<Shared>, seed: u64, run: StdDuration, days: i64) {
    let mut rng = Rng::derive(seed, u64::MAX);
    let tick = StdDuration::from_millis(200);
    let phases = (run.as_secs() / 3).max(3);
    let phase_ticks = (run.as_millis() / tick.as_millis() / u128::from(phases)).max(1) as u64;
    let jumps = jump_plan(&mut rng, phases.saturating_sub(1) as usize, days);
    let mut ticks = 0u64;
    let mut jump = 0usize;
    let mut due: Option<tokio::task::JoinHandle<()>> = None;
    while !shared.stopped() {
        tokio::time::sleep(tick).await;
        ticks += 1;
        if ticks.is_multiple_of(phase_ticks) && jump < jumps.len() {
            shared.advance(jumps[jump]);
            jump += 1;
            // The jobs run beside the members, as the scheduler's would; the clock moves on.
            if due.as_ref().is_none_or(|d| d.is_finished()) {
                let mut jobs = Operator::new(shared.clone(), seed ^ jump as u64, Vec::new());
                due = Some(tokio::spawn(async move { jobs.run_due_jobs().await }));
            }
        } else {
            shared.advance(rng.range(60, 240));
        }
    }
    if let Some(due) = due {
        let _ = due.await;
    }
}

/// How far each jump between phases moves the clock, in seconds: one month-long absence (when
/// `days` allows: refresh tokens then expire), the rest of `days` split at random, at least an
/// hour each.
pub fn jump_plan(rng: &mut Rng, jumps: usize, days: i64) -> Vec<i64> {
    if jumps == 0 {
        return Vec::new();
    }
    let mut plan = vec![0i64; jumps];
    let mut budget = days * 86_400;
    if days >= 40 && jumps >= 2 {
        let month = jumps / 2 + rng.below((jumps / 2) as u64) as usize;
        plan[month] = 31 * 86_400;
        budget -= 31 * 86_400;
    }
    let weights: Vec<i64> = (0..jumps).map(|_| rng.range(1, 10)).collect();
    let free: i64 = weights
        .iter()
        .zip(&plan)
        .filter(|(_, p)| **p == 0)
        .map(|(w, _)| *w)
        .sum();
    for (slot, w) in plan.iter_mut().zip(&weights) {
        if *slot == 0 {
            *slot = (budget * w / free.max(1)).max(3_600);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prize_stocks_come_from_the_prize_table() {
        assert_eq!(
            prize_stocks("101:600:-:COMMON,102:250:40:RARE,103:5:0:LEGENDARY"),
            vec![(102, 40), (103, 0)]
        );
    }

    #[test]
    fn the_jumps_cover_the_days_with_one_month_away() {
        let mut rng = Rng::new(3);
        let plan = jump_plan(&mut rng, 9, 60);
        assert_eq!(plan.len(), 9);
        assert!(plan.contains(&(31 * 86_400)));
        let total: i64 = plan.iter().sum();
        assert!((59 * 86_400..=61 * 86_400).contains(&total), "{total}");
        assert!(plan.iter().all(|j| *j >= 3_600));
    }
}
