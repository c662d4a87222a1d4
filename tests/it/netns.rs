//! End-to-end tests only a lab of network namespaces can run (dual stack, renaming a link,
//! a hung `ip` for one namespace, an instance pointed elsewhere): every test builds its own
//! lab (tests/it/support/netns.rs), runs the binary with the netns transport, and checks the
//! kernel's tables and real pod-to-pod reachability. Needs root and `ping`, so the tests are
//! ignored by a plain `cargo test`. The scenarios every lab runs are in tests/it/scenarios/.

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;
use crate::support::{assert_code, sh, write_script};

#[test]
#[ignore = "needs root: network namespaces"]
fn an_unreachable_node_is_reported_others_converge_nothing_is_deleted() {
    let lab = NetnsLab::seed();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    // worker-2 loses its routes (like a reboot) and becomes unreachable: its namespace name is
    // pointed elsewhere in the topology.
    lab.ip("worker-2", "route flush proto 211");
    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");
    let text = lab.topology_text().replace(
        &format!("instance = \"{}\"", lab.ns("worker-2")),
        &format!("instance = \"{}-gone\"", lab.prefix),
    );
    lab.write_topology(&text);
    let run = lab.run(&["apply", "--auto-approve"]);
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("worker-2: unreachable, nothing was changed"),
        "{run:?}"
    );
    // worker-2's pod CIDR stays routed on the others; worker-0 was repaired.
    assert!(
        lab.table("worker-0")
            .contains(&"10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211".to_string())
    );
    assert!(
        lab.table("worker-0")
            .contains(&"10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string())
    );
    let plan = lab.run(&["plan", "--output", "json"]);
    assert_code(&plan, 1);
    let j = plan.json();
    assert_eq!(j["nodes"][3]["status"], "error");
    assert_eq!(j["summary"]["delete"], 0);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn dual_stack_routes_both_families() {
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
    let run = lab.run(&["apply", "--auto-approve"]);
    assert_code(&run, 0);
    assert!(lab.table("worker-0").contains(
        &"fd01:0:1::/64 via fd00::21 dev eth1 proto 211 metric 1024 pref medium".to_string()
    ));
    assert_eq!(lab.table("controller-0").len(), 4);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    assert_code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn the_interface_can_be_set_per_node() {
    let lab = NetnsLab::seed();
    // Put worker-1's link on eth7 in the kernel and in the topology.
    let ns = lab.ns("worker-1");
    sh(&["ip", "-n", &ns, "link", "set", "eth1", "down"]);
    sh(&["ip", "-n", &ns, "link", "set", "eth1", "name", "eth7"]);
    sh(&["ip", "-n", &ns, "link", "set", "eth7", "up"]);
    let text = lab.topology_text().replace(
        &format!("instance = \"{ns}\"\n"),
        &format!("instance = \"{ns}\"\ninterface = \"eth7\"\n"),
    );
    lab.write_topology(&text);
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert!(
        lab.table("worker-1")
            .contains(&"10.1.0.0/24 via 10.0.2.20 dev eth7 proto 211".to_string())
    );
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_hung_node_times_out_and_the_others_proceed() {
    let lab = NetnsLab::seed();
    // An `ip` that hangs for one namespace only (as a node whose `ip` never returns would).
    let bin = lab.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real_ip = sh(&["sh", "-c", "command -v ip"]).trim().to_string();
    let hung = lab.ns("worker-1");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = \"{hung}\" ] && exec sleep 60; done\nexec {real_ip} \"$@\"\n"
    );
    write_script(&bin.join("ip"), script.as_bytes());
    let started = std::time::Instant::now();
    let run = lab
        .routectl()
        .args(["--timeout", "1s", "apply", "--auto-approve"])
        .path_first(&bin)
        .run();
    let took = started.elapsed();
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("worker-1: unreachable, nothing was changed"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("did not finish within 1 s and was killed"),
        "{run:?}"
    );
    assert_eq!(lab.table("worker-0").len(), 2);
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}

/// The last-applied record's binding is computed, never written: a namespace's `lo` keeps the
/// alias it had (scripts/lab.sh marks its namespaces so), the record is read on this host with
/// the plain `ip -n` read, and a namespace deleted and created again under the same name does
/// not inherit the record of the one before.
#[test]
#[ignore = "needs root: network namespaces"]
fn the_binding_changes_nothing_in_the_namespace_and_a_recreated_one_starts_afresh() {
    let lab = NetnsLab::seed();
    let ns = lab.ns("worker-0");
    sh(&[
        "ip",
        "-n",
        &ns,
        "link",
        "set",
        "dev",
        "lo",
        "alias",
        "routectl-lab",
    ]);
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let lo = sh(&["ip", "-n", &ns, "-j", "link", "show", "dev", "lo"]);
    assert!(lo.contains("\"ifalias\":\"routectl-lab\""), "{lo}");
    let record = std::fs::read_to_string(format!("/run/routectl/last-applied/{ns}.json"))
        .expect("the record, kept on this host");
    assert!(record.contains("\"binding\": \"boot="), "{record}");
    // The same namespace: a route deleted by hand is drift, and the read is `ip` alone.
    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");
    let plan = lab.run(&["-v", "plan", "--output", "json"]);
    assert_code(&plan, 0);
    assert!(
        plan.stderr
            .contains(&format!("+ ip -n {ns} -N -d -j route show table all\n")),
        "{}",
        plan.stderr
    );
    let j = plan.json();
    assert_eq!(j["nodes"][1]["changes"][0]["cause"], "drift", "{j:#}");
    // The namespace deleted and made again under its name: another instance of the node, as a
    // restarted container is. The old record tells what it lost (drift), and the plan says the
    // node restarted. (Its link to the hub goes first: a namespace's links are torn down after
    // `ip netns del` returns.)
    sh(&["ip", "-n", &lab.hub, "link", "del", "v1"]);
    sh(&["ip", "netns", "del", &ns]);
    let node = lab.topology.node("worker-0").expect("worker-0").clone();
    lab.add_node(1, &node);
    let j = lab.run(&["plan", "--output", "json"]).json();
    let w0 = &j["nodes"][1];
    assert_eq!(w0["last_applied"]["restarted"], true, "{w0:#}");
    assert!(
        w0["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("worker-0 restarted since the last apply (at ")),
        "{w0:#}"
    );
    assert!(
        w0["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["cause"] == "drift"),
        "{w0:#}"
    );
}
