//! Host access (`access = "host"`): a [`Transport`] that serves routectl's own `ip` reads and
//! writes from the host, in the node's network namespace, over in-process netlink
//! ([`crate::node::netlink`]), with no process inside the node and none on the host.
//!
//! One plan model, two ways to reach a node: this transport answers the very invocations the
//! exec path sends (`ip -N -d -j route show table all`, the `ip -batch` of a show, the batch of
//! an apply with its `route add|replace|del … table T proto P metric M` lines and read-back) with
//! the JSON `ip -N -d -j` prints, so the same parser turns it into the same [`Route`] values, and
//! plans, JSON documents, verification and every safety rule are the ones of the exec path.
//! Anything else (`ping` for `check`) goes to the exec transport.
//!
//! Namespaces: `/run/netns/NAME` for the netns transport; for LXD and Incus containers
//! `/proc/PID/ns/net` of the instance's init, whose PID comes from the daemon's API (one request
//! for all instances). The namespace's inode is remembered when it is resolved and checked at
//! every use: a container that restarted (new namespace) or a PID that went stale is an error
//! for that node, never a read of some other namespace. Remotes, virtual machines (their PID is
//! QEMU's, in the host's namespace) and anything that resolves to routectl's own namespace are
//! refused.
//!
//! [`Route`]: crate::core::route::Route

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde_json::{Map, Value, json};

use crate::core::topology::TransportKind;
use crate::error::CommandError;
use crate::node::iproute;
use crate::node::lxd_api::{self, Instance};
use crate::node::netlink::{self, Netlink, NlError};
use crate::node::observe;
use crate::node::transport::{HostRecord, Invocation, Output, Process, Reach, Transport};

