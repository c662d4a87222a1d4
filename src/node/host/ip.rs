//! `ip` over netlink: the route dump written in the snapshot format (what `ip -N -d -j route
//! show table all` prints: what `show --save` stores and what an apply's read-back is), and
//! the batch lines routectl sends (`route add|replace|del …`) turned into netlink requests.
//! Reads get routectl's values straight from the dumps (`typed.rs`), never this text.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
#[cfg(test)]
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::Serialize;

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

pub(super) fn write_route(
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
        NlError::KernelSaid(_, why) => why,
        other => other.to_string(),
    })
}
