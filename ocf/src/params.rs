//! One parameter declaration per agent, from which the typed parse, validation errors,
//! meta-data and docs are all generated.
//!
//! ```
//! ocf::params! {
//!     pub struct Example {
//!         port: ocf::params::Port => ocf::ParamSpec::new("Port", "The port to listen on.")
//!             .default("61000").unique(),
//!         name: Option<String> => ocf::ParamSpec::new("Name", "An optional name."),
//!     }
//! }
//! ```

use crate::{env::OcfEnv, error::OcfError};

/// The OCF `content@type`. Only the types valid for both ocf-tester's DTD and the OCF 1.1
/// RNG are used; choice lists are written as `string` with the values documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    String,
    Integer,
    Boolean,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::String => "string",
            ContentType::Integer => "integer",
            ContentType::Boolean => "boolean",
        }
    }
}

/// Everything known about one parameter.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub content: ContentType,
    /// Allowed values, when the type is a choice.
    pub choices: &'static [&'static str],
    pub default: Option<&'static str>,
    /// The type itself allows "unset" (an `Option`).
    pub optional: bool,
    pub unique: bool,
    /// Still works, but another parameter is preferred; the text says which.
    pub deprecated: Option<&'static str>,
    /// What rustha does with the parameter compared with upstream's agent.
    pub support: Support,
    /// Never logged, never echoed in an exit reason.
    pub secret: bool,
    /// A valid value for docs and for the contract suite (needed for required parameters).
    pub example: Option<&'static str>,
}

impl ParamSpec {
    pub const fn new(shortdesc: &'static str, longdesc: &'static str) -> Self {
        ParamSpec {
            name: "",
            shortdesc,
            longdesc,
            content: ContentType::String,
            choices: &[],
            default: None,
            optional: false,
            unique: false,
            deprecated: None,
            support: Support::Implemented,
            secret: false,
            example: None,
        }
    }
    pub const fn example(mut self, v: &'static str) -> Self {
        self.example = Some(v);
        self
    }
    pub const fn default(mut self, v: &'static str) -> Self {
        self.default = Some(v);
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub const fn deprecated(mut self, why: &'static str) -> Self {
        self.deprecated = Some(why);
        self
    }
    /// Accepted for compatibility with the upstream agent but changes nothing; `why` says
    /// why (published in the meta-data and docs, and reported by `rustha migrate`).
    pub const fn no_effect(mut self, why: &'static str) -> Self {
        self.support = Support::NoEffect(why);
        self
    }
    /// Declared (so a CIB using it still loads) but a value is refused: validate-all,
    /// start and reload fail with 6 and `why`; stop, probe and monitor never look.
    pub const fn refused(mut self, why: &'static str) -> Self {
        self.support = Support::Refused(why);
        self
    }
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    /// Filled in by [`params!`]: the field name.
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    /// Filled in by [`params!`]: what the Rust type says about content and optionality.
    pub const fn typed<T: ParamValue>(mut self) -> Self {
        self.content = T::CONTENT;
        self.choices = T::CHOICES;
        self.optional = T::OPTIONAL;
        self
    }
    /// Required = no default and the type cannot be absent.
    pub const fn required(&self) -> bool {
        self.default.is_none() && !self.optional
    }

    /// The long description as published: the agent's text plus allowed values and deprecation.
    pub fn full_longdesc(&self) -> String {
        let mut s = self.longdesc.trim().to_string();
        if !self.choices.is_empty() {
            s.push_str(&format!(" Allowed values: {}.", self.choices.join(", ")));
        }
        if let Some(why) = self.deprecated {
            s.push_str(&format!(" Deprecated: {why}"));
        }
        match self.support {
            Support::Implemented => {}
            Support::NoEffect(why) => s.push_str(&format!(" No effect in rustha: {why}")),
            Support::Refused(why) => s.push_str(&format!(
                " Not supported by rustha (a value fails validate-all and start with 6): {why}"
            )),
        }
        s
    }
}

/// How a declared parameter relates to the upstream agent's parameter of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// rustha does what the parameter asks.
    Implemented,
    /// Accepted, changes nothing; the text says why.
    NoEffect(&'static str),
    /// A value is refused at validate-all, start and reload (6); the text says why.
    Refused(&'static str),
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Implemented => "implemented",
            Support::NoEffect(_) => "no effect",
            Support::Refused(_) => "refused",
        }
    }
}

