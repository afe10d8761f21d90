//! The OCF contract suite. It iterates over every agent in the registry, so an agent
//! added later is covered without touching this file. Each agent runs through the real
//! binary via a symlink named like the agent, inside a private network namespace.

mod common;

use common::*;
use ocf::params::Support;
use ocf::{ContentType, DynAgent, ParamSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn registry() -> &'static [&'static dyn DynAgent] {
    rustha::registry::AGENTS
}

/// Counts cases and reports them.
struct Tally(&'static str, usize);

impl Tally {
    fn case(&mut self) {
        self.1 += 1;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            println!(
                "contract {}: {} cases over {} agents",
                self.0,
                self.1,
                registry().len()
            );
        }
    }
}

/// Good parameters: every example the declaration gives.
fn good(spec: &[ParamSpec], env: Env, agent: &str) -> Env {
    spec.iter().fold(env, |e, p| match p.example {
        Some(v) => e.param(p.name, v),
        None => {
            assert!(
                !p.required(),
                "{agent}: required parameter {} declares no example",
                p.name
            );
            e
        }
    })
}

/// `env` plus the parameters of the agent's fixture (a site, an emulated cloud).
fn with_fixture(env: Env, fx: &Fixture) -> Env {
    fx.params.iter().fold(env, |e, (k, v)| e.param(k, v))
}

/// A value the parameter's declared type must refuse, when the type says enough.
fn malformed(p: &ParamSpec) -> Option<&'static str> {
    if !p.choices.is_empty() {
        return Some("no-such-choice");
    }
    match p.content {
        ContentType::Integer => Some("not-a-number"),
        ContentType::Boolean => Some("maybe"),
        ContentType::String => None,
    }
}

/// A value for a parameter declared refused (any non-empty value is refused).
fn refused(p: &ParamSpec) -> Option<&'static str> {
    matches!(p.support, Support::Refused(_)).then_some("some-value")
}

fn xmllint(args: &[&str], xml: &str, cwd: &Path) -> (bool, String) {
    use std::io::Write;
    let mut c = Command::new("xmllint")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint (libxml2-utils)");
    c.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn meta_data_as_nobody_is_valid_everywhere_and_committed() {
    require_root();
    require_tool("xmllint");
    require_tool("runuser");
    let mut t = Tally("meta-data", 0);
    let dir = TempDir::new("meta");
    world_readable(dir.path());
    let ocf11 = repo().join("../shared/reference/ocf-1.1-ra-api.rng");
    let schemas = [
        (
            "resource-agents metadata.rng",
            PathBuf::from("/usr/share/resource-agents/metadata.rng"),
        ),
        ("OCF 1.1 RNG", ocf11),
        (
            "pcs OCF 1.1 RNG",
            PathBuf::from("/usr/share/pcs/data/ocf-1.1.rng"),
        ),
    ];
    for a in registry() {
        let link = agent_link(dir.path(), a.name());
        // As nobody, with no environment at all, like ocf-tester's first check.
        let o = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&link)
            .arg("meta-data")
            .env_clear()
            .env("PATH", EXEC_PATH)
            .output()
            .unwrap();
        let xml = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: meta-data as nobody",
            a.name()
        );
        assert!(
            o.stderr.is_empty(),
            "{}: meta-data wrote to stderr",
            a.name()
        );
        t.case();
        // ocf-tester's own check: the DTD, resolved from its directory, XML on stdin.
        let (ok, err) = xmllint(
            &["--noout", "--valid", "-"],
            &xml,
            Path::new("/usr/share/resource-agents"),
        );
        assert!(ok, "{}: not valid for ra-api-1.dtd: {err}", a.name());
        t.case();
        for (what, rng) in &schemas {
            assert!(rng.exists(), "{} is missing ({what})", rng.display());
            let (ok, err) = xmllint(
                &["--noout", "--relaxng", rng.to_str().unwrap(), "-"],
                &xml,
                Path::new("/"),
            );
            assert!(ok, "{}: not valid for {what}: {err}", a.name());
            t.case();
        }
        assert!(xml.contains("<version>1.1</version>"));
        assert!(
            !xml.contains("depth=\"10\"") && !xml.contains("depth=\"20\""),
            "{}: deeper monitors advertised (pcs would create them by default)",
            a.name()
        );
        // Committed copies must not drift (RUSTHA_BLESS=1 rewrites them: `make meta`).
        let md = rustha::differences::agent_markdown(*a);
        let man = a.man_page(rustha::registry::PROVIDER, &source());
        for (file, text) in [
            (format!("{}.xml", a.name()), &xml),
            (format!("{}.md", a.name()), &md),
            (format!("man/{}", man_file(a.name())), &man),
        ] {
            committed(&file, text);
            t.case();
        }
    }
}

