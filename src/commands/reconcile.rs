//! `routectl reconcile`: plan and apply every interval until SIGINT/SIGTERM, with every safety
//! rule of `apply` (lock, mass-delete guard, unknown is not absent, timeouts), per-node back-off,
//! one log line per round and an optional Prometheus metrics file.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cli::{Global, LogFormat, ReconcileArgs};
use crate::core::guard;
use crate::core::plan::Options;
use crate::core::reconcile::{Cover, Covered, State, verdict};
use crate::core::topology::Topology;
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::lock;
use crate::node::apply;
use crate::node::watch::{self, Watch};
use crate::report::reconcile::{
    self, Metrics, Round, RoundDetail, Start, Stop, WatchNote, Watching,
};

use super::{Asked, live_plan};

/// What one round did, for the log.
struct RoundLog {
    ok: bool,
    /// Not ok only because the mass-delete guard held deletions back.
    held_back: bool,
    level: &'static str,
    message: String,
    fields: RoundDetail,
}

impl RoundLog {
    /// A round with nothing to do.
    fn nothing(level: &'static str, message: &str, topology_valid: bool) -> RoundLog {
        RoundLog {
            ok: true,
            held_back: false,
            level,
            message: message.into(),
            fields: RoundDetail::Nothing { topology_valid },
        }
    }
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
        let (ok, held_back) = (r.ok, r.held_back);
        log_round(a, &state, r, triggered.as_ref());
        if let Some(path) = &a.metrics_file {
            metrics(a, path, &state);
        }
        if a.once {
            return Ok(if ok {
                Outcome::Done
            } else if held_back {
                Outcome::HeldBack
            } else {
                Outcome::Failed
            });
        }
        if a.watch
            && let Some(full) = &state.topology
        {
            rewatch(g, a, full, &mut watch);
        }
        triggered = wait(a, watch.as_ref(), started, last_full + a.interval);
        if crate::interrupt::requested() {
            log_stop(a, state.rounds, None);
            return Ok(Outcome::Done);
        }
    }
}

