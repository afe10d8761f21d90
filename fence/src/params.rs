//! Fence-agent options: the declaration (name, getopt forms, type, default, secrecy),
//! the options every agent has (`STANDARD`), and parsing them from fenced's stdin
//! (`key=value` lines) or from a command line (`-o off -n vm1`, `--plug=vm1`).

use std::collections::BTreeMap;
use std::fmt;

/// The content types fence-agents' meta-data uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    String,
    Boolean,
    Integer,
    /// Seconds, possibly fractional (fence-agents' `second`).
    Second,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Content::String => "string",
            Content::Boolean => "boolean",
            Content::Integer => "integer",
            Content::Second => "second",
        }
    }
}

/// One option of a fence agent.
#[derive(Clone, Copy, Debug)]
pub struct FenceParam {
    /// The stdin name (`plug`, `login_timeout`).
    pub name: &'static str,
    pub short: Option<char>,
    /// The long option without dashes (`plug`, `login-timeout`); `""`: the name with `_`
    /// as `-`.
    pub long: &'static str,
    /// The value's name in `--long=[value]`; `None` for a flag.
    pub value: Option<&'static str>,
    pub content: Content,
    pub default: Option<&'static str>,
    pub required: bool,
    /// Never logged, never echoed in an error.
    pub secret: bool,
    /// Accepted, superseded by another name (`port` → `plug`).
    pub deprecated: bool,
    /// The deprecated name this one replaces (`plug` obsoletes `port`).
    pub obsoletes: Option<&'static str>,
    /// Accepted but without effect here; the text says why.
    pub no_effect: Option<&'static str>,
    pub shortdesc: &'static str,
}

