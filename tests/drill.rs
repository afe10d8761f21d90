//! The short drill set on a real 2-node cluster (drill/drill.py): standby, a killed
//! service, a power cut with fencing, and the stack killed with the link up. Fails on
//! any duplicate VIP, any resource left unrecovered, or a drill that leaves processes or
//! namespaces behind.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

struct Lab {
    dir: String,
    prefix: String,
}

impl Lab {
    fn cmd(&self, args: &[&str]) -> Run {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drill/drill.py");
        Run::from(
            Command::new("python3")
                .arg(script)
                .args(args)
                .env("RUSTHA_DRILL_DIR", &self.dir)
                .env("RUSTHA_DRILL_PREFIX", &self.prefix)
                .output()
                .unwrap(),
        )
    }
    fn namespaces(&self) -> Vec<String> {
        ip(&["netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .map(String::from)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let r = self.cmd(&["down"]);
        if r.code != 0 {
            eprintln!("drill down: {}{}", r.stdout, r.stderr);
        }
        let _ = std::fs::remove_dir_all(format!("{}.prev", self.dir));
    }
}

#[test]
fn short_drill_set_recovers_without_duplicate_vips_or_leftovers() {
    require_root();
    for t in ["corosync", "pacemakerd", "pcs", "tini", "python3"] {
        require_tool(t);
    }
    let lab = Lab {
        dir: format!("/var/tmp/rustha-drill-test-{}", std::process::id()),
        prefix: format!("rdt{}", std::process::id() % 100000),
    };
    let bin = bin();
    let r = lab.cmd(&["up", "--nodes", "2", "--rustha", bin.to_str().unwrap()]);
    assert_eq!(r.code, 0, "drill up: {}{}", r.stdout, r.stderr);
    let out = TempDir::new("drill-out");
    let r = lab.cmd(&[
        "run",
        "--stack",
        "azure",
        "--providers",
        "rustha",
        "--strict",
        "--out",
        out.path().to_str().unwrap(),
        "standby",
        "service-kill",
        "power-cut",
        "kill-link-up",
    ]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "drill run: {}{}", r.stdout, r.stderr);
    // --strict: the tool itself fails on an unrecovered drill, a duplicate VIP, a stack
    // that does not come back, or a node failure without fencing.
    for drill in ["standby", "service-kill", "power-cut", "kill-link-up"] {
        assert!(
            r.stdout
                .contains(&format!("drill {drill} (rustha, azure) ...")),
            "{}",
            r.stdout
        );
    }
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("| power-cut | rustha | yes"), "{report}");
    assert!(out.path().join("kill-link-up-rustha.svg").exists());

    let r = lab.cmd(&["down"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        !r.stdout.contains("killed leftovers"),
        "the drills left processes behind: {}",
        r.stdout
    );
    assert!(
        lab.namespaces().is_empty(),
        "namespaces left: {:?}",
        lab.namespaces()
    );
}
