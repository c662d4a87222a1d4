//! `routectl show`: what each node really has, marked against what the topology wants, and
//! whether the node's addresses agree with the topology.
//!
//! One command per node: an `ip -batch` whose lines read every route and every address, so a
//! node's routes and addresses are seen at the same moment. Marking routes (owned / foreign /
//! kernel / desired-missing, with the plan's verdict as a note) and checking addresses are pure;
//! the marks come from [`diff`], so `show` and `plan` cannot disagree.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::core::change::{Action, Change};
use crate::core::diff::{self, Policy};
use crate::core::link::Link;
use crate::core::persist::{self, Manager};
use crate::core::plan::Plan;
use crate::core::record::LastApplied;
use crate::core::route::{Family, PROTOCOL_KERNEL, Route, TABLE_MAIN};
use crate::core::topology::{Node, Topology};
use crate::error::NodeError;
use crate::parallel;

/// What one read of a node saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Every route of every table.
    pub routes: Vec<Route>,
    /// Exactly what `ip -N -d -j route show table all` prints on this node (for `--save`).
    pub raw_routes: Vec<u8>,
    /// The node's interfaces, or why they could not be read.
    pub links: Result<Vec<Link>, String>,
    /// The node's last-applied record (none, one, or why the one found is not used).
    pub last_applied: Result<Option<LastApplied>, String>,
    /// What manages the route interface (from the same read), or why that is not known.
    pub facts: Result<crate::core::persist::NodeFacts, String>,
}

/// How `show` marks a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// routectl's own (table main, its protocol, not a default route).
    Owned,
    /// Someone else's: added by hand, by a daemon, by DHCP or RA.
    Foreign,
    /// Made by the kernel for an address (`proto kernel`).
    Kernel,
    /// Desired by the topology and absent from the node.
    DesiredMissing,
}

impl Mark {
    /// The name used in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mark::Owned => "owned",
            Mark::Foreign => "foreign",
            Mark::Kernel => "kernel",
            Mark::DesiredMissing => "desired-missing",
        }
    }

    /// The mark of an observed route.
    pub fn of(route: &Route, protocol: u8) -> Mark {
        if diff::is_owned(route, protocol) {
            Mark::Owned
        } else if route.protocol == PROTOCOL_KERNEL {
            Mark::Kernel
        } else {
            Mark::Foreign
        }
    }
}

/// One line of a node's table as `show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The mark.
    pub mark: Mark,
    /// The route (observed, or desired for `desired-missing`).
    pub route: Route,
    /// What the plan would do about it, when anything.
    pub note: Option<String>,
}

/// What an address check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A declared `internal_ip`, expected on the node's declared interface.
    InternalIp,
    /// The first host of a declared `pod_cidr`, expected on some interface (the pod bridge).
    PodGateway,
}

/// One check of the topology against the node's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrCheck {
    /// What is checked.
    pub kind: CheckKind,
    /// The address the topology implies.
    pub address: IpAddr,
    /// For a pod gateway, the pod CIDR it comes from.
    pub pod_cidr: Option<IpNet>,
    /// For an internal IP, the interface it must be on.
    pub interface: Option<String>,
    /// Where the address really is, as `iface` and `addr/len`.
    pub found: Vec<(String, String)>,
    /// True when topology and node agree.
    pub ok: bool,
    /// A sentence for people.
    pub message: String,
}

/// What `show` has to say about one readable node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Routes of table main (and desired routes missing from it), sorted by destination.
    pub entries: Vec<Entry>,
    /// Routes in other tables (local, custom), counted but not listed.
    pub other_tables: usize,
    /// Address checks (empty when the addresses could not be read).
    pub checks: Vec<AddrCheck>,
    /// Disagreements and oddities worth a look; they change nothing.
    pub warnings: Vec<String>,
    /// Exactly what `ip -N -d -j route show table all` printed (for `--save`).
    pub raw_routes: Vec<u8>,
    /// What routectl last applied on the node, when a usable record exists.
    pub last_applied: Option<LastApplied>,
    /// What manages the route interface.
    pub manager: Manager,
    /// The node's networkd drop-in against what `apply` would write (`Err`: why persist cannot
    /// work on the node).
    pub persist: Result<persist::PersistPlan, String>,
}

