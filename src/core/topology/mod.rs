//! The topology file: TOML text -> a validated [`Topology`].
//!
//! Strict by design: unknown keys, malformed addresses, host bits, overlaps, duplicates, family
//! mismatches and names that a transport could misread are all errors, each with the file, line
//! and column, and every problem is reported at once. Nothing here runs a process.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::core::route::{DEFAULT_PROTOCOL, Family, WELL_KNOWN_PROTOCOLS};
use crate::error::{Problem, Problems};

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
}

impl TransportKind {
    /// The names accepted in the topology and on the command line.
    pub const NAMES: &'static [&'static str] = &["lxc", "incus", "netns"];

    /// Parses a transport name.
    pub fn from_name(s: &str) -> Option<TransportKind> {
        match s {
            "lxc" => Some(TransportKind::Lxc),
            "incus" => Some(TransportKind::Incus),
            "netns" => Some(TransportKind::Netns),
            _ => None,
        }
    }

    /// The name of the transport.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Lxc => "lxc",
            TransportKind::Incus => "incus",
            TransportKind::Netns => "netns",
        }
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
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name in the topology.
    pub name: String,
    /// What the transport addresses: the instance (possibly `remote:instance`) or namespace.
    pub instance: String,
    /// The device that carries node-to-node traffic on this node.
    pub interface: String,
    /// Internal addresses, at most one per family, IPv4 first.
    pub internal_ips: Vec<IpAddr>,
    /// Pod CIDRs, at most one per family, IPv4 first.
    pub pod_cidrs: Vec<IpNet>,
    /// The line of the node's table in the file.
    pub line: usize,
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

    /// The metric routectl uses for routes of a family.
    pub fn metric(&self, family: Family) -> u32 {
        match self.cluster.metric {
            Some(m) => family.effective_metric(m),
            None => family.default_metric(),
        }
    }
}

