//! Property tests of plan + apply against an in-memory kernel model (tests/it/support/model.rs):
//! random topologies (1-8 nodes, IPv4 and IPv6, nodes without pod CIDRs, per-node interfaces, several
//! protocols and metrics) and random starting route tables (foreign routes of many protocols,
//! owned routes with wrong gateways, metrics, types or TOS, owned routes to undeclared CIDRs,
//! multipath, blackholes, IPv6, other tables, default routes carrying routectl's protocol),
//! with nodes that cannot be read in every way `lxc exec` fails.
//!
//! Properties: apply converges (a re-plan has no operation, and the same conflicts as before);
//! a second apply sends nothing; foreign routes are never changed (only adopted, and only with
//! --adopt); nothing outside table main changes; what is deleted was owned and not desired; an
//! unreadable or unselected node gets no command during apply and its routes stay; every
//! desired route is in place unless a foreign route to its destination blocks it.
//!
//! `model_matches_the_kernel` runs scripted batches against a real network namespace and the
//! model and compares stdout, stderr and exit status, so the model's semantics are the kernel's.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::model::{Call, KRoute, MAIN, Model, Node, Reach};
use ipnet::IpNet;
use proptest::prelude::*;
use routectl::core::change::Action;
use routectl::core::plan::{Options, Plan};
use routectl::core::topology::{self, Topology};
use routectl::node::apply::{self, Outcome};
use routectl::node::observe;

const IFACES: [&str; 3] = ["eth1", "eth2", "ens3"];
const FOREIGN: [u8; 9] = [2, 3, 4, 186, 17, 80, 99, 12, 0];

#[derive(Debug, Clone)]
struct NodeSpec {
    /// 1 = IPv4, 2 = IPv6, 3 = both.
    families: u8,
    pod4: bool,
    pod6: bool,
    iface: Option<usize>,
    reach: Reach,
}

#[derive(Debug, Clone)]
struct Seed {
    v6: bool,
    dst: u8,
    proto: u8,
    gw: u8,
    dev: u8,
    metric: u8,
    table: u8,
    kind: u8,
    tos: bool,
    multipath: bool,
    x: u8,
}

#[derive(Debug, Clone)]
struct Case {
    protocol: u8,
    metric: Option<u32>,
    cluster_range: bool,
    nodes: Vec<NodeSpec>,
    seeds: Vec<Vec<Seed>>,
    adopt: bool,
    only: Option<Vec<bool>>,
}

fn reach() -> impl Strategy<Value = Reach> {
    prop_oneof![
        16 => Just(Reach::Up),
        1 => Just(Reach::NotFound),
        1 => Just(Reach::Stopped),
        1 => Just(Reach::Empty),
        2 => (0usize..5).prop_map(Reach::EmptyFor),
        1 => Just(Reach::Garbage),
        1 => Just(Reach::OldIproute),
        1 => Just(Reach::Timeout),
        2 => Just(Reach::WriteTimesOut),
    ]
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop_oneof![3 => Just(1u8), 1 => Just(2u8), 2 => Just(3u8)],
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.3, 0usize..IFACES.len()),
        reach(),
    )
        .prop_map(|(families, pod4, pod6, iface, reach)| NodeSpec {
            families,
            pod4,
            pod6,
            iface,
            reach,
        })
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        (any::<bool>(), 0u8..10, 0u8..14, 0u8..4, 0u8..4),
        (
            0u8..5,
            0u8..10,
            0u8..10,
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        ),
        0u8..8,
    )
        .prop_map(
            |((v6, dst, proto, gw, dev), (metric, table, kind, tos, multipath), x)| Seed {
                v6,
                dst,
                proto,
                gw,
                dev,
                metric,
                table,
                kind,
                tos,
                multipath,
                x,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![4 => Just(211u8), 1 => Just(200u8), 1 => Just(77u8), 1 => Just(254u8)],
        prop_oneof![Just(None), Just(Some(0u32)), Just(Some(5)), Just(Some(100))],
        any::<bool>(),
        prop::collection::vec(node_spec(), 1..=8),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_flat_map(|(protocol, metric, cluster_range, nodes, adopt, subset)| {
            let n = nodes.len();
            (
                Just((protocol, metric, cluster_range, nodes, adopt)),
                prop::collection::vec(prop::collection::vec(seed(), 0..14), n),
                if subset {
                    prop::option::of(prop::collection::vec(any::<bool>(), n)).boxed()
                } else {
                    Just(None).boxed()
                },
            )
        })
        .prop_map(
            |((protocol, metric, cluster_range, nodes, adopt), seeds, only)| Case {
                protocol,
                metric,
                cluster_range,
                nodes,
                seeds,
                adopt,
                only,
            },
        )
}

fn v4(i: usize) -> String {
    format!("10.0.2.{}", 10 + i)
}

fn v6(i: usize) -> String {
    format!("fd00::{}", 10 + i)
}

fn pod4(i: usize) -> String {
    format!("10.1.{i}.0/24")
}

fn pod6(i: usize) -> String {
    format!("fd01:0:{i}::/64")
}

fn iface(spec: &NodeSpec) -> &'static str {
    spec.iface.map(|k| IFACES[k]).unwrap_or("eth1")
}

