#!/usr/bin/env bash
# The tests a contributor runs (`cargo test`, no root, no lab), run as an unprivileged user:
# every test not marked `#[ignore = "needs root: …"]` must pass without root.
#
# The Rust toolchain may not be reachable by another user (it lives under root's home), so the
# tests are built as root and run as uid/gid 65534 (nobody):
#   1. the checkout (tracked and untracked files, not ignored ones) is copied into a fresh
#      temporary directory that every user can read, and the tests are built there with a target
#      directory of their own (the test binaries carry the paths of the repository and of the
#      routectl binary they run, fixed when they are built);
#   2. the copy is handed to the unprivileged user, as a contributor owns their checkout;
#   3. each test executable `cargo test` would run (the library's unit tests, the binary's, the
#      `it` crate) runs as that user from the package directory, with the arguments given
#      (none: ignored tests stay ignored). Doc-tests need rustdoc and stay with the root suite.
# Run as root. Extra arguments go to every test executable (e.g. a filter).
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

say() { printf 'test-unprivileged: %s\n' "$*" >&2; }
die() {
	printf 'test-unprivileged: error: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: it builds as root and runs the tests as uid 65534"
command -v setpriv >/dev/null || die "setpriv (util-linux) is missing"
uid=65534
started=$(date +%s)

work=$(mktemp -d /tmp/routectl-unprivileged.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
chmod 0755 "$work"
mkdir "$work/src" "$work/tmp"

say "copying the checkout to $work/src"
git ls-files -z --cached --others --exclude-standard |
	tar --null --files-from=- --ignore-failed-read -cf - |
	tar -xf - -C "$work/src"

say "building the tests there (as root)"
list="$work/executables"
(cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo test --no-run --locked \
	--message-format=json-render-diagnostics) |
	python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg["profile"]["test"] and msg.get("executable"):
        print(msg["executable"])
' >"$list"
[ -s "$list" ] || die "cargo test --no-run listed no test executable"
built=$(date +%s)

chown -R "$uid:$uid" "$work"
as_user() { setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
# The user's PATH: root's, less the directories the user cannot search (root's toolchain), as a
# contributor's PATH holds none of those.
path=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	if [ -n "$d" ] && as_user test -x "$d"; then path="${path:+$path:}$d"; fi
done
failed=0
while IFS= read -r exe; do
	say "running ${exe#"$work/"} as uid $uid"
	if ! (cd "$work/src" && as_user env -i PATH="$path" HOME="$work/tmp" TMPDIR="$work/tmp" "$exe" "$@"); then
		failed=1
	fi
done <"$list"

finished=$(date +%s)
say "built in $((built - started)) s, ran in $((finished - built)) s"
[ "$failed" = 0 ] || die "a test failed without root (a test that needs root must be #[ignore = \"needs root: …\"])"
