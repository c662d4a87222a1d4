#!/usr/bin/env bash
# Test lab for routectl: the nodes of a topology file as LXD containers (--lxd, the default),
# as network namespaces (--netns), or as LXD containers that boot Debian with systemd and
# systemd-networkd/netplan like real nodes (--realnode), all on a private L2 segment that has
# no uplink.
#
# Usage: scripts/lab.sh COMMAND [--lxd|--netns|--realnode] [TOPOLOGY]
# Run scripts/lab.sh --help for the details.

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
# Files that run inside a node. The same apply script configures a container (run by its init)
# and a namespace (run through `ip netns exec`); it only needs bash and ip.

read -r -d '' APPLY_SH <<'EOF_APPLY' || true
#!/bin/bash
# Configures this lab node from its configuration file. Safe to run again at any time: it adds
# what is missing and removes global addresses that are not declared. It never touches routes.
set -euo pipefail
conf=${1:-/etc/routectl-lab.conf}
iface='' mac='' addrs='' pod_gws=''
while IFS='=' read -r key value; do
	case $key in
	iface) iface=$value ;;
	mac) mac=$value ;;
	addrs) addrs=$value ;;
	pod_gws) pod_gws=$value ;;
	esac
done <"$conf"
if [ -z "$iface" ]; then
	echo "routectl-lab-apply: $conf declares no iface" >&2
	exit 1
fi

setsys() { printf '%s\n' "$2" >"/proc/sys/$1"; }
setsys net/ipv4/conf/all/forwarding 1
setsys net/ipv4/conf/default/forwarding 1
if [ -d /proc/sys/net/ipv6 ]; then
	setsys net/ipv6/conf/all/forwarding 1
	setsys net/ipv6/conf/default/forwarding 1
	# No duplicate address detection: a new link-local address would otherwise stay tentative
	# for a second, during which the node cannot resolve its neighbours.
	setsys net/ipv6/conf/all/accept_dad 0
	setsys net/ipv6/conf/default/accept_dad 0
	if [ -e "/proc/sys/net/ipv6/conf/$iface/accept_dad" ]; then
		setsys "net/ipv6/conf/$iface/accept_dad" 0
	fi
