//! `apply --canary`: the canaries first, their paths proven (`node/probe.rs`), then, only if
//! every path answers, the rest and the usual check. The paths and the verdict are pure
//! (`core/canary.rs`); this is the sequence of applies, pings and the rollback.

use crate::core::canary::{Rollback, Verdict};
use crate::core::check;
use crate::core::guard;
use crate::core::plan::Plan;
use crate::core::text::count;
use crate::core::topology::Topology;
use crate::node::apply::{self, Report};
use crate::node::probe;
use crate::node::transport::Transport;

/// How a canary rollout ended.
pub enum Rollout {
    /// The canary failed: only the canaries were changed (and put back with `rollback`).
    Stopped {
        /// The canaries' part of the plan, with what the guard held back of it.
        shown: Plan,
        /// What the canaries' apply did.
        report: Report,
        /// Why it stopped.
        verdict: Verdict,
    },
    /// The canary passed: every node was applied, in plan order, then checked.
    Done {
        /// What the apply did, canaries and the rest.
        report: Report,
        /// The canary stage.
        verdict: Verdict,
        /// The check after the rollout.
        check: check::Report,
    },
}

/// Runs a canary rollout of `plan` (the deletions the mass-delete guard holds back are
/// reported, not run): `canaries` first; `rollback` puts them back when they fail. `info`
/// says which stage starts.
pub fn canary(
    topology: &Topology,
    plan: &Plan,
    canaries: &[String],
    rollback: bool,
    parallelism: usize,
    transport: &dyn Transport,
    info: &dyn Fn(&str),
) -> Rollout {
    let is_canary = |n: &str| canaries.iter().any(|c| c == n);
    let run = guard::runnable(plan);
    let first = run.part(is_canary);
    let rest = run.part(|n| !is_canary(n));
    let shown = plan.part(is_canary);
    let canaries: Vec<String> = first.nodes.iter().map(|n| n.name.clone()).collect();
    info(&format!(
        "routectl: canary stage: applying {} first",
        canaries.join(", ")
    ));
    let mut report = apply::apply(&first, topology, transport, parallelism);
    guard::settle(&mut report, &shown);
    let not_converged: Vec<String> = report
        .nodes
        .iter()
        .filter(|n| !n.outcome.is_converged())
        .map(|n| n.name.clone())
        .collect();
    let proofs = if not_converged.is_empty() {
        probe::prove_canaries(topology, &canaries, parallelism, transport)
    } else {
        Vec::new()
    };
    let mut verdict = Verdict {
        canaries,
        not_converged,
        proofs,
        rollback: None,
    };
    if !verdict.passed() {
        if rollback {
            verdict.rollback = Some(roll_back(&first, topology, parallelism, transport));
        }
        return Rollout::Stopped {
            shown,
            report,
            verdict,
        };
    }
    info(&format!(
        "routectl: canary passed ({}); applying the other {}",
        count(verdict.proofs.len(), "path", "paths"),
        count(rest.nodes.len(), "node", "nodes")
    ));
    let mut rest_report = apply::apply(&rest, topology, transport, parallelism);
    guard::settle(&mut rest_report, plan);
    let report = report.merge(rest_report, plan);
    let check = probe::run(topology, &checked(plan), parallelism, transport);
    Rollout::Done {
        report,
        verdict,
        check,
    }
}

/// Puts the canaries of `first` back as they were.
fn roll_back(
    first: &Plan,
    topology: &Topology,
    parallelism: usize,
    transport: &dyn Transport,
) -> Rollback {
    let mut rb = Rollback {
        restored: Vec::new(),
        failed: Vec::new(),
    };
    for (name, r) in apply::rollback(first, topology, transport, parallelism) {
        match r {
            Ok(()) => rb.restored.push(name),
            Err(why) => rb.failed.push((name, why)),
        }
    }
    rb
}

/// The nodes a check after a rollout covers: those planned (all when the plan covers all).
fn checked(plan: &Plan) -> Vec<String> {
    if plan.skipped.is_empty() {
        Vec::new()
    } else {
        plan.nodes.iter().map(|n| n.name.clone()).collect()
    }
}
