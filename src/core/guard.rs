//! The mass-delete guard: which deletions of a plan `apply` and `reconcile` hold back unless
//! `--allow-mass-delete` is given. A plan that deletes every owned route of a node (two or
//! more), or more than half of all owned routes of the planned nodes (two or more), usually
//! comes from a truncated or wrong topology, or from routes a node's root planted with
//! routectl's protocol. Only the deletions that make up the mass deletion wait: every other
//! change (the other nodes', and the held nodes' adds and replaces) is applied, so one node's
//! routes can never stop the repairs of the others.

use std::borrow::Cow;
use std::fmt;

use crate::core::applied::{Outcome, Report};
use crate::core::change::{Action, Change};
use crate::core::plan::Plan;

/// The option that lets the held-back deletions through.
pub const ALLOW: &str = "--allow-mass-delete";

/// Why the guard holds back a node's deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The node would lose every one of its owned routes.
    AllOfNode {
        /// Its owned routes.
        owned: usize,
    },
    /// The plan deletes more than half of all owned routes of the planned nodes; every node
    /// with a deletion is part of it.
    MostOfPlan {
        /// Owned routes the plan deletes, on every planned node.
        deleted: usize,
        /// Owned routes of every planned node.
        owned: usize,
    },
}

impl Reason {
    /// The rule's name in JSON: `all_of_node` or `most_of_plan`.
    pub fn rule(&self) -> &'static str {
        match self {
            Reason::AllOfNode { .. } => "all_of_node",
            Reason::MostOfPlan { .. } => "most_of_plan",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::AllOfNode { owned } => {
                write!(f, "it would lose all {owned} of its routectl routes")
            }
            Reason::MostOfPlan { deleted, owned } => write!(
                f,
                "the plan deletes {deleted} of the {owned} routectl routes on the planned nodes"
            ),
        }
    }
}

/// The deletions of one node that the guard holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The node.
    pub node: String,
    /// How many deletions wait.
    pub deletions: usize,
    /// Why (one or both rules).
    pub reasons: Vec<Reason>,
}

impl HeldBack {
    /// The reasons as one sentence.
    pub fn why(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} held back ({})",
            self.node,
            crate::core::text::count(self.deletions, "deletion", "deletions"),
            self.why()
        )
    }
}

/// Whether the guard may hold back `c`, one of a node's `changes`: a deletion of an owned
/// route, unless it makes room for an added route of the same key (then it is part of putting
/// a desired route in place, and the add would fail without it).
pub fn holds(c: &Change, changes: &[Change]) -> bool {
    c.action == Action::Delete
        && !changes
            .iter()
            .any(|a| a.action == Action::Add && a.route.same_key(&c.route))
}

/// What the guard holds back of `plan`, node by node in plan order (empty when the plan is no
/// mass deletion).
pub fn assess(plan: &Plan) -> Vec<HeldBack> {
    // Per readable node: its owned routes, its deletions, and those the guard may hold back.
    let mut counts = Vec::new();
    let (mut owned_total, mut deleted_total) = (0usize, 0usize);
    for n in &plan.nodes {
        let Ok(d) = &n.state else { continue };
        let count = |a: Action| d.changes.iter().filter(|c| c.action == a).count();
        let deleted = count(Action::Delete);
        let owned = d.in_sync + count(Action::Replace) + deleted;
        let holdable = d.changes.iter().filter(|c| holds(c, &d.changes)).count();
        owned_total += owned;
        deleted_total += deleted;
        counts.push((&n.name, owned, deleted, holdable));
    }
    let most =
        (deleted_total >= 2 && deleted_total * 2 > owned_total).then_some(Reason::MostOfPlan {
            deleted: deleted_total,
            owned: owned_total,
        });
    let mut held = Vec::new();
    for (name, owned, deleted, holdable) in counts {
        if holdable == 0 {
            continue;
        }
        let mut reasons = Vec::new();
        if owned >= 2 && deleted == owned {
            reasons.push(Reason::AllOfNode { owned });
        }
        reasons.extend(most);
        if !reasons.is_empty() {
            held.push(HeldBack {
                node: name.clone(),
                deletions: holdable,
                reasons,
            });
        }
    }
    held
}

