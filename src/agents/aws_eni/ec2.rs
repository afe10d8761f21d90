//! What aws-eni asks of EC2 and of the instance metadata service, behind one trait. The
//! agent (start, stop, monitor, validate) is written against [`Ec2`]; [`super::sdk::Api`]
//! is the real one (aws-sdk-ec2 and IMDSv2), the unit tests use an in-process fake.
//!
//! Errors carry EC2's error code, classified once here ([`ApiCode::of`]), so the agent
//! decides on the code and never on the text of a reason.

use ocf::{Deadline, OcfError};
use std::time::Duration;

/// An ENI's attachment, as EC2 describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub instance: String,
    pub id: String,
    /// `attaching`, `attached`, `detaching`, `detached`.
    pub status: String,
    pub device_index: i32,
}

/// What EC2 says about the ENI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eni {
    /// `available`, `in-use`, …
    pub status: String,
    pub attachment: Option<Attachment>,
    pub mac: String,
    pub ips: Vec<String>,
    pub primary_ip: String,
    pub az: String,
    pub subnet: String,
}

impl Eni {
    pub fn attached_to(&self, instance: &str) -> bool {
        self.attachment
            .as_ref()
            .is_some_and(|a| a.instance == instance && a.status == "attached")
    }

    /// Attached (or attaching, or detaching) to another instance than `me`.
    pub fn elsewhere(&self, me: &str) -> Option<&Attachment> {
        self.attachment.as_ref().filter(|a| a.instance != me)
    }
}

/// What an EC2 error means to the agent, from its error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCode {
    /// `UnauthorizedOperation`: the credentials work, the IAM policy does not allow it.
    Unauthorized,
    /// `AuthFailure`: the credentials themselves were refused.
    AuthFailure,
    /// The ENI or the attachment does not exist (or its id is malformed).
    NotFound,
    /// `RequestLimitExceeded` and friends (the SDK already retried).
    Throttled,
    /// The ENI, attachment or device index is in a state that does not allow the call.
    IncorrectState,
    /// Any other code EC2 answered with.
    Other,
    /// No answer from EC2: the client could not be set up (region, credentials), the
    /// endpoint was not reached, or the operation's deadline passed.
    NoAnswer,
}

impl ApiCode {
    pub fn of(code: &str) -> ApiCode {
        match code {
            "UnauthorizedOperation" => ApiCode::Unauthorized,
            "AuthFailure" => ApiCode::AuthFailure,
            "InvalidNetworkInterfaceID.NotFound"
            | "InvalidNetworkInterfaceID.Malformed"
            | "InvalidAttachmentID.NotFound" => ApiCode::NotFound,
            "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => ApiCode::Throttled,
            "IncorrectState" | "InvalidNetworkInterface.InUse" | "IncorrectInstanceState" => {
                ApiCode::IncorrectState
            }
            _ => ApiCode::Other,
        }
    }
}

/// A failed EC2 call: what it means ([`ApiCode`]) and the error the agent reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ApiCode,
    pub error: OcfError,
}

impl From<ApiError> for OcfError {
    fn from(e: ApiError) -> OcfError {
        e.error
    }
}

/// Anything that went wrong before EC2 could answer.
impl From<OcfError> for ApiError {
    fn from(error: OcfError) -> ApiError {
        ApiError {
            code: ApiCode::NoAnswer,
            error,
        }
    }
}

