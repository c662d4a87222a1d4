//! Black-box tests of the `routectl` binary with a fake `lxc` on PATH.
//!
//! Each test builds a [`Fake`] (tests/it/support/fake.rs): a temporary directory holding the
//! topology, the fake `lxc` and `incus` first on PATH, and the answers the fake gives per
//! instance. It logs every call and saves every batch script, so a test can assert what
//! routectl ran and exactly what it wrote.
//!
//! One module per behaviour (below); what they share is here.

mod apply;
mod command_line;
mod messages;
mod node;
mod one_cause;
mod ownership;
mod plan;
mod topology;
mod unreadable;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::fake::{Fake, NODES, RECORD, case_json};
use crate::support::{self, example_topology, repo};
use routectl::node::observe;

/// The read routectl runs on every node (after `lxc exec NODE --force-noninteractive --`).
const READ: &str = "ip -N -d -j route show table all";
/// The write: a batch script on stdin.
const BATCH: &str = "ip -N -d -j -force -batch -";

/// What LXD's `lxc exec` prints (exit 1) for a stopped instance (captured from LXD 5.0).
const NOT_RUNNING: &str = "Error: Instance is not running\n";
/// What LXD's `lxc exec` prints, with exit status 127, when the command does not exist in the
/// instance (seen with LXD 5.0.2 here: liblxc's attach exits 127 on ENOENT and LXD turns that
/// status into the error `Command not found`, `ErrExecCommandNotFound` in driver_lxc.go).
const COMMAND_NOT_FOUND: &str = "Error: Command not found\n";

fn manifest() -> &'static Path {
    repo()
}

fn case_expected(case: &str) -> String {
    let path = manifest().join(format!("tests/cases/{case}/expected.txt"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn capture_path(scenario: &str, file: &str) -> PathBuf {
    manifest().join(format!("tests/fakes/captures/{scenario}/{file}"))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn has_escape(s: &str) -> bool {
    s.contains('\x1b')
}
