//! A service's processes: launched in a session of their own, found again by session
//! and ancestry, stopped with a per-server signal schedule that ends in SIGKILL for
//! every member (workers included), verified gone.

use crate::daemon::Identity;
use crate::procfs;
use crate::state::Record;
use nix::sys::signal::Signal;
use ocf::{Deadline, OcfError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment a server starts with: nothing of the agent's (no `OCF_*`), a fixed PATH.
pub const SERVER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The server process tree as recorded: its leader's identity and its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub leader: Identity,
    /// The session the leader created (`setsid`); `None` for a server we did not start
    /// (found through its pidfile), whose members are then its descendants only.
    pub session: Option<i32>,
}

impl Group {
    pub fn write_to(&self, rec: &mut Record) {
        self.leader.write_to(rec);
        if let Some(s) = self.session {
            rec.set("session", s);
        }
    }

    pub fn read_from(rec: &Record) -> Option<Group> {
        Some(Group {
            leader: Identity::read_from(rec)?,
            session: rec.parsed("session"),
        })
    }

    /// Every live process of the service: the leader if it is still ours, members of
    /// its session, and descendants of either. A process that started before the
    /// leader cannot be ours; if the leader's pid now belongs to another process,
    /// only processes older than that one are.
    pub fn members(&self) -> Vec<i32> {
        if self.leader.boot_id != procfs::boot_id() {
            return vec![];
        }
        let table: HashMap<i32, procfs::Stat> = procfs::pids()
            .into_iter()
            .filter_map(|p| Some((p, procfs::stat(p)?)))
            .filter(|(_, s)| !matches!(s.state, 'Z' | 'X' | 'x'))
            .collect();
        let newest_ok = match table.get(&self.leader.pid) {
            Some(s) if s.start_time != self.leader.start_time => s.start_time,
            _ => u64::MAX,
        };
        let ours =
            |s: &procfs::Stat| s.start_time >= self.leader.start_time && s.start_time < newest_ok;
        let mut set: BTreeSet<i32> = table
            .iter()
            .filter(|(&p, s)| {
                ours(s)
                    && (p == self.leader.pid && s.start_time == self.leader.start_time
                        || self.session.is_some_and(|sid| s.session == sid))
            })
            .map(|(&p, _)| p)
            .collect();
        // Descendants (a member may have forked into a new session).
        loop {
            let more: Vec<i32> = table
                .iter()
                .filter(|(p, s)| !set.contains(p) && ours(s) && set.contains(&s.ppid))
                .map(|(&p, _)| p)
                .collect();
            if more.is_empty() {
                break;
            }
            set.extend(more);
        }
        set.into_iter().collect()
    }

    pub fn leader_alive(&self) -> bool {
        self.leader.is_alive()
    }
}

