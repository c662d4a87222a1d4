# shellcheck shell=bash
# scripts/lab.sh's --lxd lab: the containers of a topology (also used by --realnode and
# --lab). Sourced by scripts/lab.sh.

# `lxc list` as: name status marked hash autostart expanded-nics local-nics base-image files
L_NAME=() L_STATUS=() L_MARK=() L_HASH=() L_AUTO=() L_XNICS=() L_NICS=() L_IMAGE=() L_FILES=()
lxd_read_list() {
	local out name st mk h a x n im f
	L_NAME=() L_STATUS=() L_MARK=() L_HASH=() L_AUTO=() L_XNICS=() L_NICS=() L_IMAGE=() L_FILES=()
	out=$(lxc list --format json) || die "lxc list failed"
	out=$(py lxclist <<<"$out") || die "cannot parse lxc list output"
	while IFS=$'\t' read -r name st mk h a x n im f; do
		[ -n "$name" ] || continue
		L_NAME+=("$name") L_STATUS+=("$st") L_MARK+=("$mk") L_HASH+=("$h") L_AUTO+=("$a")
		L_XNICS+=("$x") L_NICS+=("$n") L_IMAGE+=("$im") L_FILES+=("$f")
	done <<<"$out"
}

lxd_find() { # INSTANCE -> index into L_* or 1
	local j
	for j in "${!L_NAME[@]}"; do
		[ "${L_NAME[j]}" = "$1" ] && echo "$j" && return 0
	done
	return 1
}

node_hash() { # INDEX
	if [ "$BACKEND" = realnode ]; then
		rn_node_hash "$1"
		return
	fi
	{
		node_conf "$1"
		printf '%s\n' "$INIT_SH" "$APPLY_SH"
	} | sha256sum | cut -c1-16
}

lxd_push_files() { # INDEX
	local i=$1 inst=${N_INST[$1]} tmp
	if [ "$BACKEND" = realnode ]; then
		rn_push_files "$i"
		return
	fi
	tmp=$(mktemp -d)
	node_conf "$i" >"$tmp/conf"
	printf '%s\n' "$APPLY_SH" >"$tmp/apply"
	printf '%s\n' "$INIT_SH" >"$tmp/init"
	if ! quiet lxc file push -q --uid 0 --gid 0 --mode 0644 "$tmp/conf" "$inst$NODE_CONF" ||
		! quiet lxc file push -q --uid 0 --gid 0 --mode 0755 "$tmp/apply" "$inst$NODE_APPLY" ||
		! quiet lxc file push -q --uid 0 --gid 0 --mode 0755 "$tmp/init" "$inst$NODE_INIT"; then
		rm -rf "$tmp"
		die "$inst: cannot push the node files"
	fi
	rm -rf "$tmp"
}

lxd_probe() { # INDEX (see check_nodes)
	if [ "$BACKEND" = realnode ]; then
		rn_probe "$1"
		return
	fi
	lxc exec "${N_INST[$1]}" -- bash -c "$CHECK_CMD" </dev/null 2>/dev/null || true
}

# The poll: `ip -j addr` and the sysctls must match the declaration.
lxd_check() { # INDEX -> prints ok or the problems; status 0 if ok
	local res
	res=$(check_nodes lxd_probe "$1") || {
		printf '%s\n' "${res#*$'\t'}"
		return 1
	}
	echo ok
}

lxd_wait_ready() { # INDEX
	local i=$1 inst=${N_INST[$1]} deadline res
	deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		res=$(lxd_check "$i") && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			if [ "$BACKEND" = realnode ]; then
				log "$inst: $(lxc exec "$inst" -- sh -c 'systemctl is-system-running; systemctl --failed --no-legend; networkctl --no-legend' </dev/null 2>&1 | tr '\n' ' ')"
			else
				log "$inst: node log: $(lxc exec "$inst" -- cat "$NODE_LOG" </dev/null 2>&1 | tr '\n' ' ')"
			fi
			die "$inst: not configured after ${READY_TIMEOUT} s: $res"
		fi
		sleep 0.2
	done
}

