//! `rustha::mountinfo` against real mounts: an ext4 or xfs loop device mounted in the test
//! thread's own mount namespace, a path with a space, a bind mount of a subdirectory,
//! a read-only remount and a stacked mount. The identity the Filesystem agent relies on
//! (mount id, device number) is checked against the kernel's own answers (`stat`).

mod common;

use common::disk::{mounts, private_mountns, Loop, Mounted};
use common::*;
use rustha::mountinfo::{at, below};
use std::os::unix::fs::MetadataExt;

#[test]
fn ext4_mounts_are_told_apart_by_id_and_device() {
    told_apart("ext4", 32);
}

/// xfs needs 300 MiB at least (sparse: the file holds only what mkfs writes).
#[test]
fn xfs_mounts_are_told_apart_by_id_and_device() {
    told_apart("xfs", 320);
}

/// A mount, its bind mount and a stack over it, each told apart by mount id and device.
fn told_apart(fstype: &str, mib: u64) {
    require_root();
    require_tool(&format!("mkfs.{fstype}"));
    private_mountns();
    let dir = TempDir::new("mnt");
    let (a, b) = (Loop::new(mib), Loop::new(mib));
    a.mkfs(fstype, Some("rh-a"), None);
    b.mkfs(fstype, None, None);
    let point = dir.path().join("my data");
    let m = Mounted::new(&[], &a.dev, &point);
    std::fs::create_dir(point.join("sub")).unwrap();

    let t = mounts();
    let ma = at(&t, &point).expect("the mount is in mountinfo");
    assert_eq!(ma.fstype, fstype);
    assert_eq!(ma.source, a.dev.to_str().unwrap());
    assert_eq!(ma.dev, a.devno(), "mountinfo's device is the loop device's");
    let st = std::fs::metadata(point.join("sub")).unwrap();
    assert_eq!(
        (
            nix::sys::stat::major(st.dev()) as u32,
            nix::sys::stat::minor(st.dev()) as u32
        ),
        ma.dev,
        "files on it have that st_dev"
    );
    assert!(!ma.read_only());
    let id = ma.id;

    // A bind mount of a subdirectory: same device, its own id, root /sub.
    let bind_point = dir.path().join("bind");
    let bind = Mounted::new(&["--bind"], &point.join("sub"), &bind_point);
    let t = mounts();
    let mb = at(&t, &bind_point).unwrap();
    assert_eq!((mb.dev, mb.root.to_str().unwrap()), (a.devno(), "/sub"));
    assert_ne!(mb.id, id);
    assert!(
        below(&t, id).iter().all(|m| m.id != mb.id),
        "the bind mount hangs off the tmp dir's mount, not off ours"
    );

    // A read-only remount behind the agent's back.
    let st = out(std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&point));
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(at(&mounts(), &point).unwrap().read_only());

    // Another device stacked on the same directory: the top one is what is visible.
    let top = Mounted::new(&[], &b.dev, &point);
    let t = mounts();
    let mt = at(&t, &point).unwrap();
    assert_eq!((mt.dev, mt.parent), (b.devno(), id), "stacked over ours");
    drop(top);
    assert_eq!(at(&mounts(), &point).unwrap().id, id, "ours again");
    drop(bind);
    drop(m);
    assert!(at(&mounts(), &point).is_none(), "unmounted");
}
