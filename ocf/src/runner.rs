//! The runner: the only place that turns agent results into OCF exit codes.
//!
//! Agents implement [`Agent`] and return `Result`s; they never exit. [`run`] parses the
//! action, answers the informational ones, builds the [`Ctx`] (environment, deadline,
//! logging), parses parameters, calls the agent and applies [`POLICY`].

use crate::action::Action;
use crate::deadline::Deadline;
use crate::env::OcfEnv;
use crate::error::{ErrorKind, OcfError};
use crate::metadata::{metadata_xml, AgentInfo};
use crate::params::{ParamSet, ParamSpec};
use crate::status::Status;
use std::io::Write;
use std::marker::PhantomData;
use std::time::Duration;

/// What an action runs with.
pub struct Ctx {
    pub env: OcfEnv,
    pub agent: &'static str,
    pub instance: String,
    pub action: Action,
    pub deadline: Deadline,
}

impl Ctx {
    pub fn new(env: OcfEnv, info: &'static AgentInfo, action: Action) -> Ctx {
        let advertised = info.action(action).map(|a| a.timeout_s).unwrap_or(20);
        let deadline =
            Deadline::from_timeout_ms(env.timeout_ms(), Duration::from_secs(advertised.into()));
        Ctx {
            instance: env.instance(info.name).to_string(),
            agent: info.name,
            action,
            deadline,
            env,
        }
    }

    /// A monitor with interval 0 or unset.
    pub fn is_probe(&self) -> bool {
        self.action == Action::Monitor && self.env.interval_ms() == 0
    }

    pub fn check_level(&self) -> u32 {
        self.env.check_level()
    }
}

/// A resource agent. Optional actions are advertised in `INFO.actions`; the runner
/// answers 3 for anything not advertised, so an agent cannot claim what it lacks.
///
/// `validate` decides; `start` and `reload` act on what it decided. The runner calls
/// `validate` once before each of them and hands its [`Agent::Plan`] over by value, so
/// neither can run without a plan of this very invocation (a plan type whose fields are
/// private to the agent can only come from its `validate`).
pub trait Agent: 'static {
    type Params: ParamSet;
    /// What `validate` found out for `start` / `reload`: the resolved interface, the
    /// binary, the socket to bind. `()` when there is nothing to hand over.
    type Plan;
    const INFO: AgentInfo;

    /// Checks beyond the types: consistency between parameters (-> 6), and local
    /// environment (-> 2/5) when the action is `start` or the check level is >= 10.
    fn validate(params: &Self::Params, ctx: &Ctx) -> Result<Self::Plan, OcfError>;
    /// Idempotent: an already running resource is a success.
    fn start(params: &Self::Params, plan: Self::Plan, ctx: &Ctx) -> Result<(), OcfError>;
    /// Idempotent; `Ok` only when verified stopped. `params` is `None` when they do
    /// not parse: the agent must then act on its state record alone.
    fn stop(params: Option<&Self::Params>, ctx: &Ctx) -> Result<(), OcfError>;
    /// `Ok(Success)` running, `Ok(NotRunning)` cleanly stopped. `params` as for stop.
    fn monitor(params: Option<&Self::Params>, ctx: &Ctx) -> Result<Status, OcfError>;
    /// What `validate` can tell from the parameters and meta attributes alone, nothing of
    /// this node (no interface, file, binary or API): `rustha migrate` runs it anywhere.
    /// `validate` runs the same checks (it calls this, or what this calls).
    fn check_params(_params: &Self::Params, _ctx: &Ctx) -> Result<(), OcfError> {
        Ok(())
    }
    fn reload(_params: &Self::Params, _plan: Self::Plan, _ctx: &Ctx) -> Result<(), OcfError> {
        Err(OcfError::unimplemented("reload is not supported"))
    }
    /// The agent's hidden entry points: long-running helpers it starts by re-executing
    /// its own binary as `<binary> <entry> <args>...`.
    const HELPERS: &'static [Helper] = &[];
}

/// A hidden entry point of an agent (a responder, an announcer): `entry` is the first
/// argument that selects it, `main` runs it with the arguments after `entry` and returns
/// the process exit code. Entries start with `__`, so that no agent or command of the
/// binary's tool mode can be mistaken for one.
#[derive(Clone, Copy)]
pub struct Helper {
    pub entry: &'static str,
    pub main: fn(&[String]) -> u8,
}

