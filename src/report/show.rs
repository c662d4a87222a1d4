//! `routectl show`: text, the `show` JSON document, Markdown.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use super::style::Style;
use super::{AccessDoc, FORMAT_VERSION, Text, TopologyDoc};
use crate::core::access::NodeAccess;
use crate::core::persist::{Manager, PersistPlan};
use crate::core::show::{self, AddrCheck, CheckKind, Entry, Mark, NodeShow, NodeView, Report};
use crate::core::text::{code_block, count, escape, shown};
use crate::core::topology::Topology;
use crate::error::NodeErrorJson;

fn show_mark(mark: Mark, style: &Style) -> String {
    let name = format!("{:<15}", mark.name());
    match mark {
        Mark::Owned => style.green(&name),
        Mark::Foreign => style.yellow(&name),
        Mark::Kernel => style.dim(&name),
        Mark::DesiredMissing => style.red(&name),
    }
}

/// `worker-0`, `worker-0 (instance lab-worker-0)`, and where the node runs and how it was
/// reached when there is more to say than exec off a cluster (`cl-w1 (on m1, host access)`).
fn show_heading(n: &NodeShow, access: Option<&NodeAccess>) -> String {
    let mut notes = Vec::new();
    if n.instance != n.name {
        notes.push(format!("instance {}", n.instance));
    }
    notes.extend(access.and_then(NodeAccess::note));
    if notes.is_empty() {
        n.name.clone()
    } else {
        format!("{} ({})", n.name, notes.join(", "))
    }
}

/// `last applied: 2026-12-01T19:00:00Z by routectl 0.1.0, topology sha256 abcdef012345…, 3 routes`
/// (the record is the node's: its strings are shown escaped and capped).
fn last_applied_line(r: Option<&crate::core::record::LastApplied>) -> String {
    match r {
        None => {
            "last applied: no record (never applied by routectl since the node started)".to_string()
        }
        Some(r) => format!(
            "last applied: {} by routectl {}, topology sha256 {}…, {} route{}{}",
            shown(&r.applied_at),
            shown(&r.routectl_version),
            escape(r.topology_sha256.get(..12).unwrap_or(&r.topology_sha256)),
            r.routes.len(),
            if r.routes.len() == 1 { "" } else { "s" },
            if r.restarted {
                ", before the node restarted"
            } else {
                ""
            }
        ),
    }
}

/// `Show: 4 nodes; 6 owned, 1 foreign, 8 kernel, 3 desired-missing routes; 1 warning.`
pub fn show_summary_line(s: &show::Summary) -> String {
    let mut line = format!(
        "Show: {}; {} owned, {} foreign, {} kernel, {} desired-missing routes; {}",
        count(s.nodes, "node", "nodes"),
        s.owned,
        s.foreign,
        s.kernel,
        s.desired_missing,
        count(s.warnings, "warning", "warnings"),
    );
    if s.nodes_unreadable > 0 {
        let _ = write!(line, "; {} unreadable", s.nodes_unreadable);
    }
    line.push('.');
    line
}

/// The show report as text.
pub fn show_text(r: &Report, style: &Style) -> String {
    let mut out = String::new();
    for n in &r.nodes {
        match &n.state {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    style.bold(&show_heading(n, r.access.get(&n.name))),
                    style.red(&format!("error: {}", escape(&e.to_string())))
                );
            }
            Ok(v) => {
                let _ = writeln!(
                    out,
                    "{}:",
                    style.bold(&show_heading(n, r.access.get(&n.name)))
                );
                let _ = writeln!(
                    out,
                    "  {}",
                    style.dim(&last_applied_line(v.last_applied.as_ref()))
                );
                view_text(v, style, &mut out);
            }
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.dim(&format!(
                "(not shown, --node: {})",
                crate::core::text::list(&r.skipped, false)
            ))
        );
    }
    let _ = writeln!(out, "{}", style.bold(&show_summary_line(&r.summary())));
    out
}

