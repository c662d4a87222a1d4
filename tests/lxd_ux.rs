//! End-to-end tests of `discover`, `show` and `check` against the real LXD lab of
//! topology.example.toml (controller-0 and worker-0/1/2, eth1 on a private bridge, cnio0 with
//! the pod gateway). They need the lab, so they are ignored by a plain `cargo test`; the test
//! script brings the lab up and runs them with `--include-ignored`. Without `lxc` or the lab
//! they fail, loudly. Each test takes the lab alone, starts from no routes but the kernel's and
//! leaves it that way.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use support::{Run, assert_code, routectl_with};

static LAB: Mutex<()> = Mutex::new(());

const NODES: [&str; 4] = ["controller-0", "worker-0", "worker-1", "worker-2"];

/// Runs `lxc ARGS` and returns stdout; panics when lxc is missing or fails.
fn lxc(args: &[&str]) -> String {
    let out = Command::new("lxc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lxc {args:?} ({e}): these tests need the LXD lab and its lxc client")
        });
    assert!(
        out.status.success(),
        "lxc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab, held by one test at a time; its routes are reset when taken and when dropped.
struct Lab {
    dir: tempfile::TempDir,
    _guard: MutexGuard<'static, ()>,
}

impl Lab {
    fn take() -> Lab {
        let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
            _guard: guard,
        };
        for n in NODES {
            let state = lxc(&["list", &format!("^{n}$"), "--format", "csv", "-c", "s"]);
            assert_eq!(
                state.trim(),
                "RUNNING",
                "{n} is not running: bring the lab up (scripts/lab.sh up)"
            );
        }
        lab.reset();
        lab
    }

    /// Removes every route of table main the kernel did not make, on every node.
    fn reset(&self) {
        const FLUSH: &str = "for f in -4 -6; do for p in 211 boot static; do \
                             ip $f route flush table main proto $p || exit 1; done; done";
        for n in NODES {
            lxc(&["exec", n, "--", "sh", "-c", FLUSH]);
        }
    }

    fn ip(&self, node: &str, args: &str) {
        let mut argv = vec!["exec", node, "--", "ip"];
        argv.extend(args.split(' '));
        lxc(&argv);
    }

    fn example(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("topology.example.toml")
    }

    /// Runs routectl with a topology and a private lock file.
    fn routectl_file(&self, topology: &Path, args: &[&str]) -> Run {
        let lock = self.dir.path().join("routectl.lock");
        let mut all = vec!["--lock-file", lock.to_str().unwrap()];
        all.extend_from_slice(args);
        routectl_with(topology, &all, &[])
    }

    fn routectl(&self, args: &[&str]) -> Run {
        self.routectl_file(&self.example(), args)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.reset();
    }
}

fn topology(text: &str) -> routectl::core::topology::Topology {
    routectl::core::topology::parse(text.as_bytes(), "t.toml", None)
        .unwrap_or_else(|p| panic!("{p}\n{text}"))
}

