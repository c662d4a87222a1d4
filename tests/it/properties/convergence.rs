//! The properties, checked over generated cases: plan + apply converge safely, and the
//! generator is worth its cases.

use std::collections::BTreeMap;

use crate::support::model::{Call, KRoute, MAIN, Model, Node};
use routectl::core::change::Action;
use routectl::core::plan::{Options, Plan};
use routectl::core::topology::{self, Topology};
use routectl::node::apply::{self, Outcome};
use routectl::node::observe;

use super::*;

fn owned(r: &KRoute, protocol: u8) -> bool {
    r.table == MAIN && r.protocol == protocol && r.dst.prefix_len() != 0
}

fn sorted(mut v: Vec<KRoute>) -> Vec<KRoute> {
    v.sort();
    v
}

fn selected(c: &Case, i: usize) -> bool {
    c.only.as_ref().is_none_or(|o| o[i] || o.iter().all(|b| !b))
}

fn options(c: &Case) -> Options {
    let only = match &c.only {
        Some(o) if o.iter().any(|b| *b) => (0..c.nodes.len())
            .filter(|i| o[*i])
            .map(|i| format!("node-{i}"))
            .collect(),
        _ => Vec::new(),
    };
    Options {
        adopt: c.adopt,
        only,
        ..Options::default()
    }
}

