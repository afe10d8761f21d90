//! aws-eni against the emulated EC2 of `common::aws` (moto + `tests/aws/ec2sim.py`), two
//! simulated instances in two network namespaces; the agent's OS side runs against a
//! real kernel. Nothing leaves the machine.
#![cfg(feature = "aws")]

mod common;

use common::aws::{Lab, SECRET};
use common::{agent_link, instance, Env, TempDir};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
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
    lab.ctl("badkey=AKIDRUSTHATEST00");
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
            .contains("\"AttachNetworkInterface\", \"AKIDRUSTHATEST00\", true, 412"),
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

/// A loopback port that records whether anything connected to it: the EC2 and IMDS
/// endpoints of runs that must not make a single call.
struct Untouched(TcpListener);

impl Untouched {
    fn new() -> Untouched {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Untouched(l)
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.local_addr().unwrap().port())
    }
    /// Connections made so far (they wait in the backlog until accepted here).
    fn connections(&self) -> usize {
        std::iter::from_fn(|| self.0.accept().ok()).count()
    }
}

/// The issue's reproducer environment: key credentials, EC2 and IMDS at `endpoint`.
fn repro_env(state: &Path, endpoint: &str, key: &str) -> Env {
    Env::pacemaker(&instance("repro"), state)
        .param("eni_id", "eni-0123456789abcdef0")
        .param("region", "eu-west-1")
        .param("endpoint_url", endpoint)
        .param("imds_endpoint", endpoint)
        .param("auth_type", "key")
        .param("access_key_id", key)
        .param("secret_access_key", "abc")
}

fn no_abort(r: &common::Run, what: &str) {
    assert!(
        r.code != 134 && !r.stderr.contains("panicked"),
        "{what}: aborted: {}",
        r.stderr
    );
}

/// Issue 13 item 1: `access_key_id=$'AKIAEXAMPLE\n'` made stop panic inside aws-runtime
/// (134, a fenced node), and stop went to the API although this node never started it.
#[test]
fn a_key_with_a_newline_is_refused_and_stop_and_probe_call_nothing_without_a_record() {
    let dir = TempDir::new("aws-repro");
    let link = agent_link(dir.path(), "aws-eni");
    let state = TempDir::new("aws-repro-state");
    let sink = Untouched::new();
    for endpoint in ["http://127.0.0.1:9".to_string(), sink.url()] {
        for key in [
            "AKIAEXAMPLE\n",
            "AKIAIOSFODNN7EXAMPLE\n",
            "AKIAIOSFODNN7EXAMPLE\r",
            "AKIA\u{c4}IOSFODNN7EXAMPLE",
            "   ",
            // Valid for our checks, but odd: the longest, and all digits.
            &"A".repeat(128),
            "0000000000000000",
        ] {
            let e = repro_env(state.path(), &endpoint, key);
            let t0 = Instant::now();
            let r = e.run(&link, "stop");
            no_abort(&r, "stop");
            assert_eq!(r.code, 0, "stop with key {key:?}: {}", r.stderr);
            let r = e.run(&link, "monitor");
            no_abort(&r, "probe");
            assert_eq!(r.code, 7, "probe with key {key:?}: {}", r.stderr);
            let r = e.clone().interval(10000).run(&link, "monitor");
            no_abort(&r, "monitor");
            assert_eq!(r.code, 7, "monitor with key {key:?}: {}", r.stderr);
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no record: decided locally, no retries ({:?})",
                t0.elapsed()
            );
            let r = e.run(&link, "validate-all");
            no_abort(&r, "validate-all");
            if key.len() >= 16 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                assert_eq!(r.code, 0, "validate-all with key {key:?}: {}", r.stderr);
            } else {
                assert_eq!(r.code, 6, "validate-all with key {key:?}: {}", r.stderr);
                assert!(
                    r.reason().unwrap().contains("access_key_id"),
                    "the reason names the parameter: {}",
                    r.stderr
                );
                let r = e.run(&link, "start");
                assert_eq!(r.code, 6, "start with key {key:?}: {}", r.stderr);
            }
        }
    }
    assert_eq!(sink.connections(), 0, "no EC2 or IMDS request at all");
}

