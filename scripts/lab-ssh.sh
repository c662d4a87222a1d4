#!/usr/bin/env bash
# SSH test lab for routectl: the machines of the upstream "Kubernetes the hard way" tutorial
# (server, node-0, node-1, ...) as network namespaces, each running its own real sshd.
#
# Usage: scripts/lab-ssh.sh COMMAND [ARGS]   (scripts/lab-ssh.sh --help for the details)

set -euo pipefail

readonly STATE=/var/lib/routectl-lab/ssh-lab # keys, sshd configs and logs, ssh_config, machines.txt
readonly HUB_NS=ssh-hub                      # namespace holding the lab bridge
readonly BRIDGE=rtlab2                       # the machines' L2 segment
readonly HOST_IF=rtlab2-host                 # host end of the veth into the hub (the ssh client side)
readonly HOST_PORT=p-host                    # its peer, a port of the bridge
readonly HOST_ADDR=10.0.4.1                  # the host's address on the segment (the ssh client)
readonly NET_PREFIX=10.0.4                   # machines: 10.0.4.0/24
readonly POD_PREFIX=10.3                     # pod subnets: 10.3.X.0/24 inside 10.3.0.0/16
readonly NODE_IF=ens160                      # the machines' interface (the name the upstream docs show)
readonly DOMAIN=kubernetes.local
readonly MARK=routectl-lab-ssh               # alias of `lo` in every namespace of this lab
readonly SSHD=/usr/sbin/sshd
readonly READY_TIMEOUT=${ROUTECTL_LAB_READY_TIMEOUT:-20}

T_START=$EPOCHREALTIME

log() { printf 'lab-ssh: %s\n' "$*" >&2; }
die() {
	printf 'lab-ssh: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat <<EOF
Usage: scripts/lab-ssh.sh COMMAND [ARGS]

The machines of the upstream "Kubernetes the hard way" tutorial as network namespaces on the
bridge $BRIDGE (in namespace $HUB_NS), each running a real sshd (OpenSSH from Debian) that
listens only on the machine's address, with its own host key and authorized_keys:

  namespace     machine   address         pod subnet
  ssh-server    server    $NET_PREFIX.10       (none)
  ssh-node-N    node-N    $NET_PREFIX.(20+N)    $POD_PREFIX.N.0/24

The host reaches them as the ssh client from $HOST_ADDR/24 on $HOST_IF. Every machine has
its interface $NODE_IF on the segment, an empty bridge cnio0 holding the first address of its
pod subnet, forwarding on, rp_filter off, and no routes but the kernel's.

Files (under $STATE):
  ssh_config     Host entries (server, node-0, ..., their FQDNs and addresses), User root, the
                 lab's IdentityFile, UserKnownHostsFile = known_hosts, StrictHostKeyChecking yes
  known_hosts    the machines' host keys (under their addresses, names and FQDNs)
  machines.txt   upstream format: IPV4_ADDRESS FQDN HOSTNAME POD_SUBNET (server: no subnet)
  nodes/HOST/    sshd_config, host key, authorized_keys, sshd.pid, sshd.log (LogLevel VERBOSE:
                 one "Accepted publickey" line per connection)

Commands:
  up [--nodes N]      create or repair the lab with N worker machines (default 2; idempotent)
  down [--purge]      stop the sshds, remove the namespaces, the bridge and the host veth;
                      --purge also removes $STATE (keys included)
  status              show what exists; exit 0 if every machine answers over ssh
  stop-sshd HOST      stop one machine's sshd (the machine stays up)
  start-sshd HOST     start it again
  reset-routes        delete every route of table main whose protocol is not 'kernel'
  env                 print the lab's paths as shell assignments
EOF
}

# ---------------------------------------------------------------------------------------------