/// The first parameter of `spec` declared [`Support::Refused`] that `env` sets to a
/// non-empty value, as the error validate-all and start report (6).
pub fn refused_set(env: &OcfEnv, spec: &[ParamSpec]) -> Result<(), OcfError> {
    for p in spec {
        if let Support::Refused(why) = p.support {
            if env.param(p.name).is_some_and(|v| !v.trim().is_empty()) {
                return Err(OcfError::invalid_param(
                    p.name,
                    format!("not supported by rustha: {why}"),
                ));
            }
        }
    }
    Ok(())
}

/// A Rust type a parameter can be parsed into.
pub trait ParamValue: Sized {
    const CONTENT: ContentType;
    const CHOICES: &'static [&'static str] = &[];
    /// `true` for `Option<T>`: unset is a valid value.
    const OPTIONAL: bool = false;
    /// Parse a raw value; the error says why it is wrong (the caller adds the name).
    fn parse_value(raw: &str) -> Result<Self, String>;
    /// The value when the parameter is unset and has no default.
    fn when_absent() -> Option<Self> {
        None
    }
}

/// A declared set of parameters (generated by [`params!`]).
pub trait ParamSet: Sized {
    const SPEC: &'static [ParamSpec];
    fn from_env(env: &OcfEnv) -> Result<Self, OcfError>;
}

/// What is wrong with a value as Pacemaker passed it, before its type looks at it: a
/// value that is not UTF-8, or one holding a control character (a pasted newline, a tab,
/// an escape), is never a usable parameter. Refusing it here means no such byte can
/// reach a file name, an HTTP header, a URL or a child's argv through any agent.
pub fn raw_problem(env: &OcfEnv, name: &str) -> Option<&'static str> {
    let var = format!("OCF_RESKEY_{name}");
    if env.undecodable(&var) {
        return Some("the value is not valid UTF-8");
    }
    let raw = env.var(&var)?;
    if raw.chars().any(|c| c.is_control()) {
        return Some("the value contains a control character (newline, tab, escape...)");
    }
    None
}

/// Look up one parameter: the environment, then its default, then "absent".
pub fn lookup<T: ParamValue>(env: &OcfEnv, spec: &ParamSpec) -> Result<T, OcfError> {
    if let Some(why) = raw_problem(env, spec.name) {
        return Err(OcfError::invalid_param(spec.name, why));
    }
    match env.param(spec.name).or(spec.default) {
        Some(raw) => T::parse_value(raw).map_err(|why| {
            if spec.secret {
                OcfError::invalid_param(spec.name, "invalid value (not shown: secret)")
            } else {
                OcfError::invalid_param(spec.name, why)
            }
        }),
        None => T::when_absent().ok_or_else(|| OcfError::missing_param(spec.name)),
    }
}

/// Show a raw value in an error message: one line, bounded.
pub fn shown(raw: &str) -> String {
    let one: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(64)
        .collect();
    if raw.chars().count() > 64 {
        format!("'{one}...'")
    } else {
        format!("'{one}'")
    }
}

impl ParamValue for String {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        Ok(raw.to_string())
    }
}

/// OCF booleans: yes/y/true/1/on/ja and no/n/false/0/off/nein, any case
/// (a superset of heartbeat's `ocf_is_true`, matching Pacemaker's own parser).
impl ParamValue for bool {
    const CONTENT: ContentType = ContentType::Boolean;
    fn parse_value(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "1" | "on" | "ja" => Ok(true),
            "no" | "n" | "false" | "0" | "off" | "nein" => Ok(false),
            _ => Err(format!(
                "{} is not a boolean (use true or false)",
                shown(raw)
            )),
        }
    }
}

macro_rules! integer_param {
    ($($t:ty),*) => {$(
        impl ParamValue for $t {
            const CONTENT: ContentType = ContentType::Integer;
            fn parse_value(raw: &str) -> Result<Self, String> {
                let t = raw.trim();
                // Decimal digits only (an optional minus for signed types): no "0x", no "+".
                let digits = t.strip_prefix('-').unwrap_or(t);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{} is not an integer", shown(raw)));
                }
                t.parse::<$t>().map_err(|_| {
                    format!("{} is out of range ({}..={})", shown(raw), <$t>::MIN, <$t>::MAX)
                })
            }
        }
    )*};
}
integer_param!(u8, u16, u32, u64, i32, i64);

