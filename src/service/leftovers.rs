//! After a stop (or a failed start): what the server left behind is removed, and only
//! that — its pidfile when it names the stopped server, its unix socket when nobody
//! answers on it, the console capture.

use super::group::Group;
use super::{console_path, files, key};
use crate::procfs;
use crate::state::{Record, StateFile};
use ocf::Deadline;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether `pf` is the pidfile the stopped server left: a regular file (not a link)
/// holding the pid of one of the `stopped` processes, now gone, or empty and owned by
/// the server's user (`owner`). Anything else is somebody else's: `Err` says what.
fn own_pidfile(pf: &Path, stopped: &[i32], owner: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(pf).map_err(|e| e.to_string())?;
    if !m.file_type().is_file() {
        return Err(format!("it is {}", files::kind(&m)));
    }
    match files::pidfile_content(pf) {
        Some(Some(pid)) if !stopped.contains(&pid) => Err(format!(
            "it holds pid {pid}, not one of the stopped server's ({stopped:?})"
        )),
        Some(Some(pid)) if procfs::stat(pid).is_some_and(|s| s.state != 'Z') => {
            Err(format!("pid {pid} runs again"))
        }
        Some(Some(_)) => Ok(()),
        Some(None) if m.uid() == owner => Ok(()),
        Some(None) => Err(format!(
            "it is empty and belongs to uid {}, not to the server's uid {owner}",
            m.uid()
        )),
        None => Err(format!("it does not hold a pid ({} bytes)", m.len())),
    }
}

/// Remove what a server leaves behind after it was stopped or killed, and only that:
/// its pidfile (see [`own_pidfile`]) and its unix socket (a socket nobody answers on).
/// Anything else at those paths is left, with a warning. `stopped`: the pids of the
/// server that was stopped (its leader and every member seen). Within the action's
/// `deadline`, like every wait.
pub(super) fn clean_leftovers(
    rec: &Record,
    state: &StateFile,
    deadline: &Deadline,
    stopped: &[i32],
) {
    if let Some(pf) = rec.get(key::PIDFILE).map(PathBuf::from) {
        if std::fs::symlink_metadata(&pf).is_ok() {
            match own_pidfile(&pf, stopped, rec.parsed(key::OWNER).unwrap_or(0)) {
                Ok(()) => match std::fs::remove_file(&pf) {
                    Ok(()) => tracing::info!("removed stale pidfile {}", pf.display()),
                    Err(e) => tracing::warn!("cannot remove pidfile {}: {e}", pf.display()),
                },
                Err(why) => tracing::warn!(
                    "left {} in place: {why}; not the pidfile of the stopped server",
                    pf.display()
                ),
            }
        }
    }
    if let Some(sock) = rec.get(key::SOCKET).map(PathBuf::from) {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(m) = std::fs::symlink_metadata(&sock) {
            if !m.file_type().is_socket() {
                tracing::warn!(
                    "left {} in place: it is {}, not the server's socket",
                    sock.display(),
                    files::kind(&m)
                );
            }
        }
        // A killed multi-threaded server shows as a zombie while its other threads still
        // exit, holding its sockets a moment longer: give that a second before deciding
        // that whoever still answers on the socket is somebody else.
        let stale = std::fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_socket())
            && deadline
                .cap(Duration::from_secs(1))
                .poll(Duration::from_millis(20), || {
                    std::os::unix::net::UnixStream::connect(&sock)
                        .is_err()
                        .then_some(())
                })
                .is_some();
        if stale && std::fs::remove_file(&sock).is_ok() {
            tracing::info!("removed stale socket {}", sock.display());
        }
    }
    let _ = std::fs::remove_file(console_path(state));
}

/// The pids a stop is about: the leader and every member seen now.
pub(super) fn stopped_pids(g: &Group, members: &[i32]) -> Vec<i32> {
    let mut v = members.to_vec();
    if !v.contains(&g.leader.pid) {
        v.push(g.leader.pid);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stopped_servers_pidfile_is_its_own() {
        let dir = std::env::temp_dir().join(format!("rustha-own-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pf = dir.join("x.pid");
        // A pid that ran and is gone.
        let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
        let dead = c.id() as i32;
        c.wait().unwrap();
        std::fs::write(&pf, format!("{dead}\n")).unwrap();
        assert_eq!(own_pidfile(&pf, &[dead], 0), Ok(()));
        assert!(own_pidfile(&pf, &[dead + 1], 0).is_err(), "another pid");
        let me = std::process::id() as i32;
        std::fs::write(&pf, format!("{me}\n")).unwrap();
        assert!(own_pidfile(&pf, &[me], 0).is_err(), "a live process");
        std::fs::write(&pf, "").unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(own_pidfile(&pf, &[], uid), Ok(()), "empty, the server's");
        assert!(own_pidfile(&pf, &[], uid + 1).is_err(), "empty, another's");
        std::fs::write(&pf, "[mysqld]\nuser=mysql\n").unwrap();
        assert!(own_pidfile(&pf, &[dead], 0).is_err(), "not a pidfile");
        assert!(own_pidfile(&dir, &[dead], 0).is_err(), "a directory");
        let link = dir.join("link.pid");
        std::fs::write(&pf, format!("{dead}\n")).unwrap();
        std::os::unix::fs::symlink(&pf, &link).unwrap();
        assert!(own_pidfile(&link, &[dead], 0).is_err(), "a link");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
