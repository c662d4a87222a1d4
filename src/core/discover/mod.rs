//! `routectl discover`: a topology written from what already exists. Pure: it reads the JSON of
//! `lxc list --format json` / `incus list --format json` or `kubectl get nodes -o json` (the
//! command module runs them), or the upstream tutorial's `machines.txt`, and writes TOML text.
//!
//! Candidates are built as values, and every node it writes is checked with the topology's own
//! rules ([`topology::node_problems`], [`topology::cross_check`]), alone and then against the
//! nodes before it (names, instances, addresses, overlapping pod CIDRs); what they refuse is
//! left out with a `#` comment saying why, so the result always passes `routectl validate`. The
//! TOML is written once, at the end ([`render`]). Nodes are sorted by name, so the output is
//! stable.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::core::route::Family;
use crate::core::topology::{self, Node, TransportKind};

mod render;
mod sources;

pub use render::{render, subnets_warning};
pub use sources::{from_kubernetes, from_lxc, from_machines, glob_match};

/// Where the nodes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `lxc list --format json`.
    Lxc,
    /// `incus list --format json` (same format).
    Incus,
    /// `kubectl get nodes -o json`.
    Kubernetes,
    /// The upstream tutorial's `machines.txt`: `IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]`.
    Machines,
}

/// What discovery needs besides the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The interface that carries each node's internal IP (LXD/Incus), written as
    /// `cluster.interface`; `None` writes none (machines: the kernel picks the device).
    pub interface: Option<String>,
    /// The bridge whose network is a node's pod CIDR (LXD/Incus).
    pub pod_bridge: String,
    /// The transport written into the topology.
    pub transport: TransportKind,
    /// How the input was obtained, for the header comment (`lxc list --format json`).
    pub origin: String,
    /// The LXD/Incus project listed, written as `cluster.project`.
    pub project: Option<String>,
    /// Only instances whose name matches one of these globs (`*`, `?`) are taken (all when
    /// empty).
    pub name_patterns: Vec<String>,
    /// Only instances that use this profile are taken.
    pub profile: Option<String>,
    /// ssh: written as `cluster.ssh_config`.
    pub ssh_config: Option<String>,
    /// ssh: each node's address becomes `USER@INTERNAL_IP`.
    pub ssh_user: Option<String>,
    /// LXD/Incus cluster: only the instances located on this member (its name, `local`
    /// already resolved); all members' when `None`.
    pub member: Option<String>,
}

impl Options {
    /// Options for a source with everything else at its default.
    pub fn new(transport: TransportKind, origin: &str) -> Options {
        Options {
            interface: None,
            pod_bridge: "cnio0".to_string(),
            transport,
            origin: origin.to_string(),
            project: None,
            name_patterns: Vec::new(),
            profile: None,
            ssh_config: None,
            ssh_user: None,
            member: None,
        }
    }

    /// The interface an LXD/Incus instance's internal IP is read from.
    pub(super) fn lxc_interface(&self) -> &str {
        self.interface.as_deref().unwrap_or("eth1")
    }
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
    /// The networks of the internal IPs, where the source tells them (`lxc list`).
    pub networks: Vec<IpNet>,
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
    /// Instances left out because they do not match `--name` / `--profile`.
    pub filtered_out: usize,
}

impl Discovery {
    /// When the nodes' internal IPs lie in more than one network of a family: each network with
    /// its nodes, in order (empty when they share one, or the source does not tell).
    /// host-gw routes need one shared segment, so such a merge is worth a warning.
    pub fn mixed_subnets(&self) -> Vec<(IpNet, Vec<String>)> {
        let mut by_net: std::collections::BTreeMap<IpNet, Vec<String>> = Default::default();
        for n in self.nodes() {
            for net in &n.networks {
                by_net.entry(*net).or_default().push(n.name.clone());
            }
        }
        let families = |v4: bool| {
            by_net
                .keys()
                .filter(|n| matches!(n, IpNet::V4(_)) == v4)
                .count()
        };
        if families(true) > 1 || families(false) > 1 {
            by_net.into_iter().collect()
        } else {
            Vec::new()
        }
    }

    /// The nodes written.
    pub fn nodes(&self) -> impl Iterator<Item = &Candidate> {
        self.items.iter().filter_map(|i| match i {
            Item::Node(c) => Some(c),
            Item::Skipped { .. } => None,
        })
    }

    /// Each entry left out (its name in the source) and why.
    pub fn skipped_entries(&self) -> Vec<(String, String)> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Skipped { name, reason } => Some((name.clone(), reason.clone())),
                Item::Node(_) => None,
            })
            .collect()
    }

    /// How many entries were left out.
    pub fn skipped(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Skipped { .. }))
            .count()
    }
}

