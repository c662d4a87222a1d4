//! Both accesses read and plan the same: every route kind the kernel holds, on network
//! namespaces and on the LXD lab.

use crate::support::assert_code;
use crate::support::lab::Lab;
use crate::support::lxd::LxdLab;
use crate::support::netns::NetnsLab;
use routectl::core::topology::TransportKind;
use routectl::node::host::{Host, Place};
use routectl::node::observe;

use super::*;

/// Routes of every kind the kernel can hold, on worker-0 of a netns lab.
fn exotic_routes(lab: &NetnsLab) {
    for r in [
        "route add 10.50.0.0/16 nexthop via 10.0.2.21 dev eth1 weight 2 nexthop via 10.0.2.22 dev eth1",
        "route add blackhole 10.51.0.0/16 proto 211",
        "route add unreachable 10.52.0.0/16",
        "route add 10.53.0.0/16 via 10.0.2.21 table 1000 proto static",
        "route add 10.54.0.0/16 via 10.0.2.21 tos 0x10 metric 7",
        "route add 10.55.0.0/16 via 10.200.0.1 dev eth1 onlink",
        "route add 10.56.0.0/16 dev cnio0 proto 211 metric 33",
        "route add 10.57.0.1 via 10.0.2.21 proto 211",
        "route add default via 10.0.2.10",
        "route add 10.58.0.0/16 via 10.0.2.21 table 7",
        "route add 10.59.0.0/16 via 10.0.2.21 src 10.0.2.20",
        "route add prohibit 10.60.0.0/16 metric 3",
    ] {
        lab.ip("worker-0", r);
    }
}

#[test]
#[ignore = "needs root: network namespaces and setns"]
fn host_and_exec_access_read_and_plan_the_same_on_netns() {
    let lab = NetnsLab::new(
        "pod_cidr = [\"10.1.0.0/16\", \"fd01::/48\"]",
        &[
            ("controller-0", &["10.0.2.10", "fd00::10"], &[]),
            (
                "worker-0",
                &["10.0.2.20", "fd00::20"],
                &["10.1.0.0/24", "fd01:0:0:0::/64"],
            ),
            (
                "worker-1",
                &["10.0.2.21", "fd00::21"],
                &["10.1.1.0/24", "fd01:0:0:1::/64"],
            ),
            (
                "worker-2",
                &["10.0.2.22", "fd00::22"],
                &["10.1.2.0/24", "fd01:0:0:2::/64"],
            ),
        ],
    );
    exotic_routes(&lab);
    for r in [
        "-6 route add fd09::/64 via fd00::21 proto 211 metric 5",
        "-6 route add fd0a::/64 from fd0b::/64 via fd00::22",
        "-6 route add unreachable fd0c::/64",
        "-6 route add fd0d::/64 nexthop via fd00::21 dev eth1 nexthop via fd00::22 dev eth1",
        "-6 route add default via fd00::10 metric 9",
        "-6 route add fd0e::/64 via fd00::21 pref high",
        "-6 route add unreachable default metric 4000",
        "route add 10.61.0.0/16 via inet6 fd00::21 dev eth1",
    ] {
        lab.ip("worker-0", r);
    }
    same_reads(TransportKind::Netns, &lab.topology().nodes);
    same_plans(|args| lab.run(args));

    // Apply from empty through host access converges, and exec access then finds it in sync.
    lab.ip("worker-0", "route flush proto 211");
    let applied = lab.run(&["--access", "host", "apply", "--auto-approve", "-o", "json"]);
    assert_code(&applied, 0);
    assert_eq!(applied.json()["summary"]["nodes_failed"], 0, "{applied:?}");
    assert_code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    // The apply kept its last-applied record (written through exec), which host access reads.
    let host = Host::new(TransportKind::Netns, TIMEOUT, false);
    let seen = observe::read_observed(&host, lab.topology().node("worker-1").unwrap()).unwrap();
    assert!(
        matches!(seen.last_applied, Ok(Some(_))),
        "{:?}",
        seen.last_applied
    );
    // A namespace's binding is read on this host: the boot id and the namespace file.
    assert!(
        seen.binding
            .as_deref()
            .is_some_and(|b| b.starts_with("boot=") && b.contains(" netns=")),
        "{:?}",
        seen.binding
    );
    assert!(
        lab.table("worker-1")
            .contains(&"10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211".to_string()),
        "{:?}",
        lab.table("worker-1")
    );
    same_reads(TransportKind::Netns, &lab.topology().nodes);
    assert_eq!(lab.wait_until_pods_reach(10), Vec::<String>::new());
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn host_and_exec_access_read_and_plan_the_same_on_lxd() {
    let lab = LxdLab::take();
    // The init PIDs host access uses are the ones LXD reports, each in its own container.
    let host = Host::new(TransportKind::Lxc, TIMEOUT, false);
    for n in &lab.topology().nodes {
        let state: serde_json::Value = serde_json::from_str(&crate::support::lxd::lxc(&[
            "query",
            &format!("/1.0/instances/{}/state", n.instance),
        ]))
        .unwrap();
        assert_eq!(
            host.place(&n.instance),
            Ok(Place::Here(state["pid"].as_i64().unwrap())),
            "{}",
            n.name
        );
    }
    lab.ip(
        "worker-0",
        "route add 10.60.0.0/16 via 10.0.2.21 proto static",
    );
    lab.ip("worker-0", "route add blackhole 10.61.0.0/16");
    same_reads(TransportKind::Lxc, &lab.topology().nodes);
    same_plans(|args| lab.run(args));
    let applied = lab.run(&["--access", "host", "apply", "--auto-approve"]);
    assert_code(&applied, 0);
    assert_code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}
