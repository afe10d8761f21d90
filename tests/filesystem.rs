//! `ocf:rustha:Filesystem` against real mounts: loop devices with ext4 and xfs, mounted in
//! the test thread's own mount namespace (nothing reaches the host's mount table), real
//! processes holding the mount in every way a process can (cwd, root, open file, mmap,
//! from a child mount namespace, ignoring SIGTERM). Each test undoes what it made by its
//! own handles: its processes (killed and reaped), its mounts, its loop devices.

mod common;

use common::disk::{mounts, private_mountns, unique_label, unique_uuid, Loop, Mounted};
use common::*;
use rustha::mountinfo::at;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One Filesystem resource: its agent link, state directory and mount point.
struct Fs {
    agent: PathBuf,
    state: TempDir,
    dir: TempDir,
    instance: String,
}

impl Fs {
    fn new(tag: &str) -> Fs {
        let bin_dir = TempDir::new(&format!("fs-bin-{tag}"));
        let agent = agent_link(bin_dir.path(), "Filesystem");
        // The link's directory lives as long as the state dir: keep it inside it.
        let state = bin_dir;
        Fs {
            agent,
            state,
            dir: TempDir::new(&format!("fs-{tag}")),
            instance: instance(tag),
        }
    }
    fn point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
    fn env(&self, device: &str, fstype: &str) -> Env {
        let state = self.state.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Env::pacemaker(&self.instance, &state)
            .param("device", device)
            .param("directory", self.point().to_str().unwrap())
            .param("fstype", fstype)
    }
    fn state_files(&self) -> Vec<PathBuf> {
        let mut out = vec![];
        let mut todo = vec![self.state.path().join("state")];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {}{}", r.stdout, r.stderr);
}

fn code(r: &Run, want: i32, what: &str) {
    assert_eq!(r.code, want, "{what}: {}{}", r.stdout, r.stderr);
}

/// `sleep` with its working directory in `cwd`.
fn sleeper_in(cwd: &Path) -> Command {
    let mut c = Command::new("sleep");
    c.arg("3600")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

fn mounted_dev(point: &Path) -> Option<((u32, u32), String)> {
    let t = mounts();
    at(&t, point).map(|m| (m.dev, m.fstype.clone()))
}

/// Every way of naming the device upstream accepts (UUID=, -U, --uuid=, LABEL=, -L,
/// --label=), on ext4 and on xfs: each form mounts that very device (by device number),
/// monitors at depths 0, 10 and 20, stops, and probes 7 after.
#[test]
fn uuid_and_label_forms_mount_the_right_device_on_ext4_and_xfs() {
    require_root();
    require_tool("mkfs.xfs");
    require_tool("blkid");
    private_mountns();
    for (fstype, mib) in [("ext4", 64), ("xfs", 320)] {
        let disk = Loop::new(mib);
        let (uuid, label) = (unique_uuid(), unique_label(fstype));
        disk.mkfs(fstype, Some(&label), Some(&uuid));
        let fs = Fs::new(fstype);
        for form in [
            format!("UUID={uuid}"),
            format!("-U {uuid}"),
            format!("--uuid={uuid}"),
            format!("LABEL={label}"),
            format!("-L {label}"),
            format!("--label={label}"),
            disk.dev.display().to_string(),
        ] {
            let env = fs.env(&form, fstype);
            ok(
                &env.run(&fs.agent, "start"),
                &format!("{fstype} start {form}"),
            );
            assert_eq!(
                mounted_dev(&fs.point()),
                Some((disk.devno(), fstype.to_string())),
                "{form}: the loop device is what is mounted"
            );
            for depth in ["0", "10", "20"] {
                let r = env.clone().var("OCF_CHECK_LEVEL", depth).interval(10000);
                ok(
                    &r.run(&fs.agent, "monitor"),
                    &format!("{form} depth {depth}"),
                );
            }
            ok(&env.run(&fs.agent, "stop"), &format!("{form} stop"));
            assert_eq!(mounted_dev(&fs.point()), None, "{form}: unmounted");
            code(&env.run(&fs.agent, "monitor"), 7, &format!("{form} probe"));
            ok(&env.run(&fs.agent, "stop"), &format!("{form} second stop"));
        }
        assert!(fs.state_files().is_empty(), "{:?}", fs.state_files());
    }
}

/// The device already mounted there (by the admin) is a started resource; another device
/// on the mount point is an error with a reason, and nothing is mounted over it; a probe
/// of that says 7 (this resource does not run here).
#[test]
fn same_device_already_mounted_is_started_another_device_is_never_mounted_over() {
    require_root();
    private_mountns();
    let (a, b) = (Loop::new(32), Loop::new(32));
    a.mkfs("ext4", None, None);
    b.mkfs("ext4", None, None);
    let fs = Fs::new("already");
    let env = fs.env(a.dev.to_str().unwrap(), "ext4");

    let admin = Mounted::new(&[], &a.dev, &fs.point());
    ok(&env.run(&fs.agent, "start"), "start on the same device");
    ok(
        &env.clone().interval(10000).run(&fs.agent, "monitor"),
        "monitor",
    );
    ok(&env.run(&fs.agent, "stop"), "stop");
    assert_eq!(mounted_dev(&fs.point()), None);
    drop(admin);

    let other = Mounted::new(&[], &b.dev, &fs.point());
    let before = mounts().len();
    code(
        &env.run(&fs.agent, "monitor"),
        7,
        "probe with another device there",
    );
    let r = env.run(&fs.agent, "start");
    code(&r, 1, "start with another device there");
    let why = r.reason().unwrap_or_default();
    assert!(
        why.contains("another device") && why.contains(b.dev.to_str().unwrap()),
        "{why}"
    );
    assert_eq!(mounted_dev(&fs.point()).map(|d| d.0), Some(b.devno()));
    assert_eq!(mounts().len(), before, "nothing mounted over it");
    // Stop of a resource that never started here leaves the other device alone.
    ok(&env.run(&fs.agent, "stop"), "stop");
    assert_eq!(mounted_dev(&fs.point()).map(|d| d.0), Some(b.devno()));
    drop(other);
    assert!(fs.state_files().is_empty(), "{:?}", fs.state_files());
}

/// A filesystem the kernel remounted read-only (what ext4 does on I/O errors) fails the
/// monitor; asked for read-only, or with check_readonly=false, it does not.
#[test]
fn a_read_only_remount_fails_the_monitor_unless_read_only_was_asked_for() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("ro");
    let env = fs.env(disk.dev.to_str().unwrap(), "ext4");
    ok(&env.run(&fs.agent, "start"), "start");
    let remount = |opt: &str| {
        let r = out(Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(fs.point()));
        ok(&r, "mount -o remount");
    };
    remount("ro");
    let r = env.clone().interval(10000).run(&fs.agent, "monitor");
    code(&r, 1, "monitor of a read-only remount");
    assert!(
        r.reason().unwrap_or_default().contains("read-only"),
        "{}",
        r.stderr
    );
    let lax = env.clone().param("check_readonly", "false").interval(10000);
    ok(&lax.run(&fs.agent, "monitor"), "check_readonly=false");
    remount("rw");
    ok(
        &env.clone().interval(10000).run(&fs.agent, "monitor"),
        "rw again",
    );
    ok(&env.run(&fs.agent, "stop"), "stop");

    let ro = env.clone().param("options", "ro");
    ok(&ro.run(&fs.agent, "start"), "start ro");
    let t = mounts();
    assert!(at(&t, &fs.point()).unwrap().read_only());
    ok(
        &ro.clone().interval(10000).run(&fs.agent, "monitor"),
        "asked for ro",
    );
    ok(&ro.run(&fs.agent, "stop"), "stop ro");
    assert_eq!(mounted_dev(&fs.point()), None);
}

/// A device that shrank to nothing under its mount (the loop device's file truncated and
/// its capacity re-read: what a LUN unmapped by the SAN looks like to a reader): depth 0
/// still sees the mount, depth 10 reads the device and fails; stop still unmounts.
#[test]
fn a_device_that_returns_nothing_fails_the_depth_10_monitor() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("gone");
    let env = fs.env(disk.dev.to_str().unwrap(), "ext4");
    ok(&env.run(&fs.agent, "start"), "start");
    let deep = env.clone().var("OCF_CHECK_LEVEL", "10").interval(10000);
    ok(&deep.run(&fs.agent, "monitor"), "depth 10 before");
    std::fs::OpenOptions::new()
        .write(true)
        .open(disk.image())
        .and_then(|f| f.set_len(0))
        .unwrap();
    ok(
        &out(Command::new("losetup").arg("-c").arg(&disk.dev)),
        "losetup -c",
    );
    let r = deep.run(&fs.agent, "monitor");
    code(&r, 1, "depth 10 on an empty device");
    assert!(
        r.reason()
            .unwrap_or_default()
            .contains("cannot read device"),
        "{}",
        r.stderr
    );
    ok(&env.run(&fs.agent, "stop"), "stop");
    assert_eq!(mounted_dev(&fs.point()), None);
}