/// The first of each family (IPv4 first), and the others.
pub(super) fn first_per_family<T: Copy>(
    items: &[T],
    family: impl Fn(&T) -> Family,
) -> (Vec<T>, Vec<T>) {
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

/// A candidate whose name is valid for the topology: the source's name if it is, else a
/// sanitized one with `instance` keeping the original (for Kubernetes, an instance guessed from
/// the first DNS label of the node name).
pub(super) fn candidate(
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
    // ssh reaches a node at its address (the internal IP), never an instance.
    if transport == TransportKind::Ssh {
        instance = None;
    }
    // A node name such as `worker-0.example.org` is not an LXD/Incus instance name; its first
    // label usually is.
    if transport.is_lxd_like() && name.contains('.') {
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
        networks: Vec::new(),
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

/// Sorts, checks every candidate with the topology's rules, drops what conflicts with a node
/// before it, and finds the cluster range.
pub(super) fn finish(
    source: Source,
    options: Options,
    found: Vec<Result<Candidate, (String, String)>>,
) -> Discovery {
    let mut found = found;
    found.sort_by(|a, b| key(a).cmp(key(b)));
    let mut items: Vec<Item> = Vec::new();
    let mut accepted: Vec<Candidate> = Vec::new();
    let mut accepted_nodes: Vec<Node> = Vec::new();
    for f in found {
        let c = match f {
            Err((name, reason)) => {
                items.push(Item::Skipped { name, reason });
                continue;
            }
            Ok(c) => c,
        };
        let node = c.node(&options);
        match refusal(&node, &accepted_nodes, &options) {
            None => {
                accepted_nodes.push(node);
                accepted.push(c.clone());
                items.push(Item::Node(c));
            }
            Some(reason) => items.push(Item::Skipped {
                name: node.instance,
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
        filtered_out: 0,
    }
}

fn key(f: &Result<Candidate, (String, String)>) -> &str {
    match f {
        Ok(c) => &c.name,
        Err((n, _)) => n,
    }
}

impl Candidate {
    /// The node this candidate would be in the topology written (`line` 0: not from a file).
    pub fn node(&self, o: &Options) -> Node {
        let instance = if o.transport == TransportKind::Ssh {
            let ip = self
                .internal_ips
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            match &o.ssh_user {
                Some(u) => format!("{u}@{ip}"),
                None => ip,
            }
        } else {
            self.instance.clone().unwrap_or_else(|| self.name.clone())
        };
        Node {
            name: self.name.clone(),
            instance,
            project: o.project.clone(),
            interface: o.interface.clone(),
            internal_ips: self.internal_ips.clone(),
            pod_cidrs: self.pod_cidrs.clone(),
            line: 0,
            persist: topology::Persist::None,
        }
    }
}

/// What the topology's rules refuse in a candidate alone, or against the nodes already
/// accepted (the same checks `routectl validate` makes, on values).
fn refusal(node: &Node, accepted: &[Node], o: &Options) -> Option<String> {
    let alone = topology::node_problems(node, o.transport);
    if !alone.is_empty() {
        return Some(alone.join("; "));
    }
    let mut all: Vec<&Node> = accepted.iter().collect();
    all.push(node);
    let new = accepted.len();
    let against: Vec<String> = topology::cross_check(&all, &[], o.transport)
        .into_iter()
        .filter(|p| p.node == new || p.other == new)
        .map(|p| p.message)
        .collect();
    (!against.is_empty()).then(|| against.join("; "))
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
            interface: Some("eth1".into()),
            ..Options::new(transport, "lxc list --format json")
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

    /// Instances in the format of `lxc list --format json`: two dual-stack nodes, one without
    /// the interface, one with a copied pod gateway, one stopped, one with a name no instance
    /// could have.
    fn edge_cases() -> String {
        // Entries in the format of `lxc list --format json` (see docs/FACTS): the edge cases the
        // lab does not have.
        let eth1 = |v4: &str, v6: &str| {
            iface(&[
                ("inet", v4, "24", "global"),
                ("inet6", v6, "64", "global"),
                ("inet6", "fe80::1", "64", "link"),
            ])
        };
        format!(
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
        )
    }

    #[test]
    fn skips_with_reasons_sanitizes_and_handles_dual_stack() {
        let list = edge_cases();
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

# skipped `w-copy`: node `w-copy`: pod_cidr 10.1.0.0/24 overlaps pod_cidr 10.1.0.0/24 of node `w-a`

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
            networks: vec![],
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
    fn candidates_are_held_to_the_topologys_rules() {
        let o = options(TransportKind::Lxc);
        let c = |name: &str, ip: &str, cidr: &str| Candidate {
            name: name.into(),
            instance: None,
            internal_ips: vec![ip.parse().unwrap()],
            pod_cidrs: vec![cidr.parse().unwrap()],
            notes: vec![],
            networks: vec![],
        };
        let a = c("a", "10.0.2.20", "10.1.0.0/24").node(&o);
        assert_eq!(refusal(&a, &[], &o), None);
        // A prefix enclosing an accepted node's is refused, although the problem is found on
        // the accepted node (it sorts after).
        let wide = c("b", "10.0.2.21", "10.1.0.0/16").node(&o);
        assert_eq!(
            refusal(&wide, std::slice::from_ref(&a), &o).as_deref(),
            Some("node `a`: pod_cidr 10.1.0.0/24 overlaps pod_cidr 10.1.0.0/16 of node `b`")
        );
        let same_ip = c("c", "10.0.2.20", "10.1.2.0/24").node(&o);
        assert_eq!(
            refusal(&same_ip, std::slice::from_ref(&a), &o).as_deref(),
            Some("node `c`: internal_ip 10.0.2.20 is already used by node `a`")
        );
        let inside = c("d", "10.1.0.9", "10.1.3.0/24").node(&o);
        assert_eq!(
            refusal(&inside, std::slice::from_ref(&a), &o).as_deref(),
            Some("node `d`: internal_ip 10.1.0.9 lies inside pod_cidr 10.1.0.0/24 of node `a`")
        );
        let bad = c("under_score", "10.0.2.30", "10.1.4.0/24").node(&o);
        assert!(
            refusal(&bad, &[], &o)
                .unwrap()
                .contains("cannot be used as a lxc instance name")
        );
    }

    const UPSTREAM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/machines/upstream.txt"
    ));

    fn machines(text: &[u8]) -> Result<Discovery, String> {
        from_machines(text, Options::new(TransportKind::Ssh, "machines.txt"))
    }

    #[test]
    fn the_upstream_machines_file_becomes_an_ssh_topology_without_devices() {
        let d = machines(UPSTREAM).unwrap();
        let text = render(&d);
        let t = topology::parse(text.as_bytes(), "discovered", None)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(t.cluster.transport, TransportKind::Ssh);
        assert_eq!(
            t.cluster.pod_cidrs,
            ["10.3.0.0/16".parse::<IpNet>().unwrap()]
        );
        let nodes: Vec<(&str, &str, Option<&str>, usize)> = t
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.instance.as_str(),
                    n.interface.as_deref(),
                    n.pod_cidrs.len(),
                )
            })
            .collect();
        assert_eq!(
            nodes,
            [
                ("node-0", "10.0.4.20", None, 1),
                ("node-1", "10.0.4.21", None, 1),
                ("server", "10.0.4.10", None, 0),
            ]
        );
        assert!(!text.contains("interface ="), "{text}");
        assert!(text.contains("# server.kubernetes.local, line 1 of the machines file"));
        // The server has no pod subnet and still gets a route to every node's.
        let server = t.node("server").unwrap();
        let routes: Vec<String> = crate::core::desired::routes_for(&t, server)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            routes,
            [
                "10.3.0.0/24 via 10.0.4.20 proto 211",
                "10.3.1.0/24 via 10.0.4.21 proto 211"
            ]
        );
    }

    #[test]
    fn machines_comments_blank_lines_tabs_user_and_ssh_config() {
        let text = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/machines/commented.txt"
        ));
        let d = from_machines(
            text,
            Options {
                ssh_user: Some("root".into()),
                ssh_config: Some("ssh_config".into()),
                ..Options::new(TransportKind::Ssh, "machines.txt")
            },
        )
        .unwrap();
        let out = render(&d);
        let t = topology::parse(out.as_bytes(), "discovered", None)
            .unwrap_or_else(|p| panic!("{p}\n{out}"));
        assert_eq!(t.nodes.len(), 2, "{out}");
        assert_eq!(t.node("server").unwrap().instance, "root@10.0.4.10");
        assert_eq!(t.cluster.ssh_config.as_deref(), Some("ssh_config"));
        // One pod CIDR: no cluster range can be told from it.
        assert!(t.cluster.pod_cidrs.is_empty());
    }

    #[test]
    fn a_malformed_machines_row_is_an_error_naming_its_line() {
        for (text, want) in [
            (
                "10.0.4.10 server.kubernetes.local\n",
                "line 1: expected `IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]`, found 2 fields",
            ),
            (
                "# ok\n10.0.4.10 s.k s\n10.0.4.20 n.k n 10.3.0.0/24 extra\n",
                "line 3: expected `IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]`, found 5 fields",
            ),
            (
                "XXX.XXX.XXX.XXX server.kubernetes.local server\n",
                "line 1: `XXX.XXX.XXX.XXX` is not an IP address",
            ),
            (
                "10.0.4.20 n.k n 10.3.0.0\n",
                "line 1: `10.3.0.0` is not a CIDR such as 10.200.0.0/24",
            ),
            (
                "10.0.4.20 n.k n 10.3.0.1/24\n",
                "line 1: pod subnet `10.3.0.1/24` has host bits set (did you mean 10.3.0.0/24?)",
            ),
            (
                "10.0.4.20 n.k n fd00::/64\n",
                "line 1: pod subnet fd00::/64 and address 10.0.4.20 are not of the same family",
            ),
        ] {
            let e = machines(text.as_bytes()).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let e = machines(b"10.0.4.10 s.k s\n\xff\n").unwrap_err();
        assert_eq!(e, "line 2: not UTF-8 text");
    }

    #[test]
    fn a_duplicate_machine_is_left_out_with_the_reason() {
        let d = machines(b"10.0.4.20 a.k node-0 10.3.0.0/24\n10.0.4.21 b.k node-0 10.3.1.0/24\n")
            .unwrap();
        assert_eq!(d.nodes().count(), 1);
        let text = render(&d);
        assert!(
            text.contains("# skipped `10.0.4.21`: duplicate node name `node-0`"),
            "{text}"
        );
    }

    #[test]
    fn instances_are_picked_by_name_glob_and_profile() {
        let list = r#"[
 {"name":"worker-0","status":"Running","profiles":["default","k8s"],
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.2.20","netmask":"24","scope":"global"}]}}}},
 {"name":"worker-1","status":"Running","profiles":["default"],
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.2.21","netmask":"24","scope":"global"}]}}}},
 {"name":"other-0","status":"Running","profiles":["default","k8s"],
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.9.20","netmask":"24","scope":"global"}]}}}}
]"#;
        let names = |o: Options| -> (Vec<String>, usize) {
            let d = from_lxc(list.as_bytes(), Source::Lxc, o).unwrap();
            (d.nodes().map(|n| n.name.clone()).collect(), d.filtered_out)
        };
        let by_name = Options {
            name_patterns: vec!["worker-*".into()],
            ..options(TransportKind::Lxc)
        };
        assert_eq!(
            names(by_name),
            (vec!["worker-0".into(), "worker-1".into()], 1)
        );
        let by_profile = Options {
            profile: Some("k8s".into()),
            ..options(TransportKind::Lxc)
        };
        assert_eq!(
            names(by_profile),
            (vec!["other-0".into(), "worker-0".into()], 1)
        );
        let both = Options {
            name_patterns: vec!["worker-?".into()],
            profile: Some("k8s".into()),
            project: Some("team-a".into()),
            ..options(TransportKind::Lxc)
        };
        let d = from_lxc(list.as_bytes(), Source::Lxc, both).unwrap();
        let text = render(&d);
        assert!(
            text.contains("# 2 instances not matching --name worker-? and --profile k8s left out.")
        );
        let t = topology::parse(text.as_bytes(), "discovered", None).unwrap();
        assert_eq!(t.nodes[0].project.as_deref(), Some("team-a"));
    }

    /// On a cluster each instance says where it runs (a comment above its node), and
    /// `--member` (resolved to a member name) keeps only that member's instances.
    #[test]
    fn cluster_members_are_said_and_picked() {
        let list = r#"[
 {"name":"cl-w0","status":"Running","location":"m0",
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.8.20","netmask":"24","scope":"global"}]}}}},
 {"name":"cl-w1","status":"Running","location":"m1",
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.8.21","netmask":"24","scope":"global"}]}}}},
 {"name":"lone","status":"Running","location":"none",
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.8.30","netmask":"24","scope":"global"}]}}}}
]"#;
        let d = from_lxc(list.as_bytes(), Source::Lxc, options(TransportKind::Lxc)).unwrap();
        let text = render(&d);
        assert!(
            text.contains("# on cluster member m0\n[[nodes]]\nname = \"cl-w0\""),
            "{text}"
        );
        assert!(text.contains("# on cluster member m1\n[[nodes]]\nname = \"cl-w1\""));
        assert!(!text.contains("member none"), "{text}");
        let m1 = Options {
            member: Some("m1".into()),
            ..options(TransportKind::Lxc)
        };
        let d = from_lxc(list.as_bytes(), Source::Lxc, m1).unwrap();
        let names: Vec<&str> = d.nodes().map(|n| n.name.as_str()).collect();
        assert_eq!((names, d.filtered_out), (vec!["cl-w1"], 2));
        let text = render(&d);
        assert!(
            text.contains("# 2 instances not matching --member m1 left out."),
            "{text}"
        );
        topology::parse(text.as_bytes(), "discovered", None).unwrap();
    }

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("worker-*", "worker-0", true),
            ("worker-*", "worker-", true),
            ("worker-*", "xworker-0", false),
            ("*-0", "controller-0", true),
            ("w?rker-1", "worker-1", true),
            ("w?rker-1", "worker-10", false),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
    }
}
