//! The fence-agent contract, as Pacemaker's fenced (and `stonith_admin`, `pcs stonith`)
//! use fence agents: options as `name=value` lines on stdin or as `-o/--action`,
//! `-n/--plug`, `--name=value` on argv; the actions `on`, `off`, `reboot`, `status`
//! (0 on, 2 off, 1 error), `list`, `list-status`, `monitor`, `metadata`, `manpage`,
//! `validate-all`; meta-data in fence-agents' format; one option declaration per agent
//! ([`params!`]); every wait bounded by the standard timeouts. It knows no agent, no
//! async runtime and no cloud.

pub mod action;
pub mod man;
pub mod metadata;
pub mod params;
pub mod runner;

pub use action::Action;
pub use metadata::Info;
pub use params::{Content, FenceParam, FenceParamSet, Options, Seconds};
pub use runner::{run, Ctx, FenceAgent, FenceError, Plug, Power, Timeouts};

#[cfg(test)]
mod tests;
