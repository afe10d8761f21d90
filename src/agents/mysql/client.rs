//! The depth-20 check: `SELECT COUNT(*) FROM <test_table>` through the client binary, as
//! test_user, the credentials in a 0600 option file (never on a command line, never
//! logged) that is removed again.

use super::MysqlParams;
use crate::service::{key, tool};
use crate::state::{Record, StateFile};
use ocf::{Ctx, OcfError};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

const CLIENTS: &[&str] = &["/usr/bin/mariadb", "/usr/bin/mysql"];

/// `[client]` option-file value: quoted, with the escapes the client understands.
fn option_value(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The client's option file: beside the instance's record, created afresh (0600).
fn write_option_file(p: &MysqlParams, ctx: &Ctx) -> Result<PathBuf, OcfError> {
    let state = StateFile::for_ctx(ctx);
    let mut opt = state.path.clone().into_os_string();
    opt.push(".client.cnf");
    let opt = PathBuf::from(opt);
    let mut text = format!("[client]\nuser={}\n", option_value(&p.test_user));
    if let Some(pw) = p.test_passwd.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(&format!("password={}\n", option_value(pw)));
    }
    let _ = std::fs::remove_file(&opt);
    if let Some(dir) = opt.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&opt)
        .and_then(|mut f| f.write_all(text.as_bytes()).map(|_| f))
        .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", opt.display())))?;
    let _ = f.flush();
    Ok(opt)
}

/// Count the rows of test_table as test_user (a failure is the client's error line).
pub fn count_rows(p: &MysqlParams, plan: &Record, ctx: &Ctx) -> Result<(), OcfError> {
    let client = tool::find_binary(p.client_binary.as_deref(), "the mysql client", CLIENTS)?;
    let opt = write_option_file(p, ctx)?;
    let args: Vec<OsString> = vec![
        format!("--defaults-file={}", opt.display()).into(),
        format!("--socket={}", plan.get(key::SOCKET).unwrap_or(&p.socket)).into(),
        "--batch".into(),
        "--skip-column-names".into(),
        "-e".into(),
        format!("SELECT COUNT(*) FROM {}", p.test_table).into(),
    ];
    let result = tool::run_tool(&client, &args, &ctx.deadline);
    let _ = std::fs::remove_file(&opt);
    let (st, out, err) = result?;
    if !st.success() || out.trim().parse::<u64>().is_err() {
        return Err(OcfError::generic(format!(
            "depth-20 check: SELECT COUNT(*) FROM {} as {} failed: {}",
            p.test_table,
            p.test_user,
            err.lines()
                .find(|l| l.starts_with("ERROR"))
                .or_else(|| err
                    .lines()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("---")))
                .unwrap_or(out.trim())
                .trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_are_quoted() {
        assert_eq!(option_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
