//! Supervised helpers: spawn (re-exec of ourselves), readiness, identity, stop.
//!
//! The agent re-executes its own binary as a hidden helper. The helper sets up first
//! (binds its socket, ...), then reports `OK` or `ERR <text>` on fd 3, then `setsid`s;
//! its stdio is /dev/null from the start. Until it is ready it stays in the agent's
//! process group, so Pacemaker's SIGKILL of that group on a start timeout takes it too.
//! Liveness is pid + start time + boot id, and a zombie is dead; stop is SIGTERM, a wait
//! of up to 2/3 of what the deadline has left, SIGKILL, and a confirmed exit.

mod pages;

pub use pages::{clean_exe_mappings, parse_smaps, release_startup_pages, Mapping};

use crate::procfs;
use crate::state::Record;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use ocf::{Deadline, OcfError};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The fd on which a helper reports readiness, and the variable that tells it so.
pub const READY_FD: RawFd = 3;
pub const READY_ENV: &str = "RUSTHA_READY_FD";

/// Who a supervised process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
}

/// Whether the recorded process still runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead(&'static str),
}

impl Identity {
    /// The identity of the process `pid` now.
    pub fn of(pid: i32) -> Option<Identity> {
        let st = procfs::stat(pid)?;
        Some(Identity {
            pid,
            start_time: st.start_time,
            boot_id: procfs::boot_id(),
        })
    }

    pub fn write_to(&self, rec: &mut Record) {
        rec.set("pid", self.pid)
            .set("start_time", self.start_time)
            .set("boot_id", &self.boot_id);
    }

    pub fn read_from(rec: &Record) -> Option<Identity> {
        Some(Identity {
            pid: rec.parsed("pid").filter(|&p: &i32| p > 0)?,
            start_time: rec.parsed("start_time")?,
            boot_id: rec.get("boot_id")?.to_string(),
        })
    }

    pub fn liveness(&self) -> Liveness {
        if self.boot_id != procfs::boot_id() {
            return Liveness::Dead("recorded before the last boot");
        }
        match procfs::stat(self.pid) {
            None => Liveness::Dead("has exited"),
            Some(st) if st.start_time != self.start_time => {
                Liveness::Dead("has exited (its pid now belongs to another process)")
            }
            Some(st) if matches!(st.state, 'Z' | 'X' | 'x') => Liveness::Dead("is a zombie"),
            Some(_) => Liveness::Alive,
        }
    }

    pub fn is_alive(&self) -> bool {
        self.liveness() == Liveness::Alive
    }
}

/// What to run.
pub struct Spawn {
    pub exe: PathBuf,
    /// Shown by `ps`; also the marker by which strays are found.
    pub argv0: String,
    pub args: Vec<String>,
}

impl Spawn {
    /// Re-execute this very binary.
    pub fn helper(argv0: String, args: Vec<String>) -> Spawn {
        Spawn {
            exe: PathBuf::from("/proc/self/exe"),
            argv0,
            args,
        }
    }
}

fn wait_readable(fd: &impl AsFd, deadline: &Deadline) -> bool {
    loop {
        let left = deadline.remaining();
        let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Start a helper and wait (within `deadline`) for it to report ready.
pub fn spawn(spec: &Spawn, deadline: &Deadline) -> Result<Identity, OcfError> {
    spawn_transient(spec, deadline)?
        .ok_or_else(|| OcfError::generic(format!("{} exited right after it was ready", spec.argv0)))
}

/// As [`spawn`], for a helper that may finish its work (and exit) right after it
/// reported ready: `None` then means "done", not "failed".
pub fn spawn_transient(spec: &Spawn, deadline: &Deadline) -> Result<Option<Identity>, OcfError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| OcfError::generic(format!("pipe: {e}")))?;
    let mut child = command(spec, w.as_raw_fd())
        .spawn()
        .map_err(|e| OcfError::generic(format!("cannot start {}: {e}", spec.argv0)))?;
    drop(w);
    let pid = child.id() as i32;
    let (text, ready, timed_out) = read_ready(File::from(r), deadline);
    if ready && text == "OK" {
        // Deliberately not waited for: the helper outlives us, re-parented once we exit.
        return Ok(Identity::of(pid).filter(Identity::is_alive));
    }
    // Not ready: make sure it is gone, and reap it.
    let _ = child.kill();
    let status = child.wait().ok();
    Err(OcfError::generic(
        if let Some(err) = text.strip_prefix("ERR ") {
            err.to_string()
        } else if timed_out {
            format!("{} was not ready before the action's timeout", spec.argv0)
        } else {
            format!(
                "{} exited before it was ready ({})",
                spec.argv0,
                status.map_or("unknown status".into(), |s| s.to_string())
            )
        },
    ))
}

