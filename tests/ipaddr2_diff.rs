//! Differential suite (`common::diff`): `ocf:rustha:IPaddr2` against the installed
//! `ocf:heartbeat:IPaddr2` in identical namespaced labs, every case at once. Each
//! action's exit code and the addresses on the node after it must be the same, except
//! for the deliberate differences listed with the case.

mod common;

use common::diff::{self, Listed, Mark, Schedule, Script, Side};
use common::lab::Lab;
use common::*;
use std::path::{Path, PathBuf};

const UPSTREAM: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";

/// One step: an agent action, or `!ip ...` run in the node namespace between actions.
/// `probe` = monitor with interval 0; `monitor` = recurring (10 s).
struct Case {
    name: &'static str,
    params: &'static [(&'static str, &'static str)],
    setup: &'static [&'static str],
    steps: &'static [&'static str],
    differs: &'static [Listed],
    /// Why the addresses may differ from the first listed difference on ("" = never).
    state_why: &'static str,
}

const WHY_STOP: &str = "upstream runs its parameter checks before every action, so its stop \
    fails with 6 (a failed stop gets the node fenced) and its probe says 6 (bans the resource \
    everywhere); ours: stop with nothing of ours running is 0, a probe 7";
const WHY_NIC: &str = "an interface missing on this node is a local problem: 5 makes Pacemaker \
    try another node, upstream's 6 stops the resource on every node";
const WHY_PREFIX: &str = "the address is already configured with another prefix: upstream adds a \
    second entry (and its stop removes only that one, leaving the address live after a \
    failover); ours refuses to start (2: the node's own address, not added by rustha)";
const WHY_OWN: &str =
    "the node already had the address (its own, not added by rustha): upstream's \
    start says 0 and its stop removes it, so the node loses its own address; ours tells it from \
    a VIP by rustha's mark (address protocol 82): probe and monitor 7, validate-all and start 2 \
    (not on this node), stop leaves it";
const WHY_UNICAST: &str = "not a unicast address a host can hold (broadcast, multicast, \
    unspecified, loopback ::1): a configuration error everywhere, so 6 at validate; upstream \
    says 1 (\"Unable to find nic or netmask\")";
const WHY_PROTO: &str = "proto=0 (RTPROT_UNSPEC) matches no route: ours 6 at validate; upstream \
    ignores it and chooses from every route";
const WHY_LABEL: &str = "a label with a space (or a control character) is refused at validate \
    (6): the kernel would store it as given, and a label ending in CR/LF made every later monitor \
    fail; upstream accepts it";
const WHY_BRD: &str = "no address in the subnet to copy a broadcast from (the link is down): \
    upstream adds the address without any broadcast (ClusterLabs/resource-agents#656), ours \
    computes the subnet's broadcast";
const WHY_LINK: &str = "newer upstream (check_link_status, 2026) also reports a down link as \
    not running; the installed 4.12 agent still says 0 while the address cannot be reached";

