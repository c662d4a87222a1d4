//! Checks on topology values rather than text: the checks across nodes ([`cross_check`], used
//! by the file's checker too) and the checks of one node built in code ([`node_problems`], for
//! `routectl discover`), with the rules of [`super::names`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::names;
use super::{Node, TransportKind};
use crate::core::route::Family;

/// Which key of a node a problem found across nodes is about (so that a file's checker can
/// point at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `name`.
    Name,
    /// `instance` (or `name`, when the instance is the name).
    Instance,
    /// `interface`.
    Interface,
    /// `project`.
    Project,
    /// `internal_ip`.
    InternalIp,
    /// `pod_cidr`.
    PodCidr,
}

/// A problem that [`cross_check`] found between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProblem {
    /// The node it is reported on (an index into the nodes checked).
    pub node: usize,
    /// The other node involved (the earlier one with the same name, the owner of the prefix…).
    pub other: usize,
    /// The key it is about.
    pub key: Key,
    /// What is wrong.
    pub message: String,
}

/// How a message names an earlier node: by its line when it was read from a file, else by name.
fn earlier(n: &Node) -> String {
    if n.line > 0 {
        format!(
            "node `{}` (line {})",
            crate::core::text::shown(&n.name),
            n.line
        )
    } else {
        format!("node `{}`", crate::core::text::shown(&n.name))
    }
}

/// ` (line N)` for a node read from a file, nothing for one built in code.
fn line_note(n: &Node) -> String {
    if n.line > 0 {
        format!(" (line {})", n.line)
    } else {
        String::new()
    }
}

/// The checks across nodes, on values: names and instances unique, internal IPs unique, pod
/// CIDRs inside the cluster's range of their family, pairwise disjoint and holding no internal
/// IP. The topology file's checker and `routectl discover` both use it.
pub fn cross_check(
    nodes: &[&Node],
    cluster_cidrs: &[IpNet],
    transport: TransportKind,
) -> Vec<NodeProblem> {
    let mut found = Found(Vec::new());
    found.unique(nodes, transport);
    // Pod CIDRs: inside the cluster range, pairwise disjoint, holding no internal IP.
    let mut cidrs: Vec<(IpNet, usize)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for net in &node.pod_cidrs {
            cidrs.push((*net, i));
        }
    }
    found.outside_cluster(nodes, &cidrs, cluster_cidrs);
    cidrs.sort_by_key(|(n, _)| (n.network(), n.prefix_len()));
    found.overlaps(nodes, &cidrs);
    found.ips_in_pod_cidrs(nodes, &cidrs);
    found.0
}

/// The problems [`cross_check`] found so far.
struct Found(Vec<NodeProblem>);

impl Found {
    fn report(&mut self, node: usize, other: usize, key: Key, message: String) {
        self.0.push(NodeProblem {
            node,
            other,
            key,
            message,
        });
    }

