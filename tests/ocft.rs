//! Upstream's own test suite: the `ocft` case files that resource-agents ships for the
//! agents we replace (IPaddr2, IPaddr2v4, IPaddr2v6, mysql, Filesystem; nginx has none), adapted
//! copies in tests/ocft/configs (TEST-NET addresses, veth interfaces in a private
//! network namespace, a private MariaDB; every CASE, name and expected code kept),
//! run by the real `ocft` tool (`ocft make` + `ocft test -v`, through tests/ocft/run.sh)
//! against `ocf:rustha:<agent>` and, in the same test, `ocf:heartbeat:<agent>`.
//!
//! Every case must pass on both, except those listed in [`EXCEPTIONS`]:
//! - a deliberate difference: rustha's copy of the case expects our code at that step
//!   (the rest of the case runs as upstream wrote it); heartbeat runs upstream's;
//! - a stale upstream expectation: both agents run the case as upstream wrote it, and
//!   it must fail at that step with exactly the listed codes (heartbeat's own 4.12
//!   result, and ours).
//!
//! A listed exception that does not occur fails too, so the list stays true. The
//! table in tests/ocft/README.md is what this test prints.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const HEARTBEAT: &str = "/usr/lib/ocf/resource.d/heartbeat";
const CASES_DIR: &str = "/var/lib/resource-agents/ocft/cases";
const UPSTREAM_CONFIGS: &str = "/usr/share/resource-agents/ocft/configs";

/// (configuration, agent)
const CONFIGS: &[(&str, &str)] = &[
    ("IPaddr2", "IPaddr2"),
    ("IPaddr2v4", "IPaddr2"),
    ("IPaddr2v6", "IPaddr2"),
    ("mysql", "mysql"),
    ("Filesystem", "Filesystem"),
];

/// Configurations whose runs take a loop device with upstream's `loopbackeddev make`
/// (`losetup -f`, then `losetup DEV FILE`: two runs at once can pick the same free
/// device), and re-attach it by number in a case: their two runs go one after the other.
const ONE_AT_A_TIME: &[&str] = &["Filesystem"];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Deliberate,
    Stale,
}

/// One case step whose expected code is not upstream's.
struct Exception {
    config: &'static str,
    /// ocft's case number (0-based, in file order) and the case's name.
    case: usize,
    name: &'static str,
    /// Which of the case's checked `AgentRun <action> <CODE>` lines (0-based).
    step: usize,
    action: &'static str,
    upstream: &'static str,
    /// What ocf:heartbeat (4.12) returns there.
    heartbeat: &'static str,
    /// What ocf:rustha returns there.
    ours: &'static str,
    kind: Kind,
    why: &'static str,
}

const WHY_NIC: &str = "an interface missing on this node is a problem of this node: 5 \
    (not installed) lets Pacemaker start the address on another node; upstream's 6 stops \
    it on every node";
const WHY_V6_PREFIX: &str = "stale upstream expectation: the 4.12 agent itself returns 0. Its \
    findif takes a given cidr_netmask whenever a connected route covers the address (`ip \
    route list match 2001:db8:1234::2/80` finds the base /64), so it adds \
    2001:db8:1234::2/80 on eth0, which is what the IPv4 counterpart expects (IPaddr2v4 \
    case 14, a /28 inside the base /24: 0); ours does the same";

