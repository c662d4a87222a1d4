//! The SSH lab (scripts/lab-ssh.sh): the upstream tutorial's machines `server`, `node-0`,
//! `node-1` as network namespaces, each with a real sshd. A test takes [`SshLab::take`], which
//! brings the lab up (idempotent), removes every non-kernel route, and gives the test its own
//! runtime directory, so that its ssh connection masters are its own and can be counted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once};

use super::Run;

static LAB: Mutex<()> = Mutex::new(());
static UP: Once = Once::new();

/// The lab's state directory (see scripts/lab-ssh.sh).
pub const STATE: &str = "/var/lib/routectl-lab/ssh-lab";
/// The machines: (name, namespace, address, pod subnet).
pub const MACHINES: [(&str, &str, &str, Option<&str>); 3] = [
    ("server", "ssh-server", "10.0.4.10", None),
    ("node-0", "ssh-node-0", "10.0.4.20", Some("10.3.0.0/24")),
    ("node-1", "ssh-node-1", "10.0.4.21", Some("10.3.1.0/24")),
];

pub use super::routectl_with;

/// Runs scripts/lab-ssh.sh; panics (the lab is required) when it fails.
pub fn lab_script(args: &[&str]) -> String {
    super::run_lab_script("lab-ssh.sh", args)
}

/// The SSH lab, held by one test at a time.
pub struct SshLab {
    /// The test's directory: topologies, the runtime directory (`rt/`).
    pub dir: tempfile::TempDir,
    /// The topology written by `discover --from machines` from the lab's machines.txt.
    pub topology: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl SshLab {
    /// Takes the lab: up, no routes but the kernel's, every sshd running.
    pub fn take() -> SshLab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        UP.call_once(|| {
            lab_script(&["up"]);
        });
        for (name, ..) in MACHINES {
            lab_script(&["start-sshd", name]);
        }
        lab_script(&["reset-routes"]);
        forget_records();
        let dir = tempfile::tempdir().unwrap();
        let topology = dir.path().join("topology.toml");
        let lab = SshLab {
            dir,
            topology,
            _guard: guard,
        };
        let machines = format!("{STATE}/machines.txt");
        let config = format!("{STATE}/ssh_config");
        let run = lab.routectl_file(
            Path::new("/nonexistent"),
            &[
                "discover",
                "--from",
                "machines",
                &machines,
                "--ssh-config",
                &config,
                "--out",
                lab.topology.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{run:?}");
        lab
    }

    /// The test's runtime directory (holding `ssh/`, the control sockets).
    pub fn runtime(&self) -> PathBuf {
        self.dir.path().join("rt")
    }

    /// Runs routectl with the lab's topology and the test's runtime directory.
    pub fn routectl(&self, args: &[&str]) -> Run {
        self.routectl_file(&self.topology, args)
    }

    /// Runs routectl with another topology file.
    pub fn routectl_file(&self, topology: &Path, args: &[&str]) -> Run {
        let rt = self.runtime();
        routectl_with(
            topology,
            args,
            &[("ROUTECTL_RUNTIME_DIR", rt.to_str().unwrap())],
        )
    }

    /// Writes a variant of the lab's topology.
    pub fn variant(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.topology).unwrap();
        let path = self.dir.path().join(name);
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    /// `ip route` lines of a machine's table main, without kernel and link-local routes (read
    /// from the host, not over ssh).
    pub fn table(&self, machine: &str) -> Vec<String> {
        let ns = ns_of(machine);
        let out = Command::new("ip")
            .args(["-n", ns, "route", "show", "table", "main"])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.contains("proto kernel"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Logins accepted by a machine's sshd so far (one per TCP connection that authenticated).
    pub fn logins(&self, machine: &str) -> usize {
        std::fs::read_to_string(format!("{STATE}/nodes/{machine}/sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Accepted publickey for root"))
            .count()
    }

    /// Whether a pod gateway of one node reaches another's (ping from the namespace).
    pub fn ping(&self, from: &str, src: &str, dst: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                ns_of(from),
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                src,
                dst,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

fn ns_of(machine: &str) -> &'static str {
    MACHINES
        .iter()
        .find(|m| m.0 == machine)
        .map(|m| m.1)
        .unwrap_or_else(|| panic!("no machine {machine}"))
}

/// Removes routectl's last-applied records of the lab's machines: they are namespaces of this
/// host, so their records live in this host's /run, named after the address routectl reaches.
fn forget_records() {
    for (_, _, addr, _) in MACHINES {
        let _ = std::fs::remove_file(format!("/run/routectl/last-applied/{addr}.json"));
    }
}

impl Drop for SshLab {
    fn drop(&mut self) {
        forget_records();
        // The test's connection masters would live on for ControlPersist: end them now.
        let dir = self.runtime().join("ssh");
        for (_, _, addr, _) in MACHINES {
            let _ = Command::new("ssh")
                .args(["-F", &format!("{STATE}/ssh_config")])
                .args(["-o", &format!("ControlPath={}/%C", dir.display())])
                .args(["-O", "exit", addr])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // A test may have stopped an sshd.
        for (name, ..) in MACHINES {
            super::run_lab_script_best_effort("lab-ssh.sh", &["start-sshd", name]);
        }
    }
}
