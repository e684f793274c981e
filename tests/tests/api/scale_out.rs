//! Several instances on one database and one Redis (issue: scale out): jobs that batch, leases
//! that a dead holder gives up within one lease, one run per interval across the fleet, a rank
//! that follows the member's own score, cache invalidation across instances, and readiness.
//! "Two instances" here are two apps on the same database and Redis key prefix.

use api::auth::AdminRole;
use api::jobs::{self, JobName};
use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use loyalty_tests::{TestApp, TestMember, spawn_app, spawn_app_with};
use serde_json::json;

use crate::points::{adjust, assert_audit_ok};

const T0: &str = "2026-03-10T10:00:00+08:00";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(T0).unwrap().to_utc()
}

/// A second instance of `first`: the same database and Redis keys.
async fn second_instance(first: &TestApp) -> TestApp {
    let database = first.database_url().to_string();
    let prefix = first.state.settings.redis_key_prefix.clone();
    spawn_app_with(move |env| {
        env.insert("DATABASE_URL".into(), database);
        env.insert("REDIS_KEY_PREFIX".into(), prefix);
    })
    .await
}

fn generous_limits(env: &mut std::collections::HashMap<String, String>) {
    for limit in [
        "LIMIT_TRANSFER_DEVICE",
        "LIMIT_MUTATION_MEMBER",
        "LIMIT_EARN_MEMBER",
    ] {
        env.insert(limit.into(), "100000/60s".into());
    }
}

/// Finding 1: REFRESH_RFM updated every member in one transaction, segment by segment in hash
/// order, while transfers lock their two members in id order: on PostgreSQL some transfers and
/// job runs died as deadlock victims (INTERNAL). The job now writes id-ordered batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfm_refresh_and_transfers_in_flight_neither_deadlock_nor_fail() {
    let app = spawn_app_with(generous_limits).await;
    app.at(T0);
    let admin = app.admin(AdminRole::Superadmin).await;
    let shop = app.admin(AdminRole::Integration).await;
    let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let mut members: Vec<TestMember<'_>> = Vec::new();
    for chunk in names.chunks(10) {
        members.extend(join_all(chunk.iter().map(|n| app.login(n))).await);
    }
    // Purchases of many sizes, so the members fall into many segments.
    for (i, m) in members.iter().enumerate() {
        shop.gql(
            "mutation($m: String!, $a: Decimal!, $o: String!) { recordPurchase(input: { orderNo: $o, memberNo: $m, amount: $a, paidAt: \"2026-03-01T00:00:00Z\" }) { applied } }",
            json!({ "m": m.member_no, "a": format!("{}.00", 10 + (i * 37) % 500), "o": format!("SO-{i}") }),
        )
        .await
        .data();
        adjust(&admin, m, 10_000, &format!("seed-{i}")).await.data();
    }
    let jobs = async {
        let mut outcomes = Vec::new();
        for _ in 0..10 {
            let answer = admin
                .gql(
                    "mutation { runJob(name: REFRESH_RFM) { affected } }",
                    json!({}),
                )
                .await;
            outcomes.push(answer);
        }
        outcomes
    };
    // Each member sends to the members either side of them: every pair locks both ways.
    let transfers = join_all((0..members.len() * 5).map(|n| {
        let from = &members[n % members.len()];
        let to = &members[(n * 7 + 1) % members.len()];
        let to = if to.id == from.id {
            &members[(n + 1) % members.len()]
        } else {
            to
        };
        from.gql(
            "mutation($to: String!, $k: String!) { transferPoints(toMemberNo: $to, amount: 1, idempotencyKey: $k) { id } }",
            json!({ "to": to.member_no, "k": format!("t-{n}") }),
        )
    }));
    let (jobs, transfers) = tokio::join!(jobs, transfers);
    for job in &jobs {
        assert!(
            job.error_code().is_none() || job.error_code() == Some("CONFLICT"),
            "{:?}",
            job.body
        );
    }
    assert!(jobs.iter().any(|j| j.error_code().is_none()));
    for t in &transfers {
        assert_eq!(t.error_code(), None, "{:?}", t.body);
    }
    let segments = admin
        .gql("{ rfmSegments { segment members } }", json!({}))
        .await;
    let scored: i64 = segments.data()["rfmSegments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !["unscored", "at_risk", "dormant"].contains(&s["segment"].as_str().unwrap()))
        .map(|s| s["members"].as_i64().unwrap())
        .sum();
    assert_eq!(scored, 40, "{:?}", segments.body);
    assert_audit_ok(&admin).await;
}

