//! Host access writes what the batch lines say and reports like exec access.

use crate::support::assert_code;
use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

use super::*;

/// What apply's JSON says of a node: status and the commands of its failed lines.
fn node_result(j: &serde_json::Value, name: &str) -> (String, Vec<String>) {
    let n = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap();
    let failed = n["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["message"].as_str().unwrap().is_empty(), "{f}");
            f["command"].as_str().unwrap().to_string()
        })
        .collect();
    (n["status"].as_str().unwrap().to_string(), failed)
}

#[test]
#[ignore = "needs root: network namespaces and setns"]
fn host_access_writes_what_the_batch_lines_say_and_reports_like_exec_access() {
    let lab = NetnsLab::seed();
    let prepare = || {
        for n in ["worker-0", "worker-1", "worker-2", "controller-0"] {
            lab.ip(n, "route flush proto 211");
        }
        // An owned route that forwards wrongly (replaced) and a foreign one in the way of a
        // desired route (a conflict, never touched).
        lab.ip(
            "worker-0",
            "route add 10.1.1.0/24 via 10.0.2.22 proto 211 metric 0",
        );
        lab.ip(
            "worker-0",
            "route replace 10.1.2.0/24 via 10.0.2.21 proto boot",
        );
    };
    let mut results = Vec::new();
    for access in ["exec", "host"] {
        prepare();
        let run = lab.run(&["--access", access, "apply", "--auto-approve", "-o", "json"]);
        assert_code(&run, 1);
        let j = run.json();
        assert_eq!(
            sorted(lab.table("worker-0")),
            [
                "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "10.1.2.0/24 via 10.0.2.21 dev eth1",
            ],
            "{access}: {run:?}"
        );
        let w0 = node_result(&j, "worker-0");
        let w1 = node_result(&j, "worker-1");
        assert_eq!(w0.0, "failed", "a conflict stands: {run:?}");
        assert_eq!(w1.0, "converged", "{run:?}");
        results.push((w0, w1, j["summary"]["operations_applied"].clone()));
    }
    assert_eq!(
        results[0], results[1],
        "exec and host access report the same"
    );
}
