//! `cargo run --release -p bench -- soak [options]`: the mixed-workload soak test (README "Soak
//! test"). It seeds a shop in a scratch database, starts the server, signs in N virtual members
//! that do a random mix of every member operation for D seconds while an operator does admin
//! mutations and the test clock moves through weeks, then checks every invariant. It fails on
//! any INTERNAL, any 5xx, any error code outside DESIGN's list, a broken idempotency promise,
//! or a broken invariant; a failure prints the seed and the failing members' last operations.

mod member;
mod operator;
mod world;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant};

use api::auth::jwt::TokenKind;
use api::auth::{AdminRole, create_admin};
use api::config::Settings;
use bench::shop::{ShopSize, seed_shop};
use chrono::{Duration, NaiveTime, TimeZone, Utc};
use secrecy::SecretString;

use crate::checks::{self, Check};
use crate::{driver, scratch, server, workspace};
use member::Member;
use operator::Operator;
use world::Shared;

const USAGE: &str = "usage: cargo run --release -p bench -- soak [--db sqlite|postgres|mysql,...] \
[--duration SECS] [--members N] [--shop-members N] [--seed N] [--days N] [--max-connections N]

  --db               databases, one after the other (default sqlite); postgres and mysql
                     (MariaDB) run with Redis
  --duration         seconds of mixed load per database (default 60)
  --members          virtual members playing at once (default 200)
  --shop-members     members in the seeded shop, the virtual ones among them (default 2000)
  --seed             the random seed (default: from the time; printed, so a failure reproduces)
  --days             business days the test clock moves through during the run (default 60)
  --max-connections  DATABASE_MAX_CONNECTIONS of the server (PostgreSQL/MariaDB; default the
                     server's own, 10); small values make code paths share connections

Environment: as the benchmark (BENCH_POSTGRES_URL, BENCH_MYSQL_URL, BENCH_REDIS_URL). Exits 0
only if nothing failed.";

#[derive(Debug, Clone)]
struct Options {
    dbs: Vec<String>,
    duration: StdDuration,
    members: usize,
    shop_members: usize,
    seed: u64,
    days: i64,
    max_connections: Option<u32>,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        dbs: vec!["sqlite".into()],
        duration: StdDuration::from_secs(60),
        members: 200,
        shop_members: 2_000,
        seed: Utc::now().timestamp_micros() as u64 % 1_000_000_000,
        days: 60,
        max_connections: None,
    };
    let mut args = std::env::args().skip(2);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{v:?} is not a number"))
        };
        match arg.as_str() {
            "--db" => o.dbs = value()?.split(',').map(str::to_string).collect(),
            "--duration" => o.duration = StdDuration::from_secs(number(value()?)?),
            "--members" => o.members = number(value()?)? as usize,
            "--shop-members" => o.shop_members = number(value()?)? as usize,
            "--seed" => o.seed = number(value()?)?,
            "--days" => o.days = number(value()?)? as i64,
            "--max-connections" => o.max_connections = Some(number(value()?)? as u32),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    for db in &o.dbs {
        if !scratch::KINDS.contains(&db.as_str()) {
            return Err(format!("--db takes sqlite, postgres or mysql, not {db:?}"));
        }
    }
    if o.members == 0 || o.shop_members < o.members {
        return Err("--members must be at least 1 and at most --shop-members".into());
    }
    if o.duration.as_secs() < 3 {
        return Err("--duration must be at least 3 seconds".into());
    }
    Ok(o)
}

pub async fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut all_ok = true;
    for db in &options.dbs {
        eprintln!("== soak on {db}, seed {}", options.seed);
        match soak(db, &options).await {
            Ok(ok) => all_ok &= ok,
            Err(e) => {
                eprintln!("soak on {db} could not run: {e}");
                all_ok = false;
            }
        }
    }
    let again = format!(
        "cargo run --release -p bench -- soak --db {} --duration {} --members {} --shop-members {} --days {} --seed {}{}",
        options.dbs.join(","),
        options.duration.as_secs(),
        options.members,
        options.shop_members,
        options.days,
        options.seed,
        options
            .max_connections
            .map_or(String::new(), |n| format!(" --max-connections {n}"))
    );
    if all_ok {
        eprintln!("soak passed (seed {})", options.seed);
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!(
            "soak FAILED, seed {}; to run it again:\n  {again}",
            options.seed
        );
        std::process::ExitCode::FAILURE
    }
}

