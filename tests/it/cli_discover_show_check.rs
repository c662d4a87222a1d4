//! Black-box tests of `routectl discover`, `show` and `check` through the fake `lxc` (and
//! `incus`) on PATH (tests/it/support/fake.rs), answering from real captures of the LXD lab
//! (tests/data/lab): `list --format json`, each node's show read (a batch) and route read, and
//! scripted `ping` results. No root, no LXD needed.

use std::path::PathBuf;

use crate::support::fake::{Fake, NODES, lab_data};
use crate::support::{Routectl, assert_code, repo, without_manager};

fn example() -> PathBuf {
    repo().join("topology.example.toml")
}

/// Nodes of a topology file as comparable tuples.
fn nodes_of(text: &str) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let t = routectl::core::topology::parse(text.as_bytes(), "t.toml", None)
        .unwrap_or_else(|p| panic!("{p}\n{text}"));
    t.nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.instance.clone(),
                n.internal_ips.iter().map(|a| a.to_string()).collect(),
                n.pod_cidrs.iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn discover_from_lxc_writes_the_example_topology_and_validates() {
    let fake = Fake::lxd_lab();
    let run = fake.run_file(&example(), &["discover"]);
    assert_code(&run, 0);
    assert_eq!(
        nodes_of(&run.stdout),
        nodes_of(&std::fs::read_to_string(example()).unwrap())
    );
    assert!(run.stdout.contains("transport = \"lxc\""), "{run:?}");
    assert!(run.stdout.contains("pod_cidr = \"10.1.0.0/16\""), "{run:?}");
    assert!(
        run.stdout
            .contains("# skipped `ux-capture-stopped`: not running (status Stopped)"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(
            "Discovered 4 nodes from `lxc list --format json`; 1 skipped (see the `# skipped` comments)."
        ),
        "{run:?}"
    );
    assert_eq!(fake.calls(), ["lxc list --format json"]);

    // -o FILE, refused over an existing file without --force; the file validates.
    let out = fake.path("topology.toml");
    let out_s = out.to_str().unwrap();
    assert_code(&fake.run_file(&example(), &["discover", "-o", out_s]), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), run.stdout);
    let again = fake.run_file(&example(), &["discover", "-o", out_s]);
    assert_code(&again, 1);
    assert!(
        again.stderr.contains("exists; refusing to overwrite it"),
        "{again:?}"
    );
    assert_code(
        &fake.run_file(&example(), &["discover", "-o", out_s, "--force"]),
        0,
    );
    let valid = fake.run_file(&out, &["validate"]);
    assert_code(&valid, 0);
    assert!(
        valid.stdout.contains("valid (4 nodes, 9 desired routes"),
        "{valid:?}"
    );
}

#[test]
fn discover_from_incus_or_a_saved_list_and_other_interfaces() {
    let fake = Fake::lxd_lab();
    let run = fake.run_file(&example(), &["discover", "--from", "incus"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("transport = \"incus\""), "{run:?}");
    assert_eq!(fake.calls(), ["incus list --format json"]);

    // A saved list is read instead of running lxc.
    let saved = fake.path("list.stdout");
    let run = fake.run_file(
        &example(),
        &["discover", "--from", "lxc", saved.to_str().unwrap()],
    );
    assert_code(&run, 0);
    assert_eq!(fake.calls().len(), 1, "lxc was not run again");
    assert!(run.stdout.contains("from `"), "{run:?}");

    // Nobody has an address on eth9: every running instance is skipped, which is an error.
    let run = fake.run_file(&example(), &["discover", "--interface", "eth9"]);
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("worker-0`: no global address on eth9 (it has addresses on cnio0, eth1)"),
        "{run:?}"
    );
    let run = fake.run_file(&example(), &["discover", "--interface", "eth 9"]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("--interface `eth 9`"), "{run:?}");
}

#[test]
fn discover_names_a_failing_lxc() {
    let fake = Fake::lxd_lab();
    fake.write("list.status", "1");
    fake.write(
        "list.stderr",
        "Error: LXD unix socket \"/var/lib/lxd/unix.socket\" not accessible\n",
    );
    let run = fake.run_file(&example(), &["discover"]);
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("lxc list --format json")
            && run.stderr.contains("exited with status 1")
            && run.stderr.contains("unix.socket"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
    fake.write("list.stdout", "not json");
    std::fs::remove_file(fake.path("list.status")).unwrap();
    let run = fake.run_file(&example(), &["discover"]);
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("`lxc list --format json` is not the output of `lxc list --format json`"),
        "{run:?}"
    );
}