/// Validates topology bytes read from `source` (a file name, used in messages).
pub fn parse(
    bytes: &[u8],
    source: &str,
    transport: Option<TransportKind>,
) -> Result<Topology, Problems> {
    let mut checker = Checker {
        source: source.to_string(),
        text: String::new(),
        problems: Vec::new(),
        newlines: None,
    };
    if bytes.len() > MAX_FILE_BYTES {
        checker.problem_at(
            0,
            format!(
                "file is {} bytes; a topology may be at most {MAX_FILE_BYTES} bytes",
                bytes.len()
            ),
        );
        return Err(Problems(checker.problems));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(e) => {
            checker.text = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
            let at = e.valid_up_to();
            checker.problem_at(at, "the file is not valid UTF-8 text".to_string());
            return Err(Problems(checker.problems));
        }
    };
    checker.text = text.clone();
    let raw: RawFile = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            checker.problem_at(at, e.message().trim().to_string());
            return Err(Problems(checker.problems));
        }
    };
    let topology = checker.check(raw, transport);
    match topology {
        Some(nodes_cluster) if checker.problems.is_empty() => {
            let (cluster, nodes) = nodes_cluster;
            let sha256 = hex(&Sha256::digest(bytes));
            Ok(Topology {
                source: source.to_string(),
                text,
                sha256,
                cluster,
                nodes,
            })
        }
        _ => {
            checker.problems.sort_by_key(|p| (p.line, p.column));
            Err(Problems(checker.problems))
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Raw form, as TOML gives it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    cluster: Option<RawCluster>,
    #[serde(default)]
    nodes: Vec<Spanned<RawNode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    interface: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    pod_cidr: Option<Spanned<OneOrMany>>,
    protocol: Option<Spanned<i64>>,
    metric: Option<Spanned<i64>>,
    access: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    internal_ip: Spanned<OneOrMany>,
    pod_cidr: Option<Spanned<OneOrMany>>,
    interface: Option<Spanned<String>>,
    instance: Option<Spanned<String>>,
}

/// A string, or an array of strings (each with its own position).
enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// Items of a one-or-many value with their spans (the whole value's span for a lone string).
fn items(value: &Spanned<OneOrMany>) -> Vec<(String, Range<usize>)> {
    match value.get_ref() {
        OneOrMany::One(s) => vec![(s.clone(), value.span())],
        OneOrMany::Many(v) => v.iter().map(|s| (s.get_ref().clone(), s.span())).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

struct Checker {
    source: String,
    text: String,
    problems: Vec<Problem>,
    /// Byte offsets of the text's newlines, built on first use (a line per node, in O(log n)).
    newlines: Option<Vec<usize>>,
}

impl Checker {
    /// The 1-based line of a byte offset; the same as `line_col(&self.text, offset).0`.
    fn line_at(&mut self, offset: usize) -> usize {
        let text = &self.text;
        let newlines = self
            .newlines
            .get_or_insert_with(|| text.match_indices('\n').map(|(i, _)| i).collect());
        let mut start = offset.min(text.len());
        while start > 0 && !text.is_char_boundary(start) {
            start -= 1;
        }
        newlines.partition_point(|&nl| nl < start) + 1
    }

    fn problem_at(&mut self, offset: usize, message: String) {
        let (line, column) = line_col(&self.text, offset);
        // Messages quote what the file says; a control character (a newline in a name) must
        // not start a line of its own that reads like another problem.
        let message = if message.chars().any(char::is_control) {
            message
                .chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect()
        } else {
            message
        };
        self.problems.push(Problem {
            file: self.source.clone(),
            line,
            column,
            message,
        });
    }

    fn problem(&mut self, span: &Range<usize>, message: String) {
        self.problem_at(span.start, message);
    }

    fn check(
        &mut self,
        raw: RawFile,
        transport_override: Option<TransportKind>,
    ) -> Option<(Cluster, Vec<Node>)> {
        let rc = raw.cluster.unwrap_or(RawCluster {
            interface: None,
            transport: None,
            access: None,
            pod_cidr: None,
            protocol: None,
            metric: None,
        });

        let mut transport = TransportKind::Lxc;
        if let Some(t) = &rc.transport {
            match TransportKind::from_name(t.get_ref()) {
                Some(k) => transport = k,
                None => self.problem(
                    &t.span(),
                    format!(
                        "unknown transport `{}`: expected one of {}",
                        t.get_ref(),
                        TransportKind::NAMES.join(", ")
                    ),
                ),
            }
        }
        if let Some(t) = transport_override {
            transport = t;
        }
        let mut access = Access::Exec;
        if let Some(a) = &rc.access {
            match Access::from_name(a.get_ref()) {
                Some(k) => access = k,
                None => self.problem(
                    &a.span(),
                    format!(
                        "unknown access `{}`: expected one of {}",
                        a.get_ref(),
                        Access::NAMES.join(", ")
                    ),
                ),
            }
        }

        let cluster_interface = rc.interface.as_ref().and_then(|i| {
            let ok = check_interface(i.get_ref());
            if let Err(why) = &ok {
                self.problem(
                    &i.span(),
                    format!("cluster interface `{}` {why}", i.get_ref()),
                );
            }
            ok.ok().map(|_| i.get_ref().clone())
        });

        let mut cluster_cidrs = Vec::new();
        if let Some(v) = &rc.pod_cidr {
            cluster_cidrs = self.cidrs(v, "cluster pod_cidr");
        }

        let mut protocol = DEFAULT_PROTOCOL;
        if let Some(p) = &rc.protocol {
            let n = *p.get_ref();
            match u8::try_from(n) {
                Ok(n) if n > 0 => {
                    if let Some((_, name)) = WELL_KNOWN_PROTOCOLS.iter().find(|(k, _)| *k == n) {
                        self.problem(
                            &p.span(),
                            format!(
                                "protocol {n} is the well-known protocol `{name}`: routectl owns \
                                 every route of its protocol, so it must be a number no other \
                                 software uses (default {DEFAULT_PROTOCOL})"
                            ),
                        );
                    } else {
                        protocol = n;
                    }
                }
                _ => self.problem(
                    &p.span(),
                    format!("protocol {n} is out of range: expected a number from 1 to 255"),
                ),
            }
        }

        let mut metric = None;
        if let Some(m) = &rc.metric {
            match u32::try_from(*m.get_ref()) {
                Ok(v) => metric = Some(v),
                Err(_) => self.problem(
                    &m.span(),
                    format!(
                        "metric {} is out of range: expected 0 to {}",
                        m.get_ref(),
                        u32::MAX
                    ),
                ),
            }
        }

        if raw.nodes.is_empty() {
            self.problem_at(
                0,
                "no nodes declared: add at least one [[nodes]] table".to_string(),
            );
        }

        let mut nodes = Vec::new();
        for rn in &raw.nodes {
            // A node with a bad field still takes part in the checks across nodes (with what
            // could be read of it), so that every problem is reported at once.
            nodes.push((self.node(rn, transport, cluster_interface.as_deref()), rn));
        }

        self.cross_checks(&nodes, &cluster_cidrs);

        let cluster = Cluster {
            transport,
            access,
            pod_cidrs: cluster_cidrs,
            protocol,
            metric,
        };
        Some((cluster, nodes.into_iter().map(|(n, _)| n).collect()))
    }

    /// Parses a one-or-many list of CIDRs (at most one per family).
    fn cidrs(&mut self, v: &Spanned<OneOrMany>, what: &str) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = Vec::new();
        for (s, span) in items(v) {
            let net = match parse_cidr(&s) {
                Ok(n) => n,
                Err(why) => {
                    self.problem(&span, format!("{what} `{s}` {why}"));
                    continue;
                }
            };
            if out
                .iter()
                .any(|o| Family::of_net(o) == Family::of_net(&net))
            {
                self.problem(
                    &span,
                    format!(
                        "{what} lists more than one {} prefix (at most one per family)",
                        Family::of_net(&net)
                    ),
                );
                continue;
            }
            out.push(net);
        }
        if out.is_empty() && matches!(v.get_ref(), OneOrMany::Many(m) if m.is_empty()) {
            self.problem(&v.span(), format!("{what} is an empty array"));
        }
        out.sort_by_key(Family::of_net);
        out
    }

    fn node(
        &mut self,
        rn: &Spanned<RawNode>,
        transport: TransportKind,
        cluster_interface: Option<&str>,
    ) -> Node {
        let n = rn.get_ref();
        let line = self.line_at(rn.span().start);
        let name = n.name.get_ref().clone();
        let mut name_ok = true;
        if let Err(why) = check_node_name(&name) {
            self.problem(&n.name.span(), format!("node name `{name}` {why}"));
            name_ok = false;
        }
        let instance = match &n.instance {
            Some(i) => {
                if let Err(why) = check_instance(i.get_ref(), transport) {
                    self.problem(
                        &i.span(),
                        format!("node `{name}`: instance `{}` {why}", i.get_ref()),
                    );
                }
                i.get_ref().clone()
            }
            None => {
                if name_ok && let Err(why) = check_instance(&name, transport) {
                    self.problem(
                        &n.name.span(),
                        format!(
                            "node name `{name}` cannot be used as a {transport} instance name \
                             ({why}); set `instance` to the real name"
                        ),
                    );
                }
                name.clone()
            }
        };
        let interface = match &n.interface {
            Some(i) => {
                if let Err(why) = check_interface(i.get_ref()) {
                    self.problem(
                        &i.span(),
                        format!("node `{name}`: interface `{}` {why}", i.get_ref()),
                    );
                }
                i.get_ref().clone()
            }
            None => match cluster_interface {
                Some(i) => i.to_string(),
                None => {
                    self.problem(
                        &rn.span(),
                        format!(
                            "node `{name}` has no interface: set `interface` in [cluster] or on \
                             this node"
                        ),
                    );
                    String::new()
                }
            },
        };

        let ips_before = self.problems.len();
        let mut internal_ips: Vec<IpAddr> = Vec::new();
        for (s, span) in items(&n.internal_ip) {
            match parse_addr(&s) {
                Ok(a) => {
                    if internal_ips
                        .iter()
                        .any(|o| Family::of_addr(o) == Family::of_addr(&a))
                    {
                        self.problem(
                            &span,
                            format!(
                                "node `{name}`: internal_ip lists more than one {} address (at \
                                 most one per family)",
                                Family::of_addr(&a)
                            ),
                        );
                    } else {
                        internal_ips.push(a);
                    }
                }
                Err(why) => {
                    self.problem(&span, format!("node `{name}`: internal_ip `{s}` {why}"));
                }
            }
        }
        let ips_ok = self.problems.len() == ips_before;
        if internal_ips.is_empty() && ips_ok {
            self.problem(
                &n.internal_ip.span(),
                format!("node `{name}`: internal_ip is empty"),
            );
        }
        internal_ips.sort_by_key(Family::of_addr);

        let mut pod_cidrs = Vec::new();
        if let Some(v) = &n.pod_cidr {
            pod_cidrs = self.cidrs(v, &format!("node `{name}`: pod_cidr"));
            for net in &pod_cidrs {
                let family = Family::of_net(net);
                if ips_ok && !internal_ips.iter().any(|a| Family::of_addr(a) == family) {
                    self.problem(
                        &v.span(),
                        format!(
                            "node `{name}`: pod_cidr {net} is {family} but the node has no \
                             {family} internal_ip to route it via"
                        ),
                    );
                }
            }
        }

        Node {
            name,
            instance,
            interface,
            internal_ips,
            pod_cidrs,
            line,
        }
    }

    fn cross_checks(&mut self, nodes: &[(Node, &Spanned<RawNode>)], cluster_cidrs: &[IpNet]) {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ips: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (node, raw) in nodes {
            let r = raw.get_ref();
            if let Some(first) = names.insert(&node.name, node.line) {
                self.problem(
                    &r.name.span(),
                    format!(
                        "duplicate node name `{}` (first declared on line {first})",
                        node.name
                    ),
                );
            } else if let Some(first) = instances.insert(&node.instance, node.line) {
                let span = r
                    .instance
                    .as_ref()
                    .map(|i| i.span())
                    .unwrap_or(r.name.span());
                self.problem(
                    &span,
                    format!(
                        "node `{}` uses instance `{}`, already used by the node on line {first}",
                        node.name, node.instance
                    ),
                );
            }
            for ip in &node.internal_ips {
                if let Some(first) = ips.insert(*ip, node.line) {
                    self.problem(
                        &r.internal_ip.span(),
                        format!(
                            "node `{}`: internal_ip {ip} is already used by the node on line \
                             {first}",
                            node.name
                        ),
                    );
                }
            }
        }

        // Pod CIDRs: inside the cluster range, pairwise disjoint, holding no internal IP.
        let mut cidrs: Vec<(IpNet, &Node, &Spanned<RawNode>)> = Vec::new();
        for (node, raw) in nodes {
            for net in &node.pod_cidrs {
                cidrs.push((*net, node, raw));
            }
        }
        for (net, node, raw) in &cidrs {
            let family = Family::of_net(net);
            if let Some(range) = cluster_cidrs.iter().find(|c| Family::of_net(c) == family)
                && !range.contains(net)
            {
                let span = pod_cidr_span(raw);
                self.problem(
                    &span,
                    format!(
                        "node `{}`: pod_cidr {net} lies outside the cluster pod_cidr {range}",
                        node.name
                    ),
                );
            }
        }
        cidrs.sort_by(|a, b| {
            (a.0.network(), a.0.prefix_len()).cmp(&(b.0.network(), b.0.prefix_len()))
        });
        // Sorted by start, every prefix that contains another comes before it: keep the chain
        // of prefixes enclosing the current one and report the current one against each.
        let mut enclosing: Vec<usize> = Vec::new();
        for (k, (b, bn, braw)) in cidrs.iter().enumerate() {
            enclosing.retain(|&e| cidrs[e].0.contains(&b.network()));
            for &e in &enclosing {
                let (a, an, _) = &cidrs[e];
                let span = pod_cidr_span(braw);
                self.problem(
                    &span,
                    format!(
                        "node `{}`: pod_cidr {b} overlaps pod_cidr {a} of node `{}` (line {})",
                        bn.name, an.name, an.line
                    ),
                );
            }
            enclosing.push(k);
        }
        for (node, raw) in nodes {
            for ip in &node.internal_ips {
                let idx = cidrs.partition_point(|(n, _, _)| n.network() <= *ip);
                if let Some((net, owner, _)) =
                    cidrs[..idx].iter().rev().find(|(n, _, _)| n.contains(ip))
                {
                    self.problem(
                        &raw.get_ref().internal_ip.span(),
                        format!(
                            "node `{}`: internal_ip {ip} lies inside pod_cidr {net} of node `{}`",
                            node.name, owner.name
                        ),
                    );
                }
            }
        }
    }
}

/// Where a node's pod_cidr is written (the node's table when it has none).
fn pod_cidr_span(raw: &Spanned<RawNode>) -> Range<usize> {
    raw.get_ref()
        .pod_cidr
        .as_ref()
        .map(|v| v.span())
        .unwrap_or(raw.span())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses an address the topology accepts as an internal IP.
fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let a = IpAddr::from_str(s.trim()).map_err(|_| {
        if s.contains('/') {
            "is a prefix, not an address: write the address without /length".to_string()
        } else {
            "is not an IPv4 or IPv6 address".to_string()
        }
    })?;
    if s.trim() != s {
        return Err("has surrounding spaces".to_string());
    }
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err("is not a unicast address a node can use".to_string());
    }
    if let IpAddr::V4(v4) = a
        && v4.is_broadcast()
    {
        return Err("is the broadcast address".to_string());
    }
    Ok(a)
}

/// Parses a prefix the topology accepts as a pod CIDR.
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if !s.contains('/') {
        return Err("is not a CIDR: add the prefix length (e.g. 10.1.0.0/24)".to_string());
    }
    let net = IpNet::from_str(s).map_err(|_| "is not a valid CIDR".to_string())?;
    if net.prefix_len() == 0 {
        return Err("covers every address: a pod CIDR must be a real prefix".to_string());
    }
    if net.trunc() != net {
        return Err(format!("has host bits set: did you mean {}?", net.trunc()));
    }
    Ok(net)
}

