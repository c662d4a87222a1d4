//! The plan: text and Markdown here; the `plan` JSON document and the saved plan (`plan --out`)
//! in `json.rs`.

use std::fmt::Write as _;
use std::io;

use similar::{ChangeTag, TextDiff};

use super::style::Style;
use crate::core::change::{Action, Cause, Change};
use crate::core::guard::HeldBack;
use crate::core::persist::PersistPlan;
use crate::core::plan::{NodePlan, Plan, Summary};
use crate::core::route::protocol_name;
use crate::core::text::{code_block, escape};
use crate::core::topology::Topology;

mod json;

pub(crate) use json::{ChangesDoc, LastAppliedDoc, ManagerDoc, PersistDoc};
pub use json::{
    HeldBackDoc, PlanDoc, SavedPlanDoc, held_back_docs, plan_json, saved_plan_json, write_plan_json,
};

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

/// What a drift change says in text and Markdown (`applied_at` is the node's record's, shown
/// escaped).
pub fn drift_note(applied_at: Option<&str>) -> String {
    match applied_at {
        Some(t) => format!(
            "drift: changed outside routectl since the last apply at {}",
            crate::core::text::shown(t)
        ),
        None => "drift: changed outside routectl since the last apply".to_string(),
    }
}

/// The lines of one change (indented by two), as in the plan and the apply report.
pub(crate) fn change_lines(
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

/// `2 to add, 1 conflict`, `in sync (4 routes)` or `cannot be read`.
pub(crate) fn node_heading(n: &NodePlan, adopt: bool) -> String {
    match &n.state {
        Err(crate::error::NodeError::Persist { .. }) => "cannot persist as asked".to_string(),
        Err(crate::error::NodeError::Misfit { .. }) => "cannot carry its routes".to_string(),
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
                        Action::Conflict if k == 1 => "conflict".to_string(),
                        Action::Conflict => "conflicts".to_string(),
                        Action::TakeOver => "to take over".to_string(),
                        _ => format!("to {}", a.name()),
                    };
                    parts.push(format!("{k} {word}"));
                }
            }
            if n.persist.is_pending() {
                let what = match n.persist.mechanism() {
                    Some(crate::core::persist::Mechanism::Networkd) | None => "drop-in",
                    Some(_) => "hook",
                };
                parts.push(format!("{what} to {}", n.persist.state()));
            }
            let drift = d.changes.iter().filter(|c| c.cause == Cause::Drift).count();
            if parts.is_empty() {
                format!("in sync ({} routes)", d.in_sync)
            } else if drift > 0 {
                // Not another count beside them: some of those changes repair drift.
                format!(
                    "{} ({drift} {} drift)",
                    parts.join(", "),
                    if drift == 1 { "repairs" } else { "repair" }
                )
            } else {
                parts.join(", ")
            }
        }
    }
}

/// The plan as text.
pub fn plan_text(plan: &Plan, style: &Style) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_plan_text(&mut out, plan, style);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes the plan as text, a node at a time (a plan of a million changes is never held as
/// one string).
pub fn write_plan_text<W: io::Write + ?Sized>(
    w: &mut W,
    plan: &Plan,
    style: &Style,
) -> io::Result<()> {
    let mut out = String::new();
    for n in &plan.nodes {
        out.clear();
        match &n.state {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    style.bold(&n.name),
                    style.red(&format!("error: {}", escape(&e.to_string())))
                );
            }
            Ok(d) => {
                let heading = node_heading(n, plan.adopt);
                let _ = writeln!(out, "{}: {}", style.bold(&n.name), heading);
                let at = n.last_applied.as_ref().map(|r| r.applied_at.as_str());
                for c in &d.changes {
                    change_lines(c, plan.adopt, at, style, &mut out);
                }
                dropin_lines(&n.persist, style, &mut out);
                for w in &d.warnings {
                    let w = escape(w);
                    let _ = writeln!(out, "  {}", style.yellow(&format!("warning: {w}")));
                }
            }
        }
        w.write_all(out.as_bytes())?;
    }
    out.clear();
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!(
                "warning: limited to {} of {} nodes (--node, --member); not planned: {}",
                plan.nodes.len(),
                plan.nodes.len() + plan.skipped.len(),
                crate::core::text::list(&plan.skipped, false)
            ))
        );
    }
    held_back_lines(
        &plan.held_back,
        "apply holds back these deletions (a mass deletion; --allow-mass-delete applies them):",
        style,
        &mut out,
    );
    let _ = writeln!(
        out,
        "{}",
        style.bold(&summary_line(&plan.summary(), plan.adopt))
    );
    w.write_all(out.as_bytes())
}

