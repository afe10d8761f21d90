//! Filesystem's actions: resolve, start, monitor, stop.

use super::params::{Config, Source};
use super::source_name;
use super::users::{self, Target, User};
use crate::mountinfo::{self, Mount};
use crate::procfs;
use crate::service::tool;
use crate::state::{Record, StateFile};
use nix::sys::signal::Signal;
use ocf::{Ctx, Deadline, OcfError, Status};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MOUNT: &[&str] = &[
    "/usr/bin/mount",
    "/bin/mount",
    "/usr/sbin/mount",
    "/sbin/mount",
];
const UMOUNT: &[&str] = &[
    "/usr/bin/umount",
    "/bin/umount",
    "/usr/sbin/umount",
    "/sbin/umount",
];
const FSCK: &[&str] = &["/usr/sbin/fsck", "/sbin/fsck"];
const BLKID: &[&str] = &["/usr/sbin/blkid", "/sbin/blkid"];
const MODPROBE: &[&str] = &["/usr/sbin/modprobe", "/sbin/modprobe"];

/// Run `f` on a thread and wait for it until the deadline: for I/O that may block on a
/// dead device or server. A call that does not return in time is a failure.
fn bounded<T: Send + 'static>(
    deadline: &Deadline,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, OcfError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(deadline.remaining())
        .map_err(|_| OcfError::generic(format!("{what} did not finish before the timeout")))
}

fn rdev_of(p: &Path) -> Option<(u32, u32)> {
    let m = std::fs::metadata(p).ok()?;
    m.file_type().is_block_device().then(|| {
        (
            nix::sys::stat::major(m.rdev()) as u32,
            nix::sys::stat::minor(m.rdev()) as u32,
        )
    })
}

/// The block device of a source, by udev's links (no fork): `None` when not a block
/// source or not found that way.
fn by_link(s: &Source) -> Option<PathBuf> {
    let link = match s {
        Source::Block(p) => p.clone(),
        Source::Uuid(u) => Path::new("/dev/disk/by-uuid").join(u),
        Source::Label(l) => Path::new("/dev/disk/by-label").join(l.replace('/', "\\x2f")),
        Source::Other(_) => return None,
    };
    std::fs::canonicalize(&link).ok()
}

/// Resolve the block device for start and validate-all: udev's links, else blkid (argv,
/// bounded). A block source that cannot be found is "not installed" here (5).
pub fn resolve(cfg: &Config, deadline: &Deadline) -> Result<Option<PathBuf>, OcfError> {
    if !cfg.is_block() {
        return Ok(None);
    }
    let found = by_link(&cfg.source).or_else(|| {
        let (flag, v) = match &cfg.source {
            Source::Uuid(u) => ("-U", u),
            Source::Label(l) => ("-L", l),
            _ => return None,
        };
        let blkid = tool::find_binary(None, "blkid", BLKID).ok()?;
        let (st, out, _) = tool::run_tool(&blkid, &[flag.into(), v.into()], deadline).ok()?;
        let p = out.trim();
        (st.success() && p.starts_with('/')).then(|| PathBuf::from(p))
    });
    match found {
        Some(p) if rdev_of(&p).is_some() => Ok(Some(p)),
        Some(p) if p == Path::new("/dev/null") => Ok(Some(p)),
        _ => Err(OcfError::not_installed(format!(
            "cannot find block device {} on this node",
            source_name(&cfg.source)
        ))
        .about("device")),
    }
}

