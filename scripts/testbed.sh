#!/usr/bin/env bash
# A test bed of separate Docker hosts on this one machine, for Wharf agents on "many hosts":
# each host is a network namespace with its own dockerd (own bridge, data root and socket),
# reachable from the machine over a veth pair on the bridge wharftb0 (10.213.0.0/24; the machine
# is 10.213.0.1, host i is 10.213.0.(10+i)). Nothing leaves the machine: the hosts have no
# default route, so anything for another address (a registry's name lookup, say) fails at once.
# One test bed per machine: its names (wharftb0, wharf-tb<i>, 10.213.0.0/24) are fixed.
#
#   scripts/testbed.sh up N [IMAGE...]   create hosts 1..N, start their dockerds, copy IMAGEs in
#   scripts/testbed.sh agent I -- ARGS   run `wharf agent ARGS` on host I (in its namespace, with
#                                        its dockerd, and its own --data-dir unless ARGS give one);
#                                        e.g. --endpoint http://10.213.0.1:4100
#   scripts/testbed.sh env I             print the DOCKER_HOST of host I
#   scripts/testbed.sh down              stop every host's dockerd, remove namespaces and data
#
# The control plane must listen where the hosts reach it: `wharf server --listen 10.213.0.1:4100`.
# Needs root, iproute2 and docker.io (dockerd, docker). State: /run/wharf-testbed, /var/lib/wharf-testbed.
set -euo pipefail

BRIDGE=wharftb0
NET=10.213.0
RUN=/run/wharf-testbed
LIB=/var/lib/wharf-testbed
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

ns() { echo "wharf-tb$1"; }
sock() { echo "$RUN/h$1/docker.sock"; }

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # The machine's dockerd sets FORWARD to DROP, and with br_netfilter loaded (Docker loads it)
  # frames bridged between two hosts pass FORWARD too: let the test bed's own bridge through.
  iptables -w -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || iptables -w -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

host_up() {
  local i=$1 n; n=$(ns "$i")
  mkdir -p "$RUN/h$i" "$LIB/h$i"
  chmod 700 "$RUN" "$LIB" "$RUN/h$i" "$LIB/h$i"
  if ! ip netns list | grep -qw "$n"; then
    ip netns add "$n"
    ip link add "wtb$i" type veth peer name "wtb${i}p"
    ip link set "wtb${i}p" netns "$n"
    ip link set "wtb$i" master "$BRIDGE" up
    ip -n "$n" link set lo up
    ip -n "$n" link set "wtb${i}p" name eth0
    ip -n "$n" addr add "$NET.$((10 + i))/24" dev eth0
    ip -n "$n" link set eth0 up
    # No default route: the machine and the other hosts are on the link, and nothing else is to
    # be reached (an image pull's lookup of a registry fails at once instead of leaving).
  fi
  if [ -S "$(sock "$i")" ] && DOCKER_HOST="unix://$(sock "$i")" docker info >/dev/null 2>&1; then return; fi
  # Each dockerd has its own docker0 (in its namespace), data root, exec root (and so its own
  # managed containerd) and socket.
  # nsenter, not `ip netns exec`: that remounts /sys in a mount namespace of its own, without the
  # cgroup hierarchy dockerd needs.
  nsenter --net="/run/netns/$n" dockerd \
    --data-root "$LIB/h$i/docker" --exec-root "$RUN/h$i/exec" --pidfile "$RUN/h$i/dockerd.pid" \
    -H "unix://$(sock "$i")" >"$LIB/h$i/dockerd.log" 2>&1 &
  for _ in $(seq 1 150); do
    if DOCKER_HOST="unix://$(sock "$i")" docker info >/dev/null 2>&1; then return; fi
    sleep 0.2
  done
  echo "testbed: dockerd of host $i did not start; see $LIB/h$i/dockerd.log" >&2
  tail -20 "$LIB/h$i/dockerd.log" >&2
  exit 1
}

copy_images() {
  local i=$1; shift
  [ $# -gt 0 ] || return 0
  docker save "$@" | DOCKER_HOST="unix://$(sock "$i")" docker load >/dev/null
}

host_down() {
  local i=$1 n; n=$(ns "$i")
  if [ -f "$RUN/h$i/dockerd.pid" ]; then
    local pid; pid=$(cat "$RUN/h$i/dockerd.pid")
    # Containers first, so nothing outlives its engine.
    DOCKER_HOST="unix://$(sock "$i")" docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST="unix://$(sock "$i")" docker rm -f >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$n" 2>/dev/null || true
  ip link del "wtb$i" 2>/dev/null || true
  # Overlay mounts of a dockerd killed hard would keep the data root busy.
  grep -o " $LIB/h$i/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$LIB/h$i" "$RUN/h$i"
}

cmd=${1:-}
case "$cmd" in
  up)
    count=${2:?usage: testbed.sh up N [IMAGE...]}
    shift 2
    bridge_up
    for i in $(seq 1 "$count"); do host_up "$i"; done
    for i in $(seq 1 "$count"); do copy_images "$i" "$@"; done
    for i in $(seq 1 "$count"); do echo "host $i: $(ns "$i") $NET.$((10 + i)) DOCKER_HOST=unix://$(sock "$i")"; done
    ;;
  agent)
    i=${2:?usage: testbed.sh agent I -- ARGS}
    shift 2
    [ "${1:-}" = "--" ] && shift
    # Each host is its own container instance: an agent keeps its identity in its data dir, and
    # two agents sharing one (~/.wharf by default) would both be the same instance.
    own=(--data-dir "$LIB/h$i/agent")
    for a in "$@"; do case "$a" in --data-dir|--data-dir=*) own=() ;; esac; done
    exec nsenter --net="/run/netns/$(ns "$i")" env DOCKER_HOST="unix://$(sock "$i")" node "$ROOT/bin/wharf" agent "${own[@]}" "$@"
    ;;
  env)
    echo "DOCKER_HOST=unix://$(sock "${2:?usage: testbed.sh env I}")"
    ;;
  down)
    for d in "$RUN"/h*; do [ -e "$d" ] && host_down "${d##*/h}"; done
    ip link del "$BRIDGE" 2>/dev/null || true
    iptables -w -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || true
    rmdir "$RUN" "$LIB" 2>/dev/null || true
    ;;
  *)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