/// With a record of a start that had not finished (an attach possibly in flight), stop
/// asks EC2: an odd but valid key and secret reach the SDK's signing and headers there,
/// and an unreachable API with the MAC absent here is still a verified stop (0).
#[test]
fn odd_but_valid_credentials_reach_the_sdk_without_a_panic() {
    common::require_root();
    common::private_netns();
    let dir = TempDir::new("aws-odd");
    let link = agent_link(dir.path(), "aws-eni");
    let state = TempDir::new("aws-odd-state");
    let secret = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~0aZ";
    for key in ["A".repeat(128), "0000000000000000".to_string()] {
        let e =
            repro_env(state.path(), "http://127.0.0.1:9", &key).param("secret_access_key", secret);
        let inst = e.0["OCF_RESOURCE_INSTANCE"].clone();
        let rec = state.path().join("aws-eni").join(&inst);
        std::fs::create_dir_all(rec.parent().unwrap()).unwrap();
        std::fs::write(
            &rec,
            "attached=0\nconfigured=0\neni=eni-0123456789abcdef0\nip=198.51.100.7\n\
             mac=02:00:5e:10:00:07\nprefix=0\n",
        )
        .unwrap();
        let r = e.run(&link, "stop");
        no_abort(&r, "stop");
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains("cannot reach the endpoint"),
            "it did go to the API: {}",
            r.stderr
        );
        assert!(!rec.exists(), "the record is gone after the verified stop");
    }
}