fn view_text(v: &NodeView, style: &Style, out: &mut String) {
    if !matches!(v.manager, Manager::Nothing | Manager::Unknown(_)) {
        let _ = writeln!(
            out,
            "  {} {}",
            style.dim("managed by"),
            escape(&v.manager.describe())
        );
    }
    if let Ok(p) = &v.persist
        && let Some(path) = p.path()
    {
        let state = match p {
            PersistPlan::InSync { .. } => style.green("in sync"),
            PersistPlan::Write { old: None, .. } => style.red("missing (apply writes it)"),
            PersistPlan::Write { .. } => {
                style.yellow("differs from the routes (apply rewrites it)")
            }
            PersistPlan::Remove { .. } => {
                style.yellow("left from an earlier persist (apply removes it)")
            }
            PersistPlan::Off => String::new(),
        };
        let path = escape(path);
        let what = p.mechanism().map_or("persisted file", |m| m.describe());
        let _ = writeln!(out, "  {} {path}: {state}", style.dim(what));
    }
    for e in &v.entries {
        let note = e
            .note
            .as_ref()
            .map(|n| format!("  {}", style.dim(&format!("({})", escape(n)))))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} {}{note}", show_mark(e.mark, style), e.route);
    }
    if v.other_tables > 0 {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "({} in other tables not listed)",
                count(v.other_tables, "route", "routes")
            ))
        );
    }
    for c in v.checks.iter().filter(|c| c.ok) {
        let _ = writeln!(out, "  {} {}", style.green("ok:"), escape(&c.message));
    }
    for w in &v.warnings {
        let w = escape(w);
        let _ = writeln!(out, "  {}", style.yellow(&format!("warning: {w}")));
    }
}

/// One entry of a node's `routes`: the route's fields (`gateway`/`dev` left out when absent),
/// then its mark and note.
#[derive(Serialize)]
struct RouteDoc<'a> {
    #[serde(flatten)]
    route: super::RouteDoc<'a>,
    mark: &'static str,
    note: Option<&'a str>,
}

impl<'a> RouteDoc<'a> {
    fn of(e: &'a Entry) -> Self {
        RouteDoc {
            route: super::RouteDoc::of(&e.route),
            mark: e.mark.name(),
            note: e.note.as_deref(),
        }
    }
}

/// `{"interface", "address"}`: where an address was found.
#[derive(Serialize)]
struct FoundDoc<'a> {
    interface: &'a str,
    address: &'a str,
}

/// One entry of a node's `addresses`.
#[derive(Serialize)]
struct AddressDoc<'a> {
    check: CheckKind,
    address: IpAddr,
    interface: Option<&'a str>,
    pod_cidr: Option<Text<ipnet::IpNet>>,
    found: Vec<FoundDoc<'a>>,
    ok: bool,
    message: &'a str,
}

impl<'a> AddressDoc<'a> {
    fn of(c: &'a AddrCheck) -> Self {
        AddressDoc {
            check: c.kind,
            address: c.address,
            interface: c.interface.as_deref(),
            pod_cidr: c.pod_cidr.map(Text),
            found: c
                .found
                .iter()
                .map(|(interface, address)| FoundDoc { interface, address })
                .collect(),
            ok: c.ok,
            message: &c.message,
        }
    }
}

struct RoutesDoc<'a>(&'a [Entry]);

impl Serialize for RoutesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(RouteDoc::of))
    }
}

struct AddressesDoc<'a>(&'a [AddrCheck]);

impl Serialize for AddressesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(AddressDoc::of))
    }
}

/// A node's `persist`: its drop-in plan, or why it could not be made.
#[derive(Serialize)]
#[serde(untagged)]
enum ShowPersistDoc<'a> {
    Plan(super::plan::PersistDoc<'a>),
    Error {
        state: &'static str,
        reason: &'a str,
    },
}

/// One entry of `nodes`.
#[derive(Serialize)]
#[serde(untagged)]
enum NodeDoc<'a> {
    Ok {
        name: &'a str,
        instance: &'a str,
        #[serde(flatten)]
        access: AccessDoc<'a>,
        status: &'static str,
        routes: RoutesDoc<'a>,
        other_tables_routes: usize,
        last_applied: Option<super::plan::LastAppliedDoc<'a>>,
        addresses: AddressesDoc<'a>,
        warnings: &'a [String],
        manager: super::plan::ManagerDoc<'a>,
        persist: ShowPersistDoc<'a>,
    },
    Error {
        name: &'a str,
        instance: &'a str,
        #[serde(flatten)]
        access: AccessDoc<'a>,
        status: &'static str,
        error: NodeErrorJson,
    },
}

