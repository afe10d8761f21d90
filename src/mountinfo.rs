//! The mount table as the kernel states it: `/proc/<pid>/mountinfo` (proc(5)), parsed
//! without a fork and without touching any mounted filesystem (no `stat` that could hang
//! on a dead NFS server). A mount is known by its mount id and its device number, never
//! by a path prefix.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Unique per mount (reused only after the mount is gone).
    pub id: u32,
    pub parent: u32,
    /// `st_dev` of files on this mount: (major, minor).
    pub dev: (u32, u32),
    /// The directory of the filesystem that is the root of this mount (`/` unless a
    /// bind mount of a subdirectory).
    pub root: PathBuf,
    /// Where it is mounted, relative to the reader's root.
    pub point: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, ...).
    pub options: Vec<String>,
    /// Optional fields (`shared:N`, `master:N`, ...).
    pub optional: Vec<String>,
    pub fstype: String,
    /// The source as the filesystem reports it (a device path, `server:/export`, ...).
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

impl Mount {
    /// Read-only, for the mount or its superblock.
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    /// Parse one line; `None` when it is not in the documented format.
    pub fn parse(line: &str) -> Option<Mount> {
        let (head, tail) = line.split_once(" - ")?;
        let mut h = head.split(' ');
        let id = h.next()?.parse().ok()?;
        let parent = h.next()?.parse().ok()?;
        let dev = parse_dev(h.next()?)?;
        let root = PathBuf::from(unescape(h.next()?));
        let point = PathBuf::from(unescape(h.next()?));
        let options = h.next()?.split(',').map(str::to_owned).collect();
        let optional = h.filter(|f| !f.is_empty()).map(str::to_owned).collect();
        let mut t = tail.split(' ');
        let fstype = unescape(t.next()?);
        let source = unescape(t.next()?);
        let super_options = t
            .next()
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        Some(Mount {
            id,
            parent,
            dev,
            root,
            point,
            options,
            optional,
            fstype,
            source,
            super_options,
        })
    }
}

/// A device number as mountinfo writes it, `major:minor` in decimal.
pub fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount of a mountinfo text, in its order (a later mount on the same point is
/// stacked over an earlier one). Lines not in the format are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(Mount::parse).collect()
}

/// This process's mount table.
pub fn read() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount that is visible at `point` (the top of any stack there), if any.
pub fn at<'a>(mounts: &'a [Mount], point: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.point == point)
}

/// The mounts below `parent` (by mount id), at any depth.
pub fn below(mounts: &[Mount], parent: u32) -> Vec<&Mount> {
    let mut found: Vec<&Mount> = vec![];
    let mut ids = vec![parent];
    while let Some(p) = ids.pop() {
        for m in mounts.iter().filter(|m| m.parent == p && m.id != p) {
            if !found.iter().any(|f| f.id == m.id) {
                found.push(m);
                ids.push(m.id);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
36 22 0:31 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
90 22 7:3 / /srv/my\\040data rw,noatime shared:40 - xfs /dev/loop3 rw,attr2,inode64
91 90 7:3 /sub /srv/my\\040data/bind ro,relatime shared:40 - xfs /dev/loop3 rw
92 90 0:50 / /srv/my\\040data/nfs rw master:3 - nfs4 192.0.2.5:/export rw,vers=4.2
93 22 7:4 / /srv/my\\040data rw - ext4 /dev/loop4 ro
garbage line
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 6, "the garbage line is skipped");
        let d = &m[2];
        assert_eq!((d.id, d.parent, d.dev), (90, 22, (7, 3)));
        assert_eq!(d.point, Path::new("/srv/my data"));
        assert_eq!(d.root, Path::new("/"));
        assert_eq!(d.options, ["rw", "noatime"]);
        assert_eq!(d.optional, ["shared:40"]);
        assert_eq!(
            (d.fstype.as_str(), d.source.as_str()),
            ("xfs", "/dev/loop3")
        );
        assert_eq!(d.super_options, ["rw", "attr2", "inode64"]);
        assert!(!d.read_only());
        assert_eq!(m[3].root, Path::new("/sub"));
        assert!(m[3].read_only(), "per-mount ro");
        assert!(m[5].read_only(), "superblock ro");
        assert_eq!(m[4].source, "192.0.2.5:/export");
        assert!(m[0].optional == ["shared:1"] && m[1].optional == ["shared:7"]);
    }

    #[test]
    fn unescapes_only_kernel_octal() {
        assert_eq!(unescape(r"a\040b\011c\012d\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape(r"\x\09\999\4000"), r"\x\09\999\4000");
        assert_eq!(unescape(r"end\04"), r"end\04");
    }

    #[test]
    fn the_top_of_a_stack_and_what_lies_below() {
        let m = parse(SAMPLE);
        assert_eq!(at(&m, Path::new("/srv/my data")).unwrap().id, 93);
        assert!(at(&m, Path::new("/srv")).is_none());
        let ids: Vec<u32> = below(&m, 90).iter().map(|m| m.id).collect();
        assert_eq!(ids, [91, 92]);
        assert_eq!(below(&m, 22).len(), 5);
    }

    #[test]
    fn reads_this_process_table() {
        let m = read().unwrap();
        let root = at(&m, Path::new("/")).expect("a mount at /");
        assert!(!root.fstype.is_empty() && root.id > 0);
    }
}
