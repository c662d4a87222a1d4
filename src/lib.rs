//! routectl: declarative pod-network routes for Kubernetes nodes on LXD, Incus or network
//! namespaces.
//!
//! The pipeline reads from the module names:
//! [`topology`] (TOML -> validated topology) -> [`desired`] (routes each node should have) ->
//! [`observe`] (what each node has, through [`transport`], parsed by [`iproute`]) -> [`diff`]
//! (the ownership rule, desired x observed) -> [`plan`] (per-node changes, `ip` lines) ->
//! [`apply`] (one batch per node, read back, verify) -> [`render`] (text, JSON, Markdown).
//! [`transport`] is the only module that spawns processes.

pub mod apply;
pub mod check;
pub mod cli;
pub mod commands;
pub mod desired;
pub mod diff;
pub mod discover;
pub mod error;
pub mod exit;
pub mod iproute;
pub mod lock;
pub mod observe;
pub mod parallel;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod route;
pub mod saved;
pub mod show;
pub mod topology;
pub mod transport;

pub use error::Error;
