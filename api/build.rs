//! Records the commit the binary is built from (`loyalty_build_info` in `/metrics`).

use std::process::Command;

fn main() {
    let commit = std::env::var("LOYALTY_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
    });
    if let Some(commit) = commit.filter(|c| !c.is_empty()) {
        println!("cargo:rustc-env=LOYALTY_COMMIT={commit}");
    }
    println!("cargo:rerun-if-env-changed=LOYALTY_COMMIT");
    // Rebuilt when HEAD moves (a checkout, a commit).
    for path in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
