//! The steps of a start: what is left of an earlier start, the way cleared for the new
//! server (its port free, a dead pidfile gone), the launch, and the wait until it
//! serves; a server that serves without our record is adopted instead.

use super::group::{self, Group};
use super::leftovers::{clean_leftovers, stopped_pids};
use super::running::{foreign_at, listening};
use super::{console_path, files, forget, key, Service};
use crate::daemon::Identity;
use crate::procfs;
use crate::state::{Record, StateFile};
use ocf::{Ctx, Deadline, OcfError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// Record a running server found through its pidfile (`rec`, `g`) as this instance's,
/// with what the plan knows, and wait until it serves.
pub(super) fn adopt<S: Service>(
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
        key::CONFIG,
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
pub(super) fn wait_ready<S: Service>(
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

/// What an earlier start of this instance left: its server, when that still runs with
/// these parameters (`params`, their fingerprint); one running with other parameters is
/// refused. A dead one's processes and leftovers are cleared away, its record forgotten.
pub(super) fn recorded<S: Service>(
    state: &StateFile,
    params: &str,
    ctx: &Ctx,
) -> Result<Option<(Record, Group)>, OcfError> {
    let Some(rec) = state.load()? else {
        return Ok(None);
    };
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
            return Ok(Some((rec, g)));
        }
        // Leftovers of a dead leader must not hold the port for the new one.
        let stopped = stopped_pids(&g, &g.members());
        group::stop(&g, None, &[], &ctx.deadline)?;
        clean_leftovers(&rec, state, &ctx.deadline, &stopped);
    } else {
        clean_leftovers(&rec, state, &ctx.deadline, &[]);
    }
    state.remove()?;
    Ok(None)
}

/// The way cleared for the new server: its port free (taken: the start fails at once,
/// not at its timeout), and a pidfile naming a dead process removed (the server may
/// refuse to start over it). Only a regular file holding nothing but that pid (the plan
/// checked it).
pub(super) fn clear_the_way(plan: &Record) -> Result<(), OcfError> {
    if let Some(port) = plan.parsed::<u16>(key::PORT) {
        if let Some(owner) = port_taken(port, plan.parsed(key::BIND)) {
            return Err(OcfError::generic(format!(
                "port {port} is already in use by {owner}"
            )));
        }
    }
    if let Some(pf) = plan.get(key::PIDFILE).map(PathBuf::from) {
        let regular = std::fs::symlink_metadata(&pf).is_ok_and(|m| m.file_type().is_file());
        if regular
            && files::pidfile_content(&pf)
                .flatten()
                .is_some_and(|pid| procfs::stat(pid).is_none())
        {
            let _ = std::fs::remove_file(&pf);
        }
    }
    Ok(())
}

/// Launch the server (recorded *before* the wait, so a stop after a start timeout finds
/// it) and wait until it serves; a server that does not is killed again.
pub(super) fn launch<S: Service>(
    p: &S::Params,
    bin: &Path,
    mut plan: Record,
    state: &StateFile,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    let args: Vec<OsString> = S::args(p, &plan)?;
    let mut child = group::launch(bin, &args, &[], &console_path(state))?;
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
        abort_start(&g, Some(&mut child), &plan, state);
        return Err(e);
    }
    if let Err(e) = wait_ready::<S>(&plan, &g, Some(&mut child), state, &ctx.deadline) {
        abort_start(&g, Some(&mut child), &plan, state);
        return concurrent_winner::<S>(e, bin, &plan, &g, state, ctx);
    }
    tracing::info!("{} pid {pid} is serving", S::INFO.name);
    Ok(())
}

/// After our server failed to serve (`e`, and `g` killed): another start of this
/// instance that ran at the same moment (without the dispatch lock) may have won the
/// port. Its server, of the same pidfile, is the instance's; else `e`.
fn concurrent_winner<S: Service>(
    e: OcfError,
    bin: &Path,
    plan: &Record,
    g: &Group,
    state: &StateFile,
    ctx: &Ctx,
) -> Result<(), OcfError> {
    let other = plan
        .get(key::PIDFILE)
        .and_then(|pf| foreign_at::<S>(bin, Path::new(pf)))
        .filter(|(_, o)| o.leader != g.leader);
    let Some((rec, o)) = other else {
        return Err(e);
    };
    tracing::warn!(
        "{e}; but {} pid {} of the same pidfile serves (a concurrent start): \
         taking it over",
        S::INFO.name,
        o.leader.pid
    );
    adopt::<S>(plan, rec, &o, state, ctx)
}