impl NodeView {
    /// How many entries carry a mark.
    pub fn count(&self, mark: Mark) -> usize {
        self.entries.iter().filter(|e| e.mark == mark).count()
    }
}

/// One node of a show report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeShow {
    /// The node's name.
    pub name: String,
    /// What the transport addresses.
    pub instance: String,
    /// The view, or why the node could not be read.
    pub state: Result<NodeView, NodeError>,
}

/// What `show` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// routectl's protocol number.
    pub protocol: u8,
    /// The nodes shown, in topology order.
    pub nodes: Vec<NodeShow>,
    /// Nodes left out by `--node`.
    pub skipped: Vec<String>,
    /// Which access each node got and where it runs.
    pub access: crate::core::access::Accesses,
}

/// Counts over a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Nodes shown.
    pub nodes: usize,
    /// Nodes that could not be read.
    pub nodes_unreadable: usize,
    /// Owned routes.
    pub owned: usize,
    /// Foreign routes.
    pub foreign: usize,
    /// Kernel routes.
    pub kernel: usize,
    /// Desired routes the nodes lack.
    pub desired_missing: usize,
    /// Warnings.
    pub warnings: usize,
}

impl Report {
    /// Counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            nodes: self.nodes.len(),
            ..Summary::default()
        };
        for n in &self.nodes {
            match &n.state {
                Err(_) => s.nodes_unreadable += 1,
                Ok(v) => {
                    s.owned += v.count(Mark::Owned);
                    s.foreign += v.count(Mark::Foreign);
                    s.kernel += v.count(Mark::Kernel);
                    s.desired_missing += v.count(Mark::DesiredMissing);
                    s.warnings += v.warnings.len();
                }
            }
        }
        s
    }

    /// True when some node could not be read.
    pub fn has_errors(&self) -> bool {
        self.nodes.iter().any(|n| n.state.is_err())
    }
}

/// Reads the selected nodes (`only`, or all when empty) `parallelism` at a time through
/// `observe`, and marks what each has.
pub fn compute(
    topology: &Topology,
    only: &[String],
    parallelism: usize,
    observe: impl Fn(&Node) -> Result<Observation, NodeError> + Sync,
) -> Report {
    let policy = Plan::policy(topology);
    let selected = topology.selected(only);
    let nodes = parallel::map(&selected, parallelism, |node| NodeShow {
        name: node.name.clone(),
        instance: node.instance.clone(),
        state: observe(node).map(|obs| view(topology, node, &policy, obs)),
    });
    Report {
        protocol: topology.cluster.protocol,
        nodes,
        skipped: topology.unselected(only),
        access: Default::default(),
    }
}

/// Marks a node's routes and checks its addresses. Pure.
pub fn view(topology: &Topology, node: &Node, policy: &Policy, obs: Observation) -> NodeView {
    let desired = crate::core::desired::routes_for(topology, node);
    let d = diff::diff(&desired, &obs.routes, policy);
    let entries = entries(&obs.routes, policy, &d.changes);

    let mut warnings = d.warnings;
    let last_applied = match obs.last_applied {
        Ok(r) => r,
        Err(why) => {
            warnings.push(why);
            None
        }
    };
    let mut changes = d.changes;
    crate::core::record::mark_causes(&mut changes, last_applied.as_ref());
    warnings.extend(crate::core::record::restart_note(
        &node.name,
        last_applied.as_ref(),
        &changes,
    ));
    let manager = persist::manager_of(&obs.facts);
    warnings.extend(persist::warning(
        node.persist,
        &manager,
        node.interface.as_deref().unwrap_or_default(),
        desired.len(),
    ));
    let persist_plan = persist::plan(
        node.persist,
        obs.facts.as_ref().map_err(String::as_str),
        &node.name,
        node.interface.as_deref().unwrap_or_default(),
        &desired,
    );
    if let Err(why) = &persist_plan {
        warnings.push(why.clone());
    }
    let checks = address_view(
        topology,
        node,
        policy,
        &desired,
        &obs.routes,
        &obs.links,
        &mut warnings,
    );
    NodeView {
        other_tables: obs.routes.iter().filter(|r| r.table != TABLE_MAIN).count(),
        entries,
        checks,
        raw_routes: obs.raw_routes,
        warnings,
        last_applied,
        manager,
        persist: persist_plan,
    }
}

