//! Human documentation (Markdown) from the same declaration as the meta-data.

use crate::{metadata::AgentInfo, params::ParamSpec};
use std::fmt::Write;

fn cell(s: &str) -> String {
    s.trim().replace('|', "\\|").replace('\n', " ")
}

/// `meta/<agent>.md`: what `rustha describe <agent>` prints.
pub fn markdown(provider: &str, info: &AgentInfo, params: &[ParamSpec]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# ocf:{provider}:{} — {}\n",
        info.name,
        info.shortdesc.trim()
    );
    let _ = writeln!(s, "{}\n", info.longdesc.trim());
    let _ = writeln!(s, "## Parameters\n");
    let _ = writeln!(
        s,
        "| name | type | default | required | unique | description |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for p in params {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | **{}.** {} |",
            p.name,
            p.content.as_str(),
            p.default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into()),
            if p.required() { "yes" } else { "no" },
            if p.unique { "yes" } else { "no" },
            cell(p.shortdesc).trim_end_matches('.'),
            cell(&p.full_longdesc())
                + &p.example
                    .map(|e| format!(" Example: `{e}`."))
                    .unwrap_or_default(),
        );
    }
    let _ = writeln!(s, "\n## Actions\n");
    let _ = writeln!(s, "| action | timeout | interval | depth |");
    let _ = writeln!(s, "|---|---|---|---|");
    for a in info.actions {
        let _ = writeln!(
            s,
            "| {} | {}s | {} | {} |",
            a.action.as_str(),
            a.timeout_s,
            a.interval_s
                .map(|i| format!("{i}s"))
                .unwrap_or_else(|| "—".into()),
            a.depth.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
        );
    }
    s
}
