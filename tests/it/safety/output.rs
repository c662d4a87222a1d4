//! Output: errors writing stderr, metrics or a pipe never stop reconcile; output files are
//! written whole or not at all (a planted temp symlink, a full disk).

use super::*;

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
