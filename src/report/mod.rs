//! Plans and apply reports -> text for people (with colour on a terminal), JSON for programs
//! (schema in docs/json.md) and Markdown for merge-request comments. `similar` is used here only,
//! to display what a replacement changes; it never decides anything.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

use crate::core::applied::{Outcome, Report};
use crate::core::change::{Action, Cause, Change};
use crate::core::check;
use crate::core::plan::{NodePlan, Plan, Summary};
use crate::core::route::{Route, protocol_name};
use crate::core::show;
use crate::core::topology::Topology;

/// The version of every JSON document routectl prints (see docs/json.md for the policy).
pub const FORMAT_VERSION: u32 = 1;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs (documented, versioned).
    Json,
    /// For merge-request comments.
    Markdown,
}

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Whether to emit colour codes.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    fn magenta(&self, s: &str) -> String {
        self.paint("35", s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// The mark of an action in text output.
pub fn mark(action: Action) -> char {
    match action {
        Action::Add => '+',
        Action::Delete => '-',
        Action::Replace | Action::Adopt => '~',
        Action::Conflict => '!',
        Action::TakeOver => '>',
    }
}

/// What a drift change says in text and Markdown.
pub fn drift_note(applied_at: Option<&str>) -> String {
    match applied_at {
        Some(t) => format!("drift: changed outside routectl since the last apply at {t}"),
        None => "drift: changed outside routectl since the last apply".to_string(),
    }
}

fn change_lines(
    c: &Change,
    adopt: bool,
    applied_at: Option<&str>,
    style: &Style,
    out: &mut String,
) {
    let m = mark(c.action).to_string();
    let route = c.route.to_string();
    let start = out.len();
    match c.action {
        Action::Add => {
            let _ = writeln!(out, "  {} {}", style.green(&m), style.green(&route));
        }
        Action::Delete => {
            let _ = writeln!(out, "  {} {}", style.red(&m), style.red(&route));
        }
        Action::Replace => {
            let was = current(c);
            let _ = writeln!(
                out,
                "  {} {}",
                style.yellow(&m),
                word_diff(&was, &route, style)
            );
            let _ = writeln!(out, "      {}", style.dim(&format!("was: {was}")));
        }
        Action::Adopt => {
            let was = c
                .current
                .as_ref()
                .map(|r| protocol_name(r.protocol))
                .unwrap_or_default();
            let note = if adopt {
                format!("(adopt: currently proto {was})")
            } else {
                format!("(identical foreign route, proto {was}: taken over only with --adopt)")
            };
            let _ = writeln!(out, "  {} {} {}", style.yellow(&m), route, style.dim(&note));
        }
        Action::Conflict => {
            let cur = current(c);
            let _ = writeln!(
                out,
                "  {} {}",
                style.magenta(&m),
                style.magenta(&format!(
                    "{route}  (blocked by foreign route: {cur}; --take-over replaces it)"
                ))
            );
        }
        Action::TakeOver => {
            let cur = current(c);
            let note = if c.in_place {
                format!("(takes over foreign route `{cur}` in place)")
            } else {
                format!("(takes over: deletes foreign route `{cur}`)")
            };
            let _ = writeln!(
                out,
                "  {} {} {}",
                style.yellow(&m),
                style.bold(&route),
                style.dim(&note)
            );
        }
    }
    if c.cause == Cause::Drift {
        // At the end of the change's first line.
        let lines = out.split_off(start);
        let note = style.red(&format!("  [{}]", drift_note(applied_at)));
        match lines.split_once('\n') {
            Some((first, rest)) => {
                let _ = write!(out, "{first}{note}\n{rest}");
            }
            None => {
                let _ = write!(out, "{lines}{note}");
            }
        }
    }
}

/// The route a change finds in the kernel, as an `ip route` line.
fn current(c: &Change) -> String {
    c.current
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default()
}

/// The new line with the words that differ from the old one highlighted.
fn word_diff(old: &str, new: &str, style: &Style) -> String {
    if !style.color {
        return new.to_string();
    }
    let d = TextDiff::from_words(old, new);
    let mut s = String::new();
    for change in d.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => s.push_str(change.value()),
            ChangeTag::Insert => s.push_str(&style.bold(&style.yellow(change.value()))),
            ChangeTag::Delete => {}
        }
    }
    s
}

