# shellcheck shell=bash
# shellcheck disable=SC2034 # names set here are read by the other parts of scripts/lab.sh
# scripts/lab.sh's --realnode lab. Sourced by scripts/lab.sh.

# --realnode backend: LXD containers that boot Debian 12 with systemd as PID 1, eth1 configured
# by systemd-networkd (a .network file in /etc/systemd/network) or by netplan (networkd renderer),
# the pod bridge cnio0 configured by networkd, and sshd. It reuses the --lxd machinery (daemon,
# bridge, container life cycle) with its own names: see select_lab.

readonly RN_SUITE=bookworm
readonly RN_PACKAGES=systemd,systemd-sysv,dbus,udev,iproute2,iputils-ping,procps,openssh-server,netplan.io
# --lab managers: the same system plus NetworkManager and ifupdown (libpam-systemd: polkitd needs it)
readonly RN_MANAGER_PACKAGES=network-manager,ifupdown,libpam-systemd
RN_PKGS=$RN_PACKAGES                  # what debootstrap installs for this lab
RN_CACHE_DIR=$STATE_DIR/realnode      # where its debootstrap result is cached
# The node files of a --lab managers node that choose its manager (see rn_render).
readonly RN_NM_KEYFILE=/etc/NetworkManager/system-connections/routectl-lab-eth1.nmconnection
readonly RN_NM_OFF=/etc/systemd/system/NetworkManager.service.d/routectl-lab-off.conf
readonly RN_IMAGE_KEY=routectl.lab-version # image property: digest of what built the image
readonly RN_NETPLAN_FILE=/etc/netplan/50-routectl-lab.yaml
readonly RN_SSH_DIR=$STATE_DIR/ssh
readonly RN_CLIENT_NS=routectl-lab-rn-client # the host's way onto rtlab1 (for ssh)
readonly RN_CLIENT_PORT=rn-client            # its veth on the host, a port of rtlab1
readonly RN_CLIENT_ADDR=${ROUTECTL_LAB_CLIENT_ADDR:-10.0.3.250/24}

# Probe of one node: what CHECK_CMD prints plus what networkd says about the interface ($1) and
# whether sshd runs. The interface is a positional parameter, never part of the script text.
# shellcheck disable=SC2016 # expanded inside the node
readonly RN_CHECK_CMD="$CHECK_CMD"'
if idx=$(cat "/sys/class/net/$1/ifindex" 2>/dev/null) && [ -r "/run/systemd/netif/links/$idx" ]; then
	sed -n -e "s/^NETWORK_FILE=/@netfile=/p" -e "s/^ADMIN_STATE=/@state=/p" "/run/systemd/netif/links/$idx"
fi
printf "@ssh=%s\n" "$(systemctl is-active ssh 2>/dev/null)"'

# In-node part of reset-routes: drop routectl's networkd drop-ins first (networkd would put their
# routes back), make networkd forget them, wait until the interface ($1) is configured again.
# shellcheck disable=SC2016 # expanded inside the node
readonly RN_RESET_DROPINS='set -euo pipefail
n=0
for f in /etc/NetworkManager/dispatcher.d/90-routectl /etc/network/if-up.d/routectl; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	rm -f -- "$f"
	n=$((n + 1))
