//! The daemon supervision used by every long-running helper: readiness, identity,
//! detaching, bounded stop with escalation. Driven through a test-only daemon,
//! `examples/test-sleeper.rs`, built on the same `rustha::daemon`.

mod common;

use common::*;
use ocf::Deadline;
use rustha::daemon::{self, Identity, Liveness, Spawn};
use std::time::{Duration, Instant};

fn sleeper(marker: &str, args: &[&str]) -> Spawn {
    Spawn {
        exe: sleeper_bin(),
        argv0: marker.to_string(),
        args: args.iter().copied().map(String::from).collect(),
    }
}

#[test]
fn ready_helper_detaches_with_null_stdio_and_stops_on_sigterm() {
    let marker = format!("rustha-test sleeper {}", instance("term"));
    let id = daemon::spawn(
        &sleeper(&marker, &[]),
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    assert!(id.is_alive());
    // setsid happens right after OK: give it a moment, bounded.
    let detached = Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(10), || {
        (pgrp_session(id.pid) == (id.pid, id.pid)).then_some(())
    });
    assert!(detached.is_some(), "helper did not become a session leader");
    for fd in 0..3 {
        let t = std::fs::read_link(format!("/proc/{}/fd/{fd}", id.pid)).unwrap();
        assert_eq!(t.to_str(), Some("/dev/null"), "fd {fd}");
    }
    // No pipe left open (the ready pipe). Right after setsid the helper briefly reads
    // /proc/self/smaps (giving back its start-up pages), which may show up as a file here.
    let pipes = || {
        std::fs::read_dir(format!("/proc/{}/fd", id.pid))
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("pipe:"))
            })
            .count()
    };
    assert_eq!(pipes(), 0, "ready pipe left open");
    let spec = sleeper(&marker, &[]);
    assert_eq!(daemon::find_running(&spec), vec![id.clone()]);
    daemon::terminate(&id, &Deadline::after(Duration::from_secs(10))).unwrap();
    assert!(!id.is_alive());
    assert!(daemon::find_running(&spec).is_empty());
    kill(id.pid);
}

