//! `nginx`: parameter-compatible with `ocf:heartbeat:nginx`, on the generic service core.
//!
//! nginx runs in the foreground (`-g "daemon off;"`) as the leader of its own session,
//! so the master and every worker are found again even when the master dies. The
//! configuration is tested with `nginx -T` before every start and reload; its dump
//! gives the pidfile, the port (first `listen`) and a `stub_status` location.

pub mod dump;

use crate::service::group::{split_words, StopStep};
use crate::service::{self, files, key, tool, web, Service};
use crate::state::Record;
use dump::{listen_ip, listen_port, Dump};
use nix::sys::signal::Signal;
use ocf::params::Port;
use ocf::{AgentInfo, Ctx, Deadline, OcfError, ParamSpec};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

ocf::params! {
    pub struct NginxParams {
        httpd: Option<String> => ParamSpec::new(
            "nginx binary",
            "The nginx binary. Unset: /usr/sbin/nginx, else /usr/local/sbin/nginx. (Upstream's \
             default is /usr/sbin/httpd, which on a host that also has Apache starts the wrong \
             server; rustha only uses a path you give it.)",
        ),
        configfile: Option<String> => ParamSpec::new(
            "Configuration file",
            "The nginx configuration file. Unset: the --conf-path nginx was built with \
             (nginx -V), /etc/nginx/nginx.conf on Debian.",
        ).unique(),
        port: Option<Port> => ParamSpec::new(
            "Port",
            "The TCP port nginx must listen on before start returns and that the depth-10 \
             check connects to. Unset: the port of the first listen directive, else 80.",
        ),
        status10url: Option<String> => ParamSpec::new(
            "Depth-10 URL",
            "The URL fetched by a depth-10 monitor: http://host[:port]/path, or a path, which \
             is fetched from the address nginx listens on. Unset: the first location with \
             stub_status in the configuration; if there is none, the site root (any answer \
             below 500 counts).",
        ),
        status10regex: String => ParamSpec::new(
            "Depth-10 regular expression",
            "What the status page must match (case-insensitive), when a status page is used.",
        ).default("Reading: [0-9]+ Writing: [0-9]+ Waiting: [0-9]+"),
        test20url: Option<String> => ParamSpec::new(
            "Depth-20 URL",
            "The URL fetched by a depth-20 monitor (as status10url). Unset: no depth-20 check.",
        ),
        test20regex: Option<String> => ParamSpec::new(
            "Depth-20 regular expression",
            "What the depth-20 page must match (case-insensitive). Unset: any 2xx answer.",
        ),
        test20conffile: Option<String> => ParamSpec::new(
            "Depth-20 test file (unsupported)",
            "Upstream's README.webapps test description.",
        ).refused("use test20url and test20regex."),
        test20name: Option<String> => ParamSpec::new(
            "Depth-20 test name (ignored)",
            "Upstream's test name within test20conffile.",
        ).no_effect("it names a test inside test20conffile, which rustha refuses."),
        external_monitor30_cmd: Option<String> => ParamSpec::new(
            "Depth-30 command",
            "A command run by a depth-30 monitor, split into words like a shell would but run \
             without a shell; a non-zero exit fails the monitor.",
        ),
        options: Option<String> => ParamSpec::new(
            "Extra options",
            "Extra nginx command-line options, split into words like a shell would (quotes \
             work) but never passed to a shell, e.g. -g 'worker_processes 2;'.",
        ),
        testclient: Option<String> => ParamSpec::new(
            "HTTP client (ignored)",
            "Upstream's choice of curl or wget for the checks.",
        ).no_effect("rustha makes its HTTP requests itself; the value is ignored."),
    }
}

pub struct Nginx;

const DEFAULT_BINARIES: &[&str] = &["/usr/sbin/nginx", "/usr/local/sbin/nginx"];

/// `--conf-path` and `--pid-path` from `nginx -V`.
fn build_paths(bin: &Path, deadline: &Deadline) -> (Option<String>, Option<String>) {
    let Ok((_, out, err)) = tool::run_tool(bin, &["-V".into()], deadline) else {
        return (None, None);
    };
    let text = format!("{out}{err}");
    let find = |flag: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(flag))
            .map(String::from)
    };
    (find("--conf-path="), find("--pid-path="))
}

fn config_of(p: &NginxParams, bin: &Path, deadline: &Deadline) -> (PathBuf, Option<String>) {
    match &p.configfile {
        Some(c) if !c.is_empty() => (PathBuf::from(c), None),
        _ => {
            let (conf, pid) = build_paths(bin, deadline);
            (
                PathBuf::from(conf.unwrap_or_else(|| "/etc/nginx/nginx.conf".into())),
                pid,
            )
        }
    }
}

