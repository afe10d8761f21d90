//! `rustha migrate`: which `ocf:heartbeat:` resources of an existing cluster can become
//! `ocf:rustha:` ones, and the switch itself (the provider attribute, nothing else).
//!
//! Each primitive of an agent rustha provides is checked with the agent's own parameter
//! validation (nothing node-local, so it runs anywhere) and reported as switchable as is,
//! switchable with differences (listed), or not switchable (why). `--apply` writes the
//! change with one `cibadmin --replace` of the resources section, after a `crm_simulate`
//! dry run of the changed CIB shows which resources would restart; `--pcs` prints the
//! same change as pcs commands.

pub mod cib;

use crate::differences;
use crate::registry::{self, PROVIDER};
use crate::service::tool;
use cib::Primitive;
use clap::Parser;
use ocf::params::Support;
use ocf::{Deadline, OcfEnv};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Exit codes, for scripts.
pub mod code {
    /// Every resource found can be switched (and was, with --apply); also when none is found.
    pub const OK: u8 = 0;
    /// The CIB could not be read or written (no cluster, no such file, a tool failed).
    pub const FAILED: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// Some resources cannot be switched (the others are reported, and switched with --apply).
    pub const NOT_ALL: u8 = 3;
    /// --apply refused: the dry run would restart resources that are not being switched.
    pub const REFUSED: u8 = 4;
}

const FROM: &str = "heartbeat";

#[cfg(test)]
mod tests {
    use super::*;

    fn first(xml: &str) -> Primitive {
        cib::primitives(&cib::parse(xml).unwrap())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_clone_of_unknown_size_is_judged_as_several_instances() {
        let xml = r#"<cib><configuration><resources><clone id="c">
            <primitive id="v" class="ocf" provider="heartbeat" type="IPaddr2">
            <instance_attributes id="a"><nvpair id="n" name="ip" value="192.0.2.5"/>
            </instance_attributes></primitive></clone></resources></configuration></cib>"#;
        let p = first(xml);
        assert!(matches!(judge(&p, 0), Verdict::NotSwitchable(ref w) if w.contains("clone")));
        assert!(
            judge(&p, 1).switchable(),
            "one node: one instance, an ordinary VIP"
        );
        let env = ocf_env(&p, 3);
        assert_eq!(env.clone_max(), Some(3));
        assert_eq!(env.var("OCF_RESOURCE_INSTANCE"), Some("v"));
    }

    #[test]
    fn master_parents_make_a_promotable_clone() {
        let xml = r#"<cib><configuration><resources><master id="ms">
            <primitive id="db" class="ocf" provider="heartbeat" type="mysql"/>
            </master></resources></configuration></cib>"#;
        let p = first(xml);
        assert!(ocf_env(&p, 2).is_promotable());
        assert!(!judge(&p, 2).switchable());
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "rustha migrate",
    about = "Check which ocf:heartbeat: resources can become ocf:rustha: ones, and switch them",
    long_about = "Reads the live CIB (cibadmin -Q) or a file, finds every ocf:heartbeat: \
        primitive of an agent rustha provides (also inside groups, clones and bundles), checks \
        its parameters with rustha's own validation (nothing node-local) and reports it as \
        switchable as is, switchable with differences (listed), or not switchable (why).\n\n\
        --apply switches the switchable ones (the provider attribute, nothing else) with one \
        cibadmin --replace of the resources section, after a crm_simulate dry run of the \
        changed CIB: Pacemaker restarts each switched resource (stop with the heartbeat agent, \
        start with rustha's), and resources ordered after it in a group restart too. If the dry \
        run would restart a resource that is not being switched, --apply stops there unless \
        --allow-dependents.\n\n\
        Exit codes: 0 all switchable (switched with --apply), 1 the CIB could not be read or \
        written, 2 usage, 3 some resources cannot be switched, 4 --apply refused by the dry run.",
    disable_version_flag = true
)]
pub struct Args {
    /// Read (and with --apply, change) this CIB file instead of the live cluster's.
    #[arg(long, value_name = "FILE")]
    pub cib: Option<PathBuf>,
    /// Switch every switchable resource, after a crm_simulate dry run.
    #[arg(long, conflicts_with = "pcs")]
    pub apply: bool,
    /// Print pcs commands that make the same change, instead of making it.
    #[arg(long)]
    pub pcs: bool,
    /// Only these resources (primitive ids, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// With --apply: go on when the dry run also restarts resources that are not switched.
    #[arg(long)]
    pub allow_dependents: bool,
    /// One line per resource, tab-separated: id, agent, verdict, detail.
    #[arg(long)]
    pub porcelain: bool,
    /// Seconds each cibadmin / crm_simulate call may take.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

/// What `rustha migrate` says about one primitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    AsIs,
    Differences(Vec<String>),
    NotSwitchable(String),
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::AsIs => "switchable",
            Verdict::Differences(_) => "switchable-with-differences",
            Verdict::NotSwitchable(_) => "not-switchable",
        }
    }
    pub fn switchable(&self) -> bool {
        !matches!(self, Verdict::NotSwitchable(_))
    }
}

