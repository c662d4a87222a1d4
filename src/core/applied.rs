//! What an apply did, per node: the values the executor produces and the reports render.

use std::time::Duration;

use crate::core::change::{Action, Change};
use crate::core::route::Route;
use crate::error::NodeError;

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing was needed.
    InSync,
    /// Changes were made and the read-back shows the node converged.
    Converged,
    /// The node is not converged (a failed line, a conflict, a failed read-back).
    Failed,
    /// The node could not be read before applying: nothing was sent to it.
    Unreachable,
}

impl Outcome {
    /// Whether the node has the routes it should after the apply: nothing was needed, or the
    /// changes were made and read back.
    pub fn is_converged(self) -> bool {
        matches!(self, Outcome::InSync | Outcome::Converged)
    }
}

/// A batch line that failed, with what `ip` or the kernel said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineFailure {
    /// The batch line.
    pub command: String,
    /// The message.
    pub message: String,
}

/// The result of applying one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// The node.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Batch lines sent.
    pub sent: Vec<String>,
    /// Lines that failed.
    pub failures: Vec<LineFailure>,
    /// What the read-back still shows to do (empty when converged).
    pub remaining: Vec<Change>,
    /// Planned operations the read-back shows in place (not lines sent: a line can be
    /// accepted and have no effect, or a node can swallow its batch).
    pub applied: usize,
    /// An error that prevented the write or its verification.
    pub error: Option<NodeError>,
    /// Why the node's last-applied record could not be written, if it could not (the routes
    /// are applied all the same; the next plan calls every change there "topology").
    pub record_error: Option<String>,
    /// The write was cut short, or never started, because routectl was interrupted.
    pub interrupted_write: bool,
    /// The persisted file written or removed (`persist`), when apply changed it.
    pub dropin: Option<DropinWrite>,
}

/// A persisted file (networkd drop-in, NetworkManager dispatcher script, ifupdown hook) that
/// apply wrote or removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DropinWrite {
    /// Which file.
    pub mechanism: crate::core::persist::Mechanism,
    /// Its path on the node.
    pub path: String,
    /// `written` or `removed`.
    pub action: &'static str,
    /// Milliseconds until the file was in place (and `networkctl reload` had returned).
    pub write_ms: u64,
    /// Milliseconds until the read-back showed every desired route again.
    pub settled_ms: u64,
}

/// The result of an apply.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per node, in plan order.
    pub nodes: Vec<NodeResult>,
    /// Whether adoptions counted as operations.
    pub adopt: bool,
    /// How long the writes and read-backs took.
    pub elapsed: Duration,
}

impl Report {
    /// True when every node is in sync or converged.
    pub fn success(&self) -> bool {
        self.nodes.iter().all(|n| n.outcome.is_converged())
    }

    /// Operations that took effect, as the read-back shows them (a drop-in written or removed
    /// counts as one).
    pub fn operations_applied(&self) -> usize {
        self.nodes.iter().map(NodeResult::operations_applied).sum()
    }

    /// This report and `other`'s (of other nodes of the same `plan`) as one, in plan order.
    pub fn merge(self, other: Report, plan: &crate::core::plan::Plan) -> Report {
        let mut nodes = Vec::with_capacity(plan.nodes.len());
        let (mut a, mut b) = (self.nodes.into_iter(), other.nodes.into_iter());
        let (mut next_a, mut next_b) = (a.next(), b.next());
        for n in &plan.nodes {
            if next_a.as_ref().is_some_and(|x| x.name == n.name) {
                nodes.extend(next_a.take());
                next_a = a.next();
            } else if next_b.as_ref().is_some_and(|x| x.name == n.name) {
                nodes.extend(next_b.take());
                next_b = b.next();
            }
        }
        Report {
            nodes,
            adopt: plan.adopt,
            elapsed: self.elapsed + other.elapsed,
        }
    }

    /// True when some node's write was cut short by SIGINT/SIGTERM, or never started.
    pub fn interrupted(&self) -> bool {
        self.nodes.iter().any(NodeResult::interrupted)
    }
}

impl NodeResult {
    /// This node's operations that took effect, as its read-back shows them, and its drop-in.
    pub fn operations_applied(&self) -> usize {
        self.applied + usize::from(self.dropin.is_some())
    }

    /// True when the node's write was cut short or never started because of SIGINT/SIGTERM.
    pub fn interrupted(&self) -> bool {
        self.interrupted_write
    }
}

/// How many of the planned operations `ops` the read-back `routes` shows in place: an added,
/// replaced or adopted route is there (same key, protocol and forwarding), a deleted one is gone.
pub fn verified(ops: &[&Change], routes: &[Route]) -> usize {
    let present = |want: &Route| {
        routes
            .iter()
            .any(|r| r.same_key(want) && r.protocol == want.protocol && r.satisfies(want))
    };
    ops.iter()
        .filter(|c| match c.action {
            Action::Add | Action::Replace | Action::Adopt => present(&c.route),
            Action::Delete => !present(&c.route),
            // The desired route is there and the foreign one it took over is gone.
            Action::TakeOver => {
                present(&c.route) && c.current.as_ref().is_none_or(|f| !routes.contains(f))
            }
            Action::Conflict => false,
        })
        .count()
}
