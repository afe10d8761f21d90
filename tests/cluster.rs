//! A real single-node Pacemaker + Corosync cluster, brought up in its own namespaces by
//! `tests/cluster/cluster.sh`: create an azure-lb resource with pcs, SIGKILL its
//! responder and watch Pacemaker's monitor notice and recover it, then delete it and
//! check nothing is left. The cluster is torn down by pid, whatever happens.

mod common;

use common::*;
use ocf::Deadline;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

struct Cluster {
    script: PathBuf,
    dir: String,
    ns: String,
}

impl Cluster {
    fn up() -> Cluster {
        let c = Cluster {
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/cluster.sh"),
            dir: format!("/var/tmp/rustha-cluster-test-{}", std::process::id()),
            ns: format!("rustha-ct{}", std::process::id()),
        };
        let r = c.cmd(&["up"]);
        assert_eq!(r.code, 0, "cluster up failed:\n{}\n{}", r.stdout, r.stderr);
        c
    }
    fn cmd(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new(&self.script)
                .args(args)
                .env("RUSTHA_CLUSTER_DIR", &self.dir)
                .env("RUSTHA_CLUSTER_NS", &self.ns)
                .output()
                .unwrap(),
        )
    }
    fn exec(&self, args: &[&str]) -> Run {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        self.cmd(&a)
    }
    /// The responder pid from the agent's state record inside the node.
    fn responder(&self, id: &str) -> Option<i32> {
        let r = self.exec(&["cat", &format!("/run/rustha/azure-lb/{id}")]);
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("pid=")?.parse().ok())
    }
    fn crm_mon(&self) -> String {
        self.exec(&["crm_mon", "-1", "--output-as=xml"]).stdout
    }
    fn started(&self, id: &str) -> bool {
        let xml = self.crm_mon();
        xml.lines().any(|l| {
            l.contains(&format!("<resource id=\"{id}\""))
                && l.contains("role=\"Started\"")
                && l.contains("failed=\"false\"")
        })
    }
    fn wait(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let ok = Deadline::after(Duration::from_secs(secs))
            .poll(Duration::from_millis(250), || f().then_some(()));
        assert!(
            ok.is_some(),
            "timed out waiting for {what}; crm_mon:\n{}",
            self.crm_mon()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let r = self.cmd(&["down"]);
        if r.code != 0 {
            eprintln!("cluster down: {}\n{}", r.stdout, r.stderr);
        } else if !std::thread::panicking() {
            // Keep the logs of a failed run; otherwise leave nothing behind.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn pacemaker_runs_and_recovers_azure_lb() {
    require_root();
    for t in [
        "corosync",
        "pacemakerd",
        "pcs",
        "crm_mon",
        "tini",
        "nsenter",
        "unshare",
    ] {
        require_tool(t);
    }
    install_provider_links();
    let c = Cluster::up();

    let r = c.exec(&[
        "pcs",
        "resource",
        "create",
        "lb",
        "ocf:rustha:azure-lb",
        "port=61000",
        "op",
        "monitor",
        "interval=2s",
    ]);
    assert_eq!(r.code, 0, "pcs resource create: {}{}", r.stdout, r.stderr);
    c.wait("lb Started", 60, || c.started("lb"));
    let first = c.responder("lb").expect("no state record for lb");
    assert!(alive(first));
    let probe = || {
        c.exec(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/61000"])
            .code
            == 0
    };
    assert!(probe(), "nothing answers on port 61000 inside the node");

    // Failure injection: the responder dies; the 2 s monitor must notice and restart it.
    kill(first);
    c.wait("a new responder", 60, || {
        c.responder("lb").is_some_and(|p| p != first && alive(p)) && c.started("lb")
    });
    let second = c.responder("lb").unwrap();
    assert!(probe(), "no answer after recovery");
    let mon = c.crm_mon();
    assert!(
        mon.contains("<failure ") && mon.contains("lb_monitor_2000"),
        "the failed monitor is not recorded:\n{mon}"
    );

    let r = c.exec(&["pcs", "resource", "delete", "lb"]);
    assert_eq!(r.code, 0, "pcs resource delete: {}{}", r.stdout, r.stderr);
    c.wait("lb gone", 60, || {
        !alive(second) && c.responder("lb").is_none()
    });
    assert!(!probe(), "something still answers after delete");
    assert!(pids_with_argv0_prefix("rustha azure-lb responder lb")
        .iter()
        .all(|&p| p != first && p != second));
}
