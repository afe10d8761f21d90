//! The runner: the only place that turns a fence agent's results into the protocol's
//! output and exit codes. Agents implement [`FenceAgent`] (status, set power, list) and
//! return `Result`s; the runner parses the options, answers `metadata`, waits for the
//! power state within `power_timeout`, and prints what fencing.py prints.
//!
//! Exit codes: 0 success (`status`: on), 2 `status`: off, 1 anything else (a bad
//! option, a failed or timed-out request, a power state not reached in time).

use crate::action::Action;
use crate::metadata::{metadata_xml, Info};
use crate::params::{lookup, BadOption, FenceParam, FenceParamSet, Options, Seconds, STANDARD};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::On => "ON",
            Power::Off => "OFF",
        }
    }
}

/// One machine the device can fence (`list`): its plug id, a readable alias, and its
/// power state when the listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plug {
    pub id: String,
    pub alias: String,
    pub power: Option<Power>,
}

/// A failure, in words for the fencer's log. Agents never put a secret in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceError(pub String);

impl From<BadOption> for FenceError {
    fn from(b: BadOption) -> Self {
        FenceError(b.0)
    }
}

impl std::fmt::Display for FenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The timings every action is bounded by (the standard options).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connecting and obtaining credentials (a token).
    pub login: Duration,
    /// From a power request until the state is reached.
    pub power: Duration,
    /// Waited after a power request, before the first status (as asked).
    pub power_wait: Duration,
    /// One request and its answer.
    pub shell: Duration,
    /// Between two status requests while waiting.
    pub status_sleep: Duration,
    /// Before an off or reboot begins (as asked).
    pub delay: Duration,
    pub retry_on: u32,
}

/// What an action runs with.
pub struct Ctx {
    pub action: Action,
    pub timeouts: Timeouts,
    pub verbose: bool,
    started: Instant,
    log: Vec<String>,
}

impl Ctx {
    /// A line for stderr (fenced logs the agent's stderr). Never a secret.
    pub fn log(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
    }
    /// A detail shown with `verbose`.
    pub fn debug(&mut self, line: impl Into<String>) {
        if self.verbose {
            let ms = self.started.elapsed().as_millis();
            self.log.push(format!("+{ms} ms {}", line.into()));
        }
    }
}

/// A fence agent. The runner calls `status` / `set_power` per plug and does the
/// waiting; each call bounds its own requests by `ctx.timeouts`.
pub trait FenceAgent {
    type Params: FenceParamSet;
    const INFO: Info;
    /// Checks beyond the option types (→ exit 1 with the reason); `validate-all` and
    /// every other action run it first.
    fn validate(_p: &Self::Params, _ctx: &mut Ctx) -> Result<(), FenceError> {
        Ok(())
    }
    fn status(p: &Self::Params, plug: &str, ctx: &mut Ctx) -> Result<Power, FenceError>;
    /// Ask for a power state; the runner waits for it with `status`.
    fn set_power(p: &Self::Params, plug: &str, to: Power, ctx: &mut Ctx) -> Result<(), FenceError>;
    fn list(p: &Self::Params, ctx: &mut Ctx) -> Result<Vec<Plug>, FenceError>;
    /// The device answers (`monitor`): by default, a `list` succeeds.
    fn monitor(p: &Self::Params, ctx: &mut Ctx) -> Result<(), FenceError> {
        Self::list(p, ctx).map(drop)
    }
}

/// Every option of agent `A`: the standard ones, then its own.
pub fn all_params<A: FenceAgent>() -> Vec<&'static FenceParam> {
    STANDARD.iter().chain(A::Params::SPEC).collect()
}

/// The meta-data document of `A`.
pub fn metadata<A: FenceAgent>() -> String {
    metadata_xml(&A::INFO, &all_params::<A>())
}

fn param(name: &str) -> &'static FenceParam {
    STANDARD
        .iter()
        .find(|p| p.name == name)
        .expect("a standard option")
}

