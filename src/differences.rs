//! The deliberate differences from each upstream agent, written once: the README's
//! "compared with ocf:heartbeat:" sections, `meta/<agent>.md` and `rustha migrate`'s
//! report are all rendered from this table (`make meta` rewrites the README's blocks;
//! `tests/contract.rs` fails when they drift).

use std::collections::BTreeMap;

/// What migrate knows of a resource when deciding whether a difference concerns it.
pub struct Attrs<'a> {
    pub params: &'a BTreeMap<String, String>,
    pub meta: &'a BTreeMap<String, String>,
}

/// Which resources a difference concerns.
#[derive(Clone, Copy)]
pub enum When {
    /// Every resource of the agent.
    Always,
    /// Those whose configuration passes the test.
    If(fn(&Attrs) -> bool),
    /// None that can be switched: what it describes is refused by validation, which
    /// migrate reports itself.
    Never,
}

/// One deliberate difference: a bold title, then Markdown.
pub struct Difference {
    pub title: &'static str,
    /// The whole bullet (title included), Markdown on one line.
    pub text: &'static str,
    pub when: When,
}

impl Difference {
    pub fn always(&self) -> bool {
        matches!(self.when, When::Always)
    }
    /// Whether this difference concerns a resource with these attributes in particular
    /// (the ones that concern every resource are listed once per agent).
    pub fn applies(
        &self,
        params: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> bool {
        match self.when {
            When::If(f) => f(&Attrs { params, meta }),
            When::Always | When::Never => false,
        }
    }
}

fn starts(a: &Attrs, param: &str, prefixes: &[&str]) -> bool {
    a.params
        .get(param)
        .is_some_and(|v| prefixes.iter().any(|p| v.trim_start().starts_with(p)))
}

/// The README section each agent's differences belong to.
pub fn section(agent: &str) -> &'static str {
    match agent {
        "IPaddr2" => "IPaddr2 compared with ocf:heartbeat:IPaddr2",
        "nginx" | "mysql" => "nginx, lighttpd and mysql: one service core",
        "Filesystem" => "Filesystem compared with ocf:heartbeat:Filesystem",
        _ => "Agents",
    }
}

/// The differences of `agent` from the heartbeat agent of the same name.
pub fn of(agent: &str) -> &'static [Difference] {
    match agent {
        "IPaddr2" => IPADDR2,
        "nginx" => NGINX,
        "mysql" => MYSQL,
        "Filesystem" => FILESYSTEM,
        _ => &[],
    }
}

