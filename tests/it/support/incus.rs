//! The Incus lab (scripts/lab.sh up --lab incus, tests/labs/incus.toml): topology.example.toml's
//! four nodes as real Incus containers on their own bridge rtlab3, so that every scenario of
//! tests/it/scenarios/ runs on Incus as on LXD. [`IncusLab::take`] holds the same lock as the
//! Incus-only tests (support/labs.rs), starts stopped containers and removes every non-kernel
//! route; without Incus or the lab it fails, loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use routectl::core::topology::{self, Topology, TransportKind};

use super::lab::Lab;
use super::labs::ContainerLab;

/// The Incus lab of tests/labs/incus.toml.
pub struct IncusLab {
    topology: Topology,
    path: PathBuf,
    inner: ContainerLab,
}

impl IncusLab {
    /// Takes the lab for one test: up, every node running, no routes but the kernel's.
    pub fn take() -> IncusLab {
        let inner = ContainerLab::take("incus");
        let path = inner.topology.clone();
        let text = std::fs::read_to_string(&path).expect("tests/labs/incus.toml");
        let topology = topology::parse(text.as_bytes(), "tests/labs/incus.toml", None)
            .expect("a valid tests/labs/incus.toml");
        let lab = IncusLab {
            topology,
            path,
            inner,
        };
        for n in &lab.topology.nodes {
            lab.wait_ready(&n.name);
        }
        lab.reset_routes();
        lab
    }

    /// Waits until a node answers and carries its internal IP.
    fn wait_ready(&self, node: &str) {
        let ip = self.topology.node(node).expect("a lab node").internal_ips[0].to_string();
        super::wait_until_container_has("incus", node, &ip);
    }
}

impl Lab for IncusLab {
    fn name(&self) -> &'static str {
        "incus"
    }
    fn topology_path(&self) -> &Path {
        &self.path
    }
    fn topology(&self) -> &Topology {
        &self.topology
    }
    fn transport(&self) -> TransportKind {
        TransportKind::Incus
    }
    fn dir(&self) -> &Path {
        self.inner.dir.path()
    }
    fn command(&self, node: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("incus");
        cmd.args(["exec", node, "--"]).args(argv);
        cmd
    }
    fn restart(&self, node: &str) {
        self.inner.client(&["restart", node]);
        self.wait_ready(node);
    }
}
