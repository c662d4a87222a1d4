//! A lab of network namespaces, built per test: one namespace per node, a hub namespace
//! holding the shared L2 segment, an empty `cnio0` bridge carrying each node's pod gateway
//! address. Built from a topology file with routectl's own parser; torn down on drop. Needs
//! root (every test using it is `#[ignore = "needs root: …"]`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use routectl::core::topology::{self, Topology, TransportKind};

use super::lab::Lab;
use super::{first_host, ip_batch, sh};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A lab of network namespaces.
pub struct NetnsLab {
    /// Namespace name prefix, unique per lab.
    pub prefix: String,
    /// The hub namespace.
    pub hub: String,
    /// The topology (with `instance` = namespace name).
    pub topology: Topology,
    /// Where the topology file is.
    pub path: PathBuf,
    dir: tempfile::TempDir,
    extra: std::cell::RefCell<Vec<String>>,
}

impl NetnsLab {
    /// Builds a lab from a topology body: `[[nodes]]` tables without `instance`; the lab adds
    /// `transport = "netns"` and a unique instance per node.
    pub fn new(cluster_extra: &str, nodes: &[(&str, &[&str], &[&str])]) -> NetnsLab {
        let prefix = format!(
            "rt{}x{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut text =
            format!("[cluster]\ninterface = \"eth1\"\ntransport = \"netns\"\n{cluster_extra}\n");
        for (name, ips, cidrs) in nodes {
            text.push_str(&format!(
                "\n[[nodes]]\nname = \"{name}\"\ninstance = \"{prefix}-{name}\"\ninternal_ip = {ips:?}\n"
            ));
            if !cidrs.is_empty() {
                text.push_str(&format!("pod_cidr = {cidrs:?}\n"));
            }
        }
        NetnsLab::from_text(&prefix, &text)
    }

    /// The lab of the seed page: controller-0, worker-0/1/2.
    pub fn seed() -> NetnsLab {
        NetnsLab::new(
            "pod_cidr = \"10.1.0.0/16\"",
            &[
                ("controller-0", &["10.0.2.10"], &[]),
                ("worker-0", &["10.0.2.20"], &["10.1.0.0/24"]),
                ("worker-1", &["10.0.2.21"], &["10.1.1.0/24"]),
                ("worker-2", &["10.0.2.22"], &["10.1.2.0/24"]),
            ],
        )
    }

    fn from_text(prefix: &str, text: &str) -> NetnsLab {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.toml");
        std::fs::write(&path, text).unwrap();
        let topology = topology::parse(text.as_bytes(), "topology.toml", None)
            .unwrap_or_else(|e| panic!("lab topology invalid: {e}\n{text}"));
        let hub = format!("{prefix}-hub");
        let lab = NetnsLab {
            prefix: prefix.to_string(),
            hub: hub.clone(),
            topology,
            path,
            dir,
            extra: Default::default(),
        };
        sh(&["ip", "netns", "add", &hub]);
        ip_batch(
            &hub,
            "link set lo up\nlink add br0 type bridge\nlink set br0 up\n",
        );
        for (i, node) in lab.topology.nodes.iter().enumerate() {
            lab.add_node(i, node);
        }
        lab
    }

    /// Creates node `i`'s namespace, its link to the hub and its addresses.
    pub fn add_node(&self, i: usize, node: &routectl::core::topology::Node) {
        let ns = &node.instance;
        let iface = node
            .interface
            .as_deref()
            .expect("a netns lab node names its interface");
        sh(&["ip", "netns", "add", ns]);
        let v = format!("v{i}");
        ip_batch(
            &self.hub,
            &format!(
                "link add {v} type veth peer name {iface} netns {ns}\nlink set {v} master br0\nlink set {v} up\n",
            ),
        );
        let mut script = format!("link set lo up\nlink set {iface} up\n");
        for ip in &node.internal_ips {
            match ip {
                IpAddr::V4(_) => script.push_str(&format!("addr add {ip}/24 dev {iface}\n")),
                IpAddr::V6(_) => script.push_str(&format!("addr add {ip}/64 dev {iface} nodad\n")),
            }
        }
        if !node.pod_cidrs.is_empty() {
            script.push_str("link add cnio0 type bridge\nlink set cnio0 up\n");
            for net in &node.pod_cidrs {
                let gw = first_host(net);
                let extra = if matches!(gw, IpAddr::V6(_)) {
                    " nodad"
                } else {
                    ""
                };
                script.push_str(&format!(
                    "addr add {gw}/{} dev cnio0{extra}\n",
                    net.prefix_len()
                ));
            }
        }
        ip_batch(ns, &script);
        for (k, v) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ] {
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("{k}={v}"),
            ]);
        }
    }

    /// Creates one more node namespace (as a container started later would be) and appends it
    /// to the topology file.
    pub fn grow(&self, name: &str, ip: &str, cidr: &str) {
        let instance = format!("{}-{name}", self.prefix);
        let block = format!(
            "\n[[nodes]]\nname = \"{name}\"\ninstance = \"{instance}\"\ninternal_ip = \"{ip}\"\npod_cidr = \"{cidr}\"\n"
        );
        let text = self.topology_text() + &block;
        let t = topology::parse(text.as_bytes(), "topology.toml", None).expect("grown topology");
        let node = t.node(name).expect("new node").clone();
        self.extra.borrow_mut().push(instance);
        self.add_node(100 + self.extra.borrow().len(), &node);
        self.write_topology(&text);
    }

    /// The namespace of a node.
    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// Rewrites the topology file (the namespaces stay as they are).
    pub fn write_topology(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    /// The topology file's text.
    pub fn topology_text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    /// Sets a sysctl (`key=value`) in a node's namespace.
    pub fn sysctl(&self, node: &str, setting: &str) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.ns(node),
            "sysctl",
            "-qw",
            setting,
        ]);
    }
}

impl Lab for NetnsLab {
    fn name(&self) -> &'static str {
        "netns"
    }
    fn topology_path(&self) -> &Path {
        &self.path
    }
    fn topology(&self) -> &Topology {
        &self.topology
    }
    fn transport(&self) -> TransportKind {
        TransportKind::Netns
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn command(&self, node: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node)]).args(argv);
        cmd
    }
    /// A namespace does not reboot: the routes routectl wrote are flushed, as a reboot loses
    /// them; its addresses stay.
    fn restart(&self, node: &str) {
        self.ip(node, "route flush proto 211");
    }

    /// For a namespace routectl keeps the record on this host, keyed by the namespace's name.
    fn forget_record(&self, node: &str) {
        let instance = &self.topology.node(node).expect("a lab node").instance;
        let _ = std::fs::remove_file(format!("/run/routectl/last-applied/{instance}.json"));
    }

    fn forget_records(&self) {
        for n in &self.topology.nodes {
            self.forget_record(&n.name);
        }
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        let grown = self.extra.borrow().clone();
        let instances = self.topology.nodes.iter().map(|n| n.instance.clone());
        for instance in instances.chain(grown) {
            let _ = Command::new("ip")
                .args(["netns", "del", &instance])
                .status();
            // routectl keeps a namespace's last-applied record on this host.
            let _ = std::fs::remove_file(format!("/run/routectl/last-applied/{instance}.json"));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.hub])
            .status();
    }
}