/// How the runner sees an invocation, for the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    ValidateAll,
    Start,
    Stop,
    /// monitor with interval 0 / unset.
    Probe,
    /// recurring monitor.
    Monitor,
    Other,
}

impl Class {
    pub fn of(ctx: &Ctx) -> Class {
        match ctx.action {
            Action::ValidateAll => Class::ValidateAll,
            Action::Start => Class::Start,
            Action::Stop => Class::Stop,
            Action::Monitor if ctx.is_probe() => Class::Probe,
            Action::Monitor => Class::Monitor,
            _ => Class::Other,
        }
    }
}

/// Where an error arose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The parameters did not parse.
    Params,
    /// The agent's `validate`.
    Validate,
    /// The action itself.
    Action,
}

/// What the runner does with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit with the error's own status.
    AsIs,
    /// Exit with this status instead.
    Is(Status),
    /// Go on without parameters: the agent acts on its state record.
    FromRecord,
}

/// One row of the policy; `None` matches anything.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub class: Option<Class>,
    pub phase: Option<Phase>,
    pub kind: Option<ErrorKind>,
    pub outcome: Outcome,
    pub why: &'static str,
}

const fn rule(
    class: Option<Class>,
    phase: Option<Phase>,
    kind: Option<ErrorKind>,
    outcome: Outcome,
    why: &'static str,
) -> Rule {
    Rule {
        class,
        phase,
        kind,
        outcome,
        why,
    }
}

use Class as C;
use ErrorKind as K;
use Outcome as O;
use Phase as P;

/// The exit-code policy, first match wins.
#[rustfmt::skip]
pub const POLICY: &[Rule] = &[
    //   class             phase             kind                 outcome
    rule(Some(C::Stop),    Some(P::Params),  None,                O::FromRecord,
         "stop must work with broken parameters: stop what the record says, else nothing runs -> 0"),
    rule(Some(C::Probe),   Some(P::Params),  None,                O::FromRecord,
         "a probe answers from the record: 7 when nothing of ours runs, never 6"),
    rule(Some(C::Monitor), Some(P::Params),  None,                O::FromRecord,
         "a recurring monitor never returns 6 (that bans the resource cluster-wide)"),
    rule(Some(C::Stop),    None,             None,                O::Is(Status::ErrGeneric),
         "a stop that did not verify the resource stopped is a failed stop, whatever the cause"),
    rule(Some(C::Probe),   None,             Some(K::Installed),  O::AsIs,
         "probe: software missing on this node -> 5 (Pacemaker treats it as stopped)"),
    rule(Some(C::Probe),   None,             Some(K::Configured), O::Is(Status::NotRunning),
         "probe: never 6; an unusable configuration cannot be running here"),
    rule(Some(C::Probe),   None,             Some(K::Args),       O::Is(Status::NotRunning),
         "probe: a local environment problem means not running here"),
    rule(Some(C::Monitor), None,             Some(K::Configured), O::Is(Status::ErrGeneric),
         "recurring monitor never 6"),
    rule(Some(C::Monitor), None,             Some(K::Args),       O::Is(Status::ErrGeneric),
         "recurring monitor: environment problems are failures (1), as ocf-rarun does"),
    rule(Some(C::Monitor), None,             Some(K::Installed),  O::Is(Status::ErrGeneric),
         "recurring monitor: environment problems are failures (1), as ocf-rarun does"),
    rule(None,             None,             None,                O::AsIs,
         "validate-all, start, reload: the error's own status (6, 2, 5, 4, 1)"),
];

fn matches<T: PartialEq>(want: Option<T>, got: T) -> bool {
    want.is_none_or(|w| w == got)
}

/// Apply [`POLICY`].
pub fn decide(class: Class, phase: Phase, kind: ErrorKind) -> Outcome {
    POLICY
        .iter()
        .find(|r| matches(r.class, class) && matches(r.phase, phase) && matches(r.kind, kind))
        .map(|r| r.outcome)
        .unwrap_or(Outcome::AsIs)
}

fn usage(info: &AgentInfo) -> String {
    let mut actions: Vec<&str> = info.actions.iter().map(|a| a.action.as_str()).collect();
    actions.dedup();
    format!(
        "usage: {} {{{}}}\n\nParameters come from OCF_RESKEY_* environment variables; see `{} meta-data`.\n",
        info.name,
        actions.join("|"),
        info.name
    )
}

