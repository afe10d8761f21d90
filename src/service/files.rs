//! The files a server makes or writes (pidfile, unix socket, error log), checked before a
//! start and before anything is removed after a stop: a path that names something else
//! (a device such as /dev/null, a directory, another program's file) is refused at
//! validate/start and never deleted.

use ocf::OcfError;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What a path is, for a reason.
pub fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// The most bytes a pidfile holds (a pid, a newline).
const PIDFILE_MAX: u64 = 32;

/// What an existing pidfile holds: `Some(None)` empty, `Some(Some(pid))` a pid, `None`
/// anything else (not a pidfile).
pub fn pidfile_content(path: &Path) -> Option<Option<i32>> {
    use std::io::Read;
    // At most one byte more than a pidfile holds: a large file is not read whole, and a
    // FIFO or device is not opened at all.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.file_type().is_file() {
        return None;
    }
    let mut text = Vec::new();
    f.take(PIDFILE_MAX + 1).read_to_end(&mut text).ok()?;
    if text.len() as u64 > PIDFILE_MAX {
        return None;
    }
    let text = std::str::from_utf8(&text).ok()?.trim();
    if text.is_empty() {
        return Some(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&p: &i32| p > 0).map(Some)
}

/// The uid that owns `path` (not following a final symbolic link).
pub fn owner(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path).ok().map(|m| m.uid())
}

/// The configuration file the server is to read: a file (else -> 5, "does not exist").
pub fn check_config(config: &Path) -> Result<(), OcfError> {
    if config.is_file() {
        return Ok(());
    }
    Err(OcfError::not_installed(format!(
        "configuration file {} does not exist",
        config.display()
    )))
}

/// A pidfile the server is to write: absent, or a regular file (not a link) holding a
/// pid or nothing, and (`owner`) belonging to the user the server writes it as. `what`
/// names it in the reason (`parameter pid`, `the pidfile of the configuration`).
pub fn check_pidfile(what: &str, path: &Path, owner: Option<(u32, &str)>) -> Result<(), OcfError> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unusable(what, path, &e)),
    };
    if !m.file_type().is_file() {
        return Err(not_a(what, path, &m, "a pidfile"));
    }
    if pidfile_content(path).is_none() {
        return Err(OcfError::configured(format!(
            "{what}: {} exists and holds something else than a pid ({} bytes); not a pidfile",
            path.display(),
            m.len()
        )));
    }
    check_owner(what, path, &m, owner)
}

/// `what`'s path cannot even be looked at (a permission, a loop, a broken mount).
fn unusable(what: &str, path: &Path, e: &std::io::Error) -> OcfError {
    OcfError::configured(format!("{what}: {} is unusable: {e}", path.display()))
}

/// `what`'s path exists and is of another kind than `thing`.
fn not_a(what: &str, path: &Path, m: &Metadata, thing: &str) -> OcfError {
    OcfError::configured(format!(
        "{what}: {} exists and is {}, not {thing}",
        path.display(),
        kind(m)
    ))
}

fn check_owner(
    what: &str,
    path: &Path,
    m: &Metadata,
    owner: Option<(u32, &str)>,
) -> Result<(), OcfError> {
    match owner {
        Some((uid, user)) if m.uid() != uid => Err(OcfError::perm(format!(
            "{what}: {} belongs to uid {}, not to {user} (uid {uid}) that the server runs as",
            path.display(),
            m.uid()
        ))),
        _ => Ok(()),
    }
}

/// A unix socket the server is to create: absent, or a socket (a stale one is replaced).
pub fn check_socket(what: &str, path: &Path) -> Result<(), OcfError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(m) => Err(not_a(what, path, &m, "a socket")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(unusable(what, path, &e)),
    }
}

/// A log the server appends to: absent, or a regular file (a link to one is followed)
/// belonging to the server's user (`owner`).
pub fn check_log(what: &str, path: &Path, owner: Option<(u32, &str)>) -> Result<(), OcfError> {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling link: creating the log would create its target somewhere else.
            if let Ok(l) = std::fs::symlink_metadata(path) {
                return Err(OcfError::configured(format!(
                    "{what}: {} is {} to nothing",
                    path.display(),
                    kind(&l)
                )));
            }
            return Ok(());
        }
        Err(e) => return Err(unusable(what, path, &e)),
    };
    if !m.file_type().is_file() {
        return Err(not_a(what, path, &m, "a log file"));
    }
    check_owner(what, path, &m, owner)
}

