#!/usr/bin/env bash
# The main job, end to end: build routectl, bring up a lab of topology.example.toml (network
# namespaces by default, real LXD containers with --lxd), start from nodes with no routes, and
# run plan -> apply -> plan (in sync), then prove pod-to-pod reachability.
# Usage: scripts/demo.sh [--lxd] [--keep]   (--keep leaves the netns lab up afterwards)
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

backend=--netns
keep=0
for arg in "$@"; do
	case $arg in
	--lxd) backend=--lxd ;;
	--netns) backend=--netns ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown argument '$arg' (see --help)" >&2
		exit 2
		;;
	esac
done
[ "$(id -u)" = 0 ] || {
	echo "demo: run as root (the lab needs network namespaces or LXD)" >&2
	exit 1
}

topology=topology.example.toml
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
}

step "building routectl"
cargo build --release --locked --quiet
routectl=target/release/routectl

if [ "$backend" = --netns ]; then
	transport=(--transport netns)
	if [ "$keep" = 0 ]; then
		trap 'scripts/lab.sh down --netns "$topology" >/dev/null 2>&1 || true' EXIT
	fi
else
	transport=()
fi

step "bringing up the lab (${backend#--}) from $topology, with no routes but the kernel's"
scripts/lab.sh up "$backend" "$topology"
scripts/lab.sh reset-routes "$backend" "$topology"

export ROUTECTL_TOPOLOGY=$topology
step "plan: what would change (exit 3 = changes pending)"
set +e
run "$routectl" "${transport[@]}" plan --detailed-exitcode
code=$?
set -e
echo "(exit $code)"
[ "$code" = 3 ] || {
	echo "demo: expected pending changes (exit 3), got $code" >&2
	exit 1
}

step "apply: run only the needed changes, then read back and verify"
run "$routectl" "${transport[@]}" apply --auto-approve

step "plan again: in sync (exit 0)"
run "$routectl" "${transport[@]}" plan --detailed-exitcode

step "apply again: nothing to do"
run "$routectl" "${transport[@]}" apply --auto-approve

step "check: every pod gateway reaches every other"
run "$routectl" "${transport[@]}" check

step "done"
