//! `azure-lb`: answer Azure Load Balancer health probes on a TCP port.
//!
//! Parameter-compatible with `ocf:heartbeat:azure-lb` (`port`, `listen`, `nc`). The
//! listener is our own small responder (a supervised helper), which accepts probes as
//! fast as they arrive and closes each at once, instead of `nc -l -k` (one connection
//! at a time) or socat (a fork per probe).

pub mod responder;

use crate::daemon::{self, Identity, Liveness, Spawn};
use crate::state::{Record, StateFile};
use ocf::params::Port;
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, OcfError, ParamSpec, Status};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

ocf::choice! {
    /// Which address family the responder listens on.
    pub enum Listen { Default = "default", Ipv4Only = "ipv4only", Ipv6Enable = "ipv6enable" }
}

ocf::params! {
    pub struct AzureLbParams {
        port: Port => ParamSpec::new(
            "Probe port",
            "TCP port on which the Azure Load Balancer health probe connects (the probe's port, \
             e.g. 61000 or 62500). A completed TCP handshake tells the load balancer that this \
             node holds the resource.",
        ).default("61000").unique(),
        listen: Listen => ParamSpec::new(
            "Address family",
            "default: both IPv4 and IPv6 where the kernel has IPv6 (one dual-stack socket), \
             else IPv4 only. ipv4only: IPv4 only (0.0.0.0). ipv6enable: IPv6 and IPv4 \
             (dual-stack); fails to start when IPv6 is disabled on the node.",
        ).default("default"),
        bind_address: Option<IpAddr> => ParamSpec::new(
            "Bind address",
            "Listen only on this local address instead of every address, e.g. the node's own \
             address in the back-end pool, so that nothing else on the node answers for it. \
             A unicast address: a multicast or broadcast address, an IPv4-mapped IPv6 address \
             (give the IPv4 address) or an IPv6 link-local one (it needs an interface this \
             parameter cannot name) is refused. 0.0.0.0 means every IPv4 address and :: every \
             IPv6 address (IPv6 only). Unset: every address of the family chosen by listen.",
        ),
        backlog: u32 => ParamSpec::new(
            "Connection cap",
            "The most completed connections that may wait to be accepted (listen backlog; the \
             kernel caps it at net.core.somaxconn). The responder holds no connection open: \
             each probe is accepted and closed at once, so this bounds what a flood can queue. \
             1 to 65535.",
        ).default("128"),
        nc: Option<String> => ParamSpec::new(
            "Listener binary (ignored)",
            "Accepted for compatibility with ocf:heartbeat:azure-lb, where it names the nc or \
             socat binary used as the listener.",
        ).no_effect("rustha answers probes with its own responder; the value is ignored."),
    }
}

pub struct AzureLb;

const NAME: &str = "azure-lb";

/// What an instance's responder shows as argv[0], before the instance name: how strays
/// are found when a record is lost (tests and the drill look for it too).
pub const RESPONDER_MARKER: &str = "rustha azure-lb responder";

/// Marker argv[0] of an instance's responder.
pub fn marker(instance: &str) -> String {
    format!("{RESPONDER_MARKER} {instance}")
}

fn ipv6_available() -> bool {
    let disabled = std::fs::read_to_string("/sys/module/ipv6/parameters/disable")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    !disabled && std::path::Path::new("/proc/net/if_inet6").exists()
}

/// The address to bind and whether the socket is IPv6-only.
fn bind_target(p: &AzureLbParams, ipv6: bool) -> (IpAddr, bool) {
    match (p.bind_address, p.listen) {
        (Some(a), _) => (a, a.is_ipv6()),
        (None, Listen::Ipv4Only) => (Ipv4Addr::UNSPECIFIED.into(), false),
        (None, Listen::Ipv6Enable) => (Ipv6Addr::UNSPECIFIED.into(), false),
        (None, Listen::Default) if ipv6 => (Ipv6Addr::UNSPECIFIED.into(), false),
        (None, Listen::Default) => (Ipv4Addr::UNSPECIFIED.into(), false),
    }
}

