//! A small synchronous view of rtnetlink: links, addresses, routes, address labels.
//!
//! Each call runs on a current-thread tokio runtime owned by this struct and is bounded
//! by the caller's [`Deadline`]; nothing here forks or reads `ip` output.

use futures_util::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressProtocol, AddressScope, CacheInfo,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;
use ocf::{Deadline, OcfError};
use rtnetlink::Handle;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// An interface as the kernel reports it.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_UP: administratively up.
    pub admin_up: bool,
    /// Operational state is DOWN or LOWERLAYERDOWN (no carrier, or a lower device down).
    pub oper_down: bool,
    pub loopback: bool,
    /// ARPHRD_* link-layer type.
    pub link_type: u16,
    pub hw_addr: Vec<u8>,
    pub hw_broadcast: Vec<u8>,
}

/// An address on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    /// IFA_F_* flags (the 32-bit attribute when present, else the header's 8 bits).
    pub flags: u32,
    /// IFA_PROTO: who added the address (0 = unspecified; Linux >= 6.3 keeps it).
    pub proto: u8,
}

impl Addr {
    pub fn tentative(&self) -> bool {
        self.flags & AddressFlags::Tentative.bits() != 0
    }
    pub fn dad_failed(&self) -> bool {
        self.flags & AddressFlags::Dadfailed.bits() != 0
    }
}

/// A route of the main table (or `local`), reduced to what interface selection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub oif: Option<u32>,
    pub unicast: bool,
    pub scope_link: bool,
    /// RTPROT_* number.
    pub protocol: u8,
    pub metric: u32,
    pub pref_src: Option<IpAddr>,
    pub table: u32,
}

/// What to add.
#[derive(Clone, Debug)]
pub struct NewAddr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// Seconds; `None` = forever.
    pub preferred_lft: Option<u32>,
}

impl NewAddr {
    /// `ip/prefix` on interface `index`, as `ip address add` does by default: no broadcast
    /// beyond the kernel's, no label, with DAD and the prefix route, preferred forever.
    /// Other options by struct update: `NewAddr { nodad: true, ..NewAddr::new(i, ip, 64) }`.
    pub fn new(index: u32, ip: IpAddr, prefix: u8) -> NewAddr {
        NewAddr {
            index,
            ip,
            prefix,
            broadcast: None,
            label: None,
            nodad: false,
            noprefixroute: false,
            preferred_lft: None,
        }
    }
}

/// The scope `ip address add` gives an address by default: host for IPv4 loopback
/// (127/8; the kernel refuses 127/8 with scope universe), universe otherwise (the kernel
/// derives an IPv6 address's scope itself).
pub fn default_scope(ip: IpAddr) -> AddressScope {
    match ip {
        IpAddr::V4(a) if a.is_loopback() => AddressScope::Host,
        _ => AddressScope::Universe,
    }
}

pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