fi
setsys net/ipv4/conf/all/rp_filter 0
setsys net/ipv4/conf/default/rp_filter 0
for f in /proc/sys/net/ipv4/conf/*/rp_filter; do
	printf '0\n' >"$f"
done

ip link set dev lo up

# sync_addrs DEV ADDR/LEN...: DEV ends up with exactly these global addresses.
sync_addrs() {
	local dev=$1 a have=' ' cur
	shift
	local want=" $* "
	cur=$(ip -o addr show dev "$dev" scope global)
	while read -r _ _ _ a _; do
		[ -n "$a" ] || continue
		case $want in
		*" $a "*) have="$have$a " ;;
		*) ip addr del "$a" dev "$dev" ;;
		esac
	done <<<"$cur"
	for a in "$@"; do
		case $have in *" $a "*) continue ;; esac
		case $a in
		*:*) ip addr replace "$a" dev "$dev" nodad ;;
		*) ip addr replace "$a" dev "$dev" ;;
		esac
	done
}

if [ -n "$pod_gws" ]; then
	if ! ip link show dev cnio0 >/dev/null 2>&1; then
		ip link add cnio0 type bridge 2>/dev/null || ip link show dev cnio0 >/dev/null
	fi
	ip link set dev cnio0 up
	# shellcheck disable=SC2086
	sync_addrs cnio0 $pod_gws
elif ip link show dev cnio0 >/dev/null 2>&1; then
	ip link del dev cnio0
fi

if [ -n "$mac" ]; then
	link=$(ip -o link show dev "$iface")
	case $link in
	*" link/ether $mac "*) ;;
	*) ip link set dev "$iface" address "$mac" ;;
	esac
fi
ip link set dev "$iface" up
# shellcheck disable=SC2086
sync_addrs "$iface" $addrs
EOF_APPLY
readonly APPLY_SH

read -r -d '' INIT_SH <<'EOF_INIT' || true
#!/bin/bash
# PID 1 of a routectl lab node: configures the network from /etc/routectl-lab.conf (addresses
# come back after a restart, routes do not), then waits; SIGPWR (lxc stop) or SIGTERM end it.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
main() {
	trap 'exit 0' PWR TERM INT
	if /usr/local/sbin/routectl-lab-apply /etc/routectl-lab.conf >/run/routectl-lab.log 2>&1; then
		echo "configured" >>/run/routectl-lab.log
	else
		echo "configuration failed" >>/run/routectl-lab.log
	fi
	while :; do
		sleep 2147483647 &
		wait $! || true
	done
}
main "$@"
exit 0
EOF_INIT
readonly INIT_SH

# Deletes every route of table main whose protocol is not kernel (2), both families; prints
# "reset-ok N" (N = routes deleted) when nothing but kernel routes is left.
read -r -d '' RESET_SH <<'EOF_RESET' || true
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
EOF_RESET
readonly RESET_SH

# ---------------------------------------------------------------------------------------------
# Python (tomllib, json): topology parsing and checks of JSON that LXD and ip print.

read -r -d '' PY_HELPER <<'EOF_PY' || true
import hashlib, ipaddress, json, re, sys

def fail(msg):
    print("lab: error: " + msg, file=sys.stderr)
    sys.exit(2)

def topology(path, backend):
    try:
        import tomllib
    except ImportError:
        fail(f"{sys.executable} has no tomllib: Python 3.11 or later is required")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        fail(f"cannot read topology {path}: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        fail(f"{path}: invalid TOML: {e}")
    cluster = data.get("cluster", {})
    if not isinstance(cluster, dict):
        fail(f"{path}: [cluster] must be a table")
    default_iface = cluster.get("interface", "eth1")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        fail(f"{path}: no [[nodes]]")
    if backend == "lxd":
        name_re = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
        name_rule = "letters, digits and '-', starting with a letter, at most 63 characters"
    else:
        name_re = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
        name_rule = "letters, digits, '_', '.', '-', at most 63 characters"
    iface_re = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
    seen_names, seen_inst, seen_ips, seen_macs, nets, out = set(), set(), set(), set(), [], []

    def one_per_family(value, what, where, parse):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not 1 <= len(value) <= 2 or not all(isinstance(v, str) for v in value):
            fail(f"{where}: {what} must be a string or an array of one or two strings")
        items = []
        for v in value:
            try:
                items.append(parse(v))
            except ValueError as e:
                fail(f"{where}: {what} {v!r}: {e}")
        if len({i.version for i in items}) != len(items):
            fail(f"{where}: {what} has two addresses of the same family")
        return sorted(items, key=lambda i: i.version)

    for idx, n in enumerate(nodes):
        where = f"{path}: nodes[{idx}]"
        if not isinstance(n, dict):
            fail(f"{where} must be a table")
        name = n.get("name")
        if not isinstance(name, str) or not name:
            fail(f"{where}: 'name' is missing")
        where = f"{path}: node {name!r}"
        if name in seen_names:
            fail(f"{where}: duplicate name")
        seen_names.add(name)
        inst = n.get("instance", name)
        if not isinstance(inst, str):
            fail(f"{where}: 'instance' must be a string")
        inst = inst.rsplit(":", 1)[-1]  # a remote prefix means nothing in the lab
        if not name_re.match(inst):
            fail(f"{where}: instance {inst!r} is not a valid name here ({name_rule})")
        if inst == "HUB_NS":
            fail(f"{where}: instance {inst!r} is reserved for the lab's hub")
        if inst in seen_inst:
            fail(f"{where}: instance {inst!r} is used by two nodes")
        seen_inst.add(inst)
        iface = n.get("interface", default_iface)
        if not isinstance(iface, str) or not iface_re.match(iface) or iface in ("lo", "cnio0"):
            fail(f"{where}: interface {iface!r} is not a usable interface name")
        if "internal_ip" not in n:
            fail(f"{where}: 'internal_ip' is missing")
        ips = one_per_family(n["internal_ip"], "internal_ip", where, ipaddress.ip_address)
        addrs = []
        for ip in ips:
            if ip in seen_ips:
                fail(f"{where}: internal_ip {ip} is used by two nodes")
            seen_ips.add(ip)
            addrs.append(f"{ip}/{24 if ip.version == 4 else 64}")
        gws = []
        if n.get("pod_cidr") is not None:
            cidrs = one_per_family(n["pod_cidr"], "pod_cidr", where,
                                   lambda v: ipaddress.ip_network(v, strict=True))
            for net in cidrs:
                if net.prefixlen > net.max_prefixlen - 2:
                    fail(f"{where}: pod_cidr {net} has no room for a gateway address")
                for other in nets:
                    if net.overlaps(other):
                        fail(f"{where}: pod_cidr {net} overlaps {other}")
                nets.append(net)
                gws.append(f"{net.network_address + 1}/{net.prefixlen}")
        port = "h-" + inst if len(inst) <= 13 else "h-" + hashlib.sha1(inst.encode()).hexdigest()[:13]
        # A fixed MAC per node: a node rebuilt from scratch keeps it, so the neighbour caches
        # of the other nodes stay right.
        mac = "02:" + ":".join(f"{b:02x}" for b in hashlib.sha256(("routectl-lab:" + inst).encode()).digest()[:5])
        if mac in seen_macs:
            fail(f"{where}: instance {inst!r} hashes to the MAC of another node; rename it")
        seen_macs.add(mac)
        out.append("\t".join([name, inst, iface, " ".join(addrs) or "-", " ".join(gws) or "-", port, mac]))
    print("\n".join(out))

def lxclist():
    # One line per instance: name status marked hash autostart expanded-nics local-nics
    def nics(devs):
        r = []
        for k, d in sorted((devs or {}).items()):
            if d.get("type") == "nic":
                kind = d.get("nictype") or ("network:" + d.get("network", "?"))
                r.append(f"{k}={kind}/{d.get('parent', '')}/{d.get('name', '')}/{d.get('hwaddr', '')}")
        return ",".join(r) or "-"
    for i in json.load(sys.stdin):
        cfg = i.get("config") or {}
        print("\t".join([i["name"], i.get("status", "?"),
                         "1" if cfg.get("MARK_KEY") == "true" else "0",
                         cfg.get("HASH_KEY") or "-",
                         cfg.get("boot.autostart") or "-",
                         nics(i.get("expanded_devices")), nics(i.get("devices")),
                         cfg.get("volatile.base_image") or "-",
                         cfg.get("FILES_KEY") or "-"]))

def check(lines, iface, addrs, pod_gws, mac, netfile="-"):
    # lines: one line of `ip -j addr`, then `grep -H '' SYSCTL...` lines; "!text" is a problem
    # found before looking inside the node. --realnode adds "@key=value" lines: netfile (the
    # NETWORK_FILE networkd reports for the interface), state (its ADMIN_STATE), ssh (whether
    # sshd is active); netfile is then the file that must configure the interface.
    early = [l[1:] for l in lines if l.startswith("!")]
    facts = dict(l[1:].partition("=")[::2] for l in lines if l.startswith("@"))
    lines = [l for l in lines if not l.startswith("@")]
    if early:
        return early
    if not lines or not lines[0].startswith("["):
        return ["no output from the node"]
    try:
        links = json.loads(lines[0])
    except ValueError:
        return ["unreadable ip -j addr output"]
    want = {iface: set(addrs.split()) if addrs != "-" else set()}
    if pod_gws != "-":
        want["cnio0"] = set(pod_gws.split())
    problems = []
    by_name = {l.get("ifname"): l for l in links}
    for dev, addrs_wanted in want.items():
        l = by_name.get(dev)
        if l is None:
            problems.append(f"{dev} missing")
            continue
        if "UP" not in l.get("flags", []):
            problems.append(f"{dev} down")
        if dev == iface and l.get("address") != mac:
            problems.append(f"{dev} has MAC {l.get('address')}, wants {mac}")
        have = {f"{a['local']}/{a['prefixlen']}" for a in l.get("addr_info", [])
                if a.get("scope") == "global"}
        if have != addrs_wanted:
            problems.append(f"{dev} has {sorted(have)}, wants {sorted(addrs_wanted)}")
    if pod_gws == "-" and "cnio0" in by_name:
        problems.append("cnio0 present without a pod CIDR")
    lo = by_name.get("lo")
    if lo is None or "UP" not in lo.get("flags", []):
        problems.append("lo down")
    wanted_sys = {"net/ipv4/conf/all/forwarding": "1", "net/ipv6/conf/all/forwarding": "1",
                  "net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"}
    got = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        got[k.removeprefix("/proc/sys/")] = v.strip()
    for k, v in wanted_sys.items():
        if got.get(k) != v:
            problems.append(f"{k} = {got.get(k)}")
    if netfile != "-":
        if facts.get("state") != "configured":
            problems.append(f"networkd: {iface} is {facts.get('state') or 'unknown to networkd'}")
        elif facts.get("netfile") != netfile:
            problems.append(f"networkd: {iface} is configured by {facts.get('netfile')}, wants {netfile}")
        if facts.get("ssh") != "active":
            problems.append(f"ssh is {facts.get('ssh') or 'unknown'}")
    return problems

def nodechecks():
    # stdin: blocks, each a header "@@node KEY IFACE ADDRS POD_GWS MAC" (tab-separated) and the
    # node's output. Prints "KEY<tab>ok" or "KEY<tab>problems" per block; exit 1 unless all ok.
    blocks, cur = [], None
    for l in sys.stdin.read().splitlines():
        if l.startswith("@@node\t"):
            cur = (l.split("\t")[1:], [])
            blocks.append(cur)
        elif cur is not None and l:
            cur[1].append(l)
    bad = 0
    for head, lines in blocks:
        key = head[0]
        problems = check(lines, *head[1:])
        bad += bool(problems)
        print(key + "\t" + ("; ".join(problems) if problems else "ok"))
    sys.exit(1 if bad else 0)

def server():
    d = json.load(sys.stdin)
    c = d.get("config") or {}
    print(c.get("core.proxy_http", "") + "\t" + c.get("core.proxy_https", ""))

def profile_root():
    d = json.load(sys.stdin)
    for k, v in (d.get("devices") or {}).items():
        if v.get("type") == "disk" and v.get("path") == "/":
            print(k + "\t" + v.get("pool", ""))
            return
    print("-\t-")

def nics_of_profile():
    d = json.load(sys.stdin)
    print(",".join(k for k, v in (d.get("devices") or {}).items() if v.get("type") == "nic"))

cmd = sys.argv[1]
if cmd == "topology":
    topology(sys.argv[2], sys.argv[3])
elif cmd == "lxclist":
    lxclist()
elif cmd == "nodechecks":
    nodechecks()
elif cmd == "server":
    server()
elif cmd == "profile-root":
    profile_root()
elif cmd == "profile-nics":
    nics_of_profile()
else:
    fail("unknown helper command " + cmd)
EOF_PY
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

# ---------------------------------------------------------------------------------------------
# --netns backend

ns_mounted() { [ -e "/run/netns/$1" ] && [ "$(stat -f -c %T "/run/netns/$1" 2>/dev/null)" = nsfs ]; }
ns_marked() { ip -n "$1" -j link show dev lo 2>/dev/null | grep -q "\"ifalias\":\"$NETNS_MARK\""; }

ns_list() { # every namespace name in /run/netns
	local f
	[ -d /run/netns ] || return 0
	for f in /run/netns/*; do
		[ -e "$f" ] && printf '%s\n' "${f##*/}"
	done
	return 0
}

ns_drop_stale() { # NAME: remove /run/netns/NAME if nothing is mounted on it (left by a reboot)
	if [ -e "/run/netns/$1" ] && ! ns_mounted "$1"; then
		log "$1: removing the stale namespace file /run/netns/$1"
		rm -f "/run/netns/$1" || die "cannot remove /run/netns/$1"
	fi
}

ns_ensure() { # NAME: a usable, marked namespace
	local ns=$1 links
	ns_drop_stale "$ns"
	if ! ns_mounted "$ns"; then
		ip netns add "$ns" || die "ip netns add $ns failed"
	elif ! ns_marked "$ns"; then
		links=$(ip -n "$ns" -o link show | grep -cv ': lo:' || true)
		[ "$links" = 0 ] || die "namespace $ns exists and is not a lab namespace (it has interfaces but no '$NETNS_MARK' mark); remove it or change the topology"
	fi
	ns_marked "$ns" || ip -n "$ns" link set dev lo alias "$NETNS_MARK" || die "cannot mark namespace $ns"
}

ns_write_sys() { # NS PATH VALUE
	# shellcheck disable=SC2016 # expanded by the inner bash
	ip netns exec "$1" bash -c 'printf "%s\n" "$2" >"/proc/sys/$1"' _ "$2" "$3" ||
		die "$1: cannot set $2"
}