/// The environment Pacemaker would give the primitive's actions: its parameters and the
/// meta attributes of it and its parents, as `OCF_RESKEY_*`.
pub fn ocf_env(p: &Primitive, nodes: usize) -> OcfEnv {
    let mut vars: Vec<(String, String)> = p
        .params
        .iter()
        .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.clone()))
        .collect();
    let meta = |k: &str| format!("OCF_RESKEY_CRM_meta_{}", k.replace('-', "_"));
    for (k, v) in &p.meta {
        vars.push((meta(k), v.clone()));
    }
    if p.in_clone() && !p.meta.contains_key("clone-max") {
        // Pacemaker's default is one instance per node; with no node known yet (a CIB
        // file), judge it as the clone it is meant to be: more than one instance.
        let max = if nodes == 0 { 2 } else { nodes };
        vars.push((meta("clone-max"), max.to_string()));
    }
    if p.parents.iter().any(|x| x.kind == "master") {
        vars.push((meta("promotable"), "true".into()));
    }
    vars.push(("OCF_RESOURCE_INSTANCE".into(), p.id.clone()));
    OcfEnv::from_pairs(vars)
}

/// Judge one primitive of an agent rustha provides.
pub fn judge(p: &Primitive, nodes: usize) -> Verdict {
    let Some(agent) = registry::find(&p.agent) else {
        return Verdict::NotSwitchable(format!("rustha has no agent {}", p.agent));
    };
    if let Some(t) = &p.template {
        return Verdict::NotSwitchable(format!(
            "defined by template {t}: switch the template (every primitive using it changes)"
        ));
    }
    if let Err(e) = agent.check_params(ocf_env(p, nodes)) {
        return Verdict::NotSwitchable(format!(
            "{} (rustha's validate-all would exit {})",
            e.reason,
            e.status().code()
        ));
    }
    let mut diffs = Vec::new();
    for k in p.params.keys() {
        match agent.params().iter().find(|s| s.name == k) {
            Some(s) => {
                if let Support::NoEffect(why) = s.support {
                    diffs.push(format!("{k}: no effect in rustha: {why}"));
                }
            }
            None => diffs.push(format!(
                "{k}: neither ocf:heartbeat:{} nor rustha declares it; ignored",
                p.agent
            )),
        }
    }
    for d in differences::of(&p.agent) {
        if d.applies(&p.params, &p.meta) {
            diffs.push(d.title.to_string());
        }
    }
    if p.rules {
        diffs.push("instance attributes with rules: checked with every set merged".into());
    }
    if p.in_bundle() {
        diffs.push(
            "runs in a bundle's container: the image needs rustha installed there too".into(),
        );
    }
    if diffs.is_empty() {
        Verdict::AsIs
    } else {
        Verdict::Differences(diffs)
    }
}

/// A heartbeat primitive and what migrate says of it.
struct Row {
    p: Primitive,
    verdict: Verdict,
}

