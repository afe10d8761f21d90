//! The generic service core. nginx, lighttpd and mysql are thin [`Service`]s on it; the
//! core owns the lifecycle:
//!
//! - **start**: the server's own configuration test (broken -> 6 with the tool's
//!   message), then the server in the foreground as the leader of a session of its own
//!   (recorded *before* the wait, so a stop after a start timeout finds it), then a wait,
//!   bounded by the deadline, until it really serves: leader alive, a listening socket on
//!   the port held by one of its processes, and a real request answered.
//! - **monitor**: depth 0 = the recorded leader (pid + start time, zombies are dead); a
//!   dead leader with processes of its session left (orphaned workers holding the port)
//!   is a failure, not "stopped"; depth 10 = a real request; depth 20 = a content check.
//! - **stop**: the server's graceful signal(s), each given a share of the deadline, then
//!   SIGKILL to every process of the session (a SIGSTOPped worker included); 0 only when
//!   none is left; then the pidfile and socket leftovers are removed.
//! - **reload**: configuration test first; the server keeps running on its old
//!   configuration when the test fails.
//!
//! A server running without a record (started by hand or by an init script) is found
//! through its pidfile: a probe reports it running, and stop stops it.
//!
//! Here: the [`Service`] trait and the lifecycle of [`Svc`]; the steps of a start in
//! `start`, finding the server's processes in `running`, what a stop removes in
//! `leftovers`; for the agents, the server's own tools in [`tool`], what the web servers
//! share in [`web`], the checks of the files a server writes in [`files`].

pub mod files;
pub mod group;
pub mod http;
mod leftovers;
mod running;
mod start;
pub mod tool;
pub mod web;

use crate::state::{Record, StateFile};
use group::{Group, StopStep};
use leftovers::{clean_leftovers, stopped_pids};
use nix::sys::signal::Signal;
use ocf::params::ParamSet;
use ocf::{Action, Agent, AgentInfo, Ctx, Deadline, OcfError, Status};
pub use running::read_pidfile;
use running::{foreign, listening, main_pid};
use std::ffi::OsString;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Record keys the core reads from a plan.
pub mod key {
    /// The server's configuration file (every agent records it; its arguments name it).
    pub const CONFIG: &str = "config";
    /// The server's own pidfile (its main process).
    pub const PIDFILE: &str = "pidfile";
    /// The TCP port it must listen on (absent: no TCP check).
    pub const PORT: &str = "port";
    /// The address it binds that port on, when the configuration names one (absent:
    /// every address).
    pub const BIND: &str = "bind";
    /// A unix socket it creates (removed after a stop).
    pub const SOCKET: &str = "socket";
    /// The server's error log (lines from it explain a failed start).
    pub const ERROR_LOG: &str = "error_log";
    /// The binary started.
    pub const BIN: &str = "bin";
    /// Web servers: the depth-10 page, and what it must match.
    pub const STATUS_URL: &str = "status_url";
    pub const STATUS_REGEX: &str = "status_regex";
    /// The uid the server writes its pidfile as (absent: root).
    pub const OWNER: &str = "owner";
    /// A fingerprint of the parameters the server was started with.
    pub const PARAMS: &str = "params";
}

/// One server kind. Everything else is the core's.
pub trait Service: 'static {
    type Params: ParamSet + Clone;
    const INFO: AgentInfo;
    /// The graceful stop, in order; each step's signal goes to the main process and
    /// gets `num/den` of the time left. SIGKILL to every process follows.
    const STOP: &'static [StopStep];
    /// The signal that makes the server re-read its configuration, if it has one.
    const RELOAD: Option<Signal>;

    /// Consistency of the parameters beyond their types (-> 6).
    fn check_params(_p: &Self::Params) -> Result<(), OcfError> {
        Ok(())
    }
    /// What the meta attributes alone rule out (a promotable clone, say): nothing node-local.
    fn check_meta(_env: &ocf::OcfEnv) -> Result<(), OcfError> {
        Ok(())
    }
    /// What this node must have for a start: the paths the parameters name are of the
    /// right kind (-> 6), belong to and are writable by the server's user (-> 4), ...
    /// Called by every validate-all and before every start; the agent decides what is
    /// cheap enough for a depth-0 validate (`ctx.action`, `ctx.check_level()`).
    fn check_node(_p: &Self::Params, _ctx: &Ctx) -> Result<(), OcfError> {
        Ok(())
    }
    /// The server binary (-> 5 when missing).
    fn binary(p: &Self::Params) -> Result<PathBuf, OcfError>;
    /// Test the configuration with the server's own tool (broken -> 6 with its message)
    /// and derive the plan: the record keys in [`key`] plus the service's own.
    fn plan(p: &Self::Params, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError>;
    /// Where a server started without us writes its pid (cheap where possible).
    fn pidfile(p: &Self::Params, bin: &Path, ctx: &Ctx) -> Option<PathBuf>;
    /// Directories, ownership, first-time initialisation.
    fn prepare(_p: &Self::Params, _plan: &Record, _ctx: &Ctx) -> Result<(), OcfError> {
        Ok(())
    }
    /// The server's arguments (it must stay in the foreground).
    fn args(p: &Self::Params, plan: &Record) -> Result<Vec<OsString>, OcfError>;
    /// A real request (depth 10, and start's readiness). `Err` is the reason.
    fn ping(
        plan: &Record,
        listening: Option<SocketAddr>,
        deadline: &Deadline,
    ) -> Result<(), String>;
    /// The content check of depth 20.
    fn content(
        p: &Self::Params,
        plan: &Record,
        listening: Option<SocketAddr>,
        ctx: &Ctx,
    ) -> Result<(), OcfError>;
    /// Whether `exe` is this server (for a pidfile left by a server started without us).
    fn is_server_exe(bin: &Path, exe: &Path) -> bool {
        std::fs::canonicalize(bin).ok().as_deref() == Some(exe)
    }
}