/// The device node gone (what the kernel does to a disk that left: devtmpfs drops its
/// node; a loop device cannot be detached while mounted, so the node here is one the test
/// made with mknod for the loop device's number, then removes): depth 0 fails with a
/// reason naming the device, and stop still unmounts (0).
#[test]
fn a_device_node_that_vanished_fails_the_monitor_and_stop_still_unmounts() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("vanished");
    let node = fs.dir.path().join("sdz");
    let (major, minor) = disk.devno();
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(major.into(), minor.into()),
    )
    .unwrap();
    let env = fs.env(node.to_str().unwrap(), "ext4");
    ok(&env.run(&fs.agent, "start"), "start");
    assert_eq!(mounted_dev(&fs.point()).map(|d| d.0), Some(disk.devno()));
    ok(
        &env.clone().interval(10000).run(&fs.agent, "monitor"),
        "monitor",
    );
    std::fs::remove_file(&node).unwrap();
    let r = env.clone().interval(10000).run(&fs.agent, "monitor");
    code(&r, 1, "monitor with the device node gone");
    let why = r.reason().unwrap_or_default();
    assert!(why.contains("is gone") && why.contains("sdz"), "{why}");
    ok(&env.run(&fs.agent, "stop"), "stop");
    assert_eq!(mounted_dev(&fs.point()), None);
    code(&env.run(&fs.agent, "monitor"), 7, "probe after stop");
}

