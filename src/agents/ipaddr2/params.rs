//! IPaddr2's parameters, and what can be told from them alone (before any netlink).

use super::findif;
use ocf::{Ctx, OcfError, ParamSpec};
use std::net::{IpAddr, Ipv4Addr};

ocf::params! {
    pub struct IpAddr2Params {
        ip: IpAddr => ParamSpec::new(
            "IPv4 or IPv6 address",
            "The virtual IP address, e.g. 192.168.1.101 or 2001:db8::101. An address with a \
             colon is IPv6. It must be a unicast address (not 0.0.0.0/8, 255.255.255.255, \
             multicast, ::, ::1 or IPv4-mapped) that the node does not already have: an \
             address present without rustha's mark is the node's own and is never taken \
             over.",
        ).unique().example("192.0.2.10"),
        nic: Option<String> => ParamSpec::new(
            "Network interface",
            "The base interface on which the address is added, e.g. eth0. Unset: the \
             interface of the most specific connected route that covers the address (as \
             upstream's findif). The old 'eth0:label' form is accepted and sets iflabel. \
             Required for an IPv6 link-local address.",
        ).example("lo"),
        cidr_netmask: Option<String> => ParamSpec::new(
            "CIDR netmask",
            "Prefix length of the address, e.g. 24 (a dotted-quad IPv4 netmask is also \
             accepted). Unset: the prefix of the route that selects the interface. With both \
             nic and cidr_netmask set, no route is needed.",
        ).example("32"),
        broadcast: Option<String> => ParamSpec::new(
            "Broadcast address",
            "IPv4 broadcast address, or '+' / '-' to set / clear the host bits. Unset: the \
             broadcast of the node's own address in the same subnet, else the subnet's \
             broadcast address (upstream leaves none then).",
        ),
        iflabel: Option<String> => ParamSpec::new(
            "Interface label",
            "Label the address as '<nic>:<iflabel>' (at most 15 characters in all, printable \
             ASCII without spaces), as shown by ifconfig. Monitor requires the label to be \
             present.",
        ),
        lvs_support: bool => ParamSpec::new(
            "LVS direct-routing support",
            "IPv4 only: on start, remove the same address configured as a /32 on a loopback \
             interface (LVS-DR real servers), and put it back on stop.",
        ).default("false"),
        lvs_ipv6_addrlabel: bool => ParamSpec::new(
            "IPv6 address label",
            "IPv6 only: add an address label (ip addrlabel) for the address so that the \
             node does not choose it as the source address of outgoing connections; removed \
             on stop.",
        ).default("true"),
        lvs_ipv6_addrlabel_value: u32 => ParamSpec::new(
            "IPv6 address label value",
            "The label value used by lvs_ipv6_addrlabel.",
        ).default("99"),
        mac: Option<String> => ParamSpec::new(
            "Cluster-IP MAC",
            "Upstream's load-sharing clone mode (Cluster-IP): the multicast MAC.",
        ).refused(CLUSTER_IP),
        clusterip_hash: Option<String> => ParamSpec::new(
            "Cluster-IP hash",
            "Upstream's load-sharing clone mode (Cluster-IP, resource-agents 4.12): the hash \
             (sourceip, sourceip-sourceport, ...).",
        ).refused(CLUSTER_IP),
        clusterip_firewall: Option<String> => ParamSpec::new(
            "Cluster-IP firewall backend",
            "Upstream's load-sharing clone mode since 2026 (nft or iptables cluster match): \
             auto, nft or iptables.",
        ).refused(CLUSTER_IP),
        clusterip_hash_seed: Option<String> => ParamSpec::new(
            "Cluster-IP hash seed",
            "Upstream's load-sharing clone mode since 2026: the cluster match's hash seed.",
        ).refused(CLUSTER_IP),
        clusterip_table: Option<String> => ParamSpec::new(
            "Cluster-IP iptables table",
            "Upstream's load-sharing clone mode since 2026: the iptables table of its rules.",
        ).refused(CLUSTER_IP),
        clusterip_chain: Option<String> => ParamSpec::new(
            "Cluster-IP iptables chain",
            "Upstream's load-sharing clone mode since 2026: the iptables chain of its rules.",
        ).refused(CLUSTER_IP),
        clusterip_mac_mangle: Option<String> => ParamSpec::new(
            "Cluster-IP ARP mangling",
            "Upstream's load-sharing clone mode since 2026: arptables rules answering ARP with \
             the multicast MAC.",
        ).refused(CLUSTER_IP),
        unique_clone_address: bool => ParamSpec::new(
            "Unique clone address",
            "In a globally-unique clone, add the clone number to the address's last IPv4 \
             octet, so each clone instance holds its own address.",
        ).default("false"),
        arp_interval: u32 => ParamSpec::new(
            "ARP/NA interval (ms)",
            "Milliseconds between two gratuitous ARPs (IPv4) or unsolicited neighbour \
             advertisements (IPv6). Must be greater than 0.",
        ).default("200"),
        arp_count: u32 => ParamSpec::new(
            "ARP/NA count",
            "How many gratuitous ARPs / unsolicited neighbour advertisements to send after \
             the address is added. Must be greater than 0.",
        ).default("5"),
        arp_count_refresh: u32 => ParamSpec::new(
            "ARP count on monitor",
            "IPv4: gratuitous ARPs to send on every successful monitor (0 = none), to \
             refresh switches that keep stale entries.",
        ).default("0"),
        arp_bg: Option<bool> => ParamSpec::new(
            "Announce in the background",
            "Send the announcements from a background helper so that start returns at once. \
             Unset: true for IPv4, false for IPv6.",
        ),
        arp_sender: Option<String> => ParamSpec::new(
            "ARP sender",
            "Upstream's choice of announcing tool: send_arp, iputils_arping, libnet_arping or \
             ipoibarping (any other value fails validation).",
        ).no_effect("rustha always uses its own built-in sender, which also handles InfiniBand."),
        send_arp_opts: Option<String> => ParamSpec::new(
            "ARP sender options",
            "Accepted for compatibility. '-A' (or '-U -A') makes the built-in sender send ARP \
             replies instead of requests, for switches that ignore gratuitous requests; other \
             options are ignored.",
        ),
        flush_routes: bool => ParamSpec::new(
            "Flush the route cache on stop",
            "Flush the kernel's route cache after removing the address.",
        ).default("false"),
        run_arping: bool => ParamSpec::new(
            "IPv4 duplicate-address check",
            "IPv4: before adding the address, probe the segment (RFC 5227 ARP probes) and \
             refuse to start when another host answers for the address.",
        ).default("false"),
        nodad: bool => ParamSpec::new(
            "Skip IPv6 DAD",
            "IPv6: add the address without duplicate-address detection (usable at once).",
        ).default("false"),
        noprefixroute: bool => ParamSpec::new(
            "No prefix route",
            "Add the address without its connected (prefix) route.",
        ).default("false"),
        preferred_lft: String => ParamSpec::new(
            "IPv6 preferred lifetime",
            "IPv6: 'forever', or seconds. 0 keeps the address from being chosen as a source \
             address.",
        ).default("forever"),
        network_namespace: Option<String> => ParamSpec::new(
            "Network namespace",
            "Manage the address inside this named network namespace (/run/netns/<name>).",
        ),
        check_link_status: bool => ParamSpec::new(
            "Check link status",
            "Monitor reports the address as not running when its interface is down or has \
             no carrier.",
        ).default("true"),
        proto: Option<String> => ParamSpec::new(
            "Route protocol",
            "Only consider routes of this protocol (e.g. kernel) when choosing the interface.",
        ),
        netmask: Option<String> => ParamSpec::new(
            "Netmask (legacy)",
            "Legacy alias of cidr_netmask, used when cidr_netmask is unset.",
        ).deprecated("use cidr_netmask"),
    }
}

