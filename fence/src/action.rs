//! The actions of the fence-agent protocol.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    On,
    Off,
    Reboot,
    Status,
    List,
    ListStatus,
    Monitor,
    Metadata,
    Manpage,
    ValidateAll,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::On,
        Action::Off,
        Action::Reboot,
        Action::Status,
        Action::List,
        Action::ListStatus,
        Action::Monitor,
        Action::Metadata,
        Action::Manpage,
        Action::ValidateAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Reboot => "reboot",
            Action::Status => "status",
            Action::List => "list",
            Action::ListStatus => "list-status",
            Action::Monitor => "monitor",
            Action::Metadata => "metadata",
            Action::Manpage => "manpage",
            Action::ValidateAll => "validate-all",
        }
    }

    /// As fencing.py reads `--action`: any case, `meta-data` for OCF tools, and the
    /// old `enable`/`disable` names of on/off.
    pub fn parse(s: &str) -> Option<Action> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "meta-data" => return Some(Action::Metadata),
            "enable" => return Some(Action::On),
            "disable" => return Some(Action::Off),
            _ => {}
        }
        Action::ALL.iter().copied().find(|a| a.as_str() == s)
    }

    /// Actions that need a plug (the machine to act on).
    pub fn needs_plug(self) -> bool {
        matches!(
            self,
            Action::On | Action::Off | Action::Reboot | Action::Status
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Action::parse("OFF"), Some(Action::Off));
        assert_eq!(Action::parse("meta-data"), Some(Action::Metadata));
        assert_eq!(Action::parse("enable"), Some(Action::On));
        assert_eq!(Action::parse("start"), None);
        assert!(Action::Reboot.needs_plug() && !Action::List.needs_plug());
    }
}
