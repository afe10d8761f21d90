//! The runner's policy, tested as a table through a fixture agent.
// Fixture parameters are declared to be parsed, not all to be read.
#![allow(dead_code)]

use super::*;
use crate::metadata::ActionSpec;
use crate::params::ParamSpec;

crate::params! {
    struct FixtureParams {
        mode: String => ParamSpec::new("Mode", "Required, so that leaving it out breaks parsing."),
        fail: Option<String> => ParamSpec::new("Fail", "`phase:kind`: make that phase fail with that kind."),
        legacy: Option<String> => ParamSpec::new("Legacy", "An upstream mode.").refused("not here."),
    }
}

struct Fixture;

fn injected(p: &FixtureParams, phase: &str) -> Result<(), OcfError> {
    let Some(spec) = &p.fail else { return Ok(()) };
    let (ph, kind) = spec.split_once(':').unwrap();
    if ph != phase {
        return Ok(());
    }
    let kind = match kind {
        "generic" => ErrorKind::Generic,
        "args" => ErrorKind::Args,
        "perm" => ErrorKind::Perm,
        "installed" => ErrorKind::Installed,
        "configured" => ErrorKind::Configured,
        k => panic!("bad kind {k}"),
    };
    Err(OcfError::new(kind, format!("injected {kind:?} in {phase}")))
}

/// What validate decided, as start received it: (action, mode, serial of the plan).
static PLANS: std::sync::Mutex<Vec<(&str, String, u64)>> = std::sync::Mutex::new(Vec::new());
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The fixture's plan: only its `validate` makes one.
struct Plan {
    mode: String,
    serial: u64,
}

fn recorded(ctx: &Ctx) -> bool {
    ctx.env.var("FIXTURE_RECORD") == Some("running")
}

impl Agent for Fixture {
    type Params = FixtureParams;
    type Plan = Plan;
    const INFO: AgentInfo = AgentInfo {
        name: "fixture",
        version: "0",
        shortdesc: "fixture",
        longdesc: "fixture",
        actions: &[
            ActionSpec::new(Action::Start, 20),
            ActionSpec::new(Action::Stop, 20),
            ActionSpec::new(Action::Monitor, 20).interval(10).depth(0),
            ActionSpec::new(Action::ValidateAll, 20),
            ActionSpec::new(Action::MetaData, 5),
        ],
    };
    fn validate(p: &FixtureParams, _: &Ctx) -> Result<Plan, OcfError> {
        injected(p, "validate")?;
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PLANS
            .lock()
            .unwrap()
            .push(("validate", p.mode.clone(), serial));
        Ok(Plan {
            mode: p.mode.clone(),
            serial,
        })
    }
    fn start(p: &FixtureParams, plan: Plan, _: &Ctx) -> Result<(), OcfError> {
        PLANS
            .lock()
            .unwrap()
            .push(("start", plan.mode, plan.serial));
        injected(p, "start")
    }
    fn stop(p: Option<&FixtureParams>, _: &Ctx) -> Result<(), OcfError> {
        p.map_or(Ok(()), |p| injected(p, "stop"))
    }
    fn monitor(p: Option<&FixtureParams>, ctx: &Ctx) -> Result<Status, OcfError> {
        if let Some(p) = p {
            injected(p, "monitor")?;
        }
        Ok(if recorded(ctx) {
            Status::Success
        } else {
            Status::NotRunning
        })
    }
}

struct Case {
    arg: Option<&'static str>,
    vars: &'static [(&'static str, &'static str)],
    want: u8,
}

const fn case(
    arg: Option<&'static str>,
    vars: &'static [(&'static str, &'static str)],
    want: u8,
) -> Case {
    Case { arg, vars, want }
}

const OK: &[(&str, &str)] = &[("OCF_RESKEY_mode", "x")];
const NO_PARAMS: &[(&str, &str)] = &[];
const RECURRING: (&str, &str) = ("OCF_RESKEY_CRM_meta_interval", "10000");

