//! `mysql`: parameter-compatible with `ocf:heartbeat:mysql` (standalone mode), on the
//! generic service core. MariaDB and MySQL.
//!
//! - The server is mysqld/mariadbd itself, in the foreground, as the leader of its own
//!   session: no mysqld_safe that restarts it behind the cluster's back (upstream #759).
//!   A `binary` of mysqld_safe still works (its mysqld is found through the pidfile).
//! - Configuration test: `mysqld --defaults-file=... <the start options> --help
//!   --verbose`, which rejects unknown options and malformed values without starting.
//! - Depth 10 / readiness: the server's protocol greeting on its unix socket (what
//!   `mysqladmin ping` relies on), read by us: no fork, no credentials, and an error
//!   greeting ("Too many connections") is a failure with its text.
//! - Depth 20: `SELECT COUNT(*) FROM <test_table>` through the client binary, the
//!   credentials in a 0600 option file (never on a command line, never logged).

use crate::service::group::StopStep;
use crate::service::{self, files, key, Service};
use crate::state::{Record, StateFile};
use nix::sys::signal::Signal;
use ocf::{Action, ActionSpec, AgentInfo, Ctx, Deadline, OcfError, ParamSpec};
use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

ocf::params! {
    pub struct MysqlParams {
        binary: Option<String> => ParamSpec::new(
            "Server binary",
            "The server binary. Unset: /usr/sbin/mariadbd, else /usr/sbin/mysqld, else \
             /usr/libexec/mysqld. (Upstream's default is mysqld_safe, which restarts a killed \
             mysqld behind the cluster's back; a mysqld_safe given here still works.)",
        ),
        client_binary: Option<String> => ParamSpec::new(
            "Client binary",
            "The client used by the depth-20 check. Unset: mariadb, else mysql.",
        ),
        config: Option<String> => ParamSpec::new(
            "Configuration file",
            "The server's configuration file (--defaults-file). Unset: /etc/my.cnf if it \
             exists, else /etc/mysql/my.cnf.",
        ),
        datadir: String => ParamSpec::new(
            "Data directory",
            "The data directory. It must exist (unless enable_creation) and be writable by \
             user; so must the directories of pid and socket.",
        ).default("/var/lib/mysql"),
        user: String => ParamSpec::new("User", "The user the server runs as (--user).")
            .default("mysql"),
        group: String => ParamSpec::new(
            "Group",
            "The group that owns the directories and log file the agent creates.",
        ).default("mysql"),
        log: String => ParamSpec::new(
            "Error log",
            "The server's error log (--log-error). If it exists, it must be a regular file \
             belonging to user (a device, a directory or another user's file is refused).",
        ).default("/var/log/mysqld.log"),
        pid: String => ParamSpec::new(
            "Pidfile",
            "The server's pidfile (--pid-file). If it exists, it must be a regular file \
             belonging to user and holding a pid or nothing; a stop removes it only when it \
             holds the stopped server's pid.",
        ).default("/var/run/mysql/mysqld.pid"),
        socket: String => ParamSpec::new(
            "Socket",
            "The server's unix socket (--socket); the checks connect to it. If it exists, it \
             must be a socket; a stop removes it only when nobody answers on it.",
        ).default("/var/lib/mysql/mysql.sock"),
        test_table: String => ParamSpec::new(
            "Test table",
            "The table counted by the depth-20 check: database.table, both parts required.",
        ).default("mysql.user"),
        test_user: String => ParamSpec::new("Test user", "The user of the depth-20 check.")
            .default("root"),
        test_passwd: Option<String> => ParamSpec::new(
            "Test password",
            "The password of test_user (unset: none, e.g. unix_socket authentication). It is \
             handed to the client in a private option file, never on a command line.",
        ).secret(),
        enable_creation: bool => ParamSpec::new(
            "Initialise an empty data directory",
            "When the data directory has no system tables (no mysql/ inside), initialise it \
             (mariadb-install-db or mysql_install_db) before the first start.",
        ).default("false"),
        additional_parameters: Option<String> => ParamSpec::new(
            "Extra server options",
            "Extra server options, split into words like a shell would (quotes work) but never \
             passed to a shell, e.g. --skip-networking --port=3307.",
        ),
        replication_user: Option<String> => ParamSpec::new(
            "Replication user (unsupported)",
            "Upstream's promotable replication mode is not supported; a value is refused.",
        ),
        replication_passwd: Option<String> => ParamSpec::new(
            "Replication password (unsupported)",
            "Upstream's promotable replication mode is not supported; a value is refused.",
        ).secret(),
    }
}

pub struct Mysql;

const SERVERS: &[&str] = &[
    "/usr/sbin/mariadbd",
    "/usr/sbin/mysqld",
    "/usr/libexec/mysqld",
];
const CLIENTS: &[&str] = &["/usr/bin/mariadb", "/usr/bin/mysql"];

