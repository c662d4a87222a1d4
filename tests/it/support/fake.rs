//! The one fake `lxc`: a temporary directory holding a topology, a `bin/` directory (first on
//! the binary's PATH) with `tests/fakes/lxc` installed as `lxc` and `incus` (and, on request,
//! `ip`), and the answers the fake gives per instance and kind of call (the script's header
//! says how it picks one). The fake logs every call to `calls.log` and saves every batch script
//! it is sent, so a test can assert what routectl ran and exactly what it wrote.
//!
//! The node outputs it replays are real captures (`tests/cases/*/*.json`,
//! `tests/fakes/captures/`, rebuilt by `tests/fakes/capture.sh`; `tests/data/lab/`, from the
//! LXD lab); the few answers no kernel here can produce (an LXD error, an old iproute2, a
//! transport that prints nothing) are written inline by the tests, each with where it comes
//! from.

use routectl::node::observe;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Routectl, Run, repo_file, write_script};

/// The nodes of topology.example.toml.
pub const NODES: [&str; 4] = ["controller-0", "worker-0", "worker-1", "worker-2"];

/// A fake lab: a temporary directory with the fake on PATH and its answers.
pub struct Fake {
    dir: tempfile::TempDir,
}

/// How `calls()` shows a write of the last-applied record.
pub const RECORD: &str = "(write last-applied record)";

/// A call as the fake logged it, with routectl's read script shown as the `ip` command it runs
/// (`sh -c SCRIPT sh RECORD_PATH IFACE ip ARGS…` -> `ip ARGS…`) and a record write as
/// [`RECORD`].
pub fn normalize_call(line: &str) -> String {
    let read = format!(
        " -- sh -c {} sh /run/routectl/last-applied/",
        observe::READ_SCRIPT
    );
    if let Some(i) = line.find(&read) {
        let rest = &line[i + read.len()..];
        // The record's path (after its directory) and the interface, then `ip ARGS…`.
        let args = rest.splitn(3, ' ').nth(2).unwrap_or("");
        return format!("{} -- {args}", &line[..i]);
    }
    line.to_string()
}

/// The calls one logged line stands for: routectl's apply script (`sh -c APPLY_SCRIPT sh RECORD
/// TEMP BL DL RL SUM DMODE RMODE DROPIN READBACK ip …`) as the parts it carries, in order (its
/// route lines as the `ip -batch` they feed, a read-back alone as the read, a drop-in change
/// as [`DROPIN`], a record write as [`RECORD`]); any other line as [`normalize_call`] shows it.
pub fn normalize_calls(line: &str) -> Vec<String> {
    let apply = format!(
        " -- sh -c {} sh ",
        routectl::node::transport::apply_script::APPLY_SCRIPT
    );
    let Some(i) = line.find(&apply) else {
        return vec![normalize_call(line)];
    };
    let prefix = &line[..i];
    let f: Vec<&str> = line[i + apply.len()..].split(' ').collect();
    let field = |n: usize| f.get(n).copied().unwrap_or("");
    let mut calls = Vec::new();
    if field(2) != "0" {
        calls.push(format!("{prefix} -- ip -N -d -j -force -batch -"));
    } else if field(9) == "1" {
        calls.push(format!("{prefix} -- ip -N -d -j route show table all"));
    }
    if field(6) != "keep" {
        calls.push(format!("{prefix} -- {DROPIN}"));
    }
    if field(7) != "keep" {
        calls.push(format!("{prefix} -- {RECORD}"));
    }
    calls
}

/// How `calls()` shows a change of the networkd drop-in.
pub const DROPIN: &str = "(write networkd drop-in)";