fn timeouts(o: &Options) -> Result<Timeouts, BadOption> {
    let s = |n: &str| lookup::<Seconds>(o, param(n)).map(|s| s.0);
    Ok(Timeouts {
        login: s("login_timeout")?,
        power: s("power_timeout")?,
        power_wait: s("power_wait")?,
        shell: s("shell_timeout")?,
        status_sleep: s("stonith_status_sleep")?,
        delay: s("delay")?,
        retry_on: lookup::<u32>(o, param("retry_on"))?,
    })
}

/// Poll `status` until `want`, within `power_timeout` of the request.
fn wait_for<A: FenceAgent>(
    p: &A::Params,
    plug: &str,
    want: Power,
    since: Instant,
    ctx: &mut Ctx,
) -> Result<bool, FenceError> {
    let t = ctx.timeouts;
    let deadline = since + t.power;
    std::thread::sleep(t.power_wait.min(t.power));
    loop {
        let now = A::status(p, plug, ctx)?;
        ctx.debug(format!("{plug}: {}", now.as_str()));
        if now == want {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        // Between two status requests: the configured sleep, never past the deadline.
        std::thread::sleep(t.status_sleep.max(Duration::from_millis(50)).min(left));
    }
}

fn power<A: FenceAgent>(
    p: &A::Params,
    plug: &str,
    to: Power,
    ctx: &mut Ctx,
) -> Result<bool, FenceError> {
    let attempts = if to == Power::On {
        ctx.timeouts.retry_on.max(1)
    } else {
        1
    };
    for n in 1..=attempts {
        let since = Instant::now();
        A::set_power(p, plug, to, ctx)?;
        if wait_for::<A>(p, plug, to, since, ctx)? {
            return Ok(true);
        }
        ctx.log(format!(
            "{plug} not {} within power_timeout ({:?}), attempt {n} of {attempts}",
            to.as_str(),
            ctx.timeouts.power
        ));
    }
    Ok(false)
}

/// One action on every plug (`plug` may name several, `plug_separator` apart).
fn act<A: FenceAgent>(
    p: &A::Params,
    plugs: &[String],
    sep: &str,
    ctx: &mut Ctx,
    out: &mut dyn Write,
) -> Result<i32, FenceError> {
    match ctx.action {
        Action::Status => {
            let mut off = false;
            for plug in plugs {
                let s = A::status(p, plug, ctx)?;
                let _ = writeln!(out, "Status: {}", s.as_str());
                off |= s == Power::Off;
            }
            Ok(if off { 2 } else { 0 })
        }
        Action::On | Action::Off => {
            let to = if ctx.action == Action::On {
                Power::On
            } else {
                Power::Off
            };
            for plug in plugs {
                if A::status(p, plug, ctx)? == to {
                    let _ = writeln!(out, "Success: Already {}", to.as_str());
                    continue;
                }
                if !power::<A>(p, plug, to, ctx)? {
                    return Err(FenceError(format!(
                        "Timed out waiting to power {} {plug}",
                        to.as_str()
                    )));
                }
                let _ = writeln!(out, "Success: Powered {}", to.as_str());
            }
            Ok(0)
        }
        Action::Reboot => {
            for plug in plugs {
                if A::status(p, plug, ctx)? != Power::Off && !power::<A>(p, plug, Power::Off, ctx)?
                {
                    return Err(FenceError(format!("Timed out waiting to power OFF {plug}")));
                }
                // The machine is off: it is fenced, whatever powering it on does next.
                match power::<A>(p, plug, Power::On, ctx) {
                    Ok(true) => {}
                    Ok(false) => ctx.log(format!("Timed out waiting to power ON {plug}")),
                    Err(e) => ctx.log(format!("power ON of {plug} failed: {e}")),
                }
            }
            let _ = writeln!(out, "Success: Rebooted");
            Ok(0)
        }
        Action::List | Action::ListStatus => {
            for pl in A::list(p, ctx)? {
                let mut line = format!("{}{sep}{}", pl.id, pl.alias);
                if ctx.action == Action::ListStatus {
                    line.push_str(sep);
                    line.push_str(pl.power.map(Power::as_str).unwrap_or("UNKNOWN"));
                }
                let _ = writeln!(out, "{line}");
            }
            Ok(0)
        }
        Action::Monitor => A::monitor(p, ctx).map(|_| 0),
        Action::ValidateAll | Action::Metadata | Action::Manpage => Ok(0),
    }
}

/// Run agent `A`: `args` are argv after the program name (empty: options on stdin).
pub fn run<A: FenceAgent>(
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let all = all_params::<A>();
    let options = if args.is_empty() {
        let mut bytes = Vec::new();
        // fenced writes the options and closes stdin.
        let _ = stdin.take(1 << 20).read_to_end(&mut bytes);
        let Ok(text) = String::from_utf8(bytes) else {
            let _ = writeln!(
                err,
                "ERROR: the options on standard input are not UTF-8 text"
            );
            return 1;
        };
        Options::from_stdin(&text, &all)
    } else {
        match Options::from_argv(args, &all) {
            Ok(o) => o,
            Err(e) => {
                let _ = writeln!(err, "ERROR: {e}");
                return 1;
            }
        }
    };
    for w in &options.ignored {
        let _ = writeln!(err, "WARNING: {w}");
    }
    if options.get("help") == Some("1") {
        let _ = out.write_all(usage::<A>().as_bytes());
        return 0;
    }
    if options.get("version") == Some("1") {
        let _ = writeln!(out, "{} {}", A::INFO.name, A::INFO.version);
        return 0;
    }
    let raw_action = options.get("action").unwrap_or("reboot");
    let Some(action) = Action::parse(raw_action) else {
        let _ = writeln!(
            err,
            "ERROR: unknown action '{}' (one of: {})",
            raw_action.escape_debug(),
            Action::ALL
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return 1;
    };
    match action {
        Action::Metadata => {
            let _ = out.write_all(metadata::<A>().as_bytes());
            return 0;
        }
        Action::Manpage => {
            let _ = out.write_all(crate::man::page::<A>().as_bytes());
            return 0;
        }
        _ => {}
    }
    let t = match timeouts(&options) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "ERROR: {e}");
            return 1;
        }
    };
    let mut ctx = Ctx {
        action,
        timeouts: t,
        verbose: options.get("verbose") == Some("1")
            || options.get("verbose_level").is_some_and(|v| v != "0"),
        started: Instant::now(),
        log: Vec::new(),
    };
    let r = execute::<A>(&options, &mut ctx, out);
    for l in ctx.log.drain(..) {
        let _ = writeln!(err, "{l}");
    }
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "ERROR: {e}");
            1
        }
    }
}