/// The filesystem type is known to the kernel (loading its module if needed), as upstream.
pub fn fstype_supported(cfg: &Config, deadline: &Deadline) -> Result<(), OcfError> {
    let t = cfg.fstype.as_str();
    if t.is_empty() || t == "none" {
        return Ok(());
    }
    let support = match t {
        _ if t.starts_with("fuse.") => "fuse",
        "glusterfs" | "rozofs" => "fuse",
        "efs" | "aznfs" => {
            let helper = format!("mount.{t}");
            tool::find_binary(Some(&helper), &helper, &[])?;
            "nfs4"
        }
        _ => t,
    };
    let known = || {
        std::fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().last() == Some(support))
            })
            .unwrap_or(false)
    };
    if known() {
        return Ok(());
    }
    // NFS and CIFS load their modules from their mount helpers.
    if matches!(support, "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs") {
        return Ok(());
    }
    let missing = || {
        OcfError::not_installed(format!(
            "filesystem type {support} is not in /proc/filesystems and its module cannot be loaded"
        ))
        .about("fstype")
    };
    let modprobe = tool::find_binary(None, "modprobe", MODPROBE).map_err(|_| missing())?;
    let (st, _, _) = tool::run_tool(&modprobe, &[support.into()], deadline)?;
    if !st.success() {
        return Err(missing());
    }
    deadline
        .cap(Duration::from_secs(5))
        .poll(Duration::from_millis(100), || known().then_some(()))
        .ok_or_else(missing)
}

/// What is at the mount point, compared with what we mount.
enum Found {
    Ours(Mount),
    Other(Mount),
    Nothing,
}

/// The device number and canonical path our mount has, when a block device: from the
/// record, else by udev's links or the device node (no fork).
fn identity(cfg: Option<&Config>, rec: Option<&Record>) -> (Option<(u32, u32)>, Option<String>) {
    if let Some(r) = rec {
        if let Some(d) = r.get("dev").and_then(mountinfo::parse_dev) {
            return (Some(d), r.get("device").map(str::to_string));
        }
    }
    match cfg {
        Some(c) if c.is_block() => match by_link(&c.source) {
            Some(p) => (rdev_of(&p), Some(p.display().to_string())),
            None => (None, None),
        },
        _ => (None, None),
    }
}

fn find(mounts: &[Mount], point: &Path, dev: Option<(u32, u32)>, device: Option<&str>) -> Found {
    let Some(m) = mountinfo::at(mounts, point) else {
        return Found::Nothing;
    };
    match dev {
        // btrfs and some others report an anonymous st_dev: then the source must match.
        Some(d) if m.dev != d && Some(m.source.as_str()) != device => Found::Other(m.clone()),
        _ => Found::Ours(m.clone()),
    }
}

/// The mount point to use: the parameter, or what start recorded.
fn point_of(cfg: Option<&Config>, rec: Option<&Record>) -> Option<PathBuf> {
    rec.and_then(|r| r.get("point").map(PathBuf::from))
        .or_else(|| cfg.map(|c| c.point.clone()))
}

/// The mount point with symlinks in its existing parents resolved (mountinfo shows the
/// real path), bounded: the parent may itself be on a network filesystem.
fn canonical_point(cfg: &Config, deadline: &Deadline) -> Result<PathBuf, OcfError> {
    let p = cfg.point.clone();
    bounded(
        &deadline.cap(Duration::from_secs(10)),
        "resolving the mount point",
        move || {
            let mut existing = p.clone();
            let mut rest = vec![];
            while !existing.exists() {
                match (existing.file_name(), existing.parent()) {
                    (Some(n), Some(parent)) => {
                        rest.push(n.to_os_string());
                        existing = parent.to_path_buf();
                    }
                    _ => break,
                }
            }
            let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
            out.extend(rest.iter().rev());
            out
        },
    )
}

fn mount_table() -> Result<Vec<Mount>, OcfError> {
    mountinfo::read().map_err(|e| OcfError::generic(format!("cannot read the mount table: {e}")))
}