#[test]
fn helper_that_ignores_sigterm_is_killed_after_two_thirds_of_the_deadline() {
    let marker = format!("rustha-test sleeper {}", instance("ignore"));
    let id = daemon::spawn(
        &sleeper(&marker, &["--ignore-term"]),
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    let t = Instant::now();
    let dl = Deadline::after(Duration::from_millis(1500));
    daemon::terminate(&id, &dl).unwrap();
    let took = t.elapsed();
    assert!(!id.is_alive(), "still alive after terminate returned Ok");
    // It waited the SIGTERM grace (2/3 of 1.5 s) before SIGKILL, and no longer than the deadline.
    assert!(
        took >= Duration::from_millis(950),
        "escalated too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "overran the deadline: {took:?}"
    );
    kill(id.pid);
}

#[test]
fn helper_reporting_an_error_passes_its_text_and_leaves_nothing() {
    let marker = format!("rustha-test sleeper {}", instance("fail"));
    let e = daemon::spawn(
        &sleeper(&marker, &["--fail"]),
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    assert_eq!(e.reason, "sleeper asked to fail");
    assert_eq!(e.status().code(), 1);
    assert!(pids_with_argv0_prefix(&marker).is_empty());
}

#[test]
fn helper_never_ready_is_killed_at_the_deadline() {
    let marker = format!("rustha-test sleeper {}", instance("never"));
    let t = Instant::now();
    let e = daemon::spawn(
        &sleeper(&marker, &["--never-ready"]),
        &Deadline::after(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert!(
        e.reason.contains("not ready before the action's timeout"),
        "{}",
        e.reason
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(
        pids_with_argv0_prefix(&marker).is_empty(),
        "a never-ready helper was left running"
    );
}

#[test]
fn missing_executable_is_an_error_not_a_panic() {
    let s = Spawn {
        exe: "/nonexistent/rustha".into(),
        argv0: "x".into(),
        args: vec![],
    };
    let e = daemon::spawn(&s, &Deadline::after(Duration::from_secs(1))).unwrap_err();
    assert!(e.reason.contains("cannot start x"), "{}", e.reason);
}

#[test]
fn a_zombie_counts_as_dead_and_terminate_returns_at_once() {
    // A child we never reap: after SIGKILL it stays a zombie, which `kill -0` calls alive.
    let mut child = std::process::Command::new(sleeper_bin())
        .arg("--never-ready")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let id = Identity::of(pid).unwrap();
    kill(pid);
    let z = Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(5), || {
        (id.liveness() == Liveness::Dead("is a zombie")).then_some(())
    });
    assert!(z.is_some(), "never saw the zombie");
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        "kill -0 says alive"
    );
    let t = Instant::now();
    daemon::terminate(&id, &Deadline::after(Duration::from_secs(10))).unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    child.wait().unwrap();
}

#[test]
fn a_reused_pid_is_not_ours() {
    let me = Identity::of(std::process::id() as i32).unwrap();
    let impostor = Identity {
        start_time: me.start_time.wrapping_sub(1),
        ..me.clone()
    };
    assert!(!impostor.is_alive());
    // Terminating a record whose pid now belongs to someone else must not signal it.
    daemon::terminate(&impostor, &Deadline::after(Duration::from_secs(1))).unwrap();
    assert!(me.is_alive());
}

#[test]
fn silence_stops_then_kills_even_a_helper_that_ignores_sigterm_without_waiting_for_it() {
    let marker = format!("rustha-test sleeper {}", instance("silence"));
    let id = daemon::spawn(
        &sleeper(&marker, &["--ignore-term"]),
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    let t0 = Instant::now();
    daemon::silence(&id, &Deadline::after(Duration::from_secs(10))).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "silence waited {:?}: it must not sit out a SIGTERM grace period",
        t0.elapsed()
    );
    // SIGKILLed while stopped: gone shortly, on its own.
    let gone = Deadline::after(Duration::from_secs(5))
        .poll(Duration::from_millis(10), || (!id.is_alive()).then_some(()));
    assert!(gone.is_some(), "pid {} still alive", id.pid);
    // A pid that is no longer ours is left alone.
    assert!(daemon::silence(&id, &Deadline::after(Duration::from_secs(1))).is_ok());
    kill(id.pid);
}

#[test]
fn find_running_goes_by_identity_and_only_in_our_network_namespace() {
    let marker = format!("rustha-test sleeper {}", instance("ns"));
    let id = daemon::spawn(
        &sleeper(&marker, &[]),
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    let helper = Stopped(id.clone());
    assert_eq!(
        daemon::find_running(&sleeper(&marker, &[])),
        vec![id.clone()]
    );
    // Its arguments are part of who it is; a marker alone is not enough.
    assert!(daemon::find_running(&sleeper(&marker, &["--other"])).is_empty());
    let other_marker = format!("{marker}x");
    assert!(daemon::find_running(&sleeper(&other_marker, &[])).is_empty());
    // The same process seen from another network namespace (another node of a lab on
    // this host: one pid namespace, one netns per node) is not that node's.
    let m = marker.clone();
    let seen = std::thread::spawn(move || {
        private_netns();
        daemon::find_running(&sleeper(&m, &[]))
    })
    .join()
    .unwrap();
    assert!(seen.is_empty(), "found from another netns: {seen:?}");
    drop(helper);
    assert!(daemon::find_running(&sleeper(&marker, &[])).is_empty());
}

/// The resident size (kB) of `pid`'s mappings of the binary `exe`.
fn exe_rss_kb(pid: i32, exe: &std::path::Path) -> u64 {
    let exe = std::fs::canonicalize(exe).unwrap();
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut ours = false;
    let mut kb = 0;
    for line in text.lines() {
        let head = line.split_ascii_whitespace().next().unwrap_or("");
        if head.contains('-') && !head.ends_with(':') {
            ours = line.ends_with(exe.to_str().unwrap());
        } else if ours && head == "Rss:" {
            kb += line
                .split_ascii_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
    }
    kb
}

/// A process this test started, SIGKILLed and reaped however the test ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A detached helper this test started, stopped by its identity however the test ends.
struct Stopped(Identity);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = daemon::terminate(&self.0, &Deadline::after(Duration::from_secs(10)));
    }
}

#[test]
fn a_ready_helper_gives_back_the_pages_its_start_up_touched() {
    // A production helper of the real binary (azure-lb's responder): ready, detached.
    let responder = |port: u16| -> Vec<String> {
        [
            rustha::agents::azure_lb::responder::ENTRY.to_string(),
            format!("127.0.0.1:{port}"),
            "dual".into(),
            "16".into(),
        ]
        .into()
    };
    let marker = format!("rustha-test responder {}", instance("trim"));
    let id = daemon::spawn(
        &Spawn {
            exe: bin(),
            argv0: marker,
            args: responder(free_port()),
        },
        &Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    let helper = Stopped(id.clone());
    // The same start-up, stopped before it is ready (so before it detaches): its ready
    // pipe is full, so its "OK" blocks.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_truncate(
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).unwrap(),
    );
    nix::fcntl::fcntl(
        &w,
        nix::fcntl::FcntlArg::F_SETFL(flags | nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    while nix::unistd::write(&w, &[0u8; 4096]).is_ok() {}
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let mut cmd = std::process::Command::new(bin());
    cmd.args(responder(free_port()))
        .env(daemon::READY_ENV, daemon::READY_FD.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(wfd, daemon::READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let untrimmed = Reaped(cmd.spawn().unwrap());
    drop(w);
    let upid = untrimmed.0.id() as i32;
    let dl = Deadline::after(Duration::from_secs(5));
    let asleep = |p: i32| {
        dl.poll(Duration::from_millis(5), || {
            (rustha::procfs::stat(p)?.state == 'S').then_some(())
        })
    };
    assert!(asleep(upid).is_some() && asleep(id.pid).is_some());
    let exe = bin();
    let untrimmed_kb = exe_rss_kb(upid, &exe);
    // It releases them right after it reported ready (start need not wait for that).
    let _ = Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(10), || {
        (exe_rss_kb(id.pid, &exe) * 2 < untrimmed_kb).then_some(())
    });
    let trimmed_kb = exe_rss_kb(id.pid, &exe);
    assert!(untrimmed_kb > 0, "no mapping of {} found", exe.display());
    assert!(
        trimmed_kb * 2 < untrimmed_kb,
        "ready helper maps {trimmed_kb} kB of the binary, one that did not detach {untrimmed_kb} kB"
    );
    // It still works: it stops on SIGTERM like any helper.
    daemon::terminate(&id, &Deadline::after(Duration::from_secs(10))).unwrap();
    assert!(!id.is_alive());
    drop((helper, untrimmed, r));
}
