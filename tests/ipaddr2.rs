//! IPaddr2 against a real kernel: a node and an observer namespace on one veth link,
//! TEST-NET addresses only. What the observer sees is what a client would see.

mod common;

use common::lab::{Lab, OBS_V6};
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86DD;

struct T {
    lab: Lab,
    _dir: TempDir,
    state: TempDir,
    link: PathBuf,
}

impl T {
    fn new(tag: &str) -> T {
        let dir = TempDir::new(tag);
        let link = agent_link(dir.path(), "IPaddr2");
        T {
            lab: Lab::new(tag),
            _dir: dir,
            state: TempDir::new(&format!("{tag}-state")),
            link,
        }
    }
    fn env(&self, instance: &str, ip: &str) -> Env {
        Env::pacemaker(instance, self.state.path()).param("ip", ip)
    }
    fn run(&self, env: &Env, action: &str) -> Run {
        self.lab.agent(&self.link, action, &env.0)
    }
    fn ok(&self, env: &Env, action: &str) {
        let r = self.run(env, action);
        assert_eq!(r.code, 0, "{action}: {}", r.stderr);
    }
    fn record(&self, instance: &str) -> Option<String> {
        std::fs::read_to_string(self.state.path().join("IPaddr2").join(instance)).ok()
    }
}

/// ARP frames (payload only) announcing `ip`: (arrival, sender MAC, op).
fn garps(frames: &[(Instant, Vec<u8>)], ip: [u8; 4]) -> Vec<(Instant, Vec<u8>, u16)> {
    frames
        .iter()
        .filter(|(_, p)| p.len() >= 28 && p[14..18] == ip && p[24..28] == ip)
        .map(|(t, p)| (*t, p[8..14].to_vec(), u16::from_be_bytes([p[6], p[7]])))
        .collect()
}

/// Unsolicited neighbour advertisements for `target` (IPv6 payload, no extension
/// headers): to all nodes, Solicited flag clear (the node's answers to the observer's own
/// solicitations are not ours to count).
fn nas(frames: &[(Instant, Vec<u8>)], target: std::net::Ipv6Addr) -> Vec<(Instant, Vec<u8>)> {
    frames
        .iter()
        .filter(|(_, p)| {
            p.len() >= 72
                && p[6] == 58
                && p[24..40] == std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets()
                && p[40] == 136
                && p[44] & 0x40 == 0
                && p[48..64] == target.octets()
        })
        .map(|(t, p)| (*t, p[66..72].to_vec()))
        .collect()
}

fn gaps_ms(times: &[Instant]) -> Vec<u128> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect()
}

#[test]
fn ipv4_vip_answers_ping_and_the_gratuitous_arps_arrive_with_count_and_spacing() {
    let t = T::new("v4");
    // The observer has a stale entry for the VIP pointing elsewhere: the GARPs must fix it.
    t.lab.obs_ip(&[
        "neigh",
        "add",
        "192.0.2.10",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "obs0",
        "nud",
        "stale",
    ]);
    let env = t
        .env("v4", "192.0.2.10")
        .param("arp_count", "4")
        .param("arp_interval", "150");
    assert_eq!(t.run(&env, "monitor").code, 7, "probe before start");
    let cap = t.lab.capture(ETH_P_ARP, Duration::from_millis(1500));
    t.ok(&env, "start");
    // arp_bg defaults to true for IPv4: the sender is a background helper.
    let rec = t.record("v4").expect("record");
    assert!(
        rec.lines().any(|l| l.starts_with("pid=")),
        "background sender recorded: {rec}"
    );
    assert!(
        t.lab
            .addrs("vip0")
            .iter()
            .any(|l| l.starts_with("inet 192.0.2.10/24 brd 192.0.2.255")),
        "{:?}",
        t.lab.addrs("vip0")
    );
    t.ok(&env, "monitor");
    assert!(t.lab.ping_from_observer("192.0.2.10"));
    let frames = cap.frames();
    let g = garps(&frames, [192, 0, 2, 10]);
    let mac = t.lab.node_mac();
    assert_eq!(g.len(), 4, "4 gratuitous ARPs, got {g:?}");
    assert!(g.iter().all(|(_, sha, op)| *sha == mac && *op == 1));
    let gaps = gaps_ms(&g.iter().map(|x| x.0).collect::<Vec<_>>());
    assert!(
        gaps.iter().all(|&ms| (120..=260).contains(&ms)),
        "spacing {gaps:?} ms, want 150"
    );
    let neigh = t
        .lab
        .obs_ip(&["neigh", "show", "192.0.2.10", "dev", "obs0"]);
    let want = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        neigh.contains(&want),
        "observer's entry updated by the GARPs: {neigh}"
    );
    t.ok(&env, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.10"));
    assert!(t.record("v4").is_none());
    assert_eq!(t.run(&env, "monitor").code, 7);
    assert!(!t.lab.ping_from_observer("192.0.2.10"));
}

