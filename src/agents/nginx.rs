//! `nginx`: parameter-compatible with `ocf:heartbeat:nginx`, on the generic service core.
//!
//! nginx runs in the foreground (`-g "daemon off;"`) as the leader of its own session,
//! so the master and every worker are found again even when the master dies. The
//! configuration is tested with `nginx -T` before every start and reload; its dump
//! gives the pidfile, the port (first `listen`) and a `stub_status` location.

use crate::service::group::{split_words, StopStep};
use crate::service::{self, files, key, Service};
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
    /// The first `listen` of an http server.
    pub listen: Option<String>,
    pub stub_status: Option<String>,
    /// Every `listen` value, of http and stream servers, in order; an http server
    /// without one listens on port 80 (`"80"` here).
    pub listens: Vec<String>,
}

/// One directive of a dump: the enclosing block headers, the serial number of each of
/// those blocks, and its words (none: the opening of the innermost block).
type Directive = (Vec<Vec<String>>, Vec<usize>, Vec<String>);

/// Split a dump into directives.
fn directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut ids: Vec<usize> = Vec::new();
    let mut serial = 0usize;
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
                out.push((stack.clone(), ids.clone(), std::mem::take(&mut words)));
            }
            '{' => {
                flush(&mut cur, &mut words);
                stack.push(std::mem::take(&mut words));
                serial += 1;
                ids.push(serial);
                out.push((stack.clone(), ids.clone(), vec![]));
            }
            '}' => {
                flush(&mut cur, &mut words);
                words.clear();
                stack.pop();
                ids.pop();
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
        // http server blocks (by serial) and whether each has a listen.
        let mut servers: Vec<(usize, bool)> = Vec::new();
        for (stack, ids, words) in directives(text) {
            let in_block = |name: &str| stack.iter().any(|b| b.first().is_some_and(|h| h == name));
            let in_http_server = in_block("http") && in_block("server");
            let server_id = stack
                .iter()
                .zip(&ids)
                .rev()
                .find(|(b, _)| b.first().is_some_and(|h| h == "server"))
                .map(|(_, &id)| id);
            let Some(name) = words.first() else {
                // A block opens: an http server is remembered even if it holds nothing.
                if let (true, Some(id)) = (in_http_server, server_id) {
                    if !servers.iter().any(|s| s.0 == id) {
                        servers.push((id, false));
                    }
                }
                continue;
            };
            if name == "listen" && (in_http_server || in_block("stream") && in_block("server")) {
                if let Some(v) = words.get(1) {
                    d.listens.push(v.clone());
                }
                if let (true, Some(id)) = (in_http_server, server_id) {
                    if let Some(s) = servers.iter_mut().find(|s| s.0 == id) {
                        s.1 = true;
                    }
                }
            }
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
        if servers.iter().any(|s| !s.1) {
            d.listens.push("80".into());
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

/// `nginx -T`: the configuration file, its dump and its pidfile (broken -> 6).
fn test_config(
    p: &NginxParams,
    bin: &Path,
    ctx: &Ctx,
) -> Result<(PathBuf, Dump, String), OcfError> {
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
    // The file times are of the kernel's coarse clock: a tick of margin.
    let before = std::time::SystemTime::now() - std::time::Duration::from_millis(20);
    let (st, out, err) = service::run_tool(bin, &args, &ctx.deadline)?;
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
        let (config, dump, pid) = test_config(p, bin, ctx)?;
        let mut rec = Record::default();
        rec.set("config", config.display());
        files::check_pidfile(
            "the pidfile of the configuration (pid)",
            Path::new(&pid),
            None,
        )?;
        rec.set(key::PIDFILE, pid);
        // The listen directive the port is checked on: the one with that port.
        let listen = match p.port {
            Some(port) => {
                let ports: Vec<u16> = dump.listens.iter().filter_map(|l| listen_port(l)).collect();
                crate::service::port_in_config(port.0, &config, &ports)?;
                dump.listens
                    .iter()
                    .find(|l| listen_port(l) == Some(port.0))
                    .cloned()
            }
            None => dump.listen.clone(),
        };
        let port = p
            .port
            .map(|p| p.0)
            .or_else(|| listen.as_deref().and_then(listen_port))
            .unwrap_or(80);
        rec.set(key::PORT, port);
        if let Some(ip) = listen.as_deref().and_then(listen_ip) {
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
            // A location that is not a plain URL path cannot be fetched: the site root.
            (None, Some(loc)) if service::http::Url::parse(&loc).is_ok() => {
                rec.set(key::STATUS_URL, loc);
            }
            (None, Some(_)) => {}
            (None, None) => {}
        }
        rec.set(key::STATUS_REGEX, &p.status10regex);
        Ok(rec)
    }

    fn pidfile(p: &NginxParams, bin: &Path, ctx: &Ctx) -> Option<PathBuf> {
        test_config(p, bin, ctx)
            .ok()
            .map(|(_, _, pid)| PathBuf::from(pid))
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
                listens: vec!["127.0.0.1:8080".into(), "[::]:8080".into()],
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
        assert_eq!(Dump::parse(t).listens, ["12345", "8443"]);
        // A server without listen listens on 80, even an empty one.
        let t = "http { server { listen 81; } server { } server { root /x; } }";
        assert_eq!(Dump::parse(t).listens, ["81", "80"]);
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
            ("status10url", "/a`id`"),
            ("status10url", "/a;b"),
            ("status10url", "/$(id)"),
            ("status10url", "/a b"),
            ("test20url", "http://lo$(id)cal/"),
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