/// The entries of table main: each observed route with its mark, the plan's verdict on it as a
/// note, and the desired routes the node lacks; sorted by destination.
fn entries(routes: &[Route], policy: &Policy, changes: &[Change]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = routes
        .iter()
        .filter(|r| r.table == TABLE_MAIN)
        .map(|r| Entry {
            mark: Mark::of(r, policy.protocol),
            route: r.clone(),
            note: None,
        })
        .collect();
    for c in changes {
        mark_change(&mut entries, c);
    }
    entries.sort_by(|a, b| (&a.route.dst, a.mark, &a.route).cmp(&(&b.route.dst, b.mark, &b.route)));
    entries
}

/// Notes one change of the plan on the route it touches, and adds the desired route it wants
/// when that is missing.
fn mark_change(entries: &mut Vec<Entry>, c: &Change) {
    let note_current = |entries: &mut Vec<Entry>, note: String| {
        if let Some(cur) = &c.current
            && let Some(e) = entries
                .iter_mut()
                .find(|e| e.mark != Mark::DesiredMissing && e.route == *cur)
        {
            e.note = Some(note);
        }
    };
    let missing = |entries: &[Entry]| {
        !entries
            .iter()
            .any(|e| e.mark == Mark::DesiredMissing && e.route == c.route)
    };
    match c.action {
        Action::Add => entries.push(Entry {
            mark: Mark::DesiredMissing,
            route: c.route.clone(),
            note: None,
        }),
        Action::Replace => note_current(entries, format!("plan replaces it with `{}`", c.route)),
        Action::Delete => note_current(entries, "not desired: plan deletes it".into()),
        Action::Adopt => note_current(
            entries,
            "identical to a desired route: `apply --adopt` takes it over".into(),
        ),
        Action::TakeOver => {
            note_current(
                entries,
                format!("in the way of desired `{}`: plan takes it over", c.route),
            );
            if !c.in_place && missing(entries) {
                entries.push(Entry {
                    mark: Mark::DesiredMissing,
                    route: c.route.clone(),
                    note: None,
                });
            }
        }
        Action::Conflict => {
            note_current(entries, format!("blocks desired `{}`", c.route));
            if missing(entries) {
                entries.push(Entry {
                    mark: Mark::DesiredMissing,
                    route: c.route.clone(),
                    note: Some("blocked by a foreign route to the same destination".into()),
                });
            }
        }
    }
}

/// Checks the node's addresses when they could be read, adding what is wrong to `warnings`.
fn address_view(
    topology: &Topology,
    node: &Node,
    policy: &Policy,
    desired: &[Route],
    routes: &[Route],
    links: &Result<Vec<Link>, String>,
    warnings: &mut Vec<String>,
) -> Vec<AddrCheck> {
    match links {
        Ok(links) => {
            let checks = address_checks(node, links);
            warnings.extend(checks.iter().filter(|c| !c.ok).map(|c| c.message.clone()));
            warnings.extend(stray_pod_addresses(topology, node, policy, links));
            // The plan's judgement (which refuses the node): what the address checks above
            // do not already say.
            warnings.extend(
                crate::core::fit::misfits(topology, node, desired, links, routes)
                    .into_iter()
                    .filter(|m| matches!(m, crate::core::fit::Misfit::GatewayOffLink { .. }))
                    .map(|m| m.to_string()),
            );
            checks
        }
        Err(why) => {
            warnings.push(format!("addresses not checked: {why}"));
            Vec::new()
        }
    }
}

/// The pod gateway of a pod CIDR: its first host (`10.1.0.0/24` -> `10.1.0.1`).
pub fn pod_gateway(net: &IpNet) -> IpAddr {
    match net {
        // A single-address pod CIDR (/32, /128) has no "first host" after the network: the
        // address itself is the only one inside it.
        IpNet::V4(n) if n.prefix_len() == 32 => IpAddr::V4(n.network()),
        IpNet::V6(n) if n.prefix_len() == 128 => IpAddr::V6(n.network()),
        IpNet::V4(n) => IpAddr::V4(u32::from(n.network()).wrapping_add(1).into()),
        IpNet::V6(n) => IpAddr::V6(u128::from(n.network()).wrapping_add(1).into()),
    }
}

