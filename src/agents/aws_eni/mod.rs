//! `aws-eni`: move an Elastic Network Interface (and so its private IPs) to this EC2
//! instance.
//!
//! start: instance id from IMDSv2; describe the ENI; detach it from another instance
//! (force only if asked) and poll until it is `available`; attach it here at
//! `device_index` and poll until `attached`; wait until the OS shows an interface with
//! the ENI's MAC and the address is configured (configuring it if asked); record MAC, IP
//! and prefix. Polls at most 250 ms apart inside the operation's deadline;
//! no fixed sleeps, no SDK waiters (their first delay is 20 s).
//!
//! monitor (depth 0) is local only: the recorded MAC's interface holds the address. Depth
//! 10 also asks EC2 that the attachment is ours. stop detaches only from *this* instance.
//!
//! Layout: `ec2` the operations asked of EC2 and IMDS (a trait) and the polls over them,
//! `sdk` their real implementation, `start` and `stop` the actions, `values` the
//! parameters' value types.

mod ec2;
#[cfg(test)]
mod fake;
mod sdk;
mod start;
mod stop;
#[cfg(test)]
mod tests;
mod values;

use crate::netlink::{Link, Netlink};
use crate::state::{Record, StateFile};
use ec2::{ApiCode, Ec2};
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Deadline, OcfError, ParamSpec, Status};
use sdk::Api;
use std::net::IpAddr;
pub use values::{AccessKeyId, EniId, HttpUrl, PrivateIpv4, ProfileName, RegionName, SecretKey};

ocf::choice! {
    /// Where the API credentials come from.
    pub enum AuthType { Role = "role", Key = "key", Profile = "profile" }
}

ocf::params! {
    pub struct AwsEniParams {
        eni_id: EniId => ParamSpec::new(
            "ENI id",
            "The Elastic Network Interface to move to the node that runs the resource: eni- \
             and 8 or 17 lowercase hex digits, e.g. eni-0123456789abcdef0. It carries the \
             virtual IP(s), its MAC and security groups.",
        ).unique().example("eni-0123456789abcdef0"),
        ip: Option<PrivateIpv4> => ParamSpec::new(
            "Private IP",
            "The private IPv4 address of the ENI that must be live on this node (a unicast \
             IPv4 address; IPv6 is not supported). Unset: the ENI's primary private IP.",
        ),
        device_index: u32 => ParamSpec::new(
            "Device index",
            "The device index at which the ENI is attached (0 is the instance's primary \
             interface and cannot be used).",
        ).default("1"),
        region: Option<RegionName> => ParamSpec::new(
            "Region",
            "The AWS region, e.g. eu-west-1 or us-gov-west-1. Unset: the instance's region \
             from IMDS.",
        ),
        auth_type: AuthType => ParamSpec::new(
            "Credentials",
            "role: the instance profile's credentials from IMDS (recommended). profile: a \
             profile of root's ~/.aws/config and ~/.aws/credentials (see profile). key: the \
             access_key_id / secret_access_key parameters.",
        ).default("role"),
        profile: ProfileName => ParamSpec::new(
            "Profile",
            "The profile used with auth_type=profile (1 to 64 of A-Z a-z 0-9 _ . @ + -). A \
             missing profile is an error, never a silent fallback to other credentials.",
        ).default("default"),
        access_key_id: Option<AccessKeyId> => ParamSpec::new(
            "Access key id",
            "With auth_type=key: the access key id (16 to 128 of A-Z and 0-9).",
        ),
        secret_access_key: Option<SecretKey> => ParamSpec::new(
            "Secret access key",
            "With auth_type=key: the secret access key (printable ASCII, no whitespace). \
             Never logged.",
        ).secret(),
        force_detach: bool => ParamSpec::new(
            "Force detach",
            "Detach the ENI from another instance with Force (for a peer that is dead and not \
             yet fenced). AWS calls this a last resort: it can leave the device index unusable \
             on that instance until it is stopped and started.",
        ).default("false"),
        endpoint_url: Option<HttpUrl> => ParamSpec::new(
            "EC2 endpoint",
            "EC2 API endpoint URL (http:// or https://, a host, an optional port and path), \
             e.g. a VPC interface endpoint. Unset: the region's public endpoint.",
        ),
        imds_endpoint: Option<HttpUrl> => ParamSpec::new(
            "IMDS endpoint",
            "Instance metadata endpoint URL (as endpoint_url). Unset: http://169.254.169.254.",
        ),
        configure_address: bool => ParamSpec::new(
            "Configure the address",
            "When the OS has not configured the ENI's address on the new interface (no DHCP \
             hotplug handling), add it (with the subnet's prefix) and bring the link up.",
        ).default("true"),
    }
}

pub struct AwsEni;

const NAME: &str = "aws-eni";

fn mac_bytes(s: &str) -> Option<Vec<u8>> {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).ok())
        .collect::<Option<_>>()?;
    (v.len() == 6).then_some(v)
}

/// The local interface with `mac`, if the OS shows one.
fn link_with_mac(nl: &Netlink, d: &Deadline, mac: &[u8]) -> Result<Option<Link>, OcfError> {
    Ok(nl.links(d)?.into_iter().find(|l| l.hw_addr == mac))
}

