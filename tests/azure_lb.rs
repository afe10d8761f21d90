//! azure-lb behaviour, each test in its own network namespace with real sockets.

mod common;

use common::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

struct Lb {
    _dir: TempDir,
    state: TempDir,
    link: PathBuf,
    env: Env,
    instance: String,
}

impl Lb {
    fn new(tag: &str, port: u16) -> Lb {
        private_netns();
        let dir = TempDir::new(tag);
        let state = TempDir::new(&format!("{tag}-state"));
        let link = agent_link(dir.path(), "azure-lb");
        let instance = instance(tag);
        let env = Env::pacemaker(&instance, state.path()).param("port", &port.to_string());
        Lb {
            _dir: dir,
            state,
            link,
            env,
            instance,
        }
    }
    fn run(&self, action: &str) -> Run {
        self.env.run(&self.link, action)
    }
    fn record_path(&self) -> PathBuf {
        self.state.path().join("azure-lb").join(&self.instance)
    }
    fn record(&self) -> String {
        std::fs::read_to_string(self.record_path()).unwrap_or_default()
    }
    fn pid(&self) -> i32 {
        self.field("pid").parse().unwrap()
    }
    fn field(&self, k: &str) -> String {
        self.record()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(String::from))
            .unwrap_or_default()
    }
    fn responders(&self) -> Vec<i32> {
        pids_with_argv0_prefix(&rustha::agents::azure_lb::marker(&self.instance))
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        // A test that starts a process stops it, by pid.
        let _ = self.run("stop");
        for p in self.responders() {
            kill(p);
        }
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr.parse::<SocketAddr>().unwrap(), Duration::from_secs(2))
}

#[test]
fn port_taken_by_someone_else_fails_start_with_the_port_in_the_reason() {
    let lb = Lb::new("taken", 61000);
    let squatter = TcpListener::bind("0.0.0.0:61000").unwrap();
    let r = lb.run("start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.reason().unwrap();
    assert!(reason.contains("port 61000 is already in use"), "{reason}");
    assert!(
        reason.contains(&format!("pid {}", std::process::id())),
        "owner not named: {reason}"
    );
    assert!(lb.responders().is_empty(), "a responder was left behind");
    assert!(!lb.record_path().exists(), "a record was left behind");
    assert_eq!(lb.run("monitor").code, 7);
    assert_eq!(lb.run("stop").code, 0);
    drop(squatter);
    assert_eq!(lb.run("start").code, 0);
}

#[test]
fn sigkilled_responder_is_noticed_then_stop_cleans_up() {
    let lb = Lb::new("kill9", 61000);
    assert_eq!(lb.run("start").code, 0);
    let pid = lb.pid();
    assert!(alive(pid));
    kill(pid);
    // Whether init has reaped it yet or it is still a zombie, it is not running.
    let recurring = lb.env.clone().interval(10000);
    assert_eq!(recurring.run(&lb.link, "monitor").code, 7);
    assert_eq!(lb.run("monitor").code, 7, "probe");
    assert_eq!(lb.run("stop").code, 0);
    assert!(!lb.record_path().exists());
    assert_eq!(lb.run("start").code, 0);
    assert_ne!(lb.pid(), pid);
}

#[test]
fn monitor_requires_the_listening_socket_to_belong_to_the_recorded_process() {
    let lb = Lb::new("owner", 61000);
    assert_eq!(lb.run("start").code, 0);
    assert!(connect("127.0.0.1:61000").is_ok());
    // Point the record at a live process of ours that holds no socket (a pid alone proves nothing).
    let mut decoy = std::process::Command::new(sleeper_bin())
        .arg("--never-ready")
        .spawn()
        .unwrap();
    let start_time = start_time(decoy.id() as i32);
    let rec = lb.record();
    let real_pid = lb.pid();
    let forged: String = rec
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("pid", _)) => format!("pid={}\n", decoy.id()),
            Some(("start_time", _)) => format!("start_time={start_time}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(lb.record_path(), forged).unwrap();
    let r = lb.env.clone().interval(10000).run(&lb.link, "monitor");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason()
            .unwrap()
            .contains("holds no listening socket on port 61000"),
        "{}",
        r.stderr
    );
    // stop stops what the record names and the stray responder of this instance.
    assert_eq!(lb.run("stop").code, 0);
    let _ = decoy.wait();
    let gone = ocf::Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(10), || {
        (!alive(real_pid)).then_some(())
    });
    assert!(gone.is_some(), "stray responder survived stop");
}

