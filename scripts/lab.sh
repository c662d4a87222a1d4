#!/usr/bin/env bash
# Test lab for routectl: the nodes of a topology file as LXD containers (--lxd, the default),
# as network namespaces (--netns), or as LXD containers that boot Debian with systemd and
# systemd-networkd/netplan like real nodes (--realnode), all on a private L2 segment that has
# no uplink.
#
# Usage: scripts/lab.sh COMMAND [--lxd|--netns|--realnode] [TOPOLOGY]
# Run scripts/lab.sh --help for the details.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

LAB_CLI=lxc                                       # --lxd: the client (lxc, or incus for --lab incus)
LAB_PROJECT=''                                    # --lxd: the LXD project (--lab project), empty: default
LAB_NAME=default                                  # which lab (--lab NAME)
# The three names below are those of --lxd and --netns; --realnode has its own (select_lab), so
# that both labs live side by side on one LXD daemon and neither ever touches the other's nodes.
LAB_BRIDGE=rtlab0                                 # the shared L2 segment (host bridge / hub bridge)
IMAGE_ALIAS=routectl-lab                          # --lxd: image the nodes are created from
MARK_KEY=user.routectl-lab                        # --lxd: "true" on every lab container
readonly HUB_NS=routectl-lab-hub                  # --netns: namespace holding the shared bridge
readonly HASH_KEY=user.routectl-lab.hash          # --lxd: digest of the files pushed last
readonly FILES_KEY=user.routectl-lab.files        # --realnode: the files the lab pushed last
readonly NETNS_MARK=routectl-lab                  # --netns: alias of `lo` in every lab namespace
readonly NODE_CONF=/etc/routectl-lab.conf         # node configuration (inside a container)
readonly NODE_APPLY=/usr/local/sbin/routectl-lab-apply
readonly NODE_INIT=/usr/sbin/init                 # /sbin/init (/sbin -> usr/sbin)
readonly NODE_LOG=/run/routectl-lab.log
readonly STATE_DIR=/var/lib/routectl-lab
readonly LXD_LOG=/var/log/lxd-lab.log
readonly INCUS_LOG=/var/log/incus-lab.log
readonly INCUSD=/usr/libexec/incus/incusd
readonly INCUS_DIR=/var/lib/incus
readonly PROJECT_NAME=routectl-lab-proj           # --lab project
readonly REMOTE_NAME=routectl-lab-loop            # `remote`: a loopback HTTPS remote of the local LXD
readonly REMOTE_ADDR=127.0.0.1:8443
readonly LXD_DIR_DEFAULT=/var/lib/lxd
readonly DEAD_PROXY=http://127.0.0.1:9            # closed port: the daemon must not reach out
readonly POOL=default
readonly READY_TIMEOUT=${ROUTECTL_LAB_READY_TIMEOUT:-60}

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPO_ROOT=${SCRIPT_DIR%/*}
T_START=$EPOCHREALTIME

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
	printf 'lab: error: %s\n' "$*" >&2
	exit 1
}

# The lab's parts, in this order (each file's top level uses the names above and before it).
# shellcheck source=lab/common.sh
source "$SCRIPT_DIR/lab/common.sh"
# shellcheck source=lab/netns.sh
source "$SCRIPT_DIR/lab/netns.sh"
# shellcheck source=lab/lxd-daemon.sh
source "$SCRIPT_DIR/lab/lxd-daemon.sh"
# shellcheck source=lab/incus.sh
source "$SCRIPT_DIR/lab/incus.sh"
# shellcheck source=lab/lxd-server.sh
source "$SCRIPT_DIR/lab/lxd-server.sh"
# shellcheck source=lab/lxd.sh
source "$SCRIPT_DIR/lab/lxd.sh"
# shellcheck source=lab/realnode.sh
source "$SCRIPT_DIR/lab/realnode.sh"

usage() {
	cat <<EOF
Usage: scripts/lab.sh COMMAND [--lxd|--netns|--realnode] [--lab NAME] [TOPOLOGY]

Builds the nodes of a routectl topology as a test lab: each node gets its node interface
(cluster.interface or the node's own 'interface', default eth1) on one shared L2 segment
with its internal IP(s) (/24, /64), an empty bridge cnio0 holding the first address of its
pod CIDR(s), forwarding on and rp_filter off, and no routes but the kernel's.

Commands:
  up            create or repair the lab so that it matches TOPOLOGY exactly (idempotent)
  down          remove the lab (containers or namespaces, and the bridge); keeps LXD and its image
  status        show what exists; exit 0 if the lab is fully up, 1 otherwise
  install       (--lxd, --realnode) install packages, start the daemon, create the storage pool
                and the image
  reset-routes  delete every route of table main (IPv4 and IPv6) whose protocol is not 'kernel'
                (--realnode: first removes routectl's networkd drop-ins, */50-routectl.conf,
                its NetworkManager dispatcher script and its ifupdown hook)
  remote        (--lxd) make the local LXD reachable as the loopback remote '$REMOTE_NAME'
                (HTTPS on $REMOTE_ADDR, a trust token), for topologies naming "$REMOTE_NAME:NODE"

