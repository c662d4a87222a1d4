//! The `plan` JSON document and the saved plan (`plan --out`): typed documents borrowing from
//! the plan, in the documented key order, rendered node by node (in parallel for big plans).

use std::io;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::super::{AccessDoc, Layout, PLAN_FORMAT_VERSION, Text, TopologyDoc};
use crate::core::change::Change;
use crate::core::guard::{self, HeldBack};
use crate::core::persist::{DropinRoute, Manager, PersistPlan};
use crate::core::plan::{NodePlan, Options, Plan};
use crate::core::record::LastApplied;
use crate::core::route::{AddrText, NetText, NextHop, Route, TABLE_MAIN, TYPE_UNICAST, type_name};
use crate::core::saved::Binding;
use crate::core::topology::Topology;
use crate::error::NodeErrorJson;

/// `manager`: what manages a node's route interface.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ManagerDoc<'a> {
    Networkd {
        name: &'static str,
        network_file: &'a str,
        netplan: bool,
        running: bool,
    },
    Unknown {
        name: &'static str,
        reason: &'a str,
    },
    Other {
        name: &'static str,
    },
}

impl<'a> ManagerDoc<'a> {
    pub(crate) fn of(m: &'a Manager) -> Self {
        match m {
            Manager::Networkd {
                network_file,
                netplan,
                running,
            } => ManagerDoc::Networkd {
                name: "systemd-networkd",
                network_file,
                netplan: *netplan,
                running: *running,
            },
            Manager::Unknown(why) => ManagerDoc::Unknown {
                name: "unknown",
                reason: why,
            },
            other => ManagerDoc::Other { name: other.name() },
        }
    }
}

/// `persist`: a node's drop-in plan: the state, the path, the `[Route]`s added and removed,
/// and both contents.
#[derive(Serialize)]
pub(crate) struct PersistDoc<'a> {
    state: &'static str,
    path: Option<&'a str>,
    pending: bool,
    routes_added: Vec<DropinRoute>,
    routes_removed: Vec<DropinRoute>,
    old: Option<&'a str>,
    new: Option<&'a str>,
}

impl<'a> PersistDoc<'a> {
    pub(crate) fn of(p: &'a PersistPlan) -> Self {
        let (routes_added, routes_removed) = p.route_changes();
        let (old, new) = p.contents();
        PersistDoc {
            state: p.state(),
            path: p.path(),
            pending: p.is_pending(),
            routes_added,
            routes_removed,
            old,
            new,
        }
    }
}

/// One entry of `changes` (and of apply's `remaining`): the route after the change with
/// `gateway`/`dev` always present (`null` when the route has none), then the attributes only
/// some routes have ([`extra_fields`]). Nothing is said twice: the route's `ip route` line and
/// the command apply runs follow from these fields (docs/json.md).
pub(crate) struct ChangeDoc<'a> {
    change: &'a Change,
    adopt: bool,
}

impl<'a> ChangeDoc<'a> {
    pub(crate) fn of(change: &'a Change, adopt: bool) -> Self {
        ChangeDoc { change, adopt }
    }
}

impl Serialize for ChangeDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.change;
        let r = &c.route;
        let mut st = s.serialize_struct("Change", 10)?;
        st.serialize_field("action", c.action.name())?;
        st.serialize_field("dst", &Text(&r.dst))?;
        st.serialize_field("gateway", &r.gateway().map(|g| Text(AddrText(g))))?;
        st.serialize_field("dev", &r.dev())?;
        st.serialize_field("protocol", &r.protocol)?;
        st.serialize_field("metric", &r.metric)?;
        extra_fields(&mut st, r)?;
        st.serialize_field("operation", &c.is_operation(self.adopt))?;
        st.serialize_field("current", &c.current.as_ref().map(CurrentDoc))?;
        st.serialize_field("cause", c.cause.name())?;
        st.serialize_field("in_place", &c.in_place)?;
        st.end()
    }
}

/// `current`: the route in the kernel now, `gateway` and `dev` left out when it has none.
pub(crate) struct CurrentDoc<'a>(&'a Route);

impl Serialize for CurrentDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut st = s.serialize_struct("Route", 5)?;
        st.serialize_field("dst", &Text(&r.dst))?;
        if let Some(g) = r.gateway() {
            st.serialize_field("gateway", &Text(AddrText(g)))?;
        }
        if let Some(dev) = r.dev() {
            st.serialize_field("dev", dev)?;
        }
        st.serialize_field("protocol", &r.protocol)?;
        st.serialize_field("metric", &r.metric)?;
        extra_fields(&mut st, r)?;
        st.end()
    }
}