#[test]
fn send_arp_opts_dash_a_sends_replies() {
    let t = T::new("arpA");
    let env = t
        .env("arpA", "192.0.2.11")
        .param("arp_count", "2")
        .param("arp_interval", "50")
        .param("arp_bg", "false")
        .param("send_arp_opts", "-A");
    let cap = t.lab.capture(ETH_P_ARP, Duration::from_millis(600));
    t.ok(&env, "start");
    let g = garps(&cap.frames(), [192, 0, 2, 11]);
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(g.iter().all(|x| x.2 == 2), "ARP replies");
    t.ok(&env, "stop");
}

#[test]
fn ipv6_vip_waits_for_dad_then_sends_unsolicited_nas() {
    let t = T::new("v6");
    let vip: std::net::Ipv6Addr = "2001:db8::10".parse().unwrap();
    let env = t
        .env("v6", "2001:db8::10")
        .param("arp_count", "3")
        .param("arp_interval", "100");
    let cap = t.lab.capture(ETH_P_IPV6, Duration::from_millis(4000));
    t.ok(&env, "start");
    // Start returned after DAD: the address is usable, not tentative.
    let a = t.lab.addrs("vip0");
    let line = a
        .iter()
        .find(|l| l.contains("2001:db8::10/64"))
        .expect("added");
    assert!(!line.contains("tentative"), "{line}");
    assert!(t.lab.ping_from_observer("2001:db8::10"));
    t.ok(&env, "monitor");
    // The address label keeps the VIP out of source-address selection.
    assert!(t
        .lab
        .node_ip(&["addrlabel"])
        .contains("2001:db8::10/128 label 99"));
    let frames = cap.frames();
    let n = nas(&frames, vip);
    assert_eq!(n.len(), 3, "3 unsolicited NAs");
    assert!(n.iter().all(|(_, mac)| *mac == t.lab.node_mac()));
    let gaps = gaps_ms(&n.iter().map(|x| x.0).collect::<Vec<_>>());
    assert!(gaps.iter().all(|&ms| (80..=200).contains(&ms)), "{gaps:?}");
    t.ok(&env, "stop");
    assert!(!t.lab.has("vip0", "2001:db8::10"));
    assert!(!t.lab.node_ip(&["addrlabel"]).contains("2001:db8::10/128"));
}

#[test]
fn ipv6_nodad_and_preferred_lft_zero() {
    let t = T::new("nodad");
    let env = t
        .env("nodad", "2001:db8::11")
        .param("nodad", "true")
        .param("preferred_lft", "0")
        .param("arp_count", "1");
    t.ok(&env, "start");
    let a = t.lab.addrs("vip0");
    let line = a
        .iter()
        .find(|l| l.contains("2001:db8::11/64"))
        .expect("added");
    assert!(
        line.contains("nodad") && line.contains("deprecated"),
        "{line}"
    );
    t.ok(&env, "monitor");
    t.ok(&env, "stop");
}

#[test]
fn duplicate_ipv6_address_fails_start_and_leaves_nothing() {
    let t = T::new("dup6");
    t.lab
        .obs_ip(&["addr", "add", "2001:db8::12/64", "dev", "obs0", "nodad"]);
    let env = t.env("dup6", "2001:db8::12");
    let r = t.run(&env, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("duplicate address"),
        "{}",
        r.stderr
    );
    assert!(
        !t.lab.has("vip0", "2001:db8::12"),
        "{:?}",
        t.lab.addrs("vip0")
    );
    assert!(t.record("dup6").is_none());
    assert_eq!(t.run(&env, "monitor").code, 7);
    t.ok(&env, "stop");
    let _ = OBS_V6;
}

#[test]
fn run_arping_refuses_an_ipv4_address_in_use() {
    let t = T::new("dup4");
    t.lab
        .obs_ip(&["addr", "add", "192.0.2.13/24", "dev", "obs0"]);
    let env = t.env("dup4", "192.0.2.13").param("run_arping", "true");
    let r = t.run(&env, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("collision"), "{}", r.stderr);
    assert!(!t.lab.has("vip0", "192.0.2.13"));
    assert!(t.record("dup4").is_none());
    // A free address passes the same check.
    let env = t.env("free4", "192.0.2.14").param("run_arping", "true");
    t.ok(&env, "start");
    t.ok(&env, "stop");
}