/// The agent made of a [`Service`]: `Entry::<Svc<Nginx>>` in the registry.
pub struct Svc<S>(PhantomData<fn() -> S>);

/// Where the server's console (stdout and stderr) is captured: beside the record.
fn console_path(state: &StateFile) -> PathBuf {
    let mut p = state.path.clone().into_os_string();
    p.push(".console");
    PathBuf::from(p)
}

/// The configuration file a plan names (see [`key::CONFIG`]).
pub fn config_of(plan: &Record) -> &Path {
    Path::new(plan.get(key::CONFIG).unwrap_or_default())
}

/// Forget the record (a record that cannot be removed is a warning: the next probe
/// finds its leader dead).
fn forget(state: &StateFile) {
    if let Err(e) = state.remove() {
        tracing::warn!("{e}");
    }
}

/// A fingerprint of the parameters as Pacemaker passed them (secrets left out): a
/// second start under the same instance name with other parameters is told apart.
fn fingerprint<S: Service>(ctx: &Ctx) -> String {
    // FNV-1a, 64 bits: stable across builds (a record outlives an upgrade).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // Only the parameters that are set: a parameter added by an upgrade changes nothing.
    for spec in <S::Params as ParamSet>::SPEC.iter().filter(|s| !s.secret) {
        let Some(v) = ctx.env.var(&format!("OCF_RESKEY_{}", spec.name)) else {
            continue;
        };
        for b in spec.name.bytes().chain([0u8]).chain(v.bytes()).chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The record, or `None` with a warning when the state directory is unusable (a plain
/// file, unreadable): monitor and stop then find the server through its identity alone.
fn load_or_warn(state: &StateFile) -> Option<Record> {
    match state.load() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}; looking for the server through its pidfile instead");
            None
        }
    }
}

/// What validate hands start and reload: the server binary it found (a depth-0
/// validate-all does not look for it: ocf-tester's missing-binary probe must pass).
pub struct Checked {
    bin: Option<PathBuf>,
}

impl Checked {
    fn bin(self) -> Result<PathBuf, OcfError> {
        self.bin
            .ok_or_else(|| OcfError::generic("validation did not look for the server binary"))
    }
}

impl<S: Service> Agent for Svc<S> {
    type Params = S::Params;
    type Plan = Checked;
    const INFO: AgentInfo = S::INFO;

    fn check_params(p: &S::Params, ctx: &Ctx) -> Result<(), OcfError> {
        S::check_params(p)?;
        S::check_meta(&ctx.env)
    }

    fn validate(p: &S::Params, ctx: &Ctx) -> Result<Checked, OcfError> {
        S::check_params(p)?;
        S::check_meta(&ctx.env)?;
        let acting = matches!(ctx.action, Action::Start | Action::Reload);
        let bin = (acting || ctx.check_level() >= 10)
            .then(|| S::binary(p))
            .transpose()?;
        if let Some(b) = &bin {
            tracing::debug!("decided: server binary {}", b.display());
        }
        S::check_node(p, ctx)?;
        // start and reload test the configuration themselves (once); a deep
        // validate-all does here.
        if let Some(bin) = bin.as_deref().filter(|_| !acting) {
            S::plan(p, bin, ctx)?;
        }
        Ok(Checked { bin })
    }

    fn start(p: &S::Params, checked: Checked, ctx: &Ctx) -> Result<(), OcfError> {
        let state = StateFile::for_ctx(ctx);
        let bin = checked.bin()?;
        let params = fingerprint::<S>(ctx);
        if let Some((rec, g)) = start::recorded::<S>(&state, &params, ctx)? {
            tracing::info!("already running (pid {}); checking it serves", g.leader.pid);
            return start::wait_ready::<S>(&rec, &g, None, &state, &ctx.deadline);
        }
        let mut plan = S::plan(p, &bin, ctx)?;
        plan.set(key::PARAMS, &params);
        // The plan names the pidfile: no second configuration test to find it.
        let running = plan
            .get(key::PIDFILE)
            .and_then(|pf| running::foreign_at::<S>(&bin, Path::new(pf)));
        if let Some((rec, g)) = running {
            tracing::warn!(
                "{} already runs without rustha (pid {} from its pidfile); taking it over",
                S::INFO.name,
                g.leader.pid
            );
            return start::adopt::<S>(&plan, rec, &g, &state, ctx);
        }
        start::clear_the_way(&plan)?;
        S::prepare(p, &plan, ctx)?;
        start::launch::<S>(p, &bin, plan, &state, ctx)
    }

