//! Who uses a mount: every process whose cwd, root, executable, open files or mapped
//! files are on it, found by **mount id** (statx `STATX_MNT_ID`), never by path. One pass
//! over /proc; `AT_STATX_DONT_SYNC` so that a file on a dead NFS server is answered from
//! the cache instead of asking the server. A bind mount's users are the users of that
//! bind mount only (its mount id), never those of the filesystem under it or of `/`.
//!
//! A process in another mount namespace sees copies of our mounts with other ids: the
//! copies of ours there are the mounts of that namespace on the same device with the same
//! root (or below it), read once per namespace from its `/proc/<pid>/mountinfo`.

use crate::mountinfo::{self, Mount};
use crate::procfs;
use ocf::Deadline;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What is being unmounted: the mounts (ours and those below it) in our namespace.
pub struct Target {
    pub ids: HashSet<u64>,
    /// (device, root) of each, to find their copies in other namespaces.
    pub shapes: Vec<((u32, u32), PathBuf)>,
    /// Our mount namespace (inode of /proc/self/ns/mnt).
    pub ns: u64,
}

impl Target {
    pub fn new(mounts: &[&Mount]) -> Target {
        Target {
            ids: mounts.iter().map(|m| u64::from(m.id)).collect(),
            shapes: mounts.iter().map(|m| (m.dev, m.root.clone())).collect(),
            ns: ns_of("self").unwrap_or(0),
        }
    }

    /// The ids of our mounts' copies in the namespace of `pid`.
    fn copies_in(&self, pid: i32) -> HashSet<u64> {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return HashSet::new();
        };
        mountinfo::parse(&text)
            .into_iter()
            .filter(|m| {
                self.shapes
                    .iter()
                    .any(|(dev, root)| m.dev == *dev && m.root.starts_with(root))
            })
            .map(|m| u64::from(m.id))
            .collect()
    }
}

/// A process found using the mount, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub pid: i32,
    /// Start time (ticks after boot): with the pid, the process's identity.
    pub start: u64,
    pub how: &'static str,
}

fn ns_of(pid: &str) -> Option<u64> {
    let l = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    let s = l.to_str()?;
    s.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

/// The mount id of what `path` (a /proc magic link) points to, without asking a remote
/// server (`AT_STATX_DONT_SYNC`).
fn mnt_id(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx fills the zeroed struct we own.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    (rc == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

/// How `pid` uses one of `ids`, if it does.
fn uses(pid: i32, ids: &HashSet<u64>, devs: &[(u32, u32)]) -> Option<&'static str> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    for (link, how) in [("cwd", "cwd"), ("root", "root"), ("exe", "exe")] {
        if mnt_id(&base.join(link)).is_some_and(|id| ids.contains(&id)) {
            return Some(how);
        }
    }
    if let Ok(fds) = std::fs::read_dir(base.join("fd")) {
        for e in fds.flatten() {
            if mnt_id(&e.path()).is_some_and(|id| ids.contains(&id)) {
                return Some("open file");
            }
        }
    }
    // Mapped files: /proc/<pid>/maps names the device; map_files/<range> the mount.
    if let Ok(maps) = std::fs::read_to_string(base.join("maps")) {
        for line in maps.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(range), _, _, Some(dev), Some(ino)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            if ino == "0" || !devs.iter().any(|d| dev_matches(dev, *d)) {
                continue;
            }
            match mnt_id(&base.join("map_files").join(range)) {
                Some(id) if ids.contains(&id) => return Some("mapped file"),
                Some(_) => {}
                // No map_files (no CAP_SYS_ADMIN): the device is all we know.
                None => return Some("mapped file (by device)"),
            }
        }
    }
    None
}

/// `maps` writes the device as hex `major:minor`.
fn dev_matches(field: &str, (major, minor): (u32, u32)) -> bool {
    field.split_once(':').is_some_and(|(a, b)| {
        u32::from_str_radix(a, 16) == Ok(major) && u32::from_str_radix(b, 16) == Ok(minor)
    })
}

/// Every process using the target, in one pass over /proc, stopping at the deadline.
pub fn scan(t: &Target, deadline: &Deadline) -> Vec<User> {
    let me = std::process::id() as i32;
    let devs: Vec<(u32, u32)> = t.shapes.iter().map(|(d, _)| *d).collect();
    let mut other_ns: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut found = vec![];
    for pid in procfs::pids() {
        if pid == me || deadline.expired() {
            continue;
        }
        let Some(stat) = procfs::stat(pid) else {
            continue;
        };
        if stat.state == 'Z' {
            continue;
        }
        let ns = ns_of(&pid.to_string());
        let how = match ns {
            Some(ns) if ns != t.ns && t.ns != 0 => {
                let ids = other_ns.entry(ns).or_insert_with(|| t.copies_in(pid));
                if ids.is_empty() {
                    None
                } else {
                    uses(pid, ids, &devs)
                }
            }
            _ => uses(pid, &t.ids, &devs),
        };
        if let Some(how) = how {
            found.push(User {
                pid,
                start: stat.start_time,
                how,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_device_field() {
        assert!(dev_matches("fd:01", (253, 1)));
        assert!(dev_matches("07:00", (7, 0)));
        assert!(!dev_matches("07:00", (7, 1)));
        assert!(!dev_matches("zz", (7, 1)));
    }

    #[test]
    fn our_own_cwd_is_found_on_its_mount() {
        // The test process's cwd is on some mount; its id is what statx says.
        let id = mnt_id(Path::new("/proc/self/cwd")).expect("statx STATX_MNT_ID");
        let mounts = mountinfo::read().unwrap();
        assert!(mounts.iter().any(|m| u64::from(m.id) == id));
    }
}