impl FenceParam {
    pub const fn new(name: &'static str, shortdesc: &'static str) -> FenceParam {
        FenceParam {
            name,
            short: None,
            long: "",
            value: Some("value"),
            content: Content::String,
            default: None,
            required: false,
            secret: false,
            deprecated: false,
            obsoletes: None,
            no_effect: None,
            shortdesc,
        }
    }
    pub const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    pub const fn long(mut self, l: &'static str) -> Self {
        self.long = l;
        self
    }
    pub const fn value(mut self, v: &'static str) -> Self {
        self.value = Some(v);
        self
    }
    pub const fn flag(mut self) -> Self {
        self.value = None;
        self.content = Content::Boolean;
        self
    }
    pub const fn content(mut self, c: Content) -> Self {
        self.content = c;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    pub const fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub const fn obsoletes(mut self, old: &'static str) -> Self {
        self.obsoletes = Some(old);
        self
    }
    pub const fn no_effect(mut self, why: &'static str) -> Self {
        self.no_effect = Some(why);
        self
    }
    /// The long option as typed (`login-timeout`).
    pub fn long_name(&self) -> String {
        if self.long.is_empty() {
            self.name.replace('_', "-")
        } else {
            self.long.to_string()
        }
    }
    /// fence-agents' `<getopt mixed="-n, --plug=[id]"/>`.
    pub fn getopt(&self) -> String {
        let long = match self.value {
            Some(v) => format!("--{}=[{v}]", self.long_name()),
            None => format!("--{}", self.long_name()),
        };
        match self.short {
            Some(c) => format!("-{c}, {long}"),
            None => long,
        }
    }
}

/// The options every rustha fence agent takes, as fencing.py names them. The timing
/// ones bound every wait of an action; `plug` is the machine to act on.
pub const STANDARD: &[FenceParam] = &[
    FenceParam::new("action", "Fencing action")
        .short('o')
        .value("action")
        .default("reboot"),
    FenceParam::new(
        "plug",
        "Physical plug number on device, UUID or identification of machine",
    )
    .short('n')
    .value("id")
    .obsoletes("port"),
    FenceParam::new(
        "port",
        "Physical plug number on device, UUID or identification of machine",
    )
    .short('n')
    .long("plug")
    .value("id")
    .deprecated(),
    FenceParam::new("quiet", "Disable logging to stderr")
        .short('q')
        .flag(),
    FenceParam::new(
        "verbose",
        "Verbose mode: every request and its answer in the log",
    )
    .short('v')
    .flag(),
    FenceParam::new("verbose_level", "Level of debugging detail in output")
        .long("verbose-level")
        .value("level")
        .content(Content::Integer),
    FenceParam::new("debug_file", "Write debug information to given file")
        .short('D')
        .long("debug-file")
        .value("debugfile"),
    FenceParam::new("version", "Display version information and exit")
        .short('V')
        .flag(),
    FenceParam::new("help", "Display help and exit")
        .short('h')
        .flag(),
    FenceParam::new(
        "plug_separator",
        "Separator for plug parameter when specifying more than 1 plug",
    )
    .long("plug-separator")
    .value("char")
    .default(","),
    FenceParam::new("separator", "Separator for CSV created by 'list' operation")
        .short('C')
        .value("char")
        .default(","),
    FenceParam::new("delay", "Wait X seconds before fencing is started")
        .value("seconds")
        .content(Content::Second)
        .default("0"),
    FenceParam::new(
        "disable_timeout",
        "Disable timeout (true/false) (default: true when run from Pacemaker 2.0+)",
    )
    .long("disable-timeout")
    .value("true/false")
    .no_effect("every wait of a rustha fence agent is bounded by the timeouts below"),
    FenceParam::new(
        "login_timeout",
        "Wait X seconds for a connection and a login (token)",
    )
    .long("login-timeout")
    .value("seconds")
    .content(Content::Second)
    .default("5"),
    FenceParam::new(
        "power_timeout",
        "Test X seconds for status change after ON/OFF",
    )
    .long("power-timeout")
    .value("seconds")
    .content(Content::Second)
    .default("60"),
    FenceParam::new("power_wait", "Wait X seconds after issuing ON/OFF")
        .long("power-wait")
        .value("seconds")
        .content(Content::Second)
        .default("0"),
    FenceParam::new(
        "shell_timeout",
        "Wait X seconds for an answer to each request",
    )
    .long("shell-timeout")
    .value("seconds")
    .content(Content::Second)
    .default("3"),
    FenceParam::new(
        "stonith_status_sleep",
        "Sleep X seconds between status calls during a STONITH action",
    )
    .long("stonith-status-sleep")
    .value("seconds")
    .content(Content::Second)
    .default("1"),
    FenceParam::new("retry_on", "Count of attempts to retry power on")
        .long("retry-on")
        .value("attempts")
        .content(Content::Integer)
        .default("1"),
];

/// A bad option: the message names the option, never a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOption(pub String);

impl fmt::Display for BadOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The options of one call, by declared name (`port` folded into `plug`).
#[derive(Clone, Default)]
pub struct Options {
    values: BTreeMap<String, String>,
    /// What was ignored, for the log ("unknown option 'x'").
    pub ignored: Vec<String>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are not shown: some are secrets.
        f.debug_struct("Options")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn find<'a>(all: &[&'a FenceParam], name: &str) -> Option<&'a FenceParam> {
    let n = name.replace('-', "_");
    all.iter()
        .copied()
        .find(|p| p.name == n || p.long_name().replace('-', "_") == n)
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

impl Options {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    pub fn set(&mut self, name: &str, value: &str) {
        let name = if name == "port" { "plug" } else { name };
        self.values.insert(name.to_string(), value.to_string());
    }

    fn put(&mut self, p: &FenceParam, value: &str, raw: &str) {
        if p.value.is_none() {
            match truthy(value) {
                Some(b) => self.set(p.name, if b { "1" } else { "0" }),
                None => self.ignored.push(format!(
                    "ignoring option '{}' because it does not have a boolean value",
                    p.name
                )),
            }
        } else {
            let _ = raw;
            self.set(p.name, value);
        }
    }

