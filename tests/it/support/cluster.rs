//! The cluster labs (scripts/lab-cluster.sh): a three-member LXD cluster on this machine
//! (members m0, m1, m2, each an `lxd` with its own `LXD_DIR` in its own network namespace),
//! tests/labs/cluster.toml's five containers placed on them; and the same with Incus
//! (`--incus`: `incusd` and `INCUS_DIR`, tests/labs/cluster-incus.toml). A test takes
//! [`ClusterLab::take`] (or [`ClusterLab::take_incus`]), which brings the lab up (idempotent: a
//! member a test killed is started again), removes every non-kernel route and every
//! last-applied record.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use super::Run;

static LAB: Mutex<()> = Mutex::new(());

/// The LXD cluster lab's state directory: member `mN`'s `LXD_DIR` is `STATE/mN`, its daemon's
/// PID is in `STATE/mN.pid`.
pub const STATE: &str = "/var/lib/routectl-lab/cluster";

/// The nodes and the member each runs on.
pub const PLACEMENT: &[(&str, &str)] = &[
    ("cl-ctl", "m0"),
    ("cl-w0", "m0"),
    ("cl-w1", "m1"),
    ("cl-w2", "m1"),
    ("cl-w3", "m2"),
];

/// The Incus cluster lab's nodes and the member each runs on.
pub const INCUS_PLACEMENT: &[(&str, &str)] = &[
    ("ci-ctl", "m0"),
    ("ci-w0", "m0"),
    ("ci-w1", "m1"),
    ("ci-w2", "m1"),
    ("ci-w3", "m2"),
];

/// What tells the two cluster labs apart.
#[derive(Debug)]
pub struct Flavour {
    /// The client (`lxc`, `incus`).
    pub client: &'static str,
    /// The variable that points a client at a member (`LXD_DIR`, `INCUS_DIR`).
    pub dir_var: &'static str,
    state: &'static str,
    /// The arguments of scripts/lab-cluster.sh before its command.
    script: &'static [&'static str],
    topology: &'static str,
    /// The nodes and the member each runs on.
    pub placement: &'static [(&'static str, &'static str)],
    /// What a member's daemon has in its command line before its name.
    tag: &'static str,
    /// Where the test processes of every checkout on this machine lock the lab.
    lock: &'static str,
}

pub const LXD: Flavour = Flavour {
    client: "lxc",
    dir_var: "LXD_DIR",
    state: STATE,
    script: &[],
    topology: "tests/labs/cluster.toml",
    placement: PLACEMENT,
    tag: "routectl-lab-cluster",
    lock: "/tmp/routectl-test-cluster-lab.lock",
};

pub const INCUS: Flavour = Flavour {
    client: "incus",
    dir_var: "INCUS_DIR",
    state: "/var/lib/routectl-lab/cluster-incus",
    script: &["--incus"],
    topology: "tests/labs/cluster-incus.toml",
    placement: INCUS_PLACEMENT,
    tag: "routectl-lab-cluster-incus",
    lock: "/tmp/routectl-test-cluster-incus-lab.lock",
};

impl Flavour {
    /// The `LXD_DIR` (`INCUS_DIR`) of a member.
    pub fn dir(&self, member: &str) -> String {
        format!("{}/{member}", self.state)
    }

    /// The client through member m0.
    fn client(&self) -> Command {
        let mut c = Command::new(self.client);
        c.env(self.dir_var, self.dir("m0")).stdin(Stdio::null());
        c
    }

    /// scripts/lab-cluster.sh [--incus] COMMAND.
    fn script(&self, command: &'static str) -> Vec<&'static str> {
        let mut args = self.script.to_vec();
        args.push(command);
        args
    }
}

/// A cluster lab, held by one test.
pub struct ClusterLab {
    /// tests/labs/cluster.toml (cluster-incus.toml).
    pub topology: PathBuf,
    /// Which lab.
    pub flavour: &'static Flavour,
    _file_lock: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

impl ClusterLab {
    /// Takes the LXD cluster lab: up, no routes but the kernel's, no records.
    pub fn take() -> ClusterLab {
        ClusterLab::take_flavour(&LXD)
    }