/// Split a parameter that holds extra command-line words (`options`,
/// `additional_parameters`) the way a POSIX shell splits words, quotes included, but
/// with no expansion of any kind: no variables, globs, command substitution or
/// redirection. A value the shell would need more for is refused.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c)
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c @ ('$' | '`')) => {
                            return Err(format!("{c} inside double quotes (no expansion is done)"))
                        }
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            '$' | '`' | '|' | ';' | '&' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '~' => {
                return Err(format!(
                    "'{c}' would need a shell; quote it ('...') if it is meant literally"
                ))
            }
            c => {
                in_word = true;
                cur.push(c)
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Start `bin args...` as the leader of a new session, stdio to `console` (truncated),
/// with a clean environment. The child is returned unwaited: the caller watches it
/// until ready, and afterwards it is re-parented when the agent exits.
pub fn launch(
    bin: &Path,
    args: &[OsString],
    env: &[(&str, &str)],
    console: &Path,
) -> Result<Child, OcfError> {
    if let Some(dir) = console.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let out = std::fs::File::create(console)
        .map_err(|e| OcfError::generic(format!("cannot create {}: {e}", console.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| OcfError::generic(format!("dup: {e}")))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", SERVER_PATH)
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(
                libc::SYS_close_range,
                3,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| OcfError::generic(format!("cannot start {}: {e}", bin.display())))
}

fn send(pids: &[i32], sig: Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
}

/// The processes a stop is after: every member seen so far (by pid + start time), so
/// that a descendant re-parented away when its parent dies is still followed.
struct Tracked<'a> {
    group: &'a Group,
    known: BTreeMap<i32, u64>,
}

impl Tracked<'_> {
    fn alive(&mut self) -> Vec<i32> {
        for p in self.group.members() {
            if let Some(s) = procfs::stat(p) {
                self.known.entry(p).or_insert(s.start_time);
            }
        }
        self.known.retain(|&p, &mut st| {
            procfs::stat(p)
                .is_some_and(|s| s.start_time == st && !matches!(s.state, 'Z' | 'X' | 'x'))
        });
        self.known.keys().copied().collect()
    }

    fn wait_empty(&mut self, deadline: &Deadline) -> bool {
        deadline
            .poll(Duration::from_millis(50), || {
                self.alive().is_empty().then_some(())
            })
            .is_some()
    }
}

/// One step of a stop: a signal for the main process and the share of the remaining
/// time it gets (`num/den`).
#[derive(Clone, Copy, Debug)]
pub struct StopStep {
    pub signal: Signal,
    pub num: u32,
    pub den: u32,
}

/// Stop the whole group: each step's signal to `main` (the server's main process), each
/// followed by a bounded wait for *every* member to be gone; then SIGKILL to every member
/// (a stopped or hung worker included) until none is left or the deadline passes. `Ok`
/// only when no member is left.
pub fn stop(
    group: &Group,
    main: Option<i32>,
    steps: &[StopStep],
    deadline: &Deadline,
) -> Result<(), OcfError> {
    let mut t = Tracked {
        group,
        known: BTreeMap::new(),
    };
    if t.alive().is_empty() {
        return Ok(());
    }
    for step in steps {
        let members = t.alive();
        if members.is_empty() {
            return Ok(());
        }
        let target = main.filter(|m| members.contains(m)).or_else(|| {
            members
                .contains(&group.leader.pid)
                .then_some(group.leader.pid)
        });
        match target {
            Some(p) => {
                tracing::info!("sending {} to pid {p}", step.signal.as_str());
                send(&[p], step.signal);
            }
            // The main process is gone: its leftovers get the signal themselves.
            None => send(&members, step.signal),
        }
        if t.wait_empty(&deadline.portion(step.num, step.den)) {
            return Ok(());
        }
    }
    let left = t.alive();
    if left.is_empty() {
        return Ok(());
    }
    tracing::warn!("still running after the graceful stop: pids {left:?}; sending SIGKILL");
    // Repeat: a member may fork between our scan and the signal.
    let gone = deadline
        .poll(Duration::from_millis(20), || {
            let m = t.alive();
            send(&m, Signal::SIGKILL);
            m.is_empty().then_some(())
        })
        .is_some();
    if gone {
        return Ok(());
    }
    Err(OcfError::generic(format!(
        "processes {:?} are still alive after SIGKILL",
        t.alive()
    )))
}

/// The last `n` non-empty lines of a text file (for exit reasons).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(16384)..]).into_owned();
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_a_shell_without_expansion() {
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert_eq!(
            split_words(" -g  'worker_processes 2;' --x=\"a b\" c\\ d").unwrap(),
            ["-g", "worker_processes 2;", "--x=a b", "c d"]
        );
        assert_eq!(split_words("--a='' b").unwrap(), ["--a=", "b"]);
        for bad in [
            "$(id)",
            "a;b",
            "`id`",
            "a | b",
            "'open",
            "\"$HOME\"",
            "x > y",
            "*",
        ] {
            assert!(split_words(bad).is_err(), "{bad}");
        }
        assert_eq!(split_words("'$(id)'").unwrap(), ["$(id)"]);
    }

    #[test]
    fn members_follow_session_and_ancestry() {
        let dir = std::env::temp_dir().join(format!("rustha-group-{}", std::process::id()));
        let console = dir.join("console");
        // A session leader with a child in the same session and a grandchild in another.
        let mut child = launch(
            Path::new("/bin/sh"),
            &["-c".into(), "sleep 30 & setsid sleep 31 & wait".into()],
            &[],
            &console,
        )
        .unwrap();
        let pid = child.id() as i32;
        let group = Group {
            leader: Identity::of(pid).unwrap(),
            session: Some(pid),
        };
        let dl = Deadline::after(Duration::from_secs(5));
        let members = dl
            .poll(Duration::from_millis(10), || {
                let m = group.members();
                (m.len() == 3).then_some(m)
            })
            .expect("leader + 2 children");
        assert!(members.contains(&pid));
        stop(
            &group,
            None,
            &[StopStep {
                signal: Signal::SIGTERM,
                num: 1,
                den: 2,
            }],
            &dl,
        )
        .unwrap();
        let _ = child.wait();
        assert!(group.members().is_empty());
        for m in members {
            assert!(procfs::stat(m).is_none_or(|s| s.state == 'Z'), "{m} left");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
