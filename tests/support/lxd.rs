//! The real LXD lab (brought up by `scripts/lab.sh up --lxd` from topology.example.toml; the
//! test script does that before running these tests). Tests using it take [`LxdLab::lock`] so
//! that they never run at once, and start from a lab with no routes but the kernel's.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use routectl::core::topology::{self, Topology};

use super::{Run, first_host, routectl_with};

static LAB: Mutex<()> = Mutex::new(());

/// The LXD lab of topology.example.toml.
pub struct LxdLab {
    /// The example topology.
    pub topology: Topology,
    /// Its path.
    pub path: PathBuf,
    /// The test's own directory (saved plans, edited topologies, lock file).
    pub dir: tempfile::TempDir,
    _guard: MutexGuard<'static, ()>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `lxc ARGS`, returning stdout; panics (loudly: the lab is required) on failure.
pub fn lxc(args: &[&str]) -> String {
    let out = Command::new("lxc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run lxc {args:?} ({e}): the LXD lab is required (scripts/test.sh brings it up)"));
    assert!(
        out.status.success(),
        "lxc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl LxdLab {
    /// Takes the lab for one test and removes every non-kernel route from every node.
    pub fn take() -> LxdLab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        let path = repo().join("topology.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let topology = topology::parse(text.as_bytes(), "topology.example.toml", None).unwrap();
        let lab = LxdLab {
            topology,
            path,
            dir: tempfile::tempdir().unwrap(),
            _guard: guard,
        };
        for n in &lab.topology.nodes {
            lab.ensure_running(&n.name);
        }
        lab.reset();
        lab
    }

    /// Removes every route of table main that the kernel did not make, on every node.
    pub fn reset(&self) {
        const FLUSH: &str = "for f in -4 -6; do for p in 211 boot static; do \
                             ip $f route flush table main proto $p || exit 1; done; done";
        for n in &self.topology.nodes {
            self.exec_ok(&n.name, &["sh", "-c", FLUSH]);
        }
    }

    /// Runs a command in a node; panics on failure.
    pub fn exec_ok(&self, node: &str, argv: &[&str]) -> String {
        let mut args = vec!["exec", node, "--"];
        args.extend_from_slice(argv);
        lxc(&args)
    }

    /// Runs `ip ARGS` in a node; panics on failure.
    pub fn ip(&self, node: &str, args: &[&str]) {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        self.exec_ok(node, &argv);
    }

    /// `ip route` lines of table main (both families), without kernel and link-local routes.
    pub fn routes(&self, node: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for fam in ["-4", "-6"] {
            let out = self.exec_ok(node, &["ip", fam, "route", "show", "table", "main"]);
            lines.extend(out.lines().map(|l| l.trim().to_string()).filter(|l| {
                !l.contains("proto kernel")
                    && !l.starts_with("fe80::")
                    && !l.starts_with("multicast")
            }));
        }
        lines.sort();
        lines
    }

    /// Starts a node if it is stopped and waits until its addresses are back.
    pub fn ensure_running(&self, node: &str) {
        let state = lxc(&["list", &format!("^{node}$"), "--format", "csv", "-c", "s"]);
        if state.trim() != "RUNNING" {
            lxc(&["start", node]);
        }
        self.wait_ready(node);
    }

    /// Waits until a node answers and carries its internal IP.
    pub fn wait_ready(&self, node: &str) {
        let ip = self.topology.node(node).unwrap().internal_ips[0].to_string();
        let started = Instant::now();
        loop {
            let out = Command::new("lxc")
                .args(["exec", node, "--", "ip", "-o", "addr", "show"])
                .stdin(Stdio::null())
                .output();
            if let Ok(o) = out
                && String::from_utf8_lossy(&o.stdout).contains(&format!(" {ip}/"))
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{node} did not come back with {ip}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs routectl against the lab with the example topology and a private lock file.
    pub fn routectl(&self, args: &[&str]) -> Run {
        self.routectl_file(&self.path, args)
    }

    /// Runs routectl with another topology file.
    pub fn routectl_file(&self, topology: &std::path::Path, args: &[&str]) -> Run {
        let lock = self.dir.path().join("routectl.lock");
        let mut all = vec!["--lock-file", lock.to_str().unwrap()];
        all.extend_from_slice(args);
        routectl_with(topology, &all, &[])
    }

    /// Writes a variant of the example topology into the test's directory.
    pub fn variant(&self, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = edit(std::fs::read_to_string(&self.path).unwrap());
        let p = self.dir.path().join("topology.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// True when `ping` from `node` with source `src` reaches `dst` (retried once).
    pub fn ping(&self, node: &str, src: IpAddr, dst: IpAddr) -> bool {
        let attempt = |extra: &[&str]| {
            let (s, d) = (src.to_string(), dst.to_string());
            let mut args = vec![
                "exec",
                node,
                "--",
                "ping",
                "-n",
                "-q",
                "-W1",
                "-I",
                s.as_str(),
            ];
            args.extend_from_slice(extra);
            args.push(d.as_str());
            Command::new("lxc")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        attempt(&["-c1"]) || attempt(&["-c3", "-i0.2"])
    }

    /// Pairs of workers whose pod gateways cannot reach each other.
    pub fn unreachable_pairs(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for a in &self.topology.nodes {
            for b in &self.topology.nodes {
                if a.name == b.name || a.pod_cidrs.is_empty() || b.pod_cidrs.is_empty() {
                    continue;
                }
                let (src, dst) = (first_host(&a.pod_cidrs[0]), first_host(&b.pod_cidrs[0]));
                if !self.ping(&a.name, src, dst) {
                    bad.push(format!("{} -> {}", a.name, b.name));
                }
            }
        }
        bad
    }
}

impl Drop for LxdLab {
    fn drop(&mut self) {
        // Leave the lab as found: every node running, no routes but the kernel's.
        for n in &self.topology.nodes {
            let _ = Command::new("lxc")
                .args(["start", &n.name])
                .stdin(Stdio::null())
                .output();
        }
        for n in &self.topology.nodes {
            self.wait_ready(&n.name);
        }
        self.reset();
    }
}
