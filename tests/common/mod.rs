//! Shared helpers for the integration tests. These tests use the real thing: they need
//! root (network namespaces, /usr/lib/ocf) and the packages `.ci/run` installs.
#![allow(dead_code)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod cibs;
pub mod diff;
pub mod disk;
pub mod lab;
pub mod services;
pub mod trixie;
pub mod util;

pub use util::*;

use rustha::procfs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const PROVIDER_DIR: &str = "/usr/lib/ocf/resource.d/rustha";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rustha"))
}

/// The test-only daemon `examples/test-sleeper.rs` (built by `cargo test` beside the
/// binary; it is not part of the installed binary).
pub fn sleeper_bin() -> PathBuf {
    let bin = bin();
    let p = bin
        .parent()
        .map(|d| d.join("examples/test-sleeper"))
        .unwrap_or_default();
    assert!(
        p.is_file(),
        "{} is missing: `cargo test` builds it (examples/test-sleeper.rs)",
        p.display()
    );
    p
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (network namespaces, /usr/lib/ocf): run `make test` as root"
    );
}

pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: `.ci/run` (or the README's apt-get line) installs it"
    );
}

/// Put this test thread (and every process it starts) into a new network namespace
/// with only `lo`, up. The namespace goes away with the thread and its processes.
pub fn private_netns() {
    require_root();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(st.success(), "ip link set lo up failed");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under /tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "rustha-test-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique instance name for a test.
pub fn instance(tag: &str) -> String {
    format!(
        "t{}-{tag}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// `<dir>/<agent>` -> the binary under test (how Pacemaker calls it).
pub fn agent_link(dir: &Path, agent: &str) -> PathBuf {
    let link = dir.join(agent);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    link
}

/// Point `/usr/lib/ocf/resource.d/rustha/<agent>` at the binary under test (atomically),
/// so crm_resource, pcs and Pacemaker find `ocf:rustha:<agent>`.
/// Tests of one binary call this from parallel threads: one at a time, each with its own
/// temporary name, so no thread renames a link another thread is still creating.
pub fn install_provider_links() {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    require_root();
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(PROVIDER_DIR).unwrap();
    for a in agents() {
        let link = Path::new(PROVIDER_DIR).join(&a);
        if std::fs::read_link(&link).ok().as_deref() == Some(bin().as_path()) {
            continue;
        }
        let tmp = Path::new(PROVIDER_DIR).join(format!(".{a}.{}", instance("link")));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(bin(), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    }
}

/// The agents the binary says it has (`rustha list`).
pub fn agents() -> Vec<String> {
    let out = Command::new(bin()).arg("list").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The result of running an agent action.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// The exit reason (text after the last `ocf-exit-reason:`), as Pacemaker parses it.
    pub fn reason(&self) -> Option<String> {
        let i = self.stderr.rfind("ocf-exit-reason:")?;
        Some(
            self.stderr[i + 16..]
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        )
    }
}

/// The PATH an executor gives an agent.
pub const EXEC_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// `agent action` as an executor starts it: exactly `vars` plus PATH, stdin from
/// /dev/null; with `netns`, inside that named network namespace (`ip netns exec`).
pub fn agent_command(
    netns: Option<&str>,
    agent: &Path,
    action: &str,
    vars: &BTreeMap<String, String>,
) -> Command {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(agent);
            c
        }
        None => Command::new(agent),
    };
    c.arg(action)
        .env_clear()
        .env("PATH", EXEC_PATH)
        .envs(vars)
        .stdin(Stdio::null());
    c
}

/// Run `agent action` with exactly these variables (plus PATH), as an executor would.
pub fn run(agent: &Path, action: &str, vars: &BTreeMap<String, String>) -> Run {
    out(&mut agent_command(None, agent, action, vars))
}

/// An environment builder: `OCF_RESKEY_*` and friends.
#[derive(Clone, Default)]
pub struct Env(pub BTreeMap<String, String>);

impl Env {
    /// What Pacemaker sets for an operation (timeout in ms, interval in ms).
    pub fn pacemaker(instance: &str, state_dir: &Path) -> Env {
        Env::bare(instance, state_dir)
            .var("OCF_ROOT", "/usr/lib/ocf")
            .var("OCF_RA_VERSION_MAJOR", "1")
            .var("OCF_RA_VERSION_MINOR", "1")
            .var("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
            .var("OCF_RESKEY_CRM_meta_timeout", "20000")
    }
    /// Only the instance and the test's state dir: no CRM_meta_* at all.
    pub fn bare(instance: &str, state_dir: &Path) -> Env {
        Env::default()
            .var("OCF_RESOURCE_INSTANCE", instance)
            .var("RUSTHA_STATE_DIR", state_dir.to_str().unwrap())
    }
    pub fn var(mut self, k: &str, v: &str) -> Env {
        self.0.insert(k.to_string(), v.to_string());
        self
    }
    pub fn param(self, k: &str, v: &str) -> Env {
        self.var(&format!("OCF_RESKEY_{k}"), v)
    }
    pub fn without(mut self, k: &str) -> Env {
        self.0.remove(k);
        self
    }
    pub fn interval(self, ms: u64) -> Env {
        self.var("OCF_RESKEY_CRM_meta_interval", &ms.to_string())
    }
    pub fn run(&self, agent: &Path, action: &str) -> Run {
        run(agent, action, &self.0)
    }
}

/// Processes whose argv[0] starts with `prefix` (e.g. our responders), by pid.
pub fn pids_with_argv0_prefix(prefix: &str) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|&p| procfs::argv0(p).is_some_and(|a| a.starts_with(prefix)))
        .collect()
}

/// Is `pid` running (not gone, not a zombie)?
pub fn alive(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}

/// `pid`'s start time (ticks after boot), as the state records hold it.
pub fn start_time(pid: i32) -> u64 {
    procfs::stat(pid).expect("process exists").start_time
}

/// `pid`'s process group and session (fields 5 and 6 of /proc/<pid>/stat).
pub fn pgrp_session(pid: i32) -> (i32, i32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// SIGKILL a pid if it still runs (test clean-up; a pid ≤ 0 is no process).
pub fn kill(pid: i32) {
    if pid > 0 {
        signal(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// What an agent needs around it to run a real lifecycle in the contract suite and under
/// ocf-tester: extra parameters, and whatever must stay up meanwhile (dropped after).
pub struct Fixture {
    pub params: Vec<(String, String)>,
    _guard: Option<Box<dyn std::any::Any>>,
}

/// What each registered agent's real lifecycle needs around it. Every agent has a row
/// (a new agent without one fails `tests/agent_places.rs`): `None` when nothing but the
/// node is needed, else what the fixture sets up.
pub fn fixture_kind(agent: &str) -> Option<FixtureKind> {
    Some(match agent {
        "azure-lb" | "IPaddr2" => FixtureKind::Node,
        "nginx" | "lighttpd" | "mysql" => FixtureKind::Site,
        "aws-eni" => FixtureKind::Ec2,
        "Filesystem" => FixtureKind::Disk,
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixtureKind {
    /// The (namespaced) node alone.
    Node,
    /// A site of the server's own: configuration, document root or datadir, ports.
    Site,
    /// moto's EC2 behind tests/aws/ec2sim.py plus the IMDS stub.
    Ec2,
    /// A loop device with ext4 and a mount point, in a mount namespace of the thread's own.
    Disk,
}

/// The fixture of `agent`, in the calling thread's (private) network namespace.
pub fn fixture(agent: &str) -> Fixture {
    let kind = fixture_kind(agent).unwrap_or_else(|| {
        panic!(
            "{agent} has no row in tests/common/mod.rs fixture_kind (see README, Adding an agent)"
        )
    });
    match kind {
        #[cfg(feature = "aws")]
        FixtureKind::Ec2 => {
            let lab = aws::Lab::here_as_a("fx");
            Fixture {
                params: lab.params(),
                _guard: Some(Box::new(lab)),
            }
        }
        #[cfg(not(feature = "aws"))]
        FixtureKind::Ec2 => panic!("{agent} needs the aws feature"),
        FixtureKind::Site => {
            let site = services::site(agent, "fx").expect("a service site");
            Fixture {
                params: site.params.clone(),
                _guard: Some(Box::new(site)),
            }
        }
        FixtureKind::Node => Fixture {
            params: vec![],
            _guard: None,
        },
        FixtureKind::Disk => {
            disk::private_mountns();
            let dev = disk::Loop::new(64);
            dev.mkfs("ext4", None, None);
            let dir = TempDir::new("fx-disk");
            let point = dir.path().join("mnt");
            Fixture {
                params: vec![
                    ("device".into(), dev.dev.display().to_string()),
                    ("directory".into(), point.display().to_string()),
                    ("fstype".into(), "ext4".into()),
                ],
                // Dropped in this order: the mount point's directory, then the device.
                _guard: Some(Box::new((dir, dev))),
            }
        }
    }
}

/// `-o name=value` for every example the agent declares (what its required params need).
pub fn examples(agent: &str) -> Vec<(String, String)> {
    rustha::registry::find(agent)
        .unwrap()
        .params()
        .iter()
        .filter_map(|p| p.example.map(|v| (p.name.to_string(), v.to_string())))
        .collect()
}

/// `ocf-tester` on the agent at `path` (a link named like it), with its examples and its
/// fixture's parameters. Call it in a private network namespace. `state`: a state
/// directory instead of the agents' default.
pub fn ocf_tester(agent: &str, path: &Path, state: Option<&Path>) -> Run {
    require_tool("ocf-tester");
    let mut c = Command::new("ocf-tester");
    c.args(["-n", &instance("ocft")]);
    let fx = fixture(agent);
    let mut params: BTreeMap<String, String> = examples(agent).into_iter().collect();
    params.extend(fx.params.iter().cloned());
    for (k, v) in params {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    c.arg(path);
    if let Some(s) = state {
        c.env("RUSTHA_STATE_DIR", s);
    }
    let r = Run::from(c.output().unwrap_or_else(|e| panic!("ocf-tester: {e}")));
    drop(fx);
    r
}

/// `ip ARGS`, asserting success; its stdout.
pub fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One ping (one second) from inside the named namespace.
pub fn ping_from(ns: &str, addr: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Remove a namespace a test created: SIGKILL what still runs in it (by PID, from
/// `ip netns pids`), then delete it.
pub fn remove_netns(ns: &str) {
    if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            kill(pid);
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).status();
}
