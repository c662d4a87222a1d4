//! An in-memory model of the routing tables of several nodes, reached through routectl's
//! [`Transport`] trait. It interprets exactly the commands routectl sends:
//!
//! - `ip -N -d -j route show table all`: every route of every table, both families, printed as
//!   iproute2 6.1 prints them with `-N -d -j` (shape copied from real captures, see
//!   tests/fixtures/ip/);
//! - `ip -N -d -j -force -batch -` with `route add|replace|del …` lines and `route show table
//!   all`, with the kernel's semantics (docs/ownership.md, route identity, and
//!   `fib_table_insert`/`fib_table_delete`, `fib6_add_rt2node`/`ip6_route_del`):
//!   - identity: IPv4 = table + dst + tos + metric, IPv6 = table + dst + from + metric;
//!   - `add` of an existing identity fails `File exists`; `replace` overwrites the first route
//!     with that identity or creates one; IPv6 metric 0 is stored as 1024;
//!   - `del` deletes the first route of the dst (same tos / same from) whose protocol, metric,
//!     gateway and device match where given (0 = any for protocol and metric), else fails
//!     `No such process`;
//!   - `-force` goes on past failing lines (`RTNETLINK answers: …` / `Error: …` then `Command
//!     failed -:N` on stderr, exit 1); an argument error aborts the batch (exit 255);
//! - `ip -V`.
//!
//! Nodes can be made unreachable in several ways (`lxc`-like errors, empty output, garbage,
//! timeouts), or time out after a write has run.
//! Every call is recorded. [`Model::compare_with_kernel`] style tests check this model against a
//! real network namespace (tests/it/properties/kernel.rs, `model_matches_the_kernel`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;

use ipnet::IpNet;
use routectl::error::CommandError;
use routectl::node::request::{ApplyReply, ApplyRequest, FileChange};
use routectl::node::transport::{Invocation, Output, Transport};

/// The main table.
pub const MAIN: u32 = 254;
/// The local table.
pub const LOCAL: u32 = 255;

/// A route as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KRoute {
    /// `RTN_*` (1 unicast, 2 local, 3 broadcast, 5 multicast, 6 blackhole, 7 unreachable, 8
    /// prohibit).
    pub kind: u8,
    pub dst: IpNet,
    /// IPv6 source prefix.
    pub from: Option<IpNet>,
    /// IPv4 TOS.
    pub tos: u8,
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub metric: u32,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    pub prefsrc: Option<IpAddr>,
    pub flags: Vec<String>,
    /// Multipath next hops (gateway, device); empty for a single next hop.
    pub nexthops: Vec<(IpAddr, String)>,
}

impl KRoute {
    /// `DST via GW dev DEV table 254 proto P metric M`, as `ip route add` makes it.
    pub fn via(dst: &str, gw: &str, dev: &str, protocol: u8, metric: u32) -> KRoute {
        let dst: IpNet = dst.parse().expect("dst");
        let v6 = matches!(dst, IpNet::V6(_));
        KRoute {
            kind: 1,
            dst,
            from: None,
            tos: 0,
            table: MAIN,
            protocol,
            scope: 0,
            metric: if v6 && metric == 0 { 1024 } else { metric },
            gateway: Some(gw.parse().expect("gw")),
            dev: Some(dev.to_string()),
            prefsrc: None,
            flags: Vec::new(),
            nexthops: Vec::new(),
        }
    }

    /// True for IPv6.
    pub fn v6(&self) -> bool {
        matches!(self.dst, IpNet::V6(_))
    }

    /// The kernel's identity of the route.
    pub fn key(&self) -> (bool, u32, IpNet, Option<IpNet>, u8, u32) {
        (
            self.v6(),
            self.table,
            self.dst,
            self.from,
            self.tos,
            self.metric,
        )
    }

    fn group(&self) -> (bool, u32, IpNet, Option<IpNet>) {
        (self.v6(), self.table, self.dst, self.from)
    }

