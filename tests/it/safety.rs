//! Regression tests for the holes an adversarial review found: each runs the real
//! binary against real files, symlinks, FIFOs, /dev/full, signals and network namespaces.
//! `ROUTECTL_TEST_BIN` runs them against another build (to see them fail before a fix).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;
use crate::support::{self, Run};

fn bin() -> PathBuf {
    std::env::var_os("ROUTECTL_TEST_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_routectl")))
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("ROUTECTL_TOPOLOGY")
        .env_remove("ROUTECTL_LOCK_FILE")
        .stdin(Stdio::null());
    c
}

fn run(mut c: impl std::borrow::BorrowMut<Command>) -> Run {
    let out = c.borrow_mut().output().expect("run routectl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs with a deadline; a hang is a test failure, not a hung suite.
fn run_within(mut c: impl std::borrow::BorrowMut<Command>, secs: u64) -> Run {
    let mut child = c
        .borrow_mut()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn routectl");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "routectl did not finish within {secs} s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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

// ---- 1. the lock -------------------------------------------------------------------------

#[test]
fn a_planted_lock_symlink_is_refused_and_its_target_kept() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "root's data\n").unwrap();
    let lock = dir.path().join("routectl.lock");
    std::os::unix::fs::symlink(&precious, &lock).unwrap();
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        "--auto-approve",
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("it is a symlink"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "root's data\n");
}

#[test]
fn a_topology_given_as_the_lock_file_is_refused_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let before = std::fs::read(&topo).unwrap();
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        topo.to_str().unwrap(),
        "apply",
        "--auto-approve",
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("routectl did not create it"), "{r:?}");
    assert_eq!(std::fs::read(&topo).unwrap(), before);
}

#[test]
fn a_lock_held_by_another_routectl_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let lock = dir.path().join("l");
    // A reconcile holds the lock during its rounds; one that waits on a FIFO-free slow read
    // is simplest made with a slow `ip`.
    let path = ip_wrapper(dir.path(), "sleep 3; exec $real \"$@\"");
    let mut holder = cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        "--auto-approve",
    ])
    .env("PATH", &path)
    .stderr(Stdio::null())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "--lock-timeout",
        "0",
        "apply",
        "--auto-approve",
    ]));
    let _ = holder.wait();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("pid {} since", holder.id()))
            && r.stderr.contains("routectl apply -f"),
        "{r:?}"
    );
}

#[test]
#[ignore = "needs root: the root runtime directory /run/routectl"]
fn the_default_lock_lives_in_a_private_root_directory() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    // Whatever an earlier run left: this run must make it.
    let _ = std::fs::remove_file("/run/routectl/routectl.lock");
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "apply",
        "--auto-approve",
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    let meta = std::fs::symlink_metadata("/run/routectl").unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let lock = std::fs::read_to_string("/run/routectl/routectl.lock").unwrap();
    assert!(lock.starts_with("routectl lock file\n"), "{lock:?}");
}

#[test]
fn an_empty_lock_variable_is_unset_and_the_usage_never_requires_it() {
    let r = run(cmd(&["completions"]).env("ROUTECTL_LOCK_FILE", "/tmp/x.lock"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("--lock-file"), "{r:?}");
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let r = run(cmd(&["-f", topo.to_str().unwrap(), "validate"]).env("ROUTECTL_LOCK_FILE", ""));
    assert_eq!(r.code, 0, "{r:?}");
}

// ---- 2. an interrupted apply -----------------------------------------------------------

#[test]
#[ignore = "needs root: network namespaces"]
fn an_interrupted_apply_stops_its_children_and_reports_with_its_own_code() {
    let lab = NetnsLab::seed();
    // A stale owned route the apply will delete, and missing routes it will add.
    lab.ip(
        "worker-0",
        "route add 10.1.9.0/24 via 10.0.2.21 dev eth1 proto 211",
    );
    let before: Vec<Vec<String>> = ["worker-0", "worker-1"]
        .iter()
        .map(|n| lab.table(n))
        .collect();
    // Every batch (the writes) takes 2 s to start; reads are immediate.
    let path = ip_wrapper(
        lab.dir(),
        "case \" $* \" in *\" -batch \"*) sleep 2;; esac\nexec $real \"$@\"",
    );
    let lock = lab.dir().join("lock");
    let mut child: Child = cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        "--auto-approve",
    ])
    .env("PATH", &path)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // SIGTERM to routectl alone (not its group), as a service manager or `kill PID` sends it.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(status.code(), Some(130), "{status:?}\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM") && stderr.contains("may be half applied"),
        "{stderr}"
    );
    // The lock was released only after the children were gone: nothing writes afterwards.
    let lock_free = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "--lock-timeout",
        "0",
        "validate",
    ]));
    assert_eq!(lock_free.code, 0, "{lock_free:?}");
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<Vec<String>> = ["worker-0", "worker-1"]
        .iter()
        .map(|n| lab.table(n))
        .collect();
    assert_eq!(
        before, after,
        "an orphaned batch changed routes after routectl exited"
    );
    // The report is what the read-back shows: nothing applied.
    assert!(stdout.contains("0 operations applied"), "{stdout}");
}

