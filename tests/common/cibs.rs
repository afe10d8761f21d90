//! The resources `rustha migrate` is tested on, as pcs commands: groups, clones, a
//! promotable clone, a bundle, a Cluster-IP clone rustha refuses, an invalid value, and
//! an agent rustha does not have. The same list builds a CIB with the host's pcs
//! (Pacemaker 2.1) and with the Debian 13 root's (Pacemaker 3.0).

/// `pcs -f FILE` argument lists, in order.
pub fn pcs_commands() -> Vec<Vec<String>> {
    let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let mut all: Vec<Vec<String>> = [
        "vip ocf:heartbeat:IPaddr2 ip=192.0.2.10 cidr_netmask=24 --group g1",
        "web ocf:heartbeat:nginx configfile=/etc/nginx/nginx.conf testclient=curl --group g1",
        "app ocf:heartbeat:Dummy --group g1",
        "cip ocf:heartbeat:IPaddr2 ip=192.0.2.20 clusterip_hash=sourceip clone",
        "fs ocf:heartbeat:Filesystem device=UUID=0f0e directory=/srv fstype=xfs",
        "db ocf:heartbeat:mysql replication_user=repl replication_passwd=s3cret-pw promotable",
        "db2 ocf:heartbeat:mysql replication_user=repl",
        "lb ocf:heartbeat:azure-lb port=61000 clone",
        "bad ocf:heartbeat:IPaddr2 ip=192.0.2.300",
    ]
    .iter()
    .map(|c| {
        let mut a = words("resource create");
        a.extend(words(c));
        // pcs would check the values itself (192.0.2.300) and run the agents' validation.
        a.push("--force".into());
        a
    })
    .collect();
    all.push(words(
        "resource bundle create b1 container docker image=example/web network control-port=3121",
    ));
    all.push(words(
        "resource create inb ocf:heartbeat:nginx configfile=/etc/nginx/bundle.conf bundle b1",
    ));
    all
}

/// Write an empty CIB to `file` (`cibadmin --empty`, no cluster needed) and create the
/// resources of [`pcs_commands`] in it with `pcs -f`, each command run by `run` (the
/// host's tools, or the Debian 13 root's).
pub fn build(file: &std::path::Path, run: &dyn Fn(&[&str]) -> super::Run) {
    let empty = run(&["cibadmin", "--empty"]);
    assert_eq!(empty.code, 0, "cibadmin --empty: {}", empty.stderr);
    std::fs::write(file, empty.stdout).unwrap();
    let f = file.to_str().unwrap();
    for args in pcs_commands() {
        let mut a = vec!["pcs", "-f", f];
        a.extend(args.iter().map(String::as_str));
        let r = run(&a);
        assert_eq!(r.code, 0, "{a:?}: {}{}", r.stdout, r.stderr);
    }
}

/// `args` run with the host's tools.
pub fn on_host(args: &[&str]) -> super::Run {
    super::out(std::process::Command::new(args[0]).args(&args[1..]))
}
