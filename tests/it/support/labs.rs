//! The container labs besides the default one (scripts/lab.sh --lab NAME): `incus` (three
//! Incus containers on rtlab3, tests/labs/incus.toml) and `project` (the default lab's names in
//! the LXD project routectl-lab-proj on rtlab4, tests/labs/project.toml). A test takes
//! [`ContainerLab::take`], which brings the lab up (idempotent), starts stopped containers and
//! removes every non-kernel route.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use super::Run;

static LAB: Mutex<()> = Mutex::new(());

/// Where the test processes of every checkout on this machine lock these labs (the mutex only
/// serializes the tests of one process); a killed test process releases it.
const LAB_LOCK: &str = "/tmp/routectl-test-container-labs.lock";

fn lock_across_processes() -> std::fs::File {
    super::lock_across_processes(LAB_LOCK)
}

/// The project of the project lab.
pub const PROJECT: &str = "routectl-lab-proj";
/// The loopback remote that `scripts/lab.sh remote` adds.
pub const REMOTE: &str = "routectl-lab-loop";

fn repo() -> PathBuf {
    super::repo().to_path_buf()
}

pub use super::routectl_with;

/// Runs scripts/lab.sh; panics (the lab is required) when it fails.
pub fn lab_script(args: &[&str]) -> String {
    super::run_lab_script("lab.sh", args)
}

/// One of the extra container labs.
pub struct ContainerLab {
    /// `incus` or `project`.
    pub name: &'static str,
    /// The client: `incus` or `lxc`.
    pub cli: &'static str,
    /// `--project`, for the project lab.
    pub project: Option<&'static str>,
    /// The lab's topology.
    pub topology: PathBuf,
    /// The test's own directory.
    pub dir: tempfile::TempDir,
    _file_lock: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

impl ContainerLab {
    /// Takes the `incus` or `project` lab.
    pub fn take(name: &'static str) -> ContainerLab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        let file_lock = lock_across_processes();
        let (cli, project) = match name {
            "incus" => ("incus", None),
            "project" => ("lxc", Some(PROJECT)),
            _ => panic!("no lab {name}"),
        };
        lab_script(&["up", "--lab", name]);
        lab_script(&["reset-routes", "--lab", name]);
        let lab = ContainerLab {
            name,
            cli,
            project,
            topology: repo().join(format!("tests/labs/{name}.toml")),
            dir: tempfile::tempdir().unwrap(),
            _file_lock: file_lock,
            _guard: guard,
        };
        lab.forget_records();
        lab
    }

    /// Removes routectl's last-applied records in every container of the lab (all of the
    /// Incus daemon's and the project's instances are the lab's), as if it never applied there.
    /// Never panics (it also runs in `drop`).
    pub fn forget_records(&self) {
        let client = || {
            let mut cmd = Command::new(self.cli);
            if let Some(p) = self.project {
                cmd.args(["--project", p]);
            }
            cmd
        };
        let listed = client()
            .args(["list", "--format", "csv", "-c", "n"])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for inst in listed.lines() {
            let inst = inst.trim();
            if !inst.is_empty() {
                let _ = client()
                    .args([
                        "exec",
                        inst,
                        "--",
                        "rm",
                        "-rf",
                        "/run/routectl/last-applied",
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    /// Runs the lab's client (`incus …` or `lxc --project P …`), returning stdout.
    pub fn client(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(self.cli);
        if let Some(p) = self.project {
            cmd.args(["--project", p]);
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.cli));
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.cli,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs routectl with the lab's topology.
    pub fn routectl(&self, args: &[&str]) -> Run {
        routectl_with(&self.topology, args, &[])
    }

    /// Runs routectl with another topology.
    pub fn routectl_file(&self, topology: &Path, args: &[&str]) -> Run {
        routectl_with(topology, args, &[])
    }

    /// Writes a variant of the lab's topology into the test's directory.
    pub fn variant(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.topology).unwrap();
        let path = self.dir.path().join(name);
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    /// `ip route` lines of a node's table main, without kernel routes.
    pub fn table(&self, node: &str) -> Vec<String> {
        self.client(&["exec", node, "--", "ip", "route", "show", "table", "main"])
            .lines()
            .filter(|l| !l.contains("proto kernel"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Whether `src` (a pod gateway of `node`) reaches `dst`.
    pub fn ping(&self, node: &str, src: &str, dst: &str) -> bool {
        let mut cmd = Command::new(self.cli);
        if let Some(p) = self.project {
            cmd.args(["--project", p]);
        }
        cmd.args([
            "exec", node, "--", "ping", "-c", "1", "-W", "1", "-I", src, dst,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    }
}

impl Drop for ContainerLab {
    fn drop(&mut self) {
        // A test may have stopped a container: the next one finds the lab whole.
        super::run_lab_script_best_effort("lab.sh", &["up", "--lab", self.name]);
        self.forget_records();
    }
}
