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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
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
    let child = Command::new(&binary)
        .arg(SERVE_CHILD)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("APP_PORT", port.to_string())
        .env("APP_HOST", "127.0.0.1")
        .stdout(log)
        .stderr(log_err)
        .spawn()
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
    let child = Command::new("npx")
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
        .stderr(Stdio::null())
        .spawn()
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