/// Why the Cluster-IP parameters are refused.
const CLUSTER_IP: &str = "it belongs to the load-sharing clone mode (Cluster-IP), which \
    rustha does not support: one address answered by several nodes at once, by the iptables \
    CLUSTERIP target (gone from current kernels) or, at upstream since 2026, nft/iptables \
    cluster matches. Use one IPaddr2 per address (or unique_clone_address).";

/// The address actually to manage (unique_clone_address adds the clone number).
pub(super) fn effective_ip(p: &IpAddr2Params, ctx: &Ctx) -> Result<IpAddr, OcfError> {
    if !p.unique_clone_address {
        return Ok(p.ip);
    }
    let IpAddr::V4(a) = p.ip else {
        return Err(OcfError::configured(
            "unique_clone_address works with IPv4 addresses only",
        ));
    };
    let clone = ctx
        .env
        .clone_number()
        .map_err(OcfError::configured)?
        .unwrap_or(0);
    let clone = u8::try_from(clone)
        .map_err(|_| OcfError::configured(format!("clone number {clone} is too large")))?;
    let o = a.octets();
    let last = o[3]
        .checked_add(clone)
        .filter(|&l| l < 255)
        .ok_or_else(|| {
            OcfError::configured(format!("clone {clone} would take {a} past the last octet"))
        })?;
    Ok(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last)))
}

