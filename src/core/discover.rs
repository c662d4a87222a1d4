//! `routectl discover`: a topology written from what already exists. Pure: it reads the JSON of
//! `lxc list --format json` / `incus list --format json` or `kubectl get nodes -o json` (the
//! command module runs them) and writes TOML text.
//!
//! Every node it writes is checked with routectl's own topology parser, one node at a time and
//! then against the nodes before it (names, instances, addresses, overlapping pod CIDRs); what
//! the parser would refuse is left out with a `#` comment saying why, so the result always
//! passes `routectl validate`. Nodes are sorted by name, so the output is stable.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::Value;

use crate::core::route::Family;
use crate::core::topology::{self, TransportKind};

/// Where the nodes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `lxc list --format json`.
    Lxc,
    /// `incus list --format json` (same format).
    Incus,
    /// `kubectl get nodes -o json`.
    Kubernetes,
}

/// What discovery needs besides the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The interface that carries each node's internal IP (LXD/Incus), written as
    /// `cluster.interface`.
    pub interface: String,
    /// The bridge whose network is a node's pod CIDR (LXD/Incus).
    pub pod_bridge: String,
    /// The transport written into the topology.
    pub transport: TransportKind,
    /// How the input was obtained, for the header comment (`lxc list --format json`).
    pub origin: String,
}

/// A node as discovered, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The node name (sanitized when the instance's name is not a valid node name).
    pub name: String,
    /// The instance, when it differs from the name.
    pub instance: Option<String>,
    /// Internal addresses, at most one per family, IPv4 first.
    pub internal_ips: Vec<IpAddr>,
    /// Pod CIDRs, at most one per family, IPv4 first.
    pub pod_cidrs: Vec<IpNet>,
    /// Remarks written as comments above the node.
    pub notes: Vec<String>,
}

/// One entry of the output, in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A node that passes the topology's checks.
    Node(Candidate),
    /// Something left out, and why.
    Skipped {
        /// Its name in the source.
        name: String,
        /// Why it was left out.
        reason: String,
    },
}

/// A discovered topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where it came from.
    pub source: Source,
    /// The options used.
    pub options: Options,
    /// Nodes and skipped entries, sorted by name.
    pub items: Vec<Item>,
    /// The cluster pod ranges found (one per family at most).
    pub cluster_cidrs: Vec<IpNet>,
}

impl Discovery {
    /// The nodes written.
    pub fn nodes(&self) -> impl Iterator<Item = &Candidate> {
        self.items.iter().filter_map(|i| match i {
            Item::Node(c) => Some(c),
            Item::Skipped { .. } => None,
        })
    }

    /// How many entries were left out.
    pub fn skipped(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Skipped { .. }))
            .count()
    }
}

/// Checks an interface name with the topology's own rule.
pub fn check_interface(interface: &str) -> Result<(), String> {
    let text = format!(
        "[cluster]\ninterface = {}\n[[nodes]]\nname = \"probe\"\ninternal_ip = \"192.0.2.1\"\n",
        quote(interface)
    );
    match topology::parse(text.as_bytes(), "--interface", None) {
        Ok(_) => Ok(()),
        Err(p) => Err(p.0.first().map(|p| p.message.clone()).unwrap_or_default()),
    }
}

/// Reads `lxc list --format json` (or Incus's identical output).
pub fn from_lxc(json: &[u8], source: Source, options: Options) -> Result<Discovery, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let list = value
        .as_array()
        .ok_or("expected a JSON array of instances")?;
    let mut found = Vec::new();
    for inst in list {
        let Some(name) = inst.get("name").and_then(Value::as_str) else {
            continue;
        };
        found.push(lxc_instance(name, inst, &options));
    }
    Ok(finish(source, options, found))
}