fn node_heading(n: &NodePlan, adopt: bool) -> String {
    match &n.state {
        Err(_) => "cannot be read".to_string(),
        Ok(d) => {
            let mut parts = Vec::new();
            for a in [
                Action::Add,
                Action::Replace,
                Action::Delete,
                Action::Adopt,
                Action::TakeOver,
                Action::Conflict,
            ] {
                let k = d.changes.iter().filter(|c| c.action == a).count();
                if k > 0 {
                    let word = match a {
                        Action::Adopt if !adopt => "adoptable".to_string(),
                        Action::Conflict => {
                            if k == 1 {
                                "conflict".into()
                            } else {
                                "conflicts".into()
                            }
                        }
                        Action::TakeOver => "to take over".to_string(),
                        _ => format!("to {}", a.name()),
                    };
                    parts.push(format!("{k} {word}"));
                }
            }
            let drift = d.changes.iter().filter(|c| c.cause == Cause::Drift).count();
            if drift > 0 {
                parts.push(format!("{drift} from drift"));
            }
            if parts.is_empty() {
                format!("in sync ({} routes)", d.in_sync)
            } else {
                parts.join(", ")
            }
        }
    }
}

/// The plan as text.
pub fn plan_text(plan: &Plan, style: &Style) -> String {
    let mut out = String::new();
    for n in &plan.nodes {
        let heading = node_heading(n, plan.adopt);
        match &n.state {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    style.bold(&n.name),
                    style.red(&format!("error: {e}"))
                );
            }
            Ok(d) => {
                let _ = writeln!(out, "{}: {}", style.bold(&n.name), heading);
                let at = n.last_applied.as_ref().map(|r| r.applied_at.as_str());
                for c in &d.changes {
                    change_lines(c, plan.adopt, at, style, &mut out);
                }
                for w in &d.warnings {
                    let _ = writeln!(out, "  {}", style.yellow(&format!("warning: {w}")));
                }
            }
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!(
                "warning: limited to {} of {} nodes with --node; not planned: {}",
                plan.nodes.len(),
                plan.nodes.len() + plan.skipped.len(),
                plan.skipped.join(", ")
            ))
        );
    }
    let _ = writeln!(
        out,
        "{}",
        style.bold(&summary_line(&plan.summary(), plan.adopt))
    );
    out
}

/// `Plan: 6 to add, 0 to replace, 1 to delete on 3 of 4 nodes; 1 node unreachable`.
pub fn summary_line(s: &Summary, adopt: bool) -> String {
    let mut line = format!(
        "Plan: {} to add, {} to replace, {} to delete",
        s.add, s.replace, s.delete
    );
    if s.adopt > 0 {
        if adopt {
            let _ = write!(line, ", {} to adopt", s.adopt);
        } else {
            let _ = write!(line, ", {} adoptable with --adopt", s.adopt);
        }
    }
    if s.take_over > 0 {
        let _ = write!(line, ", {} to take over", s.take_over);
    }
    if s.conflict > 0 {
        let _ = write!(line, ", {} in conflict", s.conflict);
    }
    let _ = write!(line, " on {} of {} nodes", s.nodes_changed, s.nodes);
    if s.drift > 0 {
        let _ = write!(
            line,
            "; {} change{} from drift",
            s.drift,
            if s.drift == 1 { "" } else { "s" }
        );
    }
    if s.nodes_unreachable > 0 {
        let _ = write!(
            line,
            "; {} node{} unreachable",
            s.nodes_unreachable,
            if s.nodes_unreachable == 1 { "" } else { "s" }
        );
    }
    line.push('.');
    line
}

/// A route as JSON fields.
#[derive(Serialize)]
struct RouteJson {
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    protocol: u8,
    metric: u32,
    route: String,
}