    /// The JSON object `ip -N -d -j route show table all` prints for this route (iproute2 6.1
    /// key order).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        let _ = write!(s, "\"type\":\"{}\"", self.kind);
        let _ = write!(s, ",\"dst\":\"{}\"", show_dst(&self.dst));
        if let Some(f) = &self.from {
            let _ = write!(s, ",\"from\":\"{}\"", show_dst(f));
        }
        if self.tos != 0 {
            let _ = write!(s, ",\"tos\":\"0x{:02x}\"", self.tos);
        }
        if let Some(g) = &self.gateway {
            let _ = write!(s, ",\"gateway\":\"{g}\"");
        }
        if let Some(d) = &self.dev {
            let _ = write!(s, ",\"dev\":\"{d}\"");
        }
        let _ = write!(
            s,
            ",\"table\":\"{}\",\"protocol\":\"{}\",\"scope\":\"{}\"",
            self.table, self.protocol, self.scope
        );
        if let Some(p) = &self.prefsrc {
            let _ = write!(s, ",\"prefsrc\":\"{p}\"");
        }
        if self.v6() || self.metric != 0 {
            let _ = write!(s, ",\"metric\":{}", self.metric);
        }
        s.push_str(",\"flags\":[");
        for (i, f) in self.flags.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{f}\"");
        }
        s.push(']');
        if self.v6() {
            s.push_str(",\"pref\":\"medium\"");
        }
        if !self.nexthops.is_empty() {
            s.push_str(",\"nexthops\":[");
            for (i, (g, d)) in self.nexthops.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(
                    s,
                    "{{\"gateway\":\"{g}\",\"dev\":\"{d}\",\"weight\":1,\"flags\":[]}}"
                );
            }
            s.push(']');
        }
        s.push('}');
        s
    }

    /// Reads one object of real `ip -N -d -j route show table all` output.
    pub fn from_json(v: &serde_json::Value) -> KRoute {
        let o = v.as_object().expect("route object");
        let st = |k: &str| o.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let num = |k: &str| -> Option<u64> {
            match o.get(k)? {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s
                    .strip_prefix("0x")
                    .map(|h| u64::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| s.parse().ok()),
                _ => None,
            }
        };
        let gateway: Option<IpAddr> = st("gateway").map(|g| g.parse().expect("gateway"));
        let v6 = o.contains_key("pref");
        let dst = parse_dst(&st("dst").expect("dst"), v6);
        let nexthops = o
            .get("nexthops")
            .and_then(|n| n.as_array())
            .map(|hops| {
                hops.iter()
                    .map(|h| {
                        (
                            h["gateway"].as_str().expect("hop gw").parse().expect("hop"),
                            h["dev"].as_str().expect("hop dev").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        KRoute {
            kind: num("type").unwrap_or(1) as u8,
            dst,
            from: st("from").map(|f| parse_dst(&f, true)),
            tos: num("tos").unwrap_or(0) as u8,
            table: num("table").unwrap_or(MAIN as u64) as u32,
            protocol: num("protocol").unwrap_or(3) as u8,
            scope: num("scope").unwrap_or(0) as u8,
            metric: num("metric").unwrap_or(0) as u32,
            gateway,
            dev: st("dev"),
            prefsrc: st("prefsrc").map(|p| p.parse().expect("prefsrc")),
            flags: o
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            nexthops,
        }
    }
}

fn show_dst(n: &IpNet) -> String {
    if n.prefix_len() == 0 {
        "default".to_string()
    } else if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn parse_dst(s: &str, v6: bool) -> IpNet {
    if s == "default" {
        return if v6 {
            "::/0".parse().expect("v6 default")
        } else {
            "0.0.0.0/0".parse().expect("v4 default")
        };
    }
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .unwrap_or_else(|_| panic!("dst {s}"))
}

/// How a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Answers like a running container.
    Up,
    /// `lxc exec` fails: `Error: Instance not found`, exit 1 (every command).
    NotFound,
    /// `Error: Instance is not running`, exit 1.
    Stopped,
    /// The LXD fault: exit 0 and nothing on stdout (every command).
    Empty,
    /// The first N reads print nothing, then the node answers (a transient LXD fault).
    EmptyFor(usize),
    /// `ip` prints truncated JSON.
    Garbage,
    /// iproute2 before 5.5: invalid JSON for multipath.
    OldIproute,
    /// Every command times out (the transport kills it).
    Timeout,
    /// Reads answer; a batch runs to its end, then the transport reports a timeout.
    WriteTimesOut,
}

impl Reach {
    /// True when routectl can read the node.
    pub fn readable(self) -> bool {
        matches!(
            self,
            Reach::Up | Reach::EmptyFor(0..=2) | Reach::WriteTimesOut
        )
    }
}

/// One node of the model.
#[derive(Debug, Clone)]
pub struct Node {
    pub reach: Reach,
    /// Devices (`Cannot find device` for any other).
    pub devices: Vec<String>,
    /// Routes in kernel order (IPv4 aliases of one dst: tos descending, then metric).
    pub routes: Vec<KRoute>,
    reads: usize,
}

impl Node {
    /// A node with devices and routes (inserted in order, as `ip route append` would).
    pub fn new(devices: &[&str], routes: Vec<KRoute>) -> Node {
        let mut n = Node {
            reach: Reach::Up,
            devices: devices.iter().map(|d| d.to_string()).collect(),
            routes: Vec::new(),
            reads: 0,
        };
        for r in routes {
            n.insert(r);
        }
        n
    }

    /// Inserts a route after every route of its group that sorts before or with it (append).
    pub fn insert(&mut self, r: KRoute) {
        let g = r.group();
        let mut at = None;
        let mut first = None;
        for (i, o) in self.routes.iter().enumerate() {
            if o.group() != g {
                continue;
            }
            first.get_or_insert(i);
            let before = if r.v6() {
                o.metric <= r.metric
            } else {
                o.tos > r.tos || (o.tos == r.tos && o.metric <= r.metric)
            };
            if before {
                at = Some(i + 1);
            }
        }
        let at = at.or(first).unwrap_or(self.routes.len());
        self.routes.insert(at, r);
    }

    /// Adds a route unless its identity is taken (what `ip route add` does); false if taken.
    pub fn add_if_free(&mut self, r: KRoute) -> bool {
        if self.routes.iter().any(|o| o.key() == r.key()) {
            return false;
        }
        self.insert(r);
        true
    }

    /// What `ip -N -d -j route show table all` prints (without the newline): IPv4 first, then
    /// IPv6; by table, then destination; aliases in kernel order.
    pub fn dump(&self) -> String {
        let mut order: Vec<&KRoute> = self.routes.iter().collect();
        order.sort_by_key(|r| (r.v6(), r.table, r.dst.addr(), r.dst.prefix_len()));
        let mut s = String::from("[");
        for (i, r) in order.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&r.to_json());
        }
        s.push(']');
        s
    }

    /// Runs an `ip -force -batch -` script: (stdout, stderr, exit status).
    pub fn batch(&mut self, script: &str) -> (String, String, i32) {
        let mut out = String::new();
        let mut err = String::new();
        let mut failed = false;
        for (i, line) in script.lines().enumerate() {
            let n = i + 1;
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                ["route", "show", "table", "all"] => {
                    out.push_str(&self.dump());
                    out.push('\n');
                }
                [
                    "route",
                    verb @ ("add" | "replace" | "del" | "delete"),
                    rest @ ..,
                ] => {
                    let cmd = match Cmd::parse(verb, rest) {
                        Ok(c) => c,
                        Err(e) => {
                            err.push_str(&e);
                            err.push('\n');
                            return (out, err, 255);
                        }
                    };
                    if let Err(e) = self.run(&cmd) {
                        err.push_str(&e);
                        let _ = writeln!(err, "\nCommand failed -:{n}");
                        failed = true;
                    }
                }
                [first, ..] => {
                    let word = words.get(1).unwrap_or(first);
                    let _ = writeln!(err, "Command \"{word}\" is unknown, try \"ip route help\".");
                    return (out, err, 255);
                }
            }
        }
        (out, err, i32::from(failed))
    }

    fn run(&mut self, c: &Cmd) -> Result<(), String> {
        if c.dst.trunc() != c.dst {
            return Err("Error: Invalid prefix for given prefix length.".to_string());
        }
        let v6 = matches!(c.dst, IpNet::V6(_));
        let group = (v6, c.table, c.dst, c.from);
        if c.verb == "del" || c.verb == "delete" {
            let found = self.routes.iter().position(|r| {
                r.group() == group
                    && (v6 || r.tos == c.tos)
                    && (c.metric == 0 || r.metric == c.metric)
                    && (c.protocol == 0 || r.protocol == c.protocol)
                    && (c.gateway.is_none() || r.gateway == c.gateway)
                    && (c.dev.is_none() || r.dev == c.dev)
            });
            return match found {
                Some(i) => {
                    self.routes.remove(i);
                    Ok(())
                }
                None => Err("RTNETLINK answers: No such process".to_string()),
            };
        }
        if let Some(d) = &c.dev
            && !self.devices.contains(d)
        {
            return Err(format!("Cannot find device \"{d}\""));
        }
        if let Some(g) = &c.gateway
            && !self.on_link(*g, c.dev.as_deref())
        {
            return Err("Error: Nexthop has invalid gateway.".to_string());
        }
        let metric = if v6 && c.metric == 0 { 1024 } else { c.metric };
        let route = KRoute {
            kind: 1,
            dst: c.dst,
            from: c.from,
            tos: c.tos,
            table: c.table,
            protocol: c.protocol,
            scope: if c.gateway.is_some() || v6 { 0 } else { 253 },
            metric,
            gateway: c.gateway,
            dev: c.dev.clone(),
            prefsrc: None,
            flags: Vec::new(),
            nexthops: Vec::new(),
        };
        let same = self.routes.iter().position(|r| r.key() == route.key());
        match (c.verb.as_str(), same) {
            ("add", Some(_)) => Err("RTNETLINK answers: File exists".to_string()),
            ("replace", Some(i)) => {
                self.routes[i] = route;
                Ok(())
            }
            _ => {
                self.insert(route);
                Ok(())
            }
        }
    }

    /// True when a gateway is reachable on a link route of table main (through `dev`).
    fn on_link(&self, gw: IpAddr, dev: Option<&str>) -> bool {
        self.routes.iter().any(|r| {
            r.table == MAIN
                && r.kind == 1
                && r.gateway.is_none()
                && r.nexthops.is_empty()
                && (r.v6() || r.scope == 253)
                && r.dst.contains(&gw)
                && (dev.is_none() || r.dev.as_deref() == dev)
        })
    }
}

/// One parsed `route add|replace|del` line.
#[derive(Debug)]
struct Cmd {
    verb: String,
    dst: IpNet,
    gateway: Option<IpAddr>,
    dev: Option<String>,
    table: u32,
    protocol: u8,
    metric: u32,
    tos: u8,
    from: Option<IpNet>,
}

impl Cmd {
    fn parse(verb: &str, words: &[&str]) -> Result<Cmd, String> {
        // iproute2's invarg() ends its message with an empty line.
        let bad = |what: &str, v: &str| format!("Error: argument \"{v}\" is wrong: {what}\n");
        let Some((dst, rest)) = words.split_first() else {
            return Err("Error: either \"to\" is duplicate, or \"\" is a garbage.".into());
        };
        let dst = IpNet::from_str(dst)
            .or_else(|_| IpAddr::from_str(dst).map(IpNet::from))
            .map_err(|_| bad("prefix", dst))?;
        let mut c = Cmd {
            verb: verb.to_string(),
            dst,
            gateway: None,
            dev: None,
            table: MAIN,
            protocol: if verb.starts_with("del") { 0 } else { 3 },
            metric: 0,
            tos: 0,
            from: None,
        };
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let v = *it
                .next()
                .ok_or_else(|| "Command line is not complete.".to_string())?;
            match *k {
                "via" => c.gateway = Some(v.parse().map_err(|_| bad("gateway", v))?),
                "dev" => c.dev = Some(v.to_string()),
                "table" => {
                    c.table = match v {
                        "main" => MAIN,
                        _ => v
                            .parse()
                            .map_err(|_| bad("\"table\" value is invalid", v))?,
                    }
                }
                "proto" => {
                    c.protocol = match v {
                        "boot" => 3,
                        "static" => 4,
                        "kernel" => 2,
                        _ => v
                            .parse()
                            .map_err(|_| bad("\"protocol\" value is invalid", v))?,
                    }
                }
                "metric" => {
                    c.metric = v
                        .parse()
                        .map_err(|_| bad("\"metric\" value is invalid", v))?
                }
                "tos" => {
                    c.tos = match v.strip_prefix("0x") {
                        Some(h) => u8::from_str_radix(h, 16),
                        None => v.parse(),
                    }
                    .map_err(|_| bad("\"tos\" value is invalid", v))?
                }
                "from" => c.from = Some(v.parse().map_err(|_| bad("from", v))?),
                other => {
                    return Err(format!(
                        "Error: either \"to\" is duplicate, or \"{other}\" is a garbage."
                    ));
                }
            }
        }
        if let Some(g) = &c.gateway
            && matches!(g, IpAddr::V4(_)) != matches!(c.dst, IpNet::V4(_))
        {
            return Err(bad("gateway family", &g.to_string()));
        }
        Ok(c)
    }
}

