//! Per-instance state records under `/run/rustha/<agent>/<instance>`.
//!
//! `start` decides and records; `monitor` and `stop` act on the record. The format is
//! `key=value` lines, written atomically (temporary file + rename).

use ocf::{Deadline, OcfEnv, OcfError};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

/// Where records live unless `RUSTHA_STATE_DIR` says otherwise (tests).
pub const DEFAULT_STATE_DIR: &str = "/run/rustha";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record(BTreeMap<String, String>);

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        let v = value.to_string().replace(['\n', '\r'], " ");
        self.0.insert(key.to_string(), v);
        self
    }
    pub fn parse(text: &str) -> Record {
        Record(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
    pub fn render(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

/// Longest instance name kept as it is in a file name (NAME_MAX is 255; `.lock` and
/// temporary suffixes must fit too).
const MAX_PLAIN: usize = 200;

/// FNV-1a, 64 bits: a stable name for an instance id that cannot be a file name as it is.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A file name for an instance id. Pacemaker's ids (XML ids, clone suffix `:N`) are kept
/// as they are; anything else (too long, odd characters, a leading dot) is mapped to a
/// readable prefix plus a hash of the whole id, so it is always a valid, distinct file
/// name (`~` never occurs in a kept name, so a mapped one cannot collide with it).
pub fn sanitize(instance: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._:@+-".contains(c);
    if !instance.is_empty()
        && instance.len() <= MAX_PLAIN
        && !instance.starts_with('.')
        && instance.chars().all(plain)
    {
        return instance.to_string();
    }
    let prefix: String = instance
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if plain(c) && (i > 0 || c != '.') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!("{prefix}~{:016x}", fnv1a(instance.as_bytes()))
}

pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    pub fn new(env: &OcfEnv, agent: &str, instance: &str) -> StateFile {
        let dir = env
            .var("RUSTHA_STATE_DIR")
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_STATE_DIR);
        StateFile {
            path: PathBuf::from(dir).join(agent).join(sanitize(instance)),
        }
    }

    pub fn for_ctx(ctx: &ocf::Ctx) -> StateFile {
        Self::new(&ctx.env, ctx.agent, &ctx.instance)
    }

    /// The record, if any. An unreadable directory is an error; a missing file is `None`.
    pub fn load(&self) -> Result<Option<Record>, OcfError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(Record::parse(&t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OcfError::generic(format!(
                "cannot read state {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// `path` plus a suffix (never replacing part of an instance name that has a dot).
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(suffix);
        PathBuf::from(p)
    }

    pub fn save(&self, rec: &Record) -> Result<(), OcfError> {
        let fail = |what: &str, e: std::io::Error| {
            let err = format!("cannot {what} state {}: {e}", self.path.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                OcfError::perm(err)
            } else {
                OcfError::generic(err)
            }
        };
        let dir = self.path.parent().expect("state path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| fail("create directory for", e))?;
        let tmp = self.sibling(&format!(".tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(rec.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail("write", e)
        })
    }

    /// Forget the record. Called once the resource is verifiably gone, so a record that
    /// cannot be removed (a read-only or full /run) is only a warning: the next probe
    /// finds its process dead or its address absent and says 7. Failing here would turn a
    /// successful stop into a failed one, and get the node fenced.
    pub fn remove(&self) -> Result<(), OcfError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(()),
            Err(e) => {
                tracing::warn!(
                    "cannot remove state {}: {e}; left behind (the resource is stopped)",
                    self.path.display()
                );
                Ok(())
            }
        }
    }

    /// Take this instance's lock: actions on one instance run one at a time (an admin's
    /// `crm_resource --force-start` racing the cluster's own start, say). Waits up to
    /// `wait`. `Ok(None)` when no lock can be had because the state directory is unusable
    /// (the action then runs unlocked: it cannot keep a record there anyway);
    /// `Err(holder)` when another action holds it past `wait`.
    pub fn lock(&self, wait: &Deadline) -> Result<Option<InstanceLock>, LockBusy> {
        let path = self.sibling(".lock");
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        loop {
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => f,
                // A read-only state directory: an existing lock file still locks.
                Err(_) => match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::debug!("no lock at {}: {e}; running unlocked", path.display());
                        return Ok(None);
                    }
                },
            };
            let got = wait.poll(Duration::from_millis(50), || {
                // SAFETY: flock on a descriptor we own.
                let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                (rc == 0).then_some(())
            });
            if got.is_none() {
                return Err(LockBusy(path));
            }
            // The holder before us may have removed the file (it does when the instance
            // has no record left): a lock on an unlinked file locks nothing, so retry.
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(Some(InstanceLock {
                    file,
                    path,
                    record: self.path.clone(),
                }));
            }
        }
    }
}

