#!/usr/bin/env bash
# A Debian 13 (trixie) root with Pacemaker 3.0, Corosync, pcs and resource-agents, for
# running the real-tool tests against Pacemaker 3.0 with the same rustha binary.
#
#   root.sh build      build it if missing or out of date (cached; ~1 min from the mirror)
#   root.sh path       print its path
#   root.sh run CMD... run CMD inside it: a private mount namespace with /proc, /dev, /sys,
#                      /run, /tmp and /var/tmp of the host, the rustha binary at
#                      /usr/libexec/rustha/rustha with its agent links, and the checkout
#                      (RUSTHA_REPO) at its own path; the caller's network namespace
#                      (tests bring their own). Processes CMD leaves running (a cluster)
#                      keep the namespace; nothing of it is visible on the host.
#
# RUSTHA_TRIXIE_ROOT (default /var/cache/rustha-trixie/root): where it lives.
# RUSTHA_BIN: the rustha binary to put inside (for run).
set -euo pipefail

ROOT=${RUSTHA_TRIXIE_ROOT:-/var/cache/rustha-trixie/root}
MIRROR=${RUSTHA_TRIXIE_MIRROR:-http://deb.debian.org/debian}
PACKAGES="pacemaker pacemaker-cli-utils corosync pcs resource-agents iproute2 procps tini libxml2-utils netcat-openbsd"
# The stamp names what the root was built from: a change of this list rebuilds it.
STAMP="trixie v1: $PACKAGES"

built() { [ -f "$ROOT/.rustha-stamp" ] && [ "$(cat "$ROOT/.rustha-stamp")" = "$STAMP" ]; }

build() {
  built && return 0
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (.ci/run installs it)" >&2; exit 2; }
  local tmp="$ROOT.new.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$ROOT")"
  # Pacemaker's dependencies name virtual packages debootstrap cannot resolve: a minimal
  # root first, then apt inside it.
  debootstrap --variant=minbase trixie "$tmp" "$MIRROR" >"$tmp.log" 2>&1 \
    || { tail -20 "$tmp.log" >&2; exit 1; }
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/usr/sbin/policy-rc.d"
  # shellcheck disable=SC2086
  chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    $PACKAGES >>"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
  chroot "$tmp" apt-get clean
  echo "$STAMP" >"$tmp/.rustha-stamp"
  rm -rf "$ROOT" "$tmp.log"
  mv "$tmp" "$ROOT"
}

# Inside the new namespaces (run): mounts, then chroot.
inner() {
  local bin=$1; shift
  mount --make-rprivate /
  # The root a mount point of its own: `ip netns exec` remounts / inside it.
  mount --bind "$ROOT" "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount --rbind /dev "$ROOT/dev"
  mount --rbind /sys "$ROOT/sys"
  mount --bind /tmp "$ROOT/tmp"
  mkdir -p "$ROOT/run" "$ROOT/var/tmp"
  mount --rbind /run "$ROOT/run"
  mount --bind /var/tmp "$ROOT/var/tmp"
  if [ -n "${RUSTHA_REPO:-}" ]; then
    mkdir -p "$ROOT$RUSTHA_REPO"
    mount --bind "$RUSTHA_REPO" "$ROOT$RUSTHA_REPO"
  fi
  mkdir -p "$ROOT/usr/libexec/rustha" "$ROOT/usr/lib/ocf/resource.d/rustha"
  touch "$ROOT/usr/libexec/rustha/rustha"
  mount --bind "$bin" "$ROOT/usr/libexec/rustha/rustha"
  local a
  for a in $("$bin" list); do
    ln -sfn /usr/libexec/rustha/rustha "$ROOT/usr/lib/ocf/resource.d/rustha/$a"
  done
  ln -sfn /usr/libexec/rustha/rustha "$ROOT/usr/sbin/rustha"
  exec chroot "$ROOT" /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

case "${1:-}" in
  build) build ;;
  path) echo "$ROOT" ;;
  run)
    shift
    built || { echo "no trixie root at $ROOT: run $0 build" >&2; exit 2; }
    bin=${RUSTHA_BIN:?RUSTHA_BIN names the rustha binary to run inside}
    exec unshare --mount "$0" __inner "$(readlink -f "$bin")" "$@"
    ;;
  __inner) shift; inner "$@" ;;
  *) echo "usage: $0 build | path | run CMD..." >&2; exit 2 ;;
esac
