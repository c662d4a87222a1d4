//! `routectl check`: proves pod-to-pod reachability. From each node's pod gateway (the first host
//! of its pod CIDR) it pings every other node's pod gateway of the same family, inside the source
//! node through the transport, and builds a node x node matrix per family.
//!
//! A ping is a round trip, so a route missing on either side fails both directions alike; to say
//! *which* side is wrong, every participating node is read first (the one-command read of
//! [`show`](crate::core::show)) and each failed path gets hints from the two nodes' tables and addresses. A path
//! that passes one way and fails the other is reported as asymmetric. Building probes, judging
//! and hinting are pure; the ping and the read are injected.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::core::link::Link;
use crate::core::route::{Destination, Family, Route, TABLE_MAIN, TYPE_UNICAST, type_name};
use crate::core::show::{Observation, pod_gateway};
use crate::core::topology::{Node, Topology, is_selected};
use crate::error::NodeError;
use crate::parallel;

/// How many times a path is pinged before it counts as failed: neighbour discovery (ARP/ND)
/// may swallow the very first packet.
pub const PING_ATTEMPTS: u32 = 2;

/// One path to prove: from a node's pod gateway to another node's, in one family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probe {
    /// The family.
    pub family: Family,
    /// The source node's name.
    pub from: String,
    /// The destination node's name.
    pub to: String,
    /// The source node's pod gateway (`ping -I`).
    pub source: IpAddr,
    /// The destination node's pod gateway.
    pub destination: IpAddr,
    /// The destination node's pod CIDR.
    pub to_cidr: IpNet,
    /// The source node's pod CIDR.
    pub from_cidr: IpNet,
}

/// The nodes that take part in a family: those with a pod CIDR of it, in topology order.
pub fn participants(topology: &Topology, family: Family) -> Vec<(&Node, IpNet)> {
    topology
        .nodes
        .iter()
        .filter_map(|n| {
            n.pod_cidrs
                .iter()
                .find(|c| Family::of_net(c) == family)
                .map(|c| (n, *c))
        })
        .collect()
}

/// Every path to prove, per family then source then destination; with `only`, the paths from
/// or to those nodes.
pub fn probes(topology: &Topology, only: &[String]) -> Vec<Probe> {
    let mut out = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let nodes = participants(topology, family);
        for (a, ca) in &nodes {
            for (b, cb) in &nodes {
                if a.name == b.name || !(is_selected(only, &a.name) || is_selected(only, &b.name)) {
                    continue;
                }
                out.push(Probe {
                    family,
                    from: a.name.clone(),
                    to: b.name.clone(),
                    source: pod_gateway(ca),
                    destination: pod_gateway(cb),
                    to_cidr: *cb,
                    from_cidr: *ca,
                });
            }
        }
    }
    out
}

/// How a path ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply came back.
    Pass {
        /// Pings sent until one was answered.
        attempts: u32,
    },
    /// No reply after every attempt.
    Fail {
        /// Pings sent.
        attempts: u32,
        /// What the last attempt said (ping's summary or error, or the transport's error).
        detail: String,
    },
    /// Not pinged: the source node could not be read.
    NotRun {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// `pass`, `fail` or `not_run`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Pass { .. } => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::NotRun { .. } => "not_run",
        }
    }

    /// True for a pass.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass { .. })
    }
}

/// One proven (or not) path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathResult {
    /// The path.
    pub probe: Probe,
    /// How it ended.
    pub outcome: Outcome,
    /// For a failed path, what the two nodes' tables and addresses suggest.
    pub hints: Vec<String>,
}

/// A path that passes one way and fails the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asymmetry {
    /// The family.
    pub family: Family,
    /// The node that reaches the other…
    pub reaches: String,
    /// … which does not reach it back.
    pub not_back: String,
}

/// What `check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Per family with at least one path: the participating nodes, in topology order.
    pub families: Vec<(Family, Vec<String>)>,
    /// Every path, in probe order.
    pub paths: Vec<PathResult>,
    /// Nodes that could not be read, with why.
    pub unreadable: Vec<(String, NodeError)>,
    /// Paths that pass only one way.
    pub asymmetric: Vec<Asymmetry>,
}