netns_hub_up() {
	ns_ensure "$HUB_NS"
	ns_write_sys "$HUB_NS" net/ipv6/conf/default/disable_ipv6 1
	ns_write_sys "$HUB_NS" net/ipv6/conf/all/disable_ipv6 1
	if ! ip -n "$HUB_NS" link show dev "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip -n "$HUB_NS" link add "$LAB_BRIDGE" type bridge mcast_snooping 0 ||
			die "cannot create bridge $LAB_BRIDGE in $HUB_NS"
	fi
	ip -n "$HUB_NS" link set dev "$LAB_BRIDGE" up || die "cannot bring $LAB_BRIDGE up in $HUB_NS"
}

veth_pair_ok() { # NS IFACE PORT: IFACE in NS and PORT in the hub are the two ends of one veth
	local a b ia pa
	a=$(ip -n "$1" -o link show dev "$2" 2>/dev/null) || return 1
	b=$(ip -n "$HUB_NS" -o link show dev "$3" 2>/dev/null) || return 1
	# "INDEX: NAME@ifPEERINDEX: ..."
	[[ $a =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	ia=${BASH_REMATCH[1]} pa=${BASH_REMATCH[2]}
	[[ $b =~ ^([0-9]+):\ [^@:]+@if([0-9]+): ]] || return 1
	[ "${BASH_REMATCH[1]}" = "$pa" ] && [ "${BASH_REMATCH[2]}" = "$ia" ]
}

netns_node_up() { # INDEX
	local i=$1 ns=${N_INST[$1]} iface=${N_IFACE[$1]} port=${N_PORT[$1]} conf
	ns_ensure "$ns"
	if ! veth_pair_ok "$ns" "$iface" "$port"; then
		ip -n "$HUB_NS" link del dev "$port" 2>/dev/null || true
		ip -n "$ns" link del dev "$iface" 2>/dev/null || true
		ip -n "$HUB_NS" link add "$port" type veth peer name "$iface" netns "$ns" ||
			die "$ns: cannot create the veth pair $port/$iface"
	fi
	ip -n "$HUB_NS" link set dev "$port" master "$LAB_BRIDGE" up ||
		die "$ns: cannot attach $port to $LAB_BRIDGE"
	# Interfaces of this namespace that the lab did not declare (e.g. after a rename) go away.
	local l links
	links=$(ip -n "$ns" -o link show 2>/dev/null) || die "$ns: cannot list its interfaces"
	while read -r l; do
		[ -n "$l" ] || continue
		case $l in lo | cnio0 | "$iface") ;; *) ip -n "$ns" link del dev "$l" || die "$ns: cannot delete $l" ;; esac
	done <<<"$(sed -n 's/^[0-9]*: \([^:@]*\)[:@].*/\1/p' <<<"$links")"
	conf="$STATE_DIR/netns/$ns.conf"
	node_conf "$i" >"$conf"
	ip netns exec "$ns" bash "$STATE_DIR/apply.sh" "$conf" || die "$ns: configuration failed"
}

netns_probe() { # INDEX (see check_nodes)
	local i=$1 ns=${N_INST[$1]}
	if ! ns_mounted "$ns"; then
		echo "!namespace missing"
	elif ! ns_marked "$ns"; then
		echo "!namespace not marked as a lab namespace"
	elif ! ip -n "$HUB_NS" -o link show dev "${N_PORT[i]}" 2>/dev/null | grep -q "master $LAB_BRIDGE"; then
		echo "!not attached to $LAB_BRIDGE"
	else
		ip netns exec "$ns" bash -c "$CHECK_CMD" 2>/dev/null || true
	fi
}

netns_up() {
	local i ns
	mkdir -p "$STATE_DIR/netns"
	printf '%s\n' "$APPLY_SH" >"$STATE_DIR/apply.sh"
	type -P ping >/dev/null || ensure_packages iputils-ping
	ns_drop_stale "$HUB_NS"
	for ns in "${N_INST[@]}"; do
		ns_drop_stale "$ns"
	done
	netns_hub_up
	# Lab namespaces that the topology no longer declares.
	while read -r ns; do
		if [ -z "$ns" ] || [ "$ns" = "$HUB_NS" ] || declared "$ns"; then
			continue
		fi
		if ns_mounted "$ns" && ns_marked "$ns"; then
			log "$ns: not in the topology, deleting it"
			ip netns del "$ns" || die "cannot delete namespace $ns"
		fi
	done <<<"$(ns_list)"
	for i in "${!N_NAME[@]}"; do
		netns_node_up "$i"
	done
	local res
	if ! res=$(check_nodes netns_probe "${!N_NAME[@]}"); then
		die "not as declared after configuration: $(grep -v $'\tok$' <<<"$res" | tr '\n\t' '  ')"
	fi
	log "netns lab up (${#N_NAME[@]} nodes, hub $HUB_NS, bridge $LAB_BRIDGE) in $(elapsed "$T_START") s"
	summary
}

netns_down() {
	local ns n=0
	while read -r ns; do
		if [ -z "$ns" ] || [ "$ns" = "$HUB_NS" ]; then
			continue
		fi
		if ns_mounted "$ns" && ns_marked "$ns"; then
			ip netns del "$ns" || die "cannot delete namespace $ns"
			n=$((n + 1))
		elif declared "$ns" && ns_mounted "$ns"; then
			log "$ns: left alone (not a lab namespace)"
		fi
	done <<<"$(ns_list)"
	local hub='no hub'
	if [ -e "/run/netns/$HUB_NS" ]; then
		ip netns del "$HUB_NS" 2>/dev/null || rm -f "/run/netns/$HUB_NS" || die "cannot delete namespace $HUB_NS"
		hub="hub $HUB_NS"
	fi
	rm -rf "$STATE_DIR/netns"
	log "netns lab down: removed $n node namespace(s) and $hub"
}

netns_status() {
	local i ok=0 res
	if ns_mounted "$HUB_NS" && ip -n "$HUB_NS" -o link show dev "$LAB_BRIDGE" 2>/dev/null | grep -q ',UP'; then
		echo "hub: namespace $HUB_NS with bridge $LAB_BRIDGE up"
	else
		echo "hub: namespace $HUB_NS or bridge $LAB_BRIDGE missing"
		ok=1
	fi
	local results key
	results=$(check_nodes netns_probe "${!N_NAME[@]}") || ok=1
	while IFS=$'\t' read -r key res; do
		[ -n "$key" ] || continue
		if [ "$res" = ok ]; then
			printf '  %-16s up   %s %s%s\n' "${N_INST[key]}" "${N_IFACE[key]}" "${N_ADDRS[key]}" \
				"$([ "${N_PODGW[key]}" = - ] || echo " cnio0 ${N_PODGW[key]}")"
		else
			printf '  %-16s DOWN %s\n' "${N_INST[key]}" "$res"
		fi
	done <<<"$results"
	return "$ok"
}

netns_reset_routes() {
	local i out
	for i in "${!N_NAME[@]}"; do
		ns_mounted "${N_INST[i]}" || die "${N_INST[i]}: namespace missing (run up first)"
		out=$(ip netns exec "${N_INST[i]}" bash -c "$RESET_SH") || die "${N_INST[i]}: reset-routes failed"
		[[ $out == reset-ok* ]] || die "${N_INST[i]}: reset-routes printed '$out'"
		log "${N_INST[i]}: ${out#reset-ok } route(s) deleted"
	done
}

# ---------------------------------------------------------------------------------------------
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