/// Where an address is on a node: `(interface, addr/len)` for every interface that has it.
fn locate(links: &[Link], addr: IpAddr) -> Vec<(String, String, u8)> {
    links
        .iter()
        .flat_map(|l| {
            l.addresses
                .iter()
                .filter(move |a| a.addr == addr)
                .map(move |a| (l.name.clone(), a.to_string(), a.prefix_len))
        })
        .collect()
}

/// Checks the node's declared internal IPs (on its interface) and pod gateways (anywhere).
pub fn address_checks(node: &Node, links: &[Link]) -> Vec<AddrCheck> {
    let mut checks: Vec<AddrCheck> = node
        .internal_ips
        .iter()
        .map(|ip| internal_ip_check(node, links, *ip))
        .collect();
    checks.extend(
        node.pod_cidrs
            .iter()
            .map(|net| pod_gateway_check(links, net)),
    );
    checks
}

/// Whether an internal IP is on the node's declared interface (or, with none declared, on the
/// node at all).
fn internal_ip_check(node: &Node, links: &[Link], ip: IpAddr) -> AddrCheck {
    let found = locate(links, ip);
    let Some(declared) = node.interface.as_deref() else {
        // No declared interface (ssh): the address must simply be on the node.
        let message = match found.first() {
            Some((i, _, _)) => format!("internal_ip {ip} is on {i}"),
            None => format!("internal_ip {ip} is on no interface of the node"),
        };
        return AddrCheck {
            kind: CheckKind::InternalIp,
            address: ip,
            pod_cidr: None,
            interface: None,
            ok: !found.is_empty(),
            found: found.into_iter().map(|(i, a, _)| (i, a)).collect(),
            message,
        };
    };
    let on_iface = found.iter().any(|(i, _, _)| i == declared);
    let message = if on_iface {
        format!("internal_ip {ip} is on {declared}")
    } else if let Some((other, _, _)) = found.first() {
        format!(
            "internal_ip {ip} is on {}, not on the declared interface {declared}",
            crate::core::text::escape(other),
        )
    } else {
        let what = declared_has(links, declared, Family::of_addr(&ip));
        format!("internal_ip {ip} is on no interface of the node ({what})")
    };
    AddrCheck {
        kind: CheckKind::InternalIp,
        address: ip,
        pod_cidr: None,
        interface: Some(declared.to_string()),
        found: found.into_iter().map(|(i, a, _)| (i, a)).collect(),
        ok: on_iface,
        message,
    }
}

/// What the declared interface has instead of a missing internal IP: its global addresses of
/// the same family, none, or no such interface at all.
fn declared_has(links: &[Link], declared: &str, family: Family) -> String {
    match links.iter().find(|l| l.name == declared) {
        None => format!("the node has no interface {declared}"),
        Some(l) => {
            let same: Vec<String> = l
                .addresses
                .iter()
                .filter(|a| Family::of_addr(&a.addr) == family && a.is_global())
                .map(|a| a.to_string())
                .collect();
            if same.is_empty() {
                format!("{declared} has no {family} address")
            } else {
                format!("{declared} has {}", same.join(", "))
            }
        }
    }
}

/// Whether a pod CIDR's gateway is on some interface of the node with the CIDR's length.
fn pod_gateway_check(links: &[Link], net: &IpNet) -> AddrCheck {
    let gw = pod_gateway(net);
    let found = locate(links, gw);
    let exact = found.iter().find(|(_, _, len)| *len == net.prefix_len());
    let (ok, message) = match (exact, found.first()) {
        (Some((iface, _, _)), _) => (
            true,
            format!(
                "pod gateway {gw} ({net}) is on {}",
                crate::core::text::escape(iface)
            ),
        ),
        (None, Some((iface, shown, _))) => (
            false,
            format!(
                "pod gateway {gw} is on {} as {shown}, but the declared pod_cidr is {net}",
                crate::core::text::escape(iface)
            ),
        ),
        (None, None) => (
            false,
            format!(
                "pod gateway {gw} (first host of pod_cidr {net}) is on no interface of the \
                 node: is the pod bridge up, and is pod_cidr right?"
            ),
        ),
    };
    AddrCheck {
        kind: CheckKind::PodGateway,
        address: gw,
        pod_cidr: Some(*net),
        interface: None,
        found: found.into_iter().map(|(i, a, _)| (i, a)).collect(),
        ok,
        message,
    }
}

