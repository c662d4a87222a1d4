//! End-to-end tests over ssh against real sshd (scripts/lab-ssh.sh: the upstream tutorial's
//! machines as network namespaces). They need root and the lab, so they are ignored by a plain
//! `cargo test`; scripts/test.sh installs openssh and runs them with `--include-ignored`.

use crate::support::assert_code;
use crate::support::ssh::{MACHINES, STATE, SshLab, lab_script};

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn from_machines_txt_to_converged_verified_routes_with_one_handshake_per_node() {
    let lab = SshLab::take();
    let text = std::fs::read_to_string(&lab.topology).unwrap();
    assert!(text.contains("transport = \"ssh\""), "{text}");
    assert!(
        !text.contains("interface ="),
        "no device is written: {text}"
    );

    let before: Vec<usize> = MACHINES.iter().map(|m| lab.logins(m.0)).collect();
    let plan = lab.routectl(&["plan", "--detailed-exitcode"]);
    assert_code(&plan, 3);
    assert!(
        plan.stdout
            .contains("Plan: 4 to add, 0 to replace, 0 to delete on 3 of 3 nodes."),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("+ 10.3.1.0/24 via 10.0.4.21 proto 211"),
        "routes name no device: {plan:?}"
    );
    // Pods cannot reach each other yet.
    assert!(!lab.ping("node-0", "10.3.0.1", "10.3.1.1"));

    let apply = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&apply, 0);
    let j = apply.json();
    assert_eq!(j["summary"]["nodes_converged"], 3, "{apply:?}");
    assert_eq!(j["summary"]["operations_applied"], 4, "{apply:?}");
    // The kernel picked the device; routectl's routes carry its protocol.
    assert_eq!(
        lab.table("server"),
        [
            "10.3.0.0/24 via 10.0.4.20 dev ens160 proto 211",
            "10.3.1.0/24 via 10.0.4.21 dev ens160 proto 211",
        ]
    );
    assert_eq!(
        lab.table("node-0"),
        ["10.3.1.0/24 via 10.0.4.21 dev ens160 proto 211"]
    );
    assert!(lab.ping("node-0", "10.3.0.1", "10.3.1.1"));
    assert!(lab.ping("node-1", "10.3.1.1", "10.3.0.1"));

    // Verified, in sync, and the check's pings pass over ssh too.
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
    let check = lab.routectl(&["check"]);
    assert_code(&check, 0);
    assert!(
        check.stdout.contains("Check: 2 of 2 paths pass."),
        "{check:?}"
    );
    let show = lab.routectl(&["show"]);
    assert_code(&show, 0);
    assert!(
        show.stdout
            .contains("owned           10.3.1.0/24 via 10.0.4.21 dev ens160 proto 211"),
        "{show:?}"
    );

    // plan, apply, plan, check, show: one TCP connection (handshake) per node, all reused.
    let after: Vec<usize> = MACHINES.iter().map(|m| lab.logins(m.0)).collect();
    let new: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(new, [1, 1, 1], "logins per node (server, node-0, node-1)");
    let sockets = std::fs::read_dir(lab.runtime().join("ssh"))
        .unwrap()
        .count();
    assert_eq!(sockets, 3, "one control socket per node");
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn drift_over_ssh_is_repaired_and_a_dev_less_route_on_any_device_is_in_sync() {
    let lab = SshLab::take();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // A route lost (reboot) and an owned route pointing elsewhere.
    let ip = |ns: &str, args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(["-n", ns])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success());
    };
    ip("ssh-server", &["route", "del", "10.3.0.0/24"]);
    ip(
        "ssh-node-0",
        &[
            "route",
            "replace",
            "10.3.1.0/24",
            "via",
            "10.0.4.10",
            "proto",
            "211",
        ],
    );
    let plan = lab.routectl(&["plan", "--detailed-exitcode"]);
    assert_code(&plan, 3);
    assert!(
        plan.stdout.contains("Plan: 1 to add, 1 to replace"),
        "{plan:?}"
    );
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
    assert_eq!(
        lab.table("node-0"),
        ["10.3.1.0/24 via 10.0.4.21 dev ens160 proto 211"]
    );
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn a_node_whose_sshd_is_stopped_is_unreachable_and_nothing_is_deleted() {
    let lab = SshLab::take();
    assert_code(&lab.routectl(&["apply", "--auto-approve"]), 0);
    // server's sshd is down: server is unknown, so nothing is planned or written there, and
    // its routes stay as they are.
    lab_script(&["stop-sshd", "server"]);
    // End the masters, so the stopped sshd is really asked (an established master would
    // still reach the machine: its connection outlives the listener).
    drop_masters(&lab);
    let run = lab.routectl(&["apply", "--auto-approve", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    let server = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "server")
        .unwrap()
        .clone();
    assert_eq!(server["status"], "unreachable", "{run:?}");
    assert_eq!(server["error"]["kind"], "ssh_failed", "{run:?}");
    assert!(
        server["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing accepts ssh connections there (sshd down?)"),
        "{run:?}"
    );
    assert_eq!(j["summary"]["nodes_in_sync"], 2, "{run:?}");
    // Its routes are as they were.
    assert_eq!(lab.table("server").len(), 2);
    lab_script(&["start-sshd", "server"]);
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
}

fn drop_masters(lab: &SshLab) {
    let dir = lab.runtime().join("ssh");
    for (_, _, addr, _) in MACHINES {
        let _ = std::process::Command::new("ssh")
            .args(["-F", &format!("{STATE}/ssh_config")])
            .args(["-o", &format!("ControlPath={}/%C", dir.display())])
            .args(["-O", "exit", addr])
            .output();
    }
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn an_unreachable_address_is_an_error_for_that_node_only() {
    let lab = SshLab::take();
    // node-1 is given an address where nothing answers (a free address of the lab segment).
    let topo = lab.variant("unreachable.toml", |t| {
        t.replace(
            "name = \"node-1\"\n",
            "name = \"node-1\"\naddress = \"root@10.0.4.99\"\n",
        )
    });
    let started = std::time::Instant::now();
    let run = lab.routectl_file(&topo, &["--timeout", "4s", "plan", "--output", "json"]);
    assert_code(&run, 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let j = run.json();
    let n1 = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node-1")
        .unwrap()
        .clone();
    let kind = n1["error"]["kind"].as_str().unwrap_or("");
    assert!(kind == "ssh_failed" || kind == "timeout", "{run:?}");
    assert_eq!(j["summary"]["nodes_unreachable"], 1, "{run:?}");
    // The others are planned as usual.
    assert_eq!(j["summary"]["add"], 3, "{run:?}");
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn a_changed_host_key_is_refused_clearly_and_never_accepted() {
    let lab = SshLab::take();
    // A known_hosts in which node-0's key is another key: what a client sees when the machine
    // (or someone in its place) presents a key that changed.
    let other = lab.dir.path().join("other_key");
    let st = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            other.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let known = std::fs::read_to_string(format!("{STATE}/known_hosts")).unwrap();
    let changed: String = known
        .lines()
        .map(|l| {
            if l.starts_with("10.0.4.20,") {
                format!(
                    "10.0.4.20,node-0,node-0.kubernetes.local {}\n",
                    other_key.join(" ")
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let kh = lab.dir.path().join("known_hosts");
    std::fs::write(&kh, changed).unwrap();
    // The lab's ssh_config with this known_hosts, given relative to the topology file.
    let cfg = std::fs::read_to_string(format!("{STATE}/ssh_config"))
        .unwrap()
        .replace(&format!("{STATE}/known_hosts"), kh.to_str().unwrap());
    std::fs::write(lab.dir.path().join("ssh_config"), cfg).unwrap();
    let topo = lab.variant("changed-key.toml", |t| {
        t.replace(
            &format!("ssh_config = \"{STATE}/ssh_config\""),
            "ssh_config = \"ssh_config\"",
        )
    });
    let run = lab.routectl_file(&topo, &["apply", "--auto-approve", "--output", "json"]);
    assert_code(&run, 1);
    let j = run.json();
    let n0 = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node-0")
        .unwrap()
        .clone();
    assert_eq!(n0["status"], "unreachable", "{run:?}");
    assert_eq!(n0["error"]["kind"], "ssh_host_key", "{run:?}");
    let msg = n0["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the node's host key is not the one in known_hosts")
            && msg.contains("routectl never accepts a changed key")
            && msg.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{msg}"
    );
    // Nothing was written to node-0, the others converged, and known_hosts is unchanged.
    assert!(lab.table("node-0").is_empty());
    assert_eq!(lab.table("server").len(), 2);
    assert!(std::fs::read_to_string(&kh).unwrap().contains(other_key[1]));
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn a_runtime_directory_of_someone_else_or_a_symlink_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let lab = SshLab::take();
    let base = lab.dir.path();
    let plan = |rt: &std::path::Path| {
        crate::support::ssh::routectl_with(
            &lab.topology,
            &["plan"],
            &[("ROUTECTL_RUNTIME_DIR", rt.to_str().unwrap())],
        )
    };
    let real = base.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = base.join("link");
    symlink(&real, &link).unwrap();
    let run = plan(&link);
    assert_code(&run, 1);
    assert!(run.stderr.contains("is a symlink"), "{run:?}");

    let foreign = base.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let run = plan(&foreign);
    assert_code(&run, 1);
    assert!(run.stderr.contains("is owned by uid 65534"), "{run:?}");

    let open = base.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = plan(&open);
    assert_code(&run, 1);
    assert!(run.stderr.contains("has mode 0777"), "{run:?}");
    // Refused before any node was asked.
    assert!(!run.stdout.contains("to add"), "{run:?}");
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn discover_refuses_malformed_machines_files_with_the_line() {
    let lab = SshLab::take();
    let bad = lab.dir.path().join("machines.txt");
    std::fs::write(
        &bad,
        "10.0.4.10 server.kubernetes.local server\n10.0.4.20 node-0.kubernetes.local node-0 10.3.0.1/24\n",
    )
    .unwrap();
    let run = lab.routectl(&["discover", "--from", "machines", bad.to_str().unwrap()]);
    assert_code(&run, 1);
    assert!(
        run.stderr.contains(
            "is not a machines file (`IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]` per line): line 2: pod subnet `10.3.0.1/24` has host bits set (did you mean 10.3.0.0/24?)"
        ),
        "{run:?}"
    );
    assert!(run.stdout.is_empty());
    let run = lab.routectl(&["discover", "--from", "machines"]);
    assert_code(&run, 2);
}

#[test]
#[ignore = "needs root and the SSH lab (scripts/test.sh brings it up and runs these)"]
fn a_saved_plan_applies_over_ssh_under_the_lock() {
    let lab = SshLab::take();
    let saved = lab.dir.path().join("plan.json");
    assert_code(
        &lab.routectl(&["plan", "--out", saved.to_str().unwrap()]),
        0,
    );
    let lock = lab.dir.path().join("lock");
    let run = lab.routectl(&[
        "--lock-file",
        lock.to_str().unwrap(),
        "apply",
        saved.to_str().unwrap(),
        "--auto-approve",
    ]);
    assert_code(&run, 0);
    assert_code(&lab.routectl(&["plan", "--detailed-exitcode"]), 0);
    // reconcile --once over ssh, too.
    assert_code(&lab.routectl(&["reconcile", "--once"]), 0);
}