fn source() -> String {
    format!("rustha {}", env!("CARGO_PKG_VERSION"))
}

fn man_file(agent: &str) -> String {
    format!(
        "{}.7",
        ocf::man::page_name(rustha::registry::PROVIDER, agent)
    )
}

/// A committed page: `RUSTHA_BLESS=1` rewrites it, otherwise it must equal `text`.
fn committed(rel: &str, text: &str) {
    let path = repo().join("meta").join(rel);
    if std::env::var_os("RUSTHA_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("meta/{rel} is missing: run `make meta` and commit it"));
    assert!(
        on_disk == text,
        "meta/{rel} drifted from the declaration: run `make meta` and commit"
    );
}

/// `man -l` as a reader sees it, in the C locale, one paragraph per line; groff's
/// warnings (`--warnings`) are returned separately.
fn render_man(page: &Path) -> (String, String) {
    let o = Command::new("man")
        .args(["--warnings", "--no-hyphenation", "--no-justification", "-l"])
        .arg(page)
        .env("LC_ALL", "C")
        .env("MANWIDTH", "4000")
        .env("MANPAGER", "cat")
        .output()
        .expect("man (man-db)");
    assert!(o.status.success(), "man -l {}", page.display());
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parameter names in the order a document lists them.
fn names_in(doc: &str, re_start: &str, re_end: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix(re_start))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(re_end).map(|(n, _)| n.to_string()))
        .collect()
}

#[test]
fn manual_pages_render_cleanly_and_say_what_describe_says() {
    require_tool("man");
    require_tool("lexgrog");
    let mut t = Tally("manual pages", 0);
    let dir = TempDir::new("man");
    let page = dir.path().join("rustha.8");
    std::fs::write(&page, rustha::manpage::page(env!("CARGO_PKG_VERSION"))).unwrap();
    committed("man/rustha.8", &std::fs::read_to_string(&page).unwrap());
    let (tool, warnings) = render_man(&page);
    assert!(warnings.is_empty(), "rustha.8: {warnings}");
    for a in registry() {
        // The tool page lists every agent and points to its page.
        assert!(
            squash(&tool).contains(&format!(
                "ocf:rustha:{} {}",
                a.name(),
                squash(a.info().shortdesc.trim_end_matches('.'))
            )),
            "rustha(8) lacks {}",
            a.name()
        );
        assert!(tool.contains(&format!("ocf_rustha_{}(7)", a.name())));
        let file = dir.path().join(man_file(a.name()));
        std::fs::write(&file, a.man_page(rustha::registry::PROVIDER, &source())).unwrap();
        let (text, warnings) = render_man(&file);
        assert!(warnings.is_empty(), "{}: {warnings}", file.display());
        // whatis/apropos can index it: the NAME line parses.
        let o = Command::new("lexgrog").arg(&file).output().unwrap();
        let whatis = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success()
                && whatis.contains(&format!(
                    "ocf_rustha_{} - {}",
                    a.name(),
                    a.info().shortdesc.trim()
                )),
            "lexgrog {}: {whatis}",
            file.display()
        );
        // The same parameters, in the same order, as `rustha describe` and the meta-data.
        let describe = Command::new(bin())
            .args(["describe", a.name()])
            .output()
            .unwrap();
        assert!(describe.status.success());
        let describe = String::from_utf8(describe.stdout).unwrap();
        let declared: Vec<String> = a.params().iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names_in(&describe, "| `", "` |"), declared, "{}", a.name());
        let section = text
            .split("\nPARAMETERS\n")
            .nth(1)
            .and_then(|r| r.split("\nACTIONS\n").next())
            .unwrap_or_default();
        assert_eq!(names_in(section, "       ", " ("), declared, "{}", a.name());
        let xml_names: Vec<String> = a
            .metadata()
            .split("<parameter name=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .collect();
        assert_eq!(xml_names, declared);
        // ... and the same words about each of them.
        let (text, describe) = (squash(&text), squash(&describe));
        for p in a.params() {
            let short = squash(p.shortdesc.trim().trim_end_matches('.'));
            let long = squash(&p.full_longdesc());
            for doc in [&text, &describe] {
                assert!(doc.contains(&short), "{}.{}: {short}", a.name(), p.name);
                assert!(doc.contains(&long), "{}.{}: {long}", a.name(), p.name);
            }
            if let Some(d) = p.default {
                assert!(text.contains(&format!("default: {d}")), "{}", p.name);
                assert!(describe.contains(&format!("`{d}`")), "{}", p.name);
            }
            if let Some(e) = p.example {
                assert!(text.contains(&format!("Example: {}", squash(e))));
                assert!(describe.contains(&format!("Example: `{e}`")));
            }
            t.case();
        }
        for act in a.info().actions {
            let facts = format!("{} timeout {}s", act.action.as_str(), act.timeout_s);
            assert!(text.contains(&facts), "{}: {facts}", a.name());
            assert!(describe.contains(&format!(
                "| {} | {}s |",
                act.action.as_str(),
                act.timeout_s
            )));
            t.case();
        }
        assert!(squash(&text).contains(&squash(a.info().longdesc)));
        t.case();
    }
}

