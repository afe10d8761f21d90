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

mod client;
pub mod greeting;
mod node;

use crate::service::group::StopStep;
use crate::service::{self, files, key, tool, Service};
use crate::state::Record;
use greeting::greeting;
use nix::sys::signal::Signal;
use ocf::{Action, ActionSpec, AgentInfo, Ctx, Deadline, OcfError, ParamSpec};
use std::ffi::OsString;
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
            "Replication user",
            "Upstream's replication (promotable) mode: the user for CHANGE MASTER.",
        ).no_effect(STANDALONE),
        replication_passwd: Option<String> => ParamSpec::new(
            "Replication password",
            "Upstream's replication (promotable) mode: the password of replication_user.",
        ).secret().no_effect(STANDALONE),
        replication_port: Option<String> => ParamSpec::new(
            "Replication port",
            "Upstream's replication (promotable) mode: the port replicas connect to.",
        ).no_effect(STANDALONE),
        replication_require_ssl: Option<String> => ParamSpec::new(
            "Replication over TLS",
            "Upstream's replication (promotable) mode: require TLS for replication.",
        ).no_effect(STANDALONE),
        replication_master_ssl_ca: Option<String> => ParamSpec::new(
            "Replication CA",
            "Upstream's replication (promotable) mode: MASTER_SSL_CA.",
        ).no_effect(STANDALONE),
        replication_master_ssl_cert: Option<String> => ParamSpec::new(
            "Replication certificate",
            "Upstream's replication (promotable) mode: MASTER_SSL_CERT.",
        ).no_effect(STANDALONE),
        replication_master_ssl_key: Option<String> => ParamSpec::new(
            "Replication key",
            "Upstream's replication (promotable) mode: MASTER_SSL_KEY.",
        ).no_effect(STANDALONE),
        max_slave_lag: Option<String> => ParamSpec::new(
            "Maximum replica lag",
            "Upstream's replication (promotable) mode: seconds a replica may lag.",
        ).no_effect(STANDALONE),
        evict_outdated_slaves: Option<String> => ParamSpec::new(
            "Evict outdated replicas",
            "Upstream's replication (promotable) mode: stop a replica that lags too much.",
        ).no_effect(STANDALONE),
        reader_attribute: Option<String> => ParamSpec::new(
            "Reader attribute",
            "Upstream's replication (promotable) mode: the node attribute marking readable \
             replicas.",
        ).no_effect(STANDALONE),
    }
}

pub struct Mysql;

/// Why the replication parameters change nothing.
const STANDALONE: &str = "upstream uses it only in its replication (promotable) mode, which \
    rustha refuses (a promotable clone fails with 6); a standalone server ignores it, as \
    upstream's does.";

const SERVERS: &[&str] = &[
    "/usr/sbin/mariadbd",
    "/usr/sbin/mysqld",
    "/usr/libexec/mysqld",
];

fn config_path(p: &MysqlParams) -> PathBuf {
    match &p.config {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ if Path::new("/etc/my.cnf").exists() => PathBuf::from("/etc/my.cnf"),
        _ => PathBuf::from("/etc/mysql/my.cnf"),
    }
}

fn extra(p: &MysqlParams) -> Result<Vec<OsString>, OcfError> {
    tool::words_param("additional_parameters", &p.additional_parameters)
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

    fn check_meta(env: &ocf::OcfEnv) -> Result<(), OcfError> {
        if env.is_promotable() {
            return Err(OcfError::configured(
                "promotable (replication) mode is not supported by rustha's mysql",
            ));
        }
        Ok(())
    }

    fn check_node(p: &MysqlParams, ctx: &Ctx) -> Result<(), OcfError> {
        // What a path names is checked at every validate; ownership and access, which
        // need the user, for a start and a deep validate.
        let deep = ctx.action == Action::Start || ctx.check_level() >= 10;
        let user = if deep { Some(node::run_as(p)?) } else { None };
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
        node::check_datadir(p, &user)
    }

    fn binary(p: &MysqlParams) -> Result<PathBuf, OcfError> {
        tool::find_binary(p.binary.as_deref(), "the MySQL/MariaDB server", SERVERS)
    }

    fn plan(p: &MysqlParams, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError> {
        let config = config_path(p);
        files::check_config(&config)?;
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
        let (st, _, err) = tool::run_tool(&server, &args, &ctx.deadline)?;
        if !st.success() {
            return Err(OcfError::configured(format!(
                "server configuration test failed: {}",
                server_errors(&err)
            )));
        }
        let mut rec = Record::default();
        rec.set(key::CONFIG, config.display())
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
        node::prepare(p, service::config_of(plan), ctx)
    }

    fn args(p: &MysqlParams, plan: &Record) -> Result<Vec<OsString>, OcfError> {
        server_args(p, service::config_of(plan))
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
        client::count_rows(p, plan, ctx)
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
    }

    #[test]
    fn params_and_refusals() {
        let p: MysqlParams = ocf::params::from_pairs(&[]).unwrap();
        assert!(Mysql::check_params(&p).is_ok());
        assert_eq!(p.test_table, "mysql.user");
        for (k, v) in [
            ("test_table", "x;y"),
            ("test_table", "user"),
            ("additional_parameters", "--x=`id`"),
            ("datadir", "relative/dir"),
        ] {
            let p: MysqlParams = ocf::params::from_pairs(&[(k, v)]).unwrap();
            let e = Mysql::check_params(&p).unwrap_err();
            assert!(e.reason.starts_with(&format!("parameter {k}:")), "{e:?}");
        }
    }
}
