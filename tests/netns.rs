//! End-to-end tests against real kernel routing tables: every test builds its own lab of
//! network namespaces (see tests/support), runs the routectl binary with the netns transport,
//! and checks the kernel's tables and real pod-to-pod reachability. Needs root and `ping`.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]

mod support;

use support::{NetnsLab, assert_code, scenarios};

#[test]
fn plan_from_empty_lists_nine_adds() {
    let lab = NetnsLab::seed();
    let run = lab.routectl(&["plan", "--detailed-exitcode"]);
    assert_code(&run, 3);
    assert!(
        run.stdout
            .contains("Plan: 9 to add, 0 to replace, 0 to delete on 4 of 4 nodes."),
        "{run:?}"
    );
    let json = lab.routectl(&["plan", "--output", "json"]).json();
    assert_eq!(json["format_version"], 1);
    let adds: Vec<usize> = json["nodes"]
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
    // Read-only: nothing changed.
    assert!(
        lab.routes("worker-0").is_empty(),
        "{:?}",
        lab.routes("worker-0")
    );
}

#[test]
fn apply_converges_pods_reach_each_other_and_second_apply_is_a_no_op() {
    scenarios::apply_converges_then_changes_nothing(&NetnsLab::seed());
}

#[test]
fn drift_is_repaired_only_where_routectl_owns_the_route() {
    scenarios::drift_is_repaired_only_where_owned(&NetnsLab::seed());
}

#[test]
fn a_conflicting_foreign_route_is_reported_and_never_changed() {
    let lab = NetnsLab::seed();
    lab.ip(
        "worker-0",
        &[
            "route",
            "add",
            "10.1.1.0/24",
            "via",
            "10.0.2.22",
            "dev",
            "eth1",
        ],
    );
    let plan = lab.routectl(&["plan", "--detailed-exitcode"]);
    assert_code(&plan, 3);
    assert!(
        plan.stdout
            .contains("! 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"),
        "{plan:?}"
    );
    let run = lab.routectl(&["apply", "--auto-approve", "--adopt"]);
    assert_code(&run, 1);
    assert!(run.stdout.contains("worker-0: FAILED"), "{run:?}");
    assert!(
        lab.routes("worker-0")
            .contains(&"10.1.1.0/24 via 10.0.2.22 dev eth1".to_string())
    );
    // The other nodes converged.
    assert_eq!(lab.routes("worker-1").len(), 2);
}

#[test]
fn an_unreachable_node_is_reported_others_converge_nothing_is_deleted() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // worker-2 loses its routes (like a reboot) and becomes unreachable: its namespace name is
    // pointed elsewhere in the topology.
    lab.ip("worker-2", &["route", "flush", "proto", "211"]);
    lab.ip("worker-0", &["route", "del", "10.1.1.0/24", "proto", "211"]);
    let text = lab.topology_text().replace(
        &format!("instance = \"{}\"", lab.ns("worker-2")),
        &format!("instance = \"{}-gone\"", lab.prefix),
    );
    lab.write_topology(&text);
    let run = lab.routectl(&["apply", "--auto-approve"]);
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("worker-2: unreachable, nothing was changed"),
        "{run:?}"
    );
    // worker-2's pod CIDR stays routed on the others; worker-0 was repaired.
    assert!(
        lab.routes("worker-0")
            .contains(&"10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211".to_string())
    );
    assert!(
        lab.routes("worker-0")
            .contains(&"10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string())
    );
    let plan = lab.routectl(&["plan", "--output", "json"]);
    assert_code(&plan, 1);
    let j = plan.json();
    assert_eq!(j["nodes"][3]["status"], "error");
    assert_eq!(j["summary"]["delete"], 0);
}

