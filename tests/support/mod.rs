//! Real network-namespace labs for end-to-end tests: one namespace per node, a hub namespace
//! holding the shared L2 segment, an empty `cnio0` bridge carrying each node's pod gateway
//! address. Built from a topology file with routectl's own parser; torn down on drop.

#![allow(dead_code)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ipnet::IpNet;
use routectl::core::topology::{self, Topology};

pub mod lxd;
pub mod scenarios;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs a command, panicking with its stderr when it fails.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip -batch -` in a namespace.
pub fn ip_batch(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ip -n {ns} -batch failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first host address of a prefix (the pod gateway).
pub fn first_host(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + 1).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + 1).into()),
    }
}

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

    fn add_node(&self, i: usize, node: &routectl::core::topology::Node) {
        let ns = &node.instance;
        sh(&["ip", "netns", "add", ns]);
        let v = format!("v{i}");
        ip_batch(
            &self.hub,
            &format!(
                "link add {v} type veth peer name {} netns {ns}\nlink set {v} master br0\nlink set {v} up\n",
                node.interface
            ),
        );
        let mut script = format!("link set lo up\nlink set {} up\n", node.interface);
        for ip in &node.internal_ips {
            match ip {
                IpAddr::V4(_) => {
                    script.push_str(&format!("addr add {ip}/24 dev {}\n", node.interface))
                }
                IpAddr::V6(_) => {
                    script.push_str(&format!("addr add {ip}/64 dev {} nodad\n", node.interface))
                }
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

    /// A directory for the test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs routectl with this lab's topology.
    pub fn routectl(&self, args: &[&str]) -> Run {
        routectl_with(&self.path, args, &[])
    }

    /// `ip route` lines of a node's table main with a protocol (`all` for every route).
    pub fn routes(&self, node: &str) -> Vec<String> {
        let ns = self.ns(node);
        let mut lines: Vec<String> = Vec::new();
        for family in ["-4", "-6"] {
            let out = sh(&["ip", "-n", &ns, family, "route", "show", "table", "main"]);
            lines.extend(out.lines().map(|l| l.trim().to_string()).filter(|l| {
                !l.contains("proto kernel")
                    && !l.starts_with("fe80::")
                    && !l.starts_with("multicast")
            }));
        }
        lines.sort();
        lines
    }

    /// Runs `ip ARGS` in a node's namespace (panics on failure).
    pub fn ip(&self, node: &str, args: &[&str]) {
        let ns = self.ns(node);
        let mut argv = vec!["ip", "-n", ns.as_str()];
        argv.extend_from_slice(args);
        sh(&argv);
    }

    /// Exactly what `ip -N -d -j route show table all` prints in a node's namespace.
    pub fn raw_routes(&self, node: &str) -> Vec<u8> {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.ns(node),
                "-N",
                "-d",
                "-j",
                "route",
                "show",
                "table",
                "all",
            ])
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
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

    /// True when `ping` from `from_node`'s pod gateway reaches `to`. The first packet may be
    /// lost to neighbour discovery, so a failure is retried once with a few packets.
    pub fn ping(&self, from_node: &str, source: IpAddr, to: IpAddr) -> bool {
        let ns = self.ns(from_node);
        let attempt = |extra: &[&str]| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "ping",
                    "-n",
                    "-q",
                    "-W1",
                    "-I",
                    &source.to_string(),
                ])
                .args(extra)
                .arg(to.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        attempt(&["-c1"]) || attempt(&["-c3", "-i0.2"])
    }

    /// Waits (up to `secs` seconds) until every pod gateway reaches every other by the tests'
    /// own pings, and returns the pairs that still do not. A lab younger than a couple of
    /// seconds may lose IPv6 pings while its links finish duplicate address detection.
    pub fn wait_until_pods_reach(&self, secs: u64) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let bad = self.unreachable_pairs();
            if bad.is_empty() || started.elapsed().as_secs() >= secs {
                return bad;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Every (from, to) pair of pod-carrying nodes whose pod gateways cannot reach each other.
    pub fn unreachable_pairs(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for a in &self.topology.nodes {
            for b in &self.topology.nodes {
                if a.name == b.name {
                    continue;
                }
                for na in &a.pod_cidrs {
                    for nb in b
                        .pod_cidrs
                        .iter()
                        .filter(|nb| nb.addr().is_ipv4() == na.addr().is_ipv4())
                    {
                        if !self.ping(&a.name, first_host(na), first_host(nb)) {
                            bad.push(format!("{} -> {} ({})", a.name, b.name, first_host(nb)));
                        }
                    }
                }
            }
        }
        bad
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        for node in &self.topology.nodes {
            let _ = Command::new("ip")
                .args(["netns", "del", &node.instance])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.hub])
            .status();
    }
}

/// The result of a routectl run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// Asserts a run's exit code, showing its output when it differs.
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{run:?}");
}

impl Run {
    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the routectl binary without a topology file argument.
pub fn routectl_plain(args: &[&str]) -> Run {
    run_routectl(Command::new(env!("CARGO_BIN_EXE_routectl")).args(args), &[])
}

/// Runs the routectl binary with a topology file and extra environment.
pub fn routectl_with(topology: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routectl"));
    cmd.arg("-f").arg(topology).args(args);
    run_routectl(&mut cmd, env)
}

fn run_routectl(cmd: &mut Command, env: &[(&str, &str)]) -> Run {
    cmd.env("NO_COLOR", "1")
        .env_remove("ROUTECTL_TOPOLOGY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run routectl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