#[test]
fn lost_record_probe_and_monitor_find_the_running_responder_and_stop_stops_it() {
    let lb = Lb::new("lost", 61000);
    assert_eq!(lb.run("start").code, 0);
    let pid = lb.pid();
    std::fs::remove_file(lb.record_path()).unwrap();
    // It still listens: a 7 would have Pacemaker start it on a second node.
    let r = lb.run("monitor");
    assert_eq!(r.code, 0, "probe: {}", r.stderr);
    assert!(
        r.stderr.contains("runs without a state record"),
        "{}",
        r.stderr
    );
    assert_eq!(
        lb.env.clone().interval(10000).run(&lb.link, "monitor").code,
        0
    );
    let deep = lb.env.clone().interval(10000).var("OCF_CHECK_LEVEL", "10");
    assert_eq!(deep.run(&lb.link, "monitor").code, 0);
    // Another instance's probe does not take it for its own.
    let other = Env::pacemaker(&instance("other"), lb.state.path()).param("port", "61000");
    assert_eq!(other.run(&lb.link, "monitor").code, 7);
    assert_eq!(other.run(&lb.link, "stop").code, 0);
    assert!(alive(pid), "another instance's stop stopped this responder");
    // start takes over the port from its own stray rather than failing on it.
    assert_eq!(
        lb.run("start").code,
        0,
        "start with a stray holding the port"
    );
    assert!(!alive(pid));
    let pid = lb.pid();
    std::fs::remove_file(lb.record_path()).unwrap();
    assert_eq!(lb.run("stop").code, 0);
    assert!(!alive(pid), "stop left the stray responder running");
    assert!(connect("127.0.0.1:61000").is_err());
    assert_eq!(lb.run("monitor").code, 7);
}

#[test]
fn a_responder_of_the_same_instance_on_another_node_is_not_ours() {
    // The nodes of a lab share one pid namespace; each has its own network namespace.
    let lb = Lb::new("node", 61000);
    assert_eq!(lb.run("start").code, 0);
    let pid = lb.pid();
    let (link, inst) = (lb.link.clone(), lb.instance.clone());
    let (probe, stop) = std::thread::spawn(move || {
        private_netns();
        let state = TempDir::new("node-b-state");
        let env = Env::pacemaker(&inst, state.path()).param("port", "61000");
        (env.run(&link, "monitor"), env.run(&link, "stop"))
    })
    .join()
    .unwrap();
    assert_eq!(probe.code, 7, "{}", probe.stderr);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    assert!(alive(pid), "the other node's stop stopped our responder");
    assert_eq!(lb.run("monitor").code, 0);
}

/// A read-only bind mount of `dir` onto itself, in a private mount namespace of this test
/// thread (its processes inherit it; the host's mounts are not touched). Undone on drop.
struct ReadOnly(std::ffi::CString);

