#!/usr/bin/env bash
# Runs the whole test suite, from a fresh Debian 12 machine with Rust, as root:
#   1. installs what the tests need (iproute2, ping, flock, python3, openssh-server and
#      openssh-client; LXD, debootstrap, and Incus from bookworm-backports, via scripts/lab.sh),
#   2. brings the labs up (each idempotent: starting daemons and stopped containers, repairing
#      a half-built lab) and removes every non-kernel route from them:
#        - the LXD lab of topology.example.toml (bridge rtlab0),
#        - the real-node lab of tests/labs/realnode.toml (Debian 12 containers with systemd,
#          networkd and netplan; built once with debootstrap from the machine's Debian mirror,
#          about a minute, then cached; bridge rtlab1),
#        - the network-manager lab of tests/labs/managers.toml (the same with NetworkManager
#          and ifupdown: one node each for NetworkManager, netplan over NetworkManager and
#          ifupdown; its own debootstrap, cached; bridge rtlab5),
#        - the Incus lab (tests/labs/incus.toml, bridge rtlab3),
#        - the LXD project lab (tests/labs/project.toml, project routectl-lab-proj, rtlab4),
#        - the loopback LXD remote routectl-lab-loop,
#        - the SSH lab (scripts/lab-ssh.sh: sshd in namespaces on rtlab2),
#        - the cluster lab (scripts/lab-cluster.sh: a three-member LXD cluster on this machine,
#          each member in its own network namespace, tests/labs/cluster.toml, rtlab6/rtlab7),
#        - the Incus cluster lab (scripts/lab-cluster.sh --incus: the same with three incusd
#          and INCUS_DIR, tests/labs/cluster-incus.toml, rtlab8/rtlab9),
#   3. runs every test: unit tests, folder cases, black-box tests of the binary, end-to-end
#      tests on network namespaces, the real LXD, real-node and Incus labs and real sshd (those
#      that need root or a lab are `#[ignore = "needs root: …"]` for a plain `cargo test`, and are
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
for pair in ip:iproute2 ping:iputils-ping flock:util-linux python3:python3 pgrep:procps mount:mount \
	ssh:openssh-client /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client; do
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

say "bringing up the network-manager lab (NetworkManager, netplan over NetworkManager, ifupdown)"
scripts/lab.sh up --realnode --lab managers
scripts/lab.sh reset-routes --realnode --lab managers

say "bringing up the Incus lab (installs Incus from bookworm-backports when missing)"
scripts/lab.sh up --lab incus
scripts/lab.sh reset-routes --lab incus

say "bringing up the LXD project lab and the loopback remote"
scripts/lab.sh up --lab project
scripts/lab.sh reset-routes --lab project
scripts/lab.sh remote

say "bringing up the SSH lab"
scripts/lab-ssh.sh up
scripts/lab-ssh.sh reset-routes

say "bringing up the cluster lab (three LXD daemons forming one cluster)"
scripts/lab-cluster.sh up
scripts/lab-cluster.sh reset-routes

say "bringing up the Incus cluster lab (three incusd daemons forming one cluster)"
scripts/lab-cluster.sh --incus up
scripts/lab-cluster.sh --incus reset-routes

say "running every test (including the LXD, real-node, Incus and SSH lab tests)"
cargo test --locked -- --include-ignored "$@"