/// Counts over a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Paths probed or skipped.
    pub paths: usize,
    /// Paths that pass.
    pub passed: usize,
    /// Paths that fail.
    pub failed: usize,
    /// Paths not pinged (unreadable source).
    pub not_run: usize,
    /// Nodes that could not be read.
    pub nodes_unreadable: usize,
    /// True when every path passes and every node was read.
    pub success: bool,
}

impl Report {
    /// Counts.
    pub fn summary(&self) -> Summary {
        let count = |name: &str| {
            self.paths
                .iter()
                .filter(|p| p.outcome.name() == name)
                .count()
        };
        let s = Summary {
            paths: self.paths.len(),
            passed: count("pass"),
            failed: count("fail"),
            not_run: count("not_run"),
            nodes_unreadable: self.unreadable.len(),
            success: false,
        };
        Summary {
            success: s.passed == s.paths && s.nodes_unreadable == 0,
            ..s
        }
    }

    /// The result of a path, if it was probed.
    pub fn path(&self, family: Family, from: &str, to: &str) -> Option<&PathResult> {
        self.paths
            .iter()
            .find(|p| p.probe.family == family && p.probe.from == from && p.probe.to == to)
    }
}

/// Runs a check: reads every node that takes part (`read`), pings every path whose source was
/// read (`ping`), `parallelism` at a time, then judges. The topology's nodes are given to both.
pub fn compute(
    topology: &Topology,
    only: &[String],
    parallelism: usize,
    read: impl Fn(&Node) -> Result<Observation, NodeError> + Sync,
    ping: impl Fn(&Node, &Probe) -> Outcome + Sync,
) -> Report {
    let probes = probes(topology, only);
    let involved: Vec<&Node> = topology
        .nodes
        .iter()
        .filter(|n| probes.iter().any(|p| p.from == n.name || p.to == n.name))
        .collect();
    let observed: Vec<(&Node, Result<Observation, NodeError>)> =
        parallel::map(&involved, parallelism, |n| (*n, read(n)));
    let obs_of = |name: &str| -> Option<&Result<Observation, NodeError>> {
        observed
            .iter()
            .find(|(n, _)| n.name == name)
            .map(|(_, o)| o)
    };

    let outcomes = parallel::map(&probes, parallelism, |p| match obs_of(&p.from) {
        Some(Ok(_)) => match topology.node(&p.from) {
            Some(node) => ping(node, p),
            None => Outcome::NotRun {
                reason: format!("node `{}` is not in the topology", p.from),
            },
        },
        _ => Outcome::NotRun {
            reason: format!("node `{}` could not be read", p.from),
        },
    });

    let paths: Vec<PathResult> = probes
        .into_iter()
        .zip(outcomes)
        .map(|(probe, outcome)| {
            let hints = if matches!(outcome, Outcome::Fail { .. }) {
                let ok = |name: &str| match obs_of(name) {
                    Some(Ok(o)) => Some(o),
                    _ => None,
                };
                hints(topology, &probe, ok(&probe.from), ok(&probe.to))
            } else {
                Vec::new()
            };
            PathResult {
                probe,
                outcome,
                hints,
            }
        })
        .collect();

    let families = families(topology, &paths);
    let asymmetric = asymmetric(&paths);
    Report {
        families,
        paths,
        unreadable: observed
            .into_iter()
            .filter_map(|(n, o)| o.err().map(|e| (n.name.clone(), e)))
            .collect(),
        asymmetric,
    }
}

/// Per family, the nodes that take part and were probed.
fn families(topology: &Topology, paths: &[PathResult]) -> Vec<(Family, Vec<String>)> {
    let mut families = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let names: Vec<String> = participants(topology, family)
            .into_iter()
            .map(|(n, _)| n.name.clone())
            .filter(|name| {
                paths.iter().any(|p| {
                    p.probe.family == family && (p.probe.from == *name || p.probe.to == *name)
                })
            })
            .collect();
        if !names.is_empty() {
            families.push((family, names));
        }
    }

    families
}

