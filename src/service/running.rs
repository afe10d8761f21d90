//! Finding the server's processes: its main process through its pidfile, the socket it
//! listens on, and a server of this kind running without our record.

use super::group::Group;
use super::{files, key, Service};
use crate::daemon::Identity;
use crate::procfs;
use crate::state::Record;
use ocf::Ctx;
use std::net::SocketAddr;
use std::path::Path;

/// The pid in a pidfile: a regular file (not a link, not a device) holding one.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())?;
    files::pidfile_content(path).flatten()
}

/// The server's main process: the pid in its pidfile when that is one of its
/// processes (mysqld under mysqld_safe), else the leader.
pub(super) fn main_pid(rec: &Record, members: &[i32]) -> Option<i32> {
    rec.get(key::PIDFILE)
        .and_then(|p| read_pidfile(Path::new(p)))
        .filter(|p| members.contains(p))
}

/// The socket on `port` that a process of the group listens on: the leader's first (an
/// nginx master holds them all), else any member's (a scan of all of /proc).
pub(super) fn listening(g: &Group, port: Option<u16>) -> Option<SocketAddr> {
    let port = port?;
    procfs::listening_on(g.leader.pid, port).or_else(|| {
        g.members()
            .iter()
            .find_map(|&m| procfs::listening_on(m, port))
    })
}

/// A server of this kind running without our record: through its pidfile. Without
/// parameters that parse, those that do (a broken one left at its default).
pub(super) fn foreign<S: Service>(p: Option<&S::Params>, ctx: &Ctx) -> Option<(Record, Group)> {
    let p = p
        .cloned()
        .or_else(|| ocf::params::lenient::<S::Params>(&ctx.env))?;
    let bin = S::binary(&p).ok()?;
    let pf = S::pidfile(&p, &bin, ctx)?;
    foreign_at::<S>(&bin, &pf)
}

/// As [`foreign`], with the pidfile already known (start has it from its plan).
pub(super) fn foreign_at<S: Service>(bin: &Path, pf: &Path) -> Option<(Record, Group)> {
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