/// The nic parameter split into base interface and (deprecated) label.
pub(super) fn nic_and_label(p: &IpAddr2Params) -> (Option<String>, Option<String>) {
    match p.nic.as_deref() {
        Some(n) => match n.split_once(':') {
            Some((base, l)) => (Some(base.to_string()), Some(l.to_string())),
            None => (Some(n.to_string()), p.iflabel.clone()),
        },
        None => (None, p.iflabel.clone()),
    }
}

/// The parameter the label came from (`nic=eth0:label` or `iflabel`).
pub(super) fn label_param(p: &IpAddr2Params) -> &'static str {
    if p.nic.as_deref().is_some_and(|n| n.contains(':')) {
        "nic"
    } else {
        "iflabel"
    }
}

/// Why `ip` cannot be a virtual address: it is not a unicast address a host can hold and
/// answer for. (127/8 is allowed: upstream's suite puts a VIP on lo.)
fn not_unicast(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.octets()[0] == 0 => Some("in 0.0.0.0/8 (\"this network\")"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the limited broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address (224.0.0.0/4)"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("the loopback address, always on lo"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address (ff00::/8)"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Some("an IPv4-mapped address (::ffff:0:0/96); give the IPv4 address itself")
        }
        _ => None,
    }
}

/// The kernel stores a label as `<nic>:<iflabel>` in IFNAMSIZ bytes (15 and a NUL).
const LABEL_MAX: usize = 15;

/// The label as the kernel will store it: printable ASCII without spaces (what ifconfig,
/// `ip` and monitor's comparison see unchanged), at most 15 bytes with the interface name.
/// `nic` is the base interface when known (else the shortest possible name is assumed).
pub(super) fn check_label(
    param: &'static str,
    nic: Option<&str>,
    label: &str,
) -> Result<(), OcfError> {
    if let Some(c) = label.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(OcfError::invalid_param(
            param,
            format!(
                "the interface label '{}' holds {:?}: a label may hold only printable ASCII \
                 characters, without spaces",
                label.escape_debug(),
                c
            ),
        ));
    }
    let full = match nic {
        Some(n) => format!("{n}:{label}"),
        None => format!("?:{label}"),
    };
    if full.len() > LABEL_MAX {
        return Err(OcfError::configured(format!(
            "interface label {full} is longer than {LABEL_MAX} characters"
        )));
    }
    Ok(())
}

/// `proto`: a route protocol some route can have (0 is RTPROT_UNSPEC: none has it).
pub(super) fn proto_param(p: &IpAddr2Params) -> Result<Option<u8>, OcfError> {
    match p.proto.as_deref() {
        None => Ok(None),
        Some(s) => match findif::parse_proto(s) {
            Some(0) => Err(OcfError::invalid_param(
                "proto",
                format!("'{s}' is RTPROT_UNSPEC, which no route has"),
            )),
            Some(n) => Ok(Some(n)),
            None => Err(OcfError::invalid_param(
                "proto",
                format!("'{}' is not a route protocol", s.escape_debug()),
            )),
        },
    }
}