    /// Takes the Incus cluster lab: up, no routes but the kernel's, no records.
    pub fn take_incus() -> ClusterLab {
        ClusterLab::take_flavour(&INCUS)
    }

    fn take_flavour(flavour: &'static Flavour) -> ClusterLab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        let file_lock = super::lock_across_processes(flavour.lock);
        super::run_lab_script("lab-cluster.sh", &flavour.script("up"));
        super::run_lab_script("lab-cluster.sh", &flavour.script("reset-routes"));
        let lab = ClusterLab {
            topology: super::repo().join(flavour.topology),
            flavour,
            _file_lock: file_lock,
            _guard: guard,
        };
        lab.forget_records();
        lab
    }

    /// Brings the lab up again (a killed member started); panics when it cannot.
    pub fn restore(&self) {
        super::run_lab_script("lab-cluster.sh", &self.flavour.script("up"));
    }

    /// Removes routectl's last-applied records from every node (never panics).
    pub fn forget_records(&self) {
        for (node, _) in self.flavour.placement {
            let _ = self
                .flavour
                .client()
                .args([
                    "exec",
                    node,
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

    /// Runs routectl on the lab's topology through member `member` (`LXD_DIR`, `INCUS_DIR`).
    pub fn routectl(&self, member: &str, args: &[&str]) -> Run {
        let f = self.flavour;
        super::routectl_with(&self.topology, args, &[(f.dir_var, &f.dir(member))])
    }

    /// Runs `lxc ARGS` (`incus ARGS`) through member m0, returning stdout; panics on failure.
    pub fn lxc(&self, args: &[&str]) -> String {
        let out = self.flavour.client().args(args).output().expect("client");
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.flavour.client,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip route` lines of a node's table main, without kernel routes.
    pub fn table(&self, node: &str) -> Vec<String> {
        self.lxc(&["exec", node, "--", "ip", "route", "show", "table", "main"])
            .lines()
            .filter(|l| !l.contains("proto kernel"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Kills a member's daemon (SIGKILL; its containers keep running). `take` (or the drop of
    /// the lab) starts it again.
    pub fn kill_member(&self, member: &str) {
        let pid = daemon_pid(self.flavour, member);
        let ok = Command::new("kill")
            .args(["-9", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot kill member {member} (PID {pid})");
        self.wait_for_quorum(member);
    }

    /// Waits (at most 60 s) until m0's database answers again after `member` died and counts
    /// every other member Online: a killed raft leader costs the survivors an election of
    /// several seconds (6.6 s measured on the LXD lab), during which every request that touches
    /// the database waits, and after which the survivors may count each other Offline until
    /// the new leader's heartbeats reach them. That is the cluster's time, not routectl's: a
    /// test that times routectl starts after it.
    fn wait_for_quorum(&self, member: &str) {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let out = Command::new("timeout")
                .args([
                    "20",
                    self.flavour.client,
                    "cluster",
                    "list",
                    "--format",
                    "csv",
                ])
                .env(self.flavour.dir_var, self.flavour.dir("m0"))
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            let settled = out.is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                o.status.success()
                    && ["m0", "m1", "m2"]
                        .iter()
                        .filter(|m| **m != member)
                        .all(|m| {
                            text.lines()
                                .any(|l| l.starts_with(&format!("{m},")) && l.contains(",ONLINE,"))
                        })
            });
            if settled {
                eprintln!(
                    "{member} killed: the survivors answered, each Online, after {:?}",
                    started.elapsed()
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("with {member} killed, m0 did not count the other members Online within 60 s");
    }
}

/// `lxc ARGS` (`incus ARGS`) through member m0, quietly; whether it succeeded (for guards:
/// never panics).
fn client_quiet(flavour: &Flavour, args: &[&str]) -> bool {
    flavour
        .client()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A member's daemon PID, from the lab's pid file, checked against its command line.
fn daemon_pid(flavour: &Flavour, member: &str) -> String {
    let pid = std::fs::read_to_string(format!("{}.pid", flavour.dir(member))).unwrap();
    let pid = pid.trim().to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&format!("{} {member}", flavour.tag)),
        "PID {pid} is not member {member}'s daemon"
    );
    pid
}

/// A member's daemon stopped with SIGSTOP (it answers nothing and is not yet counted offline);
/// SIGCONT on drop, a panic included.
pub struct Frozen {
    pid: String,
    member: String,
    flavour: &'static Flavour,
}

/// How long a thawed member must stay online before the next test may count on it: longer than
/// the cluster's default `cluster.offline_threshold` (20 s), so that a heartbeat the member
/// missed while frozen cannot mark it offline in the middle of the next test.
const STEADY: std::time::Duration = std::time::Duration::from_secs(25);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
        let deadline = std::time::Instant::now() + STEADY * 3;
        let mut online_since: Option<std::time::Instant> = None;
        while std::time::Instant::now() < deadline {
            if member_online(self.flavour, &self.member) {
                let since = *online_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= STEADY {
                    return;
                }
            } else {
                online_since = None;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// Whether the cluster counts `member` as online (false when it cannot be asked).
fn member_online(flavour: &Flavour, member: &str) -> bool {
    let Ok(out) = flavour
        .client()
        .args(["query", "/1.0/cluster/members?recursion=1"])
        .output()
    else {
        return false;
    };
    let members: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    members.as_array().into_iter().flatten().any(|m| {
        m["server_name"].as_str() == Some(member) && m["status"].as_str() == Some("Online")
    })
}

/// An instance moved to another member (`lxc move --target`, stopped and started again); moved
/// back on drop, a panic included (and should that fail, the lab's `up` makes it again where it
/// belongs).
pub struct Moved {
    flavour: &'static Flavour,
    instance: String,
    home: String,
    internal_ip: String,
}

impl Moved {
    fn to(flavour: &Flavour, instance: &str, member: &str, internal_ip: &str) -> bool {
        client_quiet(flavour, &["stop", "--force", instance])
            && client_quiet(flavour, &["move", instance, "--target", member])
            && client_quiet(flavour, &["start", instance])
            && wait_for_address(flavour, instance, internal_ip)
    }
}

impl Drop for Moved {
    fn drop(&mut self) {
        let _ = Moved::to(self.flavour, &self.instance, &self.home, &self.internal_ip);
    }
}

/// Waits (20 s at most) until a node's eth1 holds its internal IP after a start.
fn wait_for_address(flavour: &Flavour, instance: &str, ip: &str) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        let out = flavour
            .client()
            .args([
                "exec", instance, "--", "ip", "-o", "addr", "show", "dev", "eth1",
            ])
            .stdin(Stdio::null())
            .output();
        if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {ip}/"))) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

impl ClusterLab {
    /// The member that is the cluster database's leader (freezing it stalls the whole API).
    pub fn database_leader(&self) -> String {
        let members: serde_json::Value =
            serde_json::from_str(&self.lxc(&["query", "/1.0/cluster/members?recursion=1"]))
                .unwrap();
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["roles"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == "database-leader"))
            })
            .and_then(|m| m["server_name"].as_str())
            .expect("a database leader")
            .to_string()
    }

    /// Freezes a member's daemon (SIGSTOP) until the guard drops.
    pub fn freeze_member(&self, member: &str) -> Frozen {
        let pid = daemon_pid(self.flavour, member);
        let guard = Frozen {
            pid: pid.clone(),
            member: member.to_string(),
            flavour: self.flavour,
        };
        let ok = Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot freeze member {member} (PID {pid})");
        guard
    }

    /// Moves a node's instance to `member` (stopped, moved, started, its address back) until
    /// the guard drops; `internal_ip` tells when it is up again.
    pub fn move_instance(&self, instance: &str, member: &str, internal_ip: &str) -> Moved {
        let home = self
            .flavour
            .placement
            .iter()
            .find(|(n, _)| *n == instance)
            .map(|(_, m)| m.to_string())
            .expect("a lab node");
        let guard = Moved {
            flavour: self.flavour,
            instance: instance.to_string(),
            home,
            internal_ip: internal_ip.to_string(),
        };
        assert!(
            Moved::to(self.flavour, instance, member, internal_ip),
            "cannot move {instance} to {member}"
        );
        guard
    }
}

impl Drop for ClusterLab {
    fn drop(&mut self) {
        // A test may have killed a member: the next one finds the cluster whole.
        super::run_lab_script_best_effort("lab-cluster.sh", &self.flavour.script("up"));
        self.forget_records();
    }
}
