//! `IPaddr2`: a virtual IP address, managed over netlink.
//!
//! Parameter-compatible with `ocf:heartbeat:IPaddr2`. Start chooses the interface and
//! prefix (as upstream's findif does, from the routing table), adds the address, waits
//! for IPv6 duplicate-address detection, announces the address (gratuitous ARP /
//! unsolicited NA from a raw socket) and records its decision; monitor and stop act on
//! that record. No `ip`, `send_arp`, `send_ua` or `arping` processes: nothing is forked
//! except the optional background announcer, which is this binary.

pub mod announce;
pub mod findif;

use crate::daemon::{self, Identity, Spawn};
use crate::netlink::{self, Addr, Link, Netlink, NewAddr};
use crate::state::{Record, StateFile};
use announce::Announce;
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Deadline, OcfError, ParamSpec, Status};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

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
            "Cluster-IP MAC (not supported)",
            "Upstream's load-sharing clone mode (Cluster-IP). Not supported by rustha: it \
             relies on the iptables CLUSTERIP target, which current kernels no longer have. \
             Setting it fails validation with exit code 6.",
        ),
        clusterip_hash: Option<String> => ParamSpec::new(
            "Cluster-IP hash (not supported)",
            "Upstream's load-sharing clone mode (Cluster-IP). Not supported by rustha: it \
             relies on the iptables CLUSTERIP target, which current kernels no longer have. \
             Setting it fails validation with exit code 6.",
        ),
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
            "Accepted for compatibility (send_arp, iputils_arping, libnet_arping, \
             ipoibarping): rustha always uses its own built-in sender, which also handles \
             InfiniBand. Any other value fails validation.",
        ),
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

pub struct IpAddr2;

const NAME: &str = "IPaddr2";

fn marker(instance: &str) -> String {
    format!("rustha IPaddr2 announce {instance}")
}

/// Where netns handles live (`ip netns add`).
const NETNS_DIR: &str = "/run/netns";

/// Enter the named network namespace, if any. A missing namespace is "not installed".
fn enter_netns(name: Option<&str>) -> Result<(), OcfError> {
    let Some(name) = name else { return Ok(()) };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(OcfError::invalid_param(
            "network_namespace",
            format!("'{name}' is not a namespace name"),
        ));
    }
    let path = std::path::Path::new(NETNS_DIR).join(name);
    let f = std::fs::File::open(&path).map_err(|e| {
        OcfError::not_installed(format!("network namespace {name} does not exist ({e})"))
    })?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| OcfError::not_installed(format!("cannot enter network namespace {name}: {e}")))
}