/// Whether `send_arp_opts` asks for ARP replies instead of requests (`-A`, `-U -A`).
pub(super) fn arp_reply(p: &IpAddr2Params) -> bool {
    p.send_arp_opts
        .as_deref()
        .is_some_and(|o| o.split_whitespace().any(|w| w == "-A" || w == "-UA"))
}

/// `preferred_lft` in seconds; `None` for "forever".
pub(super) fn preferred_lft(p: &IpAddr2Params) -> Option<u32> {
    p.preferred_lft.parse().ok()
}

/// Everything validate can tell from the parameters (and the clone meta attributes)
/// alone, in the order it reports it.
pub(super) fn check(p: &IpAddr2Params, ctx: &Ctx) -> Result<(), OcfError> {
    check_values(p)?;
    check_clone(p, ctx)?;
    if p.lvs_support && p.ip.is_ipv6() {
        return Err(OcfError::configured(
            "lvs_support works with IPv4 addresses only",
        ));
    }
    for ip in [p.ip, effective_ip(p, ctx)?] {
        if let Some(why) = not_unicast(ip) {
            return Err(OcfError::invalid_param(
                "ip",
                format!("{ip} is not a usable unicast address: it is {why}"),
            ));
        }
    }
    proto_param(p)?;
    let (nic, label) = nic_and_label(p);
    if let Some(l) = label.as_deref().filter(|l| !l.is_empty()) {
        check_label(label_param(p), nic.as_deref(), l)?;
    }
    Ok(())
}

/// The announcement numbers, the lifetime, the sender, and the unsupported Cluster-IP
/// parameters.
fn check_values(p: &IpAddr2Params) -> Result<(), OcfError> {
    if p.arp_interval == 0 {
        return Err(OcfError::invalid_param(
            "arp_interval",
            "0 is not greater than 0",
        ));
    }
    if p.arp_count == 0 {
        return Err(OcfError::invalid_param(
            "arp_count",
            "0 is not greater than 0",
        ));
    }
    if p.preferred_lft != "forever" && p.preferred_lft.parse::<u32>().is_err() {
        return Err(OcfError::invalid_param(
            "preferred_lft",
            format!(
                "'{}' is neither 'forever' nor a number of seconds",
                p.preferred_lft
            ),
        ));
    }
    if let Some(s) = p.arp_sender.as_deref() {
        if !["send_arp", "iputils_arping", "libnet_arping", "ipoibarping"].contains(&s) {
            return Err(OcfError::invalid_param(
                "arp_sender",
                format!("'{s}' is not one of send_arp, iputils_arping, libnet_arping, ipoibarping"),
            ));
        }
    }
    Ok(())
}

