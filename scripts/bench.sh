#!/usr/bin/env bash
# Benchmarks routectl against the alternatives, on real kernels.
#
#   scripts/bench.sh [--sizes "10 40 100 200"] [--runs 10] [--slow-runs 3] [--out DIR]
#                    [--sweep "4 8 16 32"] [--sweep-sizes "40 200"] [--no-netns]
#                    [--lxd] [--with-ansible] [--offline "100 300 1000 2000"] [--no-build]
#                    [--ssh] [--ssh-nodes "2 8"]
#                    [--watch "40"] [--idle 60] [--no-host] [--no-exec-sweep]
#                    [--baseline BIN] [--lxd-nodes "worker-0 worker-1 worker-2"]
#
# netns (default, needs root): for each size N, a lab of N network namespaces (eth1 on a shared
# bridge in a hub namespace, an internal IP in 10.0.0.0/16, a /24 pod CIDR on an empty cnio0
# bridge) and a topology with transport = "netns"; then hyperfine times
#   - one parallel round of reads (`ip -n NS -N -d -j route show table all`; xargs -P 4, -P 16
#     and all at once), from empty and in sync,
#   - routectl plan (from empty and in sync), routectl apply --auto-approve (from empty, with
#     `ip route flush proto 211` on every node as hyperfine's --prepare, and in sync),
#   - the per-route loop (one `ip -n NS route add …` per route),
#   - the ideal: one `ip -n NS -batch -` per node, sequential and in 8 parallel lanes;
# checks the number of node commands routectl runs (`-v` and summary.node_commands); and sweeps
# routectl's --parallelism and raw exec concurrency.
# --lxd: the same on the running LXD lab (worker-0..2), against the tutorial-style loop
# (`lxc exec … ip route add` per route) and `ip route replace`; --with-ansible adds an Ansible
# playbook over community.general.lxd (installed from PyPI into a throwaway venv under /tmp).
# --offline: `routectl plan --observed DIR` of synthetic clusters (hyperfine and /usr/bin/time -v).
# --ssh: on the SSH lab (scripts/lab-ssh.sh: real sshd in namespaces; for each --ssh-nodes N,
# N workers and the server), one plain parallel ssh read round without multiplexing (a new
# connection and handshake per node, xargs -P 0) against routectl plan: the first one (no
# connection master yet: hyperfine --prepare ends them) and the second one (masters kept by
# ControlPersist), routectl apply in sync, and the multiplexed read round; the sshd logs count
# the handshakes of 10 plans. The lab is left with 2 workers, as the tests expect.
# Host access (`--access host`, netlink in the node's namespace; --no-host leaves it out): plan
# and apply from empty / in sync on the netns and LXD labs beside the exec path, and on LXD the
# read round through `nsenter -t PID -n ip` (PIDs from `lxc query`) it replaces, and the
# daemon's answers host access waits for (the instance list, each node's `/state`).
# --baseline BIN: the LXD plans and applies (both accesses) and the netns applies are also timed
# with another routectl binary (an earlier build), in the same run, for before/after figures.
# --lxd-nodes: the LXD lab's containers to use (default the three workers; each needs eth1 and
# a cnio0 bridge for its pod CIDR). The LXD part takes the lab's lock (the one the test suite takes,
# /tmp/routectl-test-lxd-lab.lock), waiting for tests that hold it, and holds it to the end.
# --watch SIZES: `reconcile --watch --interval 60s` on a netns lab of each size (the word `lxd`
# instead of a size: none, only the LXD part), with host and
# with exec access: idle CPU of routectl and its `ip monitor` children over --idle seconds (from
# /proc/PID/stat), and five restore latencies each of a deleted route and of an address re-add
# (which flushes the routes through the link); with --lxd also on the LXD lab, with a container
# restart (worker-2) measured from the start of `lxc restart` to its routes being back.
#
# The Ansible venv is made under the temporary work directory and removed with it (about a
# minute to install); RTBENCH_VENV=/path/to/venv reuses one with the PyPI package `ansible`.
# Raw hyperfine JSON, command logs and results.tsv go to --out (default /tmp/rtbench-results-*).
# Everything created (namespaces, LXD routes of protocol 211, temporary files) is removed on
# exit, also on failure or Ctrl-C.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES="10 40 100 200"
RUNS=10
SLOW_RUNS=3
SWEEP="4 8 16 32"
SWEEP_SIZES="40 200"
NETNS=1
LXD=0
ANSIBLE=0
OFFLINE=""
BUILD=1
OUT=""
LXD_NODES="worker-0 worker-1 worker-2"
SSH=0
SSH_NODES="2 8"
WATCH=""
IDLE=60
HOST=1
EXEC_SWEEP=1
BASELINE=""

die() { echo "bench.sh: $*" >&2; exit 1; }

