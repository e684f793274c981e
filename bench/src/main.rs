//! `cargo run --release -p bench -- [options]`: the load benchmark (see the README's Performance
//! section). For each database it builds a scratch database, seeds a shop, starts the server
//! (this release binary again, as a child serving `api::startup::Application`), drives every
//! scenario at each concurrency, runs a flash sale, compares the reads with PostGraphile v4
//! (PostgreSQL only), checks the invariants and writes `bench/results/latest.{md,json}`.

mod checks;
mod driver;
mod fleet;
mod report;
mod scenarios;
mod scratch;
mod server;
mod soak;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api::auth::jwt::TokenKind;
use api::auth::{AdminRole, create_admin};
use api::config::Settings;
use bench::shop::{ShopSize, seed_shop};
use chrono::{NaiveTime, TimeZone, Utc};
use secrecy::SecretString;

use report::{Cell, DbReport, PeerCell, Report};
use scenarios::{Scenario, World};

const USAGE: &str =
    "usage: cargo run --release -p bench -- [--db sqlite,postgres] [--duration SECS] \
[--clients 16,64,256] [--repeat N] [--members N] [--flash N] [--no-peer] [--only me,checkIn,...]
       cargo run --release -p bench -- soak --help     (the mixed-workload soak test)
       cargo run -p bench -- fleet --help              (several instances, one killed)

  --db        databases to run on (default: sqlite,postgres; also mysql); PostgreSQL and
              MariaDB run with Redis
  --duration  seconds per scenario run (default 5)
  --clients   concurrency levels (default 16,64,256)
  --repeat    runs per cell; the median run is reported (default 1)
  --members   members in the seeded shop (default 10000)
  --flash     concurrent attempts in the flash sale (default 1000, on stock 100)
  --no-peer   skip the PostGraphile comparison
  --only      run only these scenarios (names as in the table)

Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) and
BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306/test), maintenance databases to create
the scratch one from (its name has a random suffix; it is dropped at the end), BENCH_REDIS_URL
(default redis://127.0.0.1:6379).";

#[derive(Debug, Clone)]
struct Options {
    dbs: Vec<String>,
    duration: Duration,
    clients: Vec<usize>,
    repeat: usize,
    members: usize,
    flash: usize,
    peer: bool,
    only: Option<Vec<String>>,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        dbs: vec!["sqlite".into(), "postgres".into()],
        duration: Duration::from_secs(5),
        clients: vec![16, 64, 256],
        repeat: 1,
        members: 10_000,
        flash: 1_000,
        peer: true,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{v:?} is not a number"))
        };
        match arg.as_str() {
            "--db" => o.dbs = value()?.split(',').map(str::to_string).collect(),
            "--duration" => o.duration = Duration::from_secs(number(value()?)? as u64),
            "--clients" => {
                o.clients = value()?
                    .split(',')
                    .map(|c| number(c.to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--repeat" => o.repeat = number(value()?)?.max(1),
            "--members" => o.members = number(value()?)?,
            "--flash" => o.flash = number(value()?)?,
            "--no-peer" => o.peer = false,
            "--only" => o.only = Some(value()?.split(',').map(str::to_string).collect()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }
    for db in &o.dbs {
        if !scratch::KINDS.contains(&db.as_str()) {
            return Err(format!(
                "--db takes sqlite, postgres and/or mysql, not {db:?}"
            ));
        }
    }
    if o.members < o.flash || o.members < *o.clients.iter().max().unwrap_or(&1) {
        return Err("--members must be at least --flash and the largest --clients".into());
    }
    Ok(o)
}

// As in the `api` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some(server::SERVE_CHILD) => return serve().await,
        Some("soak") => return soak::main().await,
        Some("fleet") => return fleet::main().await,
        _ => {}
    }
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("an invariant failed; see the report");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The server under test, configured from the environment like `api`.
async fn serve() -> std::process::ExitCode {
    api::telemetry::init();
    let served = async {
        let settings = Settings::from_env().map_err(|e| e.to_string())?;
        let app = api::startup::Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_signalled().await.map_err(|e| e.to_string())
    };
    match served.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

async fn run(options: Options) -> Result<bool, String> {
    let root = workspace();
    let mut report = Report::new(&options_summary(&options));
    for db in &options.dbs {
        eprintln!("== {db}");
        report.databases.push(run_database(db, &options).await?);
    }
    let all_ok = report
        .databases
        .iter()
        .all(|d| d.invariants.iter().all(|c| c.ok));
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let markdown = report.markdown();
    std::fs::write(out.join("latest.md"), &markdown).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("latest.json"),
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!("{markdown}");
    eprintln!("wrote {}/latest.md and latest.json", out.display());
    Ok(all_ok)
}

fn options_summary(o: &Options) -> String {
    format!(
        "{} s per run, clients {:?}, median of {} run(s), {} members, flash {} attempts on stock 100",
        o.duration.as_secs(),
        o.clients,
        o.repeat,
        o.members,
        o.flash
    )
}

async fn run_database(db: &str, options: &Options) -> Result<DbReport, String> {
    let scratch = scratch::create(db, "loyalty_bench").await?;
    let map: HashMap<String, String> = scratch.env.iter().cloned().collect();
    let settings = Settings::from_map(&map).map_err(|e| e.to_string())?;
    // The shop's "now": 10:00 business time today; runs happen on the days after it.
    let base = Utc.from_utc_datetime(
        &Utc::now()
            .date_naive()
            .and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default()),
    );

    eprintln!("seeding {} members...", options.members);
    let seeding = std::time::Instant::now();
    let state = api::startup::build_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let size = ShopSize {
        members: options.members,
        ..ShopSize::default()
    };
    let shop = seed_shop(&state.db, &state.settings, base, &size)
        .await
        .map_err(|e| format!("seeding: {e}"))?;
    let password = SecretString::from(uuid::Uuid::new_v4().to_string());
    let admin = create_admin(&state.db, "bench", &password, AdminRole::Superadmin, base)
        .await
        .map_err(|e| e.to_string())?;
    let ttl = chrono::Duration::days(3650);
    let issue = |kind, subject: String| {
        state
            .jwt
            .issue(kind, &subject, None, base, ttl)
            .map(|(token, _)| Arc::<str>::from(token))
            .map_err(|e| e.to_string())
    };
    let tokens = shop
        .member_ids
        .iter()
        .map(|id| issue(TokenKind::Member, id.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let admin_token = issue(TokenKind::Admin, admin.id.to_string())?;
    let seeded = checks::seeded(&state.db).await?;
    let seconds_to_seed = seeding.elapsed().as_secs_f64();
    eprintln!("seeded in {seconds_to_seed:.1} s");
    let checker = state.db.clone();
    drop(state);

    let log = workspace()
        .join("target")
        .join(format!("bench-server-{db}.log"));
    eprintln!("server log: {}", log.display());
    let ours = server::start_ours(&scratch.env, &log).await?;
    let metrics_url = ours.url.replace("/graphql", "/metrics");
    let client = driver::client(
        options
            .flash
            .max(*options.clients.iter().max().unwrap_or(&64)),
    );
    let world = Arc::new(World {
        url: ours.url.clone().into(),
        admin_url: ours.url.replace("/graphql", "/admin/graphql").into(),
        bare_url: ours.url.replace("/graphql", "/bench/bare-checkin").into(),
        admin_token,
        member_ids: shop.member_ids.clone(),
        tokens,
        boxes: shop.boxes.clone(),
        flash_item_id: shop.flash_item_id,
        base,
    });
    let mut cursor = Cursor::default();
    let mut report = DbReport::new(db, options.members, seconds_to_seed);

    if db == "postgres" && options.peer {
        match server::start_postgraphile(&scratch.database_url, num_cores()).await {
            Ok(peer) => {
                report.peer = compare(&client, &world, &peer, options, &mut cursor).await;
                report.peer_rss_mib = Some(peer.peak_rss_mib());
            }
            Err(e) => {
                eprintln!("PostGraphile comparison skipped: {e}");
                report
                    .notes
                    .push(format!("PostGraphile comparison skipped: {e}"));
            }
        }
    }

    for scenario in Scenario::ALL {
        if let Some(only) = &options.only
            && !only.iter().any(|o| o == scenario.name())
        {
            continue;
        }
        for &clients in &options.clients {
            let mut runs = Vec::new();
            let statements_before = statements_run(&client, &metrics_url).await;
            for _ in 0..options.repeat {
                let calls =
                    scenarios::calls(&world, scenario, cursor.run, cursor.member, cursor.day);
                let stats = driver::run_for(&client, clients, options.duration, calls).await;
                cursor.after(&stats, scenario.walks_days(), options.members);
                runs.push(stats);
            }
            let requests: u64 = runs.iter().map(|r| r.requests).sum();
            let statements = statements_per_request(
                statements_before,
                statements_run(&client, &metrics_url).await,
                requests,
            );
            let mut cell = Cell::median(scenario.name(), clients, runs);
            cell.statements_per_request = statements;
            eprintln!("{}", cell.line());
            report.cells.push(cell);
        }
    }

    eprintln!(
        "flash sale: {} attempts at once on stock {}",
        options.flash, size.flash_stock
    );
    let calls = scenarios::flash_calls(&world, cursor.member, cursor.day);
    let statements_before = statements_run(&client, &metrics_url).await;
    let stats = driver::burst(&client, options.flash, calls).await;
    cursor.after(&stats, false, options.members);
    let statements = statements_per_request(
        statements_before,
        statements_run(&client, &metrics_url).await,
        stats.requests,
    );
    let mut cell = Cell::median("flash redeem", options.flash, vec![stats]);
    cell.statements_per_request = statements;
    eprintln!("{}", cell.line());
    report.cells.push(cell);

    report.rss_mib = ours.peak_rss_mib();
    report.invariants = checks::run(
        &client,
        &world.admin_url,
        &world.admin_token,
        &checker,
        &seeded,
        Some((world.flash_item_id, size.flash_stock)),
    )
    .await?;
    for c in &report.invariants {
        eprintln!(
            "{} {}: {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    drop(ours);
    let _ = checker.close().await;
    scratch.drop_database().await?;
    Ok(report)
}

/// Where the next run starts: its number (for idempotency keys), the next member and the next
/// unused business day.
#[derive(Default)]
struct Cursor {
    run: u64,
    member: u64,
    day: i64,
}

impl Cursor {
    fn after(&mut self, stats: &driver::Stats, walks_days: bool, members: usize) {
        self.run += 1;
        let members = members as u64;
        if walks_days {
            self.day += ((self.member + stats.requests) / members) as i64 + 1;
        } else {
            self.day += 1;
        }
        self.member = (self.member + stats.requests) % members;
    }
}

async fn compare(
    client: &reqwest::Client,
    world: &Arc<World>,
    peer: &server::Server,
    options: &Options,
    cursor: &mut Cursor,
) -> Vec<PeerCell> {
    let peer_url: Arc<str> = peer.url.clone().into();
    let ids = Arc::new(world.member_ids.clone());
    let mut cells = Vec::new();
    for (name, scenario) in [("me", Scenario::Me), ("mallItems", Scenario::MallItems)] {
        for &clients in &options.clients {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            // Alternate the two servers, so drift on a noisy machine hits both.
            for _ in 0..options.repeat {
                let calls =
                    scenarios::calls(world, scenario, cursor.run, cursor.member, cursor.day);
                let stats = driver::run_for(client, clients, options.duration, calls).await;
                cursor.after(&stats, false, options.members);
                ours.push(stats);
                let calls =
                    scenarios::peer_calls(peer_url.clone(), ids.clone(), scenario == Scenario::Me);
                theirs.push(driver::run_for(client, clients, options.duration, calls).await);
            }
            let cell = PeerCell::new(name, clients, ours, theirs);
            eprintln!("{}", cell.line());
            cells.push(cell);
        }
    }
    cells
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Statements the server has run since it started: the count of its statement-latency histogram
/// in `/metrics`. `None` if it cannot be read (metrics off).
async fn statements_run(client: &reqwest::Client, metrics_url: &str) -> Option<f64> {
    let text = client
        .get(metrics_url)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counts: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with("loyalty_db_query_duration_seconds_count"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

fn statements_per_request(before: Option<f64>, after: Option<f64>, requests: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (requests > 0).then(|| (after - before) / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(requests: u64) -> driver::Stats {
        driver::Stats {
            requests,
            ok: requests,
            errors: Default::default(),
            seconds: 1.0,
            rps: 0.0,
            ok_rps: 0.0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        }
    }

    #[test]
    fn check_ins_take_a_new_day_for_every_round_of_members() {
        let mut cursor = Cursor::default();
        cursor.after(&stats(250), true, 100);
        // Members 0..250 checked in on days 0, 1 and 2; the next run starts on day 3 at member 50.
        assert_eq!((cursor.run, cursor.day, cursor.member), (1, 3, 50));
        cursor.after(&stats(10), false, 100);
        assert_eq!((cursor.run, cursor.day, cursor.member), (2, 4, 60));
    }
}
