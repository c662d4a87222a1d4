//! Black-box tests of the `routectl` binary with a fake `lxc` on PATH.
//!
//! Each test builds a [`Fake`] (tests/it/support/fake.rs): a temporary directory holding the
//! topology, the fake `lxc` and `incus` first on PATH, and the answers the fake gives per
//! instance. It logs every call and saves every batch script, so a test can assert what
//! routectl ran and exactly what it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::fake::{Fake, NODES, RECORD, case_json};
use crate::support::{example_topology, repo};
use routectl::node::observe;

/// The read routectl runs on every node (after `lxc exec NODE --force-noninteractive --`).
const READ: &str = "ip -N -d -j route show table all";
/// The write: a batch script on stdin.
const BATCH: &str = "ip -N -d -j -force -batch -";

/// What LXD's `lxc exec` prints (exit 1) for a stopped instance (captured from LXD 5.0).
const NOT_RUNNING: &str = "Error: Instance is not running\n";
/// What LXD's `lxc exec` prints, with exit status 127, when the command does not exist in the
/// instance (seen with LXD 5.0.2 here: liblxc's attach exits 127 on ENOENT and LXD turns that
/// status into the error `Command not found`, `ErrExecCommandNotFound` in driver_lxc.go).
const COMMAND_NOT_FOUND: &str = "Error: Command not found\n";

fn manifest() -> &'static Path {
    repo()
}

