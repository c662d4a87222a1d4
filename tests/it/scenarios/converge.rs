//! Plan and apply on a lab: from empty to converged, drift repaired only where owned, a
//! foreign route never changed, a restarted node given its routes back, a mistyped address
//! stopping every write.

use crate::support::assert_code as code;
use crate::support::lab::Lab;
use routectl::core::topology::TransportKind;

/// From no routes: the plan lists nine adds (3 on the controller, 2 on each worker) in
/// topology order, exits 3 with --detailed-exitcode, and changes nothing.
pub fn plan_from_empty_lists_nine_adds_and_changes_nothing(lab: &dyn Lab) {
    let run = lab.run(&["plan", "--detailed-exitcode"]);
    code(&run, 3);
    assert!(
        run.stdout
            .contains("Plan: 9 to add, 0 to replace, 0 to delete on 4 of 4 nodes."),
        "{run:?}"
    );
    let j = lab.run(&["plan", "--output", "json"]).json();
    assert_eq!(j["format_version"], 2);
    assert_eq!(j["summary"]["add"], 9);
    let names: Vec<&str> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["controller-0", "worker-0", "worker-1", "worker-2"]);
    let adds: Vec<usize> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["changes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["action"] == "add")
                .count()
        })
        .collect();
    assert_eq!(adds, [3, 2, 2, 2]);
    let c = &j["nodes"][1]["changes"][0];
    assert_eq!(
        (
            c["action"].as_str(),
            c["dst"].as_str(),
            c["gateway"].as_str(),
            c["dev"].as_str()
        ),
        (
            Some("add"),
            Some("10.1.1.0/24"),
            Some("10.0.2.21"),
            Some("eth1")
        )
    );
    // Read-only: nothing changed.
    assert!(
        lab.table("worker-0").is_empty(),
        "{:?}",
        lab.table("worker-0")
    );
}

/// From no routes: apply converges and pods reach pods; a second apply only reads (no batch is
/// sent; a read that printed nothing may be retried) and plan reports in sync.
pub fn apply_converges_then_changes_nothing(lab: &dyn Lab) {
    assert!(
        !lab.broken_paths().is_empty(),
        "pods reach each other before any route exists?"
    );
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
        ]
    );
    assert_eq!(lab.table("controller-0").len(), 3);

    let again = lab.run(&["-v", "apply", "--auto-approve", "--output", "json"]);
    code(&again, 0);
    let j = again.json();
    assert_eq!(j["summary"]["operations_applied"], 0, "{again:?}");
    assert_eq!(j["summary"]["nodes_in_sync"], 4, "{again:?}");
    let commands: Vec<&str> = again
        .stderr
        .lines()
        .filter(|l| l.starts_with("+ "))
        .collect();
    assert!(commands.len() >= 4, "{again:?}");
    // Reads only: plain, or held for a write that never comes (`+ (held) NODE: …` would be
    // one).
    assert!(
        commands
            .iter()
            .all(|c| c.ends_with("-N -d -j route show table all")
                || c.ends_with("(held for the write)")),
        "only reads: {again:?}"
    );
    assert!(
        !commands.iter().any(|c| c.starts_with("+ (held) ")),
        "a write: {again:?}"
    );
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

