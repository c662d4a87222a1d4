//! Benchmarks of routectl's pure core (no process is spawned): topology parsing, desired routes,
//! parsing `ip -N -d -j route show table all` output, the diff, a whole-cluster plan, and
//! rendering it as text and JSON, for clusters of 100, 1,000 and 5,000 nodes.
//!
//! A plain `harness = false` timer (no extra crates): each case runs until it has at least
//! `MIN_RUNS` samples and has used its time budget (or `MAX_RUNS`), and the median, fastest and
//! slowest sample are printed. The machine is shared, so read the median, not the minimum.
//!
//! ```text
//! cargo bench --bench core                # everything
//! cargo bench --bench core -- diff 1000   # only cases whose name contains every word
//! ROUTECTL_BENCH_SIZES=100,1000 cargo bench --bench core
//! ```
//!
//! Whole-cluster cases hold every capture in memory, so they run for 100 and 1,000 nodes; at
//! 5,000 nodes (25 million routes) the per-node cases are run and the cluster figure is the
//! per-node median times 5,000 (marked `x N`). `scripts/bench.sh --offline` measures the real
//! `routectl plan --observed` at several sizes.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]
// Functions stay short enough to read whole, as in the library (clippy.toml: 80 lines).
#![warn(clippy::too_many_lines)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::State;
use routectl::core::plan::{Options, Plan};
use routectl::core::{desired, diff, topology};
use routectl::node::iproute;
use routectl::report::{self, Style};

const MIN_RUNS: usize = 5;
const MAX_RUNS: usize = 200;
const BUDGET: Duration = Duration::from_secs(2);

struct Bench {
    filters: Vec<String>,
}

impl Bench {
    fn wanted(&self, name: &str) -> bool {
        self.filters.iter().all(|f| name.contains(f.as_str()))
    }

    /// Times `f`, printing median / min / max; `scale` multiplies the figures (per node -> per
    /// cluster) and is shown in the name.
    fn run<R>(&self, name: &str, scale: usize, mut f: impl FnMut() -> R) {
        if !self.wanted(name) {
            return;
        }
        let mut samples = Vec::new();
        let started = Instant::now();
        while samples.len() < MIN_RUNS || (started.elapsed() < BUDGET && samples.len() < MAX_RUNS) {
            let t = Instant::now();
            black_box(f());
            samples.push(t.elapsed());
        }
        samples.sort();
        let med = samples[samples.len() / 2] * scale as u32;
        let min = samples[0] * scale as u32;
        let max = samples[samples.len() - 1] * scale as u32;
        let label = if scale > 1 {
            format!("{name} (per node x {scale})")
        } else {
            name.to_string()
        };
        println!(
            "{label:<52} median {:>10}  min {:>10}  max {:>10}  ({} runs)",
            fmt(med),
            fmt(min),
            fmt(max),
            samples.len()
        );
    }
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.3} s", us / 1e6)
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes: Vec<usize> = std::env::var("ROUTECTL_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 5000]);
    let b = Bench { filters };
    for &n in &sizes {
        bench_size(&b, n);
    }
}

fn bench_size(b: &Bench, n: usize) {
    let text = common::topology_text(n, "lxc", None);
    b.run(&format!("topology parse {n}"), 1, || {
        topology::parse(text.as_bytes(), "topology.toml", None).expect("valid")
    });
    let t = topology::parse(text.as_bytes(), "topology.toml", None).expect("valid");
    let policy = Plan::policy(&t);
    // A node in the middle of the cluster stands for every node.
    let k = n / 2;
    let node = &t.nodes[k];
    let desired = desired::routes_for(&t, node);

    b.run(&format!("desired routes {n}"), n, || {
        desired::routes_for(&t, node)
    });
    for (state, word) in [
        (State::InSync, "in-sync"),
        (State::Empty, "empty"),
        (State::Drifted, "drifted"),
    ] {
        let (parse_name, diff_name) = (
            format!("parse ip -j {word} {n}"),
            format!("diff {word} {n}"),
        );
        if !b.wanted(&parse_name) && !b.wanted(&diff_name) {
            continue;
        }
        let capture = common::capture(n, k, state);
        b.run(&parse_name, n, || {
            iproute::parse_routes(&capture).expect("valid")
        });
        let observed = iproute::parse_routes(&capture).expect("valid");
        b.run(&diff_name, n, || diff::diff(&desired, &observed, &policy));
    }

    if n > 1000 {
        return;
    }
    for (state, word) in [
        (State::InSync, "in-sync"),
        (State::Drifted, "drifted"),
        (State::Empty, "empty"),
    ] {
        bench_cluster(b, &t, n, state, word);
    }
}

/// The whole-cluster cases of one state: planning every node, and rendering the plan.
fn bench_cluster(b: &Bench, t: &topology::Topology, n: usize, state: State, word: &str) {
    let names = [
        format!("plan cluster {word} {n} (1 thread)"),
        format!("plan cluster {word} {n} (2 threads)"),
        format!("render text {word} {n}"),
        format!("render json {word} {n}"),
        format!("render json in parallel {word} {n}"),
    ];
    if !names.iter().any(|name| b.wanted(name)) {
        return;
    }
    let captures: Vec<Vec<u8>> = (0..n).map(|i| common::capture(n, i, state)).collect();
    let plan_of = |lanes: usize| {
        Plan::compute(t, &Options::default(), lanes, |node| {
            let i: usize = node.name["node-".len()..].parse().expect("node-NNNNN");
            iproute::parse_routes(&captures[i]).map_err(|error| {
                routectl::error::NodeError::Output {
                    argv: String::new(),
                    error,
                }
            })
        })
    };
    b.run(&format!("plan cluster {word} {n} (1 thread)"), 1, || {
        plan_of(1)
    });
    b.run(&format!("plan cluster {word} {n} (2 threads)"), 1, || {
        plan_of(2)
    });
    let plan = plan_of(2);
    // Both rendered the way the command writes them: streamed, here into a sink.
    b.run(&format!("render text {word} {n}"), 1, || {
        report::write_plan_text(&mut std::io::sink(), &plan, &Style { color: false })
            .expect("rendered")
    });
    b.run(&format!("render json {word} {n}"), 1, || {
        report::write_json(
            std::io::sink(),
            &report::plan_json(&plan, t),
            report::Layout::Compact,
        )
        .expect("rendered")
    });
    b.run(&format!("render json in parallel {word} {n}"), 1, || {
        report::write_plan_json(&mut std::io::sink(), &plan, t, 2, report::Layout::Compact)
            .expect("rendered")
    });
}