fn route_json(r: &Route) -> RouteJson {
    RouteJson {
        dst: r.dst.to_string(),
        gateway: r.gateway().map(|g| g.to_string()),
        dev: r.dev().map(str::to_string),
        protocol: r.protocol,
        metric: r.metric,
        route: r.to_string(),
    }
}

fn change_json(c: &Change, adopt: bool) -> Value {
    let r = route_json(&c.route);
    let command = c
        .batch_line()
        .filter(|_| c.is_operation(adopt))
        .map(|line| format!("ip {line}"));
    json!({
        "action": c.action.name(),
        "dst": r.dst,
        "gateway": r.gateway,
        "dev": r.dev,
        "protocol": r.protocol,
        "metric": r.metric,
        "route": r.route,
        "operation": c.is_operation(adopt),
        "command": command,
        "current": c.current.as_ref().map(route_json),
        "cause": c.cause.name(),
        "in_place": c.in_place,
    })
}

fn last_applied_json(r: Option<&crate::core::record::LastApplied>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({
            "applied_at": r.applied_at,
            "applied_at_unix": r.applied_at_unix,
            "routectl_version": r.routectl_version,
            "topology_sha256": r.topology_sha256,
            "protocol": r.protocol,
            "routes": r.routes,
        }),
    }
}

fn node_json(n: &NodePlan, adopt: bool) -> Value {
    match &n.state {
        Ok(d) => json!({
            "name": n.name,
            "instance": n.instance,
            "status": "ok",
            "in_sync": d.in_sync,
            "fingerprint": d.fingerprint,
            "last_applied": last_applied_json(n.last_applied.as_ref()),
            "changes": d.changes.iter().map(|c| change_json(c, adopt)).collect::<Vec<_>>(),
            "warnings": d.warnings,
        }),
        Err(e) => json!({
            "name": n.name,
            "instance": n.instance,
            "status": "error",
            "error": e.to_json(),
            "changes": [],
            "warnings": [],
        }),
    }
}

/// The plan as a JSON value.
pub fn plan_json(plan: &Plan, topology: &Topology) -> Value {
    let s = plan.summary();
    json!({
        "format_version": FORMAT_VERSION,
        "kind": "plan",
        "topology": { "path": topology.source, "sha256": topology.sha256 },
        "protocol": plan.protocol,
        "adopt": plan.adopt,
        "take_over": plan.take_over,
        "nodes": plan.nodes.iter().map(|n| node_json(n, plan.adopt)).collect::<Vec<_>>(),
        "skipped_nodes": plan.skipped,
        "summary": {
            "add": s.add,
            "replace": s.replace,
            "delete": s.delete,
            "adopt": s.adopt,
            "conflict": s.conflict,
            "take_over": s.take_over,
            "drift": s.drift,
            "operations": plan.operations(),
            "nodes": s.nodes,
            "nodes_changed": s.nodes_changed,
            "nodes_in_sync": s.nodes_in_sync,
            "nodes_unreachable": s.nodes_unreachable,
            "pending": plan.has_pending(),
        },
    })
}

/// The plan as Markdown, summary first, one collapsible section per node.
pub fn plan_markdown(plan: &Plan, topology: &Topology) -> String {
    let s = plan.summary();
    let mut out = String::new();
    let _ = writeln!(out, "### routectl plan for `{}`\n", topology.source);
    let _ = writeln!(out, "**{}**\n", summary_line(&s, plan.adopt));
    let _ = writeln!(out, "| node | status |\n|---|---|");
    for n in &plan.nodes {
        let status = match &n.state {
            Err(e) => format!("error: {}", e.kind()),
            Ok(_) => node_heading(n, plan.adopt),
        };
        let _ = writeln!(out, "| `{}` | {} |", n.name, status);
    }
    let _ = writeln!(out);
    for n in &plan.nodes {
        match &n.state {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "<details><summary><code>{}</code>: cannot be read</summary>\n\n```\n{}\n```\n</details>\n",
                    n.name, e
                );
            }
            Ok(d) if d.changes.is_empty() && d.warnings.is_empty() => {}
            Ok(d) => {
                let _ = writeln!(
                    out,
                    "<details><summary><code>{}</code>: {}</summary>\n\n```diff",
                    n.name,
                    node_heading(n, plan.adopt)
                );
                let mut body = String::new();
                let at = n.last_applied.as_ref().map(|r| r.applied_at.as_str());
                for c in &d.changes {
                    change_lines(c, plan.adopt, at, &Style::default(), &mut body);
                }
                for line in body.lines() {
                    // diff syntax colours lines starting with + and -.
                    let _ = writeln!(out, "{}", line.trim_start());
                }
                for w in &d.warnings {
                    let _ = writeln!(out, "# warning: {w}");
                }
                let _ = writeln!(out, "```\n</details>\n");
            }
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            out,
            "> Limited with `--node`; not planned: {}\n",
            plan.skipped.join(", ")
        );
    }
    out
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::InSync => "in_sync",
        Outcome::Converged => "converged",
        Outcome::Failed => "failed",
        Outcome::Unreachable => "unreachable",
    }
}

