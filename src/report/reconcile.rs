//! `routectl reconcile --log-format json`: one JSON object per line on stderr. The keys are
//! the event's own fields first, then `ts`, `level` and `message` (docs/operations.md).

use serde::Serialize;

use crate::core::applied::{NodeResult, Outcome, Report};
use crate::core::guard::{self, HeldBack};
use crate::core::text::escape;

/// One log line: the event's fields, then when, how bad, and the sentence for people.
#[derive(Serialize)]
pub struct LogLine<'a, F: Serialize> {
    /// The event's fields.
    #[serde(flatten)]
    pub fields: F,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub ts: &'a str,
    /// `info`, `warn` or `error`.
    pub level: &'a str,
    /// What the text log says.
    pub message: &'a str,
}

/// `{"event": "start"}`.
#[derive(Serialize)]
pub struct Start {
    /// `start`.
    pub event: &'static str,
}

/// `{"event": "stop", "rounds": N}`.
#[derive(Serialize)]
pub struct Stop {
    /// `stop`.
    pub event: &'static str,
    /// Rounds run.
    pub rounds: u64,
}

/// `{"event": "metrics", "error"}`: the metrics file could not be written.
#[derive(Serialize)]
pub struct Metrics {
    /// `metrics`.
    pub event: &'static str,
    /// Why.
    pub error: String,
}

/// `{"event": "watch", "nodes", "access"}`: `reconcile --watch` (re)started its watchers.
#[derive(Serialize)]
pub struct Watching {
    /// `watch`.
    pub event: &'static str,
    /// How many nodes are watched.
    pub nodes: usize,
    /// `exec` or `host`.
    pub access: &'static str,
}

/// `{"event": "watch_note"}`: a watcher stopped, failed or started again (the message says).
#[derive(Serialize)]
pub struct WatchNote {
    /// `watch_note`.
    pub event: &'static str,
}

/// What a round found, before the round's counters.
#[derive(Serialize)]
#[serde(untagged)]
pub enum RoundDetail {
    /// Nothing was done: no valid topology yet, the lock was busy.
    Error {
        /// Whether the topology file validated this round.
        topology_valid: bool,
        /// Why nothing was done.
        error: String,
    },
    /// Every node is backing off.
    Waiting {
        /// Whether the topology file validated this round.
        topology_valid: bool,
        /// The nodes backing off.
        waiting: Vec<String>,
    },
    /// The round planned and applied.
    Applied {
        /// Whether the topology file validated this round.
        topology_valid: bool,
        /// Per node.
        nodes: Vec<RoundNode>,
        /// The nodes backing off (not planned this round).
        waiting: Vec<String>,
        /// Operations that took effect.
        operations: usize,
        /// Processes run on nodes.
        node_commands: usize,
        /// The deletions the mass-delete guard held back.
        held_back: Vec<super::HeldBackDoc>,
    },
    /// A round the watch started for nodes that have left the topology since: nothing to do.
    Nothing {
        /// Whether the topology file validated this round.
        topology_valid: bool,
    },
}

