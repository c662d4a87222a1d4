//! End-to-end tests on the network-manager lab (`scripts/lab.sh up --realnode --lab managers`,
//! topology tests/labs/managers.toml): Debian 12 containers with systemd as PID 1 whose eth1
//! NetworkManager (rn-nm-0), netplan with the NetworkManager renderer (rn-nmplan-0) and ifupdown
//! (rn-ifup-0) configure. They prove what docs/persistence.md claims: without `persist` each
//! node is warned about and every removing action of its manager (and a restart) loses the
//! routes; with `persist = "auto"` each node gets its manager's hook, and after every such action
//! and a restart the routes are back without routectl running, `check` passes and `plan` is in
//! sync; a hook edited or deleted by hand is a pending change; turning persist off removes the
//! hooks; a node removed from the topology leaves no route in the others' hooks. The lab must be
//! up (scripts/test.sh brings it up): a missing lab fails these tests, it never skips them.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::systemd_lab::SystemdLab;
use crate::support::{Routectl, assert_code, run_lab_script, run_lab_script_best_effort};

static LAB: Mutex<()> = Mutex::new(());
/// Where the test processes of every checkout on this machine take this lab (the mutex only
/// serializes the tests of one process); a killed test process releases it.
const LAB_LOCK: &str = "/tmp/routectl-test-managers-lab.lock";

const NM: &str = "rn-nm-0";
const NMPLAN: &str = "rn-nmplan-0";
const IFUP: &str = "rn-ifup-0";
const NODES: [&str; 3] = [NM, NMPLAN, IFUP];
/// The routes each node should have (tests/labs/managers.toml).
const ROUTES: usize = 2;
const NM_HOOK: &str = "/etc/NetworkManager/dispatcher.d/90-routectl";
const IFUP_HOOK: &str = "/etc/network/if-up.d/routectl";

fn lab_sh(args: &[&str]) {
    let mut all = args.to_vec();
    all.extend(["--realnode", "--lab", "managers"]);
    run_lab_script("lab.sh", &all);
}

/// What brings this lab up.
const UP: &str = "scripts/lab.sh up --realnode --lab managers";

/// Runs `sh -c SCRIPT` in a node; panics (loudly: the lab is required) on failure.
fn exec(node: &str, script: &str) -> String {
    crate::support::systemd_lab::exec_in(node, script, UP)
}

/// The lab, taken by one test at a time, reset to kernel routes only and no routectl file:
/// tests/labs/managers.toml (`plain`) and the same with `persist = "auto"` (`persisted`).
struct ManagersLab(SystemdLab);

impl std::ops::Deref for ManagersLab {
    type Target = SystemdLab;
    fn deref(&self) -> &SystemdLab {
        &self.0
    }
}

impl ManagersLab {
    fn take() -> ManagersLab {
        let lab = ManagersLab(SystemdLab::take(
            &LAB,
            LAB_LOCK,
            "tests/labs/managers.toml",
            ("10.5.0.0/16", "auto"),
            UP,
        ));
        // Repairs a node a previous test restarted or left half-configured, then resets.
        lab_sh(&["up"]);
        lab_sh(&["reset-routes"]);
        lab
    }

