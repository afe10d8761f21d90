//! start: find where the ENI is ([`target`]), move it here ([`move_here`], EC2 only), then
//! wait for the OS to show it and its address ([`bring_up`]).

use super::ec2::{self, Ec2, Eni};
use super::{eni_mac, has_ip, link_with_mac, mac_bytes, AwsEniParams};
use crate::netlink::{Netlink, NewAddr};
use ocf::{Deadline, OcfError};
use std::net::IpAddr;
use std::time::Duration;

/// What the ENI must become here, known before anything changes.
#[derive(Debug)]
pub struct Target {
    pub me: String,
    pub ip: IpAddr,
    pub mac: Vec<u8>,
}

/// Who we are, what EC2 says about the ENI, and whether it can come here at all: the
/// address asked for is one of its own, and it is in our availability zone.
pub fn target(api: &dyn Ec2, p: &AwsEniParams, d: &Deadline) -> Result<(Target, Eni), OcfError> {
    let me = api.instance_id(d)?;
    let eni = ec2::describe(api, d, p.eni_id.as_str())?;
    let ip: IpAddr = match p.ip.map(|i| IpAddr::V4(i.0)) {
        Some(ip) => {
            if !eni.ips.contains(&ip.to_string()) {
                return Err(OcfError::configured(format!(
                    "{ip} is not a private IP of {} ({})",
                    p.eni_id,
                    eni.ips.join(", ")
                )));
            }
            ip
        }
        None => eni
            .primary_ip
            .parse()
            .map_err(|_| OcfError::generic(format!("{} has no primary private IP", p.eni_id)))?,
    };
    // From IMDS, not DescribeInstances: one API round trip less before the move.
    let my_az = api.availability_zone(d)?;
    if !eni.az.is_empty() && !my_az.is_empty() && eni.az != my_az {
        return Err(OcfError::configured(format!(
            "{} is in {} but this instance ({me}) is in {my_az}: an ENI cannot leave its availability zone",
            p.eni_id, eni.az
        )));
    }
    let mac = mac_bytes(&eni.mac)
        .ok_or_else(|| OcfError::generic(format!("{} has no MAC address", p.eni_id)))?;
    Ok((Target { me, ip, mac }, eni))
}

/// Move the ENI to `me` at `device_index`: detach it from another instance (force only if
/// asked), wait until it is free, attach it here and wait until EC2 says attached. Returns
/// the ENI as last described and its subnet's prefix length.
pub fn move_here(
    api: &dyn Ec2,
    p: &AwsEniParams,
    device_index: i32,
    d: &Deadline,
    me: &str,
    eni: Eni,
) -> Result<(Eni, u8), OcfError> {
    let id = p.eni_id.as_str();
    if eni.attached_to(me) {
        tracing::info!("{id} is already attached to {me}");
        let prefix = api.subnet_prefix(d, &eni.subnet)?;
        return Ok((eni, prefix));
    }
    if let Some(other) = eni.elsewhere(me).filter(|a| a.status != "detaching") {
        tracing::info!(
            "detaching {id} from {}{}",
            other.instance,
            if p.force_detach { " (force)" } else { "" }
        );
        ec2::detach(api, d, &other.id, p.force_detach)?;
    }
    // Asked while EC2 detaches: it costs no time there.
    let prefix = api.subnet_prefix(d, &eni.subnet)?;
    if eni.elsewhere(me).is_some() {
        ec2::wait_for(api, d, id, "detach", |e| {
            e.attachment.is_none() || e.status == "available"
        })?;
    }
    // An attachment to us that is not `attached` yet (an attach in flight) needs no second
    // attach: only the wait.
    if eni.attachment.is_none() || eni.elsewhere(me).is_some() {
        tracing::info!("attaching {id} to {me} at device index {}", p.device_index);
        api.attach(d, id, me, device_index, false)?;
    }
    let eni = ec2::wait_for(api, d, id, "attach", |e| e.attached_to(me))?;
    Ok((eni, prefix))
}

/// Polls of the OS (the interface appearing or going): from 50 ms, at most every 500 ms.
pub const OS_POLL_FIRST: Duration = Duration::from_millis(50);
pub const OS_POLL_MAX: Duration = Duration::from_millis(500);

/// The OS side: the interface with the ENI's MAC, and the address on it (added, with the
/// link brought up, when `configure_address`). `save(prefix, configured, attached)`
/// records the result.
pub fn bring_up(
    p: &AwsEniParams,
    d: &Deadline,
    t: &Target,
    prefix: u8,
    save: impl Fn(u8, bool, bool) -> Result<(), OcfError>,
) -> Result<(), OcfError> {
    let ip = t.ip;
    let nl = Netlink::open()?;
    let link = d
        .poll_from(OS_POLL_FIRST, OS_POLL_MAX, || {
            link_with_mac(&nl, d, &t.mac).transpose()
        })
        .transpose()?
        .ok_or_else(|| {
            OcfError::generic(format!(
                "{} is attached, but no interface with MAC {} appeared before the timeout",
                p.eni_id,
                eni_mac(&t.mac)
            ))
        })?;
    let mut configured = false;
    if !has_ip(&nl, d, link.index, ip)? {
        if !p.configure_address {
            return Err(OcfError::generic(format!(
                "{ip} is not configured on {} and configure_address is false",
                link.name
            )));
        }
        let brd = match ip {
            IpAddr::V4(a) if prefix <= 30 => Some(crate::netlink::broadcast(a, prefix, true)),
            _ => None,
        };
        nl.add_addr(
            d,
            &NewAddr {
                broadcast: brd,
                ..NewAddr::new(link.index, ip, prefix)
            },
        )
        .map_err(|e| {
            OcfError::generic(format!("cannot add {ip}/{prefix} to {}: {e}", link.name))
        })?;
        configured = true;
        tracing::info!("configured {ip}/{prefix} on {}", link.name);
    }
    if !link.admin_up {
        nl.set_up(d, link.index)
            .map_err(|e| OcfError::generic(format!("cannot bring {} up: {e}", link.name)))?;
    }
    save(prefix, configured, true)?;
    tracing::info!(
        "{} attached to {}, {ip} live on {}",
        p.eni_id,
        t.me,
        link.name
    );
    Ok(())
}