/// A netlink failure, with the kernel's errno when there is one.
#[derive(Debug)]
pub struct NlError {
    pub errno: Option<i32>,
    pub text: String,
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<rtnetlink::Error> for NlError {
    fn from(e: rtnetlink::Error) -> Self {
        match e {
            rtnetlink::Error::NetlinkError(m) => {
                let io = m.to_io();
                NlError {
                    errno: io.raw_os_error(),
                    text: io.to_string(),
                }
            }
            other => NlError {
                errno: None,
                text: other.to_string(),
            },
        }
    }
}

impl From<NlError> for OcfError {
    fn from(e: NlError) -> Self {
        OcfError::generic(format!("netlink: {}", e.text))
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn protocol_number(p: RouteProtocol) -> u8 {
    u8::from(p)
}

impl Netlink {
    pub fn open() -> Result<Netlink, OcfError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| OcfError::generic(format!("cannot start the netlink runtime: {e}")))?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, io::Error>(handle)
        });
        let handle =
            handle.map_err(|e| OcfError::generic(format!("cannot open a netlink socket: {e}")))?;
        Ok(Netlink { rt, handle })
    }

    fn run<T>(
        &self,
        d: &Deadline,
        what: &str,
        f: impl Future<Output = Result<T, rtnetlink::Error>>,
    ) -> Result<T, NlError> {
        let left = d.remaining();
        let t = std::time::Instant::now();
        let r = match self
            .rt
            .block_on(async { tokio::time::timeout(left, f).await })
        {
            Ok(r) => r.map_err(NlError::from),
            Err(_) => Err(NlError {
                errno: Some(libc::ETIMEDOUT),
                text: format!("{what}: no answer from the kernel before the deadline"),
            }),
        };
        let us = t.elapsed().as_micros();
        match &r {
            Ok(_) => tracing::debug!("netlink {what}: ok in {us} us"),
            Err(e) => tracing::debug!("netlink {what}: {} in {us} us", e.text),
        }
        r
    }

    pub fn links(&self, d: &Deadline) -> Result<Vec<Link>, NlError> {
        let msgs: Vec<LinkMessage> = self.run(
            d,
            "list links",
            self.handle.link().get().execute().try_collect(),
        )?;
        Ok(msgs.into_iter().map(link_of).collect())
    }

    /// One link, asked for by name (no dump of every link).
    pub fn link_by_name(&self, d: &Deadline, name: &str) -> Result<Option<Link>, NlError> {
        let req = self.handle.link().get().match_name(name.to_string());
        match self.run(
            d,
            "get link",
            req.execute().try_collect::<Vec<LinkMessage>>(),
        ) {
            Ok(v) => Ok(v.into_iter().map(link_of).find(|l| l.name == name)),
            Err(e) if matches!(e.errno, Some(libc::ENODEV)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn link_by_index(&self, d: &Deadline, index: u32) -> Result<Option<Link>, NlError> {
        Ok(self.links(d)?.into_iter().find(|l| l.index == index))
    }

    pub fn addrs(&self, d: &Deadline, v6: bool) -> Result<Vec<Addr>, NlError> {
        let mut req = self.handle.address().get();
        req.message_mut().header.family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let msgs: Vec<AddressMessage> =
            self.run(d, "list addresses", req.execute().try_collect())?;
        Ok(msgs.into_iter().filter_map(addr_of).collect())
    }

    /// Routes of one family from every table (the caller filters by table).
    pub fn routes(&self, d: &Deadline, v6: bool) -> Result<Vec<Route>, NlError> {
        let msg = if v6 {
            rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .table_id(0)
                .build()
        } else {
            rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .table_id(0)
                .build()
        };
        let msgs: Vec<RouteMessage> = self.run(
            d,
            "list routes",
            self.handle.route().get(msg).execute().try_collect(),
        )?;
        Ok(msgs.into_iter().filter_map(route_of).collect())
    }

    pub fn add_addr(&self, d: &Deadline, a: &NewAddr) -> Result<(), NlError> {
        self.add_addr_marked(d, a, None)
    }

    /// Add `a` with the address protocol `proto` (IFA_PROTO): a mark on the address
    /// itself of who added it. Linux >= 6.3 keeps it; older kernels ignore the attribute.
    pub fn add_addr_marked(
        &self,
        d: &Deadline,
        a: &NewAddr,
        proto: Option<u8>,
    ) -> Result<(), NlError> {
        let mut req = self.handle.address().add(a.index, a.ip, a.prefix);
        let m = req.message_mut();
        m.header.scope = default_scope(a.ip);
        if let Some(p) = proto {
            m.attributes
                .push(AddressAttribute::Protocol(AddressProtocol::from(p)));
        }
        // The builder sets IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST (v4); a broadcast
        // pushed below comes later, and the kernel takes the last one.
        if let Some(b) = a.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &a.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        let mut flags = AddressFlags::empty();
        if a.nodad {
            flags |= AddressFlags::Nodad;
        }
        if a.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        if let Some(p) = a.preferred_lft {
            let mut ci = CacheInfo::default();
            ci.ifa_preferred = p;
            ci.ifa_valid = u32::MAX;
            m.attributes.push(AddressAttribute::CacheInfo(ci));
        }
        let what = format!("add address {}/{} on link {}", a.ip, a.prefix, a.index);
        self.run(d, &what, req.execute())
    }

    pub fn del_addr(
        &self,
        d: &Deadline,
        index: u32,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NlError> {
        let mut m = AddressMessage::default();
        m.header.family = family(ip);
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip));
        if ip.is_ipv4() {
            m.attributes.push(AddressAttribute::Address(ip));
        }
        let what = format!("delete address {ip}/{prefix} on link {index}");
        self.run(d, &what, self.handle.address().del(m).execute())
    }

    pub fn set_up(&self, d: &Deadline, index: u32) -> Result<(), NlError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.run(d, "set link up", self.handle.link().set(m).execute())
    }

    /// `ip addrlabel add prefix <ip>/128 label <label>` (IPv6 source-address selection).
    pub fn addrlabel(
        &self,
        d: &Deadline,
        add: bool,
        ip: IpAddr,
        label: u32,
    ) -> Result<(), NlError> {
        let h = self.handle.addrlabel();
        if add {
            self.run(
                d,
                "add address label",
                h.add().address(ip).prefix_len(128).label(label).execute(),
            )
        } else {
            self.run(
                d,
                "delete address label",
                h.del().address(ip).prefix_len(128).label(label).execute(),
            )
        }
    }
}

