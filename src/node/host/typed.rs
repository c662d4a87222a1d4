//! Netlink dumps as routectl's own values: a route message as the [`Route`] the exec read's
//! parser makes of what `ip -N -d -j route show` prints for it, interfaces and their addresses
//! as [`Link`]s. No text in between; the tests compare both ways on the same messages.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteNextHop, RouteVia};

use crate::core::link::{Link, LinkAddr};
use crate::core::route::{Destination, Family, Hop, NextHop, Route};

use super::ip::{dev_name, flag_names, route_addr};

/// `RTM_F_CLONED`: cache entries, which `ip` does not print.
const CLONED: u32 = 0x200;

/// The routes of a dump, in its order, without cache entries.
pub fn routes_of(msgs: &[RouteMessage], names: &HashMap<u32, String>) -> Vec<Route> {
    msgs.iter()
        .filter(|r| r.header.flags.bits() & CLONED == 0)
        .map(|r| route_of(r, names))
        .collect()
}

/// A gateway given as `RTA_VIA` (another family's address).
fn via_addr(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(a) => Some(IpAddr::V4(*a)),
        RouteVia::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// A device name as the parser keeps it (an empty name is none).
fn dev(names: &HashMap<u32, String>, index: u32) -> Option<String> {
    Some(dev_name(names, index)).filter(|d| !d.is_empty())
}

/// One route message as a [`Route`].
pub fn route_of(r: &RouteMessage, names: &HashMap<u32, String>) -> Route {
    let h = &r.header;
    let (mut dst, mut src, mut gateway, mut via) = (None, None, None, None);
    let (mut dev_index, mut table, mut metric) = (None, u32::from(h.table), 0);
    let (mut hops, mut nhid) = (None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = route_addr(d),
            RouteAttribute::Source(s) => src = route_addr(s),
            RouteAttribute::Gateway(g) => gateway = route_addr(g),
            RouteAttribute::Via(v) => via = via_addr(v),
            RouteAttribute::Oif(i) => dev_index = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::MultiPath(m) => hops = Some(m),
            RouteAttribute::NhId(id) => nhid = Some(*id),
            _ => {}
        }
    }
    let next_hop = match hops {
        Some(m) if !m.is_empty() => NextHop::Multipath(m.iter().map(|nh| hop_of(nh, names)).collect()),
        _ => NextHop::Single(Hop {
            gateway: gateway.or(via),
            dev: dev_index.and_then(|i| dev(names, i)),
        }),
    };
    let gateway_family = match &next_hop {
        NextHop::Single(h) => h.gateway.as_ref().map(Family::of_addr),
        NextHop::Multipath(hs) => hs.iter().find_map(|h| h.gateway.as_ref().map(Family::of_addr)),
    };
    Route {
        dst: destination(dst, h.destination_prefix_length, gateway_family),
        table,
        kind: u8::from(h.kind),
        protocol: u8::from(h.protocol),
        metric,
        tos: h.tos,
        from: match src {
            Some(a) if h.source_prefix_length > 0 => prefix(a, h.source_prefix_length).net(),
            _ => None,
        },
        next_hop,
        nhid,
        flags: flag_names(h.flags).into_iter().map(str::to_string).collect(),
    }
}

/// One hop of a multipath route.
fn hop_of(nh: &RouteNextHop, names: &HashMap<u32, String>) -> Hop {
    let (mut gateway, mut via) = (None, None);
    for a in &nh.attributes {
        match a {
            RouteAttribute::Gateway(g) => gateway = route_addr(g),
            RouteAttribute::Via(v) => via = via_addr(v),
            _ => {}
        }
    }
    Hop {
        gateway: gateway.or(via),
        dev: dev(names, nh.interface_index),
    }
}

/// An address and a prefix length as a destination (a length too long for the address is
/// kept as data, as `ip` would print it).
fn prefix(a: IpAddr, len: u8) -> Destination {
    match IpNet::new(a, len) {
        Ok(n) => Destination::Net(n.trunc()),
        Err(_) => Destination::Other(format!("{a}/{len}")),
    }
}

/// The destination: `default` takes the family of its gateway when it has one (as the parser
/// reads `ip`'s `"dst":"default"`, which does not tell the family).
fn destination(dst: Option<IpAddr>, len: u8, gateway: Option<Family>) -> Destination {
    match (dst, len) {
        (Some(a), len) => prefix(a, len),
        (None, 0) => match gateway {
            Some(Family::Ipv4) => Destination::Net(IpNet::V4(Ipv4Net::default())),
            Some(Family::Ipv6) => Destination::Net(IpNet::V6(Ipv6Net::default())),
            None => Destination::Default,
        },
        (None, len) => Destination::Other(format!("0/{len}")),
    }
}

/// The interfaces of a dump, in its order, each with its addresses (interfaces without a
/// name are left out, as the parser leaves them out).
pub fn links_of(
    links: &[LinkMessage],
    addrs: &[AddressMessage],
    names: &HashMap<u32, String>,
) -> Vec<Link> {
    let mut per_link: HashMap<u32, Vec<LinkAddr>> = HashMap::new();
    for a in addrs {
        let (mut local, mut address) = (None, None);
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
        per_link.entry(a.header.index).or_default().push(LinkAddr {
            addr,
            prefix_len: a.header.prefix_len,
            scope: u8::from(a.header.scope),
        });
    }
    links
        .iter()
        .filter_map(|l| {
            let name = dev(names, l.header.index)?;
            Some(Link {
                name,
                addresses: per_link.remove(&l.header.index).unwrap_or_default(),
            })
        })
        .collect()
}
