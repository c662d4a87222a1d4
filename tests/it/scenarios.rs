//! End-to-end scenarios written once and run on every real lab (network namespaces, LXD; see
//! tests/it/support/lab.rs for what a lab is and how to add one). Each scenario is a function
//! of `&dyn Lab`; the `every_lab!` call at the end turns each into one test per lab, named
//! `scenarios::LAB::SCENARIO` (`cargo test --test it -- --include-ignored scenarios::lxd::`).
//!
//! A lab is topology.example.toml's four nodes (controller-0, worker-0/1/2 on 10.0.2.0/24,
//! pod CIDRs 10.1.0-2.0/24), so every scenario may count on those names and addresses. A
//! scenario changes the lab only through the trait (and routectl); it edits the topology only
//! in a variant written into the test's directory ([`Lab::variant`]), never the lab's file.

use std::collections::BTreeSet;

use routectl::core::topology::TransportKind;

use crate::support::assert_code as code;
use crate::support::lab::Lab;
use crate::support::without_manager;

/// What `routectl -v` prints for a command routectl runs in a node (other than `ip`). A new
/// transport adds its line here (the match is exhaustive on purpose).
fn verbose_line(lab: &dyn Lab, node: &str, command: &str) -> String {
    let instance = &lab.topology().node(node).expect("a lab node").instance;
    match lab.transport() {
        TransportKind::Lxc => format!("+ lxc exec {instance} --force-noninteractive -- {command}"),
        TransportKind::Incus => {
            format!("+ incus exec {instance} --force-noninteractive -- {command}")
        }
        TransportKind::Netns => format!("+ ip netns exec {instance} {command}"),
        TransportKind::Ssh => format!("-- {instance} {command}"),
    }
}

/// How `show` heads a node: its name, and its instance when that differs.
fn show_header(lab: &dyn Lab, node: &str) -> String {
    let instance = &lab.topology().node(node).expect("a lab node").instance;
    if instance == node {
        format!("{node}:\n")
    } else {
        format!("{node} (instance ")
    }
}

