//! Nodes that cannot be read: stopped, silent, garbage, old `ip`, missing programs, hung or
//! slow nodes.

use super::*;

#[test]
fn stopped_instance_is_a_node_error_and_the_others_are_still_planned() {
    let lab = Fake::case("empty-lab");
    lab.fails("worker-1", NOT_RUNNING, 1);
    for args in [
        &["plan", "--color", "never"][..],
        &["plan", "--color", "never", "--detailed-exitcode"],
    ] {
        let r = lab.run(args);
        r.code(1);
        assert!(
            r.line("worker-1:").starts_with("worker-1: error: ")
                && r.line("worker-1:")
                    .contains("Error: Instance is not running"),
            "{}",
            r.stdout
        );
        r.stdout_has("controller-0: 3 to add")
            .stdout_has("worker-0: 2 to add")
            .stdout_has("worker-2: 2 to add")
            .stdout_has(
                "Plan: 7 to add, 0 to replace, 0 to delete on 3 of 4 nodes; 1 node unreachable.",
            );
    }
    let json = lab.run(&["plan", "-o", "json", "--detailed-exitcode"]);
    json.code(1);
    let json = json.json();
    let w1 = &json["nodes"][2];
    assert_eq!(w1["name"], "worker-1");
    assert_eq!(w1["status"], "error");
    assert_eq!(w1["changes"], serde_json::json!([]));
    assert_eq!(w1["error"]["exit_status"], 1);
    assert!(
        w1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Instance is not running"),
        "{w1}"
    );
    assert_eq!(json["nodes"][1]["status"], "ok");
    assert_eq!(json["summary"]["nodes_unreachable"], 1);
}

/// The LXD bug: `lxc exec` exits 0 having printed nothing. That is a failed read: retried, and
/// never planned as an empty table (which would mean adds, and with owned routes, deletes).
#[test]
fn empty_read_is_retried_then_reported_never_planned_as_an_empty_table() {
    let lab = Fake::case("drift");
    lab.answer("worker-1.read", b"", "", 0);
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(1);
    assert_eq!(lab.calls_to("worker-1", READ), 3, "{:?}", lab.calls());
    assert_eq!(lab.calls_to("worker-0", READ), 1);
    let line = r.line("worker-1:");
    assert!(
        line.starts_with("worker-1: error: ") && line.contains("printed nothing"),
        "{line}"
    );
    // worker-1 holds an owned stale route (10.1.9.0/24): nothing may be planned for it.
    r.stdout_lacks("10.1.9.0/24").stdout_lacks("  - ");
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][2]["status"], "error");
    assert_eq!(json["nodes"][2]["error"]["kind"], "empty_output");
}

#[test]
fn empty_read_that_succeeds_on_retry_is_planned() {
    let lab = Fake::case("drift");
    lab.answer("worker-1.read.1", b"", "", 0);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(0);
    assert_eq!(r.stdout, case_expected("drift"));
    assert_eq!(lab.calls_to("worker-1", READ), 2);
}

#[track_caller]
fn assert_not_a_route_list(stdout: &[u8]) {
    let lab = Fake::case("empty-lab");
    lab.answer("worker-2.read", stdout, "", 0);
    let r = lab.run(&["plan", "--color", "never", "--detailed-exitcode"]);
    r.code(1);
    let line = r.line("worker-2:");
    assert!(
        line.starts_with("worker-2: error: ") && line.contains("not a JSON route list"),
        "{line}"
    );
    r.stdout_has("worker-1: 2 to add");
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][3]["error"]["kind"], "bad_output");
    assert_eq!(json["nodes"][3]["changes"], serde_json::json!([]));
}

#[test]
fn garbage_output_is_not_a_route_list() {
    // What an `ip` that ignores -j prints.
    assert_not_a_route_list(
        b"default via 10.0.1.1 dev eth0 proto dhcp src 10.0.1.22 metric 100\n\
          10.0.2.0/24 dev eth1 proto kernel scope link src 10.0.2.22\n",
    );
}

#[test]
fn truncated_json_is_not_a_route_list() {
    let full = case_json("empty-lab", "worker-2");
    assert_not_a_route_list(&full[..full.len() / 2]);
}

#[test]
fn lone_bracket_is_not_a_route_list() {
    // iproute2 6.1 prints a lone `[` when a dump fails half-way.
    assert_not_a_route_list(b"[");
}

#[test]
fn old_iproute2_is_diagnosed() {
    let lab = Fake::case("empty-lab");
    // iproute2 before 5.5 printed multipath next hops without a comma between them.
    lab.reads(
        "worker-0",
        br#"[{"dst":"default","gateway":"10.0.1.1","dev":"eth0","protocol":"16","metric":100,"flags":[]},{"dst":"10.9.0.0/24","protocol":"3","flags":[],"nexthops":[{"gateway":"10.0.2.21","dev":"eth1","weight":1,"flags":[]}{"gateway":"10.0.2.22","dev":"eth1","weight":1,"flags":[]}]}]"#,
    );
    lab.answer(
        "worker-0.version",
        b"ip utility, iproute2-ss190107\n",
        "",
        0,
    );
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-0:");
    assert!(
        line.contains("iproute2 ss190107") && line.contains("iproute2 5.5 or newer"),
        "{line}"
    );
    assert_eq!(lab.calls_to("worker-0", "ip -V"), 1);
    assert_eq!(lab.calls_to("worker-1", "ip -V"), 0);
    let json = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(json["nodes"][1]["error"]["kind"], "old_iproute");
}

