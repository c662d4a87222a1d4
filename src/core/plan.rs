//! The plan: per node, the changes that would converge it. One value that `plan` shows and
//! `apply` executes, so what is shown and what is done cannot drift apart. The one place that
//! turns a change into an `ip` command line.

use std::net::IpAddr;

use serde::Serialize;

use crate::core::change::{Action, Cause, Change, RouteOp};
use crate::core::desired;
use crate::core::diff::{self, NodeDiff, Policy};
use crate::core::fit;
use crate::core::guard::{self, HeldBack};
use crate::core::persist::{self, Manager, NodeFacts, PersistPlan};
use crate::core::record::{self, LastApplied};
use crate::core::route::{Destination, Route};
use crate::core::topology::{Node, Topology};
use crate::error::NodeError;
use crate::parallel;

/// Options that shape a plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Take over foreign routes identical to desired ones.
    pub adopt: bool,
    /// Replace foreign routes in desired routes' way with the desired ones (`--take-over`).
    pub take_over: bool,
    /// Plan only these nodes (all when empty).
    pub only: Vec<String>,
}

/// The plan of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's name.
    pub name: String,
    /// What the transport addresses.
    pub instance: String,
    /// The diff, or why the node could not be read (or persisted as asked).
    pub state: Result<NodeDiff, NodeError>,
    /// What manages the node's route interface (unknown for a plan from snapshots).
    pub manager: Manager,
    /// What apply does about the node's networkd drop-in.
    pub persist: PersistPlan,
    /// What routectl last applied there (read with the routes), if a usable record exists.
    pub last_applied: Option<LastApplied>,
    /// What the node is, as read with the routes: the last-applied record's binding.
    pub binding: Option<String>,
}

/// What one read of a node gives a plan: its routes, its last-applied record, and what
/// manages its route interface.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Every route of every table.
    pub routes: Vec<Route>,
    /// The record: none, one, or why the one found is not used.
    pub last_applied: Result<Option<LastApplied>, String>,
    /// What the node is now (boot, PID 1, network namespace), computed by the read: the
    /// record's binding.
    pub binding: Option<String>,
    /// The facts about the route interface (`Err`: why they are not known).
    pub facts: Result<NodeFacts, String>,
}

impl Observed {
    /// What manages the route interface.
    pub fn manager(&self) -> Manager {
        persist::manager_of(&self.facts)
    }
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            routes: Vec::new(),
            last_applied: Ok(None),
            binding: None,
            facts: Err("not read".to_string()),
        }
    }
}

impl From<Vec<Route>> for Observed {
    fn from(routes: Vec<Route>) -> Observed {
        Observed {
            routes,
            ..Observed::default()
        }
    }
}

impl NodePlan {
    /// The changes (none for an unreadable node).
    pub fn changes(&self) -> &[Change] {
        match &self.state {
            Ok(d) => &d.changes,
            Err(_) => &[],
        }
    }

    /// The `ip -batch` lines of [`NodePlan::route_ops`].
    pub fn batch_lines(&self, adopt: bool) -> Vec<String> {
        self.route_ops(adopt).iter().map(RouteOp::line).collect()
    }

    /// The route operations that `apply` performs on this node: in-place replacements first,
    /// then additions, then deletions (make before break).
    pub fn route_ops(&self, adopt: bool) -> Vec<RouteOp> {
        let mut ops: Vec<&Change> = self
            .changes()
            .iter()
            .filter(|c| c.is_operation(adopt))
            .collect();
        // A route deleted to make room (a foreign route taken over, or an owned route sharing
        // an added route's key) must be gone before the add, or the kernel refuses the add
        // (IPv4) or merges it into a multipath route (IPv6).
        let added: Vec<&Route> = ops
            .iter()
            .filter(|c| c.action == Action::Add)
            .map(|c| &c.route)
            .collect();
        ops.sort_by_key(|c| match c.action {
            Action::Replace | Action::Adopt => 0,
            Action::TakeOver if c.in_place => 0,
            Action::TakeOver => 1,
            Action::Delete if added.iter().any(|a| a.same_key(&c.route)) => 1,
            Action::Add => 2,
            _ => 3,
        });
        ops.iter().filter_map(|c| c.op()).collect()
    }

    /// True when the node needs nothing and nothing blocks it.
    pub fn is_converged(&self, adopt: bool) -> bool {
        self.state.as_ref().is_ok_and(|d| d.is_converged(adopt)) && !self.persist.is_pending()
    }
}