/// Drift: an owned route deleted by hand, an owned route re-pointed, an owned route to a CIDR
/// nobody has, a foreign route elsewhere, a foreign route identical to a desired one. apply
/// repairs exactly the owned ones, leaves the foreign ones, adopts the identical one only with
/// `--adopt`.
pub fn drift_is_repaired_only_where_owned(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    lab.ip(
        "worker-1",
        "route replace 10.1.0.0/24 via 10.0.2.22 dev eth1 proto 211",
    );
    lab.ip(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    lab.delete_route("controller-0", "10.1.0.0/24 proto 211");
    lab.ip(
        "controller-0",
        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1",
    );

    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    code(&plan, 3);
    for line in [
        "+ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
        "~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
        "- 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
        "taken over only with --adopt",
    ] {
        assert!(plan.stdout.contains(line), "plan lacks {line:?}: {plan:?}");
    }

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert!(lab.has("worker-0", "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"));
    assert!(lab.has("worker-1", "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"));
    let w2 = lab.table("worker-2");
    assert!(!w2.iter().any(|l| l.starts_with("10.1.9.0/24")), "{w2:?}");
    assert!(
        lab.has("worker-2", "192.168.77.0/24 via 10.0.2.20 dev eth1"),
        "foreign route kept: {w2:?}"
    );
    // The identical foreign route stays as it is without --adopt …
    assert!(lab.has("controller-0", "10.1.0.0/24 via 10.0.2.20 dev eth1"));
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    // … and is taken over with it.
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 3);
    code(&lab.run(&["apply", "--auto-approve", "--adopt"]), 0);
    assert!(lab.has(
        "controller-0",
        "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"
    ));
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

/// A foreign route to a desired destination with another gateway is a conflict: planned as
/// `!`, never changed (not even with --adopt), that node fails, the others converge.
pub fn a_conflicting_foreign_route_is_reported_and_never_changed(lab: &dyn Lab) {
    lab.ip("worker-0", "route add 10.1.1.0/24 via 10.0.2.22 dev eth1");
    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    code(&plan, 3);
    assert!(
        plan.stdout
            .contains("! 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"),
        "{plan:?}"
    );
    let run = lab.run(&["apply", "--auto-approve", "--adopt"]);
    code(&run, 1);
    assert!(run.stdout.contains("worker-0: FAILED"), "{run:?}");
    assert!(
        lab.table("worker-0")
            .contains(&"10.1.1.0/24 via 10.0.2.22 dev eth1".to_string())
    );
    // The other nodes converged.
    assert_eq!(lab.table("worker-1").len(), 2);
}

/// A node restarted after apply has lost routectl's routes; the next apply restores exactly
/// them (the other nodes are in sync) and pods reach pods again.
pub fn a_restarted_node_gets_its_routes_back(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.restart("worker-1");
    assert!(
        lab.table("worker-1").is_empty(),
        "a restart loses routes: {:?}",
        lab.table("worker-1")
    );
    // The routes the restart lost are drift, and the plan says the node restarted (the netns
    // lab's "restart" only flushes the routes of the same namespace: drift without a restart).
    let j = lab.run(&["plan", "--output", "json"]).json();
    let w1 = j["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "worker-1")
        .expect("worker-1 planned");
    let changes = w1["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{w1:#}");
    assert!(changes.iter().all(|c| c["cause"] == "drift"), "{w1:#}");
    if lab.transport() != TransportKind::Netns {
        assert_eq!(w1["last_applied"]["restarted"], true, "{w1:#}");
        let said = format!("{}", w1["warnings"]);
        assert!(
            said.contains("worker-1 restarted since the last apply (at ")
                && said.contains("): 2 routes lost"),
            "{w1:#}"
        );
        lab.run(&["show"]).stdout_has(", before the node restarted");
    }
    let run = lab.run(&["apply", "--auto-approve", "--output", "json"]);
    code(&run, 0);
    let j = run.json();
    assert_eq!(j["summary"]["operations_applied"], 2);
    assert_eq!(j["summary"]["nodes_converged"], 1);
    assert_eq!(j["summary"]["nodes_in_sync"], 3);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

/// worker-2's declared internal IP is on no node's link: routes via it cannot be added. The plan
/// says so of every node before any write (worker-2 does not have the address; on the others
/// it is not on-link), and apply changes nothing.
pub fn a_mistyped_internal_ip_is_every_nodes_error_and_nothing_is_written(lab: &dyn Lab) {
    const NODES: [&str; 4] = ["controller-0", "worker-0", "worker-1", "worker-2"];
    let before: Vec<Vec<String>> = NODES.iter().map(|n| lab.table(n)).collect();
    let edit = |t: String| t.replace("\"10.0.2.22\"", "\"10.0.9.22\"");
    let plan = lab.run_variant(&edit, &["plan"]);
    code(&plan, 1);
    assert!(
        plan.stdout
            .contains("worker-2: error: internal_ip 10.0.9.22 is on no interface of the node"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains(
            "worker-0: error: gateway 10.0.9.22 (internal_ip of worker-2) is not on-link on eth1"
        ),
        "{plan:?}"
    );
    code(&lab.run_variant(&edit, &["apply", "--auto-approve"]), 1);
    let after: Vec<Vec<String>> = NODES.iter().map(|n| lab.table(n)).collect();
    assert_eq!(
        after, before,
        "apply wrote to a node that cannot carry its routes"
    );
}