/// Everything after the options parsed: the agent's options, validation, the plugs,
/// the requested delay, the action.
fn execute<A: FenceAgent>(
    options: &Options,
    ctx: &mut Ctx,
    out: &mut dyn Write,
) -> Result<i32, FenceError> {
    let p = A::Params::from_options(options)?;
    A::validate(&p, ctx)?;
    let plugs: Vec<String> = match options.get("plug") {
        Some(s) if !s.trim().is_empty() => {
            let sep = options.get("plug_separator").unwrap_or(",");
            let sep = if sep.is_empty() { "," } else { sep };
            s.split(sep)
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }
        _ => Vec::new(),
    };
    if ctx.action.needs_plug() && plugs.is_empty() {
        return Err(FenceError(
            "required option plug (or port) is not set".into(),
        ));
    }
    if matches!(ctx.action, Action::Off | Action::Reboot) && !ctx.timeouts.delay.is_zero() {
        // The delay the admin asked for (a two-node cluster's fence race).
        std::thread::sleep(ctx.timeouts.delay);
    }
    let sep = options.get("separator").unwrap_or(",").to_string();
    act::<A>(&p, &plugs, &sep, ctx, out)
}

/// `--help`: the options with their getopt forms.
pub fn usage<A: FenceAgent>() -> String {
    let mut s = format!(
        "{} - {}\n\nUsage: {} [options]\nOptions:\n",
        A::INFO.name,
        A::INFO.shortdesc,
        A::INFO.name
    );
    for p in all_params::<A>().into_iter().filter(|p| !p.deprecated) {
        s.push_str(&format!("   {:<40} {}\n", p.getopt(), p.shortdesc));
    }
    s.push_str("\nWith no options, they are read from standard input as name=value lines.\n");
    s
}
