//! A two-host lab for address agents: a `node` namespace (where the agent runs) and an
//! `observer` namespace (a client on the same link), joined by a veth pair
//! `vip0` <-> `obs0`, on TEST-NET addresses only (192.0.2.0/24, 2001:db8::/64).
//!
//! Named namespaces (`ip netns add`), so that both our agent and the upstream shell
//! agent (which runs `ip`, `send_arp`, ...) can be run inside with `ip netns exec`.
//! Dropping the lab SIGKILLs whatever still runs inside its namespaces (by PID, from
//! `ip netns pids`) and deletes them.

use super::{ip, Run};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub const NODE_V4: &str = "192.0.2.1";
pub const OBS_V4: &str = "192.0.2.2";
pub const NODE_V6: &str = "2001:db8::1";
pub const OBS_V6: &str = "2001:db8::2";

pub struct Lab {
    pub node: String,
    pub obs: String,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        super::require_root();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let base = format!("rh-{tag}-{}-{n}", std::process::id());
        let lab = Lab {
            node: format!("{base}-n"),
            obs: format!("{base}-o"),
        };
        ip(&["netns", "add", &lab.node]);
        ip(&["netns", "add", &lab.obs]);
        ip(&[
            "link", "add", "vip0", "netns", &lab.node, "type", "veth", "peer", "name", "obs0",
            "netns", &lab.obs,
        ]);
        for (ns, dev, v4, v6) in [
            (&lab.node, "vip0", NODE_V4, NODE_V6),
            (&lab.obs, "obs0", OBS_V4, OBS_V6),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "brd",
                "+",
                "dev",
                dev,
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    /// `ip -n <node> ...`
    pub fn node_ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.node.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    /// `ip -n <observer> ...`
    pub fn obs_ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.obs.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    /// Run `agent action` inside the node namespace with exactly `vars` (plus PATH).
    pub fn agent(&self, agent: &Path, action: &str, vars: &BTreeMap<String, String>) -> Run {
        super::out(&mut super::agent_command(
            Some(&self.node),
            agent,
            action,
            vars,
        ))
    }

    /// The node's addresses on `dev`, normalised for comparison: one line per address
    /// (`inet 192.0.2.10/24 brd 192.0.2.255 scope global secondary vip0:lbl`), without
    /// lifetimes and link-local addresses, sorted.
    pub fn addrs(&self, dev: &str) -> Vec<String> {
        let out = self.node_ip(&["-o", "addr", "show", "dev", dev]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| {
                let body = l.split_once(dev)?.1.trim();
                let body = body.split('\\').next()?.trim();
                (!body.contains("fe80::")).then(|| body.to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Does the node hold `ip` on `dev` (any prefix)?
    pub fn has(&self, dev: &str, ip: &str) -> bool {
        self.addrs(dev).iter().any(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.split('/').next() == Some(ip))
        })
    }

    pub fn node_mac(&self) -> Vec<u8> {
        mac(&self.node_ip(&["-o", "link", "show", "dev", "vip0"]))
    }

    /// ping from the observer (one packet, one second).
    pub fn ping_from_observer(&self, addr: &str) -> bool {
        super::ping_from(&self.obs, addr)
    }

    /// Start capturing frames of `ethertype` arriving on the observer's `obs0` for `dur`.
    pub fn capture(&self, ethertype: u16, dur: Duration) -> Capture {
        let ns = self.obs.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_DGRAM,
                    i32::from(ethertype.to_be()),
                )
            };
            assert!(fd >= 0, "packet socket");
            let idx = nix::net::if_::if_nametoindex("obs0").unwrap();
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ethertype.to_be();
            sll.sll_ifindex = idx as i32;
            let rc = unsafe {
                libc::bind(
                    fd,
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(rc, 0, "bind packet socket");
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    &tv as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::timeval>() as u32,
                )
            };
            tx.send(()).unwrap();
            let t0 = Instant::now();
            let mut got = vec![];
            let mut buf = [0u8; 2048];
            while t0.elapsed() < dur {
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    got.push((Instant::now(), buf[..n as usize].to_vec()));
                }
            }
            unsafe { libc::close(fd) };
            got
        });
        rx.recv().unwrap();
        Capture(h)
    }
}

fn mac(link_line: &str) -> Vec<u8> {
    let m = link_line
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("link/ether");
    m.split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect()
}

pub struct Capture(std::thread::JoinHandle<Vec<(Instant, Vec<u8>)>>);

impl Capture {
    pub fn frames(self) -> Vec<(Instant, Vec<u8>)> {
        self.0.join().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.node, &self.obs] {
            super::remove_netns(ns);
        }
    }
}