fn has_ip(nl: &Netlink, d: &Deadline, index: u32, ip: IpAddr) -> Result<bool, OcfError> {
    Ok(nl
        .addrs(d, ip.is_ipv6())?
        .iter()
        .any(|a| a.index == index && a.ip == ip))
}

struct Held {
    mac: Vec<u8>,
    ip: IpAddr,
    prefix: u8,
    /// The start that wrote the record saw the ENI attached here and its interface
    /// (`attached=1`, written last). Then a MAC that is no longer here means the ENI left
    /// this node; before that, an attach may still be in flight.
    attached: bool,
}

impl Held {
    fn from_record(r: &Record) -> Option<Held> {
        Some(Held {
            mac: mac_bytes(r.get("mac")?)?,
            ip: r.parsed("ip")?,
            prefix: r.parsed("prefix")?,
            attached: r.get("attached") == Some("1"),
        })
    }
}

/// What start records before it changes anything (a stop after a failed or timed-out
/// start then knows the MAC to look for, even without the API), and again at the end.
fn record(
    p: &AwsEniParams,
    t: &start::Target,
    prefix: u8,
    configured: bool,
    attached: bool,
) -> Record {
    let mut r = Record::default();
    r.set("eni", &p.eni_id)
        .set("mac", eni_mac(&t.mac))
        .set("ip", t.ip)
        .set("prefix", prefix)
        .set("instance", &t.me)
        .set("configured", u8::from(configured))
        .set("attached", u8::from(attached));
    // The non-secret parameters, for a stop whose parameters no longer parse.
    r.set("param.eni_id", &p.eni_id)
        .set("param.auth_type", p.auth_type.as_str())
        .set("param.profile", &p.profile);
    for (k, v) in [
        ("region", p.region.as_ref().map(|v| v.to_string())),
        (
            "endpoint_url",
            p.endpoint_url.as_ref().map(|v| v.to_string()),
        ),
        (
            "imds_endpoint",
            p.imds_endpoint.as_ref().map(|v| v.to_string()),
        ),
        (
            "access_key_id",
            p.access_key_id.as_ref().map(|v| v.to_string()),
        ),
    ] {
        if let Some(v) = v {
            r.set(&format!("param.{k}"), v);
        }
    }
    r
}

/// What validate hands start: the device index, checked to fit EC2's range.
pub struct Slot {
    device_index: i32,
}

/// The checks that need two values at once (each was checked whole when parsed,
/// values.rs), before any network call; the device index as EC2 takes it.
fn device_index(p: &AwsEniParams) -> Result<i32, OcfError> {
    if p.device_index == 0 {
        return Err(OcfError::invalid_param(
            "device_index",
            "0 is the instance's primary interface",
        ));
    }
    let device_index = i32::try_from(p.device_index).map_err(|_| {
        OcfError::invalid_param(
            "device_index",
            format!("{} is out of EC2's range", p.device_index),
        )
    })?;
    if p.auth_type == AuthType::Key && (p.access_key_id.is_none() || p.secret_access_key.is_none())
    {
        return Err(OcfError::configured(
            "auth_type=key needs access_key_id and secret_access_key",
        ));
    }
    Ok(device_index)
}

impl Agent for AwsEni {
    type Params = AwsEniParams;
    type Plan = Slot;
    const INFO: AgentInfo = AgentInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Moves an AWS Elastic Network Interface to this instance",
        longdesc: "Moves an Elastic Network Interface, and with it its private IP addresses, \
            MAC and security groups, to the EC2 instance that runs the resource: detach from \
            the other instance, wait until available, attach here, wait until attached and \
            until the OS shows the interface with its address (configured if the OS does \
            not). Stop detaches it only when it is attached to this instance. The monitor \
            is local (interface and address present, no API call); depth 10 also asks EC2. \
            validate-all at depth 10 proves the IAM permissions with DryRun calls.",
        actions: &[
            ActionSpec::new(Action::Start, 60),
            ActionSpec::new(Action::Stop, 60),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 20),
        ],
    };

    fn check_params(p: &AwsEniParams, _ctx: &Ctx) -> Result<(), OcfError> {
        device_index(p).map(drop)
    }

    fn validate(p: &AwsEniParams, ctx: &Ctx) -> Result<Slot, OcfError> {
        let device_index = device_index(p)?;
        if ctx.check_level() >= 10 {
            let d = &ctx.deadline;
            permitted(&Api::new(p, d)?, p, device_index, d)?;
        }
        Ok(Slot { device_index })
    }

    fn start(p: &AwsEniParams, slot: Slot, ctx: &Ctx) -> Result<(), OcfError> {
        let d = &ctx.deadline;
        let api = Api::new(p, d)?;
        let (t, eni) = start::target(&api, p, d)?;
        let state = StateFile::for_ctx(ctx);
        let save = |prefix: u8, configured: bool, attached: bool| {
            state.save(&record(p, &t, prefix, configured, attached))
        };
        save(0, false, false)?;
        let (_, prefix) = start::move_here(&api, p, slot.device_index, d, &t.me, eni)?;
        start::bring_up(p, d, &t, prefix, save)
    }

    fn stop(p: Option<&AwsEniParams>, ctx: &Ctx) -> Result<(), OcfError> {
        stop::stop(p, ctx)
    }

    fn monitor(p: Option<&AwsEniParams>, ctx: &Ctx) -> Result<Status, OcfError> {
        let d = &ctx.deadline;
        let rec = match StateFile::for_ctx(ctx).load() {
            Ok(r) => r,
            Err(e) => return monitor_without_record(p, ctx, e),
        };
        // No record since boot: not started here (no API or IMDS call).
        let Some(h) = rec.as_ref().and_then(Held::from_record) else {
            return Ok(Status::NotRunning);
        };
        let nl = Netlink::open()?;
        let Some(link) = link_with_mac(&nl, d, &h.mac)? else {
            tracing::info!("no interface with MAC {} here", eni_mac(&h.mac));
            return Ok(Status::NotRunning);
        };
        if !has_ip(&nl, d, link.index, h.ip)? {
            tracing::info!("{}/{} is not on {}", h.ip, h.prefix, link.name);
            return Ok(Status::NotRunning);
        }
        if ctx.check_level() >= 10 {
            if let Some(p) = p {
                ours_in_ec2(&Api::new(p, d)?, p, d)?;
            }
        }
        Ok(Status::Success)
    }
}

