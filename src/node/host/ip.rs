//! `ip` over netlink: the route dump written in the snapshot format (what `ip -N -d -j route
//! show table all` prints: what `show --save` stores), and an apply's route operations turned
//! into the netlink requests `ip route add|replace|del` sends for their lines. Reads and an
//! apply's read-back get routectl's values straight from the dumps (`typed.rs`), never this
//! text.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
#[cfg(test)]
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::Serialize;

use crate::core::change::{RouteOp, Verb};
use crate::core::route::{NextHop, TYPE_UNICAST};
use crate::node::netlink::{self, Netlink, NlError};

pub(super) fn link_names(links: &[LinkMessage]) -> HashMap<u32, String> {
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
pub(super) fn prefix_text(addr: Option<IpAddr>, len: u8, family: &AddressFamily) -> String {
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

pub(super) fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// `"via": {"family": …, "host": …}` as `ip -j` prints it.
#[derive(Serialize)]
pub(super) struct IpVia {
    family: &'static str,
    host: String,
}

pub(super) fn via(v: &RouteVia) -> Option<IpVia> {
    match v {
        RouteVia::Inet(a) => Some(IpVia {
            family: "inet",
            host: a.to_string(),
        }),
        RouteVia::Inet6(a) => Some(IpVia {
            family: "inet6",
            host: a.to_string(),
        }),
        _ => None,
    }
}

/// One route object of `ip -N -d -j route show`, with the keys the route parser reads.
#[derive(Serialize, Default)]
struct IpRoute {
    #[serde(rename = "type")]
    kind: String,
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<IpVia>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nhid: Option<u32>,
    table: String,
    protocol: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefsrc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<u32>,
    flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pref: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nexthops: Option<Vec<IpHop>>,
}

/// One hop of a multipath route.
#[derive(Serialize)]
struct IpHop {
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<IpVia>,
    dev: String,
    weight: u32,
}

/// One interface of `ip -N -j addr show`, with the keys the address parser reads.
#[cfg(test)]
#[derive(Serialize)]
struct IpLink {
    ifindex: u32,
    ifname: String,
    addr_info: Vec<IpAddrInfo>,
}

#[cfg(test)]
#[derive(Serialize)]
struct IpAddrInfo {
    family: &'static str,
    local: String,
    prefixlen: u8,
    scope: String,
}

pub(super) fn dev_name(names: &HashMap<u32, String>, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

/// `ip`'s flag names for `rtm_flags`, in its order (iproute2 `print_rt_flags`).
pub(super) fn flag_names(flags: RouteFlags) -> Vec<&'static str> {
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
        .map(|(_, n)| *n)
        .collect()
}

/// The snapshot format: routes written as `ip -N -d -j route show table all` writes them, with
/// the keys the route parser reads (cloned cache entries are skipped, as `ip` skips them). For
/// the routes of a lab node this is byte for byte what `ip` prints, so that a snapshot taken
/// with host access is the one exec access takes.
pub fn routes_json(routes: &[RouteMessage], names: &HashMap<u32, String>) -> Vec<u8> {
    let out: Vec<IpRoute> = routes
        .iter()
        // RTM_F_CLONED: cache entries, which `ip` skips.
        .filter(|r| r.header.flags.bits() & 0x200 == 0)
        .map(|r| ip_route(r, names))
        .collect();
    serde_json::to_vec(&out).unwrap_or_else(|_| b"[]".to_vec())
}

fn ip_route(r: &RouteMessage, names: &HashMap<u32, String>) -> IpRoute {
    let h = &r.header;
    let mut o = IpRoute {
        kind: u8::from(h.kind).to_string(),
        protocol: u8::from(h.protocol).to_string(),
        scope: u8::from(h.scope).to_string(),
        flags: flag_names(h.flags),
        tos: (h.tos != 0).then(|| format!("0x{:02x}", h.tos)),
        ..IpRoute::default()
    };
    let mut dst = None;
    let mut src = None;
    let mut table = u32::from(h.table);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = route_addr(d),
            RouteAttribute::Source(s) => src = route_addr(s),
            RouteAttribute::Gateway(g) => o.gateway = route_addr(g).map(|g| g.to_string()),
            RouteAttribute::Via(v) => o.via = via(v),
            RouteAttribute::Oif(i) => o.dev = Some(dev_name(names, *i)),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => o.metric = Some(*p),
            RouteAttribute::MultiPath(hops) => {
                o.nexthops = Some(hops.iter().map(|nh| ip_hop(nh, names)).collect());
            }
            RouteAttribute::NhId(id) => o.nhid = Some(*id),
            RouteAttribute::PrefSource(p) => o.prefsrc = route_addr(p).map(|p| p.to_string()),
            RouteAttribute::Preference(p) => o.pref = Some(preference(*p)),
            _ => {}
        }
    }
    o.dst = prefix_text(dst, h.destination_prefix_length, &h.address_family);
    if h.source_prefix_length > 0 {
        o.from = Some(prefix_text(src, h.source_prefix_length, &h.address_family));
    }
    o.table = table.to_string();
    o
}

