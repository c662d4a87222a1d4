//! Mistakes a plan must stop before any write, on real kernels (network namespaces): a node
//! whose declared internal IP is not its own, a route interface the nodes lack, dual stack
//! declared before the nodes have IPv6, nodes on different segments. Each is an error of the
//! node it concerns (plan exits 1) and apply writes nothing that depends on it.

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

/// Every route of routectl's protocol on every node of the lab.
fn owned(lab: &NetnsLab) -> Vec<String> {
    ["controller-0", "worker-0", "worker-1", "worker-2"]
        .iter()
        .filter(|n| lab.topology().node(n).is_some())
        .flat_map(|n| {
            lab.table(n)
                .into_iter()
                .filter(|l| l.contains("proto 211"))
                .map(move |l| format!("{n}: {l}"))
        })
        .collect()
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_internal_ip_the_node_does_not_have_stops_the_plan_and_every_route_via_it() {
    let lab = NetnsLab::seed();
    lab.run(&["apply", "--auto-approve"]).code(0);
    let before = owned(&lab);
    let file = lab.variant(&|t| t.replace("\"10.0.2.22\"", "\"10.0.2.223\""));
    let plan = lab.run_file(&file, &["plan"]);
    plan.code(1)
        .stdout_has(
            "worker-2: error: internal_ip 10.0.2.223 is on no interface of the node (eth1 has \
             10.0.2.22/24)",
        )
        .stdout_has(
            "warning: `10.1.2.0/24 via 10.0.2.223 dev eth1 proto 211` is not planned: its \
             gateway 10.0.2.223 is on no interface of worker-2",
        )
        .stdout_has("1 node cannot carry its routes");
    assert!(!plan.stdout.contains("to replace\n  ~"), "{plan:?}");
    let j = lab.run_file(&file, &["plan", "-o", "json"]).json();
    assert_eq!(j["summary"]["replace"], 0, "{j}");
    assert_eq!(j["summary"]["nodes_misfit"], 1, "{j}");
    assert_eq!(j["nodes"][3]["error"]["kind"], "addresses", "{j}");
    lab.run_file(&file, &["apply", "--auto-approve"]).code(1);
    assert_eq!(owned(&lab), before, "apply changed routes");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_interface_the_nodes_lack_is_named_before_any_write() {
    let lab = NetnsLab::seed();
    let file = lab.variant(&|t| t.replacen("interface = \"eth1\"", "interface = \"eht1\"", 1));
    lab.run_file(&file, &["plan"])
        .code(1)
        .stdout_has("worker-0: error: the node has no interface eht1 that is up (it has ")
        .stdout_has("4 nodes cannot carry their routes");
    lab.run_file(&file, &["apply", "--auto-approve"]).code(1);
    assert_eq!(owned(&lab), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn dual_stack_declared_before_the_nodes_have_ipv6_is_each_nodes_error() {
    let lab = NetnsLab::seed();
    let file = lab.variant(&|t| {
        let mut t = t.replace("pod_cidr = \"10.1.0.0/16\"", "");
        for (ip, cidr, v6, v6cidr) in [
            ("10.0.2.20", "10.1.0.0/24", "fd00::20", "fd01::/64"),
            ("10.0.2.21", "10.1.1.0/24", "fd00::21", "fd01:0:0:1::/64"),
            ("10.0.2.22", "10.1.2.0/24", "fd00::22", "fd01:0:0:2::/64"),
        ] {
            t = t
                .replace(&format!("\"{ip}\""), &format!("\"{ip}\", \"{v6}\""))
                .replace(&format!("\"{cidr}\""), &format!("\"{cidr}\", \"{v6cidr}\""));
        }
        t.replace("\"10.0.2.10\"", "\"10.0.2.10\", \"fd00::10\"")
    });
    let plan = lab.run_file(&file, &["plan"]);
    plan.code(1).stdout_has(
        "worker-0: error: internal_ip fd00::20 is on no interface of the node (eth1 has no IPv6 \
         address)",
    );
    assert!(
        plan.stdout
            .contains("gateway fd00::21 (internal_ip of worker-1) is not on-link on eth1"),
        "{plan:?}"
    );
    lab.run_file(&file, &["apply", "--auto-approve"]).code(1);
    assert_eq!(owned(&lab), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn nodes_on_different_segments_are_told_host_gw_needs_one() {
    let lab = NetnsLab::new(
        "",
        &[
            ("worker-0", &["10.0.2.20"], &["10.1.0.0/24"]),
            ("worker-1", &["10.0.3.21"], &["10.1.1.0/24"]),
        ],
    );
    let plan = lab.run(&["plan"]);
    plan.code(1).stdout_has(
        "worker-0: error: gateway 10.0.3.21 (internal_ip of worker-1) is not on-link on eth1 \
         (its networks: 10.0.2.0/24); host-gw routes need every node on one shared network \
         segment",
    );
    lab.run(&["apply", "--auto-approve"]).code(1);
    assert_eq!(owned(&lab), Vec::<String>::new());
    // `show` says the same of the gateway.
    lab.run(&["show"])
        .stdout_has("gateway 10.0.2.20 (internal_ip of worker-0) is not on-link on eth1");
}
