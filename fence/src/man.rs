//! The agent's manual page (`manpage` action and `fence_<name>(8)`), from the same
//! declarations as its meta-data.

use crate::runner::{all_params, FenceAgent};

fn esc(s: &str) -> String {
    s.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\n', " ")
}

/// The page in roff (man(7) macros).
pub fn page<A: FenceAgent>() -> String {
    let i = &A::INFO;
    let mut s = format!(
        ".TH {} 8 \"\" \"{} {}\" \"System Manager's Manual\"\n.SH NAME\n{} \\- {}\n.SH DESCRIPTION\n{}\n",
        i.name.to_ascii_uppercase(),
        i.name,
        i.version,
        esc(i.name),
        esc(i.shortdesc),
        esc(i.longdesc.trim())
    );
    s.push_str(".PP\nWith no arguments, options are read from standard input, one name=value per line, as Pacemaker's fencer writes them.\n.SH OPTIONS\n");
    for p in all_params::<A>() {
        s.push_str(&format!(
            ".TP\n.B {}\n{}",
            esc(&p.getopt()),
            esc(p.shortdesc)
        ));
        if let Some(d) = p.default {
            s.push_str(&format!(" (default {})", esc(d)));
        }
        if let Some(why) = p.no_effect {
            s.push_str(&format!(" No effect in rustha: {}", esc(why)));
        }
        if p.deprecated {
            s.push_str(" Deprecated.");
        }
        s.push_str(&format!(" Name on standard input: {}.\n", esc(p.name)));
    }
    s.push_str(".SH ACTIONS\n");
    for a in crate::action::Action::ALL {
        s.push_str(&format!(".TP\n.B {}\n", esc(a.as_str())));
    }
    s.push_str(".SH EXIT STATUS\n0 success (status: the machine is on), 2 status: the machine is off, 1 any failure: a bad option, a failed, refused or throttled request, a power state not reached within power_timeout.\n");
    s
}