/// Finding 2: the job lock lived 30 minutes, so a holder killed with -9 blocked the job on
/// every instance for that long. A lease now lasts `LEASE_TTL` (30 s) unless renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_holder_frees_the_job_within_one_lease() {
    let app = spawn_app().await;
    app.at(T0);
    let admin = app.admin(AdminRole::Operator).await;
    // A holder that takes the lease and dies: nothing renews or releases it.
    let lease = jobs::lease::acquire(&app.state, "expire_points", t0())
        .await
        .unwrap()
        .expect("the lease is free");
    drop(lease);
    let run = "mutation { runJob(name: EXPIRE_POINTS) { affected } }";
    admin.gql(run, json!({})).await.expect_error("CONFLICT");
    match &app.state.redis {
        Some(redis) => {
            let mut con = redis.clone();
            let key = format!(
                "{}{{job:expire_points}}:lease",
                app.state.settings.redis_key_prefix
            );
            let left: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            assert!(
                (1..=30_000).contains(&left),
                "the lease outlives one TTL: {left} ms"
            );
        }
        None => {
            // Without Redis the lease is a row on the job's clock.
            app.at("2026-03-10T10:00:20+08:00");
            admin.gql(run, json!({})).await.expect_error("CONFLICT");
            app.at("2026-03-10T10:00:31+08:00");
            let admin = app.admin(AdminRole::Operator).await;
            admin.gql(run, json!({})).await.data();
        }
    }
}

/// Finding 3: every instance ran every job each interval (36 RFM runs a minute from three
/// instances at a 5 s interval). The scheduler now runs a job once per interval across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_once_per_interval_across_instances() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let every = Duration::hours(1);
    let ran = |report: Option<jobs::JobReport>| report.is_some();
    let first = jobs::run_if_due(&a.state, JobName::RefreshRfm, t0(), every).await;
    assert!(ran(first.unwrap()), "the first run is due");
    for (app, later) in [(&b, 1), (&a, 20), (&b, 59)] {
        let again = jobs::run_if_due(
            &app.state,
            JobName::RefreshRfm,
            t0() + Duration::minutes(later),
            every,
        )
        .await;
        assert!(!ran(again.unwrap()), "ran again {later} minutes later");
    }
    let next = jobs::run_if_due(&b.state, JobName::RefreshRfm, t0() + every, every).await;
    assert!(
        ran(next.unwrap()),
        "due again after the interval, on any instance"
    );
    // Another job keeps its own schedule.
    let other = jobs::run_if_due(&b.state, JobName::EvaluateTiers, t0(), every).await;
    assert!(ran(other.unwrap()));
    // An operator's runJob is not held back by the schedule.
    let admin = a.admin(AdminRole::Operator).await;
    admin
        .gql(
            "mutation { runJob(name: REFRESH_RFM) { affected } }",
            json!({}),
        )
        .await
        .data();
}

