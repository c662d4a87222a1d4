//! The one interface to a real lab, so that an end-to-end scenario is written once
//! (tests/it/scenarios/) and runs on every lab.
//!
//! A lab is: a topology file (topology.example.toml's four nodes: controller-0, worker-0/1/2
//! with the same internal IPs, pod CIDRs and interface `eth1`, whatever their instance names; a
//! lab on its own bridge or in its own namespaces may reuse those addresses), a transport (how
//! routectl reaches a node), and four things a test does to a node from outside routectl: run a
//! command in it, delete a route, restart it, and reset every node's routes. Everything else a
//! scenario needs (its tables, `ip` commands, pings between pod gateways) is written once here on
//! top of [`Lab::command`]. The scenarios spell out the example's names and addresses (that is
//! what makes them readable), so a lab with other addresses runs them only through a topology
//! of its own with the example's.
//!
//! # Adding a lab (a real-node lab over SSH, Incus, …)
//!
//! 1. Write `tests/it/support/NAME.rs` with a type holding the lab (its topology file and a
//!    temporary directory) and a constructor that takes the lab for one test: if the lab is
//!    shared (not built per test, like the LXD one), take a process-wide `Mutex` and a file
//!    lock in /tmp so tests (of this and of other checkouts) never use it at once, check it is
//!    up (panic with how to bring it up: a missing lab is a failure, never a skip), and call
//!    [`Lab::reset_routes`]; reset again on drop (support/lxd.rs does all of this).
//! 2. `impl Lab` for it: [`Lab::name`], [`Lab::topology_path`], [`Lab::topology`],
//!    [`Lab::transport`], [`Lab::dir`], [`Lab::command`] (argv elements, never a shell string
//!    built from topology values), [`Lab::restart`], and override [`Lab::reset_routes`] or
//!    [`Lab::delete_route`] only if the lab cannot use `ip` directly.
//! 3. Add one line to the `every_lab!` call at the end of tests/it/scenarios/mod.rs:
//!    `NAME: "needs root: …" => NameLab::take(),` (the reason the tests are ignored by a plain
//!    `cargo test`). Every scenario then runs on it, as `scenarios::NAME::SCENARIO`.
//! 4. A new transport: say how `routectl -v` shows a command over it in
//!    `scenarios::verbose_line` (the match is exhaustive, so the build says where).
//! 5. Make scripts/test.sh bring the lab up before `cargo test -- --include-ignored`.
//!
//! Tests only one lab can run (stopping an LXD container, a hung `ip` in a namespace) go in
//! that lab's own module (tests/it/netns.rs, tests/it/lxd.rs, …), still through this trait
//! where they can.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use routectl::core::topology::{Topology, TransportKind};

use super::{Routectl, Run, first_host};

/// Removes every route of table main that neither the kernel nor the lab's own setup made.
const FLUSH: &str = "for f in -4 -6; do for p in 211 boot static; do \
                     ip $f route flush table main proto $p || exit 1; done; done";

/// routectl's last-applied records in a node (their binding is computed by each read, never
/// kept in the node).
const FORGET_RECORDS: &str = "rm -rf /run/routectl/last-applied";

/// A real lab of topology.example.toml's four nodes.
pub trait Lab {
    /// A short name for messages (`netns`, `lxd`).
    fn name(&self) -> &'static str;
    /// The topology file describing the lab.
    fn topology_path(&self) -> &Path;
    /// The topology, as routectl parses it.
    fn topology(&self) -> &Topology;
    /// How routectl reaches the nodes (what the topology file says).
    fn transport(&self) -> TransportKind;
    /// A directory for the test's own files (saved plans, edited topologies, the lock file).
    fn dir(&self) -> &Path;
    /// A command that runs `argv` inside a node (by its name in the topology).
    fn command(&self, node: &str, argv: &[&str]) -> Command;
    /// Restarts a node as it restarts in real life: the routes routectl wrote are gone, the
    /// node's own addresses and kernel routes are back. Returns once the node is ready.
    fn restart(&self, node: &str);

    /// Removes every route of table main the kernel did not make, on every node.
    fn reset_routes(&self) {
        for n in &self.topology().nodes {
            self.exec_ok(&n.name, &["sh", "-c", FLUSH]);
        }
    }