incus_pids() { # live incusd processes (not zombies)
	local p st
	for p in $(pgrep -x incusd || true); do
		st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$p/stat" 2>/dev/null || true)
		[ -n "$st" ] && [ "$st" != Z ] && printf '%s\n' "$p"
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

# `lxc list` as: name status marked hash autostart expanded-nics local-nics base-image files
L_NAME=() L_STATUS=() L_MARK=() L_HASH=() L_AUTO=() L_XNICS=() L_NICS=() L_IMAGE=() L_FILES=()
lxd_read_list() {
	local out name st mk h a x n im f
	L_NAME=() L_STATUS=() L_MARK=() L_HASH=() L_AUTO=() L_XNICS=() L_NICS=() L_IMAGE=() L_FILES=()
	out=$(lxc list --format json) || die "lxc list failed"
	out=$(py lxclist <<<"$out") || die "cannot parse lxc list output"
	while IFS=$'\t' read -r name st mk h a x n im f; do
		[ -n "$name" ] || continue
		L_NAME+=("$name") L_STATUS+=("$st") L_MARK+=("$mk") L_HASH+=("$h") L_AUTO+=("$a")
		L_XNICS+=("$x") L_NICS+=("$n") L_IMAGE+=("$im") L_FILES+=("$f")
	done <<<"$out"
}

lxd_find() { # INSTANCE -> index into L_* or 1
	local j
	for j in "${!L_NAME[@]}"; do
		[ "${L_NAME[j]}" = "$1" ] && echo "$j" && return 0
	done
	return 1
}

node_hash() { # INDEX
	if [ "$BACKEND" = realnode ]; then
		rn_node_hash "$1"
		return
	fi
	{
		node_conf "$1"
		printf '%s\n' "$INIT_SH" "$APPLY_SH"
	} | sha256sum | cut -c1-16
}

lxd_push_files() { # INDEX
	local i=$1 inst=${N_INST[$1]} tmp
	if [ "$BACKEND" = realnode ]; then
		rn_push_files "$i"
		return
	fi
	tmp=$(mktemp -d)
	node_conf "$i" >"$tmp/conf"
	printf '%s\n' "$APPLY_SH" >"$tmp/apply"
	printf '%s\n' "$INIT_SH" >"$tmp/init"
	if ! quiet lxc file push -q --uid 0 --gid 0 --mode 0644 "$tmp/conf" "$inst$NODE_CONF" ||
		! quiet lxc file push -q --uid 0 --gid 0 --mode 0755 "$tmp/apply" "$inst$NODE_APPLY" ||
		! quiet lxc file push -q --uid 0 --gid 0 --mode 0755 "$tmp/init" "$inst$NODE_INIT"; then
		rm -rf "$tmp"
		die "$inst: cannot push the node files"
	fi
	rm -rf "$tmp"
}

lxd_probe() { # INDEX (see check_nodes)
	if [ "$BACKEND" = realnode ]; then
		rn_probe "$1"
		return
	fi
	lxc exec "${N_INST[$1]}" -- bash -c "$CHECK_CMD" </dev/null 2>/dev/null || true
}

# The poll: `ip -j addr` and the sysctls must match the declaration.
lxd_check() { # INDEX -> prints ok or the problems; status 0 if ok
	local res
	res=$(check_nodes lxd_probe "$1") || {
		printf '%s\n' "${res#*$'\t'}"
		return 1
	}
	echo ok
}

lxd_wait_ready() { # INDEX
	local i=$1 inst=${N_INST[$1]} deadline res
	deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		res=$(lxd_check "$i") && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			if [ "$BACKEND" = realnode ]; then
				log "$inst: $(lxc exec "$inst" -- sh -c 'systemctl is-system-running; systemctl --failed --no-legend; networkctl --no-legend' </dev/null 2>&1 | tr '\n' ' ')"
			else
				log "$inst: node log: $(lxc exec "$inst" -- cat "$NODE_LOG" </dev/null 2>&1 | tr '\n' ' ')"
			fi
			die "$inst: not configured after ${READY_TIMEOUT} s: $res"
		fi
		sleep 0.2
	done
}

lxd_state() { # INSTANCE -> RUNNING, STOPPED, ... (empty if it does not exist)
	lxc list "^$1\$" -c s --format csv 2>/dev/null || true
}

lxd_start() { # INSTANCE; waits out an operation that someone else runs on it
	local try out
	for try in $(seq 1 20); do
		out=$(lxc start -q "$1" 2>&1 </dev/null) && return 0
		[ "$(lxd_state "$1")" = RUNNING ] && return 0
		case $out in *busy* | *"already running"*) sleep 1 ;; *) break ;; esac
	done
	printf '%s\n' "$out" >&2
	die "$1: lxc start failed (after $try tries)"
}

lxd_restart() { # INSTANCE
	quiet lxc restart -q --timeout 20 "$1" || quiet lxc restart -q --force "$1" || die "$1: lxc restart failed"
}

lxd_node_up() { # INDEX: create/repair/start one container and wait until it is configured
	local i=$1 inst=${N_INST[$1]} iface=${N_IFACE[$1]} j h changed=0 started=0 want_nic d
	h=$(node_hash "$i")
	want_nic="$iface=bridged/$LAB_BRIDGE/$iface/${N_MAC[i]}"
	if [ "$BACKEND" = realnode ] && j=$(lxd_find "$inst") && [ "${L_MARK[j]}" = 1 ] && [ "${L_IMAGE[j]}" != "$RN_IMAGE_FP" ]; then
		log "$inst: made from another image, recreating it"
		quiet lxc delete --force "$inst" || die "$inst: cannot delete it"
		L_NAME[j]='' # forget it
	fi
	if ! j=$(lxd_find "$inst"); then
		log "$inst: creating"
		quiet lxc init -q "$IMAGE_ALIAS" "$inst" -c "$MARK_KEY=true" -c boot.autostart=false ||
			die "$inst: lxc init failed"
		quiet lxc config device add "$inst" "$iface" nic nictype=bridged parent="$LAB_BRIDGE" name="$iface" hwaddr="${N_MAC[i]}" ||
			die "$inst: cannot add nic $iface"
		lxd_push_files "$i"
		lxc config set "$inst" "$HASH_KEY" "$h" || die "$inst: cannot record the configuration"
		lxd_start "$inst"
		lxd_wait_ready "$i"
		return 0
	fi
	[ "${L_MARK[j]}" = 1 ] ||
		die "container $inst exists and is not a lab container ($MARK_KEY is not true); remove it or change the topology"
	if [ "${L_AUTO[j]}" != false ]; then
		lxc config set "$inst" boot.autostart=false || die "$inst: cannot set boot.autostart"
	fi
	if [ "${L_XNICS[j]}" != "$want_nic" ]; then
		log "$inst: fixing its nic (has ${L_XNICS[j]}, wants $want_nic)"
		if [ "${L_NICS[j]}" != - ]; then
			for d in ${L_NICS[j]//,/ }; do
				quiet lxc config device remove "$inst" "${d%%=*}" || die "$inst: cannot remove device ${d%%=*}"
			done
		fi
		quiet lxc config device add "$inst" "$iface" nic nictype=bridged parent="$LAB_BRIDGE" name="$iface" hwaddr="${N_MAC[i]}" ||
			die "$inst: cannot add nic $iface"
		changed=1
	fi
	if [ "${L_HASH[j]}" != "$h" ]; then
		log "$inst: configuration changed, pushing it"
		lxd_push_files "$i"
		changed=1
	fi
	case ${L_STATUS[j]} in
	Running)
		if [ "$changed" = 1 ]; then
			log "$inst: restarting"
			lxd_restart "$inst"
			started=1
		fi
		;;
	Stopped)
		log "$inst: starting"
		lxd_start "$inst"
		started=1
		;;
	Frozen)
		log "$inst: unfreezing"
		quiet lxc start -q "$inst" || die "$inst: cannot unfreeze"
		if [ "$changed" = 1 ]; then
			lxd_restart "$inst"
			started=1
		fi
		;;
	*)
		log "$inst: in state ${L_STATUS[j]}, forcing a restart"
		quiet lxc stop --force "$inst" || true
		lxd_start "$inst"
		started=1
		;;
	esac
	if [ "${L_HASH[j]}" != "$h" ]; then
		lxc config set "$inst" "$HASH_KEY" "$h" || die "$inst: cannot record the configuration"
	fi
	if [ "$started" = 1 ]; then
		lxd_wait_ready "$i"
		return 0
	fi
	# Already running: apply again in place (cheap, repairs drift, keeps the routes), then check.
	local try res
	if [ "$BACKEND" = realnode ]; then
		# networkd keeps the node as its files say; if it is not, a reboot puts it right. A probe
		# can come back empty under load (lxc exec), so look three times before rebooting.
		for try in 1 2 3; do
			res=$(lxd_check "$i") && return 0
			sleep 0.5
		done
		log "$inst: not as declared ($res); restarting"
		lxd_restart "$inst"
		lxd_wait_ready "$i"
		return 0
	fi
	for try in 1 2 3; do
		lxc exec "$inst" -- "$NODE_APPLY" "$NODE_CONF" </dev/null || die "$inst: configuration failed"
		res=$(lxd_check "$i") && return 0
		sleep 0.3
	done
	die "$inst: not as declared after configuring it $try times: $res"
}