fn cases() -> Vec<Case> {
    let life: &[&str] = &[
        "validate-all",
        "probe",
        "start",
        "monitor",
        "start",
        "monitor",
        "stop",
        "stop",
        "probe",
    ];
    let bad: &[&str] = &["validate-all", "start", "probe", "stop"];
    vec![
        Case {
            name: "v4, interface and prefix from the routing table",
            params: &[("ip", "192.0.2.10")],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, nic and cidr_netmask given",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "24"),
            ],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, nic given, netmask from the route",
            params: &[("ip", "192.0.2.10"), ("nic", "vip0")],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, iflabel",
            params: &[("ip", "192.0.2.10"), ("nic", "vip0"), ("iflabel", "web")],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, broadcast + on a /25",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "25"),
                ("broadcast", "+"),
            ],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, noprefixroute",
            params: &[("ip", "192.0.2.10"), ("noprefixroute", "true")],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "v4, arp_bg=false, arp_count=2",
            params: &[
                ("ip", "192.0.2.10"),
                ("arp_bg", "false"),
                ("arp_count", "2"),
            ],
            setup: &[],
            steps: &["start", "monitor", "stop"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "malformed ip",
            params: &[("ip", "192.0.2.300")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "cidr_netmask out of range",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "33"),
            ],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "unknown nic",
            params: &[("ip", "192.0.2.10"), ("nic", "nosuch0")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[(0, 5, 6, WHY_NIC), (1, 5, 6, WHY_NIC)],
            state_why: "",
        },
        Case {
            name: "no nic and no covering route",
            params: &[("ip", "198.51.100.10")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "interface label longer than 15 characters",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("iflabel", "abcdefghijk"),
            ],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[(2, 7, 6, WHY_STOP), (3, 0, 6, WHY_STOP)],
            state_why: "",
        },
        Case {
            name: "arp_count=0",
            params: &[("ip", "192.0.2.10"), ("arp_count", "0")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[(2, 7, 6, WHY_STOP), (3, 0, 6, WHY_STOP)],
            state_why: "",
        },
        Case {
            name: "unique_clone_address outside a globally-unique clone",
            params: &[("ip", "192.0.2.10"), ("unique_clone_address", "true")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[(2, 7, 6, WHY_STOP), (3, 0, 6, WHY_STOP)],
            state_why: "",
        },
        Case {
            name: "IPv6 link-local without nic",
            params: &[("ip", "fe80::10")],
            setup: &[],
            steps: &["validate-all", "start", "probe", "stop"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "IPv6 with DAD",
            params: &[("ip", "2001:db8::10"), ("arp_count", "2")],
            setup: &[],
            steps: &[
                "validate-all",
                "probe",
                "start",
                "monitor",
                "start",
                "stop",
                "stop",
            ],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "IPv6 nodad",
            params: &[
                ("ip", "2001:db8::10"),
                ("nodad", "true"),
                ("arp_count", "2"),
            ],
            setup: &[],
            steps: &["start", "monitor", "stop", "probe"],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "the address is already there with another prefix",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "24"),
            ],
            setup: &["addr add 192.0.2.10/25 dev vip0"],
            steps: &["probe", "start", "probe", "stop"],
            differs: &[(1, 2, 0, WHY_PREFIX), (2, 7, 0, WHY_PREFIX)],
            state_why: WHY_PREFIX,
        },
        Case {
            name: "the address was configured by hand (same prefix)",
            params: &[("ip", "192.0.2.10")],
            setup: &["addr add 192.0.2.10/24 brd + dev vip0"],
            steps: &["probe", "start", "monitor", "stop", "probe"],
            differs: &[(0, 7, 0, WHY_OWN), (1, 2, 0, WHY_OWN), (2, 7, 0, WHY_OWN)],
            state_why: WHY_OWN,
        },
        Case {
            name: "the node's own address (the lab's 192.0.2.1)",
            params: &[("ip", "192.0.2.1")],
            setup: &[],
            steps: &["validate-all", "probe", "start", "monitor", "stop", "probe"],
            differs: &[
                (0, 2, 0, WHY_OWN),
                (1, 7, 0, WHY_OWN),
                (2, 2, 0, WHY_OWN),
                (3, 7, 0, WHY_OWN),
            ],
            state_why: WHY_OWN,
        },
        Case {
            name: "loopback 127.0.0.3 without nic (upstream's ocft case)",
            params: &[("ip", "127.0.0.3")],
            setup: &[],
            steps: life,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "ip 0.0.0.0",
            params: &[("ip", "0.0.0.0")],
            setup: &[],
            steps: bad,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "ip IPv4-mapped IPv6",
            params: &[("ip", "::ffff:192.0.2.10")],
            setup: &[],
            steps: bad,
            differs: &[],
            state_why: "",
        },
        Case {
            name: "ip 255.255.255.255",
            params: &[("ip", "255.255.255.255")],
            setup: &[],
            steps: bad,
            differs: &[(0, 6, 1, WHY_UNICAST), (1, 6, 1, WHY_UNICAST)],
            state_why: "",
        },
        Case {
            name: "ip multicast 224.0.0.5",
            params: &[("ip", "224.0.0.5")],
            setup: &[],
            steps: bad,
            differs: &[(0, 6, 1, WHY_UNICAST), (1, 6, 1, WHY_UNICAST)],
            state_why: "",
        },
        Case {
            name: "ip ::",
            params: &[("ip", "::")],
            setup: &[],
            steps: bad,
            differs: &[(0, 6, 1, WHY_UNICAST), (1, 6, 1, WHY_UNICAST)],
            state_why: "",
        },
        Case {
            name: "ip ::1",
            params: &[("ip", "::1")],
            setup: &[],
            steps: bad,
            differs: &[(0, 6, 1, WHY_UNICAST), (1, 6, 1, WHY_UNICAST)],
            state_why: "",
        },
        Case {
            name: "ip IPv6 multicast ff02::1:2",
            params: &[("ip", "ff02::1:2")],
            setup: &[],
            steps: bad,
            differs: &[(0, 6, 1, WHY_UNICAST), (1, 6, 1, WHY_UNICAST)],
            state_why: "",
        },
        Case {
            name: "proto=0",
            params: &[("ip", "192.0.2.10"), ("proto", "0")],
            setup: &[],
            steps: bad,
            differs: &[
                (0, 6, 0, WHY_PROTO),
                (1, 6, 0, WHY_PROTO),
                (2, 7, 0, WHY_PROTO),
            ],
            state_why: WHY_PROTO,
        },
        Case {
            name: "iflabel with a space",
            params: &[("ip", "192.0.2.10"), ("nic", "vip0"), ("iflabel", "a b")],
            setup: &[],
            steps: bad,
            differs: &[
                (0, 6, 0, WHY_LABEL),
                (1, 6, 0, WHY_LABEL),
                (2, 7, 0, WHY_LABEL),
            ],
            state_why: WHY_LABEL,
        },
        Case {
            name: "address deleted behind the agent's back",
            params: &[("ip", "192.0.2.10")],
            setup: &[],
            steps: &[
                "start",
                "!ip addr del 192.0.2.10/24 dev vip0",
                "monitor",
                "stop",
                "start",
                "stop",
            ],
            differs: &[],
            state_why: "",
        },
        Case {
            name: "interface down at start (nic and netmask given)",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "24"),
            ],
            setup: &["link set vip0 down"],
            steps: &["start", "monitor", "stop"],
            differs: &[],
            state_why: WHY_BRD,
        },
        Case {
            name: "interface goes down while running",
            params: &[
                ("ip", "192.0.2.10"),
                ("nic", "vip0"),
                ("cidr_netmask", "24"),
            ],
            setup: &[],
            steps: &[
                "start",
                "!ip link set vip0 down",
                "monitor",
                "stop",
                "probe",
            ],
            differs: &[(2, 7, 0, WHY_LINK)],
            state_why: "",
        },
    ]
}

