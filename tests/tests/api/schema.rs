//! The served schemas: committed as SDL files, and checked against the front-end contract.

use std::path::PathBuf;

use loyalty_tests::contract::{check, excused};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_committed_schema_files_match_the_served_schemas() {
    let (member, admin) = api::graphql::sdl();
    for (file, served) in [("member.graphql", member), ("admin.graphql", admin)] {
        let path = repo_root().join("api/schema").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == served,
            "api/schema/{file} is out of date: run `cargo run -p api -- print-schema` and commit it"
        );
    }
}

/// Contract items not built yet: empty, the contract is met. A new contract item that is not
/// built yet goes here, named by coordinate, until it is.
const MEMBER_NOT_BUILT: &[&str] = &[];
const ADMIN_NOT_BUILT: &[&str] = &[];

fn check_against_contract(file: &str, served: &str, not_built: &[&str]) {
    let path = repo_root().join("../shared/contract").join(file);
    let Ok(contract) = std::fs::read_to_string(&path) else {
        eprintln!(
            "no contract beside the checkout at {}; nothing to compare",
            path.display()
        );
        return;
    };
    let findings = check(&contract, served);
    let unexcused: Vec<_> = findings
        .iter()
        .filter(|f| !excused(&f.coordinate, not_built))
        .map(|f| format!("{}: {}", f.coordinate, f.problem))
        .collect();
    assert!(
        unexcused.is_empty(),
        "{file}: the served schema breaks the contract:\n{}",
        unexcused.join("\n")
    );
    // An entry for something now served must go, so the list only ever shrinks.
    let stale: Vec<_> = not_built
        .iter()
        .filter(|entry| !findings.iter().any(|f| excused(&f.coordinate, &[entry])))
        .collect();
    assert!(
        stale.is_empty(),
        "{file}: built now, remove from the not-built list: {stale:?}"
    );
}

#[test]
fn the_member_schema_keeps_the_contract() {
    check_against_contract("member.graphql", &api::graphql::sdl().0, MEMBER_NOT_BUILT);
}

#[test]
fn the_admin_schema_keeps_the_contract() {
    check_against_contract("admin.graphql", &api::graphql::sdl().1, ADMIN_NOT_BUILT);
}
