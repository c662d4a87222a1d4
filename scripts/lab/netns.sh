# shellcheck shell=bash
# scripts/lab.sh's --netns lab: one network namespace per node. Sourced by scripts/lab.sh.

# --netns backend

ns_mounted() { [ -e "/run/netns/$1" ] && [ "$(stat -f -c %T "/run/netns/$1" 2>/dev/null)" = nsfs ]; }
ns_marked() { ip -n "$1" -j link show dev lo 2>/dev/null | grep -q "\"ifalias\":\"$NETNS_MARK\""; }

ns_list() { # every namespace name in /run/netns
	local f
	[ -d /run/netns ] || return 0
	for f in /run/netns/*; do
		[ -e "$f" ] && printf '%s\n' "${f##*/}"
	done
	return 0
}

ns_drop_stale() { # NAME: remove /run/netns/NAME if nothing is mounted on it (left by a reboot)
	if [ -e "/run/netns/$1" ] && ! ns_mounted "$1"; then
		log "$1: removing the stale namespace file /run/netns/$1"
		rm -f "/run/netns/$1" || die "cannot remove /run/netns/$1"
	fi
}

ns_ensure() { # NAME: a usable, marked namespace
	local ns=$1 links
	ns_drop_stale "$ns"
	if ! ns_mounted "$ns"; then
		ip netns add "$ns" || die "ip netns add $ns failed"
	elif ! ns_marked "$ns"; then
		links=$(ip -n "$ns" -o link show | grep -cv ': lo:' || true)
		[ "$links" = 0 ] || die "namespace $ns exists and is not a lab namespace (it has interfaces but no '$NETNS_MARK' mark); remove it or change the topology"
	fi
	ns_marked "$ns" || ip -n "$ns" link set dev lo alias "$NETNS_MARK" || die "cannot mark namespace $ns"
}

ns_write_sys() { # NS PATH VALUE
	# shellcheck disable=SC2016 # expanded by the inner bash
	ip netns exec "$1" bash -c 'printf "%s\n" "$2" >"/proc/sys/$1"' _ "$2" "$3" ||
		die "$1: cannot set $2"
}

netns_hub_up() {
	ns_ensure "$HUB_NS"
	ns_write_sys "$HUB_NS" net/ipv6/conf/default/disable_ipv6 1
	ns_write_sys "$HUB_NS" net/ipv6/conf/all/disable_ipv6 1
	if ! ip -n "$HUB_NS" link show dev "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip -n "$HUB_NS" link add "$LAB_BRIDGE" type bridge mcast_snooping 0 ||
			die "cannot create bridge $LAB_BRIDGE in $HUB_NS"
	fi
	ip -n "$HUB_NS" link set dev "$LAB_BRIDGE" up || die "cannot bring $LAB_BRIDGE up in $HUB_NS"
}

