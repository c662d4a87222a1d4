//! Continuous reconciliation: the state a long-running `routectl reconcile` keeps between
//! rounds (the last valid topology, per-node back-off, counters) and its metrics. Each round is
//! an ordinary plan + apply with every safety rule of `apply`; this module only decides which
//! nodes a round covers and what it reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::core::applied::{Outcome, Report};
use crate::core::topology::Topology;

/// Per-node bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// Consecutive failed rounds.
    pub failures: u32,
    /// Not before this instant will the node be tried again.
    pub retry_at: Option<Instant>,
    /// Unix time of the last round that left the node converged.
    pub last_success: Option<u64>,
    /// Operations applied on the node since start.
    pub changes: u64,
    /// Failed rounds since start.
    pub failures_total: u64,
    /// Whether the node was converged after the last round that covered it.
    pub converged: bool,
}

/// What a reconciler remembers.
#[derive(Debug)]
pub struct State {
    /// The base interval (back-off grows from it).
    pub interval: Duration,
    /// The last topology that validated.
    pub topology: Option<Topology>,
    /// Whether the file validated in the last round.
    pub topology_valid: bool,
    /// Rounds run.
    pub rounds: u64,
    /// Rounds that ended with every covered node converged.
    pub rounds_ok: u64,
    /// Per node.
    pub nodes: BTreeMap<String, NodeState>,
    /// How long the last round took.
    pub last_round: Duration,
}

/// The longest back-off, in intervals.
pub const MAX_BACKOFF_INTERVALS: u32 = 16;

impl State {
    /// A fresh state.
    pub fn new(interval: Duration) -> State {
        State {
            interval,
            topology: None,
            topology_valid: false,
            rounds: 0,
            rounds_ok: 0,
            nodes: BTreeMap::new(),
            last_round: Duration::ZERO,
        }
    }

    /// Nodes of the topology this round covers (those not backing off), and those it skips.
    pub fn due(&self, topology: &Topology, now: Instant) -> (Vec<String>, Vec<String>) {
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        for n in &topology.nodes {
            match self.nodes.get(&n.name).and_then(|s| s.retry_at) {
                Some(at) if at > now => waiting.push(n.name.clone()),
                _ => due.push(n.name.clone()),
            }
        }
        (due, waiting)
    }

    /// Records an apply report: successes reset the back-off, failures double it (from one
    /// interval up to [`MAX_BACKOFF_INTERVALS`]).
    pub fn record(&mut self, report: &Report, now: Instant) {
        let unix = unix_now();
        for n in &report.nodes {
            let s = self.nodes.entry(n.name.clone()).or_default();
            s.changes += n.applied as u64;
            if n.outcome.is_converged() {
                s.failures = 0;
                s.retry_at = None;
                s.last_success = Some(unix);
                s.converged = true;
            } else {
                s.failures += 1;
                s.failures_total += 1;
                s.converged = false;
                s.retry_at = Some(now + backoff(self.interval, s.failures));
            }
        }
    }

    /// Which nodes a round covers. `triggered`: the nodes the watch saw change, reconciled now,
    /// back-off or not (a restarted container that failed a moment ago is exactly what the
    /// watch is for), the others waiting for the interval. `member`: with `--member`, the nodes
    /// running there now (asked only when the round still has nodes to cover).
    pub fn cover<E>(
        &self,
        topology: &Topology,
        now: Instant,
        triggered: Option<&BTreeSet<String>>,
        member: impl FnOnce() -> Result<Option<Vec<String>>, E>,
    ) -> Result<Cover, E> {
        let (mut due, mut waiting) = self.due(topology, now);
        if let Some(t) = triggered {
            due = topology
                .nodes
                .iter()
                .filter(|n| t.contains(&n.name))
                .map(|n| n.name.clone())
                .collect();
            waiting.clear();
            if due.is_empty() {
                return Ok(Cover::Gone);
            }
        }
        let mine = member()?;
        if let Some(mine) = &mine {
            due.retain(|n| mine.contains(n));
            waiting.retain(|n| mine.contains(n));
            if due.is_empty() && waiting.is_empty() {
                return Ok(Cover::NotHere);
            }
        }
        if due.is_empty() {
            return Ok(Cover::AllWaiting(waiting));
        }
        // Every node of the file is planned as a whole, or only those due.
        let whole = mine.is_none() && waiting.is_empty() && triggered.is_none();
        let only = if whole { Vec::new() } else { due };
        Ok(Cover::Nodes(Covered { only, waiting }))
    }

    /// Forgets nodes that left the topology.
    pub fn retain(&mut self, topology: &Topology) {
        self.nodes.retain(|name, _| topology.node(name).is_some());
    }