Backends:
  --lxd         (default) one LXD container per node, image '$IMAGE_ALIAS', host bridge
                '$LAB_BRIDGE', containers marked with $MARK_KEY=true
  --netns       one network namespace per node, the bridge '$LAB_BRIDGE' lives in namespace
                '$HUB_NS'; lab namespaces carry the alias '$NETNS_MARK' on lo
  --realnode    one LXD container per node that boots like a real node: Debian $RN_SUITE
                from debootstrap (image 'routectl-lab-systemd'), systemd as PID 1,
                systemd-networkd configuring the node interface, sshd; host bridge 'rtlab1',
                containers marked with user.routectl-lab-realnode=true. It coexists with the
                --lxd lab on the same daemon (different names everywhere).

Labs besides the default one (each has its own bridge and topology):
  --lab incus   the nodes as Incus containers (Incus 6.0 from bookworm-backports, installed
                next to LXD; its own daemon incusd), bridge rtlab3, tests/labs/incus.toml
                (topology.example.toml's nodes and addresses, transport incus)
  --lab project the nodes in the LXD project '$PROJECT_NAME' (features.images=false,
                features.profiles=false; the same instance names as the default lab),
                bridge rtlab4, tests/labs/project.toml
  --realnode --lab managers
                real nodes (image 'routectl-lab-managers': the --realnode system plus
                network-manager and ifupdown) whose node interface NetworkManager (a keyfile),
                netplan with the NetworkManager renderer or ifupdown (/etc/network/interfaces)
                configures, as lines "# lab-manager: INSTANCE MANAGER" in the topology say
                (networkmanager, netplan-nm, ifupdown); cnio0 is networkd's; bridge rtlab5,
                tests/labs/managers.toml, containers marked user.routectl-lab-managers=true;
                no sshd client namespace
  --lab soak    the nodes of scripts/soak.sh's long run in the LXD project routectl-soak,
                bridge rtsoak0, tests/labs/soak.toml

TOPOLOGY defaults to $REPO_ROOT/topology.example.toml ($REPO_ROOT/tests/labs/realnode.toml
for --realnode, the --lab's file for --lab); a relative path is taken from the current directory.

Real nodes (--realnode):
  The node interface (eth1) is configured by systemd-networkd, through
    /etc/systemd/network/10-eth1.network                      on most nodes, or
    $RN_NETPLAN_FILE (renderer networkd), from which
    netplan generates /run/systemd/network/10-netplan-eth1.network, on the nodes named in
    ROUTECTL_LAB_NETPLAN (default: the last node of the topology).
  cnio0 is an empty bridge from /etc/systemd/network/20-cnio0.{netdev,network}
  (ConfigureWithoutCarrier=yes, IPv6AcceptRA=no) holding the first address of the pod CIDR.
  Forwarding is on and rp_filter off (/etc/sysctl.d/90-routectl-lab.conf). 'up' waits until
  networkd reports the interface configured by the expected file and sshd is active.
  The debootstrap result is cached in $STATE_DIR/realnode/rootfs-*.tar; the image
  is rebuilt from it (no download) when this script's image recipe changes.
  SSH: sshd runs on every node (root, key only; host keys made at first boot). 'up' writes,
  in $RN_SSH_DIR/:
    id_ed25519, id_ed25519.pub  the lab's key pair (generated once), authorized on every node
                                (as /root/.ssh/authorized_keys, with ROUTECTL_LAB_SSH_PUBKEY's)
    known_hosts                 every node's host key, under its instance name and its IPs
    config                      "Host INSTANCE" entries: HostName = first internal IP, User
                                root, the key and known_hosts above, BatchMode yes
  The bridge has no host address: 'up' also makes the network namespace routectl-lab-rn-client,
  attached to rtlab1 with 10.0.3.250/24 (ROUTECTL_LAB_CLIENT_ADDR), to reach the nodes from:
    ip netns exec routectl-lab-rn-client ssh -F $STATE_DIR/ssh/config rn-worker-0 ip -j route

Environment:
  ROUTECTL_LAB_IMAGE_SOURCE=host|debootstrap   how to build the image (default: host, which
                                               falls back to debootstrap when it fails)
  ROUTECTL_LAB_READY_TIMEOUT=SECONDS           how long 'up' waits for a node (default 60)
  ROUTECTL_LAB_NETPLAN=INSTANCE[,INSTANCE...]  (--realnode) nodes configured through netplan
                                               (default: the last node; empty: none)
  ROUTECTL_LAB_SSH_PUBKEY=FILE                 (--realnode) a public key file whose keys every
                                               node authorizes too, beside the lab's own key
  ROUTECTL_LAB_CLIENT_ADDR=ADDR/LEN            (--realnode) the client namespace's address on
                                               rtlab1 (default 10.0.3.250/24)
EOF
}

# ---------------------------------------------------------------------------------------------

# select_lab BACKEND: the names of the lab. --realnode has its own bridge, image and mark, so that
# `up` and `down` of one lab never see the containers of the other.
BACKEND=lxd
select_lab() {
	BACKEND=$1
	if [ "$BACKEND" = realnode ]; then
		LAB_BRIDGE=rtlab1
		IMAGE_ALIAS=routectl-lab-systemd
		MARK_KEY=user.routectl-lab-realnode
	fi
}

main() {
	local cmd='' backend=lxd topo='' a lab='' want_lab=0
	for a in "$@"; do
		if [ "$want_lab" = 1 ]; then
			lab=$a want_lab=0
			continue
		fi
		case $a in
		--lab) want_lab=1 ;;
		--lab=*) lab=${a#--lab=} ;;
		-h | --help | help)
			usage
			exit 0
			;;
		--lxd) backend=lxd ;;
		--netns) backend=netns ;;
		--realnode) backend=realnode ;;
		-*) die "unknown option $a (see --help)" ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=$a
			elif [ -z "$topo" ]; then
				topo=$a
			else
				die "unexpected argument $a (see --help)"
			fi
			;;
		esac
	done
	[ "$want_lab" = 0 ] || die "--lab wants a name (incus, project, soak)"
	[ -n "$cmd" ] || {
		usage >&2
		exit 2
	}
	case $cmd in
	up | down | status | install | reset-routes | remote) ;;
	*) die "unknown command $cmd (see --help)" ;;
	esac
	select_lab "$backend"
	local default_topo=$REPO_ROOT/topology.example.toml
	[ "$backend" != realnode ] || default_topo=$REPO_ROOT/tests/labs/realnode.toml
	case $lab in
	'' | default) ;;
	incus)
		LAB_NAME=incus LAB_CLI=incus LAB_BRIDGE=rtlab3 default_topo=$REPO_ROOT/tests/labs/incus.toml
		;;
	project)
		LAB_NAME=project LAB_PROJECT=$PROJECT_NAME LAB_BRIDGE=rtlab4 default_topo=$REPO_ROOT/tests/labs/project.toml
		;;
	managers)
		[ "$backend" = realnode ] || die "--lab managers is for --realnode only"
		LAB_NAME=managers LAB_BRIDGE=rtlab5 IMAGE_ALIAS=routectl-lab-managers MARK_KEY=user.routectl-lab-managers
		default_topo=$REPO_ROOT/tests/labs/managers.toml
		RN_PKGS=$RN_PACKAGES,$RN_MANAGER_PACKAGES RN_CACHE_DIR=$STATE_DIR/realnode-managers
		;;
	soak)
		LAB_NAME=soak LAB_PROJECT=routectl-soak LAB_BRIDGE=rtsoak0 default_topo=$REPO_ROOT/tests/labs/soak.toml
		;;
	*) die "unknown lab $lab (incus, project, managers, soak)" ;;
	esac
	[ -z "$lab" ] || [ "$backend" = lxd ] || [ "$lab" = managers ] || die "--lab $lab is for --lxd only"
	readonly LAB_NAME LAB_CLI LAB_BRIDGE LAB_PROJECT
	topo=${topo:-$default_topo}
	case $topo in /*) ;; *) topo=$PWD/$topo ;; esac

	need_root
	find_python
	case $cmd in
	install | remote) ;;
	down) load_topology "$topo" "${backend/realnode/lxd}" || log "removing every lab $backend node anyway" ;;
	*) load_topology "$topo" "${backend/realnode/lxd}" || exit 1 ;;
	esac
	if [ "$backend" = realnode ] && [ "${#N_NAME[@]}" -gt 0 ]; then
		realnode_select "$topo"
	fi
	mkdir -p "$STATE_DIR"
	if [ "$cmd" != status ]; then
		exec 9>"$STATE_DIR/lock"
		flock -w 300 9 || die "another lab.sh is running (lock $STATE_DIR/lock)"
	fi

	case $backend/$cmd in
	lxd/install | realnode/install)
		lxd_setup
		log "$LAB_CLI ready (daemon, storage pool $POOL, image $IMAGE_ALIAS) in $(elapsed "$T_START") s"
		;;
	realnode/up) lxd_up ;;
	realnode/down) lxd_down ;;
	realnode/status) lxd_status ;;
	realnode/reset-routes) rn_reset_routes ;;
	netns/install) die "install is for --lxd only (--netns needs nothing but iproute2)" ;;
	lxd/remote) lxd_remote ;;
	netns/remote | realnode/remote) die "remote is for --lxd only" ;;
	lxd/up) lxd_up ;;
	lxd/down) lxd_down ;;
	lxd/status) lxd_status ;;
	lxd/reset-routes) lxd_reset_routes ;;
	netns/up) netns_up ;;
	netns/down) netns_down ;;
	netns/status) netns_status ;;
	netns/reset-routes) netns_reset_routes ;;
	esac
}

main "$@"
