//! Writes a synthetic cluster for `routectl plan --observed`: `DIR/topology.toml` and
//! `DIR/observed/<node>.json` (what `ip -N -d -j route show table all` prints on each node).
//!
//! ```text
//! cargo bench --bench gen_observed -- --out DIR --nodes 1000 [--state in-sync|empty|drifted]
//!     [--transport lxc|netns] [--instance-prefix P] [--topology-only]
//! ```
//!
//! Run by plain `cargo bench` (no `--out`), it does nothing.
// A test or bench may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]
// Functions stay short enough to read whole, as in the library (clippy.toml: 80 lines).
#![warn(clippy::too_many_lines)]

mod common;

use std::path::PathBuf;

use common::State;

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut nodes = 1000usize;
    let mut state = State::InSync;
    let mut transport = "lxc".to_string();
    let mut prefix: Option<String> = None;
    let mut topology_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value())),
            "--nodes" => nodes = value().parse().unwrap_or_else(|_| usage("bad --nodes")),
            "--state" => {
                state = match value().as_str() {
                    "in-sync" => State::InSync,
                    "empty" => State::Empty,
                    "drifted" => State::Drifted,
                    s => usage(&format!("unknown state {s}")),
                }
            }
            "--transport" => transport = value(),
            "--instance-prefix" => prefix = Some(value()),
            "--topology-only" => topology_only = true,
            "--bench" => {}
            s if s.starts_with('-') => usage(&format!("unknown option {s}")),
            _ => {} // a cargo bench filter
        }
    }
    let Some(out) = out else {
        return;
    };
    std::fs::create_dir_all(&out).expect("create output directory");
    std::fs::write(
        out.join("topology.toml"),
        common::topology_text(nodes, &transport, prefix.as_deref()),
    )
    .expect("write topology");
    if topology_only {
        return;
    }
    let dir = out.join("observed");
    std::fs::create_dir_all(&dir).expect("create observed directory");
    for i in 0..nodes {
        let path = dir.join(format!("{}.json", common::node_name(i)));
        std::fs::write(&path, common::capture(nodes, i, state)).expect("write capture");
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "gen_observed: {msg}\nusage: gen_observed --out DIR --nodes N [--state in-sync|empty|drifted] \
         [--transport lxc|netns] [--instance-prefix P] [--topology-only]"
    );
    std::process::exit(2);
}
