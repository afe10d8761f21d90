//! The drill lab (drill/drill.py) on a real 2-node cluster: every stack's quick drill set
//! (rustha's agents), one lab for all of them. Fails on any drill the tool itself fails
//! (`--strict`: not recovered, a duplicate VIP, a stack that does not come back, a node
//! lost without fencing, a probe that never worked before the injection), and on a run
//! that leaves processes or namespaces behind. Plus the planning and scoring rules
//! without a lab: a drill that does not apply is refused before anything is touched, and
//! a probe that never answered during the baseline fails its drill.

mod common;

use common::*;
use std::process::Command;
use std::time::Instant;

struct Lab {
    dir: String,
    prefix: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab {
            dir: format!("/var/tmp/rustha-drill-test-{tag}-{}", std::process::id()),
            prefix: format!("rd{tag}{}", std::process::id() % 100000),
        }
    }
    fn cmd(&self, args: &[&str]) -> Run {
        let script = repo().join("drill/drill.py");
        out(Command::new("python3")
            .arg(script)
            .args(args)
            .env("RUSTHA_DRILL_DIR", &self.dir)
            .env("RUSTHA_DRILL_PREFIX", &self.prefix))
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
        if std::path::Path::new(&self.dir).exists() {
            let r = self.cmd(&["down"]);
            if r.code != 0 {
                eprintln!("drill down: {}{}", r.stdout, r.stderr);
            }
        }
        let _ = std::fs::remove_dir_all(format!("{}.prev", self.dir));
    }
}

/// The scoring and planning rules on synthetic samples (drill.py selftest), and the
/// refusal from the command line: refused before the lab is looked at, so nothing is made.
#[test]
fn drill_plan_refuses_what_does_not_apply_and_scoring_needs_a_proven_probe() {
    let lab = Lab::new("p");
    let r = lab.cmd(&["selftest"]);
    assert_eq!(r.code, 0, "drill.py selftest: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("Ran ") && r.stderr.contains("\nOK"),
        "{}",
        r.stderr
    );
    for name in [
        "test_a_probe_that_never_worked_fails_the_drill_and_reports_no_number",
        "test_refuses_what_does_not_apply_naming_what_does",
        "test_http_check_accepts_1_0_and_1_1_and_wants_the_page",
    ] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{name} (")) && l.ends_with("... ok")),
            "{name} did not pass: {}",
            r.stderr
        );
    }

    let out = TempDir::new("drill-refused");
    let out_dir = out.path().join("results");
    for (stack, drill, applies) in [
        ("db", "responder-kill", "service-kill"),
        ("classroom", "responder-kill", "vip-deleted"),
        ("aws", "service-kill", "vip-deleted"),
    ] {
        let r = lab.cmd(&[
            "run",
            "--stack",
            stack,
            "--out",
            out_dir.to_str().unwrap(),
            "standby",
            drill,
        ]);
        assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{drill} does not apply to the {stack} stack")),
            "{}",
            r.stderr
        );
        let listed = r.stderr.split("the drills that do: ").nth(1).unwrap_or("");
        assert!(listed.contains(applies), "{}", r.stderr);
        assert!(!listed.contains(drill), "{}", r.stderr);
        // Refused before anything else: not "the lab is not up", nothing created.
        assert!(!r.stderr.contains("not up"), "{}", r.stderr);
        assert!(!std::path::Path::new(&lab.dir).exists());
        assert!(!out_dir.exists());
        assert!(lab.namespaces().is_empty());
    }
    // Every stack's default and quick sets pass the same check.
    for stack in ["azure", "web", "db", "classroom", "aws"] {
        for quick in [false, true] {
            let mut args = vec!["plan", "--nodes", "2", "--stack", stack];
            if quick {
                args.push("--quick");
            }
            let r = lab.cmd(&args);
            assert_eq!(r.code, 0, "{stack}: {}{}", r.stdout, r.stderr);
            assert!(r.stdout.starts_with(&format!("{stack}: ")), "{}", r.stdout);
        }
    }
}

