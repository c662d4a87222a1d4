#!/usr/bin/env bash
# Runs the whole test suite, from a fresh Debian 12 machine with Rust, as root:
#   1. installs what the tests need (iproute2, ping, flock, python3; LXD via scripts/lab.sh),
#   2. brings the LXD lab of topology.example.toml up (starting the daemon and any stopped
#      container, repairing a half-built lab) and removes every non-kernel route from it, and
#      the real-node lab of tests/labs/realnode.toml likewise (Debian 12 containers with
#      systemd, networkd and netplan; built once with debootstrap from the machine's Debian
#      mirror, about a minute, then cached),
#   3. runs every test: unit tests, folder cases, black-box tests of the binary, end-to-end
#      tests on network namespaces, on the real LXD lab and on the real-node lab (those that
#      need root or a lab are `#[ignore = "needs root: …"]` for a plain `cargo test`, and are
#      included here; a missing lab makes them fail, never skip).
# Extra arguments go to the test binaries (e.g. scripts/test.sh drift, scripts/test.sh
# scenarios::lxd::).
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

say() { printf 'test: %s\n' "$*" >&2; }
die() {
	printf 'test: error: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: the tests create network namespaces and LXD containers"
command -v cargo >/dev/null || die "cargo is not on PATH: install Rust first"

# Debian packages the tests use directly (LXD itself is installed by scripts/lab.sh).
missing=()
for pair in ip:iproute2 ping:iputils-ping flock:util-linux python3:python3 pgrep:procps mount:mount; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "building"
cargo build --locked --all-targets

say "bringing up the LXD lab"
scripts/lab.sh up --lxd topology.example.toml
scripts/lab.sh reset-routes --lxd topology.example.toml

say "bringing up the real-node lab (systemd-networkd, netplan; installs debootstrap if needed)"
scripts/lab.sh up --realnode tests/labs/realnode.toml
scripts/lab.sh reset-routes --realnode tests/labs/realnode.toml

say "running every test (including the LXD and real-node lab tests)"
cargo test --locked -- --include-ignored "$@"
