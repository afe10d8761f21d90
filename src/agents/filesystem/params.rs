//! Filesystem's parameters (upstream's names and defaults), and the configuration they
//! give once checked: what can be told from the values alone, before any I/O.

use nix::sys::signal::Signal;
use ocf::{Ctx, OcfError, ParamSpec};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

ocf::choice! {
    /// When start runs fsck.
    pub enum RunFsck { Auto = "auto", Force = "force", No = "no" }
}

ocf::params! {
    pub struct FilesystemParams {
        device: String => ParamSpec::new(
            "Block device",
            "What to mount: a block device (/dev/sdb1, /dev/disk/by-uuid/...), '-U <uuid>', \
             '--uuid=<uuid>' or 'UUID=<uuid>', '-L <label>', '--label=<label>' or \
             'LABEL=<label>' (resolved through /dev/disk/by-* or blkid, without a shell), an \
             NFS or CIFS source (server:/export, //server/share), or the directory of a bind \
             mount (fstype none, options bind). No leading or trailing white space.",
        ).example("/dev/sdb1"),
        directory: String => ParamSpec::new(
            "Mount point",
            "Where the filesystem is mounted: an absolute path other than /. Created at start \
             when missing. Trailing slashes are ignored.",
        ).unique().example("/srv/data"),
        fstype: String => ParamSpec::new(
            "Filesystem type",
            "The filesystem type given to mount -t (ext4, xfs, nfs4, cifs, gfs2, ocfs2, none \
             for a bind mount, ...). Empty: mount(8) detects it.",
        ).example("ext4"),
        options: Option<String> => ParamSpec::new(
            "Mount options",
            "Options given as mount -o (e.g. noatime,nodev). For a bind mount use 'bind' (or \
             'bind,ro') with fstype none.",
        ),
        statusfile_prefix: String => ParamSpec::new(
            "Status file prefix",
            "Where a depth-20 monitor writes and reads back its status file, relative to the \
             mount point: <directory>/<prefix><instance>[_<clone>]_<node name>. A prefix ending \
             in / is a directory.",
        ).default(".Filesystem_status/"),
        run_fsck: RunFsck => ParamSpec::new(
            "Run fsck",
            "auto: before mounting a block device, run 'fsck -p' for the filesystem types that \
             need it (not for journalling, network or cluster filesystems); force: always; \
             no: never.",
        ).default("auto"),
        fast_stop: bool => ParamSpec::new(
            "Fast stop",
            "Stop expects no users: it spends at most 6 seconds (within the stop timeout) on \
             signalling users and unmounting before it fails. Off: the whole stop timeout.",
        ).default("false"),
        force_clones: bool => ParamSpec::new(
            "Allow clones of a local filesystem",
            "Allow this resource in a clone although the filesystem is not cluster-aware \
             (ext4, xfs, ...). Clones of gfs2, ocfs2, network filesystems, bind mounts and \
             tmpfs are always allowed, and of a read-only mount of another type. Only set \
             this if you know every node mounts a different device.",
        ).default("false"),
        force_unmount: String => ParamSpec::new(
            "Kill users on stop",
            "What stop does with processes that keep the filesystem busy: 'true' or 'safe' \
             (both: find them exactly, by mount, without fuser, and signal them), 'false' \
             (signal nobody; stop fails if the filesystem stays busy). Comma-separated \
             modifiers may follow: 'move' moves the mount to <parent>/.<name> before users are \
             signalled, so new users cannot find it; 'nomove'; upstream's 'xargs', 'noxargs', \
             'ps' and 'nops' are accepted and change nothing (every user is logged with its \
             pid and command).",
        ).default("true"),
        term_signals: String => ParamSpec::new(
            "Signals for the graceful phase",
            "Signals (names like TERM or SIGTERM, or numbers), separated by spaces or commas, \
             sent to users during the first half of the stop budget.",
        ).default("TERM"),
        kill_signals: String => ParamSpec::new(
            "Signals for the forced phase",
            "Signals sent to users that remain in the second half of the stop budget.",
        ).default("KILL"),
        signal_delay: String => ParamSpec::new(
            "Wait after signalling (s)",
            "At most how many seconds (decimals allowed, e.g. 0.5) stop waits for signalled \
             users to exit before it looks again; it goes on at once when they are all gone.",
        ).default("1"),
        check_readonly: bool => ParamSpec::new(
            "Fail when remounted read-only",
            "Monitor fails when the filesystem, mounted read-write, is now read-only (ext4 or \
             xfs remount read-only on I/O errors; the service on it can no longer write). \
             Ignored when options ask for ro.",
        ).default("true"),
    }
}

