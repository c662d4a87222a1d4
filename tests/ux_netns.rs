//! End-to-end tests of `routectl show` and `routectl check` against real kernels: every test
//! builds its own lab of network namespaces (tests/support), runs the binary with the netns
//! transport, and compares with the kernel's tables and with pings of its own. Needs root and
//! `ping`.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]

mod support;

use std::collections::BTreeSet;

use support::{NetnsLab, assert_code};

fn add_route(lab: &NetnsLab, node: &str, route: &str) {
    let mut args = vec!["route", "add"];
    args.extend(route.split(' '));
    lab.ip(node, &args);
}

#[test]
fn show_marks_every_route_and_agrees_with_the_plan() {
    let lab = NetnsLab::seed();
    let before = lab.routectl(&["show", "--output", "json"]);
    assert_code(&before, 0);
    let j = before.json();
    assert_eq!(
        (j["format_version"].as_u64(), j["kind"].as_str()),
        (Some(1), Some("show"))
    );
    assert_eq!(j["summary"]["desired_missing"], 9);
    assert_eq!(j["summary"]["owned"], 0);
    assert_eq!(j["summary"]["warnings"], 0, "{before:?}");

    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    add_route(&lab, "worker-2", "192.168.77.0/24 via 10.0.2.20 dev eth1");
    add_route(
        &lab,
        "worker-2",
        "10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    let run = lab.routectl(&["show"]);
    assert_code(&run, 0);
    for line in [
        "worker-2 (instance ",
        "  owned           10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211\n",
        "  owned           10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211  (not desired: plan deletes it)\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  kernel          10.1.2.0/24 dev cnio0 proto kernel\n",
        "  ok: internal_ip 10.0.2.22 is on eth1\n",
        "  ok: pod gateway 10.1.2.1 (10.1.2.0/24) is on cnio0\n",
        "Show: 4 nodes; 10 owned, 1 foreign,",
        " 0 desired-missing routes; 0 warnings.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }
    // What show calls missing is what plan adds.
    lab.ip("worker-0", &["route", "del", "10.1.1.0/24", "proto", "211"]);
    let show = lab
        .routectl(&["show", "--node", "worker-0", "--output", "json"])
        .json();
    let missing: Vec<&str> = show["nodes"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mark"] == "desired-missing")
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"]);
    let plan = lab
        .routectl(&["plan", "--node", "worker-0", "--output", "json"])
        .json();
    assert_eq!(plan["nodes"][0]["changes"][0]["route"], missing[0]);
    assert_eq!(plan["nodes"][0]["changes"][0]["action"], "add");
}

#[test]
fn show_warns_when_the_topology_and_the_addresses_disagree() {
    let lab = NetnsLab::seed();
    // worker-1's pod bridge lost its address; controller-0 is declared with an address it lacks.
    lab.ip("worker-1", &["addr", "del", "10.1.1.1/24", "dev", "cnio0"]);
    let text = lab
        .topology_text()
        .replace("\"10.0.2.10\"", "\"10.0.2.11\"");
    lab.write_topology(&text);
    let run = lab.routectl(&["show"]);
    // Disagreements are warnings: show still succeeds.
    assert_code(&run, 0);
    for line in [
        "  warning: internal_ip 10.0.2.11 is on no interface of the node (eth1 has 10.0.2.10/24)\n",
        "  warning: pod gateway 10.1.1.1 (first host of pod_cidr 10.1.1.0/24) is on no interface of the node: is the pod bridge up, and is pod_cidr right?\n",
        "; 2 warnings.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }
    let j = lab.routectl(&["show", "--output", "json"]).json();
    let checks = &j["nodes"][2]["addresses"];
    assert_eq!(checks[1]["check"], "pod_gateway");
    assert_eq!(checks[1]["ok"], false);
    assert_eq!(checks[0]["ok"], true);
}

#[test]
fn show_save_round_trips_through_plan_observed() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    lab.ip("worker-0", &["route", "del", "10.1.1.0/24", "proto", "211"]);
    add_route(
        &lab,
        "worker-2",
        "10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    add_route(&lab, "controller-0", "10.1.5.0/24 via 10.0.2.21 dev eth1");

    let dir = lab.dir().join("snapshot");
    let dir_s = dir.to_str().unwrap();
    let run = lab.routectl(&["show", "--save", dir_s, "-v"]);
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {run:?}"
    );
    for n in ["controller-0", "worker-0", "worker-1", "worker-2"] {
        assert_eq!(
            std::fs::read(dir.join(format!("{n}.json"))).unwrap(),
            lab.raw_routes(n),
            "{n}'s snapshot is exactly the route read"
        );
    }
    let live = lab.routectl(&["plan", "--output", "json"]);
    let offline = lab.routectl(&["plan", "--observed", dir_s, "--output", "json"]);
    assert_code(&live, 0);
    assert_code(&offline, 0);
    // The same plan, except that only a live read tells what manages each interface.
    let without_manager = |mut v: serde_json::Value| {
        for n in v["nodes"].as_array_mut().unwrap() {
            n.as_object_mut().unwrap().remove("manager");
        }
        v
    };
    assert_eq!(live.json()["nodes"][0]["manager"]["name"], "none");
    assert_eq!(
        without_manager(live.json()),
        without_manager(offline.json())
    );
    assert_eq!(offline.json()["summary"]["add"], 1);
    assert_eq!(offline.json()["summary"]["delete"], 1);
    assert_code(
        &lab.routectl(&["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
    // Offline means offline: with the namespaces unreachable, the snapshot still plans.
    let text = lab
        .topology_text()
        .replace(&lab.prefix, &format!("{}-gone", lab.prefix));
    lab.write_topology(&text);
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 1);
    assert_code(
        &lab.routectl(&["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
}

#[test]
fn show_reports_an_unreadable_node_and_shows_the_others() {
    let lab = NetnsLab::seed();
    let text = lab.topology_text().replace(
        &format!("instance = \"{}\"", lab.ns("worker-2")),
        &format!("instance = \"{}-gone\"", lab.prefix),
    );
    lab.write_topology(&text);
    let run = lab.routectl(&["show"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains("-gone): error: `ip -n ") && run.stdout.contains("worker-1 (instance "),
        "{run:?}"
    );
    assert!(run.stdout.contains("; 1 unreadable."), "{run:?}");
}

/// The failed paths of a check, as `from -> to` strings.
fn failed(j: &serde_json::Value) -> BTreeSet<String> {
    j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .map(|p| {
            format!(
                "{} -> {}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn check_passes_after_apply_and_names_the_pair_when_a_route_is_deleted() {
    let lab = NetnsLab::seed();
    let before = lab.routectl(&["check"]);
    assert_code(&before, 1);
    assert!(
        before
            .stdout
            .contains("Check: 0 of 6 paths pass, 6 failed."),
        "{before:?}"
    );

    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    let run = lab.routectl(&["check"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    assert!(
        run.stdout.contains("  worker-0  -         ok        ok\n"),
        "{run:?}"
    );

    lab.ip("worker-0", &["route", "del", "10.1.2.0/24", "proto", "211"]);
    let run = lab.routectl(&["check"]);
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("failed: worker-0 -> worker-2 (IPv4, 10.1.0.1 -> 10.1.2.1, 2 pings)"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  hint: worker-0 has no route to 10.1.2.0/24 (pod_cidr of worker-2)\n"),
        "{run:?}"
    );
    let j = lab.routectl(&["check", "--output", "json"]);
    assert_code(&j, 1);
    let j = j.json();
    assert_eq!(j["kind"], "check");
    let expected: BTreeSet<String> = ["worker-0 -> worker-2", "worker-2 -> worker-0"]
        .map(String::from)
        .into();
    assert_eq!(failed(&j), expected);
    // The tests' own pings agree.
    let own: BTreeSet<String> = lab
        .unreachable_pairs()
        .iter()
        .map(|p| p.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(own, expected);
    // Repaired, it passes again.
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    assert_code(&lab.routectl(&["check"]), 0);
}

#[test]
fn check_covers_both_families_of_a_dual_stack_cluster() {
    let lab = NetnsLab::new(
        "pod_cidr = [\"10.1.0.0/16\", \"fd01::/32\"]",
        &[
            ("controller-0", &["10.0.2.10", "fd00::10"], &[]),
            (
                "worker-0",
                &["10.0.2.20", "fd00::20"],
                &["10.1.0.0/24", "fd01:0:0::/64"],
            ),
            (
                "worker-1",
                &["10.0.2.21", "fd00::21"],
                &["10.1.1.0/24", "fd01:0:1::/64"],
            ),
        ],
    );
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // The tests' own pings first: a lab this young may still be finishing IPv6 address
    // detection on its links, which is not what this test is about.
    assert_eq!(lab.wait_until_pods_reach(10), Vec::<String>::new());
    let run = lab.routectl(&["check", "--output", "json"]);
    assert_code(&run, 0);
    let j = run.json();
    assert_eq!(j["summary"]["paths"], 4);
    assert_eq!(j["families"][1]["family"], "ipv6");
    assert_eq!(
        j["families"][1]["nodes"],
        serde_json::json!(["worker-0", "worker-1"])
    );

    lab.ip(
        "worker-1",
        &["-6", "route", "del", "fd01::/64", "proto", "211"],
    );
    let run = lab.routectl(&["check", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    let v6: Vec<&serde_json::Value> = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .collect();
    assert_eq!(v6.len(), 2, "{run:?}");
    assert!(v6.iter().all(|p| p["family"] == "ipv6"), "{run:?}");
    assert!(
        v6[0]["hints"][0]
            .as_str()
            .unwrap()
            .contains("worker-1 has no route to fd01::/64 (pod_cidr of worker-0)"),
        "{run:?}"
    );
}

#[test]
fn check_names_an_asymmetric_path() {
    let lab = NetnsLab::seed();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // worker-1 answers no echo request, but its own requests are answered.
    lab.sysctl("worker-1", "net.ipv4.icmp_echo_ignore_all=1");
    let run = lab.routectl(&["check"]);
    assert_code(&run, 1);
    for line in [
        "asymmetric (IPv4): worker-1 reaches worker-0, but worker-0 does not reach worker-1 back\n",
        "asymmetric (IPv4): worker-1 reaches worker-2, but worker-2 does not reach worker-1 back\n",
        "  hint: both nodes route each other's pod CIDR via the right internal IP: look at forwarding, rp_filter and firewalls\n",
        "Check: 4 of 6 paths pass, 2 failed (2 asymmetric).",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }
}
