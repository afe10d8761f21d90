//! What validate decides and start carries out (`Plan`, handed over as `Resolved`), and
//! what start records for monitor and stop (`Held`, one `to_record` / `from_record` pair).

use super::params::{self, IpAddr2Params};
use super::{findif, is_ours};
use crate::daemon::Identity;
use crate::netlink::{self, Addr, Link, Netlink, NewAddr, Route};
use crate::state::{Record, StateFile};
use ocf::{Ctx, Deadline, OcfError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The decision start takes and records. Only [`resolve`] makes one.
#[derive(Clone, Debug)]
pub struct Plan {
    ip: IpAddr,
    prefix: u8,
    link: Link,
    label: Option<String>,
    broadcast: Option<Ipv4Addr>,
}

impl Plan {
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The address to add, with the options of `p`.
    pub fn new_addr(&self, p: &IpAddr2Params) -> NewAddr {
        let v6 = self.ip.is_ipv6();
        NewAddr {
            broadcast: self.broadcast,
            label: self.label.clone(),
            nodad: v6 && p.nodad,
            noprefixroute: p.noprefixroute,
            preferred_lft: if v6 { params::preferred_lft(p) } else { None },
            ..NewAddr::new(self.link.index, self.ip, self.prefix)
        }
    }
}

/// `ip/prefix to nic[ brd b][ label l]`, as start logs it.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} to {}", self.ip, self.prefix, self.link.name)?;
        if let Some(b) = self.broadcast {
            write!(f, " brd {b}")?;
        }
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        Ok(())
    }
}

/// What validate hands start: the netlink connection, opened inside
/// `network_namespace`, and the address it resolved there.
pub struct Resolved {
    nl: Netlink,
    plan: Plan,
}

impl Resolved {
    /// Resolve `p` over `nl`, a connection opened in the address's namespace.
    pub fn new(p: &IpAddr2Params, ctx: &Ctx, nl: Netlink) -> Result<Resolved, OcfError> {
        let plan = resolve(p, ctx, &nl)?;
        tracing::debug!(
            "decided: {plan} (nic {}, cidr_netmask {})",
            if p.nic.is_some() {
                "given"
            } else {
                "from the routing table"
            },
            if p.cidr_netmask.is_some() || p.netmask.is_some() {
                "given"
            } else {
                "from the route"
            }
        );
        Ok(Resolved { nl, plan })
    }

    pub fn nl(&self) -> &Netlink {
        &self.nl
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn into_parts(self) -> (Netlink, Plan) {
        (self.nl, self.plan)
    }
}

/// The interface called `name`; a missing one is "not installed" (5).
pub fn link_named<'a>(links: &'a [Link], name: &str) -> Result<&'a Link, OcfError> {
    links.iter().find(|l| l.name == name).ok_or_else(|| {
        OcfError::not_installed(format!("interface {name} does not exist on this node"))
    })
}

/// Choose interface and prefix (findif). Parameter problems are 6, a missing interface
/// 5, no covering route 1; monitor and stop map these to 7 / 0 themselves.
fn resolve(p: &IpAddr2Params, ctx: &Ctx, nl: &Netlink) -> Result<Plan, OcfError> {
    let d = &ctx.deadline;
    let ip = params::effective_ip(p, ctx)?;
    let v6 = ip.is_ipv6();
    let (nic, label) = params::nic_and_label(p);
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
        Some(n) => Some(link_named(&links, n)?.clone()),
        None => None,
    };
    let proto = params::proto_param(p)?;
    let routes = nl.routes(d, v6)?;
    let q = findif::Query {
        ip,
        prefix,
        ifindex: link.as_ref().map(|l| l.index),
        proto,
    };
    let route = findif::select(&routes, &q);
    let (link, prefix) = link_and_prefix(p, ip, &links, link, prefix, route)?;
    let label = match label {
        Some(l) if !l.is_empty() => {
            params::check_label(params::label_param(p), Some(&link.name), &l)?;
            Some(format!("{}:{l}", link.name))
        }
        _ => None,
    };
    let broadcast = broadcast(p, nl, d, ip, prefix, route)?;
    Ok(Plan {
        ip,
        prefix,
        link,
        label,
        broadcast,
    })
}

