#!/usr/bin/env bash
# Rebuilds the captured `ip` outputs used by tests/it/cases.rs and tests/it/cli.rs from real kernels.
#
# Every `<node>.json` under tests/cases/<case>/ and every file under tests/fakes/captures/ is the
# verbatim output of iproute2 (`ip -N -d -j route show table all`, or an `ip -N -d -j -force
# -batch -` run) in network namespaces built here to reproduce the situation; nothing is written
# by hand, except the few outputs no kernel of this machine can produce (see tests/it/cli.rs).
#
# Usage (root; needs iproute2 and the bridge and veth drivers):
#   tests/fakes/capture.sh            # rewrite the captures
#   tests/fakes/capture.sh --verify   # also run routectl (netns transport) against each case:
#                                     # plan, apply, plan again; prints what it saw
#
# Namespaces are named `rcc-*` (a hub `rcc-lab` holding two bridges, and one per node); they are
# deleted before each case and at exit. Addresses live only inside these namespaces; no packet
# leaves them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cases="$root/tests/cases"
captures="$root/tests/fakes/captures"
verify=false
[ "${1:-}" = "--verify" ] && verify=true
routectl="${ROUTECTL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/routectl}"

teardown() {
  local n
  for n in $(ip netns list | awk '{print $1}' | grep '^rcc-' || true); do
    ip netns del "$n"
  done
}
trap teardown EXIT

ipn() { local n=$1; shift; ip -n "rcc-$n" "$@"; }

lab() {
  teardown
  ip netns add rcc-lab
  ip -n rcc-lab link set lo up
  ip -n rcc-lab link add br-int type bridge
  ip -n rcc-lab link add br-ext type bridge
  ip -n rcc-lab link set br-int up
  ip -n rcc-lab link set br-ext up
}

# node NAME OCTET [POD4] [IP6] [POD6]
# eth0 (10.0.1.OCTET, default route from DHCP as systemd-networkd installs it), eth1
# (10.0.2.OCTET, node-to-node), and for a worker an empty `cnio0` bridge holding the first
# address of its pod CIDR (what the CNI bridge plugin creates).
node() {
  local name=$1 o=$2 pod4=${3:-} ip6=${4:-} pod6=${5:-}
  local ns="rcc-$name"
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ipn "$name" link set lo up
  ipn "$name" link add eth0 address "02:00:00:01:00:$o" type veth peer name "e0-$o" \
    address "02:00:00:01:ff:$o" netns rcc-lab
  ipn "$name" link add eth1 address "02:00:00:02:00:$o" type veth peer name "e1-$o" \
    address "02:00:00:02:ff:$o" netns rcc-lab
  ip -n rcc-lab link set "e0-$o" master br-ext up
  ip -n rcc-lab link set "e1-$o" master br-int up
  ipn "$name" link set eth0 up
  ipn "$name" link set eth1 up
  ipn "$name" addr add "10.0.1.$o/24" dev eth0
  ipn "$name" addr add "10.0.2.$o/24" dev eth1
  if [ -n "$ip6" ]; then
    ipn "$name" addr add "fd00:1::$o/64" dev eth0 nodad
    ipn "$name" addr add "$ip6/64" dev eth1 nodad
    ipn "$name" -6 route add default via fd00:1::1 dev eth0 proto dhcp metric 100
  fi
  ipn "$name" route add default via 10.0.1.1 dev eth0 proto dhcp src "10.0.1.$o" metric 100
  if [ -n "$pod4" ]; then
    ipn "$name" link add cnio0 address "02:00:00:0c:00:$o" type bridge
    ipn "$name" link set cnio0 up
    ipn "$name" addr add "${pod4%0/24}1/24" dev cnio0
    if [ -n "$pod6" ]; then
      ipn "$name" addr add "${pod6%/64}1/64" dev cnio0 nodad
    fi
  fi
}

# The "Kubernetes the hard way" lab of topology.example.toml.
lab_nodes() {
  lab
  node controller-0 10
  node worker-0 20 10.1.0.0/24
  node worker-1 21 10.1.1.0/24
  node worker-2 22 10.1.2.0/24
}