    /// Prometheus text-format metrics.
    pub fn metrics(&self) -> String {
        let mut m = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(m, "{name}{labels} {value}");
            }
        };
        let one = |v: String| vec![(String::new(), v)];
        let per_node = |f: &dyn Fn(&NodeState) -> Option<String>| {
            self.nodes
                .iter()
                .filter_map(|(n, s)| f(s).map(|v| (format!("{{node=\"{n}\"}}"), v)))
                .collect::<Vec<_>>()
        };
        metric(
            "routectl_rounds_total",
            "counter",
            "Reconcile rounds run.",
            one(self.rounds.to_string()),
        );
        metric(
            "routectl_rounds_converged_total",
            "counter",
            "Rounds after which every covered node was converged.",
            one(self.rounds_ok.to_string()),
        );
        metric(
            "routectl_topology_valid",
            "gauge",
            "1 when the topology file validated in the last round (else the last valid one is enforced).",
            one(u8::from(self.topology_valid).to_string()),
        );
        metric(
            "routectl_last_round_duration_seconds",
            "gauge",
            "Duration of the last round.",
            one(format!("{:.6}", self.last_round.as_secs_f64())),
        );
        metric(
            "routectl_node_converged",
            "gauge",
            "1 when the node was converged after the last round that covered it.",
            per_node(&|s| Some(u8::from(s.converged).to_string())),
        );
        metric(
            "routectl_node_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last round that left the node converged.",
            per_node(&|s| s.last_success.map(|t| t.to_string())),
        );
        metric(
            "routectl_node_changes_total",
            "counter",
            "Route operations applied on the node.",
            per_node(&|s| Some(s.changes.to_string())),
        );
        metric(
            "routectl_node_failures_total",
            "counter",
            "Rounds in which the node could not be read or converged.",
            per_node(&|s| Some(s.failures_total.to_string())),
        );
        metric(
            "routectl_node_consecutive_failures",
            "gauge",
            "Consecutive failed rounds (drives the back-off).",
            per_node(&|s| Some(s.failures.to_string())),
        );
        m
    }
}

/// Which nodes a round covers ([`State::cover`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cover {
    /// Nodes to plan.
    Nodes(Covered),
    /// The nodes the watch saw change have left the topology: nothing to do.
    Gone,
    /// No node of the topology runs on this member.
    NotHere,
    /// Every covered node is backing off after failures.
    AllWaiting(Vec<String>),
}

/// The nodes a round plans, and those it leaves to their back-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// The nodes to plan, or none for all of them.
    pub only: Vec<String>,
    /// The nodes backing off (not planned).
    pub waiting: Vec<String>,
}

/// How a round that applied ended: whether it converged, whether only the mass-delete guard
/// stood in the way, and the level of its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Every covered node converged and the topology validated.
    pub ok: bool,
    /// Not ok only because the mass-delete guard held deletions back.
    pub held_back: bool,
    /// `error`, `warn`, `info` or `debug`.
    pub level: &'static str,
}

/// The verdict of a round: `report` what the apply did, `waiting` the nodes backing off,
/// `held_back` whether the guard held deletions back.
pub fn verdict(
    report: &Report,
    waiting: &[String],
    held_back: bool,
    topology_valid: bool,
) -> Verdict {
    let failed = report.nodes.iter().any(|n| !n.outcome.is_converged());
    let changed = report.nodes.iter().any(|n| n.outcome == Outcome::Converged);
    let rest_ok = !failed && waiting.is_empty() && topology_valid;
    let level = if failed || !topology_valid {
        "error"
    } else if held_back {
        "warn"
    } else if !changed && !waiting.is_empty() {
        // Nothing done but waiting out back-offs: not worth a line every interval.
        "debug"
    } else {
        "info"
    };
    Verdict {
        ok: rest_ok && !held_back,
        held_back: rest_ok && held_back,
        level,
    }
}

