//! The route vocabulary shared by every stage: what a route is, how it is identified in the
//! kernel, and the well-known numbers of iproute2 (tables, types, protocols) written down once.
//!
//! Routes are kept as typed values (`IpNet`, `IpAddr`, numbers) from the moment they are read;
//! names such as `main` or `boot` exist only for display.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The kernel's main routing table: the only table routectl reads for planning or ever changes.
pub const TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`: an ordinary forwarding route.
pub const TYPE_UNICAST: u8 = 1;
/// routectl's default routing protocol number (see docs/ownership.md for the choice).
pub const DEFAULT_PROTOCOL: u8 = 211;
/// The routing protocol number the kernel gives connected routes (`RTPROT_KERNEL`).
pub const PROTOCOL_KERNEL: u8 = 2;
/// The metric the kernel gives an IPv6 route added with metric 0 (`IP6_RT_PRIO_USER`).
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of_addr(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }

    /// The metric routectl writes for a route of this family when the topology sets none.
    pub fn default_metric(self) -> u32 {
        match self {
            Family::Ipv4 => 0,
            Family::Ipv6 => IPV6_DEFAULT_METRIC,
        }
    }

    /// The metric the kernel will really store when asked for `metric` (IPv6 turns 0 into 1024).
    pub fn effective_metric(self, metric: u32) -> u32 {
        match (self, metric) {
            (Family::Ipv6, 0) => IPV6_DEFAULT_METRIC,
            (_, m) => m,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// Where a route points to, as `ip` printed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Destination {
    /// A prefix (host routes are stored with their full length).
    Net(IpNet),
    /// `default` whose family could not be told from the route (`table all` mixes families).
    Default,
    /// Anything else `ip` may print; kept as data, never acted upon.
    Other(String),
}

impl Destination {
    /// The prefix, when the destination is one.
    pub fn net(&self) -> Option<IpNet> {
        match self {
            Destination::Net(n) => Some(*n),
            _ => None,
        }
    }

    /// True for a default route of any family.
    pub fn is_default(&self) -> bool {
        match self {
            Destination::Net(n) => n.prefix_len() == 0,
            Destination::Default => true,
            Destination::Other(_) => false,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Net(n) if n.prefix_len() == 0 => f.write_str("default"),
            Destination::Net(n) => NetText(*n).fmt(f),
            Destination::Default => f.write_str("default"),
            Destination::Other(s) => f.write_str(&crate::core::text::escape(s)),
        }
    }
}

/// One next hop of a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Hop {
    /// The gateway (`via`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The output device, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(g) = &self.gateway {
            write!(f, "via {}", AddrText(*g))?;
            sep = " ";
        }
        if let Some(d) = &self.dev {
            // Device names come from nodes: never print their control characters raw.
            write!(f, "{sep}dev {}", crate::core::text::escape(d))?;
        }
        Ok(())
    }
}

/// How a route forwards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    /// A single next hop (gateway and/or device), or none at all (blackhole and friends).
    Single(Hop),
    /// An ECMP route with several next hops.
    Multipath(Vec<Hop>),
}

/// A route in a kernel routing table, observed or desired.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// Destination prefix.
    pub dst: Destination,
    /// Routing table number.
    pub table: u32,
    /// Route type number (`RTN_*`; 1 = unicast).
    pub kind: u8,
    /// Routing protocol number (`RTPROT_*`; routectl's own marks ownership).
    pub protocol: u8,
    /// Metric (priority). Part of the kernel's key.
    pub metric: u32,
    /// IPv4 type of service; part of the kernel's key for IPv4 (0 almost always).
    pub tos: u8,
    /// IPv6 source prefix (`from`); part of the kernel's key for IPv6 (absent almost always).
    pub from: Option<IpNet>,
    /// Forwarding.
    pub next_hop: NextHop,
    /// The nexthop object the route uses (`nhid`), if any: such a route is identified by it
    /// (a delete naming its gateway is refused by the kernel), and `next_hop` shows what the
    /// object resolved to when read.
    pub nhid: Option<u32>,
    /// Route flags as printed (`onlink`, `linkdown`, …); data only.
    pub flags: Vec<String>,
}

impl Route {
    /// The unicast route routectl writes: `DST via GATEWAY [dev DEV] proto PROTOCOL metric
    /// METRIC`. Without a device the kernel picks it from the gateway.
    pub fn unicast(
        dst: IpNet,
        gateway: IpAddr,
        dev: Option<&str>,
        protocol: u8,
        metric: u32,
    ) -> Route {
        Route {
            dst: Destination::Net(dst),
            table: TABLE_MAIN,
            kind: TYPE_UNICAST,
            protocol,
            metric: Family::of_net(&dst).effective_metric(metric),
            tos: 0,
            from: None,
            next_hop: NextHop::Single(Hop {
                gateway: Some(gateway),
                dev: dev.map(str::to_string),
            }),
            nhid: None,
            flags: Vec::new(),
        }
    }

    /// The family, when the destination tells it.
    pub fn family(&self) -> Option<Family> {
        self.dst.net().map(|n| Family::of_net(&n))
    }

    /// True when both routes forward the same way (type, next hops, nexthop object), whatever
    /// their protocol. A route through a nexthop object never forwards like one without: the
    /// object can change under it.
    pub fn forwards_like(&self, other: &Route) -> bool {
        self.kind == other.kind && self.next_hop == other.next_hop && self.nhid == other.nhid
    }

    /// True when this (observed) route does what the desired route `want` asks: it forwards like
    /// it, except that a desired route without a device accepts whatever device the kernel
    /// picked for the gateway.
    pub fn satisfies(&self, want: &Route) -> bool {
        match (&self.next_hop, &want.next_hop) {
            (NextHop::Single(have), NextHop::Single(w)) if w.dev.is_none() => {
                self.kind == want.kind && have.gateway == w.gateway
            }
            _ => self.forwards_like(want),
        }
    }

    /// True when both routes occupy the same slot in the kernel (table, dst, metric, tos, from).
    pub fn same_key(&self, other: &Route) -> bool {
        self.table == other.table
            && self.dst == other.dst
            && self.metric == other.metric
            && self.tos == other.tos
            && self.from == other.from
    }

    /// The single gateway, if the route has exactly one next hop with a gateway.
    pub fn gateway(&self) -> Option<IpAddr> {
        match &self.next_hop {
            NextHop::Single(h) => h.gateway,
            NextHop::Multipath(_) => None,
        }
    }

    /// The single device, if the route has exactly one next hop with a device.
    pub fn dev(&self) -> Option<&str> {
        match &self.next_hop {
            NextHop::Single(h) => h.dev.as_deref(),
            NextHop::Multipath(_) => None,
        }
    }
}

