//! Route identity and honest counts: a route through a nexthop object, a delete of exactly the
//! route named, applied counts from the read-back.

use super::*;

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
    // A node that swallows its batch: it runs its `show` lines (the read, the read-back) but
    // nothing else.
    let w1 = lab.ns("worker-1");
    let path = ip_wrapper(
        lab.dir(),
        &format!(
            "case \" $* \" in *\" -batch \"*\" {w1} \"*|*\" {w1} \"*\" -batch \"*) grep --line-buffered show | exec $real \"$@\";; esac\nexec $real \"$@\""
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
