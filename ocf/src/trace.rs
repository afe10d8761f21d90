//! RA tracing as ocf-shellfuncs does it: `OCF_TRACE_RA` (or the `trace_ra` parameter,
//! which `crm resource trace` sets) turns it on; the trace goes to `OCF_TRACE_FILE` (an
//! absolute path, or a file descriptor 3-9 the caller opened) or by default to
//! `$OCF_RESKEY_trace_dir/<type>/<id>.<action>.<date +%F.%T>`, with `trace_dir` defaulting
//! to `$HA_VARLIB/trace_ra` (`/var/lib/heartbeat/trace_ra`), where `crm_report` collects
//! it. A shell agent's trace is `set -x`; ours is every event of the action at every
//! level (decisions, netlink and API calls with their results and timings), with the
//! environment first, secret parameters masked.

use crate::env::OcfEnv;
use crate::params::ParamSpec;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where `HA_VARLIB` points when unset (resource-agents' ocf-directories).
pub const DEFAULT_HA_VARLIB: &str = "/var/lib/heartbeat";

/// `ocf_is_true`: what the shell agents take as "on".
pub fn ocf_is_true(v: &str) -> bool {
    matches!(
        v,
        "yes" | "true" | "1" | "YES" | "TRUE" | "True" | "ja" | "on" | "ON"
    )
}

/// Whether this invocation is traced: `OCF_TRACE_RA` when set, else `trace_ra`.
pub fn wanted(env: &OcfEnv) -> bool {
    let v = env
        .var("OCF_TRACE_RA")
        .filter(|v| !v.is_empty())
        .or_else(|| env.param("trace_ra"))
        .unwrap_or("");
    ocf_is_true(v)
}

/// Where the trace goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Dest {
    File(PathBuf),
    Fd(i32),
    Stderr,
}

/// `date +%F.%T`, as ocf-shellfuncs names a trace.
fn stamp() -> String {
    crate::log::local_time(c"%F.%T").unwrap_or_else(|| "unknown-time".into())
}

/// The destination ocf-shellfuncs would choose (`ocf_start_trace`); `warn` gets the
/// warning it would log for an unusable `OCF_TRACE_FILE`. With no file given and a
/// terminal on stdin the trace goes to stderr, as a shell agent's `set -x` would.
pub fn dest(
    env: &OcfEnv,
    rtype: &str,
    instance: &str,
    action: &str,
    warn: &mut Vec<String>,
) -> Dest {
    let file = env.var("OCF_TRACE_FILE").unwrap_or("");
    match file {
        f if f.len() == 1 && matches!(f.as_bytes()[0], b'3'..=b'9') => {
            return Dest::Fd(i32::from(f.as_bytes()[0] - b'0'))
        }
        f if f.starts_with('/') && f[1..].contains('/') => return Dest::File(PathBuf::from(f)),
        "" => {}
        _ => warn.push(
            "OCF_TRACE_FILE must be set to either FD (open for writing) or absolute file path"
                .into(),
        ),
    }
    // SAFETY: isatty on a constant fd.
    if unsafe { libc::isatty(0) } == 1 {
        return Dest::Stderr;
    }
    let dir = env
        .param("trace_dir")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(
                env.var("HA_VARLIB")
                    .filter(|v| !v.is_empty())
                    .unwrap_or(DEFAULT_HA_VARLIB),
            )
            .join("trace_ra")
        });
    Dest::File(
        dir.join(rtype)
            .join(format!("{instance}.{action}.{}", stamp())),
    )
}

/// An open trace.
pub struct Trace {
    out: std::sync::Mutex<Box<dyn Write + Send>>,
    start: Instant,
    pub dest: Dest,
}

