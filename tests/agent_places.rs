//! Every registered agent is present in each place an agent must touch (README, "Adding
//! an agent"): its module, its generated meta-data, docs and manual page in `meta/`, a row
//! in the contract fixtures, a drill stack, and a row of the README's agent table. Fails
//! naming the agent and the missing place.

mod common;

use common::repo;
use std::path::Path;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The module an agent lives in: its name in lower case, dashes as underscores.
fn module(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// The places agent `name` is missing from.
fn missing(name: &str, root: &Path) -> Vec<String> {
    let mut gaps = Vec::new();
    let m = module(name);
    let agents = root.join("src/agents");
    if !agents.join(format!("{m}.rs")).is_file() && !agents.join(&m).join("mod.rs").is_file() {
        gaps.push(format!("module src/agents/{m}.rs or src/agents/{m}/mod.rs"));
    }
    let mods = read(&agents.join("mod.rs"));
    if !mods
        .lines()
        .any(|l| l.trim_end().ends_with(&format!("mod {m};")))
    {
        gaps.push(format!("`pub mod {m};` in src/agents/mod.rs"));
    }
    for f in [
        format!("meta/{name}.xml"),
        format!("meta/{name}.md"),
        format!("meta/man/{}.7", ocf::man::page_name("rustha", name)),
    ] {
        if !root.join(&f).is_file() {
            gaps.push(format!("{f} (run `make meta` and commit it)"));
        }
    }
    if common::fixture_kind(name).is_none() {
        gaps.push("a row in tests/common/mod.rs fixture_kind".into());
    }
    let drill = read(&root.join("drill/drill.py"));
    if ![
        format!("ocf:{{p}}:{name}\""),
        format!("ocf:rustha:{name}\""),
    ]
    .iter()
    .any(|s| drill.contains(s.as_str()))
    {
        gaps.push("a drill stack using it (drill/drill.py stack_resources)".into());
    }
    let readme = read(&root.join("README.md"));
    if !readme
        .lines()
        .any(|l| l.starts_with(&format!("| `{name}` |")))
    {
        gaps.push("a row in the README's agent table".into());
    }
    gaps
}

#[test]
fn every_registered_agent_is_in_every_place_an_agent_must_touch() {
    let root = repo();
    let mut report = Vec::new();
    for a in rustha::registry::AGENTS {
        let gaps = missing(a.name(), &root);
        if !gaps.is_empty() {
            report.push(format!("{}: missing {}", a.name(), gaps.join("; ")));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    println!(
        "agent places: {} agents, each with module, meta/, fixture row, drill stack, README row",
        rustha::registry::AGENTS.len()
    );
}

#[test]
fn the_check_finds_an_agent_that_is_missing_everywhere() {
    // A name no place knows: every place is reported (the check is not vacuous).
    let gaps = missing("no-such-agent", &repo());
    assert_eq!(gaps.len(), 8, "{gaps:#?}");
    assert!(gaps[0].contains("src/agents/no_such_agent.rs"), "{gaps:?}");
}
