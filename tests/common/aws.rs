//! The emulated EC2 lab for aws-eni: moto's server mode on the host's loopback, and in
//! front of it `tests/aws/ec2sim.py` (attaching/detaching states, InUse, throttling,
//! 5xx, denials, an IMDSv2 per instance). Two simulated instances are two network
//! namespaces; an attached ENI shows up there as an interface with the ENI's MAC.
//! Started and stopped by PID; nothing leaves the machine.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const SECRET: &str = "rustha-test-SECRET-8f3a1c";

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct Lab {
    pub ns: [String; 2],
    /// ns[0] is the test thread's own namespace, only named for the simulator.
    attached: bool,
    moto: Child,
    sim: Child,
    pub ctl: u16,
    pub eni: String,
    pub eni_second: String,
    pub eni_other_az: String,
    pub mac: String,
    pub instances: Vec<String>,
    pub states: [TempDir; 2],
    _dir: TempDir,
    pub link: PathBuf,
    pub log: TempDir,
}

impl Lab {
    pub fn new(tag: &str, attach_secs: f32, detach_secs: f32) -> Lab {
        Lab::build(tag, attach_secs, detach_secs, false)
    }

    /// Instance A is the calling thread's own (private) network namespace: agents run
    /// directly by this thread act as instance A.
    pub fn here_as_a(tag: &str) -> Lab {
        Lab::build(tag, 0.3, 0.3, true)
    }

    fn build(tag: &str, attach_secs: f32, detach_secs: f32, attached: bool) -> Lab {
        require_root();
        require_tool("moto_server");
        let base = format!(
            "rh-aws{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let ns = [format!("{base}-a"), format!("{base}-b")];
        for (i, n) in ns.iter().enumerate() {
            if i == 0 && attached {
                let tid = nix::unistd::gettid().to_string();
                assert!(Command::new("ip")
                    .args(["netns", "attach", n, &tid])
                    .status()
                    .unwrap()
                    .success());
            } else {
                assert!(Command::new("ip")
                    .args(["netns", "add", n])
                    .status()
                    .unwrap()
                    .success());
            }
            assert!(Command::new("ip")
                .args(["-n", n, "link", "set", "lo", "up"])
                .status()
                .unwrap()
                .success());
        }
        let log = TempDir::new(&format!("aws-{tag}-log"));
        let port = free_port();
        let moto = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log.path().join("moto.out")).unwrap())
            .stderr(std::fs::File::create(log.path().join("moto.err")).unwrap())
            .spawn()
            .expect("moto_server");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moto did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let script = repo().join("tests/aws/ec2sim.py");
        let mut sim = Command::new("python3")
            .arg(&script)
            .args(["--moto", &format!("http://127.0.0.1:{port}")])
            .args(["--ns", &ns[0], "--ns", &ns[1]])
            .args([
                "--attach-secs",
                &attach_secs.to_string(),
                "--detach-secs",
                &detach_secs.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ec2sim");
        let mut line = String::new();
        BufReader::new(sim.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready "), "ec2sim did not start: {line:?}");
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing in {line}"))
                .to_string()
        };
        let dir = TempDir::new(&format!("aws-{tag}"));
        let link = agent_link(dir.path(), "aws-eni");
        Lab {
            attached,
            ctl: field("ctl").parse().unwrap(),
            eni: field("eni"),
            eni_second: field("eni_second"),
            eni_other_az: field("eni_other_az"),
            mac: field("mac"),
            instances: field("instances").split(',').map(String::from).collect(),
            ns,
            moto,
            sim,
            states: [
                TempDir::new(&format!("aws-{tag}-a")),
                TempDir::new(&format!("aws-{tag}-b")),
            ],
            _dir: dir,
            link,
            log,
        }
    }

    pub fn ctl(&self, q: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctl)).unwrap();
        write!(s, "GET /_sim?{q} HTTP/1.0\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        assert!(r.contains("200"), "{r}");
    }

    pub fn calls(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctl)).unwrap();
        write!(s, "GET /_sim/calls HTTP/1.0\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    }

    /// (EC2 calls, IMDS requests) the simulator has seen so far, all instances together.
    pub fn counts(&self) -> (usize, usize) {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctl)).unwrap();
        write!(s, "GET /_sim/count HTTP/1.0\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        let field = |k: &str| -> usize {
            r.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in {r}"))
                .parse()
                .unwrap()
        };
        (field("ec2="), field("imds="))
    }

    /// The parameters that point the agent at this lab.
    pub fn params(&self) -> Vec<(String, String)> {
        [
            ("eni_id", self.eni.as_str()),
            ("endpoint_url", "http://127.0.0.1:5000"),
            ("imds_endpoint", "http://127.0.0.1:5001"),
            ("auth_type", "key"),
            ("access_key_id", "AKIDRUSTHATEST00"),
            ("secret_access_key", SECRET),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The Pacemaker environment of node `n` (0 = A, 1 = B).
    pub fn env(&self, n: usize) -> Env {
        let mut e = Env::pacemaker("eni", self.states[n].path())
            .var("OCF_RESKEY_CRM_meta_timeout", "30000")
            .var(
                "HA_LOGFILE",
                self.log.path().join("agent.log").to_str().unwrap(),
            );
        for (k, v) in self.params() {
            e = e.param(&k, &v);
        }
        e
    }

    pub fn run(&self, n: usize, env: &Env, action: &str) -> Run {
        let r = out(&mut agent_command(
            Some(&self.ns[n]),
            &self.link,
            action,
            &env.0,
        ));
        assert!(
            !r.stderr.contains(SECRET) && !r.stdout.contains(SECRET),
            "secret in output"
        );
        r
    }

    pub fn ok(&self, n: usize, env: &Env, action: &str) -> Duration {
        let t0 = Instant::now();
        let r = self.run(n, env, action);
        assert_eq!(r.code, 0, "node {n} {action}: {}", r.stderr);
        t0.elapsed()
    }

    /// Does node `n`'s namespace show an interface with the ENI's MAC, holding the IP?
    pub fn here(&self, n: usize) -> (bool, bool) {
        let o = Command::new("ip")
            .args(["-n", &self.ns[n], "-o", "addr", "show"])
            .output()
            .unwrap();
        let addrs = String::from_utf8_lossy(&o.stdout).to_string();
        let o = Command::new("ip")
            .args(["-n", &self.ns[n], "-o", "link", "show"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&o.stdout).to_string();
        (links.contains(&self.mac), addrs.contains("10.0.1.100/24"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in [&mut self.sim, &mut self.moto] {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (i, n) in self.ns.iter().enumerate() {
            // The attached namespace holds this test process itself: only unname it.
            if i == 0 && self.attached {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
                continue;
            }
            remove_netns(n);
        }
    }
}