lxd_up() {
	local i j pids=() failed=0
	lxd_setup
	lxd_ensure_bridge
	lxd_read_list
	for i in "${!N_NAME[@]}"; do
		if j=$(lxd_find "${N_INST[i]}") && [ "${L_MARK[j]}" != 1 ]; then
			die "container ${N_INST[i]} exists and is not a lab container ($MARK_KEY is not true); remove it or change the topology"
		fi
	done
	for j in "${!L_NAME[@]}"; do
		if [ "${L_MARK[j]}" = 1 ] && ! declared "${L_NAME[j]}"; then
			log "${L_NAME[j]}: not in the topology, deleting it"
			quiet lxc delete --force "${L_NAME[j]}" || die "cannot delete ${L_NAME[j]}"
		fi
	done
	# The nodes are independent: bring them up side by side.
	for i in "${!N_NAME[@]}"; do
		lxd_node_up "$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" || failed=1
	done
	[ "$failed" = 0 ] || die "the lab is not up (see the messages above)"
	if [ "$BACKEND" = realnode ] && [ "$LAB_NAME" != managers ]; then
		rn_write_ssh_files
		rn_client_up
	fi
	log "$LAB_NAME $BACKEND lab up (${#N_NAME[@]} containers${LAB_PROJECT:+ in project $LAB_PROJECT}, client $LAB_CLI, image $IMAGE_ALIAS, bridge $LAB_BRIDGE) in $(elapsed "$T_START") s"
	summary
}

lxd_down() {
	need_root
	local j n=0
	if type -P "$LAB_CLI" >/dev/null 2>&1 && { [ "$LAB_CLI" = incus ] || type -P lxd >/dev/null 2>&1; }; then
		lxd_ensure_daemon
		lxd_read_list
		local pids=() failed=0 p
		for j in "${!L_NAME[@]}"; do
			if [ "${L_MARK[j]}" = 1 ]; then
				{ quiet lxc delete --force "${L_NAME[j]}" || die "cannot delete ${L_NAME[j]}"; } &
				pids+=($!)
				n=$((n + 1))
			elif declared "${L_NAME[j]}"; then
				log "${L_NAME[j]}: left alone (not a lab container)"
			fi
		done
		for p in "${pids[@]}"; do
			wait "$p" || failed=1
		done
		[ "$failed" = 0 ] || die "the lab is not down (see the messages above)"
	fi
	[ "$BACKEND" != realnode ] || [ "$LAB_NAME" = managers ] || rn_client_down
	local br='no bridge'
	if ip link show dev "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip link del dev "$LAB_BRIDGE" || die "cannot delete bridge $LAB_BRIDGE"
		br="bridge $LAB_BRIDGE"
	fi
	log "$LAB_NAME $BACKEND lab down${LAB_PROJECT:+ (project $LAB_PROJECT)}: removed $n container(s) and $br; image and daemon kept"
}

lxd_status_probe() { # INDEX (see check_nodes)
	local i=$1 j
	if ! j=$(lxd_find "${N_INST[i]}"); then
		echo "!missing"
	elif [ "${L_MARK[j]}" != 1 ]; then
		echo "!exists but is not a lab container"
	elif [ "${L_STATUS[j]}" != Running ]; then
		echo "!${L_STATUS[j]}"
	elif [ "${L_HASH[j]}" != "$(node_hash "$i")" ]; then
		echo "!configuration out of date"
	elif [ "${L_XNICS[j]}" != "${N_IFACE[i]}=bridged/$LAB_BRIDGE/${N_IFACE[i]}/${N_MAC[i]}" ]; then
		echo "!nic is ${L_XNICS[j]}"
	else
		lxd_probe "$i"
	fi
}

lxd_status() {
	local ok=0 j res
	if ! type -P "$LAB_CLI" >/dev/null 2>&1; then
		echo "$LAB_CLI: not installed"
		return 1
	fi
	if ! lxd_alive; then
		echo "$LAB_CLI: daemon not running"
		return 1
	fi
	echo "$LAB_CLI: daemon running${LAB_PROJECT:+ (project $LAB_PROJECT)}"
	if lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		echo "image: $IMAGE_ALIAS present"
	else
		echo "image: $IMAGE_ALIAS missing"
		ok=1
	fi
	if ip -o link show dev "$LAB_BRIDGE" 2>/dev/null | grep -q ',UP'; then
		echo "bridge: $LAB_BRIDGE up"
	else
		echo "bridge: $LAB_BRIDGE missing or down"
		ok=1
	fi
	if [ "$BACKEND" = realnode ]; then
		if ns_mounted "$RN_CLIENT_NS" && ip -o link show dev "$RN_CLIENT_PORT" 2>/dev/null | grep -q "master $LAB_BRIDGE" &&
			ip -n "$RN_CLIENT_NS" -o addr show dev eth0 2>/dev/null | grep -q " ${RN_CLIENT_ADDR} "; then
			echo "client: namespace $RN_CLIENT_NS on $LAB_BRIDGE with $RN_CLIENT_ADDR"
		else
			echo "client: namespace $RN_CLIENT_NS missing or not on $LAB_BRIDGE"
			ok=1
		fi
	fi
	lxd_read_list
	local results key
	results=$(check_nodes lxd_status_probe "${!N_NAME[@]}") || ok=1
	while IFS=$'\t' read -r key res; do
		[ -n "$key" ] || continue
		if [ "$res" = ok ]; then
			printf '  %-16s RUNNING %s %s%s%s\n' "${N_INST[key]}" "${N_IFACE[key]}" "${N_ADDRS[key]}" \
				"$([ "${N_PODGW[key]}" = - ] || echo " cnio0 ${N_PODGW[key]}")" \
				"$([ "$BACKEND" != realnode ] || echo " ($(rn_manager "$key"): ${N_NETFILE[key]})")"
		else
			printf '  %-16s DOWN    %s\n' "${N_INST[key]}" "$res"
		fi
	done <<<"$results"
	for j in "${!L_NAME[@]}"; do
		if [ "${L_MARK[j]}" = 1 ] && ! declared "${L_NAME[j]}"; then
			printf '  %-16s EXTRA   lab container not in the topology (%s)\n' "${L_NAME[j]}" "${L_STATUS[j]}"
			ok=1
		fi
	done
	return "$ok"
}

lxd_reset_routes() {
	local i out try inst
	lxd_alive || die "the LXD daemon is not running (run up first)"
	for i in "${!N_NAME[@]}"; do
		inst=${N_INST[i]}
		for try in 1 2 3 4 5; do
			out=$(lxc exec "$inst" -- bash -c "$RESET_SH" </dev/null) || die "$inst: reset-routes failed"
			[ -n "$out" ] && break # lxc exec may print nothing at all under load: run it again
			sleep 0.2
		done
		[[ $out == reset-ok* ]] || die "$inst: reset-routes printed '$out' (after $try tries)"
		log "$inst: ${out#reset-ok } route(s) deleted"
	done
}

# ---------------------------------------------------------------------------------------------
# --realnode backend: LXD containers that boot Debian 12 with systemd as PID 1, eth1 configured
# by systemd-networkd (a .network file in /etc/systemd/network) or by netplan (networkd renderer),
# the pod bridge cnio0 configured by networkd, and sshd. It reuses the --lxd machinery (daemon,
# bridge, container life cycle) with its own names: see select_lab.

readonly RN_SUITE=bookworm
readonly RN_PACKAGES=systemd,systemd-sysv,dbus,udev,iproute2,iputils-ping,procps,openssh-server,netplan.io
# --lab managers: the same system plus NetworkManager and ifupdown (libpam-systemd: polkitd needs it)
readonly RN_MANAGER_PACKAGES=network-manager,ifupdown,libpam-systemd
RN_PKGS=$RN_PACKAGES                  # what debootstrap installs for this lab
RN_CACHE_DIR=$STATE_DIR/realnode      # where its debootstrap result is cached
# The node files of a --lab managers node that choose its manager (see rn_render).
readonly RN_NM_KEYFILE=/etc/NetworkManager/system-connections/routectl-lab-eth1.nmconnection
readonly RN_NM_OFF=/etc/systemd/system/NetworkManager.service.d/routectl-lab-off.conf
readonly RN_IMAGE_KEY=routectl.lab-version # image property: digest of what built the image
readonly RN_NETPLAN_FILE=/etc/netplan/50-routectl-lab.yaml
readonly RN_SSH_DIR=$STATE_DIR/ssh
readonly RN_CLIENT_NS=routectl-lab-rn-client # the host's way onto rtlab1 (for ssh)
readonly RN_CLIENT_PORT=rn-client            # its veth on the host, a port of rtlab1
readonly RN_CLIENT_ADDR=${ROUTECTL_LAB_CLIENT_ADDR:-10.0.3.250/24}