# own NODE DST GATEWAY [ip route options…]: a route marked as routectl's (protocol 211).
own() { local n=$1 dst=$2 gw=$3; shift 3; ipn "$n" route add "$dst" via "$gw" dev eth1 proto 211 "$@"; }

# The routes routectl wants on each node of the lab, owned.
lab_in_sync() {
  own controller-0 10.1.0.0/24 10.0.2.20
  own controller-0 10.1.1.0/24 10.0.2.21
  own controller-0 10.1.2.0/24 10.0.2.22
  own worker-0 10.1.1.0/24 10.0.2.21
  own worker-0 10.1.2.0/24 10.0.2.22
  own worker-1 10.1.0.0/24 10.0.2.20
  own worker-1 10.1.2.0/24 10.0.2.22
  own worker-2 10.1.0.0/24 10.0.2.20
  own worker-2 10.1.1.0/24 10.0.2.21
}

capture() { # CASE NODE…
  local case=$1; shift
  local n
  mkdir -p "$cases/$case"
  for n in "$@"; do
    ipn "$n" -N -d -j route show table all >"$cases/$case/$n.json"
  done
}

# batch DIR NODE: runs tests/fakes/captures/DIR/NODE.batch.stdin (what routectl sends) in the
# node and keeps its stdout, stderr and exit status beside it.
batch() {
  local dir="$captures/$1" n=$2 status=0
  ipn "$n" -N -d -j -force -batch - <"$dir/$n.batch.stdin" >"$dir/$n.batch.stdout" \
    2>"$dir/$n.batch.stderr" || status=$?
  echo "$status" >"$dir/$n.batch.status"
}

# verify CASE: live plan / apply / plan through the netns transport on the case's namespaces.
verify_case() {
  $verify || return 0
  local case=$1 topo
  topo=$(mktemp)
  sed -e 's/^transport = .*$//' -e 's/^\(name = "\)\(.*\)"$/&\ninstance = "rcc-\2"/' \
    "$cases/$case/topology.toml" >"$topo"
  echo "=== $case: plan"
  "$routectl" --color never -f "$topo" --transport netns plan || true
  echo "=== $case: apply --auto-approve --adopt"
  "$routectl" --color never -f "$topo" --transport netns apply --auto-approve --adopt || true
  echo "=== $case: plan after apply"
  "$routectl" --color never -f "$topo" --transport netns plan --detailed-exitcode || echo "exit $?"
  rm -f "$topo"
}

all_nodes="controller-0 worker-0 worker-1 worker-2"

# --- empty-lab: nothing but what the nodes get at boot --------------------------------------
lab_nodes
capture empty-lab $all_nodes
verify_case empty-lab

# apply-converged: the batch routectl sends for the empty lab, run on the empty lab.
lab_nodes
for n in $all_nodes; do batch apply-converged "$n"; done

# apply-incomplete: the same batch, but worker-1's read-back lacks 10.1.2.0/24 (removed by
# someone else between routectl's write and its read-back: replayed here by leaving the line out).
lab_nodes
batch apply-incomplete worker-1

# apply-file-exists: between routectl's read and its write, someone added a foreign route to a
# desired destination on worker-0: the kernel refuses routectl's `add`.
lab_nodes
ipn worker-0 route add 10.1.1.0/24 via 10.0.2.99 dev eth1
batch apply-file-exists worker-0

# --- in-sync: every desired route present and owned -----------------------------------------
lab_nodes
lab_in_sync
capture in-sync $all_nodes
verify_case in-sync

