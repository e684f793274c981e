//! The real `api` binary for tests that watch the process from outside: what it prints, its
//! exit, its metrics. Each server gets its own SQLite file, port and environment (nothing from
//! the test's environment leaks in).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// The `api` binary, serving until dropped, with every line it printed.
pub struct Server {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with APP_ENV=test, a fresh SQLite database, port 0 and `env` on top.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("a temp dir");
        let database = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let mut command = Command::new(env!("CARGO_BIN_EXE_api"));
        command
            .env_clear()
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("APP_ENV", "test")
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", "0")
            .env("DATABASE_URL", &database);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the api binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let (lines, tx) = (lines.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let port = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no start-up line; the server printed: {lines:?}"));
            if line.contains("serving /graphql")
                && let Some(port) = port_in(&line)
            {
                break port;
            }
        };
        Server {
            child,
            port,
            lines,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let mut request = reqwest::Client::new()
            .post(self.url(path))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a JSON body")
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stops the server (SIGKILL) and returns everything it printed.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        self.wait_for_exit()
    }

    /// Asks the server to stop (SIGTERM), waits for it, and returns everything it printed.
    pub fn terminate(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.wait_for_exit()
    }

    fn wait_for_exit(&mut self) -> Vec<String> {
        let _ = self.child.wait();
        // The reader threads end at EOF; give them a moment to hand over the last lines.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.lines) > 1 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in the start-up line, text (`port=8080`) or JSON (`"port":8080`).
fn port_in(line: &str) -> Option<u16> {
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) {
        return fields.get("port").and_then(Value::as_u64).map(|p| p as u16);
    }
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
}

pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
