//! LXD projects and remotes against the real LXD: the project lab (scripts/lab.sh --lab
//! project: controller-0, worker-0, worker-1 in the project routectl-lab-proj on rtlab4, the
//! same names as the default lab's containers) and the loopback remote (scripts/lab.sh
//! remote). Ignored by a plain `cargo test`; scripts/test.sh brings both up.

use crate::support::assert_code;
use crate::support::labs::{ContainerLab, PROJECT, REMOTE, lab_script};
use crate::support::lxd::{LxdLab, lxc};

fn default_lab_tables() -> Vec<String> {
    ["controller-0", "worker-0", "worker-1"]
        .iter()
        .map(|n| lxc(&["exec", n, "--", "ip", "route", "show", "table", "main"]))
        .collect()
}

#[test]
#[ignore = "needs root and the LXD project lab (scripts/test.sh brings it up and runs these)"]
fn a_project_is_passed_to_every_lxc_call_and_the_default_projects_namesakes_are_untouched() {
    let lab = ContainerLab::take("project");
    // The default project's namesakes belong to the LXD lab: hold it so nobody changes them.
    let _default = LxdLab::take();
    let before = default_lab_tables();
    let apply = lab.routectl(&["-v", "apply", "--auto-approve"]);
    assert_code(&apply, 0);
    // Every process is an `lxc exec` in the project; the writes go through the reads held
    // for them (`+ (held) NODE: …`, no process of their own).
    let commands: Vec<&str> = apply
        .stderr
        .lines()
        .filter(|l| l.starts_with("+ ") && !l.starts_with("+ (held) "))
        .collect();
    assert!(!commands.is_empty(), "{apply:?}");
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with(&format!("+ lxc exec --project {PROJECT} "))),
        "{apply:?}"
    );
    assert!(apply.stderr.contains("+ (held) worker-0: "), "{apply:?}");
    assert_eq!(
        lab.table("worker-0"),
        ["10.5.1.0/24 via 10.0.6.21 dev eth1 proto 211"]
    );
    assert!(lab.ping("worker-0", "10.5.0.1", "10.5.1.1"));
    assert_eq!(
        default_lab_tables(),
        before,
        "the default project's containers"
    );
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
    let check = lab.routectl(&["check"]);
    assert_code(&check, 0);
}

#[test]
#[ignore = "needs root and the LXD project lab (scripts/test.sh brings it up and runs these)"]
fn a_per_node_project_overrides_the_clusters() {
    let lab = ContainerLab::take("project");
    // The cluster says "default"; every node names the lab's project itself.
    let topo = lab.variant("per-node.toml", |t| {
        t.replace(&format!("project = \"{PROJECT}\""), "project = \"default\"")
            .replace(
                "internal_ip = \"10.0.6.",
                &format!("project = \"{PROJECT}\"\ninternal_ip = \"10.0.6."),
            )
    });
    let _default = LxdLab::take();
    let before = default_lab_tables();
    assert_code(&lab.routectl_file(&topo, &["apply", "--auto-approve"]), 0);
    assert_eq!(lab.table("controller-0").len(), 2);
    assert_eq!(default_lab_tables(), before);
}

#[test]
#[ignore = "needs root and the LXD project lab (scripts/test.sh brings it up and runs these)"]
fn discover_from_a_project_and_picking_instances_by_name_and_profile() {
    let lab = ContainerLab::take("project");
    let run = lab.routectl(&["discover", "--from", "lxc", "--project", PROJECT]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains(&format!("project = \"{PROJECT}\"")),
        "{run:?}"
    );
    let found = routectl::core::topology::parse(run.stdout.as_bytes(), "discovered", None).unwrap();
    let names: Vec<(&str, Option<&str>)> = found
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.project.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("controller-0", Some(PROJECT)),
            ("worker-0", Some(PROJECT)),
            ("worker-1", Some(PROJECT)),
        ]
    );
    // The discovered topology drives the project's containers.
    let file = lab.dir.path().join("discovered.toml");
    std::fs::write(&file, &run.stdout).unwrap();
    assert_code(&lab.routectl_file(&file, &["apply", "--auto-approve"]), 0);
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);

    // --name picks instances by a glob; the profile filter by the profiles they use (every lab
    // container uses `default`, none uses a profile called `k8s-workers`).
    let run = lab.routectl(&[
        "discover",
        "--from",
        "lxc",
        "--project",
        PROJECT,
        "--name",
        "worker-*",
    ]);
    assert_code(&run, 0);
    assert!(
        run.stdout
            .contains("# 1 instance not matching --name worker-* left out."),
        "{run:?}"
    );
    assert!(!run.stdout.contains("controller-0"), "{run:?}");
    let run = lab.routectl(&[
        "discover",
        "--from",
        "lxc",
        "--project",
        PROJECT,
        "--profile",
        "default",
    ]);
    assert_code(&run, 0);
    assert_eq!(run.stdout.matches("[[nodes]]").count(), 3, "{run:?}");
    let run = lab.routectl(&[
        "discover",
        "--from",
        "lxc",
        "--project",
        PROJECT,
        "--profile",
        "k8s-workers",
    ]);
    assert_code(&run, 1);
    assert!(run.stderr.contains("no usable node found"), "{run:?}");
}

#[test]
#[ignore = "needs root, LXD and the loopback remote (scripts/test.sh sets them up)"]
fn instances_on_a_remote_are_reached_through_it() {
    let lab = ContainerLab::take("project");
    lab_script(&["remote"]);
    let topo = lab.variant("remote.toml", |t| {
        t.replace(
            "name = \"worker-0\"\n",
            &format!("name = \"worker-0\"\ninstance = \"{REMOTE}:worker-0\"\n"),
        )
        .replace(
            "name = \"worker-1\"\n",
            &format!("name = \"worker-1\"\ninstance = \"{REMOTE}:worker-1\"\n"),
        )
    });
    let apply = lab.routectl_file(&topo, &["-v", "apply", "--auto-approve"]);
    assert_code(&apply, 0);
    assert!(
        apply.stderr.contains(&format!(
            "+ lxc exec --project {PROJECT} {REMOTE}:worker-0 "
        )),
        "{apply:?}"
    );
    assert_eq!(
        lab.table("worker-1"),
        ["10.5.0.0/24 via 10.0.6.20 dev eth1 proto 211"]
    );
    assert_code(
        &lab.routectl_file(&topo, &["plan", "--detailed-exitcode"]),
        0,
    );
}