fn run_argv(
    candidates: &[&str],
    name: &str,
    args: Vec<std::ffi::OsString>,
    deadline: &Deadline,
) -> Result<(bool, String), OcfError> {
    let bin = tool::find_binary(None, name, candidates)?;
    tracing::debug!(
        "running {} {}",
        bin.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (st, out, err) = tool::run_tool(&bin, &args, deadline)?;
    let said = format!("{}{}", out.trim(), err.trim());
    Ok((st.success(), said))
}

pub fn start(cfg: &Config, device: Option<&Path>, ctx: &Ctx) -> Result<(), OcfError> {
    let point = canonical_point(cfg, &ctx.deadline)?;
    let mounts = mount_table()?;
    if cfg.force.moved {
        if let Some(m) = mountinfo::at(&mounts, &cfg.moved_point()) {
            return Err(OcfError::generic(format!(
                "force_unmount=move: {} is still mounted on {} (a stop that did not finish)",
                m.source,
                cfg.moved_point().display()
            )));
        }
    }
    let dev = device.and_then(rdev_of);
    let device_s = device.map(|d| d.display().to_string());
    match find(&mounts, &point, dev, device_s.as_deref()) {
        Found::Ours(m) => {
            tracing::info!("{} is already mounted on {}", m.source, point.display());
            return record(ctx, cfg, &m, &point, device);
        }
        Found::Other(m) => {
            return Err(OcfError::generic(format!(
                "another device ({}) is mounted on {}: not mounting {} over it",
                m.source,
                point.display(),
                source_name(&cfg.source)
            )))
        }
        Found::Nothing => {}
    }
    if let Some(sub) = mounts
        .iter()
        .find(|m| m.point.starts_with(&point) && m.point != point)
    {
        return Err(OcfError::configured(format!(
            "{} is mounted under {}: refusing to mount over it",
            sub.point.display(),
            point.display()
        )));
    }
    if let (true, Some(d)) = (cfg.fsck, device) {
        let mut args: Vec<std::ffi::OsString> = vec![];
        if !cfg.fstype.is_empty() {
            args.extend(["-t".into(), cfg.fstype.clone().into()]);
        }
        args.extend(["-p".into(), d.as_os_str().to_owned()]);
        let bin = tool::find_binary(None, "fsck", FSCK)?;
        let (st, out, err) = tool::run_tool(&bin, &args, &ctx.deadline)?;
        // fsck: 0 clean, 1 errors corrected, 2 reboot advised; >= 4 uncorrected errors.
        if st.code().is_none_or(|c| c >= 4) {
            return Err(OcfError::generic(format!(
                "fsck of {} failed ({st}): {}",
                d.display(),
                format!("{out}{err}").trim()
            )));
        }
    }
    if !point.is_dir() {
        std::fs::create_dir_all(&point).map_err(|e| {
            OcfError::not_installed(format!(
                "cannot create mount point {}: {e}",
                point.display()
            ))
        })?;
    }
    let mut args: Vec<std::ffi::OsString> = vec![];
    if !cfg.fstype.is_empty() {
        args.extend(["-t".into(), cfg.fstype.clone().into()]);
    }
    if !cfg.options.is_empty() {
        args.extend(["-o".into(), cfg.options.join(",").into()]);
    }
    let what = match (device, &cfg.source) {
        (Some(d), _) => d.as_os_str().to_owned(),
        (None, s) => source_name(s).into(),
    };
    args.extend([what, point.clone().into_os_string()]);
    let (ok, said) = run_argv(MOUNT, "mount", args, &ctx.deadline)?;
    let mounts = mount_table()?;
    let here = match find(&mounts, &point, dev, device_s.as_deref()) {
        Found::Ours(m) => m,
        _ if !ok => {
            return Err(OcfError::generic(format!(
                "cannot mount {} on {}: {said}",
                source_name(&cfg.source),
                point.display()
            )))
        }
        Found::Other(m) => {
            return Err(OcfError::generic(format!(
                "mount said it mounted {} on {}, but {} is there",
                source_name(&cfg.source),
                point.display(),
                m.source
            )))
        }
        Found::Nothing => {
            return Err(OcfError::generic(format!(
                "mount succeeded but nothing is mounted on {} ({said})",
                point.display()
            )))
        }
    };
    if let Err(e) = verify(cfg, &here) {
        // Leave nothing behind: undo our own mount, by its point.
        let _ = umount_one(&here, false, &ctx.deadline);
        return Err(e);
    }
    record(ctx, cfg, &here, &point, device)
}

/// What start checks in the mount table after mounting.
fn verify(cfg: &Config, m: &Mount) -> Result<(), OcfError> {
    const KERNEL_TYPES: &[&str] = &[
        "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "gfs2", "ocfs2", "jfs", "tmpfs",
    ];
    if KERNEL_TYPES.contains(&cfg.fstype.as_str()) && m.fstype != cfg.fstype {
        return Err(OcfError::generic(format!(
            "{} was mounted as {}, not {}",
            m.point.display(),
            m.fstype,
            cfg.fstype
        )));
    }
    if cfg.wants_ro() && !m.read_only() {
        return Err(OcfError::generic(format!(
            "options ask for ro but {} is mounted read-write",
            m.point.display()
        )));
    }
    if !cfg.wants_ro() && m.read_only() && cfg.check_readonly {
        return Err(OcfError::generic(format!(
            "{} was mounted read-only (a write-protected device, or errors on it)",
            m.point.display()
        )));
    }
    Ok(())
}

fn record(
    ctx: &Ctx,
    cfg: &Config,
    m: &Mount,
    point: &Path,
    device: Option<&Path>,
) -> Result<(), OcfError> {
    let mut r = Record::default();
    r.set("mount_id", m.id)
        .set("dev", format!("{}:{}", m.dev.0, m.dev.1))
        .set("point", point.display())
        .set("source", &m.source)
        .set("fstype", &m.fstype)
        .set("ro", u8::from(cfg.wants_ro()));
    if let Some(d) = device {
        r.set("device", d.display());
    }
    if cfg.force.moved {
        r.set("moved", cfg.moved_point().display());
    }
    StateFile::for_ctx(ctx).save(&r)
}

fn status_file(cfg: &Config, point: &Path, ctx: &Ctx) -> PathBuf {
    let mut suffix = ctx.instance.clone();
    if let Some(c) = ctx.env.meta("clone") {
        suffix.push('_');
        suffix.push_str(c);
    }
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    suffix.push('_');
    suffix.push_str(&host);
    point.join(format!(
        "{}{}",
        cfg.statusfile_prefix,
        suffix.replace('/', "_")
    ))
}

/// A 4 KiB buffer aligned for O_DIRECT.
fn aligned_block() -> Vec<u8> {
    // Over-allocate, and the caller uses the aligned window.
    vec![0u8; 8192]
}

fn aligned(buf: &mut [u8]) -> &mut [u8] {
    let off = buf.as_ptr().align_offset(4096);
    &mut buf[off..off + 4096]
}

/// Depth 10: read one block of the device, bypassing the page cache.
fn read_block(device: PathBuf, deadline: &Deadline) -> Result<(), OcfError> {
    let d = device.clone();
    let r = bounded(deadline, &format!("reading {}", d.display()), move || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&device)?;
        let mut buf = aligned_block();
        let b = aligned(&mut buf);
        // SAFETY: reading into our aligned buffer of b.len() bytes.
        let n = unsafe { libc::pread(f.as_raw_fd(), b.as_mut_ptr().cast(), b.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // A device with a filesystem on it has its first block: less is a device that
        // shrank or went away under the mount.
        if (n as usize) < b.len() {
            return Err(std::io::Error::other(format!(
                "read {n} of its first {} bytes",
                b.len()
            )));
        }
        Ok(())
    })?;
    r.map_err(|e| OcfError::generic(format!("cannot read device {}: {e}", d.display())))
}

/// Depth 20: write the status file (O_DIRECT | O_SYNC, or O_SYNC where the filesystem
/// has no O_DIRECT) and read it back.
fn status_check(path: PathBuf, text: String, deadline: &Deadline) -> Result<(), OcfError> {
    let shown = path.display().to_string();
    let r = bounded(deadline, &format!("the status file {shown}"), move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut buf = aligned_block();
        let b = aligned(&mut buf);
        b[..text.len().min(4096)].copy_from_slice(&text.as_bytes()[..text.len().min(4096)]);
        let open = |direct: bool| {
            let mut o = std::fs::OpenOptions::new();
            o.read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600);
            o.custom_flags(libc::O_SYNC | if direct { libc::O_DIRECT } else { 0 });
            o.open(&path)
        };
        let f = match open(true) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(false)?,
            r => r?,
        };
        // SAFETY: our aligned buffers of b.len() bytes.
        let n = unsafe { libc::pwrite(f.as_raw_fd(), b.as_ptr().cast(), b.len(), 0) };
        if n != b.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        let mut back = aligned_block();
        let r = aligned(&mut back);
        let n = unsafe { libc::pread(f.as_raw_fd(), r.as_mut_ptr().cast(), r.len(), 0) };
        if n != r.len() as isize {
            return Err(std::io::Error::other("short read"));
        }
        if r != b {
            return Err(std::io::Error::other("read back something else"));
        }
        Ok(())
    })?;
    r.map_err(|e| OcfError::generic(format!("status file {shown}: {e}")))
}

