//! aws-eni against the emulated EC2 of `common::aws` (moto + `tests/aws/ec2sim.py`), two
//! simulated instances in two network namespaces; the agent's OS side runs against a
//! real kernel. Nothing leaves the machine.
#![cfg(feature = "aws")]

mod common;

use common::aws::{Lab, SECRET};
use common::Env;
use std::time::{Duration, Instant};

#[test]
fn moves_a_to_b_and_back_and_never_detaches_from_the_holder() {
    let lab = Lab::new("move", 2.0, 2.0);
    let (a, b) = (lab.env(0), lab.env(1));
    assert_eq!(lab.run(0, &a, "monitor").code, 7, "probe A");
    assert_eq!(lab.run(1, &b, "monitor").code, 7, "probe B");

    let first = lab.ok(0, &a, "start");
    assert_eq!(lab.here(0), (true, true), "interface and address on A");
    lab.ok(0, &a, "monitor");
    lab.ok(0, &a.clone().var("OCF_CHECK_LEVEL", "10"), "monitor");
    let again = lab.ok(0, &a, "start");
    assert!(
        again < first,
        "second start is a no-op ({again:?} vs {first:?})"
    );

    // Stop on the node that does not hold it: must not touch it.
    lab.ok(1, &b, "stop");
    assert_eq!(lab.here(0), (true, true), "B's stop left A's ENI alone");
    lab.ok(0, &a, "monitor");

    // Move to B: detach from A (2 s), attach to B (2 s), interface and address on B.
    let mv = lab.ok(1, &b, "start");
    assert_eq!(lab.here(1), (true, true));
    assert!(!lab.here(0).0, "gone from A");
    assert_eq!(lab.run(0, &a, "monitor").code, 7);
    lab.ok(1, &b, "monitor");
    eprintln!("move A->B took {mv:?} with 2 s + 2 s transitions");
    assert!(
        mv < Duration::from_secs(4) + Duration::from_millis(1500),
        "{mv:?}"
    );

    // A's stop (after the move) must not detach it from B.
    lab.ok(0, &a, "stop");
    assert_eq!(lab.here(1), (true, true));

    // And back.
    lab.ok(0, &a, "start");
    assert_eq!(lab.here(0), (true, true));
    assert!(!lab.here(1).0);
    lab.ok(0, &a, "stop");
    assert!(!lab.here(0).0, "stop detached it from A");
    assert_eq!(lab.run(0, &a, "monitor").code, 7);
    lab.ok(0, &a, "stop");
    lab.ok(1, &b, "stop");
    assert!(!lab.log_text().contains(SECRET), "secret in the log file");
    assert!(
        lab.log_text().contains("aws-eni(eni)"),
        "the log file was written"
    );
}

#[test]
fn throttling_and_server_errors_are_retried_within_the_deadline() {
    let lab = Lab::new("thr", 0.5, 0.5);
    let a = lab.env(0);
    lab.ctl("throttle=2");
    lab.ok(0, &a, "start");
    assert_eq!(lab.here(0), (true, true));
    assert_eq!(
        lab.calls().matches(", 503]").count(),
        2,
        "two throttled calls, retried"
    );
    lab.ctl("fail5xx=2");
    lab.ok(0, &a, "stop");
    assert!(!lab.here(0).0);
    assert_eq!(
        lab.calls().matches(", 500]").count(),
        2,
        "two 5xx answers, retried"
    );
}

#[test]
fn an_exhausted_deadline_is_a_clear_error_and_stop_cleans_up() {
    let lab = Lab::new("dl", 8.0, 0.5);
    let short = lab.env(0).var("OCF_RESKEY_CRM_meta_timeout", "4000");
    let t0 = Instant::now();
    let r = lab.run(0, &short, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("timeout"), "{}", r.stderr);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "start kept to its 4 s"
    );
    // The attach is still in flight; stop (with time) lets it finish, then detaches.
    let r = lab.run(0, &lab.env(0), "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!lab.here(0).0, "nothing left attached to A");
}

