//! Host access (`--access host`: netlink in the node's namespace) against exec access (`ip`
//! inside the node) on real kernels, and `reconcile --watch` restoring what others break. Every
//! test needs root (namespaces, setns) and the LXD ones the lab of topology.example.toml, so all
//! are ignored by a plain `cargo test`; scripts/test.sh runs them.
//!
//! One submodule per behaviour: `reads` (both accesses read and plan the same), `writes`,
//! `identity` (a node whose namespace or container changes, an impostor) and `watch`; what they
//! share (comparing reads and plans, restarting a container) is here.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::Run;
use crate::support::lxd::LxdLab;
use routectl::core::topology::{Node, TransportKind};
use routectl::node::host::Host;
use routectl::node::observe;
use routectl::node::transport::{Process, Transport};

mod identity;
mod reads;
mod watch;
mod writes;

const TIMEOUT: Duration = Duration::from_secs(20);

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Both ways of reading every node give the same routes (every table, both families) and
/// the same show observation. A lab just built may still be settling (the kernel adds IPv6
/// link-local and multicast routes as links come up), so a pair of reads that differ is taken
/// again, a few times, before that counts as a difference.
pub(crate) fn same_reads(kind: TransportKind, nodes: &[Node]) {
    let exec = Process::new(kind, TIMEOUT, false);
    let host = Host::new(kind, TIMEOUT, false);
    for n in nodes {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let a = observe::read_node(&exec, n).unwrap_or_else(|e| panic!("exec {}: {e}", n.name));
            let b = observe::read_node(&host, n).unwrap_or_else(|e| panic!("host {}: {e}", n.name));
            let sa = observe::read_show(&exec, n).unwrap();
            let sb = observe::read_show(&host, n).unwrap();
            let links = (
                format!("{:?}", sa.links.unwrap()),
                format!("{:?}", sb.links.unwrap()),
            );
            // The last-applied record, its binding (boot id, PID 1's start, the namespace) and
            // the network-manager facts come with every read: byte for byte the same after
            // the `ip` part.
            let oa = observe::read_observed(&exec, n).unwrap();
            let ob = observe::read_observed(&host, n).unwrap();
            assert_eq!(
                (format!("{:?}", oa.last_applied), &oa.binding, &oa.facts),
                (format!("{:?}", ob.last_applied), &ob.binding, &ob.facts),
                "{}: the same record, binding and facts",
                n.name
            );
            // The typed replies: exec's parsed from the read script's output, host access's
            // read from netlink and the container's files.
            let req = observe::read_request(&exec, n, false, false);
            assert_eq!(req, observe::read_request(&host, n, false, false));
            let beside = |t: &dyn Transport| {
                let r = t.read(&n.instance, &req).unwrap();
                (
                    r.binding,
                    String::from_utf8_lossy(&r.record).into_owned(),
                    r.facts,
                )
            };
            assert_eq!(
                beside(&exec),
                beside(&host),
                "{}: the binding, record and facts beside the routes",
                n.name
            );
            if (a == b && sa.routes == sb.routes && links.0 == links.1) || attempts == 5 {
                assert!(!a.is_empty());
                assert_eq!(a, b, "{}: the same routes in the same order", n.name);
                assert_eq!(sa.routes, sb.routes, "{}", n.name);
                assert_eq!(
                    links.0, links.1,
                    "{}: the same interfaces and addresses",
                    n.name
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The plan documents of both accesses, without what may differ between two runs.
fn same_plans(run: impl Fn(&[&str]) -> Run) {
    let exec = run(&["plan", "--output", "json"]).json();
    let host = run(&["--access", "host", "plan", "--output", "json"]).json();
    assert_eq!(nodes_reached(&exec, "exec"), nodes_reached(&host, "host"));
    assert_eq!(exec["summary"], host["summary"]);
}

/// A document's `nodes`, each checked to say it was reached with `access` (off a cluster: no
/// location, no fallback) and given without those keys, to compare the two accesses.
pub(crate) fn nodes_reached(doc: &serde_json::Value, access: &str) -> serde_json::Value {
    let mut nodes = doc["nodes"].clone();
    for n in nodes.as_array_mut().expect("a document's nodes") {
        let n = n.as_object_mut().expect("a node entry");
        assert_eq!(n.remove("access"), Some(access.into()), "{doc}");
        assert_eq!(n.remove("access_fallback"), None, "{doc}");
        assert_eq!(n.remove("location"), None, "{doc}");
    }
    nodes
}

/// Restarts a lab container; one retry, since another `lxc` operation on the shared daemon can
/// make a stop fail with `status is "Running"`.
fn restart(lab: &LxdLab, node: &str) {
    for attempt in 0..2 {
        let ok = Command::new("lxc")
            .args(["restart", "--force", node])
            .stdin(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(attempt == 0, "lxc restart --force {node} failed twice");
        std::thread::sleep(Duration::from_secs(1));
        lab.ensure_running(node);
    }
    lab.wait_ready(node);
}