# The benchmark's parts (each file only defines functions and the names they use).
BENCH_DIR=$ROOT/scripts/bench
# shellcheck source=bench/common.sh
source "$BENCH_DIR/common.sh"
# shellcheck source=bench/netns.sh
source "$BENCH_DIR/netns.sh"
# shellcheck source=bench/lxd.sh
source "$BENCH_DIR/lxd.sh"
# shellcheck source=bench/watch.sh
source "$BENCH_DIR/watch.sh"
# shellcheck source=bench/offline.sh
source "$BENCH_DIR/offline.sh"
# shellcheck source=bench/ssh.sh
source "$BENCH_DIR/ssh.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --slow-runs) SLOW_RUNS=$2; shift ;;
        --sweep) SWEEP=$2; shift ;;
        --sweep-sizes) SWEEP_SIZES=$2; shift ;;
        --no-netns) NETNS=0 ;;
        --lxd) LXD=1 ;;
        --with-ansible) LXD=1; ANSIBLE=1 ;;
        --offline) OFFLINE=$2; shift ;;
        --ssh) SSH=1 ;;
        --ssh-nodes) SSH=1; SSH_NODES=$2; shift ;;
        --no-build) BUILD=0 ;;
        --watch) WATCH=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --no-host) HOST=0 ;;
        --no-exec-sweep) EXEC_SWEEP=0 ;;
        --baseline) BASELINE=$2; shift ;;
        --lxd-nodes) LXD_NODES=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

command -v hyperfine >/dev/null || die "hyperfine is missing (apt-get install -y hyperfine)"
command -v jq >/dev/null || die "jq is missing (apt-get install -y jq)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install -y time)"
if [ "$LXD" = 1 ] && [ "$HOST" = 1 ]; then
    command -v curl >/dev/null || die "curl is missing (apt-get install -y curl), or use --no-host"
    command -v nsenter >/dev/null || die "nsenter is missing (apt-get install -y util-linux), or use --no-host"
fi
if [ "$NETNS" = 1 ] && [ "$(id -u)" != 0 ]; then die "the netns lab needs root"; fi

PFX="rtbench$$"
WORK=$(mktemp -d "/tmp/${PFX}-work.XXXXXX")
OUT=${OUT:-/tmp/rtbench-results-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/raw" "$OUT/logs"
RESULTS="$OUT/results.tsv"
printf 'scenario\tnodes\tcase\tmedian_ms\tmean_ms\tstddev_ms\tmin_ms\tmax_ms\truns\tload1\n' >"$RESULTS"
LXD_TOUCHED=0
SSH_TOUCHED=0

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PFX}-"); do
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$LXD_TOUCHED" = 1 ]; then
        for n in $LXD_NODES; do lxc exec "$n" -- ip route flush proto 211 2>/dev/null; done
    fi
    if [ "$SSH_TOUCHED" = 1 ]; then
        ssh_masters_exit
        "$ROOT/scripts/lab-ssh.sh" up --nodes 2 >/dev/null 2>&1
        "$ROOT/scripts/lab-ssh.sh" reset-routes >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
ROUTECTL=${ROUTECTL:-$ROOT/target/release/routectl}
[ -x "$ROUTECTL" ] || die "no routectl binary at $ROUTECTL"

{
    echo "date: $(date -Is)"
    echo "routectl: $("$ROUTECTL" --version) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null))"
    echo "nproc: $(nproc)"
    lscpu | head -15
    echo "kernel: $(uname -r)"
    echo "iproute2: $(ip -V)"
    echo "hyperfine: $(hyperfine --version)"
    command -v lxc >/dev/null && echo "lxd: $(lxc version 2>/dev/null | tr '\n' ' ')"
    echo "uptime at start: $(uptime)"
} >"$OUT/machine.txt"

# ------------------------------------------------------------------------------------------

if [ "$NETNS" = 1 ]; then
    for n in $SIZES; do bench_netns "$n"; done
    # 64 reads over 16 namespaces, J at once (no routectl involved).
    lab_up 16 "$WORK/exec"
    for _ in 1 2 3 4; do cat "$WORK/exec/namespaces"; done >"$WORK/exec/list"
    exec_sweep netns "$WORK/exec/list" "ip -n {} -N -d -j route show table all"
    lab_down
fi
if [ "$LXD" = 1 ]; then bench_lxd; fi
if [ "$SSH" = 1 ]; then for w in $SSH_NODES; do bench_ssh "$w"; done; fi
for n in $WATCH; do [ "$n" = lxd ] || bench_watch_netns "$n"; done
if [ "$LXD" = 1 ] && [ -n "$WATCH" ]; then bench_watch_lxd; fi
for n in $OFFLINE; do bench_offline "$n"; done

echo "uptime at end: $(uptime)" >>"$OUT/machine.txt"
echo
echo "Medians in ms (raw hyperfine JSON in $OUT/raw):"
column -t -s $'\t' "$RESULTS"
[ -f "$OUT/commands.tsv" ] && { echo; echo "Node commands:"; cat "$OUT/commands.tsv"; }
[ -f "$OUT/rss.tsv" ] && { echo; echo "Peak memory:"; cat "$OUT/rss.tsv"; }
exit 0