#[test]
fn address_deleted_behind_our_back_is_not_running_and_stop_succeeds() {
    let t = T::new("del");
    let env = t.env("del", "192.0.2.15");
    t.ok(&env, "start");
    t.lab
        .node_ip(&["addr", "del", "192.0.2.15/24", "dev", "vip0"]);
    let r = t.run(&env.clone().interval(10000), "monitor");
    assert_eq!(r.code, 7, "{}", r.stderr);
    t.ok(&env, "stop");
    assert!(t.record("del").is_none());
}

#[test]
fn interface_down_is_not_running_and_start_brings_it_up() {
    let t = T::new("down");
    // nic and netmask given: a down link has no connected route to choose from.
    let env = t
        .env("down", "192.0.2.16")
        .param("nic", "vip0")
        .param("cidr_netmask", "24");
    t.ok(&env, "start");
    t.lab.node_ip(&["link", "set", "vip0", "down"]);
    assert_eq!(t.run(&env.clone().interval(10000), "monitor").code, 7);
    // check_link_status=false: only the address counts (a probe without a record).
    let lax = t
        .env("lax", "192.0.2.16")
        .param("nic", "vip0")
        .param("cidr_netmask", "24")
        .param("check_link_status", "false");
    t.ok(&lax, "monitor");
    t.ok(&env, "stop");
    // Starting on a down interface brings it up (as upstream's `ip link set up`).
    t.ok(&env, "start");
    assert!(t.lab.node_ip(&["link", "show", "vip0"]).contains(",UP"));
    t.ok(&env, "monitor");
    t.ok(&env, "stop");
}

#[test]
fn label_and_explicit_broadcast_and_noprefixroute() {
    let t = T::new("lbl");
    let env = t
        .env("lbl", "192.0.2.17")
        .param("nic", "vip0")
        .param("cidr_netmask", "255.255.255.128")
        .param("iflabel", "web")
        .param("broadcast", "-")
        .param("noprefixroute", "true");
    t.ok(&env, "start");
    let a = t.lab.addrs("vip0");
    assert!(
        a.iter()
            .any(|l| l.starts_with("inet 192.0.2.17/25 brd 192.0.2.0 ")
                && l.ends_with("vip0:web")
                && l.contains("noprefixroute")),
        "{a:?}"
    );
    t.ok(&env, "monitor");
    t.ok(&env, "stop");
    let long = t
        .env("long", "192.0.2.17")
        .param("nic", "vip0")
        .param("iflabel", "abcdefghijk");
    let r = t.run(&long, "validate-all");
    assert_eq!(r.code, 6);
    assert!(r.reason().unwrap().contains("15 characters"));
}