const EXCEPTIONS: &[Exception] = &[
    Exception {
        config: "IPaddr2",
        case: 8,
        name: "check base env: set invalid 'OCF_RESKEY_nic'",
        step: 0,
        action: "start",
        upstream: "OCF_ERR_CONFIGURED",
        heartbeat: "OCF_ERR_CONFIGURED",
        ours: "OCF_ERR_INSTALLED",
        kind: Kind::Deliberate,
        why: WHY_NIC,
    },
    Exception {
        config: "IPaddr2",
        case: 8,
        name: "check base env: set invalid 'OCF_RESKEY_nic'",
        step: 1,
        action: "validate-all",
        upstream: "OCF_ERR_CONFIGURED",
        heartbeat: "OCF_ERR_CONFIGURED",
        ours: "OCF_ERR_INSTALLED",
        kind: Kind::Deliberate,
        why: WHY_NIC,
    },
    Exception {
        config: "IPaddr2v6",
        case: 13,
        name: "params with force cidr_netmask (base netmask < assigned netmask)",
        step: 0,
        action: "start",
        upstream: "OCF_ERR_GENERIC",
        heartbeat: "OCF_SUCCESS",
        ours: "OCF_SUCCESS",
        kind: Kind::Stale,
        why: WHY_V6_PREFIX,
    },
];

/// One checked `AgentRun`: action, the code returned, the code expected (ocft's names).
#[derive(Clone, Debug)]
struct Check {
    action: String,
    actual: String,
    expected: String,
}

impl Check {
    fn ok(&self) -> bool {
        self.actual == self.expected
    }
}

#[derive(Clone, Debug, Default)]
struct CaseRun {
    name: String,
    started: bool,
    checks: Vec<Check>,
    /// ocft's `ERROR:` lines (a failed Bash check, an unchecked AgentRun that failed, a
    /// hanging agent).
    errors: Vec<String>,
    /// ocft's own verdict: it leaves `<n>_<config>.retest` for every failed case.
    failed: bool,
}

struct ConfigRun {
    cases: Vec<CaseRun>,
    secs: u64,
    output: String,
    left: Vec<String>,
}

/// A top-level statement (CONFIG, VARIABLE, SETUP-AGENT, CASE-BLOCK, CASE, ...): as ocft
/// tells them, by a first word of capitals and dashes only (indentation is ignored).
fn top_level(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    !first.is_empty() && first.chars().all(|c| c.is_ascii_uppercase() || c == '-')
}

/// The checked steps of every case, from the configuration text: (case name, [(action,
/// expected code)]). Macros (CASE-BLOCK) hold no checked step in these files; that is
/// asserted, so step numbers are the case's own lines.
fn parse_config(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut cases: Vec<(String, Vec<(String, String)>)> = vec![];
    let mut in_case = false;
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim_start();
        let first = t.split_whitespace().next().unwrap_or("");
        if top_level(t) {
            in_case = first == "CASE";
            in_block = first == "CASE-BLOCK";
            if in_case {
                let name = t["CASE".len()..].trim().trim_matches('"').to_string();
                cases.push((name, vec![]));
            }
            continue;
        }
        let words: Vec<&str> = t.split('#').next().unwrap().split_whitespace().collect();
        if words.first() == Some(&"AgentRun") && words.len() >= 3 {
            assert!(!in_block, "a CASE-BLOCK with a checked AgentRun: {line}");
            if in_case {
                let c = cases.last_mut().unwrap();
                c.1.push((words[1].to_string(), words[2].to_string()));
            }
        }
    }
    cases
}

