//! The apply report: text and the `apply` JSON document.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use super::plan::{
    ChangesDoc, HeldBackDoc, PlanDoc, change_lines, held_back_docs, held_back_lines, plan_json,
};
use super::style::Style;
use super::{AccessDoc, PLAN_FORMAT_VERSION, Text, TopologyDoc};
use crate::core::access::Accesses;
use crate::core::applied::{DropinWrite, LineFailure, NodeResult, Outcome, Report};
use crate::core::canary::Verdict;
use crate::core::change::Change;
use crate::core::check;
use crate::core::guard::HeldBack;
use crate::core::plan::Plan;
use crate::core::topology::Topology;
use crate::error::NodeErrorJson;

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::InSync => "in_sync",
        Outcome::Converged => "converged",
        Outcome::Failed => "failed",
        Outcome::Unreachable => "unreachable",
    }
}

/// Counts of an apply report.
struct Counts {
    converged: usize,
    in_sync: usize,
    failed: usize,
    unreachable: usize,
}

fn counts(r: &Report) -> Counts {
    let c = |o| r.nodes.iter().filter(|n| n.outcome == o).count();
    Counts {
        converged: c(Outcome::Converged),
        in_sync: c(Outcome::InSync),
        failed: c(Outcome::Failed),
        unreachable: c(Outcome::Unreachable),
    }
}

/// The apply report as text; `held` is what the mass-delete guard held back.
pub fn report_text(r: &Report, held: &[HeldBack], commands: usize, style: &Style) -> String {
    let mut out = String::new();
    for n in &r.nodes {
        node_text(n, r.adopt, style, &mut out);
    }
    held_back_lines(
        held,
        "not applied (a mass deletion; --allow-mass-delete applies them):",
        style,
        &mut out,
    );
    let c = counts(r);
    let applied = r.operations_applied();
    let mut line = format!(
        "Apply: {} applied; {} converged, {} in sync, {} failed, {} unreachable",
        crate::core::text::count(applied, "operation", "operations"),
        crate::core::text::nodes(c.converged),
        c.in_sync,
        c.failed,
        c.unreachable,
    );
    if let Some(note) = adoptable_note(r) {
        let _ = write!(line, "; {note}");
    }
    if !held.is_empty() {
        let deletions: usize = held.iter().map(|h| h.deletions).sum();
        let nodes: Vec<&str> = held.iter().map(|h| h.node.as_str()).collect();
        let _ = write!(
            line,
            "; {} held back on {}",
            crate::core::text::count(deletions, "deletion", "deletions"),
            nodes.join(", ")
        );
    }
    // A run that wrote nothing has no write time to tell.
    let cost = if r.nodes.iter().all(|n| n.sent.is_empty()) {
        format!("{commands} node commands; nothing written")
    } else {
        format!("{commands} node commands, {:.3} s", r.elapsed.as_secs_f64())
    };
    let _ = writeln!(out, "{}", style.bold(&format!("{line} ({cost}).")));
    out
}

/// The apply report of a canary stage that failed: each canary says that it failed, why (its
/// failed paths, or that it did not converge) and whether it was rolled back; the summary says
/// the rollout stopped. (A canary's routes being in place is no success when its paths fail.)
pub fn canary_failed_text(r: &Report, v: &Verdict, commands: usize, style: &Style) -> String {
    let mut out = String::new();
    let restored = |n: &str| {
        v.rollback
            .as_ref()
            .is_some_and(|rb| rb.restored.iter().any(|x| x == n))
    };
    for n in &r.nodes {
        let done = n.operations_applied();
        let failed_paths: Vec<String> = v
            .failures()
            .into_iter()
            .filter(|f| f.starts_with(&format!("{} -> ", n.name)))
            .collect();
        if n.outcome.is_converged() {
            let fate = if restored(&n.name) {
                format!(
                    "rolled back ({} undone)",
                    crate::core::text::count(done, "change", "changes")
                )
            } else if v.rollback.is_some() {
                "NOT rolled back".to_string()
            } else {
                format!(
                    "keeps its {} (--canary-rollback puts it back)",
                    crate::core::text::count(done, "new route", "new routes")
                )
            };
            let paths = v.proofs.iter().filter(|p| p.path.from == n.name).count();
            let _ = writeln!(
                out,
                "{}: {}: {} of {} failed; {fate}",
                style.bold(&n.name),
                style.red("canary FAILED"),
                failed_paths.len(),
                crate::core::text::count(paths, "path", "paths")
            );
            for f in &failed_paths {
                let _ = writeln!(out, "  {} {}", style.red("x"), crate::core::text::escape(f));
            }
        } else {
            node_text(n, r.adopt, style, &mut out);
        }
    }
    let rolled: Vec<&str> = v
        .rollback
        .iter()
        .flat_map(|rb| rb.restored.iter().map(String::as_str))
        .collect();
    let mut line = format!(
        "Apply: canary FAILED on {}; the rollout stopped and no other node was changed",
        v.canaries.join(", ")
    );
    if !rolled.is_empty() {
        let _ = write!(line, "; rolled back: {}", rolled.join(", "));
    }
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "{line} ({commands} node commands, {:.3} s).",
            r.elapsed.as_secs_f64()
        ))
    );
    out
}

