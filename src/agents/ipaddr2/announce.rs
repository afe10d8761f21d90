//! Telling the segment where the address lives: gratuitous ARP (IPv4) and unsolicited
//! neighbour advertisements (IPv6) from raw sockets, and the IPv4 duplicate-address probe.
//!
//! Built in, no `send_arp` / `send_ua` / `arping` binaries: `arp_count` packets exactly
//! `arp_interval` ms apart, in the foreground or from a short-lived background helper.

use crate::daemon::{self, Ready};
use crate::netlink::Link;
use ocf::{Deadline, OcfError};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

/// Hidden argv[1] of the background sender.
pub const ENTRY: &str = "__ipaddr2-announce";

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;

/// What to announce, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub ifindex: u32,
    pub ip: IpAddr,
    /// The interface's hardware address and link-layer broadcast address.
    pub hw: Vec<u8>,
    pub hw_broadcast: Vec<u8>,
    /// ARPHRD_* type (1 = Ethernet, 32 = InfiniBand).
    pub link_type: u16,
    pub count: u32,
    pub interval_ms: u32,
    /// IPv4: send ARP replies instead of requests (`send_arp_opts=-A`).
    pub reply: bool,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether announcing on `link` reaches nobody: a loopback interface, or one without a
/// hardware address.
pub fn pointless(link: &Link) -> bool {
    link.loopback || link.name.starts_with("lo") || link.hw_addr.iter().all(|&b| b == 0)
}

impl Announce {
    /// `count` announcements of `ip` on `link`, `interval_ms` apart.
    pub fn on(link: &Link, ip: IpAddr, count: u32, interval_ms: u32, reply: bool) -> Announce {
        Announce {
            ifindex: link.index,
            ip,
            hw: link.hw_addr.clone(),
            hw_broadcast: link.hw_broadcast.clone(),
            link_type: link.link_type,
            count,
            interval_ms,
            reply,
        }
    }

    /// The helper's arguments (after [`ENTRY`]).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            ENTRY.to_string(),
            self.ifindex.to_string(),
            self.ip.to_string(),
            hex(&self.hw),
            hex(&self.hw_broadcast),
            self.link_type.to_string(),
            self.count.to_string(),
            self.interval_ms.to_string(),
            if self.reply { "reply" } else { "request" }.to_string(),
        ]
    }

    pub fn from_args(a: &[String]) -> Option<Announce> {
        Some(Announce {
            ifindex: a.first()?.parse().ok()?,
            ip: a.get(1)?.parse().ok()?,
            hw: unhex(a.get(2)?)?,
            hw_broadcast: unhex(a.get(3)?)?,
            link_type: a.get(4)?.parse().ok()?,
            count: a.get(5)?.parse().ok()?,
            interval_ms: a.get(6)?.parse().ok()?,
            reply: a.get(7)? == "reply",
        })
    }

    /// How long sending takes from the first packet to the last.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_ms) * u64::from(self.count.saturating_sub(1)))
    }
}

/// An ARP packet (without the link-layer header, which the kernel adds).
pub fn arp_packet(
    link_type: u16,
    op: u16,
    sha: &[u8],
    spa: Ipv4Addr,
    tha: &[u8],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + 2 * (sha.len() + 4));
    p.extend_from_slice(&link_type.to_be_bytes());
    p.extend_from_slice(&ETH_P_IP.to_be_bytes());
    p.push(sha.len() as u8);
    p.push(4);
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// An unsolicited neighbour advertisement (RFC 4861 §4.4, §7.2.6): Override set,
/// Solicited clear, with the target link-layer address option. The kernel fills in the
/// ICMPv6 checksum.
pub fn na_packet(target: Ipv6Addr, hw: &[u8]) -> Vec<u8> {
    let mut p = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    p.extend_from_slice(&target.octets());
    let opt_len = (2 + hw.len()).div_ceil(8);
    p.push(2);
    p.push(opt_len as u8);
    p.extend_from_slice(hw);
    p.resize(24 + opt_len * 8, 0);
    p
}

