//! `--node`: reads and writes limited to the named nodes.

use super::*;

#[test]
fn node_option_limits_reads_to_that_node() {
    let lab = Fake::case("empty-lab");
    let r = lab.run(&["plan", "--color", "never", "--node", "worker-1"]);
    r.code(0);
    assert_eq!(
        lab.calls(),
        [format!(
            "lxc exec worker-1 --force-noninteractive -- {READ}"
        )]
    );
    r.stdout_has("worker-1: 2 to add")
        .stdout_lacks("controller-0:")
        .stdout_has("not planned: controller-0, worker-0, worker-2")
        .stdout_has("Plan: 2 to add, 0 to replace, 0 to delete on 1 of 1 node.");
    let json = lab
        .run(&[
            "plan", "-o", "json", "--node", "worker-1", "--node", "worker-2",
        ])
        .json();
    let names: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["worker-1", "worker-2"]);
    assert_eq!(
        json["skipped_nodes"],
        serde_json::json!(["controller-0", "worker-0"])
    );
}

#[test]
fn unknown_node_is_a_usage_error() {
    let lab = Fake::case("empty-lab");
    for args in [
        &["plan", "--node", "worker-9"][..],
        &["apply", "--auto-approve", "--node", "worker-9"],
    ] {
        lab.run(args)
            .code(2)
            .stderr_has("`worker-9` not declared in topology.toml");
    }
    lab.assert_no_calls();
}

#[test]
fn apply_node_writes_only_that_node() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    let r = lab.run(&["apply", "--auto-approve", "--node", "worker-2"]);
    r.code(0);
    let touched: Vec<String> = lab
        .calls()
        .iter()
        .map(|c| c.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    // The read, the batch, and the last-applied record.
    assert_eq!(
        touched,
        ["worker-2", "worker-2", "worker-2"],
        "{:?}",
        lab.calls()
    );
    assert!(lab.sent("worker-2").is_some());
}