// ---- 3. saved plans ----------------------------------------------------------------------

fn edited(plan: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap();
    edit(&mut v);
    let p = plan.with_extension(format!("{}.json", rand_suffix()));
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    p
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_edited_saved_plan_is_refused() {
    let lab = NetnsLab::seed();
    // A foreign route identical to a desired one: adoptable only with --adopt.
    lab.ip("worker-0", "route add 10.1.2.0/24 via 10.0.2.22 dev eth1");
    let plan = lab.dir().join("plan.json");
    let lock = lab.dir().join("lock");
    let lock_s = lock.to_str().unwrap().to_string();
    let rc = |args: &[&str]| {
        let mut all = vec!["--lock-file", lock_s.as_str()];
        all.extend_from_slice(args);
        run(&mut cmd(&all))
    };
    let r = rc(&[
        "-f",
        lab.path.to_str().unwrap(),
        "plan",
        "--node",
        "worker-0",
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = lab.topology_text();
    let cases: Vec<(&str, PathBuf)> = vec![
        (
            "topology text",
            edited(&plan, |v| {
                v["saved"]["topology_text"] = text.replace("10.1.1.0/24", "10.1.77.0/24").into();
            }),
        ),
        (
            "no fingerprints",
            edited(&plan, |v| {
                v["saved"]["fingerprints"] = serde_json::json!([])
            }),
        ),
        (
            "adopt",
            edited(&plan, |v| {
                v["saved"]["adopt"] = true.into();
                v["adopt"] = true.into();
            }),
        ),
        (
            "nodes",
            edited(&plan, |v| {
                v["saved"]["nodes"] = serde_json::json!(["worker-0", "worker-1"]);
                let fp = v["saved"]["fingerprints"][0][1].clone();
                v["saved"]["fingerprints"] =
                    serde_json::json!([["worker-0", fp], ["worker-1", fp]]);
            }),
        ),
        (
            "changes",
            edited(&plan, |v| {
                v["nodes"][0]["changes"].as_array_mut().unwrap().pop();
            }),
        ),
    ];
    // A duplicate key: the reviewer sees the first value, serde_json would apply the last.
    let dup = lab.dir().join("dup.json");
    let raw = std::fs::read_to_string(&plan).unwrap();
    // Saved plans are compact JSON.
    assert!(raw.contains("\"adopt\":false,"), "{raw}");
    std::fs::write(
        &dup,
        raw.replacen("\"adopt\":false,", "\"adopt\":false,\"adopt\":true,", 1),
    )
    .unwrap();
    let mut cases = cases;
    cases.push(("duplicate key", dup));
    for (what, file) in &cases {
        let r = rc(&["apply", file.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(
            r.stderr.contains("edited")
                || r.stderr.contains("duplicate key")
                || r.stderr.contains("not the ones a fresh plan makes")
                || r.stderr.contains("it does not plan")
                || r.stderr.contains("the saved plan is stale"),
            "{what}: {r:?}"
        );
        assert_eq!(lab.table("worker-0").len(), 1, "{what}: routes changed");
        assert!(lab.table("worker-1").is_empty(), "{what}: routes changed");
    }
    // The plan as made applies.
    let r = rc(&["apply", plan.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1"
        ],
        "the reviewed plan adopts nothing"
    );
}

// ---- 4. output errors never stop reconcile -----------------------------------------------

#[test]
fn reconcile_goes_on_when_stderr_is_full_and_metrics_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let metrics = dir.path().join("metrics-dir");
    std::fs::create_dir(&metrics).unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        dir.path().join("lock").to_str().unwrap(),
        "reconcile",
        "--interval",
        "200ms",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(full)
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "reconcile ended: {:?}",
        child.try_wait()
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn reconcile_piped_into_head_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let mut child = cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        dir.path().join("lock").to_str().unwrap(),
        "reconcile",
        "--interval",
        "100ms",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Read one line, then close the pipe (`2>&1 | head -1`).
    let mut err = child.stderr.take().unwrap();
    let mut buf = [0u8; 64];
    use std::io::Read;
    let _ = err.read(&mut buf).unwrap();
    drop(err);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "reconcile ended: {:?}",
        child.try_wait()
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn plan_out_with_a_full_stderr_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let out = dir.path().join("plan.json");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let r = cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "plan",
        "--out",
        out.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(full)
    .status()
    .unwrap();
    // 1: the node is unreachable; never 101 (a panic).
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(out.is_file());
}

// ---- 5. bounded, non-blocking reads ------------------------------------------------------

#[test]
fn endless_and_blocking_inputs_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let lock = dir.path().join("lock");
    let lock_s = lock.to_str().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap();
    for args in [
        vec!["--lock-file", lock_s, "apply", "/dev/zero"],
        vec!["--lock-file", lock_s, "apply", fifo_s],
        vec!["discover", "--from", "lxc", "/dev/zero"],
        vec!["discover", "--from", "kubernetes", fifo_s],
        vec!["-f", fifo_s, "validate"],
    ] {
        let r = run_within(&mut cmd(&args), 10);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains("not a regular file"), "{args:?}: {r:?}");
    }
    let _ = topo;
}

#[test]
fn discover_reads_no_more_than_its_limit_from_stdin() {
    let mut c = cmd(&["discover", "--from", "kubernetes", "-"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![0u8; 1 << 20];
        // At most 1 GiB: a reader without a bound would take it all.
        for _ in 0..1024 {
            if stdin.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    });
    let out = child.wait_with_output().unwrap();
    assert!(writer.join().unwrap(), "routectl read a whole GiB");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds more than"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reconcile_with_a_fifo_as_topology_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("topology.toml");
    mkfifo(&fifo);
    let mut child = cmd(&[
        "-f",
        fifo.to_str().unwrap(),
        "--lock-file",
        dir.path().join("lock").to_str().unwrap(),
        "reconcile",
        "--interval",
        "100ms",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert_eq!(s.code(), Some(0));
            break;
        }
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("reconcile hung in open() past SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_snapshot_linked_to_dev_zero_is_refused() {
    let lab = NetnsLab::seed();
    let snap = lab.dir().join("snap");
    let r = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "show",
        "--save",
        snap.to_str().unwrap(),
    ])
    .stdout(Stdio::null()));
    assert_eq!(r.code, 0, "{r:?}");
    let w0 = snap.join("worker-0.json");
    std::fs::remove_file(&w0).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &w0).unwrap();
    let r = run_within(
        &mut cmd(&[
            "-f",
            lab.path.to_str().unwrap(),
            "plan",
            "--observed",
            snap.to_str().unwrap(),
        ]),
        20,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("not a regular file"), "{r:?}");
}

// ---- 6-8. route identity and honest counts -----------------------------------------------

#[test]
#[ignore = "needs root: network namespaces"]
fn an_owned_route_through_a_nexthop_object_is_shown_and_deleted() {
    let lab = NetnsLab::seed();
    let lock = lab.dir().join("lock");
    let rc = |args: &[&str]| {
        let mut all = vec![
            "-f",
            lab.path.to_str().unwrap(),
            "--lock-file",
            lock.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        run(&mut cmd(&all))
    };
    assert_eq!(rc(&["apply", "--auto-approve"]).code, 0);
    lab.ip("worker-0", "nexthop add id 7 via 10.0.2.22 dev eth1");
    lab.ip("worker-0", "route add 10.1.9.0/24 nhid 7 proto 211");
    let plan = rc(&["plan"]);
    assert!(
        plan.stdout
            .contains("10.1.9.0/24 nhid 7 via 10.0.2.22 dev eth1"),
        "{plan:?}"
    );
    let r = rc(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !lab.table("worker-0").iter().any(|l| l.contains("10.1.9.0")),
        "{:?}",
        lab.table("worker-0")
    );
    assert_eq!(rc(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_delete_removes_exactly_the_route_it_names() {
    let lab = NetnsLab::seed();
    let lock = lab.dir().join("lock");
    let rc = |args: &[&str]| {
        let mut all = vec![
            "-f",
            lab.path.to_str().unwrap(),
            "--lock-file",
            lock.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        run(&mut cmd(&all))
    };
    assert_eq!(rc(&["apply", "--auto-approve"]).code, 0);
    // A second owned route on the key of a desired one, onlink through another device.
    lab.ip("worker-0", "link add x0 type veth peer name x1");
    lab.ip("worker-0", "link set x0 up");
    lab.ip(
        "worker-0",
        "route append 10.1.1.0/24 via 10.0.2.21 dev x0 onlink proto 211",
    );
    let r = rc(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{r:?}");
    let routes = lab.table("worker-0");
    assert!(
        routes.contains(&"10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string())
            && !routes.iter().any(|l| l.contains("dev x0")),
        "{routes:?}"
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn applied_counts_what_the_read_back_shows() {
    let lab = NetnsLab::seed();
    // A node that swallows its batch: it prints the read-back but runs nothing else.
    let w1 = lab.ns("worker-1");
    let path = ip_wrapper(
        lab.dir(),
        &format!(
            "case \" $* \" in *\" -batch \"*\" {w1} \"*|*\" {w1} \"*\" -batch \"*) cat >/dev/null; exec $real -n {w1} -N -d -j route show table all;; esac\nexec $real \"$@\""
        ),
    );
    let metrics = lab.dir().join("m.prom");
    let lock = lab.dir().join("lock");
    let r = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        "--auto-approve",
        "--node",
        "worker-1",
        "--output",
        "json",
    ])
    .env("PATH", &path));
    assert_eq!(r.code, 1, "{r:?}");
    let j = r.json();
    assert_eq!(j["summary"]["operations_applied"], 0, "{r:?}");
    let t = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        "--auto-approve",
        "--node",
        "worker-1",
    ])
    .env("PATH", &path));
    assert!(t.stdout.contains("0 operations applied"), "{t:?}");
    let rec = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
        "reconcile",
        "--once",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ])
    .env("PATH", &path));
    assert_eq!(rec.code, 1, "{rec:?}");
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.lines().any(|l| l.contains("node=\"worker-1\"")
            && l.starts_with("routectl_node_changes")
            && l.ends_with(" 0")),
        "{m}"
    );
}

