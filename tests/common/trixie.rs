//! The Debian 13 root with Pacemaker 3.0 (`tests/trixie/root.sh`): built once per test
//! process (cached on disk between runs), and commands run inside it with the binary
//! under test as `/usr/libexec/rustha/rustha` and its agent links.

use super::{bin, out, repo, Run};
use std::process::Command;

/// Build the root if it is missing or out of date (about a minute from the mirror).
pub fn ensure() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let r = out(Command::new(repo().join("tests/trixie/root.sh")).arg("build"));
        assert_eq!(
            r.code, 0,
            "tests/trixie/root.sh build: {}{}",
            r.stdout, r.stderr
        );
    });
}

/// `args` as a command inside the root (the caller's network namespace and environment).
pub fn command(args: &[&str]) -> Command {
    ensure();
    let mut c = Command::new(repo().join("tests/trixie/root.sh"));
    c.arg("run")
        .args(args)
        .env("RUSTHA_BIN", bin())
        .env("RUSTHA_REPO", repo());
    c
}

pub fn run(args: &[&str]) -> Run {
    out(&mut command(args))
}
