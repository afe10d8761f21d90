//! The differential harness: each case's steps are played by ours and by upstream's
//! agent, each side in a lab of its own, both at the same time. Every step's exit codes
//! must be the same, except the deliberate differences the case lists (each with its
//! reason); a listed difference that does not occur fails too, so the list stays true.
//! What else a case compares (addresses, processes left) it judges in [`Case::compare`].

/// A difference a case lists: (step index, ours, upstream, why).
pub type Listed = (usize, i32, i32, &'static str);

/// As upstream's code in a [`Listed`] difference: only ours is checked (upstream's
/// result races).
pub const ANY_CODE: i32 = i32::MIN;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Ours,
    Upstream,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Ours => "rustha",
            Side::Upstream => "heartbeat",
        }
    }
}

/// What every case has: its name, its steps and the differences it lists.
pub struct Script<'a> {
    pub name: &'a str,
    pub steps: &'a [&'static str],
    pub differs: &'a [Listed],
}

impl<'a> Script<'a> {
    pub fn new(name: &'a str, steps: &'a [&'static str], differs: &'a [Listed]) -> Self {
        Script {
            name,
            steps,
            differs,
        }
    }
}

pub trait Case: Sync {
    /// What one side saw over the case (at least each step's exit code).
    type Seen: Send;
    fn script(&self) -> Script<'_>;
    /// Play every step on one side, in a lab of the side's own.
    fn play(&self, side: Side) -> Self::Seen;
    /// Each step's exit code.
    fn codes(seen: &Self::Seen) -> Vec<i32>;
    /// Failures beyond the exit codes (state after each step, processes left).
    fn compare(&self, _ours: &Self::Seen, _upstream: &Self::Seen) -> Vec<String> {
        vec![]
    }
}

/// How cases share the machine: all at once (labs that cannot collide), or one case at
/// a time (servers on fixed ports, even if each side has a namespace of its own).
#[derive(Clone, Copy)]
pub enum Schedule {
    AllAtOnce,
    OneCaseAtATime,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mark {
    Same,
    Deliberate,
    /// A listed difference that did not occur.
    Unexpected,
    /// A difference that is not listed.
    Differs,
}

impl Mark {
    pub fn label(self) -> &'static str {
        match self {
            Mark::Same => "",
            Mark::Deliberate => "deliberate",
            Mark::Unexpected => "UNEXPECTED",
            Mark::Differs => "DIFFERS",
        }
    }
}

/// One step's codes against what the case lists for it.
pub fn judge(listed: Option<&Listed>, ours: i32, upstream: i32) -> Mark {
    match listed {
        Some(&(_, o, u, _)) if o == ours && (u == upstream || u == ANY_CODE) => Mark::Deliberate,
        Some(_) => Mark::Unexpected,
        None if ours == upstream => Mark::Same,
        None => Mark::Differs,
    }
}

/// One case as both sides played it.
pub struct Played<'c, C: Case> {
    pub case: &'c C,
    pub ours: C::Seen,
    pub upstream: C::Seen,
    pub codes: Vec<(i32, i32, Mark)>,
}

pub struct Comparison<'c, C: Case> {
    pub played: Vec<Played<'c, C>>,
    pub failures: Vec<String>,
    pub steps: usize,
}

fn both<C: Case>(case: &C) -> (C::Seen, C::Seen) {
    std::thread::scope(|s| {
        let o = s.spawn(|| case.play(Side::Ours));
        let u = s.spawn(|| case.play(Side::Upstream));
        (o.join().unwrap(), u.join().unwrap())
    })
}

/// Play every case on both sides and judge the exit codes and the case's own checks.
pub fn compare<C: Case>(cases: &[C], schedule: Schedule) -> Comparison<'_, C> {
    let seen: Vec<(C::Seen, C::Seen)> = match schedule {
        Schedule::OneCaseAtATime => cases.iter().map(both).collect(),
        Schedule::AllAtOnce => std::thread::scope(|s| {
            let hs: Vec<_> = cases.iter().map(|c| s.spawn(move || both(c))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        }),
    };
    let mut failures = vec![];
    let mut steps = 0;
    let played = cases
        .iter()
        .zip(seen)
        .map(|(case, (ours, upstream))| {
            let script = case.script();
            let (o, u) = (C::codes(&ours), C::codes(&upstream));
            assert_eq!(
                (o.len(), u.len()),
                (script.steps.len(), script.steps.len()),
                "{}: a side did not report one code per step",
                script.name
            );
            let codes: Vec<_> = o
                .iter()
                .zip(&u)
                .enumerate()
                .map(|(i, (&o, &u))| {
                    let listed = script.differs.iter().find(|d| d.0 == i);
                    let mark = judge(listed, o, u);
                    let at = format!("{}: step {} ({})", script.name, i + 1, script.steps[i]);
                    match (mark, listed) {
                        (Mark::Unexpected, Some(&(_, wo, wu, _))) => failures.push(format!(
                            "{at}: listed difference {wo} vs {wu} did not occur: got {o} vs {u}"
                        )),
                        (Mark::Differs, _) => {
                            failures.push(format!("{at}: rustha {o}, heartbeat {u}"))
                        }
                        _ => {}
                    }
                    (o, u, mark)
                })
                .collect();
            steps += codes.len();
            failures.extend(case.compare(&ours, &upstream));
            Played {
                case,
                ours,
                upstream,
                codes,
            }
        })
        .collect();
    Comparison {
        played,
        failures,
        steps,
    }
}

impl<C: Case> Comparison<'_, C> {
    /// Each case's name, then one line per step: the step, both codes and its mark;
    /// `extra` adds lines after a case's steps (what else the suite compares).
    pub fn step_report(&self, extra: impl Fn(&Played<'_, C>) -> String) -> String {
        let mut report = String::new();
        for p in &self.played {
            report.push_str(&format!("{}\n", p.case.script().name));
            for (step, (o, u, mark)) in p.case.script().steps.iter().zip(&p.codes) {
                report.push_str(&format!(
                    "  {step:<14} ours {o:>2}  upstream {u:>2}  {}\n",
                    mark.label()
                ));
            }
            report.push_str(&extra(p));
        }
        report
    }

    /// Print the report and the count, keep the report in `$RUSTHA_DIFF_REPORT/<suite>`
    /// when that is set, and fail with every failure.
    pub fn finish(self, suite: &str, report: &str) {
        println!(
            "{report}\n{} cases, {} steps compared",
            self.played.len(),
            self.steps
        );
        if let Some(dir) = std::env::var_os("RUSTHA_DIFF_REPORT") {
            let p = std::path::Path::new(&dir).join(suite);
            std::fs::write(&p, report).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
        assert!(
            self.played.iter().all(|p| !p.codes.is_empty()),
            "a case with no steps compares nothing"
        );
        assert!(
            self.failures.is_empty(),
            "{}\n\n{report}",
            self.failures.join("\n")
        );
    }
}