# Probe of one node: what CHECK_CMD prints plus what networkd says about the interface ($1) and
# whether sshd runs. The interface is a positional parameter, never part of the script text.
# shellcheck disable=SC2016 # expanded inside the node
readonly RN_CHECK_CMD="$CHECK_CMD"'
if idx=$(cat "/sys/class/net/$1/ifindex" 2>/dev/null) && [ -r "/run/systemd/netif/links/$idx" ]; then
	sed -n -e "s/^NETWORK_FILE=/@netfile=/p" -e "s/^ADMIN_STATE=/@state=/p" "/run/systemd/netif/links/$idx"
fi
printf "@ssh=%s\n" "$(systemctl is-active ssh 2>/dev/null)"'

# In-node part of reset-routes: drop routectl's networkd drop-ins first (networkd would put their
# routes back), make networkd forget them, wait until the interface ($1) is configured again.
# shellcheck disable=SC2016 # expanded inside the node
readonly RN_RESET_DROPINS='set -euo pipefail
n=0
for f in /etc/NetworkManager/dispatcher.d/90-routectl /etc/network/if-up.d/routectl; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	rm -f -- "$f"
	n=$((n + 1))
done
h=$n
for f in /etc/systemd/network/*.d/50-routectl.conf /run/systemd/network/*.d/50-routectl.conf; do
	[ -e "$f" ] || continue
	rm -f -- "$f"
	n=$((n + 1))
done
if [ "$n" != "$h" ]; then
	networkctl reload
	for _ in $(seq 1 100); do
		idx=$(cat "/sys/class/net/$1/ifindex")
		grep -qx ADMIN_STATE=configured "/run/systemd/netif/links/$idx" 2>/dev/null && break
		sleep 0.1
	done
fi
echo "dropins-removed $n"'

# realnode_select TOPOLOGY: which nodes netplan configures (ROUTECTL_LAB_NETPLAN, default: the
# last node), which manager each node has (a line "# lab-manager: INSTANCE MANAGER" in the
# topology file, MANAGER one of networkd, netplan, networkmanager, netplan-nm, ifupdown; --lab
# managers only) and, per node, the file networkd must report as configuring its interface ("-":
# networkd does not configure it).
N_NETPLAN=() N_NETFILE=() N_MANAGER=()
realnode_select() {
	local i want=${ROUTECTL_LAB_NETPLAN-} last=$((${#N_NAME[@]} - 1)) x found inst kind
	if [ -z "${ROUTECTL_LAB_NETPLAN+set}" ]; then
		want=${N_INST[last]}
	fi
	for x in ${want//,/ }; do
		found=0
		for i in "${!N_INST[@]}"; do [ "${N_INST[i]}" = "$x" ] && found=1; done
		[ "$found" = 1 ] || die "ROUTECTL_LAB_NETPLAN names $x, which is not an instance of the topology"
	done
	for i in "${!N_NAME[@]}"; do
		N_NETPLAN[i]=0
		case ",$want," in *",${N_INST[i]},"*) N_NETPLAN[i]=1 ;; esac
		if [ "${N_NETPLAN[i]}" = 1 ]; then
			N_NETFILE[i]=/run/systemd/network/10-netplan-${N_IFACE[i]}.network
		else
			N_NETFILE[i]=/etc/systemd/network/10-${N_IFACE[i]}.network
		fi
		N_MANAGER[i]=$([ "${N_NETPLAN[i]}" = 1 ] && echo netplan || echo networkd)
	done
	[ "$LAB_NAME" = managers ] || return 0
	while read -r _ _ inst kind; do
		found=0
		for i in "${!N_INST[@]}"; do
			[ "${N_INST[i]}" = "$inst" ] || continue
			found=1
			case $kind in
			networkd | netplan) ;;
			networkmanager | netplan-nm | ifupdown) N_NETFILE[i]=- ;;
			*) die "$1: lab-manager $inst: unknown manager $kind" ;;
			esac
			N_MANAGER[i]=$kind
			N_NETPLAN[i]=$([ "$kind" = netplan ] && echo 1 || echo 0)
		done
		[ "$found" = 1 ] || die "$1: lab-manager names $inst, which is not an instance of the topology"
	done < <(grep -E '^# lab-manager: ' "$1" || true)
}

rn_manager() { # INDEX -> networkd, netplan, networkmanager, netplan-nm or ifupdown
	echo "${N_MANAGER[$1]}"
}

# The lab's own SSH key (generated once) and the public keys every node authorizes.
rn_ensure_ssh_key() {
	mkdir -p "$RN_SSH_DIR" || die "cannot create $RN_SSH_DIR"
	chmod 0700 "$RN_SSH_DIR" || die "cannot chmod $RN_SSH_DIR"
	if [ ! -s "$RN_SSH_DIR/id_ed25519" ] || [ ! -s "$RN_SSH_DIR/id_ed25519.pub" ]; then
		command -v ssh-keygen >/dev/null || ensure_packages openssh-client
		rm -f "$RN_SSH_DIR/id_ed25519" "$RN_SSH_DIR/id_ed25519.pub"
		quiet ssh-keygen -q -t ed25519 -N '' -C routectl-lab -f "$RN_SSH_DIR/id_ed25519" ||
			die "cannot generate the lab's SSH key"
	fi
}

rn_authorized_keys() {
	cat "$RN_SSH_DIR/id_ed25519.pub"
	if [ -n "${ROUTECTL_LAB_SSH_PUBKEY:-}" ]; then
		[ -r "$ROUTECTL_LAB_SSH_PUBKEY" ] || die "ROUTECTL_LAB_SSH_PUBKEY: cannot read $ROUTECTL_LAB_SSH_PUBKEY"
		grep -E '^(ssh-|ecdsa-|sk-)' "$ROUTECTL_LAB_SSH_PUBKEY" ||
			die "ROUTECTL_LAB_SSH_PUBKEY: $ROUTECTL_LAB_SSH_PUBKEY holds no public key"
	fi
}

# rn_render INDEX DIR: writes the node's files under DIR (DIR/etc/...) and prints one line
# "MODE PATH" per file. Everything that configures a node is in these files.
rn_render() {
	local i=$1 d=$2 iface=${N_IFACE[$1]} a gw
	mkdir -p "$d/etc/systemd/network" "$d/etc/netplan" "$d/root/.ssh"
	printf '%s\n' "${N_INST[i]}" >"$d/etc/hostname"
	echo "0644 /etc/hostname"
	if [ "$LAB_NAME" = managers ]; then
		rn_render_manager "$i" "$d"
	elif [ "${N_NETPLAN[i]}" = 1 ]; then
		{
			printf '# routectl lab node %s: %s configured by netplan (networkd renderer)\n' "${N_NAME[i]}" "$iface"
			printf 'network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    %s:\n' "$iface"
			printf '      accept-ra: false\n      link-local: [ipv6]\n      addresses:\n'
			for a in ${N_ADDRS[i]//-/}; do printf '        - "%s"\n' "$a"; done
		} >"$d$RN_NETPLAN_FILE"
		echo "0600 $RN_NETPLAN_FILE"
	else
		{
			printf '# routectl lab node %s: %s configured by systemd-networkd\n' "${N_NAME[i]}" "$iface"
			printf '[Match]\nName=%s\n\n[Network]\nIPv6AcceptRA=no\nLinkLocalAddressing=ipv6\n' "$iface"
			for a in ${N_ADDRS[i]//-/}; do
				printf '\n[Address]\nAddress=%s\n' "$a"
				case $a in *:*) printf 'DuplicateAddressDetection=none\n' ;; esac
			done
		} >"$d${N_NETFILE[i]}"
		echo "0644 ${N_NETFILE[i]}"
	fi
	if [ "${N_PODGW[i]}" != - ]; then
		printf '[NetDev]\nName=cnio0\nKind=bridge\n' >"$d/etc/systemd/network/20-cnio0.netdev"
		{
			printf '# the pod bridge: empty, like the one the CNI bridge plugin creates\n'
			printf '[Match]\nName=cnio0\n\n[Network]\nConfigureWithoutCarrier=yes\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n'
			for gw in ${N_PODGW[i]}; do
				printf '\n[Address]\nAddress=%s\n' "$gw"
				case $gw in *:*) printf 'DuplicateAddressDetection=none\n' ;; esac
			done
		} >"$d/etc/systemd/network/20-cnio0.network"
		echo "0644 /etc/systemd/network/20-cnio0.netdev"
		echo "0644 /etc/systemd/network/20-cnio0.network"
	fi
	rn_authorized_keys >"$d/root/.ssh/authorized_keys"
	echo "0600 /root/.ssh/authorized_keys"
}

# rn_render_manager INDEX DIR: the files that make the node's manager (N_MANAGER) configure its
# interface; NetworkManager is kept from starting on the other nodes of --lab managers.
rn_render_manager() {
	local i=$1 d=$2 iface=${N_IFACE[$1]} a n4=0 n6=0
	case ${N_MANAGER[i]} in
	networkmanager)
		mkdir -p "$d${RN_NM_KEYFILE%/*}"
		{
			printf '# routectl lab node %s: %s configured by NetworkManager (keyfile)\n' "${N_NAME[i]}" "$iface"
			printf '[connection]\nid=%s\ntype=ethernet\ninterface-name=%s\nautoconnect=true\n\n[ipv4]\n' "$iface" "$iface"
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) ;; *) n4=$((n4 + 1)) && printf 'address%s=%s\n' "$n4" "$a" ;; esac; done
			[ "$n4" -gt 0 ] && printf 'method=manual\n' || printf 'method=disabled\n'
			printf '\n[ipv6]\naddr-gen-mode=eui64\n'
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) n6=$((n6 + 1)) && printf 'address%s=%s\n' "$n6" "$a" ;; esac; done
			[ "$n6" -gt 0 ] && printf 'method=manual\n' || printf 'method=link-local\n'
		} >"$d$RN_NM_KEYFILE"
		echo "0600 $RN_NM_KEYFILE"
		;;
	netplan-nm)
		{
			printf '# routectl lab node %s: %s configured by netplan (NetworkManager renderer)\n' "${N_NAME[i]}" "$iface"
			printf 'network:\n  version: 2\n  renderer: NetworkManager\n  ethernets:\n    %s:\n' "$iface"
			printf '      accept-ra: false\n      link-local: [ipv6]\n      addresses:\n'
			for a in ${N_ADDRS[i]//-/}; do printf '        - "%s"\n' "$a"; done
		} >"$d$RN_NETPLAN_FILE"
		echo "0600 $RN_NETPLAN_FILE"
		;;
	ifupdown)
		mkdir -p "$d/etc/network" "$d${RN_NM_OFF%/*}"
		{
			printf '# routectl lab node %s: %s configured by ifupdown\n' "${N_NAME[i]}" "$iface"
			printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nauto %s\n' "$iface"
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) ;; *) printf 'iface %s inet static\n\taddress %s\n' "$iface" "$a" ;; esac; done
			for a in ${N_ADDRS[i]//-/}; do case $a in *:*) printf 'iface %s inet6 static\n\taddress %s\n\taccept_ra 0\n\tdad-attempts 0\n' "$iface" "$a" ;; esac; done
		} >"$d/etc/network/interfaces"
		echo "0644 /etc/network/interfaces"
		printf '# routectl lab: ifupdown configures this node, NetworkManager does not run\n[Unit]\nConditionPathExists=/nonexistent/routectl-lab\n' >"$d$RN_NM_OFF"
		echo "0644 $RN_NM_OFF"
		;;
	*) die "${N_INST[i]}: --lab managers has no ${N_MANAGER[i]} nodes" ;;
	esac
}

rn_node_hash() { # INDEX
	local tmp h
	tmp=$(mktemp -d)
	rn_render "$1" "$tmp" >"$tmp/.list"
	h=$( (cd "$tmp" && cat .list && sort -k2 .list | while read -r _ p; do printf '%s\n' "$p" && cat ".$p"; done) | sha256sum | cut -c1-16)
	rm -rf "$tmp"
	echo "$h"
}

rn_push_files() { # INDEX; works on a stopped container too
	local i=$1 inst=${N_INST[$1]} tmp mode p old j files=()
	tmp=$(mktemp -d)
	rn_render "$i" "$tmp" >"$tmp/.list"
	while read -r mode p; do
		files+=("$p")
		if ! quiet lxc file push -q -p --uid 0 --gid 0 --mode "$mode" "$tmp$p" "$inst$p"; then
			rm -rf "$tmp"
			die "$inst: cannot push $p"
		fi
	done <"$tmp/.list"
	rm -rf "$tmp"
	# Files the lab pushed before and no longer does (e.g. the node moved from netplan to networkd).
	if j=$(lxd_find "$inst") && [ "${L_FILES[j]}" != - ]; then
		for old in ${L_FILES[j]//,/ }; do
			case " ${files[*]} " in *" $old "*) continue ;; esac
			lxc file delete "$inst$old" >/dev/null 2>&1 || true
		done
	fi
	old=$(printf '%s,' "${files[@]}")
	lxc config set "$inst" "$FILES_KEY" "${old%,}" || die "$inst: cannot record its files"
}

rn_probe() { # INDEX (see check_nodes)
	lxc exec "${N_INST[$1]}" -- bash -c "$RN_CHECK_CMD" sh "${N_IFACE[$1]}" </dev/null 2>/dev/null || true
}

# What builds the image: a change to any of it makes a new image (and new containers).
rn_image_version() {
	{
		printf '%s\n' "$RN_SUITE" "$RN_PACKAGES"
		declare -f rn_customize_rootfs
		if [ "$LAB_NAME" = managers ]; then
			printf '%s\n' "$RN_MANAGER_PACKAGES"
			declare -f rn_customize_managers
		fi
	} | sha256sum | cut -c1-16
}

rn_customize_rootfs() { # ROOTFS
	local r=$1
	# Per-container identity is made at first boot, not baked into the image.
	rm -f "$r/etc/hostname" "$r"/etc/ssh/ssh_host_*
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
	mkdir -p "$r/etc/systemd/system/ssh.service.d"
	printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
		>"$r/etc/systemd/system/ssh.service.d/routectl-lab-hostkeys.conf"
	# Forwarding on, reverse-path filter off, no DAD (as the --lxd lab); systemd-sysctl applies it.
	cat >"$r/etc/sysctl.d/90-routectl-lab.conf" <<'EOF_SYSCTL'
net.ipv4.conf.all.forwarding = 1
net.ipv4.conf.default.forwarding = 1
net.ipv6.conf.all.forwarding = 1
net.ipv6.conf.default.forwarding = 1
net.ipv4.conf.all.rp_filter = 0
net.ipv4.conf.default.rp_filter = 0
net.ipv4.conf.*.rp_filter = 0
net.ipv6.conf.all.accept_dad = 0
net.ipv6.conf.default.accept_dad = 0
EOF_SYSCTL
	chroot "$r" systemctl enable -q systemd-networkd.service ssh.service || return 1
	chroot "$r" systemctl disable -q systemd-networkd-wait-online.service 2>/dev/null || true
	chroot "$r" systemctl mask -q systemd-networkd-wait-online.service systemd-binfmt.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service || return 1
	chmod 4755 "$r/usr/bin/ping" || return 1 # file capabilities do not survive the tarball
	# Smaller image: no documentation, locales or package lists.
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/var/lib/apt/lists/* \
		"$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb
}

# --lab managers: NetworkManager (no automatic profiles, leaves cnio0 to networkd) and ifupdown
# both enabled; a node's files keep NetworkManager from starting where ifupdown rules.
rn_customize_managers() { # ROOTFS
	local r=$1
	mkdir -p "$r/etc/NetworkManager/conf.d"
	printf '[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=interface-name:cnio0\n' \
		>"$r/etc/NetworkManager/conf.d/90-routectl-lab.conf"
	chroot "$r" systemctl enable -q NetworkManager.service networking.service || return 1
	chroot "$r" systemctl mask -q NetworkManager-wait-online.service || return 1
}

rn_image_current() { # -> fingerprint of IMAGE_ALIAS if it was built by this version, else fails
	local fp ver
	fp=$(lxc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target"])' 2>/dev/null) || return 1
	ver=$(lxc query "/1.0/images/$fp" 2>/dev/null | "$PY" -c 'import json,sys; print((json.load(sys.stdin).get("properties") or {}).get(sys.argv[1], ""))' "$RN_IMAGE_KEY" 2>/dev/null) || return 1
	[ "$ver" = "$(rn_image_version)" ] || return 1
	printf '%s\n' "$fp"
}

# The debootstrap result is cached as a tarball (keyed by suite, packages and mirror), so that
# rebuilding the image after a change to rn_customize_rootfs, or after `lxc image delete`,
# needs no download.
rn_ensure_image() {
	RN_IMAGE_FP=$(rn_image_current) && return 0
	local t0=$EPOCHREALTIME mirror key cache work old_fp
	mirror=$(debian_mirror) || die "image: no Debian mirror in /etc/apt/sources.list(.d)"
	key=$(printf '%s\n' "$RN_SUITE" "$RN_PKGS" "$mirror" | sha256sum | cut -c1-16)
	cache=$RN_CACHE_DIR/rootfs-$key.tar
	mkdir -p "$RN_CACHE_DIR"
	rm -rf "$RN_CACHE_DIR"/build.* "$RN_CACHE_DIR"/rootfs-*.tar.tmp # left by an interrupted build
	work=$(mktemp -d "$RN_CACHE_DIR/build.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	if [ -s "$cache" ]; then
		log "image: unpacking the cached debootstrap rootfs $cache"
		mkdir "$work/rootfs" || die "cannot create $work/rootfs"
		tar --numeric-owner -xpf "$cache" -C "$work/rootfs" || die "cannot unpack $cache"
	else
		ensure_packages debootstrap
		log "image: debootstrap $RN_SUITE from $mirror with $RN_PKGS (takes a minute or two)"
		debootstrap --variant=minbase --include="$RN_PKGS" "$RN_SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
			tail -n 20 "$work/debootstrap.log" >&2
			die "debootstrap failed (log above)"
		}
		log "image: debootstrap done in $(elapsed "$t0") s; caching it as $cache"
		tar --numeric-owner -cf "$cache.tmp" -C "$work/rootfs" . || die "cannot write $cache.tmp"
		mv "$cache.tmp" "$cache" || die "cannot write $cache"
		# Caches of older package sets go.
		find "$RN_CACHE_DIR" -maxdepth 1 -name 'rootfs-*.tar' ! -name "${cache##*/}" -delete
	fi
	rn_customize_rootfs "$work/rootfs" || die "cannot customize the rootfs"
	if [ "$LAB_NAME" = managers ]; then
		rn_customize_managers "$work/rootfs" || die "cannot customize the rootfs"
	fi
	cat >"$work/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: routectl real-node lab (Debian $RN_SUITE, systemd, networkd, netplan, sshd)
  os: debian
  release: $RN_SUITE
  $RN_IMAGE_KEY: "$(rn_image_version)"