#[test]
fn imds_down_probe_is_7_and_stop_decides_from_the_local_interface() {
    let lab = Lab::new("imds", 0.5, 0.5);
    let a = lab.env(0).param("region", "us-east-1");
    let b = lab.env(1).param("region", "us-east-1");
    lab.ok(0, &a, "start");
    for i in &lab.instances {
        lab.ctl(&format!("imds={i}:down"));
    }
    assert_eq!(lab.run(1, &b, "monitor").code, 7, "probe needs no IMDS");
    lab.ok(0, &a, "monitor");
    // B: the ENI's MAC is not here, so B's stop succeeds without IMDS.
    lab.ok(1, &b, "stop");
    // A holds it: the stop proves it by the local MAC and detaches it without IMDS.
    lab.ok(0, &a, "stop");
    assert!(!lab.here(0).0);
    // A refused token is an error, not an empty token.
    for i in &lab.instances {
        lab.ctl(&format!("imds={i}:refuse-token"));
    }
    let r = lab.run(0, &lab.env(0), "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("IMDS"), "{}", r.stderr);
}

#[test]
fn wrong_credentials_and_missing_permissions_are_reported() {
    let lab = Lab::new("iam", 0.5, 0.5);
    lab.ctl("badkey=AKIDRUSTHATEST");
    let r = lab.run(0, &lab.env(0), "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("AuthFailure"), "{}", r.stderr);
    lab.ctl("badkey=");
    lab.ctl("deny=AttachNetworkInterface");
    let deep = lab.env(0).var("OCF_CHECK_LEVEL", "10");
    let r = lab.run(0, &deep, "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.reason()
            .unwrap()
            .contains("AttachNetworkInterface is not permitted"),
        "{}",
        r.stderr
    );
    lab.ctl("deny=DescribeNetworkInterfaces");
    let r = lab.run(0, &deep, "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.reason()
            .unwrap()
            .contains("DescribeNetworkInterfaces is not permitted"),
        "{}",
        r.stderr
    );
    lab.ctl("deny=");
    lab.ok(0, &deep, "validate-all");
    assert!(
        lab.calls()
            .contains("\"AttachNetworkInterface\", \"AKIDRUSTHATEST\", true, 412"),
        "a DryRun call answered DryRunOperation: {}",
        lab.calls()
    );
    assert!(!lab.log_text().contains(SECRET));
}

#[test]
fn an_eni_in_another_availability_zone_is_refused_with_6() {
    let lab = Lab::new("az", 0.5, 0.5);
    let other = lab.env(0).param("eni_id", &lab.eni_other_az);
    let r = lab.run(0, &other, "start");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("availability zone"),
        "{}",
        r.stderr
    );
    let missing = lab.env(0).param("eni_id", "eni-00000000000000000");
    assert_eq!(lab.run(0, &missing, "start").code, 6);
    assert_eq!(lab.run(0, &missing, "stop").code, 0);
}

#[test]
fn a_device_index_already_in_use_fails_start_and_a_second_index_works() {
    let lab = Lab::new("idx", 0.3, 0.3);
    let first = lab.env(0);
    lab.ok(0, &first, "start");
    let second = Env::pacemaker("eni2", lab.states[0].path())
        .var("OCF_RESKEY_CRM_meta_timeout", "30000")
        .param("eni_id", &lab.eni_second);
    let second = lab
        .params()
        .into_iter()
        .filter(|(k, _)| k != "eni_id")
        .fold(second, |e, (k, v)| e.param(&k, &v));
    let r = lab.run(0, &second, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("device index"), "{}", r.stderr);
    lab.ok(0, &second, "stop");
    let second = second.param("device_index", "2");
    lab.ok(0, &second, "start");
    lab.ok(0, &second, "monitor");
    lab.ok(0, &second, "stop");
    lab.ok(0, &first, "monitor");
    lab.ok(0, &first, "stop");
}