/// Paths that pass one way and fail the other.
fn asymmetric(paths: &[PathResult]) -> Vec<Asymmetry> {
    let mut asymmetric = Vec::new();
    for p in paths {
        if let Outcome::Pass { .. } = p.outcome
            && let Some(back) = paths.iter().find(|q| {
                q.probe.family == p.probe.family
                    && q.probe.from == p.probe.to
                    && q.probe.to == p.probe.from
            })
            && matches!(back.outcome, Outcome::Fail { .. })
        {
            asymmetric.push(Asymmetry {
                family: p.probe.family,
                reaches: p.probe.from.clone(),
                not_back: p.probe.to.clone(),
            });
        }
    }

    asymmetric
}

/// The route a node would use for an address: the longest matching prefix of table main, the
/// lowest metric among equals. (Policy rules and other tables are not considered: a hint.)
pub fn lookup(routes: &[Route], addr: IpAddr) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.table == TABLE_MAIN)
        .filter_map(|r| match &r.dst {
            Destination::Net(n) if n.contains(&addr) => Some((n.prefix_len(), r)),
            _ => None,
        })
        .max_by(|(la, a), (lb, b)| la.cmp(lb).then(b.metric.cmp(&a.metric)))
        .map(|(_, r)| r)
}

/// Why a path may fail, from what both nodes have: the source's route to the destination's pod
/// CIDR, the destination's route back, and both pod gateways.
pub fn hints(
    topology: &Topology,
    p: &Probe,
    from: Option<&Observation>,
    to: Option<&Observation>,
) -> Vec<String> {
    let mut out = Vec::new();
    let via = |node: &str| topology.node(node).and_then(|n| n.internal_ip(p.family));
    let mut route_hint =
        |holder: &str, obs: &Observation, addr: IpAddr, cidr: IpNet, owner: &str| {
            let want = via(owner);
            match lookup(&obs.routes, addr) {
                None => out.push(format!(
                    "{holder} has no route to {cidr} (pod_cidr of {owner})"
                )),
                Some(r) if r.kind != TYPE_UNICAST => out.push(format!(
                    "{holder} has a {} route for {addr}: `{r}`",
                    type_name(r.kind)
                )),
                Some(r) if r.dst.is_default() => out.push(format!(
                    "{holder} has no route to {cidr} (pod_cidr of {owner}); only its default route \
                 `{r}`"
                )),
                Some(r) => {
                    if let (Some(gw), Some(want)) = (r.gateway(), want)
                        && gw != want
                    {
                        out.push(format!(
                        "{holder} routes {cidr} via {gw}, not via {owner}'s internal_ip {want}: \
                         `{r}`"
                    ));
                    }
                }
            }
        };
    if let Some(o) = from {
        route_hint(&p.from, o, p.destination, p.to_cidr, &p.to);
    }
    if let Some(o) = to {
        route_hint(&p.to, o, p.source, p.from_cidr, &p.from);
    }
    let mut gateway_hint = |holder: &str, obs: &Observation, addr: IpAddr| {
        if let Ok(links) = &obs.links
            && !has_address(links, addr)
        {
            out.push(format!("{holder} does not have its pod gateway {addr}"));
        }
    };
    if let Some(o) = from {
        gateway_hint(&p.from, o, p.source);
    }
    if let Some(o) = to {
        gateway_hint(&p.to, o, p.destination);
    }
    if out.is_empty() && from.is_some() && to.is_some() {
        out.push(
            "both nodes route each other's pod CIDR via the right internal IP: look at \
             forwarding, rp_filter and firewalls"
                .to_string(),
        );
    }
    out
}

