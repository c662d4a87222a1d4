//! Host access (`access = "host"`): a [`Transport`] that carries out routectl's requests from
//! the host, in the node's network namespace, over in-process netlink
//! ([`crate::node::netlink`]) and in the container's root, with no process inside the node and
//! none on the host.
//!
//! One plan model, two ways to reach a node. A [`ReadRequest`] is executed natively: the route
//! (and address and link) dumps become routectl's own [`Route`] and [`Link`] values
//! (`typed.rs`), and the record, its binding and the network-manager facts are read from the
//! container's files (`beside.rs`, through [`RootFiles`]); no script text is recognised and no
//! `ip` JSON is parsed, and the tests hold both conversions to the values the exec transports'
//! parsers make of the same kernel state. An [`ApplyRequest`]'s route lines become netlink
//! requests (`ip.rs`: the same header fields and attributes `ip route add|replace|del` sends),
//! its read-back is the route dump in the snapshot format (what `ip -N -d -j route show table
//! all` prints, which is also what `show --save` stores), and its record is written into the
//! container's root. Plans, JSON documents, verification and every safety rule are those of the
//! exec path. Anything else (`ping` for `check`, a persisted file's script) goes to the exec
//! transport.
//!
//! Namespaces: `/run/netns/NAME` for the netns transport; for LXD and Incus containers
//! `/proc/PID/ns/net` of the instance's init. Its identity comes from the daemon, never from
//! process names (which any container can forge): the PID is the one the daemon's API reports
//! for that instance in its project, it must live in that instance's own payload cgroup (which
//! no process in another container can join), and it is held through a pidfd while its namespace
//! and root are opened, so that a PID reused meanwhile is noticed. The namespace's inode and the
//! pidfd are remembered when it is resolved and checked at every use: a container that restarted
//! (new init, new namespace) or a PID that went stale is an error for that node, never a read of
//! some other namespace. On an LXD or Incus cluster only the instances located on the member
//! routectl talks to are served this way; the others are reached through the cluster (`exec`).
//! Remotes, virtual machines (their PID is QEMU's, in the host's namespace) and anything that
//! resolves to routectl's own namespace are refused.
//!
//! [`Route`]: crate::core::route::Route
//! [`Link`]: crate::core::link::Link

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::core::topology::TransportKind;
use crate::error::CommandError;
use crate::node::lxd_api::{Instance, Server};
use crate::node::netlink::{Netlink, NlError};
use crate::node::request::{ApplyReply, ApplyRequest, FileChange, ReadReply, ReadRequest};
use crate::node::transport::{HostRecord, Invocation, Output, Process, Reach, Transport};
use crate::node::transport::{apply_script, read_script};

mod beside;
mod identity;
mod ip;
mod root;
mod typed;

pub use beside::{Beside, MAX_FILE, NodeFiles, node_facts, read_beside};
pub use identity::{Place, Resolved};
use ip::*;
pub use ip::{read_routes, route_request, routes_json};
pub use root::RootFiles;
pub use typed::{links_of, route_of, routes_of};

/// The host-access transport.
pub struct Host {
    kind: TransportKind,
    timeout: Duration,
    verbose: bool,
    exec: Process,
    count: AtomicUsize,
    resolved: Mutex<HashMap<String, Resolved>>,
    /// The instance -> project map of the topology (instances without one are in `default`).
    projects: BTreeMap<String, String>,
    /// The daemon's instance lists, one per project asked about.
    instances: Mutex<HashMap<String, HashMap<String, Instance>>>,
    /// The daemon behind the socket (asked once).
    server: Mutex<Option<Server>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("kind", &self.kind).finish()
    }
}

