//! Every parameter name of the upstream agent each rustha agent replaces is declared: the
//! names the installed heartbeat agents' meta-data gives (resource-agents as Debian ships
//! it) and those of resource-agents main (`tests/upstream/param-names-main.txt`). Each
//! declared name is implemented, accepted without effect (with the reason) or refused
//! (with the reason); the per-agent counts are printed for the closing note.

mod common;

use common::*;
use ocf::params::Support;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const HEARTBEAT: &str = "/usr/lib/ocf/resource.d/heartbeat";

/// `<parameter name="...">` of a meta-data document.
fn names_in(xml: &str) -> BTreeSet<String> {
    let re = regex_lite::Regex::new(r#"<parameter\s+name="([^"]+)""#).unwrap();
    re.captures_iter(xml).map(|c| c[1].to_string()).collect()
}

/// The names at resource-agents main, per agent, from the committed list.
fn main_names() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(repo().join("tests/upstream/param-names-main.txt"))
        .expect("tests/upstream/param-names-main.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (agent, names) = l.split_once(':').expect("<agent>: names");
            (
                agent.trim().to_string(),
                names.split_whitespace().map(String::from).collect(),
            )
        })
        .collect()
}

/// The installed heartbeat agent's parameter names, `None` when there is no such agent.
fn installed_names(agent: &str) -> Option<BTreeSet<String>> {
    let path = Path::new(HEARTBEAT).join(agent);
    if !path.is_file() {
        return None;
    }
    let out = Command::new(&path)
        .arg("meta-data")
        .env("OCF_ROOT", "/usr/lib/ocf")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let xml = String::from_utf8_lossy(&out.stdout);
    let names = names_in(&xml);
    assert!(
        !names.is_empty(),
        "{}: meta-data gave no parameters: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(names)
}

#[test]
fn every_upstream_parameter_name_is_declared() {
    assert!(
        Path::new(HEARTBEAT).is_dir(),
        "{HEARTBEAT} is missing: `.ci/run` installs resource-agents"
    );
    let main = main_names();
    let mut replaced = 0;
    for a in rustha::registry::AGENTS {
        let name = a.name();
        let installed = installed_names(name);
        let at_main = main.get(name).cloned();
        if installed.is_none() && at_main.is_none() {
            continue; // no heartbeat agent of that name (lighttpd, aws-eni)
        }
        replaced += 1;
        let upstream: BTreeSet<String> = installed
            .iter()
            .flatten()
            .chain(at_main.iter().flatten())
            .cloned()
            .collect();
        let specs: BTreeMap<&str, &ocf::ParamSpec> =
            a.params().iter().map(|p| (p.name, p)).collect();
        let missing: Vec<&String> = upstream
            .iter()
            .filter(|n| !specs.contains_key(n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: upstream parameters not declared by rustha: {missing:?}"
        );
        let mut count: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in &upstream {
            let s = specs[n.as_str()];
            if let Support::NoEffect(why) | Support::Refused(why) = s.support {
                assert!(why.trim().len() > 10, "{name}: {n}: no reason given");
            }
            count.entry(s.support.as_str()).or_default().push(s.name);
        }
        let only_main: Vec<&String> = at_main
            .iter()
            .flatten()
            .filter(|n| installed.as_ref().is_some_and(|i| !i.contains(*n)))
            .collect();
        let extra: Vec<&str> = specs
            .keys()
            .filter(|n| !upstream.contains(**n))
            .copied()
            .collect();
        println!(
            "{name}: {} upstream names ({} installed, {} only at main: {only_main:?}): \
             implemented {}, no effect {} {:?}, refused {} {:?}; rustha's own: {extra:?}",
            upstream.len(),
            installed.as_ref().map_or(0, |i| i.len()),
            only_main.len(),
            count.get("implemented").map_or(0, |v| v.len()),
            count.get("no effect").map_or(0, |v| v.len()),
            count.get("no effect").cloned().unwrap_or_default(),
            count.get("refused").map_or(0, |v| v.len()),
            count.get("refused").cloned().unwrap_or_default(),
        );
    }
    assert!(
        replaced >= 5,
        "only {replaced} agents matched a heartbeat agent"
    );
}
