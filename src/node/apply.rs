//! Runs a plan: per changed node, one `ip -batch` that performs every change and ends with a
//! read-back of the node's routes; the read-back is diffed again, and a node is converged only
//! when that diff is empty. Nodes run in parallel; a node that fails never stops the others, and
//! a node that could not be read is never written.

use std::time::Instant;

use crate::core::change::{self, Action};
use crate::core::diff::{self, Policy};
use crate::core::plan::{NodePlan, Plan};
use crate::core::record;
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
    let policy = Policy {
        take_over: plan.take_over,
        ..Plan::policy(topology)
    };
    let nodes = parallel::map(&plan.nodes, parallelism, |np| {
        let mut result = apply_node(np, plan.adopt, topology, &policy, transport);
        if let Err(why) = keep_record(np, &result, topology, transport) {
            result.record_error = Some(why);
        }
        result
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
        record_error: None,
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

/// After routectl wrote to a node and read it back, stores what it installed there in the
/// node's last-applied record. A node in sync is not touched (an apply that changes nothing
/// writes nothing); a node that could not be read, or whose read-back failed, gets no record.
fn keep_record(
    np: &NodePlan,
    result: &NodeResult,
    topology: &Topology,
    transport: &dyn Transport,
) -> Result<(), String> {
    if !matches!(
        result.outcome,
        Outcome::InSync | Outcome::Converged | Outcome::Failed
    ) || (result.outcome == Outcome::Failed && result.error.is_some())
    {
        return Ok(());
    }
    if result.sent.is_empty() {
        // Nothing was written: the node and its record stay as they are.
        return Ok(());
    }
    let Some(node) = topology.node(&np.name) else {
        return Ok(());
    };
    // routectl's own binding is kept; an empty alias gets a new one; an alias someone else set
    // is left alone, and the record is then not bound (it is trusted as found).
    let binding = match np.binding.as_deref() {
        Some(b) if b.starts_with("routectl ") => Some(b.to_string()),
        Some(_) => None,
        None => Some(observe::new_binding()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let new = record::after_apply(
        &np.name,
        &np.desired,
        &result.remaining,
        &topology.sha256,
        topology.cluster.protocol,
        binding,
        now,
    );

    observe::write_record(transport, node, Some(&new)).map_err(|e| e.to_string())
}

/// Puts nodes back as they were when `plan` was made (`apply --canary-rollback`): every change
/// the plan made is undone by one `ip -batch` per node, the node is read back and diffed again,
/// and it counts as restored only when its relevant routes have the plan's fingerprint again.
/// The last-applied record is put back too. Returns, per node, `Ok` or why not.
pub fn rollback(
    plan: &Plan,
    topology: &Topology,
    transport: &dyn Transport,
    parallelism: usize,
) -> Vec<(String, Result<(), String>)> {
    let policy = Policy {
        take_over: plan.take_over,
        ..Plan::policy(topology)
    };
    parallel::map(&plan.nodes, parallelism, |np| {
        (
            np.name.clone(),
            rollback_node(np, plan.adopt, topology, &policy, transport),
        )
    })
}

fn rollback_node(
    np: &NodePlan,
    adopt: bool,
    topology: &Topology,
    policy: &Policy,
    transport: &dyn Transport,
) -> Result<(), String> {
    let Ok(before) = &np.state else {
        return Ok(());
    };
    let node = topology
        .node(&np.name)
        .ok_or_else(|| format!("node `{}` is not in the topology", np.name))?;
    let lines = undo_lines(np, adopt);
    if !lines.is_empty() {
        let mut script = lines.join("\n");
        script.push('\n');
        let inv = Invocation::ip(iproute::batch_args()).with_stdin(script.into_bytes());
        transport
            .run(&node.instance, &inv)
            .map_err(|e| e.to_string())?;
    }
    let routes = observe::read_node(transport, node).map_err(|e| e.to_string())?;
    let now = diff::diff(&np.desired, &routes, policy);
    observe::write_record(transport, node, np.last_applied.as_ref())
        .map_err(|e| format!("routes restored, but not the last-applied record: {e}"))?;
    if now.fingerprint == before.fingerprint {
        Ok(())
    } else {
        Err("its routes, read back, are not those the plan was made from".to_string())
    }
}

/// The `ip -batch` lines that undo a node's planned operations, in an order that works: the
/// routes routectl added or took over are removed first, then what was there is put back.
pub fn undo_lines(np: &NodePlan, adopt: bool) -> Vec<String> {
    let mut removes = Vec::new();
    let mut restores = Vec::new();
    for c in np.changes().iter().filter(|c| c.is_operation(adopt)) {
        match c.action {
            Action::Add => removes.extend(change::delete_exactly(&c.route)),
            Action::Delete => restores.extend(c.current.as_ref().and_then(change::add_exactly)),
            Action::Replace | Action::Adopt => {
                // Same key: rewriting it with the old route puts it back exactly.
                restores.extend(
                    c.current
                        .as_ref()
                        .and_then(change::add_exactly)
                        .map(|l| l.replacen("route add ", "route replace ", 1)),
                );
            }
            Action::TakeOver => {
                if c.in_place {
                    restores.extend(
                        c.current
                            .as_ref()
                            .and_then(change::add_exactly)
                            .map(|l| l.replacen("route add ", "route replace ", 1)),
                    );
                } else {
                    restores.extend(c.current.as_ref().and_then(change::add_exactly));
                }
            }
            Action::Conflict => {}
        }
    }
    // A take-over that was not in place came with an add of the desired route: removed above.
    removes.sort();
    removes.dedup();
    removes.extend(restores);
    removes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::change::Change;
    use crate::core::diff::NodeDiff;

    fn route(dst: &str, gw: &str, protocol: u8) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            "eth1",
            protocol,
            0,
        )
    }

    #[test]
    fn undo_puts_back_what_each_change_replaced() {
        let want = route("10.1.1.0/24", "10.0.2.21", 211);
        let foreign = route("10.1.1.0/24", "10.0.2.99", 3);
        let old = route("10.1.2.0/24", "10.0.2.98", 211);
        let new = route("10.1.2.0/24", "10.0.2.22", 211);
        let gone = route("10.1.9.0/24", "10.0.2.29", 211);
        let np = NodePlan {
            name: "w".into(),
            instance: "w".into(),
            desired: vec![],
            state: Ok(NodeDiff {
                changes: vec![
                    Change::take_over(want.clone(), foreign, true),
                    Change::new(Action::Replace, new, Some(old)),
                    Change::new(Action::Delete, gone.clone(), Some(gone)),
                    Change::new(Action::Add, route("10.1.3.0/24", "10.0.2.23", 211), None),
                ],
                in_sync: 0,
                warnings: vec![],
                fingerprint: String::new(),
            }),
            last_applied: None,
            binding: None,
        };
        assert_eq!(
            undo_lines(&np, false),
            [
                "route del 10.1.3.0/24 via 10.0.2.23 dev eth1 table 254 proto 211 metric 0",
                "route replace 10.1.1.0/24 via 10.0.2.99 dev eth1 table 254 proto 3 metric 0",
                "route replace 10.1.2.0/24 via 10.0.2.98 dev eth1 table 254 proto 211 metric 0",
                "route add 10.1.9.0/24 via 10.0.2.29 dev eth1 table 254 proto 211 metric 0",
            ]
        );
    }
}