/// An IPv6 route's preference as `ip` names it.
fn preference(p: netlink_packet_route::route::RoutePreference) -> &'static str {
    use netlink_packet_route::route::RoutePreference;
    match p {
        RoutePreference::Low => "low",
        RoutePreference::Medium => "medium",
        RoutePreference::High => "high",
        _ => "invalid",
    }
}

fn ip_hop(nh: &RouteNextHop, names: &HashMap<u32, String>) -> IpHop {
    let mut hop = IpHop {
        gateway: None,
        via: None,
        dev: dev_name(names, nh.interface_index),
        weight: u32::from(nh.hops) + 1,
    };
    for a in &nh.attributes {
        match a {
            RouteAttribute::Gateway(g) => hop.gateway = route_addr(g).map(|g| g.to_string()),
            RouteAttribute::Via(v) => hop.via = via(v),
            _ => {}
        }
    }
    hop
}

/// Renders interfaces and addresses as `ip -N -j addr show` does, with the keys the address
/// parser reads (for the tests that compare [`super::links_of`] with that parser).
#[cfg(test)]
pub fn addrs_json(
    links: &[LinkMessage],
    addrs: &[AddressMessage],
    names: &HashMap<u32, String>,
) -> Vec<u8> {
    let mut per_link: HashMap<u32, Vec<IpAddrInfo>> = HashMap::new();
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
        per_link.entry(h.index).or_default().push(IpAddrInfo {
            family,
            local: addr.to_string(),
            prefixlen: h.prefix_len,
            scope: u8::from(h.scope).to_string(),
        });
    }
    let out: Vec<IpLink> = links
        .iter()
        .map(|l| IpLink {
            ifindex: l.header.index,
            ifname: dev_name(names, l.header.index),
            addr_info: per_link.remove(&l.header.index).unwrap_or_default(),
        })
        .collect();
    serde_json::to_vec(&out).unwrap_or_else(|_| b"[]".to_vec())
}