/// `1 identical hand-made route left as it is (`--adopt` takes it over)`: the routes an apply
/// without `--adopt` left to their owner, `None` when there are none.
pub fn adoptable_note(r: &Report) -> Option<String> {
    let adoptable: usize = r
        .nodes
        .iter()
        .flat_map(|n| &n.remaining)
        .filter(|c| c.action == crate::core::change::Action::Adopt)
        .count();
    (!r.adopt && adoptable > 0).then(|| {
        format!(
            "{} left as {} (`--adopt` takes {} over)",
            crate::core::text::count(
                adoptable,
                "identical hand-made route",
                "identical hand-made routes"
            ),
            if adoptable == 1 { "it is" } else { "they are" },
            if adoptable == 1 { "it" } else { "them" }
        )
    })
}

/// A node's first line: how it ended.
fn node_status(n: &NodeResult, style: &Style, out: &mut String) {
    match n.outcome {
        Outcome::InSync => {
            let _ = writeln!(out, "{}: in sync", style.bold(&n.name));
        }
        Outcome::Converged => {
            let done = n.operations_applied();
            let _ = writeln!(
                out,
                "{}: {} ({})",
                style.bold(&n.name),
                style.green("converged"),
                crate::core::text::count(done, "change", "changes")
            );
        }
        Outcome::Unreachable => {
            let msg = n.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
            let msg = crate::core::text::escape(&msg);
            let _ = writeln!(
                out,
                "{}: {} nothing was changed: {msg}",
                style.bold(&n.name),
                style.red("unreachable,")
            );
        }
        Outcome::Failed => {
            let _ = writeln!(out, "{}: {}", style.bold(&n.name), style.red("FAILED"));
        }
    }
}

fn node_text(n: &NodeResult, adopt: bool, style: &Style, out: &mut String) {
    node_status(n, style, out);
    for f in &n.failures {
        let _ = writeln!(
            out,
            "  {} ip {}: {}",
            style.red("x"),
            crate::core::text::escape(&f.command),
            crate::core::text::escape(&f.message)
        );
    }
    if let Some(w) = &n.dropin {
        let how = if w.mechanism.reloads() {
            format!(
                " (networkctl reload; routes back after {} ms)",
                w.settled_ms
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {} {} {}{how}",
            w.mechanism.describe(),
            crate::core::text::escape(&w.path),
            w.action,
        );
    }
    if let Some(e) = &n.record_error {
        let _ = writeln!(
            out,
            "  {}",
            style.yellow(&format!(
                "warning: last-applied record not written: {}",
                crate::core::text::escape(e)
            ))
        );
    }
    if n.outcome != Outcome::Unreachable
        && let Some(e) = &n.error
    {
        let e = crate::core::text::escape(&e.to_string()).into_owned();
        let _ = writeln!(out, "  {}", style.red(&format!("error: {e}")));
    }
    if n.outcome == Outcome::Failed {
        let pending: Vec<&Change> = n.remaining.iter().filter(|c| c.is_pending(adopt)).collect();
        if !pending.is_empty() {
            let _ = writeln!(out, "  still not as declared (read back from the node):");
            for c in pending {
                let mut s = String::new();
                change_lines(c, adopt, None, style, &mut s);
                for line in s.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
    }
}

/// `ip ` and a batch line.
struct Sent<'a>(&'a str);

impl std::fmt::Display for Sent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ip {}", self.0)
    }
}

struct SentDoc<'a>(&'a [String]);

impl Serialize for SentDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|l| Text(Sent(l))))
    }
}

/// One entry of the report's `nodes`.
#[derive(Serialize)]
struct NodeDoc<'a> {
    name: &'a str,
    #[serde(flatten)]
    access: AccessDoc<'a>,
    status: &'static str,
    sent: SentDoc<'a>,
    failures: &'a [LineFailure],
    remaining: ChangesDoc<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropin: Option<&'a DropinWrite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<NodeErrorJson>,
}

struct NodesDoc<'a>(&'a Report, &'a Accesses);

