//! Our agents judged by the real Pacemaker tools: ocf-tester, crm_resource, pcs, crmsh.
//! These go through `/usr/lib/ocf/resource.d/rustha/<agent>`, which the tests point at
//! the binary under test.

mod common;

use common::*;
use std::process::Command;

#[test]
fn ocf_tester_passes_every_agent_in_a_private_netns() {
    private_netns();
    require_tool("ocf-tester");
    let dir = TempDir::new("ocft");
    world_readable(dir.path());
    let state = TempDir::new("ocft-state");
    for agent in agents() {
        let link = agent_link(dir.path(), &agent);
        let r = ocf_tester(&agent, &link, Some(state.path()));
        println!("{}", r.stdout);
        assert_eq!(r.code, 0, "ocf-tester {agent}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("passed all tests"), "{}", r.stdout);
        // ocf-tester ends with a stop + monitor: nothing may be left.
        assert!(
            std::fs::read_dir(state.path().join(&agent))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
        );
    }
}

#[test]
fn crm_resource_validate_good_and_bad() {
    require_tool("crm_resource");
    install_provider_links();
    let validate = |opts: &[&str]| {
        let mut c = Command::new("crm_resource");
        c.args([
            "--validate",
            "--class",
            "ocf",
            "--provider",
            "rustha",
            "--agent",
            "azure-lb",
        ]);
        for o in opts {
            c.args(["--option", o]);
        }
        out(&mut c)
    };
    let r = validate(&["port=61010"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("returned 0 (ok)"), "{}", r.stdout);
    let r = validate(&["port=notaport"]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    // crm_resource shows the exit reason Pacemaker parsed from our stderr.
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("not configured: parameter port: 'notaport' is not a valid port"),
        "{all}"
    );
    let r = validate(&["port=61010", "listen=sideways"]);
    assert_eq!(r.code, 6);
    let r = validate(&["bind_address=::1", "listen=ipv4only"]);
    assert_eq!(r.code, 6);
}

#[test]
fn crm_resource_show_metadata_is_ours() {
    require_tool("crm_resource");
    install_provider_links();
    for agent in agents() {
        let r =
            out(Command::new("crm_resource")
                .args(["--show-metadata", &format!("ocf:rustha:{agent}")]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            r.stdout.trim(),
            rustha::registry::find(&agent).unwrap().metadata().trim()
        );
    }
}

#[test]
fn pcs_resource_describe() {
    require_tool("pcs");
    install_provider_links();
    for agent in agents() {
        let r =
            out(Command::new("pcs").args(["resource", "describe", &format!("ocf:rustha:{agent}")]));
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        for p in rustha::registry::find(&agent).unwrap().params() {
            assert!(
                r.stdout.contains(p.name),
                "pcs describe lacks {}: {}",
                p.name,
                r.stdout
            );
        }
    }
    let r = out(Command::new("pcs").args(["resource", "describe", "ocf:rustha:azure-lb"]));
    assert!(
        r.stdout
            .contains("Answers Azure Load Balancer health probes"),
        "{}",
        r.stdout
    );
    // The operations pcs would create by default: exactly one monitor (depth 0), at 10 s.
    let ops = r
        .stdout
        .split("Default operations:")
        .nth(1)
        .unwrap_or_default();
    assert_eq!(ops.matches("monitor:").count(), 1, "{}", r.stdout);
    assert!(ops.contains("interval=10s"), "{}", r.stdout);
}

#[test]
fn crmsh_ra_info() {
    require_tool("crm");
    install_provider_links();
    let r = out(Command::new("crm").args(["ra", "info", "ocf:rustha:azure-lb"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("port") && r.stdout.contains("bind_address"),
        "{}",
        r.stdout
    );
}

/// crm_resource --force-* against a CIB file: the executor's path, without daemons.
#[test]
fn crm_resource_force_actions_with_a_cib_file() {
    private_netns();
    require_tool("cibadmin");
    install_provider_links();
    let dir = TempDir::new("cib");
    let cib = dir.path().join("cib.xml");
    let empty = out(Command::new("cibadmin").arg("--empty"));
    assert_eq!(empty.code, 0);
    std::fs::write(&cib, empty.stdout).unwrap();
    let id = instance("cib");
    let xml = format!(
        r#"<primitive id="{id}" class="ocf" provider="rustha" type="azure-lb"><instance_attributes id="{id}-ia"><nvpair id="{id}-port" name="port" value="61011"/></instance_attributes></primitive>"#
    );
    let r = out(Command::new("cibadmin").env("CIB_file", &cib).args([
        "-C",
        "-o",
        "resources",
        "-X",
        &xml,
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let force = |what: &str| {
        out(Command::new("crm_resource").env("CIB_file", &cib).args([
            &format!("--force-{what}"),
            "-r",
            &id,
        ]))
    };
    for (what, want) in [
        ("check", 7),
        ("start", 0),
        ("check", 0),
        ("start", 0),
        ("stop", 0),
        ("check", 7),
        ("stop", 0),
    ] {
        let r = force(what);
        assert_eq!(r.code, want, "--force-{what}: {}{}", r.stdout, r.stderr);
    }
    assert!(!std::path::Path::new("/run/rustha/azure-lb")
        .join(&id)
        .exists());
}
