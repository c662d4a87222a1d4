//! End-to-end tests of `discover --from lxc` against the real LXD lab of topology.example.toml
//! (controller-0 and worker-0/1/2, eth1 on a private bridge, cnio0 with the pod gateway), and
//! the guide from the tutorial step by step. They need the lab (and root), so they are ignored
//! by a plain `cargo test`; scripts/test.sh brings the lab up and runs them with
//! `--include-ignored`. Without `lxc` or the lab they fail, loudly. Each test takes the lab
//! alone (tests/it/support/lxd.rs), starts from no routes but the kernel's and leaves it that
//! way. The show and check scenarios run on every lab, LXD included, from
//! tests/it/scenarios/.

use crate::support::assert_code;
use crate::support::lab::Lab;
use crate::support::lxd::{LxdLab, lxc};

const NODES: [&str; 4] = ["controller-0", "worker-0", "worker-1", "worker-2"];

fn topology(text: &str) -> routectl::core::topology::Topology {
    routectl::core::topology::parse(text.as_bytes(), "t.toml", None)
        .unwrap_or_else(|p| panic!("{p}\n{text}"))
}

/// The node lines of a topology, comparable.
fn strip(t: &routectl::core::topology::Topology) -> Vec<String> {
    t.nodes
        .iter()
        .map(|n| {
            format!(
                "{} {} {:?} {:?} {:?}",
                n.name, n.instance, n.interface, n.internal_ips, n.pod_cidrs
            )
        })
        .collect()
}

/// `lxc list --format json` as it is now, narrowed to the lab's own containers (those
/// scripts/lab.sh marks `user.routectl-lab=true`), saved in the test's directory. The LXD daemon
/// is shared: other labs' containers may live in the same project, and `discover` rightly lists
/// them too; a saved list is how the tests discover exactly the lab.
fn lab_list(lab: &LxdLab) -> std::path::PathBuf {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&lxc(&["list", "--format", "json"])).expect("lxc list JSON");
    let mine: Vec<&serde_json::Value> = all
        .iter()
        .filter(|i| i["config"]["user.routectl-lab"] == "true")
        .collect();
    assert_eq!(
        mine.iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        NODES,
        "the lab's containers (scripts/lab.sh up --lxd topology.example.toml repairs them)"
    );
    let path = lab.dir().join("lxc-list.json");
    std::fs::write(&path, serde_json::to_vec(&mine).unwrap()).unwrap();
    path
}

#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn discover_from_lxc_reproduces_the_example_topology() {
    let lab = LxdLab::take();
    let example = topology(&std::fs::read_to_string(lab.topology_path()).unwrap());
    // Run live (`lxc list` itself), the lab's nodes are among those found, exactly.
    let live = lab.run(&["discover", "--from", "lxc"]);
    assert_code(&live, 0);
    let found = strip(&topology(&live.stdout));
    for node in strip(&example) {
        assert!(found.contains(&node), "{node} not found: {live:?}");
    }
    // From the lab's own list, the example itself.
    let list = lab_list(&lab);
    let run = lab.run(&["discover", "--from", "lxc", list.to_str().unwrap()]);
    assert_code(&run, 0);
    let found = topology(&run.stdout);
    assert_eq!(strip(&found), strip(&example));
    assert_eq!(found.cluster, example.cluster);

    // It validates and plans exactly like the example.
    let file = lab.dir().join("discovered.toml");
    std::fs::write(&file, &run.stdout).unwrap();
    assert_code(&lab.run_file(&file, &["validate"]), 0);
    let mine = lab.run_file(&file, &["plan", "--output", "json"]).json();
    let theirs = lab.run(&["plan", "--output", "json"]).json();
    assert_eq!(mine["nodes"], theirs["nodes"]);
    assert_eq!(mine["summary"]["add"], 9);
}

#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn the_guide_from_the_tutorial_works_on_the_lab() {
    // docs/guide-from-the-tutorial.md, step by step.
    let lab = LxdLab::take();
    // The tutorial's hand-made routes (protocol boot) on every node.
    let pods = [
        ("10.1.0.0/24", "10.0.2.20"),
        ("10.1.1.0/24", "10.0.2.21"),
        ("10.1.2.0/24", "10.0.2.22"),
    ];
    for (i, n) in NODES.iter().enumerate() {
        for (k, (cidr, via)) in pods.iter().enumerate() {
            if i != k + 1 {
                lab.ip(n, &format!("route add {cidr} via {via} dev eth1"));
            }
        }
    }
    let topo = lab.dir().join("topology.toml");
    let topo_s = topo.to_str().unwrap();
    let list = lab_list(&lab);
    assert_code(
        &lab.run(&[
            "discover",
            "--from",
            "lxc",
            list.to_str().unwrap(),
            "-o",
            topo_s,
        ]),
        0,
    );
    let run = lab.run_file(&topo, &["validate"]);
    assert_code(&run, 0);
    // Identical hand-made routes are not pending changes: the plan is empty but says so …
    let plan = lab.run_file(&topo, &["plan", "--detailed-exitcode"]);
    assert_code(&plan, 0);
    assert!(
        plan.stdout.contains(
            "Plan: 0 to add, 0 to replace, 0 to delete, 9 adoptable with --adopt on 0 of 4 nodes."
        ),
        "{plan:?}"
    );
    // … and taking them over is.
    let adopt = lab.run_file(&topo, &["plan", "--adopt", "--detailed-exitcode"]);
    assert_code(&adopt, 3);
    assert!(adopt.stdout.contains("9 to adopt"), "{adopt:?}");
    assert_code(
        &lab.run_file(&topo, &["apply", "--adopt", "--auto-approve"]),
        0,
    );
    let plan = lab.run_file(&topo, &["plan", "--detailed-exitcode"]);
    assert_code(&plan, 0);
    let md = lab.run_file(&topo, &["plan", "--output", "markdown"]);
    assert_code(&md, 0);
    assert!(md.stdout.starts_with("### routectl plan for "), "{md:?}");
    assert_code(&lab.run_file(&topo, &["apply", "--auto-approve"]), 0);
    assert_code(&lab.run_file(&topo, &["check"]), 0);
    let show = lab.run_file(&topo, &["show", "--output", "json"]).json();
    assert_eq!(show["summary"]["owned"], 9);
    assert_eq!(show["summary"]["foreign"], 0);
}
