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

load1() { cut -d' ' -f1 /proc/loadavg; }

# hf SCENARIO N CASE RUNS [hyperfine options…] -- COMMAND
hf() {
    local scenario=$1 n=$2 name=$3 runs=$4
    shift 4
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    local file="$OUT/raw/${scenario}-${n}-${name// /_}.json" load
    load=$(load1)
    hyperfine --style none --runs "$runs" "${opts[@]}" --export-json "$file" "$1" >"$OUT/logs/hyperfine.log" 2>&1 ||
        { cat "$OUT/logs/hyperfine.log" >&2; die "hyperfine failed: $scenario $n $name"; }
    jq -r --arg s "$scenario" --arg n "$n" --arg c "$name" --arg l "$load" \
        '.results[0] | [$s, $n, $c, (.median*1000|.*100|round/100), (.mean*1000|.*100|round/100),
          (.stddev*1000|.*100|round/100), (.min*1000|.*100|round/100), (.max*1000|.*100|round/100),
          (.times|length), $l] | @tsv' "$file" | tee -a "$RESULTS"
}

# ------------------------------------------------------------------------------------------
# netns lab

# nodes.tsv: namespace, node name, internal IP, pod CIDR, pod gateway (same addressing as
# benches/common/mod.rs).
lab_up() {
    local n=$1 dir=$2
    mkdir -p "$dir/batch"
    awk -v n="$n" -v p="$PFX" 'BEGIN { for (i = 0; i < n; i++) { a = i + 10; b = 64 + int(i / 256)
        printf "%s-%05d\tnode-%05d\t10.0.%d.%d\t10.%d.%d.0/24\t10.%d.%d.1\n", p, i, i, int(a / 256), a % 256, b, i % 256, b, i % 256 } }' \
        >"$dir/nodes.tsv"
    cut -f1 "$dir/nodes.tsv" >"$dir/namespaces"
    {
        printf '[cluster]\ninterface = "eth1"\ntransport = "netns"\npod_cidr = "10.64.0.0/10"\n'
        awk -F'\t' '{ printf "\n[[nodes]]\nname = \"%s\"\ninstance = \"%s\"\ninternal_ip = \"%s\"\npod_cidr = \"%s\"\n", $2, $1, $3, $4 }' "$dir/nodes.tsv"
    } >"$dir/topology.toml"
    # Per node, the routes to every other node: a batch file, and the per-route loop.
    awk -F'\t' -v dir="$dir" '{ ns[NR] = $1; ip[NR] = $3; pod[NR] = $4 }
        END { for (i = 1; i <= NR; i++) { f = dir "/batch/" ns[i]
            for (j = 1; j <= NR; j++) if (j != i) {
                printf "route add %s via %s dev eth1 proto 211\n", pod[j], ip[j] > f
                printf "ip -n %s route add %s via %s dev eth1 proto 211\n", ns[i], pod[j], ip[j] > (dir "/loop.sh") }
            close(f) } }' "$dir/nodes.tsv"
    local hub="$PFX-hub"
    ip netns add "$hub"
    printf 'link set lo up\nlink add br0 type bridge\nlink set br0 up\n' | ip -n "$hub" -batch -
    local i=0 hubscript=""
    while IFS=$'\t' read -r ns _ addr _ gw; do
        ip netns add "$ns"
        hubscript+="link add v$i type veth peer name eth1 netns $ns"$'\n'"link set v$i master br0"$'\n'"link set v$i up"$'\n'
        i=$((i + 1))
    done <"$dir/nodes.tsv"
    printf '%s' "$hubscript" | ip -n "$hub" -batch -
    while IFS=$'\t' read -r ns _ addr _ gw; do
        printf 'link set lo up\nlink set eth1 up\naddr add %s/16 dev eth1\nlink add cnio0 type bridge\nlink set cnio0 up\naddr add %s/24 dev cnio0\n' \
            "$addr" "$gw" | ip -n "$ns" -batch -
    done <"$dir/nodes.tsv"
}

lab_down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^${PFX}-"); do ip netns del "$ns"; done
}