    /// Waits until `node` has all its routes again; returns how long that took.
    fn wait_routes(&self, node: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let n = self.owned(node).len();
            if n == ROUTES {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{node}: only {n} of {ROUTES} routes after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ManagersLab {
    /// Leaves the lab as the next user expects it: no routectl routes, no hooks.
    fn drop(&mut self) {
        run_lab_script_best_effort(
            "lab.sh",
            &["reset-routes", "--realnode", "--lab", "managers"],
        );
    }
}

/// Waits until the node's eth1 holds its internal address again (after an action or a boot).
fn wait_address(node: &str) {
    let ip = match node {
        NM => "10.0.5.30/",
        NMPLAN => "10.0.5.31/",
        _ => "10.0.5.32/",
    };
    let started = Instant::now();
    loop {
        let out = Command::new("lxc")
            .args([
                "exec", node, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth1",
            ])
            .stdin(Stdio::null())
            .output();
        if let Ok(o) = out
            && String::from_utf8_lossy(&o.stdout).contains(ip)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{node}: eth1 has not its address after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The actions of each node's manager that remove routes it did not configure (measured), and
/// a restart of the container.
fn removing_actions(node: &str) -> Vec<&'static str> {
    let mut v = match node {
        NM => vec![
            "nmcli connection up \"$(nmcli -g GENERAL.CONNECTION device show eth1)\" >/dev/null",
            "nmcli networking off && nmcli networking on",
        ],
        NMPLAN => vec![
            "nmcli connection up \"$(nmcli -g GENERAL.CONNECTION device show eth1)\" >/dev/null",
            "nmcli networking off && nmcli networking on",
            "netplan apply 2>/dev/null",
        ],
        _ => vec!["ifdown eth1 && ifup eth1", "systemctl restart networking"],
    };
    v.push("restart");
    v
}

fn act(node: &str, action: &str) {
    if action == "restart" {
        let out = Command::new("lxc")
            .args(["restart", node])
            .stdin(Stdio::null())
            .output()
            .expect("lxc restart");
        assert!(out.status.success(), "lxc restart {node}: {out:?}");
    } else {
        exec(node, action);
    }
    wait_address(node);
}

#[test]
#[ignore = "needs root and the network-manager lab: scripts/test.sh"]
fn without_persist_each_manager_is_warned_about_and_its_actions_lose_the_routes() {
    let lab = ManagersLab::take();
    let show = lab.routectl(&lab.plain, &["show", "-o", "json"]);
    assert_code(&show, 0);
    let j = show.json();
    let names = ["NetworkManager", "netplan/NetworkManager", "ifupdown"];
    let fixes = [
        "\\\"networkmanager\\\"",
        "\\\"networkmanager\\\"",
        "\\\"ifupdown\\\"",
    ];
    for (i, node) in NODES.iter().enumerate() {
        let n = &j["nodes"][i];
        assert_eq!(n["name"], *node);
        assert_eq!(n["manager"]["name"], names[i], "{n}");
        let warnings = n["warnings"].to_string();
        assert!(warnings.contains(fixes[i]), "{warnings}");
        assert!(warnings.contains("\\\"auto\\\""), "{warnings}");
        assert_eq!(
            warnings.contains("netplan apply"),
            *node == NMPLAN,
            "{warnings}"
        );
        assert!(!warnings.contains("reapply"), "{warnings}");
    }
    for node in NODES {
        for action in removing_actions(node) {
            // The previous action may still be settling after the address is back (a manager
            // that flushes once more a moment later): apply until the routes stay a second.
            let stayed = (0..5).any(|_| {
                let apply = lab.routectl(&lab.plain, &["apply", "--auto-approve"]);
                assert_code(&apply, 0);
                std::thread::sleep(Duration::from_secs(1));
                lab.owned(node).len() == ROUTES
            });
            assert!(stayed, "{node}: the routes never stayed before `{action}`");
            act(node, action);
            std::thread::sleep(Duration::from_millis(500));
            assert_eq!(
                lab.owned(node),
                Vec::<String>::new(),
                "{node}: `{action}` kept the routes"
            );
            let plan = lab.routectl(&lab.plain, &["plan", "--detailed-exitcode"]);
            assert_eq!(plan.code, 3, "{plan:?}");
            assert!(
                plan.stdout.contains(&format!("{node}: 2 to add")),
                "{plan:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs root and the network-manager lab: scripts/test.sh"]
fn persist_auto_keeps_the_routes_through_each_removing_action_and_a_restart() {
    let lab = ManagersLab::take();
    let plan = lab.routectl(
        &lab.persisted,
        &["plan", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(plan.code, 3, "{plan:?}");
    let j = plan.json();
    let paths = [NM_HOOK, NM_HOOK, IFUP_HOOK];
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(j["nodes"][i]["persist"]["state"], "create", "{j}");
        assert_eq!(j["nodes"][i]["persist"]["path"], *path, "{j}");
        assert_eq!(
            j["nodes"][i]["persist"]["routes_added"][0]["protocol"], "211",
            "{j}"
        );
        assert_eq!(j["nodes"][i]["warnings"], serde_json::json!([]), "{j}");
    }
    let text = lab.routectl(&lab.persisted, &["plan"]);
    assert!(
        text.stdout.contains(&format!(
            "NetworkManager dispatcher script {NM_HOOK} (create):"
        )),
        "{text:?}"
    );
    assert!(
        text.stdout.contains(&format!("+++ {IFUP_HOOK}")),
        "{text:?}"
    );
    let apply = lab.routectl(&lab.persisted, &["apply", "--auto-approve", "-o", "json"]);
    assert_code(&apply, 0);
    let a = apply.json();
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(a["nodes"][i]["dropin"]["action"], "written", "{a}");
        // The modes and owner the managers require: root, executable, not writable by others.
        let stat = exec(NODES[i], &format!("stat -c '%a %u %g' {path}"));
        assert_eq!(stat.trim(), "755 0 0", "{}: {path}", NODES[i]);
    }
    lab.assert_in_sync(&lab.persisted, "apply");
    crate::access::same_reads(
        routectl::core::topology::TransportKind::Lxc,
        &routectl::core::topology::parse(
            &std::fs::read(&lab.persisted).unwrap(),
            "auto.toml",
            None,
        )
        .unwrap()
        .nodes,
    );

    for node in NODES {
        for action in removing_actions(node) {
            let started = Instant::now();
            act(node, action);
            let took = lab.wait_routes(node, Duration::from_secs(10));
            eprintln!(
                "{node}: `{action}`: every route in place {} ms after the address was back \
                 ({} ms after the action began)",
                took.as_millis(),
                started.elapsed().as_millis()
            );
            lab.assert_in_sync(&lab.persisted, action);
        }
    }
}

#[test]
#[ignore = "needs root and the network-manager lab: scripts/test.sh"]
fn hooks_edited_deleted_turned_off_or_of_a_removed_node_are_pending_changes() {
    let lab = ManagersLab::take();
    assert_code(
        &lab.routectl(&lab.persisted, &["apply", "--auto-approve"]),
        0,
    );
    // Edited by hand: pending (exit 3), shown as a diff, rewritten by apply.
    exec(NM, &format!("sed -i 's/10.0.5.31/10.0.5.99/' {NM_HOOK}"));
    let plan = lab.routectl(&lab.persisted, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 3, "{plan:?}");
    assert!(
        plan.stdout
            .contains("-route replace 10.5.1.0/24 via 10.0.5.99"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("+route replace 10.5.1.0/24 via 10.0.5.31"),
        "{plan:?}"
    );
    // Deleted: pending too.
    exec(IFUP, &format!("rm {IFUP_HOOK}"));
    let plan = lab.routectl(
        &lab.persisted,
        &["plan", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(plan.code, 3, "{plan:?}");
    let j = plan.json();
    assert_eq!(j["nodes"][0]["persist"]["state"], "update", "{j}");
    assert_eq!(j["nodes"][2]["persist"]["state"], "create", "{j}");
    assert_code(
        &lab.routectl(&lab.persisted, &["apply", "--auto-approve"]),
        0,
    );
    lab.assert_in_sync(&lab.persisted, "rewriting the hooks");

    // A node removed from the topology: no route to it stays in any node's hook.
    let text = std::fs::read_to_string(&lab.persisted).unwrap();
    let cut = text.find("[[nodes]]\nname = \"rn-ifup-0\"").unwrap();
    let two = lab.dir.path().join("two.toml");
    std::fs::write(&two, &text[..cut]).unwrap();
    let apply = lab.routectl(&two, &["apply", "--auto-approve", "--allow-mass-delete"]);
    assert_code(&apply, 0);
    for node in [NM, NMPLAN] {
        let hook = exec(node, &format!("cat {NM_HOOK}"));
        assert!(
            !hook.contains("10.5.2.0/24") && !hook.contains("10.0.5.32"),
            "{hook}"
        );
        assert_eq!(lab.owned(node).len(), 1, "{node}");
    }
    let plan = lab.routectl(&two, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan:?}");

    // Persist off: routectl's files go, nothing else in their directories.
    assert_code(&lab.routectl(&lab.plain, &["apply", "--auto-approve"]), 0);
    for (node, path) in [(NM, NM_HOOK), (NMPLAN, NM_HOOK), (IFUP, IFUP_HOOK)] {
        let left = exec(
            node,
            &format!("ls {} ; [ ! -e {path} ] && echo gone", {
                &path[..path.rfind('/').unwrap()]
            }),
        );
        assert!(left.contains("gone"), "{node}: {left}");
    }
    assert!(exec(NM, "ls /etc/NetworkManager/dispatcher.d").contains("01-ifupdown"));
    let plan = lab.routectl(&lab.plain, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan:?}");
}

/// Without persist, `reconcile --watch` puts the routes back after each manager's flush, which
/// sends no route event (the address events do); the interval is long, so only the watch can.
#[test]
#[ignore = "needs root and the network-manager lab: scripts/test.sh"]
fn the_watch_restores_after_each_managers_flush() {
    let lab = ManagersLab::take();
    let mut child = Routectl::new()
        .topology(&lab.plain)
        .lock_file(lab.dir.path().join("lock"))
        .args(["reconcile", "--interval", "10m", "--watch"])
        .spawn_quiet();
    for node in NODES {
        lab.wait_routes(node, Duration::from_secs(30));
    }
    // Let the watches start in every node before the first flush.
    std::thread::sleep(Duration::from_secs(2));
    for (node, action) in [
        (NM, "nmcli networking off && nmcli networking on"),
        (NMPLAN, "netplan apply 2>/dev/null"),
        (IFUP, "ifdown eth1 && ifup eth1"),
    ] {
        let started = Instant::now();
        act(node, action);
        let took = lab.wait_routes(node, Duration::from_secs(15));
        eprintln!(
            "{node}: `{action}`: the watch had every route back {} ms after the address was \
             ({} ms after the action began)",
            took.as_millis(),
            started.elapsed().as_millis()
        );
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
