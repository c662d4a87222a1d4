# shellcheck shell=bash
# scripts/lab.sh's LXD server setup: the loopback remote, the project, storage, the image and
# the bridge. Sourced by scripts/lab.sh.

# `remote`: the local LXD as an HTTPS remote over loopback (what a remote cluster member looks like
# to lxc), so that `instance = "REMOTE:NAME"` is tested against the real thing.
lxd_remote() {
	[ "$LAB_CLI" = lxc ] && [ -z "$LAB_PROJECT" ] || die "remote is for the default lab"
	lxd_ensure_daemon
	local addr token
	addr=$(lxc config get core.https_address) || die "cannot read core.https_address"
	if [ -z "$addr" ]; then
		log "LXD: listening on $REMOTE_ADDR (core.https_address)"
		lxc config set core.https_address "$REMOTE_ADDR" || die "cannot set core.https_address"
		addr=$REMOTE_ADDR
	fi
	case $addr in
	127.0.0.1:* | "[::1]:"*) ;;
	*) log "note: LXD already listens on $addr (left as it is); the remote uses it" ;;
	esac
	case $addr in :*) addr=127.0.0.1$addr ;; 0.0.0.0:*) addr=127.0.0.1:${addr##*:} ;; esac
	if lxc remote list --format csv 2>/dev/null | grep -q "^$REMOTE_NAME,"; then
		if timeout 20 lxc query "$REMOTE_NAME:/1.0" 2>/dev/null | grep -q '"auth": *"trusted"'; then
			log "remote $REMOTE_NAME ready"
			return 0
		fi
		log "remote $REMOTE_NAME is not trusted any more; adding it again"
		lxc remote remove "$REMOTE_NAME" || die "cannot remove remote $REMOTE_NAME"
	fi
	lxc config trust remove "$REMOTE_NAME" >/dev/null 2>&1 || true
	token=$(lxc config trust add --name "$REMOTE_NAME" --quiet 2>/dev/null) || token=''
	[ -n "$token" ] || token=$(lxc config trust add --name "$REMOTE_NAME" | tail -n1)
	[ -n "$token" ] || die "cannot make a trust token"
	quiet lxc remote add "$REMOTE_NAME" "$token" --accept-certificate ||
		quiet lxc remote add "$REMOTE_NAME" "https://$addr" --token "$token" --accept-certificate ||
		die "cannot add remote $REMOTE_NAME"
	timeout 20 lxc query "$REMOTE_NAME:/1.0" | grep -q '"auth": *"trusted"' || die "remote $REMOTE_NAME is not trusted"
	log "remote $REMOTE_NAME added ($addr)"
}

lxd_ensure_project() {
	[ -n "$LAB_PROJECT" ] || return 0
	local feats
	if ! command "$LAB_CLI" project show "$LAB_PROJECT" >/dev/null 2>&1; then
		log "creating project $LAB_PROJECT (sharing the default project's images and profiles)"
		quiet command "$LAB_CLI" project create "$LAB_PROJECT" -c features.images=false -c features.profiles=false ||
			die "cannot create project $LAB_PROJECT"
	fi
	feats=$(command "$LAB_CLI" project get "$LAB_PROJECT" features.images)/$(command "$LAB_CLI" project get "$LAB_PROJECT" features.profiles)
	[ "$feats" = false/false ] ||
		die "project $LAB_PROJECT has features.images/features.profiles = $feats; the lab needs false/false"
}

lxd_ensure_server() {
	local cur
	cur=$(lxc query /1.0 | py server) || die "cannot read the LXD server configuration"
	if [ "$cur" != "$DEAD_PROXY"$'\t'"$DEAD_PROXY" ]; then
		lxc config set "core.proxy_http=$DEAD_PROXY" "core.proxy_https=$DEAD_PROXY" ||
			die "cannot set core.proxy_http/core.proxy_https"
	fi
	if ! lxc storage show "$POOL" >/dev/null 2>&1; then
		log "creating the dir storage pool $POOL"
		quiet lxc storage create "$POOL" dir || die "cannot create storage pool $POOL"
	fi
	local root
	root=$(lxc query /1.0/profiles/default | py profile-root) || die "cannot read the default profile"
	if [ "${root%%$'\t'*}" = - ]; then
		quiet lxc profile device add default root disk path=/ pool="$POOL" ||
			die "cannot add a root disk to the default profile"
	fi
	local nics
	nics=$(lxc query /1.0/profiles/default | py profile-nics) || die "cannot read the default profile"
	[ -z "$nics" ] || log "warning: the default profile has nic devices ($nics); lab containers get them too"
}