impl Host {
    /// Host access for nodes of a transport kind; `exec` serves what netlink cannot (`ping`).
    pub fn new(kind: TransportKind, timeout: Duration, verbose: bool) -> Host {
        Host {
            kind,
            timeout,
            verbose,
            exec: Process::new(kind, timeout, verbose),
            count: AtomicUsize::new(0),
            resolved: Mutex::new(HashMap::new()),
            projects: BTreeMap::new(),
            instances: Mutex::new(HashMap::new()),
            server: Mutex::new(None),
        }
    }

    /// The same host access with the topology's projects (instances are looked up in theirs)
    /// and, for what goes through exec, the same reach as the exec transport.
    pub fn with_reach(mut self, reach: Reach) -> Host {
        self.projects = reach.projects.clone();
        self.exec = self.exec.with_reach(reach);
        self
    }

    /// The same host access with what the daemon already said at the start of the command (its
    /// member name and instance lists), so that it is not asked again.
    pub fn with_view(self, view: &crate::node::cluster::View) -> Host {
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(view.server.clone());
        *self.instances.lock().unwrap_or_else(|p| p.into_inner()) = view.projects.clone();
        self
    }

    fn error(&self, instance: &str, what: &str, message: impl Into<String>) -> CommandError {
        CommandError::Host {
            argv: format!("host access to `{instance}`: {what}"),
            message: message.into(),
        }
    }

    /// Carries out the route operations of an apply natively, each as the netlink request its
    /// `ip -batch` line makes `ip` send, every one tried (as `-force` does); a failing one is
    /// reported as `ip -batch` reports line N (its message, then `Command failed -:N`). Then, if
    /// asked, the read-back, as routectl's own values.
    fn routes_natively(
        &self,
        instance: &str,
        req: &ApplyRequest,
    ) -> Result<ApplyReply, CommandError> {
        let argv = format!("host access to `{instance}`: ip route (netlink)");
        let mut reply = ApplyReply {
            argv: argv.clone(),
            status: Some(0),
            stderr: String::new(),
            read_back: None,
            persisted_done: false,
            record_done: false,
        };
        if req.routes.is_empty() && !req.read_back {
            return Ok(reply);
        }
        if !crate::interrupt::may_start() {
            return Err(CommandError::Interrupted {
                argv,
                signal: crate::interrupt::signal_name().to_string(),
            });
        }
        if self.verbose {
            eprintln!(
                "+ (host access to {instance}) {} route operation(s){}",
                req.routes.len(),
                if req.read_back {
                    ", then the read-back"
                } else {
                    ""
                }
            );
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let (ns, _) = self.namespace(instance)?;
        let mut nl = self.netlink(instance, &ns)?;
        let nlerr = |what: &str, e: NlError| self.error(instance, what, e.to_string());
        let links = nl
            .dump_links()
            .map_err(|e| nlerr("listing its interfaces", e))?;
        let names = link_names(&links);
        let indexes: HashMap<&str, u32> = names.iter().map(|(i, n)| (n.as_str(), *i)).collect();
        for (i, op) in req.routes.iter().enumerate() {
            if let Err(message) = write_route(&mut nl, op, &indexes) {
                reply
                    .stderr
                    .push_str(&format!("{message}\nCommand failed -:{}\n", i + 1));
                reply.status = Some(1);
            }
        }
        if req.read_back {
            let msgs = read_routes(&mut nl).map_err(|e| nlerr("reading routes", e))?;
            reply.read_back = Some(Ok(typed::routes_of(&msgs, &names)));
        }
        Ok(reply)
    }

    /// A netlink socket in the node's namespace.
    fn netlink(&self, instance: &str, ns: &std::fs::File) -> Result<Netlink, CommandError> {
        Netlink::open_in(ns, &[], Some(self.timeout)).map_err(|e| {
            self.error(
                instance,
                "opening a netlink socket in its namespace",
                with_hint(&e),
            )
        })
    }

    /// Carries out a read natively: the dumps over netlink turned into routectl's values, and
    /// what the request asks beside the routes from the files of the container's root.
    fn read_natively(
        &self,
        instance: &str,
        req: &ReadRequest,
        argv: String,
    ) -> Result<ReadReply, CommandError> {
        let (ns, resolved) = self.namespace(instance)?;
        let mut nl = self.netlink(instance, &ns)?;
        let nlerr = |what: &str, e: NlError| self.error(instance, what, e.to_string());
        let links = nl
            .dump_links()
            .map_err(|e| nlerr("listing its interfaces", e))?;
        let names = link_names(&links);
        let msgs = read_routes(&mut nl).map_err(|e| nlerr("reading routes", e))?;
        let mut snapshot = Vec::new();
        if req.addresses || req.snapshot {
            snapshot = routes_json(&msgs, &names);
            snapshot.push(b'\n');
        }
        let links = match req.addresses {
            true => {
                let addrs = nl.dump_addrs().map_err(|e| nlerr("reading addresses", e))?;
                Some(typed::links_of(&links, &addrs, &names))
            }
            false => None,
        };
        let beside = match &req.record {
            Some(record) => {
                let files = RootFiles::of(&resolved)
                    .map_err(|e| self.error(instance, "opening its root", e))?;
                read_beside(&files, record, req.facts_of.as_deref())
                    .map_err(|e| self.error(instance, "reading its files", e))?
            }
            None => Beside::default(),
        };
        Ok(ReadReply {
            argv,
            routes: Ok(typed::routes_of(&msgs, &names)),
            links,
            snapshot,
            binding: beside.binding,
            record: beside.record,
            facts: beside.facts.map(Ok),
        })
    }
}

impl Transport for Host {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        // `ping` for `check`, the scripts of a persisted file, anything for an instance on
        // another member of a cluster (reached through the cluster): the exec transport.
        if inv.program != "ip" || self.elsewhere(instance) {
            return self.exec.run(instance, inv);
        }
        // Reads and writes are typed requests ([`Transport::read`], [`Transport::apply`]);
        // an `ip` command line (`ip -V` for a diagnosis) is not one of them.
        Ok(Output {
            argv: format!("host access to `{instance}`: ip {}", inv.args.join(" ")),
            status: Some(1),
            stdout: Vec::new(),
            stderr: "host access runs no `ip`; it serves only routectl's own reads and writes"
                .into(),
        })
    }

