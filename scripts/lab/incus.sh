# shellcheck shell=bash
# shellcheck disable=SC2034 # names set here are read by the other parts of scripts/lab.sh
# scripts/lab.sh's --lab incus: Incus installed and its daemon started. Sourced by scripts/lab.sh.

# --lab incus: Incus from bookworm-backports beside LXD, its daemon started by hand (no systemd).
incus_ensure_installed() {
	if type -P incus >/dev/null && [ -x "$INCUSD" ] && type -P ping >/dev/null; then
		return 0
	fi
	if ! grep -hqsE '^(Suites:.*|deb .*)bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
		local mirror
		mirror=$(debian_mirror) || die "no Debian mirror in /etc/apt/sources.list(.d) to take bookworm-backports from"
		log "adding the bookworm-backports source ($mirror)"
		printf '%s\n' "# Added by routectl's scripts/lab.sh --lab incus: Incus 6.0 from bookworm-backports." \
			"Types: deb" "URIs: ${mirror%/}" "Suites: bookworm-backports" "Components: main" \
			"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >/etc/apt/sources.list.d/routectl-bookworm-backports.sources ||
			die "cannot add the bookworm-backports source"
		APT_UPDATED=0
	fi
	export DEBIAN_FRONTEND=noninteractive
	log "apt-get update"
	quiet apt-get update -qq -o DPkg::Lock::Timeout=300 || die "apt-get update failed"
	APT_UPDATED=1
	log "installing incus (bookworm-backports) and iputils-ping"
	quiet apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends -t bookworm-backports incus iputils-ping ||
		die "apt-get install incus failed"
	[ -x "$INCUSD" ] && type -P incus >/dev/null || die "incus/incusd not found after installation"
}

# Live incusd daemons (not zombies, not fork* helpers, not the cluster lab's members, whose
# argv[0] is "incusd routectl-lab-cluster-incus mN").
incus_pids() {
	local p st arg0 arg1
	for p in $(pgrep -x incusd || true); do
		st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$p/stat" 2>/dev/null || true)
		[ -n "$st" ] && [ "$st" != Z ] || continue
		{ IFS= read -r -d '' arg0 && IFS= read -r -d '' arg1; } <"/proc/$p/cmdline" 2>/dev/null || arg1=''
		[ "${arg0##*/}" = incusd ] || continue
		case $arg1 in fork* | callhook | activateifneeded | waitready) continue ;; esac
		printf '%s\n' "$p"
	done
	return 0
}

incus_ensure_daemon() {
	local pids p
	pids=$(incus_pids | tr '\n' ' ')
	pids=${pids% }
	if [ -n "$pids" ]; then
		log "an incusd exists (pid $pids) but does not answer; waiting for it"
		if timeout 70 incus admin waitready --timeout=60 >/dev/null 2>&1 && lxd_alive; then
			return 0
		fi
		die "incusd (pid $pids) does not answer; stop it and run again"
	fi
	for p in "$INCUS_DIR/unix.socket" "$STATE_DIR/incusd.pid"; do
		if [ -e "$p" ]; then
			log "removing stale $p"
			rm -f "$p" || die "cannot remove $p"
		fi
	done
	getent group incus-admin >/dev/null || die "group incus-admin is missing (is the incus package installed?)"
	log "starting incusd (log $INCUS_LOG)"
	(
		export http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY HTTP_PROXY=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY
		unset no_proxy NO_PROXY
		ulimit -n 65536 2>/dev/null || true
		cd /
		exec 9>&-
		exec setsid nohup "$INCUSD" --group incus-admin --logfile "$INCUS_LOG" </dev/null >>"$INCUS_LOG.out" 2>&1
	) &
	local pid=$!
	if ! timeout 70 incus admin waitready --timeout=60 >/dev/null 2>&1; then
		tail -n 20 "$INCUS_LOG" >&2 || true
		die "incusd (pid $pid) did not become ready within 60 s; see $INCUS_LOG"
	fi
	echo "$pid" >"$STATE_DIR/incusd.pid"
}
