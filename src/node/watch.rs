//! `reconcile --watch`: one watcher per node and one for the daemon's lifecycle events, all
//! feeding a set of changed nodes that the reconcile loop waits on (debounced).
//!
//! - With host access, a netlink socket in the node's namespace subscribed to the route and
//!   address groups of both families. Address events matter as much as route events: when
//!   systemd-networkd re-adds an address the kernel flushes the routes through it without a
//!   route event. Every 500 ms without events the watcher checks that the namespace is still the
//!   one it subscribed to (a restarted container has a new one) and re-subscribes if not.
//! - With exec access, a long-running `ip -j monitor route address` inside the node, spawned by
//!   the transport; any line it prints is a change. A monitor that floods (a line longer than
//!   [`MAX_LINE`], or more than `FLOOD_LINES_PER_SEC` lines a second over `FLOOD_WINDOW`)
//!   is dropped, said in a note, and restarted with the back-off.
//! - For LXD and Incus, `lxc monitor --type=lifecycle --all-projects` (or `incus monitor`): one
//!   of [`CHANGING_ACTIONS`] on one of the topology's instances in its project is a change.
//!   Other actions are not: every `lxc exec`, routectl's own reads included, emits
//!   `instance-exec`.
//!
//! A watcher that dies is restarted with a back-off (100 ms doubling to 5 s, reset after it ran
//! 10 s without flooding); a watcher that (re)starts reports its node as changed, since anything
//! may have happened while it was not watching. Memory is bounded: the pending set holds node
//! names only, the notes are capped, every line is read into a fixed buffer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::core::topology::{Access, Topology, TransportKind};
use crate::node::host::Host;
use crate::node::netlink::{self, Netlink, NlError};
use crate::node::request::WatchRequest;
use crate::node::transport::{Killer, Line, MAX_LINE, Process, Reach, Stream};

/// How long a host watcher waits for an event before checking its namespace.
const POLL: Duration = Duration::from_millis(500);
/// The most notes kept between two reads of them.
const MAX_NOTES: usize = 64;
/// The longest a burst of events can postpone a reaction.
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Pending {
    nodes: BTreeSet<String>,
    generation: u64,
    notes: Vec<String>,
}

struct Shared {
    pending: Mutex<Pending>,
    cond: Condvar,
    stop: AtomicBool,
    killers: Mutex<Vec<Killer>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self, node: &str) {
        let mut p = self.lock();
        p.generation += 1;
        if !p.nodes.contains(node) {
            p.nodes.insert(node.to_string());
        }
        self.cond.notify_all();
    }

    fn note(&self, msg: String) {
        // A watcher ended by the stop (its `ip monitor` got the forwarded signal) is no news.
        if self.stopped() {
            return;
        }
        let mut p = self.lock();
        if p.notes.len() < MAX_NOTES {
            p.notes.push(msg);
        }
    }

    /// True once the watch is dropped or routectl was asked to stop (SIGINT/SIGTERM).
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || crate::interrupt::requested()
    }

    /// Sleeps up to `d`, returning early when the watch stops.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(100)));
        }
    }
}

/// Restart delays of a watcher.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
    fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        d
    }
}

/// The running watchers of a topology.
pub struct Watch {
    shared: Arc<Shared>,
    /// What the watch was started for (a topology whose nodes differ needs a new watch).
    pub key: String,
}

/// What identifies the watchers a topology needs.
pub fn key(topology: &Topology, access: Access) -> String {
    let mut k = format!("{}/{}", topology.cluster.transport, access.name());
    for n in &topology.nodes {
        k.push_str(&format!(
            " {}={}/{}",
            n.name,
            n.project.as_deref().unwrap_or("default"),
            n.instance
        ));
    }
    k
}

impl Watch {
    /// Starts watching every node of `topology`, reached as `reach` says (projects, ssh).
    pub fn start(
        topology: &Topology,
        access: Access,
        reach: Reach,
        timeout: Duration,
        verbose: bool,
    ) -> Watch {
        Watch::start_on_member(topology, topology, access, reach, timeout, verbose)
    }

