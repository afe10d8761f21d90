//! Stop: undo what the record says start did; without a record, remove this resource's
//! address found by rustha's mark and silence a stray announcer.

use super::params::{self, IpAddr2Params};
use super::plan::{link_named, Held};
use super::{enter_netns, find_addr, is_ours, marker, netns_id, MARK};
use crate::daemon::{self, Spawn};
use crate::netlink::{self, Addr, Link, Netlink, NewAddr};
use crate::state::StateFile;
use ocf::{Ctx, Deadline, OcfError};

pub fn stop(p: Option<&IpAddr2Params>, ctx: &Ctx) -> Result<(), OcfError> {
    let state = StateFile::for_ctx(ctx);
    let rec = state.load();
    let held = match &rec {
        Ok(r) => r.as_ref().and_then(Held::from_record),
        Err(e) => {
            tracing::warn!("{e}: looking for the address by rustha's mark instead");
            None
        }
    };
    match &held {
        Some(h) => undo_recorded(h, &ctx.deadline)?,
        // No record (lost, unreadable, or never started here): the address by identity.
        None => {
            if let Some(p) = p {
                undo_marked(p, ctx)?;
            }
            silence_strays(ctx);
        }
    }
    match rec {
        Ok(Some(_)) => state.remove(),
        Ok(None) => Ok(()),
        // Nothing of ours is left (undone above); the record cannot be reached.
        Err(_) => Ok(()),
    }
}

/// Undo the recorded start, in the recorded namespace.
fn undo_recorded(h: &Held, d: &Deadline) -> Result<(), OcfError> {
    if let Err(e) = enter_netns(h.netns.as_deref()) {
        tracing::warn!("{e}: nothing of ours can be running there");
        return Ok(());
    }
    let nl = Netlink::open()?;
    undo(&nl, d, h, true)
}

/// Remove this resource's address wherever it carries rustha's mark.
fn undo_marked(p: &IpAddr2Params, ctx: &Ctx) -> Result<(), OcfError> {
    let d = &ctx.deadline;
    if let Err(e) = enter_netns(p.network_namespace.as_deref()) {
        tracing::warn!("{e}: nothing of ours can be running there");
        return Ok(());
    }
    let nl = Netlink::open()?;
    match find_marked(&nl, d, p, ctx) {
        Err(e) => tracing::warn!("{e}: so no address of ours is there"),
        Ok(found) => {
            for (link, a) in found {
                undo(&nl, d, &Held::found(p, &link, &a), true)?;
            }
        }
    }
    Ok(())
}

/// An announcer of ours may still run: in this network namespace only (nodes of one
/// host may share a PID namespace, each with its own netns).
fn silence_strays(ctx: &Ctx) {
    let here = netns_id("self");
    for id in daemon::find_running(&Spawn::helper(marker(&ctx.instance), vec![]))
        .into_iter()
        .filter(|id| here.is_some() && netns_id(&id.pid.to_string()) == here)
    {
        if let Err(e) = daemon::silence(&id, &ctx.deadline) {
            tracing::warn!("announcer pid {}: {e}", id.pid);
        }
    }
}

/// Without a record: this resource's address found by identity, the address itself (on
/// `nic` when given) carrying rustha's mark. An address without the mark is not ours.
pub fn find_marked(
    nl: &Netlink,
    d: &Deadline,
    p: &IpAddr2Params,
    ctx: &Ctx,
) -> Result<Vec<(Link, Addr)>, OcfError> {
    let ip = params::effective_ip(p, ctx)?;
    let (nic, _) = params::nic_and_label(p);
    let links = nl.links(d)?;
    let only = match &nic {
        Some(n) => Some(link_named(&links, n)?.index),
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

/// Remove what start added: the address (when `address`, and only if it is ours), its
/// address label, the LVS loopback change.
pub fn undo(nl: &Netlink, d: &Deadline, h: &Held, address: bool) -> Result<(), OcfError> {
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
        restore_lvs_lo(nl, d, h, lo)?;
    }
    Ok(())
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

/// lvs_support: the admin's /32 on the loopback interface, put back as it was (without
/// our mark).
fn restore_lvs_lo(nl: &Netlink, d: &Deadline, h: &Held, lo: &str) -> Result<(), OcfError> {
    let Some(l) = nl.link_by_name(d, lo)? else {
        return Ok(());
    };
    match nl.add_addr(d, &NewAddr::new(l.index, h.ip, 32)) {
        Ok(()) => tracing::info!("restored {}/32 on {lo} (lvs_support)", h.ip),
        Err(e) if netlink::errno(&e) == libc::EEXIST => {}
        Err(e) => tracing::warn!("cannot restore {}/32 on {lo}: {e}", h.ip),
    }
    Ok(())
}
