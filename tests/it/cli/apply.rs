//! `apply` against the fake: the batch, the read-back, saved plans, and the record written
//! after an apply.

use super::*;

#[test]
fn apply_sends_the_expected_batch_and_verifies_the_read_back() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(0);
    for node in NODES {
        let expected = fs::read_to_string(capture_path(
            "apply-converged",
            &format!("{node}.batch.stdin"),
        ))
        .unwrap();
        // The capture's batch ended with its read-back; the apply script reads back after the
        // route lines (and the record), in the same round trip.
        let lines = expected.strip_suffix("route show table all\n").unwrap();
        assert_eq!(lab.sent(node).as_deref(), Some(lines), "{node}");
        assert_eq!(
            lab.calls_to(node, READ),
            1,
            "read once: the batch reads back"
        );
        assert_eq!(lab.calls_to(node, BATCH), 1);
    }
    assert_eq!(
        lab.sent("controller-0").unwrap(),
        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0\n\
         route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0\n\
         route add 10.1.2.0/24 via 10.0.2.22 dev eth1 table 254 proto 211 metric 0\n"
    );
    r.stdout_has("Plan: 9 to add, 0 to replace, 0 to delete on 4 of 4 nodes.")
        .stdout_has("controller-0: converged (3 changes)")
        .stdout_has("worker-2: converged (2 changes)")
        .stdout_has(
            "Apply: 9 operations applied; 4 nodes converged, 0 in sync, 0 failed, 0 unreachable",
        );
}

#[test]
fn apply_json_report() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    let r = lab.run(&["apply", "--auto-approve", "-o", "json"]);
    r.code(0);
    let json = r.json();
    assert_eq!(json["format_version"], 2);
    assert_eq!(json["kind"], "apply");
    assert_eq!(json["success"], true);
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    for n in nodes {
        assert_eq!(n["status"], "converged", "{n}");
        assert_eq!(n["remaining"], serde_json::json!([]), "{n}");
    }
    assert_eq!(
        nodes[1]["sent"],
        serde_json::json!([
            "ip route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0",
            "ip route add 10.1.2.0/24 via 10.0.2.22 dev eth1 table 254 proto 211 metric 0",
        ])
    );
    assert_eq!(json["summary"]["operations_applied"], 9);
    assert_eq!(json["summary"]["nodes_converged"], 4);
}

#[test]
fn apply_fails_when_the_read_back_still_lacks_a_route() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.batch_capture("worker-1", "apply-incomplete");
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(1);
    r.stdout_has("worker-1: FAILED\n")
        .stdout_has("still not as declared (read back from the node):")
        .stdout_has("+ 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211")
        .stdout_has("worker-0: converged (2 changes)");
    let json = lab.run(&["apply", "--auto-approve", "-o", "json"]).json();
    assert_eq!(json["success"], false);
    let w1 = &json["nodes"][2];
    assert_eq!(w1["status"], "failed");
    assert_eq!(w1["remaining"][0]["action"], "add");
    assert_eq!(w1["remaining"][0]["dst"], "10.1.2.0/24");
}

#[test]
fn apply_reports_the_kernel_message_of_a_failed_line() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    // Real run: a foreign 10.1.1.0/24 appeared on worker-0 between routectl's read and write.
    lab.batch_capture("worker-0", "apply-file-exists");
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(1);
    r.stdout_has("worker-0: FAILED\n")
        .stdout_has(
            "  x ip route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0: \
             RTNETLINK answers: File exists\n",
        )
        .stdout_has(
            "! 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211  (blocked by foreign route: \
             10.1.1.0/24 via 10.0.2.99 dev eth1 proto boot; --take-over replaces it)",
        )
        .stdout_has("Apply: 8 operations applied; 3 nodes converged, 0 in sync, 1 failed");
    let json = lab.run(&["apply", "--auto-approve", "-o", "json"]).json();
    assert_eq!(
        json["nodes"][1]["failures"],
        serde_json::json!([{
            "command": "route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0",
            "message": "RTNETLINK answers: File exists",
        }])
    );
}