fn topology_text(c: &Case) -> String {
    let mut s = format!(
        "[cluster]\ninterface = \"eth1\"\nprotocol = {}\n",
        c.protocol
    );
    if let Some(m) = c.metric {
        s.push_str(&format!("metric = {m}\n"));
    }
    if c.cluster_range {
        s.push_str("pod_cidr = [\"10.1.0.0/16\", \"fd01::/32\"]\n");
    }
    for (i, n) in c.nodes.iter().enumerate() {
        let mut ips = Vec::new();
        let mut pods = Vec::new();
        if n.families & 1 != 0 {
            ips.push(v4(i));
            if n.pod4 {
                pods.push(pod4(i));
            }
        }
        if n.families & 2 != 0 {
            ips.push(v6(i));
            if n.pod6 {
                pods.push(pod6(i));
            }
        }
        s.push_str(&format!(
            "\n[[nodes]]\nname = \"node-{i}\"\ninternal_ip = {ips:?}\n"
        ));
        if !pods.is_empty() {
            s.push_str(&format!("pod_cidr = {pods:?}\n"));
        }
        if let Some(k) = n.iface {
            s.push_str(&format!("interface = \"{}\"\n", IFACES[k]));
        }
    }
    s
}

/// The routes node `i` should have, computed here independently of routectl.
/// Every other node's pod CIDRs, of the families this node has an internal IP of.
fn desired(c: &Case, i: usize) -> Vec<KRoute> {
    let dev = iface(&c.nodes[i]);
    let metric = c.metric.unwrap_or(0);
    let mine = c.nodes[i].families;
    let mut out = Vec::new();
    for (j, n) in c.nodes.iter().enumerate() {
        if j == i {
            continue;
        }
        if mine & n.families & 1 != 0 && n.pod4 {
            out.push(KRoute::via(&pod4(j), &v4(j), dev, c.protocol, metric));
        }
        if mine & n.families & 2 != 0 && n.pod6 {
            out.push(KRoute::via(&pod6(j), &v6(j), dev, c.protocol, metric));
        }
    }
    out
}

/// A node's starting table: connected, local and default routes, then the seeds.
fn starting_node(c: &Case, i: usize) -> Node {
    let spec = &c.nodes[i];
    let dev = iface(spec);
    let mut connected4 = KRoute::via("10.0.2.0/24", "10.0.2.1", dev, 2, 0);
    connected4.gateway = None;
    connected4.scope = 253;
    connected4.prefsrc = Some(v4(i).parse().expect("v4"));
    let mut local4 = connected4.clone();
    local4.dst = format!("{}/32", v4(i)).parse().expect("v4");
    local4.kind = 2;
    local4.table = crate::support::model::LOCAL;
    local4.scope = 254;
    let mut connected6 = KRoute::via("fd00::/64", "fd00::1", dev, 2, 256);
    connected6.gateway = None;
    let mut link6 = connected6.clone();
    link6.dst = "fe80::/64".parse().expect("fe80");
    let mut local6 = connected6.clone();
    local6.dst = "::1/128".parse().expect("::1");
    local6.kind = 2;
    local6.table = crate::support::model::LOCAL;
    local6.metric = 0;
    local6.dev = Some("lo".into());
    // The kernel's local route of the node's own IPv6 address (as for IPv4 above).
    let mut own6 = local6.clone();
    own6.dst = format!("{}/128", v6(i)).parse().expect("v6");
    own6.dev = Some(dev.into());
    let routes = vec![
        KRoute::via("0.0.0.0/0", "10.0.2.1", dev, 3, 0),
        connected4,
        local4,
        KRoute::via("::/0", "fd00::1", dev, 3, 1024),
        connected6,
        link6,
        local6,
        own6,
    ];
    let mut node = Node::new(&["lo", "eth0", dev], routes);
    node.reach = spec.reach;
    let want = desired(c, i);
    for s in &c.seeds[i] {
        if let Some(r) = seed_route(c, i, s, &want) {
            node.add_if_free(r);
        }
    }
    node
}