lxd_state() { # INSTANCE -> RUNNING, STOPPED, ... (empty if it does not exist)
	lxc list "^$1\$" -c s --format csv 2>/dev/null || true
}

lxd_start() { # INSTANCE; waits out an operation that someone else runs on it
	local try out
	for try in $(seq 1 20); do
		out=$(lxc start -q "$1" 2>&1 </dev/null) && return 0
		[ "$(lxd_state "$1")" = RUNNING ] && return 0
		case $out in *busy* | *"already running"*) sleep 1 ;; *) break ;; esac
	done
	printf '%s\n' "$out" >&2
	die "$1: lxc start failed (after $try tries)"
}

lxd_restart() { # INSTANCE
	quiet lxc restart -q --timeout 20 "$1" || quiet lxc restart -q --force "$1" || die "$1: lxc restart failed"
}

lxd_node_up() { # INDEX: create/repair/start one container and wait until it is configured
	local i=$1 inst=${N_INST[$1]} iface=${N_IFACE[$1]} j h changed=0 started=0 want_nic d
	h=$(node_hash "$i")
	want_nic="$iface=bridged/$LAB_BRIDGE/$iface/${N_MAC[i]}"
	if [ "$BACKEND" = realnode ] && j=$(lxd_find "$inst") && [ "${L_MARK[j]}" = 1 ] && [ "${L_IMAGE[j]}" != "$RN_IMAGE_FP" ]; then
		log "$inst: made from another image, recreating it"
		quiet lxc delete --force "$inst" || die "$inst: cannot delete it"
		L_NAME[j]='' # forget it
	fi
	if ! j=$(lxd_find "$inst"); then
		log "$inst: creating"
		quiet lxc init -q "$IMAGE_ALIAS" "$inst" -c "$MARK_KEY=true" -c boot.autostart=false ||
			die "$inst: lxc init failed"
		quiet lxc config device add "$inst" "$iface" nic nictype=bridged parent="$LAB_BRIDGE" name="$iface" hwaddr="${N_MAC[i]}" ||
			die "$inst: cannot add nic $iface"
		lxd_push_files "$i"
		lxc config set "$inst" "$HASH_KEY" "$h" || die "$inst: cannot record the configuration"
		lxd_start "$inst"
		lxd_wait_ready "$i"
		return 0
	fi
	[ "${L_MARK[j]}" = 1 ] ||
		die "container $inst exists and is not a lab container ($MARK_KEY is not true); remove it or change the topology"
	if [ "${L_AUTO[j]}" != false ]; then
		lxc config set "$inst" boot.autostart=false || die "$inst: cannot set boot.autostart"
	fi
	if [ "${L_XNICS[j]}" != "$want_nic" ]; then
		log "$inst: fixing its nic (has ${L_XNICS[j]}, wants $want_nic)"
		if [ "${L_NICS[j]}" != - ]; then
			for d in ${L_NICS[j]//,/ }; do
				quiet lxc config device remove "$inst" "${d%%=*}" || die "$inst: cannot remove device ${d%%=*}"
			done
		fi
		quiet lxc config device add "$inst" "$iface" nic nictype=bridged parent="$LAB_BRIDGE" name="$iface" hwaddr="${N_MAC[i]}" ||
			die "$inst: cannot add nic $iface"
		changed=1
	fi
	if [ "${L_HASH[j]}" != "$h" ]; then
		log "$inst: configuration changed, pushing it"
		lxd_push_files "$i"
		changed=1
	fi
	case ${L_STATUS[j]} in
	Running)
		if [ "$changed" = 1 ]; then
			log "$inst: restarting"
			lxd_restart "$inst"
			started=1
		fi
		;;
	Stopped)
		log "$inst: starting"
		lxd_start "$inst"
		started=1
		;;
	Frozen)
		log "$inst: unfreezing"
		quiet lxc start -q "$inst" || die "$inst: cannot unfreeze"
		if [ "$changed" = 1 ]; then
			lxd_restart "$inst"
			started=1
		fi
		;;
	*)
		log "$inst: in state ${L_STATUS[j]}, forcing a restart"
		quiet lxc stop --force "$inst" || true
		lxd_start "$inst"
		started=1
		;;
	esac
	if [ "${L_HASH[j]}" != "$h" ]; then
		lxc config set "$inst" "$HASH_KEY" "$h" || die "$inst: cannot record the configuration"
	fi
	if [ "$started" = 1 ]; then
		lxd_wait_ready "$i"
		return 0
	fi
	# Already running: apply again in place (cheap, repairs drift, keeps the routes), then check.
	local try res
	if [ "$BACKEND" = realnode ]; then
		# networkd keeps the node as its files say; if it is not, a reboot puts it right. A probe
		# can come back empty under load (lxc exec), so look three times before rebooting.
		for try in 1 2 3; do
			res=$(lxd_check "$i") && return 0
			sleep 0.5
		done
		log "$inst: not as declared ($res); restarting"
		lxd_restart "$inst"
		lxd_wait_ready "$i"
		return 0
	fi
	for try in 1 2 3; do
		lxc exec "$inst" -- "$NODE_APPLY" "$NODE_CONF" </dev/null || die "$inst: configuration failed"
		res=$(lxd_check "$i") && return 0
		sleep 0.3
	done
	die "$inst: not as declared after configuring it $try times: $res"
}