# --- drift -----------------------------------------------------------------------------------
lab_nodes
# controller-0: two owned routes; the third was added by hand, identical (adoptable).
own controller-0 10.1.1.0/24 10.0.2.21
own controller-0 10.1.2.0/24 10.0.2.22
ipn controller-0 route add 10.1.0.0/24 via 10.0.2.20 dev eth1
# worker-0: an owned route with the wrong gateway (worker-1 was re-addressed).
own worker-0 10.1.1.0/24 10.0.2.99
own worker-0 10.1.2.0/24 10.0.2.22
# worker-1: a stale owned route to the pod CIDR of a node that left the topology.
own worker-1 10.1.0.0/24 10.0.2.20
own worker-1 10.1.2.0/24 10.0.2.22
own worker-1 10.1.9.0/24 10.0.2.29
# worker-2: foreign routes elsewhere: one outside the pod range, one inside it.
own worker-2 10.1.0.0/24 10.0.2.20
own worker-2 10.1.1.0/24 10.0.2.21
ipn worker-2 route add 192.168.50.0/24 via 10.0.2.1 dev eth1
ipn worker-2 route add 10.1.7.0/24 via 10.0.2.27 dev eth1 proto static
capture drift $all_nodes
verify_case drift

# --- conflict --------------------------------------------------------------------------------
lab_nodes
# controller-0: a foreign route to worker-1's pods via another gateway; the rest missing.
ipn controller-0 route add 10.1.1.0/24 via 10.0.2.99 dev eth1
# worker-0: in sync.
own worker-0 10.1.1.0/24 10.0.2.21
own worker-0 10.1.2.0/24 10.0.2.22
# worker-1: two foreign routes (two metrics) to worker-2's pods.
own worker-1 10.1.0.0/24 10.0.2.20
ipn worker-1 route add 10.1.2.0/24 via 10.0.2.99 dev eth1
ipn worker-1 route add 10.1.2.0/24 via 10.0.2.98 dev eth1 proto static metric 10
# worker-2: owned and in sync, with a foreign backup route beside it (metric 100).
own worker-2 10.1.0.0/24 10.0.2.20
own worker-2 10.1.1.0/24 10.0.2.21
ipn worker-2 route add 10.1.0.0/24 via 10.0.2.20 dev eth1 metric 100
capture conflict $all_nodes
verify_case conflict

# --- dual-stack ------------------------------------------------------------------------------
lab
node controller-0 10 "" fd00::10
node worker-0 20 10.1.0.0/24 fd00::20 fd01:0:0:0::/64
node worker-1 21 10.1.1.0/24 fd00::21 fd01:0:0:1::/64
node worker-2 22 10.1.2.0/24 fd00::22 fd01:0:0:2::/64
# controller-0: nothing yet.
# worker-0: both families in sync.
own worker-0 10.1.1.0/24 10.0.2.21
own worker-0 10.1.2.0/24 10.0.2.22
own worker-0 fd01:0:0:1::/64 fd00::21
own worker-0 fd01:0:0:2::/64 fd00::22
# worker-1: IPv4 in sync, IPv6 missing.
own worker-1 10.1.0.0/24 10.0.2.20
own worker-1 10.1.2.0/24 10.0.2.22
# worker-2: an IPv6 route with the wrong gateway and a stale IPv6 route.
own worker-2 10.1.0.0/24 10.0.2.20
own worker-2 10.1.1.0/24 10.0.2.21
own worker-2 fd01::/64 fd00::99
own worker-2 fd01:0:0:1::/64 fd00::21
own worker-2 fd01:0:0:9::/64 fd00::29
capture dual-stack $all_nodes
verify_case dual-stack

# --- multipath-owned -------------------------------------------------------------------------
lab_nodes
own controller-0 10.1.0.0/24 10.0.2.20
own controller-0 10.1.1.0/24 10.0.2.21
own controller-0 10.1.2.0/24 10.0.2.22
# worker-0: an owned ECMP route to worker-1's pods (over worker-1 and worker-2).
ipn worker-0 route add 10.1.1.0/24 proto 211 nexthop via 10.0.2.21 dev eth1 nexthop via 10.0.2.22 dev eth1
own worker-0 10.1.2.0/24 10.0.2.22
# worker-1: in sync, plus an owned ECMP route that is not desired.
own worker-1 10.1.0.0/24 10.0.2.20
own worker-1 10.1.2.0/24 10.0.2.22
ipn worker-1 route add 10.1.9.0/24 proto 211 nexthop via 10.0.2.20 dev eth1 nexthop via 10.0.2.22 dev eth1
own worker-2 10.1.0.0/24 10.0.2.20
own worker-2 10.1.1.0/24 10.0.2.21
capture multipath-owned $all_nodes
verify_case multipath-owned