/// Renders a route the way `ip route` prints it (numbers where iproute2 would print names
/// that may differ between machines; well-known names where they are fixed).
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != TYPE_UNICAST {
            write!(f, "{} ", type_name(self.kind))?;
        }
        write!(f, "{}", self.dst)?;
        if let Some(id) = self.nhid {
            write!(f, " nhid {id}")?;
        }
        if let Some(from) = &self.from {
            write!(f, " from {}", NetText(*from))?;
        }
        if self.tos != 0 {
            write!(f, " tos 0x{:02x}", self.tos)?;
        }
        match &self.next_hop {
            NextHop::Single(h) if h.gateway.is_none() && h.dev.is_none() => {}
            NextHop::Single(h) => write!(f, " {h}")?,
            NextHop::Multipath(hops) => {
                for h in hops {
                    write!(f, " nexthop {h}")?;
                }
            }
        }
        if self.table != TABLE_MAIN {
            write!(f, " table {}", table_name(self.table))?;
        }
        f.write_str(" proto ")?;
        write_name(f, WELL_KNOWN_PROTOCOLS, self.protocol)?;
        let default_metric = self.family().map(Family::default_metric).unwrap_or(0);
        if self.metric != default_metric {
            write!(f, " metric {}", self.metric)?;
        }
        for flag in &self.flags {
            write!(f, " {}", crate::core::text::escape(flag))?;
        }
        Ok(())
    }
}

/// Protocol numbers with fixed meanings (the kernel's `RTPROT_*` and iproute2's `rt_protos`).
/// routectl refuses to own any of them.
pub const WELL_KNOWN_PROTOCOLS: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (3, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (80, "calico"),
    (99, "openr"),
    (186, "bgp"),
    (187, "isis"),
    (188, "ospf"),
    (189, "rip"),
    (191, "nhrp"),
    (192, "eigrp"),
    (193, "ldp"),
    (194, "sharp"),
    (195, "pbr"),
    (196, "zstatic"),
    (197, "openfabric"),
    (198, "srte"),
];

const TYPES: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "unicast"),
    (2, "local"),
    (3, "broadcast"),
    (4, "anycast"),
    (5, "multicast"),
    (6, "blackhole"),
    (7, "unreachable"),
    (8, "prohibit"),
    (9, "throw"),
    (10, "nat"),
    (11, "xresolve"),
];

const TABLES: &[(u32, &str)] = &[
    (0, "unspec"),
    (253, "default"),
    (254, "main"),
    (255, "local"),
];

/// The name iproute2 uses for a protocol number, or the number.
pub fn protocol_name(n: u8) -> String {
    name_of(WELL_KNOWN_PROTOCOLS, n)
}