fn case_expected(case: &str) -> String {
    let path = manifest().join(format!("tests/cases/{case}/expected.txt"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn capture_path(scenario: &str, file: &str) -> PathBuf {
    manifest().join(format!("tests/fakes/captures/{scenario}/{file}"))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn has_escape(s: &str) -> bool {
    s.contains('\x1b')
}

// ---------------------------------------------------------------------------------------------
// The command line itself.

const GLOBAL_OPTIONS: &[&str] = &[
    "-f, --topology <FILE>",
    "--transport <KIND>",
    "-j, --parallelism <N>",
    "--timeout <DURATION>",
    "-v, --verbose",
    "-q, --quiet",
    "--color <WHEN>",
    "-h, --help",
];

#[test]
fn help_lists_every_command_and_global_option() {
    let lab = Fake::bare();
    let r = lab.run(&["--help"]);
    r.code(0);
    for needle in
        GLOBAL_OPTIONS
            .iter()
            .chain(&["-V, --version", "validate", "plan", "apply", "Exit codes"])
    {
        r.stdout_has(needle);
    }
    r.stdout_has("ROUTECTL_TOPOLOGY");
    // Every way of reaching nodes is named, SSH included (the man page says the same).
    r.stdout_has("machines reached over SSH");
    lab.run(&["man"])
        .code(0)
        .stdout_has("machines reached over SSH");
    lab.assert_no_calls();
}

/// A command's own options come first; the global ones (the lock, colour, transport) under a
/// heading of their own.
#[test]
fn discover_help_keeps_its_own_options_apart_from_the_global_ones() {
    let lab = Fake::bare();
    let r = lab.run(&["discover", "--help"]);
    r.code(0);
    let own = r.stdout.find("Options:").expect("Options:");
    let global = r.stdout.find("Global options:").expect("Global options:");
    for (needle, mine) in [
        ("--profile <", true),
        ("--from <", true),
        ("--lock-file <", false),
        ("--lock-timeout <", false),
        ("--color <", false),
    ] {
        let at = r.stdout.find(needle).expect(needle);
        assert_eq!((own..global).contains(&at), mine, "{needle}\n{}", r.stdout);
    }
}

#[test]
fn plan_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["plan", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&[
        "-o, --output <OUTPUT>",
        "text",
        "json",
        "markdown",
        "--detailed-exitcode",
        "--adopt",
        "--node <NAME>",
    ]) {
        r.stdout_has(needle);
    }
}

#[test]
fn apply_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["apply", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&[
        "-y, --auto-approve",
        "--adopt",
        "--node <NAME>",
        "-o, --output <OUTPUT>",
    ]) {
        r.stdout_has(needle);
    }
}

#[test]
fn validate_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["validate", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&["-o, --output <OUTPUT>"]) {
        r.stdout_has(needle);
    }
}

#[test]
fn version_prints_the_package_version() {
    let lab = Fake::bare();
    for flag in ["--version", "-V"] {
        let r = lab.run(&[flag]);
        r.code(0);
        assert_eq!(
            r.stdout.trim(),
            format!("routectl {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let lab = Fake::case("empty-lab");
    for args in [
        &["--bogus"][..],
        &["plan", "--bogus"],
        &["apply", "--bogus", "--auto-approve"],
        &["validate", "--bogus"],
    ] {
        let r = lab.run(args);
        r.code(2).stderr_has("unexpected argument '--bogus'");
        assert_eq!(r.stdout, "", "{args:?}");
    }
    lab.assert_no_calls();
}

#[test]
fn missing_command_and_bad_values_are_usage_errors() {
    let lab = Fake::case("empty-lab");
    lab.run(&[]).code(2).stderr_has("Usage: routectl");
    for (args, needle) in [
        (&["plan", "--timeout", "5x"][..], "unknown unit"),
        (
            &["plan", "--timeout", "0s"],
            "is zero: this duration must be more than 0",
        ),
        (&["plan", "--timeout", "0.0s"], "is zero"),
        (&["plan", "--timeout", "0.0000000001s"], "1 ms"),
        (&["plan", "-j", "0"], "--parallelism"),
        (&["plan", "--output", "yaml"], "invalid value 'yaml'"),
        (
            &["plan", "--color", "sometimes"],
            "invalid value 'sometimes'",
        ),
        (&["plan", "--transport", "telnet"], "invalid value 'telnet'"),
        (&["plan", "-v", "-q"], "cannot be used with"),
    ] {
        lab.run(args).code(2).stderr_has(needle);
    }
    lab.assert_no_calls();
}

/// Every command line shown under "Examples:" in `--help` must be one routectl accepts.
#[test]
fn help_examples_are_accepted_command_lines() {
    let lab = Fake::case("in-sync");
    let help = lab.run(&["--help"]).stdout;
    let examples: Vec<Vec<String>> = help
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .filter_map(|l| l.trim_start().strip_prefix("routectl "))
        .flat_map(|l| l.split("&& routectl "))
        .map(|cmd| {
            // The comment, if any, follows two spaces or more.
            let cmd = cmd.split("  ").next().unwrap().trim();
            cmd.split_whitespace().map(str::to_string).collect()
        })
        .collect();
    assert!(examples.len() >= 5, "{help}");
    for args in &examples {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = lab.run(&args);
        assert_ne!(
            r.code,
            2,
            "`routectl {}` from --help is rejected:\n{}",
            args.join(" "),
            r.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The topology file.

#[test]
fn validate_accepts_the_example_topology() {
    let lab = Fake::bare();
    let example = manifest().join("topology.example.toml");
    let r = lab.run(&["validate", "-f", example.to_str().unwrap()]);
    r.code(0).stdout_has(&format!(
        "{}: valid (4 nodes, 9 desired routes, transport lxc, protocol 211)",
        example.display()
    ));
    let json = lab
        .run(&["validate", "-f", example.to_str().unwrap(), "-o", "json"])
        .json();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["kind"], "validate");
    assert_eq!(json["valid"], true);
    assert_eq!(json["nodes"], 4);
    assert_eq!(json["desired_routes"], 9);
    lab.assert_no_calls();
}

/// Invalid topologies, each with the one `FILE:LINE:COL: message` line it must produce.
const INVALID: &[(&str, &str)] = &[
    (
        "[cluster]\ninterface = \"eth1\"\ncolour = 1\n[[nodes]]\nname = \"w\"\ninternal_ip = \"10.0.2.20\"\n",
        "bad.toml:3:1: unknown field `colour`",
    ),
    (
        "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.1/24\"\n",
        "bad.toml:6:12: node `w`: pod_cidr `10.1.0.1/24` has host bits set: did you mean 10.1.0.0/24?",
    ),
    (
        "[cluster\ninterface = \"eth1\"\n",
        "bad.toml:1:9: unclosed table, expected `]`",
    ),
    (
        "[cluster]\ninterface = \"eth1\"\n\n[[nodes]]\ninternal_ip = \"10.0.2.20\"\n",
        "bad.toml:4:1: missing field `name`",
    ),
    (
        "",
        "bad.toml:1:1: no nodes declared: add at least one [[nodes]] table",
    ),
    (
        "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"a\"\ninternal_ip = \"10.0.2.20\"\n[[nodes]]\nname = \"a\"\ninternal_ip = \"10.0.2.21\"\n",
        "bad.toml:7:8: duplicate node name `a` (first declared on line 3)",
    ),
    (
        "[cluster]\ninterface = \"eth1\"\nprotocol = 3\n[[nodes]]\nname = \"w\"\ninternal_ip = \"10.0.2.20\"\n",
        "bad.toml:3:12: protocol 3 is the well-known protocol `boot`",
    ),
    (
        "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w\"\ninternal_ip = \"10.0.2.20/24\"\n",
        "bad.toml:5:15: node `w`: internal_ip `10.0.2.20/24` is a prefix, not an address",
    ),
];

#[test]
fn validate_reports_each_problem_as_file_line_col() {
    let lab = Fake::bare();
    for (text, line) in INVALID {
        lab.write("bad.toml", text.as_bytes());
        let r = lab.run(&["validate", "-f", "bad.toml"]);
        r.code(1).stderr_has(line);
        assert_eq!(r.stdout, "", "{line}");
    }
    lab.assert_no_calls();
}

#[test]
fn invalid_topology_stops_plan_and_apply_before_any_node_is_contacted() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    for (text, line) in INVALID {
        lab.write("bad.toml", text.as_bytes());
        for args in [
            &["plan", "-f", "bad.toml"][..],
            &[
                "plan",
                "-f",
                "bad.toml",
                "--detailed-exitcode",
                "-o",
                "json",
            ],
            &["apply", "-f", "bad.toml", "--auto-approve"],
        ] {
            lab.run(args).code(1).stderr_has(line);
        }
    }
    lab.assert_no_calls();
}

#[test]
fn validate_reports_every_problem_at_once_in_file_order() {
    let lab = Fake::bare();
    lab.write(
        "bad.toml",
        br#"[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "-x"
internal_ip = "10.0.2.20"
[[nodes]]
name = "b"
internal_ip = "10.0.2.21"
pod_cidr = "10.2.0.0/24"
[[nodes]]
name = "c"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.2.0/24"
[[nodes]]
name = "d"
internal_ip = "10.0.2.23"
pod_cidr = "10.1.3.1/24"
"#,
    );
    let r = lab.run(&["validate", "-f", "bad.toml"]);
    r.code(1);
    let at: Vec<String> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("bad.toml:"))
        .map(|l| l.splitn(4, ':').take(3).collect::<Vec<_>>().join(":"))
        .collect();
    assert_eq!(
        at,
        [
            "bad.toml:5:8",
            "bad.toml:10:12",
            "bad.toml:13:15",
            "bad.toml:18:12"
        ],
        "{}",
        r.stderr
    );
}

/// "Every problem is reported at once": three pod CIDRs nested in a fourth are three overlaps.
#[test]
fn validate_reports_every_overlapping_pod_cidr() {
    let lab = Fake::bare();
    lab.write(
        "bad.toml",
        br#"[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "b"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "c"
internal_ip = "10.0.2.22"
pod_cidr = "10.1.2.0/24"
"#,
    );
    let r = lab.run(&["validate", "-f", "bad.toml"]);
    r.code(1)
        .stderr_has("node `b`: pod_cidr 10.1.1.0/24 overlaps pod_cidr 10.1.0.0/16 of node `a`")
        .stderr_has("node `c`: pod_cidr 10.1.2.0/24 overlaps pod_cidr 10.1.0.0/16 of node `a`");
}

/// A node with one invalid value still takes part in the cross-node checks: its duplicate
/// internal IP is reported in the same run, not only after the first problem is fixed.
#[test]
fn validate_reports_cross_node_problems_of_a_node_with_another_problem() {
    let lab = Fake::bare();
    lab.write(
        "bad.toml",
        br#"[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
[[nodes]]
name = "c"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.1/24"
"#,
    );
    let r = lab.run(&["validate", "-f", "bad.toml"]);
    r.code(1)
        .stderr_has("bad.toml:9:12: node `c`: pod_cidr `10.1.0.1/24` has host bits set")
        .stderr_has(
            "bad.toml:8:15: node `c`: internal_ip 10.0.2.20 is already used by node `a` (line 3)",
        );
}

#[test]
fn missing_topology_file_is_named() {
    let lab = Fake::bare();
    let r = lab.run(&["validate", "-f", "nowhere/topo.toml"]);
    r.code(1)
        .stderr_has("nowhere/topo.toml")
        .stderr_has("No such file or directory");
    let r = lab.run(&["plan", "-f", "nowhere/topo.toml"]);
    r.code(1).stderr_has("nowhere/topo.toml");
    lab.assert_no_calls();
}

#[test]
fn default_topology_path_is_topology_toml() {
    let lab = Fake::bare();
    lab.run(&["validate"])
        .code(1)
        .stderr_has("`topology.toml`")
        .stderr_has("No such file or directory");
    lab.write("topology.toml", example_topology().as_bytes());
    lab.run(&["validate"])
        .code(0)
        .stdout_has("topology.toml: valid (4 nodes, 9 desired routes");
}

#[test]
fn routectl_topology_env_is_honoured_and_f_wins() {
    let lab = Fake::bare();
    lab.write("from-env.toml", example_topology().as_bytes());
    lab.write("from-flag.toml", INVALID[0].0.as_bytes());
    let env = [("ROUTECTL_TOPOLOGY", "from-env.toml")];
    lab.run_env(&["validate"], &env)
        .code(0)
        .stdout_has("from-env.toml: valid");
    lab.run_env(&["validate", "-f", "from-flag.toml"], &env)
        .code(1)
        .stderr_has("from-flag.toml:3:1:");
    lab.run_env(&["validate"], &[("ROUTECTL_TOPOLOGY", "missing.toml")])
        .code(1)
        .stderr_has("missing.toml");
}

/// An exported but empty ROUTECTL_TOPOLOGY (a CI variable left blank) means "not set", as for
/// NO_COLOR; routectl must not blame an option the user never typed.
#[test]
fn empty_routectl_topology_env_means_the_default_file() {
    let lab = Fake::with_topology(&example_topology());
    lab.run_env(&["validate"], &[("ROUTECTL_TOPOLOGY", "")])
        .code(0)
        .stdout_has("topology.toml: valid");
}

// ---------------------------------------------------------------------------------------------
// plan against the fake.

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
    let gateway = |cidr: &str| match cidr {
        "10.1.0.0/24" => "10.0.2.20",
        "10.1.1.0/24" => "10.0.2.21",
        "10.1.2.0/24" => "10.0.2.22",
        other => panic!("unexpected destination {other}"),
    };
    let own = ["", "10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"];
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["status"], "ok", "{n}");
        let changes = n["changes"].as_array().unwrap();
        let dsts: Vec<&str> = changes.iter().map(|c| c["dst"].as_str().unwrap()).collect();
        let want: Vec<&str> = own[1..].iter().copied().filter(|d| *d != own[i]).collect();
        assert_eq!(dsts, want, "{}", n["name"]);
        for c in changes {
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

// ---------------------------------------------------------------------------------------------
// Nodes that cannot be read.

#[test]
fn stopped_instance_is_a_node_error_and_the_others_are_still_planned() {
    let lab = Fake::case("empty-lab");
    lab.fails("worker-1", NOT_RUNNING, 1);
    for args in [
        &["plan", "--color", "never"][..],
        &["plan", "--color", "never", "--detailed-exitcode"],
    ] {
        let r = lab.run(args);
        r.code(1);
        assert!(
            r.line("worker-1:").starts_with("worker-1: error: ")
                && r.line("worker-1:")
                    .contains("Error: Instance is not running"),
            "{}",
            r.stdout
        );
        r.stdout_has("controller-0: 3 to add")
            .stdout_has("worker-0: 2 to add")
            .stdout_has("worker-2: 2 to add")
            .stdout_has(
                "Plan: 7 to add, 0 to replace, 0 to delete on 3 of 4 nodes; 1 node unreachable.",
            );
    }
    let json = lab.run(&["plan", "-o", "json", "--detailed-exitcode"]);
    json.code(1);
    let json = json.json();
    let w1 = &json["nodes"][2];
    assert_eq!(w1["name"], "worker-1");
    assert_eq!(w1["status"], "error");
    assert_eq!(w1["changes"], serde_json::json!([]));
    assert_eq!(w1["error"]["exit_status"], 1);
    assert!(
        w1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Instance is not running"),
        "{w1}"
    );
    assert_eq!(json["nodes"][1]["status"], "ok");
    assert_eq!(json["summary"]["nodes_unreachable"], 1);
}

/// The LXD bug: `lxc exec` exits 0 having printed nothing. That is a failed read: retried, and
/// never planned as an empty table (which would mean adds, and with owned routes, deletes).
#[test]
fn empty_read_is_retried_then_reported_never_planned_as_an_empty_table() {
    let lab = Fake::case("drift");
    lab.answer("worker-1.read", b"", "", 0);
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(1);
    assert_eq!(lab.calls_to("worker-1", READ), 3, "{:?}", lab.calls());
    assert_eq!(lab.calls_to("worker-0", READ), 1);
    let line = r.line("worker-1:");
    assert!(
        line.starts_with("worker-1: error: ") && line.contains("printed nothing"),
        "{line}"
    );
    // worker-1 holds an owned stale route (10.1.9.0/24): nothing may be planned for it.
    r.stdout_lacks("10.1.9.0/24").stdout_lacks("  - ");
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][2]["status"], "error");
    assert_eq!(json["nodes"][2]["error"]["kind"], "empty_output");
}

#[test]
fn empty_read_that_succeeds_on_retry_is_planned() {
    let lab = Fake::case("drift");
    lab.answer("worker-1.read.1", b"", "", 0);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("drift"));
    assert_eq!(lab.calls_to("worker-1", READ), 2);
}

#[track_caller]
fn assert_not_a_route_list(stdout: &[u8]) {
    let lab = Fake::case("empty-lab");
    lab.answer("worker-2.read", stdout, "", 0);
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(1);
    let line = r.line("worker-2:");
    assert!(
        line.starts_with("worker-2: error: ") && line.contains("not a JSON route list"),
        "{line}"
    );
    r.stdout_has("worker-1: 2 to add");
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][3]["error"]["kind"], "bad_output");
    assert_eq!(json["nodes"][3]["changes"], serde_json::json!([]));
}