fn base_args(p: &NginxParams, config: &Path) -> Result<Vec<OsString>, OcfError> {
    let mut a: Vec<OsString> = vec![
        "-c".into(),
        config.into(),
        "-g".into(),
        "daemon off;".into(),
    ];
    a.extend(tool::words_param("options", &p.options)?);
    Ok(a)
}

/// The first line of nginx's complaint, without its timestamp and pid prefix.
fn nginx_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("[emerg]") || l.contains("[alert]") || l.contains("[crit]"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message");
    match line.find('[') {
        Some(i) => {
            let rest = &line[i..];
            // "[emerg] 123#123: text" -> "[emerg] text"
            match (rest.find(']'), rest.find(": ")) {
                (Some(b), Some(c)) if c > b => format!("{} {}", &rest[..=b], &rest[c + 2..]),
                _ => rest.to_string(),
            }
        }
        None => line.trim().to_string(),
    }
}

/// `nginx -T`: the configuration file, its dump and its pidfile (broken -> 6).
fn test_config(
    p: &NginxParams,
    bin: &Path,
    ctx: &Ctx,
) -> Result<(PathBuf, Dump, String), OcfError> {
    let (config, built_pid) = config_of(p, bin, &ctx.deadline);
    files::check_config(&config)?;
    let mut args = base_args(p, &config)?;
    args.insert(0, "-T".into());
    args.insert(1, "-q".into());
    // The file times are of the kernel's coarse clock: a tick of margin.
    let before = std::time::SystemTime::now() - std::time::Duration::from_millis(20);
    let (st, out, err) = tool::run_tool(bin, &args, &ctx.deadline)?;
    if !st.success() {
        return Err(OcfError::configured(format!(
            "nginx configuration test failed: {}",
            nginx_message(&err)
        )));
    }
    let dump = Dump::parse(&out);
    let pid = dump
        .pid
        .clone()
        .or(built_pid)
        .unwrap_or_else(|| "/run/nginx.pid".into());
    // The test creates an empty pidfile when there is none: not ours to leave behind.
    // Only that one: an empty regular file that came into being during the test.
    let made_now = std::fs::symlink_metadata(&pid).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        let ctime = std::time::UNIX_EPOCH
            + std::time::Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32);
        m.file_type().is_file() && m.len() == 0 && ctime >= before
    });
    if made_now {
        let _ = std::fs::remove_file(&pid);
    }
    Ok((config, dump, pid))
}

/// The words of external_monitor30_cmd: a command and its arguments (none: refused).
fn monitor30_words(cmd: &str) -> Result<(String, Vec<OsString>), OcfError> {
    let words =
        split_words(cmd).map_err(|e| OcfError::invalid_param("external_monitor30_cmd", e))?;
    let Some((bin, rest)) = words.split_first() else {
        return Err(OcfError::invalid_param("external_monitor30_cmd", "empty"));
    };
    Ok((bin.clone(), rest.iter().map(OsString::from).collect()))
}

/// Depth 30: external_monitor30_cmd, run without a shell; a non-zero exit fails.
fn monitor30(cmd: &str, deadline: &Deadline) -> Result<(), OcfError> {
    let (bin, args) = monitor30_words(cmd)?;
    let (st, _, err) = tool::run_tool(Path::new(&bin), &args, deadline)?;
    if !st.success() {
        return Err(OcfError::generic(format!(
            "external_monitor30_cmd failed ({st}): {}",
            err.lines().next().unwrap_or("").trim()
        )));
    }
    Ok(())
}

