//! The real LXD lab (brought up by `scripts/lab.sh up --lxd` from topology.example.toml; the
//! test script does that before running these tests). Tests using it take it with
//! [`LxdLab::take`], so that they never run at once; each starts from a lab whose every node
//! runs and has no routes but the kernel's, and leaves it that way. Without `lxc` or the lab
//! they fail, loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use routectl::core::topology::{self, Topology, TransportKind};

use super::lab::Lab;
use super::repo;

static LAB: Mutex<()> = Mutex::new(());

/// Where the test processes of every checkout on this machine lock the shared LXD lab (the
/// mutex only serializes the tests of one process).
const LAB_LOCK: &str = "/tmp/routectl-test-lxd-lab.lock";

/// Takes the lab across processes: an exclusive `flock` on [`LAB_LOCK`], held until the file
/// is closed (a killed test process releases it).
fn lock_across_processes() -> std::fs::File {
    super::lock_across_processes(LAB_LOCK)
}

/// The LXD lab of topology.example.toml.
pub struct LxdLab {
    /// The example topology.
    pub topology: Topology,
    /// Its path.
    pub path: PathBuf,
    /// The test's own directory (saved plans, edited topologies, lock file).
    pub dir: tempfile::TempDir,
    _file_lock: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// Runs `lxc ARGS`, returning stdout; panics (loudly: the lab is required) on failure.
pub fn lxc(args: &[&str]) -> String {
    match lxc_bounded(args, std::time::Duration::from_secs(120)) {
        Some(out) => out,
        None => panic!("lxc {args:?} did not return within 120 s"),
    }
}

/// `lxc ARGS` killed after `limit` (`None`): LXD's client was seen to wait for good on an
/// operation that had finished (`lxc start` of a container that was running).
fn lxc_bounded(args: &[&str], limit: std::time::Duration) -> Option<String> {
    let mut child = Command::new("lxc")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run lxc {args:?} ({e}): the LXD lab is required (scripts/test.sh brings it up)"));
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "lxc {args:?} failed: {}",
        String::from_utf8_lossy(&stderr)
    );
    Some(String::from_utf8_lossy(&stdout).into_owned())
}

impl LxdLab {
    /// Takes the lab for one test and removes every non-kernel route from every node.
    pub fn take() -> LxdLab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        let file_lock = lock_across_processes();
        let path = repo().join("topology.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let topology = topology::parse(text.as_bytes(), "topology.example.toml", None).unwrap();
        let lab = LxdLab {
            topology,
            path,
            dir: tempfile::tempdir().unwrap(),
            _file_lock: file_lock,
            _guard: guard,
        };
        for n in &lab.topology.nodes {
            lab.ensure_running(&n.name);
        }
        lab.reset_routes();
        lab.forget_records();
        lab
    }

    /// Starts a node if it is stopped and waits until its addresses are back.
    pub fn ensure_running(&self, node: &str) {
        let state = lxc(&["list", &format!("^{node}$"), "--format", "csv", "-c", "s"]);
        if state.trim() != "RUNNING"
            && lxc_bounded(&["start", node], std::time::Duration::from_secs(60)).is_none()
        {
            // The client hung; the container may well be running: the wait below tells.
            eprintln!("lxc start {node} did not return within 60 s; waiting for the node");
        }
        self.wait_ready(node);
    }

    /// Waits until a node answers and carries its internal IP.
    pub fn wait_ready(&self, node: &str) {
        let ip = self.topology.node(node).expect("a lab node").internal_ips[0].to_string();
        super::wait_until_container_has("lxc", node, &ip);
    }
}

impl Lab for LxdLab {
    fn name(&self) -> &'static str {
        "lxd"
    }
    fn topology_path(&self) -> &Path {
        &self.path
    }
    fn topology(&self) -> &Topology {
        &self.topology
    }
    fn transport(&self) -> TransportKind {
        TransportKind::Lxc
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn command(&self, node: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("lxc");
        cmd.args(["exec", node, "--"]).args(argv);
        cmd
    }
    fn restart(&self, node: &str) {
        lxc(&["restart", node]);
        self.wait_ready(node);
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
        self.reset_routes();
        self.forget_records();
    }
}
