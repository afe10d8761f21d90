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

pub mod files;
pub mod group;
pub mod http;

use crate::daemon::Identity;
use crate::procfs;
use crate::state::{Record, StateFile};
use group::{Group, StopStep};
use nix::sys::signal::Signal;
use ocf::params::ParamSet;
use ocf::{Action, Agent, AgentInfo, Ctx, Deadline, OcfError, Status};
use std::ffi::OsString;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// Record keys the core reads from a plan.
pub mod key {
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

fn console_path(state: &StateFile) -> PathBuf {
    let mut p = state.path.clone().into_os_string();
    p.push(".console");
    PathBuf::from(p)
}

/// The pid in a pidfile: a regular file (not a link, not a device) holding one.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())?;
    files::pidfile_content(path).flatten()
}

/// The server's main process: the pid in its pidfile when that is one of its
/// processes (mysqld under mysqld_safe), else the leader.
fn main_pid(rec: &Record, members: &[i32]) -> Option<i32> {
    rec.get(key::PIDFILE)
        .and_then(|p| read_pidfile(Path::new(p)))
        .filter(|p| members.contains(p))
}

/// The socket on `port` that a process of the group listens on: the leader's first (an
/// nginx master holds them all), else any member's (a scan of all of /proc).
fn listening(g: &Group, port: Option<u16>) -> Option<SocketAddr> {
    let port = port?;
    procfs::listening_on(g.leader.pid, port).or_else(|| {
        g.members()
            .iter()
            .find_map(|&m| procfs::listening_on(m, port))
    })
}

/// Whether `pf` is the pidfile the stopped server left: a regular file (not a link)
/// holding the pid of one of the `stopped` processes, now gone, or empty and owned by
/// the server's user (`owner`). Anything else is somebody else's: `Err` says what.
fn own_pidfile(pf: &Path, stopped: &[i32], owner: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(pf).map_err(|e| e.to_string())?;
    if !m.file_type().is_file() {
        return Err(format!("it is {}", files::kind(&m)));
    }
    match files::pidfile_content(pf) {
        Some(Some(pid)) if !stopped.contains(&pid) => Err(format!(
            "it holds pid {pid}, not one of the stopped server's ({stopped:?})"
        )),
        Some(Some(pid)) if procfs::stat(pid).is_some_and(|s| s.state != 'Z') => {
            Err(format!("pid {pid} runs again"))
        }
        Some(Some(_)) => Ok(()),
        Some(None) if m.uid() == owner => Ok(()),
        Some(None) => Err(format!(
            "it is empty and belongs to uid {}, not to the server's uid {owner}",
            m.uid()
        )),
        None => Err(format!("it does not hold a pid ({} bytes)", m.len())),
    }
}

/// Remove what a server leaves behind after it was stopped or killed, and only that:
/// its pidfile (see [`own_pidfile`]) and its unix socket (a socket nobody answers on).
/// Anything else at those paths is left, with a warning. `stopped`: the pids of the
/// server that was stopped (its leader and every member seen). Within the action's
/// `deadline`, like every wait.
fn clean_leftovers(rec: &Record, state: &StateFile, deadline: &Deadline, stopped: &[i32]) {
    if let Some(pf) = rec.get(key::PIDFILE).map(PathBuf::from) {
        if std::fs::symlink_metadata(&pf).is_ok() {
            match own_pidfile(&pf, stopped, rec.parsed(key::OWNER).unwrap_or(0)) {
                Ok(()) => match std::fs::remove_file(&pf) {
                    Ok(()) => tracing::info!("removed stale pidfile {}", pf.display()),
                    Err(e) => tracing::warn!("cannot remove pidfile {}: {e}", pf.display()),
                },
                Err(why) => tracing::warn!(
                    "left {} in place: {why}; not the pidfile of the stopped server",
                    pf.display()
                ),
            }
        }
    }
    if let Some(sock) = rec.get(key::SOCKET).map(PathBuf::from) {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(m) = std::fs::symlink_metadata(&sock) {
            if !m.file_type().is_socket() {
                tracing::warn!(
                    "left {} in place: it is {}, not the server's socket",
                    sock.display(),
                    files::kind(&m)
                );
            }
        }
        // A killed multi-threaded server shows as a zombie while its other threads still
        // exit, holding its sockets a moment longer: give that a second before deciding
        // that whoever still answers on the socket is somebody else.
        let stale = std::fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_socket())
            && deadline
                .cap(Duration::from_secs(1))
                .poll(Duration::from_millis(20), || {
                    std::os::unix::net::UnixStream::connect(&sock)
                        .is_err()
                        .then_some(())
                })
                .is_some();
        if stale && std::fs::remove_file(&sock).is_ok() {
            tracing::info!("removed stale socket {}", sock.display());
        }
    }
    let _ = std::fs::remove_file(console_path(state));
}