/// The delay before retrying a node after `failures` consecutive failures, counted from the
/// start of the round that failed: the first failure is retried at the next round, then after
/// 2, 4, 8 … intervals, at most [`MAX_BACKOFF_INTERVALS`]. Half an interval is taken off so that
/// a round starting a little late still finds the node due.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = (1u32 << failures.saturating_sub(1).min(4)).min(MAX_BACKOFF_INTERVALS);
    interval * factor - interval / 2
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::applied::NodeResult;

    fn report(outcomes: &[(&str, Outcome)]) -> Report {
        Report {
            nodes: outcomes
                .iter()
                .map(|(n, o)| NodeResult {
                    record_error: None,
                    name: n.to_string(),
                    outcome: *o,
                    sent: vec!["route add …".into()],
                    failures: vec![],
                    remaining: vec![],
                    applied: 1,
                    error: None,
                    dropin: None,
                    interrupted_write: false,
                })
                .collect(),
            adopt: false,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn backoff_grows_per_node_and_resets_on_success() {
        let mut s = State::new(Duration::from_secs(10));
        let t0 = Instant::now();
        s.record(
            &report(&[("a", Outcome::Unreachable), ("b", Outcome::Converged)]),
            t0,
        );
        assert_eq!(s.nodes["a"].retry_at.unwrap(), t0 + Duration::from_secs(5));
        assert_eq!(s.nodes["b"].retry_at, None);
        s.record(&report(&[("a", Outcome::Unreachable)]), t0);
        s.record(&report(&[("a", Outcome::Unreachable)]), t0);
        let wait = s.nodes["a"].retry_at.unwrap() - t0;
        assert_eq!(wait, Duration::from_secs(35));
        for _ in 0..10 {
            s.record(&report(&[("a", Outcome::Failed)]), t0);
        }
        assert_eq!(
            s.nodes["a"].retry_at.unwrap() - t0,
            Duration::from_secs(155)
        );
        s.record(&report(&[("a", Outcome::InSync)]), t0);
        assert_eq!(s.nodes["a"].failures, 0);
        assert_eq!(s.nodes["a"].retry_at, None);
        assert_eq!(s.nodes["a"].failures_total, 13);
    }

    fn no_member() -> Result<Option<Vec<String>>, ()> {
        Ok(None)
    }

    #[test]
    fn a_round_covers_the_nodes_not_backing_off() {
        let t = crate::core::topology::fixtures::lab();
        let mut s = State::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let whole = Cover::Nodes(Covered {
            only: vec![],
            waiting: vec![],
        });
        assert_eq!(s.cover(&t, t0, None, no_member), Ok(whole));
        s.record(&report(&[("worker-1", Outcome::Failed)]), t0);
        let some = Cover::Nodes(Covered {
            only: vec!["controller-0".into(), "worker-0".into(), "worker-2".into()],
            waiting: vec!["worker-1".into()],
        });
        assert_eq!(s.cover(&t, t0, None, no_member), Ok(some));
        // The watch's nodes are covered back-off or not; gone ones leave nothing to do.
        let changed: BTreeSet<String> = ["worker-1".to_string()].into();
        let now = Cover::Nodes(Covered {
            only: vec!["worker-1".into()],
            waiting: vec![],
        });
        assert_eq!(s.cover(&t, t0, Some(&changed), no_member), Ok(now));
        let gone: BTreeSet<String> = ["worker-9".to_string()].into();
        let asked = |_: &str| -> Result<Option<Vec<String>>, ()> { panic!("member asked") };
        assert_eq!(s.cover(&t, t0, Some(&gone), || asked("")), Ok(Cover::Gone));
        // --member: only the nodes running there.
        let on = |names: &[&str]| {
            let v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            move || -> Result<Option<Vec<String>>, ()> { Ok(Some(v)) }
        };
        assert_eq!(s.cover(&t, t0, None, on(&[])), Ok(Cover::NotHere));
        let waiting = Cover::AllWaiting(vec!["worker-1".into()]);
        assert_eq!(s.cover(&t, t0, None, on(&["worker-1"])), Ok(waiting));
        assert_eq!(s.cover(&t, t0, None, || Err(())), Err(()));
    }

    #[test]
    fn a_round_is_ok_only_with_every_node_converged() {
        let done = report(&[("a", Outcome::InSync), ("b", Outcome::Converged)]);
        let v = verdict(&done, &[], false, true);
        assert_eq!((v.ok, v.held_back, v.level), (true, false, "info"));
        let v = verdict(&done, &[], true, true);
        assert_eq!((v.ok, v.held_back, v.level), (false, true, "warn"));
        let v = verdict(&done, &[], false, false);
        assert_eq!((v.ok, v.held_back, v.level), (false, false, "error"));
        let failed = report(&[("a", Outcome::Unreachable)]);
        let v = verdict(&failed, &[], true, true);
        assert_eq!((v.ok, v.held_back, v.level), (false, false, "error"));
        let quiet = report(&[("a", Outcome::InSync)]);
        let v = verdict(&quiet, &["b".to_string()], false, true);
        assert_eq!((v.ok, v.held_back, v.level), (false, false, "debug"));
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let mut s = State::new(Duration::from_secs(10));
        s.rounds = 2;
        s.record(&report(&[("worker-0", Outcome::Converged)]), Instant::now());
        let m = s.metrics();
        assert!(
            m.contains("# TYPE routectl_rounds_total counter\nroutectl_rounds_total 2\n"),
            "{m}"
        );
        assert!(
            m.contains("routectl_node_converged{node=\"worker-0\"} 1\n"),
            "{m}"
        );
        assert!(
            m.contains("routectl_node_changes_total{node=\"worker-0\"} 1\n"),
            "{m}"
        );
    }
}
