//! Saved plans: an edited one is refused.

use super::*;

fn edited(plan: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap();
    edit(&mut v);
    let p = plan.with_extension(format!("{}.json", rand_suffix()));
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    p
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Copies of the saved plan `plan` (of the lab whose topology is `text`), each edited in one
/// way a saved plan must be refused for.
fn edited_copies(plan: &Path, text: &str) -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "topology text",
            edited(plan, |v| {
                v["saved"]["topology_text"] = text.replace("10.1.1.0/24", "10.1.77.0/24").into();
            }),
        ),
        (
            "no fingerprints",
            edited(plan, |v| v["saved"]["fingerprints"] = serde_json::json!([])),
        ),
        (
            "adopt",
            edited(plan, |v| {
                v["saved"]["adopt"] = true.into();
                v["adopt"] = true.into();
            }),
        ),
        (
            "nodes",
            edited(plan, |v| {
                v["saved"]["nodes"] = serde_json::json!(["worker-0", "worker-1"]);
                let fp = v["saved"]["fingerprints"][0][1].clone();
                v["saved"]["fingerprints"] =
                    serde_json::json!([["worker-0", fp], ["worker-1", fp]]);
            }),
        ),
        (
            "changes",
            edited(plan, |v| {
                v["nodes"][0]["changes"].as_array_mut().unwrap().pop();
            }),
        ),
    ]
}

#[test]
#[ignore = "needs root: network namespaces"]
fn an_edited_saved_plan_is_refused() {
    let lab = NetnsLab::seed();
    // A foreign route identical to a desired one: adoptable only with --adopt.
    lab.ip("worker-0", "route add 10.1.2.0/24 via 10.0.2.22 dev eth1");
    let plan = lab.dir().join("plan.json");
    let lock = lab.dir().join("lock");
    let lock_s = lock.to_str().unwrap().to_string();
    let rc = |args: &[&str]| {
        let mut all = vec!["--lock-file", lock_s.as_str()];
        all.extend_from_slice(args);
        run(&mut cmd(&all))
    };
    let r = rc(&[
        "-f",
        lab.path.to_str().unwrap(),
        "plan",
        "--node",
        "worker-0",
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = lab.topology_text();
    let cases = edited_copies(&plan, &text);
    // A duplicate key: the reviewer sees the first value, serde_json would apply the last.
    let dup = lab.dir().join("dup.json");
    let raw = std::fs::read_to_string(&plan).unwrap();
    // Saved plans are compact JSON.
    assert!(raw.contains("\"adopt\":false,"), "{raw}");
    std::fs::write(
        &dup,
        raw.replacen("\"adopt\":false,", "\"adopt\":false,\"adopt\":true,", 1),
    )
    .unwrap();
    let mut cases = cases;
    cases.push(("duplicate key", dup));
    for (what, file) in &cases {
        let r = rc(&["apply", file.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(
            r.stderr.contains("edited")
                || r.stderr.contains("duplicate key")
                || r.stderr.contains("not the ones a fresh plan makes")
                || r.stderr.contains("it does not plan")
                || r.stderr.contains("the saved plan is stale"),
            "{what}: {r:?}"
        );
        assert_eq!(lab.table("worker-0").len(), 1, "{what}: routes changed");
        assert!(lab.table("worker-1").is_empty(), "{what}: routes changed");
    }
    // The plan as made applies.
    let r = rc(&["apply", plan.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1"
        ],
        "the reviewed plan adopts nothing"
    );
}