/// Finding 5: `myRank` stayed at the member's old rank for up to 30 s after their own score
/// changed, because the rank was looked up by an entry the older board did not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_rank_follows_the_members_own_score_at_once() {
    let app = spawn_app().await;
    let shop = app.admin(AdminRole::Integration).await;
    let mut members = Vec::new();
    for name in ["ann", "ben", "cat"] {
        members.push(app.login(name).await);
    }
    let buy = |member: &TestMember<'_>, yuan: &str, order: &str| {
        shop.gql(
            "mutation($m: String!, $a: Decimal!, $o: String!) { recordPurchase(input: { orderNo: $o, memberNo: $m, amount: $a, paidAt: \"2026-01-01T00:00:00Z\" }) { applied } }",
            json!({ "m": member.member_no, "a": yuan, "o": order }),
        )
    };
    buy(&members[0], "300", "A").await.data();
    buy(&members[1], "200", "B").await.data();
    buy(&members[2], "100", "C").await.data();
    const BOARD: &str = "{ leaderboard(kind: POINTS_EARNED_MONTH, first: 10) { myRank entries { rank memberNo score } } }";
    let before = members[2].gql(BOARD, json!({})).await;
    assert_eq!(before.data()["leaderboard"]["myRank"], 3);
    // Cat now earns 400 more: first, while the board (kept up to 30 s) still shows her third.
    buy(&members[2], "400", "C2").await.data();
    let after = members[2].gql(BOARD, json!({})).await;
    assert_eq!(after.data()["leaderboard"]["myRank"], 1, "{:?}", after.body);
    // Ben, whom she passed, sees the board as it stands for him.
    let ben = members[1].gql(BOARD, json!({})).await;
    assert_eq!(ben.data()["leaderboard"]["myRank"], 2, "{:?}", ben.body);
}

const UPSERT_ITEM: &str =
    "mutation($input: MallItemInput!) { upsertMallItem(input: $input) { id } }";
const CAMPAIGN: &str =
    "mutation($input: PriceCampaignInput!) { upsertPriceCampaign(input: $input) { id } }";
const PRICE: &str = "query($id: ID!) { mallItem(id: $id) { pointsPrice } }";