/// The attributes of a route that routectl's own routes never have, each present only when
/// the route has it: `type` (not `unicast`), `table` (not 254, main), `tos` (not 0), `from`,
/// `nhid`, `nexthops` (a multipath route: `gateway` and `dev` are then `null` or absent) and
/// `flags` (as `ip route` prints them).
fn extra_fields<S: SerializeStruct>(st: &mut S, r: &Route) -> Result<(), S::Error> {
    if r.kind != TYPE_UNICAST {
        st.serialize_field("type", &type_name(r.kind))?;
    }
    if r.table != TABLE_MAIN {
        st.serialize_field("table", &r.table)?;
    }
    if r.tos != 0 {
        st.serialize_field("tos", &r.tos)?;
    }
    if let Some(from) = &r.from {
        st.serialize_field("from", &Text(NetText(*from)))?;
    }
    if let Some(id) = r.nhid {
        st.serialize_field("nhid", &id)?;
    }
    if let NextHop::Multipath(hops) = &r.next_hop {
        st.serialize_field("nexthops", hops)?;
    }
    if !r.flags.is_empty() {
        st.serialize_field("flags", &r.flags)?;
    }
    Ok(())
}

/// A list of changes, serialised one at a time.
pub(crate) struct ChangesDoc<'a> {
    pub(crate) changes: &'a [Change],
    pub(crate) adopt: bool,
}

impl Serialize for ChangesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.changes.iter().map(|c| ChangeDoc::of(c, self.adopt)))
    }
}

/// One entry of the plan's `nodes`.
#[derive(Serialize)]
#[serde(untagged)]
enum NodeDoc<'a> {
    Ok {
        name: &'a str,
        instance: &'a str,
        #[serde(flatten)]
        access: AccessDoc<'a>,
        status: &'static str,
        in_sync: usize,
        fingerprint: &'a str,
        last_applied: Option<LastAppliedDoc<'a>>,
        changes: ChangesDoc<'a>,
        warnings: &'a [String],
        manager: ManagerDoc<'a>,
        persist: PersistDoc<'a>,
    },
    Error {
        name: &'a str,
        instance: &'a str,
        #[serde(flatten)]
        access: AccessDoc<'a>,
        status: &'static str,
        error: NodeErrorJson,
        changes: [(); 0],
        warnings: [(); 0],
        manager: ManagerDoc<'a>,
    },
}

impl<'a> NodeDoc<'a> {
    fn of(n: &'a NodePlan, plan: &'a Plan) -> Self {
        let adopt = plan.adopt;
        let access = AccessDoc::of(plan.access.get(&n.name));
        match &n.state {
            Ok(d) => NodeDoc::Ok {
                name: &n.name,
                instance: &n.instance,
                access,
                status: "ok",
                in_sync: d.in_sync,
                fingerprint: &d.fingerprint,
                last_applied: n.last_applied.as_ref().map(LastAppliedDoc::of),
                changes: ChangesDoc {
                    changes: &d.changes,
                    adopt,
                },
                warnings: &d.warnings,
                manager: ManagerDoc::of(&n.manager),
                persist: PersistDoc::of(&n.persist),
            },
            Err(e) => NodeDoc::Error {
                name: &n.name,
                instance: &n.instance,
                access,
                status: "error",
                error: e.to_json(),
                changes: [],
                warnings: [],
                manager: ManagerDoc::of(&n.manager),
            },
        }
    }
}

/// `last_applied`: what routectl last applied on a node (`null` without a usable record).
#[derive(Serialize)]
pub(crate) struct LastAppliedDoc<'a> {
    applied_at: &'a str,
    applied_at_unix: u64,
    routectl_version: &'a str,
    topology_sha256: &'a str,
    protocol: u8,
    routes: &'a [String],
    restarted: bool,
}

impl<'a> LastAppliedDoc<'a> {
    pub(crate) fn of(r: &'a LastApplied) -> Self {
        LastAppliedDoc {
            applied_at: &r.applied_at,
            applied_at_unix: r.applied_at_unix,
            routectl_version: &r.routectl_version,
            topology_sha256: &r.topology_sha256,
            protocol: r.protocol,
            routes: &r.routes,
            restarted: r.restarted,
        }
    }
}

/// The plan's nodes, serialised one at a time (none at all for the frame of
/// [`write_plan_json`]).
struct NodesDoc<'a> {
    plan: &'a Plan,
    frame_only: bool,
}

