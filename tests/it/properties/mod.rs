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
//!
//! The generator of cases is here; the properties are checked in `convergence`, single
//! scenarios against the model are in `scenarios`, the model against the kernel in `kernel`.

use crate::support::model::{KRoute, MAIN, Node, Reach};
use ipnet::IpNet;
use proptest::prelude::*;

mod convergence;
mod kernel;
mod scenarios;

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

/// A seed's destination, and the gateway that would be right for it.
fn seed_dst(c: &Case, i: usize, s: &Seed, want: &[KRoute]) -> Option<(String, String)> {
    let x = usize::from(s.x);
    let other = (i + 1 + x) % c.nodes.len().max(1);
    Some(match s.dst {
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
    })
}

fn seed_route(c: &Case, i: usize, s: &Seed, want: &[KRoute]) -> Option<KRoute> {
    let dev = iface(&c.nodes[i]);
    let other = (i + 1 + usize::from(s.x)) % c.nodes.len().max(1);
    let (dst, right_gw) = seed_dst(c, i, s, want)?;
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