/// What `lxc list --format json` prints, kept to this lab's containers (marked
/// user.routectl-lab=true): the daemon also holds the real-node lab of `scripts/lab.sh
/// --realnode`, which `discover` would otherwise find too.
fn this_labs_list(lab: &Lab) -> PathBuf {
    let listed: serde_json::Value =
        serde_json::from_str(&lxc(&["list", "--format", "json"])).unwrap();
    let ours: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["config"]["user.routectl-lab"] == "true")
        .collect();
    let list = lab.dir.path().join("lxc-list.json");
    std::fs::write(&list, serde_json::to_string(&ours).unwrap()).unwrap();
    list
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh runs it)"]
fn discover_from_lxc_reproduces_the_example_topology() {
    let lab = Lab::take();
    let list = this_labs_list(&lab);
    let run = lab.routectl(&["discover", "--from", "lxc", list.to_str().unwrap()]);
    assert_code(&run, 0);
    let found = topology(&run.stdout);
    let example = topology(&std::fs::read_to_string(lab.example()).unwrap());
    let strip = |t: &routectl::core::topology::Topology| -> Vec<String> {
        t.nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {} {} {:?} {:?}",
                    n.name, n.instance, n.interface, n.internal_ips, n.pod_cidrs
                )
            })
            .collect()
    };
    assert_eq!(strip(&found), strip(&example));
    assert_eq!(found.cluster, example.cluster);

    // It validates and plans exactly like the example.
    let file = lab.dir.path().join("discovered.toml");
    std::fs::write(&file, &run.stdout).unwrap();
    assert_code(&lab.routectl_file(&file, &["validate"]), 0);
    let mine = lab
        .routectl_file(&file, &["plan", "--output", "json"])
        .json();
    let theirs = lab.routectl(&["plan", "--output", "json"]).json();
    assert_eq!(mine["nodes"], theirs["nodes"]);
    assert_eq!(mine["summary"]["add"], 9);
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh runs it)"]
fn show_on_the_lab_marks_routes_checks_addresses_and_saves_for_plan() {
    let lab = Lab::take();
    let run = lab.routectl(&["show", "--output", "json", "-v"]);
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {run:?}"
    );
    let j = run.json();
    assert_eq!(j["summary"]["desired_missing"], 9, "{run:?}");
    assert_eq!(j["summary"]["warnings"], 0, "{run:?}");
    for n in j["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "ok", "{n}");
        assert!(
            n["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true),
            "{n}"
        );
    }
    // controller-0 has only its internal IP to check; workers also their pod gateway.
    assert_eq!(j["nodes"][0]["addresses"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["nodes"][3]["addresses"][1]["found"][0]["interface"],
        "cnio0"
    );

    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");
    lab.ip(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    let text = lab.routectl(&["show", "--node", "worker-2", "--node", "worker-0"]);
    assert_code(&text, 0);
    for line in [
        "worker-0:\n",
        "  desired-missing 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  owned           10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "(not shown, --node: controller-0, worker-1)",
    ] {
        assert!(text.stdout.contains(line), "{line:?} missing:\n{text:?}");
    }

    let snap = lab.dir.path().join("snapshot");
    let snap_s = snap.to_str().unwrap();
    assert_code(&lab.routectl(&["show", "--save", snap_s]), 0);
    let live = lab.routectl(&["plan", "--output", "json"]);
    let offline = lab.routectl(&["plan", "--observed", snap_s, "--output", "json"]);
    assert_code(&offline, 0);
    // The same plan, except that only a live read tells what manages each interface.
    let without_manager = |mut v: serde_json::Value| {
        for n in v["nodes"].as_array_mut().unwrap() {
            n.as_object_mut().unwrap().remove("manager");
        }
        v
    };
    assert_eq!(live.json()["nodes"][0]["manager"]["name"], "none");
    assert_eq!(
        without_manager(offline.json()),
        without_manager(live.json())
    );
    assert_eq!(offline.json()["summary"]["add"], 1);
    for n in NODES {
        let saved = std::fs::read(snap.join(format!("{n}.json"))).unwrap();
        let now = lxc(&[
            "exec", n, "--", "ip", "-N", "-d", "-j", "route", "show", "table", "all",
        ]);
        assert_eq!(String::from_utf8_lossy(&saved), now, "{n}");
    }
}

/// The failed paths of a check, as `from -> to`.
fn failed(j: &serde_json::Value) -> BTreeSet<String> {
    j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .map(|p| {
            format!(
                "{} -> {}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh runs it)"]
fn check_on_the_lab_passes_after_apply_and_names_the_pair_of_a_deleted_route() {
    let lab = Lab::take();
    let before = lab.routectl(&["check", "--output", "json"]);
    assert_code(&before, 1);
    assert_eq!(before.json()["summary"]["failed"], 6, "{before:?}");

    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    let run = lab.routectl(&["check", "-v"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    // Three reads and six pings, each inside its source container.
    assert!(
        run.stderr.contains(
            "+ lxc exec worker-1 --force-noninteractive -- ping -c1 -W1 -I 10.1.1.1 10.1.2.1"
        ),
        "{run:?}"
    );

    lab.ip("worker-1", "route del 10.1.2.0/24 proto 211");
    let run = lab.routectl(&["check", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    let expected: BTreeSet<String> = ["worker-1 -> worker-2", "worker-2 -> worker-1"]
        .map(String::from)
        .into();
    assert_eq!(failed(&j), expected, "{run:?}");
    let hints = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .flat_map(|p| p["hints"].as_array().unwrap().iter())
        .map(|h| h.as_str().unwrap())
        .collect::<BTreeSet<_>>();
    assert_eq!(
        hints,
        ["worker-1 has no route to 10.1.2.0/24 (pod_cidr of worker-2)"].into(),
        "{run:?}"
    );
    let text = lab.routectl(&["check", "--node", "worker-1"]);
    assert_code(&text, 1);
    assert!(
        text.stdout
            .contains("  worker-1  ok        -         FAIL\n"),
        "{text:?}"
    );
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh runs it)"]
fn the_guide_from_the_tutorial_works_on_the_lab() {
    // docs/guide-from-the-tutorial.md, step by step.
    let lab = Lab::take();
    // The tutorial's hand-made routes (protocol boot) on every node.
    let pods = [
        ("10.1.0.0/24", "10.0.2.20"),
        ("10.1.1.0/24", "10.0.2.21"),
        ("10.1.2.0/24", "10.0.2.22"),
    ];
    for (i, n) in NODES.iter().enumerate() {
        for (k, (cidr, via)) in pods.iter().enumerate() {
            if i != k + 1 {
                lab.ip(n, &format!("route add {cidr} via {via} dev eth1"));
            }
        }
    }
    let topo = lab.dir.path().join("topology.toml");
    let topo_s = topo.to_str().unwrap();
    let list = this_labs_list(&lab);
    assert_code(
        &lab.routectl(&[
            "discover",
            "--from",
            "lxc",
            list.to_str().unwrap(),
            "-o",
            topo_s,
        ]),
        0,
    );
    let run = lab.routectl_file(&topo, &["validate"]);
    assert_code(&run, 0);
    // Identical hand-made routes are not pending changes: the plan is empty but says so …
    let plan = lab.routectl_file(&topo, &["plan", "--detailed-exitcode"]);
    assert_code(&plan, 0);
    assert!(
        plan.stdout.contains(
            "Plan: 0 to add, 0 to replace, 0 to delete, 9 adoptable with --adopt on 0 of 4 nodes."
        ),
        "{plan:?}"
    );
    // … and taking them over is.
    let adopt = lab.routectl_file(&topo, &["plan", "--adopt", "--detailed-exitcode"]);
    assert_code(&adopt, 3);
    assert!(adopt.stdout.contains("9 to adopt"), "{adopt:?}");
    assert_code(
        &lab.routectl_file(&topo, &["apply", "--adopt", "--auto-approve"]),
        0,
    );
    let plan = lab.routectl_file(&topo, &["plan", "--detailed-exitcode"]);
    assert_code(&plan, 0);
    let md = lab.routectl_file(&topo, &["plan", "--output", "markdown"]);
    assert_code(&md, 0);
    assert!(md.stdout.starts_with("### routectl plan for "), "{md:?}");
    assert_code(&lab.routectl_file(&topo, &["apply", "--auto-approve"]), 0);
    assert_code(&lab.routectl_file(&topo, &["check"]), 0);
    let show = lab
        .routectl_file(&topo, &["show", "--output", "json"])
        .json();
    assert_eq!(show["summary"]["owned"], 9);
    assert_eq!(show["summary"]["foreign"], 0);
}
