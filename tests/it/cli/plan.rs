//! `plan` against the fake: the text, the exit codes, the JSON and Markdown documents.

use super::*;

#[test]
fn plan_of_the_empty_lab_adds_nine_routes() {
    let lab = Fake::case("empty-lab");
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("empty-lab"));
    r.stdout_has("Plan: 9 to add, 0 to replace, 0 to delete on 4 of 4 nodes.");
    let adds: Vec<&str> = lines(&r.stdout)
        .into_iter()
        .filter(|l| l.starts_with("  + "))
        .collect();
    assert_eq!(adds.len(), 9);
    assert!(
        adds.iter().all(|l| l.ends_with(" dev eth1 proto 211")),
        "{adds:?}"
    );
}

#[test]
fn plan_detailed_exitcode_is_3_when_changes_are_pending() {
    let lab = Fake::case("empty-lab");
    lab.run(&["plan", "--detailed-exitcode"])
        .code(3)
        .stdout_has("Plan: 9 to add, 0 to replace, 0 to delete on 4 of 4 nodes.");
    lab.run(&["plan", "--detailed-exitcode", "-o", "json"])
        .code(3);
}

#[test]
fn plan_reads_each_node_once_with_the_documented_command() {
    let lab = Fake::case("empty-lab");
    lab.run(&["plan"]).code(0);
    let mut calls = lab.calls();
    calls.sort();
    let expected: Vec<String> = NODES
        .iter()
        .map(|n| format!("lxc exec {n} --force-noninteractive -- {READ}"))
        .collect();
    assert_eq!(calls, expected);
}

#[test]
fn plan_in_sync_exits_0_with_detailed_exitcode() {
    let lab = Fake::case("in-sync");
    let r = lab.run(&["plan", "--detailed-exitcode", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("in-sync"));
    let json = lab
        .run(&["plan", "--detailed-exitcode", "-o", "json"])
        .json();
    assert_eq!(json["summary"]["pending"], false);
    assert_eq!(json["summary"]["operations"], 0);
    assert_eq!(json["summary"]["nodes_in_sync"], 4);
}

/// One change of the empty lab's plan: an add to a peer's pod CIDR via the peer, each fact
/// once.
fn assert_add_change(c: &serde_json::Value) {
    let gateway = |cidr: &str| match cidr {
        "10.1.0.0/24" => "10.0.2.20",
        "10.1.1.0/24" => "10.0.2.21",
        "10.1.2.0/24" => "10.0.2.22",
        other => panic!("unexpected destination {other}"),
    };
    let dst = c["dst"].as_str().unwrap();
    assert_eq!(c["action"], "add");
    assert_eq!(c["gateway"], gateway(dst));
    assert_eq!(c["dev"], "eth1");
    assert_eq!(c["protocol"], 211);
    assert_eq!(c["metric"], 0);
    assert_eq!(c["operation"], true);
    // Each fact once: no `route` or `command` string repeating the fields.
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
        ]
    );
}

#[test]
fn plan_json_document() {
    let lab = Fake::case("empty-lab");
    let r = lab.run(&["plan", "--output", "json"]);
    r.code(0);
    // Not a terminal: one compact line; `--pretty` indents the same document.
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(
        r.stdout
            .starts_with(r#"{"format_version":2,"kind":"plan","#)
    );
    let pretty = lab.run(&["plan", "--output", "json", "--pretty"]);
    pretty.code(0);
    assert!(
        pretty
            .stdout
            .starts_with("{\n  \"format_version\": 2,\n  \"kind\": \"plan\",\n"),
        "{}",
        pretty.stdout
    );
    let json = r.json();
    assert_eq!(pretty.json(), json);
    assert_eq!(json["format_version"], 2);
    assert_eq!(json["kind"], "plan");
    assert_eq!(json["protocol"], 211);
    assert_eq!(json["adopt"], false);
    assert_eq!(json["topology"]["path"], "topology.toml");
    assert_eq!(json["topology"]["sha256"].as_str().unwrap().len(), 64);
    let nodes = json["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, NODES, "topology order");
    let own = ["", "10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"];
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["status"], "ok", "{n}");
        let changes = n["changes"].as_array().unwrap();
        let dsts: Vec<&str> = changes.iter().map(|c| c["dst"].as_str().unwrap()).collect();
        let want: Vec<&str> = own[1..].iter().copied().filter(|d| *d != own[i]).collect();
        assert_eq!(dsts, want, "{}", n["name"]);
        for c in changes {
            assert_add_change(c);
        }
    }
    let s = &json["summary"];
    for (key, value) in [
        ("add", 9),
        ("replace", 0),
        ("delete", 0),
        ("adopt", 0),
        ("conflict", 0),
        ("operations", 9),
        ("nodes", 4),
        ("nodes_changed", 4),
        ("nodes_in_sync", 0),
        ("nodes_unreachable", 0),
    ] {
        assert_eq!(s[key], value, "summary.{key}");
    }
    assert_eq!(s["pending"], true);
}

#[test]
fn plan_markdown_has_a_summary_and_details_per_changed_node() {
    let lab = Fake::case("conflict");
    let r = lab.run(&["plan", "--output", "markdown"]);
    r.code(0);
    r.stdout_has("**Plan: 2 to add, 0 to replace, 0 to delete, 2 in conflict on 1 of 4 nodes.**");
    let details: Vec<&str> = lines(&r.stdout)
        .into_iter()
        .filter(|l| l.starts_with("<details>"))
        .collect();
    assert_eq!(
        details,
        [
            "<details><summary><code>controller-0</code>: 2 to add, 1 conflict</summary>",
            "<details><summary><code>worker-1</code>: 2 conflicts</summary>",
            "<details><summary><code>worker-2</code>: in sync (2 routes)</summary>",
        ],
        "a node with nothing to show (worker-0) gets no section:\n{}",
        r.stdout
    );
    assert_eq!(r.stdout.matches("</details>").count(), 3);
    r.stdout_has("| `worker-0` | in sync (2 routes) |");
    r.stdout_has("+ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211\n");
    assert!(!has_escape(&r.stdout));
}
