//! The agents. Adding one = a module here + one line in `registry.rs`.

pub mod azure_lb;
pub mod ipaddr2;