pub fn monitor(cfg: Option<&Config>, ctx: &Ctx) -> Result<Status, OcfError> {
    let rec = StateFile::for_ctx(ctx).load()?;
    let Some(point) = point_of(cfg, rec.as_ref()) else {
        return Ok(Status::NotRunning);
    };
    let mounts = mount_table()?;
    let moved = rec
        .as_ref()
        .and_then(|r| r.get("moved").map(PathBuf::from))
        .or_else(|| cfg.filter(|c| c.force.moved).map(Config::moved_point));
    if let Some(mv) = moved {
        if let Some(m) = mountinfo::at(&mounts, &mv) {
            return Err(OcfError::generic(format!(
                "force_unmount=move: {} is still mounted on {}",
                m.source,
                mv.display()
            )));
        }
    }
    let (dev, device) = identity(cfg, rec.as_ref());
    let m = match find(&mounts, &point, dev, device.as_deref()) {
        Found::Nothing => return Ok(Status::NotRunning),
        Found::Other(m) if ctx.is_probe() => {
            tracing::info!(
                "another device ({}) is mounted on {}",
                m.source,
                point.display()
            );
            return Ok(Status::NotRunning);
        }
        Found::Other(m) => {
            return Err(OcfError::generic(format!(
                "another device ({}) is mounted on {}",
                m.source,
                point.display()
            )))
        }
        Found::Ours(m) => m,
    };
    // A block device's own number (not the mount's: btrfs and FUSE mounts have an
    // anonymous one): its node and its sysfs entry must still be there. /dev is devtmpfs
    // and /sys sysfs, neither can hang.
    if let Some(d) = device.as_deref() {
        let gone = match rdev_of(Path::new(d)) {
            Some((a, b)) => !Path::new(&format!("/sys/dev/block/{a}:{b}")).exists(),
            None => true,
        };
        if gone {
            return Err(OcfError::generic(format!(
                "the device of {} ({d}) is gone",
                point.display()
            )));
        }
    }
    let check_ro = cfg.is_some_and(|c| c.check_readonly && !c.wants_ro());
    let started_rw = rec.as_ref().is_none_or(|r| r.get("ro") != Some("1"));
    if check_ro && started_rw && m.read_only() {
        return Err(OcfError::generic(format!(
            "{} is read-only now (remounted read-only, e.g. after I/O errors)",
            point.display()
        )));
    }
    match ctx.check_level() {
        10 => match device.as_deref().filter(|_| dev.is_some()) {
            Some(d) => read_block(PathBuf::from(d), &ctx.deadline)?,
            None => tracing::warn!(
                "{} is not a block device: depth 10 checks nothing more",
                m.source
            ),
        },
        20 => {
            if let Some(c) = cfg {
                status_check(
                    status_file(c, &point, ctx),
                    format!("{}\n", ctx.instance),
                    &ctx.deadline,
                )?;
            }
        }
        _ => {}
    }
    Ok(Status::Success)
}

