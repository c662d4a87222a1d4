//! The persisted drop-in as a node's state: edited or deleted by hand it is a pending change,
//! `reconcile` rewrites it, and a node networkd does not manage is an error of its own.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;
use crate::support::{Routectl, assert_code};

use super::*;

/// A symbolic link planted in place of worker-0's drop-in `path` is neither read nor
/// followed: apply replaces it.
fn assert_a_planted_link_is_replaced(lab: &RealLab, path: &str) {
    exec(
        "rn-worker-0",
        &format!("rm {path} && ln -s /etc/shadow {path}"),
    );
    let plan = lab.routectl(&lab.persisted, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 3, "{plan:?}");
    assert!(
        plan.stdout.contains("a symbolic link: not read"),
        "{plan:?}"
    );
    assert!(
        !plan.stdout.contains("root:"),
        "the link's target leaked: {plan:?}"
    );
    let shadow = exec("rn-worker-0", "sha256sum /etc/shadow");
    assert_code(
        &lab.routectl(&lab.persisted, &["apply", "--auto-approve"]),
        0,
    );
    assert_eq!(exec("rn-worker-0", "sha256sum /etc/shadow"), shadow);
    assert_eq!(
        exec(
            "rn-worker-0",
            &format!("test -L {path} && echo link || echo file")
        ),
        "file\n"
    );
    lab.assert_in_sync(&lab.persisted, "the link was replaced");
}

