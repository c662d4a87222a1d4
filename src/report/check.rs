//! `routectl check`: the matrix as text, the `check` JSON document, Markdown.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use super::style::Style;
use super::{FORMAT_VERSION, TopologyDoc};
use crate::core::check::{self, Asymmetry, Report};
use crate::core::route::Family;
use crate::core::topology::Topology;
use crate::error::NodeErrorJson;

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
    fn of(r: &Report, family: Family, from: &str, to: &str) -> Cell {
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
pub fn check_summary_line(r: &Report) -> String {
    let s = r.summary();
    if s.paths == 0 {
        return "Check: nothing to check: fewer than two nodes with a pod_cidr of the same family."
            .to_string();
    }
    let mut line = format!(
        "Check: {} of {} pass",
        s.passed,
        crate::core::text::count(s.paths, "path", "paths")
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
            "; {} unreadable",
            crate::core::text::nodes(s.nodes_unreadable)
        );
    }
    line.push('.');
    line
}

/// Every failed path with its hints, the asymmetric paths and the unreadable nodes.
fn check_details(r: &Report, style: &Style) -> String {
    let mut out = String::new();
    for p in &r.paths {
        if let check::Outcome::Fail { attempts, detail } = &p.outcome {
            let q = &p.probe;
            let _ = writeln!(
                out,
                "{} {} -> {} ({}, {} -> {}; {attempts} tr{}, one packet each): {}",
                style.red("failed:"),
                q.from,
                q.to,
                q.family,
                q.source,
                q.destination,
                if *attempts == 1 { "y" } else { "ies" },
                crate::core::text::escape(detail)
            );
            for h in &p.hints {
                let h = crate::core::text::escape(h);
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
            style.red(&format!(
                "error: {}",
                crate::core::text::escape(&e.to_string())
            ))
        );
    }
    out
}

/// The check report as text: a matrix per family, then every failure with its hints.
pub fn check_text(r: &Report, style: &Style) -> String {
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

/// One entry of `families`: the nodes and the matrix (rows are sources).
#[derive(Serialize)]
struct FamilyDoc<'a> {
    family: Family,
    nodes: &'a [String],
    matrix: MatrixDoc<'a>,
}

struct MatrixDoc<'a> {
    report: &'a Report,
    family: Family,
    nodes: &'a [String],
}

impl Serialize for MatrixDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.nodes.iter().map(|from| RowDoc { matrix: self, from }))
    }
}

struct RowDoc<'a> {
    matrix: &'a MatrixDoc<'a>,
    from: &'a str,
}

impl Serialize for RowDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.matrix;
        s.collect_seq(
            m.nodes
                .iter()
                .map(|to| Cell::of(m.report, m.family, self.from, to).json()),
        )
    }
}

/// One path pinged: an entry of a check's `paths` (with its hints) and of a canary stage's
/// (without).
#[derive(Serialize)]
pub(super) struct PathDoc<'a> {
    family: Family,
    from: &'a str,
    to: &'a str,
    source: IpAddr,
    destination: IpAddr,
    status: &'static str,
    attempts: Option<u32>,
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hints: Option<&'a [String]>,
}

impl<'a> PathDoc<'a> {
    /// The path `from` -> `to` of `family`, pinged from `source` to `destination`.
    pub(super) fn new(
        family: Family,
        from: &'a str,
        to: &'a str,
        source: IpAddr,
        destination: IpAddr,
        outcome: &'a check::Outcome,
        hints: Option<&'a [String]>,
    ) -> Self {
        let (attempts, detail) = match outcome {
            check::Outcome::Pass { attempts } => (Some(*attempts), None),
            check::Outcome::Fail { attempts, detail } => (Some(*attempts), Some(detail.as_str())),
            check::Outcome::NotRun { reason } => (None, Some(reason.as_str())),
        };
        PathDoc {
            family,
            from,
            to,
            source,
            destination,
            status: outcome.name(),
            attempts,
            detail,
            hints,
        }
    }

    fn of(p: &'a check::PathResult) -> Self {
        let q = &p.probe;
        let hints = Some(p.hints.as_slice());
        PathDoc::new(
            q.family,
            &q.from,
            &q.to,
            q.source,
            q.destination,
            &p.outcome,
            hints,
        )
    }
}

/// One entry of `errors`: a node that could not be read.
#[derive(Serialize)]
struct ErrorDoc<'a> {
    node: &'a str,
    error: NodeErrorJson,
}

struct FamiliesDoc<'a>(&'a Report);

impl Serialize for FamiliesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.families.iter().map(|(family, nodes)| FamilyDoc {
            family: *family,
            nodes,
            matrix: MatrixDoc {
                report: self.0,
                family: *family,
                nodes,
            },
        }))
    }
}

struct PathsDoc<'a>(&'a [check::PathResult]);

impl Serialize for PathsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(PathDoc::of))
    }
}