#[rustfmt::skip]
const CASES: &[Case] = &[
    // argv handling
    case(None, OK, 2),
    case(Some("bogus"), OK, 3),
    case(Some("notify"), OK, 3),
    case(Some("reload"), OK, 3),
    case(Some("promote"), OK, 3),
    case(Some("meta-data"), NO_PARAMS, 0),
    case(Some("usage"), NO_PARAMS, 0),
    case(Some("methods"), NO_PARAMS, 0),
    // validate-all: 6 / 2 / 5 with a reason
    case(Some("validate-all"), OK, 0),
    case(Some("validate-all"), NO_PARAMS, 6),
    case(Some("validate-all"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "validate:args")], 2),
    case(Some("validate-all"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "validate:installed")], 5),
    case(Some("validate-all"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "validate:configured")], 6),
    // a parameter declared refused: 6 at validate-all and start, never looked at elsewhere
    case(Some("validate-all"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", "on")], 6),
    case(Some("validate-all"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", " ")], 0),
    case(Some("start"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", "on")], 6),
    case(Some("stop"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", "on")], 0),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", "on")], 7),
    case(Some("monitor"), &[RECURRING, ("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_legacy", "on"), ("FIXTURE_RECORD", "running")], 0),
    // start: the error's own status
    case(Some("start"), OK, 0),
    case(Some("start"), NO_PARAMS, 6),
    case(Some("start"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "validate:configured")], 6),
    case(Some("start"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "start:generic")], 1),
    case(Some("start"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "start:perm")], 4),
    // stop: broken params -> act on the record (nothing runs -> 0); failures are 1, never 5/6
    case(Some("stop"), NO_PARAMS, 0),
    case(Some("stop"), OK, 0),
    case(Some("stop"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "stop:configured")], 1),
    case(Some("stop"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "stop:installed")], 1),
    case(Some("stop"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "stop:generic")], 1),
    // probe (interval unset or 0): 7 when nothing runs, 5 when software missing, never 6
    case(Some("monitor"), OK, 7),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_CRM_meta_interval", "0")], 7),
    case(Some("monitor"), NO_PARAMS, 7),
    case(Some("monitor"), &[("FIXTURE_RECORD", "running")], 0),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:installed")], 5),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:configured")], 7),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:args")], 7),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:generic")], 1),
    case(Some("monitor"), &[("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:perm")], 4),
    // recurring monitor: never 6; environment problems are 1
    case(Some("monitor"), &[RECURRING], 7),
    case(Some("monitor"), &[RECURRING, ("FIXTURE_RECORD", "running")], 0),
    case(Some("monitor"), &[RECURRING, ("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:configured")], 1),
    case(Some("monitor"), &[RECURRING, ("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:installed")], 1),
    case(Some("monitor"), &[RECURRING, ("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:args")], 1),
    case(Some("monitor"), &[RECURRING, ("OCF_RESKEY_mode", "x"), ("OCF_RESKEY_fail", "monitor:generic")], 1),
];

#[test]
fn policy_table_end_to_end() {
    for c in CASES {
        let env = OcfEnv::from_pairs(c.vars.iter().copied());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let got = run::<Fixture>(c.arg, env, &mut out, &mut err).code();
        let err = String::from_utf8(err).unwrap();
        assert_eq!(got, c.want, "{:?} {:?}: stderr {err}", c.arg, c.vars);
        let last = err.lines().last().unwrap_or("");
        if got == 0 || got == 7 {
            assert!(
                !err.contains("ocf-exit-reason:"),
                "{:?} {:?}: {err}",
                c.arg,
                c.vars
            );
        } else {
            // Exactly one exit reason, and it is the last line.
            assert!(
                last.starts_with("ocf-exit-reason:") && last.len() > 16,
                "{:?} {:?}: {err}",
                c.arg,
                c.vars
            );
            assert_eq!(err.matches("ocf-exit-reason:").count(), 1, "{err}");
        }
    }
}