/// A plan for a set of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// routectl's protocol number.
    pub protocol: u8,
    /// Whether adoptions are operations.
    pub adopt: bool,
    /// Whether foreign routes in the way are taken over.
    pub take_over: bool,
    /// The nodes planned, in topology order.
    pub nodes: Vec<NodePlan>,
    /// Nodes of the topology left out by `--node`.
    pub skipped: Vec<String>,
    /// The deletions `apply` and `reconcile` hold back (the mass-delete guard,
    /// [`guard::assess`]); emptied by [`Plan::allow_mass_delete`].
    pub held_back: Vec<HeldBack>,
    /// Which access each node got and where it runs (empty for a plan from a snapshot).
    pub access: crate::core::access::Accesses,
}

/// Counts over a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Routes to add.
    pub add: usize,
    /// Routes to replace.
    pub replace: usize,
    /// Routes to delete.
    pub delete: usize,
    /// Foreign routes identical to desired ones (taken over only with `--adopt`).
    pub adopt: usize,
    /// Foreign routes that block desired ones.
    pub conflict: usize,
    /// Foreign routes taken over (`--take-over`).
    pub take_over: usize,
    /// Changes caused by drift (the node lost what routectl last applied).
    pub drift: usize,
    /// Nodes planned.
    pub nodes: usize,
    /// Nodes with at least one operation.
    pub nodes_changed: usize,
    /// Nodes that could not be read.
    pub nodes_unreachable: usize,
    /// Nodes needing nothing.
    pub nodes_in_sync: usize,
    /// networkd drop-ins to write or remove (`persist`).
    pub dropins: usize,
    /// Nodes read but not planned because `persist` cannot work on them (errors too).
    pub nodes_unpersistable: usize,
    /// Nodes read but not planned because their interfaces and addresses cannot carry their
    /// routes (errors too).
    pub nodes_misfit: usize,
}