/// Counts of an apply report: (converged, in sync, failed, unreachable).
fn counts(r: &Report) -> (usize, usize, usize, usize) {
    let c = |o| r.nodes.iter().filter(|n| n.outcome == o).count();
    (
        c(Outcome::Converged),
        c(Outcome::InSync),
        c(Outcome::Failed),
        c(Outcome::Unreachable),
    )
}

/// The apply report as text.
pub fn report_text(r: &Report, commands: usize, style: &Style) -> String {
    let mut out = String::new();
    for n in &r.nodes {
        match n.outcome {
            Outcome::InSync => {
                let _ = writeln!(out, "{}: in sync", style.bold(&n.name));
            }
            Outcome::Converged => {
                let _ = writeln!(
                    out,
                    "{}: {} ({} change{})",
                    style.bold(&n.name),
                    style.green("converged"),
                    n.sent.len() - n.failures.len(),
                    if n.sent.len() - n.failures.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                );
            }
            Outcome::Unreachable => {
                let msg = n.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
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
        for f in &n.failures {
            let _ = writeln!(out, "  {} ip {}: {}", style.red("x"), f.command, f.message);
        }
        if let Some(e) = &n.record_error {
            let _ = writeln!(
                out,
                "  {}",
                style.yellow(&format!("warning: last-applied record not written: {e}"))
            );
        }
        if n.outcome != Outcome::Unreachable
            && let Some(e) = &n.error
        {
            let _ = writeln!(out, "  {}", style.red(&format!("error: {e}")));
        }
        if n.outcome == Outcome::Failed {
            let pending: Vec<&Change> = n
                .remaining
                .iter()
                .filter(|c| c.is_pending(r.adopt))
                .collect();
            if !pending.is_empty() {
                let _ = writeln!(out, "  still not as declared (read back from the node):");
                for c in pending {
                    let mut s = String::new();
                    change_lines(c, r.adopt, None, style, &mut s);
                    for line in s.lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
            }
        }
    }
    let (conv, sync, failed, unreach) = counts(r);
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "Apply: {} operation{} applied; {conv} node{} converged, {sync} in sync, {failed} failed, {unreach} unreachable ({commands} node commands, {:.3} s).",
            r.operations_applied(),
            if r.operations_applied() == 1 { "" } else { "s" },
            if conv == 1 { "" } else { "s" },
            r.elapsed.as_secs_f64()
        ))
    );
    out
}

