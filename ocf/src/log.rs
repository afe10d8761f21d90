//! Logging the way the heartbeat agents do, through `tracing`.
//!
//! Tag `<agent>(<instance>)[<pid>]`; each event goes to stderr, is appended to
//! `HA_LOGFILE` (`"%b %d %T <tag>:    LEVEL: msg"`), and is sent to syslog with
//! `HA_LOGFACILITY`. Debug events only with `HA_debug`. As ocf-shellfuncs does, every
//! line also goes to `HA_DEBUGLOG` (unless it is `HA_LOGFILE`), and debug lines go to
//! syslog, `HA_DEBUGLOG` and stderr but not to `HA_LOGFILE`. With RA tracing on
//! (`crate::trace`) every event of ours, at every level, goes to the trace as well. The
//! exit reason is logged to file and syslog here, while the runner prints it to stderr
//! as the last line.

use crate::env::OcfEnv;
use crate::trace::Trace;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Target for the exit-reason event (kept off stderr: the runner prints it there itself).
pub const EXIT_REASON_TARGET: &str = "ocf::exit_reason";

/// The heartbeat log tag.
pub fn tag(agent: &str, instance: &str) -> String {
    format!("{agent}({instance})[{}]", std::process::id())
}

/// syslog facility by name, as `logger -p` accepts them.
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name.to_ascii_lowercase().as_str() {
        "daemon" => libc::LOG_DAEMON,
        "user" => libc::LOG_USER,
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "cron" => libc::LOG_CRON,
        "kern" => libc::LOG_KERN,
        "lpr" => libc::LOG_LPR,
        "mail" => libc::LOG_MAIL,
        "news" => libc::LOG_NEWS,
        "syslog" => libc::LOG_SYSLOG,
        "uucp" => libc::LOG_UUCP,
        "ftp" => libc::LOG_FTP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

fn prio(level: &Level) -> (&'static str, libc::c_int) {
    match *level {
        Level::ERROR => ("ERROR", libc::LOG_ERR),
        Level::WARN => ("WARNING", libc::LOG_WARNING),
        Level::INFO => ("INFO", libc::LOG_INFO),
        _ => ("DEBUG", libc::LOG_DEBUG),
    }
}

/// Local time now, as `strftime(fmt)` writes it; `None` if the clock cannot be read.
pub fn local_time(fmt: &std::ffi::CStr) -> Option<String> {
    // SAFETY: time/localtime_r/strftime with properly sized, initialised buffers.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm);
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// `"%b %d %T "` in local time, like `HA_DATEFMT`.
fn datestamp() -> String {
    local_time(c"%b %d %T ").unwrap_or_default()
}

/// Where log lines go; built from the environment.
pub struct OcfLayer {
    tag: String,
    logfile: Option<PathBuf>,
    debuglog: Option<PathBuf>,
    trace: Option<std::sync::Arc<Trace>>,
    syslog: bool,
    stderr: bool,
    max: Level,
}

impl OcfLayer {
    pub fn new(env: &OcfEnv, agent: &str, instance: &str) -> Self {
        let tag = tag(agent, instance);
        let fac = env.log_facility().and_then(facility);
        if let Some(f) = fac {
            // openlog keeps the pointer: leak the tag for the life of the process.
            if let Ok(c) = CString::new(tag.clone()) {
                // SAFETY: c is leaked, so the pointer stays valid.
                unsafe { libc::openlog(c.into_raw(), 0, f) };
            }
        }
        OcfLayer {
            tag,
            logfile: env.logfile(),
            debuglog: env.debuglog(),
            trace: None,
            syslog: fac.is_some(),
            stderr: true,
            max: if env.debug() {
                Level::DEBUG
            } else {
                Level::INFO
            },
        }
    }

    /// Format and deliver one message.
    fn emit(&self, level: &Level, to_stderr: bool, msg: &str) {
        let (name, sys) = prio(level);
        let msg = msg.replace('\n', " ");
        if to_stderr && self.stderr {
            let _ = writeln!(std::io::stderr(), "{}: {name}: {msg}", self.tag);
        }
        let append = |path: &PathBuf, line: String| {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        };
        let debug = *level > Level::INFO;
        if let Some(path) = self.logfile.as_ref().filter(|_| !debug) {
            append(
                path,
                format!("{}{}:    {name}: {msg}", datestamp(), self.tag),
            );
        }
        if let Some(path) = &self.debuglog {
            if debug || self.logfile.as_ref() != Some(path) {
                append(path, format!("{}:\t{}{name}: {msg}", self.tag, datestamp()));
            }
        }
        if self.syslog {
            if let Ok(c) = CString::new(format!("{name}: {msg}")) {
                // SAFETY: constant format string, NUL-terminated argument.
                unsafe { libc::syslog(sys, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// Our own events at the configured level; libraries' (HTTP, TLS, cloud SDKs) only from
/// WARN up, even with HA_debug: their debug output is noise in the cluster log, and may
/// carry request details that do not belong there.
fn admits(max: Level, meta: &Metadata<'_>) -> bool {
    let ours = ["rustha", "ocf"]
        .iter()
        .any(|c| meta.target() == *c || meta.target().starts_with(&format!("{c}::")));
    *meta.level() <= max && (ours || *meta.level() <= Level::WARN)
}

impl<S: Subscriber> Layer<S> for OcfLayer {
    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        admits(self.max, meta) || (self.trace.is_some() && admits(Level::TRACE, meta))
    }
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let traced = self.trace.as_ref().filter(|_| admits(Level::TRACE, meta));
        if !admits(self.max, meta) && traced.is_none() {
            return;
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        if let Some(t) = traced {
            t.event(prio(meta.level()).0, meta.target(), &m.0);
        }
        if admits(self.max, meta) {
            self.emit(meta.level(), meta.target() != EXIT_REASON_TARGET, &m.0);
        }
    }
}

/// Install the OCF logger for this process (once; later calls are no-ops).
pub fn init(env: &OcfEnv, agent: &str, instance: &str) {
    init_with(OcfLayer::new(env, agent, instance));
}

fn init_with(layer: OcfLayer) {
    let subscriber = tracing_subscriber::registry().with(layer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// [`init`] for one action, with RA tracing when the environment asks for it
/// ([`crate::trace`]); the trace is returned so that the runner can write the result.
pub fn init_action(
    env: &OcfEnv,
    agent: &str,
    instance: &str,
    action: &str,
    spec: &[crate::ParamSpec],
) -> Option<std::sync::Arc<Trace>> {
    let mut layer = OcfLayer::new(env, agent, instance);
    let mut warn = Vec::new();
    let trace = crate::trace::wanted(env)
        .then(|| Trace::open(env, agent, instance, action, spec, &mut warn))
        .flatten()
        .map(std::sync::Arc::new);
    layer.trace = trace.clone();
    init_with(layer);
    for w in warn {
        tracing::warn!("{w}");
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_has_agent_instance_and_pid() {
        assert_eq!(
            tag("azure-lb", "lb"),
            format!("azure-lb(lb)[{}]", std::process::id())
        );
    }

    #[test]
    fn facilities() {
        assert_eq!(facility("daemon"), Some(libc::LOG_DAEMON));
        assert_eq!(facility("LOCAL7"), Some(libc::LOG_LOCAL7));
        assert_eq!(facility("nonsense"), None);
    }

    #[test]
    fn logfile_lines_look_like_heartbeat() {
        let dir = std::env::temp_dir().join(format!("ocf-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pacemaker.log");
        let env = OcfEnv::from_pairs([("HA_LOGFILE", path.to_str().unwrap())]);
        let mut layer = OcfLayer::new(&env, "azure-lb", "lb");
        layer.stderr = false;
        layer.emit(&Level::WARN, true, "two\nlines");
        layer.emit(&Level::ERROR, false, "the reason");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let want = format!(
            "azure-lb(lb)[{}]:    WARNING: two lines",
            std::process::id()
        );
        assert!(lines[0].ends_with(&want), "{text}");
        assert!(lines[1].ends_with("ERROR: the reason"), "{text}");
        // "%b %d %T " prefix, e.g. "Nov 22 14:03:05 ".
        assert_eq!(&lines[0][3..4], " ");
        assert_eq!(&lines[0][6..7], " ");
    }
}