/// Where the CIB comes from and goes to.
struct Source {
    file: Option<PathBuf>,
    deadline: Duration,
}

impl Source {
    fn describe(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => "the live cluster (cibadmin -Q)".into(),
        }
    }
    /// `tool args...` with CIB_file set for a file source.
    fn run(&self, tool_name: &str, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new(tool_name);
        c.args(args);
        if let Some(f) = &self.file {
            c.env("CIB_file", f);
        }
        let d = Deadline::after(self.deadline);
        match tool::run_command(c, &d) {
            Ok((st, out, _)) if st.success() => Ok(out),
            Ok((st, _, err)) => Err(format!(
                "{tool_name} {} failed ({st}): {}",
                args.join(" "),
                err.trim()
            )),
            Err(e) if e.reason.contains("cannot run") => Err(format!(
                "{tool_name} is not installed (Pacemaker's command-line tools, e.g. Debian's \
                 pacemaker-cli-utils): {}",
                e.reason
            )),
            Err(e) => Err(format!(
                "{tool_name} {}: {} ({} s)",
                args.join(" "),
                e.reason,
                self.deadline.as_secs()
            )),
        }
    }
    fn query(&self, section: Option<&str>) -> Result<String, String> {
        if section.is_none() {
            if let Some(f) = &self.file {
                return std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()));
            }
        }
        let mut args = vec!["--query"];
        if let Some(s) = section {
            args.extend(["--scope", s]);
        }
        self.run("cibadmin", &args).map_err(|e| {
            if self.file.is_none() {
                format!(
                    "cannot read the cluster's CIB: {e}\n(run it on a node of a running \
                     cluster, or give a CIB file: rustha migrate --cib FILE)"
                )
            } else {
                e
            }
        })
    }
}