fn conflicts(plan: &Plan, name: &str) -> Vec<String> {
    let np = plan.nodes.iter().find(|n| n.name == name);
    let mut v: Vec<String> = np
        .map(|n| {
            n.changes()
                .iter()
                .filter(|c| c.action == Action::Conflict)
                .map(|c| format!("{} / {:?}", c.route, c.current))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn writes(calls: &[Call], instance: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.instance == instance && c.is_write())
        .count()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let text = topology_text(c);
    let t: Topology = topology::parse(text.as_bytes(), "prop.toml", None)
        .map_err(|p| TestCaseError::fail(format!("topology refused: {p}\n{text}")))?;
    let nodes: BTreeMap<String, Node> = (0..c.nodes.len())
        .map(|i| (format!("node-{i}"), starting_node(c, i)))
        .collect();
    let before: BTreeMap<String, Vec<KRoute>> = nodes
        .iter()
        .map(|(k, n)| (k.clone(), n.routes.clone()))
        .collect();
    let m = Model::new(nodes);
    let opts = options(c);

    let plan = Plan::compute(&t, &opts, 1, |n| observe::read_node(&m, n));
    check_plan(c, &plan, &m.calls())?;

    m.clear_calls();
    let report = apply::apply(&plan, &t, &m, 1);
    let apply_calls = m.calls();
    for (i, spec) in c.nodes.iter().enumerate() {
        let name = format!("node-{i}");
        let was = &before[&name];
        let now = m.routes(&name);
        if !selected(c, i) || !spec.reach.readable() {
            check_untouched(c, i, &apply_calls, &report, was, &now)?;
            continue;
        }
        check_writes(c, &name, &apply_calls)?;
        check_routes(c, i, was, &now)?;
        check_outcome(&plan, &report, &name)?;
    }
    check_second_round(c, &t, &opts, &plan, &m)
}

/// Planning writes nothing, and plans exactly the selected nodes, readable or not as generated.
fn check_plan(c: &Case, plan: &Plan, plan_calls: &[Call]) -> Result<(), TestCaseError> {
    prop_assert!(
        plan_calls.iter().all(|call| !call.is_write()),
        "planning wrote: {plan_calls:?}"
    );
    for (i, spec) in c.nodes.iter().enumerate() {
        let name = format!("node-{i}");
        if let Some(np) = plan.nodes.iter().find(|n| n.name == name) {
            prop_assert!(selected(c, i));
            prop_assert_eq!(
                np.state.is_ok(),
                spec.reach.readable(),
                "{} ({:?}): {:?}",
                name,
                spec.reach,
                np.state.as_ref().err()
            );
        } else {
            prop_assert!(!selected(c, i));
        }
    }
    Ok(())
}

/// An unselected or unreadable node gets no command during apply and keeps its routes.
fn check_untouched(
    c: &Case,
    i: usize,
    apply_calls: &[Call],
    report: &apply::Report,
    was: &[KRoute],
    now: &[KRoute],
) -> Result<(), TestCaseError> {
    let name = format!("node-{i}");
    let spec = &c.nodes[i];
    prop_assert!(
        apply_calls.iter().all(|call| call.instance != name),
        "{name} ({:?}, selected {}) got a command during apply",
        spec.reach,
        selected(c, i)
    );
    prop_assert_eq!(was, now, "{} changed", name);
    if selected(c, i) {
        let r = report.nodes.iter().find(|r| r.name == name);
        prop_assert_eq!(r.map(|r| r.outcome), Some(Outcome::Unreachable));
    }
    Ok(())
}

/// At most one write per node, every line of it in table main with routectl's protocol.
fn check_writes(c: &Case, name: &str, apply_calls: &[Call]) -> Result<(), TestCaseError> {
    let p = c.protocol;
    prop_assert!(writes(apply_calls, name) <= 1, "{name}: several writes");
    for call in apply_calls
        .iter()
        .filter(|c| c.instance == name && c.is_write())
    {
        let script = call.stdin.clone().unwrap_or_default();
        for line in script.lines().filter(|l| !l.starts_with("route show")) {
            prop_assert!(
                line.contains(" table 254 ") && line.contains(&format!(" proto {p} ")),
                "{name}: line without table main and proto: {line}"
            );
        }
    }
    Ok(())
}

/// What apply did to one node's routes: nothing outside table main, no foreign route changed
/// (but adopted), only owned undesired routes removed, every unblocked desired route in place.
fn check_routes(c: &Case, i: usize, was: &[KRoute], now: &[KRoute]) -> Result<(), TestCaseError> {
    let name = format!("node-{i}");
    let p = c.protocol;
    let want = desired(c, i);

    // Nothing outside table main changes.
    let outside = |v: &[KRoute]| sorted(v.iter().filter(|r| r.table != MAIN).cloned().collect());
    prop_assert_eq!(
        outside(was),
        outside(now),
        "{}: another table changed",
        name
    );

    check_foreign(c, &name, &want, was, now)?;

    // What disappeared was owned and not desired.
    let mut gone = was.to_vec();
    for r in now {
        if let Some(k) = gone.iter().position(|g| g == r) {
            gone.remove(k);
        }
    }
    for g in &gone {
        let adopted_away = c.adopt && !owned(g, p);
        prop_assert!(
            (owned(g, p) && !want.contains(g)) || adopted_away,
            "{name}: removed {g:?}"
        );
    }

    // Every desired route is in place, unless a foreign route to its destination (in table
    // main, not adoptable) blocks it.
    for w in &want {
        let owned_key = was.iter().any(|r| owned(r, p) && r.key() == w.key());
        let blocked = was
            .iter()
            .any(|r| r.table == MAIN && r.dst == w.dst && !owned(r, p));
        prop_assert!(
            now.contains(w) || (blocked && !owned_key),
            "{name}: desired route missing: {w:?}\nafter: {now:#?}"
        );
    }
    Ok(())
}

/// Foreign routes stay, route by route; with --adopt one identical to a desired route may come
/// back with routectl's protocol, and nothing else about it changes.
fn check_foreign(
    c: &Case,
    name: &str,
    want: &[KRoute],
    was: &[KRoute],
    now: &[KRoute],
) -> Result<(), TestCaseError> {
    let p = c.protocol;
    let foreign = |v: &[KRoute]| sorted(v.iter().filter(|r| !owned(r, p)).cloned().collect());
    let mut now_foreign = foreign(now);
    if c.adopt {
        for r in now {
            if owned(r, p) && want.contains(r) && !was.contains(r) {
                let mut back = r.clone();
                for proto in 0..=255u8 {
                    back.protocol = proto;
                    if proto != p && was.contains(&back) && !now.contains(&back) {
                        now_foreign.push(back.clone());
                        break;
                    }
                }
            }
        }
    }
    prop_assert_eq!(
        foreign(was),
        sorted(now_foreign),
        "{}: foreign routes changed\nbefore: {:#?}\nafter: {:#?}",
        name,
        was,
        now
    );
    Ok(())
}

/// A node with a conflict fails; any other is in sync or converged.
fn check_outcome(plan: &Plan, report: &apply::Report, name: &str) -> Result<(), TestCaseError> {
    let had_conflict = !conflicts(plan, name).is_empty();
    let outcome = report
        .nodes
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.outcome);
    if had_conflict {
        prop_assert_eq!(outcome, Some(Outcome::Failed), "{}", name);
    } else {
        prop_assert!(
            matches!(outcome, Some(Outcome::InSync | Outcome::Converged)),
            "{name}: {outcome:?}: {:?}",
            report.nodes.iter().find(|r| r.name == name)
        );
    }
    Ok(())
}

/// A re-plan has no operation and the same conflicts; a second apply sends nothing.
fn check_second_round(
    c: &Case,
    t: &Topology,
    opts: &Options,
    plan: &Plan,
    m: &Model,
) -> Result<(), TestCaseError> {
    m.clear_calls();
    let again = Plan::compute(t, opts, 1, |n| observe::read_node(m, n));
    for np in &again.nodes {
        // Only nodes that were read and applied must be converged (an unread one may answer now).
        let first = plan.nodes.iter().find(|n| n.name == np.name);
        if np.state.is_err() || first.is_none_or(|n| n.state.is_err()) {
            continue;
        }
        let ops: Vec<_> = np
            .changes()
            .iter()
            .filter(|ch| ch.is_operation(c.adopt))
            .map(|ch| format!("{:?} {}", ch.action, ch.route))
            .collect();
        prop_assert!(ops.is_empty(), "{}: not converged: {ops:?}", np.name);
        prop_assert_eq!(conflicts(plan, &np.name), conflicts(&again, &np.name));
    }
    m.clear_calls();
    let _ = apply::apply(&again, t, m, 1);
    let second = m.calls();
    let read_first = |name: &str| plan.nodes.iter().any(|n| n.name == name && n.state.is_ok());
    prop_assert!(
        second
            .iter()
            .all(|call| !call.is_write() || !read_first(&call.instance)),
        "second apply wrote: {second:?}"
    );
    Ok(())
}

proptest! {
    // 256 cases by default (about 10 s in a debug build); PROPTEST_CASES=5000 for a deeper run.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn plan_and_apply_converge_safely(c in case()) {
        check(&c)?;
    }
}

