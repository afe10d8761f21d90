//! `rustha migrate` against CIBs built with the real pcs (`pcs -f FILE resource create
//! ... ocf:heartbeat:...`): groups, clones, a promotable clone, a bundle, a Cluster-IP
//! clone rustha refuses, a resource of an agent rustha does not have. The live cluster
//! case (`--apply` on a running cluster) is in `tests/cluster.rs`.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// A CIB file with the test's resources, written by the host's pcs.
fn cib(dir: &Path) -> std::path::PathBuf {
    let f = dir.join("cib.xml");
    cibs::build(&f, &cibs::on_host);
    f
}

fn migrate(args: &[&str]) -> Run {
    out(Command::new(bin()).arg("migrate").args(args))
}

/// `id -> (verdict, detail)` from `--porcelain`.
fn porcelain(r: &Run) -> std::collections::BTreeMap<String, (String, String)> {
    r.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{l:?}");
            (f[0].to_string(), (f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

#[test]
fn reports_every_heartbeat_resource_with_a_verdict() {
    require_tool("pcs");
    require_tool("cibadmin");
    let dir = TempDir::new("migrate");
    let f = cib(dir.path());
    let fs = f.to_str().unwrap();
    let r = migrate(&["--cib", fs, "--porcelain"]);
    assert_eq!(
        r.code, 3,
        "some are not switchable: {}{}",
        r.stdout, r.stderr
    );
    let v = porcelain(&r);
    let verdict = |id: &str| v.get(id).map(|x| x.0.as_str()).unwrap_or("missing");
    let detail = |id: &str| v.get(id).map(|x| x.1.clone()).unwrap_or_default();
    assert_eq!(verdict("vip"), "switchable", "{}", r.stdout);
    assert_eq!(verdict("web"), "switchable-with-differences");
    assert!(
        detail("web").contains("testclient: no effect"),
        "{}",
        detail("web")
    );
    assert_eq!(verdict("cip"), "not-switchable");
    assert!(
        detail("cip").contains("clusterip_hash"),
        "{}",
        detail("cip")
    );
    assert_eq!(verdict("fs"), "switchable-with-differences");
    assert!(detail("fs").contains("UUID="), "{}", detail("fs"));
    assert_eq!(verdict("db"), "not-switchable");
    assert!(detail("db").contains("promotable"), "{}", detail("db"));
    assert_eq!(verdict("db2"), "switchable-with-differences");
    assert!(detail("db2").contains("replication_user: no effect"));
    assert_eq!(verdict("lb"), "switchable", "a clone of azure-lb is fine");
    assert_eq!(verdict("bad"), "not-switchable");
    assert!(detail("bad").contains("parameter ip"), "{}", detail("bad"));
    assert_eq!(verdict("inb"), "switchable-with-differences");
    assert!(detail("inb").contains("bundle"), "{}", detail("inb"));
    assert!(!v.contains_key("app"), "Dummy is no agent of rustha's");
    assert!(!r.stdout.contains("s3cret-pw"), "a value never appears");

    // The human report says the same, and names what it leaves alone.
    let h = migrate(&["--cib", fs]);
    assert_eq!(h.code, 3);
    assert!(h
        .stdout
        .contains("vip  ocf:heartbeat:IPaddr2  in group g1\n  switchable as is"));
    assert!(h
        .stdout
        .contains("cip  ocf:heartbeat:IPaddr2  in clone cip-clone\n  NOT switchable"));
    assert!(
        h.stdout
            .contains("not concerned: app (ocf:heartbeat:Dummy)"),
        "{}",
        h.stdout
    );
    assert!(h.stdout.contains("what changes for every IPaddr2 resource"));

    // Only switchable ones chosen: 0.
    let only = migrate(&["--cib", fs, "--only", "vip,web,lb", "--porcelain"]);
    assert_eq!(only.code, 0, "{}", only.stderr);
    assert_eq!(porcelain(&only).len(), 3);
    assert_eq!(migrate(&["--cib", fs, "--only", "nope"]).code, 1);
}

#[test]
fn apply_on_a_file_swaps_the_provider_of_the_switchable_ones_only() {
    require_tool("pcs");
    require_tool("crm_simulate");
    let dir = TempDir::new("migrate-apply");
    let f = cib(dir.path());
    let before = std::fs::read_to_string(&f).unwrap();
    let fs = f.to_str().unwrap();

    // --pcs: the commands, run against a copy, make the same change as --apply.
    let p = migrate(&["--cib", fs, "--pcs"]);
    assert_eq!(p.code, 3);
    let copy = dir.path().join("rustha-migrate.after.xml");
    std::fs::write(&copy, &before).unwrap();
    let mut modified = 0;
    for l in p.stdout.lines() {
        if let Some(xml) = l
            .strip_prefix("CIB_file=rustha-migrate.after.xml cibadmin --modify --xml-text '")
            .and_then(|x| x.strip_suffix('\''))
        {
            let r = out(Command::new("cibadmin").env("CIB_file", &copy).args([
                "--modify",
                "--xml-text",
                xml,
            ]));
            assert_eq!(r.code, 0, "{xml}: {}", r.stderr);
            modified += 1;
        }
    }
    assert!(p
        .stdout
        .contains("pcs cluster cib-push rustha-migrate.after.xml diff-against="));

    let r = migrate(&["--cib", fs, "--apply"]);
    assert_eq!(r.code, 3, "applied, but not all: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("dry run (crm_simulate --simulate of the changed CIB): no action"),
        "a CIB without nodes runs nothing: {}",
        r.stdout
    );
    let after = std::fs::read_to_string(&f).unwrap();
    let provider = |xml: &str, id: &str| {
        let re = regex_lite::Regex::new(&format!(r#"<primitive id="{id}"[^>]*>"#)).unwrap();
        let tag = re
            .find(xml)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        regex_lite::Regex::new(r#"provider="([^"]*)""#)
            .unwrap()
            .captures(&tag)
            .map(|c| c[1].to_string())
            .unwrap_or_default()
    };
    let switched = ["vip", "web", "fs", "db2", "lb", "inb"];
    for id in switched {
        assert_eq!(provider(&after, id), "rustha", "{id}");
        assert_eq!(
            provider(&std::fs::read_to_string(&copy).unwrap(), id),
            "rustha"
        );
    }
    for id in ["cip", "db", "bad", "app"] {
        assert_eq!(provider(&after, id), "heartbeat", "{id} is left alone");
    }
    assert_eq!(modified, switched.len());
    // Nothing else changed: the same primitives with the same parameters and order.
    let strip = |x: &str| {
        x.replace(r#"provider="rustha""#, r#"provider="heartbeat""#)
            .lines()
            .filter(|l| !l.contains("<cib "))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&after), strip(&before));
    // Again: nothing left to do but the ones it cannot switch.
    let again = migrate(&["--cib", fs, "--porcelain"]);
    assert_eq!(porcelain(&again).len(), 3, "cip, db, bad: {}", again.stdout);
}

#[test]
fn without_a_cluster_or_with_bad_input_it_says_so() {
    require_tool("cibadmin");
    require_tool("unshare");
    // A network namespace of its own: no cluster's IPC socket can be reached.
    let r = out(Command::new("unshare")
        .args(["-n"])
        .arg(bin())
        .arg("migrate"));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot read the cluster's CIB") && r.stderr.contains("--cib FILE"),
        "{}",
        r.stderr
    );
    let dir = TempDir::new("migrate-bad");
    let junk = dir.path().join("junk.xml");
    for (text, want) in [
        ("<cib><configuration>", "not closed"),
        ("not xml", "not one document element"),
        ("<cib/>", "configuration/resources"),
    ] {
        std::fs::write(&junk, text).unwrap();
        let r = migrate(&["--cib", junk.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{text}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{text}: {}", r.stderr);
    }
    let r = migrate(&["--cib", "/nonexistent/cib.xml"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/cib.xml"), "{}", r.stderr);
    assert_eq!(migrate(&["--bogus"]).code, 2);
    assert_eq!(migrate(&["--apply", "--pcs"]).code, 2);
    let h = migrate(&["--help"]);
    assert_eq!(h.code, 0);
    assert!(h.stdout.contains("Exit codes"), "{}", h.stdout);
}