#[test]
fn ip_missing_in_the_container_is_a_clear_node_error() {
    let lab = Fake::case("empty-lab");
    lab.fails("worker-0", COMMAND_NOT_FOUND, 127);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-0:");
    assert!(
        line.starts_with("worker-0: error: ")
            && line.contains("`ip` was not found in the node")
            && line.contains("install iproute2")
            && line.contains("Command not found")
            && line.contains(READ),
        "{line}"
    );
    r.stdout_has("worker-1: 2 to add");
}

#[test]
fn lxc_missing_from_path_is_a_node_error_on_every_node() {
    let lab = Fake::with_topology(&example_topology());
    let empty = lab.path("empty-bin");
    fs::create_dir(&empty).unwrap();
    let r = lab
        .routectl()
        .args(["plan", "--color", "never"])
        .env("PATH", &empty)
        .run();
    r.code(1);
    for node in NODES {
        let line = r.line(&format!("{node}:"));
        assert!(line.contains("`lxc` was not found on PATH"), "{line}");
    }
}

#[test]
fn a_hung_node_is_killed_after_the_timeout() {
    let lab = Fake::case("empty-lab");
    lab.write("worker-2.read.sleep", b"20");
    let started = Instant::now();
    let r = lab.run(&["plan", "--color", "never", "--timeout", "300ms"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    r.code(1);
    let line = r.line("worker-2:");
    assert!(line.contains("did not finish within 0.3 s"), "{line}");
    r.stdout_has("worker-1: 2 to add");
}

/// On a terminal, a slow read shows: a live line names the node still awaited, and the retry
/// after its timeout is said (run under `script`, which gives routectl a terminal).
#[test]
fn a_slow_node_is_named_on_a_terminal_and_its_retry_said() {
    let lab = Fake::case("empty-lab");
    lab.write("worker-2.read.1.sleep", b"20");
    let path = format!(
        "{}:{}",
        lab.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let line = format!(
        "{} plan --color never --timeout 1500ms",
        support::bin().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(lab.dir())
        .env_clear()
        .env("PATH", path)
        .env("FAKE_DIR", lab.dir())
        .env("ROUTECTL_LOCK_FILE", lab.path("routectl.lock"))
        .env("LXD_DIR", lab.path("no-daemon"))
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("routectl: read 3/4 nodes; waiting for worker-2 (1 s)"),
        "{text:?}"
    );
    assert!(
        text.contains("routectl: worker-2 did not answer within 1.5 s; trying again"),
        "{text:?}"
    );
    assert!(text.contains("worker-2: 2 to add"), "{text:?}");
}

#[test]
fn show_retries_a_timed_out_read_as_plan_does() {
    // Regression: plan retried a read that timed out, show did not, so with a short --timeout
    // and a node slow once, show failed where plan succeeded.
    let lab = Fake::case("empty-lab");
    for node in NODES {
        // show's one command prints the routes, then the addresses.
        let mut both = case_json("empty-lab", node);
        both.extend_from_slice(b"\n[]\n");
        lab.answer(&format!("{node}.batch"), &both, "", 0);
    }
    lab.write("worker-2.batch.1.sleep", b"20");
    lab.write("worker-2.read.1.sleep", b"20");
    let show = lab.run(&["show", "--color", "never", "--timeout", "500ms"]);
    show.code(0);
    let line = show.line("worker-2");
    assert!(!line.contains("did not finish"), "{show:?}");
    assert_eq!(
        lab.calls()
            .iter()
            .filter(|c| c.starts_with("lxc exec worker-2 ") && c.contains("-batch -"))
            .count(),
        2,
        "{:?}",
        lab.calls()
    );
    let plan = lab.run(&["plan", "--color", "never", "--timeout", "500ms"]);
    plan.code(0);
    plan.stdout_has("worker-2: 2 to add");
}

#[test]
fn one_node_at_a_time_plans_the_same() {
    let lab = Fake::case("drift");
    let serial = lab.run(&["plan", "--color", "never", "-j", "1"]);
    serial.code(0);
    assert_eq!(serial.stdout, case_expected("drift"));
    let env = lab.run_env(
        &["plan", "--color", "never"],
        &[("ROUTECTL_PARALLELISM", "1")],
    );
    assert_eq!(env.stdout, serial.stdout);
}

#[test]
fn transport_option_overrides_the_topology() {
    let lab = Fake::case("in-sync");
    lab.run(&["plan", "--transport", "incus"]).code(0);
    let calls = lab.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("incus exec ") && c.ends_with(READ)),
        "{calls:?}"
    );
}