fn config_path(p: &MysqlParams) -> PathBuf {
    match &p.config {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ if Path::new("/etc/my.cnf").exists() => PathBuf::from("/etc/my.cnf"),
        _ => PathBuf::from("/etc/mysql/my.cnf"),
    }
}

fn extra(p: &MysqlParams) -> Result<Vec<OsString>, OcfError> {
    service::words_param("additional_parameters", &p.additional_parameters)
}

fn server_args(p: &MysqlParams, config: &Path) -> Result<Vec<OsString>, OcfError> {
    let mut a: Vec<OsString> = vec![
        format!("--defaults-file={}", config.display()).into(),
        format!("--pid-file={}", p.pid).into(),
        format!("--socket={}", p.socket).into(),
        format!("--datadir={}", p.datadir).into(),
        format!("--log-error={}", p.log).into(),
        format!("--user={}", p.user).into(),
    ];
    a.extend(extra(p)?);
    Ok(a)
}

/// The server's `[ERROR]` lines without timestamps.
fn server_errors(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.find("[ERROR]").map(|i| l[i + 7..].trim()))
        .filter(|l| !l.is_empty() && *l != "Aborting")
        .collect();
    if lines.is_empty() {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string()
    } else {
        lines.join(" | ")
    }
}

/// `db.table`, plain identifiers only (it goes into SQL). A table without its database
/// cannot be counted: the check connects without a default database.
fn valid_table(t: &str) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    match t.split_once('.') {
        Some((d, t)) => ident(d) && ident(t),
        None => false,
    }
}