fn seed_route(c: &Case, i: usize, s: &Seed, want: &[KRoute]) -> Option<KRoute> {
    let dev = iface(&c.nodes[i]);
    let x = usize::from(s.x);
    let other = (i + 1 + x) % c.nodes.len().max(1);
    // Destination (and the gateway that would be right for it).
    let (dst, right_gw): (String, String) = match s.dst {
        0..=3 if !want.is_empty() => {
            let w = &want[usize::from(s.dst) % want.len()];
            (w.dst.to_string(), w.gateway?.to_string())
        }
        4 if s.v6 => (format!("fd01:0:{}::/64", 100 + x), v6(other)),
        0..=4 => (format!("10.1.{}.0/24", 100 + x), v4(other)),
        5 if s.v6 => (format!("fd99:{x}::/64"), v6(other)),
        5 => (format!("192.168.{x}.0/24"), v4(other)),
        6 if s.v6 => ("::/0".into(), "fd00::1".into()),
        6 => ("0.0.0.0/0".into(), "10.0.2.1".into()),
        7 if s.v6 => (format!("fd01:0:{other}::7/128"), v6(other)),
        7 => (format!("10.1.{other}.7/32"), v4(other)),
        _ if s.v6 => (pod6(i), v6(other)),
        _ => (pod4(i), v4(other)),
    };
    let dst: IpNet = dst.parse().ok()?;
    let is6 = matches!(dst, IpNet::V6(_));
    let host = |n: usize| if is6 { v6(n) } else { v4(n) };
    let protocol = match s.proto {
        0..=4 => c.protocol,
        5 => c.protocol.wrapping_add(1),
        k => FOREIGN[usize::from(k - 6) % FOREIGN.len()],
    };
    let gw = match s.gw {
        0 => Some(right_gw),
        1 => Some(host((other + 1) % 8)),
        2 => Some(if is6 {
            "fd00::99".into()
        } else {
            "10.0.2.99".into()
        }),
        _ => None,
    };
    let metric = match s.metric {
        0 => c.metric.unwrap_or(0),
        1 => 0,
        2 => 5,
        3 => 100,
        _ => 1024,
    };
    let table = match s.table {
        0..=5 => MAIN,
        6 => 100,
        7 => 253,
        8 => 1000,
        _ => crate::support::model::LOCAL,
    };
    let kind = match s.kind {
        0..=6 => 1,
        7 => 6,
        8 => 7,
        _ => 8,
    };
    let mut r = KRoute::via(
        &dst.to_string(),
        if is6 { "fd00::1" } else { "10.0.2.1" },
        if s.dev == 0 { "eth0" } else { dev },
        protocol,
        metric,
    );
    r.table = table;
    r.gateway = gw.and_then(|g| g.parse().ok());
    if kind != 1 {
        r.kind = kind;
        r.gateway = None;
        r.dev = if is6 { Some("lo".into()) } else { None };
    } else if s.multipath {
        r.nexthops = vec![
            (host(other).parse().ok()?, dev.to_string()),
            (host((other + 2) % 8).parse().ok()?, dev.to_string()),
        ];
        r.gateway = None;
        r.dev = None;
    } else if r.gateway.is_none() && !is6 {
        r.scope = 253;
    }
    if s.tos && !is6 {
        r.tos = 0x10;
    }
    Some(r)
}

fn owned(r: &KRoute, protocol: u8) -> bool {
    r.table == MAIN && r.protocol == protocol && r.dst.prefix_len() != 0
}

fn sorted(mut v: Vec<KRoute>) -> Vec<KRoute> {
    v.sort();
    v
}

fn selected(c: &Case, i: usize) -> bool {
    c.only.as_ref().is_none_or(|o| o[i] || o.iter().all(|b| !b))
}

fn options(c: &Case) -> Options {
    let only = match &c.only {
        Some(o) if o.iter().any(|b| *b) => (0..c.nodes.len())
            .filter(|i| o[*i])
            .map(|i| format!("node-{i}"))
            .collect(),
        _ => Vec::new(),
    };
    Options {
        adopt: c.adopt,
        only,
        ..Options::default()
    }
}

