//! nginx, lighttpd and mysql against the real Debian servers. Each test runs in its own
//! network namespace (so every server can use 127.0.0.1:8080) with its own directory,
//! and stops what it started, by PID.

mod common;

use common::services::*;
use common::*;
use rustha::procfs;
use std::path::{Path, PathBuf};
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
    netns_of_pid(pid) != Some(thread_netns())
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
    // The record, the server's console and the instance's lock (beside its record).
    assert_eq!(left.len(), 3, "record + console + lock only: {left:?}");
    assert!(
        left.iter().any(|n| n.to_string_lossy().ends_with(".lock")),
        "{left:?}"
    );
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

// ---- issue 13: what a stop may remove, what a start must refuse ----

/// A private character device node like /dev/null (1,3), made in `dir`.
fn device_node(dir: &Path, name: &str) -> PathBuf {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let p = dir.join(name);
    mknod(
        &p,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    p
}

fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

/// mariadbd processes in this thread's network namespace (ours, none of other tests').
fn our_mariadbd() -> Vec<i32> {
    pids_of_exe("/usr/sbin/mariadbd")
        .into_iter()
        .filter(|&p| !procfs_netns_differs(p))
        .collect()
}

#[test]
fn mysql_pid_naming_a_device_or_another_file_is_refused_and_left_alone() {
    let site = mysql_site("my-pidpath");
    let t = setup("mysql", &site);
    let dev = device_node(site.dir.path(), "null");
    let cnf = site.path("my.cnf");
    let cnf_text = std::fs::read(&cnf).unwrap();
    for (path, want, words) in [
        (&dev, 6, "is a character device, not a pidfile"),
        (&cnf, 6, "holds something else than a pid"),
    ] {
        let env = t.run.env.clone().param("pid", path.to_str().unwrap());
        for action in ["validate-all", "start"] {
            let r = t.with(env.clone(), action);
            assert_eq!(
                r.code,
                want,
                "{action} pid={}: {}",
                path.display(),
                r.stderr
            );
            let reason = r.reason().unwrap();
            assert!(reason.contains(words), "{reason}");
        }
        assert!(t.state_empty());
        assert!(our_mariadbd().is_empty(), "nothing is launched");
        assert_eq!(t.with(env.clone(), "stop").code, 0);
        assert_eq!(t.with(env.clone(), "monitor").code, 7);
    }
    assert!(is_char_device(&dev), "the device node survives");
    assert_eq!(std::fs::read(&cnf).unwrap(), cnf_text, "my.cnf intact");
    // A pidfile of another owner than the server's user: 4.
    let foreign = site.path("root.pid");
    std::fs::write(&foreign, "").unwrap();
    let env = t.run.env.clone().param("pid", foreign.to_str().unwrap());
    let r = t.with(env, "start");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("not to mysql"), "{}", r.stderr);
    assert!(foreign.exists());
}

#[test]
fn mysql_log_device_directory_or_foreign_file_is_refused() {
    let site = mysql_site("my-logpath");
    let t = setup("mysql", &site);
    let dev = device_node(site.dir.path(), "null");
    let dir = site.path("www");
    let passwd = site.path("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    for (path, level, want, words) in [
        (&dev, "0", 6, "is a character device, not a log file"),
        (&dir, "0", 6, "is a directory, not a log file"),
        (&passwd, "10", 4, "not to mysql"),
    ] {
        let env = t.run.env.clone().param("log", path.to_str().unwrap());
        let r = t.with(env.clone().var("OCF_CHECK_LEVEL", level), "validate-all");
        assert_eq!(
            r.code,
            want,
            "validate log={}: {}",
            path.display(),
            r.stderr
        );
        let r = t.with(env.clone(), "start");
        assert_eq!(r.code, want, "start log={}: {}", path.display(), r.stderr);
        assert!(r.reason().unwrap().contains(words), "{}", r.stderr);
        assert!(t.state_empty());
        assert!(our_mariadbd().is_empty());
    }
    assert!(is_char_device(&dev));
    assert_eq!(
        std::fs::read_to_string(&passwd).unwrap(),
        "root:x:0:0:root:/root:/bin/bash\n"
    );
    assert_eq!(files_owner(&passwd), 0, "not chowned to mysql");
}

