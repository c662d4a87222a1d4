//! Messages: counts of one node, backing-off rounds, device names that could forge lines.

use super::*;

#[test]
fn validate_and_reconcile_count_one_node_as_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let topo = unreachable_topology(dir.path());
    let r = run(cmd(&["-f", topo.to_str().unwrap(), "validate"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(1 node,"), "{r:?}");
    assert!(!r.stdout.contains("1 nodes"), "{r:?}");
    let rec = run_within(
        &mut cmd(&[
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