#[test]
fn argv_handling() {
    let mut t = Tally("argv", 0);
    let dir = TempDir::new("argv");
    for a in registry() {
        let link = agent_link(dir.path(), a.name());
        let env = Env::bare("argv", dir.path());
        let r = env.run(&link, "no-such-action");
        assert_eq!(r.code, 3, "{}: unknown action: {}", a.name(), r.stderr);
        assert!(
            r.stderr.contains("usage:"),
            "{}: no usage on stderr",
            a.name()
        );
        assert!(r.reason().is_some_and(|s| s.contains("no-such-action")));
        t.case();
        let r = run(&link, "", &env.0);
        assert_eq!(r.code, 3, "{}: empty action", a.name());
        t.case();
        let o = Command::new(&link).env_clear().output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}: no action", a.name());
        t.case();
        // Extra arguments are ignored (spec).
        let o = Command::new(&link)
            .args(["meta-data", "extra", "args"])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}: extra args", a.name());
        t.case();
        for optional in ["notify", "promote", "demote", "migrate_to", "migrate_from"] {
            let advertised = a
                .info()
                .actions
                .iter()
                .any(|s| s.action.as_str() == optional);
            if !advertised {
                assert_eq!(env.run(&link, optional).code, 3, "{}: {optional}", a.name());
                t.case();
            }
        }
        // Tool mode runs the same agent.
        let o = Command::new(bin())
            .args([a.name(), "meta-data"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(o.stdout).unwrap(), a.metadata());
        t.case();
        // Tool mode for people: parameters as arguments, help from the declaration.
        let help = out(Command::new(bin()).args([a.name(), "--help"]));
        assert_eq!(help.code, 0, "{}: --help", a.name());
        for p in a.params() {
            assert!(
                help.stdout.contains(p.name),
                "{}: --help lacks {}",
                a.name(),
                p.name
            );
        }
        let mut by_args = Command::new(bin());
        by_args.args([a.name(), "validate-all"]).env_clear();
        let mut by_env = Command::new(&link);
        by_env.arg("validate-all").env_clear();
        for (k, v) in good(a.params(), Env::default(), a.name()).0 {
            let name = k.strip_prefix("OCF_RESKEY_").unwrap();
            by_args.arg(format!("{name}={v}"));
            by_env.env(&k, &v);
        }
        let (x, y) = (out(&mut by_args), out(&mut by_env));
        assert_eq!(
            x.code,
            0,
            "{}: validate-all name=value: {}",
            a.name(),
            x.stderr
        );
        assert_eq!(y.code, 0, "{}: validate-all from the environment", a.name());
        t.case();
        let r = out(Command::new(bin()).args([a.name(), "validate-all", "no_such_param=1"]));
        assert_eq!(r.code, 2, "{}: an undeclared name", a.name());
        assert!(r.stderr.contains("no_such_param"), "{}", r.stderr);
        t.case();
        // The OCF path is untouched: arguments after the action are ignored and there is
        // no option parsing (an agent link never sees clap).
        if a.params().iter().any(|p| p.required()) {
            let r = out(Command::new(&link)
                .args(["validate-all", "ip=192.0.2.10"])
                .env_clear());
            assert_eq!(r.code, 6, "{}: link with name=value args", a.name());
        }
        let r = out(Command::new(&link).arg("--help").env_clear());
        assert_eq!(r.code, 3, "{}: --help is an unknown OCF action", a.name());
        t.case();
    }
    let o = Command::new(dir.path().join("not-an-agent")).output();
    assert!(o.is_err()); // no such link: sanity of the fixture
    let link = dir.path().join("not-an-agent");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let o = Command::new(&link).arg("monitor").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(5),
        "unknown agent name -> not installed"
    );
    t.case();
}