done
h=$n
for f in /etc/systemd/network/*.d/50-routectl.conf /run/systemd/network/*.d/50-routectl.conf; do
	[ -e "$f" ] || continue
	rm -f -- "$f"
	n=$((n + 1))
done
if [ "$n" != "$h" ]; then
	networkctl reload
	for _ in $(seq 1 100); do
		idx=$(cat "/sys/class/net/$1/ifindex")
		grep -qx ADMIN_STATE=configured "/run/systemd/netif/links/$idx" 2>/dev/null && break
		sleep 0.1
	done
fi
echo "dropins-removed $n"'

# realnode_select TOPOLOGY: which nodes netplan configures (ROUTECTL_LAB_NETPLAN, default: the
# last node), which manager each node has (a line "# lab-manager: INSTANCE MANAGER" in the
# topology file, MANAGER one of networkd, netplan, networkmanager, netplan-nm, ifupdown; --lab
# managers only) and, per node, the file networkd must report as configuring its interface ("-":
# networkd does not configure it).
N_NETPLAN=() N_NETFILE=() N_MANAGER=()
realnode_select() {
	local i want=${ROUTECTL_LAB_NETPLAN-} last=$((${#N_NAME[@]} - 1)) x found inst kind
	if [ -z "${ROUTECTL_LAB_NETPLAN+set}" ]; then
		want=${N_INST[last]}
	fi
	for x in ${want//,/ }; do
		found=0
		for i in "${!N_INST[@]}"; do [ "${N_INST[i]}" = "$x" ] && found=1; done
		[ "$found" = 1 ] || die "ROUTECTL_LAB_NETPLAN names $x, which is not an instance of the topology"
	done
	for i in "${!N_NAME[@]}"; do
		N_NETPLAN[i]=0
		case ",$want," in *",${N_INST[i]},"*) N_NETPLAN[i]=1 ;; esac
		if [ "${N_NETPLAN[i]}" = 1 ]; then
			N_NETFILE[i]=/run/systemd/network/10-netplan-${N_IFACE[i]}.network
		else
			N_NETFILE[i]=/etc/systemd/network/10-${N_IFACE[i]}.network
		fi
		N_MANAGER[i]=$([ "${N_NETPLAN[i]}" = 1 ] && echo netplan || echo networkd)
	done
	[ "$LAB_NAME" = managers ] || return 0
	while read -r _ _ inst kind; do
		found=0
		for i in "${!N_INST[@]}"; do
			[ "${N_INST[i]}" = "$inst" ] || continue
			found=1
			case $kind in
			networkd | netplan) ;;
			networkmanager | netplan-nm | ifupdown) N_NETFILE[i]=- ;;
			*) die "$1: lab-manager $inst: unknown manager $kind" ;;
			esac
			N_MANAGER[i]=$kind
			N_NETPLAN[i]=$([ "$kind" = netplan ] && echo 1 || echo 0)
		done
		[ "$found" = 1 ] || die "$1: lab-manager names $inst, which is not an instance of the topology"
	done < <(grep -E '^# lab-manager: ' "$1" || true)
}

rn_manager() { # INDEX -> networkd, netplan, networkmanager, netplan-nm or ifupdown
	echo "${N_MANAGER[$1]}"
}

# The lab's own SSH key (generated once) and the public keys every node authorizes.
rn_ensure_ssh_key() {
	mkdir -p "$RN_SSH_DIR" || die "cannot create $RN_SSH_DIR"
	chmod 0700 "$RN_SSH_DIR" || die "cannot chmod $RN_SSH_DIR"
	if [ ! -s "$RN_SSH_DIR/id_ed25519" ] || [ ! -s "$RN_SSH_DIR/id_ed25519.pub" ]; then
		command -v ssh-keygen >/dev/null || ensure_packages openssh-client
		rm -f "$RN_SSH_DIR/id_ed25519" "$RN_SSH_DIR/id_ed25519.pub"
		quiet ssh-keygen -q -t ed25519 -N '' -C routectl-lab -f "$RN_SSH_DIR/id_ed25519" ||
			die "cannot generate the lab's SSH key"
	fi
}

rn_authorized_keys() {
	cat "$RN_SSH_DIR/id_ed25519.pub"
	if [ -n "${ROUTECTL_LAB_SSH_PUBKEY:-}" ]; then
		[ -r "$ROUTECTL_LAB_SSH_PUBKEY" ] || die "ROUTECTL_LAB_SSH_PUBKEY: cannot read $ROUTECTL_LAB_SSH_PUBKEY"
		grep -E '^(ssh-|ecdsa-|sk-)' "$ROUTECTL_LAB_SSH_PUBKEY" ||
			die "ROUTECTL_LAB_SSH_PUBKEY: $ROUTECTL_LAB_SSH_PUBKEY holds no public key"
	fi
}

# rn_render INDEX DIR: writes the node's files under DIR (DIR/etc/...) and prints one line
# "MODE PATH" per file. Everything that configures a node is in these files.
rn_render() {
	local i=$1 d=$2 iface=${N_IFACE[$1]} a gw
	mkdir -p "$d/etc/systemd/network" "$d/etc/netplan" "$d/root/.ssh"
	printf '%s\n' "${N_INST[i]}" >"$d/etc/hostname"
	echo "0644 /etc/hostname"
	if [ "$LAB_NAME" = managers ]; then
		rn_render_manager "$i" "$d"
	elif [ "${N_NETPLAN[i]}" = 1 ]; then
		{
			printf '# routectl lab node %s: %s configured by netplan (networkd renderer)\n' "${N_NAME[i]}" "$iface"
			printf 'network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    %s:\n' "$iface"
			printf '      accept-ra: false\n      link-local: [ipv6]\n      addresses:\n'
			for a in ${N_ADDRS[i]//-/}; do printf '        - "%s"\n' "$a"; done
		} >"$d$RN_NETPLAN_FILE"
		echo "0600 $RN_NETPLAN_FILE"
	else
		{
			printf '# routectl lab node %s: %s configured by systemd-networkd\n' "${N_NAME[i]}" "$iface"
			printf '[Match]\nName=%s\n\n[Network]\nIPv6AcceptRA=no\nLinkLocalAddressing=ipv6\n' "$iface"
			for a in ${N_ADDRS[i]//-/}; do
				printf '\n[Address]\nAddress=%s\n' "$a"
				case $a in *:*) printf 'DuplicateAddressDetection=none\n' ;; esac
			done
		} >"$d${N_NETFILE[i]}"
		echo "0644 ${N_NETFILE[i]}"
	fi
	if [ "${N_PODGW[i]}" != - ]; then
		printf '[NetDev]\nName=cnio0\nKind=bridge\n' >"$d/etc/systemd/network/20-cnio0.netdev"
		{
			printf '# the pod bridge: empty, like the one the CNI bridge plugin creates\n'
			printf '[Match]\nName=cnio0\n\n[Network]\nConfigureWithoutCarrier=yes\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n'
			for gw in ${N_PODGW[i]}; do
				printf '\n[Address]\nAddress=%s\n' "$gw"
				case $gw in *:*) printf 'DuplicateAddressDetection=none\n' ;; esac
			done
		} >"$d/etc/systemd/network/20-cnio0.network"
		echo "0644 /etc/systemd/network/20-cnio0.netdev"
		echo "0644 /etc/systemd/network/20-cnio0.network"
	fi
	rn_authorized_keys >"$d/root/.ssh/authorized_keys"
	echo "0600 /root/.ssh/authorized_keys"
}

# rn_render_manager INDEX DIR: the files that make the node's manager (N_MANAGER) configure its
# interface; NetworkManager is kept from starting on the other nodes of --lab managers.
rn_render_manager() {
	local i=$1 d=$2 iface=${N_IFACE[$1]} a n4=0 n6=0
	case ${N_MANAGER[i]} in
	networkmanager)
		mkdir -p "$d${RN_NM_KEYFILE%/*}"
		{
			printf '# routectl lab node %s: %s configured by NetworkManager (keyfile)\n' "${N_NAME[i]}" "$iface"
			printf '[connection]\nid=%s\ntype=ethernet\ninterface-name=%s\nautoconnect=true\n\n[ipv4]\n' "$iface" "$iface"
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) ;; *) n4=$((n4 + 1)) && printf 'address%s=%s\n' "$n4" "$a" ;; esac; done
			[ "$n4" -gt 0 ] && printf 'method=manual\n' || printf 'method=disabled\n'
			printf '\n[ipv6]\naddr-gen-mode=eui64\n'
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) n6=$((n6 + 1)) && printf 'address%s=%s\n' "$n6" "$a" ;; esac; done
			[ "$n6" -gt 0 ] && printf 'method=manual\n' || printf 'method=link-local\n'
		} >"$d$RN_NM_KEYFILE"
		echo "0600 $RN_NM_KEYFILE"
		;;
	netplan-nm)
		{
			printf '# routectl lab node %s: %s configured by netplan (NetworkManager renderer)\n' "${N_NAME[i]}" "$iface"
			printf 'network:\n  version: 2\n  renderer: NetworkManager\n  ethernets:\n    %s:\n' "$iface"
			printf '      accept-ra: false\n      link-local: [ipv6]\n      addresses:\n'
			for a in ${N_ADDRS[i]//-/}; do printf '        - "%s"\n' "$a"; done
		} >"$d$RN_NETPLAN_FILE"
		echo "0600 $RN_NETPLAN_FILE"
		;;
	ifupdown)
		mkdir -p "$d/etc/network" "$d${RN_NM_OFF%/*}"
		{
			printf '# routectl lab node %s: %s configured by ifupdown\n' "${N_NAME[i]}" "$iface"
			printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nauto %s\n' "$iface"
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) ;; *) printf 'iface %s inet static\n\taddress %s\n' "$iface" "$a" ;; esac; done
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) printf 'iface %s inet6 static\n\taddress %s\n\taccept_ra 0\n\tdad-attempts 0\n' "$iface" "$a" ;; esac; done
		} >"$d/etc/network/interfaces"
		echo "0644 /etc/network/interfaces"
		printf '# routectl lab: ifupdown configures this node, NetworkManager does not run\n[Unit]\nConditionPathExists=/nonexistent/routectl-lab\n' >"$d$RN_NM_OFF"
		echo "0644 $RN_NM_OFF"
		;;
	*) die "${N_INST[i]}: --lab managers has no ${N_MANAGER[i]} nodes" ;;
	esac
}

rn_node_hash() { # INDEX
	local tmp h
	tmp=$(mktemp -d)
	rn_render "$1" "$tmp" >"$tmp/.list"
	h=$( (cd "$tmp" && cat .list && sort -k2 .list | while read -r _ p; do printf '%s\n' "$p" && cat ".$p"; done) | sha256sum | cut -c1-16)
	rm -rf "$tmp"
	echo "$h"
}

rn_push_files() { # INDEX; works on a stopped container too
	local i=$1 inst=${N_INST[$1]} tmp mode p old j files=()
	tmp=$(mktemp -d)
	rn_render "$i" "$tmp" >"$tmp/.list"
	while read -r mode p; do
		files+=("$p")
		if ! quiet lxc file push -q -p --uid 0 --gid 0 --mode "$mode" "$tmp$p" "$inst$p"; then
			rm -rf "$tmp"
			die "$inst: cannot push $p"
		fi
	done <"$tmp/.list"
	rm -rf "$tmp"
	# Files the lab pushed before and no longer does (e.g. the node moved from netplan to networkd).
	if j=$(lxd_find "$inst") && [ "${L_FILES[j]}" != - ]; then
		for old in ${L_FILES[j]//,/ }; do
			case " ${files[*]} " in *" $old "*) continue ;; esac
			lxc file delete "$inst$old" >/dev/null 2>&1 || true
		done
	fi
	old=$(printf '%s,' "${files[@]}")
	lxc config set "$inst" "$FILES_KEY" "${old%,}" || die "$inst: cannot record its files"
}

rn_probe() { # INDEX (see check_nodes)
	lxc exec "${N_INST[$1]}" -- bash -c "$RN_CHECK_CMD" sh "${N_IFACE[$1]}" </dev/null 2>/dev/null || true
}

# What builds the image: a change to any of it makes a new image (and new containers).
rn_image_version() {
	{
		printf '%s\n' "$RN_SUITE" "$RN_PACKAGES"
		declare -f rn_customize_rootfs
		if [ "$LAB_NAME" = managers ]; then
			printf '%s\n' "$RN_MANAGER_PACKAGES"
			declare -f rn_customize_managers
		fi
	} | sha256sum | cut -c1-16
}

rn_customize_rootfs() { # ROOTFS
	local r=$1
	# Per-container identity is made at first boot, not baked into the image.
	rm -f "$r/etc/hostname" "$r"/etc/ssh/ssh_host_*
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
	mkdir -p "$r/etc/systemd/system/ssh.service.d"
	printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
		>"$r/etc/systemd/system/ssh.service.d/routectl-lab-hostkeys.conf"
	# Forwarding on, reverse-path filter off, no DAD (as the --lxd lab); systemd-sysctl applies it.
	cat >"$r/etc/sysctl.d/90-routectl-lab.conf" <<'EOF_SYSCTL'
net.ipv4.conf.all.forwarding = 1
net.ipv4.conf.default.forwarding = 1
net.ipv6.conf.all.forwarding = 1
net.ipv6.conf.default.forwarding = 1
net.ipv4.conf.all.rp_filter = 0
net.ipv4.conf.default.rp_filter = 0
net.ipv4.conf.*.rp_filter = 0
net.ipv6.conf.all.accept_dad = 0
net.ipv6.conf.default.accept_dad = 0
EOF_SYSCTL
	chroot "$r" systemctl enable -q systemd-networkd.service ssh.service || return 1
	chroot "$r" systemctl disable -q systemd-networkd-wait-online.service 2>/dev/null || true
	chroot "$r" systemctl mask -q systemd-networkd-wait-online.service systemd-binfmt.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service || return 1
	chmod 4755 "$r/usr/bin/ping" || return 1 # file capabilities do not survive the tarball
	# Smaller image: no documentation, locales or package lists.
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/var/lib/apt/lists/* \
		"$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb
}

# --lab managers: NetworkManager (no automatic profiles, leaves cnio0 to networkd) and ifupdown
# both enabled; a node's files keep NetworkManager from starting where ifupdown rules.
rn_customize_managers() { # ROOTFS
	local r=$1
	mkdir -p "$r/etc/NetworkManager/conf.d"
	printf '[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=interface-name:cnio0\n' \
		>"$r/etc/NetworkManager/conf.d/90-routectl-lab.conf"
	chroot "$r" systemctl enable -q NetworkManager.service networking.service || return 1
	chroot "$r" systemctl mask -q NetworkManager-wait-online.service || return 1
}

rn_image_current() { # -> fingerprint of IMAGE_ALIAS if it was built by this version, else fails
	local fp ver
	fp=$(lxc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target"])' 2>/dev/null) || return 1
	ver=$(lxc query "/1.0/images/$fp" 2>/dev/null | "$PY" -c 'import json,sys; print((json.load(sys.stdin).get("properties") or {}).get(sys.argv[1], ""))' "$RN_IMAGE_KEY" 2>/dev/null) || return 1
	[ "$ver" = "$(rn_image_version)" ] || return 1
	printf '%s\n' "$fp"
}

# The debootstrap result is cached as a tarball (keyed by suite, packages and mirror), so that
# rebuilding the image after a change to rn_customize_rootfs, or after `lxc image delete`,
# needs no download.
rn_ensure_image() {
	RN_IMAGE_FP=$(rn_image_current) && return 0
	local t0=$EPOCHREALTIME mirror key cache work old_fp
	mirror=$(debian_mirror) || die "image: no Debian mirror in /etc/apt/sources.list(.d)"
	key=$(printf '%s\n' "$RN_SUITE" "$RN_PKGS" "$mirror" | sha256sum | cut -c1-16)
	cache=$RN_CACHE_DIR/rootfs-$key.tar
	mkdir -p "$RN_CACHE_DIR"
	rm -rf "$RN_CACHE_DIR"/build.* "$RN_CACHE_DIR"/rootfs-*.tar.tmp # left by an interrupted build
	work=$(mktemp -d "$RN_CACHE_DIR/build.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	if [ -s "$cache" ]; then
		log "image: unpacking the cached debootstrap rootfs $cache"
		mkdir "$work/rootfs" || die "cannot create $work/rootfs"
		tar --numeric-owner -xpf "$cache" -C "$work/rootfs" || die "cannot unpack $cache"
	else
		ensure_packages debootstrap
		log "image: debootstrap $RN_SUITE from $mirror with $RN_PKGS (takes a minute or two)"
		debootstrap --variant=minbase --include="$RN_PKGS" "$RN_SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
			tail -n 20 "$work/debootstrap.log" >&2
			die "debootstrap failed (log above)"
		}
		log "image: debootstrap done in $(elapsed "$t0") s; caching it as $cache"
		tar --numeric-owner -cf "$cache.tmp" -C "$work/rootfs" . || die "cannot write $cache.tmp"
		mv "$cache.tmp" "$cache" || die "cannot write $cache"
		# Caches of older package sets go.
		find "$RN_CACHE_DIR" -maxdepth 1 -name 'rootfs-*.tar' ! -name "${cache##*/}" -delete
	fi
	rn_customize_rootfs "$work/rootfs" || die "cannot customize the rootfs"
	if [ "$LAB_NAME" = managers ]; then
		rn_customize_managers "$work/rootfs" || die "cannot customize the rootfs"
	fi
	cat >"$work/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: routectl real-node lab (Debian $RN_SUITE, systemd, networkd, netplan, sshd)
  os: debian
  release: $RN_SUITE
  $RN_IMAGE_KEY: "$(rn_image_version)"
