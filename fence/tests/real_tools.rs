//! The contract crate judged by Pacemaker's real tools, through the directory-backed
//! demo device (`examples/fence_rustha_demo.rs`, built by `cargo test`): its meta-data
//! read by `stonith_admin --metadata` and `pcs stonith describe`, a device created with
//! `pcs -f ... stonith create`, and the protocol spoken by a real process (stdin and
//! argv forms, exit codes, secrets). Needs root: the agent must be in /usr/sbin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NAME: &str = "fence_rustha_demo";

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("examples").join(NAME))
        .unwrap();
    assert!(
        p.is_file(),
        "{} is missing: `cargo test` builds it",
        p.display()
    );
    p
}

/// `/usr/sbin/fence_rustha_demo` -> the example, removed on drop (only if it is ours).
struct Installed(PathBuf);

impl Installed {
    fn new() -> Installed {
        let link = Path::new("/usr/sbin").join(NAME);
        if let Ok(t) = std::fs::read_link(&link) {
            assert_eq!(
                t,
                example(),
                "{} exists and is not this test's link",
                link.display()
            );
        } else {
            assert!(
                !link.exists(),
                "{} exists and is not a link of ours",
                link.display()
            );
            std::os::unix::fs::symlink(example(), &link).unwrap();
        }
        Installed(link)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if std::fs::read_link(&self.0).is_ok_and(|t| t == example()) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(args: &[&str], stdin: &str) -> Run {
    let mut c = Command::new(example())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn tool(args: &[&str]) -> Run {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fence-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn pacemaker_tools_read_the_meta_data() {
    let _link = Installed::new();
    let r = tool(&["stonith_admin", "--metadata", "-a", NAME]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    for p in [
        "action",
        "plug",
        "port",
        "dir",
        "password",
        "power_timeout",
        "login_timeout",
    ] {
        assert!(
            r.out.contains(&format!("<parameter name=\"{p}\"")),
            "{p}: {}",
            r.out
        );
    }
    let r = tool(&["pcs", "stonith", "describe", NAME]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("Fence device in a directory"), "{}", r.out);
    assert!(
        r.out.contains("dir") && r.out.contains("power_timeout"),
        "{}",
        r.out
    );
    // A device created from the meta-data: pcs checks the options against it.
    let d = tempdir("pcs");
    let cib = d.join("cib.xml");
    let empty = tool(&["cibadmin", "--empty"]);
    std::fs::write(&cib, empty.out).unwrap();
    let dir = d.to_str().unwrap().to_string();
    let c = cib.to_str().unwrap();
    let opt = format!("dir={dir}");
    let r = tool(&[
        "pcs",
        "-f",
        c,
        "stonith",
        "create",
        "f1",
        NAME,
        &opt,
        "pcmk_host_list=node1",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let r = tool(&[
        "pcs",
        "-f",
        c,
        "stonith",
        "create",
        "f2",
        NAME,
        "no_such_option=1",
    ]);
    assert_ne!(r.code, 0, "pcs refuses what the meta-data does not declare");
    assert!(std::fs::read_to_string(&cib)
        .unwrap()
        .contains(&format!("type=\"{NAME}\"")));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_protocol_as_a_process() {
    let d = tempdir("proc");
    let dir = d.to_str().unwrap();
    std::fs::write(d.join("vm1"), "on\n").unwrap();
    std::fs::write(d.join("vm2"), "off\n").unwrap();
    let stdin = |s: &str| run(&[], &format!("dir={dir}\nstonith_status_sleep=0.05\n{s}"));
    let r = stdin("action=status\nport=vm1\nnodename=node1\npcmk_host_map=node1:vm1\n");
    assert_eq!((r.code, r.out.as_str()), (0, "Status: ON\n"), "{}", r.err);
    assert!(
        r.err.is_empty(),
        "nodename and pcmk_* are not warned about: {}",
        r.err
    );
    assert_eq!(
        run(&["-o", "status", "-n", "vm2", "--dir", dir], "").code,
        2
    );
    let r = stdin("action=off\nplug=vm1\n");
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "Success: Powered OFF\n"),
        "{}",
        r.err
    );
    assert_eq!(std::fs::read_to_string(d.join("vm1")).unwrap(), "off\n");
    let r = stdin("action=reboot\nplug=vm1\n");
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "Success: Rebooted\n"),
        "{}",
        r.err
    );
    assert_eq!(std::fs::read_to_string(d.join("vm1")).unwrap(), "on\n");
    let r = run(&["--action=list-status", &format!("--dir={dir}")], "");
    assert_eq!(r.out, "vm1,vm1,ON\nvm2,vm2,OFF\n", "{}", r.err);
    // Failures: 1 with a reason; a secret never in any output.
    for (s, want) in [
        ("action=status\nplug=vm9\n", "no machine vm9"),
        ("action=off\n", "required option plug"),
        ("action=status\nplug=../x\n", "not a machine name"),
        ("action=status\nplug=vm1\npassword=wrong\n", "login denied"),
    ] {
        let r = stdin(s);
        assert_eq!(r.code, 1, "{s}");
        assert!(r.err.contains(want), "{s}: {}", r.err);
        assert!(
            !r.err.contains("wrong\n") && !r.out.contains("wrong"),
            "{}",
            r.err
        );
    }
    let r = run(
        &[],
        &format!("action=validate-all\ndir={dir}\npassword=s3cr3t-pw\nverbose=1\n"),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let r = run(
        &[],
        &format!("action=off\nplug=vm2\ndir={dir}\npassword=s3cr3t-pw\nverbose=1\n"),
    );
    assert_eq!(r.code, 0);
    assert!(
        !r.out.contains("s3cr3t") && !r.err.contains("s3cr3t"),
        "{}{}",
        r.out,
        r.err
    );
    let r = run(&["--bogus"], "");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("unknown option --bogus"), "{}", r.err);
    let _ = std::fs::remove_dir_all(&d);
}
