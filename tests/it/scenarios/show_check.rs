//! `show` marks every route and agrees with the plan, `show --save` round-trips through
//! `plan --observed`, `check` passes after apply and names what is wrong.

use std::collections::BTreeSet;

use crate::support::assert_code as code;
use crate::support::lab::Lab;
use crate::support::without_manager;

use super::*;

/// `show` of the lab before any apply: one command per node, every desired route missing,
/// every address where the topology says.
fn assert_show_before_apply(lab: &dyn Lab) {
    let before = lab.run(&["show", "--output", "json", "-v"]);
    code(&before, 0);
    assert!(
        before.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {before:?}"
    );
    let j = before.json();
    assert_eq!(
        (j["format_version"].as_u64(), j["kind"].as_str()),
        (Some(1), Some("show"))
    );
    assert_eq!(j["summary"]["desired_missing"], 9, "{before:?}");
    assert_eq!(j["summary"]["owned"], 0);
    assert_eq!(j["summary"]["warnings"], 0, "{before:?}");
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
}

/// `show` marks every route (owned, foreign, kernel, desired-missing), checks each node's
/// addresses, reads each node with one command, and calls missing exactly what plan adds.
pub fn show_marks_every_route_and_agrees_with_the_plan(lab: &dyn Lab) {
    assert_show_before_apply(lab);

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.ip(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    lab.ip(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    let run = lab.run(&["show"]);
    code(&run, 0);
    for line in [
        show_header(lab, "worker-2").as_str(),
        "  owned           10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211\n",
        "  owned           10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211  (not desired: plan deletes it)\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  kernel          10.1.2.0/24 dev cnio0 proto kernel\n",
        "  ok: internal_ip 10.0.2.22 is on eth1\n",
        "  ok: pod gateway 10.1.2.1 (10.1.2.0/24) is on cnio0\n",
        "Show: 4 nodes; 10 owned, 1 foreign,",
        " 0 desired-missing routes; 0 warnings.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run:?}");
    }

    // What show calls missing is what plan adds.
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    let text = lab.run(&["show", "--node", "worker-2", "--node", "worker-0"]);
    code(&text, 0);
    for line in [
        show_header(lab, "worker-0").as_str(),
        "  desired-missing 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "  foreign         192.168.77.0/24 via 10.0.2.20 dev eth1 proto boot\n",
        "  owned           10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211\n",
        "(not shown, --node: controller-0, worker-1)",
    ] {
        assert!(text.stdout.contains(line), "{line:?} missing:\n{text:?}");
    }
    let show = lab
        .run(&["show", "--node", "worker-0", "--output", "json"])
        .json();
    let missing: Vec<&serde_json::Value> = show["nodes"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mark"] == "desired-missing")
        .collect();
    let texts: Vec<&str> = missing
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"]);
    let plan = lab
        .run(&["plan", "--node", "worker-0", "--output", "json"])
        .json();
    let change = &plan["nodes"][0]["changes"][0];
    assert_eq!(change["action"], "add");
    for key in ["dst", "gateway", "dev", "protocol", "metric"] {
        assert_eq!(
            change[key], missing[0][key],
            "{key}: {change} / {}",
            missing[0]
        );
    }
}

/// `show --save DIR` writes exactly each node's route read, and `plan --observed DIR` plans
/// from it what a live plan plans, also when no node can be reached any more.
pub fn show_save_round_trips_through_plan_observed(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.delete_route("worker-0", "10.1.1.0/24 proto 211");
    lab.ip(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip(
        "controller-0",
        "route add 10.1.5.0/24 via 10.0.2.21 dev eth1",
    );

    let dir = lab.dir().join("snapshot");
    let dir_s = dir.to_str().unwrap();
    let run = lab.run(&["show", "--save", dir_s, "-v"]);
    code(&run, 0);
    assert!(
        run.stderr.contains("read 4 nodes with 4 node commands"),
        "one command per node: {run:?}"
    );
    for n in ["controller-0", "worker-0", "worker-1", "worker-2"] {
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(dir.join(format!("{n}.json"))).unwrap()),
            String::from_utf8_lossy(&lab.raw_routes(n)),
            "{n}'s snapshot is exactly the route read"
        );
    }
    let live = lab.run(&["plan", "--output", "json"]);
    let offline = lab.run(&["plan", "--observed", dir_s, "--output", "json"]);
    code(&live, 0);
    code(&offline, 0);
    // The same plan, except that only a live read tells what manages each interface and how
    // each node was reached.
    assert_eq!(offline.json()["nodes"][0]["manager"]["name"], "unknown");
    assert_eq!(
        without_manager(crate::support::without_access(live.json())),
        without_manager(offline.json())
    );
    assert_eq!(offline.json()["summary"]["add"], 1);
    assert_eq!(offline.json()["summary"]["delete"], 1);
    code(
        &lab.run(&["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
    // Offline means offline: with every node unreachable, the snapshot still plans.
    let gone = lab.unreachable_variant();
    code(&lab.run_file(&gone, &["plan", "--detailed-exitcode"]), 1);
    code(
        &lab.run_file(&gone, &["plan", "--observed", dir_s, "--detailed-exitcode"]),
        3,
    );
}

/// `check` pings every pair of pod gateways from inside the source node: all fail before
/// apply, all pass after; a deleted route fails exactly its pair, both ways, with a hint
/// naming the missing route; the tests' own pings agree; repaired, it passes again.
pub fn check_passes_after_apply_and_names_the_pair_of_a_deleted_route(lab: &dyn Lab) {
    let before = lab.run(&["check"]);
    code(&before, 1);
    assert!(
        before
            .stdout
            .contains("Check: 0 of 6 paths pass, 6 failed."),
        "{before:?}"
    );
    let before = lab.run(&["check", "--output", "json"]);
    code(&before, 1);
    assert_eq!(before.json()["summary"]["failed"], 6, "{before:?}");

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    let run = lab.run(&["check", "-v"]);
    code(&run, 0);
    assert!(run.stdout.contains("Check: 6 of 6 paths pass."), "{run:?}");
    assert!(
        run.stdout.contains("  worker-0  -         ok        ok\n"),
        "{run:?}"
    );
    // Each ping runs inside its source node.
    let ping = verbose_line(lab, "worker-1", "ping -c1 -W1 -I 10.1.1.1 10.1.2.1");
    assert!(run.stderr.contains(&ping), "{ping:?} missing: {run:?}");

    lab.delete_route("worker-0", "10.1.2.0/24 proto 211");
    let run = lab.run(&["check"]);
    code(&run, 1);
    assert!(
        run.stdout.contains(
            "failed: worker-0 -> worker-2 (IPv4, 10.1.0.1 -> 10.1.2.1; 2 tries, one packet each)"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  hint: worker-0 has no route to 10.1.2.0/24 (pod_cidr of worker-2)\n"),
        "{run:?}"
    );
    let j = lab.run(&["check", "--output", "json"]);
    code(&j, 1);
    let j = j.json();
    assert_eq!(j["kind"], "check");
    let expected: BTreeSet<String> = ["worker-0 -> worker-2", "worker-2 -> worker-0"]
        .map(String::from)
        .into();
    assert_eq!(failed(&j), expected);
    // The tests' own pings agree.
    let own: BTreeSet<String> = lab
        .broken_paths()
        .iter()
        .map(|p| p.split(" (").next().unwrap().to_string())
        .collect();
    assert_eq!(own, expected);
    // Repaired, it passes again.
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    code(&lab.run(&["check"]), 0);

    // Another pair: every hint names the one missing route; --node limits the matrix.
    lab.delete_route("worker-1", "10.1.2.0/24 proto 211");
    let run = lab.run(&["check", "--output", "json"]);
    code(&run, 1);
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
    let text = lab.run(&["check", "--node", "worker-1"]);
    code(&text, 1);
    assert!(
        text.stdout
            .contains("  worker-1  ok        -         FAIL\n"),
        "{text:?}"
    );
}