/// A recorded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub instance: String,
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Call {
    /// True for a write (a batch with a script).
    pub fn is_write(&self) -> bool {
        self.stdin.is_some() || self.args.iter().any(|a| a == "-batch")
    }
}

/// The model: nodes by instance name, and every call made.
#[derive(Debug, Default)]
pub struct Model {
    pub nodes: Mutex<BTreeMap<String, Node>>,
    pub calls: Mutex<Vec<Call>>,
    /// Last-applied records written by routectl's record script, by instance (not calls).
    pub records: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Model {
    /// A model of these nodes.
    pub fn new(nodes: BTreeMap<String, Node>) -> Model {
        Model {
            nodes: Mutex::new(nodes),
            calls: Mutex::new(Vec::new()),
            records: Mutex::new(BTreeMap::new()),
        }
    }

    /// A copy of a node's routes.
    pub fn routes(&self, instance: &str) -> Vec<KRoute> {
        self.nodes.lock().expect("lock")[instance].routes.clone()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.calls.lock().expect("lock").clear();
    }
}

const VERSION_6_1: &str = "ip utility, iproute2-6.1.0, libbpf 1.1.2\n";

impl Model {
    /// routectl's read script (`sh -c READ_SCRIPT sh PATH IFACE ip ARGS…`) is the `ip` it
    /// wraps, followed by the record's parts: the binding the script would compute (one per
    /// instance: a model node is never restarted) and the record.
    fn run_read_script(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        use routectl::node::observe::SEPARATOR;
        let inner = Invocation {
            program: inv.args.get(5).cloned().unwrap_or_default(),
            args: inv.args.iter().skip(6).cloned().collect(),
            stdin: inv.stdin.clone(),
            label: None,
        };
        let mut out = self.run(instance, &inner)?;
        if out.status == Some(0) && !out.stdout.is_empty() {
            let record = self
                .records
                .lock()
                .expect("lock")
                .get(instance)
                .cloned()
                .unwrap_or_default();
            let binding = format!("boot=model pid1=1 netns=net:[{instance}]");
            out.stdout
                .extend(format!("\n{SEPARATOR}\n{binding}\n{SEPARATOR}\n").as_bytes());
            out.stdout.extend(record);
        }
        Ok(out)
    }

