//! Scenarios against the model, one at a time: adoption, a missing interface, unreadable
//! nodes, a retried empty read, routes sharing the kernel's key.

use crate::support::model::{KRoute, Model, Node, Reach};
use routectl::core::change::Action;
use routectl::core::plan::{Options, Plan};
use routectl::core::topology::{self, Topology};
use routectl::node::apply::{self, Outcome};
use routectl::node::observe;

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
