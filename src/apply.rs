//! Runs a plan: per changed node, one `ip -batch` that performs every change and ends with a
//! read-back of the node's routes; the read-back is diffed again, and a node is converged only
//! when that diff is empty. Nodes run in parallel; a node that fails never stops the others, and
//! a node that could not be read is never written.

use std::time::{Duration, Instant};

use crate::diff::{self, Policy};
use crate::error::{CommandError, NodeError};
use crate::iproute::{self, ParseError};
use crate::observe;
use crate::parallel;
use crate::plan::{Change, NodePlan, Plan};
use crate::route::Route;
use crate::topology::Topology;
use crate::transport::{Invocation, Transport};

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

/// Applies `plan` (computed from `topology`) through `transport`.
pub fn apply(
    plan: &Plan,
    topology: &Topology,
    transport: &dyn Transport,
    parallelism: usize,
) -> Report {
    let started = Instant::now();
    let policy = Plan::policy(topology);
    let nodes = parallel::map(&plan.nodes, parallelism, |np| {
        apply_node(np, plan.adopt, topology, &policy, transport)
    });
    Report {
        nodes,
        adopt: plan.adopt,
        elapsed: started.elapsed(),
    }
}

fn apply_node(
    np: &NodePlan,
    adopt: bool,
    topology: &Topology,
    policy: &Policy,
    transport: &dyn Transport,
) -> NodeResult {
    let mut result = NodeResult {
        name: np.name.clone(),
        outcome: Outcome::Failed,
        sent: Vec::new(),
        failures: Vec::new(),
        remaining: Vec::new(),
        error: None,
    };
    match &np.state {
        Err(e) => {
            result.outcome = Outcome::Unreachable;
            result.error = Some(e.clone());
            return result;
        }
        Ok(d) if np.is_converged(adopt) => {
            result.outcome = Outcome::InSync;
            result.remaining = d.changes.clone();
            return result;
        }
        Ok(_) => {}
    }
    let Some(node) = topology.node(&np.name) else {
        result.error = Some(NodeError::Command(CommandError::Spawn {
            argv: String::new(),
            message: format!("node `{}` is not in the topology", np.name),
        }));
        return result;
    };

    let lines = np.batch_lines(adopt);
    if lines.is_empty() {
        // Only conflicts stand: nothing to run, and the node is not as declared.
        result.remaining = np.changes().to_vec();
        return result;
    }
    let mut script = String::new();
    for l in &lines {
        script.push_str(l);
        script.push('\n');
    }
    script.push_str(iproute::SHOW_ALL_LINE);
    script.push('\n');
    result.sent = lines.clone();

    let inv = Invocation::ip(iproute::batch_args()).with_stdin(script.into_bytes());
    let readback: Result<Vec<Route>, NodeError> = match transport.run(&node.instance, &inv) {
        Err(e) => {
            // Timed out or could not start: what is true now must be read, not guessed.
            result.error = Some(NodeError::Command(e));
            observe::read_node(transport, node)
        }
        Ok(out) => {
            let failures = iproute::batch_failures(&out.stderr);
            for f in &failures {
                match lines.get(f.line.wrapping_sub(1)) {
                    Some(cmd) => result.failures.push(LineFailure {
                        command: cmd.clone(),
                        message: f.message.clone(),
                    }),
                    None => {
                        // The read-back line itself failed.
                    }
                }
            }
            if out.status != Some(0) && failures.is_empty() {
                // The transport failed (instance stopped, daemon down) or `ip` refused the
                // script as a whole: nothing in it is known to have run.
                let err = out.clone().success().expect_err("status is not 0");
                result.error = Some(NodeError::Command(err));
            }
            match iproute::parse_stream(&out.stdout) {
                Ok(mut tables) if !tables.is_empty() => Ok(tables.pop().unwrap_or_default()),
                Ok(_) | Err(ParseError::Empty) | Err(ParseError::Invalid { .. }) => {
                    observe::read_node(transport, node)
                }
            }
        }
    };

    match readback {
        Ok(routes) => {
            let d = diff::diff(&np.desired, &routes, policy);
            let converged = !d
                .changes
                .iter()
                .any(|c| c.is_operation(adopt) || c.action == crate::plan::Action::Conflict);
            result.remaining = d.changes;
            // Verified by reading back: a node is converged exactly when nothing is left to do,
            // even if some line failed (another writer may have done the same thing).
            result.outcome = if converged {
                Outcome::Converged
            } else {
                Outcome::Failed
            };
        }
        Err(e) => {
            result.outcome = Outcome::Failed;
            if result.error.is_none() {
                result.error = Some(e);
            }
        }
    }
    result
}