EOF
	tar --numeric-owner -cf "$work/image.tar" -C "$work" metadata.yaml rootfs || die "cannot pack the image"
	old_fp=$(lxc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target"])' 2>/dev/null || true)
	[ -z "$old_fp" ] || quiet lxc image alias delete "$IMAGE_ALIAS" || die "cannot move the alias $IMAGE_ALIAS"
	quiet lxc image import -q "$work/image.tar" --alias "$IMAGE_ALIAS" || {
		local fp
		fp=$(sha256sum "$work/image.tar" | cut -d' ' -f1)
		if ! lxc image info "$fp" >/dev/null 2>&1 || ! lxc image alias create "$IMAGE_ALIAS" "$fp"; then
			die "cannot import the image $IMAGE_ALIAS"
		fi
	}
	[ -z "$old_fp" ] || quiet lxc image delete "$old_fp" || log "image: cannot delete the old image $old_fp"
	rm -rf "$work"
	trap - EXIT
	RN_IMAGE_FP=$(rn_image_current) || die "image $IMAGE_ALIAS: imported but not found"
	log "image $IMAGE_ALIAS built in $(elapsed "$t0") s"
}

# After `up`: the nodes' host keys as a known_hosts file, and an ssh_config naming every node
# (by instance name, reached at its first internal IP). The host reaches the nodes only from a
# network namespace attached to the lab bridge: the bridge itself has no address.
rn_write_ssh_files() {
	local i key ip kh=$RN_SSH_DIR/known_hosts cfg=$RN_SSH_DIR/config
	: >"$kh.tmp"
	: >"$cfg.tmp"
	for i in "${!N_NAME[@]}"; do
		key=''
		for _ in 1 2 3 4 5; do # lxc exec may print nothing at all under load
			key=$(lxc exec "${N_INST[i]}" -- cat /etc/ssh/ssh_host_ed25519_key.pub </dev/null) || key=''
			[ -z "$key" ] || break
			sleep 0.2
		done
		[ -n "$key" ] || die "${N_INST[i]}: cannot read its SSH host key"
		ip=${N_ADDRS[i]%%/*}
		printf '%s,%s %s\n' "${N_INST[i]}" "$(tr ' ' ',' <<<"${N_ADDRS[i]}" | sed 's|/[0-9]*||g')" "${key% *}" >>"$kh.tmp"
		printf 'Host %s\n\tHostName %s\n\tUser root\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n\tHostKeyAlias %s\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n\n' \
			"${N_INST[i]}" "$ip" "$RN_SSH_DIR/id_ed25519" "$kh" "${N_INST[i]}" >>"$cfg.tmp"
	done
	mv "$kh.tmp" "$kh" || die "cannot write $kh"
	mv "$cfg.tmp" "$cfg" || die "cannot write $cfg"
}

# A network namespace on the lab bridge, so that the host can reach the nodes (ssh) although
# the bridge has no address: eth0 in $RN_CLIENT_NS holds $RN_CLIENT_ADDR.
rn_client_up() {
	local i
	for i in "${!N_NAME[@]}"; do
		case " ${N_ADDRS[i]} " in *" ${RN_CLIENT_ADDR%/*}/"*)
			die "ROUTECTL_LAB_CLIENT_ADDR $RN_CLIENT_ADDR is the address of ${N_INST[i]}" ;;
		esac
	done
	ns_drop_stale "$RN_CLIENT_NS"
	ns_mounted "$RN_CLIENT_NS" || ip netns add "$RN_CLIENT_NS" || die "cannot create namespace $RN_CLIENT_NS"
	if ! ip -n "$RN_CLIENT_NS" link show dev eth0 >/dev/null 2>&1 || ! ip link show dev "$RN_CLIENT_PORT" >/dev/null 2>&1; then
		ip link del dev "$RN_CLIENT_PORT" 2>/dev/null || true
		ip -n "$RN_CLIENT_NS" link del dev eth0 2>/dev/null || true
		ip link add "$RN_CLIENT_PORT" type veth peer name eth0 netns "$RN_CLIENT_NS" ||
			die "cannot create the veth pair $RN_CLIENT_PORT/eth0"
	fi
	ip link set dev "$RN_CLIENT_PORT" master "$LAB_BRIDGE" up || die "cannot attach $RN_CLIENT_PORT to $LAB_BRIDGE"
	ip -n "$RN_CLIENT_NS" link set dev lo up || die "cannot configure $RN_CLIENT_NS"
	ip -n "$RN_CLIENT_NS" addr replace "$RN_CLIENT_ADDR" dev eth0 || die "cannot configure $RN_CLIENT_NS"
	ip -n "$RN_CLIENT_NS" link set dev eth0 up || die "cannot configure $RN_CLIENT_NS"
}

rn_client_down() {
	ip link del dev "$RN_CLIENT_PORT" 2>/dev/null || true
	if [ -e "/run/netns/$RN_CLIENT_NS" ]; then
		ip netns del "$RN_CLIENT_NS" 2>/dev/null || rm -f "/run/netns/$RN_CLIENT_NS"
	fi
}

rn_reset_routes() {
	local i out try inst
	lxd_alive || die "the LXD daemon is not running (run up first)"
	for i in "${!N_NAME[@]}"; do
		inst=${N_INST[i]}
		out=$(lxc exec "$inst" -- bash -c "$RN_RESET_DROPINS" sh "${N_IFACE[i]}" </dev/null) ||
			die "$inst: removing routectl's networkd drop-ins failed"
		[ "${out#dropins-removed }" = 0 ] || log "$inst: ${out#dropins-removed } routectl drop-in(s) removed"
		for try in 1 2 3 4 5; do
			out=$(lxc exec "$inst" -- bash -c "$RESET_SH" </dev/null) || die "$inst: reset-routes failed"
			[ -n "$out" ] && break # lxc exec may print nothing at all under load: run it again
			sleep 0.2
		done
		[[ $out == reset-ok* ]] || die "$inst: reset-routes printed '$out' (after $try tries)"
		log "$inst: ${out#reset-ok } route(s) deleted"
	done
}