#[test]
#[ignore = "needs root and the real-node lab: scripts/test.sh"]
fn a_dropin_edited_or_deleted_by_hand_is_a_pending_change() {
    let lab = RealLab::take();
    assert_code(
        &lab.routectl(&lab.persisted, &["apply", "--auto-approve"]),
        0,
    );
    let path = "/etc/systemd/network/10-eth1.network.d/50-routectl.conf";
    exec(
        "rn-worker-0",
        &format!("sed -i 's/10.0.3.21/10.0.3.99/' {path}"),
    );
    let plan = lab.routectl(&lab.persisted, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 3, "{plan:?}");
    assert!(
        plan.stdout.contains("rn-worker-0: drop-in to update"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("-Gateway=10.0.3.99"), "{plan:?}");
    assert!(plan.stdout.contains("+Gateway=10.0.3.21"), "{plan:?}");
    let j = lab.routectl(&lab.persisted, &["plan", "-o", "json"]).json();
    assert_eq!(
        j["nodes"][1]["persist"]["routes_removed"][0]["gateway"],
        "10.0.3.99"
    );
    assert_eq!(
        j["nodes"][1]["persist"]["routes_added"][0]["gateway"],
        "10.0.3.21"
    );

    exec("rn-worker-0", &format!("rm {path}"));
    let plan = lab.routectl(&lab.persisted, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 3, "{plan:?}");
    assert!(
        plan.stdout.contains("rn-worker-0: drop-in to create"),
        "{plan:?}"
    );
    let show = lab.routectl(&lab.persisted, &["show", "--node", "rn-worker-0"]);
    assert!(
        show.stdout.contains(&format!(
            "networkd drop-in {path}: missing (apply writes it)"
        )),
        "{show:?}"
    );
    assert_code(
        &lab.routectl(&lab.persisted, &["apply", "--auto-approve"]),
        0,
    );
    lab.assert_in_sync(&lab.persisted, "apply after the edits");

    // A symbolic link planted in its place is neither read nor followed: apply replaces it.
    assert_a_planted_link_is_replaced(&lab, path);

    // Turning persistence off removes routectl's drop-ins (and nothing else).
    let off = lab.routectl(&lab.plain, &["plan", "--detailed-exitcode"]);
    assert_eq!(off.code, 3, "{off:?}");
    assert!(off.stdout.contains("drop-in to remove"), "{off:?}");
    assert_code(&lab.routectl(&lab.plain, &["apply", "--auto-approve"]), 0);
    for node in NODES {
        assert_eq!(
            exec(
                node,
                "ls /etc/systemd/network/*.d/50-routectl.conf 2>/dev/null || true"
            ),
            "",
            "{node}"
        );
    }
    lab.assert_in_sync(&lab.plain, "persist turned off");
}

#[test]
#[ignore = "needs root and the real-node lab: scripts/test.sh"]
fn reconcile_with_persist_rewrites_a_deleted_dropin() {
    let lab = RealLab::take();
    let lock = lab.dir.path().join("lock");
    let mut child = Routectl::new()
        .topology(&lab.persisted)
        .lock_file(&lock)
        .args(["reconcile", "--interval", "1s"])
        .spawn_quiet();
    let path = "/etc/systemd/network/10-eth1.network.d/50-routectl.conf";
    let present = || {
        exec(
            "rn-worker-0",
            &format!("test -e {path} && echo yes || true"),
        ) == "yes\n"
    };
    let started = Instant::now();
    while !present() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "reconcile wrote no drop-in"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    exec("rn-worker-0", &format!("rm {path}"));
    let started = Instant::now();
    while !present() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "reconcile did not rewrite the deleted drop-in"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "rn-worker-0: reconcile --interval 1s rewrote the deleted drop-in after {} ms",
        started.elapsed().as_millis()
    );
    lab.wait_all_routes(Duration::from_secs(10));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    lab.assert_in_sync(&lab.persisted, "reconcile");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn persist_on_nodes_networkd_does_not_manage_is_a_per_node_error() {
    let lab = NetnsLab::new(
        "pod_cidr = \"10.1.0.0/16\"\npersist = \"networkd\"",
        &[
            ("a", &["10.0.2.10"], &["10.1.0.0/24"]),
            ("b", &["10.0.2.11"], &["10.1.1.0/24"]),
        ],
    );
    let plan = lab.run(&["plan", "-o", "json"]);
    assert_code(&plan, 1);
    let j = plan.json();
    for i in 0..2 {
        assert_eq!(j["nodes"][i]["status"], "error", "{j}");
        assert_eq!(j["nodes"][i]["error"]["kind"], "persist", "{j}");
        assert_eq!(j["nodes"][i]["manager"]["name"], "none", "{j}");
    }
    assert_eq!(j["summary"]["nodes_unpersistable"], 2, "{j}");
    assert_eq!(j["summary"]["nodes_unreachable"], 0, "{j}");
    let apply = lab.run(&["apply", "--auto-approve"]);
    assert_code(&apply, 1);
    assert!(apply.stdout.contains("a: FAILED"), "{apply:?}");
    assert!(
        apply.stdout.contains("nothing manages eth1 on this node"),
        "{apply:?}"
    );
    assert!(
        lab.table("a").iter().all(|r| !r.contains("proto 211")),
        "nothing was written"
    );
}

/// Puts back the node's own `networkctl` when the test ends, however it ends.
struct DelayedReload(&'static str);

impl Drop for DelayedReload {
    fn drop(&mut self) {
        exec(self.0, "rm -f /usr/local/bin/networkctl");
    }
}

#[test]
#[ignore = "needs root and the real-node lab: scripts/test.sh"]
fn apply_waits_until_networkd_has_reconfigured_the_link_after_its_reload() {
    // `networkctl reload` returns before networkd reconfigures the link (which flushes the
    // link's routes and puts them back); here its effect is delayed by a second, so that a
    // read-back that does not wait for networkd would be made before the flush.
    let lab = RealLab::take();
    let node = NETPLAN_NODE;
    let _restore = DelayedReload(node);
    exec(
        node,
        "printf '%s\\n' '#!/bin/sh' 'if [ \"$1\" = reload ]; then setsid sh -c \
         \"sleep 1; exec /usr/bin/networkctl reload\" </dev/null >/dev/null 2>&1 & exit 0; fi' \
         'exec /usr/bin/networkctl \"$@\"' > /usr/local/bin/networkctl && \
         chmod 0755 /usr/local/bin/networkctl",
    );
    let apply = lab.routectl(&lab.persisted, &["apply", "--auto-approve", "-o", "json"]);
    assert_code(&apply, 0);
    // Right after apply: networkd has already rewritten the link's state after the drop-in.
    let state = exec(
        node,
        "f=/run/systemd/netif/links/$(cat /sys/class/net/eth1/ifindex); \
         find \"$f\" -newer /etc/systemd/network/10-netplan-eth1.network.d/50-routectl.conf; \
         sed -n 's/^ADMIN_STATE=//p' \"$f\"",
    );
    assert!(
        state.lines().count() == 2 && state.ends_with("configured\n"),
        "apply returned before networkd reconfigured the link: {state:?}"
    );
    let j = apply.json();
    let w = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("{node} is missing: {j}"));
    assert_eq!(w["dropin"]["action"], "written", "{j}");
    assert!(
        w["dropin"]["write_ms"].as_u64().unwrap() >= 1000,
        "the write did not wait for the delayed reload: {j}"
    );
    lab.assert_in_sync(&lab.persisted, "apply with a late reload");
}