/// What the mass-delete guard holds back, under `heading` (nothing when nothing is).
pub(crate) fn held_back_lines(held: &[HeldBack], heading: &str, style: &Style, out: &mut String) {
    if held.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", style.yellow(&format!("held back: {heading}")));
    for h in held {
        let _ = writeln!(out, "  {}", style.yellow(&h.to_string()));
    }
}

/// A pending change of a persisted file as a unified diff (`similar`), indented under the node.
pub(crate) fn dropin_lines(p: &PersistPlan, style: &Style, out: &mut String) {
    if !p.is_pending() {
        return;
    }
    let path = escape(p.path().unwrap_or_default());
    let path = path.as_ref();
    let (old, new) = p.contents();
    let _ = writeln!(
        out,
        "  {} {} {path} ({}):",
        style.yellow("~"),
        p.mechanism().map_or("persisted file", |m| m.describe()),
        p.state()
    );
    let name = |side: Option<&str>| if side.is_some() { path } else { "/dev/null" };
    let (old_name, new_name) = (name(old), name(new));
    let (old, new) = (old.unwrap_or(""), new.unwrap_or(""));
    let diff = TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(old_name, new_name)
        .to_string();
    for line in text.lines() {
        // The old side is the file on the node: its lines are data.
        let line = escape(line);
        let line = line.as_ref();
        let shown = if line.starts_with("+++") || line.starts_with("---") {
            style.bold(line)
        } else if line.starts_with('+') {
            style.green(line)
        } else if line.starts_with('-') {
            style.red(line)
        } else if line.starts_with("@@") {
            style.dim(line)
        } else {
            line.to_string()
        };
        let _ = writeln!(out, "    {shown}");
    }
    if !old.is_empty() && !old.ends_with('\n') {
        let _ = writeln!(
            out,
            "    {}",
            style.dim("(the file on the node has no final newline)")
        );
    }
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
    if s.dropins > 0 {
        let _ = write!(
            line,
            ", {} to write",
            crate::core::text::count(s.dropins, "persisted file", "persisted files")
        );
    }
    let _ = write!(
        line,
        " on {} of {}",
        s.nodes_changed,
        crate::core::text::nodes(s.nodes)
    );
    if s.drift > 0 {
        let _ = write!(
            line,
            "; {} of them {} drift",
            s.drift,
            if s.drift == 1 { "repairs" } else { "repair" }
        );
    }
    if s.nodes_unreachable > 0 {
        let _ = write!(
            line,
            "; {} unreachable",
            crate::core::text::nodes(s.nodes_unreachable)
        );
    }
    if s.nodes_misfit > 0 {
        let _ = write!(
            line,
            "; {} cannot carry {} routes",
            crate::core::text::nodes(s.nodes_misfit),
            if s.nodes_misfit == 1 { "its" } else { "their" }
        );
    }
    if s.nodes_unpersistable > 0 {
        let _ = write!(
            line,
            "; {} cannot persist as asked",
            crate::core::text::nodes(s.nodes_unpersistable)
        );
    }
    line.push('.');
    line
}

