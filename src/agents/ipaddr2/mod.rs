//! `IPaddr2`: a virtual IP address, managed over netlink.
//!
//! Parameter-compatible with `ocf:heartbeat:IPaddr2`. Start chooses the interface and
//! prefix (as upstream's findif does, from the routing table), adds the address, waits
//! for IPv6 duplicate-address detection, announces the address (gratuitous ARP /
//! unsolicited NA from a raw socket) and records its decision; monitor and stop act on
//! that record. No `ip`, `send_arp`, `send_ua` or `arping` processes: nothing is forked
//! except the optional background announcer, which is this binary.
//!
//! `params` declares the parameters; `plan` is what validate resolves and start records;
//! `start`, `stop` and `monitor` are the actions; `findif` chooses interface and prefix,
//! `announce` tells the segment.

pub mod announce;
pub mod findif;
mod monitor;
mod params;
mod plan;
mod start;
mod stop;

use crate::netlink::{Addr, Netlink};
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, OcfError, Status};
pub use params::IpAddr2Params;
use plan::Resolved;
use std::net::IpAddr;

pub struct IpAddr2;

const NAME: &str = "IPaddr2";

/// The IFA_PROTO value on every address this agent adds: it tells a VIP of ours from an
/// address the node had anyway (its own address, configured by the admin or DHCP), also
/// when the record is lost. Linux keeps it since 6.3 (`ip -d address` shows `proto 82`
/// with iproute2 >= 6.3); older kernels ignore it, and then the record is the only mark.
pub const MARK: u8 = 82;

/// Whether the address carries rustha's mark.
fn is_ours(a: &Addr) -> bool {
    a.proto == MARK
}

fn find_addr(addrs: &[Addr], index: u32, ip: IpAddr) -> Option<&Addr> {
    addrs.iter().find(|a| a.index == index && a.ip == ip)
}

/// What the background announcer of `instance` is told by.
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

    fn check_params(p: &IpAddr2Params, ctx: &Ctx) -> Result<(), OcfError> {
        params::check(p, ctx)
    }

    fn validate(p: &IpAddr2Params, ctx: &Ctx) -> Result<Resolved, OcfError> {
        params::check(p, ctx)?;
        // Validation runs before start and for validate-all: both resolve, in the
        // namespace the address lives in.
        enter_netns(p.network_namespace.as_deref())?;
        let resolved = Resolved::new(p, ctx, Netlink::open()?)?;
        // The node's own address is refused here already (crm_resource --validate).
        let plan = resolved.plan();
        let here = resolved.nl().addrs(&ctx.deadline, plan.ip().is_ipv6())?;
        start::already_there(ctx, plan, &here)?;
        Ok(resolved)
    }

    fn start(p: &IpAddr2Params, resolved: Resolved, ctx: &Ctx) -> Result<(), OcfError> {
        start::start(p, resolved, ctx)
    }

    fn stop(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<(), OcfError> {
        stop::stop(p, ctx)
    }

    fn monitor(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<Status, OcfError> {
        monitor::monitor(p, ctx)
    }
}