fn has_address(links: &[Link], addr: IpAddr) -> bool {
    links
        .iter()
        .any(|l| l.addresses.iter().any(|a| a.addr == addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::link::LinkAddr;
    use crate::core::route::{Hop, NextHop};
    use crate::core::topology::parse;
    use crate::error::CommandError;

    use crate::core::topology::fixtures::dual_stack as lab;

    fn pairs(ps: &[Probe]) -> Vec<String> {
        ps.iter()
            .map(|p| {
                format!(
                    "{} {}->{} {}->{}",
                    p.family, p.from, p.to, p.source, p.destination
                )
            })
            .collect()
    }

    #[test]
    fn probes_cover_every_ordered_pair_per_family() {
        let t = lab();
        let all = probes(&t, &[]);
        assert_eq!(
            pairs(&all),
            [
                "IPv4 worker-0->worker-1 10.1.0.1->10.1.1.1",
                "IPv4 worker-0->worker-2 10.1.0.1->10.1.2.1",
                "IPv4 worker-1->worker-0 10.1.1.1->10.1.0.1",
                "IPv4 worker-1->worker-2 10.1.1.1->10.1.2.1",
                "IPv4 worker-2->worker-0 10.1.2.1->10.1.0.1",
                "IPv4 worker-2->worker-1 10.1.2.1->10.1.1.1",
                "IPv6 worker-0->worker-1 fd01::1->fd01:0:1::1",
                "IPv6 worker-1->worker-0 fd01:0:1::1->fd01::1",
            ]
        );
        let only = probes(&t, &["worker-2".to_string()]);
        assert_eq!(only.len(), 4);
        assert!(
            only.iter()
                .all(|p| p.from == "worker-2" || p.to == "worker-2")
        );
    }

    /// A route of table `table` to `dst` (`default` for 0.0.0.0/0), as `ip -j` reads it.
    fn route(
        dst: &str,
        gateway: Option<&str>,
        dev: Option<&str>,
        protocol: u8,
        metric: u32,
        table: u32,
    ) -> Route {
        let dst = if dst == "default" { "0.0.0.0/0" } else { dst };
        Route {
            dst: Destination::Net(dst.parse().unwrap()),
            table,
            kind: TYPE_UNICAST,
            protocol,
            metric,
            tos: 0,
            from: None,
            next_hop: NextHop::Single(Hop {
                gateway: gateway.map(|g| g.parse().unwrap()),
                dev: dev.map(str::to_string),
            }),
            nhid: None,
            flags: Vec::new(),
        }
    }

    fn routes(routes: Vec<Route>) -> Observation {
        Observation {
            routes,
            raw_routes: Vec::new(),
            links: Ok(Vec::new()),
            facts: Err("not read".to_string()),
            last_applied: Ok(None),
        }
    }

    /// A node with its connected route, its pod gateway on cnio0, and routes to the given pod
    /// CIDRs via eth1.
    fn node_obs(own: &str, gw: &str, to: &[(&str, &str)]) -> Observation {
        let mut rs = vec![route(own, None, Some("cnio0"), 2, 0, TABLE_MAIN)];
        for (cidr, via) in to {
            rs.push(route(cidr, Some(via), Some("eth1"), 211, 0, TABLE_MAIN));
        }
        let mut o = routes(rs);
        o.links = Ok(vec![Link {
            name: "cnio0".to_string(),
            addresses: vec![LinkAddr {
                addr: gw.parse().unwrap(),
                prefix_len: 24,
                scope: 0,
            }],
        }]);
        o
    }

    #[test]
    fn a_missing_route_fails_both_ways_and_the_hint_names_the_side() {
        let t = parse(
            b"[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"a\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.0/24\"\n[[nodes]]\nname = \"b\"\ninternal_ip = \"10.0.2.21\"\npod_cidr = \"10.1.1.0/24\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        // b lacks its route to a's pods: neither direction gets a reply.
        let read = |n: &Node| -> Result<Observation, NodeError> {
            Ok(match n.name.as_str() {
                "a" => node_obs("10.1.0.0/24", "10.1.0.1", &[("10.1.1.0/24", "10.0.2.21")]),
                _ => node_obs("10.1.1.0/24", "10.1.1.1", &[]),
            })
        };
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r = compute(&t, &[], 4, read, |_, _| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Outcome::Fail {
                attempts: 2,
                detail: "100% packet loss".into(),
            }
        });
        assert_eq!(calls.into_inner(), 2);
        assert_eq!(r.summary().failed, 2);
        assert!(!r.summary().success);
        for p in &r.paths {
            assert_eq!(
                p.hints,
                ["b has no route to 10.1.0.0/24 (pod_cidr of a)"],
                "{p:?}"
            );
        }
        assert!(r.asymmetric.is_empty());
    }

    #[test]
    fn asymmetry_unreadable_nodes_and_wrong_gateways() {
        let t = lab();
        let read = |n: &Node| -> Result<Observation, NodeError> {
            match n.name.as_str() {
                "worker-2" => Err(NodeError::Command(CommandError::Status {
                    argv: "lxc exec worker-2 …".into(),
                    status: Some(1),
                    stderr: "Error: Instance is not running".into(),
                })),
                "worker-0" => Ok(node_obs(
                    "10.1.0.0/24",
                    "10.1.0.1",
                    &[("10.1.1.0/24", "10.0.2.99"), ("10.1.2.0/24", "10.0.2.22")],
                )),
                _ => Ok(node_obs(
                    "10.1.1.0/24",
                    "10.1.1.1",
                    &[("10.1.0.0/16", "10.0.2.20")],
                )),
            }
        };
        // worker-1 -> worker-0 passes, worker-0 -> worker-1 does not.
        let r = compute(&t, &[], 3, read, |n, p| {
            if p.family == Family::Ipv4 && n.name == "worker-1" && p.to == "worker-0" {
                Outcome::Pass { attempts: 1 }
            } else {
                Outcome::Fail {
                    attempts: 2,
                    detail: "no reply".into(),
                }
            }
        });
        let s = r.summary();
        assert_eq!(
            (s.paths, s.passed, s.not_run, s.nodes_unreadable),
            (8, 1, 2, 1)
        );
        assert_eq!(r.unreadable[0].0, "worker-2");
        assert_eq!(
            r.asymmetric,
            [Asymmetry {
                family: Family::Ipv4,
                reaches: "worker-1".into(),
                not_back: "worker-0".into()
            }]
        );
        let p = r.path(Family::Ipv4, "worker-0", "worker-1").unwrap();
        assert_eq!(
            p.hints,
            [
                "worker-0 routes 10.1.1.0/24 via 10.0.2.99, not via worker-1's internal_ip 10.0.2.21: `10.1.1.0/24 via 10.0.2.99 dev eth1 proto 211`"
            ]
        );
        let p = r.path(Family::Ipv4, "worker-2", "worker-0").unwrap();
        assert_eq!(p.outcome.name(), "not_run");
        // IPv6: no route at all on either side, and no IPv6 pod gateway address.
        let p = r.path(Family::Ipv6, "worker-0", "worker-1").unwrap();
        assert_eq!(
            p.hints,
            [
                "worker-0 has no route to fd01:0:1::/64 (pod_cidr of worker-1)",
                "worker-1 has no route to fd01::/64 (pod_cidr of worker-0)",
                "worker-0 does not have its pod gateway fd01::1",
                "worker-1 does not have its pod gateway fd01:0:1::1",
            ]
        );
        assert_eq!(r.families.len(), 2);
        assert_eq!(r.families[1].1, ["worker-0", "worker-1"]);
    }

    #[test]
    fn lookup_prefers_the_longest_prefix_then_the_lowest_metric() {
        let o = routes(vec![
            route("default", Some("10.0.2.1"), None, 3, 0, TABLE_MAIN),
            route("10.1.0.0/16", Some("10.0.2.5"), None, 3, 5, TABLE_MAIN),
            route("10.1.0.0/16", Some("10.0.2.6"), None, 3, 1, TABLE_MAIN),
            route("10.1.1.0/24", Some("10.0.2.7"), None, 3, 0, 100),
        ]);
        assert_eq!(
            lookup(&o.routes, "10.1.1.1".parse().unwrap())
                .unwrap()
                .gateway()
                .unwrap()
                .to_string(),
            "10.0.2.6"
        );
        assert!(
            lookup(&o.routes, "192.168.0.1".parse().unwrap())
                .unwrap()
                .dst
                .is_default()
        );
        assert!(lookup(&o.routes, "fd00::1".parse().unwrap()).is_none());
    }
}