#[test]
fn two_vips_on_one_nic_in_parallel() {
    let t = T::new("two");
    let a = t.env("a", "192.0.2.20");
    let b = t.env("b", "192.0.2.21");
    std::thread::scope(|s| {
        s.spawn(|| t.ok(&a, "start"));
        s.spawn(|| t.ok(&b, "start"));
    });
    t.ok(&a, "monitor");
    t.ok(&b, "monitor");
    t.ok(&a, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.20"));
    assert!(t.lab.has("vip0", "192.0.2.21"), "stopping a left b alone");
    t.ok(&b, "monitor");
    t.ok(&b, "stop");
    assert!(
        t.lab.has("vip0", "192.0.2.1"),
        "the node's own address is untouched"
    );
}

#[test]
fn twenty_instances_started_and_stopped_concurrently_without_cross_talk() {
    let t = T::new("twenty");
    let envs: Vec<Env> = (0..20)
        .map(|i| t.env(&format!("vip{i}"), &format!("192.0.2.{}", 100 + i)))
        .collect();
    std::thread::scope(|s| {
        for e in &envs {
            s.spawn(|| t.ok(e, "start"));
        }
    });
    for (i, e) in envs.iter().enumerate() {
        t.ok(e, "monitor");
        assert!(t.lab.has("vip0", &format!("192.0.2.{}", 100 + i)));
    }
    // Stop the even ones concurrently; the odd ones must stay.
    std::thread::scope(|s| {
        for e in envs.iter().step_by(2) {
            s.spawn(|| t.ok(e, "stop"));
        }
    });
    for (i, e) in envs.iter().enumerate() {
        let want = if i % 2 == 0 { 7 } else { 0 };
        assert_eq!(t.run(e, "monitor").code, want, "vip{i}");
    }
    std::thread::scope(|s| {
        for e in envs.iter().skip(1).step_by(2) {
            s.spawn(|| t.ok(e, "stop"));
        }
    });
    assert_eq!(
        t.lab
            .addrs("vip0")
            .iter()
            .filter(|l| l.starts_with("inet "))
            .count(),
        1,
        "only the node's own address is left: {:?}",
        t.lab.addrs("vip0")
    );
}

#[test]
fn background_sender_is_stopped_by_stop_and_a_dead_one_does_not_fail_stop() {
    let t = T::new("bg");
    // 100 ARPs 200 ms apart: the sender lives for 20 s unless stop ends it.
    let env = t.env("bg", "192.0.2.30").param("arp_count", "100");
    t.ok(&env, "start");
    let rec = t.record("bg").expect("record");
    let pid: i32 = rec
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .expect("sender recorded")
        .parse()
        .unwrap();
    assert!(alive(pid));
    t.ok(&env, "stop");
    // Stop SIGSTOPs then SIGKILLs it (it cannot send once stopped); its exit finishes
    // on its own.
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!alive(pid), "stop ended the background sender");

    let env = t.env("bg2", "192.0.2.31").param("arp_count", "100");
    t.ok(&env, "start");
    let rec = t.record("bg2").unwrap();
    let pid: i32 = rec
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    kill(pid);
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    t.ok(&env, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.31"));
}

#[test]
fn interface_and_prefix_come_from_the_routing_table() {
    let t = T::new("findif");
    // A more specific connected route on a second interface wins over vip0's /24.
    t.lab.node_ip(&[
        "link", "add", "dum0", "type", "veth", "peer", "name", "dum1",
    ]);
    t.lab.node_ip(&["link", "set", "dum0", "up"]);
    t.lab.node_ip(&["link", "set", "dum1", "up"]);
    t.lab
        .node_ip(&["route", "add", "192.0.2.128/25", "dev", "dum0"]);
    let e1 = t.env("f1", "192.0.2.40");
    let e2 = t.env("f2", "192.0.2.140");
    t.ok(&e1, "start");
    t.ok(&e2, "start");
    assert!(t
        .lab
        .addrs("vip0")
        .iter()
        .any(|l| l.contains("192.0.2.40/24")));
    assert!(
        t.lab
            .addrs("dum0")
            .iter()
            .any(|l| l.contains("192.0.2.140/25")),
        "{:?}",
        t.lab.addrs("dum0")
    );
    // Monitor uses the record, not a new lookup: removing the route changes nothing.
    t.lab
        .node_ip(&["route", "del", "192.0.2.128/25", "dev", "dum0"]);
    t.ok(&e2, "monitor");
    t.ok(&e1, "stop");
    t.ok(&e2, "stop");
    assert!(!t.lab.has("dum0", "192.0.2.140"));
    // No covering route and no nic: validate 1, probe 7, stop 0, start 1.
    let none = t.env("f3", "198.51.100.10");
    assert_eq!(t.run(&none, "validate-all").code, 1);
    assert_eq!(t.run(&none, "monitor").code, 7);
    assert_eq!(t.run(&none, "start").code, 1);
    t.ok(&none, "stop");
    // An interface that does not exist here: 5 (this node only), probe 7, stop 0.
    let gone = t.env("f4", "192.0.2.41").param("nic", "nosuch0");
    let r = t.run(&gone, "start");
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("nosuch0"));
    assert_eq!(t.run(&gone, "monitor").code, 7);
    t.ok(&gone, "stop");
}

#[test]
fn network_namespace_parameter_manages_the_address_inside_it() {
    let t = T::new("netns");
    // Run the agent in the test's own namespace; the parameter moves it into the lab.
    private_netns();
    let env = t
        .env("ns", "192.0.2.50")
        .param("network_namespace", &t.lab.node);
    let r = env.run(&t.link, "start");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.lab.has("vip0", "192.0.2.50"));
    assert_eq!(env.run(&t.link, "monitor").code, 0);
    assert_eq!(env.run(&t.link, "stop").code, 0);
    assert!(!t.lab.has("vip0", "192.0.2.50"));
    let missing = t
        .env("ns2", "192.0.2.51")
        .param("network_namespace", "rh-no-such-ns");
    assert_eq!(missing.run(&t.link, "validate-all").code, 5);
    assert_eq!(missing.run(&t.link, "monitor").code, 7);
    assert_eq!(missing.run(&t.link, "stop").code, 0);
}