/// Why `a` cannot be the local address probes connect to (`None`: it can). Linux lets a
/// TCP socket bind a multicast or broadcast address, but no connection ever reaches it, so
/// such a start would succeed and the load balancer would mark the node down.
/// The unspecified addresses are allowed: every address of their family.
fn not_bindable(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(v4) if v4.is_multicast() => {
            Some("is a multicast address; probes connect to a unicast address")
        }
        IpAddr::V4(v4) if v4.is_broadcast() => {
            Some("is the broadcast address; probes connect to a unicast address")
        }
        IpAddr::V6(v6) if v6.is_multicast() => {
            Some("is a multicast address; probes connect to a unicast address")
        }
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Some(
            "is an IPv4-mapped IPv6 address, which an IPv6 socket cannot bind: give the IPv4 \
             address",
        ),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(
            "is an IPv6 link-local address, which needs an interface (a scope) that \
             bind_address cannot name",
        ),
        _ => None,
    }
}

/// How this instance's responder is known without its record: our executable, the marker
/// argv[0] naming agent and instance, the responder's entry argument.
fn identity_spec(instance: &str) -> Spawn {
    Spawn::helper(marker(instance), vec![responder::ENTRY.to_string()])
}

/// Responders of this instance running in our network namespace, found by identity
/// (when the record is lost, unreadable, or names another process), each with the address
/// its own arguments say it listens on.
fn find_ours(ctx: &Ctx) -> Vec<(Identity, Option<SocketAddr>)> {
    daemon::find_running(&identity_spec(&ctx.instance))
        .into_iter()
        .map(|id| {
            let addr = daemon::cmdline(id.pid).and_then(|a| a.get(2)?.parse().ok());
            (id, addr)
        })
        .collect()
}

/// The record; when it cannot be read (the state directory is unusable) a warning and
/// `None`: stop and monitor then decide from the processes themselves.
fn load_or_warn(state: &StateFile) -> Option<Record> {
    match state.load() {
        Ok(rec) => rec,
        Err(e) => {
            tracing::warn!("{e}; looking for this instance's responder by identity");
            None
        }
    }
}

/// Stop any responder of this instance that has no record (record lost or corrupt).
fn stop_strays(ctx: &Ctx) -> Result<(), OcfError> {
    for (id, _) in find_ours(ctx) {
        tracing::warn!("stopping responder pid {} that had no state record", id.pid);
        daemon::terminate(&id, &ctx.deadline)?;
    }
    Ok(())
}

/// A live responder: it must itself hold the listening socket (and answer, at depth 10).
fn check_responder(id: &Identity, addr: SocketAddr, ctx: &Ctx) -> Result<Status, OcfError> {
    if crate::procfs::listening_on(id.pid, addr.port()).is_none() {
        return Err(OcfError::generic(format!(
            "responder pid {} runs but holds no listening socket on port {}",
            id.pid,
            addr.port()
        )));
    }
    if ctx.check_level() >= 10 {
        let target = probe_target(addr);
        let budget = ctx.deadline.remaining().min(Duration::from_secs(2));
        TcpStream::connect_timeout(&target, budget.max(Duration::from_millis(1)))
            .map_err(|e| OcfError::generic(format!("probe connection to {target} failed: {e}")))?;
    }
    Ok(Status::Success)
}

/// Where a depth-10 monitor connects: the bound address, or loopback for a wildcard.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// What validate hands start: the socket the responder binds.
pub struct Bind {
    addr: SocketAddr,
    v6only: bool,
}

