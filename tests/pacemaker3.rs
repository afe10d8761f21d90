//! Pacemaker 3.0 (Debian 13: pacemaker 3.0.0, pcs 0.12, resource-agents 4.16) judging
//! the same binary: ocf-tester, crm_resource --validate and --show-metadata, pcs
//! describe and create, and `rustha migrate` against a CIB pcs 0.12 wrote, all inside
//! the root of `tests/trixie/root.sh`. The single-node cluster runs there too
//! (`tests/cluster.rs`, the `pacemaker3_` and `_pacemaker3_` tests).

mod common;

use common::*;
use std::collections::BTreeMap;

/// The tool's version line inside the root, proving which Pacemaker answers.
#[test]
fn the_root_is_pacemaker_3() {
    let r = trixie::run(&["pacemakerd", "--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Pacemaker 3."), "{}", r.stdout);
    let r = trixie::run(&["pcs", "--version"]);
    assert!(r.stdout.starts_with("0.12"), "{}", r.stdout);
}

/// ocf-tester of resource-agents 4.16 on every agent whose fixture needs nothing the
/// root lacks (the service agents need their servers, which are Pacemaker-independent
/// and tested on the host).
#[test]
fn ocf_tester_4_16_passes_the_agents() {
    private_netns();
    let state = TempDir::new("p3-ocft-state");
    world_readable(state.path());
    let mut tested = 0;
    for agent in agents() {
        if fixture_kind(&agent) == Some(FixtureKind::Site) {
            continue;
        }
        let fx = fixture(&agent);
        let mut params: BTreeMap<String, String> = examples(&agent).into_iter().collect();
        params.extend(fx.params.iter().cloned());
        let mut args = vec!["ocf-tester".to_string(), "-n".into(), instance("p3")];
        for (k, v) in params {
            args.push("-o".into());
            args.push(format!("{k}={v}"));
        }
        args.push(format!("/usr/lib/ocf/resource.d/rustha/{agent}"));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = out(trixie::command(&a).env("RUSTHA_STATE_DIR", state.path()));
        drop(fx);
        assert_eq!(r.code, 0, "ocf-tester {agent}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("passed all tests"), "{}", r.stdout);
        tested += 1;
    }
    assert!(tested >= 3, "only {tested} agents tested");
}

#[test]
fn crm_resource_validates_and_shows_our_metadata() {
    private_netns();
    for agent in agents() {
        let mut args = vec![
            "crm_resource".to_string(),
            "--validate".into(),
            "--class".into(),
            "ocf".into(),
            "--provider".into(),
            "rustha".into(),
            "--agent".into(),
            agent.clone(),
        ];
        for (k, v) in examples(&agent) {
            args.push("--option".into());
            args.push(format!("{k}={v}"));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = trixie::run(&a);
        assert_eq!(r.code, 0, "{agent}: {}{}", r.stdout, r.stderr);
        let spec = format!("ocf:rustha:{agent}");
        let r = trixie::run(&["crm_resource", "--show-metadata", &spec]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            r.stdout.trim(),
            rustha::registry::find(&agent).unwrap().metadata().trim()
        );
    }
    let r = trixie::run(&[
        "crm_resource",
        "--validate",
        "--class",
        "ocf",
        "--provider",
        "rustha",
        "--agent",
        "azure-lb",
        "--option",
        "port=notaport",
    ]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("parameter port: 'notaport' is not a valid port"),
        "{all}"
    );
}

#[test]
fn pcs_0_12_describes_and_creates_every_agent() {
    private_netns();
    let dir = TempDir::new("p3-pcs");
    world_readable(dir.path());
    let cib = dir.path().join("cib.xml");
    let empty = trixie::run(&["cibadmin", "--empty"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert!(
        empty.stdout.contains("validate-with=\"pacemaker-4."),
        "{}",
        empty.stdout
    );
    std::fs::write(&cib, &empty.stdout).unwrap();
    let f = cib.to_str().unwrap();
    for agent in agents() {
        let spec = format!("ocf:rustha:{agent}");
        let r = trixie::run(&["pcs", "resource", "describe", &spec]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        for p in rustha::registry::find(&agent).unwrap().params() {
            assert!(
                r.stdout.contains(p.name),
                "pcs 0.12 describe {agent} lacks {}",
                p.name
            );
        }
        let id = format!("r-{}", agent.to_ascii_lowercase());
        let mut args = vec!["pcs".to_string(), "-f".into(), f.into(), "resource".into()];
        args.extend(["create".into(), id.clone(), spec.clone()]);
        args.extend(
            examples(&agent)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        args.push("--agent-validation".into());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = trixie::run(&a);
        assert_eq!(
            r.code, 0,
            "pcs 0.12 resource create {agent}: {}{}",
            r.stdout, r.stderr
        );
    }
    let text = std::fs::read_to_string(&cib).unwrap();
    assert_eq!(
        text.matches("provider=\"rustha\"").count(),
        agents().len(),
        "{text}"
    );
}

/// `rustha migrate` on the CIB pcs 0.12 writes for the same resources as on 2.1 (no
/// `<master>`, `validate-with="pacemaker-4.0"`): the same verdicts as on the host.
#[test]
fn migrate_judges_a_pacemaker_3_cib_as_a_2_1_one() {
    let dir = TempDir::new("p3-migrate");
    world_readable(dir.path());
    let (old, new) = (dir.path().join("2.1.xml"), dir.path().join("3.0.xml"));
    cibs::build(&old, &cibs::on_host);
    cibs::build(&new, &trixie::run);
    let new_text = std::fs::read_to_string(&new).unwrap();
    assert!(
        !new_text.contains("<master"),
        "pcs 0.12 writes promotable clones"
    );
    let on_host = out(std::process::Command::new(bin())
        .args(["migrate", "--porcelain", "--cib"])
        .arg(&old));
    let inside = trixie::run(&[
        "rustha",
        "migrate",
        "--porcelain",
        "--cib",
        new.to_str().unwrap(),
    ]);
    assert_eq!(on_host.code, 3, "{}", on_host.stderr);
    assert_eq!(inside.code, 3, "{}", inside.stderr);
    assert_eq!(
        inside.stdout, on_host.stdout,
        "2.1 and 3.0 CIBs judged alike"
    );
    // --apply on the file, with Pacemaker 3.0's crm_simulate for the dry run.
    let r = trixie::run(&[
        "rustha",
        "migrate",
        "--apply",
        "--cib",
        new.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("switched to ocf:rustha: vip, web, fs, db2, lb, inb "),
        "{}",
        r.stdout
    );
    let after = std::fs::read_to_string(&new).unwrap();
    assert_eq!(after.matches("provider=\"rustha\"").count(), 6, "{after}");
}

/// resource-agents 4.16 (between the installed 4.12 and main) declares no parameter name
/// rustha lacks either (`tests/param_names.rs` covers 4.12 and main).
#[test]
fn every_resource_agents_4_16_parameter_name_is_declared() {
    let re = regex_lite::Regex::new(r#"<parameter\s+name="([^"]+)""#).unwrap();
    let mut compared = 0;
    for a in rustha::registry::AGENTS {
        let path = format!("/usr/lib/ocf/resource.d/heartbeat/{}", a.name());
        let r = trixie::run(&[
            "sh",
            "-c",
            "[ -x \"$0\" ] && OCF_ROOT=/usr/lib/ocf \"$0\" meta-data",
            &path,
        ]);
        if r.code != 0 {
            continue; // no heartbeat agent of that name
        }
        let names: Vec<String> = re
            .captures_iter(&r.stdout)
            .map(|c| c[1].to_string())
            .collect();
        assert!(!names.is_empty(), "{}: {}", a.name(), r.stderr);
        for n in &names {
            assert!(
                a.params().iter().any(|p| p.name == n),
                "{}: resource-agents 4.16 has {n}, rustha does not declare it",
                a.name()
            );
        }
        compared += 1;
    }
    assert!(
        compared >= 5,
        "only {compared} heartbeat agents in the root"
    );
}
