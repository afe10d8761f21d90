//! What the node must have for the server: its user and group, its directories
//! (created for it, writable by it) and its error log, and a data directory with the
//! system tables (initialised on the first start with enable_creation).

use super::{server_errors, Mysql, MysqlParams};
use crate::service::{files, tool, Service};
use ocf::{Ctx, OcfError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

fn ids(p: &MysqlParams) -> Result<(nix::unistd::Uid, nix::unistd::Gid), OcfError> {
    let (uid, _) = files::nss::user(&p.user)
        .ok_or_else(|| OcfError::not_installed(format!("user {} does not exist", p.user)))?;
    let gid = files::nss::group(&p.group)
        .ok_or_else(|| OcfError::not_installed(format!("group {} does not exist", p.group)))?;
    Ok((
        nix::unistd::Uid::from_raw(uid),
        nix::unistd::Gid::from_raw(gid),
    ))
}

/// The user the server runs as (-> 5 when it does not exist).
pub fn run_as(p: &MysqlParams) -> Result<files::RunAs, OcfError> {
    files::RunAs::lookup(&p.user)
        .ok_or_else(|| OcfError::not_installed(format!("user {} does not exist", p.user)))
}

/// The directories the server writes in: the datadir, the pidfile's and the socket's.
fn server_dirs(p: &MysqlParams) -> Vec<(&'static str, PathBuf)> {
    let mut v = vec![("data directory", PathBuf::from(&p.datadir))];
    for (what, f) in [
        ("pidfile directory", &p.pid),
        ("socket directory", &p.socket),
    ] {
        if let Some(d) = Path::new(f).parent() {
            if !v.iter().any(|(_, x)| x == d) {
                v.push((what, d.to_path_buf()));
            }
        }
    }
    v
}

/// Each of the server's directories that exists is writable by its user (-> 4, before
/// the server could abort with "Errcode: 13").
fn check_writable(p: &MysqlParams, user: &files::RunAs) -> Result<(), OcfError> {
    for (what, dir) in server_dirs(p) {
        if dir.is_dir() && !user.can_write_dir(&dir) {
            return Err(OcfError::perm(format!(
                "{what} {} is not writable by user {} (uid {}): the server could not start",
                dir.display(),
                user.name,
                user.uid
            )));
        }
    }
    Ok(())
}

fn own(path: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), OcfError> {
    nix::unistd::chown(path, Some(uid), Some(gid))
        .map_err(|e| OcfError::perm(format!("cannot chown {}: {e}", path.display())))
}

/// Create `dir` (and its parents) if missing; a directory we create belongs to the server.
fn server_dir(dir: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), OcfError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| OcfError::perm(format!("cannot create {}: {e}", dir.display())))?;
    own(dir, uid, gid)
}

fn no_system_tables(datadir: &Path) -> OcfError {
    OcfError::not_installed(format!(
        "data directory {} has no system tables (no mysql/ in it); set enable_creation=true \
         to initialise it",
        datadir.display()
    ))
}

fn install_db(p: &MysqlParams, bin: &Path, config: &Path, ctx: &Ctx) -> Result<(), OcfError> {
    let tool = ["mariadb-install-db", "mysql_install_db"]
        .iter()
        .flat_map(|t| ["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(|d| Path::new(d).join(t)))
        .find(|p| p.is_file());
    let (tool, args): (PathBuf, Vec<OsString>) = match tool {
        Some(t) => (
            t,
            vec![
                format!("--defaults-file={}", config.display()).into(),
                format!("--datadir={}", p.datadir).into(),
                format!("--user={}", p.user).into(),
            ],
        ),
        // MySQL 8 has no install script: the server initialises itself.
        None => (
            bin.to_path_buf(),
            vec![
                format!("--defaults-file={}", config.display()).into(),
                "--initialize-insecure".into(),
                format!("--datadir={}", p.datadir).into(),
                format!("--user={}", p.user).into(),
            ],
        ),
    };
    tracing::info!("initialising {} with {}", p.datadir, tool.display());
    let (st, out, err) = tool::run_tool(&tool, &args, &ctx.deadline)?;
    if !st.success() {
        return Err(OcfError::generic(format!(
            "initialising {} failed ({st}): {}",
            p.datadir,
            server_errors(&format!("{out}\n{err}"))
        )));
    }
    Ok(())
}

/// The data directory at a start or a deep validate: a directory holding the system
/// tables (or, with enable_creation, absent or empty), writable by the server's `user`.
pub fn check_datadir(p: &MysqlParams, user: &files::RunAs) -> Result<(), OcfError> {
    ids(p)?;
    let datadir = Path::new(&p.datadir);
    match std::fs::metadata(datadir) {
        Ok(m) if !m.is_dir() => {
            return Err(OcfError::not_installed(format!(
                "data directory {} is {}, not a directory",
                datadir.display(),
                files::kind(&m)
            )))
        }
        Ok(_) if !p.enable_creation && !datadir.join("mysql").is_dir() => {
            return Err(no_system_tables(datadir));
        }
        Err(_) if !p.enable_creation => {
            return Err(OcfError::not_installed(format!(
                "data directory {} does not exist (set enable_creation=true to create \
                 and initialise it)",
                datadir.display()
            )))
        }
        _ => {}
    }
    check_writable(p, user)
}

/// An empty error log (0640) that belongs to the server.
fn create_log(log: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), OcfError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(log)
        .map_err(|e| OcfError::perm(format!("cannot create {}: {e}", log.display())))?;
    own(log, uid, gid)
}

/// Before a start: the server's directories and its log created for it, the data
/// directory initialised when it has no system tables (enable_creation). `config`: the
/// configuration file the plan names.
pub fn prepare(p: &MysqlParams, config: &Path, ctx: &Ctx) -> Result<(), OcfError> {
    let (uid, gid) = ids(p)?;
    let user = run_as(p)?;
    // A socket something answers on: another server (ours would have been found
    // through its pidfile).
    let sock = Path::new(&p.socket);
    if std::os::unix::net::UnixStream::connect(sock).is_ok() {
        return Err(OcfError::generic(format!(
            "another server answers on socket {}",
            sock.display()
        )));
    }
    for f in [&p.pid, &p.socket] {
        if let Some(dir) = Path::new(f).parent() {
            server_dir(dir, uid, gid)?;
        }
    }
    let log = Path::new(&p.log);
    if let Some(dir) = log.parent() {
        server_dir(dir, uid, gid)?;
    }
    if !log.exists() {
        create_log(log, uid, gid)?;
    }
    let datadir = Path::new(&p.datadir);
    if !datadir.join("mysql").is_dir() {
        if !p.enable_creation {
            return Err(no_system_tables(datadir));
        }
        server_dir(datadir, uid, gid)?;
        // Directories created just now: reachable by the user too?
        check_writable(p, &user)?;
        let bin = Mysql::binary(p)?;
        install_db(p, &bin, config, ctx)?;
    }
    check_writable(p, &user)
}