# --- other-metric ----------------------------------------------------------------------------
lab_nodes
lab_in_sync
# worker-0: the owned route to worker-1's pods sits at metric 50 instead of 0.
ipn worker-0 route del 10.1.1.0/24 proto 211
own worker-0 10.1.1.0/24 10.0.2.21 metric 50
capture other-metric $all_nodes
verify_case other-metric

# --- other-tables: routes of protocol 211 that routectl does not own -------------------------
lab_nodes
lab_in_sync
# worker-0: its default route carries protocol 211; routes of protocol 211 in table 100 (both
# families); an owned host route and an owned blackhole route (not desired: deleted).
ipn worker-0 route replace default via 10.0.1.1 dev eth0 proto 211 src 10.0.1.20 metric 100
ipn worker-0 route add 10.1.9.0/24 via 10.0.2.29 dev eth1 proto 211 table 100
ipn worker-0 route add default via 10.0.2.29 dev eth1 proto 211 table 100
ipn worker-0 route add 10.1.5.7 via 10.0.2.21 dev eth1 proto 211
ipn worker-0 route add blackhole 10.1.8.0/24 proto 211
capture other-tables $all_nodes
# apply-deletes: the two deletions routectl sends to worker-0, run there.
batch apply-deletes worker-0
lab_nodes
lab_in_sync
ipn worker-0 route replace default via 10.0.1.1 dev eth0 proto 211 src 10.0.1.20 metric 100
ipn worker-0 route add 10.1.9.0/24 via 10.0.2.29 dev eth1 proto 211 table 100
ipn worker-0 route add default via 10.0.2.29 dev eth1 proto 211 table 100
ipn worker-0 route add 10.1.5.7 via 10.0.2.21 dev eth1 proto 211
ipn worker-0 route add blackhole 10.1.8.0/24 proto 211
verify_case other-tables

# --- tutorial-loop: the tutorial's loop added worker-0's route on every worker --------------
# `for i in 0 1 2; do lxc exec worker-${i} -- ip route add 10.200.0.0/24 via 10.0.2.20 dev eth1; done`
lab_nodes
for n in worker-0 worker-1 worker-2; do
  ipn "$n" route add 10.200.0.0/24 via 10.0.2.20 dev eth1
done
capture tutorial-loop $all_nodes
verify_case tutorial-loop

# tutorial-loop-in-range: the same leftovers, in a cluster whose pod range (10.200.0.0/16)
# holds 10.200.0.0/24 while no node has that pod CIDR any more.
lab
node controller-0 10
node worker-0 20 10.200.1.0/24
node worker-1 21 10.200.2.0/24
node worker-2 22 10.200.3.0/24
for n in worker-0 worker-1 worker-2; do
  ipn "$n" route add 10.200.0.0/24 via 10.0.2.20 dev eth1
done
capture tutorial-loop-in-range $all_nodes
verify_case tutorial-loop-in-range

# tutorial-loop-hard-way: the tutorial's own numbering (worker-N has 10.200.N.0/24). On worker-0
# the loop's `add` fails (File exists: cnio0's connected route holds that key); on worker-1 and
# worker-2 the leftover is exactly the route routectl wants there.
lab
node controller-0 10
node worker-0 20 10.200.0.0/24
node worker-1 21 10.200.1.0/24
node worker-2 22 10.200.2.0/24
for n in worker-0 worker-1 worker-2; do
  ipn "$n" route add 10.200.0.0/24 via 10.0.2.20 dev eth1 || echo "($n: add refused, as in the lab)"
done
capture tutorial-loop-hard-way $all_nodes
verify_case tutorial-loop-hard-way

echo "captures rewritten"