fn conflicts(plan: &Plan, name: &str) -> Vec<String> {
    let np = plan.nodes.iter().find(|n| n.name == name);
    let mut v: Vec<String> = np
        .map(|n| {
            n.changes()
                .iter()
                .filter(|c| c.action == Action::Conflict)
                .map(|c| format!("{} / {:?}", c.route, c.current))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn writes(calls: &[Call], instance: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.instance == instance && c.is_write())
        .count()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let text = topology_text(c);
    let t: Topology = topology::parse(text.as_bytes(), "prop.toml", None)
        .map_err(|p| TestCaseError::fail(format!("topology refused: {p}\n{text}")))?;
    let nodes: BTreeMap<String, Node> = (0..c.nodes.len())
        .map(|i| (format!("node-{i}"), starting_node(c, i)))
        .collect();
    let before: BTreeMap<String, Vec<KRoute>> = nodes
        .iter()
        .map(|(k, n)| (k.clone(), n.routes.clone()))
        .collect();
    let m = Model::new(nodes);
    let opts = options(c);
    let p = c.protocol;

    let plan = Plan::compute(&t, &opts, 1, |n| observe::read_node(&m, n));
    let plan_calls = m.calls();
    prop_assert!(
        plan_calls.iter().all(|call| !call.is_write()),
        "planning wrote: {plan_calls:?}"
    );
    for (i, spec) in c.nodes.iter().enumerate() {
        let name = format!("node-{i}");
        if let Some(np) = plan.nodes.iter().find(|n| n.name == name) {
            prop_assert!(selected(c, i));
            prop_assert_eq!(
                np.state.is_ok(),
                spec.reach.readable(),
                "{} ({:?}): {:?}",
                name,
                spec.reach,
                np.state.as_ref().err()
            );
        } else {
            prop_assert!(!selected(c, i));
        }
    }

    m.clear_calls();
    let report = apply::apply(&plan, &t, &m, 1);
    let apply_calls = m.calls();

    for (i, spec) in c.nodes.iter().enumerate() {
        let name = format!("node-{i}");
        let was = &before[&name];
        let now = m.routes(&name);
        if !selected(c, i) || !spec.reach.readable() {
            prop_assert!(
                apply_calls.iter().all(|call| call.instance != name),
                "{name} ({:?}, selected {}) got a command during apply",
                spec.reach,
                selected(c, i)
            );
            prop_assert_eq!(was, &now, "{} changed", name);
            if selected(c, i) {
                let r = report.nodes.iter().find(|r| r.name == name);
                prop_assert_eq!(r.map(|r| r.outcome), Some(Outcome::Unreachable));
            }
            continue;
        }
        prop_assert!(writes(&apply_calls, &name) <= 1, "{name}: several writes");
        for call in apply_calls
            .iter()
            .filter(|c| c.instance == name && c.is_write())
        {
            let script = call.stdin.clone().unwrap_or_default();
            for line in script.lines().filter(|l| !l.starts_with("route show")) {
                prop_assert!(
                    line.contains(" table 254 ") && line.contains(&format!(" proto {p} ")),
                    "{name}: line without table main and proto: {line}"
                );
            }
        }
        let want = desired(c, i);

        // Nothing outside table main changes.
        let outside =
            |v: &[KRoute]| sorted(v.iter().filter(|r| r.table != MAIN).cloned().collect());
        prop_assert_eq!(
            outside(was),
            outside(&now),
            "{}: another table changed",
            name
        );

        // Foreign routes stay, route by route; with --adopt one identical to a desired route may
        // come back with routectl's protocol, and nothing else about it changes.
        let foreign = |v: &[KRoute]| sorted(v.iter().filter(|r| !owned(r, p)).cloned().collect());
        let mut now_foreign = foreign(&now);
        if c.adopt {
            for r in &now {
                if owned(r, p) && want.contains(r) && !was.contains(r) {
                    let mut back = r.clone();
                    for proto in 0..=255u8 {
                        back.protocol = proto;
                        if proto != p && was.contains(&back) && !now.contains(&back) {
                            now_foreign.push(back.clone());
                            break;
                        }
                    }
                }
            }
        }
        prop_assert_eq!(
            foreign(was),
            sorted(now_foreign),
            "{}: foreign routes changed\nbefore: {:#?}\nafter: {:#?}",
            name,
            was,
            now
        );

        // What disappeared was owned and not desired.
        let mut gone = was.clone();
        for r in &now {
            if let Some(k) = gone.iter().position(|g| g == r) {
                gone.remove(k);
            }
        }
        for g in &gone {
            let adopted_away = c.adopt && !owned(g, p);
            prop_assert!(
                (owned(g, p) && !want.contains(g)) || adopted_away,
                "{name}: removed {g:?}"
            );
        }

        // Every desired route is in place, unless a foreign route to its destination (in table
        // main, not adoptable) blocks it.
        for w in &want {
            let owned_key = was.iter().any(|r| owned(r, p) && r.key() == w.key());
            let blocked = was
                .iter()
                .any(|r| r.table == MAIN && r.dst == w.dst && !owned(r, p));
            prop_assert!(
                now.contains(w) || (blocked && !owned_key),
                "{name}: desired route missing: {w:?}\nafter: {now:#?}"
            );
        }

        let had_conflict = !conflicts(&plan, &name).is_empty();
        let outcome = report
            .nodes
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome);
        if had_conflict {
            prop_assert_eq!(outcome, Some(Outcome::Failed), "{}", name);
        } else {
            prop_assert!(
                matches!(outcome, Some(Outcome::InSync | Outcome::Converged)),
                "{name}: {outcome:?}: {:?}",
                report.nodes.iter().find(|r| r.name == name)
            );
        }
    }

    // A re-plan has no operation and the same conflicts; a second apply sends nothing.
    m.clear_calls();
    let again = Plan::compute(&t, &opts, 1, |n| observe::read_node(&m, n));
    for np in &again.nodes {
        // Only nodes that were read and applied must be converged (an unread one may answer now).
        let first = plan.nodes.iter().find(|n| n.name == np.name);
        if np.state.is_err() || first.is_none_or(|n| n.state.is_err()) {
            continue;
        }
        let ops: Vec<_> = np
            .changes()
            .iter()
            .filter(|ch| ch.is_operation(c.adopt))
            .map(|ch| format!("{:?} {}", ch.action, ch.route))
            .collect();
        prop_assert!(ops.is_empty(), "{}: not converged: {ops:?}", np.name);
        prop_assert_eq!(conflicts(&plan, &np.name), conflicts(&again, &np.name));
    }
    m.clear_calls();
    let _ = apply::apply(&again, &t, &m, 1);
    let second = m.calls();
    let read_first = |name: &str| plan.nodes.iter().any(|n| n.name == name && n.state.is_ok());
    prop_assert!(
        second
            .iter()
            .all(|call| !call.is_write() || !read_first(&call.instance)),
        "second apply wrote: {second:?}"
    );
    Ok(())
}

proptest! {
    // 256 cases by default (about 10 s in a debug build); PROPTEST_CASES=5000 for a deeper run.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn plan_and_apply_converge_safely(c in case()) {
        check(&c)?;
    }
}

