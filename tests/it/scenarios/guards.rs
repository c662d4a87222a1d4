//! What holds a write back: a saved plan that no longer matches, the mass-deletion guard,
//! the lock; and a removed node or changed CIDR cleaned up.

use crate::support::assert_code as code;
use crate::support::lab::Lab;

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
