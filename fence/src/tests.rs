//! The runner, through an in-memory fence device whose machines take a set time to
//! change power state.

use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

crate::params! {
    struct DemoParams {
        region: Option<String> => FenceParam::new("region", "Region.").short('r'),
        secret_key: Option<String> => FenceParam::new("secret_key", "Secret Key.").short('s').long("secret-key").secret(),
    }
}

/// A machine: its power, and a pending change (when it lands, to what).
type Machine = (Power, Option<(Instant, Power)>);

static DEVICE: Mutex<BTreeMap<String, Machine>> = Mutex::new(BTreeMap::new());
static LOCK: Mutex<()> = Mutex::new(());

fn reset(machines: &[(&str, Power)]) {
    let mut d = DEVICE.lock().unwrap();
    d.clear();
    for (m, p) in machines {
        d.insert(m.to_string(), (*p, None));
    }
}

fn settle(d: &mut Machine) {
    if let Some((at, to)) = d.1 {
        if Instant::now() >= at {
            *d = (to, None);
        }
    }
}

struct Demo;

const TRANSITION: Duration = Duration::from_millis(150);

impl FenceAgent for Demo {
    type Params = DemoParams;
    const INFO: Info = Info {
        name: "fence_demo",
        version: "0.1.0",
        shortdesc: "A demo device",
        longdesc: "In memory.",
        vendor_url: "https://example.org",
    };
    fn validate(p: &DemoParams, _ctx: &mut Ctx) -> Result<(), FenceError> {
        if p.region.as_deref() == Some("nowhere") {
            return Err(FenceError("no region nowhere".into()));
        }
        Ok(())
    }
    fn status(p: &DemoParams, plug: &str, _ctx: &mut Ctx) -> Result<Power, FenceError> {
        if p.secret_key.as_deref() == Some("wrong") {
            return Err(FenceError("AuthFailure: the key is not valid".into()));
        }
        let mut d = DEVICE.lock().unwrap();
        let m = d
            .get_mut(plug)
            .ok_or_else(|| FenceError(format!("no machine {plug}")))?;
        settle(m);
        Ok(m.0)
    }
    fn set_power(_p: &DemoParams, plug: &str, to: Power, _ctx: &mut Ctx) -> Result<(), FenceError> {
        let mut d = DEVICE.lock().unwrap();
        let m = d
            .get_mut(plug)
            .ok_or_else(|| FenceError(format!("no machine {plug}")))?;
        if plug == "stuck" {
            return Ok(()); // accepted, never happens
        }
        m.1 = Some((Instant::now() + TRANSITION, to));
        Ok(())
    }
    fn list(_p: &DemoParams, _ctx: &mut Ctx) -> Result<Vec<Plug>, FenceError> {
        let d = DEVICE.lock().unwrap();
        Ok(d.iter()
            .map(|(k, v)| Plug {
                id: k.clone(),
                alias: format!("{k}-alias"),
                power: Some(v.0),
            })
            .collect())
    }
}

struct Out {
    code: i32,
    out: String,
    err: String,
}

/// One call of the runner: `args` on the command line, `input` on stdin.
fn call(args: &[String], input: &[u8]) -> Out {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run::<Demo>(args, &mut &input[..], &mut o, &mut e);
    Out {
        code,
        out: String::from_utf8_lossy(&o).into_owned(),
        err: String::from_utf8_lossy(&e).into_owned(),
    }
}

fn stdin(text: &str) -> Out {
    call(&[], text.as_bytes())
}

fn argv(args: &str) -> Out {
    let a: Vec<String> = args.split(' ').map(String::from).collect();
    call(&a, b"")
}

#[test]
fn status_is_0_on_2_off_1_error() {
    let _l = LOCK.lock().unwrap();
    reset(&[("vm1", Power::On), ("vm2", Power::Off)]);
    let r = stdin("action=status\nport=vm1\n");
    assert_eq!((r.code, r.out.as_str()), (0, "Status: ON\n"), "{}", r.err);
    assert_eq!(argv("-o status -n vm2").code, 2);
    let r = stdin("action=status\nplug=vm9\n");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("ERROR: no machine vm9"), "{}", r.err);
    let r = stdin("action=status\nplug=vm1\nsecret_key=wrong\n");
    assert_eq!(r.code, 1, "a failed request is a failure");
    assert!(!r.err.contains("wrong"), "{}", r.err);
}

