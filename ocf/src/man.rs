//! Manual pages (roff, `man(7)` macros) from the same declaration as the meta-data and
//! the Markdown docs: one `ocf_<provider>_<agent>(7)` page per agent, as resource-agents
//! ships them.
//!
//! The pages are plain ASCII: roff's own characters are escaped (`\` as `\e`, a leading
//! `.` or `'` guarded with `\&`, `-` in literals as `\-`) and anything else outside ASCII
//! is written as a `\[uXXXX]` escape, so no input can become a request.

use crate::{metadata::AgentInfo, params::ParamSpec};
use std::fmt::Write;

/// Escape running text for roff: one or more paragraphs, separated by blank lines.
/// Lines within a paragraph are joined (roff fills them anyway).
pub fn text(s: &str) -> String {
    let mut out = Vec::new();
    for para in s.trim().split("\n\n") {
        let joined = para.split_whitespace().collect::<Vec<_>>().join(" ");
        if !joined.is_empty() {
            out.push(line(&joined, false));
        }
    }
    out.join("\n.PP\n")
}

/// Escape a literal (a name, a value, an example): like [`text`] on one line, with every
/// `-` a minus sign so it can be copied back into a shell.
pub fn literal(s: &str) -> String {
    line(&s.split_whitespace().collect::<Vec<_>>().join(" "), true)
}

fn line(s: &str, minus: bool) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    if s.starts_with(['.', '\'']) {
        o.push_str("\\&");
    }
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\e"),
            '-' if minus => o.push_str("\\-"),
            c if c.is_ascii() && !c.is_ascii_control() => o.push(c),
            c => {
                let _ = write!(o, "\\[u{:04X}]", c as u32);
            }
        }
    }
    o
}

/// The `.TH` line and `NAME` section every page starts with.
pub fn header(title: &str, section: u8, source: &str, manual: &str, summary: &str) -> String {
    format!(
        ".TH {} {section} \"\" \"{}\" \"{}\"\n.SH NAME\n{} \\- {}\n",
        literal(title),
        literal(source),
        literal(manual),
        literal(title),
        text(summary)
    )
}

/// The page name of an agent: `ocf_<provider>_<agent>`.
pub fn page_name(provider: &str, agent: &str) -> String {
    format!("ocf_{provider}_{agent}")
}

/// `ocf_<provider>_<agent>.7`: what `<provider> describe <agent>` prints, as a manual page.
/// `source` is the footer's package and version, e.g. "rustha 0.1.0".
pub fn agent_page(provider: &str, source: &str, info: &AgentInfo, params: &[ParamSpec]) -> String {
    let mut s = header(
        &page_name(provider, info.name),
        7,
        source,
        "OCF resource agents",
        info.shortdesc,
    );
    let qualified = format!("ocf:{provider}:{}", info.name);
    let _ = writeln!(s, ".SH SYNOPSIS");
    let _ = writeln!(
        s,
        ".B pcs resource create\n.I resource-id\n.B {}\n.RI [ parameter = value \" ...]\"",
        literal(&qualified)
    );
    let _ = writeln!(s, ".br\n.B crm configure primitive");
    let _ = writeln!(
        s,
        ".I resource-id\n.B {}\n.RB [ params\n.IR parameter = value \" ...]\"",
        literal(&qualified)
    );
    let _ = writeln!(s, ".SH DESCRIPTION\n{}", text(info.longdesc));
    parameters_section(&mut s, params);
    actions_section(&mut s, info);
    let _ = writeln!(
        s,
        ".SH FILES\n.TP\n.I {}\nThe agent, as Pacemaker runs it.",
        literal(&format!(
            "{}/resource.d/{provider}/{}",
            crate::env::DEFAULT_OCF_ROOT,
            info.name
        ))
    );
    let _ = writeln!(
        s,
        ".SH SEE ALSO\n.BR {provider} (8),\n.BR pcs (8),\n.BR crm (8),\n.BR ocf\\-tester (8)"
    );
    s
}