/// The apply report as JSON.
pub fn report_json(r: &Report, plan: &Plan, topology: &Topology, commands: usize) -> Value {
    let (conv, sync, failed, unreach) = counts(r);
    json!({
        "format_version": FORMAT_VERSION,
        "kind": "apply",
        "topology": { "path": topology.source, "sha256": topology.sha256 },
        "protocol": plan.protocol,
        "adopt": r.adopt,
        "success": r.success(),
        "nodes": r.nodes.iter().map(|n| {
            let mut v = json!({
                "name": n.name,
                "status": outcome_name(n.outcome),
                "sent": n.sent.iter().map(|l| format!("ip {l}")).collect::<Vec<_>>(),
                "failures": n.failures,
                "remaining": n.remaining.iter().map(|c| change_json(c, r.adopt)).collect::<Vec<_>>(),
            });
            if let (Some(e), Value::Object(m)) = (&n.record_error, &mut v) {
                m.insert("record_error".into(), json!(e));
            }
            if let (Some(e), Value::Object(m)) = (&n.error, &mut v) {
                m.insert("error".into(), serde_json::to_value(e.to_json()).unwrap_or(Value::Null));
            }
            v
        }).collect::<Vec<_>>(),
        "plan": plan_json(plan, topology),
        "summary": {
            "operations_planned": plan.operations(),
            "operations_applied": r.operations_applied(),
            "nodes": r.nodes.len(),
            "nodes_converged": conv,
            "nodes_in_sync": sync,
            "nodes_failed": failed,
            "nodes_unreachable": unreach,
            "node_commands": commands,
            "elapsed_ms": r.elapsed.as_millis() as u64,
        },
    })
}

/// The canary stage of `apply --canary` as text.
pub fn canary_text(v: &crate::core::canary::Verdict, style: &Style) -> String {
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

/// The canary stage as JSON (the `canary` object of an apply document).
pub fn canary_json(v: &crate::core::canary::Verdict) -> Value {
    json!({
        "nodes": v.canaries,
        "passed": v.passed(),
        "not_converged": v.not_converged,
        "paths": v.proofs.iter().map(|p| {
            let (detail, attempts) = match &p.outcome {
                check::Outcome::Pass { attempts } => (None, Some(*attempts)),
                check::Outcome::Fail { attempts, detail } => (Some(detail.clone()), Some(*attempts)),
                check::Outcome::NotRun { reason } => (Some(reason.clone()), None),
            };
            json!({
                "family": p.path.family,
                "from": p.path.from,
                "to": p.path.to,
                "source": p.path.source.to_string(),
                "destination": p.path.destination.to_string(),
                "status": p.outcome.name(),
                "attempts": attempts,
                "detail": detail,
            })
        }).collect::<Vec<_>>(),
        "rollback": v.rollback.as_ref().map(|rb| json!({
            "restored": rb.restored,
            "failed": rb.failed.iter().map(|(n, w)| json!({"node": n, "error": w})).collect::<Vec<_>>(),
        })),
    })
}

/// Pretty JSON text with a final newline.
pub fn to_json_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// `routectl show`.

fn show_mark(mark: show::Mark, style: &Style) -> String {
    let name = format!("{:<15}", mark.name());
    match mark {
        show::Mark::Owned => style.green(&name),
        show::Mark::Foreign => style.yellow(&name),
        show::Mark::Kernel => style.dim(&name),
        show::Mark::DesiredMissing => style.red(&name),
    }
}

fn show_heading(n: &show::NodeShow) -> String {
    if n.instance == n.name {
        n.name.clone()
    } else {
        format!("{} (instance {})", n.name, n.instance)
    }
}

/// `last applied: 2026-12-01T19:00:00Z by routectl 0.1.0, topology sha256 abcdef012345…, 3 routes`.
fn last_applied_line(r: Option<&crate::core::record::LastApplied>) -> String {
    match r {
        None => {
            "last applied: no record (never applied by routectl since the node started)".to_string()
        }
        Some(r) => format!(
            "last applied: {} by routectl {}, topology sha256 {}…, {} route{}",
            r.applied_at,
            r.routectl_version,
            r.topology_sha256.get(..12).unwrap_or(&r.topology_sha256),
            r.routes.len(),
            if r.routes.len() == 1 { "" } else { "s" }
        ),
    }
}

/// `Show: 4 nodes; 6 owned, 1 foreign, 8 kernel, 3 desired-missing routes; 1 warning.`
pub fn show_summary_line(s: &show::Summary) -> String {
    let mut line = format!(
        "Show: {} node{}; {} owned, {} foreign, {} kernel, {} desired-missing routes; {} warning{}",
        s.nodes,
        if s.nodes == 1 { "" } else { "s" },
        s.owned,
        s.foreign,
        s.kernel,
        s.desired_missing,
        s.warnings,
        if s.warnings == 1 { "" } else { "s" }
    );
    if s.nodes_unreadable > 0 {
        let _ = write!(line, "; {} unreadable", s.nodes_unreadable);
    }
    line.push('.');
    line
}

/// The show report as text.
pub fn show_text(r: &show::Report, style: &Style) -> String {
    let mut out = String::new();
    for n in &r.nodes {
        match &n.state {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    style.bold(&show_heading(n)),
                    style.red(&format!("error: {e}"))
                );
            }
            Ok(v) => {
                let _ = writeln!(out, "{}:", style.bold(&show_heading(n)));
                let _ = writeln!(
                    out,
                    "  {}",
                    style.dim(&last_applied_line(v.last_applied.as_ref()))
                );
                for e in &v.entries {
                    let note = e
                        .note
                        .as_ref()
                        .map(|n| format!("  {}", style.dim(&format!("({n})"))))
                        .unwrap_or_default();
                    let _ = writeln!(out, "  {} {}{note}", show_mark(e.mark, style), e.route);
                }
                if v.other_tables > 0 {
                    let _ = writeln!(
                        out,
                        "  {}",
                        style.dim(&format!(
                            "({} route{} in other tables not listed)",
                            v.other_tables,
                            if v.other_tables == 1 { "" } else { "s" }
                        ))
                    );
                }
                for c in v.checks.iter().filter(|c| c.ok) {
                    let _ = writeln!(out, "  {} {}", style.green("ok:"), c.message);
                }
                for w in &v.warnings {
                    let _ = writeln!(out, "  {}", style.yellow(&format!("warning: {w}")));
                }
            }
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.dim(&format!("(not shown, --node: {})", r.skipped.join(", ")))
        );
    }
    let _ = writeln!(out, "{}", style.bold(&show_summary_line(&r.summary())));
    out
}

