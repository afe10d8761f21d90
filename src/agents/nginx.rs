//! `nginx`: parameter-compatible with `ocf:heartbeat:nginx`, on the generic service core.
//!
//! nginx runs in the foreground (`-g "daemon off;"`) as the leader of its own session,
//! so the master and every worker are found again even when the master dies. The
//! configuration is tested with `nginx -T` before every start and reload; its dump
//! gives the pidfile, the port (first `listen`) and a `stub_status` location.

use crate::service::group::{split_words, StopStep};
use crate::service::{self, key, Service};
use crate::state::Record;
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
            "Upstream's README.webapps test description. Not supported: use test20url and \
             test20regex; a value is refused.",
        ),
        test20name: Option<String> => ParamSpec::new(
            "Depth-20 test name (ignored)",
            "Upstream's test name within test20conffile.",
        ).deprecated("test20conffile is not supported; the value is ignored."),
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
        ).deprecated("rustha makes its HTTP requests itself; the value is ignored."),
    }
}

pub struct Nginx;

const DEFAULT_BINARIES: &[&str] = &["/usr/sbin/nginx", "/usr/local/sbin/nginx"];

/// A configuration as `nginx -T` dumps it: tokens with the stack of enclosing blocks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub pid: Option<String>,
    pub listen: Option<String>,
    pub stub_status: Option<String>,
}

/// Split a dump into directives: (enclosing block headers, words).
fn directives(text: &str) -> Vec<(Vec<Vec<String>>, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let flush = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                flush(&mut cur, &mut words);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e)
                            }
                        }
                        d if d == c => break,
                        d => cur.push(d),
                    }
                }
                if cur.is_empty() {
                    words.push(String::new());
                }
            }
            ';' => {
                flush(&mut cur, &mut words);
                out.push((stack.clone(), std::mem::take(&mut words)));
            }
            '{' => {
                flush(&mut cur, &mut words);
                stack.push(std::mem::take(&mut words));
            }
            '}' => {
                flush(&mut cur, &mut words);
                words.clear();
                stack.pop();
            }
            c if c.is_whitespace() => flush(&mut cur, &mut words),
            c => cur.push(c),
        }
    }
    out
}

impl Dump {
    pub fn parse(text: &str) -> Dump {
        let mut d = Dump::default();
        for (stack, words) in directives(text) {
            let Some(name) = words.first() else { continue };
            let in_http_server = stack.iter().any(|b| b.first().is_some_and(|h| h == "http"))
                && stack
                    .iter()
                    .any(|b| b.first().is_some_and(|h| h == "server"));
            match name.as_str() {
                "pid" if stack.is_empty() && d.pid.is_none() => d.pid = words.get(1).cloned(),
                "listen" if in_http_server && d.listen.is_none() => {
                    d.listen = words.get(1).cloned()
                }
                "stub_status" if in_http_server && d.stub_status.is_none() => {
                    let on = words.get(1).is_none_or(|v| v != "off");
                    let loc = stack
                        .iter()
                        .rev()
                        .find(|b| b.first().is_some_and(|h| h == "location"));
                    // `location = /x` or `location /x`; regex locations cannot be fetched.
                    let path = loc.and_then(|b| match b.get(1).map(String::as_str) {
                        Some("=") | Some("^~") => b.get(2).cloned(),
                        Some("~") | Some("~*") => None,
                        other => other.map(String::from),
                    });
                    if on {
                        d.stub_status = path;
                    }
                }
                _ => {}
            }
        }
        d
    }
}