/// `umount` one mount (by its current point), bounded; `-c`: no canonicalization (that
/// would stat the path), `-f` for a network filesystem when forced.
fn umount_one(m: &Mount, force: bool, deadline: &Deadline) -> Result<(), OcfError> {
    let mut args: Vec<std::ffi::OsString> = vec!["-c".into()];
    if force {
        args.push("-f".into());
    }
    args.push(m.point.clone().into_os_string());
    let (ok, said) = run_argv(UMOUNT, "umount", args, deadline)?;
    if !ok {
        tracing::debug!("umount {}: {said}", m.point.display());
    }
    Ok(())
}

/// Ours and every mount below it, deepest first, as the table is now.
fn stack(mounts: &[Mount], id: u32) -> Vec<Mount> {
    let Some(top) = mounts.iter().find(|m| m.id == id) else {
        return vec![];
    };
    let depth = |m: &Mount| {
        let mut d = 0;
        let mut p = m.parent;
        while p != id && d < 1000 {
            match mounts.iter().find(|x| x.id == p) {
                Some(x) => p = x.parent,
                None => break,
            }
            d += 1;
        }
        d
    };
    let mut below: Vec<Mount> = mountinfo::below(mounts, id).into_iter().cloned().collect();
    below.sort_by_key(|m| std::cmp::Reverse(depth(m)));
    below.push(top.clone());
    below
}