/// rustha's copy of a configuration: each deliberate difference's step expects our code.
fn rewrite_for_rustha(config: &str, text: &str) -> String {
    let mut out = String::new();
    let mut case: Option<usize> = None;
    let mut step = 0;
    let mut next_case = 0;
    let mut applied = 0;
    for line in text.lines() {
        let t = line.trim_start();
        let first = t.split_whitespace().next().unwrap_or("");
        let mut line = line.to_string();
        if top_level(t) {
            case = None;
            if first == "CASE" {
                case = Some(next_case);
                next_case += 1;
                step = 0;
            }
        } else if let Some(n) = case {
            let words: Vec<&str> = t.split_whitespace().collect();
            if words.first() == Some(&"AgentRun") && words.len() >= 3 {
                if let Some(e) = EXCEPTIONS.iter().find(|e| {
                    e.kind == Kind::Deliberate
                        && e.config == config
                        && e.case == n
                        && e.step == step
                }) {
                    assert_eq!(
                        (words[1], words[2]),
                        (e.action, e.upstream),
                        "{config} case {n} step {step}: the exception does not match the file"
                    );
                    line = line.replacen(e.upstream, e.ours, 1);
                    applied += 1;
                }
                step += 1;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let listed = EXCEPTIONS
        .iter()
        .filter(|e| e.kind == Kind::Deliberate && e.config == config)
        .count();
    assert_eq!(
        applied, listed,
        "{config}: a listed difference names no step"
    );
    out
}

/// ocft's verbose output, per case (ANSI colours removed).
fn parse_output(out: &str, n: usize) -> Vec<CaseRun> {
    let mut cases = vec![CaseRun::default(); n];
    let mut cur: Option<usize> = None;
    let mut action = String::new();
    let quoted =
        |s: &str| -> Vec<String> { s.split('\'').skip(1).step_by(2).map(String::from).collect() };
    for line in out.lines() {
        let line = strip_ansi(line);
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Starting '") {
            // Starting '<config>' case <n> '<name>':
            let after = rest.split_once("' case ").map(|x| x.1).unwrap_or("");
            let (num, name) = after.split_once(' ').unwrap_or(("", ""));
            cur = num.parse().ok().filter(|&i| i < n);
            if let Some(i) = cur {
                cases[i].started = true;
                let name = name.strip_suffix(':').unwrap_or(name);
                let name = name.strip_prefix('\'').unwrap_or(name);
                cases[i].name = name.strip_suffix('\'').unwrap_or(name).to_string();
            }
            continue;
        }
        let Some(i) = cur else { continue };
        if let Some(a) = line.strip_prefix("Running agent:") {
            action = a.trim().rsplit(' ').next().unwrap_or("").to_string();
        } else if let Some(v) = line.strip_prefix("Checking return value:") {
            let q = quoted(v);
            if q.len() >= 2 {
                cases[i].checks.push(Check {
                    action: action.clone(),
                    actual: q[0].clone(),
                    expected: q[1].clone(),
                });
            }
        } else if line.contains("ERROR:") {
            cases[i].errors.push(line.to_string());
        } else if line.starts_with("Cleaning '") {
            cur = None;
        }
    }
    cases
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Processes in the named network namespace, as "pid cmdline".
fn procs_in_netns(ns: &str) -> Vec<String> {
    let o = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|p| {
            let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            format!("{p} {}", cmd.trim())
        })
        .collect()
}

/// A named network namespace of the test's, removed on drop (what still runs in it is
/// killed by pid first), even when the run panics.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        remove_netns(name);
        ip(&["netns", "add", name]);
        Netns(name.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.0);
    }
}

/// Run one configuration against one agent directory with the real ocft, in a
/// namespace of its own; everything it made is removed before this returns.
fn run_config(config: &str, agent: &str, rustha: bool, text: &str) -> ConfigRun {
    static LOOPS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME
        .contains(&config)
        .then(|| LOOPS.lock().unwrap_or_else(|e| e.into_inner()));
    let who = if rustha { "rustha" } else { "heartbeat" };
    let work = TempDir::new(&format!("ocft-{who}-{config}"));
    let cfgdir = work.path().join("configs");
    std::fs::create_dir_all(&cfgdir).unwrap();
    std::fs::write(cfgdir.join(config), text).unwrap();
    let state = TempDir::new(&format!("ocft-state-{who}"));
    let root = if rustha {
        let d = work.path().join("agents");
        std::fs::create_dir_all(&d).unwrap();
        agent_link(&d, agent);
        d
    } else {
        PathBuf::from(HEARTBEAT)
    };
    // The private MariaDB's directory (the mysql user must be able to reach it).
    let mysql = TempDir::new(&format!("ocft-mysql-{who}"));
    world_readable(mysql.path());
    let ns = Netns::new(&format!(
        "ocft{}-{who}-{}",
        std::process::id(),
        config.to_lowercase()
    ));
    let script = repo().join("tests/ocft/run.sh");
    let t0 = std::time::Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&script)
        .arg(&cfgdir)
        .arg(config)
        .arg(work.path())
        .env_clear()
        .env("PATH", EXEC_PATH)
        .env("LANG", "C")
        .env("OCFT_AGENT_ROOT", &root)
        .env("OCF_RESOURCE_INSTANCE", instance(&format!("ocft-{config}")))
        .env("RUSTHA_STATE_DIR", state.path())
        .env("OCFT_mysql_dir", mysql.path())
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Whatever still runs in the namespace was left by a case: list it, kill it by pid.
    let left = procs_in_netns(&ns.0);
    drop(ns);
    let n = parse_config(text).len();
    let mut cases = parse_output(&output, n);
    for (i, c) in cases.iter_mut().enumerate() {
        c.failed = work
            .path()
            .join(format!("cases/{i}_{config}.retest"))
            .exists();
    }
    ConfigRun {
        cases,
        secs: t0.elapsed().as_secs(),
        output,
        left,
    }
}

