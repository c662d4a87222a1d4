# scripts/lab.sh's helper (python3 -c): topology parsing (tomllib) and checks of the JSON that
# LXD and ip print. scripts/lab/common.sh fills in HUB_NS, "HASH_KEY", "FILES_KEY" and
# "MARK_KEY" before it runs.
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