/// The exit reason as Pacemaker reads it: one line, bounded.
pub fn exit_reason_line(prefix: &str, reason: &str) -> String {
    let one: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect();
    format!("{prefix}{}", one.trim())
}

fn execute<A: Agent>(ctx: &Ctx) -> Result<Status, (Phase, OcfError)> {
    let class = Class::of(ctx);
    let params = match A::Params::from_env(&ctx.env) {
        Ok(p) => {
            tracing::debug!("parameters parsed ({} declared)", A::Params::SPEC.len());
            Some(p)
        }
        Err(e) => match decide(class, Phase::Params, e.kind) {
            Outcome::FromRecord => {
                tracing::warn!("{e}; acting on the recorded state only");
                None
            }
            _ => return Err((Phase::Params, e)),
        },
    };
    // A parameter declared refused is refused only where the policy lets a 6 through:
    // validate-all, start and reload (never stop, probe or monitor).
    let validate = |p: &A::Params| {
        let plan = crate::params::refused_set(&ctx.env, A::Params::SPEC)
            .and_then(|_| A::validate(p, ctx))
            .map_err(|e| (Phase::Validate, e))?;
        tracing::debug!(
            "validate: ok ({} ms left)",
            ctx.deadline.remaining().as_millis()
        );
        Ok(plan)
    };
    let action = |e| (Phase::Action, e);
    match (ctx.action, &params) {
        (Action::ValidateAll, Some(p)) => validate(p).map(|_| Status::Success),
        (Action::Start, Some(p)) => {
            let plan = validate(p)?;
            A::start(p, plan, ctx).map_err(action)?;
            Ok(Status::Success)
        }
        (Action::Reload, Some(p)) => {
            let plan = validate(p)?;
            A::reload(p, plan, ctx).map_err(action)?;
            Ok(Status::Success)
        }
        (Action::Stop, p) => A::stop(p.as_ref(), ctx)
            .map(|_| Status::Success)
            .map_err(action),
        (Action::Monitor, p) => A::monitor(p.as_ref(), ctx).map_err(action),
        (a, _) => Err(action(OcfError::unimplemented(format!(
            "action {a} is not implemented by {}",
            ctx.agent
        )))),
    }
}

/// Something held for the whole action (e.g. the instance's lock), released when the
/// action has returned.
pub type Guard = Box<dyn std::any::Any>;

/// Called once per action, after the context is built and before anything else runs:
/// what it returns is held until the action ends; its error is the action's error (the
/// policy applies). The binary uses it to serialize the actions of one instance.
pub type GuardFn<'a> = &'a dyn Fn(&Ctx) -> Result<Option<Guard>, OcfError>;