EOF
	tar --numeric-owner -cf "$work/image.tar" -C "$work" metadata.yaml rootfs || die "cannot pack the image"
	old_fp=$(lxc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target"])' 2>/dev/null || true)
	[ -z "$old_fp" ] || quiet lxc image alias delete "$IMAGE_ALIAS" || die "cannot move the alias $IMAGE_ALIAS"
	quiet lxc image import -q "$work/image.tar" --alias "$IMAGE_ALIAS" || {
		local fp
		fp=$(sha256sum "$work/image.tar" | cut -d' ' -f1)
		if ! lxc image info "$fp" >/dev/null 2>&1 || ! lxc image alias create "$IMAGE_ALIAS" "$fp"; then
			die "cannot import the image $IMAGE_ALIAS"
		fi
	}
	[ -z "$old_fp" ] || quiet lxc image delete "$old_fp" || log "image: cannot delete the old image $old_fp"
	rm -rf "$work"
	trap - EXIT
	RN_IMAGE_FP=$(rn_image_current) || die "image $IMAGE_ALIAS: imported but not found"
	log "image $IMAGE_ALIAS built in $(elapsed "$t0") s"
}

# After `up`: the nodes' host keys as a known_hosts file, and an ssh_config naming every node
# (by instance name, reached at its first internal IP). The host reaches the nodes only from a
# network namespace attached to the lab bridge: the bridge itself has no address.
rn_write_ssh_files() {
	local i key ip kh=$RN_SSH_DIR/known_hosts cfg=$RN_SSH_DIR/config
	: >"$kh.tmp"
	: >"$cfg.tmp"
	for i in "${!N_NAME[@]}"; do
		key=''
		for _ in 1 2 3 4 5; do # lxc exec may print nothing at all under load
			key=$(lxc exec "${N_INST[i]}" -- cat /etc/ssh/ssh_host_ed25519_key.pub </dev/null) || key=''
			[ -z "$key" ] || break
			sleep 0.2
		done
		[ -n "$key" ] || die "${N_INST[i]}: cannot read its SSH host key"
		ip=${N_ADDRS[i]%%/*}
		printf '%s,%s %s\n' "${N_INST[i]}" "$(tr ' ' ',' <<<"${N_ADDRS[i]}" | sed 's|/[0-9]*||g')" "${key% *}" >>"$kh.tmp"
		printf 'Host %s\n\tHostName %s\n\tUser root\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n\tHostKeyAlias %s\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n\n' \
			"${N_INST[i]}" "$ip" "$RN_SSH_DIR/id_ed25519" "$kh" "${N_INST[i]}" >>"$cfg.tmp"
	done
	mv "$kh.tmp" "$kh" || die "cannot write $kh"
	mv "$cfg.tmp" "$cfg" || die "cannot write $cfg"
}

# A network namespace on the lab bridge, so that the host can reach the nodes (ssh) although
# the bridge has no address: eth0 in $RN_CLIENT_NS holds $RN_CLIENT_ADDR.
rn_client_up() {
	local i
	for i in "${!N_NAME[@]}"; do
		case " ${N_ADDRS[i]} " in *" ${RN_CLIENT_ADDR%/*}/"*)
			die "ROUTECTL_LAB_CLIENT_ADDR $RN_CLIENT_ADDR is the address of ${N_INST[i]}" ;;
		esac
	done
	ns_drop_stale "$RN_CLIENT_NS"
	ns_mounted "$RN_CLIENT_NS" || ip netns add "$RN_CLIENT_NS" || die "cannot create namespace $RN_CLIENT_NS"
	if ! ip -n "$RN_CLIENT_NS" link show dev eth0 >/dev/null 2>&1 || ! ip link show dev "$RN_CLIENT_PORT" >/dev/null 2>&1; then
		ip link del dev "$RN_CLIENT_PORT" 2>/dev/null || true
		ip -n "$RN_CLIENT_NS" link del dev eth0 2>/dev/null || true
		ip link add "$RN_CLIENT_PORT" type veth peer name eth0 netns "$RN_CLIENT_NS" ||
			die "cannot create the veth pair $RN_CLIENT_PORT/eth0"
	fi
	ip link set dev "$RN_CLIENT_PORT" master "$LAB_BRIDGE" up || die "cannot attach $RN_CLIENT_PORT to $LAB_BRIDGE"
	ip -n "$RN_CLIENT_NS" link set dev lo up || die "cannot configure $RN_CLIENT_NS"
	ip -n "$RN_CLIENT_NS" addr replace "$RN_CLIENT_ADDR" dev eth0 || die "cannot configure $RN_CLIENT_NS"
	ip -n "$RN_CLIENT_NS" link set dev eth0 up || die "cannot configure $RN_CLIENT_NS"
}

rn_client_down() {
	ip link del dev "$RN_CLIENT_PORT" 2>/dev/null || true
	if [ -e "/run/netns/$RN_CLIENT_NS" ]; then
		ip netns del "$RN_CLIENT_NS" 2>/dev/null || rm -f "/run/netns/$RN_CLIENT_NS"
	fi
}

rn_reset_routes() {
	local i out try inst
	lxd_alive || die "the LXD daemon is not running (run up first)"
	for i in "${!N_NAME[@]}"; do
		inst=${N_INST[i]}
		out=$(lxc exec "$inst" -- bash -c "$RN_RESET_DROPINS" sh "${N_IFACE[i]}" </dev/null) ||
			die "$inst: removing routectl's networkd drop-ins failed"
		[ "${out#dropins-removed }" = 0 ] || log "$inst: ${out#dropins-removed } routectl drop-in(s) removed"
		for try in 1 2 3 4 5; do
			out=$(lxc exec "$inst" -- bash -c "$RESET_SH" </dev/null) || die "$inst: reset-routes failed"
			[ -n "$out" ] && break # lxc exec may print nothing at all under load: run it again
			sleep 0.2
		done
		[[ $out == reset-ok* ]] || die "$inst: reset-routes printed '$out' (after $try tries)"
		log "$inst: ${out#reset-ok } route(s) deleted"
	done
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
