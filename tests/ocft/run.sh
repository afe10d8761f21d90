#!/bin/bash
# Run one of upstream's ocft configurations with the real ocft tool, in a lab of its own.
#
#   ip netns add NS; ip netns exec NS tests/ocft/run.sh CONFIG_DIR CONFIG WORK_DIR
#
# It must start in a fresh network namespace (only lo) and a mount namespace of its own
# (`ip netns exec` makes one, with a sysfs of the namespace on /sys); it refuses
# otherwise, so it never touches the host's interfaces or /var/lib/resource-agents.
# There it:
# - brings lo up and makes eth0 and eth1, each a veth whose peer (peer0, peer1) is in
#   the same namespace, all up (carrier on), no addresses: the configurations add them;
# - binds WORK_DIR/cases over ocft's fixed case directory
#   (/var/lib/resource-agents/ocft/cases, which must exist) and points HA_RSCTMP (ocft's
#   run log, the heartbeat agents' state) at WORK_DIR/rsctmp, so parallel runs never
#   share a file;
# - `ocft make -d CONFIG_DIR CONFIG`, then `ocft test -v CONFIG`, whose output and exit
#   status are this script's.
# The agent, the instance name, rustha's state directory and the MariaDB directory come
# from the environment (OCFT_AGENT_ROOT, OCF_RESOURCE_INSTANCE, RUSTHA_STATE_DIR,
# OCFT_mysql_dir). The caller kills whatever is left in the network namespace by pid,
# deletes the namespace and removes WORK_DIR.
set -eu

cfgdir=$1
cfg=$2
work=$3
cases=/var/lib/resource-agents/ocft/cases

die() {
	echo "run.sh: $*" >&2
	exit 2
}

[ "$(ip -o link show | wc -l)" = 1 ] || die "not in a fresh network namespace (more than lo)"
[ "$(readlink /proc/$$/ns/mnt)" != "$(readlink /proc/$PPID/ns/mnt)" ] ||
	die "not in a mount namespace of its own"
[ -d "$cases" ] || die "$cases is missing"

ip link set lo up
for i in 0 1; do
	ip link add "eth$i" type veth peer name "peer$i"
	ip link set "peer$i" up
	ip link set "eth$i" up
done

mkdir -p "$work/cases" "$work/rsctmp"
mount --bind "$work/cases" "$cases"
export HA_RSCTMP=$work/rsctmp

ocft make -d "$cfgdir" "$cfg"
exec ocft test -v "$cfg"