/// Where a node's network namespace is, once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The namespace file (`/run/netns/NAME` or `/proc/PID/ns/net`).
    pub path: PathBuf,
    /// Its inode when resolved: the namespace's identity.
    pub inode: u64,
}

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
        }
    }

    /// The same host access with the topology's projects (instances are looked up in theirs)
    /// and, for what goes through exec, the same reach as the exec transport.
    pub fn with_reach(mut self, reach: Reach) -> Host {
        self.projects = reach.projects.clone();
        self.exec = self.exec.with_reach(reach);
        self
    }

    fn error(&self, instance: &str, what: &str, message: impl Into<String>) -> CommandError {
        CommandError::Host {
            argv: format!("host access to `{instance}`: {what}"),
            message: message.into(),
        }
    }

    /// The node's namespace file, checked against what it was when first resolved.
    pub fn namespace(&self, instance: &str) -> Result<(File, Resolved), CommandError> {
        let err = |m: String| self.error(instance, "finding its network namespace", m);
        if instance.contains(':') {
            return Err(err(
                "it names a remote; host access reaches only this host's instances \
                 (use access = \"exec\" for remotes)"
                    .into(),
            ));
        }
        let host_inode = netlink::own_ns_inode()
            .map_err(|e| err(format!("cannot read /proc/self/ns/net: {e}")))?;
        let known = self.lock_resolved().get(instance).cloned();
        if let Some(r) = known {
            let opened = File::open(&r.path).and_then(|f| netlink::ns_inode(&f).map(|i| (f, i)));
            return match opened {
                Ok((f, inode)) if inode == r.inode => Ok((f, r)),
                other => {
                    self.forget(instance);
                    let now = match other {
                        Ok((_, i)) => format!("now has inode {i}"),
                        Err(e) => format!("is gone ({e})"),
                    };
                    Err(err(format!(
                        "its namespace changed since it was resolved (a restart?): {} had \
                         inode {} and {now}; nothing was done, it is resolved again next time",
                        r.path.display(),
                        r.inode
                    )))
                }
            };
        }
        let path = match self.kind {
            TransportKind::Ssh => {
                return Err(err(
                    "it is reached over ssh; host access reaches only this host's containers \
                     and network namespaces (use access = \"exec\")"
                        .into(),
                ));
            }
            TransportKind::Netns => PathBuf::from("/run/netns").join(instance),
            TransportKind::Lxc | TransportKind::Incus => {
                let pid = self.pid(instance).map_err(err)?;
                PathBuf::from(format!("/proc/{pid}/ns/net"))
            }
        };
        let f =
            File::open(&path).map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        let inode = netlink::ns_inode(&f).map_err(|e| err(e.to_string()))?;
        if inode == host_inode {
            return Err(err(format!(
                "{} is routectl's own network namespace, not a node's; refusing to read or \
                 write the host's routes",
                path.display()
            )));
        }
        let r = Resolved { path, inode };
        self.lock_resolved().insert(instance.to_string(), r.clone());
        Ok((f, r))
    }

    fn lock_resolved(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what is known of an instance (and the instance list), so the next use resolves it
    /// again.
    pub fn forget(&self, instance: &str) {
        self.lock_resolved().remove(instance);
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The init PID of a running container, from the daemon's API (one request for all).
    fn pid(&self, instance: &str) -> Result<i64, String> {
        let project = self
            .projects
            .get(instance)
            .map_or("default", String::as_str);
        let mut cache = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(project) {
            let socket = lxd_api::socket_path(self.kind);
            let list = lxd_api::instances(&socket, Some(project), self.timeout)?;
            cache.insert(project.to_string(), list);
        }
        let daemon = if self.kind == TransportKind::Incus {
            "Incus"
        } else {
            "LXD"
        };
        let Some(i) = cache.get(project).and_then(|m| m.get(instance)) else {
            return Err(format!(
                "{daemon} lists no instance `{instance}` in project `{project}`"
            ));
        };
        if i.kind != "container" {
            return Err(format!(
                "it is a {}, not a container: its PID would be the hypervisor's, in the host's \
                 namespace; use access = \"exec\"",
                i.kind
            ));
        }
        if i.status != "Running" || i.pid <= 0 {
            return Err(format!("the instance is {} (not running)", i.status));
        }
        Ok(i.pid)
    }

    fn serve(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        // The read script (`sh -c READ_SCRIPT sh RECORD IFACE ip ARGS…`): its `ip` part over
        // netlink, then what the script prints after it, from the container's own files
        // (`observe::script_tail`, the script's twin).
        let request = observe::script_request(inv);
        let ip_inv = request
            .as_ref()
            .map_or_else(|| inv.clone(), |r| r.ip.clone());
        let inv = &ip_inv;
        let argv = match &request {
            Some(_) => format!(
                "host access to `{instance}`: ip {} (and the rest of the read script)",
                inv.args.join(" ")
            ),
            None => format!("host access to `{instance}`: ip {}", inv.args.join(" ")),
        };
        let (lines, force) = match script(inv) {
            Some(s) => s,
            None => {
                // Not one of routectl's own reads or writes (`ip -V` for a diagnosis).
                return Ok(Output {
                    argv,
                    status: Some(1),
                    stdout: Vec::new(),
                    stderr: "host access runs no `ip`; it serves only routectl's route and \
                             address reads and route writes"
                        .into(),
                });
            }
        };
        let (ns, resolved) = self.namespace(instance)?;
        let mut nl = Netlink::open_in(&ns, &[], Some(self.timeout)).map_err(|e| {
            self.error(
                instance,
                "opening a netlink socket in its namespace",
                with_hint(&e),
            )
        })?;
        let nlerr = |what: &str, e: NlError| self.error(instance, what, e.to_string());
        let links = nl
            .dump_links()
            .map_err(|e| nlerr("listing its interfaces", e))?;
        let names = link_names(&links);
        let mut stdout = Vec::new();
        let mut stderr = String::new();
        let mut failed = false;
        for (i, line) in lines.iter().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let result: Result<(), String> = match words.as_slice() {
                [] => Ok(()),
                ["route", "show", "table", "all"] => {
                    let routes = read_routes(&mut nl).map_err(|e| nlerr("reading routes", e))?;
                    stdout.extend(routes_json(&routes, &names));
                    stdout.push(b'\n');
                    Ok(())
                }
                ["addr", "show"] => {
                    let addrs = nl.dump_addrs().map_err(|e| nlerr("reading addresses", e))?;
                    stdout.extend(addrs_json(&links, &addrs, &names));
                    stdout.push(b'\n');
                    Ok(())
                }
                ["route", verb @ ("add" | "replace" | "del"), rest @ ..] => {
                    write_route(&mut nl, verb, rest, &names)
                }
                _ => Err(format!("host access does not run `{line}`")),
            };
            if let Err(message) = result {
                stderr.push_str(&format!("{message}\nCommand failed -:{}\n", i + 1));
                failed = true;
                if !force {
                    break;
                }
            }
        }
        if let Some(r) = &request
            && !failed
        {
            let files = RootFiles::of(&resolved)
                .map_err(|e| self.error(instance, "opening its root", e))?;
            match observe::script_tail(&files, &r.record, &r.iface) {
                Ok(tail) => stdout.extend(tail),
                Err(e) => {
                    stderr.push_str(&format!("{e}\n"));
                    failed = true;
                }
            }
        }
        Ok(Output {
            argv,
            status: Some(i32::from(failed)),
            stdout,
            stderr,
        })
    }
}