#[test]
fn apply_without_auto_approve_and_without_a_terminal_refuses() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    let r = lab.run(&["apply", "--color", "never", "--adopt", "--node", "worker-1"]);
    r.code(1)
        .stderr_has("refusing to change routes without approval: stdin is not a terminal")
        // The command as given, options kept, plus --auto-approve.
        .stderr_has("then run `routectl ")
        .stderr_has(" apply --color never --adopt --node worker-1 --auto-approve`");
    let batches: Vec<String> = lab
        .calls()
        .into_iter()
        .filter(|c| c.contains("-batch"))
        .collect();
    assert_eq!(batches, Vec::<String>::new(), "nothing may be written");
    for node in NODES {
        assert_eq!(lab.sent(node), None);
    }
}

#[test]
fn apply_never_writes_an_unreachable_node() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.fails("worker-1", NOT_RUNNING, 1);
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(1);
    assert_eq!(lab.calls_to("worker-1", BATCH), 0);
    assert_eq!(lab.sent("worker-1"), None);
    for node in ["controller-0", "worker-0", "worker-2"] {
        assert_eq!(lab.calls_to(node, BATCH), 1, "{node}");
    }
    let line = r.last_line("worker-1:");
    assert!(
        line.contains("unreachable")
            && line.contains("nothing was changed")
            && line.contains("Instance is not running"),
        "{line}"
    );
    r.stdout_has("worker-0: converged (2 changes)")
        .stdout_has("3 nodes converged, 0 in sync, 0 failed, 1 unreachable");
}

#[test]
fn apply_of_an_in_sync_lab_runs_nothing() {
    let lab = Fake::case("in-sync");
    let r = lab.run(&["apply", "--auto-approve"]);
    r.code(0).stdout_has("No changes: 4 nodes in sync.");
    // Without --auto-approve and without a terminal there is nothing to approve either.
    lab.run(&["apply"]).code(0);
    assert!(
        lab.calls().iter().all(|c| c.ends_with(READ)),
        "{:?}",
        lab.calls()
    );
}

/// The LXD bug on the write: the batch "succeeds" printing nothing. What is true must then be
/// read, not assumed.
#[test]
fn apply_reads_again_when_the_batch_prints_nothing() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.answer("worker-0.batch", b"", "", 0);
    lab.reads("worker-0", &case_json("empty-lab", "worker-0"));
    lab.answer("worker-0.read.2", &case_json("in-sync", "worker-0"), "", 0);
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(0).stdout_has("worker-0: converged (2 changes)");
    assert_eq!(lab.calls_to("worker-0", READ), 2);

    // And when that read shows nothing was done, the node failed.
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.answer("worker-0.batch", b"", "", 0);
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(1)
        .stdout_has("worker-0: FAILED")
        .stdout_has("+ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211");
}

/// A write that hangs is killed; what it did is then read, not guessed.
#[test]
fn apply_reads_again_after_a_batch_timeout() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.write("worker-0.batch.sleep", b"20");
    let started = Instant::now();
    let r = lab.run(&[
        "apply",
        "--auto-approve",
        "--color",
        "never",
        "--timeout",
        "500ms",
    ]);
    assert!(started.elapsed() < Duration::from_secs(10));
    r.code(1);
    assert_eq!(lab.calls_to("worker-0", READ), 2, "{:?}", lab.calls());
    r.stdout_has("worker-0: FAILED")
        .stdout_has("did not finish within 0.5 s")
        .stdout_has("+ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211")
        .stdout_has("worker-1: converged (2 changes)");
}

#[test]
fn apply_to_a_node_stopped_between_read_and_write_fails_that_node() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.fails("worker-0", NOT_RUNNING, 1);
    lab.answer(
        "worker-0.read.1",
        &case_json("empty-lab", "worker-0"),
        "",
        0,
    );
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(1);
    assert_eq!(lab.calls_to("worker-0", BATCH), 1);
    r.stdout_has("worker-0: FAILED")
        .stdout_has("Error: Instance is not running")
        .stdout_has("3 nodes converged, 0 in sync, 1 failed, 0 unreachable");
}

#[test]
fn saved_plan_is_applied_only_while_the_nodes_are_unchanged() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.run(&["plan", "--out", "plan.json"]).code(0);
    // worker-1 drifts after the plan was saved: the plan is stale, nothing is written.
    lab.reads("worker-1", &case_json("drift", "worker-1"));
    lab.run(&["apply", "plan.json"])
        .code(1)
        .stderr_has("stale")
        .stderr_has("worker-1");
    assert_eq!(
        lab.calls().iter().filter(|c| c.contains("-batch")).count(),
        0
    );
    // Back as planned: applied without a prompt (stdin is not a terminal here).
    lab.reads("worker-1", &case_json("empty-lab", "worker-1"));
    lab.run(&["apply", "plan.json", "--color", "never"])
        .code(0)
        .stdout_has("Apply: 9 operations applied; 4 nodes converged");
}