/// As a clone, only the globally-unique form with unique_clone_address works.
fn check_clone(p: &IpAddr2Params, ctx: &Ctx) -> Result<(), OcfError> {
    let clone_max = ctx.env.clone_max().unwrap_or(0);
    if clone_max > 1 && !p.unique_clone_address {
        return Err(OcfError::configured(
            "IPaddr2 as a clone (Cluster-IP load sharing) is not supported by rustha: it \
             needs the iptables CLUSTERIP target, gone from current kernels; use one \
             IPaddr2 per address, or unique_clone_address",
        ));
    }
    if p.unique_clone_address && !ctx.env.globally_unique() {
        return Err(OcfError::configured(
            "unique_clone_address makes sense only in a clone with globally-unique=true",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(vars: &[(&str, &str)]) -> Result<IpAddr2Params, OcfError> {
        ocf::params::from_pairs(vars)
    }

    #[test]
    fn defaults_match_upstream() {
        let p = params(&[("ip", "192.0.2.10")]).unwrap();
        assert_eq!(p.arp_interval, 200);
        assert_eq!(p.arp_count, 5);
        assert_eq!(p.arp_count_refresh, 0);
        assert_eq!(p.preferred_lft, "forever");
        assert_eq!(p.lvs_ipv6_addrlabel_value, 99);
        assert!(p.check_link_status && !p.nodad && !p.flush_routes && !p.lvs_support);
        assert_eq!(p.arp_bg, None);
    }

    #[test]
    fn nic_label_forms() {
        let p = params(&[("ip", "192.0.2.10"), ("nic", "eth0:vip")]).unwrap();
        assert_eq!(nic_and_label(&p), (Some("eth0".into()), Some("vip".into())));
        let p = params(&[("ip", "192.0.2.10"), ("nic", "eth0"), ("iflabel", "x")]).unwrap();
        assert_eq!(nic_and_label(&p), (Some("eth0".into()), Some("x".into())));
    }

    #[test]
    fn only_unicast_addresses_can_be_vips() {
        for bad in [
            "0.0.0.0",
            "0.255.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "::",
            "::1",
            "ff02::1",
            "ff0e::101",
            "::ffff:192.0.2.1",
        ] {
            assert!(not_unicast(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in [
            "192.0.2.10",
            "127.0.0.3",
            "10.0.0.255",
            "240.0.0.1",
            "2001:db8::10",
            "fe80::1",
            "fd00::1",
        ] {
            assert_eq!(not_unicast(good.parse().unwrap()), None, "{good}");
        }
    }

    #[test]
    fn labels_as_the_kernel_stores_them() {
        assert!(check_label("iflabel", Some("eth0"), "web").is_ok());
        assert!(
            check_label("iflabel", Some("eth0"), "abcdefghij").is_ok(),
            "15 bytes"
        );
        assert!(
            check_label("iflabel", Some("eth0"), "abcdefghijk").is_err(),
            "16 bytes"
        );
        assert!(check_label("iflabel", None, "abcdefghijklm").is_ok());
        assert!(check_label("iflabel", None, "abcdefghijklmn").is_err());
        for bad in ["\t\n", "web\r", "web\n", "a b", "w\u{e9}b", "\u{7f}"] {
            let e = check_label("iflabel", Some("eth0"), bad).unwrap_err();
            assert_eq!(e.kind, ocf::ErrorKind::Configured, "{bad:?}");
        }
        let p = params(&[("ip", "192.0.2.10"), ("proto", "0")]).unwrap();
        assert!(proto_param(&p).is_err());
        let p = params(&[("ip", "192.0.2.10"), ("proto", "kernel")]).unwrap();
        assert_eq!(proto_param(&p).unwrap(), Some(2));
    }

    #[test]
    fn malformed_ip_is_a_parameter_error() {
        assert!(params(&[("ip", "192.0.2.300")]).is_err());
        assert!(params(&[("ip", "")]).is_err(), "required");
    }

    #[test]
    fn reply_mode_from_send_arp_opts() {
        for (opts, reply) in [("-A", true), ("-U -A", true), ("-UA", true), ("-U", false)] {
            let p = params(&[("ip", "192.0.2.10"), ("send_arp_opts", opts)]).unwrap();
            assert_eq!(arp_reply(&p), reply, "{opts}");
        }
        assert!(!arp_reply(&params(&[("ip", "192.0.2.10")]).unwrap()));
    }

    #[test]
    fn zero_counts_name_their_parameter() {
        for name in ["arp_interval", "arp_count"] {
            let p = params(&[("ip", "192.0.2.10"), (name, "0")]).unwrap();
            let e = check_values(&p).unwrap_err();
            assert_eq!((e.kind, e.param), (ocf::ErrorKind::Configured, Some(name)));
        }
        let p = params(&[("ip", "192.0.2.10"), ("preferred_lft", "soon")]).unwrap();
        assert_eq!(check_values(&p).unwrap_err().param, Some("preferred_lft"));
        let p = params(&[("ip", "2001:db8::10"), ("preferred_lft", "30")]).unwrap();
        assert!(check_values(&p).is_ok());
        assert_eq!(preferred_lft(&p), Some(30));
    }
}