#[test]
fn a_failing_batch_line_reports_the_kernel_message_and_the_rest_converges() {
    // worker-2's declared internal IP is not on any node's link: routes via it cannot be added.
    let lab = NetnsLab::seed();
    let text = lab
        .topology_text()
        .replace("\"10.0.2.22\"", "\"10.0.9.22\"");
    lab.write_topology(&text);
    let run = lab.routectl(&["apply", "--auto-approve"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains("Nexthop has invalid gateway"),
        "{run:?}"
    );
    assert!(run.stdout.contains("still not as declared"), "{run:?}");
    // Routes via reachable gateways are in place everywhere.
    assert!(
        lab.routes("worker-0")
            .contains(&"10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string())
    );
    assert_eq!(
        lab.routes("worker-2").len(),
        2,
        "{:?}",
        lab.routes("worker-2")
    );
}

#[test]
fn dual_stack_routes_both_families() {
    let lab = NetnsLab::new(
        "pod_cidr = [\"10.1.0.0/16\", \"fd01::/32\"]",
        &[
            ("controller-0", &["10.0.2.10", "fd00::10"], &[]),
            (
                "worker-0",
                &["10.0.2.20", "fd00::20"],
                &["10.1.0.0/24", "fd01:0:0::/64"],
            ),
            (
                "worker-1",
                &["10.0.2.21", "fd00::21"],
                &["10.1.1.0/24", "fd01:0:1::/64"],
            ),
        ],
    );
    let run = lab.routectl(&["apply", "--auto-approve"]);
    assert_code(&run, 0);
    assert!(lab.routes("worker-0").contains(
        &"fd01:0:1::/64 via fd00::21 dev eth1 proto 211 metric 1024 pref medium".to_string()
    ));
    assert_eq!(lab.routes("controller-0").len(), 4);
    assert_eq!(lab.unreachable_pairs(), Vec::<String>::new());
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
}

#[test]
fn routes_lost_like_a_reboot_are_restored() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    lab.ip("worker-1", &["route", "flush", "proto", "211"]);
    assert!(lab.routes("worker-1").is_empty());
    let run = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&run, 0);
    let j = run.json();
    assert_eq!(j["summary"]["operations_applied"], 2);
    assert_eq!(j["summary"]["nodes_converged"], 1);
    assert_eq!(j["summary"]["nodes_in_sync"], 3);
    assert_eq!(lab.unreachable_pairs(), Vec::<String>::new());
}

#[test]
fn a_removed_node_and_a_changed_cidr_are_cleaned_up() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // worker-2 leaves the topology; worker-1's pod CIDR changes.
    let text = lab.topology_text();
    let cut = text.find("[[nodes]]\nname = \"worker-2\"").unwrap();
    let text = text[..cut].replace("\"10.1.1.0/24\"", "\"10.1.5.0/24\"");
    lab.write_topology(&text);
    // Two of worker-0's two routes go away: that is a mass deletion and needs saying so.
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 1);
    let run = lab.routectl(&["apply", "--auto-approve", "--allow-mass-delete"]);
    assert_code(&run, 0);
    assert_eq!(
        lab.routes("worker-0"),
        ["10.1.5.0/24 via 10.0.2.21 dev eth1 proto 211"]
    );
    // worker-2 is not in the topology any more: it is not contacted, its routes stay.
    assert_eq!(lab.routes("worker-2").len(), 2);
}

#[test]
fn the_interface_can_be_set_per_node() {
    let lab = NetnsLab::seed();
    // Put worker-1's link on eth7 in the kernel and in the topology.
    let ns = lab.ns("worker-1");
    support::sh(&["ip", "-n", &ns, "link", "set", "eth1", "down"]);
    support::sh(&["ip", "-n", &ns, "link", "set", "eth1", "name", "eth7"]);
    support::sh(&["ip", "-n", &ns, "link", "set", "eth7", "up"]);
    let text = lab.topology_text().replace(
        &format!("instance = \"{ns}\"\n"),
        &format!("instance = \"{ns}\"\ninterface = \"eth7\"\n"),
    );
    lab.write_topology(&text);
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    assert!(
        lab.routes("worker-1")
            .contains(&"10.1.0.0/24 via 10.0.2.20 dev eth7 proto 211".to_string())
    );
    assert_eq!(lab.unreachable_pairs(), Vec::<String>::new());
}

#[test]
fn a_saved_plan_applies_only_while_it_matches_the_nodes_and_the_topology() {
    let lab = NetnsLab::seed();
    let file = lab.dir().join("plan.json");
    let file = file.to_str().unwrap();
    assert_code(&lab.routectl(&["plan", "--out", file]), 0);

    // Drift after the plan was made: a route to a desired destination appears on worker-1.
    lab.ip(
        "worker-1",
        &[
            "route",
            "add",
            "10.1.0.0/24",
            "via",
            "10.0.2.20",
            "dev",
            "eth1",
            "proto",
            "211",
        ],
    );
    let stale = support::routectl_plain(&["apply", file]);
    assert_code(&stale, 1);
    assert!(
        stale.stderr.contains("the saved plan is stale"),
        "{stale:?}"
    );
    assert!(
        stale.stderr.contains("node `worker-1`: its routes changed"),
        "{stale:?}"
    );
    assert!(
        lab.routes("worker-0").is_empty(),
        "nothing may change: {:?}",
        lab.routes("worker-0")
    );

    // A fresh plan applies without a prompt (the file is the approval) and converges.
    assert_code(&lab.routectl(&["plan", "--out", file]), 0);
    let run = support::routectl_plain(&["apply", file]);
    assert_code(&run, 0);
    assert_eq!(lab.unreachable_pairs(), Vec::<String>::new());

    // Given a topology file, it must be the one the plan was made from.
    assert_code(&lab.routectl(&["plan", "--out", file]), 0);
    lab.write_topology(&lab.topology_text().replace("10.1.2.0/24", "10.1.3.0/24"));
    let other = lab.routectl(&["apply", file]);
    assert_code(&other, 1);
    assert!(
        other
            .stderr
            .contains("differs from the one the plan was made from"),
        "{other:?}"
    );
}