#[test]
fn lvs_support_moves_the_loopback_address_and_puts_it_back() {
    let t = T::new("lvs");
    t.lab
        .node_ip(&["addr", "add", "192.0.2.60/32", "dev", "lo"]);
    let env = t.env("lvs", "192.0.2.60").param("lvs_support", "true");
    t.ok(&env, "start");
    assert!(!t.lab.has("lo", "192.0.2.60"));
    assert!(t.lab.has("vip0", "192.0.2.60"));
    t.ok(&env, "stop");
    assert!(t.lab.has("lo", "192.0.2.60"), "restored on lo");
    assert!(!t.lab.has("vip0", "192.0.2.60"));
}

#[test]
fn unsupported_cluster_ip_mode_is_refused_with_6() {
    let t = T::new("cip");
    let clone = t
        .env("cip", "192.0.2.70")
        .var("OCF_RESKEY_CRM_meta_clone_max", "2");
    let r = t.run(&clone, "validate-all");
    assert_eq!(r.code, 6);
    assert!(r.reason().unwrap().contains("CLUSTERIP"), "{}", r.stderr);
    assert_eq!(t.run(&clone, "start").code, 6);
    let hash = t
        .env("cip2", "192.0.2.70")
        .param("clusterip_hash", "sourceip");
    assert_eq!(t.run(&hash, "validate-all").code, 6);
    assert!(!t.lab.has("vip0", "192.0.2.70"));
    // unique_clone_address in a globally-unique clone: each clone its own address.
    let u = t
        .env("u", "192.0.2.80")
        .param("unique_clone_address", "true")
        .var("OCF_RESKEY_CRM_meta_clone_max", "2")
        .var("OCF_RESKEY_CRM_meta_clone", "1")
        .var("OCF_RESKEY_CRM_meta_globally_unique", "true");
    t.ok(&u, "start");
    assert!(t.lab.has("vip0", "192.0.2.81"));
    t.ok(&u, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.81"));
}

#[test]
fn arp_count_refresh_sends_on_every_monitor_and_flush_routes_stop_works() {
    let t = T::new("refresh");
    let env = t
        .env("refresh", "192.0.2.90")
        .param("arp_count", "1")
        .param("arp_count_refresh", "2")
        .param("arp_interval", "50")
        .param("flush_routes", "true");
    t.ok(&env, "start");
    // Let the start announcement pass, then count what one monitor sends.
    std::thread::sleep(Duration::from_millis(300));
    let cap = t.lab.capture(ETH_P_ARP, Duration::from_millis(600));
    t.ok(&env.clone().interval(10000), "monitor");
    let g = garps(&cap.frames(), [192, 0, 2, 90]);
    assert_eq!(g.len(), 2, "arp_count_refresh=2 on a monitor: {g:?}");
    t.ok(&env, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.90"));
}

#[test]
fn proto_restricts_the_routes_considered() {
    let t = T::new("proto");
    // vip0's connected route is proto kernel: with proto=static nothing matches.
    let env = t.env("proto", "192.0.2.91").param("proto", "static");
    let r = t.run(&env, "validate-all");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.reason().unwrap().contains("proto static"));
    let env = t.env("proto2", "192.0.2.91").param("proto", "kernel");
    t.ok(&env, "start");
    assert!(t
        .lab
        .addrs("vip0")
        .iter()
        .any(|l| l.contains("192.0.2.91/24")));
    t.ok(&env, "stop");
    let bad = t
        .env("proto3", "192.0.2.91")
        .param("proto", "no-such-proto");
    assert_eq!(t.run(&bad, "validate-all").code, 6);
}

/// `ip -o addr show dev <dev>` lines holding `ip/`.
fn lines_with(t: &T, dev: &str, ip: &str) -> Vec<String> {
    t.lab
        .node_ip(&["-o", "addr", "show", "dev", dev])
        .lines()
        .filter(|l| l.contains(&format!(" {ip}/")))
        .map(str::to_string)
        .collect()
}

#[test]
fn loopback_vip_without_nic_gets_scope_host_as_iproute2_gives_it() {
    // Upstream's ocft case "Attachment to loopback interface": lo has 127.0.0.1/8.
    let t = T::new("lo");
    let env = t.env("lo", "127.0.0.3");
    assert_eq!(t.run(&env, "monitor").code, 7, "probe before start");
    let r = t.run(&env, "start");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l = lines_with(&t, "lo", "127.0.0.3");
    assert!(
        l.len() == 1 && l[0].contains("127.0.0.3/8") && l[0].contains("scope host"),
        "{l:?}"
    );
    t.ok(&env, "monitor");
    t.ok(&env.clone().interval(10000), "monitor");
    t.ok(&env, "start");
    t.ok(&env, "stop");
    assert!(lines_with(&t, "lo", "127.0.0.3").is_empty());
    assert!(t.lab.has("lo", "127.0.0.1"), "lo's own address stays");
    assert_eq!(t.run(&env, "monitor").code, 7);
}

#[test]
fn unusable_addresses_protocols_and_labels_are_refused_at_validate_with_6() {
    let t = T::new("bad");
    let before = (t.lab.addrs("vip0"), t.lab.addrs("lo"));
    // (parameters, what the exit reason says)
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("ip", "0.0.0.0")], "not a usable unicast address"),
        (&[("ip", "0.1.2.3")], "not a usable unicast address"),
        (&[("ip", "255.255.255.255")], "not a usable unicast address"),
        (&[("ip", "224.0.0.5")], "not a usable unicast address"),
        (&[("ip", "239.255.1.2")], "not a usable unicast address"),
        (&[("ip", "::")], "not a usable unicast address"),
        (&[("ip", "::1")], "not a usable unicast address"),
        (&[("ip", "ff02::1")], "not a usable unicast address"),
        (&[("ip", "ff05::1:3")], "not a usable unicast address"),
        (
            &[("ip", "::ffff:192.0.2.9")],
            "not a usable unicast address",
        ),
        (
            &[("ip", "224.1.1.1"), ("nic", "vip0"), ("cidr_netmask", "24")],
            "not a usable unicast address",
        ),
        (&[("ip", "192.0.2.9"), ("proto", "0")], "RTPROT_UNSPEC"),
        (
            &[("ip", "192.0.2.9"), ("proto", "256")],
            "not a route protocol",
        ),
        (
            &[("ip", "192.0.2.9"), ("nic", "vip0"), ("iflabel", "a b")],
            "printable ASCII",
        ),
        (
            &[
                ("ip", "192.0.2.9"),
                ("nic", "vip0"),
                ("iflabel", "w\u{e9}b"),
            ],
            "printable ASCII",
        ),
        (
            &[("ip", "192.0.2.9"), ("nic", "vip0:a b")],
            "printable ASCII",
        ),
        (
            &[("ip", "192.0.2.9"), ("iflabel", "abcdefghijklmn")],
            "15 characters",
        ),
        (
            &[
                ("ip", "192.0.2.9"),
                ("nic", "vip0"),
                ("iflabel", "abcdefghijk"),
            ],
            "15 characters",
        ),
        // Control characters: refused whichever check sees them first (the parameter
        // parser, or the label check); a label the kernel would store with a TAB or
        // CR/LF makes every later monitor fail.
        (
            &[("ip", "192.0.2.9"), ("nic", "vip0"), ("iflabel", "\t\n")],
            "",
        ),
        (
            &[("ip", "192.0.2.9"), ("nic", "vip0"), ("iflabel", "web\r")],
            "",
        ),
        (
            &[("ip", "192.0.2.9"), ("nic", "vip0"), ("iflabel", "web\n")],
            "",
        ),
    ];
    for (i, (params, why)) in cases.iter().enumerate() {
        let mut env = Env::pacemaker(&format!("bad{i}"), t.state.path());
        for (k, v) in *params {
            env = env.param(k, v);
        }
        for action in ["validate-all", "start"] {
            let r = t.run(&env, action);
            assert_eq!(r.code, 6, "{params:?} {action}: {}", r.stderr);
            let reason = r.reason().unwrap_or_default();
            assert!(reason.contains(why), "{params:?} {action}: {reason}");
        }
        assert_eq!(t.run(&env, "monitor").code, 7, "{params:?} probe");
        let r = t.run(&env, "stop");
        assert_eq!(r.code, 0, "{params:?} stop: {}", r.stderr);
    }
    assert_eq!(
        (t.lab.addrs("vip0"), t.lab.addrs("lo")),
        before,
        "nothing was added"
    );
    // The longest label that fits is accepted and kept as given.
    let ok = t
        .env("okl", "192.0.2.9")
        .param("nic", "vip0")
        .param("iflabel", "abcdefghij");
    t.ok(&ok, "start");
    assert!(lines_with(&t, "vip0", "192.0.2.9")[0].contains("vip0:abcdefghij"));
    t.ok(&ok.clone().interval(10000), "monitor");
    t.ok(&ok, "stop");
}

