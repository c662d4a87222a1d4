//! What only the Incus lab shows (scripts/lab.sh --lab incus: Incus 6.0 from bookworm-backports
//! beside LXD, topology.example.toml's four nodes on bridge rtlab3, tests/labs/incus.toml). Every
//! scenario of tests/it/scenarios/ runs on this lab too (`scenarios::incus::`). Ignored by a
//! plain `cargo test`; scripts/test.sh installs Incus, brings the lab up and runs them.

use crate::support::assert_code;
use crate::support::labs::ContainerLab;

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn routectl_runs_incus_exec_and_a_stopped_container_is_unreachable_until_it_is_back() {
    let lab = ContainerLab::take("incus");
    let apply = lab.routectl(&["-v", "apply", "--auto-approve"]);
    assert_code(&apply, 0);
    // The read through `incus exec`, held for the write, which goes through the same process.
    assert!(
        apply
            .stderr
            .contains("+ incus exec worker-0 --force-noninteractive -- sh -c sb=$1; shift;"),
        "{apply:?}"
    );
    assert!(
        apply.stderr.contains("+ (held) worker-0: apply script "),
        "{apply:?}"
    );
    lab.client(&["stop", "--force", "worker-1"]);
    let run = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    assert_eq!(j["summary"]["nodes_unreachable"], 1, "{run:?}");
    assert_eq!(
        j["summary"]["operations_applied"], 0,
        "nothing deleted: {run:?}"
    );
    assert_eq!(lab.table("worker-0").len(), 2);
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
        [
            "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211"
        ]
    );
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
}

#[test]
#[ignore = "needs root and the Incus lab (scripts/test.sh brings it up and runs these)"]
fn discover_from_real_incus_gives_the_lab_topology() {
    let lab = ContainerLab::take("incus");
    let run = lab.routectl(&["discover", "--from", "incus"]);
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