impl Service for Nginx {
    type Params = NginxParams;
    const INFO: AgentInfo = AgentInfo {
        name: "nginx",
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Manages an nginx web server",
        longdesc: "Starts, monitors and stops nginx. Drop-in replacement for \
            ocf:heartbeat:nginx: the same parameters, but start tests the configuration \
            (nginx -T) and returns only when nginx serves (its port is listening and a \
            request is answered); stop sends SIGQUIT (graceful), then SIGTERM, then SIGKILL \
            to every nginx process of the instance, workers included, within the operation's \
            timeout; depth 10 fetches the stub_status page, depth 20 checks test20url. reload \
            tests the configuration, then sends SIGHUP; it never starts a stopped nginx.",
        actions: web::ACTIONS,
    };
    const STOP: &'static [StopStep] = &[
        StopStep {
            signal: Signal::SIGQUIT,
            num: 1,
            den: 2,
        },
        StopStep {
            signal: Signal::SIGTERM,
            num: 1,
            den: 2,
        },
    ];
    const RELOAD: Option<Signal> = Some(Signal::SIGHUP);

    fn check_params(p: &NginxParams) -> Result<(), OcfError> {
        web::url_param("status10url", &p.status10url)?;
        web::url_param("test20url", &p.test20url)?;
        web::regex_param("status10regex", &p.status10regex)?;
        if let Some(r) = &p.test20regex {
            web::regex_param("test20regex", r)?;
        }
        tool::words_param("options", &p.options)?;
        if let Some(c) = &p.external_monitor30_cmd {
            monitor30_words(c)?;
        }
        Ok(())
    }

    fn binary(p: &NginxParams) -> Result<PathBuf, OcfError> {
        tool::find_binary(p.httpd.as_deref(), "nginx", DEFAULT_BINARIES)
    }

    fn plan(p: &NginxParams, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError> {
        let (config, dump, pid) = test_config(p, bin, ctx)?;
        let mut rec = Record::default();
        rec.set(key::CONFIG, config.display());
        files::check_pidfile(
            "the pidfile of the configuration (pid)",
            Path::new(&pid),
            None,
        )?;
        rec.set(key::PIDFILE, pid);
        // The listen directive the port is checked on: the one with that port.
        if let Some(port) = p.port {
            web::port_in_config(port.0, &config, &dump.ports())?;
        }
        let listen = dump.listen_for(p.port.map(|p| p.0));
        let port = p
            .port
            .map(|p| p.0)
            .or_else(|| listen.and_then(listen_port))
            .unwrap_or(80);
        rec.set(key::PORT, port);
        if let Some(ip) = listen.and_then(listen_ip) {
            rec.set(key::BIND, ip);
        }
        web::record_status(
            &mut rec,
            ("status10url", &p.status10url),
            dump.stub_status,
            Some(&p.status10regex),
        )?;
        Ok(rec)
    }

    fn pidfile(p: &NginxParams, bin: &Path, ctx: &Ctx) -> Option<PathBuf> {
        test_config(p, bin, ctx)
            .ok()
            .map(|(_, _, pid)| PathBuf::from(pid))
    }

    fn args(p: &NginxParams, plan: &Record) -> Result<Vec<OsString>, OcfError> {
        base_args(p, service::config_of(plan))
    }

    fn ping(
        plan: &Record,
        listening: Option<SocketAddr>,
        deadline: &Deadline,
    ) -> Result<(), String> {
        web::ping(plan, listening, deadline)
    }

    fn content(
        p: &NginxParams,
        _plan: &Record,
        listening: Option<SocketAddr>,
        ctx: &Ctx,
    ) -> Result<(), OcfError> {
        web::content(
            ("test20url", &p.test20url),
            ("test20regex", &p.test20regex),
            listening,
            &ctx.deadline,
        )?;
        match &p.external_monitor30_cmd {
            Some(cmd) if ctx.check_level() >= 30 => monitor30(cmd, &ctx.deadline),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let e = "2026/11/23 08:32:47 [emerg] 7852#7852: unknown directive \"listn\" in /tmp/x/bad.conf:9\nnginx: configuration file /tmp/x/bad.conf test failed\n";
        assert_eq!(
            nginx_message(e),
            "[emerg] unknown directive \"listn\" in /tmp/x/bad.conf:9"
        );
    }

    #[test]
    fn monitor30_command_words() {
        assert_eq!(
            monitor30_words("/bin/check -x 'a b'").unwrap(),
            ("/bin/check".to_string(), vec!["-x".into(), "a b".into()])
        );
        // An empty command is refused, not run (a monitor does not validate first).
        for empty in ["", " "] {
            let e = monitor30_words(empty).unwrap_err();
            assert_eq!(e.reason, "parameter external_monitor30_cmd: empty");
        }
    }

    #[test]
    fn params() {
        let p: NginxParams = ocf::params::from_pairs(&[]).unwrap();
        assert!(Nginx::check_params(&p).is_ok());
        for (k, v) in [
            ("status10url", "https://x/"),
            ("status10url", "/a`id`"),
            ("status10url", "/a;b"),
            ("status10url", "/$(id)"),
            ("status10url", "/a b"),
            ("test20url", "http://lo$(id)cal/"),
            ("test20regex", "("),
            ("options", "$(reboot)"),
            ("external_monitor30_cmd", " "),
        ] {
            let p: NginxParams = ocf::params::from_pairs(&[(k, v)]).unwrap();
            let e = Nginx::check_params(&p).unwrap_err();
            assert!(e.reason.starts_with(&format!("parameter {k}:")), "{e:?}");
        }
    }
}