/// One node of a round.
#[derive(Serialize)]
pub struct RoundNode {
    /// The node.
    pub name: String,
    /// `in_sync`, `converged`, `failed` or `unreachable`.
    pub status: &'static str,
    /// Operations that took effect on it.
    pub applied: usize,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// One line of the log at `at`: `TS LEVEL message` (the message escaped: it quotes nodes'
/// errors, stderr, watch notes), or with `json` the event's fields, `ts`, `level` and
/// `message` as one JSON object.
pub fn log_line<F: Serialize>(
    json: bool,
    at: std::time::SystemTime,
    level: &str,
    message: &str,
    fields: F,
) -> String {
    let ts = rfc3339(at);
    if !json {
        return format!("{ts} {level:<5} {}\n", escape(message));
    }
    let line = LogLine {
        fields,
        ts: &ts,
        level,
        message,
    };
    match self::line(&line) {
        Ok(text) => text,
        // Not expected of these types; said in plain text rather than dropped.
        Err(e) => format!("{ts} error cannot write the JSON log line: {e}\n"),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The sentence and the per-node fields of a round that applied: `waiting` the nodes backing
/// off, `held_back` what the mass-delete guard held back, `retry_in` the seconds until a
/// failed node is tried again.
pub fn applied(
    report: &Report,
    waiting: &[String],
    held_back: &[HeldBack],
    retry_in: &dyn Fn(&str) -> f64,
) -> (String, Vec<RoundNode>) {
    let mut changed = Vec::new();
    let mut failed = Vec::new();
    let mut in_sync = 0;
    let mut nodes = Vec::new();
    for n in &report.nodes {
        let error = node_error(n);
        match n.outcome {
            Outcome::InSync => in_sync += 1,
            Outcome::Converged => changed.push(format!("{} ({} applied)", n.name, n.applied)),
            Outcome::Failed | Outcome::Unreachable => failed.push(format!(
                "{} {} ({}; next try in {})",
                escape(&n.name),
                if n.outcome == Outcome::Unreachable {
                    "unreachable"
                } else {
                    "failed"
                },
                escape(&error.clone().unwrap_or_default()),
                next_try(retry_in(&n.name))
            )),
        }
        nodes.push(RoundNode {
            name: n.name.clone(),
            status: match n.outcome {
                Outcome::InSync => "in_sync",
                Outcome::Converged => "converged",
                Outcome::Failed => "failed",
                Outcome::Unreachable => "unreachable",
            },
            applied: n.applied,
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
    if !held_back.is_empty() {
        let held: Vec<String> = held_back.iter().map(ToString::to_string).collect();
        parts.push(format!(
            "{} (a mass deletion; {} applies them)",
            held.join(", "),
            guard::ALLOW
        ));
    }
    let message = if parts.is_empty() {
        format!("in sync ({})", crate::core::text::nodes(in_sync))
    } else {
        parts.push(format!("{in_sync} in sync"));
        parts.join("; ")
    };
    (message, nodes)
}

/// Why a node failed: its error, its first failed line, or the changes still pending.
fn node_error(n: &NodeResult) -> Option<String> {
    n.error
        .as_ref()
        .map(|e| e.to_string())
        .or_else(|| {
            n.failures
                .first()
                .map(|f| format!("ip {}: {}", f.command, f.message))
        })
        .or_else(|| {
            (n.outcome == Outcome::Failed)
                .then(|| format!("{} changes still pending", n.remaining.len()))
        })
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

/// `{…detail, "event": "round", "round", "converged", "duration_ms", "trigger"}`.
#[derive(Serialize)]
pub struct Round {
    /// What the round found.
    #[serde(flatten)]
    pub detail: RoundDetail,
    /// `round`.
    pub event: &'static str,
    /// The round's number (from 1).
    pub round: u64,
    /// Whether every covered node was converged after it.
    pub converged: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// What started it: `interval`, or `watch` (`reconcile --watch` saw its nodes change).
    pub trigger: &'static str,
}

/// One log line as text, with its newline.
pub fn line<F: Serialize>(line: &LogLine<'_, F>) -> std::io::Result<String> {
    let mut text = super::to_compact_json(line)?;
    text.push(b'\n');
    String::from_utf8(text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes one log line (and its newline) in a single write. A serialisation error is returned;
/// a failed write to stderr is not worth stopping the loop for, and the caller decides.
pub fn write_line<W: std::io::Write, F: Serialize>(
    mut w: W,
    line: &LogLine<'_, F>,
) -> std::io::Result<()> {
    let mut buf = super::to_compact_json(line)?;
    buf.push(b'\n');
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_utc_timestamps() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_705_200), "2026-11-26T15:00:00Z");
    }

    fn line<F: Serialize>(fields: F) -> String {
        let mut out = Vec::new();
        write_line(
            &mut out,
            &LogLine {
                fields,
                ts: "2026-12-01T00:00:00Z",
                level: "info",
                message: "m",
            },
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn start_stop_and_rounds_keep_their_key_order() {
        let tail = r#""ts":"2026-12-01T00:00:00Z","level":"info","message":"m"}"#;
        assert_eq!(
            line(Start { event: "start" }),
            format!("{{\"event\":\"start\",{tail}\n")
        );
        assert_eq!(
            line(Stop {
                event: "stop",
                rounds: 3
            }),
            format!("{{\"event\":\"stop\",\"rounds\":3,{tail}\n")
        );
        let round = |detail| Round {
            detail,
            event: "round",
            round: 2,
            converged: false,
            duration_ms: 7,
            trigger: "interval",
        };
        let counters =
            r#""event":"round","round":2,"converged":false,"duration_ms":7,"trigger":"interval""#;
        assert_eq!(
            line(round(RoundDetail::Error {
                topology_valid: false,
                error: "bad".into()
            })),
            format!("{{\"topology_valid\":false,\"error\":\"bad\",{counters},{tail}\n")
        );
        assert_eq!(
            line(round(RoundDetail::Waiting {
                topology_valid: true,
                waiting: vec!["w-1".into()]
            })),
            format!("{{\"topology_valid\":true,\"waiting\":[\"w-1\"],{counters},{tail}\n")
        );
        assert_eq!(
            line(round(RoundDetail::Applied {
                topology_valid: true,
                nodes: vec![RoundNode {
                    name: "w-0".into(),
                    status: "converged",
                    applied: 2,
                    error: None
                }],
                waiting: vec![],
                operations: 2,
                node_commands: 4,
                held_back: crate::report::held_back_docs(&[crate::core::guard::HeldBack {
                    node: "w-2".into(),
                    deletions: 10,
                    reasons: vec![crate::core::guard::Reason::AllOfNode { owned: 10 }],
                }]),
            })),
            format!(
                "{{\"topology_valid\":true,\"nodes\":[{{\"name\":\"w-0\",\"status\":\"converged\",\"applied\":2,\"error\":null}}],\"waiting\":[],\"operations\":2,\"node_commands\":4,\"held_back\":[{{\"node\":\"w-2\",\"deletions\":10,\"reasons\":[{{\"rule\":\"all_of_node\",\"message\":\"it would lose all 10 of its routectl routes\"}}],\"allowed_by\":\"--allow-mass-delete\"}}],{counters},{tail}\n"
            )
        );
        assert_eq!(
            line(round(RoundDetail::Nothing {
                topology_valid: true
            })),
            format!("{{\"topology_valid\":true,{counters},{tail}\n")
        );
        assert_eq!(
            line(Watching {
                event: "watch",
                nodes: 3,
                access: "host"
            }),
            format!("{{\"event\":\"watch\",\"nodes\":3,\"access\":\"host\",{tail}\n")
        );
        assert_eq!(
            line(WatchNote {
                event: "watch_note"
            }),
            format!("{{\"event\":\"watch_note\",{tail}\n")
        );
    }
}