#[test]
fn off_on_and_reboot_wait_for_the_state() {
    let _l = LOCK.lock().unwrap();
    reset(&[("vm1", Power::On)]);
    let t = Instant::now();
    let r = stdin("action=off\nplug=vm1\nstonith_status_sleep=0.05\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "Success: Powered OFF\n");
    assert!(t.elapsed() >= TRANSITION, "it waited for the device");
    assert_eq!(argv("-o status -n vm1").code, 2);
    assert_eq!(
        stdin("action=off\nplug=vm1\n").out,
        "Success: Already OFF\n"
    );
    let r = stdin("action=reboot\nplug=vm1\nstonith_status_sleep=0.05\n");
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "Success: Rebooted\n"),
        "{}",
        r.err
    );
    assert_eq!(argv("-o status -n vm1").code, 0);
    assert_eq!(argv("--action=on --plug=vm1").out, "Success: Already ON\n");
}

#[test]
fn a_state_never_reached_fails_within_power_timeout() {
    let _l = LOCK.lock().unwrap();
    reset(&[("stuck", Power::On)]);
    let t = Instant::now();
    let r = stdin("action=off\nplug=stuck\npower_timeout=0.4\nstonith_status_sleep=0.1\n");
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("Timed out waiting to power OFF stuck"),
        "{}",
        r.err
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn list_list_status_monitor_validate() {
    let _l = LOCK.lock().unwrap();
    reset(&[("a", Power::On), ("b", Power::Off)]);
    assert_eq!(stdin("action=list\n").out, "a,a-alias\nb,b-alias\n");
    assert_eq!(
        stdin("action=list-status\nseparator=;\n").out,
        "a;a-alias;ON\nb;b-alias;OFF\n"
    );
    assert_eq!(stdin("action=monitor\n").code, 0);
    assert_eq!(stdin("action=validate-all\n").code, 0);
    let r = stdin("action=validate-all\nregion=nowhere\n");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("no region nowhere"));
}

#[test]
fn bad_input_is_1_with_a_reason_never_a_panic() {
    let _l = LOCK.lock().unwrap();
    reset(&[("a", Power::On)]);
    for (text, want) in [
        ("action=explode\n", "unknown action 'explode'"),
        ("action=off\n", "required option plug"),
        (
            "action=status\nplug=a\npower_timeout=soon\n",
            "option power_timeout: 'soon'",
        ),
    ] {
        let r = stdin(text);
        assert_eq!(r.code, 1, "{text}");
        assert!(r.err.contains(want), "{text}: {}", r.err);
    }
    for args in ["--bogus", "-o", "stray"] {
        let r = argv(args);
        assert_eq!(r.code, 1, "{args}");
        assert!(r.err.starts_with("ERROR: "), "{}", r.err);
    }
    let r = stdin("action=status\nplug=a\nwhatever=1\npcmk_host_list=a\n");
    assert_eq!(r.code, 0);
    assert!(
        r.err.contains("ignoring unknown option 'whatever'"),
        "{}",
        r.err
    );
    assert!(
        !r.err.contains("pcmk_host_list"),
        "pcmk_* are Pacemaker's own"
    );
    // Binary junk on stdin is a bad option, not a crash.
    let r = call(&[], b"action=\xff\xfe\n");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("not UTF-8"));
}

#[test]
fn metadata_help_manpage_version() {
    let r = stdin("action=metadata\n");
    assert_eq!(r.code, 0);
    assert!(
        r.out.contains("<resource-agent name=\"fence_demo\""),
        "{}",
        r.out
    );
    assert!(r.out.contains("<parameter name=\"region\""));
    assert!(r.out.contains("<parameter name=\"power_timeout\""));
    assert_eq!(argv("-o meta-data").out, r.out, "the OCF spelling too");
    let h = argv("-h");
    assert_eq!(h.code, 0);
    assert!(h.out.contains("-n, --plug=[id]"), "{}", h.out);
    let m = argv("--action=manpage");
    assert!(m.out.starts_with(".TH FENCE_DEMO 8"), "{}", m.out);
    assert_eq!(argv("-V").out, "fence_demo 0.1.0\n");
}