/// Issue 13 item 3 (aws-eni): every value is checked as what it is, 6 at validate and
/// start, with a reason naming the parameter, and before any network call.
#[test]
fn bad_values_are_6_naming_the_parameter_before_any_network_call() {
    let dir = TempDir::new("aws-bad");
    let link = agent_link(dir.path(), "aws-eni");
    let state = TempDir::new("aws-bad-state");
    let sink = Untouched::new();
    let huge = "a".repeat(64 * 1024);
    let cases: &[(&str, &str)] = &[
        ("access_key_id", "   "),
        ("access_key_id", "AKIAIOSFODNN7EXAMPLE "),
        ("secret_access_key", "   "),
        ("secret_access_key", "abc def"),
        ("eni_id", "eni-0123456789abcdef0\nextra"),
        ("eni_id", "eni-0123456789abcdef0;reboot"),
        ("eni_id", "eni-$(reboot)"),
        ("eni_id", "eni-0123456789abcdef"),
        ("eni_id", "eni-0123456789abcdef01"),
        ("eni_id", "eni-"),
        ("eni_id", "eni-0123456789ABCDEF0"),
        ("region", "junk"),
        ("region", "eu-west-1\n"),
        ("region", "eu-west-1;x"),
        ("region", &huge),
        ("ip", "::"),
        ("ip", "2001:db8::10"),
        ("ip", "0.0.0.0"),
        ("ip", "255.255.255.255"),
        ("ip", "224.0.0.1"),
        ("ip", "127.0.0.1"),
        ("ip", "10.0.1"),
        ("endpoint_url", "http://"),
        ("endpoint_url", "http://x\r\nHost: y"),
        ("endpoint_url", "http://$(reboot)"),
        ("endpoint_url", "http://`id`"),
        ("endpoint_url", "ftp://x"),
        ("endpoint_url", "http://u:p@127.0.0.1"),
        ("endpoint_url", "http://127.0.0.1:99999"),
        ("endpoint_url", "http://127.0.0.1/?x"),
        ("imds_endpoint", "http://"),
        ("imds_endpoint", "http://x\r\n"),
        ("imds_endpoint", "http://$(reboot)"),
        ("imds_endpoint", "127.0.0.1:5001"),
        ("device_index", "4294967295"),
    ];
    let good = || {
        repro_env(state.path(), &sink.url(), "AKIAIOSFODNN7EXAMPLE").param(
            "secret_access_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
    };
    let r = good().run(&link, "validate-all");
    assert_eq!(r.code, 0, "the good set is valid: {}", r.stderr);
    for (k, v) in cases {
        let shown: String = v.chars().take(40).collect();
        for action in ["validate-all", "start"] {
            let r = good().param(k, v).run(&link, action);
            no_abort(&r, action);
            assert_eq!(r.code, 6, "{action} {k}={shown:?}: {}", r.stderr);
            let reason = r.reason().unwrap_or_default();
            assert!(reason.contains(k), "{action} {k}={shown:?}: {reason}");
        }
    }
    // A profile name that cannot be one, and key auth without a secret.
    let r = good()
        .param("auth_type", "profile")
        .param("profile", "a b")
        .run(&link, "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("profile"), "{}", r.stderr);
    let r = good()
        .without("OCF_RESKEY_secret_access_key")
        .run(&link, "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    // Depth 10 validate goes to the network, but only after these checks.
    let r = good()
        .param("eni_id", "eni-")
        .var("OCF_CHECK_LEVEL", "10")
        .run(&link, "validate-all");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(sink.connections(), 0, "no EC2 or IMDS request at all");
}

/// Issue 13 item 2: stop and probe decide from local evidence first. B never started the
/// ENI (no record); A's record is of a completed start and the ENI has since moved to B
/// (its MAC is gone from A). Neither needs EC2 or IMDS.
#[test]
fn stop_and_probe_settled_by_local_evidence_make_no_api_or_imds_call() {
    let lab = Lab::new("local", 0.3, 0.3);
    let (a, b) = (lab.env(0), lab.env(1));
    lab.ok(0, &a, "start");
    let before = lab.counts();
    assert!(
        before.0 > 0 && before.1 > 0,
        "the start did call: {before:?}"
    );
    assert_eq!(lab.run(1, &b, "monitor").code, 7, "probe B");
    lab.ok(1, &b, "stop");
    assert_eq!(lab.counts(), before, "B (no record) called nothing");
    assert_eq!(lab.here(0), (true, true), "and left A's ENI alone");

    lab.ok(1, &b, "start");
    assert!(!lab.here(0).0, "moved to B");
    let before = lab.counts();
    assert_eq!(lab.run(0, &a, "monitor").code, 7, "probe A after the move");
    lab.ok(0, &a, "stop");
    assert_eq!(lab.counts(), before, "A (MAC gone) called nothing");
    assert_eq!(lab.here(1), (true, true), "B keeps it");

    // The holder's stop does need EC2: it detaches.
    lab.ok(1, &b, "stop");
    assert!(!lab.here(1).0);
    assert!(lab.counts().0 > before.0);
}

/// A bind mount of a file onto itself: unlink(2) of it fails (EBUSY), as a record on a
/// read-only or broken state directory would. Unmounted by its path on drop.
struct Pinned(std::path::PathBuf);

impl Pinned {
    fn new(p: &Path) -> Pinned {
        let st = Command::new("mount")
            .arg("--bind")
            .arg(p)
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success(), "mount --bind {}", p.display());
        Pinned(p.to_path_buf())
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 13 item 3b (aws-eni): an unusable state directory (a plain file) is no failed
/// probe or stop: the ENI is found by its identity (EC2's MAC for it, the interface here).
/// Not here: probe 7, stop 0. Here: probe 0, and stop detaches it. And a record that
/// cannot be removed after a verified stop is a warning, not a failed stop.
#[test]
fn an_unusable_state_dir_still_gives_7_and_0_and_stop_detaches_what_is_here() {
    let lab = Lab::new("sdir", 0.3, 0.3);
    let file = lab.log.path().join("state-is-a-file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let broken = |n: usize| lab.env(n).var("RUSTHA_STATE_DIR", file.to_str().unwrap());
    assert_eq!(
        lab.run(0, &broken(0), "monitor").code,
        7,
        "attached nowhere"
    );
    lab.ok(0, &broken(0), "stop");

    lab.ok(0, &lab.env(0), "start");
    let r = lab.run(1, &broken(1), "monitor");
    assert_eq!(r.code, 7, "not on B: {}", r.stderr);
    lab.ok(1, &broken(1), "stop");
    assert_eq!(lab.here(0), (true, true), "B's stop left A's ENI alone");
    let r = lab.run(0, &broken(0), "monitor");
    assert_eq!(r.code, 0, "A holds it: {}", r.stderr);
    lab.ok(0, &broken(0), "stop");
    assert!(!lab.here(0).0, "A's stop detached it without the record");
    // A's own record (in the working directory) is still there; the MAC is gone, so:
    assert_eq!(lab.run(0, &lab.env(0), "monitor").code, 7);

    // A record that cannot be removed: the stop is verified, so 0 with a warning.
    lab.ok(0, &lab.env(0), "start");
    let rec = lab.states[0].path().join("aws-eni").join("eni");
    assert!(rec.is_file());
    let pin = Pinned::new(&rec);
    let r = lab.run(0, &lab.env(0), "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!lab.here(0).0, "detached");
    assert!(r.stderr.contains("cannot remove"), "warned: {}", r.stderr);
    drop(pin);
    assert_eq!(lab.run(0, &lab.env(0), "monitor").code, 7, "the next probe");
    lab.ok(0, &lab.env(0), "stop");
}

/// auth_type=profile: the named profile's credentials are fetched and checked before a
/// request carries them. A key with a character no HTTP header can hold (DEL) is a clear
/// error, not a panic in the SDK's signing; one AWS never issues (a non-ASCII letter) is
/// refused the same way; a missing profile is an error, never a fallback.
#[test]
fn profile_credentials_are_checked_before_any_request_carries_them() {
    let lab = Lab::new("prof", 0.3, 0.3);
    let home = TempDir::new("aws-prof-home");
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[rustha]\naws_access_key_id = AKIDRUSTHATEST00\naws_secret_access_key = {SECRET}\n\
             [odd]\naws_access_key_id = AKIDRUSTHAT\u{c4}ST00\naws_secret_access_key = {SECRET}\n\
             [del]\naws_access_key_id = AKIDRUSTHAT\u{7f}ST00\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap();
    let env = |profile: &str| {
        lab.env(0)
            .without("OCF_RESKEY_access_key_id")
            .without("OCF_RESKEY_secret_access_key")
            .param("auth_type", "profile")
            .param("profile", profile)
            .var("HOME", home.path().to_str().unwrap())
    };
    let before = lab.counts().0;
    for (profile, want) in [
        ("del", "access key id"),
        ("odd", "access key id"),
        ("missing", "profile missing"),
    ] {
        let r = lab.run(0, &env(profile), "start");
        no_abort(&r, "start");
        assert_eq!(r.code, 1, "profile {profile}: {}", r.stderr);
        assert!(
            r.reason().unwrap().contains(want),
            "profile {profile}: {}",
            r.stderr
        );
        let r = lab.run(0, &env(profile), "stop");
        assert_eq!(r.code, 0, "profile {profile}: {}", r.stderr);
    }
    assert_eq!(lab.counts().0, before, "no EC2 request carried them");
    lab.ok(0, &env("rustha"), "start");
    assert_eq!(lab.here(0), (true, true));
    lab.ok(0, &env("rustha"), "stop");
    assert!(!lab.here(0).0);
}

/// The region IMDS answers (when `region` is unset) goes into the SigV4 `Authorization`
/// header and the endpoint's host name: an answer that is not a region name is a clear
/// error before any EC2 request is built.
#[test]
fn a_region_from_imds_that_is_not_one_is_an_error_not_a_panic() {
    let lab = Lab::new("reg", 0.3, 0.3);
    let a = lab.env(0);
    let before = lab.counts().0;
    lab.ctl(&format!("region={}:us-east-1%0Ax", lab.instances[0]));
    let r = lab.run(0, &a, "start");
    no_abort(&r, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("not a region name"),
        "{}",
        r.stderr
    );
    assert_eq!(lab.counts().0, before, "no EC2 request");
    lab.ok(0, &a, "stop");
    lab.ctl(&format!("region={}:us-east-1", lab.instances[0]));
    lab.ok(0, &a, "start");
    lab.ok(0, &a, "stop");
}