/// A container's files as its processes see them: paths resolved in its root
/// (`/proc/PID/root`) with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so that no link
/// inside the container can lead a read out of it. Its `/proc` and `/sys` are the container's
/// own mounts (its PID namespace, its network namespace).
pub struct RootFiles {
    root: std::os::fd::OwnedFd,
    netns: Option<String>,
}

impl RootFiles {
    /// The files under `root` (a directory), in a network namespace whose `readlink` is `netns`.
    pub fn new(root: &std::path::Path, netns: Option<String>) -> Result<RootFiles, String> {
        let root = rustix::fs::open(
            root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
        Ok(RootFiles { root, netns })
    }

    /// The files of the container whose namespace is `resolved` (`/proc/PID/ns/net`: its root
    /// is `/proc/PID/root`).
    fn of(resolved: &Resolved) -> Result<RootFiles, String> {
        let root = resolved
            .path
            .parent()
            .and_then(|ns| ns.parent())
            .filter(|_| resolved.path.starts_with("/proc"))
            .map(|proc_pid| proc_pid.join("root"))
            .ok_or_else(|| format!("no container root beside {}", resolved.path.display()))?;
        RootFiles::new(&root, Some(format!("net:[{}]", resolved.inode)))
    }

    fn open(&self, path: &str, flags: rustix::fs::OFlags) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.root,
            path.trim_start_matches('/'),
            flags | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn kind(&self, path: &str, follow: bool) -> Option<rustix::fs::FileType> {
        let mut flags = rustix::fs::OFlags::PATH;
        if !follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        let fd = self.open(path, flags).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        Some(rustix::fs::FileType::from_raw_mode(st.st_mode))
    }
}

impl observe::NodeFiles for RootFiles {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        // Non-blocking: a FIFO planted where a file is expected reads as empty, never hangs.
        let Ok(fd) = self.open(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        ) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        if std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .is_err()
        {
            return Ok(None);
        }
        if bytes.len() as u64 > limit {
            return Err(format!("{path} is larger than {limit} bytes"));
        }
        Ok(Some(bytes))
    }

    fn exists(&self, path: &str) -> bool {
        self.kind(path, true).is_some()
    }

    fn is_link(&self, path: &str) -> bool {
        self.kind(path, false) == Some(rustix::fs::FileType::Symlink)
    }

    fn is_file(&self, path: &str) -> bool {
        self.kind(path, true) == Some(rustix::fs::FileType::RegularFile)
    }

    fn process_names(&self) -> Vec<Vec<u8>> {
        let Ok(fd) = self.open(
            "proc",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        ) else {
            return Vec::new();
        };
        let Ok(dir) = rustix::fs::Dir::new(fd) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name().to_bytes();
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let pid = String::from_utf8_lossy(name);
            if let Ok(Some(comm)) = self.read(&format!("/proc/{pid}/comm"), 64) {
                names.push(comm);
            }
        }
        names
    }

    fn netns(&self) -> Option<String> {
        self.netns.clone()
    }
}

impl Transport for Host {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        let served = match observe::script_request(inv) {
            // A network namespace's read is `ip` alone (its record is on this host); a script
            // for one would read this host's files as the node's: exec runs it.
            Some(_) if self.kind == TransportKind::Netns => None,
            Some(r) => Some(r.ip),
            None if inv.program == "ip" => Some(inv.clone()),
            // `ping` for `check`, the record's write script, the networkd drop-in's scripts:
            // through the exec transport.
            None => None,
        };
        let Some(ip) = served else {
            return self.exec.run(instance, inv);
        };
        // As the exec transport starts no process after SIGINT/SIGTERM (until reads are allowed
        // again for the read-back), host access starts no read or write then.
        if !crate::interrupt::may_start() {
            return Err(CommandError::Interrupted {
                argv: format!("host access to `{instance}`: ip {}", ip.args.join(" ")),
                signal: crate::interrupt::signal_name().to_string(),
            });
        }
        if self.verbose {
            eprintln!("+ (host access to {instance}) ip {}", ip.args.join(" "));
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.serve(instance, inv)
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
}

/// An I/O error, with what to do about a missing privilege.
fn with_hint(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!("{e} (host access needs root: it joins the node's network namespace)")
    } else {
        e.to_string()
    }
}