    /// The routes (and addresses) over netlink, the record, its binding and the facts from the
    /// container's root. A read that asks for files of a network namespace (which shares this
    /// host's) or of an instance on another cluster member goes through the exec transport.
    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        let netns_files = self.kind == TransportKind::Netns && req.record.is_some();
        if netns_files || self.elsewhere(instance) {
            return self.exec.read(instance, req);
        }
        // Named as the `ip` command an exec transport runs for the routes (and addresses).
        let ip = read_script::read_invocation(&ReadRequest {
            record: None,
            ..req.clone()
        });
        let ip = format!("ip {}", ip.args.join(" "));
        let argv = match &req.record {
            Some(_) => format!("host access to `{instance}`: {ip} (and the files beside it)"),
            None => format!("host access to `{instance}`: {ip}"),
        };
        if !crate::interrupt::may_start() {
            return Err(CommandError::Interrupted {
                argv,
                signal: crate::interrupt::signal_name().to_string(),
            });
        }
        if self.verbose {
            eprintln!("+ (host access to {instance}) {ip}");
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.read_natively(instance, req, argv)
    }

    fn commands_run(&self) -> usize {
        self.count.load(Ordering::Relaxed) + self.exec.commands_run()
    }

    // What the read asks for and where records are kept are the exec transport's: the two
    // accesses make the same read of a node.
    fn sees_node_files(&self) -> bool {
        self.exec.sees_node_files()
    }

    fn records_on_host(&self) -> bool {
        self.exec.records_on_host()
    }

    fn host_record(&self, instance: &str, record_path: &str) -> HostRecord {
        self.exec.host_record(instance, record_path)
    }

