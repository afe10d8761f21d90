//! `lighttpd`: there is no upstream agent (people use `systemd:lighttpd`, which cannot
//! check health); parameters follow the nginx/apache agents.
//!
//! lighttpd runs in the foreground (`-D`) as the leader of its own session. `lighttpd
//! -tt` (syntax and module loading) tests the configuration; `lighttpd -p` (the
//! configuration as lighttpd parsed it) gives the port, pidfile and mod_status URL.
//! Stop: SIGINT (graceful: finish requests), SIGTERM, then SIGKILL for every process of
//! the instance (CGI/FastCGI children included). reload: SIGUSR1 (graceful restart).

use crate::service::group::StopStep;
use crate::service::{self, files, key, tool, web, Service};
use crate::state::Record;
use nix::sys::signal::Signal;
use ocf::params::Port;
use ocf::{AgentInfo, Ctx, Deadline, OcfError, ParamSpec};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

ocf::params! {
    pub struct LighttpdParams {
        binary: String => ParamSpec::new(
            "lighttpd binary",
            "The lighttpd binary (a path, or a name looked up in the system directories).",
        ).default("/usr/sbin/lighttpd"),
        configfile: String => ParamSpec::new(
            "Configuration file",
            "The lighttpd configuration file.",
        ).default("/etc/lighttpd/lighttpd.conf").unique(),
        port: Option<Port> => ParamSpec::new(
            "Port",
            "The TCP port lighttpd must listen on before start returns and that the checks \
             connect to. Unset: server.port from the configuration, else 80.",
        ),
        statusurl: Option<String> => ParamSpec::new(
            "Depth-10 URL",
            "The URL fetched by a depth-10 monitor: http://host[:port]/path, or a path, which \
             is fetched from the address lighttpd listens on. Unset: mod_status's \
             status.status-url when the configuration sets it, else the site root (any answer \
             below 500 counts).",
        ),
        statusregex: Option<String> => ParamSpec::new(
            "Depth-10 regular expression",
            "What the depth-10 page must match (case-insensitive). Unset: any 2xx answer.",
        ),
        testurl: Option<String> => ParamSpec::new(
            "Depth-20 URL",
            "The URL fetched by a depth-20 monitor (as statusurl). Unset: no depth-20 check.",
        ),
        testregex: Option<String> => ParamSpec::new(
            "Depth-20 regular expression",
            "What the depth-20 page must match (case-insensitive). Unset: any 2xx answer.",
        ),
        options: Option<String> => ParamSpec::new(
            "Extra options",
            "Extra lighttpd command-line options, split into words like a shell would (quotes \
             work) but never passed to a shell.",
        ),
    }
}

pub struct Lighttpd;

/// What `lighttpd -p` printed, at the top level (conditionals are not followed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub port: Option<u16>,
    pub pidfile: Option<String>,
    pub status_url: Option<String>,
    pub errorlog: Option<String>,
    pub bind: Option<String>,
    /// Ports of `$SERVER["socket"] == "[addr]:port"` conditionals (extra listeners).
    pub socket_ports: Vec<u16>,
}

fn unquote(v: &str) -> String {
    let v = v.trim().trim_end_matches(',');
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

impl Parsed {
    pub fn parse(text: &str) -> Parsed {
        let mut p = Parsed::default();
        // `lighttpd -p` wraps everything in `config { ... }`: that level is the top.
        let top = i32::from(text.trim_start().starts_with("config {"));
        let mut depth = 0i32;
        for line in text.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("$SERVER[\"socket\"]") {
                let v = rest.trim_start().strip_prefix("==").map(str::trim);
                if let Some(addr) = v.and_then(|v| v.strip_prefix('"')?.split('"').next()) {
                    if let Some(port) = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()) {
                        p.socket_ports.push(port);
                    }
                }
            }
            if depth == top {
                if let Some((k, v)) = l.split_once('=') {
                    let v = unquote(v);
                    match k.trim() {
                        "server.port" => p.port = v.parse().ok(),
                        "server.pid-file" => p.pidfile = Some(v),
                        "status.status-url" => p.status_url = Some(v),
                        "server.errorlog" => p.errorlog = Some(v),
                        "server.bind" => p.bind = Some(v),
                        _ => {}
                    }
                }
            }
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
        }
        p
    }
}

fn extra(p: &LighttpdParams) -> Result<Vec<OsString>, OcfError> {
    tool::words_param("options", &p.options)
}

/// `lighttpd <flag> -f <config> <options>`: a test (`-tt`), the configuration as parsed
/// (`-p`), the server in the foreground (`-D`).
fn lighttpd_args(flag: &str, config: &Path, p: &LighttpdParams) -> Result<Vec<OsString>, OcfError> {
    let mut a: Vec<OsString> = vec![flag.into(), "-f".into(), config.into()];
    a.extend(extra(p)?);
    Ok(a)
}

/// lighttpd's complaint: the lines of `-tt`'s output without timestamps.
fn lighttpd_message(out: &str) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(|l| match l.find(") ") {
            Some(i) if l.contains("(") => l[i + 2..].trim(),
            _ => l.trim(),
        })
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING"))
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join(" | ")
    }
}

