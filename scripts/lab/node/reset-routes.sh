# shellcheck shell=bash
# Run in a lab node (`bash -c`, as root): deletes every route of table main whose protocol is
# not kernel (2), both families; prints "reset-ok N" (N = routes deleted) when nothing but
# kernel routes is left.
set -euo pipefail
deleted=0 left=0
for fam in -4 -6; do
	declare -A protos=()
	out=$(ip -N -d "$fam" -o route show table main)
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		if [[ $line =~ \ proto\ ([0-9]+)( |$) ]]; then
			p=${BASH_REMATCH[1]}
		else
			p=unknown
		fi
		if [ "$p" != 2 ]; then
			protos[$p]=1
			deleted=$((deleted + 1))
		fi
	done <<<"$out"
	if [ -n "${protos[unknown]:-}" ]; then
		echo "cannot tell the protocol of a route: $out" >&2
		exit 1
	fi
	for p in "${!protos[@]}"; do
		ip "$fam" route flush table main proto "$p"
	done
	unset protos
	out=$(ip -N -d "$fam" -o route show table main)
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		if ! [[ $line =~ \ proto\ 2( |$) ]]; then
			echo "route left: $line" >&2
			left=1
		fi
	done <<<"$out"
done
[ "$left" = 0 ] || exit 1
echo "reset-ok $deleted"
