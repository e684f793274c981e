//! The hot paths, as GraphQL calls. Each scenario picks members in turn (so no two virtual users
//! share a member at once and no member meets a rate limit meant for one person), and each run
//! happens on its own business day through `X-Test-Now`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::driver::{Call, MakeCall};

/// What every scenario needs: where to send, whose tokens, the shop's ids.
pub struct World {
    pub url: Arc<str>,
    pub admin_url: Arc<str>,
    /// The bare baseline route (`api::bare`), served in APP_ENV=test.
    pub bare_url: Arc<str>,
    pub admin_token: Arc<str>,
    pub member_ids: Vec<i64>,
    pub tokens: Vec<Arc<str>>,
    pub boxes: Vec<(i64, i64)>,
    pub flash_item_id: i64,
    /// The seeded shop's "now"; run days count from the day after it.
    pub base: DateTime<Utc>,
}

impl World {
    pub fn at(&self, day: i64) -> Arc<str> {
        (self.base + Duration::days(day)).to_rfc3339().into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Me,
    MallItems,
    /// The check-in's bare transaction (three statements, no GraphQL): the writes' yardstick.
    BareCheckIn,
    CheckIn,
    ReportEvent,
    Draw1,
    Draw10,
    AchievementWall,
    Leaderboard,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::Me,
        Scenario::MallItems,
        Scenario::BareCheckIn,
        Scenario::CheckIn,
        Scenario::ReportEvent,
        Scenario::Draw1,
        Scenario::Draw10,
        Scenario::AchievementWall,
        Scenario::Leaderboard,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Me => "me",
            Scenario::MallItems => "mallItems",
            Scenario::BareCheckIn => BARE,
            Scenario::CheckIn => "checkIn",
            Scenario::ReportEvent => "reportEvent",
            Scenario::Draw1 => "drawBlindBox x1",
            Scenario::Draw10 => "drawBlindBox x10",
            Scenario::AchievementWall => "achievementWall",
            Scenario::Leaderboard => "leaderboard",
        }
    }
}

impl Scenario {
    /// Each call takes a member-day of its own, so runs move the days on.
    pub fn walks_days(self) -> bool {
        matches!(self, Scenario::CheckIn | Scenario::BareCheckIn)
    }

    /// The writes, reported as a ratio to the bare baseline at the same client count.
    pub fn is_write(name: &str) -> bool {
        [
            "checkIn",
            "reportEvent",
            "drawBlindBox x1",
            "drawBlindBox x10",
        ]
        .contains(&name)
    }
}

pub const BARE: &str = "bare checkIn";

pub const ME_QUERY: &str = "query Me { me { id memberNo nickname points growthValue \
    tier { code name rank growthThreshold discount pointsMultiplier benefits } \
    nextTier { tier { code name } growthNeeded ratio } tierValidUntil checkInStreak createdAt } }";

pub const MALL_ITEMS_QUERY: &str = "query Items { mallItems(first: 20) { nodes { id name category \
    kind pointsPrice cashPrice stock perMemberLimit minTierRank } pageInfo { hasNextPage endCursor } } }";

/// The same reads for PostGraphile: the member row, the tier ladder and the streak metric; the
/// first page of active items.
pub const PEER_ME_QUERY: &str = "query Me($id: BigInt!) { memberById(id: $id) { id memberNo \
    nickname points growthValue tierCode tierValidUntil createdAt } \
    allTiers(orderBy: RANK_ASC) { nodes { code name rank growthThreshold discount pointsMultiplier benefits } } \
    allMemberMetrics(condition: { memberId: $id, metric: \"checkin.streak\", period: \"all\" }) { nodes { value } } }";

pub const PEER_ITEMS_QUERY: &str = "query Items { allMallItems(first: 20, orderBy: ID_ASC, \
    condition: { active: true }) { nodes { id name category kind pointsPrice cashPriceFen \
    stock perMemberLimit minTierRank } pageInfo { hasNextPage endCursor } } }";

fn body(query: &str, variables: serde_json::Value) -> String {
    json!({ "query": query, "variables": variables }).to_string()
}

