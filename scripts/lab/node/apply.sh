#!/bin/bash
# Configures this lab node from its configuration file. Safe to run again at any time: it adds
# what is missing and removes global addresses that are not declared. It never touches routes.
set -euo pipefail
conf=${1:-/etc/routectl-lab.conf}
iface='' mac='' addrs='' pod_gws=''
while IFS='=' read -r key value; do
	case $key in
	iface) iface=$value ;;
	mac) mac=$value ;;
	addrs) addrs=$value ;;
	pod_gws) pod_gws=$value ;;
	esac
done <"$conf"
if [ -z "$iface" ]; then
	echo "routectl-lab-apply: $conf declares no iface" >&2
	exit 1
fi

setsys() { printf '%s\n' "$2" >"/proc/sys/$1"; }
setsys net/ipv4/conf/all/forwarding 1
setsys net/ipv4/conf/default/forwarding 1
if [ -d /proc/sys/net/ipv6 ]; then
	setsys net/ipv6/conf/all/forwarding 1
	setsys net/ipv6/conf/default/forwarding 1
	# No duplicate address detection: a new link-local address would otherwise stay tentative
	# for a second, during which the node cannot resolve its neighbours.
	setsys net/ipv6/conf/all/accept_dad 0
	setsys net/ipv6/conf/default/accept_dad 0
	if [ -e "/proc/sys/net/ipv6/conf/$iface/accept_dad" ]; then
		setsys "net/ipv6/conf/$iface/accept_dad" 0
	fi
fi
setsys net/ipv4/conf/all/rp_filter 0
setsys net/ipv4/conf/default/rp_filter 0
for f in /proc/sys/net/ipv4/conf/*/rp_filter; do
	printf '0\n' >"$f"
done

ip link set dev lo up

# sync_addrs DEV ADDR/LEN...: DEV ends up with exactly these global addresses.
sync_addrs() {
	local dev=$1 a have=' ' cur
	shift
	local want=" $* "
	cur=$(ip -o addr show dev "$dev" scope global)
	while read -r _ _ _ a _; do
		[ -n "$a" ] || continue
		case $want in
		*" $a "*) have="$have$a " ;;
		*) ip addr del "$a" dev "$dev" ;;
		esac
	done <<<"$cur"
	for a in "$@"; do
		case $have in *" $a "*) continue ;; esac
		case $a in
		*:*) ip addr replace "$a" dev "$dev" nodad ;;
		*) ip addr replace "$a" dev "$dev" ;;
		esac
	done
}

if [ -n "$pod_gws" ]; then
	if ! ip link show dev cnio0 >/dev/null 2>&1; then
		ip link add cnio0 type bridge 2>/dev/null || ip link show dev cnio0 >/dev/null
	fi
	ip link set dev cnio0 up
	# shellcheck disable=SC2086
	sync_addrs cnio0 $pod_gws
elif ip link show dev cnio0 >/dev/null 2>&1; then
	ip link del dev cnio0
fi

if [ -n "$mac" ]; then
	link=$(ip -o link show dev "$iface")
	case $link in
	*" link/ether $mac "*) ;;
	*) ip link set dev "$iface" address "$mac" ;;
	esac
fi
ip link set dev "$iface" up
# shellcheck disable=SC2086
sync_addrs "$iface" $addrs