/// The generator is worth its cases: over 300 of them every kind of change, every outcome and
/// every way of being unreadable shows up.
#[test]
fn generated_cases_cover_every_action_and_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let c = case().new_tree(&mut runner).expect("case").current();
        let text = topology_text(&c);
        let t = topology::parse(text.as_bytes(), "prop.toml", None).expect("topology");
        let nodes = (0..c.nodes.len())
            .map(|i| (format!("node-{i}"), starting_node(&c, i)))
            .collect();
        let m = Model::new(nodes);
        let plan = Plan::compute(&t, &options(&c), 1, |n| observe::read_node(&m, n));
        for np in &plan.nodes {
            for ch in np.changes() {
                *seen.entry(format!("{:?}", ch.action)).or_default() += 1;
            }
        }
        for r in apply::apply(&plan, &t, &m, 1).nodes {
            *seen.entry(format!("{:?}", r.outcome)).or_default() += 1;
            if !r.failures.is_empty() {
                *seen.entry("line failure".into()).or_default() += 1;
            }
        }
    }
    eprintln!("over 300 generated cases: {seen:?}");
    for k in [
        "Add",
        "Replace",
        "Delete",
        "Adopt",
        "Conflict",
        "InSync",
        "Converged",
        "Failed",
        "Unreachable",
    ] {
        assert!(seen.get(k).copied().unwrap_or(0) >= 5, "{k}: {seen:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, one at a time.

fn lab(text: &str, nodes: Vec<(&str, Node)>) -> (Topology, Model) {
    let t = topology::parse(text.as_bytes(), "t.toml", None).unwrap_or_else(|p| panic!("{p}"));
    let m = Model::new(nodes.into_iter().map(|(k, n)| (k.to_string(), n)).collect());
    (t, m)
}

const TWO: &str = r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "w0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "w1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
"#;

fn connected(dev: &str) -> KRoute {
    let mut r = KRoute::via("10.0.2.0/24", "10.0.2.1", dev, 2, 0);
    r.gateway = None;
    r.scope = 253;
    r
}

#[test]
fn adoption_happens_only_with_adopt() {
    let foreign = KRoute::via("10.1.1.0/24", "10.0.2.21", "eth1", 3, 0);
    let node = || Node::new(&["lo", "eth1"], vec![connected("eth1"), foreign.clone()]);
    for adopt in [false, true] {
        let (t, m) = lab(TWO, vec![("w0", node()), ("w1", node())]);
        let opts = Options {
            adopt,
            only: vec!["w0".into()],
            ..Options::default()
        };
        let plan = Plan::compute(&t, &opts, 1, |n| observe::read_node(&m, n));
        let report = apply::apply(&plan, &t, &m, 1);
        let routes = m.routes("w0");
        let mine = KRoute::via("10.1.1.0/24", "10.0.2.21", "eth1", 211, 0);
        assert_eq!(routes.contains(&mine), adopt, "{routes:#?}");
        assert_eq!(routes.contains(&foreign), !adopt, "{routes:#?}");
        assert_eq!(report.nodes[0].outcome, Outcome::InSync.max_if(adopt));
        assert_eq!(m.routes("w1"), node().routes, "w1 was not selected");
    }
}

trait MaxIf {
    fn max_if(self, adopt: bool) -> Outcome;
}

impl MaxIf for Outcome {
    /// In sync without --adopt (an adoption is no operation), converged with it.
    fn max_if(self, adopt: bool) -> Outcome {
        if adopt { Outcome::Converged } else { self }
    }
}

#[test]
fn a_node_missing_its_interface_fails_alone_and_harms_nothing() {
    let stale = KRoute::via("10.1.9.0/24", "10.0.2.29", "eth1", 211, 0);
    let foreign = KRoute::via("10.1.8.0/24", "10.0.2.28", "eth1", 4, 0);
    let w0 = Node::new(
        &["lo"],
        vec![connected("eth1"), stale.clone(), foreign.clone()],
    );
    let w1 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    let (t, m) = lab(TWO, vec![("w0", w0), ("w1", w1)]);
    let plan = Plan::compute(&t, &Options::default(), 1, |n| observe::read_node(&m, n));
    let report = apply::apply(&plan, &t, &m, 1);
    let r0 = &report.nodes[0];
    assert_eq!(r0.outcome, Outcome::Failed);
    assert_eq!(r0.failures.len(), 1, "{:?}", r0.failures);
    assert!(
        r0.failures[0]
            .message
            .contains("Cannot find device \"eth1\"")
    );
    // The deletion after the failing add still ran (-force), the foreign route stayed.
    assert_eq!(m.routes("w0"), vec![connected("eth1"), foreign]);
    assert_eq!(report.nodes[1].outcome, Outcome::Converged);
    assert!(
        m.routes("w1")
            .contains(&KRoute::via("10.1.0.0/24", "10.0.2.20", "eth1", 211, 0))
    );
}

#[test]
fn unreadable_nodes_get_no_command_and_lose_no_route_elsewhere() {
    for reach in [
        Reach::NotFound,
        Reach::Stopped,
        Reach::Empty,
        Reach::EmptyFor(3),
        Reach::Garbage,
        Reach::OldIproute,
        Reach::Timeout,
    ] {
        let mine = KRoute::via("10.1.0.0/24", "10.0.2.20", "eth1", 211, 0);
        let mut w0 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
        w0.reach = reach;
        let w1 = Node::new(&["lo", "eth1"], vec![connected("eth1"), mine.clone()]);
        let (t, m) = lab(TWO, vec![("w0", w0), ("w1", w1)]);
        let plan = Plan::compute(&t, &Options::default(), 2, |n| observe::read_node(&m, n));
        assert!(plan.nodes[0].state.is_err(), "{reach:?}");
        m.clear_calls();
        let report = apply::apply(&plan, &t, &m, 2);
        assert_eq!(report.nodes[0].outcome, Outcome::Unreachable);
        assert!(m.calls().iter().all(|c| c.instance != "w0"), "{reach:?}");
        assert_eq!(m.routes("w1"), vec![connected("eth1"), mine.clone()]);
        assert_eq!(report.nodes[1].outcome, Outcome::InSync);
    }
}

#[test]
fn a_transient_empty_read_is_retried_not_taken_for_an_empty_table() {
    let stale = KRoute::via("10.1.9.0/24", "10.0.2.29", "eth1", 211, 0);
    let mut w0 = Node::new(&["lo", "eth1"], vec![connected("eth1"), stale.clone()]);
    w0.reach = Reach::EmptyFor(2);
    let w1 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    let (t, m) = lab(TWO, vec![("w0", w0), ("w1", w1)]);
    let plan = Plan::compute(&t, &Options::default(), 1, |n| observe::read_node(&m, n));
    let reads = m.calls().iter().filter(|c| c.instance == "w0").count();
    assert_eq!(reads, 3);
    let actions: Vec<Action> = plan.nodes[0].changes().iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Add, Action::Delete]);
}