impl<T: ParamValue> ParamValue for Option<T> {
    const CONTENT: ContentType = T::CONTENT;
    const CHOICES: &'static [&'static str] = T::CHOICES;
    const OPTIONAL: bool = true;
    fn parse_value(raw: &str) -> Result<Self, String> {
        T::parse_value(raw).map(Some)
    }
    fn when_absent() -> Option<Self> {
        Some(None)
    }
}

/// An IPv4 or IPv6 address.
impl ParamValue for std::net::IpAddr {
    const CONTENT: ContentType = ContentType::String;
    fn parse_value(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| format!("{} is not an IPv4 or IPv6 address", shown(raw)))
    }
}

/// A TCP/UDP port, 1..=65535, decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl ParamValue for Port {
    const CONTENT: ContentType = ContentType::Integer;
    fn parse_value(raw: &str) -> Result<Self, String> {
        match u16::parse_value(raw) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(format!("{} is not a valid port (1-65535)", shown(raw))),
        }
    }
}

/// Declare an agent's parameters once: generates the struct, its [`ParamSet`] impl
/// (typed parse with named errors) and the spec that meta-data and docs are written from.
#[macro_export]
macro_rules! params {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $spec:expr ),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl $crate::params::ParamSet for $name {
            const SPEC: &'static [$crate::params::ParamSpec] = &[
                $( $spec.named(stringify!($field)).typed::<$ty>() ),*
            ];
            fn from_env(env: &$crate::OcfEnv) -> ::std::result::Result<Self, $crate::OcfError> {
                let mut specs = <Self as $crate::params::ParamSet>::SPEC.iter();
                $( let $field = $crate::params::lookup::<$ty>(env, specs.next().expect("spec per field"))?; )*
                Ok($name { $( $field, )* })
            }
        }
    };
}

/// Declare a choice parameter type (published as `string` with its allowed values).
#[macro_export]
macro_rules! choice {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $( $variant:ident = $s:literal ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name { $( $variant ),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $s ),+ }
            }
        }

        impl $crate::params::ParamValue for $name {
            const CONTENT: $crate::params::ContentType = $crate::params::ContentType::String;
            const CHOICES: &'static [&'static str] = &[ $( $s ),+ ];
            fn parse_value(raw: &str) -> ::std::result::Result<Self, String> {
                let t = raw.trim();
                $( if t.eq_ignore_ascii_case($s) { return Ok($name::$variant); } )+
                Err(format!("{} is not one of: {}", $crate::params::shown(raw),
                    <Self as $crate::params::ParamValue>::CHOICES.join(", ")))
            }
        }
    };
}

/// Parse `P` from `name=value` pairs, as if they were `OCF_RESKEY_<name>` variables (for
/// agents' unit tests and tools).
pub fn from_pairs<P: ParamSet>(pairs: &[(&str, &str)]) -> Result<P, OcfError> {
    P::from_env(&OcfEnv::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
    ))
}

/// Parse `P` leniently, for a stop or monitor whose full parameter set does not parse:
/// each broken *optional* parameter falls back to its default (as if unset). `None` when
/// a required parameter is missing or broken. Agents whose stop needs more than the
/// record (e.g. an API endpoint and credentials) use this instead of giving up.
pub fn lenient<P: ParamSet>(env: &OcfEnv) -> Option<P> {
    lenient_with(env, |_| None)
}

/// As [`lenient`], but a broken parameter first takes the value `fallback` gives for it
/// (e.g. what start recorded), and only then its default.
pub fn lenient_with<P: ParamSet>(
    env: &OcfEnv,
    fallback: impl Fn(&str) -> Option<String>,
) -> Option<P> {
    let mut env = env.clone();
    let mut tried = std::collections::BTreeSet::new();
    for _ in 0..=2 * P::SPEC.len() {
        match P::from_env(&env) {
            Ok(p) => return Some(p),
            Err(e) => {
                // An error about no parameter (two that disagree, say) has no fallback.
                let spec = P::SPEC.iter().find(|s| Some(s.name) == e.param)?;
                let var = format!("OCF_RESKEY_{}", spec.name);
                match fallback(spec.name) {
                    Some(v) if tried.insert(spec.name) => env = env.with(&var, &v),
                    _ if spec.required() => return None,
                    _ => env = env.without(&var),
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