/// What is mounted, as the device parameter says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A block device path.
    Block(PathBuf),
    Uuid(String),
    Label(String),
    /// Anything else: a network source, the directory of a bind mount, a pseudo source.
    Other(String),
}

/// What stop does with users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForceUnmount {
    pub kill: bool,
    pub moved: bool,
}

/// Filesystem types that are never on a local block device.
pub const NOT_BLOCK: &[&str] = &[
    "nfs4",
    "nfs",
    "aznfs",
    "efs",
    "smbfs",
    "cifs",
    "none",
    "glusterfs",
    "ceph",
    "tmpfs",
    "overlay",
    "overlayfs",
    "rozofs",
    "zfs",
    "cvfs",
    "lustre",
];

/// Types `umount -f` helps with (an unreachable server).
pub const NETWORK: &[&str] = &["nfs4", "nfs", "aznfs", "efs", "cifs", "smbfs"];

/// A FUSE filesystem served by a daemon (sshfs, s3fs, fuse2fs, ...): its source is the
/// daemon's argument, not a block device, and `umount -f` aborts its connection (what
/// frees a stop from a hung daemon). fuseblk (ntfs-3g on a disk) is block-backed.
pub fn is_fuse(fstype: &str) -> bool {
    fstype == "fuse" || fstype.starts_with("fuse.")
}

/// [`NETWORK`] types and FUSE: what `umount -f` can free from a dead server or daemon.
pub fn served_from_elsewhere(fstype: &str) -> bool {
    NETWORK.contains(&fstype) || is_fuse(fstype)
}

/// Never on a local block device: [`NOT_BLOCK`] and FUSE.
pub fn not_block(fstype: &str) -> bool {
    NOT_BLOCK.contains(&fstype) || is_fuse(fstype)
}

/// Types upstream does not fsck on `run_fsck=auto`.
const NO_FSCK: &[&str] = &[
    "ext4",
    "ext4dev",
    "ext3",
    "reiserfs",
    "reiser4",
    "nss",
    "xfs",
    "jfs",
    "vfat",
    "fat",
    "nfs4",
    "nfs",
    "aznfs",
    "efs",
    "cifs",
    "smbfs",
    "ocfs2",
    "gfs2",
    "none",
    "lustre",
    "glusterfs",
    "ceph",
    "tmpfs",
    "overlay",
    "overlayfs",
    "rozofs",
    "zfs",
    "cvfs",
];

/// Types that may run as a clone without force_clones.
const CLONE_SAFE: &[&str] = &[
    "none",
    "overlay",
    "overlayfs",
    "tmpfs",
    "nfs4",
    "nfs",
    "aznfs",
    "efs",
    "smbfs",
    "cifs",
    "gfs2",
    "glusterfs",
    "ceph",
    "ocfs2",
    "cvfs",
    "lustre",
];

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: Source,
    /// The mount point, normalized (absolute, no trailing slash, no `.`/`..`).
    pub point: PathBuf,
    pub fstype: String,
    /// The mount options, one per element.
    pub options: Vec<String>,
    pub fsck: bool,
    pub fast_stop: bool,
    pub force: ForceUnmount,
    pub term_signals: Vec<Signal>,
    pub kill_signals: Vec<Signal>,
    pub signal_delay: Duration,
    pub check_readonly: bool,
    pub statusfile_prefix: String,
}