/// A node's name: a label that is safe in argv, in messages and as a file name.
fn check_node_name(s: &str) -> Result<(), String> {
    check_token(s, 63)
}

fn check_token(s: &str, max: usize) -> Result<(), String> {
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if s.is_empty() {
        return Err("is empty".to_string());
    }
    if !first_ok || !rest_ok || s.len() > max {
        return Err(format!(
            "is not valid: use letters, digits, `-`, `_` and `.`, starting with a letter or \
             digit, at most {max} characters"
        ));
    }
    Ok(())
}

/// What a transport addresses: an LXD/Incus instance (optionally `remote:instance`) or a
/// network namespace.
fn check_instance(s: &str, transport: TransportKind) -> Result<(), String> {
    match transport {
        TransportKind::Netns => {
            if s.contains(':') {
                return Err("has a remote prefix, which the netns transport cannot use".into());
            }
            check_token(s, 63)
        }
        TransportKind::Lxc | TransportKind::Incus => {
            let (remote, name) = match s.split_once(':') {
                Some((r, n)) => (Some(r), n),
                None => (None, s),
            };
            if let Some(r) = remote {
                check_token(r, 63).map_err(|why| format!("has a remote name that {why}"))?;
            }
            let ok = !name.is_empty()
                && name.len() <= 63
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && !name.ends_with('-');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "is not a valid {transport} instance name: letters, digits and `-`, \
                     starting with a letter, not ending with `-`, at most 63 characters"
                ))
            }
        }
    }
}

