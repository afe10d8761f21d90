//! Choosing the interface and prefix for an address from the routing table: the
//! equivalent of upstream's `findif.sh`, on netlink data instead of `ip route` text.
//!
//! Upstream runs `ip -o -f <fam> route list match <ip>[/<mask>] [scope link]`
//! (main table), keeps lines with a `/` (so neither `default` nor host routes), optionally
//! only those on `dev <nic>`, and takes the longest prefix. We do the same on the
//! kernel's own route records, and also skip non-unicast routes (blackhole, unreachable,
//! prohibit: upstream parses those into garbage), break prefix ties by the lowest metric,
//! and use the route's output interface (upstream takes the third word, which is the
//! gateway for a routed IPv6 prefix).

use crate::netlink::Route;
use std::net::{IpAddr, Ipv4Addr};

pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

pub fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Whether `net/prefix` contains `ip`.
pub fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

/// What to look for.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub ip: IpAddr,
    /// The prefix the user gave (routes must cover `ip/prefix`).
    pub prefix: Option<u8>,
    /// Only routes out of this interface.
    pub ifindex: Option<u32>,
    /// Only routes of this RTPROT_* protocol.
    pub proto: Option<u8>,
}

fn candidate(r: &Route, q: &Query, table: u32) -> bool {
    let max = max_prefix(q.ip);
    r.table == table
        && r.dst.is_ipv4() == q.ip.is_ipv4()
        && (r.unicast || (table == RT_TABLE_LOCAL && r.oif.is_some()))
        && (q.ip.is_ipv6() || r.scope_link || table == RT_TABLE_LOCAL)
        && r.prefix > 0
        && r.prefix < max
        && r.prefix <= q.prefix.unwrap_or(max)
        && contains(r.dst, r.prefix, q.ip)
        && q.ifindex.is_none_or(|i| r.oif == Some(i))
        && q.proto.is_none_or(|p| r.protocol == p)
        && r.oif.is_some()
}

/// The route that decides interface and prefix: the longest prefix, then the lowest
/// metric. Loopback addresses (127/8) fall back to the `local` table, as upstream does.
pub fn select<'a>(routes: &'a [Route], q: &Query) -> Option<&'a Route> {
    let best = |table| {
        routes
            .iter()
            .filter(|r| candidate(r, q, table))
            .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
    };
    best(RT_TABLE_MAIN).or_else(|| match q.ip {
        IpAddr::V4(a) if a.is_loopback() => best(RT_TABLE_LOCAL),
        _ => None,
    })
}

/// `cidr_netmask`: a prefix length, or (IPv4) a dotted-quad netmask.
pub fn parse_netmask(s: &str, v6: bool) -> Result<u8, String> {
    let max = if v6 { 128 } else { 32 };
    if let Ok(n) = s.parse::<u8>() {
        if (1..=max).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(n);
        }
        return Err(format!("'{s}' is not a prefix length from 1 to {max}"));
    }
    if !v6 {
        if let Ok(m) = s.parse::<Ipv4Addr>() {
            let m = u32::from(m);
            if m != 0 && m.leading_ones() + m.trailing_zeros() == 32 {
                return Ok(m.leading_ones() as u8);
            }
            return Err(format!("'{s}' is not a contiguous netmask"));
        }
    }
    Err(format!("'{s}' is not a prefix length from 1 to {max}"))
}

/// `proto`: a name as in /etc/iproute2/rt_protos, or a number.
pub fn parse_proto(s: &str) -> Option<u8> {
    Some(match s {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "gated" => 8,
        "ra" => 9,
        "mrt" => 10,
        "zebra" => 11,
        "bird" => 12,
        "dnrouted" => 13,
        "xorp" => 14,
        "ntk" => 15,
        "dhcp" => 16,
        "keepalived" => 18,
        "babel" => 42,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        "eigrp" => 192,
        n => return n.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, oif: u32, metric: u32) -> Route {
        let dst: IpAddr = dst.parse().unwrap();
        Route {
            dst,
            prefix,
            oif: Some(oif),
            unicast: true,
            scope_link: dst.is_ipv4(),
            protocol: 2,
            metric,
            pref_src: None,
            table: RT_TABLE_MAIN,
        }
    }

    fn q(ip: &str) -> Query {
        Query {
            ip: ip.parse().unwrap(),
            prefix: None,
            ifindex: None,
            proto: None,
        }
    }

    #[test]
    fn longest_prefix_then_lowest_metric() {
        let routes = [
            r("192.0.2.0", 24, 2, 0),
            r("192.0.2.0", 25, 3, 100),
            r("192.0.2.0", 25, 4, 10),
            r("0.0.0.0", 0, 5, 0),
            r("192.0.2.10", 32, 6, 0),
        ];
        assert_eq!(select(&routes, &q("192.0.2.10")).unwrap().oif, Some(4));
        assert_eq!(select(&routes, &q("192.0.2.200")).unwrap().oif, Some(2));
        assert!(
            select(&routes, &q("198.51.100.1")).is_none(),
            "default is not used"
        );
        let on2 = Query {
            ifindex: Some(2),
            ..q("192.0.2.10")
        };
        assert_eq!(select(&routes, &on2).unwrap().prefix, 24);
        let wide = Query {
            prefix: Some(24),
            ..q("192.0.2.10")
        };
        assert_eq!(
            select(&routes, &wide).unwrap().prefix,
            24,
            "route must cover ip/mask"
        );
    }

    #[test]
    fn ipv4_needs_scope_link_and_unicast() {
        let mut via = r("192.0.2.0", 24, 2, 0);
        via.scope_link = false;
        assert!(select(&[via], &q("192.0.2.10")).is_none());
        let mut bh = r("192.0.2.0", 24, 2, 0);
        bh.unicast = false;
        assert!(select(&[bh], &q("192.0.2.10")).is_none());
        assert!(select(&[r("2001:db8::", 64, 2, 256)], &q("2001:db8::10")).is_some());
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("24", false), Ok(24));
        assert_eq!(parse_netmask("255.255.255.0", false), Ok(24));
        assert!(parse_netmask("255.0.255.0", false).is_err());
        assert!(parse_netmask("33", false).is_err());
        assert!(parse_netmask("0", false).is_err());
        assert_eq!(parse_netmask("64", true), Ok(64));
        assert!(parse_netmask("+24", false).is_err());
        assert!(parse_netmask("abc", true).is_err());
    }

    #[test]
    fn broadcasts() {
        assert!(contains(
            "10.0.0.0".parse().unwrap(),
            8,
            "10.1.2.3".parse().unwrap()
        ));
        assert!(!contains(
            "10.0.0.0".parse().unwrap(),
            8,
            "11.1.2.3".parse().unwrap()
        ));
    }
}