lxd_up() {
	local i j pids=() failed=0
	lxd_setup
	lxd_ensure_bridge
	lxd_read_list
	for i in "${!N_NAME[@]}"; do
		if j=$(lxd_find "${N_INST[i]}") && [ "${L_MARK[j]}" != 1 ]; then
			die "container ${N_INST[i]} exists and is not a lab container ($MARK_KEY is not true); remove it or change the topology"
		fi
	done
	for j in "${!L_NAME[@]}"; do
		if [ "${L_MARK[j]}" = 1 ] && ! declared "${L_NAME[j]}"; then
			log "${L_NAME[j]}: not in the topology, deleting it"
			quiet lxc delete --force "${L_NAME[j]}" || die "cannot delete ${L_NAME[j]}"
		fi
	done
	# The nodes are independent: bring them up side by side.
	for i in "${!N_NAME[@]}"; do
		lxd_node_up "$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" || failed=1
	done
	[ "$failed" = 0 ] || die "the lab is not up (see the messages above)"
	if [ "$BACKEND" = realnode ] && [ "$LAB_NAME" != managers ]; then
		rn_write_ssh_files
		rn_client_up
	fi
	log "$LAB_NAME $BACKEND lab up (${#N_NAME[@]} containers${LAB_PROJECT:+ in project $LAB_PROJECT}, client $LAB_CLI, image $IMAGE_ALIAS, bridge $LAB_BRIDGE) in $(elapsed "$T_START") s"
	summary
}

lxd_down() {
	need_root
	local j n=0
	if type -P "$LAB_CLI" >/dev/null 2>&1 && { [ "$LAB_CLI" = incus ] || type -P lxd >/dev/null 2>&1; }; then
		lxd_ensure_daemon
		lxd_read_list
		local pids=() failed=0 p
		for j in "${!L_NAME[@]}"; do
			if [ "${L_MARK[j]}" = 1 ]; then
				{ quiet lxc delete --force "${L_NAME[j]}" || die "cannot delete ${L_NAME[j]}"; } &
				pids+=($!)
				n=$((n + 1))
			elif declared "${L_NAME[j]}"; then
				log "${L_NAME[j]}: left alone (not a lab container)"
			fi
		done
		for p in "${pids[@]}"; do
			wait "$p" || failed=1
		done
		[ "$failed" = 0 ] || die "the lab is not down (see the messages above)"
	fi
	[ "$BACKEND" != realnode ] || [ "$LAB_NAME" = managers ] || rn_client_down
	local br='no bridge'
	if ip link show dev "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip link del dev "$LAB_BRIDGE" || die "cannot delete bridge $LAB_BRIDGE"
		br="bridge $LAB_BRIDGE"
	fi
	log "$LAB_NAME $BACKEND lab down${LAB_PROJECT:+ (project $LAB_PROJECT)}: removed $n container(s) and $br; image and daemon kept"
}