#[test]
fn from_empty_json_plan_says_each_fact_once_and_its_saved_plan_applies_it() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.run(&["plan", "--out", "plan.json", "-o", "json"])
        .code(0);
    let bytes = fs::read(lab.path("plan.json")).unwrap();
    // A file: compact, one line.
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
    let saved: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(saved["format_version"], 2);
    let mut lines = Vec::new();
    for n in saved["nodes"].as_array().unwrap() {
        let mut node_lines = Vec::new();
        for c in n["changes"].as_array().unwrap() {
            let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                // (Sorted: the test's `serde_json` keeps no order.)
                [
                    "action",
                    "cause",
                    "current",
                    "dev",
                    "dst",
                    "gateway",
                    "in_place",
                    "metric",
                    "operation",
                    "protocol"
                ],
                "{c}"
            );
            assert_eq!(
                (&c["action"], &c["operation"]),
                (&"add".into(), &true.into())
            );
            // The line apply sends follows from the fields alone.
            node_lines.push(format!(
                "route add {} via {} dev {} table 254 proto {} metric {}",
                c["dst"].as_str().unwrap(),
                c["gateway"].as_str().unwrap(),
                c["dev"].as_str().unwrap(),
                c["protocol"],
                c["metric"]
            ));
        }
        lines.push((n["name"].as_str().unwrap().to_string(), node_lines));
    }
    assert_eq!(saved["summary"]["add"], 9);
    // Printed on stdout, the same plan is the same document without `saved`.
    let mut printed = saved.clone();
    printed.as_object_mut().unwrap().remove("saved");
    let stdout = lab.run(&["plan", "-o", "json"]);
    assert_eq!(stdout.json(), printed);

    let applied = lab.run(&["apply", "plan.json", "-o", "json"]);
    applied.code(0);
    let applied = applied.json();
    assert_eq!(applied["format_version"], 2);
    // (Its topology's path names the plan file it came from.)
    assert_eq!(applied["plan"]["nodes"], printed["nodes"]);
    assert_eq!(applied["summary"]["operations_applied"], 9);
    for (node, node_lines) in lines {
        let sent = lab.sent(&node).unwrap();
        for line in &node_lines {
            assert!(
                sent.lines().any(|l| l == line),
                "{node}: {line:?} not in {sent:?}"
            );
        }
        assert_eq!(
            sent.lines().filter(|l| l.starts_with("route add")).count(),
            node_lines.len(),
            "{node}: {sent:?}"
        );
    }
}

#[test]
fn a_saved_plan_of_the_first_format_is_refused_by_name() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    lab.run(&["plan", "--out", "plan.json"]).code(0);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fs::read(lab.path("plan.json")).unwrap()).unwrap();
    doc["format_version"] = 1.into();
    fs::write(lab.path("old.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    lab.run(&["apply", "old.json"]).code(1).stderr_has(
        "`old.json` is a plan of format_version 1, this routectl reads format_version 2: \
             make the plan again with `routectl plan --out FILE`",
    );
    assert_eq!(
        lab.calls().iter().filter(|c| c.contains("-batch")).count(),
        0
    );
}

#[test]
fn apply_deletes_only_owned_routes_of_table_main() {
    let lab = Fake::case("other-tables");
    lab.batch_capture("worker-0", "apply-deletes");
    let r = lab.run(&["apply", "--auto-approve", "--color", "never"]);
    r.code(0).stdout_has("worker-0: converged (2 changes)");
    let expected =
        fs::read_to_string(capture_path("apply-deletes", "worker-0.batch.stdin")).unwrap();
    let lines = expected.strip_suffix("route show table all\n").unwrap();
    assert_eq!(lab.sent("worker-0").as_deref(), Some(lines));
    for node in ["controller-0", "worker-1", "worker-2"] {
        assert_eq!(lab.calls_to(node, BATCH), 0, "{node} is in sync");
    }
}