# Builds a rootfs from this host's binaries and their libraries.
build_rootfs_host() { # ROOTFS
	local r=$1 tool path lib libs=() d
	mkdir -p "$r"/usr/bin "$r"/usr/sbin "$r"/usr/lib "$r"/usr/lib64 "$r"/usr/local/sbin "$r"/usr/local/bin \
		"$r"/etc "$r"/dev "$r"/proc "$r"/sys "$r"/run "$r"/tmp "$r"/root "$r"/var/tmp "$r"/var/log || return 1
	ln -s usr/bin "$r/bin" && ln -s usr/sbin "$r/sbin" && ln -s usr/lib "$r/lib" && ln -s usr/lib64 "$r/lib64" || return 1
	chmod 1777 "$r/tmp" "$r/var/tmp" || return 1
	for tool in bash ip ping sleep cat ls mkdir rm cp mv chmod ln echo grep sed sysctl tr \
		env head tail cut sort uniq wc touch readlink stat uname date id true false; do
		path=''
		for d in /usr/sbin /usr/bin /sbin /bin; do
			if [ -x "$d/$tool" ] && [ ! -d "$d/$tool" ]; then
				path=$d/$tool
				break
			fi
		done
		if [ -z "$path" ]; then
			log "image: $tool not found on this host"
			return 1
		fi
		cp -L "$path" "$r/usr/bin/$tool" || return 1
		while read -r lib; do
			[ -n "$lib" ] && libs+=("$lib")
		done < <(ldd "$path" 2>/dev/null | sed -n -e 's/^.*=> \(\/[^ ]*\) .*$/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p')
		if ldd "$path" 2>/dev/null | grep -q 'not found'; then
			log "image: a library of $path is missing"
			return 1
		fi
	done
	ln -sf bash "$r/usr/bin/sh"
	for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
		mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib" || return 1
	done
	chmod 4755 "$r/usr/bin/ping" || return 1 # file capabilities do not survive the tarball
	if [ -d /etc/iproute2 ]; then
		cp -a /etc/iproute2 "$r/etc/" || return 1
	fi
	if [ -d /usr/share/iproute2 ]; then
		mkdir -p "$r/usr/share" && cp -a /usr/share/iproute2 "$r/usr/share/" || return 1
	fi
	printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd" &&
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group" &&
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts" || return 1
	# The binaries must run on their own in there.
	chroot "$r" /bin/bash -c 'ip -V && ping -V && grep --version && sed --version' >/dev/null 2>&1 || {
		log "image: the assembled rootfs does not run (chroot test failed)"
		return 1
	}
}

debian_mirror() { # the Debian archive of this machine's apt sources (a URI ending in /debian)
	local m
	m=$({
		grep -hsE '^deb +(\[[^]]*\] +)?[a-z+]+://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
		grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs://' | tr ' ' '\n'
	} | grep -E '^[a-z+]+://[^ ]*/debian/?$' | head -n1 || true)
	[ -n "$m" ] || return 1
	printf '%s\n' "$m"
}

build_rootfs_debootstrap() { # ROOTFS
	local r=$1 mirror
	mirror=$(debian_mirror) || {
		log "image: no Debian mirror in /etc/apt/sources.list(.d)"
		return 1
	}
	ensure_packages debootstrap
	log "image: debootstrap bookworm from $mirror (takes a minute)"
	debootstrap --variant=minbase --include=iproute2,iputils-ping bookworm "$r" "$mirror" >&2 || return 1
	mkdir -p "$r/usr/local/sbin" || return 1
	chmod 4755 "$r/usr/bin/ping" || return 1
}

