//! Running the server's own tools: finding its binary, running a tool (a configuration
//! test, an install script, a client) to completion within the action's deadline, and
//! the extra command-line words a parameter may add.

use super::group;
use ocf::{Deadline, OcfError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parameter of extra command-line words (see [`group::split_words`]).
pub fn words_param(name: &'static str, v: &Option<String>) -> Result<Vec<OsString>, OcfError> {
    Ok(match v {
        Some(o) => group::split_words(o)
            .map_err(|e| OcfError::invalid_param(name, e))?
            .into_iter()
            .map(OsString::from)
            .collect(),
        None => vec![],
    })
}

/// A binary from a parameter, else the first of `candidates` that exists.
pub fn find_binary(
    param: Option<&str>,
    name: &str,
    candidates: &[&str],
) -> Result<PathBuf, OcfError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    match param {
        Some(b) if !b.is_empty() => {
            let p = if b.contains('/') {
                PathBuf::from(b)
            } else {
                group::SERVER_PATH
                    .split(':')
                    .map(|d| Path::new(d).join(b))
                    .find(|p| executable(p))
                    .unwrap_or_else(|| PathBuf::from(b))
            };
            if executable(&p) {
                Ok(p)
            } else {
                Err(OcfError::not_installed(format!(
                    "{name} binary {} is not installed (or not executable)",
                    p.display()
                )))
            }
        }
        _ => candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| executable(p))
            .ok_or_else(|| {
                OcfError::not_installed(format!(
                    "{name} is not installed (looked for {})",
                    candidates.join(", ")
                ))
            }),
    }
}

/// Run a tool to completion within the deadline; its exit status, stdout and stderr.
pub fn run_tool(
    bin: &Path,
    args: &[OsString],
    deadline: &Deadline,
) -> Result<(std::process::ExitStatus, String, String), OcfError> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", group::SERVER_PATH)
        .current_dir("/");
    run_command(cmd, deadline)
}

/// Run `cmd` (stdin from /dev/null, stdout and stderr captured) until it exits or
/// `deadline` passes (then it is killed and reaped: an error).
pub fn run_command(
    mut cmd: std::process::Command,
    deadline: &Deadline,
) -> Result<(std::process::ExitStatus, String, String), OcfError> {
    use std::io::Read;
    let bin = PathBuf::from(cmd.get_program());
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| OcfError::generic(format!("cannot run {}: {e}", bin.display())))?;
    // Drain both pipes on threads so a chatty tool cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let started = std::time::Instant::now();
    let status = deadline.poll(Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    });
    // The program only: arguments may carry what must not be logged (mount options).
    tracing::debug!(
        "ran {}: {} after {} ms",
        bin.display(),
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "killed at the deadline".into()),
        started.elapsed().as_millis()
    );
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(OcfError::generic(format!(
            "{} did not finish before the timeout",
            bin.display()
        )));
    };
    let out = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok((status, out, err))
}