/// A private directory for the dry run's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let d = base.join(format!("rustha-migrate.{}.{n}", std::process::id()));
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            if b.create(&d).is_ok() {
                return Ok(Scratch(d));
            }
        }
        Err(format!("cannot create a directory in {}", base.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the dry run says: every resource with an action, and the actions.
#[derive(Debug, Default)]
struct DryRun {
    actions: Vec<(String, String)>,
}

impl DryRun {
    fn resources(&self) -> BTreeSet<String> {
        self.actions.iter().map(|(r, _)| r.clone()).collect()
    }
}

/// `crm_simulate --simulate` of `xml` (a whole CIB with its status), machine-readable.
fn dry_run(src: &Source, xml: &str) -> Result<DryRun, String> {
    let dir = Scratch::new()?;
    let f = dir.0.join("cib.xml");
    std::fs::write(&f, xml).map_err(|e| format!("{}: {e}", f.display()))?;
    let fs = f.to_string_lossy().into_owned();
    let plain = Source {
        file: None,
        deadline: src.deadline,
    };
    let out = plain.run(
        "crm_simulate",
        &["--xml-file", &fs, "--simulate", "--output-as=xml"],
    )?;
    let doc = cib::parse(&out).map_err(|e| format!("crm_simulate's output: {e}"))?;
    let mut dr = DryRun::default();
    if let Some(actions) = doc.child("actions") {
        for a in actions.children_named("rsc_action") {
            // Clone instances are named `id:N`.
            let r = a.attr("resource").unwrap_or("");
            let r = r.split(':').next().unwrap_or(r).to_string();
            dr.actions
                .push((r, a.attr("action").unwrap_or("?").to_string()));
        }
    }
    Ok(dr)
}

fn print_report(out: &mut dyn Write, rows: &[Row], others: &[Primitive], src: &Source, a: &Args) {
    if a.porcelain {
        for r in rows {
            let detail = match &r.verdict {
                Verdict::AsIs => String::new(),
                Verdict::Differences(d) => d.join("; "),
                Verdict::NotSwitchable(why) => why.clone(),
            };
            let _ = writeln!(
                out,
                "{}\tocf:{FROM}:{}\t{}\t{}",
                r.p.id,
                r.p.agent,
                r.verdict.word(),
                detail.replace(['\t', '\n'], " ")
            );
        }
        return;
    }
    let _ = writeln!(out, "CIB: {}", src.describe());
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "no ocf:{FROM}: resource of an agent rustha provides ({})",
            agent_names()
        );
    }
    for r in rows {
        let _ = writeln!(
            out,
            "\n{}  ocf:{FROM}:{}  in {}\n  {}",
            r.p.id,
            r.p.agent,
            r.p.place(),
            match &r.verdict {
                Verdict::AsIs => "switchable as is".to_string(),
                Verdict::Differences(_) => "switchable, with these differences:".to_string(),
                Verdict::NotSwitchable(why) => format!("NOT switchable: {why}"),
            }
        );
        if let Verdict::Differences(d) = &r.verdict {
            for x in d {
                let _ = writeln!(out, "    - {x}");
            }
        }
    }
    let count = |f: fn(&Verdict) -> bool| rows.iter().filter(|r| f(&r.verdict)).count();
    let _ = writeln!(
        out,
        "\n{} resource(s): {} switchable as is, {} with differences, {} not switchable",
        rows.len(),
        count(|v| *v == Verdict::AsIs),
        count(|v| matches!(v, Verdict::Differences(_))),
        count(|v| !v.switchable()),
    );
    if !others.is_empty() {
        let list: Vec<String> = others
            .iter()
            .map(|p| format!("{} (ocf:{}:{})", p.id, p.provider, p.agent))
            .collect();
        let _ = writeln!(out, "not concerned: {}", list.join(", "));
    }
    let agents: BTreeSet<&str> = rows.iter().map(|r| r.p.agent.as_str()).collect();
    for ag in agents {
        let all: Vec<&str> = differences::of(ag)
            .iter()
            .filter(|d| d.always())
            .map(|d| d.title)
            .collect();
        if !all.is_empty() {
            let _ = writeln!(
                out,
                "\nwhat changes for every {ag} resource (`rustha describe {ag}`; README \"{}\"):",
                differences::section(ag)
            );
            for t in all {
                let _ = writeln!(out, "  - {t}");
            }
        }
    }
}

fn agent_names() -> String {
    registry::AGENTS
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn print_pcs(out: &mut dyn Write, ids: &[&str]) {
    let _ = writeln!(
        out,
        "# pcs has no command that changes a resource's agent in place; its CIB-file \
         workflow does it\n# in one push (each switched resource restarts: stop with the \
         heartbeat agent, start with rustha's).\n\
         pcs cluster cib rustha-migrate.before.xml\n\
         cp rustha-migrate.before.xml rustha-migrate.after.xml"
    );
    for id in ids {
        let xml = format!(r#"<primitive id="{id}" provider="{PROVIDER}"/>"#);
        let _ = writeln!(
            out,
            "CIB_file=rustha-migrate.after.xml cibadmin --modify --xml-text {}",
            shell_quote(&xml)
        );
    }
    let _ = writeln!(
        out,
        "crm_simulate --xml-file rustha-migrate.after.xml --simulate   # review what restarts\n\
         pcs cluster cib-push rustha-migrate.after.xml diff-against=rustha-migrate.before.xml"
    );
}

/// Entry point: `rustha migrate ARGS...` (the args after `migrate`).
pub fn main(args: &[String]) -> u8 {
    let argv = std::iter::once("rustha migrate".to_string()).chain(args.iter().cloned());
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                code::USAGE
            } else {
                code::OK
            };
        }
    };
    let mut out = std::io::stdout().lock();
    let r = run(&a, &mut out);
    let _ = out.flush();
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rustha migrate: {e}");
            code::FAILED
        }
    }
}