    /// Names, instances (per project) and internal IPs used once.
    fn unique(&mut self, nodes: &[&Node], transport: TransportKind) {
        let what = if transport == TransportKind::Ssh {
            "address"
        } else {
            "instance"
        };
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        // The same instance name may be used in two projects.
        let mut instances: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut ips: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Some(first) = names.insert(&node.name, i) {
                let declared = match nodes.get(first) {
                    Some(f) if f.line > 0 => format!(" (first declared on line {})", f.line),
                    _ => String::new(),
                };
                let message = format!("duplicate node name `{}`{declared}", node.name);
                self.report(i, first, Key::Name, message);
            } else if node.instance.is_empty() {
                // Already reported (an ssh node without a usable address).
            } else if let Some(first) =
                instances.insert((node.project.as_deref().unwrap_or(""), &node.instance), i)
                && let Some(f) = nodes.get(first)
            {
                let message = format!(
                    "node `{}` uses {what} `{}`, already used by {}",
                    node.name,
                    node.instance,
                    earlier(f)
                );
                self.report(i, first, Key::Instance, message);
            }
            for ip in &node.internal_ips {
                if let Some(first) = ips.insert(*ip, i)
                    && let Some(f) = nodes.get(first)
                {
                    let message = format!(
                        "node `{}`: internal_ip {ip} is already used by {}",
                        node.name,
                        earlier(f)
                    );
                    self.report(i, first, Key::InternalIp, message);
                }
            }
        }
    }

    /// Pod CIDRs inside the cluster's range of their family.
    fn outside_cluster(&mut self, nodes: &[&Node], cidrs: &[(IpNet, usize)], cluster: &[IpNet]) {
        for (net, i) in cidrs {
            let family = Family::of_net(net);
            if let Some(range) = cluster.iter().find(|c| Family::of_net(c) == family)
                && !range.contains(net)
                && let Some(node) = nodes.get(*i)
            {
                let message = format!(
                    "node `{}`: pod_cidr {net} lies outside the cluster pod_cidr {range}",
                    node.name
                );
                self.report(*i, *i, Key::PodCidr, message);
            }
        }
    }

    /// Pod CIDRs pairwise disjoint. `cidrs` sorted by start: every prefix that contains another
    /// comes before it, so the chain of prefixes enclosing the current one is kept and the
    /// current one reported against each.
    fn overlaps(&mut self, nodes: &[&Node], cidrs: &[(IpNet, usize)]) {
        let mut enclosing: Vec<(IpNet, usize)> = Vec::new();
        for &(b, bi) in cidrs {
            enclosing.retain(|(e, _)| e.contains(&b.network()));
            for &(a, ai) in &enclosing {
                let (Some(bn), Some(an)) = (nodes.get(bi), nodes.get(ai)) else {
                    continue;
                };
                let message = format!(
                    "node `{}`: pod_cidr {b} overlaps pod_cidr {a} of node `{}`{}",
                    bn.name,
                    an.name,
                    line_note(an)
                );
                self.report(bi, ai, Key::PodCidr, message);
            }
            enclosing.push((b, bi));
        }
    }

    /// No internal IP inside a pod CIDR (`cidrs` sorted by start).
    fn ips_in_pod_cidrs(&mut self, nodes: &[&Node], cidrs: &[(IpNet, usize)]) {
        for (i, node) in nodes.iter().enumerate() {
            for ip in &node.internal_ips {
                let end = cidrs.partition_point(|(n, _)| n.network() <= *ip);
                let owner = cidrs
                    .get(..end)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find(|(n, _)| n.contains(ip));
                if let Some(&(net, oi)) = owner
                    && let Some(o) = nodes.get(oi)
                {
                    let message = format!(
                        "node `{}`: internal_ip {ip} lies inside pod_cidr {net} of node `{}`",
                        node.name, o.name
                    );
                    self.report(i, oi, Key::InternalIp, message);
                }
            }
        }
    }
}

/// The checks of one node given as values (as `routectl discover` builds it), with the rules a
/// file's node is held to: every problem's message (none when the node is valid). A node
/// whose instance differs from its name is taken to have `instance` set.
pub fn node_problems(node: &Node, transport: TransportKind) -> Vec<String> {
    node_rules(node, node.instance != node.name, transport)
        .into_iter()
        .map(|(_, message)| message)
        .collect()
}

/// The rules for one node's values, each problem with the key it is about. The file's checker
/// uses them too, after reading the values (it reports what cannot be read itself), so a node
/// is held to the same rules and messages wherever it comes from. Whether two nodes clash is
/// [`cross_check`]'s business.
pub(super) fn node_rules(
    node: &Node,
    instance_given: bool,
    transport: TransportKind,
) -> Vec<(Key, String)> {
    let name = &node.name;
    let mut out = name_rules(node, instance_given, transport);
    if let Some(iface) = &node.interface
        && let Err(why) = names::check_interface(iface)
    {
        out.push((
            Key::Interface,
            format!("node `{name}`: interface `{iface}` {why}"),
        ));
    }
    if let Some(p) = &node.project
        && let Err(why) = names::check_project(p)
    {
        out.push((Key::Project, format!("node `{name}`: project `{p}` {why}")));
    }
    ip_rules(node, &mut out);
    cidr_rules(node, &mut out);
    out
}

/// The node's name, and its instance (or ssh address): given, or the name used as one.
fn name_rules(node: &Node, instance_given: bool, transport: TransportKind) -> Vec<(Key, String)> {
    let name = &node.name;
    let mut out = Vec::new();
    let name_ok = match names::check_node_name(name) {
        Ok(()) => true,
        Err(why) => {
            out.push((Key::Name, format!("node name `{name}` {why}")));
            false
        }
    };
    let what = if transport == TransportKind::Ssh {
        "address"
    } else {
        "instance"
    };
    if instance_given || transport == TransportKind::Ssh {
        if let Err(why) = names::check_instance(&node.instance, transport) {
            out.push((
                Key::Instance,
                format!("node `{name}`: {what} `{}` {why}", node.instance),
            ));
        }
    } else if name_ok && let Err(why) = names::check_instance(name, transport) {
        out.push((
            Key::Name,
            format!(
                "node name `{name}` cannot be used as a {transport} instance name ({why}); set \
                 `instance` to the real name"
            ),
        ));
    }
    out
}

