//! Files a node controls where routectl expects its last-applied record: a pseudo-terminal
//! that is no session's terminal, and a FIFO. routectl, running as a service does (a session
//! leader without a controlling terminal), must never acquire the terminal (so the node can
//! send it no SIGINT or SIGHUP), never wait on either, and keep working.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

use crate::support::lab::Lab;
use crate::support::lxd::{LxdLab, lxc};
use crate::support::netns::NetnsLab;
use crate::support::{Routectl, assert_code};

/// A new pseudo-terminal that no session holds: its master side (closing it hangs the terminal
/// up) and its slave's path in the devpts instance it was made in (`/dev/pts/N`).
struct Pty {
    master: std::fs::File,
    slave: String,
}

impl Pty {
    /// Opens the multiplexer `ptmx` (of whichever devpts instance it belongs to) and unlocks the
    /// terminal it makes.
    fn open(ptmx: &str) -> Pty {
        let fd = rustix::fs::open(
            ptmx,
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("{ptmx}: {e}"));
        rustix::pty::unlockpt(&fd).unwrap();
        let slave = rustix::pty::ptsname(&fd, Vec::new()).unwrap();
        Pty {
            master: std::fs::File::from(fd),
            slave: slave.to_str().unwrap().to_string(),
        }
    }

    /// Types `bytes` at the terminal (^C is SIGINT to its foreground process group, if any).
    fn type_in(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }
}