/// An IPv4 route may share its key (table, dst, tos, metric) with another when it was made with
/// `ip route append`. `replace` then overwrites the *first* route of that key (checked against
/// the kernel in `model_matches_the_kernel`), which may be a foreign one: routectl must not
/// replace there, but delete its own route by gateway and report the foreign one.
#[test]
fn replace_never_overwrites_a_foreign_route_sharing_the_key() {
    let foreign = KRoute::via("10.1.1.0/24", "10.0.2.31", "eth1", 3, 0);
    let appended = KRoute::via("10.1.1.0/24", "10.0.2.32", "eth1", 211, 0);
    let mut w0 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    w0.insert(foreign.clone());
    w0.insert(appended);
    let w1 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    let (t, m) = lab(TWO, vec![("w0", w0), ("w1", w1)]);
    let plan = Plan::compute(&t, &Options::default(), 1, |n| observe::read_node(&m, n));
    let _ = apply::apply(&plan, &t, &m, 1);
    assert!(
        m.routes("w0").contains(&foreign),
        "the foreign route was overwritten: {:#?}",
        m.routes("w0")
    );
}

/// Two owned IPv4 routes sharing a key (`ip route append`): the plan replaces the first and
/// deletes the second; the delete names the second's gateway, so it cannot hit the first.
#[test]
fn one_apply_converges_two_owned_routes_sharing_a_key() {
    let first = KRoute::via("10.1.1.0/24", "10.0.2.31", "eth1", 211, 0);
    let second = KRoute::via("10.1.1.0/24", "10.0.2.32", "eth1", 211, 0);
    let mut w0 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    w0.insert(first);
    w0.insert(second);
    let w1 = Node::new(&["lo", "eth1"], vec![connected("eth1")]);
    let (t, m) = lab(TWO, vec![("w0", w0), ("w1", w1)]);
    let plan = Plan::compute(&t, &Options::default(), 1, |n| observe::read_node(&m, n));
    let report = apply::apply(&plan, &t, &m, 1);
    let want = KRoute::via("10.1.1.0/24", "10.0.2.21", "eth1", 211, 0);
    assert_eq!(
        m.routes("w0"),
        vec![connected("eth1"), want],
        "sent {:?}",
        report.nodes[0].sent
    );
    assert_eq!(report.nodes[0].outcome, Outcome::Converged);
}