impl Trace {
    /// Open the trace of this action and write its header, or `None` (with the reason in
    /// `warn`) when it cannot be written: a trace never fails an action.
    pub fn open(
        env: &OcfEnv,
        agent: &str,
        instance: &str,
        action: &str,
        spec: &[ParamSpec],
        warn: &mut Vec<String>,
    ) -> Option<Trace> {
        let rtype = env
            .var("OCF_RESOURCE_TYPE")
            .filter(|t| !t.is_empty() && !t.contains('/'))
            .unwrap_or(agent);
        let d = dest(env, rtype, instance, action, warn);
        let out: Box<dyn Write + Send> = match &d {
            Dest::Stderr => Box::new(std::io::stderr()),
            Dest::Fd(fd) => {
                // SAFETY: dup of a descriptor number; the copy is ours to close.
                let copy = unsafe { libc::dup(*fd) };
                if copy < 0 {
                    warn.push(format!("OCF_TRACE_FILE={fd}: not an open file descriptor"));
                    return None;
                }
                // SAFETY: `copy` is a fresh descriptor owned by nothing else.
                Box::new(unsafe { File::from_raw_fd(copy) })
            }
            Dest::File(p) => {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode_0600()
                    .open(p);
                match f {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        warn.push(format!(
                            "{} not writable ({e}), trace not going to happen",
                            p.display()
                        ));
                        return None;
                    }
                }
            }
        };
        let t = Trace {
            out: std::sync::Mutex::new(out),
            start: Instant::now(),
            dest: d,
        };
        t.header(env, agent, instance, action, spec);
        Some(t)
    }

    fn header(&self, env: &OcfEnv, agent: &str, instance: &str, action: &str, spec: &[ParamSpec]) {
        let secret = |k: &str| {
            k.strip_prefix("OCF_RESKEY_")
                .is_some_and(|n| spec.iter().any(|p| p.secret && p.name == n))
        };
        let mut s = format!(
            "# rustha trace: {agent} {action} of {instance}, pid {}\n# environment:\n",
            std::process::id()
        );
        for (k, v) in env.vars() {
            let shown = ["OCF_", "HA_", "PCMK_", "CRM_"]
                .iter()
                .any(|p| k.starts_with(p))
                || k == "PATH";
            if !shown {
                continue;
            }
            let v = if secret(k) { "<secret, not shown>" } else { v };
            s.push_str(&format!("#   {k}={}\n", v.escape_debug()));
        }
        self.write(&s);
    }

    fn write(&self, s: &str) {
        if let Ok(mut o) = self.out.lock() {
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    /// One line: time since the action began, level, where, what.
    pub fn event(&self, level: &str, target: &str, msg: &str) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let msg = msg.replace('\n', " ");
        self.write(&format!("+{ms:9.3} ms {level:<5} {target}: {msg}\n"));
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(p: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_pairs(p.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn switched_on_as_ocf_shellfuncs_does() {
        assert!(!wanted(&env(&[])));
        assert!(wanted(&env(&[("OCF_RESKEY_trace_ra", "1")])));
        assert!(wanted(&env(&[("OCF_TRACE_RA", "yes")])));
        assert!(!wanted(&env(&[("OCF_RESKEY_trace_ra", "maybe")])));
        assert!(
            !wanted(&env(&[("OCF_RESKEY_trace_ra", "y")])),
            "ocf_is_true has no y"
        );
        // OCF_TRACE_RA set wins over the parameter.
        assert!(!wanted(&env(&[
            ("OCF_TRACE_RA", "0"),
            ("OCF_RESKEY_trace_ra", "1")
        ])));
    }

    #[test]
    fn destinations() {
        let mut w = Vec::new();
        let e = env(&[("OCF_TRACE_FILE", "/tmp/x/y")]);
        assert_eq!(
            dest(&e, "IPaddr2", "vip", "start", &mut w),
            Dest::File("/tmp/x/y".into())
        );
        assert_eq!(
            dest(&env(&[("OCF_TRACE_FILE", "5")]), "a", "b", "c", &mut w),
            Dest::Fd(5)
        );
        assert!(w.is_empty());
        // Not a descriptor or an absolute path: a warning, then the default.
        let d = dest(
            &env(&[("OCF_TRACE_FILE", "rel"), ("HA_VARLIB", "/v")]),
            "T",
            "i",
            "stop",
            &mut w,
        );
        assert_eq!(w.len(), 1);
        if unsafe { libc::isatty(0) } == 0 {
            let Dest::File(p) = d else { panic!("{d:?}") };
            let s = p.to_string_lossy().into_owned();
            assert!(s.starts_with("/v/trace_ra/T/i.stop.20"), "{s}");
            let e = env(&[("OCF_RESKEY_trace_dir", "/t")]);
            let Dest::File(p) = dest(&e, "T", "i", "stop", &mut w) else {
                panic!()
            };
            assert!(p.starts_with("/t/T"), "{}", p.display());
        }
    }
}