#[test]
fn discover_from_kubernetes_file_or_stdin() {
    let fake = Fake::lxd_lab();
    let nodes = repo().join("tests/data/kubectl-get-nodes.json");
    let run = fake.run_file(
        &example(),
        &["discover", "--from", "kubernetes", nodes.to_str().unwrap()],
    );
    assert_code(&run, 0);
    let n = nodes_of(&run.stdout);
    assert_eq!(n.len(), 3, "{run:?}");
    assert_eq!(n[2].3, ["10.1.1.0/24", "fd01:0:1::/64"]);
    assert!(run.stdout.contains("# skipped `ghost`"), "{run:?}");
    assert!(run.stdout.contains("transport = \"lxc\""), "{run:?}");
    assert!(fake.calls().is_empty(), "no lxc for kubernetes");

    // From stdin, and with another transport.
    let out = Routectl::new()
        .args([
            "discover",
            "--from",
            "kubernetes",
            "--transport",
            "incus",
            "-",
        ])
        .stdin(std::fs::read(&nodes).unwrap())
        .run();
    assert_code(&out, 0);
    let text = &out.stdout;
    assert!(text.contains("transport = \"incus\""), "{text}");
    assert_eq!(nodes_of(text), n);

    let run = fake.run_file(&example(), &["discover", "--from", "kubernetes"]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("kubectl get nodes -o json"), "{run:?}");
}