fn describe(c: &CaseRun) -> String {
    let mut s: Vec<String> = c
        .checks
        .iter()
        .map(|k| {
            if k.ok() {
                format!("{} {}", k.action, k.actual)
            } else {
                format!("{} {} (expected {})", k.action, k.actual, k.expected)
            }
        })
        .collect();
    s.extend(c.errors.iter().cloned());
    if !c.started {
        s.push("did not run".into());
    }
    s.join("; ")
}

/// Judge one agent's run of one configuration against the file's expectations and the
/// listed exceptions; every mismatch is pushed to `failures`.
fn judge(
    config: &str,
    who: &str,
    expected: &[(String, Vec<(String, String)>)],
    run: &ConfigRun,
    rustha: bool,
    failures: &mut Vec<String>,
) {
    for (i, (name, steps)) in expected.iter().enumerate() {
        let c = &run.cases[i];
        let stale = EXCEPTIONS
            .iter()
            .find(|e| e.kind == Kind::Stale && e.config == config && e.case == i);
        let tag = format!("{who} {config} case {i} '{name}'");
        if !c.started || c.name != *name {
            failures.push(format!("{tag}: did not run (saw '{}')", c.name));
            continue;
        }
        match stale {
            None => {
                let all_checked = c.checks.len() == steps.len() && c.checks.iter().all(Check::ok);
                if c.failed || !all_checked || !c.errors.is_empty() {
                    failures.push(format!("{tag}: {}", describe(c)));
                }
            }
            Some(e) => {
                let want = if rustha { e.ours } else { e.heartbeat };
                let before_ok =
                    c.checks.len() == e.step + 1 && c.checks[..e.step].iter().all(Check::ok);
                let at = c.checks.get(e.step);
                let as_listed = at.is_some_and(|k| {
                    k.action == e.action && k.actual == want && k.expected == e.upstream
                });
                if !(c.failed && before_ok && as_listed) {
                    failures.push(format!(
                        "{tag}: listed as a stale expectation ({} {} where upstream expects {}), got: {}",
                        e.action,
                        want,
                        e.upstream,
                        describe(c)
                    ));
                }
            }
        }
    }
    if !run.left.is_empty() {
        failures.push(format!(
            "{who} {config}: left running after the last case (killed): {}",
            run.left.join(", ")
        ));
    }
}

