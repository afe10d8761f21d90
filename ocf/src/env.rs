//! The environment Pacemaker (or ocf-tester, crm_resource, a human) gives an agent.
//!
//! A snapshot, so it can be built from a map in tests. Everything has a default: an
//! agent run with no `OCF_*` variable at all still behaves correctly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Default `OCF_ROOT`.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Default `OCF_EXIT_REASON_PREFIX`, the literal Pacemaker uses.
pub const DEFAULT_EXIT_REASON_PREFIX: &str = "ocf-exit-reason:";

#[derive(Clone, Debug, Default)]
pub struct OcfEnv {
    vars: BTreeMap<String, String>,
    /// Variables whose value was not valid UTF-8: kept (lossily converted) so that a
    /// parameter Pacemaker passed is never silently treated as unset.
    undecodable: BTreeSet<String>,
}

impl OcfEnv {
    /// Snapshot of this process's environment. A variable whose *name* is not UTF-8
    /// cannot be one of ours and is skipped; a value that is not UTF-8 is kept lossily
    /// and marked (see [`OcfEnv::undecodable`]).
    pub fn from_process() -> Self {
        Self::from_os_pairs(std::env::vars_os())
    }

    /// As [`OcfEnv::from_process`], from explicit OS strings (for tests).
    pub fn from_os_pairs(
        pairs: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Self {
        let mut env = OcfEnv::default();
        for (k, v) in pairs {
            let Ok(k) = k.into_string() else { continue };
            match v.into_string() {
                Ok(v) => {
                    env.vars.insert(k, v);
                }
                Err(v) => {
                    env.vars.insert(k.clone(), v.to_string_lossy().into_owned());
                    env.undecodable.insert(k);
                }
            }
        }
        env
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        OcfEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            undecodable: BTreeSet::new(),
        }
    }

    /// A copy with `name` set to `value`.
    pub fn with(&self, name: &str, value: &str) -> OcfEnv {
        let mut e = self.clone();
        e.vars.insert(name.to_string(), value.to_string());
        e.undecodable.remove(name);
        e
    }

    /// A copy without the variable `name`.
    pub fn without(&self, name: &str) -> OcfEnv {
        let mut e = self.clone();
        e.vars.remove(name);
        e.undecodable.remove(name);
        e
    }

