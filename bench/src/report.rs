//! The results: a Markdown table for the README and the same as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::checks::Check;
use crate::driver::Stats;

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: String,
    pub commit: String,
    pub settings: String,
    pub databases: Vec<DbReport>,
}

#[derive(Debug, Serialize)]
pub struct DbReport {
    pub database: String,
    pub members: usize,
    pub seconds_to_seed: f64,
    pub cells: Vec<Cell>,
    pub peer: Vec<PeerCell>,
    pub rss_mib: f64,
    pub peer_rss_mib: Option<f64>,
    pub invariants: Vec<Check>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub scenario: String,
    pub clients: usize,
    #[serde(flatten)]
    pub stats: Stats,
    /// Requests/s of every run, the reported one being the median.
    pub runs_rps: Vec<f64>,
    /// Database statements the server ran per request over all runs (its `/metrics`).
    pub statements_per_request: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct PeerCell {
    pub scenario: String,
    pub clients: usize,
    pub ours: Stats,
    pub postgraphile: Stats,
    /// Our successful requests/s over PostGraphile's.
    pub ratio: f64,
}

/// The run with the median requests/s (the middle one of an odd count).
fn statements(per_request: Option<f64>) -> String {
    per_request.map_or("-".into(), |n| format!("{n:.1}"))
}

fn median(mut runs: Vec<Stats>) -> (Stats, Vec<f64>) {
    let all: Vec<f64> = runs.iter().map(|r| r.rps).collect();
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let middle = runs.swap_remove(runs.len() / 2);
    (middle, all)
}

impl Cell {
    pub fn median(scenario: &str, clients: usize, runs: Vec<Stats>) -> Cell {
        let (stats, runs_rps) = median(runs);
        Cell {
            scenario: scenario.into(),
            clients,
            stats,
            runs_rps,
            statements_per_request: None,
        }
    }

    pub fn line(&self) -> String {
        let s = &self.stats;
        format!(
            "{:<18} c={:<4} {:>8.0} req/s ({:>8.0} ok/s)  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  stmts/req {}  {}",
            self.scenario,
            self.clients,
            s.rps,
            s.ok_rps,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            statements(self.statements_per_request),
            errors(s)
        )
    }
}

impl PeerCell {
    pub fn new(scenario: &str, clients: usize, ours: Vec<Stats>, theirs: Vec<Stats>) -> PeerCell {
        let (ours, _) = median(ours);
        let (theirs, _) = median(theirs);
        PeerCell {
            scenario: scenario.into(),
            clients,
            ratio: if theirs.ok_rps > 0.0 {
                ours.ok_rps / theirs.ok_rps
            } else {
                f64::INFINITY
            },
            ours,
            postgraphile: theirs,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{:<10} c={:<4} ours {:>7.0} ok/s p99 {:>6.1} ms | postgraphile {:>7.0} ok/s p99 {:>6.1} ms | x{:.2} {}{}",
            self.scenario,
            self.clients,
            self.ours.ok_rps,
            self.ours.p99_ms,
            self.postgraphile.ok_rps,
            self.postgraphile.p99_ms,
            self.ratio,
            errors(&self.ours),
            errors(&self.postgraphile)
        )
    }
}

fn errors(s: &Stats) -> String {
    if s.errors.is_empty() {
        return "-".into();
    }
    s.errors
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl DbReport {
    pub fn new(database: &str, members: usize, seconds_to_seed: f64) -> DbReport {
        DbReport {
            database: match database {
                "postgres" => "PostgreSQL + Redis".into(),
                _ => "SQLite (in-process limiter)".into(),
            },
            members,
            seconds_to_seed,
            cells: Vec::new(),
            peer: Vec::new(),
            rss_mib: 0.0,
            peer_rss_mib: None,
            invariants: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Report {
    pub fn new(settings: &str) -> Report {
        Report {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: machine(),
            commit: commit(),
            settings: settings.into(),
            databases: Vec::new(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Run {} on {}, commit {}.",
            self.date, self.machine, self.commit
        );
        let _ = writeln!(md, "Settings: {}.\n", self.settings);
        for db in &self.databases {
            let _ = writeln!(md, "#### {}\n", db.database);
            let _ = writeln!(
                md,
                "Seeded {} members in {:.1} s. Server peak RSS: **{:.0} MiB**.\n",
                db.members, db.seconds_to_seed, db.rss_mib
            );
            let _ = writeln!(
                md,
                "| scenario | clients | req/s | ok/s | x bare | p50 ms | p95 ms | p99 ms | statements/req | not ok, by code |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            for c in &db.cells {
                let s = &c.stats;
                // Writes as a share of the bare check-in transaction's rate at the same clients.
                let bare = db
                    .cells
                    .iter()
                    .find(|b| b.scenario == crate::scenarios::BARE && b.clients == c.clients)
                    .map(|b| b.stats.ok_rps)
                    .filter(|rps| *rps > 0.0);
                let ratio = match bare {
                    Some(bare) if crate::scenarios::Scenario::is_write(&c.scenario) => {
                        format!("{:.2}", s.ok_rps / bare)
                    }
                    _ => "-".to_string(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.0} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
                    c.scenario,
                    c.clients,
                    s.rps,
                    s.ok_rps,
                    ratio,
                    s.p50_ms,
                    s.p95_ms,
                    s.p99_ms,
                    statements(c.statements_per_request),
                    errors(s)
                );
            }
            if !db.peer.is_empty() {
                let _ = writeln!(
                    md,
                    "\nAgainst PostGraphile v4 (same tables, same driver, alternating; peak RSS of its \
                     workers {:.0} MiB):\n",
                    db.peer_rss_mib.unwrap_or(0.0)
                );
                let _ = writeln!(
                    md,
                    "| read | clients | ours ok/s | ours p99 ms | PostGraphile ok/s | PostGraphile p99 ms | ratio |"
                );
                let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
                for p in &db.peer {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.0} | {:.1} | {:.0} | {:.1} | **{:.2}x** |",
                        p.scenario,
                        p.clients,
                        p.ours.ok_rps,
                        p.ours.p99_ms,
                        p.postgraphile.ok_rps,
                        p.postgraphile.p99_ms,
                        p.ratio
                    );
                }
            }
            let _ = writeln!(md, "\nInvariants after the run:\n");
            for c in &db.invariants {
                let _ = writeln!(
                    md,
                    "- {} {}: {}",
                    if c.ok { "✅" } else { "❌" },
                    c.name,
                    c.detail
                );
            }
            for n in &db.notes {
                let _ = writeln!(md, "\nNote: {n}");
            }
            md.push('\n');
        }
        md
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM, load generator on the same machine")
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