    /// fenced's form: one `name=value` per line (`#` comments, blank lines and
    /// `nodename` skipped; Pacemaker's own `pcmk_*` device options ignored; a value in
    /// double quotes unquoted; an unknown name is ignored with a warning, as fencing.py
    /// does).
    pub fn from_stdin(text: &str, params: &[&FenceParam]) -> Options {
        let mut o = Options::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if name == "nodename" || name.starts_with("pcmk_") {
                continue;
            }
            match find(params, name) {
                Some(p) => o.put(p, value, line),
                None => o.ignored.push(format!("ignoring unknown option '{name}'")),
            }
        }
        o
    }

    /// The command-line form: `-o off`, `-ooff`, `--action=off`, `--action off`, flags
    /// `-v` / `--verbose`. Unlike stdin, an unknown option is an error.
    pub fn from_argv(args: &[String], params: &[&FenceParam]) -> Result<Options, BadOption> {
        let mut o = Options::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            let (p, inline) = if let Some(long) = a.strip_prefix("--") {
                let (n, v) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let p =
                    find(params, n).ok_or_else(|| BadOption(format!("unknown option --{n}")))?;
                (p, v)
            } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
                let c = short.chars().next().expect("non-empty");
                let p = params
                    .iter()
                    .copied()
                    .find(|p| p.short == Some(c) && !p.deprecated)
                    .ok_or_else(|| BadOption(format!("unknown option -{c}")))?;
                let rest = &short[c.len_utf8()..];
                (p, (!rest.is_empty()).then(|| rest.to_string()))
            } else {
                return Err(BadOption(format!(
                    "unexpected argument '{}': options are -o ACTION, -n PLUG, --name=value",
                    a.escape_debug()
                )));
            };
            if p.value.is_none() {
                o.set(p.name, "1");
                continue;
            }
            let v = match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i).ok_or_else(|| {
                        BadOption(format!("option --{} needs a value", p.long_name()))
                    })?;
                    i += 1;
                    v.clone()
                }
            };
            o.set(p.name, &v);
        }
        Ok(o)
    }
}

/// A type an option's value parses into (the error says why, without the value when
/// the option is secret: the caller adds the name).
pub trait FenceValue: Sized {
    fn parse_value(raw: &str) -> Result<Self, String>;
    /// The value when the option is not given and has no default.
    fn when_absent() -> Option<Self> {
        None
    }
}

impl FenceValue for String {
    fn parse_value(raw: &str) -> Result<Self, String> {
        Ok(raw.to_string())
    }
}

impl FenceValue for bool {
    fn parse_value(raw: &str) -> Result<Self, String> {
        truthy(raw).ok_or_else(|| "is not a boolean (true or false)".to_string())
    }
    fn when_absent() -> Option<Self> {
        Some(false)
    }
}

impl FenceValue for u32 {
    fn parse_value(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| "is not a non-negative integer".to_string())
    }
}

/// Seconds as fence-agents write them (`5`, `0.5`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub std::time::Duration);

impl FenceValue for Seconds {
    fn parse_value(raw: &str) -> Result<Self, String> {
        let f: f64 = raw
            .trim()
            .parse()
            .map_err(|_| "is not a number of seconds".to_string())?;
        if !f.is_finite() || !(0.0..=86_400.0).contains(&f) {
            return Err("is not between 0 and 86400 seconds".into());
        }
        Ok(Seconds(std::time::Duration::from_secs_f64(f)))
    }
}

impl<T: FenceValue> FenceValue for Option<T> {
    fn parse_value(raw: &str) -> Result<Self, String> {
        T::parse_value(raw).map(Some)
    }
    fn when_absent() -> Option<Self> {
        Some(None)
    }
}

/// One option, typed: the given value, else its default, else "absent".
pub fn lookup<T: FenceValue>(o: &Options, p: &FenceParam) -> Result<T, BadOption> {
    match o.get(p.name).or(p.default) {
        Some(raw) => T::parse_value(raw).map_err(|why| {
            if p.secret {
                BadOption(format!(
                    "option {}: invalid value (not shown: secret)",
                    p.name
                ))
            } else {
                BadOption(format!("option {}: '{}' {why}", p.name, raw.escape_debug()))
            }
        }),
        None => T::when_absent()
            .ok_or_else(|| BadOption(format!("required option {} is not set", p.name))),
    }
}

/// A declared set of agent options (generated by [`crate::params!`]).
pub trait FenceParamSet: Sized {
    const SPEC: &'static [FenceParam];
    fn from_options(o: &Options) -> Result<Self, BadOption>;
}