impl Serialize for NodesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.nodes.iter().map(|n| NodeDoc {
            name: &n.name,
            access: AccessDoc::of(self.1.get(&n.name)),
            status: outcome_name(n.outcome),
            sent: SentDoc(&n.sent),
            failures: &n.failures,
            remaining: ChangesDoc {
                changes: &n.remaining,
                adopt: self.0.adopt,
            },
            record_error: n.record_error.as_deref(),
            dropin: n.dropin.as_ref(),
            error: n.error.as_ref().map(|e| e.to_json()),
        }))
    }
}

/// The report's `summary`.
#[derive(Serialize)]
struct SummaryDoc {
    operations_planned: usize,
    operations_applied: usize,
    nodes: usize,
    nodes_converged: usize,
    nodes_in_sync: usize,
    nodes_failed: usize,
    nodes_unreachable: usize,
    node_commands: usize,
    elapsed_ms: u64,
}

/// The `apply` document (docs/json.md).
#[derive(Serialize)]
pub struct ApplyDoc<'a> {
    format_version: u32,
    kind: &'static str,
    topology: TopologyDoc<'a>,
    protocol: u8,
    adopt: bool,
    success: bool,
    nodes: NodesDoc<'a>,
    plan: PlanDoc<'a>,
    summary: SummaryDoc,
    /// The deletions the mass-delete guard held back (none with `--allow-mass-delete`).
    held_back: Vec<HeldBackDoc>,
    /// `apply --canary`: the canary stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<super::canary::CanaryDoc<'a>>,
    /// `apply --canary`: the check after the rollout, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<super::check::CheckDoc<'a>>,
}

/// The apply report as its JSON document.
pub fn report_json<'a>(
    r: &'a Report,
    plan: &'a Plan,
    topology: &'a Topology,
    commands: usize,
) -> ApplyDoc<'a> {
    report_json_with(r, plan, topology, commands, None)
}

