//! Black-box tests of `routectl discover`, `show` and `check` through a fake `lxc` (and
//! `incus`) on PATH that answers from real captures of the LXD lab (tests/data/lab): `list
//! --format json`, each node's show read and route read, and scripted `ping` results. No root,
//! no LXD needed.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]

mod support;

use std::path::{Path, PathBuf};

use support::{Run, assert_code, routectl_with};

/// The fake `lxc`: `list` prints list.json (or fails as list.status/list.stderr say); `exec NODE
/// -- ip …` prints NODE.show.json for the batch read and NODE.route.json for the plain read
/// (an unknown NODE fails like LXD; a read wrapped in the facts script is answered the same);
/// `exec NODE -- ping … SRC DST` exits with the Nth line of
/// ping.NODE.DST on its Nth call (its last line after that; 1 without the file). Every call is
/// logged.
const FAKE_LXC: &str = r#"#!/bin/sh
d="$FAKE_LXC_DIR"
echo "$(basename "$0") $*" >> "$d/calls.log"
case "$1" in
list)
    if [ -f "$d/list.status" ]; then cat "$d/list.stderr" >&2; exit "$(cat "$d/list.status")"; fi
    cat "$d/list.json"
    ;;
exec)
    node="$2"
    shift 4
    if [ ! -f "$d/$node.show.json" ]; then echo "Error: Instance not found" >&2; exit 1; fi
    # A read wrapped in routectl's facts script (`sh -c SCRIPT sh IFACE ip ...`): answered like
    # the bare `ip` read, without facts.
    if [ "$1" = sh ] && [ "$2" = -c ]; then shift 5; fi
    case "$1" in
    ip)
        case "$*" in
        *-batch*) cat >/dev/null; cat "$d/$node.show.json" ;;
        *"route show table all"*) cat "$d/$node.route.json" ;;
        *) echo "fake lxc: unexpected: $*" >&2; exit 99 ;;
        esac
        ;;
    ping)
        dst="$6"
        count="$d/count.$node.$dst"
        n=$(( $(cat "$count" 2>/dev/null || echo 0) + 1 ))
        echo "$n" > "$count"
        code=$(sed -n "${n}p" "$d/ping.$node.$dst" 2>/dev/null)
        [ -n "$code" ] || code=$(tail -n 1 "$d/ping.$node.$dst" 2>/dev/null)
        [ -n "$code" ] || code=1
        if [ "$code" = 0 ]; then r=1; l=0; else r=0; l=100; fi
        echo "PING $dst ($dst) from $5 : 56(84) bytes of data."
        echo "1 packets transmitted, $r received, $l% packet loss, time 0ms"
        exit "$code"
        ;;
    *) echo "fake lxc: unexpected program $1" >&2; exit 99 ;;
    esac
    ;;
*) echo "fake lxc: unexpected command $1" >&2; exit 99 ;;
esac
"#;

