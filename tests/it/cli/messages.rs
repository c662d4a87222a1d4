//! Colour, and what messages say: a missing instance or topology, canary options checked
//! first, huge values echoed capped with their length.

use super::*;

#[test]
fn no_color_and_color_never_print_no_escape_codes() {
    let lab = Fake::case("drift");
    for (args, env) in [
        (&["plan"][..], &[("NO_COLOR", "1")][..]),
        (&["plan", "--color", "auto"], &[("NO_COLOR", "1")]),
        (&["plan", "--color", "never"], &[("CLICOLOR_FORCE", "1")]),
        (&["plan", "--color", "never", "-o", "markdown"], &[]),
    ] {
        let r = lab.run_env(args, env);
        r.code(0);
        assert!(
            !has_escape(&r.stdout) && !has_escape(&r.stderr),
            "{args:?} {env:?}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn color_always_prints_escape_codes() {
    let lab = Fake::case("drift");
    for (args, env) in [
        (&["plan", "--color", "always"][..], &[][..]),
        (&["plan", "--color", "always"], &[("NO_COLOR", "1")]),
        (&["plan"], &[("CLICOLOR_FORCE", "1")]),
    ] {
        let r = lab.run_env(args, env);
        r.code(0);
        r.stdout_has("\x1b[31m-\x1b[0m")
            .stdout_has("\x1b[1mworker-0\x1b[0m");
    }
    // The document formats never carry colour.
    let r = lab.run(&["plan", "--color", "always", "-o", "json"]);
    assert!(!has_escape(&r.stdout));
    r.json();
}

/// A missing or stopped instance says what it is and what to do, beside lxc's own words.
#[test]
fn a_missing_instance_names_its_project_and_a_stopped_one_says_lxc_start() {
    let lab = Fake::with_topology(&example_topology());
    lab.reads("controller-0", &case_json("in-sync", "controller-0"));
    lab.reads("worker-0", &case_json("in-sync", "worker-0"));
    lab.fails("worker-1", NOT_RUNNING, 1);
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    let line = r.line("worker-2:");
    assert!(
        line.contains(
            "Error: Instance not found; no instance `worker-2` in project default (`lxc list` \
             lists them"
        ),
        "{line}"
    );
    let line = r.line("worker-1:");
    assert!(
        line.contains(
            "Error: Instance is not running; instance `worker-1` is stopped: start it with `lxc \
             start worker-1`"
        ),
        "{line}"
    );
    let j = lab.run(&["plan", "-o", "json"]).json();
    assert_eq!(j["nodes"][2]["error"]["kind"], "not_running", "{j}");
    assert_eq!(j["nodes"][3]["error"]["kind"], "no_instance", "{j}");
    assert_eq!(j["nodes"][3]["error"]["exit_status"], 1, "{j}");
}

#[test]
fn a_missing_topology_file_suggests_discover() {
    let lab = Fake::bare();
    lab.run(&["plan"])
        .code(1)
        .stderr_has("cannot read topology file `topology.toml`: No such file or directory")
        .stderr_has("`routectl discover > topology.toml`");
}

#[test]
fn fake_lxc_answers_like_lxd_for_an_unknown_instance() {
    // Guards the fake itself: an instance without answers is one LXD does not know.
    let lab = Fake::with_topology(&example_topology());
    lab.reads("controller-0", &case_json("in-sync", "controller-0"));
    lab.reads("worker-0", &case_json("in-sync", "worker-0"));
    lab.reads("worker-1", &case_json("in-sync", "worker-1"));
    let r = lab.run(&["plan", "--color", "never"]);
    r.code(1);
    assert!(
        r.line("worker-2:").contains("Error: Instance not found"),
        "{}",
        r.stdout
    );
}

#[test]
fn canary_options_are_checked_before_any_node_is_contacted() {
    let lab = Fake::case("empty-lab");
    lab.run(&["apply", "-y", "--canary", "worker-9"])
        .code(2)
        .stderr_has("worker-9");
    lab.run(&["apply", "-y", "--canary", "worker-2", "--node", "worker-0"])
        .code(2)
        .stderr_has("--canary `worker-2` is not among the nodes planned with --node");
    lab.run(&["apply", "-y", "--canary-rollback"]).code(2);
    lab.assert_no_calls();
}

#[test]
fn a_huge_node_name_is_echoed_capped_with_its_length() {
    let name = "w".repeat(1 << 20);
    let lab = Fake::with_topology(&format!(
        "[cluster]\ninterface = \"eth1\"\n\n[[nodes]]\nname = \"{name}\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.0/24\"\n"
    ));
    for args in [&["validate"][..], &["plan"]] {
        let r = lab.run(args);
        r.code(1).stderr_has("… (1048576 bytes)` is not valid");
        assert!(r.stderr.len() < 1024, "{} bytes of stderr", r.stderr.len());
        assert!(r.stdout.len() < 1024, "{} bytes of stdout", r.stdout.len());
    }
    let json = lab.run(&["validate", "--output", "json"]);
    assert!(
        json.stdout.len() < 2048,
        "{} bytes of stdout",
        json.stdout.len()
    );
    lab.assert_no_calls();
}

#[test]
fn many_node_names_are_listed_capped_with_their_count() {
    // 3,000 names the topology does not declare.
    let lab = Fake::case("empty-lab");
    let mut args = vec!["plan".to_string()];
    for i in 0..3000 {
        args.extend(["--node".to_string(), format!("ghost-{i}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = lab.run(&args);
    r.code(2)
        .stderr_has("--node names `ghost-0`, `ghost-1`, ")
        .stderr_has("`ghost-9` and 2990 more not declared in topology.toml");
    assert!(r.stderr.len() < 1024, "{} bytes of stderr", r.stderr.len());
    lab.assert_no_calls();

    // 3,000 nodes, one planned: the others are counted, not listed.
    let mut text = String::from("[cluster]\ninterface = \"eth1\"\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "\n[[nodes]]\nname = \"node-{i}\"\ninternal_ip = \"10.{}.{}.{}\"\n",
            20 + i / 65536,
            i / 256 % 256,
            i % 256
        ));
    }
    let lab = Fake::with_topology(&text);
    lab.reads("node-0", b"[]");
    for output in ["text", "markdown"] {
        let r = lab.run(&["plan", "--node", "node-0", "--output", output]);
        r.code(0).stdout_has("node-9, node-10 and 2989 more");
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains("not planned"))
            .expect("the not-planned line");
        assert!(line.len() < 300, "{line}");
    }
    let show = lab.run(&["show", "--node", "node-0"]);
    show.stdout_has("(not shown, --node: node-1, node-2,")
        .stdout_has(" and 2989 more)");
}