#[test]
fn the_nodes_own_address_is_refused_by_start_and_survives_stop() {
    let t = T::new("own");
    // The lab's own 192.0.2.1/24, and one more the admin added by hand.
    t.lab
        .node_ip(&["addr", "add", "192.0.2.9/24", "dev", "vip0"]);
    for (inst, ip) in [("own1", "192.0.2.1"), ("own9", "192.0.2.9")] {
        let env = t.env(inst, ip);
        let r = t.run(&env, "validate-all");
        assert_eq!(r.code, 2, "{ip}: validate-all tells first: {}", r.stderr);
        assert_eq!(t.run(&env, "monitor").code, 7, "{ip}: probe: not ours");
        let r = t.run(&env, "start");
        assert_eq!(r.code, 2, "{ip}: start: {}", r.stderr);
        assert!(
            r.reason().unwrap().contains("not added by rustha"),
            "{}",
            r.stderr
        );
        assert!(t.record(inst).is_none(), "no record of a refused start");
        assert_eq!(t.run(&env.clone().interval(10000), "monitor").code, 7);
        t.ok(&env, "stop");
        assert!(t.lab.has("vip0", ip), "{ip} survives stop");
    }
    // Also with a record that points at it: an address replaced by hand (it lost our
    // mark) is not removed by stop, and monitor no longer calls it ours.
    let env = t.env("repl", "192.0.2.33");
    t.ok(&env, "start");
    t.lab
        .node_ip(&["addr", "del", "192.0.2.33/24", "dev", "vip0"]);
    t.lab
        .node_ip(&["addr", "add", "192.0.2.33/24", "dev", "vip0"]);
    assert_eq!(t.run(&env.clone().interval(10000), "monitor").code, 7);
    t.ok(&env, "stop");
    assert!(t.lab.has("vip0", "192.0.2.33"), "the admin's address stays");
    assert!(t.record("repl").is_none());
}

