//! The topology file: `validate`, its messages, where the file is found.

use super::*;

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