/// The script lines of one of routectl's own `ip` invocations, and whether it keeps going past
/// a failing line (`-force`); `None` for anything else.
fn script(inv: &Invocation) -> Option<(Vec<String>, bool)> {
    let args: Vec<&str> = inv.args.iter().map(String::as_str).collect();
    if inv.args == iproute::read_args() {
        return Some((vec![iproute::SHOW_ALL_LINE.to_string()], false));
    }
    let (opts, tail) = args.split_at(args.len().checked_sub(2)?);
    if tail != ["-batch", "-"] || !opts.starts_with(iproute::READ_OPTIONS) {
        return None;
    }
    let force = match &opts[iproute::READ_OPTIONS.len()..] {
        [] => false,
        ["-force"] => true,
        _ => return None,
    };
    let text = String::from_utf8_lossy(inv.stdin.as_deref().unwrap_or_default()).into_owned();
    Some((text.lines().map(str::to_string).collect(), force))
}

fn link_names(links: &[LinkMessage]) -> HashMap<u32, String> {
    links
        .iter()
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some((l.header.index, n.clone())),
                _ => None,
            })
        })
        .collect()
}

/// Both families, every table, in the order `ip route show table all` prints them.
pub fn read_routes(nl: &mut Netlink) -> Result<Vec<RouteMessage>, NlError> {
    let mut routes = nl.dump_routes(AddressFamily::Inet)?;
    routes.extend(nl.dump_routes(AddressFamily::Inet6)?);
    Ok(routes)
}

/// `ip`'s `"dst"`/`"from"` text: `default` for length 0 without an address, a bare address
/// for a host prefix, else `addr/len`.
fn prefix_text(addr: Option<IpAddr>, len: u8, family: &AddressFamily) -> String {
    let host_len = if *family == AddressFamily::Inet6 {
        128
    } else {
        32
    };
    match addr {
        Some(a) if len == host_len => a.to_string(),
        Some(a) => format!("{a}/{len}"),
        None if len != 0 => format!("0/{len}"),
        None => "default".to_string(),
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via(v: &RouteVia) -> Option<Value> {
    match v {
        RouteVia::Inet(a) => Some(json!({"family": "inet", "host": a.to_string()})),
        RouteVia::Inet6(a) => Some(json!({"family": "inet6", "host": a.to_string()})),
        _ => None,
    }
}

fn dev_name(names: &HashMap<u32, String>, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

/// `ip`'s flag names for `rtm_flags`, in its order (iproute2 `print_rt_flags`).
fn flag_names(flags: RouteFlags) -> Vec<Value> {
    const NAMES: &[(u32, &str)] = &[
        (0x01, "dead"),
        (0x04, "onlink"),
        (0x02, "pervasive"),
        (0x08, "offload"),
        (0x40, "trap"),
        (0x100, "notify"),
        (0x10, "linkdown"),
        (0x20, "unresolved"),
        (0x4000, "rt_offload"),
        (0x8000, "rt_trap"),
        (0x2000_0000, "rt_offload_failed"),
    ];
    let bits = flags.bits();
    NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| Value::from(*n))
        .collect()
}

/// Renders routes as `ip -N -d -j route show table all` does, with the keys the route parser
/// reads (cloned cache entries are skipped, as `ip` skips them).
pub fn routes_json(routes: &[RouteMessage], names: &HashMap<u32, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(routes.len());
    for r in routes {
        let h = &r.header;
        if h.flags.bits() & 0x200 != 0 {
            continue; // RTM_F_CLONED
        }
        let mut o = Map::new();
        o.insert("type".into(), u8::from(h.kind).to_string().into());
        let mut dst = None;
        let mut src = None;
        let mut table = u32::from(h.table);
        let mut hop = Map::new();
        let mut metric = None;
        let mut multipath: Option<&Vec<RouteNextHop>> = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(d) => dst = route_addr(d),
                RouteAttribute::Source(s) => src = route_addr(s),
                RouteAttribute::Gateway(g) => {
                    if let Some(g) = route_addr(g) {
                        hop.insert("gateway".into(), g.to_string().into());
                    }
                }
                RouteAttribute::Via(v) => {
                    if let Some(v) = via(v) {
                        hop.insert("via".into(), v);
                    }
                }
                RouteAttribute::Oif(i) => {
                    hop.insert("dev".into(), dev_name(names, *i).into());
                }
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Priority(p) => metric = Some(*p),
                RouteAttribute::MultiPath(hops) => multipath = Some(hops),
                RouteAttribute::NhId(id) => {
                    o.insert("nhid".into(), (*id).into());
                }
                _ => {}
            }
        }
        o.insert(
            "dst".into(),
            prefix_text(dst, h.destination_prefix_length, &h.address_family).into(),
        );
        if h.source_prefix_length > 0 {
            o.insert(
                "from".into(),
                prefix_text(src, h.source_prefix_length, &h.address_family).into(),
            );
        }
        if h.tos != 0 {
            o.insert("tos".into(), format!("0x{:02x}", h.tos).into());
        }
        o.extend(hop);
        o.insert("table".into(), table.to_string().into());
        o.insert("protocol".into(), u8::from(h.protocol).to_string().into());
        o.insert("scope".into(), u8::from(h.scope).to_string().into());
        if let Some(m) = metric {
            o.insert("metric".into(), m.into());
        }
        o.insert("flags".into(), Value::Array(flag_names(h.flags)));
        if let Some(hops) = multipath {
            let list: Vec<Value> = hops
                .iter()
                .map(|nh| {
                    let mut m = Map::new();
                    for a in &nh.attributes {
                        match a {
                            RouteAttribute::Gateway(g) => {
                                if let Some(g) = route_addr(g) {
                                    m.insert("gateway".into(), g.to_string().into());
                                }
                            }
                            RouteAttribute::Via(v) => {
                                if let Some(v) = via(v) {
                                    m.insert("via".into(), v);
                                }
                            }
                            _ => {}
                        }
                    }
                    m.insert("dev".into(), dev_name(names, nh.interface_index).into());
                    m.insert("weight".into(), (u32::from(nh.hops) + 1).into());
                    Value::Object(m)
                })
                .collect();
            o.insert("nexthops".into(), Value::Array(list));
        }
        out.push(Value::Object(o));
    }
    serde_json::to_vec(&out).unwrap_or_else(|_| b"[]".to_vec())
}

