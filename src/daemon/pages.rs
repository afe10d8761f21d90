//! Giving back the pages of the executable that a helper's start-up touched.

/// One mapping of `/proc/self/smaps`: its range, whether it is writable, its path, and
/// its `Anonymous:` size (copy-on-write pages, which the file cannot give back).
#[derive(Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub writable: bool,
    pub path: String,
    pub anonymous_kb: u64,
}

/// Parse `/proc/<pid>/smaps` text.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("");
                // offset, dev, inode, then the path (which may contain spaces).
                let path = line
                    .splitn(6, ' ')
                    .nth(5)
                    .map(|p| p.trim_start().to_string())
                    .unwrap_or_default();
                out.push(Mapping {
                    start,
                    end,
                    writable: perms.as_bytes().get(1) == Some(&b'w'),
                    path,
                    // Unknown until its Anonymous: line: never trimmed without one.
                    anonymous_kb: u64::MAX,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let (Some(m), Some(kb)) = (out.last_mut(), f.next().and_then(|v| v.parse().ok())) {
                m.anonymous_kb = kb;
            }
        }
    }
    out
}

/// The mappings of our own executable that can be dropped from the page tables without
/// losing anything: not writable, and not one copy-on-written page (`Anonymous: 0 kB`;
/// dropping a CoW page would revert it to the file's bytes). `code` is an address inside
/// our text, which names the executable's path.
pub fn clean_exe_mappings(maps: &[Mapping], code: usize) -> Vec<&Mapping> {
    let Some(exe) = maps
        .iter()
        .find(|m| m.start <= code && code < m.end && !m.path.is_empty())
        .map(|m| m.path.as_str())
    else {
        return vec![];
    };
    maps.iter()
        .filter(|m| m.path == exe && !m.writable && m.anonymous_kb == 0)
        .collect()
}

/// Drop the file-backed, never-written pages of our own executable from this process's
/// page tables (`madvise(MADV_DONTNEED)`): the one binary is large (the AWS SDK is in it),
/// and start-up (the dispatcher, argument parsing, fault-around of 64 KB at a time) maps
/// far more of it than a helper's loop ever runs again. They stay in the page cache, so
/// only the pages the loop touches come back, each at the cost of a minor fault.
/// Writable mappings and any with a copy-on-written page are left alone, and heap and
/// stack are not touched. Best effort: any failure leaves the process as it was.
pub fn release_startup_pages() {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let maps = parse_smaps(&text);
    let here = release_startup_pages as fn() as usize;
    for m in clean_exe_mappings(&maps, here) {
        // SAFETY: a read-only, file-backed private mapping without anonymous pages: after
        // MADV_DONTNEED its pages fault back in from the same file, unchanged. Nothing is
        // unmapped; no memory that Rust owns changes contents.
        unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_mappings_of_our_executable_are_released() {
        let smaps = "\
00400000-00500000 r--p 00000000 fd:01 42                                 /usr/libexec/rustha/rustha
Size:               1024 kB
Rss:                 300 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
00500000-00900000 r-xp 00100000 fd:01 42                                 /usr/libexec/rustha/rustha
Size:               4096 kB
Anonymous:             0 kB
00900000-00a00000 r--p 00500000 fd:01 42                                 /usr/libexec/rustha/rustha
Size:               1024 kB
Anonymous:            12 kB
00a00000-00a10000 rw-p 00600000 fd:01 42                                 /usr/libexec/rustha/rustha
Size:                 64 kB
Anonymous:             0 kB
00b00000-00b10000 r-xp 00000000 fd:01 43                                 /usr/lib/other lib.so
Size:                 64 kB
Anonymous:             0 kB
00c00000-00c10000 r--p 00000000 fd:01 42                                 /usr/libexec/rustha/rustha
Size:                 64 kB
01000000-01100000 rw-p 00000000 00:00 0                                  [heap]
Anonymous:            64 kB
";
        let maps = parse_smaps(smaps);
        assert_eq!(maps.len(), 7);
        assert_eq!(maps[6].path, "[heap]");
        assert_eq!(maps[4].path, "/usr/lib/other lib.so");
        assert_eq!(maps[5].path, "/usr/libexec/rustha/rustha");
        assert_eq!(maps[5].anonymous_kb, u64::MAX, "no Anonymous: line seen");
        let ranges = |code| -> Vec<(usize, usize)> {
            clean_exe_mappings(&maps, code)
                .iter()
                .map(|m| (m.start, m.end))
                .collect()
        };
        // rodata and text; not the RELRO part with CoW pages, not .data, not another
        // file, not a mapping whose smaps lacked its Anonymous: line.
        assert_eq!(
            ranges(0x0050_1234),
            vec![(0x40_0000, 0x50_0000), (0x50_0000, 0x90_0000)]
        );
        assert_eq!(ranges(0x00b0_0010), vec![(0xb0_0000, 0xb1_0000)]);
        assert!(ranges(0x0300_0000).is_empty(), "an address in no mapping");
        assert!(ranges(0x0100_0000).is_empty(), "the heap");
    }

    #[test]
    fn releasing_startup_pages_keeps_the_process_working() {
        let maps = parse_smaps(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        let here = releasing_startup_pages_keeps_the_process_working as fn() as usize;
        assert!(!clean_exe_mappings(&maps, here).is_empty(), "{maps:?}");
        // A written page of a writable mapping (.data) keeps what was written.
        static WRITTEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        WRITTEN.store(12345, std::sync::atomic::Ordering::SeqCst);
        const TABLE: [u64; 4] = [0x0123_4567_89ab_cdef, 7, 11, 13];
        let table = std::hint::black_box(&TABLE);
        let before: u64 = table.iter().fold(0, |a, &x| a.rotate_left(7) ^ x);
        release_startup_pages();
        assert_eq!(WRITTEN.load(std::sync::atomic::Ordering::SeqCst), 12345);
        // Code and read-only data fault back in from the file, unchanged.
        let after: u64 = table.iter().fold(0, |a, &x| a.rotate_left(7) ^ x);
        assert_eq!(before, after);
    }
}