/// The show report as a JSON value (`kind: "show"`).
pub fn show_json(r: &show::Report, topology: &Topology) -> Value {
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .map(|n| match &n.state {
            Err(e) => json!({
                "name": n.name,
                "instance": n.instance,
                "status": "error",
                "error": e.to_json(),
            }),
            Ok(v) => json!({
                "name": n.name,
                "instance": n.instance,
                "status": "ok",
                "routes": v.entries.iter().map(|e| {
                    let mut r = serde_json::to_value(route_json(&e.route)).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut r {
                        m.insert("mark".into(), json!(e.mark.name()));
                        m.insert("note".into(), json!(e.note));
                    }
                    r
                }).collect::<Vec<_>>(),
                "other_tables_routes": v.other_tables,
                "last_applied": last_applied_json(v.last_applied.as_ref()),
                "addresses": v.checks.iter().map(|c| json!({
                    "check": c.kind,
                    "address": c.address.to_string(),
                    "interface": c.interface,
                    "pod_cidr": c.pod_cidr.map(|n| n.to_string()),
                    "found": c.found.iter().map(|(i, a)| json!({"interface": i, "address": a})).collect::<Vec<_>>(),
                    "ok": c.ok,
                    "message": c.message,
                })).collect::<Vec<_>>(),
                "warnings": v.warnings,
            }),
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "kind": "show",
        "topology": { "path": topology.source, "sha256": topology.sha256 },
        "protocol": r.protocol,
        "nodes": nodes,
        "skipped_nodes": r.skipped,
        "summary": r.summary(),
    })
}

/// The show report as Markdown (the text report in a code block, under a heading).
pub fn show_markdown(r: &show::Report, topology: &Topology) -> String {
    format!(
        "### routectl show for `{}`\n\n**{}**\n\n```\n{}```\n",
        topology.source,
        show_summary_line(&r.summary()),
        show_text(r, &Style::default())
    )
}

// ---------------------------------------------------------------------------------------------
// `routectl check`.

/// A cell of a check matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Pass,
    Fail,
    NotRun,
    Itself,
    NotProbed,
}

