//! The OCF resource-agent contract (OCF 1.1 as Pacemaker implements it).
//!
//! This crate knows no agent, no async runtime and no cloud API. It owns:
//! actions, exit codes, the environment Pacemaker passes, the action deadline,
//! parameter declarations (parsing, validation, meta-data, docs), logging, and
//! the one runner that maps every agent result to an exit code.

pub mod action;
pub mod deadline;
pub mod docs;
pub mod env;
pub mod error;
pub mod log;
pub mod man;
pub mod metadata;
pub mod params;
pub mod runner;
pub mod status;
pub mod trace;

pub use action::Action;
pub use deadline::Deadline;
pub use env::OcfEnv;
pub use error::{ErrorKind, OcfError};
pub use metadata::{ActionSpec, AgentInfo};
pub use params::{ContentType, ParamSet, ParamSpec, ParamValue};
pub use runner::{Agent, Ctx, DynAgent, Entry, Helper};
pub use status::Status;