// ---------------------------------------------------------------------------------------------
// The model against the kernel.

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rtsafe-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn batch(&self, options: &[&str], script: &str) -> (String, String, i32) {
        let mut child = Command::new("ip")
            .args(["-n", &self.0])
            .args(options)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip");
        let mut stdin = child.stdin.take().expect("stdin");
        let script = script.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let out = child.wait_with_output().expect("ip");
        writer.join().expect("writer").expect("write");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn dump(&self) -> String {
        let out = Command::new("ip")
            .args([
                "-n", &self.0, "-N", "-d", "-j", "route", "show", "table", "all",
            ])
            .output()
            .expect("ip");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per JSON array of a stream: routes grouped by (family, table, dst), in printed order.
type Groups = Vec<BTreeMap<(bool, String, String), Vec<String>>>;

fn groups(stdout: &str) -> Groups {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Vec<serde_json::Value>>()
        .map(|table| {
            let mut g: BTreeMap<(bool, String, String), Vec<String>> = BTreeMap::new();
            for r in table.expect("JSON array") {
                let key = (
                    r.get("pref").is_some(),
                    r["table"].to_string(),
                    r["dst"].to_string(),
                );
                // Compare objects whatever their key order.
                let canonical = serde_json::to_string(&r).expect("json");
                g.entry(key).or_default().push(canonical);
            }
            g
        })
        .collect()
}

#[test]
#[ignore = "needs root: a network namespace"]
fn model_matches_the_kernel() {
    let ns = Netns::new("model");
    let setup = "link set lo up
link add eth1 type bridge
link set eth1 up
link add eth0 type bridge
link set eth0 up
addr add 10.0.2.20/24 dev eth1
addr add fd00::20/64 dev eth1 nodad
route add default via 10.0.2.1 dev eth1
route add default via 10.0.2.2 dev eth1 proto 211 metric 100
route add default via fd00::1 dev eth1
route add 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
route add 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 186 metric 5
route add blackhole 10.8.0.0/24
route add unreachable 10.7.0.0/16 proto 4
route add 10.9.0.0/24 nexthop via 10.0.2.21 dev eth1 nexthop via 10.0.2.22 dev eth1
route add 10.1.3.0/24 via 10.0.2.23 dev eth1 table 100 proto 211
route add 10.1.4.0/24 via 10.0.2.24 dev eth1 proto 211 tos 0x10
route add 10.1.5.0/24 via 10.0.2.25 dev eth1 proto 211 metric 7
route add 10.1.30.0/24 via 10.0.2.31 dev eth1 proto 3
route append 10.1.30.0/24 via 10.0.2.32 dev eth1 proto 211
route add 10.1.31.0/24 via 10.0.2.31 dev eth1 proto 211
route append 10.1.31.0/24 via 10.0.2.32 dev eth1 proto 211
route add 10.1.32.7 via 10.0.2.21 dev eth1 proto 211
route add fd01:1::/64 via fd00::21 dev eth1 proto 211
route add fd01:3::/64 nexthop via fd00::21 dev eth1 nexthop via fd00::22 dev eth1
route add blackhole fd02::/64 proto 211
route add fd05::/64 from fd06::/64 via fd00::21 dev eth1 proto 211
";
    let (_, err, status) = ns.batch(&[], setup);
    assert_eq!(status, 0, "setup: {err}");

    // The kernel adds some routes of links that just came up on its own time (IPv6 link-local
    // and multicast): the table is taken once two dumps 200 ms apart agree.
    let mut real = ns.dump();
    for _ in 0..25 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let again = ns.dump();
        if again == real {
            break;
        }
        real = again;
    }
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&real).expect("real dump");
    let mut node = Node::new(&["lo", "eth0", "eth1"], Vec::new());
    // Ingest in printed order: appended aliases stay behind the route they follow.
    node.routes = parsed.iter().map(KRoute::from_json).collect();
    assert_eq!(
        groups(&format!("{}\n", node.dump())),
        groups(&real),
        "printing"
    );

    let scripts = [
        // File exists; replace creating and overwriting (a foreign route); del of another
        // protocol's route; IPv4 del with metric 0 matching any metric; IPv6 metric 0 -> 1024.
        "route add 10.1.1.0/24 via 10.0.2.29 dev eth1 table 254 proto 211 metric 0
route replace 10.1.6.0/24 via 10.0.2.26 dev eth1 table 254 proto 211 metric 0
route replace 10.1.2.0/24 via 10.0.2.27 dev eth1 table 254 proto 211 metric 5
route del 10.9.0.0/24 table 254 proto 211 metric 0
route del 10.1.5.0/24 table 254 proto 211 metric 0
route add fd01:7::/64 via fd00::27 dev eth1 table 254 proto 211 metric 0
route add fd01:1::/64 via fd00::29 dev eth1 table 254 proto 211 metric 1024
route show table all",
        // Device and gateway errors, host bits, tos and from on del, the shared keys.
        "route add 10.1.21.0/24 via 10.0.2.21 dev eth9 table 254 proto 211 metric 0
route add 10.1.22.0/24 via 10.9.9.9 dev eth1 table 254 proto 211 metric 0
route add 10.1.23.0/24 via 10.0.2.21 dev eth0 table 254 proto 211 metric 0
route add 10.1.24.1/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0
route del 10.1.4.0/24 table 254 proto 211 metric 0
route del 10.1.4.0/24 table 254 proto 211 metric 0 tos 0x10
route del fd05::/64 table 254 proto 211 metric 1024
route del fd05::/64 table 254 proto 211 metric 1024 from fd06::/64
route replace 10.1.30.0/24 via 10.0.2.33 dev eth1 table 254 proto 211 metric 0
route del 10.1.31.0/24 table 254 proto 211 metric 0
route replace fd01:3::/64 via fd00::23 dev eth1 table 254 proto 211 metric 1024
route del fd02::/64 table 254 proto 211 metric 1024
route del 10.1.32.7/32 table 254 proto 211 metric 0
route show table all
route show table all",
        // An argument error aborts the batch; the lines before it stay done.
        "route add 10.1.40.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0
route add 10.1.41.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric x
route show table all",
        "route frobnicate
route show table all",
    ];
    for script in scripts {
        let (out, err, status) = ns.batch(&["-N", "-d", "-j", "-force"], &format!("{script}\n"));
        let (mout, merr, mstatus) = node.batch(&format!("{script}\n"));
        assert_eq!(
            (mstatus, &merr),
            (status, &err),
            "status and stderr of:\n{script}"
        );
        assert_eq!(groups(&mout), groups(&out), "stdout of:\n{script}");
        assert_eq!(
            groups(&format!("{}\n", node.dump())),
            groups(&ns.dump()),
            "tables after:\n{script}"
        );
    }
}