/// A Linux interface name that is also safe inside an `ip -batch` line.
fn check_interface(s: &str) -> Result<(), String> {
    check_token(s, 15).map_err(|_| {
        "is not a valid interface name: letters, digits, `-`, `_` and `.`, starting with a letter \
         or digit, at most 15 characters"
            .to_string()
    })
}

/// Names of the nodes, for lookups.
pub fn node_names(t: &Topology) -> BTreeSet<&str> {
    t.nodes.iter().map(|n| n.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Topology {
        parse(text.as_bytes(), "t.toml", None).unwrap_or_else(|p| panic!("{p}"))
    }

    fn errs(text: &str) -> String {
        parse(text.as_bytes(), "t.toml", None)
            .unwrap_err()
            .to_string()
    }

    const LAB: &str = r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"

[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"

[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
"#;

    #[test]
    fn access_defaults_to_exec_and_is_checked() {
        assert_eq!(ok(LAB).cluster.access, Access::Exec);
        let host = LAB.replace("[cluster]\n", "[cluster]\naccess = \"host\"\n");
        assert_eq!(ok(&host).cluster.access, Access::Host);
        let bad = LAB.replace("[cluster]\n", "[cluster]\naccess = \"ssh\"\n");
        assert!(
            errs(&bad).contains("t.toml:3:10: unknown access `ssh`: expected one of exec, host"),
            "{}",
            errs(&bad)
        );
    }

    #[test]
    fn accepts_the_lab() {
        let t = ok(LAB);
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(t.cluster.transport, TransportKind::Lxc);
        assert_eq!(t.cluster.protocol, DEFAULT_PROTOCOL);
        assert_eq!(
            t.nodes[1].pod_cidrs,
            vec!["10.1.0.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(t.nodes[0].interface, "eth1");
        assert_eq!(t.nodes[1].line, 10);
        assert_eq!(t.sha256.len(), 64);
    }

    #[test]
    fn dual_stack_arrays() {
        let t = ok(r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "w"
internal_ip = ["fd00::20", "10.0.2.20"]
pod_cidr = ["fd01::/64", "10.1.0.0/24"]
"#);
        assert_eq!(t.nodes[0].internal_ips[0].to_string(), "10.0.2.20");
        assert_eq!(t.nodes[0].pod_cidrs[1].to_string(), "fd01::/64");
    }

    #[test]
    fn reports_every_problem_with_position() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "-x"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.1/24"
[[nodes]]
name = "w1"
internal_ip = "10.1.0.9"
pod_cidr = "10.2.0.0/24"
"#,
        );
        assert!(e.contains("t.toml:6:8: node name `-x` is not valid"), "{e}");
        assert!(e.contains("t.toml:8:12: node `-x`: pod_cidr `10.1.0.1/24` has host bits set: did you mean 10.1.0.0/24?"), "{e}");
        assert!(
            e.contains("t.toml:12:12: node `w1`: pod_cidr 10.2.0.0/24 lies outside"),
            "{e}"
        );
    }

    #[test]
    fn overlaps_and_duplicates() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "b"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "a"
internal_ip = "10.1.5.5"
"#,
        );
        assert!(
            e.contains("overlaps pod_cidr 10.1.0.0/16 of node `a`"),
            "{e}"
        );
        assert!(e.contains("internal_ip 10.0.2.20 is already used"), "{e}");
        assert!(e.contains("duplicate node name `a`"), "{e}");
        assert!(
            e.contains("internal_ip 10.1.5.5 lies inside pod_cidr 10.1.0.0/16"),
            "{e}"
        );
    }

    #[test]
    fn syntax_and_unknown_keys() {
        let e = errs("[cluster]\ninterface = \"eth1\"\ncolour = 1\n");
        assert!(e.starts_with("t.toml:3:1: unknown field `colour`"), "{e}");
        let e = errs("[cluster\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn family_mismatch() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
pod_cidr = "fd01::/64"
"#,
        );
        assert!(
            e.contains("pod_cidr fd01::/64 is IPv6 but the node has no IPv6 internal_ip"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_names_the_position() {
        let e = parse(b"[cluster]\ninterface = \"e\xfftestsfile\"", "t.toml", None).unwrap_err();
        assert_eq!(e.0[0].line, 2);
        assert!(e.0[0].message.contains("UTF-8"));
    }

    #[test]
    fn control_characters_in_quoted_values_are_escaped() {
        // Regression: a name with a newline printed a raw newline, so a crafted name could add
        // a line such as `t.toml:1:1: …` to the report.
        let e = errs(
            "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w0\\nt.toml:1:1: fine\\u001b[2J\"\ninternal_ip = \"10.0.2.20\"\n",
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("t.toml:4:8: node name `w0\\nt.toml:1:1: fine\\u{1b}[2J` is not valid"),
            "{e}"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