# Count the node commands of a routectl run: `-v` lines on stderr and summary.node_commands.
check_commands() {
    local n=$1 dir=$2 flush=$3 topo=$4 label=$5
    local log="$OUT/logs/commands-${label}-${n}"
    (eval "$flush")
    "$ROUTECTL" -f "$topo" -v plan >"$log-plan-empty.out" 2>"$log-plan-empty.err" || true
    local plan_cmds apply_cmds apply_json sync_cmds sync_json
    plan_cmds=$(grep -c '^+ ' "$log-plan-empty.err" || true)
    "$ROUTECTL" -f "$topo" -v apply --auto-approve -o json >"$log-apply-empty.json" 2>"$log-apply-empty.err" || true
    apply_cmds=$(grep -c '^+ ' "$log-apply-empty.err" || true)
    apply_json=$(jq '.summary.node_commands' "$log-apply-empty.json")
    local batches readbacks
    # A write is `ip -batch` (netns: the read-back as its last line) or the apply script
    # (containers: READBACK 1, then the file mode and reload, before `ip OPTIONS`).
    batches=$(grep -cE -- '(-batch -| ip -N -d -j)$' "$log-apply-empty.err" || true)
    readbacks=$(($(grep -c '^  | route show table all$' "$log-apply-empty.err" || true) +
        $(grep -cE -- ' 1 [0-7]{4} [a-z]+ ip -N -d -j$' "$log-apply-empty.err" || true)))
    "$ROUTECTL" -f "$topo" -v apply --auto-approve -o json >"$log-apply-sync.json" 2>"$log-apply-sync.err" || true
    sync_cmds=$(grep -c '^+ ' "$log-apply-sync.err" || true)
    sync_json=$(jq '.summary.node_commands' "$log-apply-sync.json")
    local verdict=ok
    [ "$plan_cmds" = "$n" ] && [ "$apply_cmds" = $((2 * n)) ] && [ "$apply_json" = $((2 * n)) ] &&
        [ "$batches" = "$n" ] && [ "$readbacks" = "$n" ] && [ "$sync_cmds" = "$n" ] && [ "$sync_json" = "$n" ] ||
        verdict=DEVIATION
    printf '%s\t%s\tplan=%s (want %s)\tapply-from-empty=%s -v lines, node_commands=%s, batches=%s, batches ending in a read-back=%s (want %s, %s, %s, %s)\tapply-in-sync=%s -v lines, node_commands=%s (want %s)\t%s\n' \
        "$label" "$n" "$plan_cmds" "$n" "$apply_cmds" "$apply_json" "$batches" "$readbacks" $((2 * n)) $((2 * n)) "$n" "$n" \
        "$sync_cmds" "$sync_json" "$n" "$verdict" | tee -a "$OUT/commands.tsv"
}

# One parallel round of reads (no routectl): xargs with 4 and 16 lanes, and every node at once
# from a shell loop; the fastest is the reference routectl is held to.
read_rounds() {
    local n=$1 list=$2 state=$3
    local read="ip -n {} -N -d -j route show table all"
    hf netns "$n" "read round $state (4 lanes)" "$RUNS" --warmup 2 -- "xargs -P 4 -I{} $read <$list >/dev/null"
    hf netns "$n" "read round $state (16 lanes)" "$RUNS" --warmup 2 -- "xargs -P 16 -I{} $read <$list >/dev/null"
    hf netns "$n" "read round $state (all at once)" "$RUNS" --warmup 2 -- \
        "for ns in \$(cat $list); do ip -n \$ns -N -d -j route show table all >/dev/null & done; wait"
}