#[test]
fn apply_verbose_shows_commands_and_the_script() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    let r = lab.run(&["apply", "--auto-approve", "-v", "--node", "worker-0"]);
    r.code(0)
        // The read, held for the write; the write through it, with what it is sent.
        .stderr_has("+ lxc exec worker-0 --force-noninteractive -- sh -c sb=$1; shift;")
        .stderr_has("(held for the write)")
        .stderr_has("+ (held) worker-0: apply script /run/routectl/last-applied/worker-0.json")
        .stderr_has("  | route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0")
        .stderr_has("  |   \"node\": \"worker-0\",");
}

/// What the read script prints on worker-0 of the empty lab: `ip`'s part, the binding, the
/// record.
fn worker_0_read(binding: &str, record: &[u8]) -> Vec<u8> {
    let mut read = case_json("empty-lab", "worker-0");
    read.extend(
        format!(
            "\n{}\n{binding}\n{}\n",
            observe::SEPARATOR,
            observe::SEPARATOR
        )
        .as_bytes(),
    );
    read.extend(record);
    read
}

/// After a write and its read-back, the node's record is stored through the transport (the
/// record on stdin), bound to what the read before the write computed the node to be; a later
/// read that finds it with the same binding calls the lost routes drift.
#[test]
fn the_record_written_after_an_apply_turns_lost_routes_into_drift() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    // What the read script prints on a node: `ip`'s part, the binding, the record (none yet).
    let with = worker_0_read;
    let binding = "boot=6c77b6a2 pid1=11070 netns=net:[4026532269]";
    lab.reads("worker-0", &with(binding, b""));
    lab.run(&["apply", "-y"]).code(0);
    let calls = lab.calls();
    assert_eq!(
        calls.iter().filter(|c| c.ends_with(RECORD)).count(),
        4,
        "one record per written node: {calls:?}"
    );
    let record = fs::read(lab.path("worker-0.record")).expect("worker-0's record");
    let parsed: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(
        parsed["routes"],
        serde_json::json!([
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211"
        ])
    );
    assert_eq!(parsed["binding"], binding);
    assert_eq!(parsed["format_version"], 2);
    // A node whose read computed no binding gets an unbound record.
    let w1: serde_json::Value =
        serde_json::from_slice(&fs::read(lab.path("worker-1.record")).unwrap()).unwrap();
    assert_eq!(w1["binding"], serde_json::Value::Null);
    // Nothing but the routes and the record was written: no `ip link`, no alias.
    assert!(
        calls
            .iter()
            .all(|c| !c.contains("ip link") && !c.contains("alias")),
        "{calls:?}"
    );
    // The node lost its routes (as the empty lab shows) but kept the record, and it is the
    // same node (same binding).
    lab.reads("worker-0", &with(binding, &record));
    let j = lab.run(&["plan", "-o", "json"]).json();
    let w0 = &j["nodes"][1];
    assert_eq!(w0["last_applied"]["routes"], parsed["routes"]);
    assert!(
        w0["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["cause"] == "drift"),
        "{w0:#}"
    );
    assert!(
        j["nodes"][2]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["cause"] == "topology")
    );
    // Another binding (PID 1 started again: the node restarted since): the record tells what
    // the restart lost, as drift, said plainly.
    lab.reads(
        "worker-0",
        &with("boot=6c77b6a2 pid1=98001 netns=net:[4026532269]", &record),
    );
    let j = lab.run(&["plan", "-o", "json"]).json();
    let w0 = &j["nodes"][1];
    assert_eq!(w0["last_applied"]["restarted"], true, "{j:#}");
    assert!(
        w0["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["cause"] == "drift"),
        "{w0:#}"
    );
    assert_eq!(
        w0["warnings"][0].as_str().unwrap(),
        format!(
            "worker-0 restarted since the last apply (at {}): 2 routes lost",
            parsed["applied_at"].as_str().unwrap()
        ),
        "{j:#}"
    );
    lab.run(&["plan"])
        .stdout_has("warning: worker-0 restarted since the last apply (at ")
        .stdout_has("[drift: ")
        // The drift is part of the changes counted, not more of them.
        .stdout_has("worker-0: 2 to add (2 repair drift)\n")
        .stdout_has("on 4 of 4 nodes; 2 of them repair drift.");
}