#[test]
fn start_acts_on_the_plan_of_its_own_validation() {
    let plans = |mode: &str| -> Vec<(&str, u64)> {
        let all = PLANS.lock().unwrap();
        all.iter()
            .filter(|(_, m, _)| m == mode)
            .map(|(a, _, s)| (*a, *s))
            .collect()
    };
    for round in 0..2 {
        let mode = format!("plan-{round}");
        let env = OcfEnv::from_pairs([("OCF_RESKEY_mode", mode.as_str())]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            run::<Fixture>(Some("start"), env, &mut out, &mut err).code(),
            0
        );
        // One validation, and start got exactly its plan (not an earlier one).
        let got = plans(&mode);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "validate");
        assert_eq!(got[1], ("start", got[0].1), "{got:?}");
    }
    // A validation that fails makes no plan, and start does not run.
    let env = OcfEnv::from_pairs([
        ("OCF_RESKEY_mode", "plan-refused"),
        ("OCF_RESKEY_fail", "validate:configured"),
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run::<Fixture>(Some("start"), env, &mut out, &mut err).code(),
        6
    );
    assert!(plans("plan-refused").is_empty());
    // validate-all decides and throws the plan away: no start.
    let env = OcfEnv::from_pairs([("OCF_RESKEY_mode", "plan-check")]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run::<Fixture>(Some("validate-all"), env, &mut out, &mut err).code(),
        0
    );
    let got = plans("plan-check");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "validate");
}

#[test]
fn decide_never_yields_6_outside_validate_and_start() {
    let classes = [Class::Stop, Class::Probe, Class::Monitor];
    for class in classes {
        for phase in [Phase::Params, Phase::Validate, Phase::Action] {
            for kind in ErrorKind::ALL {
                let out = decide(class, phase, kind);
                let status = match out {
                    Outcome::Is(s) => Some(s),
                    Outcome::AsIs => Some(kind.status()),
                    Outcome::FromRecord => None,
                };
                assert_ne!(
                    status,
                    Some(Status::ErrConfigured),
                    "{class:?} {phase:?} {kind:?}"
                );
                if class == Class::Stop {
                    assert!(
                        matches!(status, None | Some(Status::ErrGeneric)),
                        "{class:?} {phase:?} {kind:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_rule_is_reachable() {
    // A rule shadowed by an earlier one is dead policy.
    for (i, r) in POLICY.iter().enumerate() {
        let class = r.class.unwrap_or(Class::Other);
        let phase = r.phase.unwrap_or(Phase::Action);
        let kind = r.kind.unwrap_or(ErrorKind::Perm);
        let first = POLICY
            .iter()
            .position(|q| {
                matches(q.class, class) && matches(q.phase, phase) && matches(q.kind, kind)
            })
            .unwrap();
        assert_eq!(first, i, "rule {i} ({}) is shadowed by rule {first}", r.why);
    }
}

#[test]
fn exit_reason_is_one_bounded_line() {
    assert_eq!(exit_reason_line("p:", "a\nb\tc"), "p:a b c");
    assert_eq!(exit_reason_line("p:", &"x".repeat(2000)).len(), 2 + 512);
}

#[test]
fn meta_data_needs_nothing_and_prints_only_xml() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = run::<Fixture>(Some("meta-data"), OcfEnv::default(), &mut out, &mut err);
    assert_eq!(s, Status::Success);
    assert!(err.is_empty());
    let xml = String::from_utf8(out).unwrap();
    assert!(xml.starts_with("<?xml") && xml.trim_end().ends_with("</resource-agent>"));
    assert!(xml.contains("<parameter name=\"mode\" unique=\"0\" required=\"1\">"));
}

#[test]
fn deadline_comes_from_crm_meta_timeout_or_the_advertised_timeout() {
    let env = OcfEnv::from_pairs([("OCF_RESKEY_CRM_meta_timeout", "4000")]);
    let ctx = Ctx::new(env, &Fixture::INFO, Action::Start);
    assert!(ctx.deadline.remaining() <= Duration::from_millis(3600));
    assert!(ctx.deadline.remaining() > Duration::from_millis(3000));
    let ctx = Ctx::new(OcfEnv::default(), &Fixture::INFO, Action::Start);
    assert!(ctx.deadline.remaining() > Duration::from_secs(17));
    assert_eq!(ctx.instance, "fixture");
    assert!(!ctx.is_probe());
    let ctx = Ctx::new(OcfEnv::default(), &Fixture::INFO, Action::Monitor);
    assert!(ctx.is_probe());
}
