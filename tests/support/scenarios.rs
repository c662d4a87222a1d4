//! Scenarios that run the same way on every real lab (network namespaces, LXD), so that each
//! backend proves the same behaviour with one text of the test.

use super::Run;
use super::assert_code as code;

/// What a scenario needs from a lab of topology.example.toml's four nodes.
pub trait Lab {
    /// Runs routectl with the lab's topology.
    fn run(&self, args: &[&str]) -> Run;
    /// `ip route` lines of a node's table main, without kernel and link-local routes.
    fn table(&self, node: &str) -> Vec<String>;
    /// Runs `ip WORDS…` (split on white space) in a node.
    fn ip_words(&self, node: &str, words: &str);
    /// Pairs of workers whose pod gateways cannot reach each other.
    fn broken_paths(&self) -> Vec<String>;
    /// Runs routectl with a variant of the lab's topology (`edit` rewrites its text; the file is
    /// the test's own, beside the lab's).
    fn run_variant(&self, edit: &dyn Fn(String) -> String, args: &[&str]) -> Run;
    /// Removes a node's last-applied record (as if routectl had never applied there).
    fn forget_record(&self, node: &str);
}

fn has(lab: &dyn Lab, node: &str, route: &str) -> bool {
    lab.table(node).iter().any(|r| r == route)
}

/// From no routes: apply converges and pods reach pods; a second apply only reads (no batch is
/// sent; a read that printed nothing may be retried) and plan reports in sync.
pub fn apply_converges_then_changes_nothing(lab: &dyn Lab) {
    assert!(
        !lab.broken_paths().is_empty(),
        "pods reach each other before any route exists?"
    );
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
        ]
    );
    assert_eq!(lab.table("controller-0").len(), 3);

    let again = lab.run(&["-v", "apply", "--auto-approve", "--output", "json"]);
    code(&again, 0);
    let j = again.json();
    assert_eq!(j["summary"]["operations_applied"], 0, "{again:?}");
    assert_eq!(j["summary"]["nodes_in_sync"], 4, "{again:?}");
    let commands: Vec<&str> = again
        .stderr
        .lines()
        .filter(|l| l.starts_with("+ "))
        .collect();
    assert!(commands.len() >= 4, "{again:?}");
    assert!(
        commands
            .iter()
            .all(|c| c.ends_with("-N -d -j route show table all")),
        "only reads: {again:?}"
    );
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

