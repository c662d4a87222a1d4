//! Regression tests for the holes an adversarial review found: each runs the real
//! binary against real files, symlinks, FIFOs, /dev/full, signals and network namespaces.
//! `ROUTECTL_TEST_BIN` runs them against another build (to see them fail before a fix; see
//! `support::bin`).
//!
//! One module per behaviour (below); what they share is here.

mod bounded_reads;
mod lock;
mod messages;
mod output;
mod routes;
mod saved_plans;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;
use crate::support::{self, Routectl, Run, run_within};

/// The binary with `args` (through `support::Routectl`), for a test that wires it itself.
fn cmd(args: &[&str]) -> Command {
    let mut c = Routectl::new().args(args).env("NO_COLOR", "1").command();
    c.stdin(Stdio::null());
    c
}

fn run(mut c: impl std::borrow::BorrowMut<Command>) -> Run {
    Run::from_output(c.borrow_mut().output().expect("run routectl"))
}

/// A topology whose nodes are network namespaces that do not exist (every read fails).
fn unreachable_topology(dir: &Path) -> PathBuf {
    let p = dir.join("topology.toml");
    std::fs::write(
        &p,
        "[cluster]\ninterface = \"eth1\"\ntransport = \"netns\"\npod_cidr = \"10.1.0.0/16\"\n\n\
         [[nodes]]\nname = \"worker-0\"\ninstance = \"rtsafety-none-0\"\ninternal_ip = \"10.0.2.20\"\n\
         pod_cidr = \"10.1.0.0/24\"\n",
    )
    .unwrap();
    p
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A directory on PATH with an `ip` wrapper script (`body` runs with `$real` the real ip).
fn ip_wrapper(dir: &Path, body: &str) -> String {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ip"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let bindir = dir.join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    let script = bindir.join("ip");
    std::fs::write(&script, format!("#!/bin/sh\nreal={real}\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