/// Try to unmount everything in the stack once; true when it is all gone.
fn umount_all(id: u32, force: bool, deadline: &Deadline) -> Result<bool, OcfError> {
    for m in stack(&mount_table()?, id) {
        if deadline.expired() {
            break;
        }
        umount_one(&m, force, deadline)?;
    }
    Ok(stack(&mount_table()?, id).is_empty())
}

/// Signal every user; the pidfds of those signalled (to wait for their exit).
fn signal_users(found: &[User], sig: Signal) -> Vec<OwnedFd> {
    let mut fds = vec![];
    for (i, u) in found.iter().enumerate() {
        let Some(fd) = procfs::pidfd_open(u.pid) else {
            continue;
        };
        // The pidfd now pins the process: is it still the one we found?
        if procfs::stat(u.pid).map(|s| s.start_time) != Some(u.start) {
            continue;
        }
        let sent = procfs::pidfd_signal(&fd, sig);
        if i < 20 {
            tracing::info!(
                "sent {sig} to pid {} ({}, {}){}",
                u.pid,
                procfs::comm(u.pid).unwrap_or_default(),
                u.how,
                if sent { "" } else { " (failed)" }
            );
        }
        if sent {
            fds.push(fd);
        }
    }
    if found.len() > 20 {
        tracing::info!("sent {sig} to {} processes in all", found.len());
    }
    fds
}

/// Wait until every pidfd says its process exited, or `wait` passes.
fn wait_exit(fds: &[OwnedFd], wait: Duration, deadline: &Deadline) {
    let until = deadline.cap(wait);
    let mut open: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !open.is_empty() && !until.expired() {
        let ms = until.remaining().as_millis().clamp(1, 1000) as i32;
        // SAFETY: poll on our own array of pollfds.
        let n = unsafe { libc::poll(open.as_mut_ptr(), open.len() as libc::nfds_t, ms) };
        if n < 0 {
            break;
        }
        open.retain(|p| p.revents == 0);
        for p in &mut open {
            p.revents = 0;
        }
    }
}

pub fn stop(cfg: Option<&Config>, ctx: &Ctx) -> Result<(), OcfError> {
    let sf = StateFile::for_ctx(ctx);
    let rec = sf.load()?;
    let Some(point) = point_of(cfg, rec.as_ref()) else {
        tracing::info!("no mount point known: nothing of ours is mounted");
        return Ok(());
    };
    let mounts = mount_table()?;
    let (dev, device) = identity(cfg, rec.as_ref());
    let moved = rec
        .as_ref()
        .and_then(|r| r.get("moved").map(PathBuf::from))
        .or_else(|| cfg.filter(|c| c.force.moved).map(Config::moved_point));
    // A stop that moved the mount and then timed out left it at the moved point.
    let left_moved =
        moved
            .as_ref()
            .and_then(|mv| match find(&mounts, mv, dev, device.as_deref()) {
                Found::Ours(m) => Some(m),
                _ => None,
            });
    let m = match (find(&mounts, &point, dev, device.as_deref()), left_moved) {
        (Found::Ours(m), _) => m,
        (_, Some(m)) => m,
        (Found::Other(m), None) => {
            tracing::info!(
                "{} is mounted on {}, not our device: nothing of ours to unmount",
                m.source,
                point.display()
            );
            sf.remove()?;
            return Ok(());
        }
        (Found::Nothing, None) => {
            tracing::info!("{} is not mounted", point.display());
            sf.remove()?;
            return Ok(());
        }
    };
    let budget = match cfg {
        Some(c) if c.fast_stop => ctx.deadline.cap(Duration::from_secs(6)),
        _ => ctx.deadline,
    };
    if let Some(c) = cfg.filter(|_| ctx.check_level() == 20) {
        let f = status_file(c, &m.point, ctx);
        let _ = bounded(
            &budget.cap(Duration::from_secs(2)),
            "removing the status file",
            move || std::fs::remove_file(f),
        );
    }
    unmount(cfg, &m, &budget, moved.as_deref())?;
    sf.remove()
}