    /// Notes a command run in a node, for the tests to inspect.
    fn record_call(&self, instance: &str, inv: &Invocation) {
        self.calls.lock().expect("lock").push(Call {
            instance: instance.to_string(),
            program: inv.program.clone(),
            args: inv.args.clone(),
            stdin: inv
                .stdin
                .as_ref()
                .map(|s| String::from_utf8_lossy(s).into_owned()),
        });
    }
}

impl Transport for Model {
    /// An apply as the apply script carries it out: the route lines and the read-back as one
    /// `ip -batch` call on the model, then (when every line succeeded) the record, kept aside.
    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        let mut reply = routectl::node::transport::apply_script::batch_round(
            self,
            instance,
            req,
            format!("lxc exec {instance} -- sh -c APPLY_SCRIPT"),
        )?;
        if reply.status == Some(0)
            && let Some((_, change)) = &req.record
        {
            let mut records = self.records.lock().expect("lock");
            match change {
                FileChange::Write(b) => {
                    records.insert(instance.to_string(), b.clone());
                }
                FileChange::Remove => {
                    records.remove(instance);
                }
                FileChange::Keep => {}
            }
            reply.record_done = change.is_change();
        }
        Ok(reply)
    }

    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        if inv.program == "sh"
            && inv.args.get(1).map(String::as_str) == Some(routectl::node::observe::READ_SCRIPT)
        {
            return self.run_read_script(instance, inv);
        }
        self.record_call(instance, inv);
        let argv = format!(
            "lxc exec {instance} --force-noninteractive -- {} {}",
            inv.program,
            inv.args.join(" ")
        );
        let answer = |status: i32, stdout: &str, stderr: &str| {
            Ok(Output {
                argv: argv.clone(),
                status: Some(status),
                stdout: stdout.as_bytes().to_vec(),
                stderr: stderr.to_string(),
            })
        };
        let mut nodes = self.nodes.lock().expect("lock");
        let Some(node) = nodes.get_mut(instance) else {
            return answer(1, "", "Error: Instance not found\n");
        };
        let is_read = inv.args == routectl::node::iproute::read_args();
        let is_version = inv.args == ["-V"];
        match node.reach {
            Reach::Up | Reach::WriteTimesOut => {}
            Reach::Timeout => {
                return Err(CommandError::Timeout {
                    argv,
                    millis: 30_000,
                    attempts: 1,
                });
            }
            Reach::NotFound => return answer(1, "", "Error: Instance not found\n"),
            Reach::Stopped => return answer(1, "", "Error: Instance is not running\n"),
            Reach::Empty => return answer(0, "", ""),
            Reach::EmptyFor(n) => {
                if is_read && node.reads < n {
                    node.reads += 1;
                    return answer(0, "", "");
                }
            }
            Reach::Garbage if is_version => return answer(0, VERSION_6_1, ""),
            Reach::Garbage => return answer(0, "[{\"type\":\"1\",\"dst\":\"10.1", ""),
            Reach::OldIproute if is_version => {
                return answer(0, "ip utility, iproute2-ss190107\n", "");
            }
            Reach::OldIproute => {
                return answer(
                    0,
                    "[{\"dst\":\"10.9.0.0/24\",\"nexthops\":[{\"gateway\":\"10.0.2.21\"}{\"gateway\":\"10.0.2.22\"}]}]\n",
                    "",
                );
            }
        }
        if inv.program != "ip" {
            return answer(127, "", "command not found\n");
        }
        if is_read {
            let out = format!("{}\n", node.dump());
            return answer(0, &out, "");
        }
        if is_version {
            return answer(0, VERSION_6_1, "");
        }
        if inv.args == routectl::node::iproute::batch_args()
            && let Some(stdin) = &inv.stdin
        {
            let (out, err, status) = node.batch(&String::from_utf8_lossy(stdin));
            if node.reach == Reach::WriteTimesOut {
                return Err(CommandError::Timeout {
                    argv,
                    millis: 30_000,
                    attempts: 1,
                });
            }
            return answer(status, &out, &err);
        }
        answer(255, "", "model: unexpected command\n")
    }

    fn commands_run(&self) -> usize {
        self.calls.lock().expect("lock").len()
    }
}