    /// The variable was set to a value that is not valid UTF-8 (its [`OcfEnv::var`] is a
    /// lossy copy). Parameter parsing refuses such a value, naming the parameter.
    pub fn undecodable(&self, name: &str) -> bool {
        self.undecodable.contains(name)
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable, sorted by name (for a trace's header).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `HA_DEBUGLOG`: where ocf-shellfuncs appends every log line (debug ones included
    /// when `HA_debug` is on), besides syslog and `HA_LOGFILE`.
    pub fn debuglog(&self) -> Option<PathBuf> {
        self.non_empty("HA_DEBUGLOG").map(PathBuf::from)
    }

    fn non_empty(&self, name: &str) -> Option<&str> {
        self.var(name).filter(|v| !v.is_empty())
    }

    pub fn ocf_root(&self) -> PathBuf {
        PathBuf::from(self.non_empty("OCF_ROOT").unwrap_or(DEFAULT_OCF_ROOT))
    }

    /// `OCF_RESOURCE_INSTANCE`, defaulting to the agent's name (as ocf-tester's first steps need).
    pub fn instance<'a>(&'a self, agent: &'a str) -> &'a str {
        self.non_empty("OCF_RESOURCE_INSTANCE").unwrap_or(agent)
    }

    pub fn resource_type(&self) -> Option<&str> {
        self.non_empty("OCF_RESOURCE_TYPE")
    }

    /// An instance parameter (`OCF_RESKEY_<name>`). An empty value counts as unset.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.non_empty(&format!("OCF_RESKEY_{name}"))
    }

    /// A meta attribute in milliseconds (`OCF_RESKEY_CRM_meta_<name>`), if set and numeric.
    pub fn meta_ms(&self, name: &str) -> Option<u64> {
        self.non_empty(&format!("OCF_RESKEY_CRM_meta_{name}"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// `OCF_RESKEY_CRM_meta_interval` (ms); absent means 0.
    pub fn interval_ms(&self) -> u64 {
        self.meta_ms("interval").unwrap_or(0)
    }

    /// `OCF_RESKEY_CRM_meta_timeout` (ms), if Pacemaker gave one.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.meta_ms("timeout").filter(|&t| t > 0)
    }

    /// `OCF_CHECK_LEVEL` (Pacemaker >= 2.0.5) or `OCF_RESKEY_OCF_CHECK_LEVEL` (older); default 0.
    pub fn check_level(&self) -> u32 {
        self.non_empty("OCF_CHECK_LEVEL")
            .or_else(|| self.non_empty("OCF_RESKEY_OCF_CHECK_LEVEL"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn exit_reason_prefix(&self) -> &str {
        self.non_empty("OCF_EXIT_REASON_PREFIX")
            .unwrap_or(DEFAULT_EXIT_REASON_PREFIX)
    }

    /// `HA_LOGFILE` (or `PCMK_LOGFILE`), unless it names nothing.
    pub fn logfile(&self) -> Option<PathBuf> {
        self.non_empty("HA_LOGFILE")
            .or_else(|| self.non_empty("PCMK_LOGFILE"))
            .filter(|v| !matches!(*v, "none" | "/dev/null"))
            .map(PathBuf::from)
    }

    /// `HA_LOGFACILITY` (or `PCMK_LOGFACILITY`), unless `none`.
    pub fn log_facility(&self) -> Option<&str> {
        self.non_empty("HA_LOGFACILITY")
            .or_else(|| self.non_empty("PCMK_LOGFACILITY"))
            .filter(|v| !matches!(*v, "none" | "/dev/null"))
    }

    /// Debug logging, as ocf-shellfuncs' `ha_debug` decides: `HA_debug` set to anything
    /// but `0` (`HA_DEBUG` is read too, the same way).
    pub fn debug(&self) -> bool {
        self.non_empty("HA_debug")
            .or_else(|| self.non_empty("HA_DEBUG"))
            .is_some_and(|v| v != "0")
    }

    /// A meta attribute as Pacemaker passes it (`OCF_RESKEY_CRM_meta_<name>`, with the
    /// attribute's dashes as underscores: `meta("clone-max")` reads `CRM_meta_clone_max`).
    /// An empty value counts as unset.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.non_empty(&format!("OCF_RESKEY_CRM_meta_{}", name.replace('-', "_")))
    }

    /// A boolean meta attribute, read as Pacemaker reads booleans (`true`/`on`/`yes`/`y`/`1`,
    /// `false`/`off`/`no`/`n`/`0`, any case); `None` when unset or neither.
    pub fn meta_bool(&self, name: &str) -> Option<bool> {
        self.meta(name).and_then(pacemaker_bool)
    }

    /// A numeric meta attribute; `None` when unset or not a non-negative integer.
    pub fn meta_u32(&self, name: &str) -> Option<u32> {
        self.meta(name).and_then(|v| v.trim().parse().ok())
    }

    /// Run as a clone instance (`clone-max` > 0), as `ocf_is_clone` decides.
    pub fn is_clone(&self) -> bool {
        self.clone_max().is_some_and(|m| m > 0)
    }

    /// `clone-max`, when the resource is cloned.
    pub fn clone_max(&self) -> Option<u32> {
        self.meta_u32("clone-max")
    }

    /// This instance's clone number (`CRM_meta_clone`), when Pacemaker gave one. Set but
    /// not a number is an error (the caller decides what it means).
    pub fn clone_number(&self) -> Result<Option<u32>, String> {
        match self.meta("clone") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                format!(
                    "CRM_meta_clone '{}' is not a clone number",
                    v.escape_debug()
                )
            }),
        }
    }

    /// `globally-unique=true` (each clone instance is a different resource).
    pub fn globally_unique(&self) -> bool {
        self.meta_bool("globally-unique").unwrap_or(false)
    }

    /// A promotable clone, as `ocf_is_ms` decides: `promotable` is true, or `promoted-max`
    /// (formerly `master-max`) is above 0.
    pub fn is_promotable(&self) -> bool {
        self.meta_bool("promotable").unwrap_or(false)
            || ["promoted-max", "master-max"]
                .iter()
                .any(|m| self.meta_u32(m).is_some_and(|n| n > 0))
    }

    /// `notify=true`: the clone asked for notifications.
    pub fn notify_enabled(&self) -> bool {
        self.meta_bool("notify").unwrap_or(false)
    }

    /// For a `notify` action: `pre` or `post` (`CRM_meta_notify_type`).
    pub fn notify_type(&self) -> Option<NotifyType> {
        match self.meta("notify_type")? {
            "pre" => Some(NotifyType::Pre),
            "post" => Some(NotifyType::Post),
            _ => None,
        }
    }

    /// For a `notify` action: the operation it is about (`start`, `stop`, `promote`,
    /// `demote`; `CRM_meta_notify_operation`).
    pub fn notify_operation(&self) -> Option<&str> {
        self.meta("notify_operation")
    }

    /// One of the `notify_*` lists (`start_uname`, `active_resource`, `promoted_uname`...),
    /// split on whitespace; empty when unset.
    pub fn notify_list(&self, name: &str) -> Vec<&str> {
        self.meta(&format!("notify_{name}"))
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// ocf-tester sets this to make "have binary" checks fail on its probe.
    pub fn tester_fail_have_binary(&self) -> bool {
        self.non_empty("OCF_TESTER_FAIL_HAVE_BINARY").is_some()
    }
}

/// Which half of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyType {
    Pre,
    Post,
}

/// A boolean as Pacemaker's `crm_str_to_boolean` reads it.
pub fn pacemaker_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(p: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_pairs(p.iter().copied())
    }

    #[test]
    fn defaults_with_nothing_set() {
        let e = env(&[]);
        assert_eq!(e.ocf_root(), PathBuf::from("/usr/lib/ocf"));
        assert_eq!(e.instance("azure-lb"), "azure-lb");
        assert_eq!(e.interval_ms(), 0);
        assert_eq!(e.timeout_ms(), None);
        assert_eq!(e.check_level(), 0);
        assert_eq!(e.exit_reason_prefix(), "ocf-exit-reason:");
        assert_eq!(e.logfile(), None);
        assert_eq!(e.log_facility(), None);
        assert!(!e.debug());
        assert_eq!(e.param("port"), None);
    }

    #[test]
    fn pacemaker_values() {
        let e = env(&[
            ("OCF_ROOT", "/opt/ocf"),
            ("OCF_RESOURCE_INSTANCE", "lb:1"),
            ("OCF_RESKEY_port", "61000"),
            ("OCF_RESKEY_empty", ""),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_EXIT_REASON_PREFIX", "why:"),
            ("HA_LOGFILE", "/var/log/pacemaker/pacemaker.log"),
            ("HA_LOGFACILITY", "daemon"),
            ("HA_debug", "1"),
        ]);
        assert_eq!(e.ocf_root(), PathBuf::from("/opt/ocf"));
        assert_eq!(e.instance("azure-lb"), "lb:1");
        assert_eq!(e.param("port"), Some("61000"));
        assert_eq!(e.param("empty"), None);
        assert_eq!(e.interval_ms(), 10000);
        assert_eq!(e.timeout_ms(), Some(20000));
        assert_eq!(e.exit_reason_prefix(), "why:");
        assert_eq!(
            e.logfile(),
            Some(PathBuf::from("/var/log/pacemaker/pacemaker.log"))
        );
        assert_eq!(e.log_facility(), Some("daemon"));
        assert!(e.debug());
    }

    #[test]
    fn check_level_both_spellings() {
        assert_eq!(env(&[("OCF_CHECK_LEVEL", "10")]).check_level(), 10);
        assert_eq!(
            env(&[("OCF_RESKEY_OCF_CHECK_LEVEL", "20")]).check_level(),
            20
        );
        // The unprefixed (current) spelling wins.
        assert_eq!(
            env(&[
                ("OCF_CHECK_LEVEL", "10"),
                ("OCF_RESKEY_OCF_CHECK_LEVEL", "20")
            ])
            .check_level(),
            10
        );
        assert_eq!(env(&[("OCF_CHECK_LEVEL", "deep")]).check_level(), 0);
    }

    #[test]
    fn log_targets_none_mean_off() {
        let e = env(&[("HA_LOGFACILITY", "none"), ("HA_LOGFILE", "/dev/null")]);
        assert_eq!(e.log_facility(), None);
        assert_eq!(e.logfile(), None);
        assert!(!env(&[("HA_debug", "0")]).debug());
        assert!(!env(&[("HA_debug", "")]).debug());
        assert!(env(&[("HA_DEBUG", "yes")]).debug());
        // ha_debug: anything but 0 is on, "false" included.
        assert!(env(&[("HA_debug", "false")]).debug());
        assert_eq!(
            env(&[("PCMK_LOGFACILITY", "local0")]).log_facility(),
            Some("local0")
        );
    }

    #[test]
    fn non_utf8_values_are_kept_and_marked() {
        use std::os::unix::ffi::OsStringExt;
        let os = |s: &[u8]| std::ffi::OsString::from_vec(s.to_vec());
        let e = OcfEnv::from_os_pairs([
            (os(b"OCF_RESKEY_cidr_netmask"), os(b"\xff\xfe\x01")),
            (os(b"OCF_RESKEY_ip"), os(b"192.0.2.1")),
            (os(b"\xffbadname"), os(b"x")),
        ]);
        assert!(e.undecodable("OCF_RESKEY_cidr_netmask"));
        assert!(
            e.param("cidr_netmask").is_some(),
            "kept, not treated as unset"
        );
        assert!(!e.undecodable("OCF_RESKEY_ip"));
        assert_eq!(e.param("ip"), Some("192.0.2.1"));
        assert!(!e
            .with("OCF_RESKEY_cidr_netmask", "24")
            .undecodable("OCF_RESKEY_cidr_netmask"));
        assert!(!e
            .without("OCF_RESKEY_cidr_netmask")
            .undecodable("OCF_RESKEY_cidr_netmask"));
    }

    #[test]
    fn meta_attributes_as_pacemaker_passes_them() {
        let none = env(&[]);
        assert!(!none.is_clone() && !none.globally_unique() && !none.is_promotable());
        assert_eq!(none.clone_number(), Ok(None));
        assert!(!none.notify_enabled());
        assert!(none.notify_list("start_uname").is_empty());
        let e = env(&[
            ("OCF_RESKEY_CRM_meta_clone_max", "3"),
            ("OCF_RESKEY_CRM_meta_clone", "2"),
            ("OCF_RESKEY_CRM_meta_globally_unique", "True"),
            ("OCF_RESKEY_CRM_meta_notify", "yes"),
            ("OCF_RESKEY_CRM_meta_notify_type", "pre"),
            ("OCF_RESKEY_CRM_meta_notify_operation", "promote"),
            ("OCF_RESKEY_CRM_meta_notify_promote_uname", " node1  node2 "),
            ("OCF_RESKEY_CRM_meta_target_role", "Started"),
        ]);
        assert!(e.is_clone());
        assert_eq!(e.clone_max(), Some(3));
        assert_eq!(e.clone_number(), Ok(Some(2)));
        assert!(e.globally_unique());
        assert!(!e.is_promotable());
        assert!(e.notify_enabled());
        assert_eq!(e.notify_type(), Some(NotifyType::Pre));
        assert_eq!(e.notify_operation(), Some("promote"));
        assert_eq!(e.notify_list("promote_uname"), ["node1", "node2"]);
        assert_eq!(e.meta("target-role"), Some("Started"));
        assert_eq!(e.meta_bool("target-role"), None);
        assert!(env(&[("OCF_RESKEY_CRM_meta_clone", "x")])
            .clone_number()
            .is_err());
        assert!(!env(&[("OCF_RESKEY_CRM_meta_clone_max", "0")]).is_clone());
    }

    #[test]
    fn promotable_as_ocf_is_ms_decides() {
        for (vars, want) in [
            (&[("OCF_RESKEY_CRM_meta_promotable", "true")][..], true),
            (&[("OCF_RESKEY_CRM_meta_promotable", "false")][..], false),
            (&[("OCF_RESKEY_CRM_meta_master_max", "1")][..], true),
            (&[("OCF_RESKEY_CRM_meta_master_max", "0")][..], false),
            (&[("OCF_RESKEY_CRM_meta_promoted_max", "1")][..], true),
            (&[("OCF_RESKEY_CRM_meta_master_max", "many")][..], false),
            (
                &[
                    ("OCF_RESKEY_CRM_meta_promotable", "false"),
                    ("OCF_RESKEY_CRM_meta_master_max", "2"),
                ][..],
                true,
            ),
        ] {
            assert_eq!(env(vars).is_promotable(), want, "{vars:?}");
        }
    }

    #[test]
    fn bad_meta_values_are_ignored() {
        let e = env(&[
            ("OCF_RESKEY_CRM_meta_interval", "soon"),
            ("OCF_RESKEY_CRM_meta_timeout", "0"),
        ]);
        assert_eq!(e.interval_ms(), 0);
        assert_eq!(e.timeout_ms(), None);
    }
}