#[test]
fn validate_all_checks_every_parameter() {
    private_netns();
    let mut t = Tally("validate-all", 0);
    let dir = TempDir::new("validate");
    for a in registry() {
        let link = agent_link(dir.path(), a.name());
        let state = TempDir::new("validate-state");
        let base = good(a.params(), Env::pacemaker("val", state.path()), a.name());
        let r = base.run(&link, "validate-all");
        assert_eq!(r.code, 0, "{}: good params: {}", a.name(), r.stderr);
        t.case();
        for p in a.params() {
            if p.required() {
                let r = base
                    .clone()
                    .without(&format!("OCF_RESKEY_{}", p.name))
                    .run(&link, "validate-all");
                assert_eq!(r.code, 6, "{}: without {}", a.name(), p.name);
                assert!(
                    r.reason().is_some_and(|s| s.contains(p.name)),
                    "{}: reason: {}",
                    a.name(),
                    r.stderr
                );
                t.case();
            }
            if let Some(bad) = malformed(p) {
                let r = base.clone().param(p.name, bad).run(&link, "validate-all");
                assert!(
                    matches!(r.code, 6 | 2),
                    "{}: {}={bad} gave {}",
                    a.name(),
                    p.name,
                    r.code
                );
                let reason = r.reason().unwrap_or_default();
                assert!(
                    reason.contains(p.name) && reason.contains(bad),
                    "{}: reason: {reason}",
                    a.name()
                );
                t.case();
                // The same broken value must not make start do anything.
                let r = base.clone().param(p.name, bad).run(&link, "start");
                assert_eq!(r.code, 6, "{}: start with {}={bad}", a.name(), p.name);
                t.case();
            }
            if let Some(v) = refused(p) {
                for action in ["validate-all", "start"] {
                    let r = base.clone().param(p.name, v).run(&link, action);
                    assert_eq!(r.code, 6, "{}: {action} with refused {}", a.name(), p.name);
                    let reason = r.reason().unwrap_or_default();
                    assert!(
                        reason.contains(p.name) && reason.contains("not supported"),
                        "{}: reason: {reason}",
                        a.name()
                    );
                    t.case();
                }
            }
        }
        let left = std::fs::read_dir(state.path().join(a.name()))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            left,
            0,
            "{}: validate/start with bad params left state behind",
            a.name()
        );
    }
}