/// The port of a `listen` value: `8080`, `127.0.0.1:8080`, `[::]:80`, `*:80`, `host`.
pub fn listen_port(v: &str) -> Option<u16> {
    if v.starts_with("unix:") {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    let tail = match v.rfind(']') {
        Some(i) => &v[i + 1..],
        None => v,
    };
    match tail.rsplit_once(':') {
        Some((_, p)) => p.parse().ok(),
        None => Some(80),
    }
}

/// The address of a `listen` value, when it names one (`127.0.0.1:8080`, `[::1]:80`).
pub fn listen_ip(v: &str) -> Option<std::net::IpAddr> {
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    v.rsplit_once(':')
        .map_or(v, |(h, _)| h)
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(Into::into)
}

/// `--conf-path` and `--pid-path` from `nginx -V`.
fn build_paths(bin: &Path, deadline: &Deadline) -> (Option<String>, Option<String>) {
    let Ok((_, out, err)) = service::run_tool(bin, &["-V".into()], deadline) else {
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
    a.extend(service::words_param("options", &p.options)?);
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
        actions: service::WEB_ACTIONS,
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
        service::url_param("status10url", &p.status10url)?;
        service::url_param("test20url", &p.test20url)?;
        service::regex_param("status10regex", &p.status10regex)?;
        if let Some(r) = &p.test20regex {
            service::regex_param("test20regex", r)?;
        }
        if p.test20conffile.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(OcfError::invalid_param(
                "test20conffile",
                "not supported by rustha; use test20url and test20regex",
            ));
        }
        service::words_param("options", &p.options)?;
        if let Some(c) = &p.external_monitor30_cmd {
            if split_words(c)
                .map_err(|e| OcfError::invalid_param("external_monitor30_cmd", e))?
                .is_empty()
            {
                return Err(OcfError::invalid_param("external_monitor30_cmd", "empty"));
            }
        }
        Ok(())
    }

    fn binary(p: &NginxParams) -> Result<PathBuf, OcfError> {
        service::find_binary(p.httpd.as_deref(), "nginx", DEFAULT_BINARIES)
    }

    fn plan(p: &NginxParams, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError> {
        let (config, built_pid) = config_of(p, bin, &ctx.deadline);
        if !config.is_file() {
            return Err(OcfError::not_installed(format!(
                "configuration file {} does not exist",
                config.display()
            )));
        }
        let mut args = base_args(p, &config)?;
        args.insert(0, "-T".into());
        args.insert(1, "-q".into());
        let (st, out, err) = service::run_tool(bin, &args, &ctx.deadline)?;
        if !st.success() {
            return Err(OcfError::configured(format!(
                "nginx configuration test failed: {}",
                nginx_message(&err)
            )));
        }
        let dump = Dump::parse(&out);
        let mut rec = Record::default();
        rec.set("config", config.display());
        let pid = dump
            .pid
            .or(built_pid)
            .unwrap_or_else(|| "/run/nginx.pid".into());
        // `nginx -t` creates an empty pidfile when there is none: not ours to leave behind.
        if std::fs::metadata(&pid).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&pid);
        }
        rec.set(key::PIDFILE, pid);
        let port = p
            .port
            .map(|p| p.0)
            .or_else(|| dump.listen.as_deref().and_then(listen_port))
            .unwrap_or(80);
        rec.set(key::PORT, port);
        if let Some(ip) = dump.listen.as_deref().and_then(listen_ip) {
            rec.set(key::BIND, ip);
        }
        match (
            service::url_param("status10url", &p.status10url)?,
            dump.stub_status,
        ) {
            (Some(_), _) => {
                rec.set(
                    key::STATUS_URL,
                    p.status10url.as_deref().unwrap_or_default(),
                );
            }
            (None, Some(loc)) => {
                rec.set(key::STATUS_URL, loc);
            }
            (None, None) => {}
        }
        rec.set(key::STATUS_REGEX, &p.status10regex);
        Ok(rec)
    }

    fn pidfile(p: &NginxParams, bin: &Path, ctx: &Ctx) -> Option<PathBuf> {
        let plan = Self::plan(p, bin, ctx).ok()?;
        plan.get(key::PIDFILE).map(PathBuf::from)
    }

    fn args(p: &NginxParams, plan: &Record) -> Result<Vec<OsString>, OcfError> {
        base_args(p, Path::new(plan.get("config").unwrap_or_default()))
    }

    fn ping(
        plan: &Record,
        listening: Option<SocketAddr>,
        deadline: &Deadline,
    ) -> Result<(), String> {
        service::web_ping(plan, listening, deadline)
    }

    fn content(
        p: &NginxParams,
        _plan: &Record,
        listening: Option<SocketAddr>,
        ctx: &Ctx,
    ) -> Result<(), OcfError> {
        service::web_content(
            ("test20url", &p.test20url),
            ("test20regex", &p.test20regex),
            listening,
            &ctx.deadline,
        )?;
        if ctx.check_level() >= 30 {
            if let Some(cmd) = &p.external_monitor30_cmd {
                let words = split_words(cmd)
                    .map_err(|e| OcfError::invalid_param("external_monitor30_cmd", e))?;
                let (bin, rest) = words.split_first().expect("checked non-empty");
                let args: Vec<OsString> = rest.iter().map(OsString::from).collect();
                let (st, _, err) = service::run_tool(Path::new(bin), &args, &ctx.deadline)?;
                if !st.success() {
                    return Err(OcfError::generic(format!(
                        "external_monitor30_cmd failed ({st}): {}",
                        err.lines().next().unwrap_or("").trim()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_parsing() {
        let t = r#"# configuration file /etc/nginx/nginx.conf:
user www-data;
pid /run/nginx.pid; # the pid
events { worker_connections 768; }
http {
    server {
        listen 127.0.0.1:8080 default_server;
        listen [::]:8080;
        location / { root /var/www; }
        location = /basic_status { stub_status; }
        location /other { stub_status off; }
    }
}
"#;
        assert_eq!(
            Dump::parse(t),
            Dump {
                pid: Some("/run/nginx.pid".into()),
                listen: Some("127.0.0.1:8080".into()),
                stub_status: Some("/basic_status".into()),
            }
        );
        let t = "http { server { location ~ ^/s$ { stub_status on; } listen 81; } }";
        let d = Dump::parse(t);
        assert_eq!(
            (d.pid, d.listen.as_deref(), d.stub_status),
            (None, Some("81"), None)
        );
        // A `listen` of the stream module is not the web port.
        let t = "stream { server { listen 12345; } } http { server { listen 8443 ssl; } }";
        assert_eq!(Dump::parse(t).listen.as_deref(), Some("8443"));
    }

    #[test]
    fn listen_ports() {
        assert_eq!(listen_port("8080"), Some(8080));
        assert_eq!(listen_port("127.0.0.1:81"), Some(81));
        assert_eq!(listen_port("[::]:82"), Some(82));
        assert_eq!(listen_port("[::1]"), Some(80));
        assert_eq!(listen_port("*:83"), Some(83));
        assert_eq!(listen_port("localhost"), Some(80));
        assert_eq!(listen_port("unix:/run/x.sock"), None);
        assert_eq!(
            listen_ip("127.0.0.1:81"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(listen_ip("192.0.2.5"), Some("192.0.2.5".parse().unwrap()));
        assert_eq!(
            listen_ip("[2001:db8::1]:80"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(listen_ip("8080"), None);
        assert_eq!(listen_ip("*:80"), None);
        assert_eq!(listen_ip("localhost:80"), None);
    }

    #[test]
    fn messages() {
        let e = "2026/11/23 08:32:47 [emerg] 7852#7852: unknown directive \"listn\" in /tmp/x/bad.conf:9\nnginx: configuration file /tmp/x/bad.conf test failed\n";
        assert_eq!(
            nginx_message(e),
            "[emerg] unknown directive \"listn\" in /tmp/x/bad.conf:9"
        );
    }

    #[test]
    fn params() {
        let p: NginxParams = ocf::params::from_pairs(&[]).unwrap();
        assert!(Nginx::check_params(&p).is_ok());
        for (k, v) in [
            ("status10url", "https://x/"),
            ("test20regex", "("),
            ("options", "$(reboot)"),
            ("test20conffile", "/etc/x"),
            ("external_monitor30_cmd", " "),
        ] {
            let p: NginxParams = ocf::params::from_pairs(&[(k, v)]).unwrap();
            let e = Nginx::check_params(&p).unwrap_err();
            assert!(e.reason.starts_with(&format!("parameter {k}:")), "{e:?}");
        }
    }
}