impl Serialize for NodesDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let nodes = if self.frame_only {
            &[]
        } else {
            &self.plan.nodes[..]
        };
        s.collect_seq(nodes.iter().map(|n| NodeDoc::of(n, self.plan)))
    }
}

/// The plan's `summary`.
#[derive(Serialize)]
struct SummaryDoc {
    add: usize,
    replace: usize,
    delete: usize,
    adopt: usize,
    conflict: usize,
    take_over: usize,
    drift: usize,
    operations: usize,
    nodes: usize,
    nodes_changed: usize,
    nodes_in_sync: usize,
    nodes_unreachable: usize,
    nodes_unpersistable: usize,
    nodes_misfit: usize,
    dropins: usize,
    pending: bool,
}

/// One entry of `held_back`: a node whose deletions the mass-delete guard holds back.
#[derive(Serialize)]
pub struct HeldBackDoc {
    node: String,
    deletions: usize,
    reasons: Vec<ReasonDoc>,
    allowed_by: &'static str,
}

/// Why: the rule and its sentence.
#[derive(Serialize)]
struct ReasonDoc {
    rule: &'static str,
    message: String,
}

/// `held_back`, in plan order.
pub fn held_back_docs(held: &[HeldBack]) -> Vec<HeldBackDoc> {
    held.iter()
        .map(|h| HeldBackDoc {
            node: h.node.clone(),
            deletions: h.deletions,
            reasons: h
                .reasons
                .iter()
                .map(|r| ReasonDoc {
                    rule: r.rule(),
                    message: r.to_string(),
                })
                .collect(),
            allowed_by: guard::ALLOW,
        })
        .collect()
}

/// The `plan` document (docs/json.md), borrowing from the plan.
#[derive(Serialize)]
pub struct PlanDoc<'a> {
    format_version: u32,
    kind: &'static str,
    topology: TopologyDoc<'a>,
    protocol: u8,
    adopt: bool,
    take_over: bool,
    nodes: NodesDoc<'a>,
    skipped_nodes: &'a [String],
    summary: SummaryDoc,
    held_back: Vec<HeldBackDoc>,
}

/// The plan as its JSON document.
pub fn plan_json<'a>(plan: &'a Plan, topology: &'a Topology) -> PlanDoc<'a> {
    let s = plan.summary();
    PlanDoc {
        format_version: PLAN_FORMAT_VERSION,
        kind: "plan",
        topology: TopologyDoc::of(topology),
        protocol: plan.protocol,
        adopt: plan.adopt,
        take_over: plan.take_over,
        nodes: NodesDoc {
            plan,
            frame_only: false,
        },
        skipped_nodes: &plan.skipped,
        summary: SummaryDoc {
            add: s.add,
            replace: s.replace,
            delete: s.delete,
            adopt: s.adopt,
            conflict: s.conflict,
            take_over: s.take_over,
            drift: s.drift,
            operations: plan.operations(),
            nodes: s.nodes,
            nodes_changed: s.nodes_changed,
            nodes_in_sync: s.nodes_in_sync,
            nodes_unreachable: s.nodes_unreachable,
            nodes_unpersistable: s.nodes_unpersistable,
            nodes_misfit: s.nodes_misfit,
            dropins: s.dropins,
            pending: plan.has_pending(),
        },
        held_back: held_back_docs(&plan.held_back),
    }
}

/// Writes the plan's JSON document, exactly as [`write_json`](crate::report::write_json) of
/// [`plan_json`] would, with the nodes rendered `lanes` at a time: the document of a new
/// cluster is some 200 bytes per change (compact), and one core turning a million changes into
/// text would take longer than planning them. At most `lanes` (and no more than the machine's
/// cores) times four nodes are held rendered at a time, and written in order (more in flight
/// only costs page faults: measured).
pub fn write_plan_json<W: io::Write + ?Sized>(
    w: &mut W,
    plan: &Plan,
    topology: &Topology,
    lanes: usize,
    layout: Layout,
) -> io::Result<()> {
    // Below some 100,000 changes the document takes a few tens of milliseconds at most: not
    // worth the threads.
    write_plan_json_from(w, plan, topology, lanes, layout, 100_000)
}

/// Where the nodes go in a document of each layout: the empty `nodes` list to cut the frame
/// at (its last byte, `]`, starts the tail), what comes before the first node and between
/// nodes, and what comes after the last one.
struct Cut {
    key: &'static [u8],
    first: &'static [u8],
    between: &'static [u8],
    last: &'static [u8],
}

const PRETTY_CUT: Cut = Cut {
    key: b"\n  \"nodes\": []",
    first: b"\n    ",
    between: b",\n    ",
    last: b"\n  ",
};

