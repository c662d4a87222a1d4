//! The canary stage of `apply --canary`: text, and the `canary` object of the apply document.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use super::check::PathDoc;
use super::style::Style;
use crate::core::canary::{Proof, Rollback, Verdict};
use crate::core::check;

/// The canary stage of `apply --canary` as text.
pub fn canary_text(v: &Verdict, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("Canary: {}", v.canaries.join(", ")))
    );
    for n in &v.not_converged {
        let _ = writeln!(
            out,
            "  {} {n} did not converge: its paths were not pinged",
            style.red("FAIL")
        );
    }
    for p in &v.proofs {
        let q = &p.path;
        let path = format!(
            "{} -> {} ({}, {} -> {})",
            q.from, q.to, q.family, q.source, q.destination
        );
        match &p.outcome {
            check::Outcome::Pass { .. } => {
                let _ = writeln!(out, "  {} {path}", style.green("ok  "));
            }
            check::Outcome::Fail { detail, .. } | check::Outcome::NotRun { reason: detail } => {
                let detail = crate::core::text::escape(detail);
                let _ = writeln!(out, "  {} {path}: {detail}", style.red("FAIL"));
            }
        }
    }
    if let Some(rb) = &v.rollback {
        for n in &rb.restored {
            let _ = writeln!(
                out,
                "  rolled back: {n} is as it was before the apply (read back)"
            );
        }
        for (n, why) in &rb.failed {
            let why = crate::core::text::escape(why);
            let _ = writeln!(out, "  {} {n}: {why}", style.red("rollback FAILED:"));
        }
    }
    let _ = writeln!(
        out,
        "{}",
        style.bold(&if v.passed() {
            format!(
                "Canary passed: {} of {} paths answer.",
                v.proofs.len(),
                v.proofs.len()
            )
        } else {
            format!(
                "Canary FAILED: {} of {} paths answer; the other nodes were not changed.",
                v.proofs.iter().filter(|p| p.outcome.passed()).count(),
                v.proofs.len()
            )
        })
    );
    out
}

/// What stderr says when a canary failed: what did not converge, the failed paths, and what
/// became of the canaries.
pub fn canary_stopped(v: &Verdict) -> String {
    let mut msg = String::from(
        "routectl: the canary failed; the rollout stopped and no other node was changed",
    );
    if !v.not_converged.is_empty() {
        let _ = write!(msg, "\n  not converged: {}", v.not_converged.join(", "));
    }
    for f in v.failures() {
        let _ = write!(msg, "\n  failed path: {f}");
    }
    match &v.rollback {
        Some(rb) => {
            if !rb.restored.is_empty() {
                let _ = write!(msg, "\n  put back as it was: {}", rb.restored.join(", "));
            }
            for (n, why) in &rb.failed {
                let _ = write!(msg, "\n  NOT put back: {n}: {why}");
            }
        }
        None => msg.push_str(
            "\n  the canary keeps the new routes; put it back with --canary-rollback, or fix the topology and apply again",
        ),
    }
    msg
}

struct PathsDoc<'a>(&'a [Proof]);

impl Serialize for PathsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| {
            let q = &p.path;
            PathDoc::new(
                q.family,
                &q.from,
                &q.to,
                q.source,
                q.destination,
                &p.outcome,
                None,
            )
        }))
    }
}

/// `{"node", "error"}`: a canary that could not be put back.
#[derive(Serialize)]
struct FailedDoc<'a> {
    node: &'a str,
    error: &'a str,
}

/// `rollback`: which canaries were put back.
#[derive(Serialize)]
struct RollbackDoc<'a> {
    restored: &'a [String],
    failed: Vec<FailedDoc<'a>>,
}

impl<'a> RollbackDoc<'a> {
    fn of(rb: &'a Rollback) -> Self {
        RollbackDoc {
            restored: &rb.restored,
            failed: rb
                .failed
                .iter()
                .map(|(node, error)| FailedDoc { node, error })
                .collect(),
        }
    }
}

/// The `canary` object of an apply document.
#[derive(Serialize)]
pub struct CanaryDoc<'a> {
    nodes: &'a [String],
    passed: bool,
    not_converged: &'a [String],
    paths: PathsDoc<'a>,
    rollback: Option<RollbackDoc<'a>>,
}

impl<'a> CanaryDoc<'a> {
    /// The document of a canary stage.
    pub fn of(v: &'a Verdict) -> Self {
        CanaryDoc {
            nodes: &v.canaries,
            passed: v.passed(),
            not_converged: &v.not_converged,
            paths: PathsDoc(&v.proofs),
            rollback: v.rollback.as_ref().map(RollbackDoc::of),
        }
    }
}