lxd_ensure_image() {
	if lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		return 0
	fi
	local t0=$EPOCHREALTIME work src=${ROUTECTL_LAB_IMAGE_SOURCE:-host} how
	mkdir -p "$STATE_DIR"
	rm -rf "$STATE_DIR"/image.* # left by an interrupted build
	work=$(mktemp -d "$STATE_DIR/image.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	how=''
	if [ "$LAB_CLI" = incus ] && type -P lxc >/dev/null && timeout 10 lxc query /1.0 >/dev/null 2>&1 &&
		command lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		# The LXD lab's image, as it is (an LXD export imports into Incus unchanged).
		local f
		if quiet command lxc image export "$IMAGE_ALIAS" "$work/export" && f=$(ls "$work"/export*.tar.gz 2>/dev/null | head -n1) &&
			[ -n "$f" ] && quiet incus image import -q "$f" --alias "$IMAGE_ALIAS"; then
			rm -rf "$work"
			trap - EXIT
			log "image $IMAGE_ALIAS imported from LXD in $(elapsed "$t0") s"
			return 0
		fi
		log "image: importing LXD's $IMAGE_ALIAS failed; building it"
	fi
	if [ "$src" = host ]; then
		if build_rootfs_host "$work/rootfs"; then
			how='host binaries'
		else
			log "image: building from host binaries failed; falling back to debootstrap"
			rm -rf "$work/rootfs"
		fi
	fi
	if [ -z "$how" ]; then
		build_rootfs_debootstrap "$work/rootfs" || die "cannot build a rootfs for the image"
		how='debootstrap'
	fi
	printf '%s\n' "$APPLY_SH" >"$work/rootfs$NODE_APPLY"
	printf '%s\n' "$INIT_SH" >"$work/rootfs$NODE_INIT"
	chmod 0755 "$work/rootfs$NODE_APPLY" "$work/rootfs$NODE_INIT"
	cat >"$work/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: routectl lab node ($how)
  os: routectl-lab
  release: "1"
EOF
	tar --numeric-owner --owner=0 --group=0 -C "$work" -czf "$work/image.tar.gz" metadata.yaml rootfs ||
		die "cannot pack the image"
	quiet lxc image import -q "$work/image.tar.gz" --alias "$IMAGE_ALIAS" || {
		# An interrupted earlier import may have left the same image without its alias.
		local fp
		fp=$(sha256sum "$work/image.tar.gz" | cut -d' ' -f1)
		if ! lxc image info "$fp" >/dev/null 2>&1 || ! lxc image alias create "$IMAGE_ALIAS" "$fp"; then
			die "cannot import the image $IMAGE_ALIAS"
		fi
	}
	rm -rf "$work"
	trap - EXIT
	log "image $IMAGE_ALIAS built from $how in $(elapsed "$t0") s"
}

lxd_ensure_bridge() {
	if ! ip link show dev "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip link add "$LAB_BRIDGE" type bridge mcast_snooping 0 || die "cannot create bridge $LAB_BRIDGE"
	fi
	ip -d -o link show dev "$LAB_BRIDGE" | grep -q ' bridge ' || die "$LAB_BRIDGE exists and is not a bridge"
	# No address on the host side, not even a link-local one.
	if [ -e "/proc/sys/net/ipv6/conf/$LAB_BRIDGE/disable_ipv6" ]; then
		printf '1\n' >"/proc/sys/net/ipv6/conf/$LAB_BRIDGE/disable_ipv6" || die "cannot disable IPv6 on $LAB_BRIDGE"
	fi
	if [ -n "$(ip -o addr show dev "$LAB_BRIDGE")" ]; then
		ip addr flush dev "$LAB_BRIDGE" || die "cannot remove the addresses of $LAB_BRIDGE"
	fi
	ip link set dev "$LAB_BRIDGE" up || die "cannot bring $LAB_BRIDGE up"
}

lxd_setup() { # everything but the containers
	need_root
	mkdir -p "$STATE_DIR"
	lxd_ensure_installed
	lxd_ensure_daemon
	lxd_ensure_project
	lxd_ensure_server
	if [ "$BACKEND" = realnode ]; then
		rn_ensure_ssh_key
		rn_ensure_image
	else
		lxd_ensure_image
	fi
}
