//! What /proc says about processes and sockets. No `kill -0` anywhere: identity is
//! pid + start time, and a zombie is dead.

use std::collections::HashSet;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z`, `X`, ...
    pub state: char,
    /// Field 4: the parent's pid.
    pub ppid: i32,
    /// Field 6: the session id (the pid of the session's leader).
    pub session: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// Parse a `/proc/<pid>/stat` line (the command may contain spaces and parentheses).
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let session = f.nth(1)?.parse().ok()?;
    // Field 6 was the session; start time is field 22, i.e. 16 further on.
    let start_time = f.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        session,
        start_time,
    })
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn argv0(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = raw.split(|&b| b == 0).next()?;
    Some(String::from_utf8_lossy(first).into_owned())
}

pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn exe(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// All pids currently in /proc.
pub fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A listening TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub inode: u64,
}

fn hex_v4(h: &str) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(
        u32::from_str_radix(h, 16).ok()?.to_ne_bytes(),
    ))
}

fn hex_v6(h: &str) -> Option<Ipv6Addr> {
    if h.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for i in 0..4 {
        let w = u32::from_str_radix(&h[i * 8..i * 8 + 8], 16).ok()?;
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    Some(Ipv6Addr::from(b))
}

/// Parse `/proc/net/tcp` or `tcp6` text: the LISTEN sockets.
pub fn parse_tcp_listeners(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            let (a, p) = f[1].split_once(':')?;
            let port = u16::from_str_radix(p, 16).ok()?;
            let ip = if a.len() == 8 {
                IpAddr::V4(hex_v4(a)?)
            } else {
                IpAddr::V6(hex_v6(a)?)
            };
            Some(Listener {
                addr: SocketAddr::new(ip, port),
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// Read a /proc table with few, large reads: each read() of /proc/net/tcp walks the
/// kernel's whole socket hash, so small reads multiply the cost.
fn read_big(path: &str) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(256 * 1024);
    loop {
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        let spare = buf.capacity() - buf.len();
        let start = buf.len();
        buf.resize(start + spare, 0);
        let n = f.read(&mut buf[start..]).ok()?;
        buf.truncate(start + n);
        if n == 0 {
            return String::from_utf8(buf).ok();
        }
    }
}

/// LISTEN sockets on `port` in the network namespace of `pid` (`None` = ours).
pub fn tcp_listeners(pid: Option<i32>, port: u16) -> Vec<Listener> {
    let base = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|f| read_big(&format!("{base}/net/{f}")))
        .flat_map(|t| parse_tcp_listeners(&t))
        .filter(|l| l.addr.port() == port)
        .collect()
}

/// Socket inodes among `pid`'s open file descriptors.
pub fn socket_inodes(pid: i32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let target = std::fs::read_link(e.ok()?.path()).ok()?;
                let t = target.to_str()?;
                t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default()
}

/// A pidfd for `pid` (Linux >= 5.3).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; on success the kernel returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Send `sig` through a pidfd (race-free against pid reuse); whether the kernel took it.
pub fn pidfd_signal(pidfd: &OwnedFd, sig: nix::sys::signal::Signal) -> bool {
    // SAFETY: plain syscall on a pidfd the caller holds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// Ask `pid`'s sockets themselves (a duplicate of each fd via `pidfd_getfd`): is one of
/// them listening on `port`? `None` when the kernel or policy does not allow it.
fn listening_via_pidfd(pid: i32, port: u16) -> Option<Option<SocketAddr>> {
    let pidfd = pidfd_open(pid)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for e in fds.flatten() {
        let is_socket = std::fs::read_link(e.path())
            .map(|t| t.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        let Some(num) = e.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: plain syscall; on success we own the returned duplicate.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), num, 0) };
        if fd < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EBADF) => continue, // closed meanwhile
                _ => return None,
            }
        }
        let dup = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let sock = socket2::SockRef::from(&dup);
        if sock.is_listener().unwrap_or(false) {
            if let Some(addr) = sock.local_addr().ok().and_then(|a| a.as_socket()) {
                if addr.port() == port {
                    return Some(Some(addr));
                }
            }
        }
    }
    Some(None)
}

/// Does `pid` itself hold a socket listening on `port`? Returns the address.
pub fn listening_on(pid: i32, port: u16) -> Option<SocketAddr> {
    if let Some(answer) = listening_via_pidfd(pid, port) {
        return answer;
    }
    let ls = tcp_listeners(Some(pid), port);
    if ls.is_empty() {
        return None;
    }
    let mine = socket_inodes(pid);
    ls.into_iter()
        .find(|l| mine.contains(&l.inode))
        .map(|l| l.addr)
}

/// Who holds a LISTEN socket on `port` in our namespace: "pid 123 (nc)", ...
pub fn listening_owners(port: u16) -> Vec<String> {
    listening_owners_where(port, |_| true)
}

/// As [`listening_owners`], for the listeners whose address `pick` accepts.
pub fn listening_owners_where(port: u16, pick: impl Fn(&SocketAddr) -> bool) -> Vec<String> {
    let inodes: HashSet<u64> = tcp_listeners(None, port)
        .iter()
        .filter(|l| pick(&l.addr))
        .map(|l| l.inode)
        .collect();
    if inodes.is_empty() {
        return vec![];
    }
    pids()
        .into_iter()
        .filter(|&p| !socket_inodes(p).is_disjoint(&inodes))
        .map(|p| format!("pid {p} ({})", comm(p).unwrap_or_else(|| "?".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let line = "4242 (a (b) c) Z 1 4242 4242 0 -1 4194560 83 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'Z',
                ppid: 1,
                session: 4242,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        let me = stat(std::process::id() as i32).unwrap();
        assert!(me.start_time > 0 && me.state != 'Z');
    }

    #[test]
    fn tcp_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:EE48 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 100 0 0 10 0\n   1: 0100007F:EE48 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0 100 0 0 10 0\n";
        let l = parse_tcp_listeners(v4);
        assert_eq!(
            l,
            vec![Listener {
                addr: "127.0.0.1:61000".parse().unwrap(),
                inode: 12345
            }]
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:EE48 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n   1: 00000000000000000000000001000000:EE49 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0 100 0 0 10 0\n";
        let l = parse_tcp_listeners(v6);
        assert_eq!(l[0].addr, "[::]:61000".parse().unwrap());
        assert_eq!(l[1].addr, "[::1]:61001".parse().unwrap());
    }

    #[test]
    fn finds_our_own_listener() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert_eq!(listening_on(me, port), Some(sock.local_addr().unwrap()));
        assert!(listening_owners(port)[0].starts_with(&format!("pid {me} (")));
        drop(sock);
        assert_eq!(listening_on(me, port), None);
    }
}