/// One `lxc list` entry -> a candidate, or why it is skipped.
fn lxc_instance(name: &str, inst: &Value, o: &Options) -> Result<Candidate, (String, String)> {
    let skip = |why: String| Err((name.to_string(), why));
    let status = inst.get("status").and_then(Value::as_str).unwrap_or("");
    if !status.eq_ignore_ascii_case("running") {
        let status = if status.is_empty() { "unknown" } else { status };
        return skip(format!(
            "not running (status {status}): only running instances show their addresses"
        ));
    }
    let Some(network) = inst
        .get("state")
        .and_then(|s| s.get("network"))
        .and_then(Value::as_object)
    else {
        return skip("no network state reported".to_string());
    };
    let addrs = |iface: &str| -> Vec<(IpAddr, u8)> {
        network
            .get(iface)
            .and_then(|n| n.get("addresses"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| {
                let scope = a.get("scope").and_then(Value::as_str).unwrap_or("global");
                scope != "link" && scope != "local" && scope != "host"
            })
            .filter_map(|a| {
                let addr = IpAddr::from_str(a.get("address")?.as_str()?).ok()?;
                let len = netmask_len(a.get("netmask")?, &addr)?;
                Some((addr, len))
            })
            .collect()
    };
    let mut notes = Vec::new();
    let (internal, extra) = first_per_family(&addrs(&o.interface), |(a, _)| Family::of_addr(a));
    let internal_ips: Vec<IpAddr> = internal.into_iter().map(|(a, _)| a).collect();
    for (a, len) in extra {
        notes.push(format!("{} also has {a}/{len} (not used)", o.interface));
    }
    if internal_ips.is_empty() {
        let mut others: Vec<&str> = network
            .keys()
            .map(String::as_str)
            .filter(|i| *i != "lo" && !addrs(i).is_empty())
            .collect();
        others.sort();
        let has = if others.is_empty() {
            "it has no global address at all".to_string()
        } else {
            format!("it has addresses on {}", others.join(", "))
        };
        return skip(format!("no global address on {} ({has})", o.interface));
    }
    let (bridge, extra) = first_per_family(&addrs(&o.pod_bridge), |(a, _)| Family::of_addr(a));
    for (a, len) in extra {
        notes.push(format!("{} also has {a}/{len} (not used)", o.pod_bridge));
    }
    let mut pod_cidrs = Vec::new();
    for (addr, len) in bridge {
        let Some(net) = IpNet::new(addr, len).ok().map(|n| n.trunc()) else {
            continue;
        };
        let family = Family::of_addr(&addr);
        if internal_ips.iter().any(|a| Family::of_addr(a) == family) {
            pod_cidrs.push(net);
        } else {
            notes.push(format!(
                "{} has {addr}/{len}, but {} has no {family} address: pod_cidr {net} left out",
                o.pod_bridge, o.interface
            ));
        }
    }
    candidate(name, internal_ips, pod_cidrs, notes, o.transport)
        .map_err(|why| (name.to_string(), why))
}

/// The first of each family (IPv4 first), and the others.
fn first_per_family<T: Copy>(items: &[T], family: impl Fn(&T) -> Family) -> (Vec<T>, Vec<T>) {
    let mut kept: Vec<T> = Vec::new();
    let mut others = Vec::new();
    for item in items {
        if kept.iter().any(|k| family(k) == family(item)) {
            others.push(*item);
        } else {
            kept.push(*item);
        }
    }
    kept.sort_by_key(|k| family(k));
    (kept, others)
}

/// LXD prints the netmask as a prefix length in a string (`"24"`); accept a number or a dotted
/// IPv4 mask too.
fn netmask_len(v: &Value, addr: &IpAddr) -> Option<u8> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => s.parse::<u8>().ok().or_else(|| {
            let mask = std::net::Ipv4Addr::from_str(s).ok()?;
            let bits = u32::from(mask);
            (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
        }),
        _ => None,
    }?;
    (len <= max).then_some(len)
}

/// Reads `kubectl get nodes -o json`: `spec.podCIDRs` (or `spec.podCIDR`) and the `InternalIP`
/// entries of `status.addresses`, both families.
pub fn from_kubernetes(json: &[u8], options: Options) -> Result<Discovery, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = match (&value, value.get("items")) {
        (_, Some(Value::Array(items))) => items.clone(),
        (Value::Object(_), None) if value.get("kind").and_then(Value::as_str) == Some("Node") => {
            vec![value.clone()]
        }
        _ => return Err("expected a NodeList with `items` (kubectl get nodes -o json)".into()),
    };
    let mut found = Vec::new();
    for node in &items {
        let Some(name) = node
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        found.push(kube_node(name, node, &options));
    }
    Ok(finish(Source::Kubernetes, options, found))
}