/// Stop with 100 processes on the mount, found by mount id: 40 with their cwd there, 30
/// with an open file on it, 10 mapping a file of it (python mmap, the file closed), 10
/// with their root there (chroot), 9 in a child mount namespace (its copy of the mount),
/// 1 ignoring SIGTERM (killed in the kill phase). Bystanders with their cwd in the mount
/// point's parent directory and on another mount of the same filesystem type live on.
#[test]
fn stop_finds_100_users_by_mount_id_and_kills_only_them() {
    require_root();
    require_tool("python3");
    private_mountns();
    let (disk, other_disk) = (Loop::new(64), Loop::new(32));
    disk.mkfs("ext4", None, None);
    other_disk.mkfs("ext4", None, None);
    let fs = Fs::new("users");
    let env = fs
        .env(disk.dev.to_str().unwrap(), "ext4")
        .param("signal_delay", "1");
    ok(&env.run(&fs.agent, "start"), "start");
    let p = fs.point();
    std::fs::create_dir(p.join("work")).unwrap();
    std::fs::write(p.join("data"), vec![7u8; 8192]).unwrap();
    // A root for chroot'ed users: sleep and its libraries, copied (busybox-style).
    let root = p.join("root");
    chroot_with_sleep(&root);
    let elsewhere = fs.dir.path().join("elsewhere");
    let _other = Mounted::new(&[], &other_disk.dev, &elsewhere);

    let mut procs = Children::default();
    let mut users = vec![];
    for _ in 0..40 {
        users.push(procs.push(sleeper_in(&p.join("work")).spawn().unwrap()));
    }
    for _ in 0..30 {
        let f = std::fs::File::open(p.join("data")).unwrap();
        let c = sleeper_in(Path::new("/")).stdin(f).spawn().unwrap();
        users.push(procs.push(c));
    }
    let ready = TempDir::new("mmap-ready");
    for n in 0..10 {
        let flag = ready.path().join(n.to_string());
        let c = Command::new("python3")
            .args([
                "-c",
                "import mmap,sys,time\n\
                 f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\n\
                 f.close(); open(sys.argv[2],'w').close(); time.sleep(3600)",
            ])
            .arg(p.join("data"))
            .arg(&flag)
            .current_dir("/")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        users.push(procs.push(c));
    }
    for _ in 0..10 {
        let mut c = Command::new("/bin/sleep");
        c.arg("3600").current_dir("/").stdin(Stdio::null());
        let r = root.clone();
        // SAFETY: chroot and chdir only, between fork and exec.
        unsafe {
            c.pre_exec(move || {
                nix::unistd::chroot(&r)?;
                nix::unistd::chdir("/")?;
                Ok(())
            });
        }
        users.push(procs.push(c.spawn().unwrap()));
    }
    let child_ns_ready = TempDir::new("ns-ready");
    let mut child_ns = vec![];
    for n in 0..9 {
        let flag = child_ns_ready.path().join(n.to_string());
        // unshare(1) then sleep with its cwd on the copy of the mount in the new namespace.
        let c = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("cd \"$1\" && : > \"$2\" && exec sleep 3600")
            .arg("sh")
            .arg(p.join("work"))
            .arg(&flag)
            .current_dir("/")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        child_ns.push(c.id());
        users.push(procs.push(c));
    }
    let stubborn = Command::new("sh")
        .args(["-c", "trap '' TERM; exec sleep 3600"])
        .current_dir(p.join("work"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stubborn = procs.push(stubborn);
    users.push(stubborn);
    assert_eq!(users.len(), 100);
    let bystanders = [
        procs.push(sleeper_in(fs.dir.path()).spawn().unwrap()),
        procs.push(sleeper_in(&elsewhere).spawn().unwrap()),
        procs.push(sleeper_in(Path::new("/")).spawn().unwrap()),
    ];
    wait_for_files(ready.path(), 10);
    wait_for_files(child_ns_ready.path(), 9);
    // The mount is busy: a plain umount fails.
    let busy = out(Command::new("umount").arg(&p));
    assert_ne!(busy.code, 0, "the users must hold the mount");

    let r = env.run(&fs.agent, "stop");
    ok(&r, "stop with 100 users");
    assert_eq!(mounted_dev(&p), None, "unmounted");
    let survivors: Vec<u32> = users.iter().copied().filter(|&u| !procs.gone(u)).collect();
    assert!(
        survivors.is_empty(),
        "users left alive: {survivors:?}\n{}",
        r.stderr
    );
    for b in bystanders {
        assert!(alive(b as i32), "bystander {b} was killed");
    }
    code(&env.run(&fs.agent, "monitor"), 7, "probe after stop");
}

/// resource-agents#1304: stopping a bind mount whose unmount fails must kill the bind
/// mount's users only: not every user of the filesystem below it (nor of /).
#[test]
fn a_bind_mount_stop_kills_its_users_and_not_the_underlying_filesystems() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("bind");
    let base = fs.dir.path().join("base");
    let _under = Mounted::new(&[], &disk.dev, &base);
    std::fs::create_dir_all(base.join("export/sub")).unwrap();
    std::fs::create_dir_all(base.join("private")).unwrap();
    let env = fs
        .env(base.join("export").to_str().unwrap(), "none")
        .param("options", "bind");
    ok(&env.run(&fs.agent, "start"), "start the bind mount");
    let t = mounts();
    let m = at(&t, &fs.point()).expect("the bind mount");
    assert_eq!((m.dev, m.root.to_str().unwrap()), (disk.devno(), "/export"));
    ok(
        &env.clone().interval(10000).run(&fs.agent, "monitor"),
        "monitor",
    );

    let mut procs = Children::default();
    let user = procs.push(sleeper_in(&fs.point().join("sub")).spawn().unwrap());
    // Below the bind mount, on the same filesystem, through the underlying mount: the very
    // directory the bind shows, and another one.
    let same_dir_underneath = procs.push(sleeper_in(&base.join("export/sub")).spawn().unwrap());
    let other_dir = procs.push(sleeper_in(&base.join("private")).spawn().unwrap());
    let at_root = procs.push(sleeper_in(Path::new("/")).spawn().unwrap());
    let r = env.run(&fs.agent, "stop");
    ok(&r, "stop");
    assert_eq!(mounted_dev(&fs.point()), None, "bind mount gone");
    assert!(procs.gone(user), "the bind mount's user was not stopped");
    for p in [same_dir_underneath, other_dir, at_root] {
        assert!(
            alive(p as i32),
            "{p} (not a user of the bind mount) was killed"
        );
    }
    assert!(mounted_dev(&base).is_some(), "the underlying mount stays");
}

/// What an admin can get wrong: each a clear 6 (or 5 for a device that is not there)
/// with a reason, from validate-all and start alike, and nothing left behind: no mount,
/// no mount point created, no record.
#[test]
fn bad_input_is_refused_with_a_reason_and_leaves_nothing_behind() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("bad");
    let dev = disk.dev.to_str().unwrap();
    let before = mounts().len();
    let cases: Vec<(&str, Env, i32)> = vec![
        (
            "no device",
            fs.env(dev, "ext4").without("OCF_RESKEY_device"),
            6,
        ),
        (
            "no directory",
            fs.env(dev, "ext4").without("OCF_RESKEY_directory"),
            6,
        ),
        (
            "relative directory",
            fs.env(dev, "ext4").param("directory", "mnt"),
            6,
        ),
        (
            "directory /",
            fs.env(dev, "ext4").param("directory", "/"),
            6,
        ),
        ("device with spaces", fs.env(" /dev/x", "ext4"), 6),
        ("empty UUID", fs.env("UUID=", "ext4"), 6),
        (
            "run_fsck",
            fs.env(dev, "ext4").param("run_fsck", "maybe"),
            6,
        ),
        (
            "force_unmount",
            fs.env(dev, "ext4").param("force_unmount", "sometimes"),
            6,
        ),
        (
            "signal_delay",
            fs.env(dev, "ext4").param("signal_delay", "soon"),
            6,
        ),
        (
            "term_signals",
            fs.env(dev, "ext4").param("term_signals", "NOPE"),
            6,
        ),
        (
            "ext4 as a clone",
            fs.env(dev, "ext4")
                .var("OCF_RESKEY_CRM_meta_clone", "0")
                .var("OCF_RESKEY_CRM_meta_clone_max", "2"),
            6,
        ),
    ];
    for (what, env, want) in &cases {
        for action in ["validate-all", "start"] {
            let r = env.run(&fs.agent, action);
            code(&r, *want, &format!("{what}: {action}"));
            assert!(
                r.reason().is_some_and(|w| !w.is_empty()),
                "{what}: {action} without a reason: {}",
                r.stderr
            );
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
    }
    // A device that is not on this node: start says 5 (not installed here), validate-all
    // checks the parameters only (the device may be visible on the other node).
    let missing = fs.env("/dev/rustha-no-such-disk", "ext4");
    ok(
        &missing.run(&fs.agent, "validate-all"),
        "validate-all, device elsewhere",
    );
    let r = missing.run(&fs.agent, "start");
    assert!(r.code == 5 || r.code == 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.reason()
            .is_some_and(|w| w.contains("rustha-no-such-disk")),
        "{}",
        r.stderr
    );
    let r = fs
        .env(&format!("UUID={}", unique_uuid()), "ext4")
        .run(&fs.agent, "start");
    assert!(r.code == 5 || r.code == 1, "{}{}", r.stdout, r.stderr);
    assert!(r.reason().is_some(), "{}", r.stderr);

    assert_eq!(mounts().len(), before, "nothing mounted");
    assert!(
        !fs.point().exists(),
        "no mount point made by a refused start"
    );
    assert!(fs.state_files().is_empty(), "{:?}", fs.state_files());
}

fn wait_for_files(dir: &Path, n: usize) {
    for _ in 0..200 {
        if std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "{} of {n} helpers got ready",
        std::fs::read_dir(dir).unwrap().count()
    );
}

/// A directory that /bin/sleep can run chroot'ed in: the binary and the libraries
/// `ldd` names, at their paths.
fn chroot_with_sleep(root: &Path) {
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    let r = out(Command::new("ldd").arg(&sleep));
    ok(&r, "ldd sleep");
    let mut files = vec![sleep.clone()];
    for l in r.stdout.lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dst = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
    std::fs::create_dir_all(root.join("bin")).unwrap();
    if !root.join("bin/sleep").exists() {
        std::fs::copy(&sleep, root.join("bin/sleep")).unwrap();
    }
}

/// The dead-server case. This kernel has no NFS client (no `nfs` in /proc/filesystems, no
/// modules to load), so the stand-in is what hangs the same way: a FUSE filesystem whose
/// daemon is frozen (fuse2fs, SIGSTOP), where any request to it blocks until the daemon
/// answers or the connection is aborted. Depth 0 answers from mountinfo at once; depth 20
/// fails inside the deadline instead of hanging; stop finds the user by mount id without
/// asking the daemon anything (statx with AT_STATX_DONT_SYNC), signals it and unmounts
/// (`umount -f` in the kill phase aborts the connection), all inside the deadline.
#[test]
fn a_frozen_fuse_daemon_keeps_monitor_and_stop_inside_the_deadline() {
    require_root();
    require_tool("fuse2fs");
    private_mountns();
    let fs = Fs::new("fuse");
    let img = fs.dir.path().join("fs.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(32 << 20))
        .unwrap();
    ok(
        &out(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img)),
        "mkfs",
    );
    std::fs::create_dir_all(fs.point()).unwrap();
    let mut procs = Children::default();
    let daemon = procs.push(
        Command::new("fuse2fs")
            .arg("-f")
            .arg(&img)
            .arg(fs.point())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if mounted_dev(&fs.point()).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        mounted_dev(&fs.point()).map(|d| d.1),
        Some("fuse.ext4".to_string())
    );
    let timeout_ms = 6000u64;
    let env = fs
        .env(img.to_str().unwrap(), "fuse.ext4")
        .var("OCF_RESKEY_CRM_meta_timeout", &timeout_ms.to_string());
    ok(&env.run(&fs.agent, "start"), "start (already mounted)");
    ok(
        &env.clone().interval(10000).run(&fs.agent, "monitor"),
        "monitor",
    );
    let user = procs.push(sleeper_in(&fs.point().join("lost+found")).spawn().unwrap());

    let pid = nix::unistd::Pid::from_raw(daemon as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let bound = std::time::Duration::from_millis(timeout_ms + 1500);
    let timed = |e: &Env, action: &str| {
        let t = std::time::Instant::now();
        let r = e.run(&fs.agent, action);
        let took = t.elapsed();
        assert!(took < bound, "{action} took {took:?}: {}", r.stderr);
        r
    };
    ok(
        &timed(&env.clone().interval(10000), "monitor"),
        "depth 0 with the daemon frozen",
    );
    let r = timed(
        &env.clone().interval(10000).var("OCF_CHECK_LEVEL", "20"),
        "monitor",
    );
    code(&r, 1, "depth 20 with the daemon frozen");
    assert!(
        r.reason().unwrap_or_default().contains("timeout"),
        "{}",
        r.stderr
    );
    let r = timed(&env, "stop");
    ok(&r, "stop with the daemon frozen");
    assert_eq!(mounted_dev(&fs.point()), None, "unmounted");
    assert!(procs.gone(user), "the user was not stopped");
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
}

/// force_unmount=true,move: the mount is moved to <parent>/.<name> before the users are
/// signalled (the mount point is free at once: a new user cannot walk into it), then
/// unmounted there; nothing is left mounted at either place, and the next start mounts
/// at the real point again. force_unmount=false signals nobody: stop fails (1, naming
/// a user) while a user holds it, and succeeds once the user has gone.
#[test]
fn force_unmount_move_frees_the_point_first_and_false_signals_nobody() {
    require_root();
    private_mountns();
    let disk = Loop::new(32);
    disk.mkfs("ext4", None, None);
    let fs = Fs::new("move");
    let moved = fs.dir.path().join(".mnt");
    let env = fs
        .env(disk.dev.to_str().unwrap(), "ext4")
        .param("force_unmount", "true,move")
        .param("signal_delay", "1");
    ok(&env.run(&fs.agent, "start"), "start");
    let mut procs = Children::default();
    let user = procs.push(sleeper_in(&fs.point()).spawn().unwrap());
    let r = env.run(&fs.agent, "stop");
    ok(&r, "stop with move");
    assert!(r.stderr.contains("moved"), "{}", r.stderr);
    assert!(procs.gone(user));
    assert_eq!(mounted_dev(&fs.point()), None);
    assert_eq!(mounted_dev(&moved), None, "nothing left at the moved point");
    ok(&env.run(&fs.agent, "start"), "start again");
    assert_eq!(mounted_dev(&fs.point()).map(|d| d.0), Some(disk.devno()));
    ok(&env.run(&fs.agent, "stop"), "stop without users");

    let keep = fs
        .env(disk.dev.to_str().unwrap(), "ext4")
        .param("force_unmount", "false")
        .var("OCF_RESKEY_CRM_meta_timeout", "2000");
    ok(&keep.run(&fs.agent, "start"), "start");
    let user = procs.push(sleeper_in(&fs.point()).spawn().unwrap());
    let r = keep.run(&fs.agent, "stop");
    code(&r, 1, "stop while a user holds it, force_unmount=false");
    assert!(
        r.reason().unwrap_or_default().contains("busy"),
        "{}",
        r.stderr
    );
    assert!(alive(user as i32), "force_unmount=false signalled a user");
    assert!(mounted_dev(&fs.point()).is_some());
    let c = procs.0.iter_mut().find(|c| c.id() == user).unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    ok(&keep.run(&fs.agent, "stop"), "stop after the user left");
    assert_eq!(mounted_dev(&fs.point()), None);
}