/// The given interface and prefix, each completed from the covering route when unset.
fn link_and_prefix(
    p: &IpAddr2Params,
    ip: IpAddr,
    links: &[Link],
    link: Option<Link>,
    prefix: Option<u8>,
    route: Option<&Route>,
) -> Result<(Link, u8), OcfError> {
    match (link, prefix, route) {
        (Some(l), Some(m), _) => Ok((l, m)),
        (l, m, Some(r)) => {
            let l = match l {
                Some(l) => l,
                None => links
                    .iter()
                    .find(|x| Some(x.index) == r.oif)
                    .cloned()
                    .ok_or_else(|| OcfError::generic("the chosen route's interface vanished"))?,
            };
            Ok((l, m.unwrap_or(r.prefix)))
        }
        (l, _, None) => Err(OcfError::generic(format!(
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
        ))),
    }
}

/// The IPv4 broadcast address: as the parameter says, else the node's own address's on
/// the chosen route (as upstream), else the subnet's.
fn broadcast(
    p: &IpAddr2Params,
    nl: &Netlink,
    d: &Deadline,
    ip: IpAddr,
    prefix: u8,
    route: Option<&Route>,
) -> Result<Option<Ipv4Addr>, OcfError> {
    Ok(match (ip, p.broadcast.as_deref()) {
        (IpAddr::V6(_), _) => None,
        (IpAddr::V4(a), Some("+")) => Some(netlink::broadcast(a, prefix, true)),
        (IpAddr::V4(a), Some("-")) => Some(netlink::broadcast(a, prefix, false)),
        (IpAddr::V4(_), Some(b)) => Some(b.parse::<Ipv4Addr>().map_err(|_| {
            OcfError::invalid_param("broadcast", format!("'{b}' is not an IPv4 address, + or -"))
        })?),
        (IpAddr::V4(a), None) => {
            let own = route.and_then(|r| r.pref_src).and_then(|src| {
                nl.addrs(d, false)
                    .ok()?
                    .into_iter()
                    .find(|x| x.ip == src)
                    .and_then(|x| x.broadcast)
            });
            own.or((prefix <= 30).then(|| netlink::broadcast(a, prefix, true)))
        }
    })
}

/// What start holds, as recorded for monitor and stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub ip: IpAddr,
    pub prefix: u8,
    pub ifname: String,
    pub label: Option<String>,
    pub netns: Option<String>,
    pub addrlabel: Option<u32>,
    pub lvs_lo: Option<String>,
    pub flush_routes: bool,
    pub check_link: bool,
    pub refresh: u32,
    pub sender: Option<Identity>,
    /// Whether the kernel kept our mark on the address we added: `Some(false)` on a kernel
    /// without IFA_PROTO, `None` in a record written before the address was added (or by
    /// an older rustha).
    pub marked: Option<bool>,
}

