//! Multi-call dispatch: the agents' hidden helpers first (`registry::helper`), then `basename(argv[0])` exactly against
//! the registry, then the `rustha` tool mode for people.

use crate::registry::{self, PROVIDER};
use ocf::{OcfEnv, Status};
use std::io::Write;
use std::path::Path;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const GIT: &str = env!("RUSTHA_GIT_REV");

fn tool_usage() -> String {
    let mut s = format!(
        "rustha {VERSION}: Pacemaker OCF resource agents in one binary.\n\n\
         Installed as symlinks {}/resource.d/{PROVIDER}/<agent> -> this binary, it runs the\n\
         agent named by the link. By hand:\n",
        ocf::env::DEFAULT_OCF_ROOT
    );
    for (args, what) in crate::manpage::COMMANDS {
        s.push_str(&format!("  rustha {args:<20} {what}\n"));
    }
    s.push_str("Manual: rustha(8), ocf_rustha_<agent>(7).\n");
    s
}

/// Everything generated from the declarations: `<dir>/<agent>.xml` and `.md`, and the
/// manual pages in `<dir>/man/`.
fn write_meta(dir: &Path) -> std::io::Result<()> {
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    let source = format!("rustha {VERSION}");
    for a in registry::AGENTS {
        std::fs::write(dir.join(format!("{}.xml", a.name())), a.metadata())?;
        std::fs::write(
            dir.join(format!("{}.md", a.name())),
            crate::differences::agent_markdown(*a),
        )?;
        std::fs::write(
            man.join(format!("{}.7", ocf::man::page_name(PROVIDER, a.name()))),
            a.man_page(PROVIDER, &source),
        )?;
    }
    std::fs::write(man.join("rustha.8"), crate::manpage::page(VERSION))
}

/// Re-render the generated blocks of the README (the deliberate differences).
fn write_readme(path: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let new = crate::differences::readme(&text).map_err(std::io::Error::other)?;
    if new != text {
        std::fs::write(path, new)?;
    }
    Ok(())
}

/// Actions on one instance run one at a time: every action that looks at or changes the
/// resource holds the instance's lock (`StateFile::lock`). A start, reload, promote,
/// demote or migration that cannot have it within half its time fails (1, naming the
/// lock); a stop, monitor or notify goes on unlocked after that wait, with a warning,
/// since failing them would fence the node or fail the resource for nothing but a
/// second caller.
fn instance_lock(ctx: &ocf::Ctx) -> Result<Option<ocf::runner::Guard>, ocf::OcfError> {
    use ocf::Action as A;
    let must = match ctx.action {
        A::Start | A::Reload | A::Promote | A::Demote | A::MigrateTo | A::MigrateFrom => true,
        A::Stop | A::Monitor | A::Notify => false,
        A::ValidateAll | A::MetaData | A::Usage | A::Methods => return Ok(None),
    };
    let sf = crate::state::StateFile::for_ctx(ctx);
    match sf.lock(&ctx.deadline.portion(1, 2)) {
        Ok(Some(lock)) => Ok(Some(Box::new(lock))),
        Ok(None) => Ok(None),
        Err(crate::state::LockBusy(path)) if must => Err(ocf::OcfError::generic(format!(
            "another action on {} is still running (lock {} held)",
            ctx.instance,
            path.display()
        ))),
        Err(crate::state::LockBusy(path)) => {
            tracing::warn!(
                "another action on {} holds {}; going on without the lock",
                ctx.instance,
                path.display()
            );
            Ok(None)
        }
    }
}

fn run_agent(agent: &dyn ocf::DynAgent, action: Option<&str>, env: OcfEnv) -> u8 {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let status = agent.run_guarded(action, env, &mut out, &mut err, &instance_lock);
    let _ = out.flush();
    status.code()
}

fn tool(args: &[String]) -> u8 {
    let mut out = std::io::stdout().lock();
    match args.first().map(String::as_str) {
        Some("list") => {
            for a in registry::AGENTS {
                let _ = writeln!(out, "{}", a.name());
            }
            0
        }
        Some("migrate") => crate::migrate::main(&args[1..]),
        Some("describe") => match args.get(1).and_then(|n| registry::find(n)) {
            Some(a) => {
                let _ = out.write_all(crate::differences::agent_markdown(a).as_bytes());
                0
            }
            None => {
                eprintln!("rustha describe: name one of: {}", names());
                2
            }
        },
        Some("meta") => match args.get(1) {
            Some(dir) => match write_meta(Path::new(dir)).and_then(|_| match args.get(2) {
                Some(readme) => write_readme(Path::new(readme)),
                None => Ok(()),
            }) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("rustha meta: {dir}: {e}");
                    1
                }
            },
            None => {
                eprintln!("rustha meta: name the output directory");
                2
            }
        },
        Some("--version" | "-V" | "version") => {
            let _ = writeln!(out, "rustha {VERSION} ({GIT})\nagents: {}", names());
            0
        }
        Some("help" | "--help" | "-h") => {
            let _ = out.write_all(tool_usage().as_bytes());
            0
        }
        Some(name) if registry::find(name).is_some() => {
            let agent = registry::find(name).expect("checked");
            crate::cli::main(agent, &args[1..], |action, env| {
                run_agent(agent, action, env)
            })
        }
        _ => {
            eprint!("{}", tool_usage());
            2
        }
    }
}

fn names() -> String {
    registry::AGENTS
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Entry point; returns the process exit code.
pub fn main(argv: Vec<String>) -> u8 {
    let args = &argv[1.min(argv.len())..];
    if let Some(h) = args.first().and_then(|a| registry::helper(a)) {
        return (h.main)(&args[1..]);
    }
    let arg0 = argv.first().map(String::as_str).unwrap_or("rustha");
    let name = Path::new(arg0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(arg0);
    if let Some(agent) = registry::find(name) {
        return run_agent(
            agent,
            args.first().map(String::as_str),
            OcfEnv::from_process(),
        );
    }
    if name == "rustha" {
        return tool(args);
    }
    eprintln!(
        "rustha: '{name}' is not an agent of this binary (agents: {})",
        names()
    );
    eprintln!(
        "{}",
        ocf::runner::exit_reason_line(
            OcfEnv::from_process().exit_reason_prefix(),
            &format!("agent {name} is not built into rustha {VERSION}")
        )
    );
    Status::ErrInstalled.code()
}