/// A running routectl, stopped on drop (also when a test fails).
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fields of /proc/PID/stat after the command name: (state, session, tty_nr).
fn stat(pid: u32) -> (String, i64, i64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = text
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (
        rest[0].to_string(),
        rest[3].parse().unwrap(),
        rest[4].parse().unwrap(),
    )
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the log of a running service has `n` lines saying `what`; panics if it stops.
fn wait_lines(child: &mut Child, log: &Path, what: &str, n: usize, limit: Duration) {
    let t = Instant::now();
    while log_of(log).lines().filter(|l| l.contains(what)).count() < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("routectl ended ({status}); log:\n{}", log_of(log));
        }
        assert!(
            t.elapsed() < limit,
            "no {n} `{what}` within {limit:?} (state, session, tty_nr: {:?}):\n{}",
            stat(child.id()),
            log_of(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The service leads its session, has no controlling terminal, and still runs.
fn assert_no_terminal(child: &mut Child, log: &Path) {
    let pid = child.id();
    assert_eq!(child.try_wait().unwrap(), None, "{}", log_of(log));
    let (state, session, tty) = stat(pid);
    assert_eq!(
        session,
        i64::from(pid),
        "not a session leader: the test proves nothing"
    );
    assert_eq!(
        tty,
        0,
        "routectl acquired a terminal (state {state}):\n{}",
        log_of(log)
    );
}

/// The PID of a lab container's init, as LXD tells it.
fn init_pid(node: &str) -> i64 {
    let state: serde_json::Value =
        serde_json::from_str(&lxc(&["query", &format!("/1.0/instances/{node}/state")])).unwrap();
    state["pid"].as_i64().unwrap()
}

/// A `plan` of the lab (extra arguments first) finishes quickly, with no node failing.
fn plans_at_once(lab: &dyn Lab, extra: &[&str], what: &str) {
    let t = Instant::now();
    let run = Routectl::new()
        .topology(lab.topology_path())
        .lock_file(lab.lock_file())
        .args(extra)
        .args(["plan", "--timeout", "30s", "--detailed-exitcode"])
        .run_within(40);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "{what}: plan took {:?} (it waited on the node's file): {run:?}",
        t.elapsed()
    );
    assert_code(&run, 0);
}

/// `mount --bind FROM TO`, undone on drop.
struct BindMount(String);

impl BindMount {
    fn new(from: &str, to: &str) -> BindMount {
        let ok = Command::new("mount")
            .args(["--bind", from, to])
            .status()
            .unwrap();
        assert!(ok.success(), "mount --bind {from} {to}");
        BindMount(to.to_string())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

const RECORD: &str = "/run/routectl/last-applied/worker-0.json";

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn a_node_s_terminal_or_fifo_as_its_record_neither_holds_nor_signals_routectl() {
    let lab = LxdLab::take();
    let root = format!("/proc/{}/root", init_pid("worker-0"));
    let plant_link = |target: &str| {
        lab.exec_ok(
            "worker-0",
            &[
                "sh",
                "-c",
                &format!("mkdir -p /run/routectl/last-applied && ln -sfn {target} {RECORD}"),
            ],
        );
    };
    // Root in worker-0 makes a terminal in the container's own devpts (its multiplexer, opened
    // here as a process of the container would) and puts it where its record is read.
    let mut pty = Pty::open(&format!("{root}/dev/pts/ptmx"));
    plant_link(&pty.slave);

    let log = lab.dir().join("reconcile.log");
    let service = lab
        .routectl()
        .args(["--access", "host", "reconcile", "--interval", "1s"])
        .spawn_session_leader(&log);
    let mut service = Service(service);
    wait_lines(&mut service.0, &log, "round ", 1, Duration::from_secs(60));
    assert_no_terminal(&mut service.0, &log);
    // The link stays for later rounds as well (an apply replaces it with the record).
    plant_link(&pty.slave);
    wait_lines(&mut service.0, &log, "round ", 3, Duration::from_secs(30));
    assert_no_terminal(&mut service.0, &log);

    // ^C at the terminal, then a hang-up: neither reaches routectl.
    pty.type_in(b"\x03");
    std::thread::sleep(Duration::from_secs(2));
    assert_no_terminal(&mut service.0, &log);
    drop(pty);
    std::thread::sleep(Duration::from_secs(2));
    assert_no_terminal(&mut service.0, &log);

    // It keeps working: a route deleted by hand is back within a few rounds.
    lab.delete_route("worker-0", "10.1.1.0/24");
    let t = Instant::now();
    while !lab.has("worker-0", "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211") {
        assert!(t.elapsed() < Duration::from_secs(20), "{}", log_of(&log));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_no_terminal(&mut service.0, &log);
    drop(service);

    // Neither a terminal nor a FIFO there makes a read wait, with either access.
    let pty = Pty::open(&format!("{root}/dev/pts/ptmx"));
    plant_link(&pty.slave);
    plans_at_once(&lab, &["--access", "host"], "terminal, host access");
    plans_at_once(&lab, &[], "terminal, exec access");
    drop(pty);
    lab.forget_record("worker-0");
    let fifo = format!("{root}{RECORD}");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    plans_at_once(&lab, &["--access", "host"], "FIFO, host access");
    plans_at_once(&lab, &[], "FIFO, exec access");
    lab.forget_record("worker-0");
}

#[test]
#[ignore = "needs root: network namespaces, mknod"]
fn a_terminal_or_fifo_as_a_namespace_s_record_is_refused_without_waiting() {
    let lab = NetnsLab::seed();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let instance = lab.ns("worker-0");
    let record = format!("/run/routectl/last-applied/{instance}.json");
    // The terminal itself where the record is (bound there: no link to refuse; a device node
    // made elsewhere would not open as a terminal).
    let mut pty = Pty::open("/dev/ptmx");
    let _ = std::fs::remove_file(&record);
    std::fs::write(&record, b"").unwrap();
    let bound = BindMount::new(&pty.slave, &record);

    let log = lab.dir().join("reconcile.log");
    let service = lab
        .routectl()
        .args(["reconcile", "--interval", "1s"])
        .spawn_session_leader(&log);
    let mut service = Service(service);
    wait_lines(&mut service.0, &log, "round ", 3, Duration::from_secs(30));
    assert_no_terminal(&mut service.0, &log);
    pty.type_in(b"\x03");
    drop(pty);
    std::thread::sleep(Duration::from_secs(2));
    assert_no_terminal(&mut service.0, &log);
    drop(service);
    drop(bound);

    std::fs::remove_file(&record).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&record)
            .status()
            .unwrap()
            .success()
    );
    let run = Routectl::new()
        .topology(lab.topology_path())
        .lock_file(lab.lock_file())
        .args(["plan", "--detailed-exitcode"])
        .run_within(20);
    std::fs::remove_file(&record).unwrap();
    // The record is ignored, and said to be a FIFO; the node is planned as any other.
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("is a FIFO, not a record")
            || run.stderr.contains("is a FIFO, not a record"),
        "{run:?}"
    );
}