impl Held {
    pub fn to_record(&self) -> Record {
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

    /// The inverse of [`Held::to_record`]; `None` without ip, prefix or nic.
    pub fn from_record(r: &Record) -> Option<Held> {
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

    /// Record this; returns what was written (a rollback removes the record only if it
    /// is still this one).
    pub fn save(&self, ctx: &Ctx) -> Result<Record, OcfError> {
        let r = self.to_record();
        StateFile::for_ctx(ctx).save(&r)?;
        Ok(r)
    }

    /// This instance's record, if there is a readable one.
    pub fn recorded(ctx: &Ctx) -> Option<Held> {
        StateFile::for_ctx(ctx)
            .load()
            .ok()
            .flatten()
            .as_ref()
            .and_then(Held::from_record)
    }

    /// What a start of `plan` is about to hold.
    pub fn planned(p: &IpAddr2Params, plan: &Plan) -> Held {
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

    /// Without a record: what stop undoes for `a`, found on `link` with rustha's mark.
    pub fn found(p: &IpAddr2Params, link: &Link, a: &Addr) -> Held {
        Held {
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
        }
    }

    /// Whether `a` (the recorded address, found on the recorded interface) is the one we
    /// added: it carries our mark, or the kernel could not keep the mark.
    pub fn owns(&self, a: &Addr) -> bool {
        is_ours(a) || self.marked != Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Held {
        Held {
            ip: "2001:db8::10".parse().unwrap(),
            prefix: 64,
            ifname: "eth1".into(),
            label: Some("eth1:web".into()),
            netns: Some("blue".into()),
            addrlabel: Some(99),
            lvs_lo: Some("lo".into()),
            flush_routes: true,
            check_link: false,
            refresh: 3,
            sender: Some(Identity {
                pid: 4242,
                start_time: 123_456,
                boot_id: "0f7c2d4e-boot".into(),
            }),
            marked: Some(false),
        }
    }

    fn plan(ip: &str) -> Plan {
        Plan {
            ip: ip.parse().unwrap(),
            prefix: 24,
            link: Link {
                index: 7,
                name: "eth1".into(),
                admin_up: true,
                oper_down: false,
                loopback: false,
                link_type: 1,
                hw_addr: vec![2, 0, 0, 0, 0, 1],
                hw_broadcast: vec![0xff; 6],
            },
            label: Some("eth1:web".into()),
            broadcast: ip
                .parse::<Ipv4Addr>()
                .ok()
                .map(|_| Ipv4Addr::new(192, 0, 2, 255)),
        }
    }

    #[test]
    fn the_address_to_add_takes_ipv6_options_only_for_ipv6() {
        let vars = [
            ("ip", "192.0.2.10"),
            ("nodad", "true"),
            ("noprefixroute", "true"),
            ("preferred_lft", "30"),
        ];
        let p: IpAddr2Params = ocf::params::from_pairs(&vars).unwrap();
        let v4 = plan("192.0.2.10");
        let a = v4.new_addr(&p);
        assert_eq!((a.index, a.ip, a.prefix), (7, v4.ip, 24));
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(a.label.as_deref(), Some("eth1:web"));
        assert!(a.noprefixroute);
        assert_eq!((a.nodad, a.preferred_lft), (false, None));
        let a = plan("2001:db8::10").new_addr(&p);
        assert_eq!(
            (a.nodad, a.preferred_lft, a.broadcast),
            (true, Some(30), None)
        );
        assert_eq!(
            v4.to_string(),
            "192.0.2.10/24 to eth1 brd 192.0.2.255 label eth1:web"
        );
    }

    #[test]
    fn every_field_round_trips() {
        let full = held();
        assert_eq!(Held::from_record(&full.to_record()), Some(full.clone()));
        let bare = Held {
            label: None,
            netns: None,
            addrlabel: None,
            lvs_lo: None,
            flush_routes: false,
            check_link: true,
            refresh: 0,
            sender: None,
            marked: None,
            ..full
        };
        assert_eq!(Held::from_record(&bare.to_record()), Some(bare.clone()));
        let text = bare.to_record().render();
        assert_eq!(Held::from_record(&Record::parse(&text)), Some(bare));
    }

    #[test]
    fn a_record_without_its_address_is_none() {
        let text = held().to_record().render();
        for key in ["ip=", "prefix=", "nic="] {
            let without: String = text
                .lines()
                .filter(|l| !l.starts_with(key))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(Held::from_record(&Record::parse(&without)), None, "{key}");
        }
    }

    #[test]
    fn a_record_round_trips_with_its_mark() {
        let r = Record::parse("ip=192.0.2.10\nprefix=24\nnic=eth0\nmark=1\n");
        let h = Held::from_record(&r).unwrap();
        assert_eq!(h.marked, Some(true));
        assert_eq!(h.to_record(), {
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
    fn the_mark_decides_ownership_only_where_the_kernel_keeps_it() {
        let a = |proto| Addr {
            index: 2,
            ip: "192.0.2.10".parse().unwrap(),
            prefix: 24,
            label: None,
            broadcast: None,
            flags: 0,
            proto,
        };
        let mut h = held();
        for (marked, theirs_owned) in [(Some(true), false), (Some(false), true), (None, true)] {
            h.marked = marked;
            assert!(h.owns(&a(super::super::MARK)), "{marked:?}");
            assert_eq!(h.owns(&a(0)), theirs_owned, "{marked:?}");
        }
    }
}