/// Run one OCF action of agent `A`. `arg` is argv[1]; further arguments are ignored (spec).
pub fn run<A: Agent>(
    arg: Option<&str>,
    env: OcfEnv,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Status {
    run_guarded::<A>(arg, env, out, err, &|_| Ok(None))
}

/// The actions answered from the declarations alone (no context, no parameters).
fn informational<A: Agent>(action: Action, out: &mut dyn Write) -> Option<Status> {
    let info = &A::INFO;
    match action {
        Action::MetaData => {
            let _ = out.write_all(metadata_xml(info, A::Params::SPEC).as_bytes());
        }
        Action::Usage => {
            let _ = out.write_all(usage(info).as_bytes());
        }
        Action::Methods => {
            for a in info.actions {
                let _ = writeln!(out, "{}", a.action);
            }
        }
        _ => return None,
    }
    Some(Status::Success)
}

/// [`run`], holding what `guard` returns for the duration of the action.
pub fn run_guarded<A: Agent>(
    arg: Option<&str>,
    env: OcfEnv,
    out: &mut dyn Write,
    err: &mut dyn Write,
    guard: GuardFn,
) -> Status {
    let info = &A::INFO;
    let prefix = env.exit_reason_prefix().to_string();
    let fail = |err: &mut dyn Write, status: Status, reason: &str| {
        let _ = writeln!(err, "{}", exit_reason_line(&prefix, reason));
        status
    };
    let Some(arg) = arg else {
        let _ = err.write_all(usage(info).as_bytes());
        return fail(err, Status::ErrArgs, "no action given");
    };
    let Ok(action) = arg.parse::<Action>() else {
        let _ = err.write_all(usage(info).as_bytes());
        return fail(
            err,
            Status::ErrUnimplemented,
            &format!("unknown action '{}'", arg.escape_debug()),
        );
    };
    if let Some(status) = informational::<A>(action, out) {
        return status;
    }
    if info.action(action).is_none() {
        return fail(
            err,
            Status::ErrUnimplemented,
            &format!("action {action} is not supported by {}", info.name),
        );
    }
    let ctx = Ctx::new(env, info, action);
    let trace = crate::log::init_action(
        &ctx.env,
        info.name,
        &ctx.instance,
        action.as_str(),
        A::Params::SPEC,
    );
    let class = Class::of(&ctx);
    tracing::debug!(
        "{action} (probe={}, depth={}, {} ms left)",
        ctx.is_probe(),
        ctx.check_level(),
        ctx.deadline.remaining().as_millis()
    );
    let result = guard(&ctx)
        .map_err(|e| (Phase::Action, e))
        .and_then(|held| {
            let r = execute::<A>(&ctx);
            drop(held);
            r
        });
    let status = match result {
        Ok(status) => status,
        Err((phase, e)) => {
            let outcome = decide(class, phase, e.kind);
            let status = match outcome {
                Outcome::Is(s) => s,
                Outcome::AsIs | Outcome::FromRecord => e.status(),
            };
            tracing::debug!(
                "policy: {:?} error in {phase:?} of a {class:?} -> {outcome:?} -> exit {}",
                e.kind,
                status.code()
            );
            if status == Status::NotRunning {
                tracing::info!("{e}; reporting not running");
                status
            } else {
                tracing::error!(target: crate::log::EXIT_REASON_TARGET, "{}", e.reason);
                fail(err, status, &e.reason)
            }
        }
    };
    if let Some(t) = trace {
        t.event(
            "EXIT",
            "ocf::runner",
            &format!("{action} -> {} ({status:?})", status.code()),
        );
    }
    status
}

/// An agent as the registry sees it (object safe).
pub trait DynAgent: Sync {
    fn info(&self) -> &'static AgentInfo;
    fn params(&self) -> &'static [ParamSpec];
    fn helpers(&self) -> &'static [Helper];
    fn run_guarded(
        &self,
        arg: Option<&str>,
        env: OcfEnv,
        out: &mut dyn Write,
        err: &mut dyn Write,
        guard: GuardFn,
    ) -> Status;

    fn run(
        &self,
        arg: Option<&str>,
        env: OcfEnv,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Status {
        self.run_guarded(arg, env, out, err, &|_| Ok(None))
    }

    /// Parse `env`'s parameters and check them as validate-all would, without anything
    /// node-local ([`Agent::check_params`]): for tools that judge a configuration from
    /// elsewhere (`rustha migrate`).
    fn check_params(&self, env: OcfEnv) -> Result<(), OcfError>;

    fn name(&self) -> &'static str {
        self.info().name
    }
    fn metadata(&self) -> String {
        metadata_xml(self.info(), self.params())
    }
    fn markdown(&self, provider: &str) -> String {
        crate::docs::markdown(provider, self.info(), self.params())
    }
    /// `ocf_<provider>_<agent>(7)`; `source` is the footer, e.g. "rustha 0.1.0".
    fn man_page(&self, provider: &str, source: &str) -> String {
        crate::man::agent_page(provider, source, self.info(), self.params())
    }
}

/// The registry entry for agent `A`.
pub struct Entry<A>(PhantomData<fn() -> A>);

impl<A> Entry<A> {
    pub const fn new() -> Self {
        Entry(PhantomData)
    }
}

impl<A> Default for Entry<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Agent> DynAgent for Entry<A> {
    fn info(&self) -> &'static AgentInfo {
        &A::INFO
    }
    fn params(&self) -> &'static [ParamSpec] {
        A::Params::SPEC
    }
    fn helpers(&self) -> &'static [Helper] {
        A::HELPERS
    }
    fn run_guarded(
        &self,
        arg: Option<&str>,
        env: OcfEnv,
        out: &mut dyn Write,
        err: &mut dyn Write,
        guard: GuardFn,
    ) -> Status {
        run_guarded::<A>(arg, env, out, err, guard)
    }
    fn check_params(&self, env: OcfEnv) -> Result<(), OcfError> {
        let ctx = Ctx::new(env, &A::INFO, Action::ValidateAll);
        let p = A::Params::from_env(&ctx.env)?;
        crate::params::refused_set(&ctx.env, A::Params::SPEC)?;
        A::check_params(&p, &ctx)
    }
}

#[cfg(test)]
mod tests;