/// The plan `apply` runs: `plan` without the deletions in its `held_back` (the plan itself
/// when nothing is held back).
pub fn runnable(plan: &Plan) -> Cow<'_, Plan> {
    if plan.held_back.is_empty() {
        return Cow::Borrowed(plan);
    }
    let mut run = plan.clone();
    for n in &mut run.nodes {
        if !plan.held_back.iter().any(|h| h.node == n.name) {
            continue;
        }
        if let Ok(d) = &mut n.state {
            let all = std::mem::take(&mut d.changes);
            d.changes = all.iter().filter(|c| !holds(c, &all)).cloned().collect();
        }
    }
    Cow::Owned(run)
}

/// After the read-back of an apply of [`runnable`]`(plan)`: on the nodes whose deletions were
/// held back, those deletions are no longer counted as remaining, and a node left with nothing
/// else to do is converged (or in sync, when nothing was sent to it). A node with an error,
/// another change still pending or a networkd drop-in still to write stays failed.
pub fn settle(report: &mut Report, plan: &Plan) {
    let adopt = report.adopt;
    for r in &mut report.nodes {
        if !plan.held_back.iter().any(|h| h.node == r.name) {
            continue;
        }
        let all = std::mem::take(&mut r.remaining);
        r.remaining = all.iter().filter(|c| !holds(c, &all)).cloned().collect();
        let dropin_due = plan
            .nodes
            .iter()
            .find(|n| n.name == r.name)
            .is_some_and(|n| n.persist.is_pending() && r.dropin.is_none());
        if r.outcome == Outcome::Failed
            && r.error.is_none()
            && !dropin_due
            && !r.remaining.iter().any(|c| c.is_pending(adopt))
        {
            r.outcome = if r.sent.is_empty() {
                Outcome::InSync
            } else {
                Outcome::Converged
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::applied::NodeResult;
    use crate::core::diff::NodeDiff;
    use crate::core::persist::{Manager, PersistPlan};
    use crate::core::plan::NodePlan;
    use crate::core::route::Route;

    fn route(dst: &str) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        )
    }

    fn delete(dst: &str) -> Change {
        Change::new(Action::Delete, route(dst), Some(route(dst)))
    }

    fn node(name: &str, in_sync: usize, changes: Vec<Change>) -> NodePlan {
        NodePlan {
            name: name.into(),
            instance: name.into(),
            state: Ok(NodeDiff {
                changes,
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

    fn deletes(name: &str, in_sync: usize, n: usize) -> NodePlan {
        let changes = (0..n).map(|i| delete(&format!("10.9.{i}.0/24"))).collect();
        node(name, in_sync, changes)
    }

    fn plan(nodes: Vec<NodePlan>) -> Plan {
        let mut p = Plan {
            protocol: 211,
            adopt: false,
            take_over: false,
            nodes,
            skipped: vec![],
            held_back: vec![],
            access: Default::default(),
        };
        p.held_back = assess(&p);
        p
    }

    #[test]
    fn one_stale_route_among_many_is_not_held_back() {
        assert_eq!(
            assess(&plan(vec![deletes("a", 3, 1), deletes("b", 3, 0)])),
            []
        );
        // A single owned route going away is not "mass".
        assert_eq!(assess(&plan(vec![deletes("a", 0, 1)])), []);
    }

    #[test]
    fn a_node_losing_everything_is_held_back_alone() {
        let held = assess(&plan(vec![
            deletes("a", 0, 2),
            deletes("b", 9, 1),
            deletes("c", 9, 0),
        ]));
        assert_eq!(
            held,
            [HeldBack {
                node: "a".into(),
                deletions: 2,
                reasons: vec![Reason::AllOfNode { owned: 2 }],
            }]
        );
        assert_eq!(
            held[0].to_string(),
            "a: 2 deletions held back (it would lose all 2 of its routectl routes)"
        );
    }

    #[test]
    fn most_of_the_plan_holds_back_every_node_that_deletes() {
        // Ten strays on c: 10 of the 16 owned routes; a and b lose nothing.
        let held = assess(&plan(vec![
            deletes("a", 3, 0),
            deletes("b", 2, 1),
            deletes("c", 0, 10),
        ]));
        let most = Reason::MostOfPlan {
            deleted: 11,
            owned: 16,
        };
        assert_eq!(
            held,
            [
                HeldBack {
                    node: "b".into(),
                    deletions: 1,
                    reasons: vec![most],
                },
                HeldBack {
                    node: "c".into(),
                    deletions: 10,
                    reasons: vec![Reason::AllOfNode { owned: 10 }, most],
                },
            ]
        );
        assert_eq!(
            held[1].why(),
            "it would lose all 10 of its routectl routes; the plan deletes 11 of the 16 \
             routectl routes on the planned nodes"
        );
    }

    #[test]
    fn the_runnable_plan_keeps_adds_replaces_and_room_making_deletes() {
        let add = Change::new(Action::Add, route("10.1.1.0/24"), None);
        let mut in_the_way = route("10.1.1.0/24");
        in_the_way.next_hop = crate::core::route::NextHop::Single(crate::core::route::Hop {
            gateway: Some("10.0.2.98".parse().unwrap()),
            dev: Some("eth1".into()),
        });
        let room = Change::new(Action::Delete, in_the_way.clone(), Some(in_the_way));
        let p = plan(vec![
            node(
                "a",
                0,
                vec![
                    add.clone(),
                    room.clone(),
                    delete("10.9.0.0/24"),
                    delete("10.9.1.0/24"),
                ],
            ),
            deletes("b", 1, 0),
        ]);
        assert_eq!(p.held_back.len(), 1);
        assert_eq!(p.held_back[0].deletions, 2);
        let run = runnable(&p);
        assert_eq!(run.nodes[0].changes(), [add, room]);
        assert_eq!(run.held_back, p.held_back);
        // Nothing held back: the plan itself.
        let calm = plan(vec![deletes("a", 3, 1)]);
        assert!(matches!(runnable(&calm), Cow::Borrowed(_)));
    }

    #[test]
    fn settled_nodes_converge_without_their_held_deletions() {
        let p = plan(vec![deletes("a", 0, 3), deletes("b", 2, 0)]);
        let result = |name: &str, sent: bool, remaining: Vec<Change>| NodeResult {
            name: name.into(),
            outcome: Outcome::Failed,
            sent: if sent {
                vec!["route add".into()]
            } else {
                vec![]
            },
            failures: vec![],
            remaining,
            applied: 0,
            error: None,
            record_error: None,
            interrupted_write: false,
            dropin: None,
        };
        let add = Change::new(Action::Add, route("10.1.1.0/24"), None);
        let mut report = Report {
            nodes: vec![
                result(
                    "a",
                    true,
                    vec![delete("10.9.0.0/24"), delete("10.9.1.0/24")],
                ),
                result("b", true, vec![delete("10.9.2.0/24")]),
            ],
            adopt: false,
            elapsed: Duration::ZERO,
        };
        settle(&mut report, &p);
        assert_eq!(report.nodes[0].outcome, Outcome::Converged);
        assert!(report.nodes[0].remaining.is_empty());
        // b holds nothing back: its remaining deletion is a failure as before.
        assert_eq!(report.nodes[1].outcome, Outcome::Failed);
        // Another change still pending keeps a held node failed.
        report.nodes[0] = result("a", false, vec![delete("10.9.0.0/24"), add.clone()]);
        settle(&mut report, &p);
        assert_eq!(report.nodes[0].outcome, Outcome::Failed);
        assert_eq!(report.nodes[0].remaining, [add]);
        // Nothing sent and nothing else to do: in sync.
        report.nodes[0] = result("a", false, vec![delete("10.9.0.0/24")]);
        settle(&mut report, &p);
        assert_eq!(report.nodes[0].outcome, Outcome::InSync);
    }
}