/// Renders interfaces and addresses as `ip -N -j addr show` does, with the keys the address
/// parser reads.
pub fn addrs_json(
    links: &[LinkMessage],
    addrs: &[AddressMessage],
    names: &HashMap<u32, String>,
) -> Vec<u8> {
    let mut per_link: HashMap<u32, Vec<Value>> = HashMap::new();
    for a in addrs {
        let h = &a.header;
        let mut local = None;
        let mut address = None;
        for attr in &a.attributes {
            match attr {
                AddressAttribute::Local(l) => local = Some(*l),
                AddressAttribute::Address(l) => address = Some(*l),
                _ => {}
            }
        }
        let Some(addr) = local.or(address) else {
            continue;
        };
        let family = if h.family == AddressFamily::Inet6 {
            "inet6"
        } else {
            "inet"
        };
        per_link.entry(h.index).or_default().push(json!({
            "family": family,
            "local": addr.to_string(),
            "prefixlen": h.prefix_len,
            "scope": u8::from(h.scope).to_string(),
        }));
    }
    let out: Vec<Value> = links
        .iter()
        .map(|l| {
            json!({
                "ifindex": l.header.index,
                "ifname": dev_name(names, l.header.index),
                "addr_info": per_link.remove(&l.header.index).unwrap_or_default(),
            })
        })
        .collect();
    serde_json::to_vec(&out).unwrap_or_else(|_| b"[]".to_vec())
}

/// What a `route add|replace|del` line of routectl's batch says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLine {
    /// `add`, `replace` or `del`.
    pub verb: String,
    /// Destination.
    pub dst: IpNet,
    /// `via`.
    pub gateway: Option<IpAddr>,
    /// `dev`.
    pub dev: Option<String>,
    /// `table`.
    pub table: u32,
    /// `proto`.
    pub protocol: Option<u8>,
    /// `metric`.
    pub metric: Option<u32>,
    /// `tos`.
    pub tos: u8,
    /// `from`.
    pub from: Option<IpNet>,
    /// `nhid`: the nexthop object a route goes through (what identifies it for a delete).
    pub nhid: Option<u32>,
}

