#!/usr/bin/env bash
# Long run of `routectl reconcile --watch` under churn, sampling the watcher's memory, open files,
# threads and CPU time. Two labs, run side by side:
#   netns  40 network namespaces of its own (soak-n00..soak-n39, hub soak-hub)
#   lxd    the four containers of tests/labs/soak.toml (scripts/lab.sh up --lab soak: LXD project
#          routectl-soak, bridge rtsoak0), apart from every other lab
# Every minute each lab is disturbed: routes deleted by hand, a link flapped, and a node
# restarted (a container restarted; a namespace deleted and made again). Both labs are removed
# on exit, whatever happens.
#
# Usage: scripts/soak.sh [--minutes N] [--out DIR] [--netns-access exec|host]
#                        [--lxd-access exec|host] [netns|lxd|both]
# Writes DIR/LAB.tsv (one sample a minute), DIR/LAB.log (the watcher's log) and DIR/summary.txt.

set -euo pipefail

MINUTES=30
OUT=/tmp/routectl-soak
NETNS_ACCESS='exec'
LXD_ACCESS='exec'
WHICH=both
readonly NODES=40 HUB=soak-hub PREFIX=soak-n PROJECT=routectl-soak
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR REPO_ROOT=${SCRIPT_DIR%/*}
readonly LXD_TOPO=$REPO_ROOT/tests/labs/soak.toml
BIN=${ROUTECTL_BIN:-$REPO_ROOT/target/release/routectl}
PIDS=()

nap() { sleep "$1" & wait "$!"; } # a sleep that a signal interrupts
log() { printf 'soak: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--minutes) MINUTES=$2 && shift ;;
	--out) OUT=$2 && shift ;;
	--netns-access) NETNS_ACCESS=$2 && shift ;;
	--lxd-access) LXD_ACCESS=$2 && shift ;;
	netns | lxd | both) WHICH=$1 ;;
	-h | --help)
		sed -n '2,14p' "$0"
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done
{ [[ $MINUTES =~ ^[0-9]+$ ]] && [ "$MINUTES" -ge 1 ] && [ "$MINUTES" -le 1440 ]; } || die "--minutes: 1 to 1440"
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$BIN" ] || die "no routectl at $BIN (cargo build --release, or set ROUTECTL_BIN)"
mkdir -p "$OUT"

# ---------------------------------------------------------------------------------------------
# The netns lab.

ns_name() { printf '%s%02d' "$PREFIX" "$1"; }

ns_node_up() { # I: (re)creates namespace I, its link to the hub and its addresses
	local i=$1 ns
	ns=$(ns_name "$i")
	# The hub's end of a deleted namespace's veth goes away a little later: do not wait for it.
	ip -n "$HUB" link del "v$i" 2>/dev/null || true
	ip netns add "$ns"
	ip -n "$HUB" link add "v$i" type veth peer name eth1 netns "$ns"
	ip -n "$HUB" link set "v$i" master br0 up
	ip -n "$ns" -b - <<EOF
link set lo up
link set eth1 up
addr add 10.20.0.$((10 + i))/24 dev eth1
link add cnio0 type bridge
link set cnio0 up
addr add 10.21.$i.1/24 dev cnio0
EOF
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
}

netns_up() {
	local i topo=$OUT/netns.toml
	ip netns add "$HUB"
	ip -n "$HUB" -b - <<<$'link set lo up\nlink add br0 type bridge\nlink set br0 up'
	printf '[cluster]\ninterface = "eth1"\ntransport = "netns"\npod_cidr = "10.21.0.0/16"\n' >"$topo"
	for ((i = 0; i < NODES; i++)); do
		ns_node_up "$i"
		printf '\n[[nodes]]\nname = "%s"\ninternal_ip = "10.20.0.%d"\npod_cidr = "10.21.%d.0/24"\n' \
			"$(ns_name "$i")" $((10 + i)) "$i" >>"$topo"
	done
}

netns_down() {
	local i ns
	for ((i = 0; i < NODES; i++)); do
		ns=$(ns_name "$i")
		[ ! -e "/run/netns/$ns" ] || ip netns del "$ns" || true
		rm -f "/run/routectl/last-applied/$ns.json"
	done
	[ ! -e "/run/netns/$HUB" ] || ip netns del "$HUB" || true
}

netns_churn() { # MINUTE
	local m=$1 a b c
	a=$(ns_name $((m * 7 % NODES))) b=$(ns_name $(((m * 7 + 13) % NODES))) c=$(((m * 7 + 29) % NODES))
	# Three routes deleted by hand on one node, a link flapped on another (the kernel drops
	# every route through it), a third node's namespace deleted and made again.
	ip -n "$a" route del "10.21.$(((m + 1) % NODES)).0/24" 2>/dev/null || true
	ip -n "$a" route del "10.21.$(((m + 2) % NODES)).0/24" 2>/dev/null || true
	ip -n "$a" route del "10.21.$(((m + 3) % NODES)).0/24" 2>/dev/null || true
	ip -n "$b" link set eth1 down && sleep 1 && ip -n "$b" link set eth1 up
	if ! { ip netns del "$(ns_name "$c")" && sleep 1 && ns_node_up "$c"; }; then
		log "minute $m: remaking $(ns_name "$c") failed"
	fi
}

# ---------------------------------------------------------------------------------------------
# The LXD lab.

lxd_up() { "$REPO_ROOT/scripts/lab.sh" up --lxd --lab soak "$LXD_TOPO" >"$OUT/lab-up.log" 2>&1; }

lxd_down() {
	"$REPO_ROOT/scripts/lab.sh" down --lxd --lab soak "$LXD_TOPO" >>"$OUT/lab-down.log" 2>&1 || true
	if lxc project show "$PROJECT" >/dev/null 2>&1; then
		lxc project delete "$PROJECT" >>"$OUT/lab-down.log" 2>&1 || log "project $PROJECT left (not empty?)"
	fi
}

lxd_churn() { # MINUTE
	local m=$1 a b c
	a=soak-$((m % 4)) b=soak-$(((m + 1) % 4)) c=soak-$(((m + 2) % 4))
	lxc exec --project "$PROJECT" "$a" -- ip route del "10.9.$(((m + 1) % 4)).0/24" 2>/dev/null || true
	lxc exec --project "$PROJECT" "$b" -- sh -c 'ip link set eth1 down; sleep 1; ip link set eth1 up' ||
		log "minute $m: flapping eth1 of $b failed"
	lxc restart --project "$PROJECT" --force "$c" || log "restart of $c failed"
}

# ---------------------------------------------------------------------------------------------
# The watcher and its samples.

start_watch() { # LAB TOPOLOGY ACCESS
	setsid "$BIN" reconcile --watch --interval 30s -f "$2" --access "$3" \
		--metrics-file "$OUT/$1.prom" </dev/null >"$OUT/$1.out" 2>"$OUT/$1.log" &
	PIDS+=($!)
	printf '%s\n' "$!" >"$OUT/$1.pid"
	printf 'minute\tsecs\tvmrss_kb\trss_anon_kb\tvmhwm_kb\tfds\tthreads\tchildren\tcpu_self_s\tcpu_children_s\trounds\tloadavg\n' >"$OUT/$1.tsv"
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

sample() { # LAB MINUTE
	local pid stat rest fields ticks fds threads kids rounds
	pid=$(<"$OUT/$1.pid")
	[ -d "/proc/$pid" ] || die "$1: the watcher (pid $pid) is gone; see $OUT/$1.log"
	ticks=$(getconf CLK_TCK)
	stat=$(<"/proc/$pid/stat")
	rest=${stat##*) }
	read -ra fields <<<"$rest"
	fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	threads=$(status_kb "$pid" Threads)
	kids=$(pgrep -c -P "$pid" || true)
	rounds=$(awk '$1 == "routectl_rounds_total" { print $2 }' "$OUT/$1.prom" 2>/dev/null || true)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\n' "$2" "$SECONDS" \
		"$(status_kb "$pid" VmRSS)" "$(status_kb "$pid" RssAnon)" "$(status_kb "$pid" VmHWM)" \
		"$fds" "$threads" "$kids" \
		"$(awk -v a="${fields[11]}" -v b="${fields[12]}" -v t="$ticks" 'BEGIN { print (a + b) / t }')" \
		"$(awk -v a="${fields[13]}" -v b="${fields[14]}" -v t="$ticks" 'BEGIN { print (a + b) / t }')" \
		"${rounds:-0}" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/$1.tsv"
}

cleanup() {
	local p
	set +e
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		timeout 30 tail --pid="$p" -f /dev/null
		kill -KILL "$p" 2>/dev/null
	done
	case $WHICH in netns | both) netns_down ;; esac
	case $WHICH in lxd | both) lxd_down ;; esac
	log "cleaned up"
}

settled() { # LAB TOPOLOGY -> "in sync" or what `check` printed
	if "$BIN" plan --detailed-exitcode -f "$2" >"$OUT/$1.check" 2>&1; then
		echo "in sync"
	else
		echo "NOT in sync (see $OUT/$1.check)"
	fi
}

main() {
	local labs=() lab m deadline
	case $WHICH in netns | both) labs+=(netns) ;; esac
	case $WHICH in lxd | both) labs+=(lxd) ;; esac
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	for lab in "${labs[@]}"; do
		case $lab in
		netns)
			netns_down
			netns_up
			start_watch netns "$OUT/netns.toml" "$NETNS_ACCESS"
			;;
		lxd)
			lxd_up || die "the soak lab did not come up (see $OUT/lab-up.log)"
			start_watch lxd "$LXD_TOPO" "$LXD_ACCESS"
			;;
		esac
	done
	log "watching ${labs[*]} for $MINUTES min (out: $OUT)"
	nap 60 # the first rounds: the baseline is taken after them
	for lab in "${labs[@]}"; do sample "$lab" 0; done
	deadline=$((SECONDS + MINUTES * 60 + 600))
	for ((m = 1; m <= MINUTES; m++)); do
		[ "$SECONDS" -lt "$deadline" ] || die "out of time at minute $m"
		for lab in "${labs[@]}"; do "${lab}_churn" "$m" & done
		wait_churn
		nap "$((60 - (SECONDS % 60)))"
		for lab in "${labs[@]}"; do sample "$lab" "$m"; done
	done
	nap 60 # the last churn settles
	{
		printf 'routectl %s, %s, %s CPUs, %s min\n' "$("$BIN" --version)" "$(uname -r)" "$(nproc)" "$MINUTES"
		for lab in "${labs[@]}"; do
			sample "$lab" end
			printf '%s: %s after the last churn; start/end samples:\n' "$lab" "$(settled "$lab" "$([ "$lab" = netns ] && echo "$OUT/netns.toml" || echo "$LXD_TOPO")")"
			head -2 "$OUT/$lab.tsv" | tail -1
			tail -1 "$OUT/$lab.tsv"
		done
	} | tee "$OUT/summary.txt"
}

wait_churn() { # waits for the churn jobs (the watchers are not children of this shell's jobs list)
	local j
	for j in $(jobs -p); do
		case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" || true ;; esac
	done
}

main