impl ReadOnly {
    fn over(dir: &std::path::Path) -> ReadOnly {
        use std::ptr::null;
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let d = c(dir.to_str().unwrap());
        let root = c("/");
        // SAFETY: plain syscalls on NUL-terminated strings that outlive them.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
            let rc = libc::mount(
                null(),
                root.as_ptr(),
                null(),
                libc::MS_REC | libc::MS_PRIVATE,
                null(),
            );
            assert_eq!(rc, 0, "make / private");
            let rc = libc::mount(d.as_ptr(), d.as_ptr(), null(), libc::MS_BIND, null());
            assert_eq!(rc, 0, "bind mount");
            let rc = libc::mount(
                null(),
                d.as_ptr(),
                null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                null(),
            );
            assert_eq!(rc, 0, "remount read-only");
        }
        ReadOnly(d)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // SAFETY: unmounting the mount this guard made.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn read_only_state_dir_does_not_fail_a_stop_that_stopped_the_responder() {
    let lb = Lb::new("rostate", 61000);
    assert_eq!(lb.run("start").code, 0);
    let pid = lb.pid();
    let ro = ReadOnly::over(lb.state.path());
    assert!(
        std::fs::write(lb.state.path().join("probe"), "x").is_err(),
        "state dir is still writable"
    );
    let r = lb.run("stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!alive(pid), "stop returned 0 with the responder alive");
    assert!(connect("127.0.0.1:61000").is_err());
    // The record that could not be removed is a warning that names it.
    assert!(
        r.stderr.contains(lb.record_path().to_str().unwrap()),
        "{}",
        r.stderr
    );
    // The leftover record names a dead pid: the next probe says stopped, stop again 0.
    assert!(lb.record_path().exists());
    assert_eq!(lb.run("monitor").code, 7);
    assert_eq!(lb.run("stop").code, 0);
    drop(ro);
    assert_eq!(lb.run("stop").code, 0);
    assert!(!lb.record_path().exists());
}

#[test]
fn unusable_state_dir_probe_and_stop_go_by_identity() {
    let lb = Lb::new("filestate", 61000);
    let file = lb.state.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let broken = lb
        .env
        .clone()
        .var("RUSTHA_STATE_DIR", file.to_str().unwrap());
    // Nothing runs: probe 7, stop 0.
    let r = broken.run(&lb.link, "monitor");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        broken.clone().interval(10000).run(&lb.link, "monitor").code,
        7
    );
    let r = broken.run(&lb.link, "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A responder of this instance runs (started while the directory was usable): it is
    // found by identity, and stop stops it.
    assert_eq!(lb.run("start").code, 0);
    let pid = lb.pid();
    let r = broken.run(&lb.link, "monitor");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = broken.run(&lb.link, "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!alive(pid), "stop returned 0 with the responder alive");
    assert_eq!(broken.run(&lb.link, "monitor").code, 7);
    // start cannot record its decision there: it fails and leaves nothing running.
    let r = broken.run(&lb.link, "start");
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(lb.responders().is_empty(), "start left a responder");
}

#[test]
fn stale_record_with_a_reused_pid_is_not_running_and_not_signalled() {
    let lb = Lb::new("stale", 61000);
    let me = std::process::id();
    std::fs::create_dir_all(lb.record_path().parent().unwrap()).unwrap();
    let boot = rustha::procfs::boot_id();
    std::fs::write(
        lb.record_path(),
        format!(
            "addr=[::]:61000\nboot_id={}\npid={me}\nstart_time=1\n",
            boot.trim()
        ),
    )
    .unwrap();
    assert_eq!(lb.run("monitor").code, 7);
    assert_eq!(lb.run("stop").code, 0);
    assert!(!lb.record_path().exists());
}

#[test]
fn probes_are_answered_while_a_thousand_connections_are_held() {
    let lb = Lb::new("held", 61000);
    assert_eq!(lb.run("start").code, 0);
    let lim = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        4096.max(lim.0),
        4096.max(lim.1),
    )
    .unwrap();
    let held: Vec<TcpStream> = (0..1000)
        .map(|i| connect("127.0.0.1:61000").unwrap_or_else(|e| panic!("held #{i}: {e}")))
        .collect();
    for i in 0..200 {
        connect("127.0.0.1:61000").unwrap_or_else(|e| panic!("probe #{i} with 1000 held: {e}"));
    }
    // The responder holds none of them: its fds are stdio + the listener only, once it
    // has worked through its accept queue (it may be between accept and close of the
    // last probes right now, so look again for up to a second).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", lb.pid()))
            .unwrap()
            .count()
    };
    let settled = ocf::Deadline::after(std::time::Duration::from_secs(1))
        .poll(std::time::Duration::from_millis(20), || {
            (fds() <= 4).then_some(())
        });
    assert!(settled.is_some(), "responder holds {} fds", fds());
    drop(held);
    assert_eq!(
        lb.env.clone().interval(10000).run(&lb.link, "monitor").code,
        0
    );
}

#[test]
fn depth_10_monitor_connects() {
    let lb = Lb::new("depth", 61000);
    assert_eq!(lb.run("start").code, 0);
    let deep = lb.env.clone().interval(10000).var("OCF_CHECK_LEVEL", "10");
    assert_eq!(deep.run(&lb.link, "monitor").code, 0);
    let old_spelling = lb
        .env
        .clone()
        .interval(10000)
        .var("OCF_RESKEY_OCF_CHECK_LEVEL", "10");
    assert_eq!(old_spelling.run(&lb.link, "monitor").code, 0);
}

#[test]
fn bind_address_and_listen_choose_the_socket() {
    let lb = Lb::new("bind", 61000);
    let env = lb.env.clone().param("bind_address", "127.0.0.1");
    assert_eq!(env.run(&lb.link, "start").code, 0);
    assert_eq!(lb.field("addr"), "127.0.0.1:61000");
    assert!(connect("127.0.0.1:61000").is_ok());
    assert!(connect("[::1]:61000").is_err(), "bound beyond bind_address");
    assert_eq!(env.run(&lb.link, "monitor").code, 0);
    // Changed settings while running: start moves the responder (stop+start semantics).
    let v4 = lb.env.clone().param("listen", "ipv4only");
    assert_eq!(v4.run(&lb.link, "start").code, 0);
    assert_eq!(lb.field("addr"), "0.0.0.0:61000");
    assert!(connect("[::1]:61000").is_err(), "ipv4only listens on IPv6");
    let dual = lb.env.clone();
    assert_eq!(dual.run(&lb.link, "start").code, 0);
    assert_eq!(lb.field("addr"), "[::]:61000");
    assert!(
        connect("[::1]:61000").is_ok() && connect("127.0.0.1:61000").is_ok(),
        "default is dual-stack"
    );
}