fn packet_addr(ifindex: u32, dest: &[u8], proto: u16) -> SockAddr {
    // SAFETY: we fill a sockaddr_ll inside the zeroed storage and report its size.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let sll = &mut *(storage as *mut libc::sockaddr_ll);
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto.to_be();
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = dest.len().min(8) as u8;
            sll.sll_addr[..dest.len().min(8)].copy_from_slice(&dest[..dest.len().min(8)]);
            *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }
    .expect("sockaddr_ll fits in sockaddr_storage");
    addr
}

/// A sender: its socket and where its packets go.
///
/// One socket for the whole run. Closing an AF_PACKET socket waits for an RCU grace
/// period in the kernel (`synchronize_net`, 10-20 ms here) in uninterruptible sleep, so
/// the background sender never closes it before it exits, and stop does not wait for
/// that exit: it stops the sender (SIGSTOP, seen as stopped), then SIGKILLs it.
pub struct Sender {
    sock: Socket,
    dest: SockAddr,
    packet: Vec<u8>,
}

impl Sender {
    pub fn open(a: &Announce) -> Result<Sender, String> {
        match a.ip {
            IpAddr::V4(ip) => {
                if a.hw.is_empty() || a.hw_broadcast.len() > 8 {
                    return Err("the interface has no usable link-layer address for ARP".into());
                }
                let sock = Socket::new(Domain::PACKET, Type::DGRAM, None)
                    .map_err(|e| format!("cannot open an ARP socket: {e}"))?;
                let (op, tha) = if a.reply {
                    (2, a.hw.clone())
                } else {
                    (1, vec![0; a.hw.len()])
                };
                Ok(Sender {
                    sock,
                    dest: packet_addr(a.ifindex, &a.hw_broadcast, ETH_P_ARP),
                    packet: arp_packet(a.link_type, op, &a.hw, ip, &tha, ip),
                })
            }
            IpAddr::V6(ip) => {
                let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
                    .map_err(|e| format!("cannot open an ICMPv6 socket: {e}"))?;
                sock.set_multicast_if_v6(a.ifindex)
                    .and_then(|_| sock.set_multicast_hops_v6(255))
                    .and_then(|_| sock.set_unicast_hops_v6(255))
                    .map_err(|e| format!("cannot set up the ICMPv6 socket: {e}"))?;
                // Bind to the address itself: fails while it is still tentative (DAD).
                let scope = if ip.is_unicast_link_local() {
                    a.ifindex
                } else {
                    0
                };
                sock.bind(&SocketAddrV6::new(ip, 0, 0, scope).into())
                    .map_err(|e| format!("cannot send from {ip}: {e}"))?;
                let all_nodes =
                    SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, a.ifindex);
                Ok(Sender {
                    sock,
                    dest: all_nodes.into(),
                    packet: na_packet(ip, &a.hw),
                })
            }
        }
    }

    pub fn send_one(&self) -> std::io::Result<usize> {
        self.sock.send_to(&self.packet, &self.dest)
    }

    /// `count` packets `interval_ms` apart, stopping early (with a warning) rather than
    /// running past `deadline`. Returns how many were sent.
    pub fn send_all(&self, a: &Announce, deadline: &Deadline) -> u32 {
        self.send_from(a, deadline, 0, Instant::now())
    }

    /// Packets `first..count` of a run that started at `t0`.
    pub fn send_from(&self, a: &Announce, deadline: &Deadline, first: u32, t0: Instant) -> u32 {
        let step = Duration::from_millis(u64::from(a.interval_ms));
        let mut sent = 0;
        for i in first..a.count {
            if i > 0 {
                let due = t0 + step * i;
                let now = Instant::now();
                if due > now {
                    if due - now >= deadline.remaining() {
                        tracing::warn!(
                            "sent {sent} of {} announcements for {}: the deadline does not leave room for more",
                            a.count,
                            a.ip
                        );
                        break;
                    }
                    std::thread::sleep(due - now);
                }
            }
            match self.send_one() {
                Ok(_) => sent += 1,
                Err(e) => tracing::warn!("announcement {} for {} not sent: {e}", i + 1, a.ip),
            }
        }
        sent
    }
}

