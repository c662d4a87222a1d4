//! Host access reads the network-manager facts and persists as exec access does.

use crate::support::assert_code;

use super::*;

/// Host access makes the same read as exec access on nodes networkd manages (one through
/// netplan): the same routes, binding, record and network-manager facts, byte for byte after
/// the `ip` part, before and after an apply with `persist` through host access; the drop-ins it
/// writes (through exec) are the ones exec access then finds in sync.
#[test]
#[ignore = "needs root and the real-node lab: scripts/test.sh"]
fn host_access_reads_the_facts_and_persists_as_exec_access_does() {
    use routectl::core::topology::TransportKind;
    let lab = RealLab::take();
    let topology = routectl::core::topology::parse(
        &std::fs::read(&lab.persisted).unwrap(),
        "persisted.toml",
        None,
    )
    .unwrap();
    crate::access::same_reads(TransportKind::Lxc, &topology.nodes);
    let exec = lab.routectl(&lab.persisted, &["plan", "-o", "json"]).json();
    let host = lab
        .routectl(&lab.persisted, &["--access", "host", "plan", "-o", "json"])
        .json();
    assert_eq!(
        crate::access::nodes_reached(&exec, "exec"),
        crate::access::nodes_reached(&host, "host")
    );
    assert_eq!(
        host["nodes"][2]["manager"]["name"], "systemd-networkd",
        "{host}"
    );
    assert_eq!(host["nodes"][2]["manager"]["netplan"], true, "{host}");
    let args = ["--access", "host", "apply", "--auto-approve", "-o", "json"];
    let apply = lab.routectl(&lab.persisted, &args);
    let a = apply.json();
    for i in 0..NODES.len() {
        assert_eq!(a["nodes"][i]["dropin"]["action"], "written", "{a}");
    }
    assert_code(&apply, 0);
    lab.assert_in_sync(&lab.persisted, "apply through host access");
    crate::access::same_reads(TransportKind::Lxc, &topology.nodes);
    let again = lab.routectl(
        &lab.persisted,
        &["--access", "host", "plan", "--detailed-exitcode"],
    );
    assert_code(&again, 0);
}
