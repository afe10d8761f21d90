//! `rustha <agent> <action> [name=value...]`: an OCF action run by a person. The
//! parameters given on the command line become the `OCF_RESKEY_*` of the call (over any
//! already in the environment); the action then runs through the same runner as
//! Pacemaker's calls. The OCF path (an agent link as argv[0], environment only) never
//! comes here.

use clap::{Arg, ArgAction, Command};
use ocf::{DynAgent, OcfEnv};
use std::fmt::Write as _;

fn command(agent: &dyn DynAgent) -> Command {
    let info = agent.info();
    let mut actions: Vec<&str> = info.actions.iter().map(|a| a.action.as_str()).collect();
    actions.dedup();
    let mut params = String::from("Parameters (name=value, or --param name=value):\n");
    for p in agent.params() {
        let _ = writeln!(
            params,
            "  {:<24} {}{}",
            p.name,
            p.shortdesc.trim_end_matches('.'),
            match (p.required(), p.default) {
                (true, _) => " (required)".to_string(),
                (false, Some(d)) => format!(" (default {d})"),
                _ => String::new(),
            }
        );
    }
    let _ = write!(
        params,
        "\nExit codes are OCF's (0 success, 1 generic error, 2 bad argument, 5 not installed,\n\
         6 not configured, 7 not running). `rustha describe {}` documents every parameter.",
        info.name
    );
    Command::new(info.name)
        .bin_name(format!("rustha {}", info.name))
        .about(info.shortdesc)
        .disable_version_flag(true)
        .after_help(params)
        .arg(
            Arg::new("action")
                .help(format!("One of: {}", actions.join(", ")))
                .value_name("ACTION"),
        )
        .arg(
            Arg::new("params")
                .help("Parameters of the call as name=value")
                .value_name("NAME=VALUE")
                .num_args(0..)
                .action(ArgAction::Append),
        )
        .arg(
            Arg::new("param")
                .long("param")
                .short('p')
                .value_name("NAME=VALUE")
                .help("A parameter (for values that start with '-')")
                .action(ArgAction::Append)
                .allow_hyphen_values(true),
        )
        .arg(
            Arg::new("instance")
                .long("instance")
                .value_name("ID")
                .help("The resource id (OCF_RESOURCE_INSTANCE); default: the agent's name"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .value_parser(clap::value_parser!(u64).range(1..=86_400))
                .help("The action's time limit (CRM_meta_timeout); default: the advertised one"),
        )
        .arg(
            Arg::new("interval")
                .long("interval")
                .value_name("SECONDS")
                .value_parser(clap::value_parser!(u64).range(0..=86_400))
                .help("A monitor's interval (CRM_meta_interval); 0 or unset: a probe"),
        )
        .arg(
            Arg::new("depth")
                .long("depth")
                .value_name("N")
                .value_parser(clap::value_parser!(u32))
                .help("The monitor or validate-all depth (OCF_CHECK_LEVEL)"),
        )
        .arg(
            Arg::new("debug")
                .long("debug")
                .action(ArgAction::SetTrue)
                .help("Debug logging to stderr (HA_debug=1)"),
        )
}

/// `name=value` for a declared parameter of `agent`.
fn pair<'a>(agent: &dyn DynAgent, s: &'a str) -> Result<(&'a str, &'a str), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not name=value"))?;
    if !agent.params().iter().any(|p| p.name == k) {
        let names: Vec<&str> = agent.params().iter().map(|p| p.name).collect();
        return Err(format!(
            "{} has no parameter '{k}' (it has: {})",
            agent.name(),
            names.join(", ")
        ));
    }
    Ok((k, v))
}

/// The environment for the call, or a message for the person (exit 2).
fn environment(agent: &dyn DynAgent, m: &clap::ArgMatches) -> Result<OcfEnv, String> {
    let mut env = OcfEnv::from_process();
    let given = m
        .get_many::<String>("params")
        .into_iter()
        .flatten()
        .chain(m.get_many::<String>("param").into_iter().flatten());
    for s in given {
        let (k, v) = pair(agent, s)?;
        env = env.with(&format!("OCF_RESKEY_{k}"), v);
    }
    if let Some(id) = m.get_one::<String>("instance") {
        env = env.with("OCF_RESOURCE_INSTANCE", id);
    }
    if let Some(t) = m.get_one::<u64>("timeout") {
        env = env.with("OCF_RESKEY_CRM_meta_timeout", &(t * 1000).to_string());
    }
    if let Some(i) = m.get_one::<u64>("interval") {
        env = env.with("OCF_RESKEY_CRM_meta_interval", &(i * 1000).to_string());
    }
    if let Some(d) = m.get_one::<u32>("depth") {
        env = env.with("OCF_CHECK_LEVEL", &d.to_string());
    }
    if m.get_flag("debug") {
        env = env.with("HA_debug", "1");
    }
    Ok(env)
}

/// `rustha <agent> ARGS...`; `run` runs the action (the binary's runner, with its lock).
pub fn main(agent: &dyn DynAgent, args: &[String], run: impl Fn(Option<&str>, OcfEnv) -> u8) -> u8 {
    let argv = std::iter::once(agent.name().to_string()).chain(args.iter().cloned());
    let m = match command(agent).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match environment(agent, &m) {
        Ok(env) => run(m.get_one::<String>("action").map(String::as_str), env),
        Err(why) => {
            eprintln!("rustha {}: {why}", agent.name());
            2
        }
    }
}