/// The name of a route type number, or the number.
pub fn type_name(n: u8) -> String {
    name_of(TYPES, n)
}

/// The name of a table number, or the number.
pub fn table_name(n: u32) -> String {
    name_of(TABLES, n)
}

/// Looks up a protocol given by name (as an `ip` without `-N` support would print it).
pub fn protocol_number(name: &str) -> Option<u8> {
    number_of(WELL_KNOWN_PROTOCOLS, name)
}

/// Looks up a route type given by name.
pub fn type_number(name: &str) -> Option<u8> {
    number_of(TYPES, name)
}

/// Looks up a table given by name.
pub fn table_number(name: &str) -> Option<u32> {
    number_of(TABLES, name)
}

fn name_of<N: Copy + PartialEq + fmt::Display>(list: &[(N, &str)], n: N) -> String {
    list.iter()
        .find(|(k, _)| *k == n)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| n.to_string())
}

/// Writes the name of `n`, or the number, without a string in between.
fn write_name<N: Copy + PartialEq + fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    list: &[(N, &str)],
    n: N,
) -> fmt::Result {
    match list.iter().find(|(k, _)| *k == n) {
        Some((_, name)) => f.write_str(name),
        None => write!(f, "{n}"),
    }
}

/// An address as std prints it; IPv4 without the formatting machinery per octet, since a plan
/// of a new cluster prints some millions of them.
#[derive(Debug, Clone, Copy)]
pub struct AddrText(pub IpAddr);

impl fmt::Display for AddrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IpAddr::V4(a) => write_v4(f, a.octets(), None),
            IpAddr::V6(a) => write!(f, "{a}"),
        }
    }
}

/// A prefix as ipnet prints it (`ADDR/LEN`); IPv4 the fast way as in [`AddrText`].
#[derive(Debug, Clone, Copy)]
pub struct NetText(pub IpNet);

impl fmt::Display for NetText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IpNet::V4(n) => write_v4(f, n.addr().octets(), Some(n.prefix_len())),
            IpNet::V6(n) => write!(f, "{n}"),
        }
    }
}

/// `A.B.C.D` (and `/LEN`) from one buffer.
fn write_v4(f: &mut fmt::Formatter<'_>, octets: [u8; 4], len: Option<u8>) -> fmt::Result {
    let mut buf = Digits::default();
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        buf.number(o);
    }
    if let Some(len) = len {
        buf.push(b'/');
        buf.number(len);
    }
    f.write_str(std::str::from_utf8(&buf.bytes[..buf.len]).map_err(|_| fmt::Error)?)
}

/// Room for `255.255.255.255/32`.
#[derive(Default)]
struct Digits {
    bytes: [u8; 18],
    len: usize,
}

impl Digits {
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn number(&mut self, v: u8) {
        if v >= 100 {
            self.push(b'0' + v / 100);
        }
        if v >= 10 {
            self.push(b'0' + v / 10 % 10);
        }
        self.push(b'0' + v % 10);
    }
}

fn number_of<N: Copy>(list: &[(N, &str)], name: &str) -> Option<N> {
    list.iter().find(|(_, v)| *v == name).map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_metric_zero_is_stored_as_1024() {
        assert_eq!(Family::Ipv6.effective_metric(0), 1024);
        assert_eq!(Family::Ipv6.effective_metric(7), 7);
        assert_eq!(Family::Ipv4.effective_metric(0), 0);
    }

    #[test]
    fn renders_like_ip_route() {
        let r = Route::unicast(
            "10.1.1.0/24".parse().unwrap(),
            "10.0.2.21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        assert_eq!(
            r.to_string(),
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"
        );
        let r6 = Route::unicast(
            "fd00:1:1::/64".parse().unwrap(),
            "fd00::21".parse().unwrap(),
            Some("eth1"),
            211,
            5,
        );
        assert_eq!(
            r6.to_string(),
            "fd00:1:1::/64 via fd00::21 dev eth1 proto 211 metric 5"
        );
    }

    #[test]
    fn fast_address_text_is_std_text() {
        for a in [
            "0.0.0.0",
            "10.0.2.21",
            "255.255.255.255",
            "192.168.100.9",
            "fd00::21",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(AddrText(ip).to_string(), ip.to_string());
        }
        for n in [
            "0.0.0.0/0",
            "10.64.255.0/24",
            "255.255.255.255/32",
            "fd01::/64",
        ] {
            let net: IpNet = n.parse().unwrap();
            assert_eq!(NetText(net).to_string(), net.to_string());
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(protocol_number("boot"), Some(3));
        assert_eq!(protocol_name(3), "boot");
        assert_eq!(protocol_name(211), "211");
        assert_eq!(table_number("main"), Some(TABLE_MAIN));
        assert_eq!(type_name(6), "blackhole");
    }
}