/// Read the server's protocol greeting from its unix socket. `Ok(version)`.
pub fn greeting(sock: &Path, deadline: &Deadline) -> Result<String, String> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| format!("socket: {e}"))?;
    let addr = SockAddr::unix(sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    // Non-blocking: a full backlog must not hang us.
    s.set_nonblocking(true).ok();
    s.connect(&addr)
        .map_err(|e| format!("connect to {}: {e}", sock.display()))?;
    s.set_nonblocking(false).ok();
    let mut s: std::os::unix::net::UnixStream =
        std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(s));
    let left = deadline.remaining();
    if left.is_zero() {
        return Err("no time left for the check".into());
    }
    s.set_read_timeout(Some(left)).ok();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr)
        .map_err(|e| format!("no greeting from {}: {e}", sock.display()))?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
    if len == 0 || len > 1 << 16 {
        return Err(format!("not a MySQL greeting (length {len})"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("short greeting from {}: {e}", sock.display()))?;
    parse_greeting(&body)
}

fn parse_greeting(body: &[u8]) -> Result<String, String> {
    match body.first() {
        Some(0x0a) => {
            let v = &body[1..];
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            Ok(String::from_utf8_lossy(&v[..end]).into_owned())
        }
        Some(0xff) if body.len() >= 3 => {
            let code = u16::from_le_bytes([body[1], body[2]]);
            let mut msg = &body[3..];
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            Err(format!(
                "the server refused the connection: error {code}: {}",
                String::from_utf8_lossy(msg)
            ))
        }
        _ => Err("not a MySQL protocol-10 greeting".into()),
    }
}

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
fn run_as(p: &MysqlParams) -> Result<files::RunAs, OcfError> {
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
    let (st, out, err) = service::run_tool(&tool, &args, &ctx.deadline)?;
    if !st.success() {
        return Err(OcfError::generic(format!(
            "initialising {} failed ({st}): {}",
            p.datadir,
            server_errors(&format!("{out}\n{err}"))
        )));
    }
    Ok(())
}

/// `[client]` option-file value: quoted, with the escapes the client understands.
fn option_value(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Service for Mysql {
    type Params = MysqlParams;
    const INFO: AgentInfo = AgentInfo {
        name: "mysql",
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Manages a MySQL or MariaDB server (standalone)",
        longdesc: "Starts, monitors and stops a MySQL or MariaDB server. Drop-in replacement \
            for ocf:heartbeat:mysql in standalone mode (replication/promotable mode is not \
            supported): the same parameters, but start tests the configuration and returns \
            only when the server answers on its socket; the server runs without mysqld_safe; \
            depth 10 reads the server's protocol greeting, depth 20 counts the rows of \
            test_table as test_user; stop sends SIGTERM (a clean shutdown), then SIGKILL \
            within the operation's timeout, and removes a stale socket and pidfile.",
        actions: &[
            ActionSpec::new(Action::Start, 120),
            ActionSpec::new(Action::Stop, 120),
            ActionSpec::new(Action::Monitor, 30).interval(20).depth(0),
            ActionSpec::new(Action::MetaData, 5),
            ActionSpec::new(Action::ValidateAll, 30),
        ],
    };
    const STOP: &'static [StopStep] = &[StopStep {
        signal: Signal::SIGTERM,
        num: 9,
        den: 10,
    }];
    const RELOAD: Option<Signal> = None;

    fn check_params(p: &MysqlParams) -> Result<(), OcfError> {
        extra(p)?;
        if !valid_table(&p.test_table) {
            return Err(OcfError::invalid_param(
                "test_table",
                format!(
                    "{} is not database.table (letters, digits, _ and $ only)",
                    ocf::params::shown(&p.test_table)
                ),
            ));
        }
        for (k, v) in [
            ("replication_user", &p.replication_user),
            ("replication_passwd", &p.replication_passwd),
        ] {
            if v.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(OcfError::invalid_param(
                    k,
                    "replication (promotable) mode is not supported by rustha's mysql; use \
                     ocf:heartbeat:mysql or ocf:heartbeat:mariadb for it",
                ));
            }
        }
        for (k, v) in [
            ("datadir", &p.datadir),
            ("pid", &p.pid),
            ("socket", &p.socket),
            ("log", &p.log),
        ] {
            if !v.starts_with('/') {
                return Err(OcfError::invalid_param(k, "must be an absolute path"));
            }
        }
        Ok(())
    }

    fn check_node(p: &MysqlParams, ctx: &Ctx) -> Result<(), OcfError> {
        // What a path names is checked at every validate; ownership and access, which
        // need the user, for a start and a deep validate.
        let deep = ctx.action == Action::Start || ctx.check_level() >= 10;
        let user = if deep { Some(run_as(p)?) } else { None };
        let owner = user.as_ref().map(|u| (u.uid, u.name.as_str()));
        files::check_pidfile("parameter pid", Path::new(&p.pid), owner)?;
        files::check_socket("parameter socket", Path::new(&p.socket))?;
        files::check_log("parameter log", Path::new(&p.log), owner)?;
        for (k, v) in [("pid", &p.pid), ("socket", &p.socket), ("log", &p.log)] {
            if Path::new(v) == Path::new(&p.datadir) {
                return Err(OcfError::invalid_param(k, "names the data directory"));
            }
        }
        let Some(user) = user else { return Ok(()) };
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
        check_writable(p, &user)
    }

    fn binary(p: &MysqlParams) -> Result<PathBuf, OcfError> {
        service::find_binary(p.binary.as_deref(), "the MySQL/MariaDB server", SERVERS)
    }

    fn plan(p: &MysqlParams, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError> {
        if ctx.env.is_promotable() {
            return Err(OcfError::configured(
                "promotable (replication) mode is not supported by rustha's mysql",
            ));
        }
        let config = config_path(p);
        if !config.is_file() {
            return Err(OcfError::not_installed(format!(
                "configuration file {} does not exist",
                config.display()
            )));
        }
        // mysqld_safe has no --help --verbose of the server: test with the server itself.
        let server = if bin.to_string_lossy().contains("safe") {
            Self::binary(&MysqlParams {
                binary: None,
                ..p.clone()
            })?
        } else {
            bin.to_path_buf()
        };
        let mut args = server_args(p, &config)?;
        args.extend(["--help".into(), "--verbose".into()]);
        let (st, _, err) = service::run_tool(&server, &args, &ctx.deadline)?;
        if !st.success() {
            return Err(OcfError::configured(format!(
                "server configuration test failed: {}",
                server_errors(&err)
            )));
        }
        let mut rec = Record::default();
        rec.set("config", config.display())
            .set(key::PIDFILE, &p.pid)
            .set(key::SOCKET, &p.socket)
            .set(key::ERROR_LOG, &p.log);
        if let Some(u) = files::RunAs::lookup(&p.user) {
            rec.set(key::OWNER, u.uid);
        }
        Ok(rec)
    }

    fn pidfile(p: &MysqlParams, _bin: &Path, _ctx: &Ctx) -> Option<PathBuf> {
        Some(PathBuf::from(&p.pid))
    }

    fn prepare(p: &MysqlParams, plan: &Record, ctx: &Ctx) -> Result<(), OcfError> {
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
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(log)
                .map_err(|e| OcfError::perm(format!("cannot create {}: {e}", log.display())))?;
            own(log, uid, gid)?;
        }
        let datadir = Path::new(&p.datadir);
        if !datadir.join("mysql").is_dir() {
            if !p.enable_creation {
                return Err(no_system_tables(datadir));
            }
            server_dir(datadir, uid, gid)?;
            // Directories created just now: reachable by the user too?
            check_writable(p, &user)?;
            let bin = Self::binary(p)?;
            install_db(
                p,
                &bin,
                Path::new(plan.get("config").unwrap_or_default()),
                ctx,
            )?;
        }
        check_writable(p, &user)
    }

    fn args(p: &MysqlParams, plan: &Record) -> Result<Vec<OsString>, OcfError> {
        server_args(p, Path::new(plan.get("config").unwrap_or_default()))
    }

    fn ping(
        plan: &Record,
        _listening: Option<SocketAddr>,
        deadline: &Deadline,
    ) -> Result<(), String> {
        let sock = plan.get(key::SOCKET).ok_or("no socket recorded")?;
        greeting(Path::new(sock), deadline).map(|_| ())
    }

    fn content(
        p: &MysqlParams,
        plan: &Record,
        _listening: Option<SocketAddr>,
        ctx: &Ctx,
    ) -> Result<(), OcfError> {
        let client = service::find_binary(p.client_binary.as_deref(), "the mysql client", CLIENTS)?;
        let state = StateFile::for_ctx(ctx);
        let mut opt = state.path.clone().into_os_string();
        opt.push(".client.cnf");
        let opt = PathBuf::from(opt);
        let mut text = format!("[client]\nuser={}\n", option_value(&p.test_user));
        if let Some(pw) = p.test_passwd.as_deref().filter(|s| !s.is_empty()) {
            text.push_str(&format!("password={}\n", option_value(pw)));
        }
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::remove_file(&opt);
            if let Some(dir) = opt.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&opt)
                .and_then(|mut f| f.write_all(text.as_bytes()).map(|_| f))
                .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", opt.display())))?;
            let _ = f.flush();
        }
        let args: Vec<OsString> = vec![
            format!("--defaults-file={}", opt.display()).into(),
            format!("--socket={}", plan.get(key::SOCKET).unwrap_or(&p.socket)).into(),
            "--batch".into(),
            "--skip-column-names".into(),
            "-e".into(),
            format!("SELECT COUNT(*) FROM {}", p.test_table).into(),
        ];
        let result = service::run_tool(&client, &args, &ctx.deadline);
        let _ = std::fs::remove_file(&opt);
        let (st, out, err) = result?;
        if !st.success() || out.trim().parse::<u64>().is_err() {
            return Err(OcfError::generic(format!(
                "depth-20 check: SELECT COUNT(*) FROM {} as {} failed: {}",
                p.test_table,
                p.test_user,
                err.lines()
                    .find(|l| l.starts_with("ERROR"))
                    .or_else(|| err
                        .lines()
                        .find(|l| !l.trim().is_empty() && !l.starts_with("---")))
                    .unwrap_or(out.trim())
                    .trim()
            )));
        }
        Ok(())
    }

    fn is_server_exe(bin: &Path, exe: &Path) -> bool {
        std::fs::canonicalize(bin).ok().as_deref() == Some(exe)
            || exe
                .file_name()
                .is_some_and(|n| n == "mysqld" || n == "mariadbd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        let mut g = vec![0x0a];
        g.extend_from_slice(b"10.11.19-MariaDB\0rest");
        assert_eq!(parse_greeting(&g).unwrap(), "10.11.19-MariaDB");
        let mut e = vec![0xff, 0x10, 0x04, b'#'];
        e.extend_from_slice(b"08004Too many connections");
        assert_eq!(
            parse_greeting(&e).unwrap_err(),
            "the server refused the connection: error 1040: Too many connections"
        );
        assert!(parse_greeting(b"HTTP/1.1").is_err());
        assert!(parse_greeting(b"").is_err());
    }

    #[test]
    fn tables_and_errors() {
        assert!(valid_table("mysql.user"));
        for bad in ["", "t1", "a.b.c", "x; DROP TABLE y", "a.", "`a`"] {
            assert!(!valid_table(bad), "{bad}");
        }
        let e = "2026-11-23  8:32:59 0 [Warning] Could not increase\n2026-11-23  8:32:59 0 [ERROR] mariadbd: unknown variable 'bogus-option=1'\n2026-11-23 0 [ERROR] Aborting\n";
        assert_eq!(
            server_errors(e),
            "mariadbd: unknown variable 'bogus-option=1'"
        );
        assert_eq!(option_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn params_and_refusals() {
        let p: MysqlParams = ocf::params::from_pairs(&[]).unwrap();
        assert!(Mysql::check_params(&p).is_ok());
        assert_eq!(p.test_table, "mysql.user");
        for (k, v) in [
            ("test_table", "x;y"),
            ("test_table", "user"),
            ("replication_user", "repl"),
            ("additional_parameters", "--x=`id`"),
            ("datadir", "relative/dir"),
        ] {
            let p: MysqlParams = ocf::params::from_pairs(&[(k, v)]).unwrap();
            let e = Mysql::check_params(&p).unwrap_err();
            assert!(e.reason.starts_with(&format!("parameter {k}:")), "{e:?}");
        }
    }
}