/// The failed paths of a check, as `from -> to`.
fn failed(j: &serde_json::Value) -> BTreeSet<String> {
    j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .map(|p| {
            format!(
                "{} -> {}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect()
}

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
    assert!(
        commands
            .iter()
            .all(|c| c.ends_with("-N -d -j route show table all")),
        "only reads: {again:?}"
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

/// A saved plan applies (without a prompt: the file is the approval) only while every node's
/// routes are as they were when it was made, and only with the topology it was made from.
pub fn a_saved_plan_applies_only_while_it_matches_the_nodes_and_the_topology(lab: &dyn Lab) {
    let file = lab.dir().join("plan.json");
    let file = file.to_str().unwrap();
    code(&lab.run(&["plan", "--out", file]), 0);

    // Drift after the plan was made: routes to desired destinations appear on worker-1.
    lab.ip(
        "worker-1",
        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip(
        "worker-1",
        "route add 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
    );
    for stale in [
        lab.routectl_bare().args(["apply", file]).run(),
        lab.run(&["apply", file]),
    ] {
        code(&stale, 1);
        assert!(
            stale.stderr.contains("the saved plan is stale"),
            "{stale:?}"
        );
        assert!(
            stale.stderr.contains("node `worker-1`: its routes changed"),
            "{stale:?}"
        );
    }
    assert!(
        lab.table("worker-0").is_empty(),
        "nothing may change: {:?}",
        lab.table("worker-0")
    );

    // A fresh plan applies and converges, with or without the topology file.
    code(&lab.run(&["plan", "--out", file]), 0);
    code(&lab.routectl_bare().args(["apply", file]).run(), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    code(&lab.run(&["plan", "--out", file]), 0);
    code(&lab.run(&["apply", file]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());

    // Given a topology file, it must be the one the plan was made from.
    code(&lab.run(&["plan", "--out", file]), 0);
    let other = lab.run_variant(
        &|t| t.replace("10.1.2.0/24", "10.1.3.0/24"),
        &["apply", file],
    );
    code(&other, 1);
    assert!(
        other
            .stderr
            .contains("differs from the one the plan was made from"),
        "{other:?}"
    );
}

/// A node leaves the topology and another's pod CIDR changes: deleting every route a node has
/// is a mass deletion, held back until --allow-mass-delete while the new route goes in; then the
/// routes follow the topology, and the departed node is not contacted (its routes stay).
pub fn a_removed_node_and_a_changed_cidr_are_cleaned_up(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let smaller = lab.variant(&|text| {
        let cut = text.find("[[nodes]]\nname = \"worker-2\"").unwrap();
        text[..cut].replace("\"10.1.1.0/24\"", "\"10.1.5.0/24\"")
    });
    // Two of worker-0's two routes go away: a mass deletion, held back (exit 4); the routes to
    // worker-1's new pod CIDR are added all the same.
    let held = lab.run_file(&smaller, &["apply", "--auto-approve"]);
    code(&held, 4);
    held.stdout_has("worker-0: 2 deletions held back");
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
            "10.1.5.0/24 via 10.0.2.21 dev eth1 proto 211",
        ]
    );
    let run = lab.run_file(
        &smaller,
        &["apply", "--auto-approve", "--allow-mass-delete"],
    );
    code(&run, 0);
    assert_eq!(
        lab.table("worker-0"),
        ["10.1.5.0/24 via 10.0.2.21 dev eth1 proto 211"]
    );
    // worker-2 is not in the topology any more: it is not contacted, its routes stay.
    assert_eq!(lab.table("worker-2").len(), 2);
}

/// A truncated topology would delete every route of worker-0 and most of the cluster's: held
/// back (exit 4, the nodes named) unless allowed.
pub fn a_mass_deletion_is_held_back_unless_allowed(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    // A truncated topology: only controller-0 and worker-0 are left.
    let cut = lab.variant(&|text| {
        let at = text.find("[[nodes]]\nname = \"worker-1\"").unwrap();
        text[..at].to_string()
    });
    let run = lab.run_file(&cut, &["apply", "--auto-approve"]);
    code(&run, 4);
    run.stdout_has("held back: not applied (a mass deletion; --allow-mass-delete applies them)")
        .stdout_has(
            "worker-0: 2 deletions held back (it would lose all 2 of its routectl routes; \
             the plan deletes 4 of the 5 routectl routes on the planned nodes)",
        )
        .stdout_has("controller-0: 2 deletions held back");
    assert_eq!(lab.table("worker-0").len(), 2, "nothing was deleted");
    assert_eq!(lab.table("controller-0").len(), 3, "nothing was deleted");
    code(
        &lab.run_file(&cut, &["apply", "--auto-approve", "--allow-mass-delete"]),
        0,
    );
    assert!(lab.table("worker-0").is_empty());
}

/// Ten stray routes with routectl's protocol on worker-2 (what any root in that node can
/// plant) are a mass deletion: only worker-2's deletions are held back, and a route deleted by
/// hand on worker-0 is put back by `reconcile --once`, `apply` and a saved plan alike, each
/// naming worker-2 and exiting 4. With --allow-mass-delete the strays go.
pub fn one_nodes_mass_deletion_holds_back_only_its_deletions(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let plant = || {
        for i in 0..10 {
            lab.ip(
                "worker-2",
                &format!(
                    "route add 10.1.{}.0/24 via 10.0.2.20 dev eth1 proto 211",
                    100 + i
                ),
            );
        }
    };
    plant();
    let missing = "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211";
    let held = "worker-2: 10 deletions held back (the plan deletes 10 of the 18 routectl routes \
                on the planned nodes)";

    lab.delete_route("worker-0", "10.1.1.0/24");
    let once = lab.run(&["reconcile", "--once"]);
    code(&once, 4);
    once.stderr_has(held).stderr_has("--allow-mass-delete");
    assert!(lab.has("worker-0", missing), "reconcile repaired worker-0");
    assert_eq!(lab.table("worker-2").len(), 12, "the strays stay");

    lab.delete_route("worker-0", "10.1.1.0/24");
    let apply = lab.run(&["apply", "--auto-approve"]);
    code(&apply, 4);
    apply
        .stdout_has(held)
        .stdout_has("worker-0: converged (1 change)")
        .stdout_has("10 deletions held back on worker-2");
    assert!(lab.has("worker-0", missing), "apply repaired worker-0");
    assert_eq!(lab.table("worker-2").len(), 12, "the strays stay");

    // JSON: the held-back node, how many, why and the flag; the rest in sync.
    let json = lab.run(&["apply", "--auto-approve", "-o", "json"]);
    code(&json, 4);
    let doc = json.json();
    assert_eq!(doc["success"], false, "{doc}");
    assert_eq!(doc["held_back"][0]["node"], "worker-2", "{doc}");
    assert_eq!(doc["held_back"][0]["deletions"], 10, "{doc}");
    assert_eq!(doc["held_back"][0]["reasons"][0]["rule"], "most_of_plan");
    assert_eq!(doc["held_back"][0]["allowed_by"], "--allow-mass-delete");
    assert_eq!(doc["plan"]["held_back"], doc["held_back"]);
    assert_eq!(doc["summary"]["nodes_in_sync"], 4, "{doc}");

    // A saved plan behaves the same.
    lab.delete_route("worker-0", "10.1.1.0/24");
    let file = lab.dir().join("held.plan.json");
    let file = file.to_str().unwrap();
    let plan = lab.run(&["plan", "--out", file, "-o", "markdown"]);
    code(&plan, 0);
    plan.stdout_has("> - `worker-2`: 10 deletions (the plan deletes 10 of the 18");
    let saved = lab.run(&["apply", file]);
    code(&saved, 4);
    saved.stdout_has(held);
    assert!(
        lab.has("worker-0", missing),
        "the saved plan repaired worker-0"
    );
    assert_eq!(lab.table("worker-2").len(), 12, "the strays stay");

    // Allowed: the strays go, with apply and with reconcile.
    code(
        &lab.run(&["apply", "--auto-approve", "--allow-mass-delete"]),
        0,
    );
    assert_eq!(lab.table("worker-2").len(), 2);
    plant();
    code(&lab.run(&["reconcile", "--once", "--allow-mass-delete"]), 0);
    assert_eq!(lab.table("worker-2").len(), 2);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

/// One apply at a time: a held lock refuses (with --lock-timeout 0), a holder killed with
/// SIGKILL leaves no lock behind, and a waiting apply goes ahead once the holder is done.
pub fn one_apply_at_a_time_and_a_killed_holder_leaves_no_lock(lab: &dyn Lab) {
    let lock = lab.lock_file();
    let lock_s = lock.to_str().unwrap();
    let mut holder = std::process::Command::new("flock")
        // -o: the lock is held by flock itself, not by its child, so killing flock frees it.
        .args(["-o", lock_s, "sleep", "60"])
        .spawn()
        .expect("flock (util-linux)");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = lab.run(&["--lock-timeout", "0", "apply", "--auto-approve"]);
    code(&busy, 1);
    assert!(
        busy.stderr.contains("another routectl holds the lock"),
        "{busy:?}"
    );
    assert!(lab.table("worker-0").is_empty());
    // Killed with SIGKILL: the kernel releases the lock.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let run = lab.run(&["--lock-timeout", "0", "apply", "--auto-approve"]);
    code(&run, 0);

    // A waiting apply goes ahead once the holder is done.
    let mut holder = std::process::Command::new("flock")
        .args(["-o", lock_s, "sleep", "1"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    lab.ip("worker-0", "route flush proto 211");
    let waited = lab.run(&["--lock-timeout", "20s", "apply", "--auto-approve"]);
    code(&waited, 0);
    assert!(
        waited.stderr.contains("waiting up to 20 s for the lock"),
        "{waited:?}"
    );
    assert_eq!(lab.table("worker-0").len(), 2);
    holder.wait().unwrap();
}

/// `show` marks every route (owned, foreign, kernel, desired-missing), checks each node's
/// addresses, reads each node with one command, and calls missing exactly what plan adds.
pub fn show_marks_every_route_and_agrees_with_the_plan(lab: &dyn Lab) {
    let before = lab.run(&["show", "--output", "json", "-v"]);
    code(&before, 0);
    assert!(
        before.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {before:?}"
    );
    let j = before.json();
    assert_eq!(
        (j["format_version"].as_u64(), j["kind"].as_str()),
        (Some(1), Some("show"))
    );
    assert_eq!(j["summary"]["desired_missing"], 9, "{before:?}");
    assert_eq!(j["summary"]["owned"], 0);
    assert_eq!(j["summary"]["warnings"], 0, "{before:?}");
    for n in j["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "ok", "{n}");
        assert!(
            n["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true),
            "{n}"
        );
    }
    // controller-0 has only its internal IP to check; workers also their pod gateway.
    assert_eq!(j["nodes"][0]["addresses"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["nodes"][3]["addresses"][1]["found"][0]["interface"],
        "cnio0"
    );

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.ip(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    lab.ip(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    let run = lab.run(&["show"]);
    code(&run, 0);
    for line in [
        show_header(lab, "worker-2").as_str(),
        "  owned           10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211\n",
        "  owned           10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211  (not desired: plan deletes it)\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  kernel          10.1.2.0/24 dev cnio0 proto kernel\n",
        "  ok: internal_ip 10.0.2.22 is on eth1\n",
        "  ok: pod gateway 10.1.2.1 (10.1.2.0/24) is on cnio0\n",
        "Show: 4 nodes; 10 owned, 1 foreign,",
        " 0 desired-missing routes; 0 warnings.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }

    // What show calls missing is what plan adds.
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    let text = lab.run(&["show", "--node", "worker-2", "--node", "worker-0"]);
    code(&text, 0);
    for line in [
        show_header(lab, "worker-0").as_str(),
        "  desired-missing 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  owned           10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "(not shown, --node: controller-0, worker-1)",
    ] {
        assert!(text.stdout.contains(line), "{line:?} missing:\n{text:?}");
    }
    let show = lab
        .run(&["show", "--node", "worker-0", "--output", "json"])
        .json();
    let missing: Vec<&serde_json::Value> = show["nodes"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mark"] == "desired-missing")
        .collect();
    let texts: Vec<&str> = missing
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"]);
    let plan = lab
        .run(&["plan", "--node", "worker-0", "--output", "json"])
        .json();
    let change = &plan["nodes"][0]["changes"][0];
    assert_eq!(change["action"], "add");
    for key in ["dst", "gateway", "dev", "protocol", "metric"] {
        assert_eq!(
            change[key], missing[0][key],
            "{key}: {change} / {}",
            missing[0]
        );
    }
}

/// `show --save DIR` writes exactly each node's route read, and `plan --observed DIR` plans
/// from it what a live plan plans, also when no node can be reached any more.
pub fn show_save_round_trips_through_plan_observed(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    lab.ip(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip(
        "controller-0",
        "route add 10.1.5.0/24 via 10.0.2.21 dev eth1",
    );

    let dir = lab.dir().join("snapshot");
    let dir_s = dir.to_str().unwrap();
    let run = lab.run(&["show", "--save", dir_s, "-v"]);
    code(&run, 0);
    assert!(
        run.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {run:?}"
    );
    for n in ["controller-0", "worker-0", "worker-1", "worker-2"] {
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(dir.join(format!("{n}.json"))).unwrap()),
            String::from_utf8_lossy(&lab.raw_routes(n)),
            "{n}'s snapshot is exactly the route read"
        );
    }
    let live = lab.run(&["plan", "--output", "json"]);
    let offline = lab.run(&["plan", "--observed", dir_s, "--output", "json"]);
    code(&live, 0);
    code(&offline, 0);
    // The same plan, except that only a live read tells what manages each interface and how
    // each node was reached.
    assert_eq!(offline.json()["nodes"][0]["manager"]["name"], "unknown");
    assert_eq!(
        without_manager(crate::support::without_access(live.json())),
        without_manager(offline.json())
    );
    assert_eq!(offline.json()["summary"]["add"], 1);
    assert_eq!(offline.json()["summary"]["delete"], 1);
    code(
        &lab.run(&["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
    // Offline means offline: with every node unreachable, the snapshot still plans.
    let gone = lab.unreachable_variant();
    code(&lab.run_file(&gone, &["plan", "--detailed-exitcode"]), 1);
    code(
        &lab.run_file(&gone, &["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
}

/// `check` pings every pair of pod gateways from inside the source node: all fail before
/// apply, all pass after; a deleted route fails exactly its pair, both ways, with a hint
/// naming the missing route; the tests' own pings agree; repaired, it passes again.
pub fn check_passes_after_apply_and_names_the_pair_of_a_deleted_route(lab: &dyn Lab) {
    let before = lab.run(&["check"]);
    code(&before, 1);
    assert!(
        before
            .stdout
            .contains("Check: 0 of 6 paths pass, 6 failed."),
        "{before:?}"
    );
    let before = lab.run(&["check", "--output", "json"]);
    code(&before, 1);
    assert_eq!(before.json()["summary"]["failed"], 6, "{before:?}");

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let run = lab.run(&["check", "-v"]);
    code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    assert!(
        run.stdout.contains("  worker-0  -         ok        ok\n"),
        "{run:?}"
    );
    // Each ping runs inside its source node.
    let ping = verbose_line(lab, "worker-1", "ping -c1 -W1 -I 10.1.1.1 10.1.2.1");
    assert!(run.stderr.contains(&ping), "{ping:?} missing: {run:?}");

    lab.delete_route("worker-0", "10.1.2.0/24 proto 211");
    let run = lab.run(&["check"]);
    code(&run, 1);
    assert!(
        run.stdout.contains(
            "failed: worker-0 -> worker-2 (IPv4, 10.1.0.1 -> 10.1.2.1; 2 tries, one packet each)"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  hint: worker-0 has no route to 10.1.2.0/24 (pod_cidr of worker-2)\n"),
        "{run:?}"
    );
    let j = lab.run(&["check", "--output", "json"]);
    code(&j, 1);
    let j = j.json();
    assert_eq!(j["kind"], "check");
    let expected: BTreeSet<String> = ["worker-0 -> worker-2", "worker-2 -> worker-0"]
        .map(String::from)
        .into();
    assert_eq!(failed(&j), expected);
    // The tests' own pings agree.
    let own: BTreeSet<String> = lab
        .broken_paths()
        .iter()
        .map(|p| p.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(own, expected);
    // Repaired, it passes again.
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    code(&lab.run(&["check"]), 0);

    // Another pair: every hint names the one missing route; --node limits the matrix.
    lab.delete_route("worker-1", "10.1.2.0/24 proto 211");
    let run = lab.run(&["check", "--output", "json"]);
    code(&run, 1);
    let j = run.json();
    let expected: BTreeSet<String> = ["worker-1 -> worker-2", "worker-2 -> worker-1"]
        .map(String::from)
        .into();
    assert_eq!(failed(&j), expected, "{run:?}");
    let hints = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .flat_map(|p| p["hints"].as_array().unwrap().iter())
        .map(|h| h.as_str().unwrap())
        .collect::<BTreeSet<_>>();
    assert_eq!(
        hints,
        ["worker-1 has no route to 10.1.2.0/24 (pod_cidr of worker-2)"].into(),
        "{run:?}"
    );
    let text = lab.run(&["check", "--node", "worker-1"]);
    code(&text, 1);
    assert!(
        text.stdout
            .contains("  worker-1  ok        -         FAIL\n"),
        "{text:?}"
    );
}

/// `--take-over`: foreign routes standing in desired routes' way are replaced by the desired
/// ones, each exactly (one alone in the desired route's key rewritten in place, one of another
/// key deleted by its identity before the add), through a saved plan; a foreign route in no
/// desired route's way is kept, and without the flag nothing foreign is touched.
pub fn take_over_replaces_exactly_the_routes_in_the_way(lab: &dyn Lab) {
    lab.ip("worker-1", "route add 10.1.0.0/24 via 10.0.2.99 dev eth1");
    lab.ip(
        "worker-1",
        "route add 10.1.2.0/24 via 10.0.2.99 dev eth1 proto static metric 10",
    );
    lab.ip(
        "controller-0",
        "route add 10.1.1.0/24 via 10.0.2.99 dev eth1 proto static",
    );
    lab.ip(
        "worker-0",
        "route add 10.1.99.0/24 via 10.0.2.99 dev eth1 proto static",
    );
    let kept = "10.1.99.0/24 via 10.0.2.99 dev eth1 proto static";

    // Without --take-over: conflicts, and apply changes nothing foreign.
    let plain = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(plain["summary"]["conflict"], 3, "{plain:#}");
    assert_eq!(plain["summary"]["take_over"], 0);
    code(&lab.run(&["apply", "--auto-approve"]), 1);
    // (`ip route` does not print `proto boot`.)
    assert!(lab.has("worker-1", "10.1.0.0/24 via 10.0.2.99 dev eth1"));

    // With it, through a saved plan.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let planned = lab.run(&[
        "plan",
        "--take-over",
        "--out",
        file.to_str().unwrap(),
        "-o",
        "json",
    ]);
    code(&planned, 0);
    let j = planned.json();
    assert_eq!(j["take_over"], true);
    assert_eq!(j["summary"]["take_over"], 3, "{j:#}");
    assert_eq!(j["summary"]["conflict"], 0);
    let w1 = &j["nodes"][2];
    let takes: Vec<serde_json::Value> = w1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "take_over")
        .map(|c| serde_json::json!([c["dst"], c["gateway"], c["current"], c["in_place"]]))
        .collect();
    assert_eq!(
        takes,
        [
            serde_json::json!(["10.1.0.0/24", "10.0.2.20", {
                "dst": "10.1.0.0/24", "gateway": "10.0.2.99", "dev": "eth1",
                "protocol": 3, "metric": 0
            }, true]),
            serde_json::json!(["10.1.2.0/24", "10.0.2.22", {
                "dst": "10.1.2.0/24", "gateway": "10.0.2.99", "dev": "eth1",
                "protocol": 4, "metric": 10
            }, false]),
        ],
        "{w1:#}"
    );
    let text = lab.run(&["plan", "--take-over"]);
    assert!(
        text.stdout.contains(
            "  > 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 (takes over foreign route `10.1.0.0/24 via 10.0.2.99 dev eth1 proto boot` in place)"
        ),
        "{text:?}"
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["saved"]["take_over"], true);
    let applied = lab.run(&["apply", file.to_str().unwrap(), "-o", "json"]);
    code(&applied, 0);
    // What the plan's fields say apply runs: the foreign route alone in the key is rewritten
    // in place; the one with another metric is deleted exactly, then the desired route added.
    let applied = applied.json();
    let w1 = applied["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "worker-1")
        .unwrap();
    let sent = &w1["sent"];
    for line in [
        "ip route replace 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0",
        "ip route del 10.1.2.0/24 via 10.0.2.99 dev eth1 table 254 proto 4 metric 10",
    ] {
        assert!(
            sent.as_array().unwrap().iter().any(|s| s == line),
            "{line} not in {sent}"
        );
    }

    assert_eq!(
        lab.table("worker-1"),
        [
            "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
        ]
    );
    assert!(lab.has(
        "controller-0",
        "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"
    ));
    assert_eq!(
        lab.table("controller-0").len(),
        3,
        "{:?}",
        lab.table("controller-0")
    );
    assert!(lab.has("worker-0", kept), "{:?}", lab.table("worker-0"));
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    code(&lab.run(&["plan", "--detailed-exitcode", "--take-over"]), 0);
    assert!(lab.has("worker-0", kept));
}

/// The last-applied record: `show` reports it; an owned route deleted by hand is drift, next to
/// the changes a new topology asks for; a node without a record is all topology.
pub fn drift_is_told_from_topology_changes(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let shown = lab.run(&["show", "-o", "json"]).json();
    let rec = &shown["nodes"][1]["last_applied"];
    assert_eq!(rec["routes"].as_array().map(Vec::len), Some(2), "{shown:#}");
    let at = rec["applied_at"].as_str().unwrap().to_string();
    assert!(
        lab.run(&["show"])
            .stdout
            .contains(&format!("last applied: {at} by routectl"))
    );

    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");
    lab.ip("worker-1", "route del 10.1.0.0/24 proto 211");
    lab.forget_record("worker-1");
    // The topology moves worker-2's pods to 10.1.3.0/24.
    let moved = |t: String| t.replace("10.1.2.0/24", "10.1.3.0/24");
    let j = lab.run_variant(&moved, &["plan", "-o", "json"]).json();
    let causes = |node: usize| -> Vec<String> {
        j["nodes"][node]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["action"].as_str().unwrap(),
                    c["dst"].as_str().unwrap(),
                    c["cause"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        causes(1),
        [
            "add 10.1.1.0/24 drift",
            "delete 10.1.2.0/24 topology",
            "add 10.1.3.0/24 topology",
        ],
        "{j:#}"
    );
    assert_eq!(j["nodes"][2]["last_applied"], serde_json::Value::Null);
    assert!(
        causes(2).iter().all(|c| c.ends_with(" topology")),
        "{:?}",
        causes(2)
    );
    assert!(causes(2).contains(&"add 10.1.0.0/24 topology".to_string()));
    assert_eq!(j["summary"]["drift"], 1);
    let text = lab.run_variant(&moved, &["plan"]);
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("+ 10.1.1.0/24"))
        .unwrap_or_else(|| panic!("{text:?}"))
        .to_string();
    assert!(
        line.ends_with(&format!(
            "[drift: changed outside routectl since the last apply at {at}]"
        )),
        "{line}"
    );
    assert!(
        !text
            .stdout
            .lines()
            .any(|l| l.contains("10.1.3.0/24") && l.contains("drift")),
        "{text:?}"
    );
    // Applying repairs the drift; the new record leaves nothing to call drift.
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let again = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(again["summary"]["drift"], 0);
    assert_eq!(again["summary"]["operations"], 0);
}

/// `apply --canary`: a mistyped pod CIDR (worker-2's: routes that the kernel takes, to pods that
/// are not there) is caught on the canary: with
/// `--canary-rollback` (from a saved plan) the canary is put back as it was, without it the
/// canary keeps its routes; either way no other node is changed and the failed path is named.
/// The right topology then rolls out everywhere.
pub fn canary_stops_a_bad_topology_and_rolls_out_a_good_one(lab: &dyn Lab) {
    let others = ["controller-0", "worker-1", "worker-2"];
    let before: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    let mistyped = |t: String| t.replace("\"10.1.2.0/24\"", "\"10.1.12.0/24\"");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    code(
        &lab.run_variant(&mistyped, &["plan", "--out", file.to_str().unwrap()]),
        0,
    );
    let failed = lab.run_variant(
        &mistyped,
        &[
            "apply",
            file.to_str().unwrap(),
            "--canary",
            "worker-0",
            "--canary-rollback",
        ],
    );
    code(&failed, 1);
    assert!(
        failed
            .stderr
            .contains("failed path: worker-0 -> worker-2 (10.0.2.20 -> 10.1.12.1)"),
        "{failed:?}"
    );
    assert!(
        failed.stderr.contains("put back as it was: worker-0"),
        "{failed:?}"
    );
    assert!(failed.stdout.contains("Canary FAILED"), "{failed:?}");
    // It failed, why, and that it was rolled back; nothing says "converged".
    assert!(
        failed.stdout.contains(
            "worker-0: canary FAILED: 1 of 2 paths failed; rolled back (2 changes undone)\n  x \
             worker-0 -> worker-2 (10.0.2.20 -> 10.1.12.1): "
        ),
        "{failed:?}"
    );
    assert!(
        failed.stdout.contains(
            "Apply: canary FAILED on worker-0; the rollout stopped and no other node was \
             changed; rolled back: worker-0 ("
        ),
        "{failed:?}"
    );
    assert!(!failed.stdout.contains("converged"), "{failed:?}");
    assert_eq!(lab.table("worker-0"), Vec::<String>::new());
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let kept = lab.run_variant(&mistyped, &["apply", "-y", "--canary", "worker-0"]);
    code(&kept, 1);
    assert!(kept.stderr.contains("worker-0 -> worker-2"), "{kept:?}");
    assert!(
        kept.stdout.contains(
            "worker-0: canary FAILED: 1 of 2 paths failed; keeps its 2 new routes \
             (--canary-rollback puts it back)"
        ),
        "{kept:?}"
    );
    assert!(lab.has("worker-0", "10.1.12.0/24 via 10.0.2.22 dev eth1 proto 211"));
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let good = lab.run(&["apply", "-y", "--canary", "worker-0", "-o", "json"]);
    code(&good, 0);
    let j = good.json();
    assert_eq!(j["canary"]["passed"], true, "{j:#}");
    assert_eq!(j["canary"]["paths"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["summary"]["nodes_converged"], 4, "{j:#}");
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

/// Makes a test per lab of each scenario: `every_lab!(scenarios: [A, B]; labs: NAME: "why it
/// is ignored" => constructor, …)`.
macro_rules! every_lab {
    (scenarios: $scenarios:tt; labs: $($lab:ident: $why:literal => $take:expr),* $(,)?) => {
        $( on_lab!($lab, $why, $take, $scenarios); )*
    };
}

macro_rules! on_lab {
    ($lab:ident, $why:literal, $take:expr, [$($scenario:ident),* $(,)?]) => {
        mod $lab {
            $(
                #[test]
                #[ignore = $why]
                fn $scenario() {
                    super::$scenario(&$take);
                }
            )*
        }
    };
}

every_lab!(
    scenarios: [
        plan_from_empty_lists_nine_adds_and_changes_nothing,
        apply_converges_then_changes_nothing,
        drift_is_repaired_only_where_owned,
        a_conflicting_foreign_route_is_reported_and_never_changed,
        a_restarted_node_gets_its_routes_back,
        a_mistyped_internal_ip_is_every_nodes_error_and_nothing_is_written,
        a_saved_plan_applies_only_while_it_matches_the_nodes_and_the_topology,
        a_removed_node_and_a_changed_cidr_are_cleaned_up,
        a_mass_deletion_is_held_back_unless_allowed,
        one_nodes_mass_deletion_holds_back_only_its_deletions,
        one_apply_at_a_time_and_a_killed_holder_leaves_no_lock,
        show_marks_every_route_and_agrees_with_the_plan,
        show_save_round_trips_through_plan_observed,
        check_passes_after_apply_and_names_the_pair_of_a_deleted_route,
        take_over_replaces_exactly_the_routes_in_the_way,
        drift_is_told_from_topology_changes,
        canary_stops_a_bad_topology_and_rolls_out_a_good_one,
    ];
    labs:
        netns: "needs root: network namespaces" => crate::support::netns::NetnsLab::seed(),
        lxd: "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lxd::LxdLab::take(),
        incus: "needs root: the Incus lab (scripts/test.sh brings it up and runs these)"
            => crate::support::incus::IncusLab::take(),
        netns_host: "needs root: network namespaces and setns"
            => crate::support::lab::HostAccess::of(crate::support::netns::NetnsLab::seed()),
        lxd_host: "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lab::HostAccess::of(crate::support::lxd::LxdLab::take()),
        incus_host: "needs root: the Incus lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lab::HostAccess::of(crate::support::incus::IncusLab::take()),
);