#[test]
fn our_vip_whose_record_was_lost_is_still_found_by_probe_start_and_stop() {
    let t = T::new("lost");
    let rec = t.state.path().join("IPaddr2").join("lost");
    let env = t.env("lost", "192.0.2.34").param("arp_count", "100");
    t.ok(&env, "start");
    std::fs::remove_file(&rec).unwrap();
    assert_eq!(t.run(&env, "monitor").code, 0, "probe without the record");
    t.ok(&env.clone().interval(10000), "monitor");
    // A start again finds its own address (it records it anew).
    t.ok(&env, "start");
    assert!(rec.exists());
    std::fs::remove_file(&rec).unwrap();
    let r = t.run(&env, "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!t.lab.has("vip0", "192.0.2.34"), "stop removed it");
    assert_eq!(t.run(&env, "monitor").code, 7);
    assert!(
        t.lab.has("vip0", "192.0.2.1"),
        "the node's own address stays"
    );
    // IPv6 too, and on the nic given.
    let env6 = t.env("lost6", "2001:db8::34").param("nic", "vip0");
    t.ok(&env6, "start");
    std::fs::remove_file(t.state.path().join("IPaddr2").join("lost6")).unwrap();
    assert_eq!(t.run(&env6, "monitor").code, 0);
    t.ok(&env6, "stop");
    assert!(!t.lab.has("vip0", "2001:db8::34"));
    assert!(!t.lab.node_ip(&["addrlabel"]).contains("2001:db8::34/128"));
}

#[test]
fn an_unusable_state_directory_still_gives_probe_7_stop_0_and_finds_our_vip_by_its_mark() {
    let t = T::new("sdir");
    let plain = t.state.path().join("not-a-dir");
    std::fs::write(&plain, "").unwrap();
    let broken = |inst: &str, ip: &str| {
        Env::pacemaker(inst, &plain)
            .param("ip", ip)
            .param("arp_count", "1")
    };
    // Nothing of ours: probe 7, stop 0, the node's own address untouched.
    let e = broken("sd", "192.0.2.35");
    assert_eq!(t.run(&e, "monitor").code, 7);
    t.ok(&e, "stop");
    let own = broken("sdown", "192.0.2.1");
    assert_eq!(t.run(&own, "monitor").code, 7);
    t.ok(&own, "stop");
    assert!(t.lab.has("vip0", "192.0.2.1"));
    // Start cannot record: it fails and leaves nothing.
    assert_ne!(t.run(&e, "start").code, 0);
    assert!(!t.lab.has("vip0", "192.0.2.35"));
    // Our VIP, started while the directory was usable: found without the record.
    let good = t.env("sd", "192.0.2.35").param("arp_count", "1");
    t.ok(&good, "start");
    assert_eq!(t.run(&e, "monitor").code, 0);
    t.ok(&e, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.35"));
    assert_eq!(t.run(&e, "monitor").code, 7);
}

#[test]
fn a_300_character_instance_name_starts_monitors_and_stops() {
    let t = T::new("long");
    let inst = "r".repeat(300);
    let env = t.env(&inst, "192.0.2.36");
    assert_eq!(t.run(&env, "monitor").code, 7);
    t.ok(&env, "start");
    t.ok(&env, "monitor");
    t.ok(&env.clone().interval(10000), "monitor");
    t.ok(&env, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.36"));
    assert_eq!(t.run(&env, "monitor").code, 7);
}

#[test]
fn two_starts_of_one_instance_at_once_both_succeed_and_keep_the_address() {
    // Without the per-instance lock: a start that finds the address added meanwhile by
    // the other start must not roll it back (it did not add it).
    let t = T::new("race");
    for round in 0..8 {
        let env = t.env("race", "192.0.2.37").param("arp_count", "1");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| t.run(&env, "start"));
            let b = s.spawn(|| t.run(&env, "start"));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(
            (a.code, b.code),
            (0, 0),
            "round {round}:\n{}\n{}",
            a.stderr,
            b.stderr
        );
        assert!(t.lab.has("vip0", "192.0.2.37"), "round {round}");
        t.ok(&env.clone().interval(10000), "monitor");
        t.ok(&env, "stop");
        assert!(!t.lab.has("vip0", "192.0.2.37"), "round {round}");
    }
}

fn sender_pid(rec: &str) -> i32 {
    rec.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .expect("sender recorded")
        .parse()
        .unwrap()
}

fn ends_soon(pid: i32) -> bool {
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

#[test]
fn a_stop_without_record_ends_only_the_announcer_of_its_own_node() {
    // Two nodes of one host: one PID namespace, a network namespace each.
    let a = T::new("annA");
    let b = T::new("annB");
    let env = a.env("ann", "192.0.2.38").param("arp_count", "100");
    a.ok(&env, "start");
    let pid = sender_pid(&a.record("ann").unwrap());
    assert!(alive(pid));
    // The same resource, stopped on the other node, where it has no record.
    let r = b.run(&b.env("ann", "192.0.2.38"), "stop");
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A silenced process is stopped ('T') before it is killed, and an exiting one has
    // no command line any more: both show at once when stop returns.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| st.rsplit_once(") ").map(|(_, rest)| rest.chars().next()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        matches!(state, Some(Some('R' | 'S' | 'D'))) && !cmdline.is_empty(),
        "the other node's stop left this node's announcer alone: state {state:?}"
    );
    assert!(a.lab.has("vip0", "192.0.2.38"));
    // Here, with the record lost, stop finds and ends it.
    std::fs::remove_file(a.state.path().join("IPaddr2").join("ann")).unwrap();
    a.ok(&env, "stop");
    assert!(
        ends_soon(pid),
        "stop ended the announcer found by its marker"
    );
    assert!(!a.lab.has("vip0", "192.0.2.38"));
}

#[test]
fn a_start_with_other_parameters_does_not_orphan_the_address_this_resource_holds() {
    // An admin's force-start with another ip under the same resource name.
    let t = T::new("other");
    let first = t.env("other", "192.0.2.40").param("arp_count", "1");
    let second = t.env("other", "192.0.2.41").param("arp_count", "1");
    t.ok(&first, "start");
    let r = t.run(&second, "start");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.reason().unwrap().contains("already holds 192.0.2.40/24"),
        "{}",
        r.stderr
    );
    assert!(!t.lab.has("vip0", "192.0.2.41"));
    assert!(t.lab.has("vip0", "192.0.2.40"));
    t.ok(&second, "stop");
    assert!(
        !t.lab.has("vip0", "192.0.2.40") && !t.lab.has("vip0", "192.0.2.41"),
        "nothing left after a stop that returned 0: {:?}",
        t.lab.addrs("vip0")
    );
    // A record whose address is gone (stale) does not stand in the way.
    t.ok(&first, "start");
    t.lab
        .node_ip(&["addr", "del", "192.0.2.40/24", "dev", "vip0"]);
    t.ok(&second, "start");
    assert!(t.lab.has("vip0", "192.0.2.41"));
    t.ok(&second, "stop");
    assert!(!t.lab.has("vip0", "192.0.2.41"));
}