/// A user, as the server runs: uid, primary gid, supplementary groups.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl RunAs {
    pub fn lookup(name: &str) -> Option<RunAs> {
        let (uid, gid) = nss::user(name)?;
        let mut groups = nss::initgroups(name).unwrap_or_default();
        if !groups.contains(&gid) {
            groups.insert(0, gid);
        }
        Some(RunAs {
            name: name.to_string(),
            uid,
            gid,
            groups,
        })
    }

    /// Can this user create files in directory `dir` (write + search, every parent
    /// searchable)? Asked of the kernel itself: a child process takes the user's ids and
    /// calls access(2), so modes, ACLs and read-only mounts all count.
    pub fn can_write_dir(&self, dir: &Path) -> bool {
        if self.uid == 0 {
            // root may still be refused by a read-only mount: ask too, as root.
            return nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
        }
        let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        let groups: Vec<libc::gid_t> = self.groups.clone();
        // SAFETY: between fork and _exit the child makes only raw system calls (no
        // allocation, no locks); every argument was prepared before the fork.
        unsafe {
            let pid = libc::fork();
            if pid < 0 {
                return false;
            }
            if pid == 0 {
                let ok = libc::setgroups(groups.len(), groups.as_ptr()) == 0
                    && libc::setgid(self.gid) == 0
                    && libc::setuid(self.uid) == 0
                    && libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0;
                libc::_exit(if ok { 0 } else { 1 });
            }
            let mut status = 0;
            loop {
                let r = libc::waitpid(pid, &mut status, 0);
                if r == pid {
                    break;
                }
                if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return false;
                }
            }
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }
}

/// User and group look-ups without the C library's NSS in this process. The release
/// binary links glibc statically, and a static glibc that loads an NSS module
/// (`libnss_systemd` for a name not in /etc/group, say) pulls the shared libc into the
/// process and crashes (SIGSEGV). So the look-up is asked of `getent`, which is
/// dynamically linked and sees exactly what nsswitch.conf says (files, LDAP, sssd);
/// argv only, no shell, bounded. Without getent: /etc/passwd and /etc/group.
pub mod nss {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const GETENT: &str = "/usr/bin/getent";
    /// NSS back-ends (LDAP) can be slow; a look-up never takes longer than this.
    const LIMIT: Duration = Duration::from_secs(5);

