//! Runs a plan: per changed node, one round trip ([`ApplyRequest`]) that performs every change,
//! writes the networkd drop-in when the plan persists the routes, stores the last-applied record
//! (last, and only when every change succeeded) and reads the node's routes back; the read-back
//! is diffed again, and a node is converged only when that diff is empty. Nodes run in
//! parallel; a node that fails never stops the others, and a node that could not be read is
//! never written.

use std::time::{Duration, Instant};

use crate::core::change::{Action, RouteOp};
use crate::core::desired;
use crate::core::diff::{self, Policy};
use crate::core::persist::Mechanism;
use crate::core::plan::{NodePlan, Plan};
use crate::core::record::{self, LastApplied};
use crate::core::route::Route;
use crate::core::topology::Topology;
use crate::error::{CommandError, NodeError};
use crate::node::iproute;
use crate::node::networkd;
use crate::node::observe;
use crate::node::request::{ApplyReply, ApplyRequest, FileChange, PersistedFile};
use crate::node::transport::Transport;
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
    let policy = plan.policy_of(topology);
    let nodes = parallel::map(&plan.nodes, parallelism, |np| {
        let mut stored = None;
        let mut result = apply_node(np, plan.adopt, topology, &policy, transport, &mut stored);
        if let Err(why) = keep_record(np, &result, topology, transport, stored.as_ref()) {
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
    stored: &mut Option<LastApplied>,
) -> NodeResult {
    let mut result = apply_routes(np, adopt, topology, policy, transport, stored);
    if let Some(fused) = result.dropin.take_if(|w| w.mechanism.reloads())
        && let Some(node) = topology.node(&np.name)
    {
        // The drop-in went with the routes (written once every line succeeded) and networkd
        // was reloaded: wait until it has installed them, then judge the node from there.
        let desired = desired::routes_for(topology, node);
        let written = Duration::from_millis(fused.write_ms);
        let settled = networkd::settle(
            transport,
            node,
            &desired,
            policy,
            adopt,
            fused.path,
            fused.action,
            Instant::now(),
            written,
        );
        match settled {
            Ok(w) => {
                result.dropin = Some(w);
                let again = observe::read_node(transport, node);
                judge(&mut result, np, &desired, adopt, policy, again);
            }
            Err(e) => {
                result.outcome = Outcome::Failed;
                result.error = Some(e);
            }
        }
        return result;
    }
    // A file the routes did not carry (they were in place, or it is removed) follows them:
    // written only once the node has them, so that the manager is never told to install a route
    // the kernel refused.
    if np.persist.is_pending()
        && result.dropin.is_none()
        && result.outcome.is_converged()
        && let Some(node) = topology.node(&np.name)
    {
        let desired = desired::routes_for(topology, node);
        match crate::node::networkd::apply(transport, node, np, &desired, policy, adopt) {
            Ok(w) if w.action == "removed" && w.mechanism.reloads() => {
                // The routes networkd had from the drop-in are gone: plan the node again from
                // what it has now and put them back as routectl's own.
                let again = Plan::node(
                    topology,
                    node,
                    policy,
                    observe::read_observed(transport, node),
                );
                let mut second = apply_routes(&again, adopt, topology, policy, transport, stored);
                second.sent.splice(0..0, result.sent);
                second.failures.splice(0..0, result.failures);
                second.applied += result.applied;
                second.interrupted_write |= result.interrupted_write;
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
    stored: &mut Option<LastApplied>,
) -> NodeResult {
    let mut result = NodeResult {
        name: np.name.clone(),
        outcome: Outcome::Failed,
        sent: Vec::new(),
        failures: Vec::new(),
        remaining: Vec::new(),
        applied: 0,
        error: None,
        dropin: None,
        record_error: None,
        interrupted_write: false,
    };
    if nothing_to_send(np, adopt, &mut result) {
        return result;
    }
    let Some(node) = topology.node(&np.name) else {
        result.error = Some(NodeError::Command(CommandError::Spawn {
            argv: String::new(),
            message: format!("node `{}` is not in the topology", np.name),
        }));
        return result;
    };

    let ops = np.route_ops(adopt);
    if ops.is_empty() {
        // Only conflicts stand: nothing to run, and the node is not as declared.
        result.remaining = np.changes().to_vec();
        return result;
    }
    result.sent = ops.iter().map(RouteOp::line).collect();
    let desired = desired_of(topology, np);
    // The record the node gets if every line succeeds, stored in the same round trip.
    let planned = planned_record(np, topology, &desired, adopt);
    let persisted = match &np.persist {
        crate::core::persist::PersistPlan::Write { .. } => networkd::persisted_change(np),
        _ => None,
    };
    let req = ApplyRequest {
        routes: ops,
        persisted: persisted.as_ref().map(|(_, f)| f.clone()),
        record: Some((
            record::record_path(&node.instance),
            FileChange::Write(observe::record_bytes(&planned)),
        )),
        read_back: true,
    };
    let started = Instant::now();
    let ran = transport.apply(&node.instance, &req);
    if crate::interrupt::requested() {
        // Cut short (or never started): what is true is read once reads are allowed again.
        result.interrupted_write = true;
    }
    if let Err(e @ CommandError::Interrupted { .. }) = &ran {
        result.sent.clear();
        result.error = Some(NodeError::Command(e.clone()));
        result.remaining = np.changes().to_vec();
        return result;
    }
    let read_back = match ran {
        Err(e) => {
            // Timed out or could not start: what is true now must be read, not guessed.
            result.error = Some(NodeError::Command(e));
            None
        }
        Ok(out) => {
            if out.record_done {
                *stored = Some(planned);
            }
            let write_ms = started.elapsed().as_millis() as u64;
            take_reply(&mut result, persisted.as_ref(), out, write_ms)
        }
    };
    let readback = match read_back {
        Some(routes) => Ok(routes),
        None => observe::read_node(transport, node),
    };
    judge(&mut result, np, &desired, adopt, policy, readback);
    result
}

/// A node to which nothing is sent: unreadable, unfit for what the topology asks, converged, or
/// with only its persisted file to write. Sets how it ended.
fn nothing_to_send(np: &NodePlan, adopt: bool, result: &mut NodeResult) -> bool {
    match &np.state {
        // Readable, but not to be written as the topology asks (persist): nothing is sent.
        Err(e @ (NodeError::Persist { .. } | NodeError::Misfit { .. })) => {
            result.outcome = Outcome::Failed;
            result.error = Some(e.clone());
        }
        Err(e) => {
            result.outcome = Outcome::Unreachable;
            result.error = Some(e.clone());
        }
        Ok(d) if np.is_converged(adopt) => {
            result.outcome = Outcome::InSync;
            result.remaining = d.changes.clone();
        }
        Ok(d)
            if np.persist.is_pending()
                && !d.changes.iter().any(|c| {
                    c.is_operation(adopt) || c.action == crate::core::change::Action::Conflict
                }) =>
        {
            // The routes are in place; only the drop-in is to be written.
            result.outcome = Outcome::InSync;
        }
        Ok(_) => return false,
    }
    true
}

/// What the node's reply says of the request: the lines that failed, the persisted file
/// written, an error for a failure no line explains. Returns the routes read back in the same
/// round trip (`None`: read them again).
fn take_reply(
    result: &mut NodeResult,
    persisted: Option<&(Mechanism, PersistedFile)>,
    out: ApplyReply,
    write_ms: u64,
) -> Option<Vec<Route>> {
    let failures = iproute::batch_failures(&out.stderr);
    for f in &failures {
        if let Some(cmd) = result.sent.get(f.line.wrapping_sub(1)) {
            result.failures.push(LineFailure {
                command: cmd.clone(),
                message: f.message.clone(),
            });
        }
    }
    if let (Some((mechanism, file)), true) = (persisted, out.persisted_done) {
        result.dropin = Some(crate::core::applied::DropinWrite {
            mechanism: *mechanism,
            path: file.path.clone(),
            action: "written",
            write_ms,
            settled_ms: 0,
        });
    }
    if out.status != Some(0) && failures.is_empty() {
        // The transport failed (instance stopped, daemon down), `ip` refused the script as a
        // whole, or a file could not be written: named as such.
        result.error = Some(match persisted {
            Some((mechanism, file)) if !out.persisted_done && out.read_back.is_some() => {
                NodeError::Persist {
                    path: Some(file.path.clone()),
                    reason: format!(
                        "writing the {} {} failed: {}",
                        mechanism.describe(),
                        file.path,
                        out.stderr.trim()
                    ),
                }
            }
            _ => NodeError::Command(out.status_error()),
        });
    }
    out.read_back.and_then(Result::ok)
}

/// The record a node gets when every planned operation succeeds: what it will then have of its
/// desired routes (all but those the plan leaves to people: conflicts, routes not adopted).
fn planned_record(
    np: &NodePlan,
    topology: &Topology,
    desired: &[Route],
    adopt: bool,
) -> LastApplied {
    let left: Vec<crate::core::change::Change> = np
        .changes()
        .iter()
        .filter(|c| !c.is_operation(adopt))
        .cloned()
        .collect();
    record::after_apply(
        &np.name,
        desired,
        &left,
        &topology.sha256,
        topology.cluster.protocol,
        np.binding.clone(),
        now_unix(),
    )
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The routes a planned node should have. The plan does not keep them (at a million routes
/// they would double its size); they are computed again from the topology it was made from.
fn desired_of(topology: &Topology, np: &NodePlan) -> Vec<Route> {
    topology
        .node(&np.name)
        .map(|n| desired::routes_for(topology, n))
        .unwrap_or_default()
}

/// Sets a node's outcome, remaining changes and verified count from a read-back.
fn judge(
    result: &mut NodeResult,
    np: &NodePlan,
    desired: &[Route],
    adopt: bool,
    policy: &Policy,
    readback: Result<Vec<Route>, NodeError>,
) {
    match readback {
        Ok(routes) => {
            let ops: Vec<&crate::core::change::Change> = np
                .changes()
                .iter()
                .filter(|c| c.is_operation(adopt))
                .collect();
            result.applied = crate::core::applied::verified(&ops, &routes);
            let d = diff::diff(desired, &routes, policy);
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
            result.applied = 0;
            if result.error.is_none() {
                result.error = Some(e);
            }
        }
    }
}

/// After an interruption: reads back every node whose write was cut short (reads are allowed
/// again for this), so the report shows what is in place, possibly half applied. A node whose
/// write never started keeps its planned changes as remaining.
pub fn read_back_interrupted(
    report: &mut Report,
    plan: &Plan,
    topology: &Topology,
    transport: &dyn Transport,
    parallelism: usize,
) {
    crate::interrupt::allow_reads();
    let policy = plan.policy_of(topology);
    let todo: Vec<(usize, &NodePlan)> = report
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.interrupted_write && !n.sent.is_empty())
        .filter_map(|(i, n)| plan.nodes.iter().find(|p| p.name == n.name).map(|p| (i, p)))
        .collect();
    let reads = parallel::map(&todo, parallelism, |(_, np)| {
        topology
            .node(&np.name)
            .map(|node| observe::read_node(transport, node))
    });
    for ((i, np), read) in todo.iter().zip(reads) {
        if let Some(read) = read {
            let r = &mut report.nodes[*i];
            judge(
                r,
                np,
                &desired_of(topology, np),
                report.adopt,
                &policy,
                read,
            );
        }
    }
}

/// After routectl wrote to a node and read it back, stores what it installed there in the
/// node's last-applied record. A node in sync is not touched (an apply that changes nothing
/// writes nothing); a node that could not be read, or whose read-back failed, gets no record.
fn keep_record(
    np: &NodePlan,
    result: &NodeResult,
    topology: &Topology,
    transport: &dyn Transport,
    stored: Option<&LastApplied>,
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
    // The binding is what the read before the write computed the node to be (its boot, PID 1
    // and network namespace): nothing in the node is changed for it.
    let binding = np.binding.clone();
    let new = record::after_apply(
        &np.name,
        &desired_of(topology, np),
        &result.remaining,
        &topology.sha256,
        topology.cluster.protocol,
        binding,
        now_unix(),
    );
    // The apply's own round trip stored the record it planned; it stands when the read-back
    // confirms it (the usual case), and is written again only when it does not.
    if let Some(s) = stored
        && s.routes == new.routes
        && s.binding == new.binding
        && s.topology_sha256 == new.topology_sha256
    {
        return Ok(());
    }
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
    let policy = plan.policy_of(topology);
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
    let ops = undo_ops(np, adopt);
    if !ops.is_empty() {
        // Every operation is tried; what stands is judged from the read that follows.
        let req = ApplyRequest {
            routes: ops,
            ..ApplyRequest::default()
        };
        transport
            .apply(&node.instance, &req)
            .map_err(|e| e.to_string())?;
    }
    let routes = observe::read_node(transport, node).map_err(|e| e.to_string())?;
    let now = diff::diff(&desired::routes_for(topology, node), &routes, policy);
    observe::write_record(transport, node, np.last_applied.as_ref())
        .map_err(|e| format!("routes restored, but not the last-applied record: {e}"))?;
    if now.fingerprint != before.fingerprint {
        return Err("its routes, read back, are not those the plan was made from".to_string());
    }
    // A drop-in is not put back: its `networkctl reload` would flush the link's routes again
    // (and networkd installs the file's routes by itself), so undoing it is left to people.
    match np.persist.path() {
        Some(path) if np.persist.is_pending() => Err(format!(
            "routes put back, but not its {} {path} ({} by the canary's apply): fix the \
             topology and apply again, or restore the file by hand",
            np.persist
                .mechanism()
                .map_or("persisted file", |m| m.describe()),
            match np.persist {
                crate::core::persist::PersistPlan::Remove { .. } => "removed",
                _ => "written",
            }
        )),
        _ => Ok(()),
    }
}

/// The route operations that undo a node's planned operations, in an order that works: the
/// routes routectl added or took over are removed first, then what was there is put back.
pub fn undo_ops(np: &NodePlan, adopt: bool) -> Vec<RouteOp> {
    let mut removes = Vec::new();
    let mut restores = Vec::new();
    for c in np.changes().iter().filter(|c| c.is_operation(adopt)) {
        let put_back = || c.current.as_ref().and_then(RouteOp::add_exactly);
        match c.action {
            Action::Add => removes.extend(RouteOp::delete_exactly(&c.route)),
            Action::Delete => restores.extend(put_back()),
            // Same key: rewriting it with the old route puts it back exactly.
            Action::Replace | Action::Adopt => restores.extend(put_back().map(RouteOp::replacing)),
            Action::TakeOver if c.in_place => restores.extend(put_back().map(RouteOp::replacing)),
            Action::TakeOver => restores.extend(put_back()),
            Action::Conflict => {}
        }
    }
    // A take-over that was not in place came with an add of the desired route: removed above.
    removes.sort_by_cached_key(RouteOp::line);
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
            Some("eth1"),
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
            manager: crate::core::persist::Manager::Nothing,
            persist: crate::core::persist::PersistPlan::Off,
            last_applied: None,
            binding: None,
        };
        assert_eq!(
            undo_ops(&np, false)
                .iter()
                .map(RouteOp::line)
                .collect::<Vec<_>>(),
            [
                "route del 10.1.3.0/24 via 10.0.2.23 dev eth1 table 254 proto 211 metric 0",
                "route replace 10.1.1.0/24 via 10.0.2.99 dev eth1 table 254 proto 3 metric 0",
                "route replace 10.1.2.0/24 via 10.0.2.98 dev eth1 table 254 proto 211 metric 0",
                "route add 10.1.9.0/24 via 10.0.2.29 dev eth1 table 254 proto 211 metric 0",
            ]
        );
    }

    /// Answers every run with the same `ip -j route` output: a node read back.
    struct ReadsBack(String);

    impl Transport for ReadsBack {
        fn run(
            &self,
            _: &str,
            _: &crate::node::transport::Invocation,
        ) -> Result<crate::node::transport::Output, CommandError> {
            Ok(crate::node::transport::Output {
                argv: "ip ...".into(),
                status: Some(0),
                stdout: self.0.clone().into_bytes(),
                stderr: String::new(),
            })
        }
    }

    #[test]
    fn an_interrupted_take_over_is_read_back_with_the_plans_policy() {
        let t = crate::core::topology::fixtures::lab();
        let proto = t.cluster.protocol;
        let foreign = route("10.1.1.0/24", "10.0.2.99", 3);
        let options = crate::core::plan::Options {
            adopt: false,
            take_over: true,
            only: vec!["worker-0".into()],
        };
        let plan = Plan::compute(&t, &options, 1, |_| {
            Ok::<_, NodeError>(vec![foreign.clone()])
        });
        assert!(
            plan.nodes[0]
                .changes()
                .iter()
                .any(|c| c.action == Action::TakeOver)
        );
        let mut report = Report {
            nodes: vec![NodeResult {
                name: "worker-0".into(),
                outcome: Outcome::Failed,
                sent: plan.nodes[0].batch_lines(false),
                failures: Vec::new(),
                remaining: Vec::new(),
                applied: 0,
                error: None,
                record_error: None,
                interrupted_write: true,
                dropin: None,
            }],
            adopt: false,
            elapsed: std::time::Duration::ZERO,
        };
        // Cut short after the add, before the foreign route was taken over.
        let node = ReadsBack(format!(
            r#"[{{"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":"boot","table":"main"}},
               {{"dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":"{proto}","table":"main"}}]"#
        ));
        read_back_interrupted(&mut report, &plan, &t, &node, 1);
        let r = &report.nodes[0];
        assert_eq!(r.outcome, Outcome::Failed);
        // What is left is the take-over the plan asked for, not a conflict it would refuse.
        assert_eq!(
            r.remaining,
            [Change::take_over(
                route("10.1.1.0/24", "10.0.2.21", proto),
                foreign,
                true
            )]
        );
    }
}