struct ErrorsDoc<'a>(&'a [(String, crate::error::NodeError)]);

impl Serialize for ErrorsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(node, e)| ErrorDoc {
            node,
            error: e.to_json(),
        }))
    }
}

/// The `check` document (docs/commands.md).
#[derive(Serialize)]
pub struct CheckDoc<'a> {
    format_version: u32,
    kind: &'static str,
    topology: TopologyDoc<'a>,
    families: FamiliesDoc<'a>,
    paths: PathsDoc<'a>,
    asymmetric: &'a [Asymmetry],
    errors: ErrorsDoc<'a>,
    summary: check::Summary,
}

/// The check report as its JSON document.
pub fn check_json<'a>(r: &'a Report, topology: &'a Topology) -> CheckDoc<'a> {
    CheckDoc {
        format_version: FORMAT_VERSION,
        kind: "check",
        topology: TopologyDoc::of(topology),
        families: FamiliesDoc(r),
        paths: PathsDoc(&r.paths),
        asymmetric: &r.asymmetric,
        errors: ErrorsDoc(&r.unreadable),
        summary: r.summary(),
    }
}

/// The check report as Markdown: a table per family, then the failures.
pub fn check_markdown(r: &Report, topology: &Topology) -> String {
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
        out.push_str(&crate::core::text::code_block("", &details));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::samples::fixtures::topology;
    use crate::report::samples::sample_reports;

    #[test]
    fn text_has_the_matrix_and_every_failure() {
        let r = sample_reports::checked();
        assert_eq!(
            check_text(&r, &Style::default()),
            r#"IPv4: ping from each row's pod gateway to each column's
            worker-0  worker-1  worker-2
  worker-0  -         ok        FAIL
  worker-1  ok        -         .
  worker-2  skip      .         -
failed: worker-0 -> worker-2 (IPv4, 10.1.0.1 -> 10.1.2.1; 2 tries, one packet each): 100% packet loss
  hint: worker-2 has no route to 10.1.0.0/24
worker-2: error: `lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running (paths from it were not pinged)
Check: 2 of 4 paths pass, 1 failed, 1 not run; 1 node unreadable.
"#
        );
    }

    #[test]
    fn json_has_every_field_in_the_documented_order() {
        let t = topology();
        let r = sample_reports::checked();
        let expected: String = [
            r#"{"format_version":1,"kind":"check","topology":{"path":"t.toml","sha256":""#,
            &t.sha256,
            r#""},"families":[{"family":"ipv4","nodes":["worker-0","worker-1","worker-2"],"matrix":[["self","pass","fail"],["pass","self","not_probed"],["not_run","not_probed","self"]]}],"paths":[{"family":"ipv4","from":"worker-0","to":"worker-1","source":"10.1.0.1","destination":"10.1.1.1","status":"pass","attempts":1,"detail":null,"hints":[]},{"family":"ipv4","from":"worker-0","to":"worker-2","source":"10.1.0.1","destination":"10.1.2.1","status":"fail","attempts":2,"detail":"100% packet loss","hints":["worker-2 has no route to 10.1.0.0/24"]},{"family":"ipv4","from":"worker-1","to":"worker-0","source":"10.1.1.1","destination":"10.1.0.1","status":"pass","attempts":2,"detail":null,"hints":[]},{"family":"ipv4","from":"worker-2","to":"worker-0","source":"10.1.2.1","destination":"10.1.0.1","status":"not_run","attempts":null,"detail":"worker-2 could not be read","hints":[]}],"asymmetric":[],"errors":[{"node":"worker-2","error":{"kind":"command_failed","message":"`lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running","command":"lxc exec worker-2 -- ip route","exit_status":1,"stderr":"Error: Instance is not running"}}],"summary":{"paths":4,"passed":2,"failed":1,"not_run":1,"nodes_unreadable":1,"success":false}}"#,
        ]
        .concat();
        assert_eq!(
            serde_json::to_string(&check_json(&r, &t)).unwrap(),
            expected
        );
    }

    #[test]
    fn markdown_has_a_table_per_family() {
        let t = topology();
        let r = sample_reports::checked();
        assert_eq!(
            check_markdown(&r, &t),
            r#"### routectl check for `t.toml`

**Check: 2 of 4 paths pass, 1 failed, 1 not run; 1 node unreadable.**

IPv4 (row pings column):

| from \ to | `worker-0` | `worker-1` | `worker-2` |
|---|---|---|---|
| `worker-0` | - | ✅ | ❌ |
| `worker-1` | ✅ | - | . |
| `worker-2` | ⏭ | . | - |

```
failed: worker-0 -> worker-2 (IPv4, 10.1.0.1 -> 10.1.2.1; 2 tries, one packet each): 100% packet loss
  hint: worker-2 has no route to 10.1.0.0/24
worker-2: error: `lxc exec worker-2 -- ip route` exited with status 1: Error: Instance is not running (paths from it were not pinged)
```
"#
        );
    }
}
