//! End-to-end tests only the real LXD lab of topology.example.toml can run (controller-0 and
//! worker-0/1/2 as containers, eth1 on a private bridge, cnio0 with the pod gateway): a stopped
//! container, a hung or missing `ip` inside one, reconcile across a container restart and a new
//! container. They need the lab (and root), so they are ignored by a plain `cargo test`;
//! scripts/test.sh brings the lab up and runs them with `--include-ignored`. Without the lab
//! they fail, loudly. The scenarios every lab runs are in tests/it/scenarios/.

use crate::support::{assert_code, run_lab_script, run_lab_script_best_effort};

/// The lab's own topology, which `scripts/lab.sh up` puts the lab back to.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/topology.example.toml");
use crate::support::lab::Lab;
use crate::support::lxd::{LxdLab, lxc};

#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn a_stopped_node_is_reported_the_others_converge_and_nothing_is_deleted() {
    let lab = LxdLab::take();
    lxc(&["stop", "worker-2", "--force"]);
    let plan = lab.run(&["plan", "--detailed-exitcode", "--output", "json"]);
    assert_code(&plan, 1);
    let j = plan.json();
    assert_eq!(j["nodes"][3]["status"], "error");
    assert!(
        j["nodes"][3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{plan:?}"
    );
    assert_eq!(j["summary"]["add"], 7, "the others are still planned");

    let run = lab.run(&["apply", "--auto-approve"]);
    assert_code(&run, 1);
    assert!(
        run.stdout
            .contains("worker-2: unreachable, nothing was changed"),
        "{run:?}"
    );
    // worker-2's pod CIDR stays routed on the others.
    assert!(
        lab.table("worker-0")
            .contains(&"10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211".to_string())
    );
    assert_eq!(lab.table("controller-0").len(), 3);

    lxc(&["start", "worker-2"]);
    lab.wait_ready("worker-2");
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn a_hung_ip_times_out_and_a_missing_ip_is_named() {
    let lab = LxdLab::take();
    // worker-1's `ip` never returns.
    lab.exec_ok("worker-1", &["sh", "-c", "mv /usr/bin/ip /usr/bin/ip.real && printf '#!/bin/sh\\nexec sleep 120\\n' > /usr/bin/ip && chmod +x /usr/bin/ip"]);
    let restore = || {
        lab.exec_ok(
            "worker-1",
            &[
                "sh",
                "-c",
                "[ -e /usr/bin/ip.real ] && mv -f /usr/bin/ip.real /usr/bin/ip || true",
            ],
        );
    };
    let started = std::time::Instant::now();
    let run = lab.run(&["--timeout", "2s", "plan", "--output", "json"]);
    let took = started.elapsed();
    let hung_ok = run.code == 1
        && run.json()["nodes"][2]["error"]["kind"] == "timeout"
        && run.json()["nodes"][1]["status"] == "ok";
    // `ip` missing altogether.
    lab.exec_ok("worker-1", &["sh", "-c", "rm -f /usr/bin/ip"]);
    let missing = lab.run(&["plan"]);
    restore();
    assert!(hung_ok, "{run:?}");
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    assert_code(&missing, 1);
    assert!(missing.stdout.contains("worker-1: error:"), "{missing:?}");
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
}

/// Waits until `ok` holds, at most `limit`; returns how long that took.
fn wait_for(what: &str, limit: std::time::Duration, ok: &dyn Fn() -> bool) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    started.elapsed()
}

/// Starts a fourth worker container and appends it to the topology file `file`.
fn add_worker_3(lab: &LxdLab, file: &std::path::Path) {
    let grown = lab.dir().join("grown.toml");
    let text = std::fs::read_to_string(file).unwrap()
        + "\n[[nodes]]\nname = \"worker-3\"\ninternal_ip = \"10.0.2.23\"\npod_cidr = \"10.1.3.0/24\"\n";
    std::fs::write(&grown, &text).unwrap();
    run_lab_script("lab.sh", &["up", "--lxd", grown.to_str().unwrap()]);
    std::fs::write(file, &text).unwrap();
}

