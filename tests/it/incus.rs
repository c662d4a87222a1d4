//! End-to-end tests on real Incus containers (scripts/lab.sh --lab incus: Incus 6.0 from
//! bookworm-backports beside LXD, three containers on bridge rtlab3, tests/labs/incus.toml).
//! Ignored by a plain `cargo test`; scripts/test.sh installs Incus, brings the lab up and runs
//! them with `--include-ignored`.

use crate::support::assert_code;
use crate::support::labs::ContainerLab;

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn apply_converges_real_incus_containers_and_a_second_apply_only_reads() {
    let lab = ContainerLab::take("incus");
    assert!(!lab.ping("worker-0", "10.4.0.1", "10.4.1.1"));
    let plan = lab.routectl(&["plan", "--detailed-exitcode"]);
    assert_code(&plan, 3);
    assert!(
        plan.stdout
            .contains("Plan: 4 to add, 0 to replace, 0 to delete on 3 of 3 nodes."),
        "{plan:?}"
    );
    let apply = lab.routectl(&["-v", "apply", "--auto-approve"]);
    assert_code(&apply, 0);
    assert!(
        apply
            .stderr
            .contains("+ incus exec worker-0 --force-noninteractive -- ip"),
        "{apply:?}"
    );
    assert_eq!(
        lab.table("controller-0"),
        [
            "10.4.0.0/24 via 10.0.5.20 dev eth1 proto 211",
            "10.4.1.0/24 via 10.0.5.21 dev eth1 proto 211",
        ]
    );
    assert!(lab.ping("worker-0", "10.4.0.1", "10.4.1.1"));
    assert!(lab.ping("worker-1", "10.4.1.1", "10.4.0.1"));

    let again = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&again, 0);
    assert_eq!(
        again.json()["summary"]["operations_applied"],
        0,
        "{again:?}"
    );
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
    let check = lab.routectl(&["check"]);
    assert_code(&check, 0);
    assert!(
        check.stdout.contains("Check: 2 of 2 paths pass."),
        "{check:?}"
    );
}

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn a_stopped_incus_container_is_unreachable_and_after_its_restart_apply_restores_its_routes() {
    let lab = ContainerLab::take("incus");
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    lab.client(&["stop", "--force", "worker-1"]);
    let run = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    assert_eq!(j["summary"]["nodes_unreachable"], 1, "{run:?}");
    assert_eq!(
        j["summary"]["operations_applied"], 0,
        "nothing deleted: {run:?}"
    );
    assert_eq!(lab.table("worker-0").len(), 1);
    // Started again it has lost its routes, like a rebooted node.
    lab.client(&["start", "worker-1"]);
    let mut tries = 0;
    loop {
        let run = lab.routectl(&["apply", "--auto-approve"]);
        if run.code == 0 {
            break;
        }
        tries += 1;
        assert!(tries < 50, "{run:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        lab.table("worker-1"),
        ["10.4.0.0/24 via 10.0.5.20 dev eth1 proto 211"]
    );
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
}

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn discover_from_real_incus_gives_the_lab_topology() {
    let lab = ContainerLab::take("incus");
    let run = lab.routectl(&["discover", "--from", "incus", "--name", "*-?"]);
    assert_code(&run, 0);
    let found = routectl::core::topology::parse(run.stdout.as_bytes(), "discovered", None).unwrap();
    let want =
        routectl::core::topology::parse(&std::fs::read(&lab.topology).unwrap(), "incus.toml", None)
            .unwrap();
    let strip = |t: &routectl::core::topology::Topology| -> Vec<String> {
        t.nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {} {:?} {:?}",
                    n.name, n.instance, n.internal_ips, n.pod_cidrs
                )
            })
            .collect()
    };
    assert_eq!(strip(&found), strip(&want));
    assert_eq!(found.cluster, want.cluster);
}

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn on_incus_a_conflicting_route_is_left_alone_and_an_identical_one_is_adopted_only_when_asked() {
    let lab = ContainerLab::take("incus");
    // worker-0: a hand-made route to worker-1's pods via the wrong gateway (a conflict);
    // controller-0: a hand-made route identical to a desired one (adoptable).
    lab.client(&[
        "exec",
        "worker-0",
        "--",
        "ip",
        "route",
        "add",
        "10.4.1.0/24",
        "via",
        "10.0.5.10",
        "dev",
        "eth1",
        "proto",
        "boot",
    ]);
    lab.client(&[
        "exec",
        "controller-0",
        "--",
        "ip",
        "route",
        "add",
        "10.4.1.0/24",
        "via",
        "10.0.5.21",
        "dev",
        "eth1",
        "proto",
        "boot",
    ]);
    let plan = lab.routectl(&["plan", "--output", "json"]);
    let j = plan.json();
    assert_eq!(j["summary"]["conflict"], 1, "{plan:?}");
    assert_eq!(j["summary"]["adopt"], 1, "{plan:?}");
    let apply = lab.routectl(&["apply", "--auto-approve"]);
    assert_ne!(apply.code, 0, "a conflict stands: {apply:?}");
    assert_eq!(
        lab.table("worker-0"),
        ["10.4.1.0/24 via 10.0.5.10 dev eth1"],
        "the foreign route is never changed"
    );
    assert!(
        lab.table("controller-0")
            .contains(&"10.4.1.0/24 via 10.0.5.21 dev eth1".to_string()),
        "not adopted without --adopt"
    );
    let run = lab.routectl(&[
        "apply",
        "--auto-approve",
        "--adopt",
        "--node",
        "controller-0",
    ]);
    assert_code(&run, 0);
    assert!(
        lab.table("controller-0")
            .contains(&"10.4.1.0/24 via 10.0.5.21 dev eth1 proto 211".to_string()),
        "{run:?}"
    );
}