/// The pids a stop is about: the leader and every member seen now.
fn stopped_pids(g: &Group, members: &[i32]) -> Vec<i32> {
    let mut v = members.to_vec();
    if !v.contains(&g.leader.pid) {
        v.push(g.leader.pid);
    }
    v
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

/// A server of this kind running without our record: through its pidfile. Without
/// parameters that parse, those that do (a broken one left at its default).
fn foreign<S: Service>(p: Option<&S::Params>, ctx: &Ctx) -> Option<(Record, Group)> {
    let p = p
        .cloned()
        .or_else(|| ocf::params::lenient::<S::Params>(&ctx.env))?;
    let bin = S::binary(&p).ok()?;
    let pf = S::pidfile(&p, &bin, ctx)?;
    foreign_at::<S>(&bin, &pf)
}

/// As [`foreign`], with the pidfile already known (start has it from its plan).
fn foreign_at<S: Service>(bin: &Path, pf: &Path) -> Option<(Record, Group)> {
    let pid = read_pidfile(pf)?;
    let exe = procfs::exe(pid)?;
    if !S::is_server_exe(bin, &exe) {
        return None;
    }
    let leader = Identity::of(pid).filter(Identity::is_alive)?;
    let session = procfs::stat(pid).filter(|s| s.session == pid).map(|_| pid);
    let mut rec = Record::default();
    rec.set(key::PIDFILE, pf.display())
        .set(key::BIN, bin.display());
    Some((rec, Group { leader, session }))
}

/// Record a running server found through its pidfile (`rec`, `g`) as this instance's,
/// with what the plan knows, and wait until it serves.
fn adopt<S: Service>(
    plan: &Record,
    mut rec: Record,
    g: &Group,
    state: &StateFile,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    for k in [
        key::PORT,
        key::BIND,
        key::SOCKET,
        key::ERROR_LOG,
        key::OWNER,
        key::PARAMS,
        key::STATUS_URL,
        key::STATUS_REGEX,
        "config",
    ] {
        if let Some(v) = plan.get(k) {
            rec.set(k, v);
        }
    }
    g.write_to(&mut rec);
    state.save(&rec)?;
    wait_ready::<S>(&rec, g, None, state, &ctx.deadline)
}

/// Wait (bounded by `deadline`) until the server serves.
fn wait_ready<S: Service>(
    rec: &Record,
    g: &Group,
    mut child: Option<&mut Child>,
    state: &StateFile,
    deadline: &Deadline,
) -> Result<(), OcfError> {
    let port: Option<u16> = rec.parsed(key::PORT);
    let mut last = String::from("not checked yet");
    let explain = |what: String| {
        let mut lines = group::tail(&console_path(state), 3);
        if let Some(log) = rec.get(key::ERROR_LOG) {
            lines.extend(group::tail(Path::new(log), 3));
        }
        if lines.is_empty() {
            what
        } else {
            format!("{what}: {}", lines.join(" | "))
        }
    };
    let ready = deadline.poll(Duration::from_millis(25), || {
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(Err(explain(format!(
                    "{} exited during start ({st})",
                    S::INFO.name
                ))));
            }
        }
        if !g.leader_alive() {
            return Some(Err(explain(format!(
                "{} exited during start",
                S::INFO.name
            ))));
        }
        let addr = listening(g, port);
        if port.is_some() && addr.is_none() {
            last = format!("nothing of it listens on port {}", port.unwrap_or(0));
            return None;
        }
        match S::ping(rec, addr, &deadline.cap(Duration::from_secs(2))) {
            Ok(()) => Some(Ok(())),
            Err(e) => {
                last = e;
                None
            }
        }
    });
    match ready {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(OcfError::generic(e)),
        None => Err(OcfError::generic(explain(format!(
            "{} was not serving before the start timeout ({last})",
            S::INFO.name
        )))),
    }
}

