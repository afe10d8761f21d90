//! A test helper, not part of the installed binary: a daemon that does nothing, driven by
//! the supervision tests through `rustha::daemon` (`cargo test` builds it as an example).
//!
//! `test-sleeper [--ignore-term|--never-ready|--fail]`: tell readiness (or a failure),
//! detach, sleep until killed.

use rustha::daemon::{detach, Ready};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--ignore-term") {
        // SAFETY: setting a signal disposition to SIG_IGN.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if has("--never-ready") {
        loop {
            nix::unistd::pause();
        }
    }
    if has("--fail") {
        Ready::from_env().fail("sleeper asked to fail");
        return std::process::ExitCode::from(1);
    }
    Ready::from_env().ok();
    detach();
    loop {
        nix::unistd::pause();
    }
}
