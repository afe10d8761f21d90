//! rustha: Pacemaker OCF resource agents in one multi-call binary.

pub mod agents;
pub mod cli;
pub mod daemon;
pub mod differences;
pub mod dispatch;
pub mod manpage;
pub mod migrate;
pub mod mountinfo;
pub mod netlink;
pub mod procfs;
pub mod registry;
pub mod service;
pub mod state;