#[test]
fn show_save_is_what_plan_observed_plans_from_and_a_live_plan_agrees() {
    let fake = Fake::lxd_lab();
    let topo = fake.path("topology.toml");
    assert_code(
        &fake.run_file(&example(), &["discover", "-o", topo.to_str().unwrap()]),
        0,
    );
    let snap = fake.path("snap");
    let run = fake.run_file(&topo, &["show", "--save", snap.to_str().unwrap()]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains(
            "Show: 4 nodes; 0 owned, 0 foreign, 14 kernel, 9 desired-missing routes; 0 warnings."
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  desired-missing 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("ok: pod gateway 10.1.2.1 (10.1.2.0/24) is on cnio0")
    );
    // One command per node, and each snapshot is exactly the plain route read.
    assert_eq!(fake.calls().len(), 1 + 4, "{:?}", fake.calls());
    for n in NODES {
        assert_eq!(
            std::fs::read(snap.join(format!("{n}.json"))).unwrap(),
            std::fs::read(lab_data(&format!("{n}.route.json"))).unwrap(),
            "{n}"
        );
    }
    let offline = fake.run_file(
        &topo,
        &[
            "plan",
            "--observed",
            snap.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_code(&offline, 0);
    let live = fake.run_file(&topo, &["plan", "--output", "json"]);
    assert_code(&live, 0);
    // The same plan, except that only a live read tells what manages each interface and how
    // each node was reached.
    assert_eq!(offline.json()["nodes"][0]["manager"]["name"], "unknown");
    assert!(offline.json()["nodes"][0].get("access").is_none());
    let mut live_doc = live.json();
    live_doc["nodes"] = crate::access::nodes_reached(&live_doc, "exec");
    assert_eq!(without_manager(offline.json()), without_manager(live_doc));
    assert_eq!(offline.json()["summary"]["add"], 9);
    let exit = fake.run_file(
        &topo,
        &[
            "plan",
            "--observed",
            snap.to_str().unwrap(),
            "--detailed-exitcode",
        ],
    );
    assert_code(&exit, 3);
}

#[test]
fn show_reports_an_unreadable_node_and_still_shows_the_others() {
    let fake = Fake::lxd_lab();
    let topo = fake.path("topology.toml");
    let text = std::fs::read_to_string(example()).unwrap()
        + "\n[[nodes]]\nname = \"worker-3\"\ninternal_ip = \"10.0.2.23\"\npod_cidr = \"10.1.3.0/24\"\n";
    std::fs::write(&topo, text).unwrap();
    let snap = fake.path("snap");
    std::fs::create_dir(&snap).unwrap();
    std::fs::write(snap.join("worker-3.json"), "[]\n").unwrap();

    let run = fake.run_file(&topo, &["show", "--save", snap.to_str().unwrap()]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains("worker-3: error: `lxc exec worker-3")
            && run.stdout.contains("Error: Instance not found"),
        "{run:?}"
    );
    assert!(run.stdout.contains("worker-2:\n"), "{run:?}");
    assert!(run.stdout.contains("; 1 unreadable."), "{run:?}");
    // Its old snapshot is gone: it cannot be planned from stale routes.
    assert!(!snap.join("worker-3.json").exists());
    assert!(snap.join("worker-2.json").exists());

    let j = fake.run_file(&topo, &["show", "--output", "json"]);
    assert_code(&j, 1);
    let j = j.json();
    assert_eq!(j["kind"], "show");
    assert_eq!(j["format_version"], 1);
    assert_eq!(j["nodes"][4]["status"], "error");
    assert_eq!(j["nodes"][1]["status"], "ok");
    assert_eq!(j["summary"]["nodes_unreadable"], 1);

    // --node limits the read.
    let one = fake.run_file(&topo, &["show", "--node", "worker-1"]);
    assert_code(&one, 0);
    assert!(one.stdout.starts_with("worker-1:\n"), "{one:?}");
    let bad = fake.run_file(&topo, &["show", "--node", "worker-9"]);
    assert_code(&bad, 2);
}

#[test]
fn check_retries_once_and_names_an_asymmetric_path() {
    let fake = Fake::lxd_lab();
    let gw = |i: usize| format!("10.1.{i}.1");
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                fake.pings(&format!("worker-{a}"), &gw(b), &[0]);
            }
        }
    }
    // worker-2's first ping to worker-0 is lost (neighbour discovery), the second answered;
    // worker-1 never reaches worker-0, though worker-0 reaches worker-1.
    fake.pings("worker-2", &gw(0), &[1, 0]);
    fake.pings("worker-1", &gw(0), &[1, 1]);

    let run = fake.run_file(&example(), &["check"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains(
            "asymmetric (IPv4): worker-0 reaches worker-1, but worker-1 does not reach worker-0 back"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "failed: worker-1 -> worker-0 (IPv4, 10.1.1.1 -> 10.1.0.1; 2 tries, one packet each): 1 packets transmitted, 0 received, 100% packet loss, time 0ms"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("Check: 5 of 6 paths pass, 1 failed (1 asymmetric).")
    );
    assert!(
        run.stdout.contains("  worker-1  FAIL      -         ok\n"),
        "{run:?}"
    );
    let pings = fake
        .calls()
        .iter()
        .filter(|c| c.contains("-- ping"))
        .count();
    assert_eq!(
        pings,
        6 + 2,
        "one retry for each of the two lost first pings"
    );
    // controller-0 has no pod CIDR: it is neither read nor pinged.
    assert!(!fake.calls().iter().any(|c| c.contains("controller-0")));

    fake.reset_counts();
    let j = fake
        .run_file(&example(), &["check", "--output", "json"])
        .json();
    assert_eq!(j["kind"], "check");
    assert_eq!(j["families"][0]["family"], "ipv4");
    assert_eq!(j["families"][0]["matrix"][1][0], "fail");
    assert_eq!(j["summary"]["success"], false);
    let p = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["from"] == "worker-2" && p["to"] == "worker-0")
        .unwrap();
    assert_eq!(p["status"], "pass");
    assert_eq!(p["attempts"], 2);
    assert_eq!(
        j["asymmetric"][0],
        serde_json::json!({"family": "ipv4", "reaches": "worker-0", "not_back": "worker-1"})
    );
}

#[test]
fn check_passes_when_every_path_answers_and_limits_to_a_node() {
    let fake = Fake::lxd_lab();
    for a in 0..3 {
        for b in 0..3 {
            fake.pings(&format!("worker-{a}"), &format!("10.1.{b}.1"), &[0]);
        }
    }
    let run = fake.run_file(&example(), &["check"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    let one = fake.run_file(
        &example(),
        &["check", "--node", "worker-2", "--output", "json"],
    );
    assert_code(&one, 0);
    assert_eq!(one.json()["summary"]["paths"], 4);
    let md = fake.run_file(&example(), &["check", "--output", "markdown"]);
    assert_code(&md, 0);
    assert!(md.stdout.contains("| `worker-0` | - | ✅ | ✅ |"), "{md:?}");
}

/// `discover` follows the topology file's project (so `discover | diff -u topology.toml -`
/// compares like with like), names it in its header, and warns when the instances it merges
/// lie on different subnets.
#[test]
fn discover_follows_the_files_project_and_warns_of_mixed_subnets() {
    let fake = Fake::bare();
    fake.install("lxc");
    let list = r#"[
 {"name":"worker-0","status":"Running","profiles":["default"],
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.2.20","netmask":"24","scope":"global"}]}}}},
 {"name":"other-0","status":"Running","profiles":["default"],
  "state":{"network":{"eth1":{"addresses":[{"family":"inet","address":"10.0.9.20","netmask":"24","scope":"global"}]}}}}
]"#;
    fake.answer("list", list.as_bytes(), "", 0);
    fake.write(
        "topology.toml",
        "[cluster]\ninterface = \"eth1\"\nproject = \"newbie\"\n\n[[nodes]]\nname = \"worker-0\"\ninternal_ip = \"10.0.2.20\"\n",
    );
    let run = fake.run(&["discover"]);
    assert_code(&run, 0);
    assert_eq!(fake.calls(), ["lxc list --format json --project newbie"]);
    assert!(run.stdout.contains("# Project: newbie.\n"), "{run:?}");
    assert!(run.stdout.contains("project = \"newbie\""), "{run:?}");
    let warning = "these instances are on different subnets (10.0.2.0/24: worker-0; \
                   10.0.9.0/24: other-0); host-gw routes need every node on one shared segment";
    assert!(
        run.stdout.contains(&format!("# WARNING: {warning}")),
        "{run:?}"
    );
    assert!(run.stderr.contains(warning), "{run:?}");
    assert!(
        run.stderr
            .contains("discovering project `newbie`, the project of `topology.toml`"),
        "{run:?}"
    );
    // --project overrides the file.
    fake.reset_counts();
    assert_code(&fake.run(&["discover", "--project", "other"]), 0);
    assert!(
        fake.calls()
            .contains(&"lxc list --format json --project other".to_string()),
        "{:?}",
        fake.calls()
    );
}
