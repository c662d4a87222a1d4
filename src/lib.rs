//! routectl: declarative pod-network routes for Kubernetes nodes running as LXD or Incus
//! containers, in network namespaces, or as machines reached over SSH.
//!
//! The crate is layered; dependencies point one way, `commands -> report / node / local -> core`:
//!
//! - [`core`]: pure values and decisions. The topology (TOML -> validated [`core::topology`]),
//!   the routes each node should have ([`core::desired`]), the ownership rule and the diff
//!   ([`core::diff`]), the plan and its `ip` lines ([`core::plan`]), and the pure halves of
//!   `show`, `check`, `discover`, `reconcile` and saved plans. No I/O, no processes, no threads.
//! - [`node`]: reaching nodes. [`node::request`] says what a write asks of a node, as a typed
//!   value; [`node::transport`] (the only module that spawns processes) and [`node::host`]
//!   (netlink and the container's root from the host) carry it out; [`node::iproute`] reads what
//!   `ip -j` prints; [`node::observe`] reads a node (one read, one retry policy);
//!   [`node::apply`] writes a plan and reads it back.
//! - [`local`]: files on the machine routectl runs on (the lock, atomic writes, bounded reads).
//! - [`report`]: one renderer per document (text, JSON, Markdown), colour in one place.
//! - [`commands`]: one thin module per subcommand; [`exit`] maps an outcome to an exit code.

// Functions stay short enough to read whole: clippy.toml sets the threshold (80 lines), this
// makes it a warning, which `cargo clippy -- -D warnings` turns into an error.
#![warn(clippy::too_many_lines)]
// Unit tests may panic and slice strings (that is how they report a failure); clippy.toml
// allows unwrap/expect there, this the rest of what Cargo.toml's [lints] warn about.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::string_slice)
)]

pub mod cli;
pub mod commands;
pub mod console;
pub mod core;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod local;
pub mod node;
pub mod parallel;
pub mod report;

pub use error::Error;