/// The server's settings for a soak: limits high enough that the mix exercises logic, with the
/// share and transfer captchas kept (solved by the members) and a points lifetime that ends
/// mid-run for the seeded points.
fn soak_settings(scratch: &mut scratch::Scratch, options: &Options) {
    for (key, value) in [
        ("LIMIT_LOGIN_IP", "1000000/60s"),
        ("LIMIT_MUTATION_MEMBER", "1000000/60s"),
        ("LIMIT_DRAW_MEMBER", "1000000/60s"),
        ("LIMIT_CHECKIN_DEVICE", "1000/60s"),
        ("LIMIT_SHARE_MEMBER", "3/1d"),
        ("LIMIT_TRANSFER_DEVICE", "2/1h"),
        ("LIMIT_EARN_MEMBER", "40/1h"),
        ("LIMIT_ADMIN_LOGIN_IP", "1000/15m"),
        ("POINTS_TTL_DAYS", "365"),
        (
            "REPORTABLE_EVENTS",
            "browse_item:50:distinct,share:20,review:5,ugc_post:5",
        ),
        ("RUST_LOG", "warn,api=warn"),
    ] {
        scratch.set(key, value);
    }
    if let Some(n) = options.max_connections {
        scratch.set("DATABASE_MAX_CONNECTIONS", n.to_string());
    }
}

async fn soak(db: &str, options: &Options) -> Result<bool, String> {
    let mut scratch = scratch::create(db, "loyalty_soak").await?;
    soak_settings(&mut scratch, options);
    let result = run_on(&scratch, options).await;
    if let Err(e) = scratch.drop_database().await {
        eprintln!("could not drop the scratch database: {e}");
    }
    result
}

async fn run_on(scratch: &scratch::Scratch, options: &Options) -> Result<bool, String> {
    let map = scratch.env.iter().cloned().collect();
    let settings = Settings::from_map(&map).map_err(|e| e.to_string())?;
    // The run starts at 10:00 business time today. The shop was seeded a year earlier, less a
    // quarter of the run's days: its tiers' 12 months and its points' 365 days then run out
    // during the run, so EVALUATE_TIERS and EXPIRE_POINTS have work.
    let start = Utc.from_utc_datetime(
        &Utc::now()
            .date_naive()
            .and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default()),
    );
    let seeded_at = start - Duration::days(365) + Duration::days(options.days / 4);

    eprintln!("seeding {} members...", options.shop_members);
    let seeding = Instant::now();
    let state = api::startup::build_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let size = ShopSize {
        members: options.shop_members,
        mall_items: 40,
        openid_prefix: "mock_soak_".into(),
        ..ShopSize::default()
    };
    let shop = seed_shop(&state.db, &state.settings, seeded_at, &size)
        .await
        .map_err(|e| format!("seeding: {e}"))?;
    let password = SecretString::from(uuid::Uuid::new_v4().to_string());
    let admin = create_admin(
        &state.db,
        "soak",
        &password,
        AdminRole::Superadmin,
        seeded_at,
    )
    .await
    .map_err(|e| e.to_string())?;
    let (admin_token, _) = state
        .jwt
        .issue(
            TokenKind::Admin,
            &admin.id.to_string(),
            None,
            seeded_at,
            Duration::days(3650),
        )
        .map_err(|e| e.to_string())?;
    let seeded = checks::seeded(&state.db).await?;
    let limits = checks::Limits {
        report_caps: state
            .settings
            .parsed
            .get::<api::task::Reportables>()
            .map_err(|e| e.to_string())?
            .0
            .iter()
            .map(|r| (r.kind.clone(), r.daily_cap))
            .collect(),
        make_ups_per_month: 3,
        transfer_max: state.settings.points.transfer_max,
        timezone: state.settings.timezone,
    };
    let checker = state.db.clone();
    drop(state);
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let log = workspace()
        .join("target")
        .join(format!("soak-server-{db}.log", db = scratch.kind));
    eprintln!("server log: {}", log.display());
    let ours = server::start_ours(&scratch.env, &log).await?;
    let shared = Arc::new(Shared::new(
        driver::client(options.members * 2 + 16),
        &ours.url,
        admin_token.into(),
        start,
        shop.member_ids[..options.members].to_vec(),
        seeded,
    ));
    shared
        .boxes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(shop.boxes.iter().map(|(id, _)| *id));

    // Everyone signs in; the operator sets up the rest of the shop and welcomes each member with
    // points that outlive the run (the seeded ones expire during it).
    let mut members: Vec<Member> = (0..options.members)
        .map(|i| Member::new(i, options.seed, shared.clone()))
        .collect();
    for chunk in members.chunks_mut(32) {
        futures_util::future::join_all(chunk.iter_mut().map(|m| m.login())).await;
    }
    *shared.member_nos.lock().unwrap_or_else(|e| e.into_inner()) =
        members.iter().map(|m| m.member_no().to_string()).collect();
    let tiers = members[0]
        .tiers()
        .await
        .ok_or("the tier ladder could not be read")?;
    let mut operator = Operator::new(shared.clone(), options.seed, tiers);
    if !operator.set_up().await {
        return Err("setting up the soak's items, box and projects failed".into());
    }
    operator.welcome(50_000).await;
    members[0].browse_all().await;
    if shared.failure_count() > 0 {
        eprintln!("set-up failed; see above");
        return Ok(false);
    }

    eprintln!(
        "{} members, {} s, the clock moving {} days from {}",
        options.members,
        options.duration.as_secs(),
        options.days,
        start.to_rfc3339()
    );
    let began = Instant::now();
    let mut tasks = Vec::new();
    for m in members {
        tasks.push(tokio::spawn(m.run()));
    }
    tasks.push(tokio::spawn(operator.run()));
    tasks.push(tokio::spawn(operator::run_clock(
        shared.clone(),
        options.seed,
        options.duration,
        options.days,
    )));
    tokio::time::sleep(options.duration).await;
    shared.stop.store(true, Ordering::SeqCst);
    // Requests in flight finish (the client's timeout bounds them).
    for task in tasks {
        if let Err(e) = task.await {
            shared.fail(None, format!("a soak task panicked: {e}"), &[]);
        }
    }
    let seconds = began.elapsed().as_secs_f64();

    let seeded = shared
        .seeded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut invariants = checks::run(
        &shared.client,
        &shared.admin_url,
        &shared.admin_token,
        &checker,
        &seeded,
        None,
    )
    .await?;
    invariants.extend(checks::soak(&checker, &limits).await?);
    drop(ours);
    let _ = checker.close().await;
    Ok(report(
        &shared,
        &invariants,
        seconds,
        options,
        &scratch.kind,
    ))
}