impl Cell {
    fn of(r: &check::Report, family: crate::core::route::Family, from: &str, to: &str) -> Cell {
        if from == to {
            return Cell::Itself;
        }
        match r.path(family, from, to).map(|p| &p.outcome) {
            Some(check::Outcome::Pass { .. }) => Cell::Pass,
            Some(check::Outcome::Fail { .. }) => Cell::Fail,
            Some(check::Outcome::NotRun { .. }) => Cell::NotRun,
            None => Cell::NotProbed,
        }
    }

    /// In the text matrix.
    fn text(self) -> &'static str {
        match self {
            Cell::Pass => "ok",
            Cell::Fail => "FAIL",
            Cell::NotRun => "skip",
            Cell::Itself => "-",
            Cell::NotProbed => ".",
        }
    }

    /// In the JSON matrix.
    fn json(self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "fail",
            Cell::NotRun => "not_run",
            Cell::Itself => "self",
            Cell::NotProbed => "not_probed",
        }
    }

    /// In the Markdown table.
    fn markdown(self) -> &'static str {
        match self {
            Cell::Pass => "✅",
            Cell::Fail => "❌",
            Cell::NotRun => "⏭",
            Cell::Itself => "-",
            Cell::NotProbed => ".",
        }
    }
}

/// `Check: 5 of 6 paths pass, 1 failed (1 asymmetric).`
pub fn check_summary_line(r: &check::Report) -> String {
    let s = r.summary();
    if s.paths == 0 {
        return "Check: nothing to check: fewer than two nodes with a pod_cidr of the same family."
            .to_string();
    }
    let mut line = format!(
        "Check: {} of {} path{} pass",
        s.passed,
        s.paths,
        if s.paths == 1 { "" } else { "s" }
    );
    if s.failed > 0 {
        let _ = write!(line, ", {} failed", s.failed);
        if !r.asymmetric.is_empty() {
            let _ = write!(line, " ({} asymmetric)", r.asymmetric.len());
        }
    }
    if s.not_run > 0 {
        let _ = write!(line, ", {} not run", s.not_run);
    }
    if s.nodes_unreadable > 0 {
        let _ = write!(
            line,
            "; {} node{} unreadable",
            s.nodes_unreadable,
            if s.nodes_unreadable == 1 { "" } else { "s" }
        );
    }
    line.push('.');
    line
}

/// Every failed path with its hints, the asymmetric paths and the unreadable nodes.
fn check_details(r: &check::Report, style: &Style) -> String {
    let mut out = String::new();
    for p in &r.paths {
        if let check::Outcome::Fail { attempts, detail } = &p.outcome {
            let q = &p.probe;
            let _ = writeln!(
                out,
                "{} {} -> {} ({}, {} -> {}, {attempts} ping{}): {detail}",
                style.red("failed:"),
                q.from,
                q.to,
                q.family,
                q.source,
                q.destination,
                if *attempts == 1 { "" } else { "s" }
            );
            for h in &p.hints {
                let _ = writeln!(out, "  {} {h}", style.yellow("hint:"));
            }
        }
    }
    for a in &r.asymmetric {
        let _ = writeln!(
            out,
            "{} {} reaches {}, but {} does not reach {} back",
            style.yellow(&format!("asymmetric ({}):", a.family)),
            a.reaches,
            a.not_back,
            a.not_back,
            a.reaches
        );
    }
    for (name, e) in &r.unreadable {
        let _ = writeln!(
            out,
            "{}: {} (paths from it were not pinged)",
            style.bold(name),
            style.red(&format!("error: {e}"))
        );
    }
    out
}

