//! What an apply did, per node: the values the executor produces and the reports render.

use std::time::Duration;

use crate::core::change::Change;
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
    /// An error that prevented the write or its verification.
    pub error: Option<NodeError>,
    /// Why the node's last-applied record could not be written, if it could not (the routes
    /// are applied all the same; the next plan calls every change there "topology").
    pub record_error: Option<String>,
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
        self.nodes
            .iter()
            .all(|n| matches!(n.outcome, Outcome::InSync | Outcome::Converged))
    }

    /// Operations that took effect (sent minus failed lines).
    pub fn operations_applied(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| n.sent.len().saturating_sub(n.failures.len()))
            .sum()
    }
}
