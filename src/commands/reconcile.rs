//! `routectl reconcile`: plan and apply every interval until SIGINT/SIGTERM, with every safety
//! rule of `apply` (lock, mass-delete guard, unknown is not absent, timeouts), per-node back-off,
//! one log line per round and an optional Prometheus metrics file.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{Global, LogFormat, ReconcileArgs};
use crate::core::plan::Options;
use crate::core::reconcile::State;
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::lock;
use crate::node::apply::{self, Outcome as NodeOutcome};
use crate::node::watch::{self, Watch};

use super::live_plan;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

// The only unsafe code in routectl (allowed here alone; `unsafe_code` is denied in Cargo.toml).
#[allow(unsafe_code)]
fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// What one round did, for the log.
struct RoundLog {
    ok: bool,
    level: &'static str,
    message: String,
    fields: serde_json::Value,
}

/// Runs `reconcile`.
pub fn run(g: &Global, a: &ReconcileArgs) -> Result<Outcome, Error> {
    install_signal_handlers();
    let mut state = State::new(a.interval);
    log(
        a,
        "info",
        &format!(
            "reconciling {} every {:.1} s (SIGINT or SIGTERM stops)",
            g.topology_path().display(),
            a.interval.as_secs_f64()
        ),
        json!({"event": "start"}),
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
        if r.ok {
            state.rounds_ok += 1;
        }
        let mut fields = r.fields;
        if let serde_json::Value::Object(m) = &mut fields {
            m.insert("event".into(), json!("round"));
            m.insert("round".into(), json!(state.rounds));
            m.insert("converged".into(), json!(r.ok));
            m.insert(
                "duration_ms".into(),
                json!(state.last_round.as_millis() as u64),
            );
            m.insert(
                "trigger".into(),
                json!(if triggered.is_some() {
                    "watch"
                } else {
                    "interval"
                }),
            );
        }
        let what = match &triggered {
            Some(t) => format!(
                " (changed: {})",
                t.iter().cloned().collect::<Vec<_>>().join(", ")
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
            write_metrics(path, &state.metrics())?;
        }
        if a.once {
            return Ok(if r.ok { Outcome::Done } else { Outcome::Failed });
        }
        triggered = None;
        if a.watch
            && let Some(t) = &state.topology
        {
            let access = g.access(t);
            if watch.as_ref().map(|w| w.key.as_str()) != Some(watch::key(t, access).as_str()) {
                // A new watch per set of nodes; the old one's watchers stop when it drops.
                drop(watch.take());
                watch = Some(Watch::start(t, access, g.timeout, g.verbose > 1));
                log(
                    a,
                    "info",
                    &format!(
                        "watching {} nodes ({} access) for route, address{} changes",
                        t.nodes.len(),
                        access.name(),
                        if t.cluster.transport == crate::core::topology::TransportKind::Netns {
                            ""
                        } else {
                            " and lifecycle"
                        }
                    ),
                    json!({"event": "watch", "nodes": t.nodes.len(), "access": access.name()}),
                );
            }
        }
        match &watch {
            Some(w) => {
                let changed = w.wait(last_full + a.interval, a.debounce, &STOP);
                for note in w.notes() {
                    log(a, "warn", &note, json!({"event": "watch_note"}));
                }
                if !changed.is_empty() {
                    triggered = Some(changed);
                }
            }
            None => {
                while started.elapsed() < a.interval && !STOP.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20).min(a.interval));
                }
            }
        }
        if STOP.load(Ordering::SeqCst) {
            log(
                a,
                "info",
                &format!("stopping after {} rounds", state.rounds),
                json!({"event": "stop", "rounds": state.rounds}),
            );
            return Ok(Outcome::Done);
        }
    }
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
                    level: "error",
                    message: format!("no valid topology yet, nothing done: {msg}"),
                    fields: json!({"topology_valid": false, "error": msg}),
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
                level: "info",
                message: "the nodes that changed are no longer in the topology".into(),
                fields: json!({"topology_valid": state.topology_valid}),
            };
        }
    }
    if due.is_empty() {
        return RoundLog {
            ok: false,
            level: "warn",
            message: format!(
                "every node is backing off after failures: {}",
                waiting.join(", ")
            ),
            fields: json!({"topology_valid": state.topology_valid, "waiting": waiting}),
        };
    }
    let _lock = match lock::acquire(
        &g.lock_file,
        g.lock_timeout,
        &format!("reconcile -f {}", topology.source),
        |_| {},
    ) {
        Ok(l) => l,
        Err(e) => {
            return RoundLog {
                ok: false,
                level: "error",
                message: format!("skipped: {e}"),
                fields: json!({"topology_valid": state.topology_valid, "error": e.to_string()}),
            };
        }
    };
    let options = Options {
        adopt: a.adopt,
        take_over: false,
        only: if waiting.is_empty() && triggered.is_none() {
            Vec::new()
        } else {
            due
        },
    };
    let transport = g.transport(&topology);
    let plan = live_plan(&topology, &options, &transport, g.parallelism(), false);
    if let Some(why) = plan.mass_delete().filter(|_| !a.allow_mass_delete) {
        return RoundLog {
            ok: false,
            level: "error",
            message: format!(
                "refused a mass deletion, nothing changed: {why} (--allow-mass-delete allows it)"
            ),
            fields: json!({"topology_valid": state.topology_valid, "error": why}),
        };
    }
    let report = apply::apply(&plan, &topology, &transport, g.parallelism());
    state.record(&report, now);

    let mut changed = Vec::new();
    let mut failed = Vec::new();
    let mut in_sync = 0;
    let mut nodes_json = Vec::new();
    for n in &report.nodes {
        let applied = n.sent.len().saturating_sub(n.failures.len());
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
                    "{} {} ({}; next try in {:.0} s)",
                    n.name,
                    if n.outcome == NodeOutcome::Unreachable {
                        "unreachable"
                    } else {
                        "failed"
                    },
                    error.clone().unwrap_or_default(),
                    retry
                ));
            }
        }
        nodes_json.push(json!({
            "name": n.name,
            "status": match n.outcome {
                NodeOutcome::InSync => "in_sync",
                NodeOutcome::Converged => "converged",
                NodeOutcome::Failed => "failed",
                NodeOutcome::Unreachable => "unreachable",
            },
            "applied": applied,
            "error": error,
        }));
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
    let ok = failed.is_empty() && waiting.is_empty() && state.topology_valid;
    let message = if parts.is_empty() {
        format!("in sync ({in_sync} nodes)")
    } else {
        parts.push(format!("{in_sync} in sync"));
        parts.join("; ")
    };
    notes.push(message);
    RoundLog {
        ok,
        level: if failed.is_empty() && state.topology_valid {
            "info"
        } else {
            "error"
        },
        message: notes.join("; "),
        fields: json!({
            "topology_valid": state.topology_valid,
            "nodes": nodes_json,
            "waiting": waiting,
            "operations": report.operations_applied(),
            "node_commands": transport.commands_run(),
        }),
    }
}

fn log(a: &ReconcileArgs, level: &str, message: &str, fields: serde_json::Value) {
    let ts = rfc3339(std::time::SystemTime::now());
    match a.log_format {
        LogFormat::Text => eprintln!("{ts} {level:<5} {message}"),
        LogFormat::Json => {
            let mut v = fields;
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("ts".into(), json!(ts));
                m.insert("level".into(), json!(level));
                m.insert("message".into(), json!(message));
            }
            eprintln!("{}", serde_json::to_string(&v).unwrap_or_default());
        }
    }
}

fn write_metrics(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("writing the metrics file `{}`", path.display()), e))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
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
