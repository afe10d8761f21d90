//! Start: add the planned address (after the checks that it is not the node's own and
//! that this resource holds no other), wait for DAD, announce it, record it; and undo
//! exactly what a failed start did.

use super::announce::{self, Announce};
use super::params::{self, IpAddr2Params};
use super::plan::{Held, Plan, Resolved};
use super::stop::undo;
use super::{find_addr, is_ours, marker, MARK};
use crate::daemon::{self, Identity, Spawn};
use crate::netlink::{self, Addr, Link, Netlink};
use crate::state::{Record, StateFile};
use ocf::{Ctx, Deadline, OcfError};
use std::net::IpAddr;
use std::time::Duration;

pub fn start(p: &IpAddr2Params, resolved: Resolved, ctx: &Ctx) -> Result<(), OcfError> {
    let d = &ctx.deadline;
    // validate (which the runner ran just before) already chose; do not ask twice.
    let (nl, plan) = resolved.into_parts();
    let (ip, link) = (plan.ip(), plan.link());
    let here = nl.addrs(d, ip.is_ipv6())?;
    if let Some((a, prev)) = already_there(ctx, &plan, &here)? {
        return keep(p, &plan, a, prev, ctx);
    }
    refuse_other_held(p, &plan, &nl, ctx)?;
    if let Some(a) = here.iter().find(|a| a.ip == ip && a.index != link.index) {
        tracing::warn!("{ip} is also configured on interface index {}", a.index);
    }
    probe_collision(p, &plan, d)?;
    let mut held = Held::planned(p, &plan);
    prepare(p, &nl, d, &here, &mut held)?;
    // Recorded before anything changes, so that a stop after a failed or timed-out
    // start finds what to undo.
    let saved = held
        .save(ctx)
        .map_err(|e| rollback(&nl, d, ctx, &held, false, None, e))?;
    if !add(p, &nl, &plan, &held, &saved, ctx)? {
        return Ok(());
    }
    let fail = |held: &Held, e: OcfError| rollback(&nl, d, ctx, held, true, Some(&saved), e);
    held.marked = read_mark(&nl, d, &plan);
    if !link.admin_up {
        if let Err(e) = nl.set_up(d, link.index) {
            let e = OcfError::generic(format!("cannot bring {} up: {e}", link.name));
            return Err(fail(&held, e));
        }
    }
    let settled = settle_dad(p, &nl, d, &plan).map_err(|e| fail(&held, e))?;
    if settled && !announce::pointless(link) {
        held.sender = announce(p, link, ip, ctx);
    }
    held.save(ctx).map(drop)
}

/// The address `plan` wants, when it is already on the chosen interface and ours (with
/// this instance's record of it, if any). Without rustha's mark (and not recorded by this
/// instance on a kernel that cannot keep the mark) it is the node's own address: 2, a
/// problem of this node (another node may not have it).
pub fn already_there<'a>(
    ctx: &Ctx,
    plan: &Plan,
    here: &'a [Addr],
) -> Result<Option<(&'a Addr, Option<Held>)>, OcfError> {
    let (ip, link) = (plan.ip(), plan.link());
    let Some(a) = find_addr(here, link.index, ip) else {
        return Ok(None);
    };
    let prev =
        Held::recorded(ctx).filter(|h| h.ip == ip && h.ifname == link.name && h.prefix == a.prefix);
    if !(is_ours(a) || prev.as_ref().is_some_and(|h| h.owns(a))) {
        return Err(OcfError::local_config(format!(
            "{ip}/{} is already on {} and was not added by rustha (it lacks rustha's mark, \
             address protocol {MARK}): it is this node's own address, which a stop would take \
             away; remove it from the node's network configuration or manage another address",
            a.prefix, link.name
        )));
    }
    if a.prefix != plan.prefix() {
        return Err(OcfError::generic(format!(
            "{ip} is already on {} with prefix /{}, not /{}",
            link.name,
            a.prefix,
            plan.prefix()
        )));
    }
    Ok(Some((a, prev)))
}

/// The address is there already (added by rustha): keep that start's record (its
/// announcer and address label), or record it now.
fn keep(
    p: &IpAddr2Params,
    plan: &Plan,
    a: &Addr,
    prev: Option<Held>,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    tracing::info!(
        "{}/{} is already on {} (added by rustha)",
        plan.ip(),
        a.prefix,
        plan.link().name
    );
    if prev.is_some() {
        return Ok(());
    }
    let mut h = Held::planned(p, plan);
    h.marked = Some(is_ours(a));
    h.save(ctx).map(drop)
}

/// This instance's record of another address (a start with other parameters, e.g. by
/// hand): while that one is held, this start would orphan it (stop acts on the record,
/// which this start overwrites).
fn refuse_other_held(
    p: &IpAddr2Params,
    plan: &Plan,
    nl: &Netlink,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    let (ip, prefix, link) = (plan.ip(), plan.prefix(), plan.link());
    let Some(h) =
        Held::recorded(ctx).filter(|h| (h.ip, h.prefix, &h.ifname) != (ip, prefix, &link.name))
    else {
        return Ok(());
    };
    let other_netns = h.netns != p.network_namespace;
    if other_netns || holds(nl, &ctx.deadline, &h)? {
        return Err(OcfError::generic(format!(
            "this resource already holds {}/{} on {}{} (started with other parameters); stop \
             it before starting it with {ip}/{prefix} on {}",
            h.ip,
            h.prefix,
            h.ifname,
            h.netns
                .as_deref()
                .map(|n| format!(" in network namespace {n}"))
                .unwrap_or_default(),
            link.name
        )));
    }
    Ok(())
}