bench_netns() {
    local n=$1
    local dir="$WORK/n$n"
    echo "== netns lab, $n nodes (load $(load1))"
    local t0=$SECONDS
    lab_up "$n" "$dir"
    echo "   lab up in $((SECONDS - t0)) s"
    local topo="$dir/topology.toml" ns_list="$dir/namespaces"
    local flush="xargs -P 8 -I{} sh -c 'ip -n {} route flush proto 211 2>/dev/null || true' <$ns_list"
    local slow=$RUNS
    [ "$n" -ge 100 ] && slow=$SLOW_RUNS

    read_rounds "$n" "$ns_list" "from empty"
    hf netns "$n" "plan from empty" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf netns "$n" "apply from empty" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "$ROUTECTL -f $topo apply --auto-approve"
    if [ -n "$BASELINE" ]; then
        hf netns "$n" "apply from empty (baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$BASELINE -f $topo apply --auto-approve"
    fi
    if [ "$HOST" = 1 ]; then
        (eval "$flush")
        hf netns "$n" "plan from empty (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        hf netns "$n" "apply from empty (host access)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$ROUTECTL -f $topo --access host apply --auto-approve"
    fi
    check_commands "$n" "$dir" "$flush" "$topo" netns
    read_rounds "$n" "$ns_list" "in sync"
    hf netns "$n" "plan in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf netns "$n" "apply in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo apply --auto-approve"
    if [ "$HOST" = 1 ]; then
        hf netns "$n" "plan in sync (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        hf netns "$n" "apply in sync (host access)" "$RUNS" --warmup 1 -- \
            "$ROUTECTL -f $topo --access host apply --auto-approve"
    fi
    hf netns "$n" "per-route loop (ip route add)" "$slow" --prepare "$flush" -- "bash $dir/loop.sh"
    hf netns "$n" "batch per node, sequential" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "for ns in \$(cat $ns_list); do ip -n \$ns -batch - <$dir/batch/\$ns; done"
    hf netns "$n" "batch per node, 8 lanes" "$RUNS" --warmup 1 --prepare "$flush" -- \
        "xargs -P 8 -I{} sh -c 'ip -n {} -batch - <$dir/batch/{}' <$ns_list"
    if [[ " $SWEEP_SIZES " == *" $n "* ]]; then
        for j in $SWEEP; do
            "$ROUTECTL" -f "$topo" apply -y -q
            hf netns-sweep "$n" "plan in sync -j $j" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo -j $j plan"
            hf netns-sweep "$n" "apply from empty -j $j" "$RUNS" --warmup 1 --prepare "$flush" -- \
                "$ROUTECTL -f $topo -j $j apply --auto-approve"
        done
    fi
    (eval "$flush")
    lab_down
}

# Raw exec concurrency: 64 reads through a transport with J at once, for J in 1 2 4 … 32.
# COMMAND has {} where the node goes. `lxc exec` was seen to hang for good under concurrency
# (2 of 8 concurrent calls, once), so each call is killed after 15 s and failures are timed,
# not fatal: a run near or over 15 s in the raw JSON is such a hang.
exec_sweep() {
    local label=$1 list=$2 command=$3
    [ "$EXEC_SWEEP" = 1 ] || return 0
    for j in 1 2 4 8 16 32; do
        hf "exec-sweep-$label" 64 "64 reads, $j at once" "$RUNS" --warmup 1 -i -- \
            "xargs -P $j -I{} timeout -s KILL 15 $command <$list >/dev/null"
    done
}

# ------------------------------------------------------------------------------------------
# LXD lab

lxd_topology() {
    lxc list --format json | jq -r --arg nodes "$LXD_NODES" '
        ($nodes | split(" ")) as $want
        | [.[] | select(.name as $n | $want | index($n))] | sort_by(.name)
        | "[cluster]\ninterface = \"eth1\"\ntransport = \"lxc\"\n",
          (.[] | . as $i
            | ($i.state.network.eth1.addresses[] | select(.family == "inet") | .address) as $ip
            | ($i.state.network.cnio0.addresses[] | select(.family == "inet")) as $pod
            | "[[nodes]]\nname = \"\($i.name)\"\ninternal_ip = \"\($ip)\"\npod_cidr = \"\($pod.address | split(".") | .[0:3] | join(".")).0/\($pod.netmask)\"\n")'
}

# Skips the LXD part (with a message, not a failure) when there is no lab to use.
lxd_skip() {
    echo "== LXD lab skipped: $*" | tee -a "$OUT/machine.txt" >&2
}

