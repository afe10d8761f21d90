//! `Filesystem`: a mount that moves with the service (shared disk, NFS, bind mount),
//! parameter-compatible with `ocf:heartbeat:Filesystem`.
//!
//! The mount table comes from `/proc/self/mountinfo` (no fork, no `stat` of the mount
//! point, so a dead NFS server cannot hang a depth-0 monitor). A mount is ours when it is
//! at the mount point and comes from our device, told by device number, not by a path
//! string. Mounting and unmounting run `mount(8)` / `umount(8)` with argv, bounded by the
//! action's deadline: the helpers (`mount.nfs`, `mount.cifs`, fuse) and user-space
//! options live there. Stop finds the mount's users by mount id (see [`users`]), signals
//! them through pidfds and unmounts; it succeeds only when the mount is gone from
//! mountinfo.

mod ops;
mod params;
pub mod users;

use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, OcfError, Status};
pub use params::FilesystemParams;
use params::{Config, Source};
use std::path::PathBuf;

pub struct Filesystem;

/// What validate resolves for start.
pub struct Plan {
    cfg: Config,
    /// The block device (canonical path), when the source is one.
    device: Option<PathBuf>,
}

impl Agent for Filesystem {
    type Params = FilesystemParams;
    type Plan = Plan;
    const INFO: AgentInfo = AgentInfo {
        name: "Filesystem",
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Manages filesystem mounts",
        longdesc: "Mounts a filesystem (a shared block device, NFS, CIFS, a bind mount, ...) on \
            start and unmounts it on stop. Drop-in replacement for ocf:heartbeat:Filesystem \
            with the same parameters. A depth-0 monitor reads the kernel's mount table only \
            (it cannot hang on a dead NFS server); depth 10 reads a block of the device; \
            depth 20 writes and reads back a status file, with O_DIRECT where the \
            filesystem supports it. Stop finds the processes that use the mount exactly, by \
            mount id (their working directory, root, executable, open and mapped files, in \
            any mount namespace), signals them and unmounts; a bind mount's stop never \
            touches users of the filesystem under it. A directory already mounted from \
            another device is never mounted over.",
        actions: &[
            ActionSpec::new(Action::Start, 60),
            ActionSpec::new(Action::Stop, 60),
            ActionSpec::new(Action::Monitor, 40).interval(20).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 20),
        ],
    };

    fn check_params(p: &FilesystemParams, ctx: &Ctx) -> Result<(), OcfError> {
        params::check(p, ctx).map(drop)
    }

    fn validate(p: &FilesystemParams, ctx: &Ctx) -> Result<Plan, OcfError> {
        let cfg = params::check(p, ctx)?;
        // validate-all checks the parameters only, as upstream's: the shared device is
        // visible on the node that is about to start it, not necessarily on this one.
        if ctx.action != Action::Start {
            return Ok(Plan { cfg, device: None });
        }
        let device = ops::resolve(&cfg, &ctx.deadline)?;
        tracing::debug!(
            "decided: device {}",
            device
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "none (a network or bind source)".into())
        );
        ops::fstype_supported(&cfg, &ctx.deadline)?;
        Ok(Plan { cfg, device })
    }

    fn start(_p: &FilesystemParams, plan: Plan, ctx: &Ctx) -> Result<(), OcfError> {
        ops::start(&plan.cfg, plan.device.as_deref(), ctx)
    }

    fn stop(p: Option<&FilesystemParams>, ctx: &Ctx) -> Result<(), OcfError> {
        ops::stop(config(p, ctx).as_ref(), ctx)
    }

    fn monitor(p: Option<&FilesystemParams>, ctx: &Ctx) -> Result<Status, OcfError> {
        if !matches!(ctx.check_level(), 0 | 10 | 20) {
            return Err(OcfError::configured(format!(
                "unsupported monitor depth OCF_CHECK_LEVEL={} (0, 10 or 20)",
                ctx.check_level()
            )));
        }
        ops::monitor(config(p, ctx).as_ref(), ctx)
    }
}

/// The configuration for stop and monitor: from the parameters, else from what of them
/// can be read (broken optional ones at their defaults); `None` when even that fails (the
/// record alone is then used).
fn config(p: Option<&FilesystemParams>, ctx: &Ctx) -> Option<Config> {
    let lenient;
    let p = match p {
        Some(p) => p,
        None => {
            lenient = ocf::params::lenient::<FilesystemParams>(&ctx.env)?;
            &lenient
        }
    };
    match params::check(p, ctx) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("{}; acting on the recorded mount only", e.reason);
            None
        }
    }
}

/// The device a source names, for start's checks and the record.
fn source_name(s: &Source) -> String {
    match s {
        Source::Block(p) => p.display().to_string(),
        Source::Uuid(u) => format!("UUID={u}"),
        Source::Label(l) => format!("LABEL={l}"),
        Source::Other(o) => o.clone(),
    }
}