    /// [`Watch::start`] for the nodes of one cluster member (`topology`, a part of `all`): the
    /// lifecycle events of every node of `all` count, so that an instance moved to this member
    /// (started here) is a change; a round then finds where it runs now.
    pub fn start_on_member(
        topology: &Topology,
        all: &Topology,
        access: Access,
        reach: Reach,
        timeout: Duration,
        verbose: bool,
    ) -> Watch {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            killers: Mutex::new(Vec::new()),
        });
        let kind = topology.cluster.transport;
        let host = Arc::new(Host::new(kind, timeout, false).with_reach(reach.clone()));
        let process = Arc::new(Process::new(kind, timeout, verbose).with_reach(reach));
        let by_instance: ByInstance = all
            .nodes
            .iter()
            .map(|n| {
                let project = n.project.clone().unwrap_or_else(|| "default".to_string());
                ((project, n.instance.clone()), n.name.clone())
            })
            .collect();
        for n in &topology.nodes {
            let (name, instance, sh) = (n.name.clone(), n.instance.clone(), shared.clone());
            match access {
                Access::Host => {
                    let host = host.clone();
                    std::thread::spawn(move || host_watcher(&name, &instance, &host, &sh));
                }
                Access::Exec => {
                    let process = process.clone();
                    std::thread::spawn(move || exec_watcher(&name, &instance, &process, &sh));
                }
            }
        }
        if matches!(kind, TransportKind::Lxc | TransportKind::Incus) {
            let sh = shared.clone();
            std::thread::spawn(move || lifecycle_watcher(kind, &process, &by_instance, &sh));
        }
        Watch {
            shared,
            key: key(topology, access),
        }
    }

    /// Waits until a node changes or `until` passes (or `stop` says so: routectl received
    /// SIGINT/SIGTERM). After the first change, waits until no event came for `debounce` (at
    /// most 1 s), then returns the changed nodes (empty when the time ran out without a change).
    pub fn wait(
        &self,
        until: Instant,
        debounce: Duration,
        stop: &dyn Fn() -> bool,
    ) -> BTreeSet<String> {
        let sh = &self.shared;
        let mut p = sh.lock();
        while p.nodes.is_empty() {
            let now = Instant::now();
            if now >= until || stop() {
                return BTreeSet::new();
            }
            let wait = (until - now).min(Duration::from_millis(100));
            p = sh
                .cond
                .wait_timeout(p, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let first = Instant::now();
        loop {
            let generation = p.generation;
            p = sh
                .cond
                .wait_timeout(p, debounce)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            // Spurious wake-ups end the wait early only when nothing new came.
            if p.generation == generation || first.elapsed() >= MAX_DEBOUNCE {
                break;
            }
        }
        std::mem::take(&mut p.nodes)
    }

    /// What the watchers had to say since the last call (restarts, failures).
    pub fn notes(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.lock().notes)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for k in self
            .shared
            .killers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            k.kill();
        }
    }
}

/// The groups a host watcher listens to.
const GROUPS: &[u32] = &[
    netlink::GROUP_IPV4_ROUTE,
    netlink::GROUP_IPV6_ROUTE,
    netlink::GROUP_IPV4_IFADDR,
    netlink::GROUP_IPV6_IFADDR,
];