/// The netlink request `ip route VERB …` sends for the operation's line: the same header
/// fields and attributes (`add` and `replace`: the type named or unicast, the scope `ip` gives
/// it; `del`: the type named or none, scope nowhere).
pub fn route_request(
    op: &RouteOp,
    indexes: &HashMap<&str, u32>,
) -> Result<(RouteNetlinkMessage, u16), String> {
    let mut m = RouteMessage::default();
    let dst = op.dst.trunc();
    let (family, addr) = match dst {
        IpNet::V4(n) => (AddressFamily::Inet, RouteAddress::Inet(n.addr())),
        IpNet::V6(n) => (AddressFamily::Inet6, RouteAddress::Inet6(n.addr())),
    };
    m.header.address_family = family;
    m.header.destination_prefix_length = dst.prefix_len();
    m.header.tos = op.tos;
    if op.table < 256 {
        m.header.table = op.table as u8;
    } else {
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
        m.attributes.push(RouteAttribute::Table(op.table));
    }
    let del = op.verb == Verb::Del;
    m.header.protocol = RouteProtocol::from(op.protocol);
    let kind = op.kind.unwrap_or(if del { 0 } else { TYPE_UNICAST });
    m.header.kind = RouteType::from(kind);
    let gateways = match &op.next_hop {
        NextHop::Single(h) => h.gateway.is_some(),
        NextHop::Multipath(hops) => !hops.is_empty(),
    };
    m.header.scope = scope(kind, del, gateways || op.nhid.is_some());
    m.attributes.push(RouteAttribute::Destination(addr));
    if let Some(from) = op.from {
        m.header.source_prefix_length = from.prefix_len();
        m.attributes
            .push(RouteAttribute::Source(RouteAddress::from(from.addr())));
    }
    let dev_index = |dev: &str| {
        indexes
            .get(dev)
            .copied()
            .ok_or_else(|| format!("Cannot find device \"{dev}\""))
    };
    match &op.next_hop {
        NextHop::Single(h) => {
            if let Some(g) = h.gateway {
                m.attributes.push(gateway(g, &dst));
            }
            if let Some(dev) = &h.dev {
                m.attributes.push(RouteAttribute::Oif(dev_index(dev)?));
            }
            if op.onlink {
                m.header.flags = RouteFlags::from_bits_retain(RTNH_F_ONLINK);
            }
        }
        NextHop::Multipath(hops) => {
            let mut out = Vec::with_capacity(hops.len());
            for (i, h) in hops.iter().enumerate() {
                let mut nh = RouteNextHop::default();
                if let Some(dev) = &h.dev {
                    nh.interface_index = dev_index(dev)?;
                }
                if let Some(g) = h.gateway {
                    nh.attributes.push(gateway(g, &dst));
                }
                // `ip` reads a trailing `onlink` as a flag of the last next hop.
                if op.onlink && i + 1 == hops.len() {
                    nh.flags = RouteNextHopFlags::from_bits_retain(RTNH_F_ONLINK as u8);
                }
                out.push(nh);
            }
            m.attributes.push(RouteAttribute::MultiPath(out));
        }
    }
    m.attributes.push(RouteAttribute::Priority(op.metric));
    if let Some(id) = op.nhid {
        m.attributes.push(RouteAttribute::NhId(id));
    }
    Ok(match op.verb {
        Verb::Add => (RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL),
        Verb::Replace => (
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        Verb::Del => (RouteNetlinkMessage::DelRoute(m), 0),
    })
}

/// `RTNH_F_ONLINK`.
const RTNH_F_ONLINK: u32 = 0x04;

/// The scope `ip route` gives a route it sends (iproute2 `iproute_modify`): host for local and
/// NAT routes, link for broadcast, multicast and anycast ones; for unicast (or an unnamed type)
/// nowhere on a delete, link for an add without a gateway, universe otherwise.
fn scope(kind: u8, del: bool, gateways: bool) -> RouteScope {
    match kind {
        2 | 10 => RouteScope::Host,
        3..=5 => RouteScope::Link,
        0 | 1 if del => RouteScope::NoWhere,
        0 | 1 if !gateways => RouteScope::Link,
        _ => RouteScope::Universe,
    }
}

/// A gateway of the destination's family as `RTA_GATEWAY`, of the other one as `RTA_VIA`.
fn gateway(g: IpAddr, dst: &IpNet) -> RouteAttribute {
    let same = matches!(
        (g, dst),
        (IpAddr::V4(_), IpNet::V4(_)) | (IpAddr::V6(_), IpNet::V6(_))
    );
    if same {
        RouteAttribute::Gateway(RouteAddress::from(g))
    } else {
        RouteAttribute::Via(match g {
            IpAddr::V4(a) => RouteVia::Inet(a),
            IpAddr::V6(a) => RouteVia::Inet6(a),
        })
    }
}

/// Sends one route operation; what the kernel refused, as `ip` says it.
pub(super) fn write_route(
    nl: &mut Netlink,
    op: &RouteOp,
    indexes: &HashMap<&str, u32>,
) -> Result<(), String> {
    let (msg, flags) = route_request(op, indexes)?;
    nl.request(msg, flags).map_err(|e| match e {
        NlError::Kernel(errno) => format!("RTNETLINK answers: {}", netlink::strerror(errno)),
        NlError::KernelSaid(_, why) => why,
        other => other.to_string(),
    })
}
