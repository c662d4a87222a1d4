//! Ownership: which routes are routectl's to change, which are adoptable, which conflict.

use super::*;

#[test]
fn owned_route_to_a_pod_cidr_outside_the_topology_is_deleted() {
    let lab = Fake::case("drift");
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(3);
    assert_eq!(r.stdout, case_expected("drift"));
    r.stdout_has("worker-1: 1 to delete\n  - 10.1.9.0/24 via 10.0.2.29 dev eth1 proto 211\n");
    let json = lab.run(&["plan", "-o", "json"]).json();
    let change = &json["nodes"][2]["changes"][0];
    assert_eq!(change["action"], "delete");
    assert_eq!(change["dst"], "10.1.9.0/24");
    assert_eq!(change["gateway"], "10.0.2.29");
    assert_eq!(change["protocol"], 211);
    assert_eq!(change["metric"], 0);
    assert_eq!(change["operation"], true);
}

/// A lab where the only difference is one foreign route identical to a desired one.
fn adoptable_lab() -> Fake {
    let lab = Fake::case("in-sync");
    lab.reads("controller-0", &case_json("drift", "controller-0"));
    lab
}

#[test]
fn identical_foreign_route_is_adoptable_and_not_pending_without_adopt() {
    let lab = adoptable_lab();
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(0);
    r.stdout_has(
        "controller-0: 1 adoptable\n  ~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 \
         (identical foreign route, proto boot: taken over only with --adopt)\n",
    )
    .stdout_has(
        "Plan: 0 to add, 0 to replace, 0 to delete, 1 adoptable with --adopt on 0 of 4 nodes.",
    );
    let json = lab.run(&["plan", "-o", "json"]).json();
    let change = &json["nodes"][0]["changes"][0];
    assert_eq!(change["action"], "adopt");
    assert_eq!(change["operation"], false);
    assert_eq!(change["current"]["protocol"], 3);
    assert_eq!(json["summary"]["adopt"], 1);
    assert_eq!(json["summary"]["operations"], 0);
    assert_eq!(json["summary"]["pending"], false);
}

#[test]
fn apply_without_adopt_says_what_it_left_adoptable() {
    let lab = adoptable_lab();
    lab.batches_converge();
    lab.run(&["apply", "--auto-approve", "--color", "never"])
        .code(0)
        .stdout_has("; 1 identical hand-made route left as it is (`--adopt` takes it over)");
    let adopted = lab.run(&["apply", "--auto-approve", "--adopt", "--color", "never"]);
    assert!(!adopted.stdout.contains("hand-made"), "{adopted:?}");
}

#[test]
fn identical_foreign_route_is_pending_with_adopt() {
    let lab = adoptable_lab();
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode", "--adopt"]);
    r.code(3);
    r.stdout_has("controller-0: 1 to adopt\n")
        .stdout_has("Plan: 0 to add, 0 to replace, 0 to delete, 1 to adopt on 1 of 4 nodes.");
    let json = lab.run(&["plan", "-o", "json", "--adopt"]).json();
    let change = &json["nodes"][0]["changes"][0];
    assert_eq!(change["operation"], true);
    assert_eq!(change["action"], "adopt");
    assert_eq!(change["current"]["protocol"], 3);
}

#[test]
fn foreign_route_with_another_gateway_is_a_conflict() {
    let lab = Fake::case("conflict");
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(3);
    assert_eq!(r.stdout, case_expected("conflict"));
    r.stdout_has(
        "  ! 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211  (blocked by foreign route: \
         10.1.1.0/24 via 10.0.2.99 dev eth1 proto boot; --take-over replaces it)\n",
    );
    let json = lab.run(&["plan", "-o", "json"]).json();
    let conflict = json["nodes"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "conflict")
        .expect("a conflict on controller-0")
        .clone();
    assert_eq!(conflict["dst"], "10.1.1.0/24");
    assert_eq!(conflict["gateway"], "10.0.2.21");
    assert_eq!(conflict["current"]["gateway"], "10.0.2.99");
    assert_eq!(conflict["operation"], false);
    assert!(conflict.get("command").is_none(), "{conflict}");

    // A conflict alone (nothing to run) still stands in the way: pending.
    let lab = Fake::case("in-sync");
    lab.reads("worker-1", &case_json("conflict", "worker-1"));
    lab.run(&["plan", "--detailed-exitcode"]).code(3);
    lab.run(&["plan"]).code(0);
}

#[test]
fn default_kernel_and_other_table_routes_never_change() {
    // worker-0 of other-tables: its default route and two routes in table 100 carry protocol
    // 211; the only changes are the two owned, undesired routes of table main.
    let lab = Fake::case("other-tables");
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("other-tables"));
    let json = lab.run(&["plan", "-o", "json"]).json();
    for n in json["nodes"].as_array().unwrap() {
        for c in n["changes"].as_array().unwrap() {
            assert_eq!(c["action"], "delete", "{c}");
            assert_ne!(c["dst"], "default", "{c}");
            assert_eq!(c["protocol"], 211, "{c}");
            assert!(
                ["10.1.5.7/32", "10.1.8.0/24"].contains(&c["dst"].as_str().unwrap()),
                "{c}"
            );
        }
    }
    // Kernel routes (the connected subnets, cnio0's pod CIDR) are never changes either.
    for case in ["empty-lab", "drift", "dual-stack"] {
        let lab = Fake::with_topology(&example_topology());
        for node in NODES {
            lab.reads(node, &case_json(case, node));
        }
        let text = lab.run(&["plan", "--color", "never"]).stdout;
        for kernel in ["10.0.1.0/24", "10.0.2.0/24", "fe80::/64", "default"] {
            assert!(!text.contains(kernel), "{case}: {kernel} in\n{text}");
        }
    }
}
