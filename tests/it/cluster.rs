//! A real three-member LXD cluster on this machine (scripts/lab-cluster.sh, tests/labs/
//! cluster.toml): one routectl per member with `--member local` and host access, instances of
//! other members reached through the cluster, and a killed member. Ignored by a plain
//! `cargo test`; scripts/test.sh brings the lab up and runs these.

use std::time::{Duration, Instant};

use crate::support::cluster::{ClusterLab, PLACEMENT};
use crate::support::{Routectl, assert_code};

const OWNED_ROUTES: usize = 4; // every node but cl-ctl has a pod CIDR; cl-ctl gets 4, workers 3

fn routes_expected(node: &str) -> usize {
    if node == "cl-ctl" {
        OWNED_ROUTES
    } else {
        OWNED_ROUTES - 1
    }
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn each_member_s_routectl_converges_its_own_nodes_with_host_access() {
    let lab = ClusterLab::take();
    // m1 first: only m1's nodes change, through host access (no process in them).
    let run = lab.routectl(
        "m1",
        &[
            "-v",
            "apply",
            "--auto-approve",
            "--member",
            "local",
            "--access",
            "host",
        ],
    );
    assert_code(&run, 0);
    for (node, member) in PLACEMENT {
        let want = if *member == "m1" {
            routes_expected(node)
        } else {
            0
        };
        assert_eq!(lab.table(node).len(), want, "{node} on {member}: {run:?}");
    }
    assert!(
        run.stderr.contains("(host access to cl-w1)") && !run.stderr.contains("lxc exec"),
        "m1's nodes are served by host access only: {}",
        run.stderr
    );
    for m in ["m0", "m2"] {
        let run = lab.routectl(
            m,
            &[
                "apply",
                "--auto-approve",
                "--member",
                "local",
                "--access",
                "host",
            ],
        );
        assert_code(&run, 0);
    }
    for (node, _) in PLACEMENT {
        assert_eq!(lab.table(node).len(), routes_expected(node), "{node}");
    }
    // The whole cluster through one member: in sync, and every pod gateway reaches every other.
    assert_code(&lab.routectl("m0", &["plan", "--detailed-exitcode"]), 0);
    assert_code(&lab.routectl("m2", &["check"]), 0);
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn host_access_reaches_other_members_instances_through_the_cluster() {
    let lab = ClusterLab::take();
    let run = lab.routectl("m0", &["-v", "apply", "--auto-approve", "--access", "host"]);
    assert_code(&run, 0);
    // cl-w3 runs on m2: never through a PID of another member, always `lxc exec`.
    assert!(run.stderr.contains("lxc exec cl-w3"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("(host access to cl-w3)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(host access to cl-w0)"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.table("cl-w3").len(), 3);
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_member_s_routectl_never_touches_other_members_nodes() {
    let lab = ClusterLab::take();
    // A stale owned route on cl-w3 (on m2): m0's routectl must leave it alone.
    let stale = "10.8.99.0/24 via 10.0.8.20 dev eth1 proto 211";
    let mut add = vec!["exec", "cl-w3", "--", "ip", "route", "add"];
    add.extend(stale.split(' '));
    lab.lxc(&add);
    let run = lab.routectl("m0", &["apply", "--auto-approve", "--member", "local"]);
    assert_code(&run, 0);
    assert_eq!(
        lab.table("cl-w3"),
        [stale],
        "m0's routectl changed m2's node"
    );
    let run = lab.routectl("m0", &["plan", "--member", "m2", "-o", "json"]);
    assert_code(&run, 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cl-w3"]);
    let run = lab.routectl("m2", &["apply", "--auto-approve", "--member", "local"]);
    assert_code(&run, 0);
    assert!(!lab.table("cl-w3").contains(&stale.to_string()));
    assert_eq!(lab.table("cl-w3").len(), 3);
    // A member with none of the topology's nodes, or no such member: refused (exit 2).
    assert_code(&lab.routectl("m0", &["plan", "--member", "m9"]), 2);
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_killed_member_makes_its_nodes_unknown_at_once_and_the_others_go_on() {
    a_killed_member_s_nodes_are_unknown_at_once(&ClusterLab::take(), "cl", "10.8");
}

/// Member m2 (which runs `P-w3`) is killed, the lab's daemons being LXD or Incus (pod CIDRs
/// `PODS.N.0/24`): through m0, with either access, `P-w3` is `member_down` at once and every
/// other node is in sync; a route lost on a healthy member's node is repaired, nothing is
/// deleted anywhere because of the dead one; back, `P-w3` kept its routes.
pub(crate) fn a_killed_member_s_nodes_are_unknown_at_once(lab: &ClusterLab, p: &str, pods: &str) {
    let (w1, w3) = (format!("{p}-w1"), format!("{p}-w3"));
    let expected = |node: &str| {
        if node.ends_with("-ctl") {
            OWNED_ROUTES
        } else {
            OWNED_ROUTES - 1
        }
    };
    // w3's owned routes, then m2 dies: they must survive everything below.
    assert_code(&lab.routectl("m0", &["apply", "--auto-approve"]), 0);
    let started = Instant::now();
    assert_code(&lab.routectl("m0", &["plan", "--detailed-exitcode"]), 0);
    let healthy = started.elapsed();
    lab.kill_member("m2");
    for access in ["exec", "host"] {
        let started = Instant::now();
        let run = lab.routectl("m0", &["plan", "--access", access, "-o", "json"]);
        let dead = started.elapsed();
        eprintln!("plan ({access} access) with m2 killed: {dead:?} (healthy: {healthy:?})");
        assert_code(&run, 1);
        assert!(
            dead < healthy + Duration::from_secs(2),
            "plan with a dead member took {dead:?} (healthy: {healthy:?})"
        );
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        for (name, n) in by_name(&doc) {
            if name == w3 {
                assert!(n.to_string().contains("member_down"), "{n}");
            } else {
                assert_eq!(n["status"], "ok", "{n}");
                assert_eq!(n["changes"], serde_json::json!([]), "{n}");
            }
        }
    }
    // A route lost on a healthy member's node is repaired; the dead member's node is unknown,
    // and nothing is deleted anywhere because of it.
    lab.lxc(&[
        "exec",
        &w1,
        "--",
        "ip",
        "route",
        "del",
        &format!("{pods}.0.0/24"),
    ]);
    let run = lab.routectl("m1", &["apply", "--auto-approve", "--access", "host"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains(&w3) || run.stderr.contains(&w3),
        "{run:?}"
    );
    assert_eq!(lab.table(&w1).len(), expected(&w1));
    // m2 back: w3 kept its routes (its container ran on), and the cluster is in sync.
    lab.restore();
    for (node, _) in lab.flavour.placement {
        assert_eq!(lab.table(node).len(), expected(node), "{node}");
    }
    assert_code(&lab.routectl("m0", &["plan", "--detailed-exitcode"]), 0);
}

/// `reconcile --watch --member local` in the background through one member; killed on drop.
pub(crate) struct MemberWatch(std::process::Child);

impl MemberWatch {
    pub(crate) fn start(lab: &ClusterLab, member: &str, dir: &std::path::Path) -> MemberWatch {
        let log = dir.join(format!("{member}.log"));
        let child = Routectl::new()
            .env(lab.flavour.dir_var, lab.flavour.dir(member))
            .topology(&lab.topology)
            .lock_file(dir.join(format!("{member}.lock")))
            .args([
                "reconcile",
                "--watch",
                "--member",
                "local",
                "--access",
                "host",
            ])
            .args(["--interval", "60s"])
            .spawn_logged(&log);
        let started = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("watching ")
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no watch on {member}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        MemberWatch(child)
    }
}

impl Drop for MemberWatch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_watch_on_every_member_restores_a_deleted_route_on_its_own_nodes() {
    a_watch_on_every_member_repairs_its_own_nodes(&ClusterLab::take(), "cl", "10.8");
}

/// `reconcile --watch --member local` on every member, the lab's daemons being LXD or Incus
/// (pod CIDRs `PODS.N.0/24`): the nodes converge, a route deleted on a node of each member
/// comes back within 4 s, and a restart on m2 (one `instance-restarted` event) that loses
/// `P-w3`'s routes is repaired by m2's watch.
pub(crate) fn a_watch_on_every_member_repairs_its_own_nodes(lab: &ClusterLab, p: &str, pods: &str) {
    let dir = tempfile::tempdir().unwrap();
    let _watches: Vec<MemberWatch> = ["m0", "m1", "m2"]
        .iter()
        .map(|m| MemberWatch::start(lab, m, dir.path()))
        .collect();
    let expected = |node: &str| {
        if node.ends_with("-ctl") {
            OWNED_ROUTES
        } else {
            OWNED_ROUTES - 1
        }
    };
    let converged = |node: &str| lab.table(node).len() == expected(node);
    let started = Instant::now();
    while !lab.flavour.placement.iter().all(|(n, _)| converged(n)) {
        assert!(started.elapsed() < Duration::from_secs(20), "not converged");
        std::thread::sleep(Duration::from_millis(100));
    }
    for node in ["w1", "w3", "w0"].map(|w| format!("{p}-{w}")) {
        // Every one of these has a route to w2's pod CIDR.
        let w2_pods = format!("{pods}.2.0/24");
        lab.lxc(&["exec", &node, "--", "ip", "route", "del", &w2_pods]);
        let deleted = Instant::now();
        while !converged(&node) {
            assert!(
                deleted.elapsed() < Duration::from_secs(4),
                "{node}: the deleted route is not back"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{node}: deleted route back in {:?}", deleted.elapsed());
    }
    let w3 = format!("{p}-w3");
    lab.lxc(&["restart", "--force", &w3]);
    let restarted = Instant::now();
    while !converged(&w3) {
        assert!(
            restarted.elapsed() < Duration::from_secs(20),
            "{w3} not repaired after its restart: {}",
            std::fs::read_to_string(dir.path().join("m2.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{w3}: routes back {:?} after its restart",
        restarted.elapsed()
    );
    let logs = ["m0", "m1", "m2"]
        .map(|m| std::fs::read_to_string(dir.path().join(format!("{m}.log"))).unwrap_or_default());
    assert!(logs[0].contains("watching 2 nodes"), "{}", logs[0]);
    assert!(logs[2].contains("watching 1 nodes"), "{}", logs[2]);
}

/// The nodes of a plan or apply document by name.
fn by_name(doc: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn a_frozen_member_costs_at_most_the_per_node_timeout_and_nothing_is_deleted() {
    let lab = ClusterLab::take();
    assert_code(&lab.routectl("m0", &["apply", "--auto-approve"]), 0);
    // Not the database leader: freezing that one stalls the whole cluster's API.
    let leader = lab.database_leader();
    let frozen = ["m2", "m1"].into_iter().find(|m| *m != leader).unwrap();
    let started = Instant::now();
    assert_code(&lab.routectl("m0", &["plan", "--detailed-exitcode"]), 0);
    let healthy = started.elapsed();
    let timeout = Duration::from_secs(4);
    let thaw = lab.freeze_member(frozen);
    for access in ["exec", "host"] {
        let started = Instant::now();
        let run = lab.routectl(
            "m0",
            &["--timeout", "4s", "plan", "--access", access, "-o", "json"],
        );
        let took = started.elapsed();
        eprintln!("plan ({access} access) with {frozen} frozen: {took:?} (healthy: {healthy:?})");
        assert_code(&run, 1);
        assert!(
            took < timeout + healthy + Duration::from_millis(1500),
            "plan with a frozen member took {took:?} (timeout {timeout:?}, healthy {healthy:?})"
        );
        let nodes = by_name(&serde_json::from_str(&run.stdout).unwrap());
        for (node, member) in PLACEMENT {
            let n = &nodes[*node];
            if *member == frozen {
                assert_eq!(n["status"], "error", "{n}");
            } else {
                assert_eq!(n["status"], "ok", "{n}");
                assert_eq!(n["changes"], serde_json::json!([]), "{n}");
            }
        }
    }
    // An apply through m0 changes nothing anywhere: the healthy nodes are in sync, the frozen
    // member's nodes are unknown, and nothing is deleted because of them.
    let run = lab.routectl("m0", &["--timeout", "4s", "apply", "--auto-approve"]);
    assert_code(&run, 1);
    for (node, member) in PLACEMENT.iter().filter(|(_, m)| *m != frozen) {
        assert_eq!(
            lab.table(node).len(),
            routes_expected(node),
            "{node} on {member}"
        );
    }
    drop(thaw);
    // Thawed: its nodes kept their routes, and the cluster is in sync through m0 again.
    let started = Instant::now();
    while lab.routectl("m0", &["plan", "--detailed-exitcode"]).code != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not in sync after the thaw"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for (node, _) in PLACEMENT {
        assert_eq!(lab.table(node).len(), routes_expected(node), "{node}");
    }
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn an_instance_moved_to_another_member_is_served_by_that_member_s_routectl() {
    a_moved_instance_is_served_by_its_new_member(&ClusterLab::take(), "cl", "10.0.8");
}

/// Node `P-w3` (internal IP `NET.23`) moves from m2 to m0, the lab's daemons being LXD or
/// Incus: m0's watch picks it up, m0's own run serves it with host access, m2's has nothing
/// left to serve, and through m2 it is another member's instance, reached through the cluster.
pub(crate) fn a_moved_instance_is_served_by_its_new_member(lab: &ClusterLab, p: &str, net: &str) {
    let (w3, ctl, w0) = (format!("{p}-w3"), format!("{p}-ctl"), format!("{p}-w0"));
    let expected = |node: &str| {
        if node.ends_with("-ctl") {
            OWNED_ROUTES
        } else {
            OWNED_ROUTES - 1
        }
    };
    let dir = tempfile::tempdir().unwrap();
    // Rounds every 60 s: what picks up the moved instance sooner is its lifecycle event.
    let _watch = MemberWatch::start(lab, "m0", dir.path());
    let started = Instant::now();
    // w3 from m2 to m0: stopped, moved, started (its routes are gone with the restart).
    let moved = lab.move_instance(&w3, "m0", &format!("{net}.23"));
    let back = Instant::now();
    eprintln!("{w3} moved to m0 and up again in {:?}", back - started);
    // m0's watch serves it now.
    while lab.table(&w3).len() != expected(&w3) {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "m0's watch did not pick up {w3}: {}",
            std::fs::read_to_string(dir.path().join("m0.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{w3}'s routes back through m0's watch {:?} after it was up",
        back.elapsed()
    );
    // m0's own run serves it with host access; m2's run has no node left to serve.
    let run = lab.routectl(
        "m0",
        &[
            "apply",
            "--auto-approve",
            "--member",
            "local",
            "--access",
            "host",
            "-o",
            "json",
        ],
    );
    assert_code(&run, 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let nodes = by_name(&doc);
    assert_eq!(nodes.keys().collect::<Vec<_>>(), [&ctl, &w0, &w3], "{doc}");
    assert_eq!(nodes[&w3]["access"], "host", "{doc}");
    assert_eq!(nodes[&w3]["location"], "m0", "{doc}");
    assert_code(&lab.routectl("m2", &["plan", "--member", "local"]), 2);
    // Through m2 with host access, w3 is another member's now: reached through the cluster.
    let run = lab.routectl("m2", &["plan", "--access", "host", "-o", "json"]);
    assert_code(&run, 0);
    let nodes = by_name(&serde_json::from_str(&run.stdout).unwrap());
    assert_eq!(nodes[&w3]["access"], "exec");
    assert_eq!(nodes[&w3]["access_fallback"], "elsewhere");
    assert_eq!(nodes[&w3]["location"], "m0");
    let show = lab.routectl("m0", &["show", "--member", "local", "--access", "host"]);
    assert_code(&show, 0);
    assert!(
        show.stdout.contains(&format!("{w3} (on m0, host access):")),
        "{}",
        show.stdout
    );
    drop(moved);
    assert_eq!(
        lab.lxc(&["list", &w3, "-c", "L", "-f", "csv"]).trim(),
        "m2",
        "{w3} is home again"
    );
}

#[test]
#[ignore = "needs root and the cluster lab (scripts/test.sh brings it up and runs these)"]
fn discover_lists_every_member_s_instances_and_takes_member() {
    let lab = ClusterLab::take();
    let run = lab.routectl("m1", &["discover"]);
    assert_code(&run, 0);
    for (node, member) in PLACEMENT {
        assert!(
            run.stdout.contains(&format!(
                "# on cluster member {member}\n[[nodes]]\nname = \"{node}\""
            )),
            "{node}: {}",
            run.stdout
        );
    }
    let run = lab.routectl("m1", &["discover", "--member", "local"]);
    assert_code(&run, 0);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("name = "))
        .collect();
    assert_eq!(names, ["\"cl-w1\"", "\"cl-w2\""], "{}", run.stdout);
    let run = lab.routectl("m0", &["discover", "--member", "m2"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("name = \"cl-w3\"") && !run.stdout.contains("cl-w0"));
}