#[test]
fn validate_all_rejects_inconsistent_parameters() {
    let lb = Lb::new("validate", 61000);
    let cases = [
        (
            vec![("bind_address", "::1"), ("listen", "ipv4only")],
            6,
            "bind_address ::1 is IPv6 but listen is ipv4only",
        ),
        (
            vec![("bind_address", "127.0.0.1"), ("listen", "ipv6enable")],
            6,
            "is IPv4 but listen is ipv6enable",
        ),
        (
            vec![("bind_address", "not-an-ip")],
            6,
            "parameter bind_address: 'not-an-ip' is not an IPv4 or IPv6 address",
        ),
        (
            vec![("backlog", "0")],
            6,
            "parameter backlog: 0 is not within 1 to 65535",
        ),
        (
            vec![("port", "70000")],
            6,
            "parameter port: '70000' is not a valid port (1-65535)",
        ),
        (vec![("nc", "/usr/bin/nc")], 0, ""),
    ];
    for (params, want, reason) in cases {
        let env = params
            .iter()
            .fold(lb.env.clone(), |e, (k, v)| e.param(k, v));
        let r = env.run(&lb.link, "validate-all");
        assert_eq!(r.code, want, "{params:?}: {}", r.stderr);
        if want != 0 {
            assert!(
                r.reason().unwrap().contains(reason),
                "{params:?}: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn bind_address_must_be_one_a_probe_can_connect_to() {
    let lb = Lb::new("unicast", 61000);
    for (addr, why) in [
        ("224.0.0.1", "is a multicast address"),
        ("239.255.0.1", "is a multicast address"),
        ("255.255.255.255", "is the broadcast address"),
        ("ff02::1", "is a multicast address"),
        ("::ffff:127.0.0.1", "is an IPv4-mapped IPv6 address"),
        ("fe80::1", "is an IPv6 link-local address"),
    ] {
        let env = lb.env.clone().param("bind_address", addr);
        for action in ["validate-all", "start"] {
            let r = env.run(&lb.link, action);
            assert_eq!(r.code, 6, "{addr} {action}: {}", r.stderr);
            let reason = r.reason().unwrap();
            assert!(
                reason.contains(&format!("parameter bind_address: {addr} {why}")),
                "{addr}: {reason}"
            );
        }
        assert!(
            lb.responders().is_empty(),
            "{addr}: a responder was started"
        );
    }
    // The unspecified addresses mean every address of their family.
    let any4 = lb.env.clone().param("bind_address", "0.0.0.0");
    assert_eq!(any4.run(&lb.link, "start").code, 0);
    assert!(connect("127.0.0.1:61000").is_ok());
    assert!(connect("[::1]:61000").is_err(), "0.0.0.0 listens on IPv6");
    let any6 = lb.env.clone().param("bind_address", "::");
    assert_eq!(any6.run(&lb.link, "start").code, 0);
    assert_eq!(lb.field("addr"), "[::]:61000");
    assert!(connect("[::1]:61000").is_ok());
    assert!(connect("127.0.0.1:61000").is_err(), ":: is IPv6 only");
    assert_eq!(any6.run(&lb.link, "monitor").code, 0);
}

#[test]
fn responder_survives_the_agents_process_group_being_killed() {
    use std::os::unix::process::CommandExt;
    let lb = Lb::new("pgrp", 61000);
    // Pacemaker runs each action in its own process group and may SIGKILL that group.
    let st = std::process::Command::new(&lb.link)
        .arg("start")
        .env_clear()
        .envs(&lb.env.0)
        .process_group(0)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let pid = lb.pid();
    // The group the agent ran in is its own pid's; the responder left it (setsid).
    assert_eq!(
        pgrp_session(pid).1,
        pid,
        "responder is not a session leader"
    );
    assert_eq!(lb.run("monitor").code, 0);
}

#[test]
fn logs_go_to_ha_logfile_with_the_heartbeat_tag_and_the_reason_is_last() {
    let lb = Lb::new("log", 61000);
    let log = lb.state.path().join("pacemaker.log");
    let env = lb.env.clone().var("HA_LOGFILE", log.to_str().unwrap());
    assert_eq!(env.run(&lb.link, "start").code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let want = format!("azure-lb({})[", lb.instance);
    assert!(
        text.lines()
            .any(|l| l.contains(&want) && l.contains("INFO: responder pid")),
        "{text}"
    );
    let r = env.clone().param("port", "0").run(&lb.link, "start");
    assert_eq!(r.code, 6);
    assert!(
        r.stderr
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("ocf-exit-reason:parameter port"),
        "{}",
        r.stderr
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("ERROR: parameter port: '0' is not a valid port"),
        "{text}"
    );
    assert_eq!(
        r.stderr.matches("parameter port").count(),
        1,
        "reason printed twice: {}",
        r.stderr
    );
}
