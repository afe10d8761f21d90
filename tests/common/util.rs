//! Small helpers every integration test uses: the checkout, running a command, signals,
//! bounded waits, directories other users must reach, free ports, the processes of a
//! network namespace found by its identity (inode), never by a name, and the child
//! processes a test started (killed and reaped by handle).

use super::Run;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The checkout (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `c` to its end and collect its exit code and output; a command that cannot be
/// started at all fails the test, naming it.
pub fn out(c: &mut Command) -> Run {
    Run::from(c.output().unwrap_or_else(|e| panic!("{c:?}: {e}")))
}

/// Send `sig` to the process `pid`. A process that is already gone is not an error (the
/// caller waits for what it wants to see); any other failure is. Never a process group:
/// a pid ≤ 0 is refused (kill(0) or kill(-1) would hit the test itself or everything).
pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    assert!(pid > 0, "signal {sig:?} to pid {pid}: not a single process");
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => panic!("signal {sig:?} to {pid}: {e}"),
    }
}

/// Poll `f` every 20 ms until it holds; fail the test naming `what` after `secs`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Make `dir` traversable and readable by every user (0755): ocf-tester runs meta-data
/// as nobody, and the servers run as their own users.
pub fn world_readable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod 0755 {}: {e}", dir.display()));
}

/// A TCP port on loopback that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// The network namespace of the calling thread, by its inode.
pub fn thread_netns() -> u64 {
    netns_of("thread-self").expect("/proc/thread-self/ns/net")
}

/// The network namespace of process `pid` (by inode), if it still exists.
pub fn netns_of_pid(pid: i32) -> Option<u64> {
    netns_of(&pid.to_string())
}

fn netns_of(proc_entry: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{proc_entry}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Every process inside the network namespace `ns` but this test process, zombies
/// included: what the agents started there, found by the namespace's identity.
pub fn pids_in_netns(ns: u64) -> Vec<i32> {
    let me = std::process::id() as i32;
    rustha::procfs::pids()
        .into_iter()
        .filter(|&p| p != me && netns_of_pid(p) == Some(ns))
        .collect()
}

/// The live (not zombie) processes of `pids`, each with its start time: a process's
/// identity, so that a pid reused later is not taken for it.
pub fn live_with_start_time(pids: &[i32]) -> Vec<(i32, u64)> {
    pids.iter()
        .filter_map(|&p| rustha::procfs::stat(p).map(|s| (p, s)))
        .filter(|(_, s)| s.state != 'Z')
        .map(|(p, s)| (p, s.start_time))
        .collect()
}

/// Processes a test started (`std::process::Child`), killed and reaped when the test
/// ends, whatever happened.
#[derive(Default)]
pub struct Children(pub Vec<std::process::Child>);

impl Children {
    /// Keep `c`; its pid.
    pub fn push(&mut self, c: std::process::Child) -> u32 {
        let pid = c.id();
        self.0.push(c);
        pid
    }
    /// Has the process `pid` (one of ours) exited? Reaps it, waiting up to 5 s: for a
    /// process an agent has just stopped, which it saw exit on its pidfd.
    pub fn gone(&mut self, pid: u32) -> bool {
        let c = self.0.iter_mut().find(|c| c.id() == pid).unwrap();
        for _ in 0..100 {
            if c.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
    /// Kill and reap every one now.
    pub fn end_all(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.end_all();
    }
}