impl diff::Case for Case {
    /// Each step's exit code and the addresses on `vip0` after it.
    type Seen = Vec<(i32, Vec<String>)>;
    fn script(&self) -> Script<'_> {
        Script::new(self.name, self.steps, self.differs)
    }
    fn play(&self, side: Side) -> Self::Seen {
        // The state dir holds `<agent>/<instance>`: the link lives in a dir of its own.
        let bin = TempDir::new("diff-bin");
        let (lab, tmp, agent) = match side {
            Side::Ours => (
                Lab::new("dr"),
                TempDir::new("dr"),
                agent_link(bin.path(), "IPaddr2"),
            ),
            Side::Upstream => (Lab::new("du"), TempDir::new("du"), PathBuf::from(UPSTREAM)),
        };
        for s in self.setup {
            lab.node_ip(&s.split_whitespace().collect::<Vec<_>>());
        }
        self.steps
            .iter()
            .map(|step| {
                let code = if let Some(cmd) = step.strip_prefix("!ip ") {
                    lab.node_ip(&cmd.split_whitespace().collect::<Vec<_>>());
                    0
                } else {
                    let action = if *step == "probe" { "monitor" } else { step };
                    lab.agent(&agent, action, &self.env(tmp.path(), step).0)
                        .code
                };
                (code, without_proto(lab.addrs("vip0")))
            })
            .collect()
    }
    fn codes(seen: &Self::Seen) -> Vec<i32> {
        seen.iter().map(|s| s.0).collect()
    }
    /// The addresses after each step are the same, except from the first listed
    /// difference on when the case says why they may differ.
    fn compare(&self, ours: &Self::Seen, upstream: &Self::Seen) -> Vec<String> {
        let first_diff = self.differs.iter().map(|d| d.0).min().unwrap_or(0);
        ours.iter()
            .zip(upstream)
            .enumerate()
            .filter(|&(i, ((_, os), (_, ts)))| {
                os != ts && (self.state_why.is_empty() || i < first_diff)
            })
            .map(|(i, ((_, os), (_, ts)))| {
                format!(
                    "{}: step {} ({}): addresses differ:\n  rustha    {os:?}\n  heartbeat {ts:?}",
                    self.name,
                    i + 1,
                    self.steps[i]
                )
            })
            .collect()
    }
}

