//! The canary rollout stops a bad topology and rolls out a good one.

use crate::support::assert_code as code;
use crate::support::lab::Lab;

/// `apply --canary`: a mistyped pod CIDR (worker-2's: routes that the kernel takes, to pods that
/// are not there) is caught on the canary: with
/// `--canary-rollback` (from a saved plan) the canary is put back as it was, without it the
/// canary keeps its routes; either way no other node is changed and the failed path is named.
/// The right topology then rolls out everywhere.
pub fn canary_stops_a_bad_topology_and_rolls_out_a_good_one(lab: &dyn Lab) {
    let others = ["controller-0", "worker-1", "worker-2"];
    let before: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    let mistyped = |t: String| t.replace("\"10.1.2.0/24\"", "\"10.1.12.0/24\"");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    code(
        &lab.run_variant(&mistyped, &["plan", "--out", file.to_str().unwrap()]),
        0,
    );
    let failed = lab.run_variant(
        &mistyped,
        &[
            "apply",
            file.to_str().unwrap(),
            "--canary",
            "worker-0",
            "--canary-rollback",
        ],
    );
    code(&failed, 1);
    assert!(
        failed
            .stderr
            .contains("failed path: worker-0 -> worker-2 (10.0.2.20 -> 10.1.12.1)"),
        "{failed:?}"
    );
    assert!(
        failed.stderr.contains("put back as it was: worker-0"),
        "{failed:?}"
    );
    assert!(failed.stdout.contains("Canary FAILED"), "{failed:?}");
    // It failed, why, and that it was rolled back; nothing says "converged".
    assert!(
        failed.stdout.contains(
            "worker-0: canary FAILED: 1 of 2 paths failed; rolled back (2 changes undone)\n  x \
             worker-0 -> worker-2 (10.0.2.20 -> 10.1.12.1): "
        ),
        "{failed:?}"
    );
    assert!(
        failed.stdout.contains(
            "Apply: canary FAILED on worker-0; the rollout stopped and no other node was \
             changed; rolled back: worker-0 ("
        ),
        "{failed:?}"
    );
    assert!(!failed.stdout.contains("converged"), "{failed:?}");
    assert_eq!(lab.table("worker-0"), Vec::<String>::new());
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let kept = lab.run_variant(&mistyped, &["apply", "-y", "--canary", "worker-0"]);
    code(&kept, 1);
    assert!(kept.stderr.contains("worker-0 -> worker-2"), "{kept:?}");
    assert!(
        kept.stdout.contains(
            "worker-0: canary FAILED: 1 of 2 paths failed; keeps its 2 new routes \
             (--canary-rollback puts it back)"
        ),
        "{kept:?}"
    );
    assert!(lab.has("worker-0", "10.1.12.0/24 via 10.0.2.22 dev eth1 proto 211"));
    let after: Vec<Vec<String>> = others.iter().map(|n| lab.table(n)).collect();
    assert_eq!(after, before, "no other node may change");

    let good = lab.run(&["apply", "-y", "--canary", "worker-0", "-o", "json"]);
    code(&good, 0);
    let j = good.json();
    assert_eq!(j["canary"]["passed"], true, "{j:#}");
    assert_eq!(j["canary"]["paths"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["summary"]["nodes_converged"], 4, "{j:#}");
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}