elapsed() { # START -> seconds since START (milliseconds shown)
	local now=${EPOCHREALTIME//[.,]/} start=${1//[.,]/}
	local ms=$(((now - start) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

quiet() { # CMD...: runs CMD with its output held back; shows it only when CMD fails
	local out rc=0
	out=$("$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" = 0 ] || printf '%s\n' "$out" >&2
	return "$rc"
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() {
	local p missing=()
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ "${#missing[@]}" = 0 ] && return 0
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	quiet apt-get update -qq -o DPkg::Lock::Timeout=300 || die "apt-get update failed"
	# The package would start a host-wide sshd where an init system runs; the lab never uses it
	# (policy-rc.d keeps it stopped; a host sshd started anyway is reported below).
	quiet apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
}

# Writes stdin to FILE atomically (temp file in the same directory, then rename).
write_file() { # FILE MODE
	local tmp
	tmp=$(mktemp "$1.XXXXXX") || die "cannot write $1"
	cat >"$tmp" || die "cannot write $1"
	chmod "$2" "$tmp" && mv -f "$tmp" "$1" || die "cannot write $1"
}

# Machines: H_NAME (server, node-0...), H_ADDR, H_POD (- for none), H_NS.
H_NAME=() H_ADDR=() H_POD=() H_NS=()
machines() { # N workers
	local n=$1 i
	H_NAME=(server) H_ADDR=("$NET_PREFIX.10") H_POD=(-) H_NS=(ssh-server)
	for ((i = 0; i < n; i++)); do
		H_NAME+=("node-$i") H_ADDR+=("$NET_PREFIX.$((20 + i))") H_POD+=("$POD_PREFIX.$i.0/24") H_NS+=("ssh-node-$i")
	done
}

find_machine() { # HOST -> index
	local i
	for i in "${!H_NAME[@]}"; do
		[ "${H_NAME[i]}" = "$1" ] && echo "$i" && return 0
	done
	return 1
}

workers_recorded() { # the N of the last `up` (default 2)
	local n=2
	[ -f "$STATE/workers" ] && n=$(<"$STATE/workers")
	[[ $n =~ ^[0-9]+$ ]] || n=2
	echo "$n"
}

mac_of() { # NAME -> a fixed locally administered MAC
	printf '02:%s\n' "$(printf 'routectl-lab-ssh:%s' "$1" | sha256sum | cut -c1-10 | sed 's/../&:/g; s/:$//')"
}

# ---------------------------------------------------------------------------------------------
# Namespaces and links

ns_mounted() { [ -e "/run/netns/$1" ] && [ "$(stat -f -c %T "/run/netns/$1" 2>/dev/null)" = nsfs ]; }
ns_marked() { ip -n "$1" -j link show dev lo 2>/dev/null | grep -q "\"ifalias\":\"$MARK\""; }

ns_ensure() { # NAME
	local ns=$1
	if [ -e "/run/netns/$ns" ] && ! ns_mounted "$ns"; then
		rm -f "/run/netns/$ns" || die "cannot remove the stale /run/netns/$ns"
	fi
	if ! ns_mounted "$ns"; then
		ip netns add "$ns" || die "ip netns add $ns failed"
	elif ! ns_marked "$ns"; then
		[ "$(ip -n "$ns" -o link show | grep -cv ': lo:' || true)" = 0 ] ||
			die "namespace $ns exists and is not one of this lab's (no '$MARK' mark on lo)"
	fi
	ns_marked "$ns" || ip -n "$ns" link set dev lo alias "$MARK" || die "cannot mark namespace $ns"
	ip -n "$ns" link set dev lo up || die "$ns: cannot bring lo up"
}

ns_sysctl() { # NS KEY VALUE
	# shellcheck disable=SC2016 # expanded by the inner shell
	ip netns exec "$1" sh -c 'printf "%s\n" "$2" >"/proc/sys/$1"' _ "$2" "$3" || die "$1: cannot set $2"
}

veth_ok() { # NS_A IF_A NS_B IF_B (an empty NS means the host): the two ends of one veth
	local a b
	a=$(ip ${1:+-n "$1"} -o link show dev "$2" 2>/dev/null) || return 1
	b=$(ip ${3:+-n "$3"} -o link show dev "$4" 2>/dev/null) || return 1
	[[ $a =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	local ia=${BASH_REMATCH[1]} pa=${BASH_REMATCH[2]}
	[[ $b =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	[ "${BASH_REMATCH[1]}" = "$pa" ] && [ "${BASH_REMATCH[2]}" = "$ia" ]
}

sync_addr() { # NS DEV ADDR/LEN: DEV carries exactly this one global IPv4 address
	local have
	have=$(ip ${1:+-n "$1"} -o -4 addr show dev "$2" scope global | awk '{print $4}')
	[ "$have" = "$3" ] && return 0
	ip ${1:+-n "$1"} -4 addr flush dev "$2" scope global || die "${1:-host}: cannot flush $2"
	ip ${1:+-n "$1"} addr add "$3" dev "$2" || die "${1:-host}: cannot add $3 to $2"
}

hub_up() {
	ns_ensure "$HUB_NS"
	ns_sysctl "$HUB_NS" net/ipv6/conf/all/disable_ipv6 1
	ns_sysctl "$HUB_NS" net/ipv6/conf/default/disable_ipv6 1
	if ! ip -n "$HUB_NS" link show dev "$BRIDGE" >/dev/null 2>&1; then
		ip -n "$HUB_NS" link add "$BRIDGE" type bridge mcast_snooping 0 || die "cannot create $BRIDGE"
	fi
	ip -n "$HUB_NS" link set dev "$BRIDGE" up || die "cannot bring $BRIDGE up"
	# The host's leg: the ssh client side.
	if ! veth_ok "" "$HOST_IF" "$HUB_NS" "$HOST_PORT"; then
		ip link del dev "$HOST_IF" 2>/dev/null || true
		ip -n "$HUB_NS" link del dev "$HOST_PORT" 2>/dev/null || true
		ip link add "$HOST_IF" type veth peer name "$HOST_PORT" netns "$HUB_NS" ||
			die "cannot create the veth $HOST_IF/$HOST_PORT"
	fi
	if [ -e "/proc/sys/net/ipv6/conf/$HOST_IF/disable_ipv6" ]; then
		printf '1\n' >"/proc/sys/net/ipv6/conf/$HOST_IF/disable_ipv6"
	fi
	ip -n "$HUB_NS" link set dev "$HOST_PORT" master "$BRIDGE" up || die "cannot attach $HOST_PORT"
	ip link set dev "$HOST_IF" up || die "cannot bring $HOST_IF up"
	sync_addr "" "$HOST_IF" "$HOST_ADDR/24"
}

machine_net_up() { # INDEX
	local i=$1 ns=${H_NS[$1]} port="p-${H_NAME[$1]}" f
	ns_ensure "$ns"
	if ! veth_ok "$ns" "$NODE_IF" "$HUB_NS" "$port"; then
		ip -n "$HUB_NS" link del dev "$port" 2>/dev/null || true
		ip -n "$ns" link del dev "$NODE_IF" 2>/dev/null || true
		ip -n "$HUB_NS" link add "$port" type veth peer name "$NODE_IF" netns "$ns" ||
			die "$ns: cannot create the veth $port/$NODE_IF"
	fi
	ip -n "$HUB_NS" link set dev "$port" master "$BRIDGE" up || die "$ns: cannot attach $port"
	local mac
	mac=$(mac_of "${H_NAME[i]}")
	ip -n "$ns" -o link show dev "$NODE_IF" | grep -q " link/ether $mac " ||
		ip -n "$ns" link set dev "$NODE_IF" address "$mac" || die "$ns: cannot set the MAC of $NODE_IF"
	ip -n "$ns" link set dev "$NODE_IF" up || die "$ns: cannot bring $NODE_IF up"
	sync_addr "$ns" "$NODE_IF" "${H_ADDR[i]}/24"
	if [ "${H_POD[i]}" != - ]; then
		if ! ip -n "$ns" link show dev cnio0 >/dev/null 2>&1; then
			ip -n "$ns" link add cnio0 type bridge || die "$ns: cannot create cnio0"
		fi
		ip -n "$ns" link set dev cnio0 up || die "$ns: cannot bring cnio0 up"
		sync_addr "$ns" cnio0 "${H_POD[i]%.0/24}.1/24"
	elif ip -n "$ns" link show dev cnio0 >/dev/null 2>&1; then
		ip -n "$ns" link del dev cnio0
	fi
	ns_sysctl "$ns" net/ipv4/conf/all/forwarding 1
	ns_sysctl "$ns" net/ipv4/conf/default/forwarding 1
	ns_sysctl "$ns" net/ipv4/conf/all/rp_filter 0
	ns_sysctl "$ns" net/ipv4/conf/default/rp_filter 0
	for f in $(ip netns exec "$ns" sh -c 'ls -d /proc/sys/net/ipv4/conf/*/rp_filter'); do
		ns_sysctl "$ns" "${f#/proc/sys/}" 0
	done
}

# ---------------------------------------------------------------------------------------------
# Keys and sshd

client_key() { echo "$STATE/client/id_ed25519"; }

ensure_keys() {
	local i d
	install -d -m 0700 "$STATE" "$STATE/client" "$STATE/nodes"
	if [ ! -s "$(client_key)" ] || [ ! -s "$(client_key).pub" ]; then
		rm -f "$(client_key)" "$(client_key).pub"
		ssh-keygen -q -t ed25519 -N '' -C "routectl-lab-client" -f "$(client_key)" || die "ssh-keygen failed"
	fi
	for i in "${!H_NAME[@]}"; do
		d=$STATE/nodes/${H_NAME[i]}
		install -d -m 0700 "$d"
		if [ ! -s "$d/ssh_host_ed25519_key" ] || [ ! -s "$d/ssh_host_ed25519_key.pub" ]; then
			rm -f "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
			ssh-keygen -q -t ed25519 -N '' -C "${H_NAME[i]}" -f "$d/ssh_host_ed25519_key" ||
				die "ssh-keygen failed"
		fi
		write_file "$d/authorized_keys" 0600 <"$(client_key).pub"
		write_file "$d/sshd_config" 0600 <<EOF
# sshd of lab machine ${H_NAME[i]} (namespace ${H_NS[i]}), written by scripts/lab-ssh.sh
ListenAddress ${H_ADDR[i]}:22
HostKey $d/ssh_host_ed25519_key
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 32
EOF
	done
}

write_client_files() {
	local i
	{
		for i in "${!H_NAME[@]}"; do
			printf '%s,%s,%s.%s %s\n' "${H_ADDR[i]}" "${H_NAME[i]}" "${H_NAME[i]}" "$DOMAIN" \
				"$(cut -d' ' -f1-2 "$STATE/nodes/${H_NAME[i]}/ssh_host_ed25519_key.pub")"
		done
	} | write_file "$STATE/known_hosts" 0644
	{
		echo "# ssh client configuration of the routectl SSH lab (scripts/lab-ssh.sh); use with ssh -F"
		for i in "${!H_NAME[@]}"; do
			printf 'Host %s %s.%s %s\n    HostName %s\n' "${H_NAME[i]}" "${H_NAME[i]}" "$DOMAIN" "${H_ADDR[i]}" "${H_ADDR[i]}"
		done
		cat <<EOF
Host *
    User root
    IdentityFile $(client_key)
    IdentitiesOnly yes
    UserKnownHostsFile $STATE/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    ConnectTimeout 5
EOF
	} | write_file "$STATE/ssh_config" 0644
	{
		for i in "${!H_NAME[@]}"; do
			printf '%s %s.%s %s%s\n' "${H_ADDR[i]}" "${H_NAME[i]}" "$DOMAIN" "${H_NAME[i]}" \
				"$([ "${H_POD[i]}" = - ] || echo " ${H_POD[i]}")"
		done
	} | write_file "$STATE/machines.txt" 0644
}

sshd_pid() { # INDEX -> pid of this machine's sshd listener, if it runs in its namespace
	local i=$1 d=$STATE/nodes/${H_NAME[$1]} pid cmd
	[ -s "$d/sshd.pid" ] || return 1
	pid=$(<"$d/sshd.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *"$SSHD -f $d/sshd_config "* ]] || return 1 # sshd rewrites its argv: "sshd: /usr/sbin/sshd -f ..."
	ns_mounted "${H_NS[i]}" || return 1
	[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/${H_NS[i]}")" ] || return 1
	echo "$pid"
}

alive() { # PID: a live process (not a zombie waiting for a parent that does not reap it)
	local st
	st=$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

sshd_stop() { # INDEX
	local pid n
	pid=$(sshd_pid "$1") || return 0
	kill "$pid" 2>/dev/null || true
	for n in $(seq 1 50); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$STATE/nodes/${H_NAME[$1]}/sshd.pid"
}

sshd_start() { # INDEX
	local i=$1 d=$STATE/nodes/${H_NAME[$1]}
	sshd_pid "$i" >/dev/null && return 0
	install -d -m 0755 /run/sshd # privilege separation directory
	rm -f "$d/sshd.pid"
	quiet "$SSHD" -t -f "$d/sshd_config" || die "${H_NAME[i]}: sshd rejects its configuration"
	# Relative to nothing: sshd must be started by absolute path (it re-executes itself).
	ip netns exec "${H_NS[i]}" "$SSHD" -f "$d/sshd_config" -E "$d/sshd.log" </dev/null ||
		die "${H_NAME[i]}: sshd did not start (see $d/sshd.log)"
	local n
	for n in $(seq 1 50); do
		sshd_pid "$i" >/dev/null && return 0
		sleep 0.1
	done
	die "${H_NAME[i]}: sshd did not write its pid file (see $d/sshd.log)"
}

ssh_probe() { # INDEX: one real login, the way routectl connects
	ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=3 "${H_NAME[$1]}" true </dev/null 2>&1
}

wait_ssh() { # INDEX
	local i=$1 deadline out
	deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		out=$(ssh_probe "$i") && return 0
		[ "$SECONDS" -lt "$deadline" ] || die "${H_NAME[i]}: no ssh login after ${READY_TIMEOUT} s: $out"
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------------------------

lab_namespaces() { # every namespace carrying this lab's mark (the hub included)
	local f ns
	[ -d /run/netns ] || return 0
	for f in /run/netns/*; do
		ns=${f##*/}
		[ -e "$f" ] && ns_mounted "$ns" && ns_marked "$ns" && printf '%s\n' "$ns"
	done
	return 0
}

cmd_up() {
	local n=$1 i ns
	type -P ssh >/dev/null && [ -x "$SSHD" ] && type -P ssh-keygen >/dev/null ||
		ensure_packages openssh-server openssh-client
	[ -x "$SSHD" ] || die "$SSHD not found after installing openssh-server"
	machines "$n"
	printf '%s\n' "$n" | write_file "$STATE/workers" 0644
	ensure_keys
	write_client_files
	hub_up
	# Machines of an earlier, bigger lab.
	while read -r ns; do
		[ -n "$ns" ] && [ "$ns" != "$HUB_NS" ] || continue
		local keep=0
		for i in "${!H_NS[@]}"; do [ "${H_NS[i]}" = "$ns" ] && keep=1; done
		if [ "$keep" = 0 ]; then
			log "$ns: not in the lab any more, removing it"
			pkill_ns_sshd "$ns"
			ip netns del "$ns" || die "cannot delete $ns"
		fi
	done <<<"$(lab_namespaces)"
	for i in "${!H_NAME[@]}"; do
		machine_net_up "$i"
		sshd_start "$i"
	done
	for i in "${!H_NAME[@]}"; do
		wait_ssh "$i"
	done
	# An sshd listening in the host's own namespace (the package's) is not the lab's business,
	# but worth knowing about.
	local p others='' host_ns
	host_ns=$(stat -L -c %i /proc/self/ns/net)
	for p in $(pgrep -x sshd || true); do
		[ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$host_ns" ] || continue
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -F '[listener]' || continue
		others+="$p "
	done
	[ -z "$others" ] || log "warning: an sshd that is not the lab's listens in the host's namespace (pid $others)"
	log "ssh lab up (${#H_NAME[@]} machines on $BRIDGE, ssh_config $STATE/ssh_config) in $(elapsed "$T_START") s"
	cat "$STATE/machines.txt"
}

pkill_ns_sshd() { # NS: stop a lab sshd whose pid file we lost, found by its namespace
	local p ino
	ino=$(stat -L -c %i "/run/netns/$1" 2>/dev/null) || return 0
	for p in $(pgrep -x sshd || true); do
		[ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$ino" ] || continue
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-f $STATE/nodes/" || continue
		kill "$p" 2>/dev/null || true
	done
}

cmd_down() {
	local purge=$1 ns n=0 i
	machines "$(workers_recorded)"
	for i in "${!H_NAME[@]}"; do
		sshd_stop "$i"
	done
	while read -r ns; do
		[ -n "$ns" ] || continue
		pkill_ns_sshd "$ns"
		ip netns del "$ns" || die "cannot delete namespace $ns"
		n=$((n + 1))
	done <<<"$(lab_namespaces)"
	if ip link show dev "$HOST_IF" >/dev/null 2>&1; then
		ip link del dev "$HOST_IF" || die "cannot delete $HOST_IF"
	fi
	if [ "$purge" = 1 ]; then
		rm -rf "$STATE"
		log "ssh lab down: removed $n namespace(s), $HOST_IF and $STATE"
	else
		log "ssh lab down: removed $n namespace(s) and $HOST_IF; keys kept in $STATE"
	fi
}

cmd_status() {
	local i ok=0 out pid
	machines "$(workers_recorded)"
	if ns_mounted "$HUB_NS" && ip -n "$HUB_NS" -o link show dev "$BRIDGE" 2>/dev/null | grep -q ',UP'; then
		echo "hub: namespace $HUB_NS with bridge $BRIDGE up"
	else
		echo "hub: namespace $HUB_NS or bridge $BRIDGE missing"
		ok=1
	fi
	if ip -o -4 addr show dev "$HOST_IF" 2>/dev/null | grep -q " $HOST_ADDR/24 "; then
		echo "host: $HOST_IF $HOST_ADDR/24"
	else
		echo "host: $HOST_IF missing or without $HOST_ADDR/24"
		ok=1
	fi
	for i in "${!H_NAME[@]}"; do
		if ! ns_mounted "${H_NS[i]}"; then
			printf '  %-8s DOWN  namespace %s missing\n' "${H_NAME[i]}" "${H_NS[i]}"
			ok=1
		elif ! pid=$(sshd_pid "$i"); then
			printf '  %-8s DOWN  sshd not running\n' "${H_NAME[i]}"
			ok=1
		elif ! out=$(ssh_probe "$i"); then
			printf '  %-8s DOWN  ssh fails: %s\n' "${H_NAME[i]}" "$(tr '\n' ' ' <<<"$out")"
			ok=1
		else
			printf '  %-8s up    %s %s sshd %s\n' "${H_NAME[i]}" "${H_ADDR[i]}" \
				"$([ "${H_POD[i]}" = - ] && echo 'no-pods' || echo "${H_POD[i]}")" "$pid"
		fi
	done
	return "$ok"
}

cmd_reset_routes() {
	local i out
	machines "$(workers_recorded)"
	for i in "${!H_NAME[@]}"; do
		ns_mounted "${H_NS[i]}" || die "${H_NS[i]}: namespace missing (run up first)"
		# shellcheck disable=SC2016
		out=$(ip netns exec "${H_NS[i]}" sh -c '
			n=0
			for f in -4 -6; do
				for p in $(ip -N -d $f -o route show table main | sed -n "s/.* proto \([0-9]*\).*/\1/p" | sort -u); do
					[ "$p" = 2 ] && continue
					ip $f route flush table main proto "$p" || exit 1
					n=$((n + 1))
				done
			done
			left=$(ip -N -d -o route show table main; ip -N -d -6 -o route show table main)
			printf "%s\n" "$left" | grep -v "^$" | grep -v " proto 2 " && exit 1
			echo "reset-ok"') || die "${H_NAME[i]}: reset-routes failed: $out"
	done
	log "routes reset on ${#H_NAME[@]} machines"
}

main() {
	local cmd=${1:-} n=2 purge=0
	case $cmd in
	-h | --help | help | '')
		usage
		[ -n "$cmd" ] || exit 2
		exit 0
		;;
	esac
	shift
	[ "$(id -u)" = 0 ] || die "must run as root"
	install -d -m 0700 "$STATE"
	if [ "$cmd" != status ] && [ "$cmd" != env ]; then
		exec 9>"$STATE/lock"
		flock -w 300 9 || die "another lab-ssh.sh is running (lock $STATE/lock)"
	fi
	case $cmd in
	up)
		while [ $# -gt 0 ]; do
			case $1 in
			--nodes)
				n=${2:-}
				shift
				;;
			--nodes=*) n=${1#--nodes=} ;;
			*) die "unexpected argument $1" ;;
			esac
			shift
		done
		[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "--nodes wants 1 to 200"
		cmd_up "$n"
		;;
	down)
		case ${1:-} in --purge) purge=1 ;; '') ;; *) die "unexpected argument $1" ;; esac
		cmd_down "$purge"
		;;
	status) cmd_status ;;
	stop-sshd | start-sshd)
		[ $# = 1 ] || die "$cmd wants one machine name"
		machines "$(workers_recorded)"
		local i
		i=$(find_machine "$1") || die "no machine $1 in the lab"
		if [ "$cmd" = stop-sshd ]; then
			sshd_stop "$i"
			log "${H_NAME[i]}: sshd stopped"
		elif sshd_pid "$i" >/dev/null; then
			log "${H_NAME[i]}: sshd already running"
		else
			sshd_start "$i"
			wait_ssh "$i"
			log "${H_NAME[i]}: sshd running"
		fi
		;;
	reset-routes) cmd_reset_routes ;;
	env)
		printf 'LAB_SSH_STATE=%s\nLAB_SSH_CONFIG=%s\nLAB_SSH_KNOWN_HOSTS=%s\nLAB_SSH_MACHINES=%s\nLAB_SSH_KEY=%s\n' \
			"$STATE" "$STATE/ssh_config" "$STATE/known_hosts" "$STATE/machines.txt" "$(client_key)"
		;;
	*) die "unknown command $cmd (see --help)" ;;
	esac
}

main "$@"