#[test]
fn a_mass_deletion_is_refused_unless_allowed() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // A truncated topology: only controller-0 and worker-0 are left.
    let text = lab.topology_text();
    let cut = text.find("[[nodes]]\nname = \"worker-1\"").unwrap();
    lab.write_topology(&text[..cut]);
    let run = lab.routectl(&["apply", "--auto-approve"]);
    assert_code(&run, 1);
    assert!(run.stderr.contains("refusing a mass deletion"), "{run:?}");
    assert!(
        run.stderr.contains("node `worker-0` would lose all 2"),
        "{run:?}"
    );
    assert_eq!(lab.routes("worker-0").len(), 2, "nothing was deleted");
    assert_code(
        &lab.routectl(&["apply", "--auto-approve", "--allow-mass-delete"]),
        0,
    );
    assert!(lab.routes("worker-0").is_empty());
}

#[test]
fn one_apply_at_a_time_and_a_killed_holder_leaves_no_lock() {
    let lab = NetnsLab::seed();
    let lock = lab.dir().join("routectl.lock");
    let lock_s = lock.to_str().unwrap();
    let mut holder = std::process::Command::new("flock")
        // -o: the lock is held by flock itself, not by its child, so killing flock frees it.
        .args(["-o", lock_s, "sleep", "60"])
        .spawn()
        .expect("flock (util-linux)");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = lab.routectl(&[
        "--lock-file",
        lock_s,
        "--lock-timeout",
        "0",
        "apply",
        "--auto-approve",
    ]);
    assert_code(&busy, 1);
    assert!(
        busy.stderr.contains("another routectl holds the lock"),
        "{busy:?}"
    );
    assert!(lab.routes("worker-0").is_empty());
    // Killed with SIGKILL: the kernel releases the lock.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let run = lab.routectl(&[
        "--lock-file",
        lock_s,
        "--lock-timeout",
        "0",
        "apply",
        "--auto-approve",
    ]);
    assert_code(&run, 0);

    // A waiting apply goes ahead once the holder is done.
    let mut holder = std::process::Command::new("flock")
        .args(["-o", lock_s, "sleep", "1"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    lab.ip("worker-0", &["route", "flush", "proto", "211"]);
    let waited = lab.routectl(&[
        "--lock-file",
        lock_s,
        "--lock-timeout",
        "20s",
        "apply",
        "--auto-approve",
    ]);
    assert_code(&waited, 0);
    assert!(
        waited.stderr.contains("waiting up to 20 s for the lock"),
        "{waited:?}"
    );
    assert_eq!(lab.routes("worker-0").len(), 2);
    holder.wait().unwrap();
}

#[test]
fn a_hung_node_times_out_and_the_others_proceed() {
    let lab = NetnsLab::seed();
    // An `ip` that hangs for one namespace only (as a node whose `ip` never returns would).
    let bin = lab.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real_ip = support::sh(&["sh", "-c", "command -v ip"])
        .trim()
        .to_string();
    let hung = lab.ns("worker-1");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = \"{hung}\" ] && exec sleep 60; done\nexec {real_ip} \"$@\"\n"
    );
    let wrapper = bin.join("ip");
    std::fs::write(&wrapper, script).unwrap();
    support::sh(&["chmod", "+x", wrapper.to_str().unwrap()]);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let started = std::time::Instant::now();
    let run = support::routectl_with(
        &lab.path,
        &["--timeout", "1s", "apply", "--auto-approve"],
        &[("PATH", &path)],
    );
    let took = started.elapsed();
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("worker-1: unreachable, nothing was changed"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("did not finish within 1 s and was killed"),
        "{run:?}"
    );
    assert_eq!(lab.routes("worker-0").len(), 2);
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}
