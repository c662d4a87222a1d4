//! Host access writes what the batch lines say and reports like exec access.

use crate::support::assert_code;
use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

use super::*;

/// What apply's JSON says of a node: status and the commands of its failed lines.
fn node_result(j: &serde_json::Value, name: &str) -> (String, Vec<String>) {
    let n = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap();
    let failed = n["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["message"].as_str().unwrap().is_empty(), "{f}");
            f["command"].as_str().unwrap().to_string()
        })
        .collect();
    (n["status"].as_str().unwrap().to_string(), failed)
}

#[test]
#[ignore = "needs root: network namespaces and setns"]
fn host_access_writes_what_the_batch_lines_say_and_reports_like_exec_access() {
    let lab = NetnsLab::seed();
    let prepare = || {
        for n in ["worker-0", "worker-1", "worker-2", "controller-0"] {
            lab.ip(n, "route flush proto 211");
        }
        // An owned route that forwards wrongly (replaced) and a foreign one in the way of a
        // desired route (a conflict, never touched).
        lab.ip(
            "worker-0",
            "route add 10.1.1.0/24 via 10.0.2.22 proto 211 metric 0",
        );
        lab.ip(
            "worker-0",
            "route replace 10.1.2.0/24 via 10.0.2.21 proto boot",
        );
    };
    let mut results = Vec::new();
    for access in ["exec", "host"] {
        prepare();
        let run = lab.run(&["--access", access, "apply", "--auto-approve", "-o", "json"]);
        assert_code(&run, 1);
        let j = run.json();
        assert_eq!(
            sorted(lab.table("worker-0")),
            [
                "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "10.1.2.0/24 via 10.0.2.21 dev eth1",
            ],
            "{access}: {run:?}"
        );
        let w0 = node_result(&j, "worker-0");
        let w1 = node_result(&j, "worker-1");
        assert_eq!(w0.0, "failed", "a conflict stands: {run:?}");
        assert_eq!(w1.0, "converged", "{run:?}");
        results.push((w0, w1, j["summary"]["operations_applied"].clone()));
    }
    assert_eq!(
        results[0], results[1],
        "exec and host access report the same"
    );
}

/// The operations of the comparison below: a duplicate add (fails), a blackhole, a multipath
/// route, a delete of a missing route (fails), an unknown device (fails), `onlink`, IPv6 with
/// `from`, and a replace.
fn mixed_operations() -> Vec<routectl::core::change::RouteOp> {
    use routectl::core::change::{Action, Change, RouteOp};
    use routectl::core::route::{Hop, NextHop, Route};
    let unicast = |dst: &str, gw: &str, dev: &str| {
        Route::unicast(dst.parse().unwrap(), gw.parse().unwrap(), Some(dev), 211, 0)
    };
    let add = |r: Route| Change::new(Action::Add, r, None).op().unwrap();
    let mut hole = unicast("10.9.2.0/24", "10.0.2.21", "eth1");
    hole.kind = 6;
    hole.next_hop = NextHop::Single(Hop::default());
    let mut multi = unicast("10.9.3.0/24", "10.0.2.21", "eth1");
    multi.next_hop = NextHop::Multipath(
        ["10.0.2.21", "10.0.2.22"]
            .iter()
            .map(|g| Hop {
                gateway: Some(g.parse().unwrap()),
                dev: Some("eth1".into()),
            })
            .collect(),
    );
    let mut onlink = unicast("10.9.4.0/24", "10.9.9.9", "eth1");
    onlink.flags = vec!["onlink".into()];
    let mut v6 = unicast("fd00:9::/64", "fd00::21", "eth1");
    v6.next_hop = NextHop::Single(Hop {
        gateway: None,
        dev: Some("eth1".into()),
    });
    v6.from = Some("fd00:8::/64".parse().unwrap());
    vec![
        add(unicast("10.9.1.0/24", "10.0.2.21", "eth1")),
        add(unicast("10.9.1.0/24", "10.0.2.21", "eth1")),
        RouteOp::add_exactly(&hole).unwrap(),
        RouteOp::add_exactly(&multi).unwrap(),
        RouteOp::delete_exactly(&unicast("10.9.8.0/24", "10.0.2.21", "eth1")).unwrap(),
        add(unicast("10.9.5.0/24", "10.0.2.21", "nosuch0")),
        RouteOp::add_exactly(&onlink).unwrap(),
        RouteOp::add_exactly(&v6).unwrap(),
        Change::new(
            Action::Replace,
            unicast("10.9.1.0/24", "10.0.2.22", "eth1"),
            None,
        )
        .op()
        .unwrap(),
    ]
}

/// One apply request, carried out by the exec batch (`ip -force -batch`) and natively by host
/// access on the same starting table: the same failing operations (numbered as `ip -batch`
/// numbers lines, with the same messages), every operation tried after a failure, and the same
/// read-back, for planned changes and the exact operations of a rollback (a type, a multipath
/// route, `onlink`, a `from`).
#[test]
#[ignore = "needs root: network namespaces and setns"]
fn host_access_carries_out_route_operations_as_the_exec_batch_does() {
    use routectl::node::iproute::batch_failures;
    use routectl::node::request::ApplyRequest;
    let lab = NetnsLab::seed();
    let node = lab.topology().node("worker-0").unwrap().clone();
    let ops = mixed_operations();
    let req = ApplyRequest {
        routes: ops,
        read_back: true,
        ..ApplyRequest::default()
    };
    let exec = Process::new(TransportKind::Netns, TIMEOUT, false);
    let host = Host::new(TransportKind::Netns, TIMEOUT, false);
    let mut outcomes = Vec::new();
    for t in [&exec as &dyn Transport, &host] {
        lab.ip("worker-0", "route flush proto 211");
        lab.ip("worker-0", "-6 route flush proto 211");
        let reply = t.apply(&node.instance, &req).unwrap();
        let failures: Vec<(usize, String)> = batch_failures(&reply.stderr)
            .into_iter()
            .map(|f| (f.line, f.message))
            .collect();
        let mut ours: Vec<String> = reply
            .read_back
            .unwrap()
            .unwrap()
            .iter()
            .filter(|r| r.protocol == 211)
            .map(|r| format!("{r} {:?}", r.flags))
            .collect();
        ours.sort();
        outcomes.push((reply.status, failures, ours));
    }
    let (status, failures, routes) = &outcomes[0];
    assert_eq!(*status, Some(1));
    assert_eq!(
        failures.iter().map(|f| f.0).collect::<Vec<_>>(),
        [2, 5, 6],
        "{failures:?}"
    );
    assert_eq!(
        routes.len(),
        5,
        "every operation after a failure was tried: {routes:?}"
    );
    assert_eq!(outcomes[0], outcomes[1], "exec batch, then host access");
}