/// `.SH PARAMETERS`: each parameter with its type, required/unique, default, description
/// and example.
fn parameters_section(s: &mut String, params: &[ParamSpec]) {
    let _ = writeln!(s, ".SH PARAMETERS");
    if params.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for p in params {
        let mut facts = vec![p.content.as_str().to_string()];
        if p.required() {
            facts.push("required".into());
        }
        if p.unique {
            facts.push("unique".into());
        }
        if let Some(d) = p.default {
            facts.push(format!("default: {}", literal(d)));
        }
        let _ = writeln!(
            s,
            ".TP\n.BR {} \" ({})\"",
            literal(p.name),
            facts.join(", ").replace('"', "\\(dq")
        );
        let _ = writeln!(
            s,
            "{}.\n{}",
            text(p.shortdesc.trim().trim_end_matches('.')),
            text(&p.full_longdesc())
        );
        if let Some(e) = p.example {
            let _ = writeln!(s, "Example: \\fB{}\\fR", literal(e));
        }
    }
}

/// `.SH ACTIONS`: what the agent advertises, with timeouts, intervals and depths.
fn actions_section(s: &mut String, info: &AgentInfo) {
    let _ = writeln!(s, ".SH ACTIONS");
    let _ = writeln!(
        s,
        "The actions the agent advertises in its meta-data, with their default timeout, \
         interval and depth."
    );
    for a in info.actions {
        let mut facts = vec![format!("timeout {}s", a.timeout_s)];
        if let Some(i) = a.interval_s {
            facts.push(format!("interval {i}s"));
        }
        if let Some(d) = a.depth {
            facts.push(format!("depth {d}"));
        }
        let _ = writeln!(
            s,
            ".TP\n.B {}\n{}",
            literal(a.action.as_str()),
            facts.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{action::Action, metadata::ActionSpec};

    #[test]
    fn nothing_in_the_text_can_become_a_request() {
        assert_eq!(text(".so /etc/passwd"), "\\&.so /etc/passwd");
        assert_eq!(text("'br"), "\\&'br");
        assert_eq!(text("a\\fBb"), "a\\efBb");
        assert_eq!(text("one\n  .two\n\nthree"), "one .two\n.PP\nthree");
        assert_eq!(literal("-g 'daemon off;'"), "\\-g 'daemon off;'");
        assert_eq!(text("\u{2014} x"), "\\[u2014] x");
        assert!(!text("tab\there").contains('\t'));
    }

    #[test]
    fn an_agent_page_carries_every_parameter_and_action() {
        static INFO: AgentInfo = AgentInfo {
            name: "fixture",
            version: "0.1.0",
            shortdesc: "Short",
            longdesc: "Long.\n\n.Second paragraph.",
            actions: &[ActionSpec::new(Action::Monitor, 20).interval(10).depth(0)],
        };
        let p = [
            ParamSpec::new("Port.", "The TCP port.")
                .named("port")
                .default("61000"),
            ParamSpec::new("Name", "Who.").named("who").example("-x"),
        ];
        let page = agent_page("prov", "prov 0.1.0", &INFO, &p);
        assert!(page.starts_with(".TH ocf_prov_fixture 7 \"\" \"prov 0.1.0\""));
        assert!(page.contains("\n.SH NAME\nocf_prov_fixture \\- Short\n"));
        assert!(page.contains("\\&.Second paragraph."), "{page}");
        assert!(
            page.contains(".BR port \" (string, default: 61000)\""),
            "{page}"
        );
        assert!(page.contains("Port.\nThe TCP port.\n"), "{page}");
        assert!(page.contains("Example: \\fB\\-x\\fR"), "{page}");
        assert!(page.contains(".B monitor\ntimeout 20s, interval 10s, depth 0"));
        for l in page.lines() {
            assert!(l.is_ascii() && !l.starts_with(' '), "{l:?}");
        }
    }
}