fn unmount(
    cfg: Option<&Config>,
    m: &Mount,
    budget: &Deadline,
    moved: Option<&Path>,
) -> Result<(), OcfError> {
    let network =
        cfg.is_some_and(Config::is_network) || super::params::served_from_elsewhere(&m.fstype);
    // Nobody should be using it: try first, before looking for users.
    if umount_all(m.id, false, budget)? {
        tracing::info!("unmounted {}", m.point.display());
        return Ok(());
    }
    let kill = cfg.is_none_or(|c| c.force.kill);
    if let (Some(mv), true) = (moved, cfg.is_some_and(|c| c.force.moved)) {
        if m.point != mv {
            move_mount(&m.point, mv);
        }
    }
    let t0 = Instant::now();
    let half = budget.remaining() / 2;
    let (term, killsig, delay) = match cfg {
        Some(c) => (
            c.term_signals.clone(),
            c.kill_signals.clone(),
            c.signal_delay,
        ),
        None => (
            vec![Signal::SIGTERM],
            vec![Signal::SIGKILL],
            Duration::from_secs(1),
        ),
    };
    let mut last: Vec<User> = vec![];
    while !budget.expired() {
        let forced = t0.elapsed() >= half;
        if kill {
            let table = mount_table()?;
            let ours = stack(&table, m.id);
            if ours.is_empty() {
                return Ok(());
            }
            let target = Target::new(&ours.iter().collect::<Vec<_>>());
            last = users::scan(&target, budget);
            let mut fds = vec![];
            for sig in if forced { &killsig } else { &term } {
                fds.extend(signal_users(&last, *sig));
            }
            if !fds.is_empty() && umount_all(m.id, forced && network, budget)? {
                return Ok(());
            }
            wait_exit(&fds, delay.max(Duration::from_millis(50)), budget);
        } else {
            std::thread::sleep(budget.remaining().min(Duration::from_millis(200)));
        }
        if umount_all(m.id, forced && network, budget)? {
            tracing::info!("unmounted {}", m.point.display());
            return Ok(());
        }
    }
    let who: Vec<String> = last
        .iter()
        .take(5)
        .map(|u| format!("{} ({})", u.pid, procfs::comm(u.pid).unwrap_or_default()))
        .collect();
    Err(OcfError::generic(format!(
        "cannot unmount {}: still busy before the timeout{}",
        m.point.display(),
        if who.is_empty() {
            String::new()
        } else {
            format!("; users: {}", who.join(", "))
        }
    )))
}

/// `force_unmount=move`: move the mount out of the users' way before signalling them.
fn move_mount(from: &Path, to: &Path) {
    let _ = std::fs::create_dir(to);
    match nix::mount::mount(
        Some(from),
        to,
        None::<&str>,
        nix::mount::MsFlags::MS_MOVE,
        None::<&str>,
    ) {
        Ok(()) => tracing::info!("moved {} to {}", from.display(), to.display()),
        Err(e) => tracing::warn!(
            "cannot move {} to {} ({e}; a shared parent mount?): unmounting in place",
            from.display(),
            to.display()
        ),
    }
}