impl Config {
    /// A block device (so its identity is its device number), as upstream decides it.
    pub fn is_block(&self) -> bool {
        !not_block(&self.fstype)
            && !self.has_option("loop")
            && !matches!(&self.source, Source::Other(_))
    }
    pub fn has_option(&self, o: &str) -> bool {
        self.options.iter().any(|x| x == o)
    }
    pub fn wants_ro(&self) -> bool {
        self.has_option("ro")
    }
    /// Served from elsewhere (a server, a FUSE daemon): `umount -f` in the kill phase.
    pub fn is_network(&self) -> bool {
        served_from_elsewhere(&self.fstype)
    }
    /// Where `force_unmount=move` moves the mount: `<parent>/.<name>`.
    pub fn moved_point(&self) -> PathBuf {
        let name = self.point.file_name().unwrap_or_default().to_string_lossy();
        self.point
            .parent()
            .unwrap_or(Path::new("/"))
            .join(format!(".{name}"))
    }
}

/// Parse the device parameter's forms.
pub fn parse_source(raw: &str, fstype: &str) -> Result<Source, OcfError> {
    let bad = |why: &str| OcfError::invalid_param("device", why.to_string());
    if raw.is_empty() {
        return Err(OcfError::missing_param("device"));
    }
    if raw.trim() != raw {
        return Err(bad(
            "leading or trailing white space is not allowed in device",
        ));
    }
    let tagged = |v: &str, make: fn(String) -> Source| -> Result<Source, OcfError> {
        let v = v.trim();
        if v.is_empty() || v.contains(char::is_whitespace) || v.contains('/') {
            return Err(bad(&format!("'{raw}' names no UUID or label")));
        }
        Ok(make(v.to_string()))
    };
    for (prefixes, make) in [
        (
            &["--uuid=", "--uuid ", "-U", "UUID="][..],
            Source::Uuid as fn(String) -> Source,
        ),
        (&["--label=", "--label ", "-L", "LABEL="][..], Source::Label),
    ] {
        for p in prefixes {
            if let Some(v) = raw.strip_prefix(p) {
                let v = v.strip_prefix('=').unwrap_or(v);
                let v = v.trim_matches('"');
                return tagged(v, make);
            }
        }
    }
    if raw.starts_with('/') && !raw.starts_with("//") && !not_block(fstype) {
        return Ok(Source::Block(PathBuf::from(raw)));
    }
    Ok(Source::Other(raw.to_string()))
}

/// Lexically normalize an absolute mount point.
pub fn normalize_point(raw: &str) -> Result<PathBuf, OcfError> {
    let bad = |why: String| OcfError::invalid_param("directory", why);
    if raw.is_empty() {
        return Err(OcfError::missing_param("directory"));
    }
    if raw.trim() != raw {
        return Err(bad("leading or trailing white space is not allowed".into()));
    }
    if !raw.starts_with('/') {
        return Err(bad(format!("'{raw}' is not an absolute path")));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(bad(format!("'{raw}' contains '..'")));
            }
            _ => {}
        }
    }
    if out == Path::new("/") {
        return Err(OcfError::configured("/ cannot be managed in a cluster").about("directory"));
    }
    Ok(out)
}

/// `force_unmount` with its modifiers; the last of contradicting ones wins (upstream).
pub fn parse_force(raw: &str) -> Result<ForceUnmount, OcfError> {
    let mut kill = None;
    let mut moved = false;
    let mut any = false;
    for m in raw.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        any = true;
        match m.to_ascii_lowercase().as_str() {
            "move" => moved = true,
            "nomove" => moved = false,
            "ps" | "nops" | "xargs" | "noxargs" => {}
            "safe" => kill = Some(true),
            v => match ocf::env::pacemaker_bool(v) {
                Some(b) => kill = Some(b),
                None => {
                    return Err(OcfError::invalid_param(
                        "force_unmount",
                        format!("'{m}' is not true, safe, false or a modifier (move, nomove, xargs, noxargs, ps, nops)"),
                    ))
                }
            },
        }
    }
    Ok(ForceUnmount {
        // Upstream: nothing given -> false; only modifiers -> true.
        kill: kill.unwrap_or(any),
        moved,
    })
}

