//! `routectl reconcile` against real network namespaces (needs root, so ignored by a plain
//! `cargo test`): routes come back after a "reboot",
//! a node appended to the topology is routed, an invalid topology changes nothing, SIGTERM stops
//! it promptly with exit 0.

use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

fn start(lab: &NetnsLab, extra: &[&str]) -> Child {
    let metrics = lab.dir().join("metrics.prom");
    lab.routectl()
        .args(["reconcile", "--interval", "300ms", "--metrics-file"])
        .arg(&metrics)
        .args(extra)
        .spawn()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) -> (i32, String, Duration) {
    let started = Instant::now();
    // SAFETY-free: `kill` is the plain command; SIGTERM asks for a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let took = started.elapsed();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (code, log, took)
}

#[test]
#[ignore = "needs root: network namespaces"]
fn reconcile_restores_routes_routes_new_nodes_survives_a_bad_file_and_stops_cleanly() {
    let lab = NetnsLab::seed();
    let child = start(&lab, &[]);
    wait_for("first convergence", Duration::from_secs(10), || {
        lab.broken_paths().is_empty()
    });

    // A node "reboots": its routes are gone; only it is repaired.
    let before_w0 = lab.table("worker-0");
    lab.ip("worker-1", "route flush proto 211");
    wait_for("worker-1's routes", Duration::from_secs(3), || {
        lab.table("worker-1").len() == 2
    });
    assert_eq!(lab.table("worker-0"), before_w0);

    // A node appended to the topology is routed everywhere.
    lab.grow("worker-3", "10.0.2.23", "10.1.3.0/24");
    wait_for("routes to worker-3", Duration::from_secs(3), || {
        lab.table("worker-0")
            .iter()
            .any(|r| r.starts_with("10.1.3.0/24 via 10.0.2.23"))
            && lab.table("worker-3").len() == 3
    });
    assert!(lab.broken_paths().is_empty());

    // A bad commit: errors are logged, the last valid topology is still enforced, nothing goes.
    let good = lab.topology_text();
    lab.write_topology("[cluster\nthis is not toml");
    lab.ip("worker-2", "route del 10.1.0.0/24 proto 211");
    wait_for(
        "repair under an invalid file",
        Duration::from_secs(3),
        || {
            lab.table("worker-2")
                .iter()
                .any(|r| r.starts_with("10.1.0.0/24"))
        },
    );
    assert_eq!(lab.table("worker-0").len(), 3);
    lab.write_topology(&good);

    let metrics = std::fs::read_to_string(lab.dir().join("metrics.prom")).unwrap();
    assert!(
        metrics.contains("routectl_node_converged{node=\"worker-3\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE routectl_rounds_total counter"),
        "{metrics}"
    );

    let (code, log, took) = stop(child);
    assert_eq!(code, 0, "{log}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    assert!(log.contains("changed worker-1 (2 applied)"), "{log}");
    assert!(
        log.contains("topology invalid, still enforcing the last valid one"),
        "{log}"
    );
    assert!(log.contains("stopping after"), "{log}");
    assert!(log.contains("in sync (4 nodes)"), "{log}");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_unreachable_node_backs_off_without_slowing_the_others() {
    let lab = NetnsLab::seed();
    // worker-2's namespace is missing: reads fail for it.
    let text = lab.topology_text().replace(
        &format!("instance = \"{}\"", lab.ns("worker-2")),
        &format!("instance = \"{}-missing\"", lab.prefix),
    );
    lab.write_topology(&text);
    let child = start(&lab, &["--log-format", "json"]);
    wait_for("the others to converge", Duration::from_secs(10), || {
        lab.table("worker-0").len() == 2 && lab.table("controller-0").len() == 3
    });
    std::thread::sleep(Duration::from_millis(2500));
    let (code, log, _) = stop(child);
    assert_eq!(code, 0, "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Rounds that only wait out a back-off are logged at debug (not shown): count rounds by
    // their number.
    let rounds = lines
        .iter()
        .filter(|l| l["event"] == "round")
        .filter_map(|l| l["round"].as_u64())
        .max()
        .unwrap_or(0) as usize;
    let tried = lines
        .iter()
        .filter(|l| l["event"] == "round")
        .filter(|l| {
            l["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["name"] == "worker-2"))
        })
        .count();
    assert!(rounds >= 6, "{rounds} rounds: {log}");
    assert!(
        tried < rounds / 2 + 1,
        "worker-2 tried {tried} of {rounds} rounds: back-off expected\n{log}"
    );
    assert!(log.contains("\"status\":\"unreachable\""), "{log}");
    // Its pod CIDR stays routed on the others.
    assert!(
        lab.table("worker-0")
            .iter()
            .any(|r| r.starts_with("10.1.2.0/24"))
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn once_runs_a_single_round_and_reports_by_exit_code() {
    let lab = NetnsLab::seed();
    let run = lab.run(&["reconcile", "--once"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("round 1: changed"), "{run:?}");
    assert!(lab.broken_paths().is_empty());
}

/// SIGTERM while a round waits on a node (its `ip` hangs) and watchers run: a stop asked for is
/// no failure. One "stopping" line, no error, no watcher "restarting", exit 0.
#[test]
#[ignore = "needs root: network namespaces"]
fn a_stop_during_a_round_is_quiet() {
    let lab = NetnsLab::seed();
    let bin = lab.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real_ip = crate::support::sh(&["sh", "-c", "command -v ip"])
        .trim()
        .to_string();
    let hang = lab.dir().join("hang");
    let script = format!(
        "#!/bin/sh\nif [ -e {} ]; then for a in \"$@\"; do [ \"$a\" = \"{}\" ] && exec sleep 60; done; fi\nexec {real_ip} \"$@\"\n",
        hang.display(),
        lab.ns("worker-1")
    );
    crate::support::write_script(&bin.join("ip"), script.as_bytes());
    let child = lab
        .routectl()
        .args([
            "--timeout",
            "30s",
            "reconcile",
            "--interval",
            "60s",
            "--watch",
        ])
        .path_first(&bin)
        .spawn();
    wait_for("first convergence", Duration::from_secs(10), || {
        lab.broken_paths().is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    // worker-1 changes; its next read hangs, so the round it triggers waits on it.
    std::fs::write(&hang, "").unwrap();
    lab.ip("worker-1", "route flush proto 211");
    std::thread::sleep(Duration::from_millis(1500));
    let (code, log, took) = stop(child);
    assert_eq!(code, 0, "{log}");
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert_eq!(log.matches("stopping after").count(), 1, "{log}");
    assert!(
        log.contains("(SIGTERM); round ") && log.contains(" was cut short"),
        "{log}"
    );
    assert!(!log.contains("error"), "{log}");
    assert!(!log.contains("restarting"), "{log}");
    assert!(!log.contains("exited with status"), "{log}");
}