const NODES: [&str; 4] = ["controller-0", "worker-0", "worker-1", "worker-2"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_data(file: &str) -> PathBuf {
    repo().join("tests/data/lab").join(file)
}

/// A directory with the fake `lxc` and `incus`, loaded with the lab's captures.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for prog in ["lxc", "incus"] {
            let p = dir.path().join(prog);
            std::fs::write(&p, FAKE_LXC).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::copy(
            lab_data("lxc-list-with-stopped.json"),
            dir.path().join("list.json"),
        )
        .unwrap();
        for n in NODES {
            for kind in ["show", "route"] {
                let f = format!("{n}.{kind}.json");
                std::fs::copy(lab_data(&f), dir.path().join(&f)).unwrap();
            }
        }
        Fake { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn write(&self, f: &str, text: &str) {
        std::fs::write(self.path(f), text).unwrap();
    }

    /// Runs routectl with the fakes first on PATH.
    fn routectl(&self, topology: &Path, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        routectl_with(
            topology,
            args,
            &[
                ("PATH", &path),
                ("FAKE_LXC_DIR", self.dir.path().to_str().unwrap()),
            ],
        )
    }

    /// Starts the ping scripts from their first line again.
    fn reset_pings(&self) {
        for e in std::fs::read_dir(self.dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("count.")
            {
                std::fs::remove_file(p).unwrap();
            }
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

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
    let fake = Fake::new();
    let run = fake.routectl(&example(), &["discover"]);
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
    assert_code(&fake.routectl(&example(), &["discover", "-o", out_s]), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), run.stdout);
    let again = fake.routectl(&example(), &["discover", "-o", out_s]);
    assert_code(&again, 1);
    assert!(
        again.stderr.contains("exists; refusing to overwrite it"),
        "{again:?}"
    );
    assert_code(
        &fake.routectl(&example(), &["discover", "-o", out_s, "--force"]),
        0,
    );
    let valid = fake.routectl(&out, &["validate"]);
    assert_code(&valid, 0);
    assert!(
        valid.stdout.contains("valid (4 nodes, 9 desired routes"),
        "{valid:?}"
    );
}

#[test]
fn discover_from_incus_or_a_saved_list_and_other_interfaces() {
    let fake = Fake::new();
    let run = fake.routectl(&example(), &["discover", "--from", "incus"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("transport = \"incus\""), "{run:?}");
    assert_eq!(fake.calls(), ["incus list --format json"]);

    // A saved list is read instead of running lxc.
    let saved = fake.path("list.json");
    let run = fake.routectl(
        &example(),
        &["discover", "--from", "lxc", saved.to_str().unwrap()],
    );
    assert_code(&run, 0);
    assert_eq!(fake.calls().len(), 1, "lxc was not run again");
    assert!(run.stdout.contains("from `"), "{run:?}");

    // Nobody has an address on eth9: every running instance is skipped, which is an error.
    let run = fake.routectl(&example(), &["discover", "--interface", "eth9"]);
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("worker-0`: no global address on eth9 (it has addresses on cnio0, eth1)"),
        "{run:?}"
    );
    let run = fake.routectl(&example(), &["discover", "--interface", "eth 9"]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("--interface `eth 9`"), "{run:?}");
}

#[test]
fn discover_names_a_failing_lxc() {
    let fake = Fake::new();
    fake.write("list.status", "1");
    fake.write(
        "list.stderr",
        "Error: LXD unix socket \"/var/lib/lxd/unix.socket\" not accessible\n",
    );
    let run = fake.routectl(&example(), &["discover"]);
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("lxc list --format json")
            && run.stderr.contains("exited with status 1")
            && run.stderr.contains("unix.socket"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
    fake.write("list.json", "not json");
    std::fs::remove_file(fake.path("list.status")).unwrap();
    let run = fake.routectl(&example(), &["discover"]);
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("`lxc list --format json` is not the output of `lxc list --format json`"),
        "{run:?}"
    );
}

#[test]
fn discover_from_kubernetes_file_or_stdin() {
    let fake = Fake::new();
    let nodes = repo().join("tests/data/kubectl-get-nodes.json");
    let run = fake.routectl(
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
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_routectl"));
    let out = cmd
        .args([
            "discover",
            "--from",
            "kubernetes",
            "--transport",
            "incus",
            "-",
        ])
        .stdin(std::fs::File::open(&nodes).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("transport = \"incus\""), "{text}");
    assert_eq!(nodes_of(&text), n);

    let run = fake.routectl(&example(), &["discover", "--from", "kubernetes"]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("kubectl get nodes -o json"), "{run:?}");
}

#[test]
fn show_save_is_what_plan_observed_plans_from_and_a_live_plan_agrees() {
    let fake = Fake::new();
    let topo = fake.path("topology.toml");
    assert_code(
        &fake.routectl(&example(), &["discover", "-o", topo.to_str().unwrap()]),
        0,
    );
    let snap = fake.path("snap");
    let run = fake.routectl(&topo, &["show", "--save", snap.to_str().unwrap()]);
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
    let offline = fake.routectl(
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
    let live = fake.routectl(&topo, &["plan", "--output", "json"]);
    assert_code(&live, 0);
    // The same plan, except that only a live read can tell what manages each interface.
    let without_manager = |mut v: serde_json::Value| {
        for n in v["nodes"].as_array_mut().unwrap() {
            n.as_object_mut().unwrap().remove("manager");
        }
        v
    };
    assert_eq!(offline.json()["nodes"][0]["manager"]["name"], "unknown");
    assert_eq!(
        without_manager(offline.json()),
        without_manager(live.json())
    );
    assert_eq!(offline.json()["summary"]["add"], 9);
    let exit = fake.routectl(
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
    let fake = Fake::new();
    let topo = fake.path("topology.toml");
    let text = std::fs::read_to_string(example()).unwrap()
        + "\n[[nodes]]\nname = \"worker-3\"\ninternal_ip = \"10.0.2.23\"\npod_cidr = \"10.1.3.0/24\"\n";
    std::fs::write(&topo, text).unwrap();
    let snap = fake.path("snap");
    std::fs::create_dir(&snap).unwrap();
    std::fs::write(snap.join("worker-3.json"), "[]\n").unwrap();

    let run = fake.routectl(&topo, &["show", "--save", snap.to_str().unwrap()]);
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

    let j = fake.routectl(&topo, &["show", "--output", "json"]);
    assert_code(&j, 1);
    let j = j.json();
    assert_eq!(j["kind"], "show");
    assert_eq!(j["format_version"], 1);
    assert_eq!(j["nodes"][4]["status"], "error");
    assert_eq!(j["nodes"][1]["status"], "ok");
    assert_eq!(j["summary"]["nodes_unreadable"], 1);

    // --node limits the read.
    let one = fake.routectl(&topo, &["show", "--node", "worker-1"]);
    assert_code(&one, 0);
    assert!(one.stdout.starts_with("worker-1:\n"), "{one:?}");
    let bad = fake.routectl(&topo, &["show", "--node", "worker-9"]);
    assert_code(&bad, 2);
}

#[test]
fn check_retries_once_and_names_an_asymmetric_path() {
    let fake = Fake::new();
    let gw = |i: usize| format!("10.1.{i}.1");
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                fake.write(&format!("ping.worker-{a}.{}", gw(b)), "0\n");
            }
        }
    }
    // worker-2's first ping to worker-0 is lost (neighbour discovery), the second answered;
    // worker-1 never reaches worker-0, though worker-0 reaches worker-1.
    fake.write(&format!("ping.worker-2.{}", gw(0)), "1\n0\n");
    fake.write(&format!("ping.worker-1.{}", gw(0)), "1\n1\n");

    let run = fake.routectl(&example(), &["check"]);
    assert_code(&run, 1);
    assert!(
        run.stdout.contains(
            "asymmetric (IPv4): worker-0 reaches worker-1, but worker-1 does not reach worker-0 back"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "failed: worker-1 -> worker-0 (IPv4, 10.1.1.1 -> 10.1.0.1, 2 pings): 1 packets transmitted, 0 received, 100% packet loss, time 0ms"
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

    fake.reset_pings();
    let j = fake
        .routectl(&example(), &["check", "--output", "json"])
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
    let fake = Fake::new();
    for a in 0..3 {
        for b in 0..3 {
            fake.write(&format!("ping.worker-{a}.10.1.{b}.1"), "0\n");
        }
    }
    let run = fake.routectl(&example(), &["check"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    let one = fake.routectl(
        &example(),
        &["check", "--node", "worker-2", "--output", "json"],
    );
    assert_code(&one, 0);
    assert_eq!(one.json()["summary"]["paths"], 4);
    let md = fake.routectl(&example(), &["check", "--output", "markdown"]);
    assert_code(&md, 0);
    assert!(md.stdout.contains("| `worker-0` | - | ✅ | ✅ |"), "{md:?}");
}