fn run(a: &Args, out: &mut dyn Write) -> Result<u8, String> {
    let src = Source {
        file: a.cib.clone(),
        deadline: Duration::from_secs(a.timeout.max(1)),
    };
    let xml = src.query(None)?;
    let doc = cib::parse(&xml).map_err(|e| format!("{}: {e}", src.describe()))?;
    let nodes = cib::node_count(&doc);
    let all = cib::primitives(&doc).map_err(|e| format!("{}: {e}", src.describe()))?;
    for id in &a.only {
        if !all.iter().any(|p| &p.id == id) {
            return Err(format!("--only: no ocf primitive {id} in the CIB"));
        }
    }
    let (mut rows, mut others) = (Vec::new(), Vec::new());
    for p in all {
        if !a.only.is_empty() && !a.only.contains(&p.id) {
            continue;
        }
        if p.provider == FROM && registry::find(&p.agent).is_some() {
            let verdict = judge(&p, nodes);
            rows.push(Row { p, verdict });
        } else if p.provider != PROVIDER {
            others.push(p);
        }
    }
    print_report(out, &rows, &others, &src, a);
    let switch: Vec<&Row> = rows.iter().filter(|r| r.verdict.switchable()).collect();
    let done = if rows.iter().all(|r| r.verdict.switchable()) {
        code::OK
    } else {
        code::NOT_ALL
    };
    let ids: Vec<&str> = switch.iter().map(|r| r.p.id.as_str()).collect();
    if a.pcs && !ids.is_empty() {
        let _ = writeln!(out);
        print_pcs(out, &ids);
    }
    if !a.apply || ids.is_empty() {
        return Ok(done);
    }
    // The dry run: the whole CIB (status included) with the providers swapped.
    let tags: Vec<_> = switch.iter().map(|r| r.p.tag.clone()).collect();
    let changed = cib::with_provider(&xml, &tags, PROVIDER)?;
    let dr = dry_run(&src, &changed)?;
    let switched: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    let acts: Vec<String> = dr
        .actions
        .iter()
        .map(|(r, act)| format!("{act} {r}"))
        .collect();
    let _ = writeln!(
        out,
        "\ndry run (crm_simulate --simulate of the changed CIB): {}",
        if acts.is_empty() {
            "no action".to_string()
        } else {
            acts.join(", ")
        }
    );
    let extra: Vec<String> = dr.resources().difference(&switched).cloned().collect();
    if !extra.is_empty() {
        let _ = writeln!(
            out,
            "the dry run also restarts resources that are not switched: {}",
            extra.join(", ")
        );
        if !a.allow_dependents {
            let _ = writeln!(
                out,
                "nothing changed (--allow-dependents to go on, or --only to choose)"
            );
            return Ok(code::REFUSED);
        }
    }
    // One replace of the resources section, if nobody changed it meanwhile.
    let before = src.query(Some("resources"))?;
    let section = cib::parse(&before).map_err(|e| format!("resources section: {e}"))?;
    let now = cib::primitives_in(&section);
    let tags: Vec<_> = now
        .iter()
        .filter(|p| switched.contains(&p.id) && p.provider == FROM)
        .map(|p| p.tag.clone())
        .collect();
    if tags.len() != switched.len() {
        return Err("the resources section changed while checking; run again".into());
    }
    let new_section = cib::with_provider(&before, &tags, PROVIDER)?;
    let then: Vec<&Primitive> = rows.iter().map(|r| &r.p).collect();
    if now.iter().any(|p| {
        then.iter()
            .any(|t| t.id == p.id && (t.params != p.params || t.provider != p.provider))
    }) {
        return Err("the resources section changed while checking; run again".into());
    }
    let dir = Scratch::new()?;
    let f = dir.0.join("resources.xml");
    std::fs::write(&f, &new_section).map_err(|e| format!("{}: {e}", f.display()))?;
    src.run(
        "cibadmin",
        &[
            "--replace",
            "--scope",
            "resources",
            "--xml-file",
            &f.to_string_lossy(),
        ],
    )?;
    let _ = writeln!(
        out,
        "switched to ocf:{PROVIDER}: {} (one cibadmin --replace of the resources section)",
        ids.join(", ")
    );
    Ok(done)
}