/// `rustha __ipaddr2-announce <ifindex> <ip> <hw> <hw-brd> <type> <count> <ms> <op>`
pub fn main(args: &[String]) -> u8 {
    let ready = Ready::from_env();
    let Some(a) = Announce::from_args(args) else {
        ready.fail("usage: __ipaddr2-announce <ifindex> <ip> <hw> <hw-brd> <type> <count> <ms> <request|reply>");
        return 2;
    };
    let sender = match Sender::open(&a) {
        Ok(s) => s,
        Err(e) => {
            ready.fail(&e);
            return 1;
        }
    };
    // The first packet goes out before we report ready, so a sender that cannot send
    // fails start's spawn with the reason instead of failing silently.
    let t0 = Instant::now();
    match sender.send_one() {
        Ok(_) => {
            ready.ok();
            daemon::detach();
        }
        Err(e) => {
            ready.fail(&format!("cannot announce {}: {e}", a.ip));
            return 1;
        }
    }
    // Bounded by its own work: the packets, plus a second of slack.
    let deadline = Deadline::after(a.duration() + Duration::from_secs(1));
    sender.send_from(&a, &deadline, 1, t0);
    0
}

/// IPv4 duplicate-address detection (RFC 5227 probes, like `arping -D`): two probes,
/// then listen until `wait` for anyone answering for `ip`. `Ok(Some(mac))` = in use.
pub fn ipv4_in_use(a: &Announce, wait: Duration) -> Result<Option<Vec<u8>>, OcfError> {
    let IpAddr::V4(ip) = a.ip else {
        return Ok(None);
    };
    let err =
        |e: std::io::Error| OcfError::generic(format!("duplicate-address probe for {ip}: {e}"));
    let sock = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )
    .map_err(err)?;
    sock.bind(&packet_addr(a.ifindex, &[], ETH_P_ARP))
        .map_err(err)?;
    let probe = arp_packet(
        a.link_type,
        1,
        &a.hw,
        Ipv4Addr::UNSPECIFIED,
        &vec![0; a.hw.len()],
        ip,
    );
    let dest = packet_addr(a.ifindex, &a.hw_broadcast, ETH_P_ARP);
    let end = Instant::now() + wait;
    let probes = [Instant::now(), Instant::now() + wait / 3];
    let mut next = 0;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
    loop {
        let now = Instant::now();
        if next < probes.len() && now >= probes[next] {
            sock.send_to(&probe, &dest).map_err(err)?;
            next += 1;
        }
        if now >= end {
            return Ok(None);
        }
        let until = if next < probes.len() {
            probes[next].min(end)
        } else {
            end
        };
        sock.set_read_timeout(Some((until - now).max(Duration::from_millis(1))))
            .map_err(err)?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                // SAFETY: recv initialised the first n bytes.
                let p: Vec<u8> = buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                let hl = a.hw.len();
                if n >= 8 + 2 * (hl + 4) && p[4] as usize == hl && p[5] == 4 {
                    let sha = &p[8..8 + hl];
                    let spa = Ipv4Addr::new(p[8 + hl], p[9 + hl], p[10 + hl], p[11 + hl]);
                    if spa == ip && sha != a.hw.as_slice() {
                        return Ok(Some(sha.to_vec()));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_request_layout() {
        let hw = [2, 0, 0, 0, 0, 1];
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let p = arp_packet(1, 1, &hw, ip, &[0; 6], ip);
        assert_eq!(p.len(), 28);
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &hw);
        assert_eq!(&p[14..18], &[192, 0, 2, 10]);
        assert_eq!(&p[24..28], &[192, 0, 2, 10]);
    }

    #[test]
    fn na_layout() {
        let p = na_packet("2001:db8::10".parse().unwrap(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(p.len(), 32);
        assert_eq!(p[0], 136);
        assert_eq!(p[4], 0x20, "override only");
        assert_eq!(&p[24..26], &[2, 1]);
        assert_eq!(&p[26..32], &[2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn args_round_trip() {
        let a = Announce {
            ifindex: 7,
            ip: "192.0.2.10".parse().unwrap(),
            hw: vec![2, 0, 0, 0, 0, 1],
            hw_broadcast: vec![0xff; 6],
            link_type: 1,
            count: 5,
            interval_ms: 200,
            reply: true,
        };
        assert_eq!(Announce::from_args(&a.to_args()[1..]), Some(a.clone()));
        assert_eq!(a.duration(), Duration::from_millis(800));
    }
}