/// Declare an agent's own options once: the struct, its typed parse and the spec its
/// meta-data and manual page are written from (the standard options come on top).
#[macro_export]
macro_rules! params {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $spec:expr ),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl $crate::params::FenceParamSet for $name {
            const SPEC: &'static [$crate::params::FenceParam] = &[ $( $spec ),* ];
            fn from_options(o: &$crate::params::Options)
                -> ::std::result::Result<Self, $crate::params::BadOption> {
                let mut specs = <Self as $crate::params::FenceParamSet>::SPEC.iter();
                $( let $field = $crate::params::lookup::<$ty>(o, specs.next().expect("spec per field"))?; )*
                Ok($name { $( $field, )* })
            }
        }
    };
}

#[cfg(test)]
#[allow(dead_code)] // fields declared to be parsed, not all read
mod tests {
    use super::*;

    crate::params! {
        struct Demo {
            region: Option<String> => FenceParam::new("region", "Region.").short('r'),
            secret_key: Option<String> => FenceParam::new("secret_key", "Secret Key.").short('s').long("secret-key").secret(),
            skip: bool => FenceParam::new("skip_race_check", "Skip the race check.").long("skip-race-check").flag(),
        }
    }

    fn all() -> Vec<&'static FenceParam> {
        STANDARD.iter().chain(Demo::SPEC).collect()
    }

    #[test]
    fn stdin_as_fenced_writes_it() {
        let o = Options::from_stdin(
            "# fenced\naction=off\nport=vm-1\nnodename=node2\npcmk_host_map=a:b\n\
             region=\"eu-west-1\"\nskip_race_check=true\nbogus=1\nverbose=maybe\n\n",
            &all(),
        );
        assert_eq!(o.get("action"), Some("off"));
        assert_eq!(o.get("plug"), Some("vm-1"), "port is plug");
        assert_eq!(o.get("region"), Some("eu-west-1"), "quotes removed");
        assert_eq!(o.get("skip_race_check"), Some("1"));
        assert_eq!(o.ignored.len(), 2, "{:?}", o.ignored);
        assert!(o.ignored[0].contains("bogus"));
        let d = Demo::from_options(&o).unwrap();
        assert!(d.skip);
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn argv_forms() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let o = Options::from_argv(
            &args("-o status -nvm-2 --region=us-east-1 --secret-key k -v --power-timeout 30"),
            &all(),
        )
        .unwrap();
        assert_eq!(o.get("action"), Some("status"));
        assert_eq!(o.get("plug"), Some("vm-2"));
        assert_eq!(o.get("region"), Some("us-east-1"));
        assert_eq!(o.get("secret_key"), Some("k"));
        assert_eq!(o.get("verbose"), Some("1"));
        assert_eq!(o.get("power_timeout"), Some("30"));
        assert!(format!("{o:?}").contains("secret_key") && !format!("{o:?}").contains("\"k\""));
        for bad in ["--nope=1", "-x", "stray", "--region"] {
            assert!(Options::from_argv(&args(bad), &all()).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values_and_secret_errors() {
        let mut o = Options::default();
        o.set("power_timeout", "2.5");
        let p = STANDARD.iter().find(|p| p.name == "power_timeout").unwrap();
        let s: Seconds = lookup(&o, p).unwrap();
        assert_eq!(s.0, std::time::Duration::from_millis(2500));
        o.set("power_timeout", "-1");
        assert!(lookup::<Seconds>(&o, p).is_err());
        let secret = FenceParam::new("passwd", "Password").secret();
        o.set("passwd", "hunter2");
        let e = lookup::<u32>(&o, &secret).unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        let login = STANDARD.iter().find(|p| p.name == "login_timeout").unwrap();
        assert_eq!(
            lookup::<Seconds>(&Options::default(), login)
                .unwrap()
                .0
                .as_secs(),
            5
        );
    }

    #[test]
    fn getopt_strings_as_fence_agents_print_them() {
        let plug = STANDARD.iter().find(|p| p.name == "plug").unwrap();
        assert_eq!(plug.getopt(), "-n, --plug=[id]");
        let lt = STANDARD.iter().find(|p| p.name == "login_timeout").unwrap();
        assert_eq!(lt.getopt(), "--login-timeout=[seconds]");
        let q = STANDARD.iter().find(|p| p.name == "quiet").unwrap();
        assert_eq!(q.getopt(), "-q, --quiet");
    }
}