/// validate-all at depth 10: the IAM policy allows what start and stop will do, proven
/// by a describe and two DryRun calls. Any refusal is a configuration error (6).
fn permitted(
    api: &dyn Ec2,
    p: &AwsEniParams,
    device_index: i32,
    d: &Deadline,
) -> Result<(), OcfError> {
    let id = p.eni_id.as_str();
    let me = api.instance_id(d)?;
    let eni = ec2::describe(api, d, id).map_err(|e| match e.code {
        ApiCode::Unauthorized => OcfError::configured(format!(
            "DescribeNetworkInterfaces is not permitted: {}",
            e.error.reason
        )),
        _ => e.error,
    })?;
    let att = eni
        .attachment
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_else(|| "eni-attach-00000000".into());
    let checks = [
        (
            "AttachNetworkInterface",
            api.attach(d, id, &me, device_index, true),
        ),
        ("DetachNetworkInterface", api.detach(d, &att, false, true)),
    ];
    for (action, r) in checks {
        r.map_err(|e| {
            OcfError::configured(format!("{action} is not permitted: {}", e.error.reason))
        })?;
    }
    Ok(())
}

/// monitor at depth 10: EC2 agrees that the ENI is attached to this instance.
fn ours_in_ec2(api: &dyn Ec2, p: &AwsEniParams, d: &Deadline) -> Result<(), OcfError> {
    let me = api.instance_id(d)?;
    let eni = ec2::describe(api, d, p.eni_id.as_str())?;
    if !eni.attached_to(&me) {
        return Err(OcfError::generic(format!(
            "the interface is here, but EC2 says {} is {:?}",
            p.eni_id, eni.attachment
        )));
    }
    Ok(())
}

/// The state directory is unusable: the ENI's identity (its MAC) comes from EC2, and the
/// answer from whether an interface with that MAC, holding the address, is here.
fn monitor_without_record(
    p: Option<&AwsEniParams>,
    ctx: &Ctx,
    why: OcfError,
) -> Result<Status, OcfError> {
    let d = &ctx.deadline;
    tracing::warn!("{}; finding the ENI without the record", why.reason);
    let lenient = match p {
        Some(_) => None,
        None => ocf::params::lenient::<AwsEniParams>(&ctx.env),
    };
    let Some(p) = p.or(lenient.as_ref()) else {
        return Err(OcfError::generic(format!(
            "{}, and the parameters name no valid ENI: cannot tell whether it is attached here",
            why.reason
        )));
    };
    let api = Api::new(p, d)?;
    let eni = ec2::describe(&api, d, p.eni_id.as_str())?;
    let Some(mac) = mac_bytes(&eni.mac) else {
        return Ok(Status::NotRunning);
    };
    let nl = Netlink::open()?;
    let Some(link) = link_with_mac(&nl, d, &mac)? else {
        tracing::info!("no interface with MAC {} here", eni.mac);
        return Ok(Status::NotRunning);
    };
    let ip =
        p.ip.map(|i| IpAddr::V4(i.0))
            .or_else(|| eni.primary_ip.parse().ok());
    match ip {
        Some(ip) if has_ip(&nl, d, link.index, ip)? => Ok(Status::Success),
        _ => {
            tracing::info!("{} is here as {} without its address", p.eni_id, link.name);
            Ok(Status::NotRunning)
        }
    }
}

/// A record left behind after a verified stop is a warning, never a failed stop (the
/// next probe finds the MAC absent and says 7).
fn forget(state: &StateFile) {
    if let Err(e) = state.remove() {
        tracing::warn!("{}; the ENI is verified not attached here", e.reason);
    }
}

fn eni_mac(b: &[u8]) -> String {
    crate::netlink::mac_string(b)
}
