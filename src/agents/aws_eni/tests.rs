//! The EC2 side of start, stop and validate against the in-process fake of [`Ec2`]
//! (`fake.rs`): the calls made, and the errors' kinds and reasons.

use super::ec2::{ApiCode, Eni};
use super::fake::{Fake, ENI, MAC, ME, OTHER};
use super::{permitted, start, stop, AwsEniParams};
use ocf::{Deadline, ErrorKind, OcfError};
use std::cell::RefCell;
use std::time::{Duration, Instant};

fn params(extra: &[(&str, &str)]) -> AwsEniParams {
    let mut v = vec![("eni_id", ENI), ("region", "us-east-1")];
    v.extend_from_slice(extra);
    ocf::params::from_pairs(&v).expect("test parameters parse")
}

fn secs(n: u64) -> Deadline {
    Deadline::after(Duration::from_secs(n))
}

/// start's EC2 side: where the ENI is, then the move; the ENI as EC2 ends up describing it.
fn start_ec2(api: &Fake, p: &AwsEniParams, d: &Deadline) -> Result<(Eni, u8), OcfError> {
    let (t, eni) = start::target(api, p, d)?;
    assert_eq!((t.me.as_str(), t.mac.as_slice()), (ME, &MAC[..]));
    start::move_here(api, p, 1, d, &t.me, eni)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_eni_attached_elsewhere_is_detached_then_attached_here() {
    for (force, detach) in [
        ("false", "detach eni-attach-0000000000000000b"),
        ("true", "detach eni-attach-0000000000000000b force"),
    ] {
        let api = Fake::new(Some((OTHER, "attached")));
        let p = params(&[("force_detach", force)]);
        let (eni, prefix) = start_ec2(&api, &p, &secs(5)).expect("moved");
        assert!(eni.attached_to(ME), "{eni:?}");
        assert_eq!(prefix, 24);
        let attach = format!("attach {ENI} {ME} 1");
        assert_eq!(
            api.calls(),
            strs(&[
                "instance-id",
                "describe",
                "az",
                detach,
                "subnet subnet-1",
                "describe",
                &attach,
                "describe"
            ])
        );
        // Polled until each transition ended: the fake's lag, no more.
        assert_eq!(api.count("describe"), 1 + 2 + 2);
    }
}

#[test]
fn a_fresh_eni_is_attached_without_a_detach() {
    let api = Fake::new(None);
    let (eni, _) = start_ec2(&api, &params(&[]), &secs(5)).expect("attached");
    assert!(eni.attached_to(ME));
    let attach = format!("attach {ENI} {ME} 1");
    assert_eq!(
        api.calls(),
        strs(&[
            "instance-id",
            "describe",
            "az",
            "subnet subnet-1",
            &attach,
            "describe"
        ])
    );
}

#[test]
fn an_eni_already_attached_here_is_left_as_it_is() {
    let api = Fake::new(Some((ME, "attached")));
    let p = params(&[]);
    for _ in 0..2 {
        let (eni, prefix) = start_ec2(&api, &p, &secs(5)).expect("already here");
        assert!(eni.attached_to(ME));
        assert_eq!(prefix, 24);
    }
    let once = ["instance-id", "describe", "az", "subnet subnet-1"];
    assert_eq!(*api.calls.borrow(), strs(&[once, once].concat()));
}

#[test]
fn an_attach_in_flight_to_us_is_waited_for_not_repeated() {
    let api = Fake::new(Some((ME, "attaching")));
    let (eni, _) = start_ec2(&api, &params(&[]), &secs(5)).expect("attached");
    assert!(eni.attached_to(ME));
    assert!(
        api.calls()
            .iter()
            .all(|c| !c.starts_with("attach ") && !c.starts_with("detach ")),
        "{:?}",
        api.calls()
    );
    assert!(api.count("describe") >= 2, "waited: {:?}", api.calls());
}

#[test]
fn an_eni_in_the_wrong_state_fails_start_with_ec2s_error() {
    // EC2 refuses the attach (device index in use, ENI in an incorrect state): start
    // fails with that error (1), without waiting for an attachment that will not come.
    let api = Fake::new(None).fail("attach", ApiCode::IncorrectState, 0, 1);
    let t = Instant::now();
    let e = start_ec2(&api, &params(&[]), &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert_eq!(e.reason, "EC2 attach: scripted IncorrectState");
    assert!(api.calls().last().unwrap().starts_with("attach "));
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn an_attachment_that_vanished_before_the_detach_is_no_error() {
    let api = Fake::new(Some((OTHER, "attached"))).fail("detach", ApiCode::NotFound, 0, 1);
    // EC2 answers the detach with "no such attachment" and the ENI is free by then.
    api.settle(|e| {
        e.attachment = None;
        e.status = "available".into();
    });
    let (eni, _) = start_ec2(&api, &params(&[]), &secs(5)).expect("moved");
    assert!(eni.attached_to(ME));
    // Any other detach failure stops the start.
    let api = Fake::new(Some((OTHER, "attached"))).fail("detach", ApiCode::Unauthorized, 0, 1);
    let e = start_ec2(&api, &params(&[]), &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert!(api.calls().iter().all(|c| !c.starts_with("attach ")));
}

#[test]
fn a_throttled_describe_is_polled_again_within_the_deadline() {
    // The describes of the attach poll are throttled three times, then answered.
    let api = Fake::new(None).fail("describe", ApiCode::Throttled, 1, 3);
    let (eni, _) = start_ec2(&api, &params(&[]), &secs(5)).expect("attached");
    assert!(eni.attached_to(ME));
    assert_eq!(api.count("describe"), 1 + 3 + 2);
}

#[test]
fn a_describe_throttled_until_the_deadline_is_a_clear_timeout() {
    let api = Fake::new(None).fail("describe", ApiCode::Throttled, 1, usize::MAX);
    let t = Instant::now();
    let e = start_ec2(
        &api,
        &params(&[]),
        &Deadline::after(Duration::from_millis(1000)),
    )
    .unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert_eq!(
        e.reason,
        "attach: not done before the operation's timeout; last seen: EC2 describe: scripted Throttled"
    );
    assert!(took >= Duration::from_millis(990), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "kept to its deadline: {took:?}"
    );
    // Polled repeatedly (first after 200 ms, then at most 250 ms apart): the describe
    // before the attach, then 0, 200, 450, 700, 950 ms.
    assert!(api.count("describe") >= 5, "{:?}", api.calls());
}

#[test]
fn validate_proves_the_permissions_with_dry_runs() {
    let p = params(&[]);
    let api = Fake::new(Some((OTHER, "attached")));
    permitted(&api, &p, 3, &secs(5)).expect("all permitted");
    let attach = format!("attach {ENI} {ME} 3 dry");
    assert_eq!(
        api.calls(),
        strs(&[
            "instance-id",
            "describe",
            &attach,
            "detach eni-attach-0000000000000000b dry"
        ])
    );
    // Unattached: the detach is asked about a placeholder attachment.
    let api = Fake::new(None);
    permitted(&api, &p, 1, &secs(5)).expect("all permitted");
    assert_eq!(
        api.calls().last().unwrap(),
        "detach eni-attach-00000000 dry"
    );
}

#[test]
fn unauthorized_is_a_configuration_error_at_validate_and_a_failure_at_start() {
    let p = params(&[]);
    for (op, action) in [
        ("describe", "DescribeNetworkInterfaces"),
        ("attach", "AttachNetworkInterface"),
        ("detach", "DetachNetworkInterface"),
    ] {
        let api = Fake::new(None).fail(op, ApiCode::Unauthorized, 0, 1);
        let e = permitted(&api, &p, 1, &secs(5)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configured, "{op}");
        assert_eq!(
            e.reason,
            format!("{action} is not permitted: EC2 {op}: scripted Unauthorized")
        );
    }
    // Refused credentials are not a permission the policy lacks: 1, as any other failure.
    let api = Fake::new(None).fail("describe", ApiCode::AuthFailure, 0, 1);
    let e = permitted(&api, &p, 1, &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert_eq!(e.reason, "EC2 describe: scripted AuthFailure");
    // A missing ENI: 6, naming it.
    let mut api = Fake::new(None);
    api.exists = false;
    let e = permitted(&api, &p, 1, &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Configured);
    assert_eq!(e.reason, format!("ENI {ENI} does not exist"));
    // At start, a refused attach is EC2's error (1).
    let api = Fake::new(None).fail("attach", ApiCode::Unauthorized, 0, 1);
    let e = start_ec2(&api, &p, &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
}

#[test]
fn start_refuses_what_cannot_come_here() {
    let api = Fake::new(None);
    let e = start::target(&api, &params(&[("ip", "10.0.1.7")]), &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Configured);
    assert!(
        e.reason.starts_with("10.0.1.7 is not a private IP of"),
        "{}",
        e.reason
    );
    let (t, _) = start::target(&api, &params(&[("ip", "10.0.1.101")]), &secs(5)).unwrap();
    assert_eq!(t.ip.to_string(), "10.0.1.101");
    let mut api = Fake::new(None);
    api.az = "us-east-1b";
    let e = start::target(&api, &params(&[]), &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Configured);
    assert_eq!(
        e.reason,
        format!(
            "{ENI} is in us-east-1a but this instance ({ME}) is in us-east-1b: \
             an ENI cannot leave its availability zone"
        )
    );
    api.exists = false;
    let e = start::target(&api, &params(&[]), &secs(5)).unwrap_err();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::Configured, format!("ENI {ENI} does not exist"))
    );
    assert!(api.calls().iter().all(|c| !c.starts_with("attach ")));
}

#[test]
fn imds_down_fails_start_before_any_ec2_call() {
    let mut api = Fake::new(Some((OTHER, "attached")));
    api.imds_down = true;
    let e = start_ec2(&api, &params(&[]), &secs(5)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert_eq!(e.reason, "IMDS /latest/meta-data/instance-id: down");
    assert_eq!(api.calls(), strs(&["instance-id"]));
}

/// stop's EC2 side, with the ENI's MAC on a local interface for the first `here` looks.
fn stop_ec2(api: &Fake, here: usize, d: &Deadline) -> (Result<(), OcfError>, usize) {
    let looks = RefCell::new(0);
    let mac_here = |m: &[u8]| -> Result<bool, OcfError> {
        assert_eq!(m, MAC);
        *looks.borrow_mut() += 1;
        Ok(*looks.borrow() <= here)
    };
    let r = stop::detach_from_here(api, &params(&[]), d, &mac_here);
    (r, looks.into_inner())
}

#[test]
fn stop_detaches_only_from_this_instance() {
    let api = Fake::new(Some((ME, "attached")));
    let (r, looks) = stop_ec2(&api, 3, &secs(5));
    r.expect("detached");
    assert_eq!(
        api.calls(),
        strs(&[
            "describe",
            "instance-id",
            "detach eni-attach-0000000000000000a",
            "describe"
        ])
    );
    assert!(api.eni.borrow().attachment.is_none());
    assert!(looks > 3, "waited for the interface to go: {looks}");
    // Attached elsewhere: left alone.
    let api = Fake::new(Some((OTHER, "attached")));
    stop_ec2(&api, 0, &secs(5)).0.expect("not ours");
    assert_eq!(api.calls(), strs(&["describe", "instance-id"]));
    // Gone from EC2: verified not here.
    let mut api = Fake::new(Some((ME, "attached")));
    api.exists = false;
    stop_ec2(&api, 1, &secs(5)).0.expect("no such ENI");
    assert_eq!(api.calls(), strs(&["describe"]));
}

#[test]
fn stop_with_imds_down_decides_from_the_local_interface() {
    let mut api = Fake::new(Some((ME, "attached")));
    api.imds_down = true;
    stop_ec2(&api, 2, &secs(5)).0.expect("detached");
    assert!(api
        .calls()
        .contains(&"detach eni-attach-0000000000000000a".to_string()));
    let mut api = Fake::new(Some((OTHER, "attached")));
    api.imds_down = true;
    stop_ec2(&api, 0, &secs(5)).0.expect("not here: left alone");
    assert!(api.calls().iter().all(|c| !c.starts_with("detach ")));
}

#[test]
fn stop_lets_an_attach_in_flight_finish_then_detaches() {
    let api = Fake::new(Some((ME, "attaching")));
    stop_ec2(&api, 1, &secs(5)).0.expect("detached");
    let calls = api.calls();
    let detach = calls.iter().position(|c| c.starts_with("detach ")).unwrap();
    assert!(api.count("describe") >= 1 + 1 + 2, "{calls:?}");
    assert_eq!(calls[detach - 1], "describe", "waited before the detach");
    assert!(api.eni.borrow().attachment.is_none());
}

#[test]
fn stop_fails_when_the_interface_stays_after_the_detach() {
    let api = Fake::new(Some((ME, "attached")));
    let (r, _) = stop_ec2(
        &api,
        usize::MAX,
        &Deadline::after(Duration::from_millis(300)),
    );
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Generic);
    assert_eq!(
        e.reason,
        format!("{ENI} is detached in EC2 but its interface is still here")
    );
}
