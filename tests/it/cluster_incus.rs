//! A real three-member Incus cluster on this machine (scripts/lab-cluster.sh --incus, tests/
//! labs/cluster-incus.toml): routectl talks to one member through `INCUS_DIR` and serves the
//! whole cluster, or with `--member local` and host access only that member's instances; a
//! killed member's instances are unknown at once. Ignored by a plain `cargo test`;
//! scripts/test.sh brings the lab up and runs these.

use std::time::{Duration, Instant};

use crate::support::assert_code;
use crate::support::cluster::{ClusterLab, INCUS_PLACEMENT};

/// Every node but ci-ctl has a pod CIDR: ci-ctl gets 4 routes, the workers 3.
fn routes_expected(node: &str) -> usize {
    if node == "ci-ctl" { 4 } else { 3 }
}

/// The nodes of a plan, show or apply document: name -> the node.
fn by_name(run: &crate::support::Run) -> std::collections::BTreeMap<String, serde_json::Value> {
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"));
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn plan_apply_plan_through_one_incus_member_converges_every_node() {
    let lab = ClusterLab::take_incus();
    let run = lab.routectl("m1", &["plan", "--detailed-exitcode", "-o", "json"]);
    assert_code(&run, 3);
    let nodes = by_name(&run);
    for (node, member) in INCUS_PLACEMENT {
        assert_eq!(nodes[*node]["location"], *member, "{node}: {run:?}");
        assert_eq!(
            nodes[*node]["changes"].as_array().unwrap().len(),
            routes_expected(node)
        );
    }
    // Through m0 with host access: m0's instances natively, the others through `incus exec`
    // (never through a PID another member reports).
    let run = lab.routectl("m0", &["-v", "apply", "--auto-approve", "--access", "host"]);
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("(host access to ci-w0)"),
        "{}",
        run.stderr
    );
    for other in ["ci-w1", "ci-w2", "ci-w3"] {
        assert!(
            run.stderr.contains(&format!("incus exec {other}")),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(&format!("(host access to {other})")),
            "{}",
            run.stderr
        );
    }
    for (node, member) in INCUS_PLACEMENT {
        assert_eq!(
            lab.table(node).len(),
            routes_expected(node),
            "{node} on {member}"
        );
    }
    // In sync through every member, and every pod gateway reaches every other.
    for m in ["m0", "m1", "m2"] {
        assert_code(&lab.routectl(m, &["plan", "--detailed-exitcode"]), 0);
    }
    assert_code(&lab.routectl("m2", &["check"]), 0);
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn member_local_with_host_access_serves_only_that_incus_member_s_instances() {
    let lab = ClusterLab::take_incus();
    // A stale owned route on ci-w3 (on m2): m1's routectl must leave it alone.
    let stale = "10.10.99.0/24 via 10.0.10.20 dev eth1 proto 211";
    let mut add = vec!["exec", "ci-w3", "--", "ip", "route", "add"];
    add.extend(stale.split(' '));
    lab.lxc(&add);
    let args = [
        "apply",
        "--auto-approve",
        "--member",
        "local",
        "--access",
        "host",
    ];
    let run = lab.routectl("m1", &[&["-v"], &args[..], &["-o", "json"]].concat());
    assert_code(&run, 0);
    let nodes = by_name(&run);
    assert_eq!(
        nodes.keys().collect::<Vec<_>>(),
        ["ci-w1", "ci-w2"],
        "{run:?}"
    );
    assert!(
        run.stderr.contains("(host access to ci-w1)") && !run.stderr.contains("incus exec"),
        "m1's nodes are served by host access only: {}",
        run.stderr
    );
    for (node, member) in INCUS_PLACEMENT {
        let want = match *member {
            "m1" => routes_expected(node),
            _ => usize::from(*node == "ci-w3"),
        };
        assert_eq!(lab.table(node).len(), want, "{node} on {member}: {run:?}");
    }
    assert_eq!(
        lab.table("ci-w3"),
        [stale],
        "m1's routectl changed m2's node"
    );
    let show = lab.routectl("m2", &["show", "--member", "local", "--access", "host"]);
    assert_code(&show, 0);
    assert!(
        show.stdout.contains("ci-w3 (on m2, host access):"),
        "{}",
        show.stdout
    );
    for m in ["m0", "m2"] {
        assert_code(&lab.routectl(m, &args), 0);
    }
    assert!(!lab.table("ci-w3").contains(&stale.to_string()));
    for (node, _) in INCUS_PLACEMENT {
        assert_eq!(lab.table(node).len(), routes_expected(node), "{node}");
    }
    assert_code(&lab.routectl("m0", &["plan", "--member", "m9"]), 2);
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_killed_incus_member_makes_its_nodes_unknown_at_once_and_the_others_go_on() {
    crate::cluster::a_killed_member_s_nodes_are_unknown_at_once(
        &ClusterLab::take_incus(),
        "ci",
        "10.10",
    );
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_watch_on_every_incus_member_repairs_its_own_nodes() {
    crate::cluster::a_watch_on_every_member_repairs_its_own_nodes(
        &ClusterLab::take_incus(),
        "ci",
        "10.10",
    );
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn member_local_with_a_hung_incus_member_costs_one_timeout_not_two() {
    let lab = ClusterLab::take_incus();
    assert_code(&lab.routectl("m0", &["apply", "--auto-approve"]), 0);
    let leader = lab.database_leader();
    let frozen = ["m2", "m1"].into_iter().find(|m| *m != leader).unwrap();
    let started = Instant::now();
    assert_code(&lab.routectl("m0", &["plan", "--member", "local"]), 0);
    let healthy = started.elapsed();
    let timeout = Duration::from_secs(4);
    let thaw = lab.freeze_member(frozen);
    // The daemon's instance list waits for the hung member: the selection of m0's nodes and
    // the transport share one answer, so the wait is paid once.
    for command in ["plan", "show"] {
        let started = Instant::now();
        let run = lab.routectl(
            "m0",
            &[
                "--timeout",
                "4s",
                command,
                "--member",
                "local",
                "--access",
                "host",
                "-o",
                "json",
            ],
        );
        let took = started.elapsed();
        eprintln!("{command} --member local with {frozen} frozen: {took:?} (healthy: {healthy:?})");
        assert_code(&run, 0);
        assert!(
            took < timeout + healthy + Duration::from_millis(1500),
            "{command} with a hung member took {took:?} (timeout {timeout:?})"
        );
        let nodes = by_name(&run);
        assert_eq!(
            nodes.keys().collect::<Vec<_>>(),
            ["ci-ctl", "ci-w0"],
            "{run:?}"
        );
        assert!(
            nodes
                .values()
                .all(|n| n["access"] == "host" && n["status"] == "ok")
        );
    }
    drop(thaw);
}

#[test]
#[ignore = "needs root and the Incus cluster lab (scripts/test.sh brings it up and runs these)"]
fn an_instance_moved_to_another_incus_member_is_served_by_that_member_s_routectl() {
    crate::cluster::a_moved_instance_is_served_by_its_new_member(
        &ClusterLab::take_incus(),
        "ci",
        "10.0.10",
    );
}