pub fn parse_signals(name: &'static str, raw: &str) -> Result<Vec<Signal>, OcfError> {
    let mut out = vec![];
    for w in raw
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        let sig = if let Ok(n) = w.parse::<i32>() {
            Signal::try_from(n).ok()
        } else {
            let up = w.to_ascii_uppercase();
            let full = if up.starts_with("SIG") {
                up
            } else {
                format!("SIG{up}")
            };
            Signal::from_str(&full).ok()
        };
        match sig {
            Some(s) => out.push(s),
            None => {
                return Err(OcfError::invalid_param(
                    name,
                    format!("'{w}' is not a signal"),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(OcfError::invalid_param(name, "no signal given"));
    }
    Ok(out)
}

pub fn parse_delay(raw: &str) -> Result<Duration, OcfError> {
    let bad = || {
        OcfError::invalid_param(
            "signal_delay",
            format!("'{raw}' is not a number of seconds (0 to 3600)"),
        )
    };
    let t = raw.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let s: f64 = t.parse().map_err(|_| bad())?;
    if !(0.0..=3600.0).contains(&s) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(s))
}

/// Everything that can be checked without I/O (validate-all, start; stop and monitor use
/// it leniently).
pub fn check(p: &FilesystemParams, ctx: &Ctx) -> Result<Config, OcfError> {
    let fstype = p.fstype.trim().to_string();
    if fstype.contains(|c: char| c.is_whitespace() || c == ',' || c == '/') {
        return Err(OcfError::invalid_param(
            "fstype",
            format!("'{}' is not a filesystem type", p.fstype),
        ));
    }
    let options: Vec<String> = p
        .options
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    if options.iter().any(|o| o.contains(char::is_whitespace)) {
        return Err(OcfError::invalid_param(
            "options",
            "white space inside a mount option",
        ));
    }
    let prefix = &p.statusfile_prefix;
    if prefix.starts_with('/') || prefix.split('/').any(|c| c == "..") {
        return Err(OcfError::invalid_param(
            "statusfile_prefix",
            "must be relative to the mount point, without '..'",
        ));
    }
    let cfg = Config {
        source: parse_source(&p.device, &fstype)?,
        point: normalize_point(&p.directory)?,
        fsck: match p.run_fsck {
            RunFsck::Force => true,
            RunFsck::No => false,
            RunFsck::Auto => !NO_FSCK.contains(&fstype.as_str()),
        },
        fast_stop: p.fast_stop,
        force: parse_force(&p.force_unmount)?,
        term_signals: parse_signals("term_signals", &p.term_signals)?,
        kill_signals: parse_signals("kill_signals", &p.kill_signals)?,
        signal_delay: parse_delay(&p.signal_delay)?,
        check_readonly: p.check_readonly,
        statusfile_prefix: prefix.clone(),
        fstype,
        options,
    };
    if ctx.env.is_clone() {
        let safe = CLONE_SAFE.contains(&cfg.fstype.as_str()) || cfg.wants_ro();
        if !safe && !p.force_clones {
            return Err(OcfError::configured(format!(
                "{} on {} is not cluster-aware: refusing to run it as a clone (set force_clones \
                 only if every node mounts a different device)",
                if cfg.fstype.is_empty() {
                    "this filesystem"
                } else {
                    &cfg.fstype
                },
                p.device
            )));
        }
        if !safe {
            tracing::warn!(
                "{} is not cluster-aware; running as a clone because force_clones is set",
                cfg.fstype
            );
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_forms() {
        let u = |s: &str| parse_source(s, "ext4").unwrap();
        for s in [
            "-U 1234-ab",
            "-U1234-ab",
            "--uuid=1234-ab",
            "--uuid 1234-ab",
            "UUID=1234-ab",
            "UUID=\"1234-ab\"",
        ] {
            assert_eq!(u(s), Source::Uuid("1234-ab".into()), "{s}");
        }
        for s in ["-L data", "--label=data", "LABEL=data", "--label data"] {
            assert_eq!(u(s), Source::Label("data".into()), "{s}");
        }
        assert_eq!(u("/dev/sdb1"), Source::Block("/dev/sdb1".into()));
        assert_eq!(
            parse_source("srv:/export", "nfs4").unwrap(),
            Source::Other("srv:/export".into())
        );
        assert_eq!(
            parse_source("//srv/share", "cifs").unwrap(),
            Source::Other("//srv/share".into())
        );
        assert_eq!(
            parse_source("/srv/a", "none").unwrap(),
            Source::Other("/srv/a".into())
        );
        // FUSE: the daemon's argument, never a block device; fuseblk is one.
        for t in ["fuse.sshfs", "fuse.ext4", "fuse"] {
            assert_eq!(
                parse_source("/srv/img", t).unwrap(),
                Source::Other("/srv/img".into())
            );
            assert!(is_fuse(t));
        }
        assert_eq!(
            parse_source("/dev/sdc1", "fuseblk").unwrap(),
            Source::Block("/dev/sdc1".into())
        );
        for bad in [" /dev/sdb1", "/dev/sdb1 ", "-U", "UUID=", "-L a b", ""] {
            assert!(parse_source(bad, "ext4").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn points() {
        assert_eq!(
            normalize_point("/srv/data//").unwrap(),
            PathBuf::from("/srv/data")
        );
        assert_eq!(
            normalize_point("/srv/./data").unwrap(),
            PathBuf::from("/srv/data")
        );
        for bad in ["/", "///", "srv", "/srv/../etc", " /srv", ""] {
            assert!(normalize_point(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize_point("/").unwrap_err().kind,
            ocf::ErrorKind::Configured
        );
    }

    #[test]
    fn force_unmount_modifiers() {
        let f = |s| parse_force(s).unwrap();
        assert_eq!(
            f("true"),
            ForceUnmount {
                kill: true,
                moved: false
            }
        );
        assert_eq!(
            f("safe"),
            ForceUnmount {
                kill: true,
                moved: false
            }
        );
        assert_eq!(
            f("false"),
            ForceUnmount {
                kill: false,
                moved: false
            }
        );
        assert_eq!(
            f(""),
            ForceUnmount {
                kill: false,
                moved: false
            }
        );
        assert_eq!(
            f("move"),
            ForceUnmount {
                kill: true,
                moved: true
            }
        );
        assert_eq!(
            f("safe,move,noxargs,ps"),
            ForceUnmount {
                kill: true,
                moved: true
            }
        );
        assert_eq!(
            f("true,move,nomove"),
            ForceUnmount {
                kill: true,
                moved: false
            }
        );
        assert!(parse_force("sometimes").is_err());
    }

    #[test]
    fn signals_and_delay() {
        assert_eq!(
            parse_signals("term_signals", "TERM SIGINT,9").unwrap(),
            vec![Signal::SIGTERM, Signal::SIGINT, Signal::SIGKILL]
        );
        assert!(parse_signals("term_signals", "TERM NOPE").is_err());
        assert!(parse_signals("term_signals", " ").is_err());
        assert!(parse_signals("term_signals", "999").is_err());
        assert_eq!(parse_delay("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_delay("2").unwrap(), Duration::from_secs(2));
        for bad in ["-1", "x", "", "1e3", "99999"] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
    }
}
