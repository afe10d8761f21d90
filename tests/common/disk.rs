//! Real block devices for the filesystem tests: a loop device over a sparse file, a real
//! filesystem on it, mounted in a mount namespace of the test thread's own (so nothing a
//! test mounts is seen by the host). Each handle undoes what it made, by its own name:
//! [`Mounted`] unmounts its mount point, [`Loop`] detaches its own `/dev/loopN`.

use super::{out, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Put this test thread (and every process it starts) into a new mount namespace, with
/// every mount private, so that mounts made here never propagate to the host.
pub fn private_mountns() {
    super::require_root();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    run(Command::new("mount").args(["--make-rprivate", "/"]));
}

fn run(c: &mut Command) -> String {
    let r = out(c);
    assert_eq!(r.code, 0, "{c:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// This thread's mount table (`/proc/self` would be the main thread's namespace).
pub fn mounts() -> Vec<rustha::mountinfo::Mount> {
    rustha::mountinfo::parse(&std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap())
}

/// A loop device over a sparse file of `mib` MiB.
pub struct Loop {
    pub dev: PathBuf,
    _file: TempDir,
}

impl Loop {
    pub fn new(mib: u64) -> Loop {
        let dir = TempDir::new("loop");
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .unwrap();
        let dev = run(Command::new("losetup").args(["--find", "--show"]).arg(&img));
        Loop {
            dev: PathBuf::from(dev.trim()),
            _file: dir,
        }
    }

    /// Make a filesystem (`mkfs.<fstype>`), with a label and a UUID when given.
    pub fn mkfs(&self, fstype: &str, label: Option<&str>, uuid: Option<&str>) {
        let mut c = Command::new(format!("mkfs.{fstype}"));
        match fstype {
            "xfs" => c.arg("-f"),
            _ => c.arg("-q").arg("-F"),
        };
        if let Some(l) = label {
            c.args(["-L", l]);
        }
        if let Some(u) = uuid {
            match fstype {
                "xfs" => c.args(["-m", &format!("uuid={u}")]),
                _ => c.args(["-U", u]),
            };
        }
        run(c.arg(&self.dev));
    }

    /// The image file behind the device.
    pub fn image(&self) -> PathBuf {
        self._file.path().join("disk.img")
    }

    /// The device number files on it have (`st_rdev` of the block device).
    pub fn devno(&self) -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.dev).unwrap().rdev();
        (
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        )
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A filesystem label no other test's device has (ext4 takes 16 characters, xfs 12).
pub fn unique_label(tag: &str) -> String {
    let i = super::instance(tag);
    format!("r{}", &i[i.len().saturating_sub(10)..]).replace('-', "")
}

/// A UUID no other test's device has (from the pid and the instance counter).
pub fn unique_uuid() -> String {
    let i = super::instance("u");
    let n: u64 = i.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    });
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) as u32,
        (n >> 16) as u16,
        n & 0xfff,
        (n >> 20) & 0xfff,
        std::process::id() as u64 * 1000 + (n & 0xfff)
    )
}

/// A mount made by a test: unmounted (its own mount point) on drop.
pub struct Mounted(pub PathBuf);

impl Mounted {
    /// `mount [args...] source point` (argv, no shell).
    pub fn new(args: &[&str], source: &Path, point: &Path) -> Mounted {
        std::fs::create_dir_all(point).unwrap();
        run(Command::new("mount").args(args).arg(source).arg(point));
        Mounted(point.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