fn clean_node(a: &dyn DynAgent, link: &Path, env: &Env, t: &mut Tally) {
    let name = a.name();
    assert_eq!(
        env.run(link, "monitor").code,
        7,
        "{name}: probe on a clean node"
    );
    t.case();
    let r = env
        .clone()
        .var("OCF_TESTER_FAIL_HAVE_BINARY", "1")
        .run(link, "monitor");
    assert!(
        matches!(r.code, 7 | 5),
        "{name}: probe with binaries 'missing'"
    );
    t.case();
    assert_eq!(
        env.clone().interval(10000).run(link, "monitor").code,
        7,
        "{name}: recurring monitor, stopped"
    );
    t.case();
    assert_eq!(
        env.run(link, "stop").code,
        0,
        "{name}: stop when never started"
    );
    t.case();
    for p in a.params() {
        if let Some(bad) = malformed(p).or(refused(p)) {
            let broken = env.clone().param(p.name, bad);
            assert_eq!(
                broken.run(link, "stop").code,
                0,
                "{name}: stop with {}={bad}",
                p.name
            );
            assert_eq!(
                broken.run(link, "monitor").code,
                7,
                "{name}: probe with {}={bad}",
                p.name
            );
            let r = broken.clone().interval(10000).run(link, "monitor");
            assert_ne!(r.code, 6, "{name}: recurring monitor with {}={bad}", p.name);
            t.case();
        }
    }
}