/// Kill a group at once (a failed start), reap our child, clean up. The record is
/// removed only while it still names this group (never another start's).
fn abort_start(g: &Group, child: Option<&mut Child>, rec: &Record, state: &StateFile) {
    let deadline = Deadline::after(Duration::from_secs(2));
    let stopped = stopped_pids(g, &g.members());
    let _ = group::stop(g, None, &[], &deadline);
    if let Some(c) = child {
        let _ = c.wait();
    }
    clean_leftovers(rec, state, &deadline, &stopped);
    let ours = state
        .load()
        .ok()
        .flatten()
        .and_then(|r| Group::read_from(&r))
        .is_some_and(|r| r.leader == g.leader);
    if ours {
        forget(state);
    }
}

/// Another process listening where the server will: on the port, and on its address, or
/// on every address (its or ours). Two servers on one port but two addresses (two VIPs)
/// do not conflict.
fn port_taken(port: u16, bind: Option<std::net::IpAddr>) -> Option<String> {
    let owners = procfs::listening_owners_where(port, |a| {
        a.ip().is_unspecified() || bind.is_none_or(|b| b.is_unspecified() || b == a.ip())
    });
    (!owners.is_empty()).then(|| owners.join(", "))
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

    fn validate(p: &S::Params, ctx: &Ctx) -> Result<Checked, OcfError> {
        S::check_params(p)?;
        let acting = matches!(ctx.action, Action::Start | Action::Reload);
        let bin = (acting || ctx.check_level() >= 10)
            .then(|| S::binary(p))
            .transpose()?;
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
        if let Some(rec) = state.load()? {
            if let Some(g) = Group::read_from(&rec) {
                if g.leader_alive() {
                    if rec.get(key::PARAMS).is_some_and(|f| f != params) {
                        return Err(OcfError::generic(format!(
                            "{} of this instance already runs (pid {}) with other parameters; \
                             stop it first",
                            S::INFO.name,
                            g.leader.pid
                        )));
                    }
                    tracing::info!("already running (pid {}); checking it serves", g.leader.pid);
                    return wait_ready::<S>(&rec, &g, None, &state, &ctx.deadline);
                }
                // Leftovers of a dead leader must not hold the port for the new one.
                let stopped = stopped_pids(&g, &g.members());
                group::stop(&g, None, &[], &ctx.deadline)?;
                clean_leftovers(&rec, &state, &ctx.deadline, &stopped);
            } else {
                clean_leftovers(&rec, &state, &ctx.deadline, &[]);
            }
            state.remove()?;
        }
        let mut plan = S::plan(p, &bin, ctx)?;
        plan.set(key::PARAMS, &params);
        // The plan names the pidfile: no second configuration test to find it.
        let running = plan
            .get(key::PIDFILE)
            .and_then(|pf| foreign_at::<S>(&bin, Path::new(pf)));
        if let Some((rec, g)) = running {
            tracing::warn!(
                "{} already runs without rustha (pid {} from its pidfile); taking it over",
                S::INFO.name,
                g.leader.pid
            );
            return adopt::<S>(&plan, rec, &g, &state, ctx);
        }
        if let Some(port) = plan.parsed::<u16>(key::PORT) {
            if let Some(owner) = port_taken(port, plan.parsed(key::BIND)) {
                return Err(OcfError::generic(format!(
                    "port {port} is already in use by {owner}"
                )));
            }
        }
        if let Some(pf) = plan.get(key::PIDFILE).map(PathBuf::from) {
            // A pidfile naming a dead process: the server may refuse to start over it.
            // Only a regular file holding nothing but that pid (the plan checked it).
            let regular = std::fs::symlink_metadata(&pf).is_ok_and(|m| m.file_type().is_file());
            if regular
                && files::pidfile_content(&pf)
                    .flatten()
                    .is_some_and(|pid| procfs::stat(pid).is_none())
            {
                let _ = std::fs::remove_file(&pf);
            }
        }
        S::prepare(p, &plan, ctx)?;
        let args = S::args(p, &plan)?;
        let mut child = group::launch(&bin, &args, &[], &console_path(&state))?;
        let pid = child.id() as i32;
        plan.set(key::BIN, bin.display());
        let Some(leader) = Identity::of(pid) else {
            let st = child.wait().ok();
            return Err(OcfError::generic(format!(
                "{} exited at once ({})",
                S::INFO.name,
                st.map_or("unknown status".into(), |s| s.to_string())
            )));
        };
        let g = Group {
            leader,
            session: Some(pid),
        };
        g.write_to(&mut plan);
        if let Err(e) = state.save(&plan) {
            abort_start(&g, Some(&mut child), &plan, &state);
            return Err(e);
        }
        if let Err(e) = wait_ready::<S>(&plan, &g, Some(&mut child), &state, &ctx.deadline) {
            abort_start(&g, Some(&mut child), &plan, &state);
            // Another start of this instance that ran at the same moment (without the
            // dispatch lock) may have won the port: its server is the instance's.
            let other = plan
                .get(key::PIDFILE)
                .and_then(|pf| foreign_at::<S>(&bin, Path::new(pf)))
                .filter(|(_, o)| o.leader != g.leader);
            if let Some((rec, o)) = other {
                tracing::warn!(
                    "{e}; but {} pid {} of the same pidfile serves (a concurrent start): \
                     taking it over",
                    S::INFO.name,
                    o.leader.pid
                );
                return adopt::<S>(&plan, rec, &o, &state, ctx);
            }
            return Err(e);
        }
        tracing::info!("{} pid {pid} is serving", S::INFO.name);
        Ok(())
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
        wait_ready::<S>(&plan, &g, None, &state, &ctx.deadline)
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

/// Check an HTTP answer: 2xx, and the body matches `regex` when given.
pub fn http_check(
    url: &http::Url,
    regex: Option<&regex_lite::Regex>,
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), String> {
    let (addr, host) = url.target(listening)?;
    let r = http::get(addr, &host, &url.path, deadline)?;
    if !(200..300).contains(&r.status) {
        return Err(format!("GET {} answered HTTP {}", url.path, r.status));
    }
    if let Some(re) = regex {
        if !re.is_match(&r.body) {
            return Err(format!(
                "GET {} answered HTTP {} but the page does not match /{}/",
                url.path,
                r.status,
                re.as_str()
            ));
        }
    }
    Ok(())
}

/// The actions a web server agent advertises (only depth 0 as a default monitor: pcs
/// creates a recurring monitor for every advertised depth).
pub const WEB_ACTIONS: &[ocf::ActionSpec] = &[
    ocf::ActionSpec::new(Action::Start, 60),
    ocf::ActionSpec::new(Action::Stop, 60),
    ocf::ActionSpec::new(Action::Monitor, 20)
        .interval(10)
        .depth(0),
    ocf::ActionSpec::new(Action::Reload, 30),
    ocf::ActionSpec::new(Action::MetaData, 5),
    ocf::ActionSpec::new(Action::ValidateAll, 30),
];

/// `port` must be one the web server's configuration listens on (`ports`, read from
/// it): otherwise start would wait its whole timeout for a listener that never comes.
pub fn port_in_config(port: u16, config: &Path, ports: &[u16]) -> Result<(), OcfError> {
    if ports.contains(&port) {
        return Ok(());
    }
    let listens = if ports.is_empty() {
        "no TCP port".to_string()
    } else {
        format!("port(s) {ports:?} only")
    };
    Err(OcfError::invalid_param(
        "port",
        format!(
            "{port} but the configuration {} listens on {listens}",
            config.display()
        ),
    ))
}

/// A URL parameter (unset or empty: none).
pub fn url_param(name: &'static str, v: &Option<String>) -> Result<Option<http::Url>, OcfError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| http::Url::parse(s).map_err(|e| OcfError::invalid_param(name, e)))
        .transpose()
}

/// A parameter of extra command-line words (see [`group::split_words`]).
pub fn words_param(name: &'static str, v: &Option<String>) -> Result<Vec<OsString>, OcfError> {
    Ok(match v {
        Some(o) => group::split_words(o)
            .map_err(|e| OcfError::invalid_param(name, e))?
            .into_iter()
            .map(OsString::from)
            .collect(),
        None => vec![],
    })
}

/// A web server's depth-10 check (and start's readiness): the plan's status page, which
/// must answer 2xx (and match its regex when one is set); without one, the site root,
/// where any answer below 500 shows the server serves.
pub fn web_ping(
    plan: &Record,
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), String> {
    match plan.get(key::STATUS_URL) {
        Some(u) => {
            let url = http::Url::parse(u)?;
            let re = plan
                .get(key::STATUS_REGEX)
                .map(|r| regex_param("status regex", r).map_err(|e| e.reason))
                .transpose()?;
            http_check(&url, re.as_ref(), listening, deadline)
        }
        None => {
            let (addr, host) = http::Url::parse("/")?.target(listening)?;
            let r = http::get(addr, &host, "/", deadline)?;
            if r.status >= 500 {
                return Err(format!("GET / answered HTTP {}", r.status));
            }
            Ok(())
        }
    }
}

/// A web server's depth-20 check: the URL parameter `url` (when set) answers 2xx and
/// matches the regex parameter `regex` (when set).
pub fn web_content(
    url: (&'static str, &Option<String>),
    regex: (&'static str, &Option<String>),
    listening: Option<SocketAddr>,
    deadline: &Deadline,
) -> Result<(), OcfError> {
    if let Some(u) = url_param(url.0, url.1)? {
        let re = regex
            .1
            .as_deref()
            .map(|r| regex_param(regex.0, r))
            .transpose()?;
        http_check(&u, re.as_ref(), listening, deadline)
            .map_err(|e| OcfError::generic(format!("depth-20 check: {e}")))?;
    }
    Ok(())
}

/// A case-insensitive regex from a parameter (upstream greps with `-Ei`).
pub fn regex_param(name: &'static str, raw: &str) -> Result<regex_lite::Regex, OcfError> {
    regex_lite::RegexBuilder::new(raw)
        .case_insensitive(true)
        .build()
        .map_err(|e| OcfError::invalid_param(name, format!("bad regular expression: {e}")))
}

/// A binary from a parameter, else the first of `candidates` that exists.
pub fn find_binary(
    param: Option<&str>,
    name: &str,
    candidates: &[&str],
) -> Result<PathBuf, OcfError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    match param {
        Some(b) if !b.is_empty() => {
            let p = if b.contains('/') {
                PathBuf::from(b)
            } else {
                group::SERVER_PATH
                    .split(':')
                    .map(|d| Path::new(d).join(b))
                    .find(|p| executable(p))
                    .unwrap_or_else(|| PathBuf::from(b))
            };
            if executable(&p) {
                Ok(p)
            } else {
                Err(OcfError::not_installed(format!(
                    "{name} binary {} is not installed (or not executable)",
                    p.display()
                )))
            }
        }
        _ => candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| executable(p))
            .ok_or_else(|| {
                OcfError::not_installed(format!(
                    "{name} is not installed (looked for {})",
                    candidates.join(", ")
                ))
            }),
    }
}

/// Run a tool to completion within the deadline; its exit status, stdout and stderr.
pub fn run_tool(
    bin: &Path,
    args: &[OsString],
    deadline: &Deadline,
) -> Result<(std::process::ExitStatus, String, String), OcfError> {
    use std::io::Read;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", group::SERVER_PATH)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| OcfError::generic(format!("cannot run {}: {e}", bin.display())))?;
    // Drain both pipes on threads so a chatty tool cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = deadline.poll(Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(OcfError::generic(format!(
            "{} did not finish before the timeout",
            bin.display()
        )));
    };
    let out = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok((status, out, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stopped_servers_pidfile_is_its_own() {
        let dir = std::env::temp_dir().join(format!("rustha-own-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pf = dir.join("x.pid");
        // A pid that ran and is gone.
        let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
        let dead = c.id() as i32;
        c.wait().unwrap();
        std::fs::write(&pf, format!("{dead}\n")).unwrap();
        assert_eq!(own_pidfile(&pf, &[dead], 0), Ok(()));
        assert!(own_pidfile(&pf, &[dead + 1], 0).is_err(), "another pid");
        let me = std::process::id() as i32;
        std::fs::write(&pf, format!("{me}\n")).unwrap();
        assert!(own_pidfile(&pf, &[me], 0).is_err(), "a live process");
        std::fs::write(&pf, "").unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(own_pidfile(&pf, &[], uid), Ok(()), "empty, the server's");
        assert!(own_pidfile(&pf, &[], uid + 1).is_err(), "empty, another's");
        std::fs::write(&pf, "[mysqld]\nuser=mysql\n").unwrap();
        assert!(own_pidfile(&pf, &[dead], 0).is_err(), "not a pidfile");
        assert!(own_pidfile(&dir, &[dead], 0).is_err(), "a directory");
        let link = dir.join("link.pid");
        std::fs::write(&pf, format!("{dead}\n")).unwrap();
        std::os::unix::fs::symlink(&pf, &link).unwrap();
        assert!(own_pidfile(&link, &[dead], 0).is_err(), "a link");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