#[test]
fn garbage_output_is_not_a_route_list() {
    // What an `ip` that ignores -j prints.
    assert_not_a_route_list(
        b"default via 10.0.1.1 dev eth0 proto dhcp src 10.0.1.22 metric 100\n\
          10.0.2.0/24 dev eth1 proto kernel scope link src 10.0.2.22\n",
    );
}

#[test]
fn truncated_json_is_not_a_route_list() {
    let full = case_json("empty-lab", "worker-2");
    assert_not_a_route_list(&full[..full.len() / 2]);
}

#[test]
fn lone_bracket_is_not_a_route_list() {
    // iproute2 6.1 prints a lone `[` when a dump fails half-way.
    assert_not_a_route_list(b"[");
}

#[test]
fn old_iproute2_is_diagnosed() {
    let lab = Fake::case("empty-lab");
    // iproute2 before 5.5 printed multipath next hops without a comma between them.
    lab.reads(
        "worker-0",
        br#"[{"dst":"default","gateway":"10.0.1.1","dev":"eth0","protocol":"16","metric":100,"flags":[]},{"dst":"10.9.0.0/24","protocol":"3","flags":[],"nexthops":[{"gateway":"10.0.2.21","dev":"eth1","weight":1,"flags":[]}{"gateway":"10.0.2.22","dev":"eth1","weight":1,"flags":[]}]}]"#,
    );
    lab.answer(
        "worker-0.version",
        b"ip utility, iproute2-ss190107\n",
        "",
        0,
    );
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-0:");
    assert!(
        line.contains("iproute2 ss190107") && line.contains("iproute2 5.5 or newer"),
        "{line}"
    );
    assert_eq!(lab.calls_to("worker-0", "ip -V"), 1);
    assert_eq!(lab.calls_to("worker-1", "ip -V"), 0);
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][1]["error"]["kind"], "old_iproute");
}

