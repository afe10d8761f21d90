//! Every agent in this binary: one line each.

#[cfg(feature = "aws")]
use crate::agents::aws_eni::AwsEni;
use crate::agents::azure_lb::AzureLb;
use crate::agents::ipaddr2::IpAddr2;
use crate::agents::lighttpd::Lighttpd;
use crate::agents::mysql::Mysql;
use crate::agents::nginx::Nginx;
use crate::service::Svc;
use ocf::{DynAgent, Entry};

/// The OCF provider name: agents are `ocf:rustha:<name>`.
pub const PROVIDER: &str = "rustha";

pub static AGENTS: &[&dyn DynAgent] = &[
    &Entry::<AzureLb>::new(),
    &Entry::<IpAddr2>::new(),
    &Entry::<Svc<Nginx>>::new(),
    &Entry::<Svc<Lighttpd>>::new(),
    &Entry::<Svc<Mysql>>::new(),
    #[cfg(feature = "aws")]
    &Entry::<AwsEni>::new(),
];

/// Exact, case-sensitive lookup (OCF agent names are case-sensitive).
pub fn find(name: &str) -> Option<&'static dyn DynAgent> {
    AGENTS.iter().copied().find(|a| a.name() == name)
}
