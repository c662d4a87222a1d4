//! Runs a plan: per changed node, one `ip -batch` that performs every change and ends with a
//! read-back of the node's routes; the read-back is diffed again, and a node is converged only
//! when that diff is empty. Nodes run in parallel; a node that fails never stops the others, and
//! a node that could not be read is never written.

use std::time::Instant;

use crate::core::diff::{self, Policy};
use crate::core::plan::{NodePlan, Plan};
use crate::core::route::Route;
use crate::core::topology::Topology;
use crate::error::ParseError;
use crate::error::{CommandError, NodeError};
use crate::node::iproute;
use crate::node::observe;
use crate::node::transport::{Invocation, Transport};
use crate::parallel;

pub use crate::core::applied::{LineFailure, NodeResult, Outcome, Report};

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
    let mut result = apply_routes(np, adopt, topology, policy, transport);
    // The drop-in follows the routes: written only once the node has them, so that networkd is
    // never told to install a route the kernel refused.
    if np.persist.is_pending()
        && matches!(result.outcome, Outcome::Converged | Outcome::InSync)
        && let Some(node) = topology.node(&np.name)
    {
        match crate::node::networkd::apply(transport, node, np, policy, adopt) {
            Ok(w) if w.action == "removed" => {
                // The routes networkd had from the drop-in are gone: plan the node again from
                // what it has now and put them back as routectl's own.
                let again = Plan::node(
                    topology,
                    node,
                    policy,
                    observe::read_node_full(transport, node),
                );
                let mut second = apply_routes(&again, adopt, topology, policy, transport);
                second.sent.splice(0..0, result.sent);
                second.failures.splice(0..0, result.failures);
                if second.outcome == Outcome::InSync {
                    second.outcome = Outcome::Converged;
                }
                second.dropin = Some(w);
                result = second;
            }
            Ok(w) => {
                result.dropin = Some(w);
                result.outcome = Outcome::Converged;
            }
            Err(e) => {
                result.outcome = Outcome::Failed;
                result.error = Some(e);
            }
        }
    }
    result
}

fn apply_routes(
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
        dropin: None,
    };
    match &np.state {
        // Readable, but not to be written as the topology asks (persist): nothing is sent.
        Err(e @ NodeError::Persist { .. }) => {
            result.outcome = Outcome::Failed;
            result.error = Some(e.clone());
            return result;
        }
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
        Ok(d)
            if np.persist.is_pending()
                && !d.changes.iter().any(|c| {
                    c.is_operation(adopt) || c.action == crate::core::change::Action::Conflict
                }) =>
        {
            // The routes are in place; only the drop-in is to be written.
            result.outcome = Outcome::InSync;
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
                result.error = Some(NodeError::Command(out.status_error()));
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
            let converged = d.is_converged(adopt);
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