/// Addresses of the node inside the cluster's pod ranges but outside its own pod CIDRs: a pod
/// bridge the topology does not know about (or a pod CIDR declared on the wrong node).
fn stray_pod_addresses(
    topology: &Topology,
    node: &Node,
    policy: &Policy,
    links: &[Link],
) -> Vec<String> {
    let mut out = Vec::new();
    for l in links {
        for a in l.addresses.iter().filter(|a| a.is_global()) {
            if node.pod_cidrs.iter().any(|n| n.contains(&a.addr)) {
                continue;
            }
            let owner = topology.nodes.iter().find_map(|o| {
                o.pod_cidrs
                    .iter()
                    .find(|n| n.contains(&a.addr))
                    .map(|n| (o, n))
            });
            if let Some((o, n)) = owner {
                out.push(format!(
                    "address {a} on {} lies in pod_cidr {n} of node `{}`",
                    crate::core::text::escape(&l.name),
                    o.name
                ));
            } else if let Some(range) = policy.pod_ranges.iter().find(|r| r.contains(&a.addr)) {
                let declared = if node.pod_cidrs.is_empty() {
                    "the node declares no pod_cidr".to_string()
                } else {
                    format!(
                        "outside the node's pod_cidr {}",
                        node.pod_cidrs
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.push(format!(
                    "address {a} on {} lies in the cluster pod_cidr {range}, {declared}",
                    crate::core::text::escape(&l.name)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::link::LinkAddr;
    use crate::core::topology::fixtures::lab;

    /// An interface with one global address.
    fn link(name: &str, addr: &str, prefix_len: u8) -> Link {
        Link {
            name: name.to_string(),
            addresses: vec![LinkAddr {
                addr: addr.parse().unwrap(),
                prefix_len,
                scope: 0,
            }],
        }
    }

    #[test]
    fn internal_ip_on_another_interface_and_a_pod_bridge_of_another_node() {
        let t = lab();
        let links = vec![link("eth7", "10.0.2.10", 24), link("cnio0", "10.1.1.1", 24)];
        let checks = address_checks(&t.nodes[0], &links);
        assert_eq!(
            checks[0].message,
            "internal_ip 10.0.2.10 is on eth7, not on the declared interface eth1"
        );
        assert!(!checks[0].ok);
        let stray = stray_pod_addresses(&t, &t.nodes[0], &Plan::policy(&t), &links);
        assert_eq!(
            stray,
            ["address 10.1.1.1/24 on cnio0 lies in pod_cidr 10.1.1.0/24 of node `worker-1`"]
        );
        let narrow = vec![link("eth1", "10.0.2.21", 24), link("cnio0", "10.1.1.1", 25)];
        let checks = address_checks(&t.nodes[2], &narrow);
        assert!(checks[0].ok);
        assert_eq!(
            checks[1].message,
            "pod gateway 10.1.1.1 is on cnio0 as 10.1.1.1/25, but the declared pod_cidr is 10.1.1.0/24"
        );
    }

    #[test]
    fn a_single_address_pod_cidr_is_its_own_gateway() {
        // Regression: network + 1 lies outside a /32 or /128, so `check` pinged an address no
        // node has and blamed a route that exists.
        assert_eq!(
            pod_gateway(&"10.1.7.9/32".parse().unwrap()).to_string(),
            "10.1.7.9"
        );
        assert_eq!(
            pod_gateway(&"fd01::7/128".parse().unwrap()).to_string(),
            "fd01::7"
        );
    }

    #[test]
    fn pod_gateways_are_first_hosts() {
        assert_eq!(
            pod_gateway(&"10.1.0.0/24".parse().unwrap()).to_string(),
            "10.1.0.1"
        );
        assert_eq!(
            pod_gateway(&"fd01:0:1::/64".parse().unwrap()).to_string(),
            "fd01:0:1::1"
        );
    }
}