impl Service for Lighttpd {
    type Params = LighttpdParams;
    const INFO: AgentInfo = AgentInfo {
        name: "lighttpd",
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Manages a lighttpd web server",
        longdesc: "Starts, monitors and stops lighttpd (there is no heartbeat agent for it). \
            start tests the configuration (lighttpd -tt) and returns only when lighttpd serves \
            (its port is listening and a request is answered); stop sends SIGINT (graceful), \
            then SIGTERM, then SIGKILL to every process of the instance within the operation's \
            timeout; depth 10 fetches the status page, depth 20 checks testurl. reload tests \
            the configuration, then sends SIGUSR1 (graceful restart).",
        actions: web::ACTIONS,
    };
    const STOP: &'static [StopStep] = &[
        StopStep {
            signal: Signal::SIGINT,
            num: 1,
            den: 2,
        },
        StopStep {
            signal: Signal::SIGTERM,
            num: 1,
            den: 2,
        },
    ];
    const RELOAD: Option<Signal> = Some(Signal::SIGUSR1);

    fn check_params(p: &LighttpdParams) -> Result<(), OcfError> {
        web::url_param("statusurl", &p.statusurl)?;
        web::url_param("testurl", &p.testurl)?;
        for (k, v) in [("statusregex", &p.statusregex), ("testregex", &p.testregex)] {
            if let Some(r) = v {
                web::regex_param(k, r)?;
            }
        }
        extra(p)?;
        Ok(())
    }

    fn binary(p: &LighttpdParams) -> Result<PathBuf, OcfError> {
        tool::find_binary(Some(&p.binary), "lighttpd", &[])
    }

    fn plan(p: &LighttpdParams, bin: &Path, ctx: &Ctx) -> Result<Record, OcfError> {
        let config = PathBuf::from(&p.configfile);
        files::check_config(&config)?;
        let args = lighttpd_args("-tt", &config, p)?;
        let (st, out, err) = tool::run_tool(bin, &args, &ctx.deadline)?;
        if !st.success() {
            return Err(OcfError::configured(format!(
                "lighttpd configuration test failed: {}",
                lighttpd_message(&format!("{err}{out}"))
            )));
        }
        let args = lighttpd_args("-p", &config, p)?;
        let (_, out, _) = tool::run_tool(bin, &args, &ctx.deadline)?;
        let parsed = Parsed::parse(&out);
        let mut rec = Record::default();
        rec.set(key::CONFIG, config.display());
        let main_port = parsed.port.unwrap_or(80);
        if let Some(port) = p.port {
            // What the configuration says it listens on: server.port (80 when unset) on
            // server.bind, and every $SERVER["socket"] conditional.
            let unix = parsed.bind.as_deref().is_some_and(|b| b.starts_with('/'));
            let mut ports: Vec<u16> = if unix { vec![] } else { vec![main_port] };
            ports.extend(&parsed.socket_ports);
            web::port_in_config(port.0, &config, &ports)?;
        }
        rec.set(key::PORT, p.port.map_or(main_port, |p| p.0));
        if let Some(pf) = parsed.pidfile {
            files::check_pidfile(
                "the pidfile of the configuration (server.pid-file)",
                Path::new(&pf),
                None,
            )?;
            rec.set(key::PIDFILE, pf);
        }
        if let Some(ip) = parsed.bind.and_then(|b| b.parse::<std::net::IpAddr>().ok()) {
            rec.set(key::BIND, ip);
        }
        if let Some(log) = parsed.errorlog {
            rec.set(key::ERROR_LOG, log);
        }
        web::record_status(
            &mut rec,
            ("statusurl", &p.statusurl),
            parsed.status_url,
            p.statusregex.as_deref(),
        )?;
        Ok(rec)
    }

    fn pidfile(p: &LighttpdParams, bin: &Path, ctx: &Ctx) -> Option<PathBuf> {
        let args = lighttpd_args("-p", Path::new(&p.configfile), p).ok()?;
        let (st, out, _) = tool::run_tool(bin, &args, &ctx.deadline).ok()?;
        st.success()
            .then(|| Parsed::parse(&out).pidfile.map(PathBuf::from))
            .flatten()
    }

    fn args(p: &LighttpdParams, plan: &Record) -> Result<Vec<OsString>, OcfError> {
        lighttpd_args("-D", service::config_of(plan), p)
    }

    fn ping(
        plan: &Record,
        listening: Option<SocketAddr>,
        deadline: &Deadline,
    ) -> Result<(), String> {
        web::ping(plan, listening, deadline)
    }

    fn content(
        p: &LighttpdParams,
        _plan: &Record,
        listening: Option<SocketAddr>,
        ctx: &Ctx,
    ) -> Result<(), OcfError> {
        web::content(
            ("testurl", &p.testurl),
            ("testregex", &p.testregex),
            listening,
            &ctx.deadline,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_config() {
        let t = r#"config {
    server.port          = 18081
    server.pid-file      = "/tmp/x/lighttpd.pid"
    server.errorlog      = "/tmp/x/err.log"
    status.status-url    = "/server-status"
    $SERVER["socket"] == ":443" {
        server.port = 443
    }
}
"#;
        let p = Parsed::parse(t);
        assert_eq!(
            p,
            Parsed {
                port: Some(18081),
                pidfile: Some("/tmp/x/lighttpd.pid".into()),
                status_url: Some("/server-status".into()),
                errorlog: Some("/tmp/x/err.log".into()),
                bind: None,
                socket_ports: vec![443],
            }
        );
    }

    #[test]
    fn messages() {
        let out = "2026-11-23 08:32:52: (configfile.c.1289) WARNING: unknown config-key: server.prot (ignored)\n2026-11-23 08:32:52: (plugin.c.214) dlopen() failed for: /usr/lib/lighttpd/mod_x.so\n";
        assert_eq!(
            lighttpd_message(out),
            "dlopen() failed for: /usr/lib/lighttpd/mod_x.so"
        );
    }
}
