#!/usr/bin/env bash
# The cluster labs of routectl: a real three-member LXD cluster on this machine, or with --incus
# a three-member Incus cluster. Each member is a daemon (`lxd`, `incusd`) with its own LXD_DIR
# (INCUS_DIR) in its own network namespace; the members talk over a private bridge, and the
# containers' eth1 of every member share one L2 segment. The nodes are those of
# tests/labs/cluster.toml (cluster-incus.toml), placed on the members with --target.
#
# Usage: scripts/lab-cluster.sh [--incus] up|down|status|reset-routes|env
# Run scripts/lab-cluster.sh --help for the details.

set -euo pipefail

# The flavour: LXD (the default) or Incus (--incus). Each has its own names, bridges, addresses
# and state, so that both clusters live side by side and neither touches the other.
FLAVOUR=lxd
[ "${1:-}" != --incus ] || FLAVOUR=incus
readonly FLAVOUR
readonly MEMBERS=(m0 m1 m2)
readonly IMAGE_ALIAS=routectl-lab                  # the default lab's image (scripts/lab.sh)
readonly MARK_KEY=user.routectl-lab-cluster
readonly NODE_CONF=/etc/routectl-lab.conf
readonly NODE_APPLY=/usr/local/sbin/routectl-lab-apply
readonly DEAD_PROXY=http://127.0.0.1:9
readonly READY_TIMEOUT=${ROUTECTL_LAB_READY_TIMEOUT:-60}
if [ "$FLAVOUR" = lxd ]; then
	STATE_DIR=/var/lib/routectl-lab/cluster  # LXD_DIR of member mN: $STATE_DIR/mN
	NS_PREFIX=routectl-lab-cl-               # network namespace of mN: ${NS_PREFIX}mN
	VETH=rtcl                                # host ends of mN's veths: ${VETH}m-mN, ${VETH}e-mN
	MGMT_BRIDGE=rtlab6                       # the members' own network (no host address)
	LAB_BRIDGE=rtlab7                        # the containers' eth1 segment (no host address)
	MGMT_NET=10.0.9                          # member mN listens on $MGMT_NET.(N+1):8443
	DIR_VAR=LXD_DIR CLIENT=lxc DAEMON=lxd ADMIN=(lxd) GROUP=lxd TAG=routectl-lab-cluster
	TOPOLOGY=tests/labs/cluster.toml
	# The nodes: instance member internal-ip pod-gateway mac (the topology says the same).
	NODES=(
		"cl-ctl m0 10.0.8.10/24 - 02:52:c1:00:00:10"
		"cl-w0 m0 10.0.8.20/24 10.8.0.1/24 02:52:c1:00:00:20"
		"cl-w1 m1 10.0.8.21/24 10.8.1.1/24 02:52:c1:00:00:21"
		"cl-w2 m1 10.0.8.22/24 10.8.2.1/24 02:52:c1:00:00:22"
		"cl-w3 m2 10.0.8.23/24 10.8.3.1/24 02:52:c1:00:00:23"
	)
else
	STATE_DIR=/var/lib/routectl-lab/cluster-incus
	NS_PREFIX=routectl-lab-ci-
	VETH=rtci
	MGMT_BRIDGE=rtlab8
	LAB_BRIDGE=rtlab9
	MGMT_NET=10.0.11
	DIR_VAR=INCUS_DIR CLIENT=incus DAEMON=/usr/libexec/incus/incusd ADMIN=(incus admin) GROUP=incus-admin
	TAG=routectl-lab-cluster-incus TOPOLOGY=tests/labs/cluster-incus.toml
	NODES=(
		"ci-ctl m0 10.0.10.10/24 - 02:52:c2:00:00:10"
		"ci-w0 m0 10.0.10.20/24 10.10.0.1/24 02:52:c2:00:00:20"
		"ci-w1 m1 10.0.10.21/24 10.10.1.1/24 02:52:c2:00:00:21"
		"ci-w2 m1 10.0.10.22/24 10.10.2.1/24 02:52:c2:00:00:22"
		"ci-w3 m2 10.0.10.23/24 10.10.3.1/24 02:52:c2:00:00:23"
	)