/// Markdown bullets, wrapped as the README wraps them.
pub fn bullets(agent: &str) -> String {
    let mut s = String::new();
    for d in of(agent) {
        let mut line = String::from("-");
        for w in d.text.split_whitespace() {
            if line.len() + 1 + w.len() > 92 {
                s.push_str(&line);
                s.push('\n');
                line = String::from(" ");
            }
            line.push(' ');
            line.push_str(w);
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

static IPADDR2: &[Difference] = &[
    Difference {
        title: r##"Stop and probe never fail on bad parameters"##,
        text: r##"**Stop and probe never fail on bad parameters.** Upstream validates parameters before every action, so e.g. `arp_count=0` or a label over 15 characters makes its *stop* return 6 (a failed stop gets the node fenced) and its probe 6 (bans the resource on every node). Ours: stop 0 (nothing of ours can be running), probe 7."##,
        when: When::Always,
    },
    Difference {
        title: r##"A missing interface (`nic`) is 5, not 6"##,
        text: r##"**A missing interface (`nic`) is 5, not 6**: it is a problem of this node; 5 lets Pacemaker start the address elsewhere, 6 stops it everywhere."##,
        when: When::Always,
    },
    Difference {
        title: r##"A down link is "not running" (7)"##,
        text: r##"**A down link is "not running" (7)** in monitor, as newer upstream does (`check_link_status`, default true); the 4.12 agent in Debian 12 still says 0."##,
        when: When::Always,
    },
    Difference {
        title: r##"The node's own address is never taken over"##,
        text: r##"**The node's own address is never taken over.** Every address rustha adds carries a mark on the address itself, the address protocol `IFA_PROTO` 82 (`ip -d address` shows `proto 82` with iproute2 >= 6.3). An address that was already on the interface without that mark is the node's own (configured by the admin, DHCP, a previous owner): validate-all and start refuse it with **2** (OCF_ERR_ARGS: not usable on this node; Pacemaker tries another node), probe and monitor say 7, and stop leaves it in place. Upstream's start says 0 and its stop then removes the node's own address. The same address with another prefix is refused in the same way (upstream adds a second entry, and its stop removes only that one)."##,
        when: When::Always,
    },
    Difference {
        title: r##"Found by identity, not only by the record"##,
        text: r##"**Found by identity, not only by the record.** A VIP of ours whose record was lost (or whose state directory is unusable, e.g. `/run/rustha` a plain file) is still recognised by its mark: probe and monitor report it, a second start adopts it, stop removes it (and its background announcer, in this network namespace only). With nothing of ours there, probe is 7 and stop 0. The mark needs Linux >= 6.3; older kernels (Debian 12's 6.1) ignore it, and there the record is the only evidence: a VIP whose record is lost is then "not ours"."##,
        when: When::Always,
    },
    Difference {
        title: r##"A failing start undoes only what it did"##,
        text: r##"**A failing start undoes only what it did**: it removes the address only if this call added it (never one that another start, or the admin, put there meanwhile), and the record only if it is still the one it wrote. A start of the same resource with other parameters (a force-start by hand with another `ip`) while the recorded address is still held is refused (1) instead of orphaning it; stop the resource first."##,
        when: When::Always,
    },
    Difference {
        title: r##"Addresses that cannot be a VIP are 6 at validate"##,
        text: r##"**Addresses that cannot be a VIP are 6 at validate**: `0.0.0.0/8`, `255.255.255.255`, multicast (`224.0.0.0/4`, `ff00::/8`), `::`, `::1` and IPv4-mapped IPv6 addresses (upstream: 6 for some, 1 "Unable to find nic or netmask" for the others). `proto=0` (no route has it) is 6. An interface label is checked as the kernel stores it: `<nic>:<iflabel>` at most 15 bytes, printable ASCII without spaces (upstream accepts a label with a space; a label ending in CR/LF would fail every monitor)."##,
        when: When::Always,
    },
    Difference {
        title: r##"IPv4 loopback"##,
        text: r##"**IPv4 loopback** (`127.0.0.0/8`, e.g. upstream's ocft case `ip=127.0.0.3` on `lo`) is added with scope host, as `ip address add` does."##,
        when: When::If(|a| starts(a, "ip", &["127."])),
    },
    Difference {
        title: r##"Broadcast"##,
        text: r##"**Broadcast**: with no address in the subnet to copy it from, upstream adds the address without any broadcast (resource-agents#656); ours uses the subnet's broadcast."##,
        when: When::Always,
    },
    Difference {
        title: r##"Interface selection"##,
        text: r##"**Interface selection**: blackhole/unreachable/prohibit routes are skipped (upstream parses them into garbage), prefix ties go to the lowest metric, and the route's real output interface is used (upstream takes the third word, the gateway, for routed IPv6 prefixes)."##,
        when: When::Always,
    },
    Difference {
        title: r##"Monitor and stop use start's record"##,
        text: r##"**Monitor and stop use start's record** (interface, prefix, label) instead of looking the route up again; a monitor therefore still finds the address after a route change."##,
        when: When::Always,
    },
    Difference {
        title: r##"IPv6 DAD"##,
        text: r##"**IPv6 DAD**: start waits for DAD within the operation's timeout and fails, removing the address, when DAD fails; a still-tentative address at 2/3 of the timeout is a warning (no NA sent). `lvs_ipv6_addrlabel` defaults to true, as in current upstream."##,
        when: When::If(|a| a.params.get("ip").is_some_and(|v| v.contains(':'))),
    },
    Difference {
        title: r##"Announcements"##,
        text: r##"**Announcements** are sent by rustha itself: `arp_count` packets exactly `arp_interval` ms apart (the RHEL `send_arp` ignores the interval), ARP requests, or replies with `send_arp_opts=-A`; `arp_sender` is accepted and ignored. The background sender is stopped by stop before the address is removed."##,
        when: When::Always,
    },
    Difference {
        title: r##"Not supported"##,
        text: r##"**Not supported**: the Cluster-IP load-sharing clone mode (`clone-max` > 1 without `unique_clone_address`, and its parameters `mac`, `clusterip_hash` (4.12) and `clusterip_firewall`, `clusterip_hash_seed`, `clusterip_table`, `clusterip_chain`, `clusterip_mac_mangle` (upstream main since 2026, nft/iptables `cluster` matches)): one address answered by several nodes at once is a different product from a VIP that moves. validate-all and start return 6 saying so; stop and monitors never look."##,
        when: When::Never,
    },
];

static NGINX: &[Difference] = &[
    Difference {
        title: r##"nginx broken configuration: 6, not 5"##,
        text: r##"**nginx broken configuration: 6, not 5.** `nginx -t` failing is broken on every node; the exit reason carries nginx's own message."##,
        when: When::Always,
    },
    Difference {
        title: r##"nginx `httpd` naming a missing binary: 5"##,
        text: r##"**nginx `httpd` naming a missing binary: 5.** Upstream silently starts `/usr/sbin/nginx` instead (and with `httpd` unset, prefers Apache's `/usr/sbin/httpd` if present, #1772); ours runs only the binary it is given, or `/usr/sbin/nginx` when unset."##,
        when: When::Always,
    },
    Difference {
        title: r##"nginx master SIGKILLed, workers left: monitor 1, not 7"##,
        text: r##"**nginx master SIGKILLed, workers left: monitor 1, not 7**, and stop kills the workers. Upstream's stop misses them (its `pkill -f` pattern does not match `nginx: worker process`, #1553): they keep the port."##,
        when: When::Always,
    },
    Difference {
        title: r##"The status page"##,
        text: r##"**The status page**: upstream finds `stub_status on;` only on a line of its own; with the usual `location /nginx_status { stub_status; }` its validate-all fails with 2 and its depth-10 monitor with 1. Ours reads the configuration as `nginx -T` dumps it."##,
        when: When::Always,
    },
    Difference {
        title: r##"reload never starts a stopped server"##,
        text: r##"**reload never starts a stopped server** (upstream's reload starts nginx). The meta-data claims OCF 1.1 without `reload-agent`, so Pacemaker restarts on a parameter change and never calls `reload` for it (upstream's OCF 1.0 + `reload` makes Pacemaker merely HUP nginx when e.g. `options` change)."##,
        when: When::Always,
    },
    Difference {
        title: r##"Not supported"##,
        text: r##"**Not supported**: `test20conffile` (6: use `test20url` + `test20regex`) and HTTPS status URLs; `testclient` and `test20name` are accepted and ignored."##,
        when: When::Never,
    },
];

static MYSQL: &[Difference] = &[
    Difference {
        title: r##"mysql runs mysqld itself, not mysqld_safe"##,
        text: r##"**mysql runs mysqld itself, not mysqld_safe**: a killed mysqld is reported (7) and recovered by Pacemaker, which counts the failure; under upstream, mysqld_safe restarts it behind the cluster's back (#759) and the monitor says 0. A `binary` of mysqld_safe still works."##,
        when: When::Always,
    },
    Difference {
        title: r##"mysql unknown server option: 6 before anything starts"##,
        text: r##"**mysql unknown server option: 6 before anything starts** (the server's own option check); upstream starts mysqld_safe and reports 1 when the server dies."##,
        when: When::Always,
    },
    Difference {
        title: r##"mysql stop of a hung (SIGSTOPped) server: 0"##,
        text: r##"**mysql stop of a hung (SIGSTOPped) server: 0.** Upstream waits timeout − 5 s, sends SIGKILL and checks at once, sees the dying process and fails the stop (1: fencing)."##,
        when: When::Always,
    },
    Difference {
        title: r##"mysql `validate-all` with `OCF_CHECK_LEVEL=10`"##,
        text: r##"**mysql `validate-all` with `OCF_CHECK_LEVEL=10`** checks what start needs on this node: user and group exist (5), the datadir exists and is a directory unless `enable_creation` (5, as upstream), pid and socket are not directories (6), the directories are writable by `user` (4)."##,
        when: When::Always,
    },
    Difference {
        title: r##"mysql depth 10"##,
        text: r##"**mysql depth 10** reads the protocol greeting on the socket (what `mysqladmin ping` relies on); the SQL query on `test_table` is depth 20. Upstream runs the query at depth 10."##,
        when: When::Always,
    },
    Difference {
        title: r##"Not supported"##,
        text: r##"**Not supported**: replication (promotable) mode: a promotable clone gives 6 saying so; the replication parameters (`replication_*`, `max_slave_lag`, `evict_outdated_slaves`, `reader_attribute`) are accepted and change nothing, as in upstream's standalone mode."##,
        when: When::Never,
    },
];

static FILESYSTEM: &[Difference] = &[
    Difference {
        title: r##"Another device mounted on the directory is not this resource"##,
        text: r##"**Another device mounted on the directory is not this resource**: probe 7, start and monitor 1 with a reason (Pacemaker then relocates it), nothing mounted over it, stop 0 leaving it mounted. That is what upstream's main does since 2026 (commits 46e305ab4 and f2cfc150d); the agent Debian 12 ships (4.12) says 0 to the probe and the start, and its stop unmounts the other device."##,
        when: When::Always,
    },
    Difference {
        title: r##"`check_readonly` (default true)"##,
        text: r##"**`check_readonly` (default true)**: a filesystem the kernel remounted read-only behind the cluster's back (ext4 after I/O errors) fails the monitor (1). Upstream says 0. `options=ro` or `check_readonly=false` turn it off."##,
        when: When::Always,
    },
    Difference {
        title: r##"`UUID=` / `LABEL=` without udev"##,
        text: r##"**`UUID=` / `LABEL=` without udev**: ours resolves them through `/dev/disk/by-*`, else `blkid -U/-L` (argv, bounded); the Debian 12 agent tests `[ -b "UUID=..." ]` and says 5 where udev's links are missing (containers, early boot)."##,
        when: When::If(|a| starts(a, "device", &["UUID=", "LABEL=", "-U", "-L"])),
    },
    Difference {
        title: r##"A recurring monitor never returns 6"##,
        text: r##"**A recurring monitor never returns 6** (the contract's runner): an unsupported `OCF_CHECK_LEVEL` is 1 with a reason naming it; upstream's 6 bans the resource on every node."##,
        when: When::Always,
    },
    Difference {
        title: r##"Users are found by mount id"##,
        text: r##"**Users are found by mount id**, not by `fuser -m` on the path: a bind mount's stop touches only the bind mount's users (never those of the filesystem below it or of `/`, resource-agents#1304); a copy of the mount in another mount namespace is found by device and root; statx with `AT_STATX_DONT_SYNC` never asks a dead server or FUSE daemon. Signals go through pidfds after the start time is checked; stop waits on the pidfds (up to `signal_delay`) instead of sleeping 1 s per round, and is 0 only when the mount and its submounts are gone. The `xargs` and `ps` modifiers of `force_unmount` are accepted and change nothing (there is no `fuser` or `ps` to tune)."##,
        when: When::Always,
    },
    Difference {
        title: r##"FUSE"##,
        text: r##"**FUSE** (`fuse.*` types) is treated like a network filesystem: its source is never a block device and the kill phase unmounts with `-f`, which aborts a hung daemon's connection (upstream only does that for nfs/cifs)."##,
        when: When::If(|a| starts(a, "fstype", &["fuse"])),
    },
    Difference {
        title: r##"Depth 10 reads a whole 4 KiB block with O_DIRECT"##,
        text: r##"**Depth 10 reads a whole 4 KiB block with O_DIRECT** and fails on a short read (a device that shrank or went away under the mount); depth 20's status file is written with O_DIRECT|O_SYNC (O_SYNC where the filesystem has no O_DIRECT) and read back. Both run in a bounded thread: a hung device is a failure before the timeout, never a hang."##,
        when: When::Always,
    },
    Difference {
        title: r##"validate-all checks parameters only"##,
        text: r##"**validate-all checks parameters only**, as upstream: the device may be visible only on the node about to start it. `force_clones` allows cloning any type that is not cluster-aware, as upstream; a clone of ext4/xfs without it is 6."##,
        when: When::Always,
    },
];

const BEGIN: &str = "<!-- differences of ";
const END: &str = "<!-- end of differences -->";

/// `readme` with every generated block (`<!-- differences of AGENT: ... -->` up to
/// `<!-- end of differences -->`) rendered afresh from this table.
pub fn readme(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(BEGIN) {
        let open_end = rest[i..]
            .find("-->")
            .map(|j| i + j + 3)
            .ok_or("an unclosed differences marker")?;
        let agent = rest[i + BEGIN.len()..open_end]
            .split(':')
            .next()
            .unwrap_or("")
            .trim();
        if of(agent).is_empty() {
            return Err(format!("differences marker for unknown agent '{agent}'"));
        }
        let close = rest[open_end..]
            .find(END)
            .map(|j| open_end + j)
            .ok_or_else(|| format!("the differences block of {agent} has no end marker"))?;
        out.push_str(&rest[..open_end]);
        out.push('\n');
        out.push_str(&bullets(agent));
        out.push_str(END);
        rest = &rest[close + END.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `meta/<agent>.md` and `rustha describe <agent>`: the declaration's Markdown and the
/// agent's deliberate differences.
pub fn agent_markdown(a: &dyn ocf::DynAgent) -> String {
    a.markdown(crate::registry::PROVIDER) + &markdown(a.name())
}

/// The section appended to `meta/<agent>.md` (empty when there is nothing to say).
pub fn markdown(agent: &str) -> String {
    if of(agent).is_empty() {
        return String::new();
    }
    format!(
        "\n## Deliberate differences from ocf:heartbeat:{agent}\n\n{}",
        bullets(agent)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_difference_has_a_bold_title_matching_its_text() {
        for a in ["IPaddr2", "nginx", "mysql", "Filesystem"] {
            assert!(!of(a).is_empty(), "{a}");
            for d in of(a) {
                assert!(
                    d.text.starts_with(&format!("**{}", d.title)),
                    "{a}: {}",
                    d.title
                );
                assert!(!d.text.contains('\n'), "{a}: {}", d.title);
            }
        }
    }

    #[test]
    fn readme_blocks_render_and_rerender_to_the_same_text() {
        let t = "a\n<!-- differences of mysql: x -->\nold\n<!-- end of differences -->\nb\n";
        let once = readme(t).unwrap();
        assert!(once.contains("**mysql runs mysqld itself"), "{once}");
        assert!(!once.contains("old"));
        assert_eq!(readme(&once).unwrap(), once);
        assert!(readme("<!-- differences of nope: x -->\n<!-- end of differences -->").is_err());
        assert!(readme("<!-- differences of mysql: x -->\n").is_err());
    }

    #[test]
    fn conditional_differences_concern_only_matching_resources() {
        let fs = of("Filesystem");
        let uuid = fs.iter().find(|d| d.title.contains("UUID")).unwrap();
        let mut p = BTreeMap::new();
        let m = BTreeMap::new();
        p.insert("device".to_string(), "/dev/sdb1".to_string());
        assert!(!uuid.applies(&p, &m));
        p.insert("device".to_string(), "UUID=1234".to_string());
        assert!(uuid.applies(&p, &m));
    }
}
