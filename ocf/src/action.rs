//! OCF actions (argv[1]).

use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    MetaData,
    ValidateAll,
    Reload,
    Promote,
    Demote,
    Notify,
    MigrateTo,
    MigrateFrom,
    /// `usage` / `help`: print usage, succeed.
    Usage,
    /// `methods`: list supported actions (heartbeat DTD), succeed.
    Methods,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::Reload => "reload",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Notify => "notify",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::Usage => "usage",
            Action::Methods => "methods",
        }
    }

    /// Actions every agent answers without advertising them.
    pub fn is_informational(self) -> bool {
        matches!(self, Action::MetaData | Action::Usage | Action::Methods)
    }
}

impl FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "meta-data" | "meta_data" => Action::MetaData,
            "validate-all" => Action::ValidateAll,
            "reload" => Action::Reload,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "notify" => Action::Notify,
            "migrate_to" => Action::MigrateTo,
            "migrate_from" => Action::MigrateFrom,
            "usage" | "help" => Action::Usage,
            "methods" => Action::Methods,
            _ => return Err(()),
        })
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for a in [
            Action::Start,
            Action::Stop,
            Action::Monitor,
            Action::MetaData,
            Action::ValidateAll,
            Action::Reload,
            Action::Promote,
            Action::Demote,
            Action::Notify,
            Action::MigrateTo,
            Action::MigrateFrom,
            Action::Usage,
            Action::Methods,
        ] {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!("reload-agent".parse::<Action>().is_err());
        assert!("START".parse::<Action>().is_err());
        assert!("".parse::<Action>().is_err());
    }
}