impl Plan {
    /// The nodes that `keep` accepts, as a plan of their own.
    pub fn part(&self, keep: impl Fn(&str) -> bool) -> Plan {
        Plan {
            nodes: self
                .nodes
                .iter()
                .filter(|n| keep(&n.name))
                .cloned()
                .collect(),
            held_back: self
                .held_back
                .iter()
                .filter(|h| keep(&h.node))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The policy the diff of this topology follows.
    pub fn policy(topology: &Topology) -> Policy {
        let mut pod_ranges = topology.cluster.pod_cidrs.clone();
        if pod_ranges.is_empty() {
            pod_ranges = topology
                .nodes
                .iter()
                .flat_map(|n| n.pod_cidrs.iter().copied())
                .collect();
        }
        Policy {
            protocol: topology.cluster.protocol,
            pod_ranges,
            take_over: false,
        }
    }

    /// The policy this plan was made with (its topology's, and `--take-over`): what an apply
    /// of it judges the nodes by.
    pub fn policy_of(&self, topology: &Topology) -> Policy {
        Policy {
            take_over: self.take_over,
            ..Plan::policy(topology)
        }
    }

    /// The policy of a plan made with `options`.
    pub fn policy_with(topology: &Topology, options: &Options) -> Policy {
        Policy {
            take_over: options.take_over,
            ..Plan::policy(topology)
        }
    }

    /// Builds the plan: `observe` tells what each selected node has (read through a transport,
    /// or from a snapshot: its routes, and its last-applied record where one is read). Nodes are
    /// observed and diffed `parallelism` at a time, so a node's routes are dropped as soon as
    /// its diff is made.
    pub fn compute<R: Into<Observed>>(
        topology: &Topology,
        options: &Options,
        parallelism: usize,
        observe: impl Fn(&Node) -> Result<R, NodeError> + Sync,
    ) -> Plan {
        let policy = Plan::policy_with(topology, options);
        let selected = topology.selected(&options.only);
        let nodes = parallel::map(&selected, parallelism, |node| {
            Plan::node(topology, node, &policy, observe(node).map(Into::into))
        });
        let mut plan = Plan {
            protocol: topology.cluster.protocol,
            adopt: options.adopt,
            take_over: options.take_over,
            nodes,
            skipped: topology.unselected(&options.only),
            held_back: Vec::new(),
            access: Default::default(),
        };
        plan.withhold_absent_gateways();
        plan.held_back = guard::assess(&plan);
        plan
    }

    /// Routes via an internal IP that its node does not have are not planned on any node: they
    /// would send traffic to an address nobody has. Each node that loses one says so.
    fn withhold_absent_gateways(&mut self) {
        let absent: Vec<(IpAddr, String)> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.state {
                Err(NodeError::Misfit { problems }) => Some(
                    fit::absent_ips(problems)
                        .into_iter()
                        .map(|ip| (ip, n.name.clone())),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        if absent.is_empty() {
            return;
        }
        for n in &mut self.nodes {
            let Ok(d) = &mut n.state else { continue };
            let mut withheld = Vec::new();
            d.changes.retain(|c| {
                let via = c.route.gateway();
                let Some((ip, owner)) = absent.iter().find(|(ip, _)| via == Some(*ip)) else {
                    return true;
                };
                if c.action == Action::Delete {
                    return true;
                }
                withheld.push(format!(
                    "`{}` is not planned: its gateway {ip} is on no interface of {owner}",
                    c.route
                ));
                false
            });
            d.warnings.extend(withheld);
        }
    }

    /// `--allow-mass-delete`: nothing is held back.
    pub fn allow_mass_delete(&mut self) {
        self.held_back.clear();
    }

    /// Plans one node: its routes, and its drop-in when it persists them (or has one left).
    pub fn node(
        topology: &Topology,
        node: &Node,
        policy: &Policy,
        observed: Result<Observed, NodeError>,
    ) -> NodePlan {
        let desired = desired::routes_for(topology, node);
        let (mut last_applied, mut binding) = (None, None);
        let mut manager = Manager::Unknown("not read".to_string());
        let mut persist_plan = PersistPlan::Off;
        let state = observed.and_then(|seen| {
            manager = seen.manager();
            if let Some(links) = fit::links_from_routes(&seen.routes) {
                let problems = fit::misfits(topology, node, &desired, &links, &seen.routes);
                if !problems.is_empty() {
                    return Err(NodeError::Misfit { problems });
                }
            }
            let mut d = diff::diff(&desired, &seen.routes, policy);
            match seen.last_applied {
                Ok(record) => last_applied = record,
                Err(why) => d.warnings.push(why),
            }
            binding = seen.binding;
            record::mark_causes(&mut d.changes, last_applied.as_ref());
            d.warnings.extend(record::restart_note(
                &node.name,
                last_applied.as_ref(),
                &d.changes,
            ));
            persist_plan = persist::plan(
                node.persist,
                seen.facts.as_ref().map_err(String::as_str),
                &node.name,
                node.interface.as_deref().unwrap_or_default(),
                &desired,
            )
            .map_err(|reason| NodeError::Persist {
                path: manager.persist_path(),
                reason,
            })?;
            d.warnings.extend(persist::warning(
                node.persist,
                &manager,
                node.interface.as_deref().unwrap_or_default(),
                desired.len(),
            ));
            if node.persist != persist::Persist::None
                && seen.facts.as_ref().err().map(String::as_str) == Some(persist::FROM_SNAPSHOT)
            {
                d.warnings.push(format!(
                    "persist = \"{}\": the persisted file is not checked in a plan from \
                     snapshots (a live plan or apply reads it)",
                    node.persist.name()
                ));
            }
            Ok(d)
        });
        // The desired routes are not kept: at a million routes they would double the plan's
        // size, and `desired::routes_for` gives them again where needed (apply's read-back).
        NodePlan {
            name: node.name.clone(),
            instance: node.instance.clone(),
            state,
            manager,
            persist: persist_plan,
            last_applied,
            binding,
        }
    }

    /// Counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            nodes: self.nodes.len(),
            ..Summary::default()
        };
        for n in &self.nodes {
            if let Err(e) = &n.state {
                if matches!(e, NodeError::Misfit { .. }) {
                    s.nodes_misfit += 1;
                } else if matches!(e, NodeError::Persist { .. }) {
                    s.nodes_unpersistable += 1;
                } else {
                    s.nodes_unreachable += 1;
                }
                continue;
            }
            for c in n.changes() {
                match c.action {
                    Action::Add => s.add += 1,
                    Action::Replace => s.replace += 1,
                    Action::Delete => s.delete += 1,
                    Action::Adopt => s.adopt += 1,
                    Action::TakeOver => s.take_over += 1,
                    // Counted once per blocked desired route, not per blocking foreign route.
                    Action::Conflict => {}
                }
            }
            let mut blocked: Vec<&Destination> = n
                .changes()
                .iter()
                .filter(|c| c.action == Action::Conflict)
                .map(|c| &c.route.dst)
                .collect();
            blocked.dedup();
            s.conflict += blocked.len();
            s.drift += n
                .changes()
                .iter()
                .filter(|c| c.cause == Cause::Drift)
                .count();
            if n.persist.is_pending() {
                s.dropins += 1;
            }
            if n.persist.is_pending() || n.changes().iter().any(|c| c.is_operation(self.adopt)) {
                s.nodes_changed += 1;
            }
            if n.is_converged(self.adopt) {
                s.nodes_in_sync += 1;
            }
        }
        s
    }

    /// True when `apply` would run at least one operation, or a conflict stands in the way.
    pub fn has_pending(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.state.is_ok() && !n.is_converged(self.adopt))
    }

    /// True when some node could not be read.
    pub fn has_errors(&self) -> bool {
        self.nodes.iter().any(|n| n.state.is_err())
    }

    /// Total operations `apply` would run (a drop-in to write or remove counts as one).
    pub fn operations(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                n.changes()
                    .iter()
                    .filter(|c| c.is_operation(self.adopt))
                    .count()
                    + usize::from(n.state.is_ok() && n.persist.is_pending())
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diff::NodeDiff;

    fn node(name: &str, in_sync: usize, deletes: usize) -> NodePlan {
        let r = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        NodePlan {
            name: name.into(),
            instance: name.into(),
            state: Ok(NodeDiff {
                changes: (0..deletes)
                    .map(|_| Change::new(Action::Delete, r.clone(), Some(r.clone())))
                    .collect(),
                in_sync,
                warnings: vec![],
                fingerprint: String::new(),
            }),
            manager: Manager::Nothing,
            persist: PersistPlan::Off,
            last_applied: None,
            binding: None,
        }
    }

    #[test]
    fn deletions_that_make_room_come_before_the_add() {
        let desired = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        let mut foreign = desired.clone();
        foreign.protocol = 3;
        foreign.metric = 10;
        let mut owned_same_key = desired.clone();
        owned_same_key.next_hop = crate::core::route::NextHop::Single(crate::core::route::Hop {
            gateway: Some("10.0.2.98".parse().unwrap()),
            dev: Some("eth1".into()),
        });
        let mut stale = desired.clone();
        stale.dst = Destination::Net("10.1.9.0/24".parse().unwrap());
        let mut np = node("a", 0, 0);
        if let Ok(d) = &mut np.state {
            d.changes = vec![
                Change::new(Action::Add, desired.clone(), None),
                Change::take_over(desired.clone(), foreign, false),
                Change::new(Action::Delete, owned_same_key.clone(), Some(owned_same_key)),
                Change::new(Action::Delete, stale.clone(), Some(stale)),
            ];
        }
        let lines = np.batch_lines(false);
        assert!(
            lines[0].starts_with(
                "route del 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 3 metric 10"
            ),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("route del 10.1.1.0/24 via 10.0.2.98"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("route add 10.1.1.0/24"), "{lines:?}");
        assert!(lines[3].starts_with("route del 10.1.9.0/24"), "{lines:?}");
    }

    #[test]
    fn batch_lines_are_explicit() {
        let r = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        let add = Change::new(Action::Add, r.clone(), None);
        assert_eq!(
            add.batch_line().unwrap(),
            "route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0"
        );
        let del = Change::new(Action::Delete, r.clone(), Some(r.clone()));
        assert_eq!(
            del.batch_line().unwrap(),
            "route del 10.1.1.0/24 via 10.0.2.21 table 254 proto 211 metric 0"
        );
        let adopt = Change::new(Action::Adopt, r.clone(), Some(r.clone()));
        assert!(adopt.batch_line().unwrap().starts_with("route replace "));
        assert!(!adopt.is_operation(false));
        assert!(adopt.is_operation(true));
        assert_eq!(
            Change::new(Action::Conflict, r.clone(), None).batch_line(),
            None
        );
        let r6 = Route::unicast(
            "fd01::/64".parse().unwrap(),
            "fd00::21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        assert_eq!(
            Change::new(Action::Add, r6, None).batch_line().unwrap(),
            "route add fd01::/64 via fd00::21 dev eth1 table 254 proto 211 metric 1024"
        );
    }
}
