//! `routectl discover`: a topology written from what already exists. Pure: it reads the JSON of
//! `lxc list --format json` / `incus list --format json` or `kubectl get nodes -o json` (the
//! command module runs them) and writes TOML text.
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

pub use render::render;
pub use sources::{from_kubernetes, from_lxc};

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
        Node {
            name: self.name.clone(),
            instance: self.instance.clone().unwrap_or_else(|| self.name.clone()),
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
    let against: Vec<String> = topology::cross_check(&all, &[])
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
}