// ---- 10. output files --------------------------------------------------------------------

#[test]
fn discover_out_never_writes_through_a_planted_temp_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "secret\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = dir.path().join("topology.toml");
    // The temp name the old code used, planted.
    std::os::unix::fs::symlink(&precious, dir.path().join(".topology.toml.tmp")).unwrap();
    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kubectl-get-nodes.json"
    );
    let r = run(cmd(&[
        "discover",
        "--from",
        "kubernetes",
        input,
        "-o",
        out.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "secret\n");
    assert!(std::fs::read_to_string(&out).unwrap().contains("[[nodes]]"));
}

/// A tiny tmpfs, filled up: a write into it fails for lack of space.
struct FullFs(PathBuf);

impl FullFs {
    fn new(dir: &Path) -> FullFs {
        let m = dir.join("small");
        std::fs::create_dir(&m).unwrap();
        support::sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=256k",
            "tmpfs",
            m.to_str().unwrap(),
        ]);
        FullFs(m)
    }

    fn fill(&self) {
        let _ = Command::new("dd")
            .args([
                "if=/dev/zero",
                &format!("of={}/fill", self.0.display()),
                "bs=4k",
            ])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for FullFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root: mounts a small tmpfs"]
fn plan_out_on_a_full_disk_keeps_the_reviewed_plan() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let fs = FullFs::new(dir.path());
    let plan = fs.0.join("plan.json");
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "plan",
        "--out",
        plan.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    let reviewed = std::fs::read(&plan).unwrap();
    assert!(!reviewed.is_empty());
    fs.fill();
    let r = run(cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "plan",
        "--out",
        plan.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("writing the plan file"), "{r:?}");
    assert_eq!(std::fs::read(&plan).unwrap(), reviewed);
}