#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn reconcile_repairs_a_restart_routes_a_new_container_survives_a_bad_file_and_stops_on_sigterm() {
    use std::io::Read;
    use std::process::Command;
    use std::time::{Duration, Instant};

    let lab = LxdLab::take();
    let interval = Duration::from_secs(2);
    let file = lab.variant(&|t| t);
    let mut child = lab
        .routectl_bare()
        .topology(&file)
        .args(["reconcile", "--interval", "2s"])
        .spawn();
    // Should an assertion fail half-way, stop the reconciler and put the lab back to the
    // example topology (removing worker-3), so that the next test finds the lab it expects.
    let cleanup = OnPanic(Some(child.id()));
    wait_for("first convergence", interval * 3, &|| {
        lab.table("worker-2").len() == 2
    });

    // A restarted container loses its routes: they are back within one interval (plus the
    // container's own start-up), and the other nodes are not touched.
    let before = lab.table("worker-0");
    lxc(&["restart", "worker-1"]);
    lab.wait_ready("worker-1");
    let took = wait_for("worker-1's routes", interval * 2, &|| {
        lab.table("worker-1").len() == 2
    });
    assert!(
        took <= interval + Duration::from_millis(1500),
        "took {took:?}"
    );
    assert_eq!(lab.table("worker-0"), before);

    // A fourth worker container is started and appended to the topology.
    add_worker_3(&lab, &file);
    let took = wait_for("routes to worker-3", interval * 3, &|| {
        lab.table("worker-0")
            .contains(&"10.1.3.0/24 via 10.0.2.23 dev eth1 proto 211".to_string())
            && lab.table("worker-3").len() == 3
            && lab.table("controller-0").len() == 4
    });
    assert!(
        took <= interval + Duration::from_millis(1500),
        "took {took:?}"
    );
    assert!(lab.ping(
        "worker-3",
        "10.1.3.1".parse().unwrap(),
        "10.1.0.1".parse().unwrap()
    ));

    // A bad commit: the file becomes invalid; errors are logged and the routes stay.
    std::fs::write(
        &file,
        "[[nodes]]\nname = \"worker-0\"\ninternal_ip = \"not an address\"\n",
    )
    .unwrap();
    std::thread::sleep(interval * 2);
    assert_eq!(lab.table("worker-0").len(), 3);
    assert_eq!(lab.table("worker-3").len(), 3);

    // SIGTERM: a clean exit 0 within a second or two.
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    std::mem::forget(cleanup);
    let took = started.elapsed();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();

    // Put the lab back to the example topology (removes worker-3) before asserting further.
    run_lab_script("lab.sh", &["up", "--lxd", EXAMPLE]);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(log.contains("changed worker-1 (2 applied)"), "{log}");
    assert!(log.contains("worker-3 (3 applied)"), "{log}");
    assert!(
        log.contains("topology invalid, still enforcing the last valid one"),
        "{log}"
    );
    assert!(log.contains("not an address"), "{log}");
}

/// Stops a reconciler (by its process id) and brings the lab back to topology.example.toml,
/// when dropped during a panic.
struct OnPanic(Option<u32>);

impl Drop for OnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        run_lab_script_best_effort("lab.sh", &["up", "--lxd", EXAMPLE]);
    }
}

/// The scripts of routectl's own waiting in a node (a read held for its write), and the
/// temporary files of an apply script, as `lxc exec` sees them there.
fn held_leftovers(node: &str) -> String {
    // The brackets keep the pattern from matching the command lines that carry it.
    lxc(&[
        "exec",
        node,
        "--",
        "sh",
        "-c",
        "grep -l 'routectl-hel[d]' /proc/[0-9]*/cmdline 2>/dev/null; \
         ls -a /run/routectl/last-applied 2>/dev/null | grep '^\\.' | grep -v '^\\.\\.\\?$'; true",
    ])
}

/// `apply` holds each node's read open for its write (one `lxc exec` per node for both). A node
/// in sync is released: nothing of routectl's stays running in it. routectl killed with
/// SIGKILL at any moment (reads held, plan being made, writes under way) leaves no script
/// waiting and no temporary file in any node, never a record that is not valid JSON, and the
/// next apply converges.
#[test]
#[ignore = "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"]
fn held_reads_leave_nothing_behind_even_when_routectl_is_killed() {
    let lab = LxdLab::take();
    let nodes: Vec<String> = lab
        .topology()
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let settled = |what: &str| {
        let started = std::time::Instant::now();
        loop {
            let left: Vec<String> = nodes
                .iter()
                .map(|n| held_leftovers(n))
                .filter(|l| !l.trim().is_empty())
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{what}: still in the nodes after 10 s: {left:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    // How long an apply from empty takes here; then kills spread over it, from before the
    // reads to the end of the writes.
    lab.reset_routes();
    let started = std::time::Instant::now();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let took = started.elapsed().as_millis() as u64;
    for delay_ms in (0..=10).map(|i| took * i / 9) {
        lab.reset_routes();
        let mut child = lab
            .routectl()
            .args(["apply", "--auto-approve"])
            .spawn_quiet();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        settled(&format!("routectl killed after {delay_ms} ms"));
        for n in &nodes {
            let record = lxc(&[
                "exec",
                n,
                "--",
                "sh",
                "-c",
                &format!("cat /run/routectl/last-applied/{n}.json 2>/dev/null; true"),
            ]);
            if !record.is_empty() {
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(&record);
                assert!(parsed.is_ok(), "{n}, killed after {delay_ms} ms: {record}");
            }
        }
    }
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    settled("after an apply from a partly applied state");
    // In sync: every read is held, then released.
    let run = lab.run(&["-v", "apply", "--auto-approve"]);
    assert_code(&run, 0);
    assert_eq!(
        run.stderr.matches("(held for the write)").count(),
        nodes.len(),
        "{run:?}"
    );
    settled("after an apply in sync");
    assert_code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}
