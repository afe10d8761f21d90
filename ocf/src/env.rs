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

    /// Debug logging: `HA_debug` / `HA_DEBUG` set to anything but 0/false/off/no.
    pub fn debug(&self) -> bool {
        self.non_empty("HA_debug")
            .or_else(|| self.non_empty("HA_DEBUG"))
            .map(|v| {
                !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "0" | "false" | "off" | "no"
                )
            })
            .unwrap_or(false)
    }

    /// ocf-tester sets this to make "have binary" checks fail on its probe.
    pub fn tester_fail_have_binary(&self) -> bool {
        self.non_empty("OCF_TESTER_FAIL_HAVE_BINARY").is_some()
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
        assert!(env(&[("HA_DEBUG", "yes")]).debug());
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
    fn bad_meta_values_are_ignored() {
        let e = env(&[
            ("OCF_RESKEY_CRM_meta_interval", "soon"),
            ("OCF_RESKEY_CRM_meta_timeout", "0"),
        ]);
        assert_eq!(e.interval_ms(), 0);
        assert_eq!(e.timeout_ms(), None);
    }
}