impl<'a> NodeDoc<'a> {
    fn of(n: &'a NodeShow, access: Option<&'a NodeAccess>) -> Self {
        let access = AccessDoc::of(access);
        match &n.state {
            Ok(v) => NodeDoc::Ok {
                name: &n.name,
                instance: &n.instance,
                access,
                status: "ok",
                routes: RoutesDoc(&v.entries),
                other_tables_routes: v.other_tables,
                last_applied: v.last_applied.as_ref().map(super::plan::LastAppliedDoc::of),
                addresses: AddressesDoc(&v.checks),
                warnings: &v.warnings,
                manager: super::plan::ManagerDoc::of(&v.manager),
                persist: match &v.persist {
                    Ok(p) => ShowPersistDoc::Plan(super::plan::PersistDoc::of(p)),
                    Err(why) => ShowPersistDoc::Error {
                        state: "error",
                        reason: why,
                    },
                },
            },
            Err(e) => NodeDoc::Error {
                name: &n.name,
                instance: &n.instance,
                access,
                status: "error",
                error: e.to_json(),
            },
        }
    }
}

struct NodesDoc<'a>(&'a Report);

impl Serialize for NodesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        s.collect_seq(
            r.nodes
                .iter()
                .map(|n| NodeDoc::of(n, r.access.get(&n.name))),
        )
    }
}

/// The `show` document (docs/commands.md).
#[derive(Serialize)]
pub struct ShowDoc<'a> {
    format_version: u32,
    kind: &'static str,
    topology: TopologyDoc<'a>,
    protocol: u8,
    nodes: NodesDoc<'a>,
    skipped_nodes: &'a [String],
    summary: show::Summary,
}

/// The show report as its JSON document.
pub fn show_json<'a>(r: &'a Report, topology: &'a Topology) -> ShowDoc<'a> {
    ShowDoc {
        format_version: FORMAT_VERSION,
        kind: "show",
        topology: TopologyDoc::of(topology),
        protocol: r.protocol,
        nodes: NodesDoc(r),
        skipped_nodes: &r.skipped,
        summary: r.summary(),
    }
}