bench_lxd() {
    command -v lxc >/dev/null || { lxd_skip "lxc is not installed"; return 0; }
    # The lab is shared with the test suite: take its lock (held until this script exits).
    exec {LAB_LOCK_FD}>>/tmp/routectl-test-lxd-lab.lock
    flock -n "$LAB_LOCK_FD" || { echo "   waiting for the LXD lab's lock (a test holds it)"; flock "$LAB_LOCK_FD"; }
    lxc list >/dev/null 2>&1 || { lxd_skip "lxc list fails (is the LXD daemon up?)"; return 0; }
    for n in $LXD_NODES; do
        [ "$(lxc list --format json | jq -r --arg n "$n" '.[] | select(.name == $n) | .status')" = Running ] ||
            { lxd_skip "$n is not running"; return 0; }
    done
    # With the lock held, routes of protocol 211 are what the last test left (each test resets
    # the lab when it takes it): start from none.
    for n in $LXD_NODES; do lxc exec "$n" -- ip route flush proto 211; done
    local dir="$WORK/lxd" topo n_nodes
    mkdir -p "$dir"
    lxd_topology >"$dir/topology.toml"
    topo="$dir/topology.toml"
    "$ROUTECTL" -f "$topo" validate >/dev/null
    n_nodes=$(echo $LXD_NODES | wc -w)
    # The routes every node gets, as (node, pod CIDR, gateway).
    lxc list --format json | jq -r --arg nodes "$LXD_NODES" '
        ($nodes | split(" ")) as $want
        | [.[] | select(.name as $n | $want | index($n))
           | {name, ip: (.state.network.eth1.addresses[] | select(.family == "inet") | .address),
              pod: (.state.network.cnio0.addresses[] | select(.family == "inet")
                    | "\(.address | split(".") | .[0:3] | join(".")).0/\(.netmask)")}] as $all
        | $all[] as $a | $all[] | select(.name != $a.name) | "\($a.name)\t\(.pod)\t\(.ip)"' >"$dir/routes.tsv"
    awk -F'\t' '{ printf "lxc exec %s -- ip route add %s via %s dev eth1 proto 211\n", $1, $2, $3 }' "$dir/routes.tsv" >"$dir/loop-add.sh"
    awk -F'\t' '{ printf "lxc exec %s -- ip route replace %s via %s dev eth1 proto 211\n", $1, $2, $3 }' "$dir/routes.tsv" >"$dir/loop-replace.sh"
    for n in $LXD_NODES; do
        awk -F'\t' -v n="$n" '$1 == n { printf "route add %s via %s dev eth1 proto 211\n", $2, $3 }' "$dir/routes.tsv" >"$dir/batch-$n"
        echo "$n"
    done >"$dir/namespaces"
    {
        echo "for n in $LXD_NODES; do lxc exec \$n -- ip -batch - <$dir/batch-\$n & done; wait"
    } >"$dir/ideal.sh"
    local flush="for node in $LXD_NODES; do lxc exec \$node -- ip route flush proto 211 & done; wait"
    local reads="for node in $LXD_NODES; do lxc exec \$node -- ip -N -d -j route show table all >/dev/null & done; wait"
    LXD_TOUCHED=1
    # RTBENCH_LXD_WATCH_ONLY=1 (with --watch lxd): only the watch on the LXD lab.
    [ "${RTBENCH_LXD_WATCH_ONLY:-0}" = 1 ] && return 0
    echo "== LXD lab: $LXD_NODES ($(wc -l <"$dir/routes.tsv") routes; load $(load1))"
    hf lxd "$n_nodes" "read round from empty (parallel)" "$RUNS" --warmup 2 -- "$reads"
    hf lxd "$n_nodes" "plan from empty" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf lxd "$n_nodes" "apply from empty" "$RUNS" --warmup 1 --prepare "$flush" -- "$ROUTECTL -f $topo apply --auto-approve"
    if [ -n "$BASELINE" ]; then
        hf lxd "$n_nodes" "apply from empty (baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$BASELINE -f $topo apply --auto-approve"
    fi
    if [ "$HOST" = 1 ]; then
        local pids="" nsenter_reads
        for node in $LXD_NODES; do pids+=" $(lxc query "/1.0/instances/$node/state" | jq -r .pid)"; done
        nsenter_reads="for pid in$pids; do nsenter -t \$pid -n ip -N -d -j route show table all >/dev/null & done; wait"
        (eval "$flush")
        hf lxd "$n_nodes" "read round from empty via nsenter (parallel)" "$RUNS" --warmup 2 -- "$nsenter_reads"
        hf lxd "$n_nodes" "plan from empty (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        hf lxd "$n_nodes" "apply from empty (host access)" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$ROUTECTL -f $topo --access host apply --auto-approve"
        hf lxd "$n_nodes" "plan in sync (host access)" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo --access host plan"
        if [ -n "$BASELINE" ]; then
            (eval "$flush")
            hf lxd "$n_nodes" "plan from empty (host access, baseline build)" "$RUNS" --warmup 1 -- \
                "$BASELINE -f $topo --access host plan"
            hf lxd "$n_nodes" "apply from empty (host access, baseline build)" "$RUNS" --warmup 1 --prepare "$flush" -- \
                "$BASELINE -f $topo --access host apply --auto-approve"
        fi
        hf lxd "$n_nodes" "read round in sync via nsenter (parallel)" "$RUNS" --warmup 2 -- "$nsenter_reads"
        hf lxd "$n_nodes" "LXD API instances recursion=2 (curl)" "$RUNS" --warmup 2 -- \
            "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=2' >/dev/null"
        hf lxd "$n_nodes" "LXD API instances recursion=1 (curl)" "$RUNS" --warmup 2 -- \
            "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=1' >/dev/null"
        # What host access asks outside a cluster: the list and each node's state, side by side.
        hf lxd "$n_nodes" "LXD API list and each state in parallel (curl)" "$RUNS" --warmup 2 -- \
            "curl -s --unix-socket /var/lib/lxd/unix.socket 'http://lxd/1.0/instances?recursion=1' >/dev/null &
             for n in $LXD_NODES; do curl -s --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances/\$n/state >/dev/null & done; wait"
    fi
    check_commands "$n_nodes" "$dir" "$flush" "$topo" lxd
    hf lxd "$n_nodes" "read round in sync (parallel)" "$RUNS" --warmup 2 -- "$reads"
    hf lxd "$n_nodes" "plan in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo plan"
    hf lxd "$n_nodes" "apply in sync" "$RUNS" --warmup 1 -- "$ROUTECTL -f $topo apply --auto-approve"
    hf lxd "$n_nodes" "tutorial loop (ip route add)" "$RUNS" --prepare "$flush" -- "bash $dir/loop-add.sh"
    hf lxd "$n_nodes" "tutorial loop (ip route replace)" "$RUNS" --prepare "$flush" -- "bash $dir/loop-replace.sh"
    hf lxd "$n_nodes" "batch per node, parallel (ideal)" "$RUNS" --warmup 1 --prepare "$flush" -- "bash $dir/ideal.sh"
    for j in 1 2 3; do
        hf lxd-sweep "$n_nodes" "apply from empty -j $j" "$RUNS" --warmup 1 --prepare "$flush" -- \
            "$ROUTECTL -f $topo -j $j apply --auto-approve"
    done
    if [ "$ANSIBLE" = 1 ]; then
        bench_ansible "$dir" "$n_nodes" "$flush"
    fi
    # 64 reads spread over the lab's containers, J at once.
    local all_nodes
    # shellcheck disable=SC2086 # a list of names
    all_nodes=$(printf '%s\n' $LXD_NODES)
    for _ in $(seq 16); do echo "$all_nodes"; done | head -64 >"$dir/exec-list"
    exec_sweep lxd "$dir/exec-list" "lxc exec {} -- ip -N -d -j route show table all"
    (eval "$flush")
}