/// The generator is worth its cases: over 300 of them every kind of change, every outcome and
/// every way of being unreadable shows up.
#[test]
fn generated_cases_cover_every_action_and_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let c = case().new_tree(&mut runner).expect("case").current();
        let text = topology_text(&c);
        let t = topology::parse(text.as_bytes(), "prop.toml", None).expect("topology");
        let nodes = (0..c.nodes.len())
            .map(|i| (format!("node-{i}"), starting_node(&c, i)))
            .collect();
        let m = Model::new(nodes);
        let plan = Plan::compute(&t, &options(&c), 1, |n| observe::read_node(&m, n));
        for np in &plan.nodes {
            for ch in np.changes() {
                *seen.entry(format!("{:?}", ch.action)).or_default() += 1;
            }
        }
        for r in apply::apply(&plan, &t, &m, 1).nodes {
            *seen.entry(format!("{:?}", r.outcome)).or_default() += 1;
            if !r.failures.is_empty() {
                *seen.entry("line failure".into()).or_default() += 1;
            }
        }
    }
    eprintln!("over 300 generated cases: {seen:?}");
    for k in [
        "Add",
        "Replace",
        "Delete",
        "Adopt",
        "Conflict",
        "InSync",
        "Converged",
        "Failed",
        "Unreachable",
    ] {
        assert!(seen.get(k).copied().unwrap_or(0) >= 5, "{k}: {seen:?}");
    }
}
