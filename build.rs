// Embeds the git commit for `rustha --version`: from the checkout, or, in a source tarball
// made by `make dist` (git archive), from the COMMIT file git filled in (export-subst).
use std::path::Path;

fn main() {
    let from_git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && Path::new(".git").exists());
    let from_archive = || {
        std::fs::read_to_string("COMMIT")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|s| s[..12].to_string())
    };
    let rev = from_git
        .or_else(from_archive)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RUSTHA_GIT_REV={rev}");
    // Only paths that exist: a missing one would rerun this script on every build.
    for p in [".git/HEAD", ".git/refs", ".git/packed-refs", "COMMIT"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
