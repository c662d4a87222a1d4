//! The lock (a planted symlink, a topology given as the lock file, a holder named, the
//! default directory) and an interrupted apply (its children stopped, its own exit code).

use super::*;

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
    // Every write takes 2 s to start; reads are immediate. A batch's `show` lines (a read
    // held for its write sends those first) go through at once, its first other line (a route
    // operation) 2 s later.
    let path = ip_wrapper(
        lab.dir(),
        "case \" $* \" in *\" -batch \"*) { while IFS= read -r l; do case $l in *show*) \
         printf '%s\\n' \"$l\";; *) sleep 2; printf '%s\\n' \"$l\"; break;; esac; done; \
         exec cat; } | exec $real \"$@\";; esac\nexec $real \"$@\"",
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