    /// The route operations and the read-back over netlink, the record into the container's
    /// root (a network namespace's on this host); a persisted file (written by the apply
    /// script), a remote or an instance on another cluster member goes through the exec
    /// transport, whole.
    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        if self.kind == TransportKind::Netns {
            let reply = self.routes_natively(instance, req)?;
            return Ok(apply_script::finish_on_host_record(req, reply));
        }
        let reload = req.persisted.as_ref().is_some_and(|f| f.change.is_change());
        if reload || instance.contains(':') || self.elsewhere(instance) {
            return self.exec.apply(instance, req);
        }
        let mut reply = self.routes_natively(instance, req)?;
        if let Some((path, change)) = &req.record
            && change.is_change()
            && reply.status == Some(0)
            && crate::interrupt::may_start()
        {
            let written = self.put_in_root(instance, path, change);
            reply.record_written(path, written);
        }
        Ok(reply)
    }
}

impl Host {
    /// Writes (or removes) a file in a container's root, from the host, owned by the container's
    /// root; its init must still be the one resolved when the write is done.
    fn put_in_root(&self, instance: &str, path: &str, change: &FileChange) -> Result<(), String> {
        let (_, resolved) = self.namespace(instance).map_err(|e| e.to_string())?;
        // `/proc/PID/ns/net`: the PID is two levels up.
        let pid = resolved
            .path
            .parent()
            .and_then(|ns| ns.parent())
            .and_then(|p| p.file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = RootFiles::of(&resolved)?;
        let owner = root::Owner::of_pid(&pid)?;
        if !resolved.alive() {
            return Err("its init exited before the write (a restart?); nothing written".into());
        }
        files.put_as_owner(path, change, owner)
    }
}

/// An I/O error, with what to do about a missing privilege.
fn with_hint(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!("{e} (host access needs root: it joins the node's network namespace)")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
    use netlink_packet_route::route::{
        RouteAttribute, RouteFlags, RouteMessage, RouteScope, RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

    use crate::core::change::{Action, Change, RouteOp};
    use crate::core::route::{Hop, NextHop, Route};
    use serde_json::Value;

    use super::*;

    fn message(op: &RouteOp, idx: &HashMap<&str, u32>) -> (RouteMessage, u16, bool) {
        match route_request(op, idx).unwrap() {
            (RouteNetlinkMessage::NewRoute(m), f) => (m, f, false),
            (RouteNetlinkMessage::DelRoute(m), f) => (m, f, true),
            other => panic!("{other:?}"),
        }
    }

    /// A route operation becomes the request `ip` sends for its line: header fields, the
    /// attributes named and nothing else, a device by its index.
    #[test]
    fn route_operations_become_the_requests_ip_sends() {
        let r = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        let mut idx = HashMap::new();
        idx.insert("eth1", 3);
        let add = Change::new(Action::Replace, r.clone(), None).op().unwrap();
        let (m, flags, del) = message(&add, &idx);
        assert_eq!((flags, del), (NLM_F_CREATE | NLM_F_REPLACE, false));
        assert_eq!(
            (m.header.kind, m.header.scope, u8::from(m.header.protocol)),
            (RouteType::Unicast, RouteScope::Universe, 211)
        );
        assert!(m.attributes.contains(&RouteAttribute::Oif(3)));
        assert!(m.attributes.contains(&RouteAttribute::Priority(0)));
        assert_eq!(
            route_request(&add, &HashMap::new()).unwrap_err(),
            "Cannot find device \"eth1\""
        );
        // A delete through a nexthop object names the object, not the gateway.
        let via_nh = Route {
            nhid: Some(7),
            ..r.clone()
        };
        let d = Change::new(Action::Delete, via_nh.clone(), Some(via_nh))
            .op()
            .unwrap();
        let (m, flags, del) = message(&d, &idx);
        assert_eq!((flags, del, m.header.scope), (0, true, RouteScope::NoWhere));
        assert!(m.attributes.contains(&RouteAttribute::NhId(7)));
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Gateway(_)))
        );
        // An exact delete of a blackhole route names its type; an IPv4 route through an IPv6
        // gateway goes `via`; a multipath route lists its hops.
        let mut hole = r.clone();
        hole.kind = 6;
        hole.next_hop = NextHop::Single(Hop::default());
        let (m, _, _) = message(&RouteOp::delete_exactly(&hole).unwrap(), &idx);
        assert_eq!(m.header.kind, RouteType::BlackHole);
        let mut cross = r.clone();
        cross.next_hop = NextHop::Single(Hop {
            gateway: Some("fe80::1".parse().unwrap()),
            dev: Some("eth1".into()),
        });
        let (m, _, _) = message(&RouteOp::add_exactly(&cross).unwrap(), &idx);
        assert!(
            m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Via(_)))
        );
        let mut multi = r;
        multi.next_hop = NextHop::Multipath(vec![
            Hop {
                gateway: Some("10.0.2.21".parse().unwrap()),
                dev: Some("eth1".into()),
            },
            Hop {
                gateway: Some("10.0.2.22".parse().unwrap()),
                dev: Some("eth1".into()),
            },
        ]);
        let (m, _, _) = message(&RouteOp::add_exactly(&multi).unwrap(), &idx);
        assert!(m.attributes.iter().any(
            |a| matches!(a, RouteAttribute::MultiPath(h) if h.len() == 2 && h[1].interface_index == 3)
        ));
    }

    #[test]
    fn names_and_prefixes_are_printed_as_ip_prints_them() {
        assert_eq!(prefix_text(None, 0, &AddressFamily::Inet), "default");
        assert_eq!(
            prefix_text(Some("10.0.0.1".parse().unwrap()), 32, &AddressFamily::Inet),
            "10.0.0.1"
        );
        assert_eq!(
            prefix_text(Some("fd00::".parse().unwrap()), 64, &AddressFamily::Inet6),
            "fd00::/64"
        );
        assert_eq!(
            flag_names(RouteFlags::from_bits_retain(0x14)),
            vec![Value::from("onlink"), Value::from("linkdown")]
        );
    }

    /// Host access reads what the read script reads: both run here, on this machine's own
    /// files (its root, its /proc and /sys), for an interface that exists and one that does
    /// not, with a record that lacks its last newline; the script's output, parsed as the exec
    /// transports parse it, gives the same binding, record and facts.
    #[test]
    fn the_files_beside_the_routes_are_what_the_read_script_reads() {
        use crate::node::transport::read_script::{READ_SCRIPT, parse_reply};
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.json");
        std::fs::write(&record, b"{\"a\":1}\n{\"b\":2}").unwrap();
        let record = record.to_str().unwrap();
        let files = RootFiles::new(std::path::Path::new("/")).unwrap();
        for (record, iface) in [
            (record, "lo"),
            (record, ""),
            ("/nonexistent/r.json", "no-such-if0"),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-c", READ_SCRIPT, "sh", record, iface, "echo", "[]"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let req = ReadRequest {
                record: Some(record.to_string()),
                facts_of: Some(iface.to_string()).filter(|i| !i.is_empty()),
                ..ReadRequest::default()
            };
            let out = Output {
                argv: "sh".into(),
                status: Some(0),
                stdout: out.stdout,
                stderr: String::new(),
            };
            let by_exec = parse_reply(&req, out);
            let beside = read_beside(&files, record, req.facts_of.as_deref()).unwrap();
            assert_eq!(by_exec.routes, Ok(Vec::new()));
            assert_eq!(
                (by_exec.binding, by_exec.record, by_exec.facts),
                (beside.binding, beside.record, beside.facts.map(Ok)),
                "{record} {iface}"
            );
        }
    }
}