/// Processes started by the test, killed (by handle) and reaped when it ends.
struct Decoys(Vec<(String, std::process::Child)>);

impl Drop for Decoys {
    fn drop(&mut self) {
        for (_, c) in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn every_stack_recovers_from_its_quick_drills_without_duplicate_vips_or_leftovers() {
    require_root();
    for t in [
        "corosync",
        "pacemakerd",
        "pcs",
        "tini",
        "python3",
        "nginx",
        "lighttpd",
        "mariadbd",
    ] {
        require_tool(t);
    }
    // The aws stack needs the aws-eni agent (the default `aws` feature) and moto.
    let aws = cfg!(feature = "aws");
    if aws {
        require_tool("moto_server");
    }
    let lab = Lab::new("t");
    let bin = bin();
    let mut up = vec!["up", "--nodes", "2", "--rustha", bin.to_str().unwrap()];
    if aws {
        up.push("--aws");
    }
    let t = Instant::now();
    let r = lab.cmd(&up);
    assert_eq!(r.code, 0, "drill up: {}{}", r.stdout, r.stderr);
    println!("lab up in {:.1} s", t.elapsed().as_secs_f64());

    // With the lab up, a drill that does not apply is still refused before anything is
    // created (no results folder, no resource in the cluster).
    let out = TempDir::new("drill-out");
    let refused = out.path().join("refused");
    let r = lab.cmd(&[
        "run",
        "--stack",
        "web",
        "--out",
        refused.to_str().unwrap(),
        "responder-kill",
    ]);
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("responder-kill does not apply to the web stack"),
        "{}",
        r.stderr
    );
    assert!(!refused.exists());
    let r = lab.cmd(&["node", "1", "crm_resource", "--list-raw"]);
    assert!(
        !r.stdout.contains("vip"),
        "a refused run created resources: {}",
        r.stdout
    );

    // Processes elsewhere on the machine that look like the stacks' services, older than
    // the lab's: a drill must kill the one in its node (the old service-kill took the
    // oldest `pgrep -f 'nginx: master'` host-wide, and killed another nginx).
    let mut decoys = Decoys(
        [
            "nginx: master process /usr/sbin/nginx -c decoy.conf".to_string(),
            "/usr/sbin/mariadbd --decoy".to_string(),
            rustha::agents::azure_lb::marker("decoy"),
        ]
        .into_iter()
        .map(|title| {
            use std::os::unix::process::CommandExt;
            let child = Command::new("sleep")
                .arg0(&title)
                .arg("3600")
                .spawn()
                .expect("sleep");
            (title, child)
        })
        .collect(),
    );

    let mut stacks = vec!["azure", "web", "db", "classroom"];
    if aws {
        stacks.push("aws");
    }
    let mut failed = Vec::new();
    for stack in &stacks {
        let dir = out.path().join(stack);
        let t = Instant::now();
        let r = lab.cmd(&[
            "run",
            "--stack",
            stack,
            "--providers",
            "rustha",
            "--quick",
            "--strict",
            "--out",
            dir.to_str().unwrap(),
        ]);
        println!(
            "== {stack}: {:.1} s, rc {}\n{}{}",
            t.elapsed().as_secs_f64(),
            r.code,
            r.stdout,
            r.stderr
        );
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap_or_default();
        let ran = r.code == 0
            && report.contains("| rustha | ok |")
            && !report.contains("**FAIL**")
            && !report.contains("**unproven**");
        if !ran {
            failed.push(format!(
                "{stack}: rc {}\n{}{}{report}",
                r.code, r.stdout, r.stderr
            ));
        }
    }
    let mut killed = Vec::new();
    for (title, child) in decoys.0.iter_mut() {
        if child.try_wait().unwrap().is_some() {
            killed.push(title.clone());
        }
    }
    drop(decoys);
    assert!(
        failed.is_empty(),
        "stacks that failed:\n{}",
        failed.join("\n")
    );
    assert!(
        killed.is_empty(),
        "drills killed processes outside the lab: {killed:?}"
    );

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