#[test]
#[ignore = "needs root: network namespaces and a small tmpfs"]
fn a_failed_show_save_leaves_the_old_snapshot_whole() {
    let lab = NetnsLab::seed();
    let fs = FullFs::new(lab.dir());
    let snap = fs.0.join("snap");
    let save = || {
        run(cmd(&[
            "-f",
            lab.path.to_str().unwrap(),
            "show",
            "--save",
            snap.to_str().unwrap(),
        ])
        .stdout(Stdio::null()))
    };
    assert_eq!(save().code, 0);
    let old: Vec<(String, Vec<u8>)> = ["controller-0", "worker-0", "worker-1", "worker-2"]
        .iter()
        .map(|n| {
            let p = snap.join(format!("{n}.json"));
            (n.to_string(), std::fs::read(p).unwrap())
        })
        .collect();
    // New routes everywhere, then a save that runs out of space part-way.
    let lock = lab.dir().join("lock");
    assert_eq!(
        run(cmd(&[
            "-f",
            lab.path.to_str().unwrap(),
            "--lock-file",
            lock.to_str().unwrap(),
            "apply",
            "--auto-approve"
        ]))
        .code,
        0
    );
    // worker-2's snapshot grows by several pages; then leave room for two pages only. The
    // first nodes' snapshots fit (each replaces its old page), worker-2's cannot.
    let mut script = String::new();
    for i in 0..150 {
        script.push_str(&format!(
            "route add 10.200.{i}.0/24 via 10.0.2.20 dev eth1 proto 4\n"
        ));
    }
    support::ip_batch(&lab.ns("worker-2"), &script);
    fs.fill();
    let _ = std::fs::remove_file(fs.0.join("fill"));
    let avail = support::sh(&["stat", "-f", "-c", "%a", fs.0.to_str().unwrap()]);
    let pages: u64 = avail.trim().parse().unwrap();
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}/fill", fs.0.display()),
            "bs=4k",
            &format!("count={}", pages.saturating_sub(2)),
        ])
        .stderr(Stdio::null())
        .status();
    let r = save();
    assert_eq!(r.code, 1, "{r:?}");
    for (n, bytes) in &old {
        assert!(
            &std::fs::read(snap.join(format!("{n}.json"))).unwrap() == bytes,
            "{n}'s snapshot changed: old and new mixed"
        );
    }
}