/// Prints what was done, what failed and the invariants; true if all is well.
fn report(
    shared: &Shared,
    invariants: &[Check],
    seconds: f64,
    options: &Options,
    db: &str,
) -> bool {
    let counts = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
    let mut by_op: BTreeMap<&str, (u64, BTreeMap<&str, u64>)> = BTreeMap::new();
    let mut total = 0;
    for ((op, outcome), n) in counts.iter() {
        total += n;
        let entry = by_op.entry(op).or_default();
        if outcome == "ok" {
            entry.0 += n;
        } else {
            entry.1.insert(outcome, *n);
        }
    }
    println!(
        "\n## Soak on {db}: {total} requests in {seconds:.0} s ({:.0}/s), seed {}\n",
        total as f64 / seconds,
        options.seed
    );
    println!("| operation | ok | refused, by code |\n|---|---:|---|");
    for (op, (ok, codes)) in &by_op {
        let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        println!(
            "| {op} | {ok} | {} |",
            if codes.is_empty() {
                "-".into()
            } else {
                codes.join(", ")
            }
        );
    }
    println!("\nInvariants after the run:\n");
    for c in invariants {
        println!(
            "- {} {}: {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let failures = shared.failures.lock().unwrap_or_else(|e| e.into_inner());
    if !failures.is_empty() {
        println!("\n{} failures (seed {}):", failures.len(), options.seed);
        let mut shown = std::collections::HashSet::new();
        for f in failures.iter() {
            let who = f
                .member
                .map_or("operator".to_string(), |m| format!("member {m}"));
            println!("\n- {who}: {}", f.what);
            // The last operations of the first few failing members and of the operator.
            if shown.len() < 5 && shown.insert(f.member) {
                println!("  last operations, oldest first:");
                for line in &f.history {
                    println!("    {line}");
                }
            }
        }
    }
    let ok = failures.is_empty() && invariants.iter().all(|c| c.ok);
    println!(
        "\n{}: {} failures, {} of {} invariants broken",
        if ok { "PASS" } else { "FAIL" },
        failures.len(),
        invariants.iter().filter(|c| !c.ok).count(),
        invariants.len()
    );
    ok
}