/// Another action of the same instance held the lock for the whole wait.
#[derive(Debug)]
pub struct LockBusy(pub PathBuf);

/// Held for the duration of one action; see [`StateFile::lock`].
pub struct InstanceLock {
    file: std::fs::File,
    path: PathBuf,
    record: PathBuf,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Nothing recorded any more: remove the lock file too (while still holding it), so
        // a stopped instance leaves nothing under the state directory.
        if !self.record.exists() {
            let _ = std::fs::remove_file(&self.path);
        }
        // SAFETY: unlocking our own descriptor (closing it would do the same).
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_instances() {
        assert_eq!(sanitize("lb"), "lb");
        assert_eq!(sanitize("lb:1"), "lb:1");
        assert_eq!(sanitize("my-vip_2.a@b+c"), "my-vip_2.a@b+c");
        for odd in ["../etc/passwd", "", "a b/c", ".hidden", "x\ny", "vip\u{e9}"] {
            let s = sanitize(odd);
            assert!(
                s.contains('~') && !s.contains('/') && !s.starts_with('.'),
                "{s}"
            );
            assert!(s.len() <= 48 + 17, "{s}");
        }
        // Mapped names stay distinct where the plain mapping would collide.
        assert_ne!(sanitize("a b"), sanitize("a_b"));
        assert_ne!(sanitize("a b"), sanitize("a/b"));
        assert_eq!(sanitize("a b"), sanitize("a b"), "stable");
        let long = "v".repeat(300);
        let s = sanitize(&long);
        assert!(s.len() < 100 && s.starts_with("vvvv"), "{s}");
        assert_ne!(sanitize(&long), sanitize(&"v".repeat(301)));
        assert_eq!(sanitize(&"v".repeat(200)), "v".repeat(200));
    }

    fn temp_env(tag: &str) -> (PathBuf, OcfEnv) {
        let dir = std::env::temp_dir().join(format!("rustha-{tag}-{}", std::process::id()));
        let env = OcfEnv::from_pairs([("RUSTHA_STATE_DIR", dir.to_str().unwrap())]);
        (dir, env)
    }

    #[test]
    fn the_lock_serializes_and_leaves_nothing_once_unrecorded() {
        let (dir, env) = temp_env("lock");
        let sf = StateFile::new(&env, "azure-lb", "lb.v1");
        let held = sf
            .lock(&Deadline::after(Duration::from_secs(2)))
            .unwrap()
            .unwrap();
        // A second taker (another process would be the same: flock is per open file).
        let busy = sf.lock(&Deadline::after(Duration::from_millis(60)));
        assert!(busy.is_err(), "second lock must wait and give up");
        let mut r = Record::default();
        r.set("pid", 1);
        sf.save(&r).unwrap();
        drop(held);
        assert!(
            sf.sibling(".lock").exists(),
            "a recorded instance keeps its lock file"
        );
        let again = sf
            .lock(&Deadline::after(Duration::from_secs(2)))
            .unwrap()
            .unwrap();
        sf.remove().unwrap();
        drop(again);
        assert_eq!(
            std::fs::read_dir(dir.join("azure-lb")).unwrap().count(),
            0,
            "no record, no lock file"
        );
        // A state directory that is a plain file: no lock, no failure.
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, b"not a directory").unwrap();
        assert!(sf
            .lock(&Deadline::after(Duration::from_secs(1)))
            .unwrap()
            .is_none());
        assert!(sf.load().is_err());
        sf.remove().unwrap();
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn round_trip_and_atomic_save() {
        let (dir, env) = temp_env("state");
        let sf = StateFile::new(&env, "azure-lb", "lb:0");
        assert_eq!(sf.load().unwrap(), None);
        let mut r = Record::default();
        r.set("pid", 42).set("note", "two\nlines");
        sf.save(&r).unwrap();
        let back = sf.load().unwrap().unwrap();
        assert_eq!(back.parsed::<i32>("pid"), Some(42));
        assert_eq!(back.get("note"), Some("two lines"));
        assert_eq!(
            std::fs::read_dir(sf.path.parent().unwrap())
                .unwrap()
                .count(),
            1
        );
        sf.remove().unwrap();
        sf.remove().unwrap();
        assert_eq!(sf.load().unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
