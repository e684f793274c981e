//! The servers under test: our release binary, and PostGraphile v4 as the peer. Each runs as a
//! child process, killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden first argument that makes this binary serve instead of benchmarking.
pub const SERVE_CHILD: &str = "__serve";

pub struct Server {
    child: Child,
    pub url: String,
    name: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// Spawns `command` as the leader of a process group of its own, so that stopping it stops
/// whatever it started too (PostGraphile's cluster workers, npx's node).
fn spawn_group(command: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    command.process_group(0).spawn()
}

/// SIGTERM to the whole group (our server then finishes gracefully), up to 10 s for the leader
/// to exit, then SIGKILL to whatever is left of the group.
fn stop_group(child: &mut Child) {
    let Ok(leader) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is involved.
    unsafe { libc::kill(-leader, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-leader, libc::SIGKILL) };
    let _ = child.wait();
}

impl Server {
    /// kill -9 of the server and everything it started: no shutdown, no cleanup, as a crash.
    pub fn kill_hard(&mut self) {
        if let Ok(leader) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
            unsafe { libc::kill(-leader, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set so far, in MiB (`VmHWM`), summed over the process and its children
    /// (PostGraphile's cluster workers are children).
    pub fn peak_rss_mib(&self) -> f64 {
        let mut pids = vec![self.pid()];
        pids.extend(children_of(self.pid()));
        pids.iter()
            .filter_map(|pid| status_kib(*pid, "VmHWM:"))
            .sum::<u64>() as f64
            / 1024.0
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let ppid = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|s| {
                // The command name may hold spaces; fields after its closing parenthesis don't.
                let rest = &s[s.rfind(')')? + 2..];
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if ppid == Some(pid) {
            found.push(child);
            found.extend(children_of(child));
        }
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface can hand out a port")
}

/// The server's log goes to `log` (warnings and errors only: RUST_LOG=warn).
/// The server is this (release) binary run again as `SERVE_CHILD`: the same
/// `api::startup::Application` that `api` serves, built once with the benchmark's features.
pub async fn start_ours(env: &[(String, String)], log: &Path) -> Result<Server, String> {
    let port = free_port();
    let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let binary = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
    let child = spawn_group(
        Command::new(&binary)
            .arg(SERVE_CHILD)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("APP_PORT", port.to_string())
            .env("APP_HOST", "127.0.0.1")
            .stdout(log)
            .stderr(log_err),
    )
    .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/graphql"),
        name: "loyalty api",
    };
    wait_ready(
        &mut server,
        &format!("http://127.0.0.1:{port}/health"),
        None,
    )
    .await?;
    Ok(server)
}

/// Starts PostGraphile v4 over `database_url` with one cluster worker per core, fetching it
/// from the npm registry through `npx` if it is not cached yet.
pub async fn start_postgraphile(database_url: &str, workers: usize) -> Result<Server, String> {
    let port = free_port();
    let child = spawn_group(
        Command::new("npx")
            .args([
                "--yes",
                "postgraphile@4",
                "--connection",
                database_url,
                "--schema",
                "public",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--cluster-workers",
                &workers.to_string(),
                "--disable-query-log",
                "--disable-graphiql",
            ])
            .env("NODE_ENV", "production")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("starting npx postgraphile@4 (is Node.js installed?): {e}"))?;
    let url = format!("http://127.0.0.1:{port}/graphql");
    let mut server = Server {
        child,
        url: url.clone(),
        name: "postgraphile",
    };
    // The first start downloads PostGraphile; give it time.
    wait_ready(&mut server, &url, Some(r#"{"query":"{__typename}"}"#)).await?;
    Ok(server)
}

async fn wait_ready(server: &mut Server, url: &str, post: Option<&str>) -> Result<(), String> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        let request = match post {
            Some(body) => client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            None => client.get(url),
        };
        if let Ok(r) = request.send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{} exited: {status}", server.name));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{} did not answer at {url} within 300 s",
        server.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes still alive (not zombies) in process group `group`.
    fn alive_in_group(group: u32) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        let rest: Vec<String> = s[s.rfind(')')? + 2..]
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        // state, ppid, pgrp
                        Some(rest.first()? != "Z" && rest.get(2)?.parse::<u32>().ok()? == group)
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Hardening item 16: PostGraphile's cluster master and both workers outlived the benchmark.
    #[test]
    fn stopping_a_server_stops_every_process_it_started() {
        let child = spawn_group(
            Command::new("sh")
                .args(["-c", "sleep 300 & sleep 300 & wait"])
                .stdout(Stdio::null()),
        )
        .expect("sh starts");
        let group = child.id();
        // Until the workers exist, there is nothing to prove.
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive_in_group(group).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(alive_in_group(group).len(), 3, "sh and its two workers");
        drop(Server {
            child,
            url: String::new(),
            name: "workers",
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !alive_in_group(group).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(alive_in_group(group), Vec::<u32>::new());
    }
}
