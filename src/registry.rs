//! Every agent in this binary: one line each.

#[cfg(feature = "aws")]
use crate::agents::aws_eni::AwsEni;
use crate::agents::azure_lb::AzureLb;
use crate::agents::filesystem::Filesystem;
use crate::agents::ipaddr2::IpAddr2;
use crate::agents::lighttpd::Lighttpd;
use crate::agents::mysql::Mysql;
use crate::agents::nginx::Nginx;
use crate::service::Svc;
use ocf::{DynAgent, Entry, Helper};

/// The OCF provider name: agents are `ocf:rustha:<name>`.
pub const PROVIDER: &str = "rustha";

pub static AGENTS: &[&dyn DynAgent] = &[
    &Entry::<AzureLb>::new(),
    &Entry::<IpAddr2>::new(),
    &Entry::<Svc<Nginx>>::new(),
    &Entry::<Svc<Lighttpd>>::new(),
    &Entry::<Svc<Mysql>>::new(),
    &Entry::<Filesystem>::new(),
    #[cfg(feature = "aws")]
    &Entry::<AwsEni>::new(),
];

/// Exact, case-sensitive lookup (OCF agent names are case-sensitive).
pub fn find(name: &str) -> Option<&'static dyn DynAgent> {
    AGENTS.iter().copied().find(|a| a.name() == name)
}

/// The hidden helper entry point `entry` of any agent (`rustha __azure-lb-responder ...`).
pub fn helper(entry: &str) -> Option<&'static Helper> {
    AGENTS
        .iter()
        .flat_map(|a| a.helpers())
        .find(|h| h.entry == entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_helper_entries_are_unique_and_cannot_be_confused() {
        let mut seen = std::collections::BTreeSet::new();
        for a in AGENTS {
            assert!(seen.insert(a.name()), "agent {} twice", a.name());
            assert!(!a.name().starts_with('_'), "{}", a.name());
        }
        for h in AGENTS.iter().flat_map(|a| a.helpers()) {
            assert!(
                h.entry.starts_with("__"),
                "helper {} must start with __",
                h.entry
            );
            assert!(seen.insert(h.entry), "helper entry {} twice", h.entry);
            assert!(std::ptr::eq(helper(h.entry).unwrap(), h));
        }
        assert!(helper("__azure-lb-responder").is_some());
        assert!(helper("__ipaddr2-announce").is_some());
        assert!(
            helper("__sleeper").is_none(),
            "the test sleeper is not in the binary"
        );
        assert!(helper("azure-lb").is_none());
    }
}
