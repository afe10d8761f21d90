#!/usr/bin/env bash
# A real single-node Pacemaker + Corosync cluster inside namespaces this script creates
# (network, mount, UTS), with private state; no systemd needed. Torn down by PID.
#
#   cluster.sh up | exec CMD... | wait-idle [SECONDS] | status | down
#
# RUSTHA_CLUSTER_DIR (default /var/tmp/rustha-cluster): private state and pid files.
# RUSTHA_CLUSTER_NS  (default rustha-c1): the network namespace (only lo, 127.0.0.1).
set -euo pipefail

D=${RUSTHA_CLUSTER_DIR:-/var/tmp/rustha-cluster}
NS=${RUSTHA_CLUSTER_NS:-rustha-c1}
SELF=$(readlink -f "$0")

pidof_file() { [ -s "$D/$1.pid" ] && cat "$D/$1.pid" || true; }
running() { [ -n "${1:-}" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
holder() { local h; h=$(pidof_file holder); running "$h" && echo "$h"; }
# -r -w: the holder's root and working directory too (the node may live in a chroot,
# tests/trixie/root.sh, where the caller's directory does not exist).
in_node() { local h; h=$(holder) || { echo "cluster is not up" >&2; return 2; }; nsenter -t "$h" -m -u -n -r -w -- "$@"; }

# Wait (bounded) until pid $1 is gone.
wait_gone() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do running "$pid" || return 0; sleep 0.1; done
  return 1
}

# Runs inside the new namespaces: private mounts, then hold them open.
node_init() {
  hostname node1
  mount -t tmpfs tmpfs /dev/shm
  local pair
  for pair in lib-pacemaker:/var/lib/pacemaker lib-corosync:/var/lib/corosync \
              log-pacemaker:/var/log/pacemaker log-corosync:/var/log/corosync \
              etc-corosync:/etc/corosync run-crm:/run/crm run-ra:/run/resource-agents \
              run-rustha:/run/rustha; do
    mkdir -p "${pair#*:}"
    mount --bind "$D/${pair%%:*}" "${pair#*:}"
  done
  mount --bind "$D/hosts" /etc/hosts
  echo $$ > "$D/holder.pid"
  exec sleep infinity
}

up() {
  down >/dev/null 2>&1 || true
  rm -rf "$D"; mkdir -p "$D"
  cp -a /var/lib/pacemaker "$D/lib-pacemaker"
  cp -a /var/lib/corosync "$D/lib-corosync"
  mkdir -p "$D/log-corosync" "$D/etc-corosync" "$D/run-ra" /run/rustha "$D/run-rustha"
  cp -a /var/log/pacemaker "$D/log-pacemaker" 2>/dev/null || mkdir -p "$D/log-pacemaker"
  mkdir -p "$D/run-crm" /run/crm
  chown hacluster:haclient "$D/run-crm" "$D/log-pacemaker"
  chmod 0750 "$D/run-crm"
  printf '127.0.0.1 localhost node1\n::1 localhost\n' > "$D/hosts"
  cat > "$D/etc-corosync/corosync.conf" <<CONF
totem {
  version: 2
  cluster_name: rustha-test
  transport: knet
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
  node {
    ring0_addr: 127.0.0.1
    name: node1
    nodeid: 1
  }
}
quorum {
  provider: corosync_votequorum
}
system {
  allow_knet_handle_fallback: yes
}
logging {
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_stderr: no
  to_syslog: no
}
CONF
  # Pre-seeded CIB: the first DC election would otherwise wait dc-deadtime (20 s).
  mkdir -p "$D/lib-pacemaker/cib"
  cibadmin --empty | sed 's|<crm_config/>|<crm_config><cluster_property_set id="cib-bootstrap-options"><nvpair id="opt-dc-deadtime" name="dc-deadtime" value="5s"/><nvpair id="opt-stonith" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>|' \
    > "$D/lib-pacemaker/cib/cib.xml"
  grep -q dc-deadtime "$D/lib-pacemaker/cib/cib.xml"
  chown -R hacluster:haclient "$D/lib-pacemaker/cib"
  chmod 0600 "$D/lib-pacemaker/cib/cib.xml"

  ip netns add "$NS"
  ip -n "$NS" link set lo up
  RUSTHA_CLUSTER_DIR=$D setsid ip netns exec "$NS" unshare --mount --uts --propagation private -- \
    "$SELF" __init </dev/null >"$D/holder.log" 2>&1 &
  local i h
  for ((i = 0; i < 100; i++)); do [ -s "$D/holder.pid" ] && break; sleep 0.05; done
  holder >/dev/null || { echo "namespace holder did not start:" >&2; cat "$D/holder.log" >&2; exit 1; }

  # nsenter execs its command (no pid namespace), so $! is the daemon itself.
  h=$(holder)
  nsenter -t "$h" -m -u -n -r -- corosync -f -c /etc/corosync/corosync.conf \
    </dev/null >"$D/corosync.out" 2>&1 &
  echo $! > "$D/corosync.pid"
  PCMK_logfile=/var/log/pacemaker/pacemaker.log nsenter -t "$h" -m -u -n -r -- tini -s -- pacemakerd \
    </dev/null >"$D/pacemakerd.out" 2>&1 &
  echo $! > "$D/pacemakerd.pid"

  local xml=""
  for ((i = 0; i < 900; i++)); do
    xml=$(in_node crm_mon -1 --output-as=xml 2>/dev/null || true)
    if grep -q 'current_dc present="true"' <<<"$xml" && grep -q 'name="node1"[^>]*online="true"' <<<"$xml"; then
      echo "cluster up in $((i / 10)).$((i % 10)) s (node1 online, DC elected)"
      return 0
    fi
    sleep 0.1
  done
  echo "cluster did not come up within 90 s" >&2
  tail -n 20 "$D/log-pacemaker/pacemaker.log" "$D/log-corosync/corosync.log" "$D"/*.out >&2 || true
  exit 1
}

down() {
  local h pm cs p killed=()
  h=$(holder || true)
  if [ -n "$h" ]; then
    in_node crm_resource --wait --timeout=30s >/dev/null 2>&1 || true
  fi
  pm=$(pidof_file pacemakerd)
  if running "$pm"; then kill -TERM "$pm"; wait_gone "$pm" 60 || true; fi
  cs=$(pidof_file corosync)
  if running "$cs"; then kill -TERM "$cs"; wait_gone "$cs" 20 || true; fi
  if ip netns list | grep -qw "$NS"; then
    for p in $(ip netns pids "$NS"); do
      [ "$p" = "$h" ] && continue
      kill -KILL "$p" 2>/dev/null && killed+=("$p $(cat /proc/"$p"/comm 2>/dev/null || true)")
    done
  fi
  if running "$h"; then kill -KILL "$h"; wait_gone "$h" 5 || true; fi
  if ip netns list | grep -qw "$NS"; then ip netns del "$NS"; fi
  rm -f "$D"/*.pid
  [ ${#killed[@]} -eq 0 ] || printf 'killed leftover: %s\n' "${killed[@]}"
  echo "cluster down"
}

case "${1:-}" in
  __init) node_init ;;
  up) up ;;
  down) down ;;
  exec) shift; in_node "$@" ;;
  wait-idle) in_node crm_resource --wait --timeout="${2:-30}s" ;;
  status) if holder >/dev/null; then echo up; in_node crm_mon -1; else echo down; exit 3; fi ;;
  *) sed -n '2,9p' "$SELF" >&2; exit 2 ;;
esac