veth_pair_ok() { # NS IFACE PORT: IFACE in NS and PORT in the hub are the two ends of one veth
	local a b ia pa
	a=$(ip -n "$1" -o link show dev "$2" 2>/dev/null) || return 1
	b=$(ip -n "$HUB_NS" -o link show dev "$3" 2>/dev/null) || return 1
	# "INDEX: NAME@ifPEERINDEX: ..."
	[[ $a =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	ia=${BASH_REMATCH[1]} pa=${BASH_REMATCH[2]}
	[[ $b =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	[ "${BASH_REMATCH[1]}" = "$pa" ] && [ "${BASH_REMATCH[2]}" = "$ia" ]
}

netns_node_up() { # INDEX
	local i=$1 ns=${N_INST[$1]} iface=${N_IFACE[$1]} port=${N_PORT[$1]} conf
	ns_ensure "$ns"
	if ! veth_pair_ok "$ns" "$iface" "$port"; then
		ip -n "$HUB_NS" link del dev "$port" 2>/dev/null || true
		ip -n "$ns" link del dev "$iface" 2>/dev/null || true
		ip -n "$HUB_NS" link add "$port" type veth peer name "$iface" netns "$ns" ||
			die "$ns: cannot create the veth pair $port/$iface"
	fi
	ip -n "$HUB_NS" link set dev "$port" master "$LAB_BRIDGE" up ||
		die "$ns: cannot attach $port to $LAB_BRIDGE"
	# Interfaces of this namespace that the lab did not declare (e.g. after a rename) go away.
	local l links
	links=$(ip -n "$ns" -o link show 2>/dev/null) || die "$ns: cannot list its interfaces"
	while read -r l; do
		[ -n "$l" ] || continue
		case $l in lo | cnio0 | "$iface") ;; *) ip -n "$ns" link del dev "$l" || die "$ns: cannot delete $l" ;; esac
	done <<<"$(sed -n 's/^[0-9]*: \([^:@]*\)[:@].*/\1/p' <<<"$links")"
	conf="$STATE_DIR/netns/$ns.conf"
	node_conf "$i" >"$conf"
	ip netns exec "$ns" bash "$STATE_DIR/apply.sh" "$conf" || die "$ns: configuration failed"
}

netns_probe() { # INDEX (see check_nodes)
	local i=$1 ns=${N_INST[$1]}
	if ! ns_mounted "$ns"; then
		echo "!namespace missing"
	elif ! ns_marked "$ns"; then
		echo "!namespace not marked as a lab namespace"
	elif ! ip -n "$HUB_NS" -o link show dev "${N_PORT[i]}" 2>/dev/null | grep -q "master $LAB_BRIDGE"; then
		echo "!not attached to $LAB_BRIDGE"
	else
		ip netns exec "$ns" bash -c "$CHECK_CMD" 2>/dev/null || true
	fi
}

netns_up() {
	local i ns
	mkdir -p "$STATE_DIR/netns"
	printf '%s\n' "$APPLY_SH" >"$STATE_DIR/apply.sh"
	type -P ping >/dev/null || ensure_packages iputils-ping
	ns_drop_stale "$HUB_NS"
	for ns in "${N_INST[@]}"; do
		ns_drop_stale "$ns"
	done
	netns_hub_up
	# Lab namespaces that the topology no longer declares.
	while read -r ns; do
		if [ -z "$ns" ] || [ "$ns" = "$HUB_NS" ] || declared "$ns"; then
			continue
		fi
		if ns_mounted "$ns" && ns_marked "$ns"; then
			log "$ns: not in the topology, deleting it"
			ip netns del "$ns" || die "cannot delete namespace $ns"
		fi
	done <<<"$(ns_list)"
	for i in "${!N_NAME[@]}"; do
		netns_node_up "$i"
	done
	local res
	if ! res=$(check_nodes netns_probe "${!N_NAME[@]}"); then
		die "not as declared after configuration: $(grep -v $'\tok$' <<<"$res" | tr '\n\t' '  ')"
	fi
	log "netns lab up (${#N_NAME[@]} nodes, hub $HUB_NS, bridge $LAB_BRIDGE) in $(elapsed "$T_START") s"
	summary
}

netns_down() {
	local ns n=0
	while read -r ns; do
		if [ -z "$ns" ] || [ "$ns" = "$HUB_NS" ]; then
			continue
		fi
		if ns_mounted "$ns" && ns_marked "$ns"; then
			ip netns del "$ns" || die "cannot delete namespace $ns"
			n=$((n + 1))
		elif declared "$ns" && ns_mounted "$ns"; then
			log "$ns: left alone (not a lab namespace)"
		fi
	done <<<"$(ns_list)"
	local hub='no hub'
	if [ -e "/run/netns/$HUB_NS" ]; then
		ip netns del "$HUB_NS" 2>/dev/null || rm -f "/run/netns/$HUB_NS" || die "cannot delete namespace $HUB_NS"
		hub="hub $HUB_NS"
	fi
	rm -rf "$STATE_DIR/netns"
	log "netns lab down: removed $n node namespace(s) and $hub"
}

netns_status() {
	local i ok=0 res
	if ns_mounted "$HUB_NS" && ip -n "$HUB_NS" -o link show dev "$LAB_BRIDGE" 2>/dev/null | grep -q ',UP'; then
		echo "hub: namespace $HUB_NS with bridge $LAB_BRIDGE up"
	else
		echo "hub: namespace $HUB_NS or bridge $LAB_BRIDGE missing"
		ok=1
	fi
	local results key
	results=$(check_nodes netns_probe "${!N_NAME[@]}") || ok=1
	while IFS=$'\t' read -r key res; do
		[ -n "$key" ] || continue
		if [ "$res" = ok ]; then
			printf '  %-16s up   %s %s%s\n' "${N_INST[key]}" "${N_IFACE[key]}" "${N_ADDRS[key]}" \
				"$([ "${N_PODGW[key]}" = - ] || echo " cnio0 ${N_PODGW[key]}")"
		else
			printf '  %-16s DOWN %s\n' "${N_INST[key]}" "$res"
		fi
	done <<<"$results"
	return "$ok"
}

netns_reset_routes() {
	local i out
	for i in "${!N_NAME[@]}"; do
		ns_mounted "${N_INST[i]}" || die "${N_INST[i]}: namespace missing (run up first)"
		out=$(ip netns exec "${N_INST[i]}" bash -c "$RESET_SH") || die "${N_INST[i]}: reset-routes failed"
		[[ $out == reset-ok* ]] || die "${N_INST[i]}: reset-routes printed '$out'"
		log "${N_INST[i]}: ${out#reset-ok } route(s) deleted"
	done
}