fn lifecycle(a: &dyn DynAgent, link: &Path, env: &Env, state: &Path, t: &mut Tally) {
    let name = a.name();
    let steps: &[(&str, Option<u64>, i32)] = &[
        ("start", None, 0),
        ("start", None, 0),
        ("monitor", Some(10000), 0),
        ("monitor", None, 0),
        ("stop", None, 0),
        ("stop", None, 0),
        ("monitor", Some(10000), 7),
        ("monitor", None, 7),
    ];
    for (action, interval, want) in steps {
        let e = match interval {
            Some(ms) => env.clone().interval(*ms),
            None => env.clone(),
        };
        let r = e.run(link, action);
        assert_eq!(
            r.code, *want,
            "{name}: {action} (interval {interval:?}): {}",
            r.stderr
        );
        t.case();
    }
    let left: Vec<_> = walk(state);
    assert!(
        left.is_empty(),
        "{name}: state left behind after stop: {left:?}"
    );
    t.case();
    // Broken parameters after a start: stop still stops, from the record.
    assert_eq!(env.run(link, "start").code, 0);
    for p in a.params() {
        if let Some(bad) = malformed(p) {
            let r = env.clone().param(p.name, bad).run(link, "stop");
            assert_eq!(
                r.code, 0,
                "{name}: stop with {}={bad}: {}",
                p.name, r.stderr
            );
            assert_eq!(
                env.run(link, "monitor").code,
                7,
                "{name}: still running after stop with broken params"
            );
            assert_eq!(env.run(link, "start").code, 0);
            t.case();
        }
    }
    assert_eq!(env.run(link, "stop").code, 0);
    assert!(walk(state).is_empty());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The whole lifecycle of every agent, with the environment `make_env` builds.
fn lifecycles(what: &'static str, make_env: fn(&str, &Path) -> Env) {
    private_netns();
    let mut t = Tally(what, 0);
    let dir = TempDir::new("life");
    for a in registry() {
        let link = agent_link(dir.path(), a.name());
        let state = TempDir::new("life-state");
        let fx = fixture(a.name());
        let env = with_fixture(
            good(
                a.params(),
                make_env(&instance("life"), state.path()),
                a.name(),
            ),
            &fx,
        );
        clean_node(*a, &link, &env, &mut t);
        lifecycle(*a, &link, &env, state.path(), &mut t);
    }
}

#[test]
fn lifecycle_with_pacemaker_environment() {
    lifecycles("lifecycle (Pacemaker env)", Env::pacemaker);
}

#[test]
fn lifecycle_without_any_crm_meta_variables() {
    lifecycles("lifecycle (no CRM_meta_*)", |i, s| {
        let env = Env::bare(i, s);
        assert!(!env.0.keys().any(|k| k.contains("CRM_meta")));
        env
    });
}

/// Values no parameter may carry: a pasted newline, a tab, an escape, a CR, and bytes
/// that are not UTF-8. Built on the parameter's own good value where it has one, so the
/// rest of the value would pass.
fn hostile(good: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = ["\n", "\t", "\r\n", "\u{1b}[0m"]
        .iter()
        .map(|c| (format!("{good:?}+{c:?}"), format!("{good}{c}").into_bytes()))
        .collect();
    let mut bytes = good.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe\x01");
    out.push((format!("{good:?}+non-UTF-8"), bytes));
    out
}

/// `env` plus `OCF_RESKEY_<name>` = raw bytes, run as an executor would.
fn run_raw(link: &Path, action: &str, env: &Env, name: &str, value: &[u8]) -> Run {
    use std::os::unix::ffi::OsStrExt;
    let mut c = agent_command(None, link, action, &env.0);
    c.env(
        format!("OCF_RESKEY_{name}"),
        std::ffi::OsStr::from_bytes(value),
    );
    out(&mut c)
}

/// No abort, no panic, whatever the bytes.
fn sane(r: &Run, what: &str) {
    assert!(
        (0..=9).contains(&r.code),
        "{what}: exit {} (a signal?): {}",
        r.code,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
}

/// Parameters a stop needs and cannot take from the record: a credential for a remote
/// API (a secret is never recorded). Without a usable one the resource cannot be
/// stopped, and the stop says so.
const NEEDED_BY_STOP: &[(&str, &str)] = &[("aws-eni", "secret_access_key")];

/// Control characters and non-UTF-8 bytes in every parameter of every agent: refused
/// with 6 naming the parameter at validate-all and start; on a clean node stop 0 and
/// probe 7 with no abort; after a start, a stop with such a value still stops (from the
/// record) and returns 0.
#[test]
fn hostile_bytes_in_every_parameter() {
    private_netns();
    let mut t = Tally("hostile bytes", 0);
    let dir = TempDir::new("hostile");
    for a in registry() {
        let name = a.name();
        let link = agent_link(dir.path(), name);
        let state = TempDir::new("hostile-state");
        let fx = fixture(name);
        let env = with_fixture(
            good(
                a.params(),
                Env::pacemaker(&instance("hostile"), state.path()),
                name,
            ),
            &fx,
        );
        let value_of = |p: &ParamSpec| {
            env.0
                .get(&format!("OCF_RESKEY_{}", p.name))
                .cloned()
                .or(p.default.map(String::from))
                .unwrap_or_else(|| "x".to_string())
        };
        for p in a.params() {
            for (label, bytes) in hostile(&value_of(p)) {
                let what = format!("{name}: {}={label}", p.name);
                for action in ["validate-all", "start"] {
                    let r = run_raw(&link, action, &env, p.name, &bytes);
                    sane(&r, &what);
                    assert_eq!(r.code, 6, "{what}: {action}: {}", r.stderr);
                    let reason = r.reason().unwrap_or_default();
                    assert!(reason.contains(p.name), "{what}: {action}: {reason}");
                    if p.secret {
                        assert!(!reason.contains(&value_of(p)), "{what}: secret echoed");
                    }
                }
                let r = run_raw(&link, "stop", &env, p.name, &bytes);
                sane(&r, &what);
                assert_eq!(r.code, 0, "{what}: stop on a clean node: {}", r.stderr);
                let r = run_raw(&link, "monitor", &env, p.name, &bytes);
                sane(&r, &what);
                assert_eq!(r.code, 7, "{what}: probe on a clean node: {}", r.stderr);
                let r = run_raw(
                    &link,
                    "monitor",
                    &env.clone().interval(10000),
                    p.name,
                    &bytes,
                );
                sane(&r, &what);
                assert_ne!(r.code, 6, "{what}: recurring monitor: {}", r.stderr);
                t.case();
            }
        }
        assert!(
            walk(state.path()).is_empty(),
            "{name}: refused actions left state: {:?}",
            walk(state.path())
        );
        // After a real start: a stop whose parameters are broken this way still stops.
        for p in a.params() {
            let bytes = format!("{}\n", value_of(p)).into_bytes();
            let r = env.run(&link, "start");
            assert_eq!(r.code, 0, "{name}: start: {}", r.stderr);
            let r = run_raw(&link, "stop", &env, p.name, &bytes);
            sane(&r, &format!("{name}: stop after start, {}+newline", p.name));
            if r.code != 0 && NEEDED_BY_STOP.contains(&(name, p.name)) {
                // It cannot stop without this value: an honest failure that names it,
                // the resource still running, and a stop with the good value works.
                assert_eq!(
                    r.code, 1,
                    "{name}: stop with {}+newline: {}",
                    p.name, r.stderr
                );
                let reason = r.reason().unwrap_or_default();
                assert!(reason.contains(p.name), "{name}: reason: {reason}");
                assert_eq!(env.run(&link, "monitor").code, 0, "{name}: still running");
                assert_eq!(env.run(&link, "stop").code, 0, "{name}: stop");
            } else {
                assert_eq!(
                    r.code, 0,
                    "{name}: stop with {}+newline: {}",
                    p.name, r.stderr
                );
            }
            let r = env.run(&link, "monitor");
            assert_eq!(
                r.code, 7,
                "{name}: still running after stop with broken {}",
                p.name
            );
            t.case();
        }
        assert!(walk(state.path()).is_empty(), "{name}: state left behind");
    }
}

/// Every live process (but this test process) inside the network namespace `ns`, with
/// its start time: what the agents started here, found by the namespace's identity.
fn processes_in_netns(ns: u64) -> std::collections::BTreeSet<(i32, u64)> {
    live_with_start_time(&pids_in_netns(ns))
        .into_iter()
        .collect()
}

/// An admin's `crm_resource --force-start` racing the cluster's own start: two starts of
/// one instance at the same moment. Actions on one instance serialize, so both succeed
/// and one resource runs; stop returns 0 and leaves no process of it behind.
#[test]
fn two_starts_at_once_make_one_resource_and_stop_leaves_nothing() {
    private_netns();
    let ns = thread_netns();
    let mut t = Tally("concurrent starts", 0);
    let dir = TempDir::new("race");
    for a in registry() {
        let name = a.name();
        let link = agent_link(dir.path(), name);
        let state = TempDir::new("race-state");
        let fx = fixture(name);
        let env = with_fixture(
            good(
                a.params(),
                Env::pacemaker(&instance("race"), state.path()),
                name,
            ),
            &fx,
        );
        let before = processes_in_netns(ns);
        // Both children are started from this thread, so both are in its namespace.
        let spawn = || {
            agent_command(None, &link, "start", &env.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (one, two) = (spawn(), spawn());
        for child in [one, two] {
            let r = Run::from(child.wait_with_output().unwrap());
            assert_eq!(r.code, 0, "{name}: concurrent start: {}", r.stderr);
        }
        assert_eq!(env.run(&link, "monitor").code, 0, "{name}: probe");
        let r = env.clone().interval(10000).run(&link, "monitor");
        assert_eq!(r.code, 0, "{name}: monitor: {}", r.stderr);
        let r = env.run(&link, "stop");
        assert_eq!(r.code, 0, "{name}: stop: {}", r.stderr);
        assert_eq!(
            env.run(&link, "monitor").code,
            7,
            "{name}: probe after stop"
        );
        let left: Vec<_> = processes_in_netns(ns)
            .difference(&before)
            .copied()
            .collect();
        assert!(
            left.is_empty(),
            "{name}: processes left behind after a stop that returned 0: {left:?}"
        );
        assert!(walk(state.path()).is_empty(), "{name}: state left behind");
        t.case();
    }
}

/// The README's "deliberate differences" lists are rendered from `src/differences.rs`
/// (the data `rustha migrate` reports from); they must not be edited by hand.
#[test]
fn readme_differences_are_generated_from_the_table() {
    let path = repo().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let fresh = rustha::differences::readme(&text).unwrap();
    assert!(
        fresh == text,
        "README.md's differences blocks drifted from src/differences.rs: run `make meta`"
    );
    for agent in ["IPaddr2", "nginx", "mysql", "Filesystem"] {
        assert!(
            text.contains(&format!("<!-- differences of {agent}:")),
            "README has no differences block for {agent}"
        );
        for d in rustha::differences::of(agent) {
            assert!(
                text.contains(&format!("**{}", d.title)),
                "{agent}: {}",
                d.title
            );
        }
    }
}

/// Upstream's debugging conventions, for every agent: `trace_ra=1` writes the action's
/// trace where ocf-shellfuncs puts it (`$HA_VARLIB/trace_ra/<type>/<id>.<action>.<ts>`),
/// `OCF_TRACE_FILE` (a path or an open descriptor) redirects it, `HA_DEBUGLOG` gets the
/// log lines (debug ones with `HA_debug`), and a secret parameter's value appears in none.
#[test]
fn trace_ra_and_ha_debuglog_as_ocf_shellfuncs() {
    private_netns();
    let mut t = Tally("trace", 0);
    let dir = TempDir::new("trace");
    const SECRET: &str = "s3cr3t-value-never-logged";
    for a in registry() {
        let link = agent_link(dir.path(), a.name());
        let state = TempDir::new("trace-state");
        let varlib = TempDir::new("trace-varlib");
        let mut env = good(a.params(), Env::pacemaker("tr", state.path()), a.name())
            .var("OCF_RESOURCE_TYPE", a.name())
            .var("HA_VARLIB", varlib.path().to_str().unwrap())
            .param("trace_ra", "1");
        for p in a.params().iter().filter(|p| p.secret) {
            env = env.param(p.name, SECRET);
        }
        for (action, want) in [("validate-all", 0), ("monitor", 7)] {
            let r = env.run(&link, action);
            assert_eq!(r.code, want, "{}: {action}: {}", a.name(), r.stderr);
            let tdir = varlib.path().join("trace_ra").join(a.name());
            let files: Vec<PathBuf> = std::fs::read_dir(&tdir)
                .unwrap_or_else(|e| panic!("{}: no {}: {e}", a.name(), tdir.display()))
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&format!("tr.{action}.20"))
                })
                .collect();
            assert_eq!(files.len(), 1, "{}: {action}: {files:?}", a.name());
            let text = std::fs::read_to_string(&files[0]).unwrap();
            assert!(text.contains("# environment:"), "{}: {text}", a.name());
            assert!(
                text.contains(&format!("EXIT  ocf::runner: {action} -> {want} ")),
                "{}: {action}: {text}",
                a.name()
            );
            assert!(
                text.contains("DEBUG"),
                "{}: debug events traced: {text}",
                a.name()
            );
            assert!(
                !text.contains(SECRET),
                "{}: a secret in the trace",
                a.name()
            );
            t.case();
        }
        // OCF_TRACE_FILE: an absolute path, or a descriptor the caller opened.
        let to = varlib.path().join("by-path.trace");
        let r = env
            .clone()
            .var("OCF_TRACE_FILE", to.to_str().unwrap())
            .run(&link, "validate-all");
        assert_eq!(r.code, 0);
        assert!(std::fs::read_to_string(&to)
            .unwrap()
            .contains("validate-all -> 0"));
        let fd_file = varlib.path().join("by-fd.trace");
        let mut c = agent_command(None, Path::new("/bin/sh"), "-c", &env.0);
        c.arg("exec 3>\"$0\"; exec \"$1\" validate-all")
            .arg(&fd_file)
            .arg(&link)
            .env("OCF_TRACE_FILE", "3");
        assert_eq!(out(&mut c).code, 0, "{}", a.name());
        let by_fd = std::fs::read_to_string(&fd_file).unwrap();
        assert!(by_fd.contains("validate-all -> 0"), "{}: {by_fd}", a.name());
        t.case();
        // HA_DEBUGLOG: info and up always; debug lines with HA_debug; never a secret.
        let dbg = varlib.path().join("debug.log");
        let plain = Env::pacemaker("tr2", state.path()).var("HA_DEBUGLOG", dbg.to_str().unwrap());
        let plain = good(a.params(), plain, a.name());
        let r = plain.clone().run(&link, "validate-all");
        assert_eq!(r.code, 0);
        let quiet = std::fs::read_to_string(&dbg).unwrap_or_default();
        assert!(!quiet.contains("DEBUG:"), "{}: {quiet}", a.name());
        let mut loud = plain.var("HA_debug", "1");
        for p in a.params().iter().filter(|p| p.secret) {
            loud = loud.param(p.name, SECRET);
        }
        assert_eq!(loud.run(&link, "validate-all").code, 0);
        let text = std::fs::read_to_string(&dbg).unwrap();
        assert!(
            text.contains(&format!("{}(tr2)[", a.name())) && text.contains("DEBUG: "),
            "{}: {text}",
            a.name()
        );
        assert!(!text.contains(SECRET), "{}", a.name());
        t.case();
    }
}
