# shellcheck shell=bash
# shellcheck disable=SC2034 # names set here are read by the other parts of scripts/lab.sh
# scripts/lab.sh's shared helpers: the programs that run inside a node, the Python helper,
# packages, the topology as arrays, node checks. Sourced by scripts/lab.sh after its names.

# Files that run inside a node (scripts/lab/node/). The same apply script configures a container
# (run by its init) and a namespace (run through `ip netns exec`); it only needs bash and ip.
# The init and apply scripts are part of each node's digest (node_hash): their text is kept as is.
APPLY_SH=$(<"$SCRIPT_DIR/lab/node/apply.sh")
readonly APPLY_SH
INIT_SH=$(<"$SCRIPT_DIR/lab/node/init.sh")
readonly INIT_SH
RESET_SH=$(<"$SCRIPT_DIR/lab/node/reset-routes.sh")
readonly RESET_SH

# Python (tomllib, json): topology parsing and checks of JSON that LXD and ip print.
PY_HELPER=$(<"$SCRIPT_DIR/lab/helper.py")
PY_HELPER=${PY_HELPER//HUB_NS/$HUB_NS}
PY_HELPER=${PY_HELPER//\"HASH_KEY\"/\"$HASH_KEY\"}
PY_HELPER=${PY_HELPER//\"FILES_KEY\"/\"$FILES_KEY\"}

# ---------------------------------------------------------------------------------------------
# Common helpers

PY=''
find_python() {
	if [ -x /usr/bin/python3 ]; then
		PY=/usr/bin/python3
	elif command -v python3 >/dev/null 2>&1; then
		PY=$(command -v python3)
	else
		ensure_packages python3
		[ -x /usr/bin/python3 ] || die "python3 (3.11 or later, for tomllib) is required"
		PY=/usr/bin/python3
	fi
}

py() { "$PY" -c "${PY_HELPER//\"MARK_KEY\"/\"$MARK_KEY\"}" "$@"; }

elapsed() { # START -> seconds since START (milliseconds shown)
	local now=${EPOCHREALTIME//[.,]/} start=${1//[.,]/}
	local ms=$(((now - start) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

APT_UPDATED=0
apt_install() { # PACKAGE...
	export DEBIAN_FRONTEND=noninteractive
	if [ "$APT_UPDATED" = 0 ]; then
		log "apt-get update"
		quiet apt-get update -qq || die "apt-get update failed"
		APT_UPDATED=1
	fi
	log "installing: $*"
	quiet apt-get install -y -qq --no-install-recommends "$@" || die "apt-get install $* failed"
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() { # PACKAGE...
	local p missing=()
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"
}

# quiet CMD...: runs CMD with its output held back; shows it only when CMD fails.
quiet() {
	local out rc=0
	out=$("$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" = 0 ] || printf '%s\n' "$out" >&2
	return "$rc"
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# Topology, one entry per node in the arrays below.
N_NAME=() N_INST=() N_IFACE=() N_ADDRS=() N_PODGW=() N_PORT=() N_MAC=()
load_topology() { # FILE BACKEND; returns 1 (after a message) when the file is unusable
	local file=$1 out name inst iface addrs gws port mac
	if [ ! -f "$file" ]; then
		log "error: topology file $file not found"
		return 1
	fi
	out=$(py topology "$file" "$2") || return 1
	while IFS=$'\t' read -r name inst iface addrs gws port mac; do
		N_NAME+=("$name") N_INST+=("$inst") N_IFACE+=("$iface")
		N_ADDRS+=("$addrs") N_PODGW+=("$gws") N_PORT+=("$port") N_MAC+=("$mac")
	done <<<"$out"
}

node_conf() { # INDEX -> configuration file text
	local i=$1
	printf '# routectl lab node %s\nname=%s\niface=%s\nmac=%s\naddrs=%s\npod_gws=%s\n' \
		"${N_NAME[i]}" "${N_NAME[i]}" "${N_IFACE[i]}" "${N_MAC[i]}" "${N_ADDRS[i]//-/}" "${N_PODGW[i]//-/}"
}

declared() { # INSTANCE -> true if a node of the topology uses it
	local x
	for x in "${N_INST[@]}"; do [ "$x" = "$1" ] && return 0; done
	return 1
}

# check_nodes PROBE INDEX...: runs "PROBE INDEX" for each node (it prints the node's `ip -j addr`
# and sysctls, or "!problem") and prints "INDEX<tab>ok|problems" per node; status 0 if all are ok.
check_nodes() {
	local probe=$1 i input=''
	shift
	for i in "$@"; do
		input+="@@node"$'\t'"$i"$'\t'"${N_IFACE[i]}"$'\t'"${N_ADDRS[i]}"$'\t'"${N_PODGW[i]}"$'\t'"${N_MAC[i]}"$'\t'"${N_NETFILE[i]:--}"$'\n'
		input+="$("$probe" "$i")"$'\n'
	done
	py nodechecks <<<"$input"
}

readonly SYSCTLS='/proc/sys/net/ipv4/conf/all/forwarding /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/conf/default/rp_filter'
readonly CHECK_CMD="ip -j addr; grep -H '' $SYSCTLS"

summary() {
	local i
	for i in "${!N_NAME[@]}"; do
		printf '  %-16s %-6s %-34s cnio0 %s%s\n' "${N_INST[i]}" "${N_IFACE[i]}" "${N_ADDRS[i]}" \
			"$([ "${N_PODGW[i]}" = - ] && echo '(none)' || echo "${N_PODGW[i]}")" \
			"$([ "$BACKEND" != realnode ] || echo "  $(rn_manager "$i"): ${N_NETFILE[i]}")"
	done
}

