//! A node whose namespace or container changes under host access, or a process posing as
//! another instance's monitor: an error for that node only, never another node touched.

use std::process::Command;
use std::time::Duration;

use crate::support::lab::Lab;
use crate::support::lxd::LxdLab;
use crate::support::netns::NetnsLab;
use crate::support::{assert_code, sh};
use routectl::core::topology::TransportKind;
use routectl::node::host::Host;
use routectl::node::observe;

use super::*;

#[test]
#[ignore = "needs root: network namespaces and setns"]
fn a_recreated_namespace_is_an_error_once_then_resolved_again() {
    let lab = NetnsLab::seed();
    let host = Host::new(TransportKind::Netns, TIMEOUT, false);
    let node = lab.topology().node("worker-2").unwrap();
    observe::read_node(&host, node).unwrap();
    let ns = lab.ns("worker-2");
    sh(&["ip", "netns", "del", &ns]);
    let gone = observe::read_node(&host, node).unwrap_err().to_string();
    assert!(gone.contains("namespace changed"), "{gone}");
    sh(&["ip", "netns", "add", &ns]);
    // Resolved again: the new (empty) namespace is read, never the old one.
    let routes = observe::read_node(&host, node).unwrap();
    assert!(
        routes.iter().all(|r| r.dev().is_none_or(|d| d == "lo")),
        "{routes:?}"
    );
    sh(&["ip", "netns", "del", &ns]);
    sh(&["ip", "netns", "add", &ns]);
    let changed = observe::read_node(&host, node).unwrap_err().to_string();
    assert!(changed.contains("now has inode"), "{changed}");
    // The host's own namespace is never taken for a node's.
    std::fs::create_dir_all("/run/netns").unwrap();
    let own = format!("{}-own", lab.prefix);
    let path = format!("/run/netns/{own}");
    std::fs::File::create(&path).unwrap();
    sh(&["mount", "--bind", "/proc/self/ns/net", &path]);
    let refused = host.namespace(&own).map(|_| ()).unwrap_err().to_string();
    sh(&["umount", &path]);
    std::fs::remove_file(&path).unwrap();
    assert!(
        refused.contains("routectl's own network namespace"),
        "{refused}"
    );
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn a_stopped_or_restarted_container_is_an_error_for_that_node_only() {
    let lab = LxdLab::take();
    let host = Host::new(TransportKind::Lxc, TIMEOUT, false);
    let node = lab.topology().node("worker-2").unwrap().clone();
    observe::read_node(&host, &node).unwrap();

    restart(&lab, "worker-2");
    // The PID read before the restart is stale: an error, never another namespace's routes.
    let stale = observe::read_node(&host, &node).unwrap_err().to_string();
    assert!(stale.contains("namespace changed"), "{stale}");
    observe::read_node(&host, &node).unwrap();

    crate::support::lxd::lxc(&["stop", "--force", "worker-2"]);
    let run = lab.run(&["--access", "host", "plan", "-o", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    for n in j["nodes"].as_array().unwrap() {
        if n["name"] == "worker-2" {
            assert_eq!(n["error"]["kind"], "host_access", "{run:?}");
            let msg = n["error"]["message"].as_str().unwrap();
            assert!(msg.contains("Stopped"), "{msg}");
        } else {
            assert!(n["error"].is_null(), "{run:?}");
        }
    }
    lab.ensure_running("worker-2");
}

/// Root in one container starts processes that call themselves another instance's liblxc
/// monitor (`[lxc monitor] LXCPATH worker-1`), each with a child in its own container's
/// cgroup, in its own network namespace and in a fresh empty one. Host access takes identity
/// from the daemon and the instance's cgroup only: it reads, plans and applies worker-1 exactly
/// as exec access does, and the impostor's tables are left alone.
#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn a_process_posing_as_another_instance_s_monitor_changes_nothing() {
    let lab = LxdLab::take();
    let lxcpath = "/var/lib/lxd/containers";
    let fake = format!(
        "for i in 1 2 3; do (exec -a '[lxc monitor] {lxcpath} worker-1' bash -c \
         'sleep 300 & sleep 300 & wait') >/dev/null 2>&1 & done; true"
    );
    lab.exec_ok("worker-0", &["bash", "-c", &fake]);
    std::thread::sleep(Duration::from_millis(300));
    let impostors = sh(&[
        "sh",
        "-c",
        &format!(
            "for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); \
         case $c in '[lxc monitor] {lxcpath} worker-1'*) \
         grep -q lxc.payload.worker-0 $p/cgroup && echo ${{p#/proc/}};; esac; done"
        ),
    ]);
    assert!(
        impostors.lines().count() >= 3,
        "the impostor monitors run: {impostors:?}"
    );
    // A route only worker-1 has, and one only the impostor's container has.
    lab.ip(
        "worker-1",
        "route add 10.62.0.0/16 via 10.0.2.20 proto static",
    );
    lab.ip(
        "worker-0",
        "route add 10.63.0.0/16 via 10.0.2.21 proto static",
    );
    same_reads(TransportKind::Lxc, &lab.topology().nodes);
    same_plans(|args| lab.run(args));
    let worker0_before = lab.table("worker-0");
    assert_code(
        &lab.run(&["--access", "host", "apply", "--auto-approve"]),
        0,
    );
    assert_code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    // The record host access wrote in each container's root: the container's root owns it.
    for node in ["worker-0", "worker-1", "worker-2", "controller-0"] {
        let stat = lab.exec_ok(
            node,
            &[
                "stat",
                "-c",
                "%u %a",
                &format!("/run/routectl/last-applied/{node}.json"),
            ],
        );
        assert_eq!(stat.trim(), "0 600", "{node}");
    }
    assert!(lab.has(
        "worker-1",
        "10.62.0.0/16 via 10.0.2.20 dev eth1 proto static"
    ));
    assert!(lab.has(
        "worker-0",
        "10.63.0.0/16 via 10.0.2.21 dev eth1 proto static"
    ));
    let worker0_after = lab.table("worker-0");
    assert!(
        worker0_before.iter().all(|r| worker0_after.contains(r)),
        "worker-0 lost routes: {worker0_before:?} -> {worker0_after:?}"
    );
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    for pid in impostors.lines() {
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
    lab.ip("worker-1", "route del 10.62.0.0/16");
    lab.ip("worker-0", "route del 10.63.0.0/16");
}