/// Calls for one run of `scenario`: the n-th call goes to member `(first_member + n) % N`, on
/// business day `day` (check-ins move on a day each time every member has had a turn).
pub fn calls(
    world: &Arc<World>,
    scenario: Scenario,
    run: u64,
    first_member: u64,
    day: i64,
) -> MakeCall {
    let world = world.clone();
    let members = world.member_ids.len() as u64;
    let now = world.at(day);
    Arc::new(move |n| {
        let m = ((first_member + n) % members) as usize;
        if scenario == Scenario::BareCheckIn {
            let day = world.base + Duration::days(day + ((first_member + n) / members) as i64);
            return Call {
                url: world.bare_url.clone(),
                body: json!({ "member": world.member_ids[m], "day": day.date_naive() }).to_string(),
                token: None,
                device: None,
                now: None,
            };
        }
        let key = format!("bench-{run}-{n}");
        let (query, variables) = match scenario {
            Scenario::Me | Scenario::BareCheckIn => (ME_QUERY.to_string(), json!({})),
            Scenario::MallItems => (MALL_ITEMS_QUERY.to_string(), json!({})),
            Scenario::CheckIn => (
                "mutation C($k: String) { checkIn(idempotencyKey: $k) { date pointsAwarded streak \
                 member { points } unlocked { code } } }"
                    .to_string(),
                json!({ "k": key }),
            ),
            Scenario::ReportEvent => (
                "mutation R($t: String, $k: String) { reportEvent(kind: \"browse_item\", targetId: $t, \
                 idempotencyKey: $k) { progress completed task { code } } }"
                    .to_string(),
                json!({ "t": format!("item-{}", n / members), "k": key }),
            ),
            Scenario::Draw1 | Scenario::Draw10 => {
                let (box_id, _) = world.boxes[(n % world.boxes.len() as u64) as usize];
                let count = if scenario == Scenario::Draw1 { 1 } else { 10 };
                (
                    "mutation D($b: ID!, $c: Int!, $k: String!) { drawBlindBox(boxId: $b, count: $c, \
                     idempotencyKey: $k) { pointsSpent draws { prize { name rarity } pity } member { points } \
                     unlocked { code } } }"
                        .to_string(),
                    json!({ "b": box_id.to_string(), "c": count, "k": key }),
                )
            }
            Scenario::AchievementWall => (
                "query W { achievementWall { unlockedCount showcase { code } achievements { \
                 achievement { code name threshold rewardPoints } progress unlocked rarity } \
                 titles { code name } } }"
                    .to_string(),
                json!({}),
            ),
            Scenario::Leaderboard => {
                let kind = ["CHECKIN_STREAK", "POINTS_EARNED_MONTH", "ACHIEVEMENTS"][(n % 3) as usize];
                (
                    "query L($k: LeaderboardKind!) { leaderboard(kind: $k, first: 50) { kind entries { \
                     rank memberNo nickname score } } }"
                        .to_string(),
                    json!({ "k": kind }),
                )
            }
        };
        // A check-in run walks through the members once per day.
        let now = if scenario == Scenario::CheckIn {
            world.at(day + ((first_member + n) / members) as i64)
        } else {
            now.clone()
        };
        Call {
            url: world.url.clone(),
            body: body(&query, variables),
            token: Some(world.tokens[m].clone()),
            device: Some(format!("bench-device-{m}")),
            now: Some(now),
        }
    })
}

/// The flash sale: the n-th attempt is member n's, one unit of the flash item each.
pub fn flash_calls(world: &Arc<World>, first_member: u64, day: i64) -> MakeCall {
    let world = world.clone();
    let members = world.member_ids.len() as u64;
    let now = world.at(day);
    Arc::new(move |n| {
        let m = ((first_member + n) % members) as usize;
        Call {
            url: world.url.clone(),
            body: body(
                "mutation F($i: ID!, $k: String!) { redeem(input: { itemId: $i, quantity: 1, \
                 idempotencyKey: $k }) { id status pointsCost } }",
                json!({ "i": world.flash_item_id.to_string(), "k": format!("flash-{m}") }),
            ),
            token: Some(world.tokens[m].clone()),
            device: Some(format!("bench-device-{m}")),
            now: Some(now.clone()),
        }
    })
}

/// The peer's calls (no token: PostGraphile here has no auth; our side checks a JWT on every call).
pub fn peer_calls(url: Arc<str>, member_ids: Arc<Vec<i64>>, me: bool) -> MakeCall {
    Arc::new(move |n| {
        let body = if me {
            let id = member_ids[(n % member_ids.len() as u64) as usize];
            body(PEER_ME_QUERY, json!({ "id": id.to_string() }))
        } else {
            body(PEER_ITEMS_QUERY, json!({}))
        };
        Call {
            url: url.clone(),
            body,
            token: None,
            device: None,
            now: None,
        }
    })
}