lxd_status_probe() { # INDEX (see check_nodes)
	local i=$1 j
	if ! j=$(lxd_find "${N_INST[i]}"); then
		echo "!missing"
	elif [ "${L_MARK[j]}" != 1 ]; then
		echo "!exists but is not a lab container"
	elif [ "${L_STATUS[j]}" != Running ]; then
		echo "!${L_STATUS[j]}"
	elif [ "${L_HASH[j]}" != "$(node_hash "$i")" ]; then
		echo "!configuration out of date"
	elif [ "${L_XNICS[j]}" != "${N_IFACE[i]}=bridged/$LAB_BRIDGE/${N_IFACE[i]}/${N_MAC[i]}" ]; then
		echo "!nic is ${L_XNICS[j]}"
	else
		lxd_probe "$i"
	fi
}

lxd_status() {
	local ok=0 j res
	if ! type -P "$LAB_CLI" >/dev/null 2>&1; then
		echo "$LAB_CLI: not installed"
		return 1
	fi
	if ! lxd_alive; then
		echo "$LAB_CLI: daemon not running"
		return 1
	fi
	echo "$LAB_CLI: daemon running${LAB_PROJECT:+ (project $LAB_PROJECT)}"
	if lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		echo "image: $IMAGE_ALIAS present"
	else
		echo "image: $IMAGE_ALIAS missing"
		ok=1
	fi
	if ip -o link show dev "$LAB_BRIDGE" 2>/dev/null | grep -q ',UP'; then
		echo "bridge: $LAB_BRIDGE up"
	else
		echo "bridge: $LAB_BRIDGE missing or down"
		ok=1
	fi
	if [ "$BACKEND" = realnode ]; then
		if ns_mounted "$RN_CLIENT_NS" && ip -o link show dev "$RN_CLIENT_PORT" 2>/dev/null | grep -q "master $LAB_BRIDGE" &&
			ip -n "$RN_CLIENT_NS" -o addr show dev eth0 2>/dev/null | grep -q " ${RN_CLIENT_ADDR} "; then
			echo "client: namespace $RN_CLIENT_NS on $LAB_BRIDGE with $RN_CLIENT_ADDR"
		else
			echo "client: namespace $RN_CLIENT_NS missing or not on $LAB_BRIDGE"
			ok=1
		fi
	fi
	lxd_read_list
	local results key
	results=$(check_nodes lxd_status_probe "${!N_NAME[@]}") || ok=1
	while IFS=$'\t' read -r key res; do
		[ -n "$key" ] || continue
		if [ "$res" = ok ]; then
			printf '  %-16s RUNNING %s %s%s%s\n' "${N_INST[key]}" "${N_IFACE[key]}" "${N_ADDRS[key]}" \
				"$([ "${N_PODGW[key]}" = - ] || echo " cnio0 ${N_PODGW[key]}")" \
				"$([ "$BACKEND" != realnode ] || echo " ($(rn_manager "$key"): ${N_NETFILE[key]})")"
		else
			printf '  %-16s DOWN    %s\n' "${N_INST[key]}" "$res"
		fi
	done <<<"$results"
	for j in "${!L_NAME[@]}"; do
		if [ "${L_MARK[j]}" = 1 ] && ! declared "${L_NAME[j]}"; then
			printf '  %-16s EXTRA   lab container not in the topology (%s)\n' "${L_NAME[j]}" "${L_STATUS[j]}"
			ok=1
		fi
	done
	return "$ok"
}

lxd_reset_routes() {
	local i out try inst
	lxd_alive || die "the LXD daemon is not running (run up first)"
	for i in "${!N_NAME[@]}"; do
		inst=${N_INST[i]}
		for try in 1 2 3 4 5; do
			out=$(lxc exec "$inst" -- bash -c "$RESET_SH" </dev/null) || die "$inst: reset-routes failed"
			[ -n "$out" ] && break # lxc exec may print nothing at all under load: run it again
			sleep 0.2
		done
		[[ $out == reset-ok* ]] || die "$inst: reset-routes printed '$out' (after $try tries)"
		log "$inst: ${out#reset-ok } route(s) deleted"
	done
}