/// Reads the words after `route VERB` of a line routectl wrote ([`crate::core::change`]).
pub fn parse_route_line(verb: &str, words: &[&str]) -> Result<RouteLine, String> {
    let prefix = |s: &str| -> Result<IpNet, String> {
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(|n| n.trunc())
            .map_err(|_| format!("Error: an inet prefix is expected rather than \"{s}\"."))
    };
    let Some((dst, mut rest)) = words.split_first() else {
        return Err("Error: a destination is expected.".into());
    };
    let mut line = RouteLine {
        verb: verb.to_string(),
        dst: prefix(dst)?,
        gateway: None,
        dev: None,
        table: crate::core::route::TABLE_MAIN,
        protocol: None,
        metric: None,
        tos: 0,
        from: None,
        nhid: None,
    };
    let bad = |k: &str, v: &str| format!("Error: argument \"{v}\" is wrong: {k}");
    while let [key, value, tail @ ..] = rest {
        match *key {
            "via" => line.gateway = Some(value.parse().map_err(|_| bad(key, value))?),
            "dev" => line.dev = Some(value.to_string()),
            "table" => line.table = value.parse().map_err(|_| bad(key, value))?,
            "proto" => line.protocol = Some(value.parse().map_err(|_| bad(key, value))?),
            "metric" => line.metric = Some(value.parse().map_err(|_| bad(key, value))?),
            "tos" => {
                let v = value.strip_prefix("0x").unwrap_or(value);
                line.tos = u8::from_str_radix(v, 16).map_err(|_| bad(key, value))?;
            }
            "from" => line.from = Some(prefix(value)?),
            "nhid" => line.nhid = Some(value.parse().map_err(|_| bad(key, value))?),
            _ => return Err(format!("Error: host access does not know `{key}`.")),
        }
        rest = tail;
    }
    if let [extra] = rest {
        return Err(format!("Error: \"{extra}\" has no value."));
    }
    Ok(line)
}

