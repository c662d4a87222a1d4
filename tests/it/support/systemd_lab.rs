//! What the two labs of full Debian systems share (the real-node lab, tests/it/realnode/, and
//! the network-manager lab, tests/it/managers.rs): one test at a time across every test
//! process of the machine, a topology with persistence turned on beside the lab's own, and the
//! few looks into a node their tests take.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use super::{Routectl, Run, lock_across_processes, repo};

/// One of the two labs, held by one test.
pub struct SystemdLab {
    /// The test's own directory (the lock file, edited topologies).
    pub dir: tempfile::TempDir,
    /// The lab's topology (persist off).
    pub plain: PathBuf,
    /// The same with `persist = MODE` in [cluster].
    pub persisted: PathBuf,
    /// What a failing `lxc exec` names as the lab to bring up.
    up: &'static str,
    _guard: MutexGuard<'static, ()>,
    _across: std::fs::File,
}

impl SystemdLab {
    /// Takes the lab: `mutex` within this process, the file `lock` across processes; the
    /// topology `topology` (whose [cluster] has `pod_cidr = "POD_CIDR"`) and a copy with
    /// `persist = "MODE"`. `up` is the command that brings the lab up, for messages.
    pub fn take(
        mutex: &'static Mutex<()>,
        lock: &str,
        topology: &str,
        (pod_cidr, mode): (&str, &str),
        up: &'static str,
    ) -> SystemdLab {
        let guard = mutex.lock().unwrap_or_else(|e| e.into_inner());
        let across = lock_across_processes(lock);
        let dir = tempfile::tempdir().unwrap();
        let plain = repo().join(topology);
        let text = std::fs::read_to_string(&plain).unwrap();
        let persisted = dir.path().join(format!("{mode}.toml"));
        let line = format!("pod_cidr = \"{pod_cidr}\"\n");
        assert!(text.contains(&line), "{topology} has no {line}");
        std::fs::write(
            &persisted,
            text.replace(&line, &format!("{line}persist = \"{mode}\"\n")),
        )
        .unwrap();
        SystemdLab {
            dir,
            plain,
            persisted,
            up,
            _guard: guard,
            _across: across,
        }
    }

    /// routectl on `topology`, with the test's own lock file.
    pub fn routectl(&self, topology: &Path, args: &[&str]) -> Run {
        Routectl::new()
            .topology(topology)
            .lock_file(self.dir.path().join("lock"))
            .args(args)
            .run()
    }

    /// Runs `sh -c SCRIPT` in a node; panics (loudly: the lab is required) on failure.
    pub fn exec(&self, node: &str, script: &str) -> String {
        exec_in(node, script, self.up)
    }

    /// routectl's routes on a node (`ip route show proto 211`, one line each).
    pub fn owned(&self, node: &str) -> Vec<String> {
        self.exec(node, "ip -4 route show table main proto 211")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// plan says in sync and check passes on `topology`, after `after`.
    pub fn assert_in_sync(&self, topology: &Path, after: &str) {
        let plan = self.routectl(topology, &["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 0, "plan not in sync after {after}: {plan:?}");
        let check = self.routectl(topology, &["check"]);
        assert_eq!(check.code, 0, "check fails after {after}: {check:?}");
    }
}

/// Runs `sh -c SCRIPT` in a node through `lxc exec`; panics on failure, naming `up`.
pub fn exec_in(node: &str, script: &str, up: &str) -> String {
    lxc_for(&["exec", node, "--", "sh", "-c", script], up)
}

/// Runs `lxc ARGS`, returning its stdout; panics (loudly: the lab `up` brings up is required)
/// on failure.
pub fn lxc_for(args: &[&str], up: &str) -> String {
    let out = Command::new("lxc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run lxc {args:?} ({e}): the lab is required ({up})"));
    assert!(
        out.status.success(),
        "lxc {args:?} failed: {} (is the lab up? {up})",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