    /// Removes a node's last-applied record (as if routectl had never applied there).
    fn forget_record(&self, node: &str) {
        self.exec_ok(
            node,
            &[
                "rm",
                "-f",
                &format!("/run/routectl/last-applied/{node}.json"),
            ],
        );
    }

    /// Forgets every node's last-applied record.
    fn forget_records(&self) {
        for n in &self.topology().nodes {
            self.exec_ok(&n.name, &["sh", "-c", FORGET_RECORDS]);
        }
    }

    /// Deletes a route in a node: `ip route del WORDS…` (split on white space).
    fn delete_route(&self, node: &str, route: &str) {
        self.ip(node, &format!("route del {route}"));
    }

    /// Runs a command in a node: (success, stdout, stderr).
    fn exec(&self, node: &str, argv: &[&str]) -> (bool, String, String) {
        let out = self
            .command(node, argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {argv:?} in {node} of the {} lab ({e}): is the lab up?",
                    self.name()
                )
            });
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command in a node and returns its stdout; panics when it fails.
    fn exec_ok(&self, node: &str, argv: &[&str]) -> String {
        let (ok, stdout, stderr) = self.exec(node, argv);
        assert!(
            ok,
            "{argv:?} failed in {node} of the {} lab: {stderr}",
            self.name()
        );
        stdout
    }

    /// Runs `ip WORDS…` (split on white space) in a node; panics when it fails.
    fn ip(&self, node: &str, words: &str) {
        let mut argv = vec!["ip"];
        argv.extend(words.split_whitespace());
        self.exec_ok(node, &argv);
    }

    /// The binary with the lab's topology file and a private lock file.
    fn routectl(&self) -> Routectl {
        self.routectl_bare().topology(self.topology_path())
    }

    /// Runs routectl with a variant of the lab's topology ([`Lab::variant`]).
    fn run_variant(&self, edit: &dyn Fn(String) -> String, args: &[&str]) -> Run {
        let file = self.variant(edit);
        self.run_file(&file, args)
    }

    /// The test's private lock file (every run through the lab uses it).
    fn lock_file(&self) -> PathBuf {
        self.dir().join("routectl.lock")
    }

    /// The binary with the test's private lock file and no topology file.
    fn routectl_bare(&self) -> Routectl {
        Routectl::new()
            .env("NO_COLOR", "1")
            .lock_file(self.lock_file())
    }

    /// Runs routectl with the lab's topology.
    fn run(&self, args: &[&str]) -> Run {
        self.routectl().args(args).run()
    }

    /// Runs routectl with another topology file.
    fn run_file(&self, topology: &Path, args: &[&str]) -> Run {
        self.routectl_bare().topology(topology).args(args).run()
    }

    /// Writes a variant of the lab's topology into the test's directory and returns its path.
    fn variant(&self, edit: &dyn Fn(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(self.topology_path()).expect("the lab's topology");
        let p = (1..)
            .map(|i| self.dir().join(format!("variant-{i}.toml")))
            .find(|p| !p.exists())
            .expect("a free name");
        std::fs::write(&p, edit(text)).expect("write a topology variant");
        p
    }

    /// A variant of the lab's topology in which every node's instance is one that does not
    /// exist (`INSTANCE-gone`): no node can be reached.
    fn unreachable_variant(&self) -> PathBuf {
        let nodes: Vec<(String, String)> = self
            .topology()
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.instance.clone()))
            .collect();
        self.variant(&move |mut text| {
            for (name, instance) in &nodes {
                let declared = format!("instance = \"{instance}\"\n");
                let gone = format!("instance = \"{instance}-gone\"\n");
                if text.contains(&declared) {
                    text = text.replace(&declared, &gone);
                } else {
                    let line = format!("name = \"{name}\"\n");
                    assert!(text.contains(&line), "no `{line}` in the topology");
                    text = text.replace(&line, &format!("{line}{gone}"));
                }
            }
            text
        })
    }

    /// `ip route` lines of a node's table main (both families, sorted), without kernel,
    /// link-local and multicast routes.
    fn table(&self, node: &str) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for family in ["-4", "-6"] {
            let out = self.exec_ok(node, &["ip", family, "route", "show", "table", "main"]);
            lines.extend(out.lines().map(|l| l.trim().to_string()).filter(|l| {
                !l.contains("proto kernel")
                    && !l.starts_with("fe80::")
                    && !l.starts_with("multicast")
            }));
        }
        lines.sort();
        lines
    }

    /// True when a node's table main has this route (as `ip route` prints it).
    fn has(&self, node: &str, route: &str) -> bool {
        self.table(node).iter().any(|r| r == route)
    }

    /// Exactly what `ip -N -d -j route show table all` prints in a node.
    fn raw_routes(&self, node: &str) -> Vec<u8> {
        self.exec_ok(
            node,
            &["ip", "-N", "-d", "-j", "route", "show", "table", "all"],
        )
        .into_bytes()
    }

    /// True when `ping` from `node` with source `src` reaches `dst`. The first packet may be
    /// lost to neighbour discovery, so a failure is retried once with a few packets.
    fn ping(&self, node: &str, src: IpAddr, dst: IpAddr) -> bool {
        let (s, d) = (src.to_string(), dst.to_string());
        let attempt = |extra: &[&str]| {
            let mut argv = vec!["ping", "-n", "-q", "-W1", "-I", s.as_str()];
            argv.extend_from_slice(extra);
            argv.push(d.as_str());
            self.command(node, &argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|st| st.success())
                .unwrap_or(false)
        };
        attempt(&["-c1"]) || attempt(&["-c3", "-i0.2"])
    }

    /// Every (from, to) pair of pod-carrying nodes whose pod gateways cannot reach each other
    /// (per family), as `from -> to (destination)`, by the tests' own pings.
    fn broken_paths(&self) -> Vec<String> {
        let nodes = &self.topology().nodes;
        let mut bad = Vec::new();
        for a in nodes {
            for b in nodes {
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

    /// Waits (up to `secs` seconds) until every pod gateway reaches every other, and returns
    /// the pairs that still do not. A lab younger than a couple of seconds may lose IPv6 pings
    /// while its links finish duplicate address detection.
    fn wait_until_pods_reach(&self, secs: u64) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let bad = self.broken_paths();
            if bad.is_empty() || started.elapsed().as_secs() >= secs {
                return bad;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// A lab reached with host access (`access = "host"` in its topology: netlink in each node's
/// namespace, the record in the container's root, identity from the daemon), so that every
/// scenario also runs through the other way of reaching a node and must give the same outcome.
pub struct HostAccess<L: Lab> {
    inner: L,
    path: PathBuf,
    topology: Topology,
}

impl<L: Lab> HostAccess<L> {
    /// The lab `inner` with its topology asking for host access.
    pub fn of(inner: L) -> HostAccess<L> {
        let text = std::fs::read_to_string(inner.topology_path()).expect("the lab's topology");
        assert!(
            text.contains("[cluster]\n"),
            "a lab topology has a [cluster] table"
        );
        let text = text.replacen("[cluster]\n", "[cluster]\naccess = \"host\"\n", 1);
        let path = inner.dir().join("host-access.toml");
        std::fs::write(&path, &text).expect("write the host-access topology");
        let topology = routectl::core::topology::parse(text.as_bytes(), "host-access.toml", None)
            .expect("the host-access topology parses");
        HostAccess {
            inner,
            path,
            topology,
        }
    }
}

impl<L: Lab> Lab for HostAccess<L> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn topology_path(&self) -> &Path {
        &self.path
    }
    fn topology(&self) -> &Topology {
        &self.topology
    }
    fn transport(&self) -> TransportKind {
        self.inner.transport()
    }
    fn dir(&self) -> &Path {
        self.inner.dir()
    }
    fn command(&self, node: &str, argv: &[&str]) -> Command {
        self.inner.command(node, argv)
    }
    fn restart(&self, node: &str) {
        self.inner.restart(node)
    }
    fn reset_routes(&self) {
        self.inner.reset_routes()
    }
    fn delete_route(&self, node: &str, route: &str) {
        self.inner.delete_route(node, route)
    }
    fn forget_record(&self, node: &str) {
        self.inner.forget_record(node)
    }
    fn forget_records(&self) {
        self.inner.forget_records()
    }
}
