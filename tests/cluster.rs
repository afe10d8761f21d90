//! A real single-node Pacemaker + Corosync cluster, brought up in its own namespaces by
//! `tests/cluster/cluster.sh`: create an azure-lb resource with pcs, SIGKILL its
//! responder and watch Pacemaker's monitor notice and recover it, then delete it and
//! check nothing is left. The cluster is torn down by pid, whatever happens.

mod common;

use common::services;
use common::*;
use ocf::Deadline;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

struct Cluster {
    script: PathBuf,
    dir: String,
    ns: String,
    stack: Stack,
}

/// Which Pacemaker runs the cluster: the host's (Debian 12: Pacemaker 2.1, pcs 0.11) or
/// the one in the Debian 13 root of `tests/trixie/root.sh` (Pacemaker 3.0, pcs 0.12),
/// with the same rustha binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stack {
    Host,
    Trixie,
}

/// One cluster at a time: with two stacks started at once, one did not come up within
/// 90 s (seen here; likely shared host state such as libqb's files in /dev/shm), so the
/// tests in this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    fn up(tag: &str) -> Cluster {
        Cluster::up_on(tag, Stack::Host)
    }
    fn up_on(tag: &str, stack: Stack) -> Cluster {
        if stack == Stack::Trixie {
            trixie::ensure();
        }
        let tag = match stack {
            Stack::Host => tag.to_string(),
            Stack::Trixie => format!("{tag}3"),
        };
        let c = Cluster {
            script: repo().join("tests/cluster/cluster.sh"),
            dir: format!("/var/tmp/rustha-cluster-test-{tag}-{}", std::process::id()),
            ns: format!("rustha-ct{tag}{}", std::process::id()),
            stack,
        };
        let r = c.cmd(&["up"]);
        assert_eq!(r.code, 0, "cluster up failed:\n{}\n{}", r.stdout, r.stderr);
        c
    }
    fn cmd(&self, args: &[&str]) -> Run {
        let mut c = match self.stack {
            Stack::Host => Command::new(&self.script),
            Stack::Trixie => {
                let mut c = Command::new(repo().join("tests/trixie/root.sh"));
                c.arg("run")
                    .arg(&self.script)
                    .env("RUSTHA_BIN", bin())
                    .env("RUSTHA_REPO", repo());
                c
            }
        };
        out(c
            .args(args)
            .env("RUSTHA_CLUSTER_DIR", &self.dir)
            .env("RUSTHA_CLUSTER_NS", &self.ns))
    }
    /// The process holding the node's namespaces (its network namespace is the node's:
    /// a name in /run/netns made inside the trixie root is not mounted on the host).
    fn holder(&self) -> i32 {
        std::fs::read_to_string(format!("{}/holder.pid", self.dir))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .expect("the cluster's holder.pid")
    }
    /// `ip ARGS` in the node's network namespace, with the host's ip.
    fn ip(&self, args: &[&str]) {
        let r = out(Command::new("nsenter")
            .arg("-t")
            .arg(self.holder().to_string())
            .args(["-n", "ip"])
            .args(args));
        assert_eq!(r.code, 0, "ip {args:?} in the node: {}", r.stderr);
    }
    /// The rustha binary as commands in the node name it.
    fn rustha(&self) -> String {
        match self.stack {
            Stack::Host => bin().display().to_string(),
            Stack::Trixie => "/usr/sbin/rustha".into(),
        }
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

fn require_cluster_tools() {
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
}

#[test]
fn pacemaker_runs_and_recovers_azure_lb() {
    require_cluster_tools();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::up("lb");

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
    assert!(
        pids_with_argv0_prefix(&rustha::agents::azure_lb::marker("lb"))
            .iter()
            .all(|&p| p != first && p != second)
    );
}

/// An observer namespace wired to the cluster node by a veth pair (vip0 in the node,
/// obs0 here), TEST-NET addresses only; removed on drop (after killing what runs in it).
struct Wire {
    obs: String,
}

impl Wire {
    fn new(c: &Cluster) -> Wire {
        let w = Wire {
            obs: format!("{}-obs", c.ns),
        };
        ip(&["netns", "add", &w.obs]);
        ip(&[
            "-n", &w.obs, "link", "add", "vip0", "type", "veth", "peer", "name", "obs0",
        ]);
        let holder = c.holder().to_string();
        ip(&["-n", &w.obs, "link", "set", "vip0", "netns", &holder]);
        c.ip(&["addr", "add", "192.0.2.1/24", "brd", "+", "dev", "vip0"]);
        c.ip(&["link", "set", "vip0", "up"]);
        ip(&[
            "-n",
            &w.obs,
            "addr",
            "add",
            "192.0.2.2/24",
            "brd",
            "+",
            "dev",
            "obs0",
        ]);
        ip(&["-n", &w.obs, "link", "set", "obs0", "up"]);
        ip(&["-n", &w.obs, "link", "set", "lo", "up"]);
        w
    }
    fn ping(&self, addr: &str) -> bool {
        ping_from(&self.obs, addr)
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        remove_netns(&self.obs);
    }
}

#[test]
fn pacemaker_runs_a_vip_and_azure_lb_group_and_recovers_the_vip() {
    vip_group(Stack::Host);
}

#[test]
fn pacemaker3_runs_a_vip_and_azure_lb_group_and_recovers_the_vip() {
    vip_group(Stack::Trixie);
}

fn vip_group(stack: Stack) {
    require_cluster_tools();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::up_on("vip", stack);
    let w = Wire::new(&c);
    let r = c.exec(&[
        "pcs",
        "resource",
        "create",
        "vip",
        "ocf:rustha:IPaddr2",
        "ip=192.0.2.10",
        "cidr_netmask=24",
        "op",
        "monitor",
        "interval=2s",
        "--group",
        "g",
    ]);
    assert_eq!(
        r.code, 0,
        "pcs resource create vip: {}{}",
        r.stdout, r.stderr
    );
    let r = c.exec(&[
        "pcs",
        "resource",
        "create",
        "lb",
        "ocf:rustha:azure-lb",
        "port=61001",
        "--group",
        "g",
    ]);
    assert_eq!(
        r.code, 0,
        "pcs resource create lb: {}{}",
        r.stdout, r.stderr
    );
    c.wait("vip and lb Started", 60, || {
        c.started("vip") && c.started("lb")
    });
    assert!(w.ping("192.0.2.10"), "the VIP does not answer the observer");
    let has_vip = || {
        c.exec(&["ip", "-o", "addr", "show", "dev", "vip0"])
            .stdout
            .contains("192.0.2.10/24")
    };
    assert!(has_vip());

    // The address deleted behind Pacemaker's back: the 2 s monitor says 7, and the
    // group is recovered (the VIP comes back).
    let r = c.exec(&["ip", "addr", "del", "192.0.2.10/24", "dev", "vip0"]);
    assert_eq!(r.code, 0);
    c.wait("the VIP failure recorded and recovered", 60, || {
        c.crm_mon().contains("vip_monitor_2000") && has_vip() && c.started("vip")
    });
    assert!(w.ping("192.0.2.10"), "no answer after recovery");

    let r = c.exec(&["pcs", "resource", "delete", "lb"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = c.exec(&["pcs", "resource", "delete", "vip"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    c.wait("the VIP removed", 60, || !has_vip());
    assert!(!w.ping("192.0.2.10"), "the VIP still answers after delete");
    drop(w);
}

/// `name=value` words for `pcs resource create` from a site's parameters.
fn pcs_params(site: &services::Site) -> Vec<String> {
    site.params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The pid an agent recorded inside the node.
fn recorded(c: &Cluster, agent: &str, id: &str) -> Option<i32> {
    c.exec(&["cat", &format!("/run/rustha/{agent}/{id}")])
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid=")?.parse().ok())
}

/// The stacks users run: nginx behind a VIP (bare metal), and mysql with lighttpd on
/// the same node (Azure). SIGKILL the nginx master (its workers stay and hold the
/// port) and mysqld; Pacemaker's monitors notice, and the recovery serves again.
#[test]
fn pacemaker_runs_nginx_behind_a_vip_and_mysql_with_lighttpd() {
    require_cluster_tools();
    require_tool("curl");
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let web = services::nginx_site_listen("cl-ngx", "8080");
    let www = services::lighttpd_site_port("cl-ltp", 8081);
    let db = services::mysql_site("cl-db");
    let c = Cluster::up("svc");
    let w = Wire::new(&c);
    let create = |args: Vec<String>| {
        let mut a = vec!["pcs".to_string(), "resource".into(), "create".into()];
        a.extend(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = c.exec(&a);
        assert_eq!(r.code, 0, "{a:?}: {}{}", r.stdout, r.stderr);
    };
    let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    create(words(&[
        "vip",
        "ocf:rustha:IPaddr2",
        "ip=192.0.2.10",
        "cidr_netmask=24",
        "--group",
        "web",
    ]));
    let mut a = words(&["ngx", "ocf:rustha:nginx"]);
    a.extend(pcs_params(&web));
    a.extend(words(&["op", "monitor", "interval=2s", "--group", "web"]));
    create(a);
    let mut a = words(&["db", "ocf:rustha:mysql"]);
    a.extend(pcs_params(&db));
    a.extend(words(&[
        "op",
        "monitor",
        "interval=2s",
        "op",
        "start",
        "timeout=120s",
    ]));
    create(a);
    let mut a = words(&["www", "ocf:rustha:lighttpd"]);
    a.extend(pcs_params(&www));
    a.extend(words(&["op", "monitor", "interval=2s"]));
    create(a);
    for args in [
        &[
            "pcs",
            "constraint",
            "colocation",
            "add",
            "www",
            "with",
            "db",
            "INFINITY",
        ][..],
        &["pcs", "constraint", "order", "db", "then", "www"][..],
    ] {
        let r = c.exec(args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }
    c.wait("all four Started", 120, || {
        ["vip", "ngx", "db", "www"].iter().all(|id| c.started(id))
    });
    let get = |url: &str| {
        let o = Command::new("ip")
            .args(["netns", "exec", &w.obs, "curl", "-s", "-m", "2", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        get("http://192.0.2.10:8080/"),
        services::PAGE,
        "nginx through the VIP"
    );
    let in_node = |url: &str| c.exec(&["curl", "-s", "-m", "2", url]).stdout;
    assert_eq!(
        in_node("http://127.0.0.1:8081/"),
        services::PAGE,
        "lighttpd"
    );
    let sock = db.path("run/mysqld.sock");
    let select1 = || {
        c.exec(&[
            "mariadb",
            "--no-defaults",
            &format!("--socket={}", sock.display()),
            "-u",
            "root",
            "-N",
            "-e",
            "SELECT 1",
        ])
        .stdout
        .trim()
            == "1"
    };
    assert!(select1(), "mysql answers");

    // nginx's master SIGKILLed: its workers keep the port; monitor says 1; recovery.
    let master = recorded(&c, "nginx", "ngx").expect("nginx record");
    let r = c.exec(&["kill", "-KILL", &master.to_string()]);
    assert_eq!(r.code, 0);
    c.wait("nginx recovered", 60, || {
        c.crm_mon().contains("ngx_monitor_2000")
            && c.started("ngx")
            && recorded(&c, "nginx", "ngx").is_some_and(|p| p != master)
    });
    assert_eq!(
        get("http://192.0.2.10:8080/"),
        services::PAGE,
        "served after recovery"
    );

    // mysqld SIGKILLed: monitor says 7; db restarts, and www (ordered after it) too.
    let mysqld = recorded(&c, "mysql", "db").expect("mysql record");
    let ltp = recorded(&c, "lighttpd", "www").expect("lighttpd record");
    assert_eq!(c.exec(&["kill", "-KILL", &mysqld.to_string()]).code, 0);
    c.wait("mysql and lighttpd recovered", 120, || {
        c.crm_mon().contains("db_monitor_2000")
            && c.started("db")
            && c.started("www")
            && recorded(&c, "mysql", "db").is_some_and(|p| p != mysqld)
            && recorded(&c, "lighttpd", "www").is_some_and(|p| p != ltp)
    });
    assert!(select1(), "mysql answers after recovery");
    assert_eq!(in_node("http://127.0.0.1:8081/"), services::PAGE);

    for id in ["www", "db", "ngx", "vip"] {
        let r = c.exec(&["pcs", "resource", "delete", id]);
        assert_eq!(r.code, 0, "delete {id}: {}{}", r.stdout, r.stderr);
    }
    c.wait("everything stopped", 120, || {
        let pids = Command::new("ip")
            .args(["netns", "pids", &c.ns])
            .output()
            .unwrap();
        let servers = String::from_utf8_lossy(&pids.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .filter(|&p| {
                rustha::procfs::exe(p).is_some_and(|e| {
                    [
                        "/usr/sbin/nginx",
                        "/usr/sbin/lighttpd",
                        "/usr/sbin/mariadbd",
                    ]
                    .iter()
                    .any(|s| e == std::path::Path::new(s))
                })
            })
            .count();
        servers == 0
    });
    assert!(
        get("http://192.0.2.10:8080/").is_empty(),
        "nothing answers after delete"
    );
    drop(w);
}

/// Each resource's `<id>_last_0` operation call-id, from the node's status section: a
/// restart gives a resource a new one.
fn last_calls(c: &Cluster) -> std::collections::BTreeMap<String, String> {
    let xml = c.exec(&["cibadmin", "--query", "--scope", "status"]).stdout;
    let re =
        regex_lite::Regex::new(r#"<lrm_rsc_op id="([^"]+)_last_0"[^>]*call-id="(\d+)""#).unwrap();
    re.captures_iter(&xml)
        .map(|m| (m[1].to_string(), m[2].to_string()))
        .collect()
}

/// An existing cluster of heartbeat resources switched with `rustha migrate --apply`:
/// the dry run announces what restarts, `--apply` refuses while it would restart a
/// resource it does not switch, and with `--allow-dependents` exactly what it announced
/// restarts; afterwards the switched ones run as `ocf:rustha:` and the VIP answers.
#[test]
fn rustha_migrate_switches_a_live_cluster() {
    migrate_live(Stack::Host);
}

#[test]
fn rustha_migrate_switches_a_live_pacemaker3_cluster() {
    migrate_live(Stack::Trixie);
}

fn migrate_live(stack: Stack) {
    require_cluster_tools();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::up_on("mig", stack);
    let w = Wire::new(&c);
    // resource-agents 4.16 (Debian 13) cannot start ocf:heartbeat:azure-lb: its
    // `${OCF_RESKEY_listen,,}` is bash-only in a /bin/sh (dash) script, "Bad
    // substitution", exit 2. On Pacemaker 3.0 the group is the VIP alone, then.
    let with_lb = stack == Stack::Host;
    let mut create = vec!["vip ocf:heartbeat:IPaddr2 ip=192.0.2.10 cidr_netmask=24 --group g"];
    if with_lb {
        create.push("lb ocf:heartbeat:azure-lb port=61002 --group g");
    }
    create.extend([
        "tail ocf:heartbeat:Dummy --group g",
        "other ocf:heartbeat:Dummy",
    ]);
    for args in create {
        let mut a = vec!["pcs", "resource", "create"];
        a.extend(args.split(' '));
        let r = c.exec(&a);
        assert_eq!(
            r.code, 0,
            "pcs resource create {args}: {}{}",
            r.stdout, r.stderr
        );
    }
    let ids: Vec<&str> = ["vip", "lb", "tail", "other"]
        .into_iter()
        .filter(|id| with_lb || *id != "lb")
        .collect();
    c.wait("the heartbeat resources Started", 60, || {
        ids.iter().all(|id| c.started(id))
    });
    assert_eq!(c.cmd(&["wait-idle", "60"]).code, 0);
    assert!(w.ping("192.0.2.10"), "the heartbeat VIP does not answer");
    let before = last_calls(&c);
    let migrate = |extra: &[&str]| {
        let bin = c.rustha();
        let mut a = vec![bin.as_str(), "migrate", "--apply"];
        a.extend_from_slice(extra);
        c.exec(&a)
    };

    let refused = migrate(&[]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stdout
            .contains("also restarts resources that are not switched: tail"),
        "{}",
        refused.stdout
    );
    assert_eq!(last_calls(&c), before, "a refused --apply changes nothing");

    let r = migrate(&["--allow-dependents"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("dry run (crm_simulate --simulate of the changed CIB): "))
        .unwrap_or_else(|| panic!("no dry-run line: {}", r.stdout));
    let announced: std::collections::BTreeSet<String> = line
        .split(", ")
        .filter_map(|a| a.split_once(' ').map(|(_, id)| id.to_string()))
        .collect();
    assert!(
        announced.contains("vip") && announced.contains("tail"),
        "{line}"
    );
    assert_eq!(announced.contains("lb"), with_lb, "{line}");
    assert!(!announced.contains("other"), "{line}");
    let switched = if with_lb { "vip, lb" } else { "vip" };
    assert!(
        r.stdout
            .contains(&format!("switched to ocf:rustha: {switched} ")),
        "{}",
        r.stdout
    );

    c.wait("vip and lb Started as ocf:rustha:", 60, || {
        let xml = c.crm_mon();
        xml.contains("vip\" resource_agent=\"ocf:rustha:IPaddr2")
            && (!with_lb || xml.contains("lb\" resource_agent=\"ocf:rustha:azure-lb"))
            && ids.iter().all(|id| c.started(id))
    });
    assert_eq!(c.cmd(&["wait-idle", "60"]).code, 0);
    let after = last_calls(&c);
    let restarted: std::collections::BTreeSet<String> = ids
        .iter()
        .filter(|id| before.get(**id) != after.get(**id))
        .map(|id| id.to_string())
        .collect();
    assert_eq!(restarted, announced, "restarted: {after:?} vs {before:?}");
    assert!(
        !with_lb || recorded(&c, "azure-lb", "lb").is_some(),
        "rustha's lb has its record"
    );
    assert!(
        w.ping("192.0.2.10"),
        "the VIP does not answer after the switch"
    );

    // Nothing left to switch.
    let again = migrate(&[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again
        .stdout
        .contains("no ocf:heartbeat: resource of an agent rustha provides"));
    for id in ids {
        let r = c.exec(&["pcs", "resource", "delete", id]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
    c.wait("the VIP removed", 60, || {
        !c.exec(&["ip", "-o", "addr", "show", "dev", "vip0"])
            .stdout
            .contains("192.0.2.10/")
    });
    drop(w);
}
