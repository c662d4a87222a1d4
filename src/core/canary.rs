//! Canary rollouts (`apply --canary NODE`): which paths prove a canary's new routes, and the
//! verdict. Pure; the pings run in `node/probe.rs`, the sequence in `commands/apply.rs`.
//!
//! A path goes from the canary's internal IP to another node's pod gateway. The request follows
//! the canary's route to that node's pod CIDR (the route just applied); the reply comes back to
//! an address on the node network, which the peer reaches without any pod route. So a path
//! depends only on the canary's routes and on the peer being up: the other nodes need not have
//! been changed yet.

use std::net::IpAddr;

use crate::core::check::Outcome;
use crate::core::route::Family;
use crate::core::show::pod_gateway;
use crate::core::topology::Topology;

/// One path that proves a canary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path {
    /// The family.
    pub family: Family,
    /// The canary.
    pub from: String,
    /// The node whose pod gateway is pinged.
    pub to: String,
    /// The canary's internal IP (`ping -I`).
    pub source: IpAddr,
    /// The other node's pod gateway.
    pub destination: IpAddr,
}

/// Every path of every canary: to each other node with a pod CIDR of a family the canary has an
/// internal IP of.
pub fn paths(topology: &Topology, canaries: &[String]) -> Vec<Path> {
    let mut out = Vec::new();
    for canary in topology.nodes.iter().filter(|n| canaries.contains(&n.name)) {
        for family in [Family::Ipv4, Family::Ipv6] {
            let Some(source) = canary.internal_ip(family) else {
                continue;
            };
            for other in topology.nodes.iter().filter(|n| n.name != canary.name) {
                if let Some(cidr) = other.pod_cidrs.iter().find(|c| Family::of_net(c) == family) {
                    out.push(Path {
                        family,
                        from: canary.name.clone(),
                        to: other.name.clone(),
                        source,
                        destination: pod_gateway(cidr),
                    });
                }
            }
        }
    }
    out
}

/// A pinged path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The path.
    pub path: Path,
    /// How the ping ended.
    pub outcome: Outcome,
}

/// What the canary stage found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The canary nodes, in topology order.
    pub canaries: Vec<String>,
    /// Canaries whose apply did not converge (their paths were not pinged).
    pub not_converged: Vec<String>,
    /// Every path pinged.
    pub proofs: Vec<Proof>,
    /// Whether the canaries were put back as they were (`--canary-rollback`), and whether the
    /// read-back shows them so: `None` when no rollback was asked for or needed.
    pub rollback: Option<Rollback>,
}

/// A rollback of the canaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// Canaries whose routes, read back, are again exactly those the plan was made from.
    pub restored: Vec<String>,
    /// Canaries that could not be put back, with why.
    pub failed: Vec<(String, String)>,
}

impl Verdict {
    /// True when every canary converged and every path answered.
    pub fn passed(&self) -> bool {
        self.not_converged.is_empty() && self.proofs.iter().all(|p| p.outcome.passed())
    }

    /// The failed paths, as `from -> to (source -> destination): detail`.
    pub fn failures(&self) -> Vec<String> {
        self.proofs
            .iter()
            .filter_map(|p| match &p.outcome {
                Outcome::Fail { detail, .. } | Outcome::NotRun { reason: detail } => Some(format!(
                    "{} -> {} ({} -> {}): {detail}",
                    p.path.from, p.path.to, p.path.source, p.path.destination
                )),
                Outcome::Pass { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::parse;

    #[test]
    fn a_canary_pings_every_other_pod_gateway_from_its_internal_ip() {
        let t = parse(
            br#"
[cluster]
interface = "eth1"
[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"
[[nodes]]
name = "worker-0"
internal_ip = ["10.0.2.20", "fd00::20"]
pod_cidr = ["10.1.0.0/24", "fd01::/64"]
[[nodes]]
name = "worker-1"
internal_ip = ["10.0.2.21", "fd00::21"]
pod_cidr = ["10.1.1.0/24", "fd01:0:0:1::/64"]
"#,
            "t.toml",
            None,
        )
        .unwrap();
        let lines = |c: &[&str]| -> Vec<String> {
            let c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            paths(&t, &c)
                .iter()
                .map(|p| {
                    format!(
                        "{} {}->{} {}->{}",
                        p.family, p.from, p.to, p.source, p.destination
                    )
                })
                .collect()
        };
        assert_eq!(
            lines(&["worker-0"]),
            [
                "IPv4 worker-0->worker-1 10.0.2.20->10.1.1.1",
                "IPv6 worker-0->worker-1 fd00::20->fd01:0:0:1::1",
            ]
        );
        // A controller has no pod CIDR but routes to every worker.
        assert_eq!(
            lines(&["controller-0"]),
            [
                "IPv4 controller-0->worker-0 10.0.2.10->10.1.0.1",
                "IPv4 controller-0->worker-1 10.0.2.10->10.1.1.1",
            ]
        );
    }

    #[test]
    fn the_verdict_names_failed_paths() {
        let p = Path {
            family: Family::Ipv4,
            from: "worker-0".into(),
            to: "worker-2".into(),
            source: "10.0.2.20".parse().unwrap(),
            destination: "10.1.2.1".parse().unwrap(),
        };
        let v = Verdict {
            canaries: vec!["worker-0".into()],
            not_converged: vec![],
            proofs: vec![Proof {
                path: p,
                outcome: Outcome::Fail {
                    attempts: 2,
                    detail: "100% packet loss".into(),
                },
            }],
            rollback: None,
        };
        assert!(!v.passed());
        assert_eq!(
            v.failures(),
            ["worker-0 -> worker-2 (10.0.2.20 -> 10.1.2.1): 100% packet loss"]
        );
    }
}
