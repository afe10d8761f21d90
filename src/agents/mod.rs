//! The agents. Adding one = a module here + one line in `registry.rs`.

#[cfg(feature = "aws")]
pub mod aws_eni;
pub mod azure_lb;
pub mod filesystem;
pub mod ipaddr2;
pub mod lighttpd;
pub mod mysql;
pub mod nginx;