#[test]
fn ip_missing_in_the_container_is_a_clear_node_error() {
    let lab = Fake::case("empty-lab");
    lab.fails("worker-0", COMMAND_NOT_FOUND, 127);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-0:");
    assert!(
        line.starts_with("worker-0: error: ")
            && line.contains("`ip` was not found in the node")
            && line.contains("install iproute2")
            && line.contains("Command not found")
            && line.contains(READ),
        "{line}"
    );
    r.stdout_has("worker-1: 2 to add");
}

#[test]
fn lxc_missing_from_path_is_a_node_error_on_every_node() {
    let lab = Fake::with_topology(&example_topology());
    let empty = lab.path("empty-bin");
    fs::create_dir(&empty).unwrap();
    let r = lab
        .routectl()
        .args(["plan", "--color", "never"])
        .env("PATH", &empty)
        .run();
    r.code(1);
    for node in NODES {
        let line = r.line(&format!("{node}:"));
        assert!(line.contains("`lxc` was not found on PATH"), "{line}");
    }
}

#[test]
fn a_hung_node_is_killed_after_the_timeout() {
    let lab = Fake::case("empty-lab");
    lab.write("worker-2.read.sleep", b"20");
    let started = Instant::now();
    let r = lab.run(&["plan", "--color", "never", "--timeout", "300ms"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    r.code(1);
    let line = r.line("worker-2:");
    assert!(line.contains("did not finish within 0.3 s"), "{line}");
    r.stdout_has("worker-1: 2 to add");
}

/// On a terminal, a slow read shows: a live line names the node still awaited, and the retry
/// after its timeout is said (run under `script`, which gives routectl a terminal).
#[test]
fn a_slow_node_is_named_on_a_terminal_and_its_retry_said() {
    let lab = Fake::case("empty-lab");
    lab.write("worker-2.read.1.sleep", b"20");
    let path = format!(
        "{}:{}",
        lab.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let line = format!(
        "{} plan --color never --timeout 1500ms",
        env!("CARGO_BIN_EXE_routectl")
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(lab.dir())
        .env_clear()
        .env("PATH", path)
        .env("FAKE_DIR", lab.dir())
        .env("ROUTECTL_LOCK_FILE", lab.path("routectl.lock"))
        .env("LXD_DIR", lab.path("no-daemon"))
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("routectl: read 3/4 nodes; waiting for worker-2 (1 s)"),
        "{text:?}"
    );
    assert!(
        text.contains("routectl: worker-2 did not answer within 1.5 s; trying again"),
        "{text:?}"
    );
    assert!(text.contains("worker-2: 2 to add"), "{text:?}");
}

#[test]
fn show_retries_a_timed_out_read_as_plan_does() {
    // Regression: plan retried a read that timed out, show did not, so with a short --timeout
    // and a node slow once, show failed where plan succeeded.
    let lab = Fake::case("empty-lab");
    for node in NODES {
        // show's one command prints the routes, then the addresses.
        let mut both = case_json("empty-lab", node);
        both.extend_from_slice(b"\n[]\n");
        lab.answer(&format!("{node}.batch"), &both, "", 0);
    }
    lab.write("worker-2.batch.1.sleep", b"20");
    lab.write("worker-2.read.1.sleep", b"20");
    let show = lab.run(&["show", "--color", "never", "--timeout", "500ms"]);
    show.code(0);
    let line = show.line("worker-2");
    assert!(!line.contains("did not finish"), "{show:?}");
    assert_eq!(
        lab.calls()
            .iter()
            .filter(|c| c.starts_with("lxc exec worker-2 ") && c.contains("-batch -"))
            .count(),
        2,
        "{:?}",
        lab.calls()
    );
    let plan = lab.run(&["plan", "--color", "never", "--timeout", "500ms"]);
    plan.code(0);
    plan.stdout_has("worker-2: 2 to add");
}

#[test]
fn one_node_at_a_time_plans_the_same() {
    let lab = Fake::case("drift");
    let serial = lab.run(&["plan", "--color", "never", "-j", "1"]);
    serial.code(0);
    assert_eq!(serial.stdout, case_expected("drift"));
    let env = lab.run_env(
        &["plan", "--color", "never"],
        &[("ROUTECTL_PARALLELISM", "1")],
    );
    assert_eq!(env.stdout, serial.stdout);
}

#[test]
fn transport_option_overrides_the_topology() {
    let lab = Fake::case("in-sync");
    lab.run(&["plan", "--transport", "incus"]).code(0);
    let calls = lab.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("incus exec ") && c.ends_with(READ)),
        "{calls:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Ownership.

#[test]
fn owned_route_to_a_pod_cidr_outside_the_topology_is_deleted() {
    let lab = Fake::case("drift");
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(3);
    assert_eq!(r.stdout, case_expected("drift"));
    r.stdout_has("worker-1: 1 to delete\n  - 10.1.9.0/24 via 10.0.2.29 dev eth1 proto 211\n");
    let json = lab.run(&["plan", "-o", "json"]).json();
    let change = &json["nodes"][2]["changes"][0];
    assert_eq!(change["action"], "delete");
    assert_eq!(change["dst"], "10.1.9.0/24");
    assert_eq!(change["gateway"], "10.0.2.29");
    assert_eq!(change["protocol"], 211);
    assert_eq!(change["metric"], 0);
    assert_eq!(change["operation"], true);
}

/// A lab where the only difference is one foreign route identical to a desired one.
fn adoptable_lab() -> Fake {
    let lab = Fake::case("in-sync");
    lab.reads("controller-0", &case_json("drift", "controller-0"));
    lab
}

#[test]
fn identical_foreign_route_is_adoptable_and_not_pending_without_adopt() {
    let lab = adoptable_lab();
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(0);
    r.stdout_has(
        "controller-0: 1 adoptable\n  ~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211 \
         (identical foreign route, proto boot: taken over only with --adopt)\n",
    )
    .stdout_has(
        "Plan: 0 to add, 0 to replace, 0 to delete, 1 adoptable with --adopt on 0 of 4 nodes.",
    );
    let json = lab.run(&["plan", "-o", "json"]).json();
    let change = &json["nodes"][0]["changes"][0];
    assert_eq!(change["action"], "adopt");
    assert_eq!(change["operation"], false);
    assert_eq!(change["current"]["protocol"], 3);
    assert_eq!(json["summary"]["adopt"], 1);
    assert_eq!(json["summary"]["operations"], 0);
    assert_eq!(json["summary"]["pending"], false);
}

#[test]
fn apply_without_adopt_says_what_it_left_adoptable() {
    let lab = adoptable_lab();
    lab.batches_converge();
    lab.run(&["apply", "--auto-approve", "--color", "never"])
        .code(0)
        .stdout_has("; 1 identical hand-made route left as it is (`--adopt` takes it over)");
    let adopted = lab.run(&["apply", "--auto-approve", "--adopt", "--color", "never"]);
    assert!(!adopted.stdout.contains("hand-made"), "{adopted:?}");
}

#[test]
fn identical_foreign_route_is_pending_with_adopt() {
    let lab = adoptable_lab();
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode", "--adopt"]);
    r.code(3);
    r.stdout_has("controller-0: 1 to adopt\n")
        .stdout_has("Plan: 0 to add, 0 to replace, 0 to delete, 1 to adopt on 1 of 4 nodes.");
    let json = lab.run(&["plan", "-o", "json", "--adopt"]).json();
    let change = &json["nodes"][0]["changes"][0];
    assert_eq!(change["operation"], true);
    assert_eq!(change["action"], "adopt");
    assert_eq!(change["current"]["protocol"], 3);
}

#[test]
fn foreign_route_with_another_gateway_is_a_conflict() {
    let lab = Fake::case("conflict");
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(3);
    assert_eq!(r.stdout, case_expected("conflict"));
    r.stdout_has(
        "  ! 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211  (blocked by foreign route: \
         10.1.1.0/24 via 10.0.2.99 dev eth1 proto boot; --take-over replaces it)\n",
    );
    let json = lab.run(&["plan", "-o", "json"]).json();
    let conflict = json["nodes"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "conflict")
        .expect("a conflict on controller-0")
        .clone();
    assert_eq!(conflict["dst"], "10.1.1.0/24");
    assert_eq!(conflict["gateway"], "10.0.2.21");
    assert_eq!(conflict["current"]["gateway"], "10.0.2.99");
    assert_eq!(conflict["operation"], false);
    assert!(conflict.get("command").is_none(), "{conflict}");

    // A conflict alone (nothing to run) still stands in the way: pending.
    let lab = Fake::case("in-sync");
    lab.reads("worker-1", &case_json("conflict", "worker-1"));
    lab.run(&["plan", "--detailed-exitcode"]).code(3);
    lab.run(&["plan"]).code(0);
}

#[test]
fn default_kernel_and_other_table_routes_never_change() {
    // worker-0 of other-tables: its default route and two routes in table 100 carry protocol
    // 211; the only changes are the two owned, undesired routes of table main.
    let lab = Fake::case("other-tables");
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("other-tables"));
    let json = lab.run(&["plan", "-o", "json"]).json();
    for n in json["nodes"].as_array().unwrap() {
        for c in n["changes"].as_array().unwrap() {
            assert_eq!(c["action"], "delete", "{c}");
            assert_ne!(c["dst"], "default", "{c}");
            assert_eq!(c["protocol"], 211, "{c}");
            assert!(
                ["10.1.5.7/32", "10.1.8.0/24"].contains(&c["dst"].as_str().unwrap()),
                "{c}"
            );
        }
    }
    // Kernel routes (the connected subnets, cnio0's pod CIDR) are never changes either.
    for case in ["empty-lab", "drift", "dual-stack"] {
        let lab = Fake::with_topology(&example_topology());
        for node in NODES {
            lab.reads(node, &case_json(case, node));
        }
        let text = lab.run(&["plan", "--color", "never"]).stdout;
        for kernel in ["10.0.1.0/24", "10.0.2.0/24", "fe80::/64", "default"] {
            assert!(!text.contains(kernel), "{case}: {kernel} in\n{text}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// apply against the fake.

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
        .stderr_has("+ lxc exec worker-0 --force-noninteractive -- sh -c set -u; umask 077;")
        .stderr_has("  | route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0")
        .stderr_has("  |   \"node\": \"worker-0\",");
}

// ---------------------------------------------------------------------------------------------
// --node

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

// ---------------------------------------------------------------------------------------------
// Colour.

#[test]
fn no_color_and_color_never_print_no_escape_codes() {
    let lab = Fake::case("drift");
    for (args, env) in [
        (&["plan"][..], &[("NO_COLOR", "1")][..]),
        (&["plan", "--color", "auto"], &[("NO_COLOR", "1")]),
        (&["plan", "--color", "never"], &[("CLICOLOR_FORCE", "1")]),
        (&["plan", "--color", "never", "-o", "markdown"], &[]),
    ] {
        let r = lab.run_env(args, env);
        r.code(0);
        assert!(
            !has_escape(&r.stdout) && !has_escape(&r.stderr),
            "{args:?} {env:?}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn color_always_prints_escape_codes() {
    let lab = Fake::case("drift");
    for (args, env) in [
        (&["plan", "--color", "always"][..], &[][..]),
        (&["plan", "--color", "always"], &[("NO_COLOR", "1")]),
        (&["plan"], &[("CLICOLOR_FORCE", "1")]),
    ] {
        let r = lab.run_env(args, env);
        r.code(0);
        r.stdout_has("\x1b[31m-\x1b[0m")
            .stdout_has("\x1b[1mworker-0\x1b[0m");
    }
    // The document formats never carry colour.
    let r = lab.run(&["plan", "--color", "always", "-o", "json"]);
    assert!(!has_escape(&r.stdout));
    r.json();
}

/// A missing or stopped instance says what it is and what to do, beside lxc's own words.
#[test]
fn a_missing_instance_names_its_project_and_a_stopped_one_says_lxc_start() {
    let lab = Fake::with_topology(&example_topology());
    lab.reads("controller-0", &case_json("in-sync", "controller-0"));
    lab.reads("worker-0", &case_json("in-sync", "worker-0"));
    lab.fails("worker-1", NOT_RUNNING, 1);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-2:");
    assert!(
        line.contains(
            "Error: Instance not found; no instance `worker-2` in project default (`lxc list` \
             lists them"
        ),
        "{line}"
    );
    let line = r.line("worker-1:");
    assert!(
        line.contains(
            "Error: Instance is not running; instance `worker-1` is stopped: start it with `lxc \
             start worker-1`"
        ),
        "{line}"
    );
    let j = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(j["nodes"][2]["error"]["kind"], "not_running", "{j}");
    assert_eq!(j["nodes"][3]["error"]["kind"], "no_instance", "{j}");
    assert_eq!(j["nodes"][3]["error"]["exit_status"], 1, "{j}");
}

#[test]
fn a_missing_topology_file_suggests_discover() {
    let lab = Fake::bare();
    lab.run(&["plan"])
        .code(1)
        .stderr_has("cannot read topology file `topology.toml`: No such file or directory")
        .stderr_has("`routectl discover > topology.toml`");
}

#[test]
fn fake_lxc_answers_like_lxd_for_an_unknown_instance() {
    // Guards the fake itself: an instance without answers is one LXD does not know.
    let lab = Fake::with_topology(&example_topology());
    lab.reads("controller-0", &case_json("in-sync", "controller-0"));
    lab.reads("worker-0", &case_json("in-sync", "worker-0"));
    lab.reads("worker-1", &case_json("in-sync", "worker-1"));
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    assert!(
        r.line("worker-2:").contains("Error: Instance not found"),
        "{}",
        r.stdout
    );
}

#[test]
fn canary_options_are_checked_before_any_node_is_contacted() {
    let lab = Fake::case("empty-lab");
    lab.run(&["apply", "-y", "--canary", "worker-9"])
        .code(2)
        .stderr_has("worker-9");
    lab.run(&["apply", "-y", "--canary", "worker-2", "--node", "worker-0"])
        .code(2)
        .stderr_has("--canary `worker-2` is not among the nodes planned with --node");
    lab.run(&["apply", "-y", "--canary-rollback"]).code(2);
    lab.assert_no_calls();
}

/// After a write and its read-back, the node's record is stored through the transport (the
/// record on stdin), bound to what the read before the write computed the node to be; a later
/// read that finds it with the same binding calls the lost routes drift.
#[test]
fn the_record_written_after_an_apply_turns_lost_routes_into_drift() {
    let lab = Fake::case("empty-lab");
    lab.batches_converge();
    // What the read script prints on a node: `ip`'s part, the binding, the record (none yet).
    let with = |binding: &str, record: &[u8]| {
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
    };
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

// ---------------------------------------------------------------------------------------------
// Huge values: what a message echoes is capped and says how long it was.

#[test]
fn a_huge_node_name_is_echoed_capped_with_its_length() {
    let name = "w".repeat(1 << 20);
    let lab = Fake::with_topology(&format!(
        "[cluster]\ninterface = \"eth1\"\n\n[[nodes]]\nname = \"{name}\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.0/24\"\n"
    ));
    for args in [&["validate"][..], &["plan"]] {
        let r = lab.run(args);
        r.code(1).stderr_has("… (1048576 bytes)` is not valid");
        assert!(r.stderr.len() < 1024, "{} bytes of stderr", r.stderr.len());
        assert!(r.stdout.len() < 1024, "{} bytes of stdout", r.stdout.len());
    }
    let json = lab.run(&["validate", "--output", "json"]);
    assert!(
        json.stdout.len() < 2048,
        "{} bytes of stdout",
        json.stdout.len()
    );
    lab.assert_no_calls();
}

#[test]
fn many_node_names_are_listed_capped_with_their_count() {
    // 3,000 names the topology does not declare.
    let lab = Fake::case("empty-lab");
    let mut args = vec!["plan".to_string()];
    for i in 0..3000 {
        args.extend(["--node".to_string(), format!("ghost-{i}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = lab.run(&args);
    r.code(2)
        .stderr_has("--node names `ghost-0`, `ghost-1`, ")
        .stderr_has("`ghost-9` and 2990 more not declared in topology.toml");
    assert!(r.stderr.len() < 1024, "{} bytes of stderr", r.stderr.len());
    lab.assert_no_calls();

    // 3,000 nodes, one planned: the others are counted, not listed.
    let mut text = String::from("[cluster]\ninterface = \"eth1\"\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "\n[[nodes]]\nname = \"node-{i}\"\ninternal_ip = \"10.{}.{}.{}\"\n",
            20 + i / 65536,
            i / 256 % 256,
            i % 256
        ));
    }
    let lab = Fake::with_topology(&text);
    lab.reads("node-0", b"[]");
    for output in ["text", "markdown"] {
        let r = lab.run(&["plan", "--node", "node-0", "--output", output]);
        r.code(0).stdout_has("node-9, node-10 and 2989 more");
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains("not planned"))
            .expect("the not-planned line");
        assert!(line.len() < 300, "{line}");
    }
    let show = lab.run(&["show", "--node", "node-0"]);
    show.stdout_has("(not shown, --node: node-1, node-2,")
        .stdout_has(" and 2989 more)");
}

// ---------------------------------------------------------------------------------------------
// One cause, one message: what would fail every node the same way is found once, up front.

/// Runs the binary as `nobody` (no groups), in `dir`, with only `env` (and a PATH).
fn as_nobody(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_routectl"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

const FOUR_NODES: &str = "\n[[nodes]]\nname = \"w0\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.0/24\"\n\n[[nodes]]\nname = \"w1\"\ninternal_ip = \"10.0.2.21\"\npod_cidr = \"10.1.1.0/24\"\n\n[[nodes]]\nname = \"w2\"\ninternal_ip = \"10.0.2.22\"\npod_cidr = \"10.1.2.0/24\"\n";

#[test]
#[ignore = "needs root: runs routectl as nobody"]
fn a_daemon_socket_that_refuses_the_user_is_said_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    fs::write(
        &topo,
        format!("[cluster]\ninterface = \"eth1\"\n{FOUR_NODES}"),
    )
    .unwrap();
    // A daemon socket only root may use (as LXD's is for users outside the lxd group).
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("unix.socket")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        dir.path().join("unix.socket"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = as_nobody(
        dir.path(),
        &["plan"],
        &[("LXD_DIR", dir.path().to_str().unwrap())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("permission denied").count(), 1, "{stderr}");
    assert!(
        stderr.contains("Add yourself to the `lxd` group (`sudo usermod -aG lxd \"$USER\"`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no node is tried");
}

#[test]
#[ignore = "needs root: runs routectl as nobody"]
fn host_access_and_the_runtime_directory_name_the_one_real_cause() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    fs::write(
        &topo,
        format!("[cluster]\ninterface = \"eth1\"\ntransport = \"netns\"\n{FOUR_NODES}"),
    )
    .unwrap();
    let out = as_nobody(dir.path(), &["--access", "host", "plan"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("host access needs root"), "{stderr}");
    // apply as another user without XDG_RUNTIME_DIR: that, and only that, is said.
    let out = as_nobody(dir.path(), &["apply", "--auto-approve"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "routectl is not running as root (/run/routectl is root's) and XDG_RUNTIME_DIR is \
             not set to an absolute path. Set ROUTECTL_RUNTIME_DIR"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("is relative"), "{stderr}");
    let out = as_nobody(
        dir.path(),
        &["apply", "--auto-approve"],
        &[("ROUTECTL_RUNTIME_DIR", "run")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ROUTECTL_RUNTIME_DIR `run` is not an absolute path"),
        "{stderr}"
    );
    // --help says where the runtime directory is taken from.
    let help = as_nobody(dir.path(), &["--help"], &[]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("$ROUTECTL_RUNTIME_DIR"));
}

/// An apply that wrote nothing (only conflicts stand on the one node asked for) does not report
/// a write time.
#[test]
fn an_apply_that_writes_nothing_says_so_instead_of_a_time() {
    let lab = Fake::case("conflict");
    let r = lab.run(&[
        "apply",
        "--auto-approve",
        "--color",
        "never",
        "--node",
        "worker-1",
    ]);
    r.code(1);
    assert!(
        !lab.calls().iter().any(|c| c.contains("-batch")),
        "nothing written"
    );
    let last = r.stdout.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("Apply: 0 operations applied"), "{r:?}");
    assert!(last.ends_with("node commands; nothing written)."), "{r:?}");
}
