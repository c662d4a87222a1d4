//! `routectl reconcile`: plan and apply every interval until SIGINT/SIGTERM, with every safety
//! rule of `apply` (lock, mass-delete guard, unknown is not absent, timeouts), per-node back-off,
//! one log line per round and an optional Prometheus metrics file.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cli::{Global, LogFormat, ReconcileArgs};
use crate::core::guard;
use crate::core::plan::Options;
use crate::core::reconcile::State;
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::lock;
use crate::node::apply::{self, Outcome as NodeOutcome};
use crate::node::watch::{self, Watch};
use crate::report::reconcile::{
    LogLine, Metrics, Round, RoundDetail, RoundNode, Start, Stop, WatchNote, Watching,
};

use super::live_plan;

/// What one round did, for the log.
struct RoundLog {
    ok: bool,
    /// Not ok only because the mass-delete guard held deletions back.
    held_back: bool,
    level: &'static str,
    message: String,
    fields: RoundDetail,
}

/// Runs `reconcile`.
pub fn run(g: &Global, a: &ReconcileArgs) -> Result<Outcome, Error> {
    crate::interrupt::install(crate::node::transport::forward)
        .map_err(|e| Error::io("installing the SIGINT/SIGTERM handlers", e))?;
    DEBUG.store(g.verbose > 0, std::sync::atomic::Ordering::Relaxed);
    let mut state = State::new(a.interval);
    log(
        a,
        "info",
        &format!(
            "reconciling {} every {:.1} s (SIGINT or SIGTERM stops)",
            g.topology_path().display(),
            a.interval.as_secs_f64()
        ),
        Start { event: "start" },
    );
    let mut watch: Option<Watch> = None;
    let mut triggered: Option<BTreeSet<String>> = None;
    let mut last_full = Instant::now();
    loop {
        let started = Instant::now();
        if triggered.is_none() {
            last_full = started;
        }
        state.rounds += 1;
        let r = round(g, a, &mut state, started, triggered.as_ref());
        state.last_round = started.elapsed();
        if crate::interrupt::requested() && !r.ok {
            // A stop asked for is not a failure: the round cut short is not logged as one.
            log_stop(a, state.rounds, Some(state.rounds));
            return Ok(Outcome::Done);
        }
        if r.ok {
            state.rounds_ok += 1;
        }
        let fields = Round {
            detail: r.fields,
            event: "round",
            round: state.rounds,
            converged: r.ok,
            duration_ms: u64::try_from(state.last_round.as_millis()).unwrap_or(u64::MAX),
            trigger: if triggered.is_some() {
                "watch"
            } else {
                "interval"
            },
        };
        let what = match &triggered {
            Some(t) => format!(
                " (changed: {})",
                t.iter()
                    .map(|n| crate::core::text::escape(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        log(
            a,
            r.level,
            &format!("round {}{what}: {}", state.rounds, r.message),
            fields,
        );
        if let Some(path) = &a.metrics_file {
            // An enforcer never stops over its metrics: a full disk or a directory in the way
            // is logged (when stderr still works) and the next round tries again.
            if let Err(e) = write_metrics(path, &state.metrics()) {
                log(
                    a,
                    "error",
                    &e.to_string(),
                    Metrics {
                        event: "metrics",
                        error: e.to_string(),
                    },
                );
            }
        }
        if a.once {
            return Ok(if r.ok {
                Outcome::Done
            } else if r.held_back {
                Outcome::HeldBack
            } else {
                Outcome::Failed
            });
        }
        triggered = None;
        if a.watch
            && let Some(full) = &state.topology
        {
            // With --member, only the nodes running there are watched (a set that changes when
            // an instance moves, which starts a new watch).
            let t = &watched(g, a, full);
            let access = g.access(t);
            if watch.as_ref().map(|w| w.key.as_str()) != Some(watch::key(t, access).as_str()) {
                // A new watch per set of nodes; the old one's watchers stop when it drops.
                drop(watch.take());
                // The transport of this round was made with the same reach, so it can be had
                // again; without it (the runtime directory vanished) ssh runs unshared.
                let reach = g.reach(t).unwrap_or_default();
                watch = Some(Watch::start_on_member(
                    t,
                    full,
                    access,
                    reach,
                    g.timeout,
                    g.verbose > 1,
                ));
                log(
                    a,
                    "info",
                    &format!(
                        "watching {} nodes ({} access) for route, address{} changes",
                        t.nodes.len(),
                        access.name(),
                        if matches!(
                            t.cluster.transport,
                            crate::core::topology::TransportKind::Lxc
                                | crate::core::topology::TransportKind::Incus
                        ) {
                            " and lifecycle"
                        } else {
                            ""
                        }
                    ),
                    Watching {
                        event: "watch",
                        nodes: t.nodes.len(),
                        access: access.name(),
                    },
                );
            }
        }
        match &watch {
            Some(w) => {
                let changed = w.wait(
                    last_full + a.interval,
                    a.debounce,
                    &crate::interrupt::requested,
                );
                for note in w.notes() {
                    log(
                        a,
                        "warn",
                        &note,
                        WatchNote {
                            event: "watch_note",
                        },
                    );
                }
                if !changed.is_empty() {
                    triggered = Some(changed);
                }
            }
            None => {
                while started.elapsed() < a.interval && !crate::interrupt::requested() {
                    std::thread::sleep(Duration::from_millis(20).min(a.interval));
                }
            }
        }
        if crate::interrupt::requested() {
            log_stop(a, state.rounds, None);
            return Ok(Outcome::Done);
        }
    }
}

/// The nodes the watch covers: all of the topology's, or with `--member` those running there
/// (all of them when the daemon cannot be asked: the rounds still select the member's).
fn watched(
    g: &Global,
    a: &ReconcileArgs,
    t: &crate::core::topology::Topology,
) -> crate::core::topology::Topology {
    let mut t = t.clone();
    if let Some(m) = &a.member
        && let Ok(mine) = g.member_nodes(&t, m, &[])
    {
        t.nodes.retain(|n| mine.contains(&n.name));
    }
    t
}

/// The one line of a stop asked for (SIGINT/SIGTERM): `cut_short` names a round that the
/// signal interrupted (its nodes are read back, never left half-written, and it is not
/// counted as a failure).
fn log_stop(a: &ReconcileArgs, rounds: u64, cut_short: Option<u64>) {
    let cut = match cut_short {
        Some(n) => format!("; round {n} was cut short"),
        None => String::new(),
    };
    log(
        a,
        "info",
        &format!(
            "stopping after {} ({}){cut}",
            crate::core::text::count(rounds as usize, "round", "rounds"),
            crate::interrupt::signal_name()
        ),
        Stop {
            event: "stop",
            rounds,
        },
    );
}

fn round(
    g: &Global,
    a: &ReconcileArgs,
    state: &mut State,
    now: Instant,
    triggered: Option<&BTreeSet<String>>,
) -> RoundLog {
    let mut notes = Vec::new();
    let topology = match (g.load(), state.topology.clone()) {
        (Ok(t), _) => {
            state.topology_valid = true;
            state.retain(&t);
            state.topology = Some(t.clone());
            t
        }
        (Err(e), last) => {
            state.topology_valid = false;
            let msg = e.to_string().replace('\n', " | ");
            let Some(last) = last else {
                return RoundLog {
                    ok: false,
                    held_back: false,
                    level: "error",
                    message: format!("no valid topology yet, nothing done: {msg}"),
                    fields: RoundDetail::Error {
                        topology_valid: false,
                        error: msg,
                    },
                };
            };
            notes.push(format!(
                "topology invalid, still enforcing the last valid one: {msg}"
            ));
            last
        }
    };
    let (mut due, mut waiting) = state.due(&topology, now);
    if let Some(t) = triggered {
        // Nodes the watch saw change are reconciled now, back-off or not (a restarted
        // container that failed a moment ago is exactly what the watch is for); the others
        // wait for the interval.
        due = topology
            .nodes
            .iter()
            .filter(|n| t.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        waiting.clear();
        if due.is_empty() {
            return RoundLog {
                ok: true,
                held_back: false,
                level: "info",
                message: "the nodes that changed are no longer in the topology".into(),
                fields: RoundDetail::Nothing {
                    topology_valid: state.topology_valid,
                },
            };
        }
    }
    // `--member`: the nodes running there now (an instance moved in is picked up).
    let mine = match &a.member {
        None => None,
        Some(m) => match g.member_nodes(&topology, m, &[]) {
            Ok(mine) => Some(mine),
            Err(e) => return skipped(state, &e),
        },
    };
    if let Some(mine) = &mine {
        due.retain(|n| mine.contains(n));
        waiting.retain(|n| mine.contains(n));
        if due.is_empty() && waiting.is_empty() {
            return RoundLog {
                ok: true,
                held_back: false,
                level: "debug",
                message: "no node of the topology runs on this member".into(),
                fields: RoundDetail::Nothing {
                    topology_valid: state.topology_valid,
                },
            };
        }
    }
    if due.is_empty() {
        return RoundLog {
            ok: false,
            held_back: false,
            level: "debug",
            message: format!(
                "every node is backing off after failures: {}",
                waiting.join(", ")
            ),
            fields: RoundDetail::Waiting {
                topology_valid: state.topology_valid,
                waiting,
            },
        };
    }
    let lock_path = match g.lock_path() {
        Ok(p) => p,
        Err(e) => {
            return skipped(state, &e);
        }
    };
    let _lock = match lock::acquire(
        &lock_path,
        g.lock_timeout,
        &format!("reconcile -f {}", topology.source),
        |_| {},
    ) {
        Ok(l) => l,
        Err(e) => {
            return skipped(state, &e);
        }
    };
    let options = Options {
        adopt: a.adopt,
        take_over: false,
        only: if mine.is_none() && waiting.is_empty() && triggered.is_none() {
            Vec::new()
        } else {
            due
        },
    };
    let transport = match g.transport(&topology) {
        Ok(t) => t,
        Err(e) => {
            return skipped(state, &e);
        }
    };
    let mut plan = live_plan(&topology, &options, &transport, g.parallelism(), false);
    if a.allow_mass_delete {
        plan.allow_mass_delete();
    }
    // The mass-delete guard holds back only the deletions it is about; the rest is applied.
    let run = guard::runnable(&plan);
    let mut report = apply::apply(&run, &topology, &transport, g.parallelism());
    if crate::interrupt::requested() {
        // Stopped mid-round: the cut writes were stopped and waited for; read back what is
        // in place so the last log line tells it (the lock is still held).
        apply::read_back_interrupted(&mut report, &run, &topology, &transport, g.parallelism());
    }
    guard::settle(&mut report, &plan);
    state.record(&report, now);

    let mut changed = Vec::new();
    let mut failed = Vec::new();
    let mut in_sync = 0;
    let mut nodes_json = Vec::new();
    for n in &report.nodes {
        let applied = n.applied;
        let error = n
            .error
            .as_ref()
            .map(|e| e.to_string())
            .or_else(|| {
                n.failures
                    .first()
                    .map(|f| format!("ip {}: {}", f.command, f.message))
            })
            .or_else(|| {
                (n.outcome == NodeOutcome::Failed)
                    .then(|| format!("{} changes still pending", n.remaining.len()))
            });
        match n.outcome {
            NodeOutcome::InSync => in_sync += 1,
            NodeOutcome::Converged => changed.push(format!("{} ({applied} applied)", n.name)),
            NodeOutcome::Failed | NodeOutcome::Unreachable => {
                let retry = state
                    .nodes
                    .get(&n.name)
                    .and_then(|s| s.retry_at)
                    .map(|at| at.saturating_duration_since(now).as_secs_f64())
                    .unwrap_or(0.0);
                failed.push(format!(
                    "{} {} ({}; next try in {})",
                    crate::core::text::escape(&n.name),
                    if n.outcome == NodeOutcome::Unreachable {
                        "unreachable"
                    } else {
                        "failed"
                    },
                    crate::core::text::escape(&error.clone().unwrap_or_default()),
                    next_try(retry)
                ));
            }
        }
        nodes_json.push(RoundNode {
            name: n.name.clone(),
            status: match n.outcome {
                NodeOutcome::InSync => "in_sync",
                NodeOutcome::Converged => "converged",
                NodeOutcome::Failed => "failed",
                NodeOutcome::Unreachable => "unreachable",
            },
            applied,
            error,
        });
    }
    let mut parts = Vec::new();
    if !changed.is_empty() {
        parts.push(format!("changed {}", changed.join(", ")));
    }
    if !failed.is_empty() {
        parts.push(format!("FAILED {}", failed.join(", ")));
    }
    if !waiting.is_empty() {
        parts.push(format!("backing off {}", waiting.join(", ")));
    }
    if !plan.held_back.is_empty() {
        let held: Vec<String> = plan.held_back.iter().map(ToString::to_string).collect();
        parts.push(format!(
            "{} (a mass deletion; {} applies them)",
            held.join(", "),
            guard::ALLOW
        ));
    }
    let rest_ok = failed.is_empty() && waiting.is_empty() && state.topology_valid;
    let held_back = rest_ok && !plan.held_back.is_empty();
    let ok = rest_ok && plan.held_back.is_empty();
    let message = if parts.is_empty() {
        format!("in sync ({})", crate::core::text::nodes(in_sync))
    } else {
        parts.push(format!("{in_sync} in sync"));
        parts.join("; ")
    };
    notes.push(message);
    RoundLog {
        ok,
        held_back,
        level: if !failed.is_empty() || !state.topology_valid {
            "error"
        } else if !plan.held_back.is_empty() {
            "warn"
        } else if changed.is_empty() && !waiting.is_empty() {
            // Nothing done but waiting out back-offs: not worth a line every interval.
            "debug"
        } else {
            "info"
        },
        message: notes.join("; "),
        fields: RoundDetail::Applied {
            topology_valid: state.topology_valid,
            nodes: nodes_json,
            waiting,
            operations: report.operations_applied(),
            node_commands: crate::node::transport::Transport::commands_run(&transport),
            held_back: crate::report::held_back_docs(&plan.held_back),
        },
    }
}

/// `next try in 1.5 s`, never `0 s` for a retry due within the next second.
fn next_try(secs: f64) -> String {
    if secs <= 0.0 {
        "the next round".to_string()
    } else if secs < 10.0 {
        format!("{secs:.1} s")
    } else {
        format!("{secs:.0} s")
    }
}

/// The levels a log line can have; `debug` lines are written only with -v.
fn log<F: serde::Serialize>(a: &ReconcileArgs, level: &str, message: &str, fields: F) {
    if level == "debug" && !DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let ts = rfc3339(std::time::SystemTime::now());
    let line = match a.log_format {
        // Messages quote nodes (errors, stderr, watch notes): one line each, escaped.
        LogFormat::Text => format!("{ts} {level:<5} {}\n", crate::core::text::escape(message)),
        LogFormat::Json => {
            let line = LogLine {
                fields,
                ts: &ts,
                level,
                message,
            };
            match crate::report::reconcile::line(&line) {
                Ok(text) => text,
                // Not expected of these types; said in plain text rather than dropped.
                Err(e) => format!("{ts} error cannot write the JSON log line: {e}\n"),
            }
        }
    };
    // A closed or full stderr (`| head -1`, `2>/dev/full`) must not stop the enforcer: the
    // line is dropped and counted, never a panic.
    super::err(&line);
}

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn write_metrics(path: &std::path::Path, text: &str) -> Result<(), Error> {
    crate::local::files::write_atomic(path, text.as_bytes(), true)
        .map_err(|e| Error::io(format!("writing the metrics file `{}`", path.display()), e))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A round that could not start (no lock path, the lock held): logged as an error, nothing
/// changed.
fn skipped(state: &State, e: &dyn std::fmt::Display) -> RoundLog {
    RoundLog {
        ok: false,
        held_back: false,
        level: "error",
        message: format!("skipped: {e}"),
        fields: RoundDetail::Error {
            topology_valid: state.topology_valid,
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_utc_timestamps() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_705_200), "2026-11-26T15:00:00Z");
    }
}
