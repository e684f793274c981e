//! The module graph points one way (DESIGN s2): feature modules (check-in, tasks, mall, blind
//! boxes, achievements) reach each other only through `progress` events and `points::ledger`;
//! the core (`member`, `points`, `progress`, `idempotency`), the platform (`auth`, `anticheat`,
//! `audit`) and the infrastructure (settings, state, caches, …) import no feature module; only the
//! composition root (`startup`, `graphql`, `jobs`, `seed`, `http`) sees everything. This reads
//! every `crate::` path in `api/src` and fails on an import against that direction.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FEATURES: &[&str] = &["checkin", "task", "mall", "blindbox", "achievement"];
const ROOT: &[&str] = &["startup", "graphql", "jobs", "seed", "http", "main", "lib"];

/// Imports against the direction that are allowed, with why. Keep it empty.
const ALLOWED: &[(&str, &str)] = &[];

fn api_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../api/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`mall/redeem.rs` -> `mall`).
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(api_src()).unwrap();
    let first = relative.components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Every module a file names through `crate::` (in `use` lines and in paths), outside tests.
fn imports(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // crate::{a, b::c, d}
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn violations() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&api_src(), &mut files);
    let mut found = Vec::new();
    for file in files {
        let from = module_of(&file);
        if ROOT.contains(&from.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for to in imports(&source) {
            if to == from || !FEATURES.contains(&to.as_str()) {
                continue;
            }
            if ALLOWED.iter().any(|(f, t)| *f == from && *t == to) {
                continue;
            }
            let relative = file.strip_prefix(api_src()).unwrap().display().to_string();
            found.push(format!("{relative} ({from}) imports {to}"));
        }
    }
    found.sort();
    found
}

#[test]
fn no_module_imports_a_feature_module_but_the_composition_root() {
    let found = violations();
    assert!(
        found.is_empty(),
        "imports against the module graph (DESIGN s2):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_grouped_and_inline_paths() {
    let source = "use crate::{achievement, mall::rules};\nfn f() { crate::task::x(); }\n\
                  #[cfg(test)]\nmod tests { use crate::checkin; }";
    let names: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(names, ["achievement", "mall", "task"]);
}