/// A capture of `ip -N -d -j route show table all` from a folder case.
pub fn case_json(case: &str, node: &str) -> Vec<u8> {
    let path = repo_file(&format!("tests/cases/{case}/{node}.json"));
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file captured on the LXD lab (tests/data/lab).
pub fn lab_data(file: &str) -> PathBuf {
    repo_file(&format!("tests/data/lab/{file}"))
}

impl Fake {
    /// A fake `lxc` and `incus` without a topology file and without answers.
    pub fn bare() -> Fake {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("bin")).expect("bin/");
        let fake = Fake { dir };
        fake.install("lxc");
        fake.install("incus");
        fake
    }

    /// Installs the fake under another name too (`ip`: every direct use is logged and fails).
    pub fn install(&self, name: &str) {
        let script = fs::read(repo_file("tests/fakes/lxc")).expect("tests/fakes/lxc");
        write_script(&self.path(&format!("bin/{name}")), &script);
    }

    /// A fake with `topology.toml` = `text`.
    pub fn with_topology(text: &str) -> Fake {
        let fake = Fake::bare();
        fake.write("topology.toml", text.as_bytes());
        fake
    }

    /// The example topology whose nodes answer reads with the captures of a folder case.
    pub fn case(case: &str) -> Fake {
        let fake = Fake::with_topology(&super::example_topology());
        for node in NODES {
            fake.reads(node, &case_json(case, node));
        }
        fake
    }

    /// The LXD lab as captured in tests/data/lab: `lxc list` (with a stopped instance), and
    /// each node's show read (a batch) and route read.
    pub fn lxd_lab() -> Fake {
        let fake = Fake::bare();
        fake.copy(&lab_data("lxc-list-with-stopped.json"), "list.stdout");
        for n in NODES {
            fake.copy(
                &lab_data(&format!("{n}.show.json")),
                &format!("{n}.batch.stdout"),
            );
            fake.copy(
                &lab_data(&format!("{n}.route.json")),
                &format!("{n}.read.stdout"),
            );
        }
        fake
    }

    /// The fake's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the fake's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file in the fake's directory.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.path(rel), bytes).expect("write a fake's file");
    }

    /// Copies a file into the fake's directory.
    pub fn copy(&self, from: &Path, rel: &str) {
        fs::copy(from, self.path(rel)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }

    /// Sets the fake's answer for calls matching `prefix` (`NODE`, `NODE.KIND` or `NODE.KIND.N`).
    pub fn answer(&self, prefix: &str, stdout: &[u8], stderr: &str, status: i32) {
        self.write(&format!("{prefix}.stdout"), stdout);
        self.write(&format!("{prefix}.stderr"), stderr.as_bytes());
        self.write(&format!("{prefix}.status"), status.to_string().as_bytes());
    }

    /// Every read of `node` prints `json` and succeeds.
    pub fn reads(&self, node: &str, json: &[u8]) {
        self.answer(&format!("{node}.read"), json, "", 0);
    }

    /// Every call to `node` (read, write, `ip -V`) fails as LXD fails: `stderr`, `status`.
    pub fn fails(&self, node: &str, stderr: &str, status: i32) {
        for kind in ["read", "batch", "version"] {
            self.answer(&format!("{node}.{kind}"), b"", stderr, status);
        }
    }

    /// `node`'s batch is answered with a real run captured in `tests/fakes/captures/SCENARIO`.
    pub fn batch_capture(&self, node: &str, scenario: &str) {
        for part in ["stdout", "stderr", "status"] {
            let from = repo_file(&format!(
                "tests/fakes/captures/{scenario}/{node}.batch.{part}"
            ));
            self.copy(&from, &format!("{node}.batch.{part}"));
        }
    }

    /// Every node's batch is answered with the empty lab's converging run.
    pub fn batches_converge(&self) {
        for node in NODES {
            self.batch_capture(node, "apply-converged");
        }
    }

    /// `ping` from `node` to `dst` exits with `statuses[N-1]` on its Nth call, and with the last
    /// of them after that, printing what iputils' ping prints for one packet.
    pub fn pings(&self, node: &str, dst: &str, statuses: &[i32]) {
        let one = |prefix: String, status: i32| {
            let (received, loss) = if status == 0 { (1, 0) } else { (0, 100) };
            let stdout = format!(
                "PING {dst} ({dst}) 56(84) bytes of data.\n1 packets transmitted, {received} received, {loss}% packet loss, time 0ms\n"
            );
            self.answer(&prefix, stdout.as_bytes(), "", status);
        };
        for (i, s) in statuses.iter().enumerate() {
            one(format!("{node}.ping-{dst}.{}", i + 1), *s);
        }
        one(
            format!("{node}.ping-{dst}"),
            *statuses.last().expect("at least one status"),
        );
    }

    /// Starts every scripted answer from its first call again (forgets the call counts).
    pub fn reset_counts(&self) {
        for e in fs::read_dir(self.dir.path()).expect("fake dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "count") {
                fs::remove_file(p).expect("remove a count");
            }
        }
    }

    /// The batch script `node` was sent last, if any.
    pub fn sent(&self, node: &str) -> Option<String> {
        fs::read_to_string(self.path(&format!("{node}.batch.stdin"))).ok()
    }

    /// The binary, with the fakes first on PATH, run in the fake's directory (so
    /// `topology.toml` is the default topology) with a private lock file.
    pub fn routectl(&self) -> Routectl {
        Routectl::new()
            .current_dir(self.dir.path())
            .path_first(self.path("bin"))
            .env("FAKE_DIR", self.dir.path())
            .env("ROUTECTL_LOCK_FILE", self.path("routectl.lock"))
            // No daemon socket: the real one (refusing a user outside its group) is not the
            // fake's.
            .env("LXD_DIR", self.path("no-daemon"))
            .env("INCUS_DIR", self.path("no-daemon"))
    }

    /// Runs the binary with these arguments.
    pub fn run(&self, args: &[&str]) -> Run {
        self.routectl().args(args).run()
    }

    /// Runs the binary with these arguments and extra environment.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.routectl().args(args).envs(env).run()
    }

    /// Runs the binary with a topology file (`-f`) and these arguments.
    pub fn run_file(&self, topology: &Path, args: &[&str]) -> Run {
        self.routectl().topology(topology).args(args).run()
    }

    /// Every call the fake received, one line each: `lxc exec NODE --force-noninteractive -- …`.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.path("calls.log"))
            .map(|s| s.lines().flat_map(normalize_calls).collect())
            .unwrap_or_default()
    }

    /// The calls to `node` running `what` (the read, the batch or "ip -V"); a read counts as
    /// the `ip` command its script runs ([`normalize_call`]).
    pub fn calls_to(&self, node: &str, what: &str) -> usize {
        let line = format!("lxc exec {node} --force-noninteractive -- {what}");
        self.calls().iter().filter(|c| **c == line).count()
    }

    /// Asserts that no node was contacted (and nothing else the fake stands for ran).
    #[track_caller]
    pub fn assert_no_calls(&self) {
        assert_eq!(
            self.calls(),
            Vec::<String>::new(),
            "no node may be contacted"
        );
    }
}
