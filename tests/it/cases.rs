//! Folder cases for the pure core: topology -> desired routes x captured routes -> plan -> text.
//!
//! Every folder `tests/cases/<name>/` holds:
//!
//! - `topology.toml`: the topology;
//! - `<node>.json`, one per node of the topology: the real output of
//!   `ip -N -d -j route show table all` in a network namespace built to reproduce the situation
//!   (`tests/fakes/capture.sh` rebuilds them all, and says how each was made);
//! - `expected.txt`: the text plan (no colour) a careful engineer expects for that situation;
//! - optionally `expected-adopt.txt`: the same plan made with `--adopt`.
//!
//! Each expected file is written and reviewed by hand. When a change of the text format is
//! intended, run `ROUTECTL_BLESS=1 cargo test --test it cases::` to rewrite them from what the code
//! prints, then read every diff in `git diff tests/cases` before keeping it: blessing accepts
//! whatever the code does, bugs included.

use std::fs;
use std::path::{Path, PathBuf};

use routectl::core::plan::{Options, Plan};
use routectl::core::topology;
use routectl::error::NodeError;
use routectl::node::iproute::parse_routes;
use routectl::report::{Style, plan_text};

/// The cases this suite must hold (a folder that disappears is a failure, not a silent pass).
const REQUIRED: &[&str] = &[
    "empty-lab",
    "in-sync",
    "drift",
    "conflict",
    "dual-stack",
    "multipath-owned",
    "other-metric",
    "other-tables",
    "tutorial-loop",
    "tutorial-loop-in-range",
    "tutorial-loop-hard-way",
];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(cases_dir())
        .expect("tests/cases exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn blessing() -> bool {
    std::env::var_os("ROUTECTL_BLESS").is_some_and(|v| v == "1")
}

/// Plans a case folder the way `routectl plan` does, reading each node from its capture.
fn plan_case(dir: &Path, adopt: bool, take_over: bool) -> String {
    let text = fs::read(dir.join("topology.toml")).expect("topology.toml");
    let t = topology::parse(&text, "topology.toml", None)
        .unwrap_or_else(|p| panic!("{}: invalid topology:\n{p}", dir.display()));
    for node in &t.nodes {
        assert!(
            dir.join(format!("{}.json", node.name)).is_file(),
            "{}: no capture for node `{}`",
            dir.display(),
            node.name
        );
    }
    let options = Options {
        adopt,
        take_over,
        only: Vec::new(),
    };
    let plan = Plan::compute(&t, &options, 1, |node| {
        let path = dir.join(format!("{}.json", node.name));
        let bytes = fs::read(&path).map_err(|e| NodeError::Snapshot {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        parse_routes(&bytes).map_err(|error| NodeError::Output {
            argv: path.display().to_string(),
            error,
        })
    });
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let order: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, order, "nodes are planned in topology order");
    let mut text = plan_text(&plan, &Style { color: false });
    if take_over {
        // What apply would run, so that a take-over's exact lines are reviewed too.
        for n in &plan.nodes {
            for line in n.batch_lines(adopt) {
                text.push_str(&format!("# {}: ip {line}\n", n.name));
            }
        }
    }
    text
}

/// Compares (or, when blessing, rewrites) one expected file; returns a failure message.
fn check(dir: &Path, file: &str, actual: &str) -> Option<String> {
    let path = dir.join(file);
    if blessing() {
        fs::write(&path, actual).expect("write expected file");
        return None;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with ROUTECTL_BLESS=1)", path.display()));
    (expected != actual).then(|| {
        format!(
            "{}\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        )
    })
}

#[test]
fn every_case_plans_as_expected() {
    let dirs = case_dirs();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in REQUIRED {
        assert!(
            names.iter().any(|n| n == required),
            "case `{required}` is missing from tests/cases ({names:?})"
        );
    }
    let mut failures = Vec::new();
    for dir in &dirs {
        failures.extend(check(dir, "expected.txt", &plan_case(dir, false, false)));
        if dir.join("expected-take-over.txt").is_file() {
            failures.extend(check(
                dir,
                "expected-take-over.txt",
                &plan_case(dir, true, true),
            ));
        }
        if dir.join("expected-adopt.txt").is_file() {
            failures.extend(check(
                dir,
                "expected-adopt.txt",
                &plan_case(dir, true, false),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case file(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The captures are real `ip -N -d -j` output: every object is a route the parser keeps, and
/// every one carries the keys `-d` and `-N` promise (so a capture made without them, or edited
/// by hand into another shape, is caught here).
#[test]
fn captures_are_complete_numeric_route_lists() {
    for dir in case_dirs() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = fs::read(&path).unwrap();
            let raw: Vec<serde_json::Value> = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let routes = parse_routes(&bytes).unwrap();
            assert_eq!(routes.len(), raw.len(), "{}", path.display());
            for r in &raw {
                for key in ["type", "dst", "table", "protocol", "scope"] {
                    let v = r.get(key).and_then(|v| v.as_str());
                    assert!(v.is_some(), "{}: `{key}` missing in {r}", path.display());
                    if key != "dst" {
                        assert!(
                            v.unwrap().parse::<u32>().is_ok(),
                            "{}: `{key}` is not numeric in {r} (capture with -N)",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