impl Case {
    fn env(&self, tmp: &Path, step: &str) -> Env {
        let mut e = Env::pacemaker("diff", tmp).var("HA_RSCTMP", tmp.to_str().unwrap());
        for (k, v) in self.params {
            e = e.param(k, v);
        }
        if step == "monitor" {
            e = e.interval(10000);
        }
        e
    }
}

/// iproute2 >= 6.3 shows an address's protocol (`proto 82` on ours); the addresses are
/// compared without it.
fn without_proto(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut out = vec![];
            let mut w = l.split_whitespace();
            while let Some(x) = w.next() {
                if x == "proto" {
                    w.next();
                } else {
                    out.push(x);
                }
            }
            out.join(" ")
        })
        .collect()
}

#[test]
fn ipaddr2_matches_upstream_except_for_documented_differences() {
    require_root();
    assert!(
        Path::new(UPSTREAM).exists(),
        "{UPSTREAM} is missing: `.ci/run` installs resource-agents"
    );
    let cases = cases();
    let cmp = diff::compare(&cases, Schedule::AllAtOnce);
    let mut report = String::from(
        "| case | steps | rustha | heartbeat | deliberate differences |\n|---|---|---|---|---|\n",
    );
    for p in &cmp.played {
        let c = p.case;
        let codes = |f: fn(&(i32, i32, Mark)) -> i32| {
            p.codes
                .iter()
                .map(|x| f(x).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        report += &format!(
            "| {} | {} | {} | {} | {} |\n",
            c.name,
            c.steps.join(", "),
            codes(|x| x.0),
            codes(|x| x.1),
            c.differs
                .iter()
                .map(|d| format!("step {}: {} vs {}", d.0 + 1, d.1, d.2))
                .collect::<Vec<_>>()
                .join("; ")
                + if c.state_why.is_empty() {
                    ""
                } else {
                    " (addresses differ, see case)"
                }
        );
    }
    cmp.finish("ipaddr2.md", &report);
}

/// The harness's judging of one step, without a lab.
#[test]
fn judging_codes() {
    use diff::{judge, ANY_CODE};
    let l: Listed = (0, 5, 6, "");
    let any: Listed = (0, 0, ANY_CODE, "");
    assert_eq!(judge(None, 0, 0), Mark::Same);
    assert_eq!(judge(None, 0, 1), Mark::Differs);
    assert_eq!(judge(Some(&l), 5, 6), Mark::Deliberate);
    assert_eq!(judge(Some(&l), 5, 5), Mark::Unexpected);
    assert_eq!(judge(Some(&l), 6, 6), Mark::Unexpected);
    assert_eq!(judge(Some(&any), 0, 1), Mark::Deliberate);
    assert_eq!(judge(Some(&any), 1, 1), Mark::Unexpected);
}
