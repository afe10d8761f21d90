//! nginx, lighttpd and mysql against the real Debian servers. Each test runs in its own
//! network namespace (so every server can use 127.0.0.1:8080) with its own directory,
//! and stops what it started, by PID.

mod common;

use common::services::*;
use common::*;
use std::time::{Duration, Instant};

// Field order is drop order: the instance is stopped while its link and state exist.
struct T {
    run: Running,
    state: TempDir,
    _dir: TempDir,
}

/// An agent link, a state dir and a site's environment, in a fresh netns.
fn setup(agent: &str, site: &Site) -> T {
    private_netns();
    let dir = TempDir::new(&format!("svc-{agent}"));
    let state = TempDir::new(&format!("svc-{agent}-state"));
    let link = agent_link(dir.path(), agent);
    let inst = instance(agent);
    let env = site.env(&inst, state.path());
    T {
        run: Running {
            link,
            env,
            state: state.path().to_path_buf(),
            agent: agent.to_string(),
            instance: inst,
        },
        _dir: dir,
        state,
    }
}

impl T {
    fn act(&self, action: &str) -> Run {
        self.run.env.run(&self.run.link, action)
    }
    fn with(&self, env: Env, action: &str) -> Run {
        env.run(&self.run.link, action)
    }
    fn depth(&self, level: u32) -> Run {
        self.with(
            self.run
                .env
                .clone()
                .interval(10000)
                .var("OCF_CHECK_LEVEL", &level.to_string()),
            "monitor",
        )
    }
    fn expect(&self, action: &str, want: i32) -> Run {
        let r = self.act(action);
        assert_eq!(r.code, want, "{action}: {}", r.stderr);
        r
    }
    fn pid(&self) -> i32 {
        self.run.pid().expect("a recorded pid")
    }
    fn state_empty(&self) -> bool {
        std::fs::read_dir(self.state.path().join(&self.run.agent))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// start / depths 0-10-20 / start again / reload / stop twice, and nothing left behind.
fn lifecycle(agent: &str, site: &Site, depth20: &[(&str, &str)], pidfile: Option<&str>) {
    let mut t = setup(agent, site);
    for (k, v) in depth20 {
        t.run.env = t.run.env.clone().param(k, v);
    }
    t.expect("monitor", 7);
    let r = t.expect("start", 0);
    assert!(r.reason().is_none(), "{}", r.stderr);
    let pid = t.pid();
    if agent != "mysql" {
        let (code, body) = http_get(HTTP_PORT, "/").expect("the site answers after start");
        assert_eq!((code, body.as_str()), (200, PAGE));
    }
    for level in [0, 10, 20] {
        let r = t.depth(level);
        assert_eq!(r.code, 0, "depth {level}: {}", r.stderr);
    }
    t.expect("start", 0);
    assert_eq!(t.pid(), pid, "a second start keeps the running server");
    if agent != "mysql" {
        t.expect("reload", 0);
        assert_eq!(t.pid(), pid, "reload keeps the server");
        assert_eq!(t.depth(10).code, 0, "serving after reload");
    }
    let members = session_members(pid);
    assert!(!members.is_empty());
    t.expect("stop", 0);
    for m in &members {
        assert!(!alive(*m), "{agent}: pid {m} survived stop");
    }
    assert!(
        http_get(HTTP_PORT, "/").is_none(),
        "nothing answers after stop"
    );
    t.expect("stop", 0);
    t.expect("monitor", 7);
    assert_eq!(t.depth(10).code, 7);
    assert!(t.state_empty(), "state left after stop");
    if let Some(pf) = pidfile {
        assert!(!site.path(pf).exists(), "pidfile {pf} left after stop");
    }
}

#[test]
fn nginx_lifecycle_with_depths_reload_and_workers() {
    let site = nginx_site("ngx-life");
    lifecycle(
        "nginx",
        &site,
        &[("test20url", "/index.html"), ("test20regex", "RUSTHA test")],
        Some("nginx.pid"),
    );
}

#[test]
fn lighttpd_lifecycle_with_depths_and_reload() {
    let site = lighttpd_site("ltp-life");
    lifecycle(
        "lighttpd",
        &site,
        &[("testurl", "/"), ("testregex", "rustha test page")],
        Some("lighttpd.pid"),
    );
}

#[test]
fn mysql_lifecycle_with_depths_and_a_created_datadir() {
    let site = mysql_site("my-life");
    lifecycle("mysql", &site, &[], Some("run/mysqld.pid"));
    assert!(
        site.path("data/mysql").is_dir(),
        "enable_creation initialised the datadir"
    );
    assert!(!site.path("run/mysqld.sock").exists(), "socket left");
}

/// A broken configuration: start says 6 with the server's own words, runs nothing.
fn broken_config(agent: &str, site: &Site, file: &str, junk: &str, words: &str) {
    let t = setup(agent, site);
    let mut conf = std::fs::read_to_string(site.path(file)).unwrap();
    conf.push_str(junk);
    std::fs::write(site.path(file), conf).unwrap();
    let r = t.act("start");
    assert_eq!(r.code, 6, "{}", r.stderr);
    let reason = r.reason().unwrap();
    assert!(reason.contains(words), "{agent}: reason {reason:?}");
    assert!(t.state_empty());
    assert_eq!(t.act("monitor").code, 7);
    assert_eq!(t.act("stop").code, 0);
    // validate-all at depth 10 runs the same test.
    let r = t.with(
        t.run.env.clone().var("OCF_CHECK_LEVEL", "10"),
        "validate-all",
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
}

#[test]
fn broken_configurations_are_6_with_the_servers_message() {
    broken_config(
        "nginx",
        &nginx_site("ngx-bad"),
        "nginx.conf",
        "\nbogus_directive on;\n",
        "unknown directive \"bogus_directive\"",
    );
}

#[test]
fn lighttpd_broken_configuration_is_6() {
    broken_config(
        "lighttpd",
        &lighttpd_site("ltp-bad"),
        "lighttpd.conf",
        "\nserver.modules += ( \"mod_nonexistent\" )\n",
        "mod_nonexistent",
    );
}

#[test]
fn mysql_broken_configuration_is_6() {
    broken_config(
        "mysql",
        &mysql_site("my-bad"),
        "my.cnf",
        "bogus-option=1\n",
        "unknown variable 'bogus-option=1'",
    );
}

#[test]
fn missing_binaries_are_5_and_probes_7() {
    for (agent, param, site) in [
        ("nginx", "httpd", nginx_site("ngx-nobin")),
        ("lighttpd", "binary", lighttpd_site("ltp-nobin")),
        ("mysql", "binary", mysql_site("my-nobin")),
    ] {
        let t = setup(agent, &site);
        let env = t.run.env.clone().param(param, "/nonexistent/server");
        let r = t.with(env.clone(), "start");
        assert_eq!(r.code, 5, "{agent}: {}", r.stderr);
        assert!(r.reason().unwrap().contains("/nonexistent/server"));
        assert_eq!(t.with(env.clone(), "monitor").code, 7, "{agent} probe");
        assert_eq!(t.with(env.clone(), "stop").code, 0, "{agent} stop");
        let deep = env.var("OCF_CHECK_LEVEL", "10");
        assert_eq!(t.with(deep, "validate-all").code, 5, "{agent} validate-all");
        assert!(t.state_empty());
    }
}

#[test]
fn port_already_taken_fails_start_with_the_owner() {
    for (agent, site) in [
        ("nginx", nginx_site("ngx-port")),
        ("lighttpd", lighttpd_site("ltp-port")),
    ] {
        let t = setup(agent, &site);
        let squatter = std::net::TcpListener::bind(("127.0.0.1", HTTP_PORT)).unwrap();
        let r = t.act("start");
        assert_eq!(r.code, 1, "{agent}: {}", r.stderr);
        let reason = r.reason().unwrap();
        assert!(
            reason.contains(&format!(
                "port {HTTP_PORT} is already in use by pid {}",
                std::process::id()
            )),
            "{agent}: {reason}"
        );
        assert!(t.state_empty());
        assert!(pids_of_exe(&format!("/usr/sbin/{agent}"))
            .iter()
            .all(|&p| procfs_netns_differs(p)));
        drop(squatter);
        t.expect("start", 0);
        t.expect("stop", 0);
    }
}

/// A process in another network namespace than this thread's (servers of other tests).
fn procfs_netns_differs(pid: i32) -> bool {
    let mine = std::fs::read_link("/proc/thread-self/ns/net").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    theirs.is_none() || theirs != mine
}

#[test]
fn nginx_master_killed_leaves_workers_that_monitor_reports_and_stop_removes() {
    let site = nginx_site("ngx-kill");
    let t = setup("nginx", &site);
    t.expect("start", 0);
    let master = t.pid();
    let members = session_members(master);
    assert_eq!(members.len(), 3, "master + 2 workers: {members:?}");
    signal(master, nix::sys::signal::Signal::SIGKILL);
    wait_until("the master to die", 5, || !alive(master));
    // The workers still hold the port (upstream #1553): not "stopped", a failure.
    let r = t.with(t.run.env.clone().interval(10000), "monitor");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("2 of its processes still run"),
        "{}",
        r.stderr
    );
    t.expect("stop", 0);
    for m in members {
        assert!(!alive(m), "worker {m} survived stop");
    }
    assert!(!site.path("nginx.pid").exists(), "stale pidfile left");
    t.expect("monitor", 7);
    // And with every process killed, a monitor says 7 and start works again.
    t.expect("start", 0);
    let master = t.pid();
    for p in session_members(master) {
        signal(p, nix::sys::signal::Signal::SIGKILL);
    }
    wait_until("all nginx processes to die", 5, || {
        session_members(master).is_empty()
    });
    t.expect("monitor", 7);
    t.expect("start", 0);
    t.expect("stop", 0);
}

#[test]
fn killed_servers_are_reported_not_running() {
    for (agent, site) in [
        ("lighttpd", lighttpd_site("ltp-kill")),
        ("mysql", mysql_site("my-kill")),
    ] {
        let t = setup(agent, &site);
        t.expect("start", 0);
        let pid = t.pid();
        signal(pid, nix::sys::signal::Signal::SIGKILL);
        wait_until("the server to die", 5, || !alive(pid));
        let r = t.with(t.run.env.clone().interval(10000), "monitor");
        assert_eq!(r.code, 7, "{agent}: {}", r.stderr);
        t.expect("stop", 0);
        assert!(t.state_empty());
        if agent == "mysql" {
            assert!(!site.path("run/mysqld.sock").exists(), "stale socket left");
            assert!(!site.path("run/mysqld.pid").exists(), "stale pidfile left");
        }
        t.expect("start", 0);
        t.expect("stop", 0);
    }
}

#[test]
fn a_stopped_process_does_not_stop_the_stop() {
    for (agent, site) in [
        ("nginx", nginx_site("ngx-stop")),
        ("lighttpd", lighttpd_site("ltp-stop")),
        ("mysql", mysql_site("my-stop")),
    ] {
        let t = setup(agent, &site);
        t.expect("start", 0);
        let leader = t.pid();
        let members = session_members(leader);
        // nginx: a worker; the others: the server itself.
        let victim = *members.iter().find(|&&p| p != leader).unwrap_or(&leader);
        signal(victim, nix::sys::signal::Signal::SIGSTOP);
        let env = t.run.env.clone().var("OCF_RESKEY_CRM_meta_timeout", "6000");
        let began = Instant::now();
        let r = t.with(env, "stop");
        let took = began.elapsed();
        assert_eq!(r.code, 0, "{agent}: {}", r.stderr);
        assert!(took < Duration::from_secs(6), "{agent}: stop took {took:?}");
        for m in members {
            assert!(!alive(m), "{agent}: {m} survived");
        }
        assert!(t.state_empty());
    }
}

#[test]
fn changed_content_fails_depth_20_while_depth_0_passes() {
    for (agent, site, params) in [
        (
            "nginx",
            nginx_site("ngx-20"),
            [
                ("test20url", "/index.html"),
                ("test20regex", "rustha test page"),
            ],
        ),
        (
            "lighttpd",
            lighttpd_site("ltp-20"),
            [
                ("testurl", "/index.html"),
                ("testregex", "rustha test page"),
            ],
        ),
    ] {
        let mut t = setup(agent, &site);
        for (k, v) in params {
            t.run.env = t.run.env.clone().param(k, v);
        }
        t.expect("start", 0);
        assert_eq!(t.depth(20).code, 0);
        site.set_page("<html>maintenance</html>\n");
        let r = t.depth(20);
        assert_eq!(r.code, 1, "{agent}: {}", r.stderr);
        let reason = r.reason().unwrap();
        assert!(
            reason.contains("does not match /rustha test page/"),
            "{agent}: {reason}"
        );
        assert_eq!(t.depth(0).code, 0);
        assert_eq!(t.depth(10).code, 0);
        std::fs::remove_file(site.path("www/index.html")).unwrap();
        // lighttpd caches stat() results for a second.
        wait_until("a 404 at depth 20", 5, || {
            let r = t.depth(20);
            r.code == 1 && r.reason().unwrap_or_default().contains("answered HTTP 404")
        });
        t.expect("stop", 0);
    }
}

#[test]
fn mysql_test_table_dropped_fails_depth_20_while_depth_0_passes() {
    let site = mysql_site("my-20");
    let mut t = setup("mysql", &site);
    t.run.env = t.run.env.clone().param("test_table", "rt.probe");
    t.expect("start", 0);
    let r = sql(
        &site,
        "CREATE DATABASE rt; CREATE TABLE rt.probe (x INT); INSERT INTO rt.probe VALUES (1);",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.depth(20).code, 0, "{}", t.depth(20).stderr);
    // A password-protected test user: the password reaches the client, not the log.
    let secret = "s3cr\"et pw";
    let r = sql(
        &site,
        "CREATE USER 'probe'@'localhost' IDENTIFIED BY 's3cr\"et pw'; GRANT SELECT ON rt.* TO 'probe'@'localhost';",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let as_probe = t
        .run
        .env
        .clone()
        .param("test_user", "probe")
        .param("test_passwd", secret)
        .interval(10000)
        .var("OCF_CHECK_LEVEL", "20");
    let r = t.with(as_probe.clone(), "monitor");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let wrong = as_probe.clone().param("test_passwd", "wrong");
    let r = t.with(wrong, "monitor");
    assert_eq!(r.code, 1);
    assert!(
        r.reason().unwrap().contains("Access denied"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong") && !r.stderr.contains(secret));
    let r = sql(&site, "DROP TABLE rt.probe;");
    assert_eq!(r.code, 0);
    let r = t.depth(20);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("rt.probe") && r.reason().unwrap().contains("doesn't exist"),
        "{}",
        r.stderr
    );
    assert_eq!(t.depth(0).code, 0);
    assert_eq!(t.depth(10).code, 0);
    // No credentials file stays behind.
    let left: Vec<_> = std::fs::read_dir(t.state.path().join("mysql"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "record + console only: {left:?}");
    t.expect("stop", 0);
}

#[test]
fn mysql_empty_datadir_without_enable_creation_is_5() {
    let site = mysql_site("my-empty");
    let t = setup("mysql", &site);
    let env = t.run.env.clone().param("enable_creation", "false");
    let r = t.with(env.clone(), "start");
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("enable_creation"));
    assert!(t.state_empty());
    assert_eq!(t.with(env, "monitor").code, 7);
}

#[test]
fn a_server_started_by_hand_is_found_by_the_probe_and_stopped() {
    let site = nginx_site("ngx-hand");
    let t = setup("nginx", &site);
    // The classic mistake: nginx also started outside the cluster (daemonized).
    let st = std::process::Command::new("nginx")
        .args(["-c", site.path("nginx.conf").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let master: i32 = std::fs::read_to_string(site.path("nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until("nginx's workers", 5, || session_members(master).len() == 3);
    let members = session_members(master);
    let r = t.act("monitor");
    assert_eq!(r.code, 0, "the probe must see it running: {}", r.stderr);
    t.expect("stop", 0);
    for m in members {
        assert!(!alive(m), "{m} survived");
    }
    t.expect("monitor", 7);
}

#[test]
fn reload_tests_the_configuration_first_and_never_starts() {
    let site = nginx_site("ngx-reload");
    let t = setup("nginx", &site);
    let r = t.act("reload");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("does not start"));
    assert!(http_get(HTTP_PORT, "/").is_none());
    t.expect("start", 0);
    let pid = t.pid();
    let good = std::fs::read_to_string(site.path("nginx.conf")).unwrap();
    std::fs::write(site.path("nginx.conf"), format!("{good}\nbogus;\n")).unwrap();
    let r = t.act("reload");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("keeps running"),
        "{}",
        r.stderr
    );
    assert_eq!(http_get(HTTP_PORT, "/").map(|r| r.0), Some(200));
    // A valid change is applied: a new location appears.
    std::fs::write(
        site.path("nginx.conf"),
        good.replace(
            "location /nginx_status",
            "location = /hello { return 200 'reloaded'; }\n        location /nginx_status",
        ),
    )
    .unwrap();
    t.expect("reload", 0);
    wait_until("the new configuration", 5, || {
        http_get(HTTP_PORT, "/hello").is_some_and(|(c, b)| c == 200 && b == "reloaded")
    });
    assert_eq!(t.pid(), pid);
    t.expect("stop", 0);
    assert!(!site.path("nginx.pid").exists(), "pidfile left after stop");
}

#[test]
fn two_servers_on_one_port_and_two_addresses_do_not_conflict() {
    // Two web resources, each bound to its own VIP on port 8080 (here: two loopback
    // addresses); a third one on every address would collide with both.
    let a = nginx_site_listen("ngx-a", "127.0.0.1:8080");
    let b = nginx_site_listen("ngx-b", "127.0.0.2:8080");
    let all = nginx_site_listen("ngx-all", "8080");
    let ta = setup("nginx", &a);
    let guard = |site: &Site, tag: &str| {
        let inst = instance(tag);
        Running {
            link: ta.run.link.clone(),
            env: site.env(&inst, ta.state.path()),
            state: ta.state.path().to_path_buf(),
            agent: "nginx".into(),
            instance: inst,
        }
    };
    let (gb, gall) = (guard(&b, "nginx-b"), guard(&all, "nginx-all"));
    let (env_b, env_all) = (gb.env.clone(), gall.env.clone());
    ta.expect("start", 0);
    let r = ta.with(env_b.clone(), "start");
    assert_eq!(r.code, 0, "a second address on the same port: {}", r.stderr);
    let r = ta.with(env_all.clone(), "start");
    assert_eq!(r.code, 1, "every address: {}", r.stderr);
    assert!(r.reason().unwrap().contains("port 8080 is already in use"));
    assert_eq!(ta.with(env_b.clone(), "stop").code, 0);
    assert_eq!(ta.with(env_all.clone(), "stop").code, 0);
    ta.expect("stop", 0);
}