/// Whether the recorded address is on its interface, and ours (in the current netns).
fn holds(nl: &Netlink, d: &Deadline, h: &Held) -> Result<bool, OcfError> {
    let Some(link) = nl.link_by_name(d, &h.ifname)? else {
        return Ok(false);
    };
    Ok(find_addr(&nl.addrs(d, h.ip.is_ipv6())?, link.index, h.ip)
        .is_some_and(|a| a.prefix == h.prefix && h.owns(a)))
}

/// run_arping: refuse an IPv4 address another host on the segment answers for.
fn probe_collision(p: &IpAddr2Params, plan: &Plan, d: &Deadline) -> Result<(), OcfError> {
    let (ip, link) = (plan.ip(), plan.link());
    if !p.run_arping || ip.is_ipv6() || announce::pointless(link) {
        return Ok(());
    }
    let probe = announce_for(p, link, ip, 2);
    let wait = d.remaining().mul_f32(0.25).min(Duration::from_secs(2));
    match announce::ipv4_in_use(&probe, wait)? {
        Some(mac) => Err(OcfError::generic(format!(
            "IPv4 address collision: {ip} is in use by {}",
            netlink::mac_string(&mac)
        ))),
        None => Ok(()),
    }
}

/// Before the address is added: take the LVS real server's loopback /32 away
/// (lvs_support) and add the IPv6 address label; both noted in `held` for stop.
fn prepare(
    p: &IpAddr2Params,
    nl: &Netlink,
    d: &Deadline,
    here: &[Addr],
    held: &mut Held,
) -> Result<(), OcfError> {
    let ip = held.ip;
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
    if ip.is_ipv6() && p.lvs_ipv6_addrlabel {
        match nl.addrlabel(d, true, ip, p.lvs_ipv6_addrlabel_value) {
            Ok(()) => held.addrlabel = Some(p.lvs_ipv6_addrlabel_value),
            Err(e) if netlink::errno(&e) == libc::EEXIST => {}
            Err(e) => tracing::warn!("cannot add an address label for {ip}: {e}"),
        }
    }
    Ok(())
}

/// Add the address with rustha's mark. `Ok(false)`: another start of this resource
/// added it meanwhile (nothing more to do). On failure, what this start did is undone.
fn add(
    p: &IpAddr2Params,
    nl: &Netlink,
    plan: &Plan,
    held: &Held,
    saved: &Record,
    ctx: &Ctx,
) -> Result<bool, OcfError> {
    let d = &ctx.deadline;
    let (ip, link) = (plan.ip(), plan.link());
    tracing::info!("adding {plan}");
    let Err(e) = nl.add_addr_marked(d, &plan.new_addr(p), Some(MARK)) else {
        return Ok(true);
    };
    // Not added by this call: whatever is there now is left alone.
    let why = format!("cannot add {ip}/{} to {}: {e}", plan.prefix(), link.name);
    if netlink::errno(&e) == libc::EEXIST {
        let now = nl.addrs(d, ip.is_ipv6())?;
        if find_addr(&now, link.index, ip).is_some_and(|a| is_ours(a) && a.prefix == plan.prefix())
        {
            tracing::info!("{why}: another start of this resource added it meanwhile");
            return Ok(false);
        }
    }
    let e = OcfError::generic(why);
    Err(rollback(nl, d, ctx, held, false, Some(saved), e))
}

/// Whether the kernel kept our mark on the address just added (`None`: not readable).
fn read_mark(nl: &Netlink, d: &Deadline, plan: &Plan) -> Option<bool> {
    let ip = plan.ip();
    let marked = match nl.addrs(d, ip.is_ipv6()) {
        Ok(a) => find_addr(&a, plan.link().index, ip).map(is_ours),
        Err(e) => {
            tracing::warn!("cannot read {ip} back: {e}");
            None
        }
    };
    if marked == Some(false) {
        tracing::warn!(
            "this kernel does not keep the address protocol (IFA_PROTO, Linux >= 6.3): \
             without its record, {ip} cannot be told from an address of the node's own"
        );
    }
    marked
}

/// IPv6 without nodad: wait for duplicate-address detection. `Ok(false)` when the address
/// is still tentative (then it is not announced).
fn settle_dad(
    p: &IpAddr2Params,
    nl: &Netlink,
    d: &Deadline,
    plan: &Plan,
) -> Result<bool, OcfError> {
    let ip = plan.ip();
    if !ip.is_ipv6() || p.nodad {
        return Ok(true);
    }
    let done = wait_dad(nl, &d.portion(2, 3), plan.link().index, ip)?;
    if !done {
        tracing::warn!(
            "{ip} is still tentative (duplicate-address detection has not finished); \
             no neighbour advertisements sent"
        );
    }
    Ok(done)
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

fn announce_for(p: &IpAddr2Params, link: &Link, ip: IpAddr, count: u32) -> Announce {
    Announce::on(link, ip, count, p.arp_interval, params::arp_reply(p))
}

/// Announce the new address: from the background announcer (its identity, for stop) or
/// here and now. A failure to announce does not fail the start.
fn announce(p: &IpAddr2Params, link: &Link, ip: IpAddr, ctx: &Ctx) -> Option<Identity> {
    let d = &ctx.deadline;
    let a = announce_for(p, link, ip, p.arp_count);
    if p.arp_bg.unwrap_or(ip.is_ipv4()) {
        let spawn = Spawn::helper(marker(&ctx.instance), a.to_args());
        return match daemon::spawn_transient(&spawn, d) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("background announcer: {e}");
                None
            }
        };
    }
    match announce::Sender::open(&a) {
        Ok(s) => {
            let n = s.send_all(&a, d);
            tracing::info!("sent {n} announcements for {ip} on {}", link.name);
        }
        Err(e) => tracing::warn!("announcements for {ip} not sent: {e}"),
    }
    None
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