fn link_of(m: LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        admin_up: m.header.flags.contains(LinkFlags::Up),
        oper_down: false,
        loopback: m.header.flags.contains(LinkFlags::Loopback),
        link_type: u16::from(m.header.link_layer_type),
        hw_addr: vec![],
        hw_broadcast: vec![],
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n,
            LinkAttribute::Address(b) => l.hw_addr = b,
            LinkAttribute::Broadcast(b) => l.hw_broadcast = b,
            LinkAttribute::OperState(s) => {
                l.oper_down = matches!(s, State::Down | State::LowerLayerDown)
            }
            _ => {}
        }
    }
    l
}

fn addr_of(m: AddressMessage) -> Option<Addr> {
    let mut local = None;
    let mut address = None;
    let mut a = Addr {
        index: m.header.index,
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: m.header.prefix_len,
        label: None,
        broadcast: None,
        flags: u32::from(m.header.flags.bits()),
        proto: 0,
    };
    for at in m.attributes {
        match at {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Label(l) => a.label = Some(l),
            AddressAttribute::Broadcast(b) => a.broadcast = Some(b),
            AddressAttribute::Flags(f) => a.flags = f.bits(),
            AddressAttribute::Protocol(p) => a.proto = u8::from(p),
            _ => {}
        }
    }
    a.ip = local.or(address)?;
    Some(a)
}

fn route_of(m: RouteMessage) -> Option<Route> {
    let mut r = Route {
        dst: match m.header.address_family {
            AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => return None,
        },
        prefix: m.header.destination_prefix_length,
        oif: None,
        unicast: m.header.kind == RouteType::Unicast,
        scope_link: m.header.scope == RouteScope::Link,
        protocol: protocol_number(m.header.protocol),
        metric: 0,
        pref_src: None,
        table: u32::from(m.header.table),
    };
    for a in m.attributes {
        match a {
            RouteAttribute::Destination(d) => r.dst = route_ip(&d)?,
            RouteAttribute::Oif(i) => r.oif = Some(i),
            RouteAttribute::Priority(p) => r.metric = p,
            RouteAttribute::PrefSource(s) => r.pref_src = route_ip(&s),
            RouteAttribute::Table(t) => r.table = t,
            _ => {}
        }
    }
    Some(r)
}

/// The errno of a failed call, for callers that treat some as benign.
/// The IPv4 broadcast address of `ip/prefix` (`brd +`), or the network address (`brd -`).
pub fn broadcast(ip: Ipv4Addr, prefix: u8, plus: bool) -> Ipv4Addr {
    let host = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
    if plus {
        Ipv4Addr::from(u32::from(ip) | host)
    } else {
        Ipv4Addr::from(u32::from(ip) & !host)
    }
}

/// A link-layer address as `ip link` shows it (`52:54:00:12:34:56`).
pub fn mac_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn errno(e: &NlError) -> i32 {
    e.errno.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_and_macs() {
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(broadcast(ip, 24, true), Ipv4Addr::new(192, 0, 2, 255));
        assert_eq!(broadcast(ip, 24, false), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(broadcast(ip, 32, true), ip);
        assert_eq!(
            mac_string(&[0x52, 0x54, 0, 0x12, 0xab, 6]),
            "52:54:00:12:ab:06"
        );
    }
}
