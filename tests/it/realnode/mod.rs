//! End-to-end tests on the real-node lab (`scripts/lab.sh up --realnode`, topology
//! tests/labs/realnode.toml): Debian 12 containers with systemd as PID 1, systemd-networkd
//! configuring eth1 (rn-worker-1 through netplan). They prove what docs/persistence.md claims:
//! without `persist` every node is warned about and a routine networkd action loses the routes;
//! with `persist = "networkd"` every such action and a container restart leave the routes in
//! place (or back within seconds, without routectl running), `check` passes and `plan` is in
//! sync; a drop-in edited or deleted by hand is a pending change; `reconcile` puts back routes
//! that a flush removed without a route event. The lab must be up (scripts/test.sh brings it
//! up): a missing lab fails these tests, it never skips them.
//!
//! One submodule per behaviour: `persistence`, `dropins`, `host_access`, `crash`; the lab
//! itself ([`RealLab`]) is here.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::systemd_lab::SystemdLab;
use crate::support::{run_lab_script, run_lab_script_best_effort};

mod crash;
mod dropins;
mod host_access;
mod persistence;

static LAB: Mutex<()> = Mutex::new(());
/// Where the test processes of every checkout on this machine take this lab (the mutex only
/// serializes the tests of one process); a killed test process releases it.
const LAB_LOCK: &str = "/tmp/routectl-test-realnode-lab.lock";

const NODES: [&str; 3] = ["rn-controller-0", "rn-worker-0", "rn-worker-1"];
const NETPLAN_NODE: &str = "rn-worker-1";
/// The routes each node should have (tests/labs/realnode.toml).
const ROUTES: usize = 4;

/// Runs `lxc ARGS`; panics (loudly: the lab is required) on failure.
fn lxc(args: &[&str]) -> String {
    crate::support::systemd_lab::lxc_for(args, UP)
}

/// Runs `sh -c SCRIPT` in a node; panics (loudly: the lab is required) on failure.
fn exec(node: &str, script: &str) -> String {
    crate::support::systemd_lab::exec_in(node, script, UP)
}

/// What brings this lab up.
const UP: &str = "scripts/lab.sh up --realnode";

/// The lab, taken by one test at a time, reset to kernel routes only and no routectl drop-in:
/// tests/labs/realnode.toml (`plain`) and the same with `persist = "networkd"` (`persisted`).
struct RealLab(SystemdLab);

impl std::ops::Deref for RealLab {
    type Target = SystemdLab;
    fn deref(&self) -> &SystemdLab {
        &self.0
    }
}

impl RealLab {
    fn take() -> RealLab {
        let lab = RealLab(SystemdLab::take(
            &LAB,
            LAB_LOCK,
            "tests/labs/realnode.toml",
            ("10.2.0.0/16", "networkd"),
            UP,
        ));
        // Repairs a node a previous test restarted or left half-configured, then resets.
        run_lab_script("lab.sh", &["up", "--realnode"]);
        run_lab_script("lab.sh", &["reset-routes", "--realnode"]);
        // A node a previous test restarted may still be bringing eth1 up: networkd names its
        // network file only once it is configured, and persistence needs that name.
        for n in NODES {
            wait_configured(n);
        }
        lab
    }

    fn total_owned(&self) -> usize {
        NODES.iter().map(|n| self.owned(n).len()).sum()
    }

    /// Waits until every node has all its routes again; returns how long that took.
    fn wait_all_routes(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let n = self.total_owned();
            if n == ROUTES {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "only {n} of {ROUTES} routes after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RealLab {
    /// Leaves the lab as the next user expects it: no routectl routes, no drop-ins.
    fn drop(&mut self) {
        run_lab_script_best_effort("lab.sh", &["reset-routes", "--realnode"]);
    }
}

/// Waits for a node's eth1 to be configured by networkd again (after a restart or reload).
fn wait_configured(node: &str) {
    let started = Instant::now();
    loop {
        let out = Command::new("lxc")
            .args([
                "exec",
                node,
                "--",
                "networkctl",
                "--no-legend",
                "list",
                "eth1",
            ])
            .stdin(Stdio::null())
            .output();
        if let Ok(o) = out
            && String::from_utf8_lossy(&o.stdout).contains("configured")
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{node}: eth1 not configured after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
