//! A fence device kept in a directory (one file per machine holding `on` or `off`), for
//! testing the contract crate with Pacemaker's real tools (`stonith_admin --metadata`,
//! `pcs stonith describe`, `pcs stonith create`) and as processes speaking the protocol.
//! Built by `cargo test`; never installed.

use fence::{Ctx, FenceAgent, FenceError, FenceParam, Info, Plug, Power};
use std::path::PathBuf;

fence::params! {
    struct DemoParams {
        dir: String => FenceParam::new("dir", "The directory of the machines (one file each)")
            .long("dir")
            .value("path")
            .required(),
        password: Option<String> => FenceParam::new("password", "A password (never shown)")
            .short('p')
            .value("password")
            .secret(),
    }
}

struct Demo;

fn machine(p: &DemoParams, plug: &str) -> Result<PathBuf, FenceError> {
    if plug.is_empty() || plug.contains('/') || plug.starts_with('.') {
        return Err(FenceError(format!(
            "'{}' is not a machine name",
            plug.escape_debug()
        )));
    }
    Ok(PathBuf::from(&p.dir).join(plug))
}

impl FenceAgent for Demo {
    type Params = DemoParams;
    const INFO: Info = Info {
        name: "fence_rustha_demo",
        version: env!("CARGO_PKG_VERSION"),
        shortdesc: "Fence device in a directory (rustha's contract tests)",
        longdesc: "Each file of the directory is a machine whose content is on or off.",
        vendor_url: "https://github.com/rustha",
    };
    fn validate(p: &DemoParams, _ctx: &mut Ctx) -> Result<(), FenceError> {
        if !std::path::Path::new(&p.dir).is_dir() {
            return Err(FenceError(format!("dir {} is not a directory", p.dir)));
        }
        if p.password.as_deref() == Some("wrong") {
            return Err(FenceError(
                "login denied (the password is not shown)".into(),
            ));
        }
        Ok(())
    }
    fn status(p: &DemoParams, plug: &str, _ctx: &mut Ctx) -> Result<Power, FenceError> {
        let f = machine(p, plug)?;
        match std::fs::read_to_string(&f).map(|s| s.trim().to_string()) {
            Ok(s) if s == "on" => Ok(Power::On),
            Ok(s) if s == "off" => Ok(Power::Off),
            Ok(s) => Err(FenceError(format!("{plug}: unknown state '{s}'"))),
            Err(e) => Err(FenceError(format!("no machine {plug}: {e}"))),
        }
    }
    fn set_power(p: &DemoParams, plug: &str, to: Power, ctx: &mut Ctx) -> Result<(), FenceError> {
        let f = machine(p, plug)?;
        ctx.debug(format!("{plug} -> {}", to.as_str()));
        std::fs::write(&f, if to == Power::On { "on\n" } else { "off\n" })
            .map_err(|e| FenceError(format!("{plug}: {e}")))
    }
    fn list(p: &DemoParams, ctx: &mut Ctx) -> Result<Vec<Plug>, FenceError> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&p.dir).map_err(|e| FenceError(format!("{}: {e}", p.dir)))?;
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let power = Self::status(p, &id, ctx).ok();
            out.push(Plug {
                alias: id.clone(),
                id,
                power,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = fence::run::<Demo>(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