/// The network namespace a process is in (device and inode of `/proc/<pid>/ns/net`).
fn netns_id(pid: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The decision start takes and records.
#[derive(Clone, Debug)]
struct Plan {
    ip: IpAddr,
    prefix: u8,
    link: Link,
    label: Option<String>,
    broadcast: Option<Ipv4Addr>,
}

/// The address actually to manage (unique_clone_address adds the clone number).
fn effective_ip(p: &IpAddr2Params, ctx: &Ctx) -> Result<IpAddr, OcfError> {
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
fn nic_and_label(p: &IpAddr2Params) -> (Option<String>, Option<String>) {
    match p.nic.as_deref() {
        Some(n) => match n.split_once(':') {
            Some((base, l)) => (Some(base.to_string()), Some(l.to_string())),
            None => (Some(n.to_string()), p.iflabel.clone()),
        },
        None => (None, p.iflabel.clone()),
    }
}

/// The parameter the label came from (`nic=eth0:label` or `iflabel`).
fn label_param(p: &IpAddr2Params) -> &'static str {
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
fn check_label(param: &'static str, nic: Option<&str>, label: &str) -> Result<(), OcfError> {
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
fn proto_param(p: &IpAddr2Params) -> Result<Option<u8>, OcfError> {
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

/// Choose interface and prefix (findif). Parameter problems are 6, a missing interface
/// 5, no covering route 1; monitor and stop map these to 7 / 0 themselves.
fn resolve(p: &IpAddr2Params, ctx: &Ctx, nl: &Netlink) -> Result<Plan, OcfError> {
    let d = &ctx.deadline;
    let ip = effective_ip(p, ctx)?;
    let v6 = ip.is_ipv6();
    let (nic, label) = nic_and_label(p);
    let mask = p.cidr_netmask.as_deref().or(p.netmask.as_deref());
    let prefix = match mask {
        Some(m) => Some(
            findif::parse_netmask(m, v6).map_err(|e| OcfError::invalid_param("cidr_netmask", e))?,
        ),
        None => None,
    };
    if let IpAddr::V6(a) = ip {
        if a.is_unicast_link_local() && nic.is_none() {
            return Err(OcfError::configured(
                "an IPv6 link-local address needs the nic parameter",
            ));
        }
    }
    let links = nl.links(d)?;
    let link = match &nic {
        Some(n) => Some(
            links
                .iter()
                .find(|l| &l.name == n)
                .cloned()
                .ok_or_else(|| {
                    OcfError::not_installed(format!("interface {n} does not exist on this node"))
                })?,
        ),
        None => None,
    };
    let proto = proto_param(p)?;
    let routes = nl.routes(d, v6)?;
    let q = findif::Query {
        ip,
        prefix,
        ifindex: link.as_ref().map(|l| l.index),
        proto,
    };
    let route = findif::select(&routes, &q);
    let (link, prefix) = match (link, prefix, route) {
        (Some(l), Some(m), _) => (l, m),
        (l, m, Some(r)) => {
            let l = match l {
                Some(l) => l,
                None => links
                    .iter()
                    .find(|x| Some(x.index) == r.oif)
                    .cloned()
                    .ok_or_else(|| OcfError::generic("the chosen route's interface vanished"))?,
            };
            (l, m.unwrap_or(r.prefix))
        }
        (l, _, None) => {
            return Err(OcfError::generic(format!(
            "no connected route covers {ip}{}{}: cannot choose the {}; set nic and cidr_netmask",
            l.as_ref()
                .map(|l| format!(" on {}", l.name))
                .unwrap_or_default(),
            p.proto
                .as_deref()
                .map(|s| format!(" with proto {s}"))
                .unwrap_or_default(),
            if l.is_some() {
                "netmask"
            } else {
                "interface and netmask"
            },
        )))
        }
    };
    let label = match label {
        Some(l) if !l.is_empty() => {
            check_label(label_param(p), Some(&link.name), &l)?;
            Some(format!("{}:{l}", link.name))
        }
        _ => None,
    };
    let broadcast = match (ip, p.broadcast.as_deref()) {
        (IpAddr::V6(_), _) => None,
        (IpAddr::V4(a), Some("+")) => Some(netlink::broadcast(a, prefix, true)),
        (IpAddr::V4(a), Some("-")) => Some(netlink::broadcast(a, prefix, false)),
        (IpAddr::V4(_), Some(b)) => Some(b.parse::<Ipv4Addr>().map_err(|_| {
            OcfError::invalid_param("broadcast", format!("'{b}' is not an IPv4 address, + or -"))
        })?),
        (IpAddr::V4(a), None) => {
            // The node's own address on the chosen route, as upstream; else the subnet's.
            let own = route.and_then(|r| r.pref_src).and_then(|src| {
                nl.addrs(d, false)
                    .ok()?
                    .into_iter()
                    .find(|x| x.ip == src)
                    .and_then(|x| x.broadcast)
            });
            own.or((prefix <= 30).then(|| netlink::broadcast(a, prefix, true)))
        }
    };
    Ok(Plan {
        ip,
        prefix,
        link,
        label,
        broadcast,
    })
}

/// What validate hands start: the netlink connection, opened inside
/// `network_namespace`, and the address it resolved there.
pub struct Resolved {
    nl: Netlink,
    plan: Plan,
}

fn find_addr(addrs: &[Addr], index: u32, ip: IpAddr) -> Option<&Addr> {
    addrs.iter().find(|a| a.index == index && a.ip == ip)
}

fn announce_for(p: &IpAddr2Params, link: &Link, ip: IpAddr, count: u32) -> Announce {
    let reply = p
        .send_arp_opts
        .as_deref()
        .is_some_and(|o| o.split_whitespace().any(|w| w == "-A" || w == "-UA"));
    announce_for_link(link, ip, count, p.arp_interval, reply)
}

fn no_announce(link: &Link) -> bool {
    link.loopback || link.name.starts_with("lo") || link.hw_addr.iter().all(|&b| b == 0)
}

/// The IFA_PROTO value on every address this agent adds: it tells a VIP of ours from an
/// address the node had anyway (its own address, configured by the admin or DHCP), also
/// when the record is lost. Linux keeps it since 6.3 (`ip -d address` shows `proto 82`
/// with iproute2 >= 6.3); older kernels ignore it, and then the record is the only mark.
pub const MARK: u8 = 82;

/// Whether the address carries rustha's mark.
fn is_ours(a: &Addr) -> bool {
    a.proto == MARK
}

/// What stop needs, from the record.
#[derive(Clone, Debug)]
struct Held {
    ip: IpAddr,
    prefix: u8,
    ifname: String,
    label: Option<String>,
    netns: Option<String>,
    addrlabel: Option<u32>,
    lvs_lo: Option<String>,
    flush_routes: bool,
    check_link: bool,
    refresh: u32,
    sender: Option<Identity>,
    /// Whether the kernel kept our mark on the address we added: `Some(false)` on a kernel
    /// without IFA_PROTO, `None` in a record written before the address was added (or by
    /// an older rustha).
    marked: Option<bool>,
}

impl Held {
    fn from_record(r: &Record) -> Option<Held> {
        Some(Held {
            ip: r.parsed("ip")?,
            prefix: r.parsed("prefix")?,
            ifname: r.get("nic")?.to_string(),
            label: r.get("label").map(str::to_string),
            netns: r.get("netns").map(str::to_string),
            addrlabel: r.parsed("addrlabel"),
            lvs_lo: r.get("lvs_lo").map(str::to_string),
            flush_routes: r.get("flush_routes") == Some("1"),
            check_link: r.get("check_link") != Some("0"),
            refresh: r.parsed("arp_count_refresh").unwrap_or(0),
            sender: Identity::read_from(r),
            marked: r.get("mark").map(|m| m == "1"),
        })
    }

    /// What a start of `plan` is about to hold.
    fn planned(p: &IpAddr2Params, plan: &Plan) -> Held {
        Held {
            ip: plan.ip,
            prefix: plan.prefix,
            ifname: plan.link.name.clone(),
            label: plan.label.clone(),
            netns: p.network_namespace.clone(),
            addrlabel: None,
            lvs_lo: None,
            flush_routes: p.flush_routes,
            check_link: p.check_link_status,
            refresh: p.arp_count_refresh,
            sender: None,
            marked: None,
        }
    }

    /// Whether `a` (the recorded address, found on the recorded interface) is the one we
    /// added: it carries our mark, or the kernel could not keep the mark.
    fn owns(&self, a: &Addr) -> bool {
        is_ours(a) || self.marked != Some(true)
    }

    fn record(&self) -> Record {
        let mut r = Record::default();
        r.set("ip", self.ip)
            .set("prefix", self.prefix)
            .set("nic", &self.ifname)
            .set("flush_routes", u8::from(self.flush_routes))
            .set("check_link", u8::from(self.check_link))
            .set("arp_count_refresh", self.refresh);
        if let Some(l) = &self.label {
            r.set("label", l);
        }
        if let Some(n) = &self.netns {
            r.set("netns", n);
        }
        if let Some(v) = self.addrlabel {
            r.set("addrlabel", v);
        }
        if let Some(l) = &self.lvs_lo {
            r.set("lvs_lo", l);
        }
        if let Some(m) = self.marked {
            r.set("mark", u8::from(m));
        }
        if let Some(id) = &self.sender {
            id.write_to(&mut r);
        }
        r
    }
}

/// Record `h`; returns what was written (a rollback removes the record only if it is
/// still this one).
fn save(ctx: &Ctx, h: &Held) -> Result<Record, OcfError> {
    let r = h.record();
    StateFile::for_ctx(ctx).save(&r)?;
    Ok(r)
}

/// Whether the recorded address is on its interface, and ours (in the current netns).
fn holds(nl: &Netlink, d: &Deadline, h: &Held) -> Result<bool, OcfError> {
    let Some(link) = nl.link_by_name(d, &h.ifname)? else {
        return Ok(false);
    };
    Ok(find_addr(&nl.addrs(d, h.ip.is_ipv6())?, link.index, h.ip)
        .is_some_and(|a| a.prefix == h.prefix && h.owns(a)))
}

/// The address `plan` wants, when it is already on the chosen interface and ours (with
/// this instance's record of it, if any). Without rustha's mark (and not recorded by this
/// instance on a kernel that cannot keep the mark) it is the node's own address: 2, a
/// problem of this node (another node may not have it).
fn already_there<'a>(
    ctx: &Ctx,
    plan: &Plan,
    here: &'a [Addr],
) -> Result<Option<(&'a Addr, Option<Held>)>, OcfError> {
    let (ip, link) = (plan.ip, &plan.link);
    let Some(a) = find_addr(here, link.index, ip) else {
        return Ok(None);
    };
    let prev = StateFile::for_ctx(ctx)
        .load()
        .ok()
        .flatten()
        .as_ref()
        .and_then(Held::from_record)
        .filter(|h| h.ip == ip && h.ifname == link.name && h.prefix == a.prefix);
    if !(is_ours(a) || prev.as_ref().is_some_and(|h| h.owns(a))) {
        return Err(OcfError::local_config(format!(
            "{ip}/{} is already on {} and was not added by rustha (it lacks rustha's mark, \
             address protocol {MARK}): it is this node's own address, which a stop would take \
             away; remove it from the node's network configuration or manage another address",
            a.prefix, link.name
        )));
    }
    if a.prefix != plan.prefix {
        return Err(OcfError::generic(format!(
            "{ip} is already on {} with prefix /{}, not /{}",
            link.name, a.prefix, plan.prefix
        )));
    }
    Ok(Some((a, prev)))
}

/// Without a record: this resource's address found by identity, the address itself (on
/// `nic` when given) carrying rustha's mark. An address without the mark is not ours.
fn find_marked(
    nl: &Netlink,
    d: &Deadline,
    p: &IpAddr2Params,
    ctx: &Ctx,
) -> Result<Vec<(Link, Addr)>, OcfError> {
    let ip = effective_ip(p, ctx)?;
    let (nic, _) = nic_and_label(p);
    let links = nl.links(d)?;
    let only = match &nic {
        Some(n) => Some(
            links
                .iter()
                .find(|l| &l.name == n)
                .map(|l| l.index)
                .ok_or_else(|| {
                    OcfError::not_installed(format!("interface {n} does not exist on this node"))
                })?,
        ),
        None => None,
    };
    Ok(nl
        .addrs(d, ip.is_ipv6())?
        .into_iter()
        .filter(|a| a.ip == ip && is_ours(a) && only.is_none_or(|i| a.index == i))
        .filter_map(|a| {
            let l = links.iter().find(|l| l.index == a.index)?;
            Some((l.clone(), a))
        })
        .collect())
}

/// Remove the recorded address if it is there and ours.
fn remove_addr(nl: &Netlink, d: &Deadline, h: &Held) -> Result<(), OcfError> {
    let (ip, prefix, ifname) = (h.ip, h.prefix, &h.ifname);
    let Some(link) = nl.link_by_name(d, ifname)? else {
        tracing::info!("interface {ifname} is gone, and {ip} with it");
        return Ok(());
    };
    let here = nl.addrs(d, ip.is_ipv6())?;
    match find_addr(&here, link.index, ip).filter(|a| a.prefix == prefix) {
        None => tracing::info!("{ip}/{prefix} was already gone from {ifname}"),
        Some(a) if !h.owns(a) => tracing::warn!(
            "{ip}/{prefix} on {ifname} is not the address rustha added (it lacks \
             rustha's mark, address protocol {MARK}): left in place"
        ),
        Some(_) => match nl.del_addr(d, link.index, ip, prefix) {
            Ok(()) => tracing::info!("removed {ip}/{prefix} from {ifname}"),
            Err(e)
                if matches!(
                    netlink::errno(&e),
                    libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV
                ) =>
            {
                tracing::info!("{ip}/{prefix} was already gone from {ifname}")
            }
            Err(e) => {
                return Err(OcfError::generic(format!(
                    "cannot remove {ip}/{prefix} from {ifname}: {e}"
                )))
            }
        },
    }
    Ok(())
}

/// Remove what start added: the address (when `address`, and only if it is ours), its
/// address label, the LVS loopback change.
fn undo(nl: &Netlink, d: &Deadline, h: &Held, address: bool) -> Result<(), OcfError> {
    if let Some(id) = &h.sender {
        // First, so that no announcement for the address goes out after it is removed.
        if let Err(e) = daemon::silence(id, d) {
            tracing::warn!("background announcer pid {}: {e}", id.pid);
        }
    }
    if address {
        remove_addr(nl, d, h)?;
    }
    if h.flush_routes {
        for f in [
            "/proc/sys/net/ipv4/route/flush",
            "/proc/sys/net/ipv6/route/flush",
        ] {
            if let Err(e) = std::fs::write(f, "1") {
                tracing::warn!("flush_routes: {f}: {e}");
            }
        }
    }
    if let Some(v) = h.addrlabel {
        if let Err(e) = nl.addrlabel(d, false, h.ip, v) {
            if !matches!(netlink::errno(&e), libc::ESRCH | libc::ENOENT) {
                tracing::warn!("cannot remove the address label of {}: {e}", h.ip);
            }
        }
    }
    if let Some(lo) = &h.lvs_lo {
        if let Some(l) = nl.link_by_name(d, lo)? {
            // The admin's address, put back as it was: without our mark.
            let back = NewAddr {
                index: l.index,
                ip: h.ip,
                prefix: 32,
                broadcast: None,
                label: None,
                nodad: false,
                noprefixroute: false,
                preferred_lft: None,
            };
            match nl.add_addr(d, &back) {
                Ok(()) => tracing::info!("restored {}/32 on {lo} (lvs_support)", h.ip),
                Err(e) if netlink::errno(&e) == libc::EEXIST => {}
                Err(e) => tracing::warn!("cannot restore {}/32 on {lo}: {e}", h.ip),
            }
        }
    }
    Ok(())
}

/// Undo a failed start, exactly: the address only if this call added it, the record
/// only if it is still the one this call wrote. Returns the start's error.
fn rollback(
    nl: &Netlink,
    d: &Deadline,
    ctx: &Ctx,
    h: &Held,
    added: bool,
    saved: Option<&Record>,
    e: OcfError,
) -> OcfError {
    if let Err(u) = undo(nl, d, h, added) {
        tracing::error!("cleanup after a failed start: {u}");
    }
    if let Some(r) = saved {
        let state = StateFile::for_ctx(ctx);
        if state.load().ok().flatten().as_ref() == Some(r) {
            if let Err(u) = state.remove() {
                tracing::warn!("cleanup after a failed start: {u}");
            }
        }
    }
    e
}

/// Wait for IPv6 DAD. `Ok(true)` done, `Ok(false)` still tentative at the deadline.
fn wait_dad(nl: &Netlink, d: &Deadline, index: u32, ip: IpAddr) -> Result<bool, OcfError> {
    let mut last = None;
    let done = d.poll(Duration::from_millis(100), || match nl.addrs(d, true) {
        Ok(a) => match find_addr(&a, index, ip) {
            Some(x) if x.dad_failed() => Some(Err(OcfError::generic(format!(
                "duplicate address detected: another host on the link already uses {ip}"
            )))),
            Some(x) if x.tentative() => None,
            Some(_) => Some(Ok(true)),
            None => Some(Err(OcfError::generic(format!(
                "{ip} disappeared during duplicate-address detection"
            )))),
        },
        Err(e) => {
            last = Some(e);
            None
        }
    });
    match done {
        Some(r) => r,
        None => match last {
            Some(e) if d.expired() => Err(e.into()),
            _ => Ok(false),
        },
    }
}

impl Agent for IpAddr2 {
    type Params = IpAddr2Params;
    type Plan = Resolved;
    const HELPERS: &'static [ocf::Helper] = &[ocf::Helper {
        entry: announce::ENTRY,
        main: announce::main,
    }];
    const INFO: AgentInfo = AgentInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Manages a virtual IPv4 or IPv6 address (netlink)",
        longdesc: "Adds a virtual IP address to an interface, announces it to the segment \
            (gratuitous ARP for IPv4, unsolicited neighbour advertisements for IPv6) and \
            removes it on stop. Drop-in replacement for ocf:heartbeat:IPaddr2 with the same \
            parameters: interface and netmask are chosen from the routing table when not \
            given, as upstream's findif does. Everything is done over netlink and raw \
            sockets, without running ip, send_arp or arping. Start records which interface \
            and prefix it chose; monitor and stop act on that record. Not supported: the \
            load-sharing clone mode (Cluster-IP), which needs the iptables CLUSTERIP target \
            that current kernels no longer have.",
        actions: &[
            ActionSpec::new(Action::Start, 20),
            ActionSpec::new(Action::Stop, 20),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 20),
        ],
    };

    fn validate(p: &IpAddr2Params, ctx: &Ctx) -> Result<Resolved, OcfError> {
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
                    format!(
                        "'{s}' is not one of send_arp, iputils_arping, libnet_arping, ipoibarping"
                    ),
                ));
            }
        }
        for (name, v) in [("mac", &p.mac), ("clusterip_hash", &p.clusterip_hash)] {
            if v.is_some() {
                return Err(OcfError::configured(format!(
                    "parameter {name} belongs to the Cluster-IP load-sharing clone mode, which \
                     rustha does not support (it needs the iptables CLUSTERIP target, gone from \
                     current kernels)"
                )));
            }
        }
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
        // Validation runs before start and for validate-all: both resolve, in the
        // namespace the address lives in.
        enter_netns(p.network_namespace.as_deref())?;
        let nl = Netlink::open()?;
        let plan = resolve(p, ctx, &nl)?;
        // The node's own address is refused here already (crm_resource --validate).
        already_there(ctx, &plan, &nl.addrs(&ctx.deadline, plan.ip.is_ipv6())?)?;
        Ok(Resolved { nl, plan })
    }

    fn start(p: &IpAddr2Params, resolved: Resolved, ctx: &Ctx) -> Result<(), OcfError> {
        let d = &ctx.deadline;
        // validate (which the runner ran just before) already chose; do not ask twice.
        let Resolved { nl, plan } = resolved;
        let (ip, v6) = (plan.ip, plan.ip.is_ipv6());
        let link = &plan.link;
        let here = nl.addrs(d, v6)?;
        if let Some((a, prev)) = already_there(ctx, &plan, &here)? {
            tracing::info!(
                "{ip}/{} is already on {} (added by rustha)",
                a.prefix,
                link.name
            );
            if prev.is_some() {
                // Keep that start's record: its announcer and address label.
                return Ok(());
            }
            let mut h = Held::planned(p, &plan);
            h.marked = Some(is_ours(a));
            return save(ctx, &h).map(drop);
        }
        // This instance's record of another address (a start with other parameters, e.g.
        // by hand): while that one is held, this start would orphan it (stop acts on the
        // record, which this start overwrites).
        let prev = StateFile::for_ctx(ctx).load().ok().flatten();
        let other = prev
            .as_ref()
            .and_then(Held::from_record)
            .filter(|h| (h.ip, h.prefix, &h.ifname) != (ip, plan.prefix, &link.name));
        if let Some(h) = other {
            let other_netns = h.netns != p.network_namespace;
            if other_netns || holds(&nl, d, &h)? {
                return Err(OcfError::generic(format!(
                    "this resource already holds {}/{} on {}{} (started with other \
                     parameters); stop it before starting it with {ip}/{} on {}",
                    h.ip,
                    h.prefix,
                    h.ifname,
                    h.netns
                        .as_deref()
                        .map(|n| format!(" in network namespace {n}"))
                        .unwrap_or_default(),
                    plan.prefix,
                    link.name
                )));
            }
        }
        if let Some(a) = here.iter().find(|a| a.ip == ip && a.index != link.index) {
            tracing::warn!("{ip} is also configured on interface index {}", a.index);
        }
        if p.run_arping && !v6 && !no_announce(link) {
            let probe = announce_for(p, link, ip, 2);
            let wait = d.remaining().mul_f32(0.25).min(Duration::from_secs(2));
            if let Some(mac) = announce::ipv4_in_use(&probe, wait)? {
                return Err(OcfError::generic(format!(
                    "IPv4 address collision: {ip} is in use by {}",
                    netlink::mac_string(&mac)
                )));
            }
        }
        let mut held = Held::planned(p, &plan);
        if p.lvs_support {
            for a in here.iter().filter(|a| a.ip == ip && a.prefix == 32) {
                if let Some(lo) = nl
                    .link_by_index(d, a.index)?
                    .filter(|l| l.name.starts_with("lo"))
                {
                    nl.del_addr(d, lo.index, ip, 32)?;
                    tracing::info!("lvs_support: removed {ip}/32 from {}", lo.name);
                    held.lvs_lo = Some(lo.name);
                }
            }
        }
        if v6 && p.lvs_ipv6_addrlabel {
            match nl.addrlabel(d, true, ip, p.lvs_ipv6_addrlabel_value) {
                Ok(()) => held.addrlabel = Some(p.lvs_ipv6_addrlabel_value),
                Err(e) if netlink::errno(&e) == libc::EEXIST => {}
                Err(e) => tracing::warn!("cannot add an address label for {ip}: {e}"),
            }
        }
        // Recorded before anything changes, so that a stop after a failed or timed-out
        // start finds what to undo.
        let saved = save(ctx, &held).map_err(|e| rollback(&nl, d, ctx, &held, false, None, e))?;
        let new = NewAddr {
            index: link.index,
            ip,
            prefix: plan.prefix,
            broadcast: plan.broadcast,
            label: plan.label.clone(),
            nodad: v6 && p.nodad,
            noprefixroute: p.noprefixroute,
            preferred_lft: if v6 {
                p.preferred_lft.parse().ok()
            } else {
                None
            },
        };
        tracing::info!(
            "adding {ip}/{} to {}{}{}",
            plan.prefix,
            link.name,
            plan.broadcast
                .map(|b| format!(" brd {b}"))
                .unwrap_or_default(),
            plan.label
                .as_ref()
                .map(|l| format!(" label {l}"))
                .unwrap_or_default()
        );
        if let Err(e) = nl.add_addr_marked(d, &new, Some(MARK)) {
            // Not added by this call: whatever is there now is left alone.
            let why = format!("cannot add {ip}/{} to {}: {e}", plan.prefix, link.name);
            if netlink::errno(&e) == libc::EEXIST {
                let now = nl.addrs(d, v6)?;
                if find_addr(&now, link.index, ip)
                    .is_some_and(|a| is_ours(a) && a.prefix == plan.prefix)
                {
                    tracing::info!("{why}: another start of this resource added it meanwhile");
                    return Ok(());
                }
            }
            return Err(rollback(
                &nl,
                d,
                ctx,
                &held,
                false,
                Some(&saved),
                OcfError::generic(why),
            ));
        }
        let fail = |held: &Held, e: OcfError| rollback(&nl, d, ctx, held, true, Some(&saved), e);
        held.marked = match nl.addrs(d, v6) {
            Ok(a) => find_addr(&a, link.index, ip).map(is_ours),
            Err(e) => {
                tracing::warn!("cannot read {ip} back: {e}");
                None
            }
        };
        if held.marked == Some(false) {
            tracing::warn!(
                "this kernel does not keep the address protocol (IFA_PROTO, Linux >= 6.3): \
                 without its record, {ip} cannot be told from an address of the node's own"
            );
        }
        if !link.admin_up {
            if let Err(e) = nl.set_up(d, link.index) {
                let e = OcfError::generic(format!("cannot bring {} up: {e}", link.name));
                return Err(fail(&held, e));
            }
        }
        let mut announce_ok = true;
        if v6 && !p.nodad {
            match wait_dad(&nl, &d.portion(2, 3), link.index, ip) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        "{ip} is still tentative (duplicate-address detection has not finished); \
                         no neighbour advertisements sent"
                    );
                    announce_ok = false;
                }
                Err(e) => return Err(fail(&held, e)),
            }
        }
        if announce_ok && !no_announce(link) {
            let a = announce_for(p, link, ip, p.arp_count);
            if p.arp_bg.unwrap_or(!v6) {
                let spawn = Spawn::helper(marker(&ctx.instance), a.to_args());
                match daemon::spawn_transient(&spawn, d) {
                    Ok(id) => held.sender = id,
                    Err(e) => tracing::warn!("background announcer: {e}"),
                }
            } else {
                match announce::Sender::open(&a) {
                    Ok(s) => {
                        let n = s.send_all(&a, d);
                        tracing::info!("sent {n} announcements for {ip} on {}", link.name);
                    }
                    Err(e) => tracing::warn!("announcements for {ip} not sent: {e}"),
                }
            }
        }
        save(ctx, &held).map(drop)
    }

    fn stop(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<(), OcfError> {
        let d = &ctx.deadline;
        let state = StateFile::for_ctx(ctx);
        let rec = state.load();
        let held = match &rec {
            Ok(r) => r.as_ref().and_then(Held::from_record),
            Err(e) => {
                tracing::warn!("{e}: looking for the address by rustha's mark instead");
                None
            }
        };
        if let Some(h) = &held {
            if let Err(e) = enter_netns(h.netns.as_deref()) {
                tracing::warn!("{e}: nothing of ours can be running there");
            } else {
                let nl = Netlink::open()?;
                undo(&nl, d, h, true)?;
            }
        } else {
            // No record (lost, unreadable, or never started here): the address by identity.
            if let Some(p) = p {
                match enter_netns(p.network_namespace.as_deref()) {
                    Err(e) => tracing::warn!("{e}: nothing of ours can be running there"),
                    Ok(()) => {
                        let nl = Netlink::open()?;
                        match find_marked(&nl, d, p, ctx) {
                            Err(e) => tracing::warn!("{e}: so no address of ours is there"),
                            Ok(found) => {
                                for (link, a) in found {
                                    let h = Held {
                                        ip: a.ip,
                                        prefix: a.prefix,
                                        ifname: link.name.clone(),
                                        label: None,
                                        netns: None,
                                        addrlabel: (a.ip.is_ipv6() && p.lvs_ipv6_addrlabel)
                                            .then_some(p.lvs_ipv6_addrlabel_value),
                                        lvs_lo: None,
                                        flush_routes: p.flush_routes,
                                        check_link: true,
                                        refresh: 0,
                                        sender: None,
                                        marked: Some(true),
                                    };
                                    undo(&nl, d, &h, true)?;
                                }
                            }
                        }
                    }
                }
            }
            // An announcer of ours may still run: in this network namespace only (nodes
            // of one host may share a PID namespace, each with its own netns).
            let here = netns_id("self");
            for id in daemon::find_running(&Spawn::helper(marker(&ctx.instance), vec![]))
                .into_iter()
                .filter(|id| here.is_some() && netns_id(&id.pid.to_string()) == here)
            {
                if let Err(e) = daemon::silence(&id, d) {
                    tracing::warn!("announcer pid {}: {e}", id.pid);
                }
            }
        }
        match rec {
            Ok(Some(_)) => state.remove(),
            Ok(None) => Ok(()),
            // Nothing of ours is left (undone above); the record cannot be reached.
            Err(_) => Ok(()),
        }
    }

    fn monitor(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<Status, OcfError> {
        let d = &ctx.deadline;
        let held = match StateFile::for_ctx(ctx).load() {
            Ok(r) => r.as_ref().and_then(Held::from_record),
            Err(e) => {
                tracing::info!("{e}: looking for the address by rustha's mark instead");
                None
            }
        };
        let nl;
        let (link, a, label, check_link, refresh) = match held {
            Some(h) => {
                if let Err(e) = enter_netns(h.netns.as_deref()) {
                    tracing::info!("{e}");
                    return Ok(Status::NotRunning);
                }
                nl = Netlink::open()?;
                let Some(link) = nl.link_by_name(d, &h.ifname)? else {
                    tracing::info!("interface {} is gone", h.ifname);
                    return Ok(Status::NotRunning);
                };
                let addrs = nl.addrs(d, h.ip.is_ipv6())?;
                let Some(a) = find_addr(&addrs, link.index, h.ip).filter(|a| a.prefix == h.prefix)
                else {
                    tracing::info!("{}/{} is not on {}", h.ip, h.prefix, h.ifname);
                    return Ok(Status::NotRunning);
                };
                if !h.owns(a) {
                    tracing::info!(
                        "{}/{} on {} is not the address rustha added (it lacks rustha's mark)",
                        h.ip,
                        h.prefix,
                        h.ifname
                    );
                    return Ok(Status::NotRunning);
                }
                (link, a.clone(), h.label, h.check_link, h.refresh)
            }
            None => {
                let Some(p) = p else {
                    return Ok(Status::NotRunning);
                };
                if let Err(e) = enter_netns(p.network_namespace.as_deref()) {
                    tracing::info!("{e}");
                    return Ok(Status::NotRunning);
                }
                nl = Netlink::open()?;
                let found = match find_marked(&nl, d, p, ctx) {
                    Ok(f) => f,
                    Err(e) if ctx.is_probe() => {
                        tracing::info!("{e}");
                        return Ok(Status::NotRunning);
                    }
                    Err(e) => return Err(e),
                };
                let Some((link, a)) = found.into_iter().next() else {
                    tracing::info!("{} is not on this node with rustha's mark", p.ip);
                    return Ok(Status::NotRunning);
                };
                let label = nic_and_label(p)
                    .1
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("{}:{l}", link.name));
                (link, a, label, p.check_link_status, 0)
            }
        };
        let (ip, ifname) = (a.ip, &link.name);
        if a.dad_failed() {
            return Err(OcfError::generic(format!(
                "{ip} failed duplicate-address detection on {ifname}: another host uses it"
            )));
        }
        if check_link && !link.loopback && (!link.admin_up || link.oper_down) {
            tracing::info!("{ifname} is down: {ip} is not served");
            return Ok(Status::NotRunning);
        }
        if let Some(l) = label {
            if a.label.as_deref() != Some(l.as_str()) {
                return Err(OcfError::generic(format!(
                    "{ip} is on {ifname} but without its label {l}"
                )));
            }
        }
        if refresh > 0 && ip.is_ipv4() && !no_announce(&link) {
            let interval = p.map_or(200, |p| p.arp_interval);
            let a = announce_for_link(&link, ip, refresh, interval, false);
            match announce::Sender::open(&a) {
                Ok(s) => {
                    let n = s.send_all(&a, &d.portion(1, 2));
                    tracing::debug!("refresh: sent {n} gratuitous ARPs for {ip}");
                }
                Err(e) => tracing::warn!("refresh ARPs not sent: {e}"),
            }
        }
        Ok(Status::Success)
    }
}

fn announce_for_link(
    link: &Link,
    ip: IpAddr,
    count: u32,
    interval_ms: u32,
    reply: bool,
) -> Announce {
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
    fn a_record_round_trips_with_its_mark() {
        let r = Record::parse("ip=192.0.2.10\nprefix=24\nnic=eth0\nmark=1\n");
        let h = Held::from_record(&r).unwrap();
        assert_eq!(h.marked, Some(true));
        assert_eq!(h.record(), {
            let mut x = r.clone();
            x.set("flush_routes", 0)
                .set("check_link", 1)
                .set("arp_count_refresh", 0);
            x
        });
        let old = Held::from_record(&Record::parse("ip=192.0.2.10\nprefix=24\nnic=eth0\n"));
        assert_eq!(old.unwrap().marked, None, "a record of an older rustha");
    }

    #[test]
    fn malformed_ip_is_a_parameter_error() {
        assert!(params(&[("ip", "192.0.2.300")]).is_err());
        assert!(params(&[("ip", "")]).is_err(), "required");
    }
}