/// The helper's command: empty environment but the ready fd, `/` as its directory, null
/// stdio, the write end `wfd` of the ready pipe as fd [`READY_FD`], every other fd
/// close-on-exec.
fn command(spec: &Spawn, wfd: RawFd) -> Command {
    let mut cmd = Command::new(&spec.exe);
    cmd.arg0(&spec.argv0)
        .args(&spec.args)
        .env_clear()
        .env(READY_ENV, READY_FD.to_string())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (dup2, fcntl, close_range) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if wfd == READY_FD {
                if libc::fcntl(READY_FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(wfd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Whatever else our caller left open (inherited without CLOEXEC) must not
            // live on in a daemon: mark fds above the ready pipe close-on-exec.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(
                libc::SYS_close_range,
                READY_FD + 1,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    cmd
}

/// The helper's first line on the ready pipe, within `deadline`: (the line trimmed,
/// whether a whole line came, whether the deadline passed first).
fn read_ready(mut reader: File, deadline: &Deadline) -> (String, bool, bool) {
    let mut msg = Vec::new();
    let mut ready = false;
    let mut timed_out = false;
    let mut buf = [0u8; 512];
    while !msg.contains(&b'\n') {
        if !wait_readable(&reader, deadline) {
            timed_out = true;
            break;
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        ready = msg.contains(&b'\n');
    }
    (
        String::from_utf8_lossy(&msg).trim().to_string(),
        ready,
        timed_out,
    )
}

/// The helper's end of the readiness pipe.
pub struct Ready(Option<File>);

impl Ready {
    /// The channel set up by [`spawn`]; a helper run by hand has none and talks to stderr.
    pub fn from_env() -> Ready {
        let fd = std::env::var(READY_ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok());
        // SAFETY: spawn() placed the pipe's write end at exactly this fd for us.
        Ready(
            fd.filter(|&fd| fd == READY_FD)
                .map(|fd| unsafe { File::from_raw_fd(fd) }),
        )
    }

    pub fn ok(self) {
        if let Some(mut f) = self.0 {
            let _ = f.write_all(b"OK\n");
        }
    }

    pub fn fail(self, reason: &str) {
        let line = reason.replace('\n', " ");
        match self.0 {
            Some(mut f) => {
                let _ = writeln!(f, "ERR {line}");
            }
            None => eprintln!("{line}"),
        }
    }
}

/// After reporting ready: leave the agent's session and process group, and give back
/// the pages start-up touched (see [`release_startup_pages`]). Every long-lived helper
/// calls this once, when its set-up is done.
pub fn detach() {
    let _ = nix::unistd::setsid();
    release_startup_pages();
}

/// Wait until the process is dead (exited or zombie) or the deadline passes.
fn wait_dead(id: &Identity, pidfd: Option<&OwnedFd>, deadline: &Deadline) -> bool {
    match pidfd {
        // A pidfd becomes readable when the process exits; no polling, no reaping needed.
        Some(fd) => wait_readable(fd, deadline) || !id.is_alive(),
        None => deadline
            .poll(Duration::from_millis(50), || (!id.is_alive()).then_some(()))
            .is_some(),
    }
}

fn signal(id: &Identity, pidfd: Option<&OwnedFd>, sig: Signal) {
    match pidfd {
        Some(fd) => {
            procfs::pidfd_signal(fd, sig);
        }
        None => {
            if id.is_alive() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(id.pid), sig);
            }
        }
    }
}

/// Stop a supervised process: SIGTERM, up to 2/3 of the remaining time, SIGKILL,
/// confirm. `Ok` only when it is verified gone.
pub fn terminate(id: &Identity, deadline: &Deadline) -> Result<(), OcfError> {
    let pidfd = procfs::pidfd_open(id.pid);
    // The pidfd pins *a* process with this pid; make sure it is still ours.
    if !id.is_alive() {
        return Ok(());
    }
    signal(id, pidfd.as_ref(), Signal::SIGTERM);
    if wait_dead(id, pidfd.as_ref(), &deadline.portion(2, 3)) {
        return Ok(());
    }
    tracing::warn!("pid {} ignored SIGTERM; sending SIGKILL", id.pid);
    signal(id, pidfd.as_ref(), Signal::SIGKILL);
    if wait_dead(id, pidfd.as_ref(), deadline) {
        return Ok(());
    }
    Err(OcfError::generic(format!(
        "pid {} is still alive after SIGTERM and SIGKILL",
        id.pid
    )))
}

/// Make a process provably unable to do anything more, without waiting for its exit:
/// SIGSTOP, wait (bounded) until the kernel reports it stopped (or gone), then SIGKILL,
/// which a stopped process cannot escape. For helpers whose exit is slow for reasons
/// that do not matter to the caller (an announcer closing a packet socket waits ~20 ms
/// for an RCU grace period). Falls back to [`terminate`] if it never shows as stopped.
pub fn silence(id: &Identity, deadline: &Deadline) -> Result<(), OcfError> {
    let pidfd = procfs::pidfd_open(id.pid);
    if !id.is_alive() {
        return Ok(());
    }
    signal(id, pidfd.as_ref(), Signal::SIGSTOP);
    let stopped = deadline
        .portion(1, 3)
        .poll(Duration::from_micros(200), || match procfs::stat(id.pid) {
            Some(s) if s.start_time != id.start_time => Some(()),
            Some(s) if matches!(s.state, 'T' | 't' | 'Z' | 'X') => Some(()),
            Some(_) => None,
            None => Some(()),
        })
        .is_some();
    signal(id, pidfd.as_ref(), Signal::SIGKILL);
    if stopped {
        return Ok(());
    }
    terminate(id, deadline)
}

/// `pid`'s arguments, argv[0] first (`None` once it is gone).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    Some(
        raw.split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

fn netns_inode(pid: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Is `pid`'s executable the file `ours` names (`/proc/<pid>/exe`, read as a link)?
/// The same file, or -- after a package upgrade replaced it -- the deleted file that
/// had our path.
fn same_executable(pid: i32, ours: &std::path::Path) -> bool {
    let Some(theirs) = procfs::exe(pid) else {
        return false;
    };
    if theirs == ours {
        return true;
    }
    let t = theirs.to_string_lossy();
    t.strip_suffix(" (deleted)")
        .is_some_and(|p| std::path::Path::new(p) == ours)
}

/// Running processes of `spec`, found by identity alone (for helpers whose record was
/// lost, or could not be read): the same executable as `spec.exe`, exactly its argv[0]
/// (the marker naming agent and instance), its arguments starting with `spec.args`, and
/// in our network namespace (the nodes of a lab share one pid namespace; a helper of the
/// same instance on another node is not ours). Alive, with pid + start time.
pub fn find_running(spec: &Spawn) -> Vec<Identity> {
    let exe = match procfs::exe(std::process::id() as i32) {
        Some(me) if spec.exe == std::path::Path::new("/proc/self/exe") => Some(me),
        _ => std::fs::canonicalize(&spec.exe).ok(),
    };
    let Some(exe) = exe else {
        return vec![];
    };
    // thread-self: a test thread may have a namespace of its own.
    let our_ns = netns_inode("thread-self");
    let me = std::process::id() as i32;
    // Cheapest test first: reading a process's cmdline reads its memory (~10 us each);
    // its exe link is one readlink, and only our own binary's processes pass it.
    procfs::pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| same_executable(p, &exe))
        .filter(|&p| our_ns.is_some() && netns_inode(&p.to_string()) == our_ns)
        .filter(|&p| {
            cmdline(p).is_some_and(|argv| {
                argv.first() == Some(&spec.argv0)
                    && argv.len() > spec.args.len()
                    && argv[1..=spec.args.len()] == spec.args[..]
            })
        })
        .filter_map(Identity::of)
        .filter(Identity::is_alive)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_of_ourselves_and_records() {
        let me = Identity::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let mut rec = Record::default();
        me.write_to(&mut rec);
        assert_eq!(Identity::read_from(&rec), Some(me.clone()));
        let reused = Identity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(matches!(reused.liveness(), Liveness::Dead(_)));
        let old_boot = Identity {
            boot_id: "other".into(),
            ..me.clone()
        };
        assert_eq!(
            old_boot.liveness(),
            Liveness::Dead("recorded before the last boot")
        );
        assert_eq!(Identity::read_from(&Record::default()), None);
    }

    #[test]
    fn a_zombie_is_dead() {
        // A child we do not reap yet stays a zombie: kill -0 would call it alive.
        let mut child = Command::new("/bin/true").spawn().unwrap();
        let id = Identity::of(child.id() as i32).unwrap();
        let dl = Deadline::after(Duration::from_secs(5));
        assert!(dl
            .poll(Duration::from_millis(10), || (procfs::stat(id.pid)?.state
                == 'Z')
                .then_some(()))
            .is_some());
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(id.pid), None).is_ok());
        assert_eq!(id.liveness(), Liveness::Dead("is a zombie"));
        child.wait().unwrap();
        assert_eq!(id.liveness(), Liveness::Dead("has exited"));
    }
}
