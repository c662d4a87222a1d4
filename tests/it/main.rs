//! routectl's integration tests: one test crate (`cargo test --test it`), one module per area.
//!
//! | module | what it tests | needs |
//! |---|---|---|
//! | `cases` | folder cases (tests/cases/): topology × captured `ip -j` output → plan text | nothing |
//! | `cli` | the binary through the fake `lxc`, one submodule per behaviour (`cli/`): the command line, the topology file, plan, unreadable nodes, ownership, apply, `--node`, messages, one cause once | nothing |
//! | `cli_discover_show_check` | `discover`, `show`, `check` through the fake `lxc` | nothing |
//! | `conventions` | completions and the man page | nothing |
//! | `topology_corpus` | the malformed-topology corpus (tests/topologies/) | nothing |
//! | `node_output` | hostile `ip` output (tests/fixtures/ip/) | nothing |
//! | `node_files` | a node's terminal or FIFO where its record is read: never routectl's terminal, never waited on | root, the LXD lab for one |
//! | `node_text` | text a node writes (its last-applied record) reaches every format escaped, Markdown fences it cannot close | root |
//! | `perf_equivalence` | the fast paths compute what the plain ones did | nothing |
//! | `properties` | plan + apply against an in-memory kernel model (`properties/`: the generator in `mod.rs`, `convergence`, `scenarios`), and the model against a kernel (`kernel`) | root for one test |
//! | `scenarios` | end-to-end scenarios written once, run on every real lab, one submodule per behaviour (`scenarios/`): converge, guards, show and check, changes, canary | root, the labs |
//! | `netns`, `netns_show_check`, `netns_reconcile` | what only network namespaces can show | root |
//! | `netns_mistakes` | mistakes a plan stops before any write (addresses, interfaces, segments) | root |
//! | `lxd`, `lxd_discover` | what only the LXD lab can show | root, the LXD lab |
//! | `incus` | real Incus containers (scripts/lab.sh --lab incus) | root, the Incus lab |
//! | `lxd_projects` | LXD projects and a loopback remote (scripts/lab.sh --lab project, remote) | root, the project lab |
//! | `ssh` | the ssh transport against real sshd (scripts/lab-ssh.sh) | root, the SSH lab |
//! | `access` | host access against exec access, one submodule per behaviour (`access/`): reads and plans, writes, node identity (stale namespaces, restarted containers, impostors), `reconcile --watch` | root, the LXD lab for some |
//! | `realnode` | networkd, netplan and `persist` on the real-node lab (`scripts/lab.sh --realnode`), one submodule per behaviour (`realnode/`): persistence, drop-ins, host access, a crash mid-apply | root, the real-node lab |
//! | `safety` | the holes an adversarial review found, one submodule per behaviour (`safety/`): lock, signals, saved plans, bounded reads, output and atomic writes, route identity, messages (real files, FIFOs, /dev/full, signals, namespaces) | root for most |
//! | `layout` | this crate stays the only integration-test target | nothing |
//!
//! `support` holds what they share: the one way to run the binary (`support::Routectl`,
//! `support::Run`; `Routectl::command` for a test that wires the child itself, `run_within` for
//! a deadline; `ROUTECTL_TEST_BIN` runs every test against another build), the one way to run a
//! lab script (`support::run_lab_script`), the one fake `lxc`/`incus` (`support::fake`, the
//! script tests/fakes/lxc),
//! the labs behind one trait (`support::lab::Lab`, with `support::netns` and `support::lxd`),
//! and the in-memory kernel model (`support::model`).
//!
//! Tests that need root or a lab are `#[ignore = "needs root: …"]`, so a plain `cargo test`
//! passes for anyone; scripts/test.sh (as root) brings the LXD lab up and runs everything with
//! `--include-ignored`, where a missing lab is a failure, never a skip.
//!
//! Where a new test goes:
//! - a behaviour every lab should prove: a function of `&dyn Lab` in `scenarios/`, listed in
//!   the `every_lab!` call of `scenarios/mod.rs` (it then runs on netns, LXD and every lab
//!   added later);
//! - a new lab: `support/NAME.rs` implementing `support::lab::Lab`, one line in `every_lab!`
//!   (see support/lab.rs);
//! - something only one lab can show: that lab's module (`netns*.rs`, `lxd*.rs`, or a new
//!   `NAME.rs` declared below);
//! - the binary against faults no real system shows: `cli*.rs`, with `support::fake::Fake`;
//! - the pure core with files as input: `cases` (a folder) or `topology_corpus` (a file).
//!
//! A new file is a module declared here, never a new file directly under tests/ (`layout`
//! fails if one appears).

// A test may panic: that is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)]
// Functions stay short enough to read whole, as in the library (clippy.toml: 80 lines).
#![warn(clippy::too_many_lines)]

mod support;

mod access;
mod cases;
mod cli;
mod cli_discover_show_check;
mod cluster;
mod cluster_incus;
mod conventions;
mod incus;
mod layout;
mod lxd;
mod lxd_discover;
mod lxd_projects;
mod managers;
mod netns;
mod netns_mistakes;
mod netns_reconcile;
mod netns_show_check;
mod node_files;
mod node_output;
mod node_text;
mod perf_equivalence;
mod properties;
mod realnode;
mod safety;
mod scenarios;
mod ssh;
mod topology_corpus;