fn codes(steps: &[(String, String)]) -> String {
    steps
        .iter()
        .map(|(a, c)| format!("{a} {}", short(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn short(code: &str) -> String {
    code.strip_prefix("OCF_").unwrap_or(code).to_string()
}

fn checks(c: &CaseRun) -> String {
    let mut s: Vec<String> = c
        .checks
        .iter()
        .map(|k| format!("{} {}", k.action, short(&k.actual)))
        .collect();
    if !c.errors.is_empty() {
        s.push("ERROR (see output)".into());
    }
    s.join(", ")
}

/// Directories made for the test (the missing ones of `path` and its `depth - 1`
/// parents), removed again on drop if still empty.
struct MadeDirs(Vec<PathBuf>);

impl MadeDirs {
    fn new(path: &str, depth: usize) -> MadeDirs {
        let made = Path::new(path)
            .ancestors()
            .take(depth)
            .filter(|p| !p.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(path).unwrap();
        MadeDirs(made)
    }
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

#[test]
fn upstream_ocft_cases_pass_on_rustha_and_heartbeat() {
    require_root();
    require_tool("ocft");
    for e in EXCEPTIONS {
        // A deliberate difference is ours alone; where heartbeat differs too, it is stale.
        assert!(
            (e.kind == Kind::Deliberate) == (e.heartbeat == e.upstream),
            "{} case {}: heartbeat {} vs upstream {} does not fit {:?}",
            e.config,
            e.case,
            e.heartbeat,
            e.upstream,
            e.kind
        );
    }
    for (_, a) in CONFIGS {
        assert!(
            Path::new(HEARTBEAT).join(a).exists(),
            "resource-agents is not installed"
        );
    }
    // ocft's working directory is fixed; each run binds a private one over it, so it
    // must exist. Made here if missing (as `ocft make` would) and removed again after.
    let _made = MadeDirs::new(CASES_DIR, 3);

    let dir = repo().join("tests/ocft/configs");
    // The adapted copies keep every case of the installed originals: same order, names,
    // checked actions and expected codes.
    for (config, _) in CONFIGS {
        let ours = std::fs::read_to_string(dir.join(config)).unwrap();
        let theirs = std::fs::read_to_string(Path::new(UPSTREAM_CONFIGS).join(config))
            .unwrap_or_else(|e| panic!("{UPSTREAM_CONFIGS}/{config}: {e}"));
        assert_eq!(
            parse_config(&ours),
            parse_config(&theirs),
            "tests/ocft/configs/{config} lost or changed a case of upstream's"
        );
    }
    let runs: Vec<(&str, String, ConfigRun, ConfigRun)> = std::thread::scope(|s| {
        let handles: Vec<_> = CONFIGS
            .iter()
            .map(|&(config, agent)| {
                let text = std::fs::read_to_string(dir.join(config)).unwrap();
                let ours_text = rewrite_for_rustha(config, &text);
                let t = text.clone();
                let o = s.spawn(move || run_config(config, agent, true, &ours_text));
                let u = s.spawn(move || run_config(config, agent, false, &t));
                (config, text, o, u)
            })
            .collect();
        handles
            .into_iter()
            .map(|(c, t, o, u)| (c, t, o.join().unwrap(), u.join().unwrap()))
            .collect()
    });

    let mut failures = vec![];
    let mut table = String::from(
        "| config | # | case | upstream expects | rustha | heartbeat 4.12 | difference |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut total = 0;
    for (config, text, ours, up) in &runs {
        let expected = parse_config(text);
        total += expected.len();
        println!(
            "{config}: {} cases, rustha {} s, heartbeat {} s",
            expected.len(),
            ours.secs,
            up.secs
        );
        judge(config, "rustha", &expected, ours, true, &mut failures);
        judge(config, "heartbeat", &expected, up, false, &mut failures);
        for (i, (name, steps)) in expected.iter().enumerate() {
            // One note per reason, naming the steps it covers.
            let mut why: Vec<(Kind, &str, Vec<&str>)> = vec![];
            for e in EXCEPTIONS
                .iter()
                .filter(|e| e.config == *config && e.case == i)
            {
                match why.iter_mut().find(|w| w.1 == e.why) {
                    Some(w) => w.2.push(e.action),
                    None => why.push((e.kind, e.why, vec![e.action])),
                }
            }
            let why: Vec<String> = why
                .iter()
                .map(|(k, w, a)| {
                    let k = if *k == Kind::Stale {
                        "stale"
                    } else {
                        "deliberate"
                    };
                    format!("{k} ({}): {w}", a.join(", "))
                })
                .collect();
            table.push_str(&format!(
                "| {config} | {i} | {name} | {} | {} | {} | {} |\n",
                codes(steps),
                checks(&ours.cases[i]),
                checks(&up.cases[i]),
                why.join("; ")
            ));
        }
        for e in EXCEPTIONS.iter().filter(|e| e.config == *config) {
            assert_eq!(
                expected.get(e.case).map(|c| c.0.as_str()),
                Some(e.name),
                "{config}: the exception's case number and name do not match the file"
            );
        }
    }
    println!("{table}");
    println!("{total} cases, {} listed exceptions", EXCEPTIONS.len());
    // ocft's whole output, for each run that has a failure.
    for (config, _, ours, up) in &runs {
        for (who, run) in [("rustha", ours), ("heartbeat", up)] {
            let tag = format!("{who} {config}");
            if failures
                .iter()
                .any(|f| f.starts_with(&format!("{tag} ")) || f.starts_with(&format!("{tag}:")))
            {
                eprintln!("===== ocft output, {tag}\n{}", run.output);
            }
        }
    }
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

/// The harness itself, without namespaces: ocft's verbose lines (colours, quotes in case
/// names, a failed check) parse into the right cases and codes, and rustha's copy of a
/// configuration differs from upstream's in exactly the listed steps.
#[test]
fn harness_reads_ocft_output_and_rewrites_only_the_listed_steps() {
    let out = "Starting '\u{1b}[33mIPaddr2\u{1b}[0m' case 1 '\u{1b}[33mcheck base env: unset 'OCF_RESKEY_ip'\u{1b}[0m':\n\
        Running agent:                ./IPaddr2 start\n\
        Checking return value:        \u{1b}[32mOK\u{1b}[0m. The return value '\u{1b}[34mOCF_ERR_CONFIGURED\u{1b}[0m' == '\u{1b}[34mOCF_ERR_CONFIGURED\u{1b}[0m'\n\
        \n\
        Starting 'IPaddr2' case 2 'monitor':\n\
        Running agent:                ./IPaddr2 monitor\n\
        Checking return value:        FAILED. The return value 'OCF_SUCCESS' != 'OCF_NOT_RUNNING'. See details below:\n\
        ERROR: './IPaddr2 stop' failed, the return code is 1.\n\
        Cleaning 'IPaddr2' ...\n";
    let cases = parse_output(out, 3);
    assert!(!cases[0].started);
    assert_eq!(cases[1].name, "check base env: unset 'OCF_RESKEY_ip'");
    assert_eq!(cases[1].checks.len(), 1);
    assert!(cases[1].checks[0].ok() && cases[1].checks[0].action == "start");
    assert!(cases[1].errors.is_empty());
    let k = &cases[2].checks[0];
    assert_eq!(
        (k.action.as_str(), k.actual.as_str(), k.expected.as_str()),
        ("monitor", "OCF_SUCCESS", "OCF_NOT_RUNNING")
    );
    assert_eq!(cases[2].errors.len(), 1);

    let dir = repo().join("tests/ocft/configs");
    for (config, _) in CONFIGS {
        let text = std::fs::read_to_string(dir.join(config)).unwrap();
        let ours = rewrite_for_rustha(config, &text);
        let changed: Vec<(&str, &str)> = text
            .lines()
            .zip(ours.lines())
            .filter(|(a, b)| a != b)
            .collect();
        let listed: Vec<&Exception> = EXCEPTIONS
            .iter()
            .filter(|e| e.kind == Kind::Deliberate && e.config == *config)
            .collect();
        assert_eq!(changed.len(), listed.len(), "{config}: {changed:?}");
        for ((a, b), e) in changed.iter().zip(&listed) {
            assert_eq!(a.replacen(e.upstream, e.ours, 1), *b);
        }
        let (theirs, mine) = (parse_config(&text), parse_config(&ours));
        assert_eq!(theirs.len(), mine.len());
        for e in &listed {
            assert_eq!(
                mine[e.case].1[e.step],
                (e.action.to_string(), e.ours.to_string())
            );
        }
    }
}
