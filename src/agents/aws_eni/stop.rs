//! stop: decide from local evidence (the record, the ENI's MAC on an interface here) first,
//! and detach through EC2 only what is attached to *this* instance ([`detach_from_here`]).

use super::ec2::{self, ApiCode, Ec2};
use super::sdk::Api;
use super::start::{OS_POLL_FIRST, OS_POLL_MAX};
use super::{eni_mac, forget, link_with_mac, mac_bytes, AwsEniParams, Held};
use crate::netlink::Netlink;
use crate::state::StateFile;
use ocf::{Ctx, Deadline, OcfError};

pub fn stop(p: Option<&AwsEniParams>, ctx: &Ctx) -> Result<(), OcfError> {
    let d = &ctx.deadline;
    let state = StateFile::for_ctx(ctx);
    // Local evidence first. Start writes the record before it changes anything, so no
    // record means this node has not started the ENI since boot: nothing of ours to
    // stop, and no API or IMDS call. (If the ENI is attached here anyway, it survived a
    // reboot: the start on another node detaches it from us.)
    let rec = match state.load() {
        Ok(None) => {
            tracing::info!("no record of a start on this node since boot: nothing of ours to stop");
            return Ok(());
        }
        Ok(Some(r)) => Some(r),
        Err(e) => {
            tracing::warn!("{}; finding the ENI without the record", e.reason);
            None
        }
    };
    let held = rec.as_ref().and_then(Held::from_record);
    let nl = Netlink::open()?;
    let mac_here =
        |mac: &[u8]| -> Result<bool, OcfError> { Ok(link_with_mac(&nl, d, mac)?.is_some()) };
    let absent_here = |h: &Held| -> Result<bool, OcfError> { Ok(!mac_here(&h.mac)?) };
    // A start that completed saw the interface here; its MAC gone means the ENI left
    // this node (an interface with an ENI's MAC exists only while EC2 attaches it here).
    if let Some(h) = held.as_ref().filter(|h| h.attached) {
        if absent_here(h)? {
            tracing::info!(
                "no interface with MAC {} here: the ENI is no longer attached to this node",
                eni_mac(&h.mac)
            );
            forget(&state);
            return Ok(());
        }
    }
    // Broken parameters: the valid ones still say where the API is and who we are.
    let lenient = match p {
        Some(_) => None,
        None => ocf::params::lenient_with::<AwsEniParams>(&ctx.env, |name| {
            rec.as_ref()
                .and_then(|r| r.get(&format!("param.{name}")))
                .map(str::to_string)
        }),
    };
    let Some(p) = p.or(lenient.as_ref()) else {
        // No usable parameters: only the record can prove anything.
        return by_the_record(&state, rec.is_some(), held.as_ref(), &absent_here);
    };
    match Api::new(p, d).and_then(|api| detach_from_here(&api, p, d, &mac_here)) {
        Ok(()) => {
            forget(&state);
            Ok(())
        }
        Err(e) => match &held {
            // The API is out of reach, but the ENI's interface is provably not here.
            Some(h) if absent_here(h)? => {
                tracing::warn!(
                    "{}; but no interface with MAC {} is here, so the ENI is not attached to this node",
                    e.reason,
                    eni_mac(&h.mac)
                );
                forget(&state);
                Ok(())
            }
            // The interface is here (or, without a usable record, nothing tells us
            // which one is ours): not verified stopped.
            _ => Err(e),
        },
    }
}

/// stop without usable parameters: only the record (`held`, when it names the ENI's
/// interface) can prove the ENI is not here.
fn by_the_record(
    state: &StateFile,
    recorded: bool,
    held: Option<&Held>,
    absent_here: &dyn Fn(&Held) -> Result<bool, OcfError>,
) -> Result<(), OcfError> {
    match (recorded, held) {
        (_, Some(h)) if absent_here(h)? => {
            forget(state);
            Ok(())
        }
        (_, Some(h)) => Err(OcfError::generic(format!(
            "the parameters are broken and the interface with MAC {} is still here",
            eni_mac(&h.mac)
        ))),
        (true, None) => {
            tracing::warn!("the record names no interface: nothing to stop");
            forget(state);
            Ok(())
        }
        (false, None) => Err(OcfError::generic(
            "the state directory is unusable and the parameters name no valid ENI: \
             cannot tell whether an ENI of this resource is attached here",
        )),
    }
}

/// The API side of stop: detach only if attached to *this* instance, which the ENI's MAC
/// being here (`mac_here`) proves as well as IMDS does (so stop works with IMDS down).
/// Ok means verified not attached here: an ENI that does not exist is not.
pub fn detach_from_here(
    api: &dyn Ec2,
    p: &AwsEniParams,
    d: &Deadline,
    mac_here: &dyn Fn(&[u8]) -> Result<bool, OcfError>,
) -> Result<(), OcfError> {
    let id = p.eni_id.as_str();
    let eni = match ec2::describe(api, d, id) {
        Ok(eni) => eni,
        Err(e) if e.code == ApiCode::NotFound => {
            tracing::warn!("{}; nothing to stop", e.error.reason);
            return Ok(());
        }
        Err(e) => return Err(e.error),
    };
    let mac = mac_bytes(&eni.mac);
    let local = match &mac {
        Some(m) => mac_here(m)?,
        None => false,
    };
    let me = match api.instance_id(d) {
        Ok(me) => Some(me),
        Err(e) => {
            tracing::warn!("{}; deciding from the local interfaces", e.reason);
            None
        }
    };
    let Some(att) = eni.attachment.clone() else {
        tracing::info!("{id} is not attached anywhere");
        return Ok(());
    };
    let inst = att.instance;
    let ours = match &me {
        Some(me) => &inst == me,
        None => local,
    };
    if !ours {
        tracing::info!("{id} is attached to {inst}, not here: left alone");
        return Ok(());
    }
    // An attach still in flight (a start that timed out) cannot be detached yet on EC2:
    // let it finish first.
    let (att, status) = if att.status == "attaching" {
        let e = ec2::wait_for(api, d, id, "attach in flight", |e| {
            e.attachment
                .as_ref()
                .is_none_or(|a| a.status != "attaching")
        })?;
        match e.attachment {
            Some(a) if a.instance == inst => (a.id, a.status),
            _ => return Ok(()),
        }
    } else {
        (att.id, att.status)
    };
    if status != "detaching" {
        tracing::info!("detaching {id} from {inst}");
        ec2::detach(api, d, &att, false)?;
    }
    ec2::wait_for(api, d, id, "detach", |e| {
        e.attachment.as_ref().is_none_or(|a| a.instance != inst)
    })?;
    // And gone from the OS.
    if let Some(mac) = mac {
        let gone = d.poll_from(OS_POLL_FIRST, OS_POLL_MAX, || match mac_here(&mac) {
            Ok(true) => None,
            Ok(false) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        });
        gone.unwrap_or_else(|| {
            Err(OcfError::generic(format!(
                "{id} is detached in EC2 but its interface is still here"
            )))
        })?;
    }
    tracing::info!("{id} detached from {inst}");
    Ok(())
}