/// The show report as Markdown (the text report in a code block, under a heading).
pub fn show_markdown(r: &Report, topology: &Topology) -> String {
    format!(
        "### routectl show for `{}`\n\n**{}**\n\n{}",
        topology.source,
        show_summary_line(&r.summary()),
        code_block("", &show_text(r, &Style::default()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::samples::fixtures::topology;
    use crate::report::samples::sample_reports;

    #[test]
    fn text_marks_every_route() {
        let r = sample_reports::shown();
        assert_eq!(
            show_text(&r, &Style::default()),
            r#"worker-0 (instance lab-worker-0):
  last applied: no record (never applied by routectl since the node started)
  kernel          10.0.2.0/24 dev eth1 proto kernel
  owned           10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
  desired-missing 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211  (plan adds it)
  (3 routes in other tables not listed)
  ok: internal_ip 10.0.2.20 is on eth1
  warning: pod gateway 10.1.0.1 is on no interface
worker-1: error: `lxc exec worker-1 -- ip route` exited with status 1: Error: Instance is not running
(not shown, --node: worker-2)
Show: 2 nodes; 1 owned, 0 foreign, 1 kernel, 1 desired-missing routes; 1 warning; 1 unreadable.
"#
        );
    }

    #[test]
    fn json_has_every_field_in_the_documented_order() {
        let t = topology();
        let r = sample_reports::shown();
        let expected: String = [
            r#"{"format_version":1,"kind":"show","topology":{"path":"t.toml","sha256":""#,
            &t.sha256,
            r#""},"protocol":211,"nodes":[{"name":"worker-0","instance":"lab-worker-0","status":"ok","routes":[{"dst":"10.0.2.0/24","dev":"eth1","protocol":2,"metric":0,"route":"10.0.2.0/24 dev eth1 proto kernel","mark":"kernel","note":null},{"dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":211,"metric":0,"route":"10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211","mark":"owned","note":null},{"dst":"10.1.2.0/24","gateway":"10.0.2.22","dev":"eth1","protocol":211,"metric":0,"route":"10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211","mark":"desired-missing","note":"plan adds it"}],"other_tables_routes":3,"last_applied":null,"addresses":[{"check":"internal_ip","address":"10.0.2.20","interface":"eth1","pod_cidr":null,"found":[{"interface":"eth1","address":"10.0.2.20/24"}],"ok":true,"message":"internal_ip 10.0.2.20 is on eth1"},{"check":"pod_gateway","address":"10.1.0.1","interface":null,"pod_cidr":"10.1.0.0/24","found":[],"ok":false,"message":"pod gateway 10.1.0.1 is on no interface"}],"warnings":["pod gateway 10.1.0.1 is on no interface"],"manager":{"name":"none"},"persist":{"state":"off","path":null,"pending":false,"routes_added":[],"routes_removed":[],"old":null,"new":null}},{"name":"worker-1","instance":"worker-1","status":"error","error":{"kind":"command_failed","message":"`lxc exec worker-1 -- ip route` exited with status 1: Error: Instance is not running","command":"lxc exec worker-1 -- ip route","exit_status":1,"stderr":"Error: Instance is not running"}}],"skipped_nodes":["worker-2"],"summary":{"nodes":2,"nodes_unreadable":1,"owned":1,"foreign":0,"kernel":1,"desired_missing":1,"warnings":1}}"#,
        ]
        .concat();
        assert_eq!(serde_json::to_string(&show_json(&r, &t)).unwrap(), expected);
    }

    #[test]
    fn markdown_wraps_the_text() {
        let t = topology();
        let r = sample_reports::shown();
        assert_eq!(
            show_markdown(&r, &t),
            r#"### routectl show for `t.toml`

**Show: 2 nodes; 1 owned, 0 foreign, 1 kernel, 1 desired-missing routes; 1 warning; 1 unreadable.**

```
worker-0 (instance lab-worker-0):
  last applied: no record (never applied by routectl since the node started)
  kernel          10.0.2.0/24 dev eth1 proto kernel
  owned           10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
  desired-missing 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211  (plan adds it)
  (3 routes in other tables not listed)
  ok: internal_ip 10.0.2.20 is on eth1
  warning: pod gateway 10.1.0.1 is on no interface
worker-1: error: `lxc exec worker-1 -- ip route` exited with status 1: Error: Instance is not running
(not shown, --node: worker-2)
Show: 2 nodes; 1 owned, 0 foreign, 1 kernel, 1 desired-missing routes; 1 warning; 1 unreadable.
```
"#
        );
    }

    /// On a cluster each node says where it runs and which access it got: in the heading of the
    /// text, and as `access`, `access_fallback` and `location` in the JSON document (absent for
    /// a node without them).
    #[test]
    fn access_and_location_when_known() {
        use crate::core::access::decide;
        use crate::core::topology::Access;
        let t = topology();
        let mut r = sample_reports::shown();
        r.access.insert(
            "worker-0".into(),
            decide(Access::Host, Some("m0"), Some("m0")),
        );
        r.access.insert(
            "worker-1".into(),
            decide(Access::Host, Some("m2"), Some("m0")),
        );
        let text = show_text(&r, &Style::default());
        assert!(text.starts_with("worker-0 (instance lab-worker-0, on m0, host access):\n"));
        assert!(text.contains("\nworker-1 (on m2, exec: not on this member): error: "));
        let json =
            String::from_utf8(crate::report::to_compact_json(&show_json(&r, &t)).unwrap()).unwrap();
        assert!(json.contains(
            r#""instance":"lab-worker-0","access":"host","location":"m0","status":"ok""#
        ));
        assert!(json.contains(
            r#""instance":"worker-1","access":"exec","access_fallback":"elsewhere","location":"m2","status":"error""#
        ));
        // Off a cluster with exec, the text says nothing new; the JSON says `exec`.
        r.access
            .insert("worker-0".into(), decide(Access::Exec, None, None));
        let text = show_text(&r, &Style::default());
        assert!(text.starts_with("worker-0 (instance lab-worker-0):\n"));
        let json =
            String::from_utf8(crate::report::to_compact_json(&show_json(&r, &t)).unwrap()).unwrap();
        assert!(json.contains(r#""instance":"lab-worker-0","access":"exec","status":"ok""#));
    }
}