/// The plan as Markdown, summary first, one collapsible section per node.
pub fn plan_markdown(plan: &Plan, topology: &Topology) -> String {
    let s = plan.summary();
    let mut out = String::new();
    let _ = writeln!(out, "### routectl plan for `{}`\n", topology.source);
    let _ = writeln!(out, "**{}**\n", summary_line(&s, plan.adopt));
    if !plan.held_back.is_empty() {
        let _ = writeln!(
            out,
            "> **Held back:** apply leaves these deletions alone (a mass deletion; \
             `--allow-mass-delete` applies them):"
        );
        for h in &plan.held_back {
            let _ = writeln!(
                out,
                "> - `{}`: {} ({})",
                h.node,
                crate::core::text::count(h.deletions, "deletion", "deletions"),
                h.why()
            );
        }
        let _ = writeln!(out);
    }
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
                    "<details><summary><code>{}</code>: {}</summary>\n\n{}</details>\n",
                    n.name,
                    node_heading(n, plan.adopt),
                    code_block("", &e.to_string())
                );
            }
            Ok(d) if d.changes.is_empty() && d.warnings.is_empty() && !n.persist.is_pending() => {}
            Ok(d) => {
                let mut body = String::new();
                let at = n.last_applied.as_ref().map(|r| r.applied_at.as_str());
                for c in &d.changes {
                    change_lines(c, plan.adopt, at, &Style::default(), &mut body);
                }
                dropin_lines(&n.persist, &Style::default(), &mut body);
                let mut block = String::new();
                for line in body.lines() {
                    // diff syntax colours lines starting with + and -.
                    let _ = writeln!(block, "{}", line.trim_start());
                }
                for w in &d.warnings {
                    let _ = writeln!(block, "# warning: {}", escape(w));
                }
                let _ = writeln!(
                    out,
                    "<details><summary><code>{}</code>: {}</summary>\n\n{}</details>\n",
                    n.name,
                    node_heading(n, plan.adopt),
                    code_block("diff", &block)
                );
            }
        }
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            out,
            "> Limited with `--node`; not planned: {}\n",
            crate::core::text::list(&plan.skipped, false)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Layout;
    use crate::report::samples::fixtures::topology;
    use crate::report::samples::sample;

    const TEXT: &str = "\
worker-0: 1 to add, 1 to replace, 1 to delete
  ~ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
      was: 10.1.1.0/24 via 10.0.2.99 dev eth1 proto 211
  + 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211
  - 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211
worker-1: 1 adoptable, 1 conflict
  ~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 (identical foreign route, proto boot: taken over only with --adopt)
  ! 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211  (blocked by foreign route: 10.1.2.0/24 via 10.0.2.98 dev eth1 proto boot; --take-over replaces it)