fn kube_node(name: &str, node: &Value, o: &Options) -> Result<Candidate, (String, String)> {
    let mut notes = Vec::new();
    let internal: Vec<IpAddr> = node
        .get("status")
        .and_then(|s| s.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .filter_map(|a| IpAddr::from_str(a.get("address")?.as_str()?).ok())
        .collect();
    let (internal_ips, extra) = first_per_family(&internal, Family::of_addr);
    for a in extra {
        notes.push(format!("another InternalIP {a} (not used)"));
    }
    if internal_ips.is_empty() {
        return Err((
            name.to_string(),
            "no InternalIP in status.addresses".to_string(),
        ));
    }
    let spec = node.get("spec");
    let mut texts: Vec<String> = spec
        .and_then(|s| s.get("podCIDRs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if texts.is_empty()
        && let Some(c) = spec.and_then(|s| s.get("podCIDR")).and_then(Value::as_str)
    {
        texts.push(c.to_string());
    }
    let mut pod_cidrs: Vec<IpNet> = Vec::new();
    for t in texts {
        match IpNet::from_str(&t) {
            Ok(net) => {
                let family = Family::of_net(&net);
                if pod_cidrs.iter().any(|c| Family::of_net(c) == family) {
                    notes.push(format!("another {family} pod CIDR {net} (not used)"));
                } else if !internal_ips.iter().any(|a| Family::of_addr(a) == family) {
                    notes.push(format!(
                        "pod CIDR {net} left out: the node has no {family} InternalIP"
                    ));
                } else {
                    pod_cidrs.push(net.trunc());
                }
            }
            Err(_) => notes.push(format!("pod CIDR `{t}` is not a CIDR (not used)")),
        }
    }
    pod_cidrs.sort_by_key(Family::of_net);
    candidate(name, internal_ips, pod_cidrs, notes, o.transport)
        .map_err(|why| (name.to_string(), why))
}

/// A candidate whose name is valid for the topology: the source's name if it is, else a
/// sanitized one with `instance` keeping the original (for Kubernetes, an instance guessed from
/// the first DNS label of the node name).
fn candidate(
    name: &str,
    internal_ips: Vec<IpAddr>,
    pod_cidrs: Vec<IpNet>,
    mut notes: Vec<String>,
    transport: TransportKind,
) -> Result<Candidate, String> {
    let clean = sanitize(name);
    if clean.is_empty() {
        return Err("no usable node name can be made from it".to_string());
    }
    let mut instance = (clean != name).then(|| name.to_string());
    if clean != name {
        notes.push(format!("node name made from `{name}`"));
    }
    // A node name such as `worker-0.example.org` is not an LXD/Incus instance name; its first
    // label usually is.
    if transport != TransportKind::Netns && name.contains('.') {
        let label = name.split('.').next().unwrap_or(name).to_string();
        notes.push(format!(
            "instance `{label}` guessed from the node name: check it"
        ));
        instance = Some(label);
    }
    Ok(Candidate {
        name: clean,
        instance,
        internal_ips,
        pod_cidrs,
        notes,
    })
}

/// Letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 63 characters
/// (the topology's node-name rule); anything else becomes `-`.
fn sanitize(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    trimmed.chars().take(63).collect()
}

/// Sorts, checks every candidate with the topology parser, drops what conflicts with a node
/// before it, and finds the cluster range.
fn finish(
    source: Source,
    options: Options,
    found: Vec<Result<Candidate, (String, String)>>,
) -> Discovery {
    let mut found = found;
    found.sort_by(|a, b| key(a).cmp(key(b)));
    let mut items: Vec<Item> = Vec::new();
    let mut accepted: Vec<Candidate> = Vec::new();
    for f in found {
        let c = match f {
            Err((name, reason)) => {
                items.push(Item::Skipped { name, reason });
                continue;
            }
            Ok(c) => c,
        };
        let original = c.instance.clone().unwrap_or_else(|| c.name.clone());
        match check_alone(&c, &options).and_then(|_| check_against(&c, &accepted)) {
            Ok(()) => {
                accepted.push(c.clone());
                items.push(Item::Node(c));
            }
            Err(reason) => items.push(Item::Skipped {
                name: original,
                reason,
            }),
        }
    }
    let cluster_cidrs = [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter_map(|f| covering_range(&accepted, f))
        .collect();
    Discovery {
        source,
        options,
        items,
        cluster_cidrs,
    }
}

fn key(f: &Result<Candidate, (String, String)>) -> &str {
    match f {
        Ok(c) => &c.name,
        Err((n, _)) => n,
    }
}

/// The node as a one-node topology, through the real parser.
fn check_alone(c: &Candidate, o: &Options) -> Result<(), String> {
    let mut text = cluster_text(o, &[]);
    node_text(c, &mut text);
    topology::parse(text.as_bytes(), "discovered", None)
        .map(|_| ())
        .map_err(|p| {
            p.0.iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// What the topology's cross-checks would refuse against the nodes already accepted.
fn check_against(c: &Candidate, accepted: &[Candidate]) -> Result<(), String> {
    let instance = |x: &Candidate| x.instance.clone().unwrap_or_else(|| x.name.clone());
    for a in accepted {
        if a.name == c.name {
            return Err(format!("its node name `{}` is already taken", c.name));
        }
        if instance(a) == instance(c) {
            return Err(format!(
                "instance `{}` is already node `{}`",
                instance(c),
                a.name
            ));
        }
        if let Some(ip) = c.internal_ips.iter().find(|ip| a.internal_ips.contains(ip)) {
            return Err(format!("internal IP {ip} is already node `{}`'s", a.name));
        }
        for net in &c.pod_cidrs {
            if let Some(other) = a
                .pod_cidrs
                .iter()
                .find(|o| o.contains(&net.network()) || net.contains(&o.network()))
            {
                return Err(format!(
                    "pod CIDR {net} overlaps pod CIDR {other} of node `{}`",
                    a.name
                ));
            }
            if let Some(ip) = a.internal_ips.iter().find(|ip| net.contains(*ip)) {
                return Err(format!(
                    "pod CIDR {net} holds internal IP {ip} of node `{}`",
                    a.name
                ));
            }
        }
        if let Some((ip, net)) = c
            .internal_ips
            .iter()
            .find_map(|ip| a.pod_cidrs.iter().find(|n| n.contains(ip)).map(|n| (ip, n)))
        {
            return Err(format!(
                "internal IP {ip} lies in pod CIDR {net} of node `{}`",
                a.name
            ));
        }
    }
    Ok(())
}

/// The one obvious range covering every pod CIDR of a family: the common prefix of at least two
/// CIDRs, widened to an octet (IPv4) or 16-bit group (IPv6) boundary, holding no internal IP.
/// `None` when there is no such range.
pub fn covering_range(nodes: &[Candidate], family: Family) -> Option<IpNet> {
    let cidrs: Vec<IpNet> = nodes
        .iter()
        .flat_map(|n| n.pod_cidrs.iter().copied())
        .filter(|c| Family::of_net(c) == family)
        .collect();
    if cidrs.len() < 2 {
        return None;
    }
    let bits = |n: &IpNet| -> u128 {
        match n {
            IpNet::V4(v) => u128::from(u32::from(v.network())) << 96,
            IpNet::V6(v) => u128::from(v.network()),
        }
    };
    let first = bits(&cidrs[0]);
    let mut len = cidrs.iter().map(|c| c.prefix_len()).min().unwrap_or(0);
    for c in &cidrs[1..] {
        let common = (first ^ bits(c)).leading_zeros().min(128) as u8;
        len = len.min(common);
    }
    let step = if family == Family::Ipv4 { 8 } else { 16 };
    let len = len - len % step;
    if len == 0 {
        return None;
    }
    let range = IpNet::new(cidrs[0].network(), len).ok()?.trunc();
    if nodes
        .iter()
        .flat_map(|n| n.internal_ips.iter())
        .any(|ip| range.contains(ip))
    {
        return None;
    }
    Some(range)
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn one_or_many<T: ToString>(values: &[T]) -> String {
    match values {
        [one] => quote(&one.to_string()),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| quote(&v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn cluster_text(o: &Options, cidrs: &[IpNet]) -> String {
    let mut s = format!(
        "[cluster]\ninterface = {}\ntransport = {}\n",
        quote(&o.interface),
        quote(o.transport.name())
    );
    if !cidrs.is_empty() {
        let _ = writeln!(s, "pod_cidr = {}", one_or_many(cidrs));
    }
    s
}

fn node_text(c: &Candidate, out: &mut String) {
    for n in &c.notes {
        let _ = writeln!(out, "# {n}");
    }
    let _ = writeln!(out, "[[nodes]]\nname = {}", quote(&c.name));
    if let Some(i) = &c.instance {
        let _ = writeln!(out, "instance = {}", quote(i));
    }
    let _ = writeln!(out, "internal_ip = {}", one_or_many(&c.internal_ips));
    if !c.pod_cidrs.is_empty() {
        let _ = writeln!(out, "pod_cidr = {}", one_or_many(&c.pod_cidrs));
    }
}

/// The topology as TOML, with comments for people.
pub fn render(d: &Discovery) -> String {
    let o = &d.options;
    let nodes = d.nodes().count();
    let with_pods = d.nodes().filter(|n| !n.pod_cidrs.is_empty()).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Discovered by `routectl discover` from `{}`: {nodes} node{} ({with_pods} with a pod \
         CIDR), {} skipped.",
        o.origin,
        if nodes == 1 { "" } else { "s" },
        d.skipped()
    );
    let _ = writeln!(
        out,
        "# Review it, then: routectl validate -f FILE && routectl plan -f FILE\n"
    );
    let _ = writeln!(out, "[cluster]");
    let _ = writeln!(out, "interface = {}", quote(&o.interface));
    match d.source {
        Source::Kubernetes => {
            let _ = writeln!(
                out,
                "# Kubernetes does not say which interface holds the InternalIP, nor how to reach \
                 the nodes: check both (transport: lxc, incus or netns)."
            );
            let _ = writeln!(out, "transport = {}", quote(o.transport.name()));
        }
        Source::Lxc | Source::Incus => {
            let _ = writeln!(out, "transport = {}", quote(o.transport.name()));
        }
    }
    if d.cluster_cidrs.is_empty() {
        if with_pods > 1 {
            let _ = writeln!(
                out,
                "# pod_cidr: no single obvious range covers every node's pod CIDR; add the \
                 cluster's if it has one."
            );
        }
    } else {
        let _ = writeln!(out, "pod_cidr = {}", one_or_many(&d.cluster_cidrs));
    }
    for item in &d.items {
        out.push('\n');
        match item {
            Item::Node(c) => node_text(c, &mut out),
            Item::Skipped { name, reason } => {
                let _ = writeln!(out, "# skipped `{}`: {reason}", name.replace('\n', " "));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lxc list --format json` captured on the LXD lab, with one stopped instance added to the
    /// lab for the capture (`lxc init routectl-lab ux-capture-stopped`, deleted afterwards).
    const LAB_LIST: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lab/lxc-list-with-stopped.json"
    ));

    fn options(transport: TransportKind) -> Options {
        Options {
            interface: "eth1".into(),
            pod_bridge: "cnio0".into(),
            transport,
            origin: "lxc list --format json".into(),
        }
    }

    #[test]
    fn the_lab_becomes_the_example_topology() {
        let d = from_lxc(LAB_LIST, Source::Lxc, options(TransportKind::Lxc)).unwrap();
        let text = render(&d);
        let t = topology::parse(text.as_bytes(), "discovered", None)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
        let example = topology::parse(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/topology.example.toml"
            )),
            "topology.example.toml",
            None,
        )
        .unwrap();
        let strip = |t: &topology::Topology| {
            t.nodes
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        n.instance.clone(),
                        n.internal_ips.clone(),
                        n.pod_cidrs.clone(),
                        n.interface.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&t), strip(&example));
        assert_eq!(t.cluster, example.cluster);
        assert!(
            text.contains(
                "# skipped `ux-capture-stopped`: not running (status Stopped): only running \
                 instances show their addresses"
            ),
            "{text}"
        );
        // Stable: the same input gives the same bytes.
        let again = from_lxc(LAB_LIST, Source::Lxc, options(TransportKind::Lxc)).unwrap();
        assert_eq!(render(&again), text);
    }

    fn instance(name: &str, status: &str, net: &str) -> String {
        format!(r#"{{"name":"{name}","status":"{status}","state":{{"network":{net}}}}}"#)
    }

    fn iface(addrs: &[(&str, &str, &str, &str)]) -> String {
        let a: Vec<String> = addrs
            .iter()
            .map(|(f, a, m, s)| {
                format!(r#"{{"family":"{f}","address":"{a}","netmask":"{m}","scope":"{s}"}}"#)
            })
            .collect();
        format!(r#"{{"addresses":[{}]}}"#, a.join(","))
    }

    #[test]
    fn skips_with_reasons_sanitizes_and_handles_dual_stack() {
        // Entries in the format of `lxc list --format json` (see docs/FACTS): the edge cases the
        // lab does not have.
        let eth1 = |v4: &str, v6: &str| {
            iface(&[
                ("inet", v4, "24", "global"),
                ("inet6", v6, "64", "global"),
                ("inet6", "fe80::1", "64", "link"),
            ])
        };
        let list = format!(
            "[{}]",
            [
                instance(
                    "w-b",
                    "Running",
                    &format!(
                        r#"{{"eth1":{},"cnio0":{}}}"#,
                        eth1("10.0.2.21", "fd00::21"),
                        iface(&[
                            ("inet", "10.1.1.1", "24", "global"),
                            ("inet6", "fd01:0:1::1", "64", "global")
                        ])
                    ),
                ),
                instance(
                    "w-a",
                    "Running",
                    &format!(
                        r#"{{"eth1":{},"cnio0":{}}}"#,
                        eth1("10.0.2.20", "fd00::20"),
                        iface(&[
                            ("inet", "10.1.0.1", "255.255.255.0", "global"),
                            ("inet6", "fd01::1", "64", "global")
                        ])
                    ),
                ),
                instance(
                    "haproxy",
                    "Running",
                    &format!(
                        r#"{{"eth0":{}}}"#,
                        iface(&[("inet", "10.0.1.100", "24", "global")])
                    ),
                ),
                instance(
                    "w-copy",
                    "Running",
                    &format!(
                        r#"{{"eth1":{},"cnio0":{}}}"#,
                        iface(&[("inet", "10.0.2.30", "24", "global")]),
                        iface(&[("inet", "10.1.0.1", "24", "global")])
                    ),
                ),
                instance("old", "Stopped", "null"),
                instance(
                    "wéird name",
                    "Running",
                    &format!(
                        r#"{{"eth1":{}}}"#,
                        iface(&[("inet", "10.0.2.40", "24", "global")])
                    ),
                ),
            ]
            .join(",")
        );
        let d = from_lxc(
            list.as_bytes(),
            Source::Incus,
            options(TransportKind::Incus),
        )
        .unwrap();
        let text = render(&d);
        let expected = r#"
[cluster]
interface = "eth1"
transport = "incus"
pod_cidr = ["10.1.0.0/16", "fd01::/32"]

# skipped `haproxy`: no global address on eth1 (it has addresses on eth0)

# skipped `old`: not running (status Stopped): only running instances show their addresses

[[nodes]]
name = "w-a"
internal_ip = ["10.0.2.20", "fd00::20"]
pod_cidr = ["10.1.0.0/24", "fd01::/64"]

[[nodes]]
name = "w-b"
internal_ip = ["10.0.2.21", "fd00::21"]
pod_cidr = ["10.1.1.0/24", "fd01:0:1::/64"]

# skipped `w-copy`: pod CIDR 10.1.0.0/24 overlaps pod CIDR 10.1.0.0/24 of node `w-a`

# skipped `wéird name`: "#;
        assert!(text.contains(expected), "{text}");
        // The instance name is not one LXD/Incus could have: the parser's reason is given.
        assert!(
            text.contains("is not a valid incus instance name"),
            "{text}"
        );
        topology::parse(text.as_bytes(), "discovered", None)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
    }

    #[test]
    fn a_second_address_of_a_family_is_noted_not_used() {
        let list = format!(
            "[{}]",
            instance(
                "w",
                "Running",
                &format!(
                    r#"{{"eth1":{}}}"#,
                    iface(&[
                        ("inet", "10.0.2.20", "24", "global"),
                        ("inet", "10.0.2.99", "24", "global")
                    ])
                )
            )
        );
        let text =
            render(&from_lxc(list.as_bytes(), Source::Lxc, options(TransportKind::Lxc)).unwrap());
        assert!(
            text.contains("# eth1 also has 10.0.2.99/24 (not used)\n[[nodes]]\nname = \"w\"\ninternal_ip = \"10.0.2.20\"\n"),
            "{text}"
        );
    }

    #[test]
    fn a_valid_instance_with_an_invalid_node_name_keeps_its_instance() {
        let c = candidate(
            "_build-1",
            vec!["10.0.2.9".parse().unwrap()],
            vec![],
            vec![],
            TransportKind::Netns,
        )
        .unwrap();
        assert_eq!(c.name, "build-1");
        assert_eq!(c.instance.as_deref(), Some("_build-1"));
        assert_eq!(sanitize("a b/c"), "a-b-c");
        assert_eq!(sanitize("--"), "");
    }

    #[test]
    fn covering_ranges_are_obvious_or_absent() {
        let node = |ip: &str, cidr: &str| Candidate {
            name: ip.into(),
            instance: None,
            internal_ips: vec![ip.parse().unwrap()],
            pod_cidrs: vec![cidr.parse().unwrap()],
            notes: vec![],
        };
        let v4 = |nodes: &[Candidate]| covering_range(nodes, Family::Ipv4).map(|n| n.to_string());
        assert_eq!(
            v4(&[
                node("10.0.2.20", "10.1.0.0/24"),
                node("10.0.2.21", "10.1.1.0/24")
            ]),
            Some("10.1.0.0/16".into())
        );
        // One CIDR is no evidence of a range.
        assert_eq!(v4(&[node("10.0.2.20", "10.1.0.0/24")]), None);
        // Nothing in common.
        assert_eq!(
            v4(&[
                node("10.0.2.20", "10.1.0.0/24"),
                node("10.0.2.21", "192.168.1.0/24")
            ]),
            None
        );
        // The widened range would hold the nodes' own addresses.
        assert_eq!(
            v4(&[
                node("10.0.2.20", "10.1.0.0/24"),
                node("10.0.2.21", "10.2.0.0/24")
            ]),
            None
        );
    }

    #[test]
    fn kubernetes_nodes_both_families() {
        // The shape of `kubectl get nodes -o json` (a v1 List of Nodes; no cluster here to
        // capture one from), with some of the noise around what matters.
        let json = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/kubectl-get-nodes.json"
        ));
        let d = from_kubernetes(
            json,
            Options {
                origin: "nodes.json".into(),
                ..options(TransportKind::Lxc)
            },
        )
        .unwrap();
        let text = render(&d);
        let t = topology::parse(text.as_bytes(), "discovered", None)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
        let names: Vec<(&str, &str)> = t
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.instance.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("controller-0.lab.example", "controller-0"),
                ("worker-0", "worker-0"),
                ("worker-1", "worker-1"),
            ]
        );
        assert_eq!(t.nodes[2].pod_cidrs.len(), 2);
        assert_eq!(t.nodes[1].pod_cidrs[0].to_string(), "10.1.0.0/24");
        assert!(text.contains("# skipped `ghost`: no InternalIP in status.addresses"));
        assert!(text.contains("# instance `controller-0` guessed from the node name: check it"));
        assert!(text.contains("Kubernetes does not say"));
        // Only one IPv6 pod CIDR: no IPv6 cluster range.
        assert_eq!(t.cluster.pod_cidrs.len(), 1);
        assert!(from_kubernetes(b"[]", options(TransportKind::Lxc)).is_err());
    }

    #[test]
    fn interface_names_follow_the_topology_rule() {
        assert!(check_interface("eth1").is_ok());
        assert!(
            check_interface("eth 1")
                .unwrap_err()
                .contains("not a valid interface name")
        );
    }
}