    fn stop(p: Option<&S::Params>, ctx: &Ctx) -> Result<(), OcfError> {
        let state = StateFile::for_ctx(ctx);
        let (rec, g) = match load_or_warn(&state) {
            Some(rec) => {
                let Some(g) = Group::read_from(&rec) else {
                    // A record without a process: start failed before it launched.
                    forget(&state);
                    return Ok(());
                };
                (rec, g)
            }
            None => match foreign::<S>(p, ctx) {
                Some(found) => {
                    tracing::warn!(
                        "stopping pid {} found through the pidfile (no rustha record)",
                        found.1.leader.pid
                    );
                    found
                }
                None => return Ok(()),
            },
        };
        let members = g.members();
        let main = main_pid(&rec, &members);
        let stopped = stopped_pids(&g, &members);
        group::stop(&g, main, S::STOP, &ctx.deadline)?;
        clean_leftovers(&rec, &state, &ctx.deadline, &stopped);
        forget(&state);
        tracing::info!("{} stopped", S::INFO.name);
        Ok(())
    }

    fn monitor(p: Option<&S::Params>, ctx: &Ctx) -> Result<Status, OcfError> {
        let state = StateFile::for_ctx(ctx);
        let Some(rec) = load_or_warn(&state) else {
            if let Some((_, g)) = foreign::<S>(p, ctx) {
                tracing::warn!(
                    "{} runs (pid {} from its pidfile) but was not started by rustha",
                    S::INFO.name,
                    g.leader.pid
                );
                return Ok(Status::Success);
            }
            return Ok(Status::NotRunning);
        };
        let Some(g) = Group::read_from(&rec) else {
            return Ok(Status::NotRunning);
        };
        if let crate::daemon::Liveness::Dead(why) = g.leader.liveness() {
            let left = g.members();
            if !left.is_empty() {
                return Err(OcfError::generic(format!(
                    "the main process (pid {}) {why}, but {} of its processes still run (pids {left:?})",
                    g.leader.pid,
                    left.len()
                )));
            }
            tracing::info!("{} pid {} {why}", S::INFO.name, g.leader.pid);
            return Ok(Status::NotRunning);
        }
        if ctx.check_level() >= 10 {
            // The server runs: a deeper check that fails is a failure (1), whatever its
            // cause, never "not running" (7) or "not installed" (5) that a probe would
            // pass through.
            deep_checks::<S>(p, &rec, &g, ctx).map_err(|e| OcfError::generic(e.reason))?;
        }
        Ok(Status::Success)
    }

    fn reload(p: &S::Params, checked: Checked, ctx: &Ctx) -> Result<(), OcfError> {
        let Some(sig) = S::RELOAD else {
            return Err(OcfError::unimplemented("reload is not supported"));
        };
        let state = StateFile::for_ctx(ctx);
        let running = state
            .load()?
            .and_then(|r| Some((Group::read_from(&r)?, r)))
            .filter(|(g, _)| g.leader_alive());
        let Some((g, rec)) = running else {
            return Err(OcfError::generic(
                "not running: reload does not start the server",
            ));
        };
        let bin = checked.bin()?;
        let mut plan = S::plan(p, &bin, ctx).map_err(|e| {
            OcfError::generic(format!(
                "configuration test failed; the server keeps running on its current configuration: {}",
                e.reason
            ))
        })?;
        let members = g.members();
        let main = main_pid(&rec, &members).unwrap_or(g.leader.pid);
        tracing::info!("sending {} to pid {main}", sig.as_str());
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(main), sig)
            .map_err(|e| OcfError::generic(format!("cannot signal pid {main}: {e}")))?;
        plan.set(key::BIN, bin.display())
            .set(key::PARAMS, fingerprint::<S>(ctx));
        g.write_to(&mut plan);
        state.save(&plan)?;
        start::wait_ready::<S>(&plan, &g, None, &state, &ctx.deadline)
    }
}

/// Depth 10 (a real request) and 20 (the content check) of a running server.
fn deep_checks<S: Service>(
    p: Option<&S::Params>,
    rec: &Record,
    g: &Group,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    let port: Option<u16> = rec.parsed(key::PORT);
    let addr = listening(g, port);
    if let (Some(port), None) = (port, addr) {
        return Err(OcfError::generic(format!(
            "{} runs (pid {}) but nothing of it listens on port {port}",
            S::INFO.name,
            g.leader.pid
        )));
    }
    S::ping(rec, addr, &ctx.deadline).map_err(OcfError::generic)?;
    if ctx.check_level() >= 20 {
        let p = p.ok_or_else(|| {
            OcfError::generic("the parameters do not parse; no depth-20 check is possible")
        })?;
        S::content(p, rec, addr, ctx)?;
    }
    Ok(())
}