worker-2: error: `lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running
warning: limited to 3 of 4 nodes (--node, --member); not planned: worker-3
Plan: 1 to add, 1 to replace, 1 to delete, 1 adoptable with --adopt, 1 in conflict on 1 of 3 nodes; 1 node unreachable.
";

    #[test]
    fn text_lists_every_change_under_its_node() {
        let t = topology();
        assert_eq!(plan_text(&sample::plan(&t, false), &Style::default()), TEXT);
        let adopt = plan_text(&sample::plan(&t, true), &Style::default());
        assert!(
            adopt.contains("worker-1: 1 to adopt, 1 conflict\n"),
            "{adopt}"
        );
        assert!(adopt.contains(
            "  ~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 (adopt: currently proto boot)\n"
        ));
        assert!(adopt.ends_with(
            "Plan: 1 to add, 1 to replace, 1 to delete, 1 to adopt, 1 in conflict on 2 of 3 nodes; 1 node unreachable.\n"
        ));
    }

    #[test]
    fn colour_marks_the_words_that_change() {
        let t = topology();
        let text = plan_text(&sample::plan(&t, false), &Style { color: true });
        assert!(text.starts_with(
            "\x1b[1mworker-0\x1b[0m: 1 to add, 1 to replace, 1 to delete\n  \x1b[33m~\x1b[0m 10.1.1.0/24 via \x1b[1m\x1b[33m10.0.2.21\x1b[0m\x1b[0m dev eth1 proto 211\n"
        ), "{text:?}");
        assert!(text.contains(
            "  \x1b[31m-\x1b[0m \x1b[31m10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211\x1b[0m\n"
        ));
        assert!(text.contains("  \x1b[35m!\x1b[0m \x1b[35m10.1.2.0/24"));
    }

    #[test]
    fn streaming_text_is_the_same_text() {
        let t = topology();
        let p = sample::plan(&t, false);
        let mut out = Vec::new();
        write_plan_text(&mut out, &p, &Style::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), TEXT);
    }

    fn plan_document(t: &Topology, p: &Plan) -> String {
        let fp = |i: usize| p.nodes[i].state.as_ref().unwrap().fingerprint.clone();
        [
            r#"{"format_version":2,"kind":"plan","topology":{"path":"t.toml","sha256":""#,
            &t.sha256,
            r#""},"protocol":211,"adopt":false,"take_over":false,"nodes":["#,
            r#"{"name":"worker-0","instance":"worker-0","status":"ok","in_sync":0,"fingerprint":""#,
            &fp(0),
            r#"","last_applied":null,"changes":["#,
            r#"{"action":"replace","dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":{"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":211,"metric":0},"cause":"topology","in_place":false},"#,
            r#"{"action":"add","dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":null,"cause":"topology","in_place":false},"#,
            r#"{"action":"delete","dst":"10.1.9.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0,"operation":true,"current":{"dst":"10.1.9.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0},"cause":"topology","in_place":false}"#,
            r#"],"warnings":[],"manager":{"name":"unknown","reason":"not read"},"persist":{"state":"off","path":null,"pending":false,"routes_added":[],"routes_removed":[],"old":null,"new":null}},"#,
            r#"{"name":"worker-1","instance":"worker-1","status":"ok","in_sync":0,"fingerprint":""#,
            &fp(1),
            r#"","last_applied":null,"changes":["#,
            r#"{"action":"adopt","dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":211,"metric":0,"operation":false,"current":{"dst":"10.1.0.0/24","gateway":"10.0.2.20","dev":"eth1","protocol":3,"metric":0},"cause":"topology","in_place":false},"#,
            r#"{"action":"conflict","dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":211,"metric":0,"operation":false,"current":{"dst":"10.1.2.0/24","gateway":"10.0.2.98","dev":"eth1","protocol":3,"metric":0},"cause":"topology","in_place":false}"#,
            r#"],"warnings":[],"manager":{"name":"unknown","reason":"not read"},"persist":{"state":"off","path":null,"pending":false,"routes_added":[],"routes_removed":[],"old":null,"new":null}},"#,
            r#"{"name":"worker-2","instance":"worker-2","status":"error","error":{"kind":"command_failed","message":"`lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running","command":"lxc exec worker-2 -- ip route","exit_status":1,"stderr":"Error: Instance is not running"},"changes":[],"warnings":[],"manager":{"name":"unknown","reason":"not read"}}"#,
            r#"],"skipped_nodes":["worker-3"],"#,
            r#""summary":{"add":1,"replace":1,"delete":1,"adopt":1,"conflict":1,"take_over":0,"drift":0,"operations":3,"nodes":3,"nodes_changed":1,"nodes_in_sync":0,"nodes_unreachable":1,"nodes_unpersistable":0,"nodes_misfit":0,"dropins":0,"pending":true},"held_back":[]}"#,
        ]
        .concat()
    }

    #[test]
    fn json_has_every_field_in_the_documented_order() {
        let t = topology();
        let p = sample::plan(&t, false);
        let doc = serde_json::to_string(&plan_json(&p, &t)).unwrap();
        assert_eq!(doc, plan_document(&t, &p));
    }

    #[test]
    fn nodes_rendered_in_parallel_make_the_same_document() {
        let t = topology();
        let mut p = sample::plan(&t, false);
        let many: Vec<NodePlan> = (0..40).flat_map(|_| p.nodes.clone()).collect();
        for nodes in [vec![], p.nodes.clone(), many] {
            p.nodes = nodes;
            for layout in [Layout::Compact, Layout::Pretty] {
                let mut one = Vec::new();
                crate::report::write_json(&mut one, &plan_json(&p, &t), layout).unwrap();
                for lanes in [1, 2, 3, 8] {
                    let mut parallel = Vec::new();
                    json::write_plan_json_from(&mut parallel, &p, &t, lanes, layout, 0).unwrap();
                    assert_eq!(
                        String::from_utf8(parallel).unwrap(),
                        String::from_utf8(one.clone()).unwrap(),
                        "{} nodes, {lanes} lanes, {layout:?}",
                        p.nodes.len()
                    );
                }
            }
        }
    }

    #[test]
    fn json_ends_with_a_newline() {
        let t = topology();
        let p = sample::plan(&t, false);
        let text = crate::report::to_json_text(&plan_json(&p, &t), Layout::Pretty).unwrap();
        assert!(text.starts_with("{\n  \"format_version\": 2,\n  \"kind\": \"plan\",\n"));
        assert!(text.ends_with("}\n") && !text.ends_with("}\n\n"));
        let text = crate::report::to_json_text(&plan_json(&p, &t), Layout::Compact).unwrap();
        assert!(text.starts_with("{\"format_version\":2,\"kind\":\"plan\","));
        assert!(text.ends_with("}\n") && text.lines().count() == 1);
    }

    #[test]
    fn saved_plan_is_the_plan_then_its_binding_and_reads_back() {
        let t = topology();
        let p = sample::plan(&t, false);
        let options = crate::core::plan::Options {
            adopt: false,
            take_over: false,
            only: vec!["worker-0".into(), "worker-1".into(), "worker-2".into()],
        };
        let doc = serde_json::to_string(&saved_plan_json(&p, &t, &options)).unwrap();
        let plan = plan_document(&t, &p);
        let binding = doc
            .strip_prefix(&plan[..plan.len() - 1])
            .expect("the plan document comes first");
        let fp = |i: usize| p.nodes[i].state.as_ref().unwrap().fingerprint.clone();
        assert_eq!(
            binding,
            format!(
                r#","saved":{{"routectl_version":"{}","transport":"lxc","topology_path":"t.toml","topology_sha256":"{}","topology_text":{},"adopt":false,"take_over":false,"nodes":["worker-0","worker-1","worker-2"],"fingerprints":[["worker-0","{}"],["worker-1","{}"],["worker-2",null]]}}}}"#,
                env!("CARGO_PKG_VERSION"),
                t.sha256,
                serde_json::to_string(&t.text).unwrap(),
                fp(0),
                fp(1)
            )
        );
        let read = crate::core::saved::parse(doc.as_bytes(), "plan.json").expect("a saved plan");
        assert_eq!(read.binding.fingerprints.len(), 3);
        assert_eq!(read.topology.sha256, t.sha256);
        assert_eq!(read.options.only, options.only);
    }

    #[test]
    fn what_apply_holds_back_is_named_with_why_and_the_flag() {
        use crate::core::guard::{HeldBack, Reason};
        let t = topology();
        let mut p = sample::plan(&t, false);
        p.held_back = vec![HeldBack {
            node: "worker-0".into(),
            deletions: 1,
            reasons: vec![Reason::MostOfPlan {
                deleted: 1,
                owned: 1,
            }],
        }];
        let text = plan_text(&p, &Style::default());
        assert!(
            text.contains(
                "held back: apply holds back these deletions (a mass deletion; \
                 --allow-mass-delete applies them):\n  worker-0: 1 deletion held back (the plan \
                 deletes 1 of the 1 routectl routes on the planned nodes)\nPlan: "
            ),
            "{text}"
        );
        let md = plan_markdown(&p, &t);
        assert!(
            md.contains(
                "**\n\n> **Held back:** apply leaves these deletions alone (a mass deletion; \
                 `--allow-mass-delete` applies them):\n> - `worker-0`: 1 deletion (the plan \
                 deletes 1 of the 1 routectl routes on the planned nodes)\n\n| node | status |"
            ),
            "{md}"
        );
        let doc = serde_json::to_value(plan_json(&p, &t)).unwrap();
        assert_eq!(
            doc["held_back"],
            serde_json::json!([{
                "node": "worker-0",
                "deletions": 1,
                "reasons": [{
                    "rule": "most_of_plan",
                    "message": "the plan deletes 1 of the 1 routectl routes on the planned nodes"
                }],
                "allowed_by": "--allow-mass-delete"
            }])
        );
    }

    #[test]
    fn markdown_has_a_table_and_a_section_per_node_with_something_to_show() {
        let t = topology();
        let md = plan_markdown(&sample::plan(&t, false), &t);
        assert_eq!(
            md,
            "### routectl plan for `t.toml`

**Plan: 1 to add, 1 to replace, 1 to delete, 1 adoptable with --adopt, 1 in conflict on 1 of 3 nodes; 1 node unreachable.**

| node | status |
|---|---|
| `worker-0` | 1 to add, 1 to replace, 1 to delete |
| `worker-1` | 1 adoptable, 1 conflict |
| `worker-2` | error: command_failed |

<details><summary><code>worker-0</code>: 1 to add, 1 to replace, 1 to delete</summary>

```diff
~ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
was: 10.1.1.0/24 via 10.0.2.99 dev eth1 proto 211
+ 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211
- 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211
```
</details>

<details><summary><code>worker-1</code>: 1 adoptable, 1 conflict</summary>

```diff
~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 (identical foreign route, proto boot: taken over only with --adopt)
! 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211  (blocked by foreign route: 10.1.2.0/24 via 10.0.2.98 dev eth1 proto boot; --take-over replaces it)
```
</details>

<details><summary><code>worker-2</code>: cannot be read</summary>

```
`lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running
```
</details>

> Limited with `--node`; not planned: worker-3

"
        );
    }

    /// The plan and apply documents carry each node's access and location when known.
    #[test]
    fn plan_and_apply_json_say_access_and_location() {
        use crate::core::access::decide;
        use crate::core::topology::Access;
        let t = topology();
        let mut plan = sample::plan(&t, false);
        plan.access.insert(
            "worker-0".into(),
            decide(Access::Host, Some("m1"), Some("m0")),
        );
        plan.access.insert(
            "worker-2".into(),
            decide(Access::Exec, Some("m2"), Some("m0")),
        );
        let mut doc = Vec::new();
        write_plan_json(&mut doc, &plan, &t, 1, Layout::Compact).unwrap();
        let doc = String::from_utf8(doc).unwrap();
        assert!(doc.contains(
            r#""instance":"worker-0","access":"exec","access_fallback":"elsewhere","location":"m1","status":"ok""#
        ));
        assert!(doc.contains(r#""instance":"worker-1","status":"ok""#));
        assert!(
            doc.contains(
                r#""instance":"worker-2","access":"exec","location":"m2","status":"error""#
            )
        );
        let r = crate::report::samples::sample_reports::applied();
        let apply = String::from_utf8(
            crate::report::to_compact_json(&crate::report::report_json(&r, &plan, &t, 9)).unwrap(),
        )
        .unwrap();
        assert!(apply.contains(
            r#"{"name":"worker-0","access":"exec","access_fallback":"elsewhere","location":"m1","status":"#
        ));
    }
}