const COMPACT_CUT: Cut = Cut {
    key: b"\"nodes\":[]",
    first: b"",
    between: b",",
    last: b"",
};

/// [`write_plan_json`], in parallel from `min_changes` changes on.
pub(super) fn write_plan_json_from<W: io::Write + ?Sized>(
    w: &mut W,
    plan: &Plan,
    topology: &Topology,
    lanes: usize,
    layout: Layout,
    min_changes: usize,
) -> io::Result<()> {
    // Rendering is CPU work: more lanes than cores only hold more nodes in memory.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let lanes = lanes.min(cores);
    let changes: usize = plan.nodes.iter().map(|n| n.changes().len()).sum();
    if plan.nodes.is_empty() || lanes <= 1 || changes < min_changes {
        return crate::report::write_json(w, &plan_json(plan, topology), layout);
    }
    let cut = match layout {
        Layout::Pretty => PRETTY_CUT,
        Layout::Compact => COMPACT_CUT,
    };
    // The document around the nodes: the same type with no nodes, cut where they go. The cut
    // is unambiguous: the frame's keys are fixed, and the only `nodes` key whose value is a
    // list is this one (a line break or an unescaped quote cannot occur inside a string).
    let mut frame = Vec::new();
    let mut doc = plan_json(plan, topology);
    doc.nodes.frame_only = true;
    crate::report::write_json(&mut frame, &doc, layout)?;
    let at = frame
        .windows(cut.key.len())
        .position(|k| k == cut.key)
        .ok_or_else(|| io::Error::other("the plan document has no `nodes` key"))?;
    let (head, tail) = frame.split_at(at + cut.key.len() - 1);
    w.write_all(head)?;
    let window = lanes.saturating_mul(4);
    let mut first = true;
    for chunk in plan.nodes.chunks(window) {
        let rendered = crate::parallel::map(chunk, lanes, |n| -> io::Result<Vec<u8>> {
            // About 200 bytes per change compact, 300 pretty: one allocation, not a dozen
            // doublings.
            let mut buf = Vec::with_capacity(320 * n.changes().len() + 1024);
            crate::report::write_fragment(&mut buf, &NodeDoc::of(n, plan), 2, layout)?;
            Ok(buf)
        });
        for node in rendered {
            w.write_all(if first { cut.first } else { cut.between })?;
            first = false;
            w.write_all(&node?)?;
        }
    }
    w.write_all(cut.last)?;
    // `]` and everything after the nodes.
    w.write_all(tail)
}

/// The saved plan (`plan --out`): the plan document, then `saved` (what `apply FILE` checks;
/// read by `core::saved`).
#[derive(Serialize)]
pub struct SavedPlanDoc<'a> {
    #[serde(flatten)]
    plan: PlanDoc<'a>,
    saved: Binding,
}

/// The saved plan document.
pub fn saved_plan_json<'a>(
    plan: &'a Plan,
    topology: &'a Topology,
    options: &Options,
) -> SavedPlanDoc<'a> {
    SavedPlanDoc {
        plan: plan_json(plan, topology),
        saved: Binding {
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
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::route::{Destination, Hop};

    #[test]
    fn a_route_routectl_never_writes_keeps_every_attribute_as_a_field() {
        let hop = |gw: &str, dev: &str| Hop {
            gateway: Some(gw.parse().unwrap()),
            dev: Some(dev.to_string()),
        };
        let route = Route {
            dst: Destination::Net("10.1.9.0/24".parse().unwrap()),
            table: 100,
            kind: 6,
            protocol: 211,
            metric: 5,
            tos: 4,
            from: None,
            next_hop: NextHop::Multipath(vec![hop("10.0.2.21", "eth1"), hop("10.0.2.22", "eth2")]),
            nhid: Some(7),
            flags: vec!["linkdown".to_string()],
        };
        let doc = serde_json::to_string(&CurrentDoc(&route)).unwrap();
        assert_eq!(
            doc,
            r#"{"dst":"10.1.9.0/24","protocol":211,"metric":5,"type":"blackhole","table":100,"tos":4,"nhid":7,"nexthops":[{"gateway":"10.0.2.21","dev":"eth1"},{"gateway":"10.0.2.22","dev":"eth2"}],"flags":["linkdown"]}"#
        );
        // routectl's own route: the five fields and nothing else.
        let own = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        assert_eq!(
            serde_json::to_string(&CurrentDoc(&own)).unwrap(),
            r#"{"dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":211,"metric":0}"#
        );
    }
}
