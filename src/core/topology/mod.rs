//! The topology: what routectl is asked to make true, as validated values.
//!
//! - this module: the types ([`Topology`], [`Cluster`], [`Node`], [`TransportKind`]) and the
//!   one definition of `--node` selection;
//! - `raw`: the file as TOML gives it (with positions);
//! - [`check`]: the checker (TOML text -> [`Topology`], every problem with file, line and
//!   column);
//! - [`across`]: the checks across nodes, on values (the checker's, and `routectl discover`'s);
//! - [`names`]: the rules for names and values (node, instance and interface names, addresses,
//!   pod CIDRs).
//!
//! Strict by design: unknown keys, malformed addresses, host bits, overlaps, duplicates, family
//! mismatches and names that a transport could misread are all errors. Nothing here runs a
//! process.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use crate::core::persist::Persist;
use crate::core::route::Family;

pub mod across;
pub mod check;
#[cfg(test)]
pub mod fixtures;
pub mod names;
mod raw;
mod suggest;

pub use across::{Key, NodeProblem, cross_check, node_problems};
pub use check::parse;
pub use names::{check_interface, check_project};

/// The largest topology file routectl reads (a 5,000-node file is well under 1 MiB).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// How routectl reaches the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `lxc exec INSTANCE -- …` (LXD).
    Lxc,
    /// `incus exec INSTANCE -- …` (Incus).
    Incus,
    /// Network namespaces on this host (`ip -n NS …`, `ip netns exec NS …`).
    Netns,
    /// `ssh ADDRESS …` (machines reached over SSH, e.g. the upstream tutorial's).
    Ssh,
}

impl TransportKind {
    /// The names accepted in the topology and on the command line.
    pub const NAMES: &'static [&'static str] = &["lxc", "incus", "netns", "ssh"];

    /// Parses a transport name.
    pub fn from_name(s: &str) -> Option<TransportKind> {
        match s {
            "lxc" => Some(TransportKind::Lxc),
            "incus" => Some(TransportKind::Incus),
            "netns" => Some(TransportKind::Netns),
            "ssh" => Some(TransportKind::Ssh),
            _ => None,
        }
    }

    /// The name of the transport.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Lxc => "lxc",
            TransportKind::Incus => "incus",
            TransportKind::Netns => "netns",
            TransportKind::Ssh => "ssh",
        }
    }

    /// Whether the transport talks to LXD or Incus (which know projects).
    pub fn is_lxd_like(self) -> bool {
        matches!(self, TransportKind::Lxc | TransportKind::Incus)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How routectl reads and writes a node's routes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Run `ip` inside the node through the transport (`lxc exec`, `incus exec`, `ip -n`).
    #[default]
    Exec,
    /// From the host, in the node's network namespace, over netlink (local containers and
    /// network namespaces only; see docs/operations.md).
    Host,
}

impl Access {
    /// The names accepted in the topology and on the command line.
    pub const NAMES: &'static [&'static str] = &["exec", "host"];

    /// Parses an access name.
    pub fn from_name(s: &str) -> Option<Access> {
        match s {
            "exec" => Some(Access::Exec),
            "host" => Some(Access::Host),
            _ => None,
        }
    }

    /// The name of the access.
    pub fn name(self) -> &'static str {
        match self {
            Access::Exec => "exec",
            Access::Host => "host",
        }
    }
}

/// A validated topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Where it was read from (for messages).
    pub source: String,
    /// The file's text, kept so that a saved plan can carry it.
    pub text: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Cluster-wide settings.
    pub cluster: Cluster,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
}

/// Cluster-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// How nodes are reached.
    pub transport: TransportKind,
    /// How their routes are read and written (`access`, default exec).
    pub access: Access,
    /// The cluster's pod ranges (at most one per family).
    pub pod_cidrs: Vec<IpNet>,
    /// The routing protocol number that marks routectl's routes.
    pub protocol: u8,
    /// The metric of routectl's routes, if set (else 0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
    /// `ssh_config`: the ssh client configuration file (`ssh -F`); relative to the topology
    /// file's directory once [`Topology::resolve_relative_to`] ran.
    pub ssh_config: Option<String>,
    /// How nodes keep routectl's routes across their network manager (a node may override it).
    pub persist: Persist,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name in the topology.
    pub name: String,
    /// What the transport addresses: the instance (possibly `remote:instance`), the namespace,
    /// or for ssh the destination (`address`: `host` or `user@host`, default the internal IP).
    pub instance: String,
    /// The LXD/Incus project of the instance (`--project`), when not the default one.
    pub project: Option<String>,
    /// The device that carries node-to-node traffic on this node. `None` (only with the ssh
    /// transport) writes routes without `dev`: the kernel picks the device from the gateway.
    pub interface: Option<String>,
    /// Internal addresses, at most one per family, IPv4 first.
    pub internal_ips: Vec<IpAddr>,
    /// Pod CIDRs, at most one per family, IPv4 first.
    pub pod_cidrs: Vec<IpNet>,
    /// The line of the node's table in the file.
    pub line: usize,
    /// How this node keeps routectl's routes (its own `persist`, else the cluster's).
    pub persist: Persist,
}

impl Node {
    /// The node's internal address of a family.
    pub fn internal_ip(&self, family: Family) -> Option<IpAddr> {
        self.internal_ips
            .iter()
            .copied()
            .find(|a| Family::of_addr(a) == family)
    }
}

impl Topology {
    /// Finds a node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The nodes a command covers, in topology order: those named in `only` (`--node`, which
    /// may repeat), or every node when `only` is empty. The one definition of `--node`.
    pub fn selected(&self, only: &[String]) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| is_selected(only, &n.name))
            .collect()
    }

    /// The names of the nodes `only` leaves out, in topology order.
    pub fn unselected(&self, only: &[String]) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !is_selected(only, &n.name))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The names in `only` that are not nodes of this topology.
    pub fn undeclared<'a>(&self, only: &'a [String]) -> Vec<&'a str> {
        only.iter()
            .filter(|n| self.node(n).is_none())
            .map(String::as_str)
            .collect()
    }

    /// Takes a relative `ssh_config` from `dir` (the topology file's directory), as the file
    /// means it; called by whoever read the file, which knows where it was.
    pub fn resolve_relative_to(&mut self, dir: &std::path::Path) {
        if let Some(c) = &self.cluster.ssh_config
            && std::path::Path::new(c).is_relative()
        {
            self.cluster.ssh_config = Some(dir.join(c).display().to_string());
        }
    }

    /// The metric routectl uses for routes of a family.
    pub fn metric(&self, family: Family) -> u32 {
        match self.cluster.metric {
            Some(m) => family.effective_metric(m),
            None => family.default_metric(),
        }
    }
}

/// Whether `--node` names (`only`) cover the node `name`: every node is covered when none is
/// named.
pub fn is_selected(only: &[String], name: &str) -> bool {
    only.is_empty() || only.iter().any(|n| n == name)
}
