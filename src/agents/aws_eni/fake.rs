//! An in-process fake of [`Ec2`] for the unit tests: no network, no moto. It keeps one
//! ENI, moves it through EC2's attachment states a few describes at a time, fails calls
//! as scripted and records every call.

use super::ec2::{ApiCode, ApiError, Attachment, Ec2, Eni};
use ocf::{Deadline, OcfError};
use std::cell::RefCell;

pub const ENI: &str = "eni-0123456789abcdef0";
pub const ME: &str = "i-0000000000000000a";
pub const OTHER: &str = "i-0000000000000000b";
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// A scripted failure: `op` fails with `code` after `skip` good calls, `times` times.
struct Fail {
    op: &'static str,
    code: ApiCode,
    skip: usize,
    times: usize,
}

pub struct Fake {
    pub imds_down: bool,
    pub az: &'static str,
    pub exists: bool,
    pub eni: RefCell<Eni>,
    /// A transition in flight: after this many more describes the ENI becomes that.
    pending: RefCell<Option<(usize, Eni)>>,
    /// Describes a transition takes.
    lag: usize,
    fails: RefCell<Vec<Fail>>,
    pub calls: RefCell<Vec<String>>,
}

fn attachment(instance: &str, status: &str) -> Option<Attachment> {
    Some(Attachment {
        instance: instance.into(),
        id: format!("eni-attach-{}", &instance[2..]),
        status: status.into(),
        device_index: 1,
    })
}

impl Fake {
    /// The ENI, attached to `at` (`None`: available).
    pub fn new(at: Option<(&str, &str)>) -> Fake {
        let eni = Eni {
            status: if at.is_some() { "in-use" } else { "available" }.into(),
            attachment: at.and_then(|(i, s)| attachment(i, s)),
            mac: "02:00:00:00:00:01".into(),
            ips: vec!["10.0.1.100".into(), "10.0.1.101".into()],
            primary_ip: "10.0.1.100".into(),
            az: "us-east-1a".into(),
            subnet: "subnet-1".into(),
        };
        let f = Fake {
            imds_down: false,
            az: "us-east-1a",
            exists: true,
            eni: RefCell::new(eni),
            pending: RefCell::new(None),
            lag: 2,
            fails: RefCell::new(Vec::new()),
            calls: RefCell::new(Vec::new()),
        };
        // An attach in flight (a start that timed out) completes by itself.
        if at.is_some_and(|(_, s)| s == "attaching") {
            f.settle(|e| {
                e.attachment
                    .as_mut()
                    .map_or((), |a| a.status = "attached".into())
            });
        }
        f
    }

    pub fn fail(self, op: &'static str, code: ApiCode, skip: usize, times: usize) -> Fake {
        self.fails.borrow_mut().push(Fail {
            op,
            code,
            skip,
            times,
        });
        self
    }

    /// Start a transition: the ENI ends as `change` makes it, `lag` describes from now.
    pub fn settle(&self, change: impl FnOnce(&mut Eni)) {
        let mut end = self.eni.borrow().clone();
        change(&mut end);
        *self.pending.borrow_mut() = Some((self.lag, end));
    }

    fn call(&self, op: &'static str, what: String) -> Result<(), ApiError> {
        self.calls.borrow_mut().push(what);
        for f in self.fails.borrow_mut().iter_mut().filter(|f| f.op == op) {
            if f.skip > 0 {
                f.skip -= 1;
            } else if f.times > 0 {
                f.times -= 1;
                return Err(ApiError {
                    code: f.code,
                    error: OcfError::generic(format!("EC2 {op}: scripted {:?}", f.code)),
                });
            }
        }
        Ok(())
    }

    /// The calls made, repeated describes counted as one.
    pub fn calls(&self) -> Vec<String> {
        let mut v: Vec<String> = self.calls.borrow().clone();
        v.dedup();
        v
    }

    pub fn count(&self, what: &str) -> usize {
        self.calls.borrow().iter().filter(|c| *c == what).count()
    }
}

impl Ec2 for Fake {
    fn instance_id(&self, _: &Deadline) -> Result<String, OcfError> {
        self.calls.borrow_mut().push("instance-id".into());
        match self.imds_down {
            true => Err(OcfError::generic(
                "IMDS /latest/meta-data/instance-id: down",
            )),
            false => Ok(ME.into()),
        }
    }

    fn availability_zone(&self, _: &Deadline) -> Result<String, OcfError> {
        self.calls.borrow_mut().push("az".into());
        match self.imds_down {
            true => Err(OcfError::generic("IMDS availability-zone: down")),
            false => Ok(self.az.into()),
        }
    }

    fn describe(&self, _: &Deadline, eni: &str) -> Result<Eni, ApiError> {
        self.call("describe", "describe".into())?;
        if !self.exists || eni != ENI {
            return Err(ApiError {
                code: ApiCode::NotFound,
                error: OcfError::generic("EC2 DescribeNetworkInterfaces: not found"),
            });
        }
        let mut pending = self.pending.borrow_mut();
        if let Some((left, end)) = pending.as_mut() {
            if *left <= 1 {
                *self.eni.borrow_mut() = end.clone();
                *pending = None;
            } else {
                *left -= 1;
            }
        }
        Ok(self.eni.borrow().clone())
    }

    fn subnet_prefix(&self, _: &Deadline, subnet: &str) -> Result<u8, ApiError> {
        self.call("subnet", format!("subnet {subnet}"))?;
        Ok(24)
    }

    fn attach(
        &self,
        _: &Deadline,
        eni: &str,
        instance: &str,
        index: i32,
        dry: bool,
    ) -> Result<(), ApiError> {
        let dry_s = if dry { " dry" } else { "" };
        self.call("attach", format!("attach {eni} {instance} {index}{dry_s}"))?;
        if dry {
            return Ok(());
        }
        if self.eni.borrow().attachment.is_some() {
            return Err(ApiError {
                code: ApiCode::IncorrectState,
                error: OcfError::generic("EC2 AttachNetworkInterface: in use"),
            });
        }
        {
            let mut e = self.eni.borrow_mut();
            e.status = "in-use".into();
            e.attachment = attachment(instance, "attaching");
        }
        self.settle(|e| {
            e.attachment
                .as_mut()
                .map_or((), |a| a.status = "attached".into())
        });
        Ok(())
    }

    fn detach(&self, _: &Deadline, att: &str, force: bool, dry: bool) -> Result<(), ApiError> {
        let flags = match (force, dry) {
            (_, true) => " dry",
            (true, _) => " force",
            _ => "",
        };
        self.call("detach", format!("detach {att}{flags}"))?;
        if dry {
            return Ok(());
        }
        if self.eni.borrow().attachment.as_ref().map(|a| a.id.as_str()) != Some(att) {
            return Err(ApiError {
                code: ApiCode::NotFound,
                error: OcfError::generic("EC2 DetachNetworkInterface: no such attachment"),
            });
        }
        if let Some(a) = self.eni.borrow_mut().attachment.as_mut() {
            a.status = "detaching".into();
        }
        self.settle(|e| {
            e.attachment = None;
            e.status = "available".into();
        });
        Ok(())
    }
}