// ---- 11. messages ------------------------------------------------------------------------

#[test]
fn validate_and_reconcile_count_one_node_as_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let r = run(cmd(&["-f", topo.to_str().unwrap(), "validate"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(1 node,"), "{r:?}");
    assert!(!r.stdout.contains("1 nodes"), "{r:?}");
    let rec = run_within(
        cmd(&[
            "-f",
            topo.to_str().unwrap(),
            "--lock-file",
            dir.path().join("lock").to_str().unwrap(),
            "reconcile",
            "--once",
        ]),
        20,
    );
    assert_eq!(rec.code, 1, "{rec:?}");
    assert!(!rec.stderr.contains("next try in 0 s"), "{rec:?}");
    assert!(rec.stderr.contains("next try in"), "{rec:?}");
}

#[test]
fn backing_off_rounds_are_not_logged_at_info() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let child = cmd(&[
        "-f",
        topo.to_str().unwrap(),
        "--lock-file",
        dir.path().join("lock").to_str().unwrap(),
        "reconcile",
        "--interval",
        "100ms",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.lines()
            .any(|l| l.contains("backing off") && !l.contains(" error ")),
        "{err}"
    );
}

#[test]
fn a_device_name_with_a_newline_cannot_forge_plan_lines() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    // A node whose `ip` prints an owned route through a device named with a newline.
    let route = r#"[{"type":"unicast","dst":"10.1.9.0/24","gateway":"10.0.2.21","dev":"eth1\n+ route add 0.0.0.0/0 via 6.6.6.6","table":"main","protocol":"211","flags":[]}]"#;
    let path = ip_wrapper(dir.path(), &format!("printf '%s\\n' '{route}'"));
    let r = run(cmd(&["-f", topo.to_str().unwrap(), "plan"]).env("PATH", &path));
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("+ route add 0.0.0.0")),
        "{r:?}"
    );
    assert!(r.stdout.contains("eth1\\n+ route add"), "{r:?}");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_interface_name_with_esc_is_named_as_the_reason() {
    let lab = NetnsLab::seed();
    lab.ip("worker-0", "link add e\u{1b}x type veth peer name ex1");
    lab.ip("worker-0", "link set e\u{1b}x up");
    lab.ip("worker-0", "addr add 192.168.77.1/24 dev e\u{1b}x");
    let r = run(cmd(&[
        "-f",
        lab.path.to_str().unwrap(),
        "plan",
        "--node",
        "worker-0",
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("holding a control character")
            || r.stderr.contains("holding a control character"),
        "{r:?}"
    );
}