/// The netlink request `ip route VERB …` sends for a line: the same header fields (`add` and
/// `replace`: unicast, scope universe; `del`: scope nowhere) and attributes.
pub fn route_request(
    line: &RouteLine,
    indexes: &HashMap<&str, u32>,
) -> Result<(RouteNetlinkMessage, u16), String> {
    let mut m = RouteMessage::default();
    let (family, addr) = match line.dst {
        IpNet::V4(n) => (AddressFamily::Inet, RouteAddress::Inet(n.addr())),
        IpNet::V6(n) => (AddressFamily::Inet6, RouteAddress::Inet6(n.addr())),
    };
    m.header.address_family = family;
    m.header.destination_prefix_length = line.dst.prefix_len();
    m.header.tos = line.tos;
    if line.table < 256 {
        m.header.table = line.table as u8;
    } else {
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
        m.attributes.push(RouteAttribute::Table(line.table));
    }
    let del = line.verb == "del";
    m.header.protocol = RouteProtocol::from(line.protocol.unwrap_or(if del { 0 } else { 3 }));
    if del {
        m.header.scope = RouteScope::NoWhere;
        m.header.kind = RouteType::from(0);
    } else {
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
    }
    m.attributes.push(RouteAttribute::Destination(addr));
    if let Some(from) = line.from {
        m.header.source_prefix_length = from.prefix_len();
        m.attributes
            .push(RouteAttribute::Source(RouteAddress::from(from.addr())));
    }
    if let Some(g) = line.gateway {
        let same = matches!(
            (g, line.dst),
            (IpAddr::V4(_), IpNet::V4(_)) | (IpAddr::V6(_), IpNet::V6(_))
        );
        m.attributes.push(if same {
            RouteAttribute::Gateway(RouteAddress::from(g))
        } else {
            RouteAttribute::Via(match g {
                IpAddr::V4(a) => RouteVia::Inet(a),
                IpAddr::V6(a) => RouteVia::Inet6(a),
            })
        });
    }
    if let Some(dev) = &line.dev {
        let Some(i) = indexes.get(dev.as_str()) else {
            return Err(format!("Cannot find device \"{dev}\""));
        };
        m.attributes.push(RouteAttribute::Oif(*i));
    }
    if let Some(metric) = line.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(id) = line.nhid {
        m.attributes.push(RouteAttribute::NhId(id));
    }
    Ok(match line.verb.as_str() {
        "add" => (RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL),
        "replace" => (
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        _ => (RouteNetlinkMessage::DelRoute(m), 0),
    })
}

fn write_route(
    nl: &mut Netlink,
    verb: &str,
    words: &[&str],
    names: &HashMap<u32, String>,
) -> Result<(), String> {
    let line = parse_route_line(verb, words)?;
    let indexes: HashMap<&str, u32> = names.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let (msg, flags) = route_request(&line, &indexes)?;
    nl.request(msg, flags).map_err(|e| match e {
        NlError::Kernel(errno) => format!("RTNETLINK answers: {}", netlink::strerror(errno)),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lines_routectl_writes() {
        let l = parse_route_line(
            "replace",
            &"10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0"
                .split_whitespace()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(l.dst, "10.1.1.0/24".parse::<IpNet>().unwrap());
        assert_eq!(l.gateway, Some("10.0.2.21".parse().unwrap()));
        assert_eq!(l.dev.as_deref(), Some("eth1"));
        assert_eq!((l.table, l.protocol, l.metric), (254, Some(211), Some(0)));
        let d = parse_route_line(
            "del",
            &"fd00:1::/64 via fd00::21 table 254 proto 211 metric 1024 from fd00:9::/64"
                .split_whitespace()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(d.from, Some("fd00:9::/64".parse().unwrap()));
        let n = parse_route_line(
            "del",
            &"10.1.2.0/24 nhid 7 table 254 proto 211 metric 0"
                .split_whitespace()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!((n.nhid, n.gateway), (Some(7), None));
        assert!(matches!(
            route_request(&n, &HashMap::new()).unwrap().0,
            RouteNetlinkMessage::DelRoute(m) if m.attributes.contains(&RouteAttribute::NhId(7))
        ));
        assert!(parse_route_line("add", &["10.0.0.0/8", "weight"]).is_err());
        assert!(parse_route_line("add", &["10.0.0.0/8", "nexthop", "x"]).is_err());
        let mut idx = HashMap::new();
        idx.insert("eth1", 3);
        assert!(route_request(&l, &idx).is_ok());
        assert_eq!(
            route_request(&l, &HashMap::new()).unwrap_err(),
            "Cannot find device \"eth1\""
        );
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

    /// The read script's twin prints what the script prints: both run here, on this machine's
    /// own files (its root, its /proc and /sys), for an interface that exists and one that does
    /// not, with a record that lacks its last newline.
    #[test]
    fn the_script_tail_is_what_the_read_script_prints() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.json");
        std::fs::write(&record, b"{\"a\":1}\n{\"b\":2}").unwrap();
        let record = record.to_str().unwrap();
        let netns = std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .display()
            .to_string();
        let files = RootFiles::new(std::path::Path::new("/"), Some(netns)).unwrap();
        for (record, iface) in [
            (record, "lo"),
            (record, ""),
            ("/nonexistent/r.json", "no-such-if0"),
        ] {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    observe::READ_SCRIPT,
                    "sh",
                    record,
                    iface,
                    "echo",
                    "[]",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let tail = observe::script_tail(&files, record, iface).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("[]\n{}", String::from_utf8_lossy(&tail)),
                "{record} {iface}"
            );
        }
    }

    #[test]
    fn the_read_script_s_request_is_read_back() {
        let inv = Invocation {
            program: "sh".into(),
            args: [
                "-c",
                observe::READ_SCRIPT,
                "sh",
                "/r.json",
                "eth1",
                "ip",
                "-j",
            ]
            .map(String::from)
            .to_vec(),
            stdin: Some(b"x".to_vec()),
        };
        let r = observe::script_request(&inv).unwrap();
        assert_eq!((r.record.as_str(), r.iface.as_str()), ("/r.json", "eth1"));
        assert_eq!(
            r.ip,
            Invocation::ip(vec!["-j".into()]).with_stdin(b"x".to_vec())
        );
        let mut other = inv.clone();
        other.args[1] = "true".into();
        assert_eq!(observe::script_request(&other), None);
    }

    #[test]
    fn only_routectl_s_own_invocations_are_served() {
        assert!(script(&Invocation::ip(iproute::read_args())).is_some());
        assert!(script(&Invocation::ip(vec!["-V".into()])).is_none());
        let (lines, force) = script(
            &Invocation::ip(iproute::batch_args()).with_stdin(b"route show table all\n".to_vec()),
        )
        .unwrap();
        assert_eq!((lines.len(), force), (1, true));
    }
}