bench_ansible() {
    local dir=$1 n_nodes=$2 flush=$3 venv="$WORK/venv"
    if [ -n "${RTBENCH_VENV:-}" ]; then
        venv=$RTBENCH_VENV # a venv kept from an earlier run (not removed)
    else
        echo "   installing ansible-core and community.general (PyPI package ansible) into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q ansible >"$OUT/logs/pip.log" 2>&1
    fi
    "$venv/bin/ansible" --version | head -1 >>"$OUT/machine.txt"
    "$venv/bin/ansible-galaxy" collection list community.general 2>/dev/null | tail -1 >>"$OUT/machine.txt"
    {
        echo "[workers]"
        for n in $LXD_NODES; do echo "$n"; done
        echo "[workers:vars]"
        echo "ansible_connection=community.general.lxd"
        echo "ansible_python_interpreter=/usr/bin/false"
    } >"$dir/inventory.ini"
    {
        echo "- hosts: workers"
        echo "  gather_facts: false"
        echo "  tasks:"
        echo "    - name: pod routes"
        echo "      raw: ip route replace {{ item }} dev eth1 proto 211"
        echo "      loop: \"{{ routes[inventory_hostname] }}\""
        echo "  vars:"
        echo "    routes:"
        for n in $LXD_NODES; do
            echo "      $n:"
            awk -F'\t' -v n="$n" '$1 == n { printf "        - \"%s via %s\"\n", $2, $3 }' "$dir/routes.tsv"
        done
    } >"$dir/playbook.yml"
    local env="ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=null ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp"
    # One run by hand, so that a broken setup fails loudly instead of being timed.
    (eval "$flush")
    env $env "$venv/bin/ansible-playbook" -i "$dir/inventory.ini" "$dir/playbook.yml" >"$OUT/logs/ansible.log" 2>&1 ||
        { cat "$OUT/logs/ansible.log" >&2; die "ansible-playbook failed"; }
    for n in $LXD_NODES; do
        [ "$(lxc exec "$n" -- ip route show proto 211 | wc -l)" -gt 0 ] || die "ansible added no route on $n"
    done
    hf lxd "$n_nodes" "ansible playbook (raw: ip route replace)" "$SLOW_RUNS" --warmup 1 --prepare "$flush" -- \
        "env $env $venv/bin/ansible-playbook -i $dir/inventory.ini $dir/playbook.yml"
}