fn files_owner(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().uid()
}

#[test]
fn mysql_test_table_without_a_database_is_6() {
    let site = mysql_site("my-table");
    let t = setup("mysql", &site);
    let env = t.run.env.clone().param("test_table", "user");
    let r = t.with(env.clone(), "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("test_table"), "{}", r.stderr);
    assert_eq!(t.with(env, "start").code, 6);
    assert!(t.state_empty());
}

#[test]
fn mysql_deep_validate_checks_what_start_needs() {
    let site = mysql_site("my-deep");
    let t = setup("mysql", &site);
    let deep = t.run.env.clone().var("OCF_CHECK_LEVEL", "10");
    let r = t.with(deep.clone(), "validate-all");
    assert_eq!(r.code, 0, "the site itself is fine: {}", r.stderr);
    let file = site.path("a-file");
    std::fs::write(&file, "x").unwrap();
    let piddir = site.path("piddir/x.pid");
    std::fs::create_dir_all(&piddir).unwrap();
    std::fs::create_dir_all(site.path("sockdir/s.sock")).unwrap();
    for (k, v, want, words) in [
        (
            "user",
            "no-such-user-rt",
            5,
            "user no-such-user-rt does not exist",
        ),
        (
            "group",
            "no-such-group-rt",
            5,
            "group no-such-group-rt does not exist",
        ),
        ("datadir", file.to_str().unwrap(), 5, "not a directory"),
        ("pid", piddir.to_str().unwrap(), 6, "is a directory"),
        (
            "socket",
            site.path("sockdir/s.sock").to_str().unwrap(),
            6,
            "is a directory",
        ),
    ] {
        let r = t.with(deep.clone().param(k, v), "validate-all");
        assert_eq!(r.code, want, "{k}={v}: {}", r.stderr);
        assert!(r.reason().unwrap().contains(words), "{k}: {}", r.stderr);
    }
    // Without enable_creation, a missing datadir (or one without system tables) is 5.
    let r = t.with(deep.param("enable_creation", "false"), "validate-all");
    assert_eq!(r.code, 5, "{}", r.stderr);
    // A pidfile that is a directory is 6 at depth 0 too.
    let r = t.with(
        t.run.env.clone().param("pid", piddir.to_str().unwrap()),
        "validate-all",
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
}

#[test]
fn mysql_directories_the_user_cannot_write_are_4_before_launch() {
    use std::os::unix::fs::PermissionsExt;
    let site = mysql_site("my-perm");
    let t = setup("mysql", &site);
    // A datadir of root's (0755): mariadbd would abort with Errcode 13.
    let data = site.path("data");
    std::fs::create_dir_all(&data).unwrap();
    world_readable(&data);
    let r = t.act("start");
    assert_eq!(r.code, 4, "{}", r.stderr);
    let reason = r.reason().unwrap();
    assert!(
        reason.contains(data.to_str().unwrap()) && reason.contains("user mysql"),
        "{reason}"
    );
    let r = t.with(
        t.run.env.clone().var("OCF_CHECK_LEVEL", "10"),
        "validate-all",
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(t.state_empty() && our_mariadbd().is_empty());
    // The pidfile's directory: the same.
    std::fs::remove_dir(&data).unwrap();
    let run = site.path("run");
    std::fs::create_dir_all(&run).unwrap();
    world_readable(&run);
    let r = t.act("start");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains(run.to_str().unwrap()),
        "{}",
        r.stderr
    );
    assert!(t.state_empty() && our_mariadbd().is_empty());
    std::fs::remove_dir(&run).unwrap();
    // A datadir of mysql's, initialised, but user=nobody.
    let mysql = nix::unistd::User::from_name("mysql").unwrap().unwrap();
    std::fs::create_dir_all(data.join("mysql")).unwrap();
    for d in [&data, &data.join("mysql")] {
        nix::unistd::chown(d.as_path(), Some(mysql.uid), Some(mysql.gid)).unwrap();
        std::fs::set_permissions(d, PermissionsExt::from_mode(0o700)).unwrap();
    }
    let r = t.with(t.run.env.clone().param("user", "nobody"), "start");
    assert_eq!(r.code, 4, "{}", r.stderr);
    let reason = r.reason().unwrap();
    assert!(
        reason.contains(data.to_str().unwrap()) && reason.contains("user nobody"),
        "{reason}"
    );
    assert!(t.state_empty() && our_mariadbd().is_empty());
}

#[test]
fn web_port_the_configuration_does_not_listen_on_is_6_up_front() {
    for (agent, site) in [
        ("nginx", nginx_site("ngx-badport")),
        ("lighttpd", lighttpd_site("ltp-badport")),
    ] {
        let t = setup(agent, &site);
        let env = t.run.env.clone().param("port", "65535");
        let r = t.with(env.clone().var("OCF_CHECK_LEVEL", "10"), "validate-all");
        assert_eq!(r.code, 6, "{agent}: {}", r.stderr);
        let reason = r.reason().unwrap();
        assert!(
            reason.contains("parameter port: 65535") && reason.contains("[8080]"),
            "{agent}: {reason}"
        );
        let r = t.with(env.clone(), "start");
        assert_eq!(r.code, 6, "{agent}: {}", r.stderr);
        assert!(t.state_empty());
        assert!(pids_of_exe(&format!("/usr/sbin/{agent}"))
            .iter()
            .all(|&p| procfs_netns_differs(p)));
        // The port it does listen on is fine.
        let env = t.run.env.clone().param("port", "8080");
        let r = t.with(env.var("OCF_CHECK_LEVEL", "10"), "validate-all");
        assert_eq!(r.code, 0, "{agent}: {}", r.stderr);
    }
}

#[test]
fn url_parameters_that_are_not_urls_are_6() {
    let bad = [
        "/nginx_status\nextra",
        "/nginx_status\r\n",
        "/a`id`",
        "/a;reboot",
        "/$(id)",
        "/a b",
        "http://127.0.0.1:8080/x y",
        "http://127.0.0.1$(id)/",
    ];
    for (agent, site, params) in [
        (
            "nginx",
            nginx_site("ngx-url"),
            &["status10url", "test20url"][..],
        ),
        (
            "lighttpd",
            lighttpd_site("ltp-url"),
            &["statusurl", "testurl"][..],
        ),
    ] {
        let t = setup(agent, &site);
        for k in params {
            for v in bad {
                let r = t.with(t.run.env.clone().param(k, v), "validate-all");
                assert_eq!(r.code, 6, "{agent} {k}={v:?}: {}", r.stderr);
                assert!(
                    r.reason().unwrap().contains(&format!("parameter {k}")),
                    "{}",
                    r.stderr
                );
            }
        }
        assert!(t.state_empty());
    }
}

#[test]
fn nginx_probe_at_depth_20_with_a_failing_check_is_1_while_it_runs() {
    let site = nginx_site("ngx-probe20");
    let t = setup("nginx", &site);
    t.expect("start", 0);
    // The probe comes with the parameters as they are now (test20url added since).
    let probe = |url: &str| {
        t.run
            .env
            .clone()
            .var("OCF_CHECK_LEVEL", "20")
            .param("test20url", url)
    };
    for (url, words) in [
        ("/missing.html", "404"),
        ("https://127.0.0.1/", "https is not supported"),
    ] {
        let r = t.with(probe(url), "monitor");
        assert_eq!(
            r.code, 1,
            "{url}: a running server is never 7: {}",
            r.stderr
        );
        assert!(r.reason().unwrap().contains(words), "{}", r.stderr);
    }
    assert_eq!(t.act("monitor").code, 0, "depth 0 says it runs");
    t.expect("stop", 0);
    assert_eq!(t.with(probe("/missing.html"), "monitor").code, 7);
}

#[test]
fn nginx_depth_30_runs_the_external_command_and_refuses_an_empty_one() {
    let site = nginx_site("ngx-30");
    let t = setup("nginx", &site);
    t.expect("start", 0);
    // A monitor does not validate first: the command is checked where it is run.
    let at30 = |cmd: &str| {
        t.run
            .env
            .clone()
            .var("OCF_CHECK_LEVEL", "30")
            .param("external_monitor30_cmd", cmd)
    };
    let r = t.with(at30("/bin/true"), "monitor");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = t.with(at30("/bin/sh -c 'echo broken >&2; exit 3'"), "monitor");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.reason().unwrap(),
        "external_monitor30_cmd failed (exit status: 3): broken"
    );
    let r = t.with(at30(" "), "monitor");
    assert_eq!(r.code, 1, "a running server is never 7: {}", r.stderr);
    assert_eq!(
        r.reason().unwrap(),
        "parameter external_monitor30_cmd: empty"
    );
    t.expect("stop", 0);
}

#[test]
fn nginx_stop_leaves_a_pidfile_path_that_is_not_its_pidfile() {
    let site = nginx_site("ngx-leftover");
    let t = setup("nginx", &site);
    let pf = site.path("nginx.pid");
    for replace in ["device", "other pid", "other text"] {
        t.expect("start", 0);
        let master = t.pid();
        let members = session_members(master);
        for &m in &members {
            signal(m, nix::sys::signal::Signal::SIGKILL);
        }
        wait_until("nginx to die", 5, || members.iter().all(|&m| !alive(m)));
        std::fs::remove_file(&pf).unwrap();
        match replace {
            "device" => {
                device_node(site.dir.path(), "nginx.pid");
            }
            "other pid" => std::fs::write(&pf, format!("{}\n", std::process::id())).unwrap(),
            _ => std::fs::write(&pf, "user www-data;\n").unwrap(),
        }
        t.expect("stop", 0);
        assert!(pf.exists(), "{replace}: {} removed", pf.display());
        if replace == "device" {
            assert!(is_char_device(&pf));
        }
        // ... and start refuses it (6) until it is gone, except a live pid (another process):
        // nginx overwrites a pidfile whose pid is not an nginx.
        let r = t.act("start");
        if replace == "other pid" {
            assert_eq!(r.code, 0, "{}", r.stderr);
            t.expect("stop", 0);
        } else {
            assert_eq!(r.code, 6, "{replace}: {}", r.stderr);
            std::fs::remove_file(&pf).unwrap();
        }
    }
}

/// Two starts under one instance name at the same moment (an admin's
/// `crm_resource --force-start` racing the cluster's). Needs the per-instance lock of
/// dispatch: the second start then finds the first one's server.
fn concurrent_starts(agent: &str, site: &Site, other: (&str, &str), same: bool) {
    let exe = match agent {
        "mysql" => "/usr/sbin/mariadbd".to_string(),
        a => format!("/usr/sbin/{a}"),
    };
    // Dropped last: whatever a failed assertion leaves of this server kind in this
    // thread's namespace is killed, by pid.
    let _reap = Reap(exe.clone());
    let t = setup(agent, site);
    let a = t.run.env.clone();
    let b = if same {
        a.clone()
    } else {
        a.clone().param(other.0, other.1)
    };
    let link = t.run.link.clone();
    let ns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let hs: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|env| {
                let link = link.clone();
                let ns = &ns;
                s.spawn(move || {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    env.run(&link, "start")
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    if same {
        assert_eq!(
            codes,
            [0, 0],
            "{agent}: {} | {}",
            runs[0].stderr,
            runs[1].stderr
        );
    } else {
        assert!(
            codes.contains(&0) && codes.iter().all(|&c| c == 0 || c == 1),
            "{agent}: {codes:?}: {} | {}",
            runs[0].stderr,
            runs[1].stderr
        );
    }
    let ours = || -> Vec<i32> {
        pids_of_exe(&exe)
            .into_iter()
            .filter(|&p| !procfs_netns_differs(p))
            .collect()
    };
    let leader = t.pid();
    assert!(ours()
        .iter()
        .all(|&p| procfs::stat(p).is_some_and(|s| s.session == leader)));
    assert_eq!(t.act("monitor").code, 0, "the recorded server runs");
    t.expect("stop", 0);
    assert!(
        ours().is_empty(),
        "{agent}: left running after stop 0: {:?}",
        ours()
    );
    if agent != "mysql" {
        assert!(
            http_get(HTTP_PORT, "/").is_none(),
            "{agent}: still listening"
        );
    }
    t.expect("monitor", 7);
}

/// Kills the processes of an executable in this thread's network namespace when dropped.
struct Reap(String);

impl Drop for Reap {
    fn drop(&mut self) {
        for p in pids_of_exe(&self.0) {
            if !procfs_netns_differs(p) {
                kill(p);
            }
        }
    }
}

#[test]
fn two_concurrent_starts_leave_one_server_and_a_stop_leaves_none() {
    for same in [true, false] {
        concurrent_starts(
            "nginx",
            &nginx_site("ngx-race"),
            // Other parameters that work too (a start with them can win the lock):
            // the site's own stub_status page, named explicitly.
            ("status10url", "/nginx_status"),
            same,
        );
        concurrent_starts(
            "lighttpd",
            &lighttpd_site("ltp-race"),
            ("statusurl", "/index.html"),
            same,
        );
    }
    for same in [true, false] {
        concurrent_starts(
            "mysql",
            &mysql_site("my-race"),
            ("test_table", "mysql.db"),
            same,
        );
    }
}

#[test]
fn a_start_with_other_parameters_while_running_is_refused_and_stop_leaves_nothing() {
    // What the lock makes of two concurrent starts, one after the other.
    for (agent, site, k, v) in [
        (
            "nginx",
            nginx_site("ngx-other"),
            "status10url",
            "/index.html",
        ),
        (
            "lighttpd",
            lighttpd_site("ltp-other"),
            "statusurl",
            "/index.html",
        ),
    ] {
        let t = setup(agent, &site);
        t.expect("start", 0);
        let pid = t.pid();
        let r = t.with(t.run.env.clone().param(k, v), "start");
        assert_eq!(r.code, 1, "{agent}: {}", r.stderr);
        assert!(
            r.reason().unwrap().contains("with other parameters"),
            "{}",
            r.stderr
        );
        assert_eq!(t.pid(), pid, "the running server is kept");
        t.expect("start", 0);
        let members = session_members(pid);
        t.expect("stop", 0);
        assert!(members.iter().all(|&m| !alive(m)));
        assert!(http_get(HTTP_PORT, "/").is_none());
    }
}

#[test]
fn an_unusable_state_directory_still_gives_probe_7_stop_0_and_finds_the_server() {
    for (agent, site) in [
        ("nginx", nginx_site("ngx-nostate")),
        ("lighttpd", lighttpd_site("ltp-nostate")),
        ("mysql", mysql_site("my-nostate")),
    ] {
        unusable_state_dir(agent, &site);
    }
}

fn unusable_state_dir(agent: &str, site: &Site) {
    let t = setup(agent, site);
    let plain = site.path("state-is-a-file");
    std::fs::write(&plain, "").unwrap();
    let broken = t
        .run
        .env
        .clone()
        .var("RUSTHA_STATE_DIR", plain.to_str().unwrap());
    assert_eq!(t.with(broken.clone(), "monitor").code, 7, "probe");
    assert_eq!(t.with(broken.clone(), "stop").code, 0, "stop");
    // A server of this instance runs (started while the state dir was fine).
    t.expect("start", 0);
    let members = session_members(t.pid());
    let r = t.with(broken.clone(), "monitor");
    assert_eq!(
        r.code, 0,
        "{agent}: found through its pidfile: {}",
        r.stderr
    );
    let r = t.with(broken.clone(), "stop");
    assert_eq!(r.code, 0, "{agent}: {}", r.stderr);
    assert!(members.iter().all(|&m| !alive(m)), "{agent}: stopped");
    assert_eq!(t.with(broken.clone(), "monitor").code, 7);
    assert_eq!(t.with(broken, "stop").code, 0);
}
