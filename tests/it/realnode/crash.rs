//! `kill -9` during a persisted apply never leaves a torn drop-in or record.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Routectl, assert_code};

use super::*;

/// The real nodes of the lab and, beside them, `extra` nodes that exist only in the topology
/// (pod CIDRs 10.2.10.0/24 on, gateways on the lab's segment from 10.0.3.`first`): every real
/// node gets one more route per extra node, and its drop-in one more `[Route]`.
fn many_routes(base: &str, extra: usize, first: usize) -> String {
    let mut t = base.to_string();
    for i in 0..extra {
        t.push_str(&format!(
            "\n[[nodes]]\nname = \"virt-{i}\"\ninternal_ip = \"10.0.3.{}\"\npod_cidr = \"10.2.{}.0/24\"\n",
            first + i,
            10 + i
        ));
    }
    t
}

/// A drop-in and the record of a real node, as they are on it now: the drop-in's bytes (empty
/// when there is none) and the record's routes (`None` when there is none; a record that is
/// not whole JSON fails the test).
fn files_of(node: &str) -> (String, Option<Vec<String>>) {
    let dropin = exec(
        node,
        "cat /etc/systemd/network/*.network.d/50-routectl.conf 2>/dev/null || true",
    );
    let record = exec(
        node,
        &format!("cat /run/routectl/last-applied/{node}.json 2>/dev/null || true"),
    );
    let routes = (!record.is_empty()).then(|| {
        let j: serde_json::Value = serde_json::from_str(&record)
            .unwrap_or_else(|e| panic!("{node}: a torn record ({e}): {record:?}"));
        j["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    });
    (dropin, routes)
}

/// The drop-in and the record (when there is one) of every node are each one of the whole
/// files `whole` holds for it: never a torn mix after a kill at `delay`.
fn assert_files_whole(whole: &Whole, delay: Duration) {
    for node in NODES {
        let (dropin, routes) = files_of(node);
        let known = &whole[node];
        assert!(
            known.iter().any(|(d, _)| *d == dropin),
            "{node}: a drop-in that is neither the old nor the new after a kill at \
             {delay:?} ({} [Route] sections)",
            dropin.matches("[Route]").count()
        );
        if let Some(routes) = routes {
            assert!(
                known.iter().any(|(_, r)| *r == routes),
                "{node}: a record that is neither the old nor the new after a kill at \
                 {delay:?} ({} routes)",
                routes.len()
            );
        }
    }
}

/// The whole drop-in and record of each node, per topology applied without interruption.
type Whole = std::collections::BTreeMap<&'static str, Vec<(String, Vec<String>)>>;

/// routectl killed with SIGKILL at random points of an apply that rewrites every route, the
/// drop-in and the record of each node (about 150 routes each, alternating between two
/// topologies): the drop-in and the record on every node are each whole, either the old or the
/// new, never a torn mix; the next apply converges.
#[test]
#[ignore = "needs root and the real-node lab: scripts/test.sh"]
fn kill_9_during_a_persisted_apply_never_leaves_a_torn_dropin_or_record() {
    let lab = RealLab::take();
    let base = std::fs::read_to_string(&lab.persisted).unwrap();
    let a = lab.dir.path().join("a.toml");
    let b = lab.dir.path().join("b.toml");
    std::fs::write(&a, many_routes(&base, 150, 100)).unwrap();
    std::fs::write(&b, many_routes(&base, 150, 101)).unwrap();
    let only_real: Vec<&str> = NODES.iter().flat_map(|n| ["--node", n]).collect();
    let apply = |t: &Path| {
        let mut args = vec!["apply", "--auto-approve"];
        args.extend(&only_real);
        lab.routectl(t, &args)
    };
    // The whole files of each topology, from applies nobody interrupted.
    let mut whole = Whole::new();
    let mut took = Duration::ZERO;
    for t in [&a, &b] {
        let started = Instant::now();
        assert_code(&apply(t), 0);
        took = took.max(started.elapsed());
        for node in NODES {
            let (dropin, routes) = files_of(node);
            assert!(dropin.matches("[Route]").count() >= 150, "{node}: {dropin}");
            whole
                .entry(node)
                .or_default()
                .push((dropin, routes.unwrap()));
        }
    }
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let window = took.as_millis().max(100) as u64;
    let mut killed_mid_write = 0;
    for round in 0..12 {
        let t = if round % 2 == 0 { &a } else { &b };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % window);
        let mut args = vec!["apply", "--auto-approve"];
        args.extend(&only_real);
        let mut child = Routectl::new()
            .topology(t)
            .lock_file(lab.dir.path().join("lock"))
            .args(&args)
            .spawn();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed_mid_write += 1;
        }
        // Whatever the node-side script was doing has ended or is ending: give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        assert_files_whole(&whole, delay);
    }
    eprintln!("{killed_mid_write} of 12 applies killed before they ended (window {window} ms)");
    assert!(
        killed_mid_write >= 3,
        "too few kills landed inside an apply"
    );
    assert_code(&apply(&a), 0);
    let mut args = vec!["plan", "--detailed-exitcode"];
    args.extend(&only_real);
    assert_code(&lab.routectl(&a, &args), 0);
}