fn host_watcher(node: &str, instance: &str, host: &Host, sh: &Shared) {
    let mut backoff = Backoff::new();
    let mut failing = false;
    while !sh.stopped() {
        let opened = host.namespace(instance).and_then(|(f, r)| {
            Netlink::open_in(&f, GROUPS, Some(POLL))
                .map(|nl| (nl, r))
                .map_err(|e| crate::error::CommandError::Host {
                    argv: format!("host access to `{instance}`: subscribing to its events"),
                    message: e.to_string(),
                })
        });
        let (mut nl, resolved) = match opened {
            Ok(x) => x,
            Err(e) => {
                if !failing {
                    sh.note(format!("watch of {node}: {e}; retrying"));
                    failing = true;
                }
                host.forget(instance);
                sh.sleep(backoff.step());
                continue;
            }
        };
        if failing {
            sh.note(format!("watch of {node}: watching again"));
            failing = false;
        }
        backoff.reset();
        sh.changed(node);
        while !sh.stopped() {
            match nl.recv() {
                Ok(msgs) if msgs.is_empty() => {}
                Ok(_) => sh.changed(node),
                Err(NlError::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    use std::os::unix::fs::MetadataExt;
                    let same = std::fs::metadata(&resolved.path)
                        .map(|m| m.ino() == resolved.inode)
                        .unwrap_or(false);
                    if !same {
                        host.forget(instance);
                        break;
                    }
                }
                // The socket's queue overflowed: events were lost, so the node changed.
                Err(NlError::Io(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => sh.changed(node),
                Err(e) => {
                    sh.note(format!("watch of {node}: {e}; restarting"));
                    sh.sleep(backoff.step());
                    break;
                }
            }
        }
    }
}

fn register(sh: &Shared, k: Killer) {
    let mut ks = sh.killers.lock().unwrap_or_else(|p| p.into_inner());
    ks.retain(|k| k.is_alive());
    ks.push(k);
}

/// The most lines a second an exec watcher takes, on average over [`FLOOD_WINDOW`]: `ip
/// monitor` prints one line per route or address, so a node that keeps printing more than this
/// floods rather than changes (routectl's own writes of thousands of routes are over sooner).
const FLOOD_LINES_PER_SEC: u64 = 5_000;
/// The time over which the rate of lines is measured.
const FLOOD_WINDOW: Duration = Duration::from_secs(5);

/// Why an exec watcher stopped reading its monitor.
enum Ended {
    /// The monitor exited (a stopped container, a failed `lxc exec`) or the watch stopped.
    Exited,
    /// A line longer than [`MAX_LINE`].
    TooLong,
    /// More than [`FLOOD_LINES_PER_SEC`] lines a second over [`FLOOD_WINDOW`].
    Flood(u64),
}

/// Reads a running monitor: every line is a change of `node`, until the monitor ends or
/// floods.
fn follow(node: &str, s: &mut Stream, sh: &Shared) -> Ended {
    let mut window = Instant::now();
    let mut lines = 0u64;
    while let Some(line) = s.read_line() {
        if sh.stopped() {
            return Ended::Exited;
        }
        if line == Line::TooLong {
            return Ended::TooLong;
        }
        lines += 1;
        if window.elapsed() >= FLOOD_WINDOW {
            if lines > FLOOD_LINES_PER_SEC * FLOOD_WINDOW.as_secs() {
                return Ended::Flood(lines);
            }
            window = Instant::now();
            lines = 0;
        }
        sh.changed(node);
    }
    Ended::Exited
}

fn exec_watcher(node: &str, instance: &str, process: &Process, sh: &Shared) {
    let mut backoff = Backoff::new();
    let mut failing = false;
    while !sh.stopped() {
        let started = Instant::now();
        let mut ended = Ended::Exited;
        let req = WatchRequest::Changes {
            instance: instance.to_string(),
        };
        match process.watch(&req) {
            Ok(mut s) => {
                register(sh, s.killer());
                // A monitor that is still running after a moment really watches (a stopped
                // container's `lxc exec` exits at once): report the node, which may have
                // changed while nobody watched.
                std::thread::sleep(Duration::from_millis(300));
                if s.running() && !sh.stopped() {
                    if failing {
                        sh.note(format!("watch of {node}: watching again"));
                        failing = false;
                    }
                    sh.changed(node);
                    ended = follow(node, &mut s, sh);
                }
                s.stop();
            }
            Err(e) => {
                if !failing {
                    sh.note(format!("watch of {node}: {e}"));
                }
            }
        }
        if sh.stopped() {
            return;
        }
        let flooded = match ended {
            Ended::Exited => None,
            Ended::TooLong => Some(format!("a line longer than {} KiB", MAX_LINE >> 10)),
            Ended::Flood(n) => Some(format!(
                "{n} lines in {} s (more than {FLOOD_LINES_PER_SEC} a second)",
                FLOOD_WINDOW.as_secs()
            )),
        };
        if flooded.is_none() && started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        let delay = backoff.step();
        if let Some(why) = flooded {
            // Said every time: a node that keeps flooding is worth a line per restart (at
            // most one every 5 s once the back-off has grown).
            sh.note(format!(
                "watch of {node}: `ip monitor` flooded ({why}); dropped, restarting it in {:.1} s",
                delay.as_secs_f64()
            ));
            failing = true;
        } else if !failing {
            sh.note(format!(
                "watch of {node}: `ip monitor` ended; restarting it"
            ));
            failing = true;
        }
        sh.sleep(delay);
    }
}

/// The lifecycle actions that change what is in a node: it started, stopped, came back from a
/// snapshot or another host, or is not the same instance under that name any more. Everything
/// else (`instance-exec` above all: routectl's own reads, `instance-file-*`, `instance-updated`,
/// snapshots, consoles) leaves the node's routes as they are.
pub const CHANGING_ACTIONS: &[&str] = &[
    "instance-started",
    "instance-restarted",
    "instance-stopped",
    "instance-shutdown",
    "instance-deleted",
    "instance-renamed",
    "instance-migrated",
    "instance-restored",
];

/// A lifecycle event that changes an instance: its project (`default` when the event has none)
/// and the instance names it is about (for a rename, the old name too).
#[derive(Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub project: String,
    pub instances: Vec<String>,
}

/// The change an LXD/Incus lifecycle event (one line of `monitor --format=json`) says, if it
/// is one of [`CHANGING_ACTIONS`] on an instance (`"source":"/1.0/instances/NAME?project=P"`).
pub fn lifecycle_change(line: &str) -> Option<Lifecycle> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("type").and_then(|t| t.as_str()) != Some("lifecycle") {
        return None;
    }
    let meta = v.get("metadata")?;
    let action = meta.get("action")?.as_str()?;
    if !CHANGING_ACTIONS.contains(&action) {
        return None;
    }
    let source = meta.get("source")?.as_str()?;
    let (path, query) = source.split_once('?').unwrap_or((source, ""));
    let name = path.strip_prefix("/1.0/instances/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let from_query = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("project="))
        .filter(|p| !p.is_empty());
    let project = v
        .get("project")
        .and_then(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .or(from_query)
        .unwrap_or("default");
    let mut instances = vec![name.to_string()];
    if let Some(old) = meta.pointer("/context/old_name").and_then(|o| o.as_str()) {
        instances.push(old.to_string());
    }
    Some(Lifecycle {
        project: project.to_string(),
        instances,
    })
}

/// The nodes of a topology by (project, instance); a node without a project is in `default`.
pub type ByInstance = BTreeMap<(String, String), String>;

fn lifecycle_watcher(kind: TransportKind, process: &Process, nodes: &ByInstance, sh: &Shared) {
    // Every project's events, each with its project: a namesake in another project is not
    // one of the nodes.
    let mut backoff = Backoff::new();
    while !sh.stopped() {
        let started = Instant::now();
        match process.watch(&WatchRequest::Lifecycle) {
            Ok(mut s) => {
                register(sh, s.killer());
                while let Some(line) = s.next_line() {
                    let Some(ev) = lifecycle_change(&line) else {
                        continue;
                    };
                    for i in ev.instances {
                        if let Some(node) = nodes.get(&(ev.project.clone(), i)) {
                            sh.changed(node);
                        }
                    }
                }
            }
            Err(e) => sh.note(format!("lifecycle watch: {e}")),
        }
        if sh.stopped() {
            return;
        }
        sh.note(format!(
            "lifecycle watch: `{} monitor` ended; restarting it",
            kind.name()
        ));
        if started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        sh.sleep(backoff.step());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, source: &str, rest: &str) -> String {
        format!(
            r#"{{"location":"none","metadata":{{"action":"{action}","context":{{}},"source":"{source}"}}{rest},"timestamp":"2026-12-06T18:46:33Z","type":"lifecycle"}}"#
        )
    }

    fn change(project: &str, instances: &[&str]) -> Option<Lifecycle> {
        Some(Lifecycle {
            project: project.to_string(),
            instances: instances.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// What LXD 5.0 prints: only the actions that change a node count, each with its project.
    #[test]
    fn only_changing_lifecycle_actions_count_with_their_project() {
        let w1 = "/1.0/instances/worker-1";
        let p = r#","project":"default""#;
        assert_eq!(
            lifecycle_change(&ev("instance-restarted", w1, p)),
            change("default", &["worker-1"])
        );
        assert_eq!(
            lifecycle_change(&ev("instance-started", w1, "")),
            change("default", &["worker-1"])
        );
        for quiet in [
            "instance-exec",
            "instance-file-retrieved",
            "instance-file-pushed",
            "instance-updated",
            "instance-console",
            "instance-snapshot-created",
            "instance-created",
        ] {
            assert_eq!(lifecycle_change(&ev(quiet, w1, p)), None, "{quiet}");
        }
        assert_eq!(
            lifecycle_change(&ev(
                "instance-stopped",
                "/1.0/instances/w-2?project=team-a",
                r#","project":"team-a""#
            )),
            change("team-a", &["w-2"])
        );
        // The project from the source when the event has none.
        assert_eq!(
            lifecycle_change(&ev(
                "instance-deleted",
                "/1.0/instances/w-2?project=team-b",
                ""
            )),
            change("team-b", &["w-2"])
        );
        let renamed = r#"{"metadata":{"action":"instance-renamed","context":{"old_name":"w-old"},"source":"/1.0/instances/w-new"},"project":"p","type":"lifecycle"}"#;
        assert_eq!(lifecycle_change(renamed), change("p", &["w-new", "w-old"]));
        for other in [
            ev("instance-started", "/1.0/images/x", p),
            ev("instance-started", "/1.0/instances/w/snapshots/s", p),
            ev("instance-started", "/1.0/instances/", p),
            r#"{"type":"logging","metadata":{"action":"instance-started","source":"/1.0/instances/w"}}"#.to_string(),
            "not json /1.0/instances/worker-1 instance-restarted".to_string(),
        ] {
            assert_eq!(lifecycle_change(&other), None, "{other}");
        }
    }

    #[test]
    fn backoff_doubles_to_five_seconds() {
        let mut b = Backoff::new();
        let steps: Vec<u128> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn waits_debounce_and_returns_each_node_once() {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            killers: Mutex::new(Vec::new()),
        });
        let w = Watch {
            shared: shared.clone(),
            key: String::new(),
        };
        let stop = || false;
        let t = Instant::now();
        assert!(
            w.wait(
                t + Duration::from_millis(50),
                Duration::from_millis(10),
                &stop
            )
            .is_empty()
        );
        for _ in 0..100 {
            shared.changed("a");
        }
        shared.changed("b");
        let got = w.wait(
            Instant::now() + Duration::from_secs(5),
            Duration::from_millis(20),
            &stop,
        );
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