/// The internal IPs: usable, at most one per family, at least one.
fn ip_rules(node: &Node, out: &mut Vec<(Key, String)>) {
    let name = &node.name;
    for (i, a) in node.internal_ips.iter().enumerate() {
        if let Err(why) = names::check_addr(*a) {
            out.push((
                Key::InternalIp,
                format!("node `{name}`: internal_ip `{a}` {why}"),
            ));
        }
        let before = node.internal_ips.get(..i).unwrap_or_default();
        if before
            .iter()
            .any(|o| Family::of_addr(o) == Family::of_addr(a))
        {
            out.push((
                Key::InternalIp,
                format!(
                    "node `{name}`: internal_ip lists more than one {} address (at most one per \
                     family)",
                    Family::of_addr(a)
                ),
            ));
        }
    }
    if node.internal_ips.is_empty() {
        out.push((
            Key::InternalIp,
            format!("node `{name}`: internal_ip is empty"),
        ));
    }
}

/// The pod CIDRs: usable, at most one per family, each of a family the node has an internal IP
/// of (its routes go via that IP).
fn cidr_rules(node: &Node, out: &mut Vec<(Key, String)>) {
    let name = &node.name;
    for (i, net) in node.pod_cidrs.iter().enumerate() {
        let family = Family::of_net(net);
        if let Err(why) = names::check_cidr(*net) {
            out.push((
                Key::PodCidr,
                format!("node `{name}`: pod_cidr `{net}` {why}"),
            ));
        }
        let before = node.pod_cidrs.get(..i).unwrap_or_default();
        if before.iter().any(|o| Family::of_net(o) == family) {
            out.push((
                Key::PodCidr,
                format!(
                    "node `{name}`: pod_cidr lists more than one {family} prefix (at most one per \
                     family)"
                ),
            ));
        }
        if node.internal_ip(family).is_none() {
            out.push((
                Key::PodCidr,
                format!(
                    "node `{name}`: pod_cidr {net} is {family} but the node has no {family} \
                     internal_ip to route it via"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::parse;

    /// A one-node file holding `node`'s values.
    fn file(node: &Node) -> String {
        let list = |v: Vec<String>| {
            let quoted: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut text = format!(
            "[cluster]\ninterface = \"{}\"\n[[nodes]]\nname = \"{}\"\n",
            node.interface.as_deref().unwrap_or_default(),
            node.name
        );
        if node.instance != node.name {
            text.push_str(&format!("instance = \"{}\"\n", node.instance));
        }
        let ips = node.internal_ips.iter().map(|a| a.to_string()).collect();
        text.push_str(&format!("internal_ip = {}\n", list(ips)));
        if !node.pod_cidrs.is_empty() {
            let nets = node.pod_cidrs.iter().map(|n| n.to_string()).collect();
            text.push_str(&format!("pod_cidr = {}\n", list(nets)));
        }
        text
    }

    #[test]
    fn a_node_built_in_code_gets_the_files_messages() {
        let node = |name: &str, instance: &str, ips: &[&str], cidrs: &[&str]| Node {
            name: name.into(),
            instance: instance.into(),
            project: None,
            interface: Some("eth1".into()),
            internal_ips: ips.iter().map(|a| a.parse().unwrap()).collect(),
            pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            line: 0,
            persist: crate::core::topology::Persist::None,
        };
        let cases = [
            node("w0", "w0", &["10.0.2.20"], &["10.1.0.0/24"]),
            node("_w0", "_w0", &["10.0.2.20"], &[]),
            node("w_0", "w_0", &["10.0.2.20"], &[]),
            node("w0", "bad_instance", &["10.0.2.20"], &[]),
            node("w0", "w0", &["127.0.0.1"], &[]),
            node("w0", "w0", &["10.0.2.20"], &["fd01::/64"]),
            node(
                "w0",
                "w0",
                &["10.0.2.20", "fd00::20"],
                &["10.1.0.0/24", "fd01::/64"],
            ),
            node("w0", "w0", &["10.1.0.9"], &["10.1.0.0/24"]),
            node("w0", "w0", &["10.0.2.20"], &["10.1.0.0/24"]),
            node("w0", "w_0", &["10.0.2.20"], &[]),
            node("_w", "w_0", &["10.0.2.20", "fd00::1"], &["fd01::/64"]),
        ];
        for n in cases {
            let text = file(&n);
            let from_file: Vec<String> = match parse(text.as_bytes(), "t.toml", None) {
                Ok(_) => vec![],
                Err(p) => p.0.into_iter().map(|p| p.message).collect(),
            };
            let mut from_values = node_problems(&n, TransportKind::Lxc);
            from_values.extend(
                cross_check(&[&n], &[], TransportKind::Lxc)
                    .into_iter()
                    .map(|p| p.message),
            );
            assert_eq!(from_values, from_file, "{text}");
        }
    }
}