    /// `getent <db> <key>`: `Some(lines)` when found, `None` when not (or no answer).
    fn getent(db: &str, key: &str) -> Option<Option<String>> {
        if !std::path::Path::new(GETENT).exists() {
            return None;
        }
        let mut child = Command::new(GETENT)
            .args([db, "--", key])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let end = Instant::now() + LIMIT;
        let mut step = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < end => {
                    std::thread::sleep(step);
                    step = (step * 2).min(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Some(None);
                }
            }
        }
        let out = child.wait_with_output().ok()?;
        Some(
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()),
        )
    }

    /// The entry of `name` in a colon-separated database file.
    fn file_entry(path: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .map(String::from)
    }

    fn entry(db: &str, file: &str, name: &str) -> Option<String> {
        if name.is_empty() || name.contains(':') {
            return None;
        }
        match getent(db, name) {
            Some(found) => found,
            None => file_entry(file, name),
        }
    }

    /// uid and primary gid of user `name`.
    pub fn user(name: &str) -> Option<(u32, u32)> {
        let line = entry("passwd", "/etc/passwd", name)?;
        let f: Vec<&str> = line.trim().split(':').collect();
        Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
    }

    /// gid of group `name`.
    pub fn group(name: &str) -> Option<u32> {
        let line = entry("group", "/etc/group", name)?;
        line.trim().split(':').nth(2)?.parse().ok()
    }

    /// Every group `name` belongs to (as initgroups(3) would set them).
    pub fn initgroups(name: &str) -> Option<Vec<u32>> {
        match getent("initgroups", name) {
            Some(found) => Some(
                found?
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|g| g.parse().ok())
                    .collect(),
            ),
            None => {
                let text = std::fs::read_to_string("/etc/group").ok()?;
                Some(
                    text.lines()
                        .filter_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            let members = f.get(3)?;
                            members
                                .split(',')
                                .any(|m| m == name)
                                .then(|| f.get(2)?.parse().ok())?
                        })
                        .collect(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_without_nss_in_this_process() {
        assert_eq!(nss::user("root"), Some((0, 0)));
        assert_eq!(nss::group("root"), Some(0));
        assert!(nss::initgroups("root").is_some());
        assert!(RunAs::lookup("root").unwrap().groups.contains(&0));
        for odd in ["no-such-user-rustha", "", "a:b", "-x"] {
            assert_eq!(nss::user(odd), None, "{odd}");
            assert_eq!(nss::group(odd), None, "{odd}");
        }
        let nobody = RunAs::lookup("nobody").unwrap();
        assert!(nobody.uid > 0 && nobody.groups.contains(&nobody.gid));
    }

    #[test]
    fn pidfiles_devices_and_owners() {
        let dir = std::env::temp_dir().join(format!("rustha-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pf = dir.join("x.pid");
        assert!(check_pidfile("p", &pf, None).is_ok(), "absent is fine");
        std::fs::write(&pf, "1234\n").unwrap();
        assert_eq!(pidfile_content(&pf), Some(Some(1234)));
        assert!(check_pidfile("p", &pf, Some((0, "root"))).is_ok());
        let e = check_pidfile("p", &pf, Some((4242, "someone"))).unwrap_err();
        assert_eq!(e.kind, ocf::ErrorKind::Perm, "{e:?}");
        std::fs::write(&pf, "").unwrap();
        assert_eq!(pidfile_content(&pf), Some(None));
        std::fs::write(&pf, "[mysqld]\nuser=mysql\n").unwrap();
        let e = check_pidfile("p", &pf, None).unwrap_err();
        assert_eq!(e.kind, ocf::ErrorKind::Configured, "{e:?}");
        let e = check_pidfile("p", &dir, None).unwrap_err();
        assert_eq!(e.kind, ocf::ErrorKind::Configured, "{e:?}");
        assert_eq!(
            e.reason,
            format!(
                "p: {} exists and is a directory, not a pidfile",
                dir.display()
            )
        );
        let e = check_log("l", &dir, None).unwrap_err();
        assert_eq!(e.kind, ocf::ErrorKind::Configured, "{e:?}");
        assert_eq!(
            e.reason,
            format!(
                "l: {} exists and is a directory, not a log file",
                dir.display()
            )
        );
        // A FIFO is neither opened for long nor taken for a pidfile; a big file is not read whole.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(pidfile_content(&fifo), None);
        assert_eq!(
            check_pidfile("p", &fifo, None).unwrap_err().reason,
            format!("p: {} exists and is a FIFO, not a pidfile", fifo.display())
        );
        let big = dir.join("big");
        std::fs::write(&big, "1".repeat(1 << 20)).unwrap();
        assert_eq!(pidfile_content(&big), None);
        let e = check_socket("s", &pf).unwrap_err();
        assert_eq!(e.kind, ocf::ErrorKind::Configured, "{e:?}");
        assert_eq!(
            e.reason,
            format!(
                "s: {} exists and is a regular file, not a socket",
                pf.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_configuration_file_that_is_not_one_is_not_installed() {
        let dir = std::env::temp_dir().join(format!("rustha-files-c-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("x.conf");
        for absent in [&conf, &dir] {
            let e = check_config(absent).unwrap_err();
            assert_eq!(e.kind, ocf::ErrorKind::Installed, "{e:?}");
            assert_eq!(
                e.reason,
                format!("configuration file {} does not exist", absent.display())
            );
        }
        std::fs::write(&conf, "").unwrap();
        assert!(check_config(&conf).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_access_asked_as_the_user() {
        let dir = std::env::temp_dir().join(format!("rustha-files-w-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        if let Some(nobody) = RunAs::lookup("nobody") {
            if nix::unistd::geteuid().is_root() {
                assert!(!nobody.can_write_dir(&dir), "root's 0755 directory");
                std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                    .unwrap();
                assert!(nobody.can_write_dir(&dir));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
