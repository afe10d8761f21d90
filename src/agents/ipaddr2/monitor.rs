//! Monitor: find the address (by the record, else by rustha's mark) and tell whether it
//! is served; optionally refresh the switches' ARP entries.

use super::announce::{self, Announce};
use super::params::{self, IpAddr2Params};
use super::plan::Held;
use super::stop::find_marked;
use super::{enter_netns, find_addr};
use crate::netlink::{Addr, Link, Netlink};
use crate::state::StateFile;
use ocf::{Ctx, Deadline, OcfError, Status};

/// The address monitor found, and what to check about it.
struct Watched {
    link: Link,
    addr: Addr,
    /// The full label (`<nic>:<iflabel>`) the address must have.
    label: Option<String>,
    check_link: bool,
    /// Gratuitous ARPs to send when it is served.
    refresh: u32,
}

pub fn monitor(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<Status, OcfError> {
    let held = match StateFile::for_ctx(ctx).load() {
        Ok(r) => r.as_ref().and_then(Held::from_record),
        Err(e) => {
            tracing::info!("{e}: looking for the address by rustha's mark instead");
            None
        }
    };
    let watched = match (held, p) {
        (Some(h), _) => recorded(h, &ctx.deadline)?,
        (None, Some(p)) => marked(p, ctx)?,
        (None, None) => None,
    };
    match watched {
        Some(w) => served(&w, p, &ctx.deadline),
        None => Ok(Status::NotRunning),
    }
}

/// The recorded address, if it is on the recorded interface and ours.
fn recorded(h: Held, d: &Deadline) -> Result<Option<Watched>, OcfError> {
    if let Err(e) = enter_netns(h.netns.as_deref()) {
        tracing::info!("{e}");
        return Ok(None);
    }
    let nl = Netlink::open()?;
    let Some(link) = nl.link_by_name(d, &h.ifname)? else {
        tracing::info!("interface {} is gone", h.ifname);
        return Ok(None);
    };
    let addrs = nl.addrs(d, h.ip.is_ipv6())?;
    let Some(a) = find_addr(&addrs, link.index, h.ip).filter(|a| a.prefix == h.prefix) else {
        tracing::info!("{}/{} is not on {}", h.ip, h.prefix, h.ifname);
        return Ok(None);
    };
    if !h.owns(a) {
        tracing::info!(
            "{}/{} on {} is not the address rustha added (it lacks rustha's mark)",
            h.ip,
            h.prefix,
            h.ifname
        );
        return Ok(None);
    }
    Ok(Some(Watched {
        addr: a.clone(),
        link,
        label: h.label,
        check_link: h.check_link,
        refresh: h.refresh,
    }))
}

/// Without a record: this resource's address by rustha's mark. In a probe, parameters
/// that cannot resolve mean "not running"; otherwise they are the error.
fn marked(p: &IpAddr2Params, ctx: &Ctx) -> Result<Option<Watched>, OcfError> {
    if let Err(e) = enter_netns(p.network_namespace.as_deref()) {
        tracing::info!("{e}");
        return Ok(None);
    }
    let nl = Netlink::open()?;
    let found = match find_marked(&nl, &ctx.deadline, p, ctx) {
        Ok(f) => f,
        Err(e) if ctx.is_probe() => {
            tracing::info!("{e}");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some((link, addr)) = found.into_iter().next() else {
        tracing::info!("{} is not on this node with rustha's mark", p.ip);
        return Ok(None);
    };
    let label = params::nic_and_label(p)
        .1
        .filter(|l| !l.is_empty())
        .map(|l| format!("{}:{l}", link.name));
    Ok(Some(Watched {
        link,
        addr,
        label,
        check_link: p.check_link_status,
        refresh: 0,
    }))
}

/// Whether the found address is served: DAD passed, the link up (when checked), the
/// label present.
fn served(w: &Watched, p: Option<&IpAddr2Params>, d: &Deadline) -> Result<Status, OcfError> {
    let (a, link) = (&w.addr, &w.link);
    let (ip, ifname) = (a.ip, &link.name);
    if a.dad_failed() {
        return Err(OcfError::generic(format!(
            "{ip} failed duplicate-address detection on {ifname}: another host uses it"
        )));
    }
    if w.check_link && !link.loopback && (!link.admin_up || link.oper_down) {
        tracing::info!("{ifname} is down: {ip} is not served");
        return Ok(Status::NotRunning);
    }
    if let Some(l) = &w.label {
        if a.label.as_deref() != Some(l.as_str()) {
            return Err(OcfError::generic(format!(
                "{ip} is on {ifname} but without its label {l}"
            )));
        }
    }
    if w.refresh > 0 && ip.is_ipv4() && !announce::pointless(link) {
        let interval = p.map_or(200, |p| p.arp_interval);
        let a = Announce::on(link, ip, w.refresh, interval, false);
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