/// Finding 6: after a price campaign changed on instance A, instance B listed the old price for
/// up to 30 s while charging the new one. Now A tells B at once (Redis pub/sub), and B charges
/// the price it lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_shows_on_every_instance_at_once_and_is_what_they_charge() {
    let a = spawn_app().await;
    if a.state.redis.is_none() {
        // One instance without Redis: nothing to tell; the cache drops its own copy.
        return;
    }
    let b = second_instance(&a).await;
    let admin = a.admin(AdminRole::Operator).await;
    let item = admin
        .gql(
            UPSERT_ITEM,
            json!({ "input": { "name": "奶瓶", "description": "", "category": "supplies", "kind": "PHYSICAL", "pointsPrice": 100, "stock": 5 } }),
        )
        .await;
    let item = item.data()["upsertMallItem"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let starts = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let campaign = admin
        .gql(
            CAMPAIGN,
            json!({ "input": { "name": "半价", "multiplier": "0.5", "startsAt": starts, "endsAt": (Utc::now() + Duration::hours(1)).to_rfc3339() } }),
        )
        .await;
    let campaign = campaign.data()["upsertPriceCampaign"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let member = b.login("ann").await;
    let admin_b = b.admin(AdminRole::Superadmin).await;
    adjust(&admin_b, &member, 1_000, "seed").await.data();
    // B lists (and caches) the campaign price.
    let price_on_b = || async {
        member.gql(PRICE, json!({ "id": item })).await.data()["mallItem"]["pointsPrice"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(price_on_b().await, 50);
    // A ends the campaign now.
    admin
        .gql(
            CAMPAIGN,
            json!({ "input": { "id": campaign, "name": "半价", "multiplier": "0.5", "startsAt": starts, "endsAt": (Utc::now() - Duration::minutes(1)).to_rfc3339() } }),
        )
        .await
        .data();
    // The message takes milliseconds; allow up to a second (the cache itself keeps 30 s).
    let mut seen = price_on_b().await;
    for _ in 0..20 {
        if seen == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = price_on_b().await;
    }
    assert_eq!(seen, 100, "B still lists the ended campaign's price");
    let order = member
        .gql(
            "mutation($input: RedeemInput!) { redeem(input: $input) { pointsCost } }",
            json!({ "input": { "itemId": item, "quantity": 1, "idempotencyKey": "r1" } }),
        )
        .await;
    assert_eq!(order.data()["redeem"]["pointsCost"], 100);
}

/// Finding 8: `/health` answered 200 whatever Redis did. `/ready` answers 200 only when the
/// database and a Redis key round trip work and the instance is not stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_database_and_redis_answer_and_not_stopping() {
    let app = spawn_app().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["redis"],
        if app.state.redis.is_some() {
            "ok"
        } else {
            "disabled"
        }
    );
    // Told to stop (SIGTERM): no longer ready, so the load balancer drains it first.
    app.state.shutdown.cancel();
    let stopping = app.get("/ready").await;
    assert_eq!(stopping.status().as_u16(), 503);
    assert_eq!(app.get("/health").await.status().as_u16(), 200);
}

/// Finding 4: SIGTERM during `runJob` answered INTERNAL after expiring part of the lots. Now the
/// request gets its answer (the job stops between batches), and the next run, on any instance,
/// expires the rest, each lot once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_job_answers_and_the_next_run_carries_on() {
    let app = spawn_app().await;
    app.at(T0);
    let admin = app.admin(AdminRole::Superadmin).await;
    let names: Vec<String> = (0..150).map(|i| format!("lot{i}")).collect();
    let mut members: Vec<TestMember<'_>> = Vec::new();
    for chunk in names.chunks(25) {
        members.extend(join_all(chunk.iter().map(|n| app.login(n))).await);
    }
    // Two lots each: 300 lots, more than one batch.
    for lot in ["a", "b"] {
        let keys: Vec<String> = members.iter().map(|m| format!("{lot}-{}", m.id)).collect();
        for (chunk, keys) in members.chunks(25).zip(keys.chunks(25)) {
            let given = join_all(
                chunk
                    .iter()
                    .zip(keys)
                    .map(|(m, key)| adjust(&admin, m, 10, key)),
            )
            .await;
            for g in given {
                assert!(g.error_code().is_none(), "{:?}", g.body);
            }
        }
    }
    const LATER: &str = "2029-06-01T10:00:00+08:00";
    app.at(LATER);
    let admin = app.admin(AdminRole::Superadmin).await;
    const EXPIRE: &str = "mutation { runJob(name: EXPIRE_POINTS) { affected } }";
    const EXPIRED: &str = "{ pointsHealth { expired } }";
    let job = admin.gql(EXPIRE, json!({}));
    let stop = async {
        // Once the job has expired something, stop the process as SIGTERM does.
        loop {
            let health = admin.gql(EXPIRED, json!({})).await;
            if health.data()["pointsHealth"]["expired"]
                .as_i64()
                .unwrap_or(0)
                > 0
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        app.stop_gracefully().await;
    };
    let (answer, ()) = tokio::join!(job, stop);
    let first = answer.data()["runJob"]["affected"].as_i64().unwrap();
    assert!((1..=300).contains(&first), "{:?}", answer.body);

    let next = second_instance(&app).await;
    next.at(LATER);
    // Admins' names count per app; the second app names its own.
    next.create_admin("next-op", AdminRole::Superadmin).await;
    let admin = next.admin_login("next-op").await;
    let rest = admin.gql(EXPIRE, json!({})).await.data()["runJob"]["affected"]
        .as_i64()
        .unwrap();
    assert_eq!(
        first + rest,
        300,
        "every lot expired once: {first} + {rest}"
    );
    let health = admin.gql(EXPIRED, json!({})).await;
    assert_eq!(health.data()["pointsHealth"]["expired"], 3000);
    assert_audit_ok(&admin).await;
}