# ------------------------------------------------------------------------------------------
# reconcile --watch: idle CPU and restore latencies

now_ms() { date +%s%3N; }

# CPU ticks (utime + stime) of a process and its children.
cpu_ticks() {
    local total=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# watch_row SCENARIO N CASE "ms ms ms …": median, min, max of the trials.
watch_row() {
    local sorted med
    sorted=$(tr ' ' '\n' <<<"$4" | grep . | sort -n)
    med=$(sed -n "$(( ($(wc -l <<<"$sorted") + 1) / 2 ))p" <<<"$sorted")
    printf '%s\t%s\t%s\t%s\t\t\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$med" "$(head -1 <<<"$sorted")" \
        "$(tail -1 <<<"$sorted")" "$(wc -l <<<"$sorted")" "$(load1)" | tee -a "$RESULTS"
}

# until_ms LIMIT_S COMMAND…: runs COMMAND every 10 ms until it succeeds; prints the ms taken
# (or the limit, marked with a trailing !).
until_ms() {
    local limit=$1 t0
    shift
    t0=$(now_ms)
    while ! "$@" >/dev/null 2>&1; do
        if [ $(( $(now_ms) - t0 )) -gt $((limit * 1000)) ]; then echo "$((limit * 1000))!"; return; fi
        sleep 0.01
    done
    echo $(( $(now_ms) - t0 ))
}

has_route() { [ -n "$("${@:1:$#-1}" route show "${!#}" proto 211)" ]; }

# start_watch TOPOLOGY LOG ACCESS: starts `reconcile --watch`, waits until it watches.
start_watch() {
    local extra=()
    [ "$3" = host ] && extra=(--access host)
    "$ROUTECTL" -f "$1" "${extra[@]}" --lock-file "$WORK/watch.lock" reconcile --watch --interval 60s 2>"$2" &
    WATCH_PID=$!
    local t0=$SECONDS
    until grep -q 'watching ' "$2"; do
        [ $((SECONDS - t0)) -lt 30 ] || die "reconcile --watch did not start: $(cat "$2")"
        sleep 0.1
    done
    sleep 2 # the first rounds the watchers' start triggers
}

stop_watch() {
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
}

bench_watch_netns() {
    local n=$1 dir="$WORK/watch$1"
    echo "== reconcile --watch on $n namespaces (load $(load1))"
    lab_up "$n" "$dir"
    local topo="$dir/topology.toml" ns addr route
    "$ROUTECTL" -f "$topo" apply -y -q
    ns=$(sed -n 1p "$dir/nodes.tsv" | cut -f1)
    addr=$(sed -n 1p "$dir/nodes.tsv" | cut -f3)
    route=$(sed -n 2p "$dir/nodes.tsv" | cut -f4)
    for access in host exec; do
        local log="$OUT/logs/watch-netns-$n-$access.log" c0 c1 hz trials=""
        start_watch "$topo" "$log" "$access"
        hz=$(getconf CLK_TCK)
        c0=$(cpu_ticks "$WATCH_PID")
        sleep "$IDLE"
        c1=$(cpu_ticks "$WATCH_PID")
        printf 'watch\t%s\tidle CPU, %s access (%% of a core over %s s)\t%s\n' "$n" "$access" "$IDLE" \
            "$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.3f", 100 * d / hz / s }')" | tee -a "$RESULTS"
        for _ in 1 2 3 4 5; do
            ip -n "$ns" route del "$route"
            trials+=" $(until_ms 10 has_route ip -n "$ns" "$route")"
            sleep 0.5
        done
        watch_row watch "$n" "deleted route restored, $access access (ms)" "$trials"
        trials=""
        for _ in 1 2 3 4 5; do
            ip -n "$ns" addr del "$addr/16" dev eth1
            ip -n "$ns" addr add "$addr/16" dev eth1
            trials+=" $(until_ms 10 has_route ip -n "$ns" "$route")"
            sleep 0.5
        done
        watch_row watch "$n" "address re-add flush repaired, $access access (ms)" "$trials"
        stop_watch
    done
    lab_down
}

bench_watch_lxd() {
    local topo="$WORK/lxd/topology.toml" route trials
    [ -f "$topo" ] || return 0
    route=$(awk -F'\t' '$1 == "worker-2" { print $2; exit }' "$WORK/lxd/routes.tsv")
    echo "== reconcile --watch on the LXD lab (load $(load1))"
    "$ROUTECTL" -f "$topo" apply -y -q
    for access in host exec; do
        start_watch "$topo" "$OUT/logs/watch-lxd-$access.log" "$access"
        trials=""
        # Deleted and polled from the host in the container's namespace (`lxc exec` itself
        # takes 50-500 ms here, which would be most of what is measured).
        local pid
        pid=$(lxc query /1.0/instances/worker-2/state | jq -r .pid)
        for _ in 1 2 3; do
            nsenter -t "$pid" -n ip route del "$route" || true
            trials+=" $(until_ms 10 has_route nsenter -t "$pid" -n ip "$route")"
            sleep 0.5
        done
        watch_row watch-lxd 3 "deleted route restored, $access access (ms)" "$trials"
        trials=""
        for _ in 1 2; do
            local t0
            t0=$(now_ms)
            lxc restart --force worker-2
            until_ms 30 has_route lxc exec worker-2 -- ip "$route" >/dev/null
            trials+=" $(( $(now_ms) - t0 ))"
            sleep 1
        done
        watch_row watch-lxd 3 "restarted container's routes back, $access access (ms from lxc restart)" "$trials"
        stop_watch
    done
}

# ------------------------------------------------------------------------------------------
# Offline: routectl plan --observed

bench_offline() {
    local n=$1
    local dir="$WORK/offline-$n"
    echo "== offline plan --observed, $n nodes (load $(load1))"
    for state in in-sync empty; do
        (cd "$ROOT" && cargo bench --quiet --bench gen_observed -- --out "$dir-$state" --nodes "$n" --state "$state") >/dev/null
        # The text plan and the JSON document of the same plan (the JSON is to stay within 2x
        # of the text's time; both streamed to stdout).
        local output
        for output in text json; do
            local cmd="$ROUTECTL -f $dir-$state/topology.toml plan --observed $dir-$state/observed --output $output"
            hf offline "$n" "plan --observed $state --output $output" "$SLOW_RUNS" --warmup 1 -- "$cmd"
            local rss=()
            for _ in 1 2 3; do
                /usr/bin/time -f '%M' -o "$WORK/rss" $cmd >/dev/null
                rss+=("$(cat "$WORK/rss")")
            done
            local med
            med=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n 2p)
            printf 'offline\t%s\tpeak RSS %s --output %s (KB, median of 3)\t%s\n' "$n" "$state" "$output" "$med" | tee -a "$OUT/rss.tsv"
        done
        rm -rf "$dir-$state"
    done
}

# ------------------------------------------------------------------------------------------
# SSH lab

SSH_STATE=/var/lib/routectl-lab/ssh-lab
SSH_ADDRS=""
ssh_masters_exit() {
    local a
    for a in $SSH_ADDRS; do
        ssh -F "$SSH_STATE/ssh_config" -o "ControlPath=$WORK/rt/ssh/%C" -O exit "$a" >/dev/null 2>&1
    done
    return 0
}

ssh_logins() { cat "$SSH_STATE"/nodes/*/sshd.log 2>/dev/null | grep -c 'Accepted publickey' || true; }

bench_ssh() {
    local workers=$1 n topo="$WORK/ssh/topology.toml"
    [ "$(id -u)" = 0 ] || die "the SSH lab needs root"
    SSH_TOUCHED=1
    mkdir -p "$WORK/ssh"
    "$ROOT/scripts/lab-ssh.sh" up --nodes "$workers" >"$OUT/logs/lab-ssh.log" 2>&1 ||
        { cat "$OUT/logs/lab-ssh.log" >&2; die "scripts/lab-ssh.sh up failed"; }
    "$ROOT/scripts/lab-ssh.sh" reset-routes >>"$OUT/logs/lab-ssh.log" 2>&1
    "$ROUTECTL" discover --from machines "$SSH_STATE/machines.txt" \
        --ssh-config "$SSH_STATE/ssh_config" --out "$topo" --force -q
    SSH_ADDRS=$(awk '{print $1}' "$SSH_STATE/machines.txt" | tr '\n' ' ')
    {
        echo '#!/bin/sh'
        for a in $SSH_ADDRS; do
            echo "ssh -F $SSH_STATE/ssh_config -o ControlPath=$WORK/rt/ssh/%C -O exit $a >/dev/null 2>&1"
        done
        echo 'exit 0'
    } >"$WORK/ssh/drop-masters"
    chmod +x "$WORK/ssh/drop-masters"
    n=$(wc -w <<<"$SSH_ADDRS")
    printf '%s\n' $SSH_ADDRS >"$WORK/ssh/addrs"
    export ROUTECTL_RUNTIME_DIR=$WORK/rt
    local rc="$ROUTECTL -q -f $topo"
    local read="ip -N -d -j route show table all"
    local cfg="-F $SSH_STATE/ssh_config -o BatchMode=yes"
    hf ssh "$n" "plain parallel ssh read round (no multiplexing)" "$RUNS" -- \
        "xargs -P 0 -I{} ssh $cfg -o ControlMaster=no -o ControlPath=none -T {} $read <$WORK/ssh/addrs >/dev/null"
    hf ssh "$n" "routectl plan, first (no master)" "$RUNS" --prepare "$WORK/ssh/drop-masters" -- \
        "$rc plan"
    $rc apply --auto-approve >/dev/null
    hf ssh "$n" "routectl plan, second (masters kept)" "$RUNS" --warmup 1 -- "$rc plan"
    hf ssh "$n" "routectl apply in sync (masters kept)" "$RUNS" --warmup 1 -- "$rc apply --auto-approve"
    hf ssh "$n" "multiplexed parallel ssh read round" "$RUNS" --warmup 1 -- \
        "xargs -P 0 -I{} ssh $cfg -o ControlMaster=auto -o ControlPath=$WORK/rt/ssh/%C -T {} $read <$WORK/ssh/addrs >/dev/null"
    # Handshakes: a cold start, then 10 plans and an apply.
    ssh_masters_exit
    local before after
    before=$(ssh_logins)
    for _ in 1 2 3 4 5 6 7 8 9 10; do $rc plan >/dev/null; done
    $rc apply --auto-approve >/dev/null
    after=$(ssh_logins)
    printf 'ssh\t%s\thandshakes for 10 plans and an apply (from no master)\t%s\n' "$n" "$((after - before))" |
        tee -a "$OUT/commands.tsv"
    ssh_masters_exit
    "$ROOT/scripts/lab-ssh.sh" reset-routes >>"$OUT/logs/lab-ssh.log" 2>&1
    unset ROUTECTL_RUNTIME_DIR
}

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