/// The line of a round that ran.
fn log_round(a: &ReconcileArgs, state: &State, r: RoundLog, triggered: Option<&BTreeSet<String>>) {
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
    let what = match triggered {
        Some(t) => format!(
            " (changed: {})",
            t.iter()
                .map(|n| crate::core::text::escape(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let message = format!("round {}{what}: {}", state.rounds, r.message);
    log(a, r.level, &message, fields);
}

/// Writes the metrics file. An enforcer never stops over its metrics: a full disk or a
/// directory in the way is logged (when stderr still works) and the next round tries again.
fn metrics(a: &ReconcileArgs, path: &std::path::Path, state: &State) {
    if let Err(e) = write_metrics(path, &state.metrics()) {
        let fields = Metrics {
            event: "metrics",
            error: e.to_string(),
        };
        log(a, "error", &e.to_string(), fields);
    }
}

/// Starts a new watch when the set of watched nodes (or the access) changed. With `--member`,
/// only the nodes running there are watched (a set that changes when an instance moves, which
/// starts a new watch).
fn rewatch(g: &Global, a: &ReconcileArgs, full: &Topology, watch: &mut Option<Watch>) {
    let t = &watched(g, a, full);
    let access = g.access(t);
    if watch.as_ref().map(|w| w.key.as_str()) == Some(watch::key(t, access).as_str()) {
        return;
    }
    // A new watch per set of nodes; the old one's watchers stop when it drops.
    drop(watch.take());
    // The transport of this round was made with the same reach, so it can be had again;
    // without it (the runtime directory vanished) ssh runs unshared.
    let reach = g.reach(t).unwrap_or_default();
    *watch = Some(Watch::start_on_member(
        t,
        full,
        access,
        reach,
        g.timeout,
        g.verbose > 1,
    ));
    let lifecycle = t.cluster.transport.is_lxd_like();
    log(
        a,
        "info",
        &format!(
            "watching {} nodes ({} access) for route, address{} changes",
            t.nodes.len(),
            access.name(),
            if lifecycle { " and lifecycle" } else { "" }
        ),
        Watching {
            event: "watch",
            nodes: t.nodes.len(),
            access: access.name(),
        },
    );
}

/// Waits for the next round: until `next_full` or a change the watch saw (the nodes that
/// changed), or the interval from `started` without a watch; a stop asked for ends the wait.
fn wait(
    a: &ReconcileArgs,
    watch: Option<&Watch>,
    started: Instant,
    next_full: Instant,
) -> Option<BTreeSet<String>> {
    let Some(w) = watch else {
        while started.elapsed() < a.interval && !crate::interrupt::requested() {
            std::thread::sleep(Duration::from_millis(20).min(a.interval));
        }
        return None;
    };
    let changed = w.wait(next_full, a.debounce, &crate::interrupt::requested);
    for note in w.notes() {
        let fields = WatchNote {
            event: "watch_note",
        };
        log(a, "warn", &note, fields);
    }
    (!changed.is_empty()).then_some(changed)
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
        && let Ok(mine) = g.member_nodes(&t, m, &[], &Asked::default())
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
    let topology = match load(g, state, &mut notes) {
        Ok(t) => t,
        Err(error) => {
            return RoundLog {
                ok: false,
                held_back: false,
                level: "error",
                message: format!("no valid topology yet, nothing done: {error}"),
                fields: RoundDetail::Error {
                    topology_valid: false,
                    error,
                },
            };
        }
    };
    let asked = Asked::default();
    let member = || {
        a.member
            .as_ref()
            .map(|m| g.member_nodes(&topology, m, &[], &asked))
            .transpose()
    };
    let valid = state.topology_valid;
    let covered = match state.cover(&topology, now, triggered, member) {
        Err(e) => return skipped(state, &e),
        Ok(Cover::Nodes(covered)) => covered,
        Ok(Cover::Gone) => {
            let message = "the nodes that changed are no longer in the topology";
            return RoundLog::nothing("info", message, valid);
        }
        Ok(Cover::NotHere) => {
            let message = "no node of the topology runs on this member";
            return RoundLog::nothing("debug", message, valid);
        }
        Ok(Cover::AllWaiting(waiting)) => {
            return RoundLog {
                ok: false,
                held_back: false,
                level: "debug",
                message: format!(
                    "every node is backing off after failures: {}",
                    waiting.join(", ")
                ),
                fields: RoundDetail::Waiting {
                    topology_valid: valid,
                    waiting,
                },
            };
        }
    };
    let subject = Subject {
        topology: &topology,
        asked,
    };
    apply_round(g, a, state, now, subject, covered, notes)
}

/// The topology of a round and what the daemon said of it when `--member` chose the nodes
/// (shared with the round's transport: the daemon is asked once a round).
struct Subject<'a> {
    topology: &'a Topology,
    asked: Asked,
}

/// The topology of a round: the file, or when it does not validate the last one that did (a
/// note says so); `Err` why there is none yet.
fn load(g: &Global, state: &mut State, notes: &mut Vec<String>) -> Result<Topology, String> {
    match (g.load(), state.topology.clone()) {
        (Ok(t), _) => {
            state.topology_valid = true;
            state.retain(&t);
            state.topology = Some(t.clone());
            Ok(t)
        }
        (Err(e), last) => {
            state.topology_valid = false;
            let msg = e.to_string().replace('\n', " | ");
            let Some(last) = last else {
                return Err(msg);
            };
            notes.push(format!(
                "topology invalid, still enforcing the last valid one: {msg}"
            ));
            Ok(last)
        }
    }
}

/// The part of a round that writes: under the lock, plan `only` (all nodes when empty), apply
/// what the mass-delete guard lets through, record the outcome for the back-off.
fn apply_round(
    g: &Global,
    a: &ReconcileArgs,
    state: &mut State,
    now: Instant,
    subject: Subject<'_>,
    covered: Covered,
    mut notes: Vec<String>,
) -> RoundLog {
    let Subject {
        topology,
        mut asked,
    } = subject;
    let Covered { only, waiting } = covered;
    let lock_path = match g.lock_path() {
        Ok(p) => p,
        Err(e) => return skipped(state, &e),
    };
    let what = format!("reconcile -f {}", topology.source);
    let mut waited = false;
    let _lock = match lock::acquire(&lock_path, g.lock_timeout, &what, |_| waited = true) {
        Ok(l) => l,
        Err(e) => return skipped(state, &e),
    };
    if waited {
        // Instances may have moved while another run held the lock: ask the daemon again.
        asked = Asked::default();
    }
    let options = Options {
        adopt: a.adopt,
        take_over: false,
        only,
    };
    let transport = match g.transport(topology, &asked) {
        Ok(t) => t,
        Err(e) => return skipped(state, &e),
    };
    let mut plan = live_plan(topology, &options, &transport, g.parallelism(), false);
    if a.allow_mass_delete {
        plan.allow_mass_delete();
    }
    // The mass-delete guard holds back only the deletions it is about; the rest is applied.
    let run = guard::runnable(&plan);
    let mut report = apply::apply(&run, topology, &transport, g.parallelism());
    if crate::interrupt::requested() {
        // Stopped mid-round: the cut writes were stopped and waited for; read back what is
        // in place so the last log line tells it (the lock is still held).
        apply::read_back_interrupted(&mut report, &run, topology, &transport, g.parallelism());
    }
    guard::settle(&mut report, &plan);
    state.record(&report, now);

    let retry_in = |name: &str| {
        state
            .nodes
            .get(name)
            .and_then(|s| s.retry_at)
            .map(|at| at.saturating_duration_since(now).as_secs_f64())
            .unwrap_or(0.0)
    };
    let (message, nodes) = reconcile::applied(&report, &waiting, &plan.held_back, &retry_in);
    let verdict = verdict(
        &report,
        &waiting,
        !plan.held_back.is_empty(),
        state.topology_valid,
    );
    notes.push(message);
    RoundLog {
        ok: verdict.ok,
        held_back: verdict.held_back,
        level: verdict.level,
        message: notes.join("; "),
        fields: RoundDetail::Applied {
            topology_valid: state.topology_valid,
            nodes,
            waiting,
            operations: report.operations_applied(),
            node_commands: crate::node::transport::Transport::commands_run(&transport),
            held_back: crate::report::held_back_docs(&plan.held_back),
        },
    }
}

/// The levels a log line can have; `debug` lines are written only with -v.
fn log<F: serde::Serialize>(a: &ReconcileArgs, level: &str, message: &str, fields: F) {
    if level == "debug" && !DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let json = a.log_format == LogFormat::Json;
    let line = reconcile::log_line(json, std::time::SystemTime::now(), level, message, fields);
    // A closed or full stderr (`| head -1`, `2>/dev/full`) must not stop the enforcer: the
    // line is dropped and counted, never a panic.
    super::err(&line);
}

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn write_metrics(path: &std::path::Path, text: &str) -> Result<(), Error> {
    crate::local::files::write_atomic(path, text.as_bytes(), true)
        .map_err(|e| Error::io(format!("writing the metrics file `{}`", path.display()), e))
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
