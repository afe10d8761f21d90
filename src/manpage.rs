//! `rustha(8)`: the binary's own manual page, from the same tables as its usage text and
//! the registry. The per-agent pages come from each agent's declaration
//! (`ocf::man::agent_page`).

use crate::registry::{self, PROVIDER};
use crate::state::DEFAULT_STATE_DIR;
use ocf::env::DEFAULT_OCF_ROOT;
use ocf::man::{header, literal, page_name, text};
use ocf::Status;
use std::fmt::Write;

/// Where the packages (and `make install`) put the binary.
pub const INSTALLED_BIN: &str = "/usr/libexec/rustha/rustha";

/// The tool's commands: (arguments, what it does). The usage text and the page share it.
pub const COMMANDS: &[(&str, &str)] = &[
    ("list", "agents in this binary, one per line"),
    (
        "describe <agent>",
        "parameters and actions, for people (Markdown)",
    ),
    (
        "<agent> <action> [name=value...]",
        "run an OCF action: parameters as arguments (or OCF_RESKEY_*); --help lists them",
    ),
    (
        "migrate [--cib FILE] [--apply|--pcs]",
        "which ocf:heartbeat: resources can switch to ocf:rustha:, and the switch (--help)",
    ),
    (
        "meta <dir> [README]",
        "write <dir>/<agent>.xml and .md for every agent, the manual pages in <dir>/man, \
         and the README's generated blocks",
    ),
    ("--version", "version, git commit and agents"),
];

/// What each exit code means to Pacemaker, for the EXIT STATUS section.
fn meaning(s: Status) -> &'static str {
    match s {
        Status::Success => "the action succeeded; for a monitor: the resource runs",
        Status::ErrGeneric => {
            "a soft error: Pacemaker recovers the resource (restart or move); from stop it \
             means the node gets fenced"
        }
        Status::ErrArgs => "wrong arguments for the action",
        Status::ErrUnimplemented => "the action is not implemented",
        Status::ErrPerm => "insufficient privileges",
        Status::ErrInstalled => {
            "something the agent needs is missing on this node: the resource is not \
             started here"
        }
        Status::ErrConfigured => "the configuration is wrong: the resource is not started anywhere",
        Status::NotRunning => "the resource is cleanly stopped (what a probe expects)",
        Status::RunningPromoted => "running in the promoted role",
        Status::FailedPromoted => "failed in the promoted role",
        Status::Degraded => "running, but degraded",
        Status::DegradedPromoted => "running in the promoted role, but degraded",
    }
}

/// The `rustha(8)` page.
pub fn page(version: &str) -> String {
    let mut s = header(
        "rustha",
        8,
        &format!("rustha {version}"),
        "System Administration",
        "Pacemaker OCF resource agents in one multi-call binary",
    );
    let agent_dir = format!("{DEFAULT_OCF_ROOT}/resource.d/{PROVIDER}");
    let _ = writeln!(s, ".SH SYNOPSIS");
    let _ = writeln!(s, ".BI {}/ agent \" \" action", literal(&agent_dir));
    for (args, _) in COMMANDS {
        let _ = writeln!(s, ".br\n.B rustha {}", literal(args));
    }
    let _ = writeln!(
        s,
        ".SH DESCRIPTION\n{}",
        text(&format!(
            "rustha is one binary that holds several OCF resource agents for Pacemaker. \
             It is installed as {INSTALLED_BIN}, and {agent_dir} holds one symbolic link per \
             agent that points to it: called through a link, it runs the agent the link is \
             named after, so Pacemaker, pcs, crmsh, crm_resource and ocf-tester use the \
             agents as ocf:{PROVIDER}:<agent>. The binary itself is never placed in \
             resource.d, where every executable is taken for an agent.\n\n\
             Every wait of an action is bounded by the timeout Pacemaker passes \
             (OCF_RESKEY_CRM_meta_timeout). Start records what it decided in a state file; \
             monitor and stop act on that record. A process is identified by its pid and \
             its start time, never by the pid alone."
        ))
    );
    let _ = writeln!(s, ".SH AGENTS");
    for a in registry::AGENTS {
        let _ = writeln!(
            s,
            ".TP\n.B {}\n{}. See\n.BR {} (7).",
            literal(&format!("ocf:{PROVIDER}:{}", a.name())),
            text(a.info().shortdesc.trim().trim_end_matches('.')),
            literal(&page_name(PROVIDER, a.name()))
        );
    }
    let _ = writeln!(s, ".SH COMMANDS");
    for (args, what) in COMMANDS {
        let _ = writeln!(s, ".TP\n.B rustha {}\n{}.", literal(args), text(what));
    }
    let _ = writeln!(s, ".SH EXIT STATUS");
    let _ = writeln!(
        s,
        "{}",
        text("As an agent, the OCF exit codes; as a tool, 0 on success and 2 on wrong use.")
    );
    for st in Status::ALL {
        let _ = writeln!(
            s,
            ".TP\n.B {} {}\n{}.",
            st.code(),
            literal(st.name()),
            text(meaning(st))
        );
    }
    let _ = writeln!(s, ".SH ENVIRONMENT");
    for (var, what) in [
        ("OCF_RESKEY_<parameter>", "the resource's parameters"),
        (
            "OCF_RESKEY_CRM_meta_timeout",
            "the action's timeout in milliseconds; it bounds every wait",
        ),
        (
            "OCF_CHECK_LEVEL",
            "the monitor depth (0, 10 or 20; agents say which they have)",
        ),
        (
            "OCF_RESOURCE_INSTANCE",
            "the resource's name, which names its state file",
        ),
        (
            "RUSTHA_STATE_DIR",
            "where state files are kept instead of the default (for tests)",
        ),
    ] {
        let _ = writeln!(s, ".TP\n.B {}\n{}.", literal(var), text(what));
    }
    let _ = writeln!(s, ".SH FILES");
    for (path, what) in [
        (INSTALLED_BIN.to_string(), "the binary".to_string()),
        (
            format!("{agent_dir}/<agent>"),
            "one symbolic link per agent".to_string(),
        ),
        (
            format!("{DEFAULT_STATE_DIR}/<agent>/<instance>"),
            "state files: what start decided (tmpfs, empty after a reboot)".to_string(),
        ),
        (
            "/usr/share/doc/rustha/".to_string(),
            "README, and per agent its meta-data (.xml) and parameter reference (.md)".to_string(),
        ),
    ] {
        let _ = writeln!(s, ".TP\n.I {}\n{}.", literal(&path), text(&what));
    }
    let _ = writeln!(s, ".SH SEE ALSO");
    let mut refs: Vec<String> = registry::AGENTS
        .iter()
        .map(|a| format!(".BR {} (7),", literal(&page_name(PROVIDER, a.name()))))
        .collect();
    refs.extend(["pcs", "crm", "crm_resource", "pacemaker-execd"].map(|p| format!(".BR {p} (8),")));
    refs.push(".BR ocf\\-tester (8)".into());
    let _ = writeln!(s, "{}", refs.join("\n"));
    s
}