fi
readonly STATE_DIR NS_PREFIX VETH MGMT_BRIDGE LAB_BRIDGE MGMT_NET DIR_VAR CLIENT DAEMON ADMIN GROUP TAG TOPOLOGY NODES

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
T_START=$EPOCHREALTIME

log() { printf 'lab-cluster: %s\n' "$*" >&2; }
die() {
	printf 'lab-cluster: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat <<EOF
Usage: scripts/lab-cluster.sh [--incus] COMMAND

A three-member $FLAVOUR cluster on this machine (members ${MEMBERS[*]}), for routectl's tests
(--incus: the Incus cluster, with its own names; this text shows the chosen flavour's):
  - member mN is ${DAEMON##*/} with $DIR_VAR=$STATE_DIR/mN, in the network namespace
    ${NS_PREFIX}mN, with its own sysfs and the host's cgroup tree (so that containers get their
    lxc.payload.NAME cgroups), listening on $MGMT_NET.(N+1):8443 on bridge $MGMT_BRIDGE;
  - every member has a bridge br-eth1 in its namespace, joined by a veth to the host bridge
    $LAB_BRIDGE: the containers' eth1 (nictype=bridged) of every member share one L2 segment;
  - the containers of $TOPOLOGY, made from the default lab's image
    '$IMAGE_ALIAS' (scripts/lab.sh install builds it, without internet), placed with --target.
Neither bridge has a host address; nothing touches ip_forward or NAT of the machine.

Commands:
  up            create or repair the cluster and its containers (idempotent; a cluster left
                half-built is made again from scratch)
  down          delete the containers, stop the daemons, remove namespaces, bridges and state
  status        show members and containers; exit 0 if everything is up
  reset-routes  delete every route of table main whose protocol is not 'kernel' in every node
  env           print the $DIR_VAR of each member ($DIR_VAR=... $CLIENT ... reaches that member)

A client reaches member mN with $DIR_VAR=$STATE_DIR/mN ($CLIENT, routectl).
EOF
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
elapsed() { # START -> seconds since START
	local now=${EPOCHREALTIME//[.,]/} start=${1//[.,]/}
	local ms=$(((now - start) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
quiet() {
	local out
	out=$("$@" 2>&1) && return 0
	printf '%s\n' "$out" >&2
	return 1
}
dir_of() { printf '%s/%s' "$STATE_DIR" "$1"; }
ns_of() { printf '%s%s' "$NS_PREFIX" "$1"; }
idx_of() { printf '%s' "${1#m}"; }
addr_of() { printf '%s.%s' "$MGMT_NET" "$(($(idx_of "$1") + 1))"; }
# on MEMBER ARGS...: the client (lxc, incus) of that member.
on() {
	local m=$1
	shift
	env "$DIR_VAR=$(dir_of "$m")" timeout 120 "$CLIENT" "$@"
}
alive() { env "$DIR_VAR=$(dir_of "$1")" timeout 10 "$CLIENT" query /1.0 >/dev/null 2>&1; }
admin() { # MEMBER SECONDS ARGS...: `lxd ARGS` or `incus admin ARGS` for that member
	local m=$1 t=$2
	shift 2
	env "$DIR_VAR=$(dir_of "$m")" timeout "$t" "${ADMIN[@]}" "$@"
}

# ---------------------------------------------------------------------------------------------
# Network: namespaces, the management bridge and the eth1 segment.

host_bridge() { # NAME
	if ! ip link show dev "$1" >/dev/null 2>&1; then
		ip link add "$1" type bridge mcast_snooping 0 || die "cannot create bridge $1"
	fi
	printf '1\n' >"/proc/sys/net/ipv6/conf/$1/disable_ipv6" || die "cannot disable IPv6 on $1"
	[ -z "$(ip -o addr show dev "$1")" ] || ip addr flush dev "$1"
	ip link set dev "$1" up || die "cannot bring $1 up"
}

member_net() { # MEMBER: its namespace, management veth and eth1 uplink
	local m=$1 ns mport lport
	ns=$(ns_of "$m") mport=${VETH}m-$m lport=${VETH}e-$m
	if ! ip netns exec "$ns" true 2>/dev/null; then
		rm -f "/run/netns/$ns"
		ip netns add "$ns" || die "cannot create namespace $ns"
	fi
	ip -n "$ns" link set dev lo up
	if ! ip link show dev "$mport" >/dev/null 2>&1; then
		ip link add "$mport" type veth peer name mgmt netns "$ns" || die "$m: cannot create its management veth"
	fi
	ip link set dev "$mport" master "$MGMT_BRIDGE" up || die "$m: cannot attach $mport"
	ip -n "$ns" addr replace "$(addr_of "$m")/24" dev mgmt || die "$m: cannot address mgmt"
	ip -n "$ns" link set dev mgmt up
	if ! ip -n "$ns" link show dev br-eth1 >/dev/null 2>&1; then
		ip -n "$ns" link add br-eth1 type bridge mcast_snooping 0 || die "$m: cannot create br-eth1"
	fi
	ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/br-eth1/disable_ipv6'
	if ! ip link show dev "$lport" >/dev/null 2>&1; then
		ip link add "$lport" type veth peer name up-eth1 netns "$ns" || die "$m: cannot create its eth1 veth"
	fi
	ip link set dev "$lport" master "$LAB_BRIDGE" up || die "$m: cannot attach $lport"
	ip -n "$ns" link set dev up-eth1 master br-eth1 up
	ip -n "$ns" link set dev br-eth1 up
}

# ---------------------------------------------------------------------------------------------
# Daemons

daemon_pid() { # MEMBER -> the pid of its daemon (from its pid file, checked), or fails
	local f pid
	f=$(dir_of "$1").pid
	[ -f "$f" ] || return 1
	pid=$(<"$f")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$TAG $1" || return 1
	printf '%s\n' "$pid"
}

# Starts member M's daemon in its namespace: a new mount namespace with the namespace's own
# sysfs on /sys (LXD reads the interfaces there) and the host's cgroup tree moved back under it.
start_daemon() { # MEMBER
	local m=$1 d cg
	d=$(dir_of "$m") cg=$(dir_of "$m").cgroup
	mkdir -p "$d" "$cg"
	rm -f "$d/unix.socket"
	log "$m: starting $DAEMON ($DIR_VAR=$d, namespace $(ns_of "$m"))"
	(
		export http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY HTTP_PROXY=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY
		export "$DIR_VAR=$d" no_proxy=$MGMT_NET.0/24 NO_PROXY=$MGMT_NET.0/24
		ulimit -n 65536 2>/dev/null || true
		cd /
		exec 9>&-
		# shellcheck disable=SC2016 # expanded by the inner shell
		exec setsid nohup nsenter "--net=/run/netns/$(ns_of "$m")" unshare --mount --propagation slave -- \
			bash -c 'mount --rbind /sys/fs/cgroup "$1" && mount -t sysfs sysfs /sys && mount --move "$1" /sys/fs/cgroup &&
				exec -a "$5 $2" "$4" --group "$6" --logfile "$3/$7.log"' \
			bash "$cg" "$m" "$d" "$DAEMON" "${DAEMON##*/} $TAG" "$GROUP" "${DAEMON##*/}" </dev/null >>"$d.out" 2>&1
	) &
	echo $! >"$d.pid"
}

wait_daemon() { # MEMBER
	if ! admin "$1" 90 waitready --timeout=80 >/dev/null 2>&1 || ! alive "$1"; then
		tail -n 20 "$(dir_of "$1")/${DAEMON##*/}.log" >&2 2>/dev/null || true
		die "$1: $DAEMON did not become ready (see $(dir_of "$1")/${DAEMON##*/}.log)"
	fi
}

stop_daemon() { # MEMBER
	local pid
	pid=$(daemon_pid "$1") || return 0
	admin "$1" 30 shutdown --timeout=10 >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		[ -d "/proc/$pid" ] || break
		sleep 0.2
	done
	[ ! -d "/proc/$pid" ] || kill -9 "$pid" 2>/dev/null || true
}

preseed_bootstrap() {
	cat <<EOF
config:
  core.https_address: $(addr_of m0):8443
  core.proxy_http: $DEAD_PROXY
  core.proxy_https: $DEAD_PROXY
  core.proxy_ignore_hosts: $MGMT_NET.1,$MGMT_NET.2,$MGMT_NET.3
cluster:
  server_name: m0
  enabled: true
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root: {path: /, pool: default, type: disk}
EOF
}

preseed_join() { # MEMBER TOKEN CERTIFICATE
	cat <<EOF
cluster:
  enabled: true
  server_name: $1
  server_address: $(addr_of "$1"):8443
  cluster_address: $(addr_of m0):8443
  cluster_token: $2
  cluster_certificate: |
    ${3//$'\n'/$'\n'    }
  member_config:
  - entity: storage-pool
    name: default
    key: source
    value: ""
EOF
}

# The members that the cluster reports online, one a line.
online_members() {
	on m0 query /1.0/cluster/members?recursion=1 2>/dev/null |
		python3 -c 'import json,sys; [print(m["server_name"]) for m in json.load(sys.stdin) if m.get("status")=="Online"]' 2>/dev/null || true
}

cluster_ok() {
	local want got
	want=$(printf '%s\n' "${MEMBERS[@]}")
	got=$(online_members | sort)
	[ "$got" = "$want" ]
}

# Builds the cluster from nothing: bootstrap m0, join the others with tokens.
form_cluster() {
	local m token cert
	rm -f "$STATE_DIR/formed"
	if alive m0; then
		for m in $(instances 2>/dev/null | awk '$4 == "true" {print $1}'); do
			quiet on m0 delete --force "$m" || true
		done
	fi
	for m in "${MEMBERS[@]}"; do
		stop_daemon "$m"
		rm -rf "$(dir_of "$m")" "$(dir_of "$m").cgroup" "$(dir_of "$m").pid" "$(dir_of "$m").out"
	done
	start_daemon m0
	wait_daemon m0
	preseed_bootstrap | admin m0 60 init --preseed >/dev/null || die "m0: cluster bootstrap failed"
	cert=$(on m0 query /1.0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["environment"]["certificate"])') ||
		die "m0: cannot read its certificate"
	for m in "${MEMBERS[@]:1}"; do
		token=$(on m0 cluster add "$m" --quiet 2>/dev/null) || token=$(on m0 cluster add "$m" | tail -n1)
		[ -n "$token" ] || die "$m: no join token"
		start_daemon "$m"
		wait_daemon "$m"
		# init fetches the certificate of the member in the token itself: from the namespace.
		preseed_join "$m" "$token" "$cert" | timeout 120 nsenter "--net=/run/netns/$(ns_of "$m")" env "$DIR_VAR=$(dir_of "$m")" "${ADMIN[@]}" init --preseed >/dev/null ||
			die "$m: joining the cluster failed"
	done
	cluster_ok || die "the cluster did not form (online: $(online_members | tr '\n' ' '))"
	touch "$STATE_DIR/formed"
	log "cluster formed (${MEMBERS[*]})"
}

# Starts whatever member is down (all at once: a member waits for the others' quorum), or makes
# the cluster again when its state is unusable.
ensure_cluster() {
	local m fresh=0 started=()
	[ -f "$STATE_DIR/formed" ] || fresh=1
	for m in "${MEMBERS[@]}"; do
		[ -d "$(dir_of "$m")/database/global" ] || fresh=1
	done
	if [ "$fresh" = 1 ]; then
		form_cluster
		return
	fi
	for m in "${MEMBERS[@]}"; do
		if ! alive "$m"; then
			stop_daemon "$m"
			# A frozen daemon (SIGSTOP by a test) answers nothing: thaw it first.
			start_daemon "$m"
			started+=("$m")
		fi
	done
	for m in "${started[@]}"; do wait_daemon "$m"; done
	for _ in $(seq 60); do
		cluster_ok && return 0
		sleep 1
	done
	log "the cluster does not come back whole (online: $(online_members | tr '\n' ' ')); making it again"
	form_cluster
}

ensure_image() {
	on m0 image info "$IMAGE_ALIAS" >/dev/null 2>&1 && return 0
	local work f
	if ! LXD_DIR=/var/lib/lxd lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		"$SCRIPT_DIR/lab.sh" install --lxd || die "cannot build the lab image"
	fi
	work=$(mktemp -d "$STATE_DIR/image.XXXXXX")
	quiet env LXD_DIR=/var/lib/lxd lxc image export "$IMAGE_ALIAS" "$work/export" || die "cannot export $IMAGE_ALIAS"
	f=$(find "$work" -name 'export*' | head -n1)
	quiet on m0 image import "$f" --alias "$IMAGE_ALIAS" || die "cannot import $IMAGE_ALIAS into the cluster"
	rm -rf "$work"
}

# ---------------------------------------------------------------------------------------------
# Containers

node_conf() { # NAME IP GW MAC
	local gw=$3
	[ "$gw" != - ] || gw=''
	printf '# routectl lab node %s\nname=%s\niface=eth1\nmac=%s\naddrs=%s\npod_gws=%s\n' "$1" "$1" "$4" "$2" "$gw"
}

# The cluster's instances: name location status mark, one a line.
# The cluster's instances, one a line: NAME LOCATION STATUS MARK. A member that was just
# restarted may still report its instances without their configuration (null): asked again
# until every instance has one, for READY_TIMEOUT seconds at most.
instances() {
	local deadline=$((SECONDS + READY_TIMEOUT)) out
	until out=$(on m0 query '/1.0/instances?recursion=1' | python3 -c '
import json, sys
rows = []
for i in json.load(sys.stdin):
    if i.get("config") is None:
        sys.exit(3)
    rows.append("%s %s %s %s" % (i["name"], i.get("location") or "-", i["status"],
                                 i["config"].get("'"$MARK_KEY"'", "-")))
print("\n".join(rows))'); do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.5
	done
	[ -z "$out" ] || printf '%s\n' "$out"
}

node_check() { # NAME IP GW -> status 0 if eth1 and cnio0 hold their addresses
	local out
	out=$(on m0 exec "$1" -- ip -o addr show </dev/null 2>/dev/null) || return 1
	grep -q "eth1 .*inet $2" <<<"$out" || return 1
	[ "$3" = - ] || grep -q "cnio0 .*inet $3" <<<"$out"
}

node_up() { # "NAME MEMBER IP GW MAC" CURRENT-LOCATION CURRENT-STATUS
	local name member ip gw mac loc=$2 st=$3 tmp deadline
	read -r name member ip gw mac <<<"$1"
	if [ "$loc" != "$member" ] && [ "$loc" != none ]; then
		log "$name: on $loc, wants $member; making it again"
		quiet on m0 delete --force "$name" || die "$name: cannot delete it"
		loc=none
	fi
	if [ "$loc" = none ]; then
		log "$name: creating on $member"
		quiet on m0 init -q "$IMAGE_ALIAS" "$name" --target "$member" -c "$MARK_KEY=true" -c boot.autostart=false ||
			die "$name: $CLIENT init failed"
		quiet on m0 config device add "$name" eth1 nic nictype=bridged parent=br-eth1 name=eth1 hwaddr="$mac" ||
			die "$name: cannot add eth1"
		tmp=$(mktemp)
		node_conf "$name" "$ip" "$gw" "$mac" >"$tmp"
		quiet on m0 file push -q --uid 0 --gid 0 --mode 0644 "$tmp" "$name$NODE_CONF" || die "$name: cannot push its configuration"
		rm -f "$tmp"
		st=Stopped
	fi
	case $st in
	Running) on m0 exec "$name" -- "$NODE_APPLY" "$NODE_CONF" </dev/null >/dev/null 2>&1 || true ;;
	Frozen) quiet on m0 start "$name" || die "$name: cannot unfreeze" ;;
	*)
		[ "$st" = Stopped ] || quiet on m0 stop --force "$name" || true
		quiet on m0 start "$name" || die "$name: $CLIENT start failed"
		;;
	esac
	deadline=$((SECONDS + READY_TIMEOUT))
	until node_check "$name" "$ip" "$gw"; do
		[ "$SECONDS" -lt "$deadline" ] || die "$name: not configured after $READY_TIMEOUT s"
		sleep 0.2
	done
}

nodes_up() {
	local list n name loc st mk pids=() failed=0 p
	list=$(instances) || die "cannot list the cluster's instances"
	for n in "${NODES[@]}"; do
		name=${n%% *} loc=none st=none
		while read -r i l s mk; do
			[ "$i" = "$name" ] || continue
			[ "$mk" = true ] || die "instance $name exists and is not a cluster lab container"
			loc=$l st=$s
		done <<<"$list"
		node_up "$n" "$loc" "$st" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
	[ "$failed" = 0 ] || die "the cluster lab's containers are not up (see above)"
}

# ---------------------------------------------------------------------------------------------
# Commands

cmd_up() {
	command -v lxd >/dev/null && command -v lxc >/dev/null || "$SCRIPT_DIR/lab.sh" install --lxd ||
		die "cannot install LXD"
	[ "$FLAVOUR" = lxd ] || { command -v incus >/dev/null && [ -x "$DAEMON" ]; } ||
		"$SCRIPT_DIR/lab.sh" install --lab incus || die "cannot install Incus"
	mkdir -p "$STATE_DIR"
	host_bridge "$MGMT_BRIDGE"
	host_bridge "$LAB_BRIDGE"
	local m
	for m in "${MEMBERS[@]}"; do member_net "$m"; done
	ensure_cluster
	ensure_image
	nodes_up
	log "cluster lab up (${#MEMBERS[@]} members, ${#NODES[@]} containers) in $(elapsed "$T_START") s"
	cmd_status
}

cmd_down() {
	local m name
	if alive m0; then
		for name in $(instances 2>/dev/null | awk '$4 == "true" {print $1}'); do
			quiet on m0 delete --force "$name" || log "$name: cannot delete it"
		done
	fi
	for m in "${MEMBERS[@]}"; do
		stop_daemon "$m"
		ip link del dev "${VETH}m-$m" 2>/dev/null || true
		ip link del dev "${VETH}e-$m" 2>/dev/null || true
		ip netns del "$(ns_of "$m")" 2>/dev/null || true
	done
	ip link del dev "$MGMT_BRIDGE" 2>/dev/null || true
	ip link del dev "$LAB_BRIDGE" 2>/dev/null || true
	rm -rf "$STATE_DIR"
	log "cluster lab removed"
}

cmd_status() {
	local m ok=0 list n name
	for m in "${MEMBERS[@]}"; do
		if alive "$m"; then echo "member $m: up ($DIR_VAR=$(dir_of "$m"))"; else
			echo "member $m: DOWN"
			ok=1
		fi
	done
	cluster_ok || {
		echo "cluster: not all members online"
		ok=1
	}
	list=$(instances 2>/dev/null) || list=''
	for n in "${NODES[@]}"; do
		read -r name m _ <<<"$n"
		if grep -q "^$name $m Running " <<<"$list"; then echo "  $name on $m: Running"; else
			echo "  $name on $m: $(grep "^$name " <<<"$list" | cut -d' ' -f2-3 || echo missing)"
			ok=1
		fi
	done
	return "$ok"
}

cmd_reset_routes() {
	local n name out
	for n in "${NODES[@]}"; do
		name=${n%% *}
		# shellcheck disable=SC2016 # runs in the node
		out=$(on m0 exec "$name" -- bash -c '
			for f in -4 -6; do
				ip "$f" -o route show table main | grep -v " proto kernel" | while read -r r; do
					eval "ip $f route del $r" || exit 1
				done
			done
			echo reset-ok' </dev/null) || die "$name: reset-routes failed"
		[ "$out" = reset-ok ] || die "$name: reset-routes printed '$out'"
	done
	log "routes reset on ${#NODES[@]} nodes"
}

main() {
	[ "${1:-}" != --incus ] || shift
	[ $# = 1 ] || {
		usage >&2
		exit 2
	}
	case $1 in
	-h | --help | help)
		usage
		return 0
		;;
	env)
		local m
		for m in "${MEMBERS[@]}"; do echo "$m $DIR_VAR=$(dir_of "$m")"; done
		return 0
		;;
	esac
	need_root
	if [ "$1" != status ]; then
		mkdir -p "${STATE_DIR%/*}"
		exec 9>"$STATE_DIR.lock"
		flock -w 300 9 || die "another lab-cluster.sh is running"
	fi
	case $1 in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	reset-routes) cmd_reset_routes ;;
	*) die "unknown command $1 (see --help)" ;;
	esac
}

main "$@"