/// The apply report with the canary stage of `apply --canary` (and the check after it).
pub fn report_json_with<'a>(
    r: &'a Report,
    plan: &'a Plan,
    topology: &'a Topology,
    commands: usize,
    canary: Option<(&'a Verdict, Option<&'a check::Report>)>,
) -> ApplyDoc<'a> {
    let c = counts(r);
    ApplyDoc {
        format_version: PLAN_FORMAT_VERSION,
        kind: "apply",
        topology: TopologyDoc::of(topology),
        protocol: plan.protocol,
        adopt: r.adopt,
        success: r.success() && plan.held_back.is_empty(),
        nodes: NodesDoc(r, &plan.access),
        plan: plan_json(plan, topology),
        summary: SummaryDoc {
            operations_planned: plan.operations(),
            operations_applied: r.operations_applied(),
            nodes: r.nodes.len(),
            nodes_converged: c.converged,
            nodes_in_sync: c.in_sync,
            nodes_failed: c.failed,
            nodes_unreachable: c.unreachable,
            node_commands: commands,
            elapsed_ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
        },
        held_back: held_back_docs(&plan.held_back),
        canary: canary.map(|(v, _)| super::canary::CanaryDoc::of(v)),
        check: canary
            .and_then(|(_, c)| c)
            .map(|c| super::check::check_json(c, topology)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::samples::fixtures::topology;
    use crate::report::samples::sample_reports;

    #[test]
    fn text_has_a_line_per_node_and_the_failures() {
        let r = sample_reports::applied();
        assert_eq!(
            report_text(&r, &[], 9, &Style::default()),
            r#"worker-0: converged (1 change)
worker-1: FAILED
  x ip route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0: Nexthop has invalid gateway.
  still not as declared (read back from the node):
    + 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211
worker-2: unreachable, nothing was changed: `lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running
worker-3: in sync
Apply: 1 operation applied; 1 node converged, 1 in sync, 1 failed, 1 unreachable (9 node commands, 1.234 s).
"#
        );
    }

    #[test]
    fn held_back_deletions_are_listed_and_summed_up() {
        use crate::core::guard::{HeldBack, Reason};
        let r = sample_reports::applied();
        let held = [HeldBack {
            node: "worker-2".into(),
            deletions: 10,
            reasons: vec![Reason::AllOfNode { owned: 10 }],
        }];
        let text = report_text(&r, &held, 9, &Style::default());
        assert!(
            text.ends_with(
                "worker-3: in sync\nheld back: not applied (a mass deletion; --allow-mass-delete \
                 applies them):\n  worker-2: 10 deletions held back (it would lose all 10 of its \
                 routectl routes)\nApply: 1 operation applied; 1 node converged, 1 in sync, 1 \
                 failed, 1 unreachable; 10 deletions held back on worker-2 (9 node commands, \
                 1.234 s).\n"
            ),
            "{text}"
        );
        let t = topology();
        let mut p = crate::report::samples::sample::plan(&t, false);
        p.held_back = held.to_vec();
        let doc = serde_json::to_value(report_json(&r, &p, &t, 9)).unwrap();
        assert_eq!(doc["held_back"][0]["node"], "worker-2");
        assert_eq!(doc["held_back"][0]["reasons"][0]["rule"], "all_of_node");
        assert_eq!(doc["success"], false);
    }

    #[test]
    fn json_has_every_field_in_the_documented_order() {
        let t = topology();
        let r = sample_reports::applied();
        let p = crate::report::samples::sample::plan(&t, false);
        let fp = |i: usize| p.nodes[i].state.as_ref().unwrap().fingerprint.clone();
        let expected: String = [
            r#"{"format_version":2,"kind":"apply","topology":{"path":"t.toml","sha256":""#,
            &t.sha256,
            r#""},"protocol":211,"adopt":false,"success":false,"nodes":[{"name":"worker-0","status":"converged","sent":["ip route add 10.1.2.0/24 via 10.0.2.22 dev eth1 table 254 proto 211 metric 0","ip route show table all"],"failures":[],"remaining":[]},{"name":"worker-1","status":"failed","sent":["ip route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0"],"failures":[{"command":"route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0","message":"Nexthop has invalid gateway."}],"remaining":[{"action":"add","dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":null,"cause":"topology","in_place":false}]},{"name":"worker-2","status":"unreachable","sent":[],"failures":[],"remaining":[],"error":{"kind":"command_failed","message":"`lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running","command":"lxc exec worker-2 -- ip route","exit_status":1,"stderr":"Error: Instance is not running"}},{"name":"worker-3","status":"in_sync","sent":[],"failures":[],"remaining":[]}],"plan":{"format_version":2,"kind":"plan","topology":{"path":"t.toml","sha256":""#,
            &t.sha256,
            r#""},"protocol":211,"adopt":false,"take_over":false,"nodes":[{"name":"worker-0","instance":"worker-0","status":"ok","in_sync":0,"fingerprint":""#,
            &fp(0),
            r#"","last_applied":null,"changes":[{"action":"replace","dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":{"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":211,"metric":0},"cause":"topology","in_place":false},{"action":"add","dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":null,"cause":"topology","in_place":false},{"action":"delete","dst":"10.1.9.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":{"dst":"10.1.9.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0},"cause":"topology","in_place":false}],"warnings":[],"manager":{"name":"unknown","reason":"not read"},"persist":{"state":"off","path":null,"pending":false,"routes_added":[],"routes_removed":[],"old":null,"new":null}},{"name":"worker-1","instance":"worker-1","status":"ok","in_sync":0,"fingerprint":""#,
            &fp(1),
            r#"","last_applied":null,"changes":[{"action":"adopt","dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0,"operation":false,"current":{"dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":3,"metric":0},"cause":"topology","in_place":false},{"action":"conflict","dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":211,"metric":0,"operation":false,"current":{"dst":"10.1.2.0/24","gateway":"10.0.2.98","dev":"eth1","protocol":3,"metric":0},"cause":"topology","in_place":false}],"warnings":[],"manager":{"name":"unknown","reason":"not read"},"persist":{"state":"off","path":null,"pending":false,"routes_added":[],"routes_removed":[],"old":null,"new":null}},{"name":"worker-2","instance":"worker-2","status":"error","error":{"kind":"command_failed","message":"`lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running","command":"lxc exec worker-2 -- ip route","exit_status":1,"stderr":"Error: Instance is not running"},"changes":[],"warnings":[],"manager":{"name":"unknown","reason":"not read"}}],"skipped_nodes":["worker-3"],"summary":{"add":1,"replace":1,"delete":1,"adopt":1,"conflict":1,"take_over":0,"drift":0,"operations":3,"nodes":3,"nodes_changed":1,"nodes_in_sync":0,"nodes_unreachable":1,"nodes_unpersistable":0,"nodes_misfit":0,"dropins":0,"pending":true},"held_back":[]},"summary":{"operations_planned":3,"operations_applied":1,"nodes":4,"nodes_converged":1,"nodes_in_sync":1,"nodes_failed":1,"nodes_unreachable":1,"node_commands":9,"elapsed_ms":1234},"held_back":[]}"#,
        ]
        .concat();
        assert_eq!(
            serde_json::to_string(&report_json(&r, &p, &t, 9)).unwrap(),
            expected
        );
    }
}