/// Drift: an owned route deleted by hand, an owned route re-pointed, an owned route to a CIDR
/// nobody has, a foreign route elsewhere, a foreign route identical to a desired one. apply
/// repairs exactly the owned ones, leaves the foreign ones, adopts the identical one only with
/// `--adopt`.
pub fn drift_is_repaired_only_where_owned(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.ip_words("worker-0", "route del 10.1.1.0/24 proto 211");
    lab.ip_words(
        "worker-1",
        "route replace 10.1.0.0/24 via 10.0.2.22 dev eth1 proto 211",
    );
    lab.ip_words(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip_words(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    lab.ip_words("controller-0", "route del 10.1.0.0/24 proto 211");
    lab.ip_words(
        "controller-0",
        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1",
    );

    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    code(&plan, 3);
    for line in [
        "+ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
        "~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
        "- 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
        "taken over only with --adopt",
    ] {
        assert!(plan.stdout.contains(line), "plan lacks {line:?}: {plan:?}");
    }

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert!(has(
        lab,
        "worker-0",
        "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"
    ));
    assert!(has(
        lab,
        "worker-1",
        "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"
    ));
    let w2 = lab.table("worker-2");
    assert!(!w2.iter().any(|l| l.starts_with("10.1.9.0/24")), "{w2:?}");
    assert!(
        has(lab, "worker-2", "192.168.77.0/24 via 10.0.2.20 dev eth1"),
        "foreign route kept: {w2:?}"
    );
    // The identical foreign route stays as it is without --adopt …
    assert!(has(
        lab,
        "controller-0",
        "10.1.0.0/24 via 10.0.2.20 dev eth1"
    ));
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    // … and is taken over with it.
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 3);
    code(&lab.run(&["apply", "--auto-approve", "--adopt"]), 0);
    assert!(has(
        lab,
        "controller-0",
        "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"
    ));
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

/// `--take-over`: foreign routes standing in desired routes' way are replaced by the desired
/// ones, each exactly (one alone in the desired route's key rewritten in place, one of another
/// key deleted by its identity before the add), through a saved plan; a foreign route in no
/// desired route's way is kept, and without the flag nothing foreign is touched.
pub fn take_over_replaces_exactly_the_routes_in_the_way(lab: &dyn Lab) {
    lab.ip_words("worker-1", "route add 10.1.0.0/24 via 10.0.2.99 dev eth1");
    lab.ip_words(
        "worker-1",
        "route add 10.1.2.0/24 via 10.0.2.99 dev eth1 proto static metric 10",
    );
    lab.ip_words(
        "controller-0",
        "route add 10.1.1.0/24 via 10.0.2.99 dev eth1 proto static",
    );
    lab.ip_words(
        "worker-0",
        "route add 10.1.99.0/24 via 10.0.2.99 dev eth1 proto static",
    );
    let kept = "10.1.99.0/24 via 10.0.2.99 dev eth1 proto static";

    // Without --take-over: conflicts, and apply changes nothing foreign.
    let plain = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(plain["summary"]["conflict"], 3, "{plain:#}");
    assert_eq!(plain["summary"]["take_over"], 0);
    code(&lab.run(&["apply", "--auto-approve"]), 1);
    // (`ip route` does not print `proto boot`.)
    assert!(has(lab, "worker-1", "10.1.0.0/24 via 10.0.2.99 dev eth1"));

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
    let w1 = &j["nodes"][2];
    let takes: Vec<(String, bool, String)> = w1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "take_over")
        .map(|c| {
            (
                c["current"]["route"].as_str().unwrap().to_string(),
                c["in_place"].as_bool().unwrap(),
                c["command"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        takes,
        [
            (
                "10.1.0.0/24 via 10.0.2.99 dev eth1 proto boot".to_string(),
                true,
                "ip route replace 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0"
                    .to_string()
            ),
            (
                "10.1.2.0/24 via 10.0.2.99 dev eth1 proto static metric 10".to_string(),
                false,
                "ip route del 10.1.2.0/24 via 10.0.2.99 dev eth1 table 254 proto 4 metric 10"
                    .to_string()
            ),
        ],
        "{w1:#}"
    );
    let text = lab.run(&["plan", "--take-over"]);
    assert!(
        text.stdout.contains(
            "  > 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 (takes over foreign route `10.1.0.0/24 via 10.0.2.99 dev eth1 proto boot` in place)"
        ),
        "{text:?}"
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["saved"]["take_over"], true);
    code(&lab.run(&["apply", file.to_str().unwrap()]), 0);

    assert_eq!(
        lab.table("worker-1"),
        [
            "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
        ]
    );
    assert!(has(
        lab,
        "controller-0",
        "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"
    ));
    assert_eq!(
        lab.table("controller-0").len(),
        3,
        "{:?}",
        lab.table("controller-0")
    );
    assert!(has(lab, "worker-0", kept), "{:?}", lab.table("worker-0"));
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    code(&lab.run(&["plan", "--detailed-exitcode", "--take-over"]), 0);
    assert!(has(lab, "worker-0", kept));
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

    lab.ip_words("worker-0", "route del 10.1.1.0/24 proto 211");
    lab.ip_words("worker-1", "route del 10.1.0.0/24 proto 211");
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

/// `apply --canary`: a mistyped internal IP (worker-2's) is caught on the canary: with
/// `--canary-rollback` (from a saved plan) the canary is put back as it was, without it the
/// canary keeps its routes; either way no other node is changed and the failed path is named.
/// The right topology then rolls out everywhere.
pub fn canary_stops_a_bad_topology_and_rolls_out_a_good_one(lab: &dyn Lab) {
    let others = ["controller-0", "worker-1", "worker-2"];
    let before: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    let mistyped = |t: String| t.replace("\"10.0.2.22\"", "\"10.0.2.32\"");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    code(
        &lab.run_variant(&mistyped, &["plan", "--out", file.to_str().unwrap()]),
        0,
    );
    let failed = lab.run_variant(
        &mistyped,
        &[
            "apply",
            file.to_str().unwrap(),
            "--canary",
            "worker-0",
            "--canary-rollback",
        ],
    );
    code(&failed, 1);
    assert!(
        failed
            .stderr
            .contains("failed path: worker-0 -> worker-2 (10.0.2.20 -> 10.1.2.1)"),
        "{failed:?}"
    );
    assert!(
        failed.stderr.contains("put back as it was: worker-0"),
        "{failed:?}"
    );
    assert!(failed.stdout.contains("Canary FAILED"), "{failed:?}");
    assert_eq!(lab.table("worker-0"), Vec::<String>::new());
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let kept = lab.run_variant(&mistyped, &["apply", "-y", "--canary", "worker-0"]);
    code(&kept, 1);
    assert!(kept.stderr.contains("worker-0 -> worker-2"), "{kept:?}");
    assert!(has(
        lab,
        "worker-0",
        "10.1.2.0/24 via 10.0.2.32 dev eth1 proto 211"
    ));
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let good = lab.run(&["apply", "-y", "--canary", "worker-0", "-o", "json"]);
    code(&good, 0);
    let j = good.json();
    assert_eq!(j["canary"]["passed"], true, "{j:#}");
    assert_eq!(j["canary"]["paths"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["summary"]["nodes_converged"], 4, "{j:#}");
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

impl Lab for super::NetnsLab {
    fn run(&self, args: &[&str]) -> Run {
        self.routectl(args)
    }
    fn run_variant(&self, edit: &dyn Fn(String) -> String, args: &[&str]) -> Run {
        let p = self.dir().join("variant.toml");
        std::fs::write(&p, edit(self.topology_text())).unwrap();
        super::routectl_with(&p, args, &[])
    }
    fn forget_record(&self, node: &str) {
        // For a namespace the record is on this host, keyed by the namespace's name.
        let _ = std::fs::remove_file(format!("/run/routectl/last-applied/{}.json", self.ns(node)));
    }
    fn table(&self, node: &str) -> Vec<String> {
        self.routes(node)
    }
    fn ip_words(&self, node: &str, words: &str) {
        self.ip(node, &words.split_whitespace().collect::<Vec<_>>());
    }
    fn broken_paths(&self) -> Vec<String> {
        self.unreachable_pairs()
    }
}

impl Lab for super::lxd::LxdLab {
    fn run(&self, args: &[&str]) -> Run {
        self.routectl(args)
    }
    fn run_variant(&self, edit: &dyn Fn(String) -> String, args: &[&str]) -> Run {
        let p = self.variant(edit);
        self.routectl_file(&p, args)
    }
    fn forget_record(&self, node: &str) {
        self.exec_ok(
            node,
            &[
                "rm",
                "-f",
                &format!("/run/routectl/last-applied/{node}.json"),
            ],
        );
    }
    fn table(&self, node: &str) -> Vec<String> {
        self.routes(node)
    }
    fn ip_words(&self, node: &str, words: &str) {
        self.ip(node, &words.split_whitespace().collect::<Vec<_>>());
    }
    fn broken_paths(&self) -> Vec<String> {
        self.unreachable_pairs()
    }
}