impl Agent for AzureLb {
    type Params = AzureLbParams;
    type Plan = Bind;
    const HELPERS: &'static [ocf::Helper] = &[ocf::Helper {
        entry: responder::ENTRY,
        main: responder::main,
    }];
    const INFO: AgentInfo = AgentInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Answers Azure Load Balancer health probes",
        longdesc: "Keeps a TCP listener open on the health-probe port of an Azure Load Balancer \
            so that the load balancer sends the floating IP's traffic to the node running this \
            resource (typically grouped with an IPaddr2 virtual IP). Drop-in replacement for \
            ocf:heartbeat:azure-lb: the same parameters, but the listener is rustha's own \
            responder, which answers probes concurrently and closes them at once, and the \
            monitor checks that the responder really holds a listening socket on the port.",
        actions: &[
            ActionSpec::new(Action::Start, 20),
            ActionSpec::new(Action::Stop, 20),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 20),
        ],
    };

    fn check_params(p: &AzureLbParams, _ctx: &Ctx) -> Result<(), OcfError> {
        if p.nc.is_some() {
            tracing::warn!("parameter nc is deprecated and ignored: rustha answers probes itself");
        }
        if !(1..=65535).contains(&p.backlog) {
            return Err(OcfError::invalid_param(
                "backlog",
                format!("{} is not within 1 to 65535", p.backlog),
            ));
        }
        if let Some(a) = p.bind_address {
            if let Some(why) = not_bindable(a) {
                return Err(OcfError::invalid_param(
                    "bind_address",
                    format!("{a} {why}"),
                ));
            }
        }
        match (p.bind_address, p.listen) {
            (Some(a @ IpAddr::V6(_)), Listen::Ipv4Only) => {
                return Err(OcfError::configured(format!(
                    "bind_address {a} is IPv6 but listen is ipv4only"
                )))
            }
            (Some(a @ IpAddr::V4(_)), Listen::Ipv6Enable) => {
                return Err(OcfError::configured(format!(
                    "bind_address {a} is IPv4 but listen is ipv6enable"
                )))
            }
            _ => {}
        }
        Ok(())
    }

    fn validate(p: &AzureLbParams, ctx: &Ctx) -> Result<Bind, OcfError> {
        Self::check_params(p, ctx)?;
        let ipv6 = ipv6_available();
        // Local environment: only when starting, or when asked for a deeper check.
        if ctx.action == Action::Start || ctx.check_level() >= 10 {
            let needs_v6 =
                p.listen == Listen::Ipv6Enable || p.bind_address.is_some_and(|a| a.is_ipv6());
            if needs_v6 && !ipv6 {
                return Err(OcfError::local_config(
                    "IPv6 is disabled on this node, but the configuration needs it",
                ));
            }
        }
        let (ip, v6only) = bind_target(p, ipv6);
        Ok(Bind {
            addr: SocketAddr::new(ip, p.port.0),
            v6only,
        })
    }

    fn start(p: &AzureLbParams, bind: Bind, ctx: &Ctx) -> Result<(), OcfError> {
        let state = StateFile::for_ctx(ctx);
        let Bind { addr: want, v6only } = bind;
        if let Some(rec) = state.load()? {
            if let Some(id) = Identity::read_from(&rec) {
                if id.is_alive() {
                    if rec.get("addr") == Some(want.to_string().as_str()) {
                        tracing::info!("responder pid {} already listens on {want}", id.pid);
                        return Ok(());
                    }
                    tracing::info!("responder pid {} has other settings; restarting it", id.pid);
                    daemon::terminate(&id, &ctx.deadline)?;
                }
            }
            state.remove()?;
        }
        stop_strays(ctx)?;
        let spawn = Spawn::helper(
            marker(&ctx.instance),
            vec![
                responder::ENTRY.to_string(),
                want.to_string(),
                if v6only { "v6only" } else { "dual" }.to_string(),
                p.backlog.to_string(),
            ],
        );
        let id = daemon::spawn(&spawn, &ctx.deadline)?;
        let mut rec = Record::default();
        id.write_to(&mut rec);
        rec.set("addr", want);
        if let Err(e) = state.save(&rec) {
            let _ = daemon::terminate(&id, &ctx.deadline);
            return Err(e);
        }
        tracing::info!("responder pid {} listening on {want}", id.pid);
        Ok(())
    }

    fn stop(_p: Option<&AzureLbParams>, ctx: &Ctx) -> Result<(), OcfError> {
        let state = StateFile::for_ctx(ctx);
        if let Some(rec) = load_or_warn(&state) {
            if let Some(id) = Identity::read_from(&rec) {
                daemon::terminate(&id, &ctx.deadline)?;
                tracing::info!("responder pid {} stopped", id.pid);
            }
        }
        stop_strays(ctx)?;
        // Verified stopped: a record that cannot be removed (a read-only or full state
        // directory) must not fail the stop; the next probe finds its pid gone.
        if let Err(e) = state.remove() {
            tracing::warn!("responder stopped, but {e}");
        }
        Ok(())
    }

    fn monitor(_p: Option<&AzureLbParams>, ctx: &Ctx) -> Result<Status, OcfError> {
        let state = StateFile::for_ctx(ctx);
        if let Some(rec) = load_or_warn(&state) {
            match (Identity::read_from(&rec), rec.parsed::<SocketAddr>("addr")) {
                (Some(id), Some(addr)) => match id.liveness() {
                    Liveness::Alive => return check_responder(&id, addr, ctx),
                    Liveness::Dead(why) => tracing::info!("responder pid {} {why}", id.pid),
                },
                _ => tracing::warn!(
                    "state record {} is unreadable; looking for the responder by identity",
                    state.path.display()
                ),
            }
        }
        // No (usable) record, or its process is gone: is a responder of ours running
        // anyway? Saying 7 while it listens would have it started on a second node.
        let mut verdict = Ok(Status::NotRunning);
        for (id, addr) in find_ours(ctx) {
            tracing::warn!(
                "responder pid {} of this instance runs without a state record",
                id.pid
            );
            verdict = match addr {
                Some(addr) => check_responder(&id, addr, ctx),
                None => Err(OcfError::generic(format!(
                    "responder pid {} of this instance runs with arguments that name no address",
                    id.pid
                ))),
            };
            if verdict.is_ok() {
                break;
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(vars: &[(&str, &str)]) -> Result<AzureLbParams, OcfError> {
        ocf::params::from_pairs(vars)
    }

    #[test]
    fn defaults_match_upstream() {
        let p = params(&[]).unwrap();
        assert_eq!(p.port, Port(61000));
        assert_eq!(p.listen, Listen::Default);
        assert_eq!(bind_target(&p, true), (Ipv6Addr::UNSPECIFIED.into(), false));
        assert_eq!(
            bind_target(&p, false),
            (Ipv4Addr::UNSPECIFIED.into(), false)
        );
    }

    #[test]
    fn bind_targets() {
        let p = params(&[("listen", "IPv4Only")]).unwrap();
        assert_eq!(bind_target(&p, true), (Ipv4Addr::UNSPECIFIED.into(), false));
        let p = params(&[("bind_address", "192.0.2.5")]).unwrap();
        assert_eq!(bind_target(&p, true), ("192.0.2.5".parse().unwrap(), false));
        let p = params(&[("bind_address", "2001:db8::5")]).unwrap();
        assert_eq!(
            bind_target(&p, true),
            ("2001:db8::5".parse().unwrap(), true)
        );
        assert_eq!(
            probe_target("[::]:61000".parse().unwrap()),
            "[::1]:61000".parse().unwrap()
        );
        assert_eq!(
            probe_target("0.0.0.0:5".parse().unwrap()),
            "127.0.0.1:5".parse().unwrap()
        );
    }

    #[test]
    fn nc_is_accepted() {
        assert_eq!(
            params(&[("nc", "/usr/bin/socat")]).unwrap().nc.as_deref(),
            Some("/usr/bin/socat")
        );
    }
}
