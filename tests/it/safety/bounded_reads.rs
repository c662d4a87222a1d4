//! Bounded, non-blocking reads: endless and blocking inputs (FIFOs, /dev/zero, stdin) are
//! refused at once or read no further than a limit.

use super::*;

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
