//! `--take-over` replaces exactly the routes in the way; drift is told from topology
//! changes.

use crate::support::assert_code as code;
use crate::support::lab::Lab;

/// `--take-over`: foreign routes standing in desired routes' way are replaced by the desired
/// ones, each exactly (one alone in the desired route's key rewritten in place, one of another
/// key deleted by its identity before the add), through a saved plan; a foreign route in no
/// desired route's way is kept, and without the flag nothing foreign is touched.
pub fn take_over_replaces_exactly_the_routes_in_the_way(lab: &dyn Lab) {
    add_routes_in_the_way(lab);
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
    assert_worker_1_takes_over(&j);
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

/// Foreign routes in desired routes' way (two on worker-1: one alone in the desired route's
/// key, one of another key; one on controller-0) and one in no desired route's way (worker-0).
fn add_routes_in_the_way(lab: &dyn Lab) {
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
}

/// What the plan says worker-1's take-overs are: which route replaces which, and whether in
/// place.
fn assert_worker_1_takes_over(j: &serde_json::Value) {
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
