//! End-to-end tests of `routectl show` and `routectl check` that only a lab of network
//! namespaces can run (dual stack, an address removed, echo requests ignored, an instance
//! pointed elsewhere): every test builds its own lab (tests/it/support/netns.rs) and compares
//! with the kernel's tables and with pings of its own. Needs root and `ping`, so ignored by a
//! plain `cargo test`. The show and check scenarios every lab runs are in
//! tests/it/scenarios/.

use crate::support::assert_code;
use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

#[test]
#[ignore = "needs root: network namespaces"]
fn show_warns_when_the_topology_and_the_addresses_disagree() {
    let lab = NetnsLab::seed();
    // worker-1's pod bridge lost its address; controller-0 is declared with an address it lacks.
    lab.ip("worker-1", "addr del 10.1.1.1/24 dev cnio0");
    let text = lab
        .topology_text()
        .replace("\"10.0.2.10\"", "\"10.0.2.11\"");
    lab.write_topology(&text);
    let run = lab.run(&["show"]);
    // Disagreements are warnings: show still succeeds.
    assert_code(&run, 0);
    for line in [
        "  warning: internal_ip 10.0.2.11 is on no interface of the node (eth1 has 10.0.2.10/24)\n",
        "  warning: pod gateway 10.1.1.1 (first host of pod_cidr 10.1.1.0/24) is on no interface of the node: is the pod bridge up, and is pod_cidr right?\n",
        "; 2 warnings.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }
    let j = lab.run(&["show", "--output", "json"]).json();
    let checks = &j["nodes"][2]["addresses"];
    assert_eq!(checks[1]["check"], "pod_gateway");
    assert_eq!(checks[1]["ok"], false);
    assert_eq!(checks[0]["ok"], true);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn show_reports_an_unreadable_node_and_shows_the_others() {
    let lab = NetnsLab::seed();
    let text = lab.topology_text().replace(
        &format!("instance = \"{}\"", lab.ns("worker-2")),
        &format!("instance = \"{}-gone\"", lab.prefix),
    );
    lab.write_topology(&text);
    let run = lab.run(&["show"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains("-gone): error: `ip -n ")
            && run.stdout.contains("Cannot open network namespace")
            && run.stdout.contains("worker-1 (instance "),
        "{run:?}"
    );
    assert!(run.stdout.contains("; 1 unreadable."), "{run:?}");
}

#[test]
#[ignore = "needs root: network namespaces"]
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
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    // The tests' own pings first: a lab this young may still be finishing IPv6 address
    // detection on its links, which is not what this test is about.
    assert_eq!(lab.wait_until_pods_reach(10), Vec::<String>::new());
    let run = lab.run(&["check", "--output", "json"]);
    assert_code(&run, 0);
    let j = run.json();
    assert_eq!(j["summary"]["paths"], 4);
    assert_eq!(j["families"][1]["family"], "ipv6");
    assert_eq!(
        j["families"][1]["nodes"],
        serde_json::json!(["worker-0", "worker-1"])
    );

    lab.ip("worker-1", "-6 route del fd01::/64 proto 211");
    let run = lab.run(&["check", "--output", "json"]);
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
#[ignore = "needs root: network namespaces"]
fn check_names_an_asymmetric_path() {
    let lab = NetnsLab::seed();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    // worker-1 answers no echo request, but its own requests are answered.
    lab.sysctl("worker-1", "net.ipv4.icmp_echo_ignore_all=1");
    let run = lab.run(&["check"]);
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