/// The operations aws-eni needs. Each is bounded by the deadline it is given.
pub trait Ec2 {
    /// This instance's id, from IMDS.
    fn instance_id(&self, d: &Deadline) -> Result<String, OcfError>;
    /// This instance's availability zone, from IMDS.
    fn availability_zone(&self, d: &Deadline) -> Result<String, OcfError>;
    /// DescribeNetworkInterfaces of one ENI; [`ApiCode::NotFound`] when EC2 has none.
    fn describe(&self, d: &Deadline, eni: &str) -> Result<Eni, ApiError>;
    /// The prefix length of the subnet's IPv4 CIDR (DescribeSubnets).
    fn subnet_prefix(&self, d: &Deadline, subnet: &str) -> Result<u8, ApiError>;
    /// AttachNetworkInterface; with `dry_run`, Ok means the call would be permitted.
    fn attach(
        &self,
        d: &Deadline,
        eni: &str,
        instance: &str,
        device_index: i32,
        dry_run: bool,
    ) -> Result<(), ApiError>;
    /// DetachNetworkInterface; with `dry_run`, Ok means the call would be permitted.
    fn detach(
        &self,
        d: &Deadline,
        attachment: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<(), ApiError>;
}

/// The ENI, with "it does not exist" as a configuration error (6) naming it.
pub fn describe(api: &dyn Ec2, d: &Deadline, eni: &str) -> Result<Eni, ApiError> {
    api.describe(d, eni).map_err(|e| match e.code {
        ApiCode::NotFound => ApiError {
            code: ApiCode::NotFound,
            error: OcfError::configured(format!("ENI {eni} does not exist")),
        },
        _ => e,
    })
}

/// Detach, where an attachment that is already gone is success.
pub fn detach(api: &dyn Ec2, d: &Deadline, attachment: &str, force: bool) -> Result<(), OcfError> {
    match api.detach(d, attachment, force, false) {
        Err(e) if e.code != ApiCode::NotFound => Err(e.error),
        _ => Ok(()),
    }
}

/// The longest wait between two describes while an attachment changes state: a move
/// then ends at most this long after EC2 finished each transition.
/// EC2 polls: the first after 200 ms, then doubling, at most every 250 ms.
pub const POLL_FIRST: Duration = Duration::from_millis(200);
pub const POLL_MAX: Duration = Duration::from_millis(250);

/// Describe the ENI until `done` holds, within `d` (waits up to [`POLL_MAX`]). A failed
/// describe (the SDK already retried a throttled one) keeps the poll going until the
/// deadline, which then reports the last thing seen.
pub fn wait_for(
    api: &dyn Ec2,
    d: &Deadline,
    eni: &str,
    what: &str,
    done: impl Fn(&Eni) -> bool,
) -> Result<Eni, OcfError> {
    let mut last = String::from("nothing yet");
    let found = d.poll_from(POLL_FIRST, POLL_MAX, || {
        if d.expired() {
            return None;
        }
        match api.describe(d, eni) {
            Ok(e) if done(&e) => Some(e),
            Ok(e) => {
                last = format!(
                    "still {} ({:?})",
                    e.status,
                    e.attachment.as_ref().map(|a| &a.status)
                );
                None
            }
            Err(e) => {
                last = e.error.reason;
                None
            }
        }
    });
    found.ok_or_else(|| {
        OcfError::generic(format!(
            "{what}: not done before the operation's timeout; last seen: {last}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_name() {
        assert_eq!(ApiCode::of("UnauthorizedOperation"), ApiCode::Unauthorized);
        assert_eq!(ApiCode::of("AuthFailure"), ApiCode::AuthFailure);
        assert_eq!(
            ApiCode::of("InvalidNetworkInterfaceID.NotFound"),
            ApiCode::NotFound
        );
        assert_eq!(
            ApiCode::of("InvalidNetworkInterfaceID.Malformed"),
            ApiCode::NotFound
        );
        assert_eq!(
            ApiCode::of("InvalidAttachmentID.NotFound"),
            ApiCode::NotFound
        );
        assert_eq!(ApiCode::of("RequestLimitExceeded"), ApiCode::Throttled);
        assert_eq!(ApiCode::of("IncorrectState"), ApiCode::IncorrectState);
        // Close is not equal: a code is matched whole.
        assert_eq!(ApiCode::of("UnauthorizedOperationX"), ApiCode::Other);
        assert_eq!(ApiCode::of("unauthorizedoperation"), ApiCode::Other);
        assert_eq!(ApiCode::of(""), ApiCode::Other);
    }
}
