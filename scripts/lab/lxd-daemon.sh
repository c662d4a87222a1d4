# shellcheck shell=bash
# scripts/lab.sh's LXD daemon: the lab's client (`lxc`), LXD installed and its daemon started.
# Sourced by scripts/lab.sh.

# --lxd backend

LXD_DIR=${LXD_DIR:-$LXD_DIR_DEFAULT}

# Every `lxc` below is the lab's client: lxc, or incus for the Incus lab, with --project for the
# project lab (`lxc query` refuses --project; the lab queries only project-less URLs).
lxc() {
	if [ -n "$LAB_PROJECT" ] && [ "$1" != query ]; then
		command "$LAB_CLI" --project "$LAB_PROJECT" "$@"
	else
		command "$LAB_CLI" "$@"
	fi
}

lxd_alive() { timeout 10 "$LAB_CLI" query /1.0 >/dev/null 2>&1; }

lxd_ensure_installed() {
	if [ "$LAB_CLI" = incus ]; then
		incus_ensure_installed
		return
	fi
	if ! command -v lxd >/dev/null || ! command -v lxc >/dev/null || ! type -P ping >/dev/null; then
		ensure_packages lxd iputils-ping
	fi
	if ! command -v lxd >/dev/null || ! command -v lxc >/dev/null; then
		die "lxd/lxc not found after installation"
	fi
}

lxd_pids() { # live lxd daemon processes (not zombies, not the [lxc monitor] or fork* helpers)
	local p st arg0 arg1
	for p in $(pgrep -x lxd || true); do
		st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$p/stat" 2>/dev/null || true)
		if [ -z "$st" ] || [ "$st" = Z ]; then
			continue
		fi
		{ IFS= read -r -d '' arg0 && IFS= read -r -d '' arg1; } <"/proc/$p/cmdline" 2>/dev/null || arg1=''
		[ "${arg0##*/}" = lxd ] || continue
		case $arg1 in fork* | callhook | activateifneeded | waitready) continue ;; esac
		printf '%s\n' "$p"
	done
	return 0
}

lxd_ensure_daemon() {
	lxd_alive && return 0
	if [ "$LAB_CLI" = incus ]; then
		incus_ensure_daemon
		return
	fi
	local pids p
	pids=$(lxd_pids | tr '\n' ' ')
	pids=${pids% }
	if [ -n "$pids" ]; then
		log "an lxd daemon exists (pid $pids) but does not answer; waiting for it"
		if lxd waitready --timeout=60 >/dev/null 2>&1 && lxd_alive; then
			return 0
		fi
		die "the lxd daemon (pid $pids) does not answer; stop it and run again"
	fi
	# The daemon died: drop what it left behind.
	for p in "$LXD_DIR/unix.socket" /run/lxd.pid "$STATE_DIR/lxd.pid"; do
		if [ -e "$p" ]; then
			log "removing stale $p"
			rm -f "$p" || die "cannot remove $p"
		fi
	done
	log "starting the LXD daemon (log $LXD_LOG)"
	getent group lxd >/dev/null || die "group lxd is missing (is the lxd package installed?)"
	(
		export http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY HTTP_PROXY=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY
		unset no_proxy NO_PROXY
		ulimit -n 65536 2>/dev/null || true
		cd /
		exec 9>&-
		exec setsid nohup lxd --group lxd --logfile "$LXD_LOG" </dev/null >>"$LXD_LOG.out" 2>&1
	) &
	local pid=$!
	if ! lxd waitready --timeout=60 >/dev/null 2>&1; then
		tail -n 20 "$LXD_LOG" >&2 || true
		die "the LXD daemon (pid $pid) did not become ready within 60 s; see $LXD_LOG"
	fi
	echo "$pid" >"$STATE_DIR/lxd.pid"
}
