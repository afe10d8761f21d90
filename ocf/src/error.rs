//! Errors an agent returns. Each kind fixes an OCF status; the runner applies the policy.

use crate::status::Status;

/// The class of an agent failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 1: unspecified failure (soft: restart in place).
    Generic,
    /// 2: invalid on *this host* (hard: ban from this node).
    Args,
    /// 3: action not supported.
    Unimplemented,
    /// 4: insufficient privilege.
    Perm,
    /// 5: required software missing on this host.
    Installed,
    /// 6: parameters inherently invalid (fatal: banned cluster-wide).
    Configured,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Generic,
        ErrorKind::Args,
        ErrorKind::Unimplemented,
        ErrorKind::Perm,
        ErrorKind::Installed,
        ErrorKind::Configured,
    ];

    pub fn status(self) -> Status {
        match self {
            ErrorKind::Generic => Status::ErrGeneric,
            ErrorKind::Args => Status::ErrArgs,
            ErrorKind::Unimplemented => Status::ErrUnimplemented,
            ErrorKind::Perm => Status::ErrPerm,
            ErrorKind::Installed => Status::ErrInstalled,
            ErrorKind::Configured => Status::ErrConfigured,
        }
    }
}

/// An agent failure: a kind and a one-line, human-readable reason (shown by `crm_mon`),
/// and the parameter it is about, when it is about one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfError {
    pub kind: ErrorKind,
    pub reason: String,
    pub param: Option<&'static str>,
}

impl OcfError {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        OcfError {
            kind,
            reason: reason.into(),
            param: None,
        }
    }
    /// The same error, about parameter `name`.
    pub fn about(mut self, name: &'static str) -> Self {
        self.param = Some(name);
        self
    }
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Generic, reason)
    }
    /// Invalid on this host only (another node may do better).
    pub fn local_config(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Args, reason)
    }
    pub fn unimplemented(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unimplemented, reason)
    }
    pub fn perm(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Perm, reason)
    }
    pub fn not_installed(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Installed, reason)
    }
    /// The configuration is wrong everywhere.
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configured, reason)
    }
    /// A parameter's value is invalid.
    pub fn invalid_param(name: &'static str, why: impl std::fmt::Display) -> Self {
        Self::configured(format!("parameter {name}: {why}")).about(name)
    }
    /// A required parameter is not set.
    pub fn missing_param(name: &'static str) -> Self {
        Self::configured(format!("required parameter {name} is not set")).about(name)
    }

    pub fn status(&self) -> Status {
        self.kind.status()
    }
}

impl std::fmt::Display for OcfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for OcfError {}

/// Attach context to any error, turning it into a generic OCF failure.
pub trait ResultExt<T> {
    fn ocf_ctx(self, what: impl std::fmt::Display) -> Result<T, OcfError>;
}

impl<T, E: std::fmt::Display> ResultExt<T> for Result<T, E> {
    fn ocf_ctx(self, what: impl std::fmt::Display) -> Result<T, OcfError> {
        self.map_err(|e| OcfError::generic(format!("{what}: {e}")))
    }
}