/// The check report as text: a matrix per family, then every failure with its hints.
pub fn check_text(r: &check::Report, style: &Style) -> String {
    let mut out = String::new();
    for (family, names) in &r.families {
        let label = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let cell = names.iter().map(|n| n.len()).max().unwrap_or(0).max(4) + 2;
        let _ = writeln!(
            out,
            "{}",
            style.bold(&format!(
                "{family}: ping from each row's pod gateway to each column's"
            ))
        );
        let mut header = format!("  {:label$}  ", "");
        for n in names {
            let _ = write!(header, "{n:cell$}");
        }
        let _ = writeln!(out, "{}", header.trim_end());
        for from in names {
            let mut line = format!("  {from:label$}  ");
            for to in names {
                let c = Cell::of(r, *family, from, to);
                let padded = format!("{:cell$}", c.text());
                line.push_str(&match c {
                    Cell::Pass => style.green(&padded),
                    Cell::Fail => style.red(&padded),
                    Cell::NotRun => style.yellow(&padded),
                    Cell::Itself | Cell::NotProbed => style.dim(&padded),
                });
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out.push_str(&check_details(r, style));
    let _ = writeln!(out, "{}", style.bold(&check_summary_line(r)));
    out
}

/// The check report as a JSON value (`kind: "check"`).
pub fn check_json(r: &check::Report, topology: &Topology) -> Value {
    let families: Vec<Value> = r
        .families
        .iter()
        .map(|(family, names)| {
            let matrix: Vec<Vec<&str>> = names
                .iter()
                .map(|from| {
                    names
                        .iter()
                        .map(|to| Cell::of(r, *family, from, to).json())
                        .collect()
                })
                .collect();
            json!({ "family": family, "nodes": names, "matrix": matrix })
        })
        .collect();
    let paths: Vec<Value> = r
        .paths
        .iter()
        .map(|p| {
            let q = &p.probe;
            let (attempts, detail) = match &p.outcome {
                check::Outcome::Pass { attempts } => (Some(*attempts), None),
                check::Outcome::Fail { attempts, detail } => {
                    (Some(*attempts), Some(detail.clone()))
                }
                check::Outcome::NotRun { reason } => (None, Some(reason.clone())),
            };
            json!({
                "family": q.family,
                "from": q.from,
                "to": q.to,
                "source": q.source.to_string(),
                "destination": q.destination.to_string(),
                "status": p.outcome.name(),
                "attempts": attempts,
                "detail": detail,
                "hints": p.hints,
            })
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "kind": "check",
        "topology": { "path": topology.source, "sha256": topology.sha256 },
        "families": families,
        "paths": paths,
        "asymmetric": r.asymmetric,
        "errors": r.unreadable.iter().map(|(n, e)| json!({"node": n, "error": e.to_json()})).collect::<Vec<_>>(),
        "summary": r.summary(),
    })
}

/// The check report as Markdown: a table per family, then the failures.
pub fn check_markdown(r: &check::Report, topology: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### routectl check for `{}`\n", topology.source);
    let _ = writeln!(out, "**{}**\n", check_summary_line(r));
    for (family, names) in &r.families {
        let _ = writeln!(out, "{family} (row pings column):\n");
        let _ = writeln!(
            out,
            "| from \\ to | {} |",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
        for from in names {
            let cells: Vec<&str> = names
                .iter()
                .map(|to| Cell::of(r, *family, from, to).markdown())
                .collect();
            let _ = writeln!(out, "| `{from}` | {} |", cells.join(" | "));
        }
        let _ = writeln!(out);
    }
    let details = check_details(r, &Style::default());
    if !details.is_empty() {
        let _ = writeln!(out, "```\n{details}```");
    }
    out
}

/// The plan document with its binding, as written by `plan --out`.
pub fn saved_plan_json(
    plan: &Plan,
    topology: &Topology,
    options: &crate::core::plan::Options,
) -> Value {
    let mut doc = plan_json(plan, topology);
    let binding = crate::core::saved::Binding {
        routectl_version: env!("CARGO_PKG_VERSION").to_string(),
        transport: topology.cluster.transport,
        topology_path: topology.source.clone(),
        topology_sha256: topology.sha256.clone(),
        topology_text: topology.text.clone(),
        adopt: options.adopt,
        take_over: options.take_over,
        nodes: options.only.clone(),
        fingerprints: plan
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.state.as_ref().ok().map(|d| d.fingerprint.clone()),
                )
            })
            .collect(),
    };
    if let Value::Object(m) = &mut doc {
        m.insert(
            "saved".into(),
            serde_json::to_value(binding).unwrap_or(Value::Null),
        );
    }
    doc
}
