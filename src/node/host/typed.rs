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
        Some(m) if !m.is_empty() => {
            NextHop::Multipath(m.iter().map(|nh| hop_of(nh, names)).collect())
        }
        _ => NextHop::Single(Hop {
            gateway: gateway.or(via),
            dev: dev_index.and_then(|i| dev(names, i)),
        }),
    };
    let gateway_family = match &next_hop {
        NextHop::Single(h) => h.gateway.as_ref().map(Family::of_addr),
        NextHop::Multipath(hs) => hs
            .iter()
            .find_map(|h| h.gateway.as_ref().map(Family::of_addr)),
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
        flags: flag_names(h.flags)
            .into_iter()
            .map(str::to_string)
            .collect(),
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netlink_packet_route::AddressFamily;
    use netlink_packet_route::address::{AddressHeaderFlags, AddressScope};
    use netlink_packet_route::link::LinkAttribute;
    use netlink_packet_route::route::{
        RouteAddress, RouteFlags, RouteNextHopFlags, RoutePreference, RouteProtocol, RouteScope,
        RouteType,
    };

    use super::*;
    use crate::node::host::ip::addrs_json;
    use crate::node::host::routes_json;
    use crate::node::iproute;

    fn v4(s: &str) -> RouteAddress {
        RouteAddress::Inet(s.parse().unwrap())
    }

    fn v6(s: &str) -> RouteAddress {
        RouteAddress::Inet6(s.parse().unwrap())
    }

    fn msg(
        family: AddressFamily,
        dst_len: u8,
        kind: RouteType,
        attrs: Vec<RouteAttribute>,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.destination_prefix_length = dst_len;
        m.header.kind = kind;
        m.header.table = 254;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.attributes = attrs;
        m
    }

    fn hop(index: u32, weight: u8, gateway: Option<RouteAttribute>) -> RouteNextHop {
        let mut h = RouteNextHop::default();
        h.interface_index = index;
        h.hops = weight;
        h.flags = RouteNextHopFlags::Onlink;
        h.attributes = gateway.into_iter().collect();
        h
    }

    /// Routes with odd header fields and attributes: onlink with a preferred source, a TOS, an
    /// IPv6 source prefix with a preference, a cache entry, a local route.
    fn odd_headers() -> Vec<RouteMessage> {
        use AddressFamily::{Inet, Inet6};
        use RouteAttribute::*;
        let mut onlink = msg(
            Inet,
            24,
            RouteType::Unicast,
            vec![
                Destination(v4("10.1.1.0")),
                Gateway(v4("10.0.2.21")),
                Oif(2),
                PrefSource(v4("10.0.2.20")),
            ],
        );
        onlink.header.flags = RouteFlags::Onlink;
        onlink.header.protocol = RouteProtocol::Other(211);
        let mut tos = msg(
            Inet,
            32,
            RouteType::Unicast,
            vec![Destination(v4("10.9.0.1")), Oif(3), Priority(7)],
        );
        tos.header.tos = 0x10;
        let mut from = msg(
            Inet6,
            64,
            RouteType::Unicast,
            vec![
                Destination(v6("fd00:1::")),
                Source(v6("fd00:9::")),
                Gateway(v6("fe80::1")),
                Oif(2),
                Priority(1024),
                Preference(RoutePreference::High),
            ],
        );
        from.header.source_prefix_length = 64;
        let mut cloned = msg(
            Inet,
            32,
            RouteType::Unicast,
            vec![Destination(v4("10.0.2.9"))],
        );
        cloned.header.flags = RouteFlags::from_bits_retain(0x200);
        let mut local = msg(
            Inet,
            32,
            RouteType::Local,
            vec![Destination(v4("10.0.2.20")), Oif(2)],
        );
        local.header.table = 255;
        vec![onlink, tos, from, cloned, local]
    }

    /// Routes of odd kinds: multipath, defaults, blackhole, prohibit, an unknown type.
    fn odd_kinds() -> Vec<RouteMessage> {
        use AddressFamily::{Inet, Inet6};
        use RouteAttribute::*;
        vec![
            // ECMP, one hop through an IPv6 gateway (`via inet6`), one through a device alone.
            msg(
                Inet,
                16,
                RouteType::Unicast,
                vec![
                    Destination(v4("10.2.0.0")),
                    MultiPath(vec![
                        hop(2, 0, Some(Gateway(v4("10.0.2.21")))),
                        hop(
                            2,
                            4,
                            Some(Via(RouteVia::Inet6("fe80::2".parse::<Ipv6Addr>().unwrap()))),
                        ),
                        hop(9, 1, None),
                    ]),
                ],
            ),
            // Default routes: with a gateway (its family), and unreachable (no family told).
            msg(
                Inet,
                0,
                RouteType::Unicast,
                vec![Gateway(v4("10.0.2.1")), Oif(2)],
            ),
            msg(
                Inet6,
                0,
                RouteType::Unreachable,
                vec![Oif(1), Priority(u32::MAX)],
            ),
            msg(
                Inet,
                24,
                RouteType::BlackHole,
                vec![Destination(v4("10.3.3.0")), Table(1000)],
            ),
            msg(
                Inet,
                24,
                RouteType::Prohibit,
                vec![Destination(v4("10.3.4.0")), NhId(12)],
            ),
            msg(
                Inet,
                8,
                RouteType::Other(99),
                vec![
                    Destination(v4("10.0.0.0")),
                    Via(RouteVia::Inet(Ipv4Addr::new(10, 0, 2, 3))),
                ],
            ),
        ]
    }

    /// Odd routes of every kind the kernel dumps, read straight from netlink and read through
    /// the text `ip -N -d -j` prints for them by the exec read's parser: the same values.
    #[test]
    fn netlink_routes_are_the_routes_the_exec_parser_reads() {
        let names: HashMap<u32, String> =
            [(2, "eth1".to_string()), (3, "cnio0".to_string())].into();
        let routes = [odd_headers(), odd_kinds()].concat();
        let by_text = iproute::parse_routes(&routes_json(&routes, &names)).unwrap();
        let typed = routes_of(&routes, &names);
        assert_eq!(typed.len(), routes.len() - 1, "the cache entry is left out");
        assert_eq!(typed, by_text);
        assert_eq!(typed[0].flags, ["onlink"]);
        assert_eq!(typed[2].from, Some("fd00:9::/64".parse().unwrap()));
        assert!(matches!(&typed[4].next_hop, NextHop::Multipath(h) if h.len() == 3));
        assert_eq!(typed[6].dst, crate::core::route::Destination::Default);
        assert_eq!(typed[7].table, 1000);
    }

    /// Interfaces and addresses, straight and through `ip -N -j addr show`'s text.
    #[test]
    fn netlink_links_are_the_links_the_exec_parser_reads() {
        let link = |index: u32, name: Option<&str>| {
            let mut l = LinkMessage::default();
            l.header.index = index;
            l.attributes = name
                .map(|n| LinkAttribute::IfName(n.to_string()))
                .into_iter()
                .collect();
            l
        };
        let links = vec![link(1, Some("lo")), link(2, Some("eth1")), link(3, None)];
        let names = super::super::ip::link_names(&links);
        let addr = |index: u32,
                    family: AddressFamily,
                    a: IpAddr,
                    len: u8,
                    scope: AddressScope,
                    local: bool| {
            let mut m = AddressMessage::default();
            m.header.index = index;
            m.header.family = family;
            m.header.prefix_len = len;
            m.header.scope = scope;
            m.header.flags = AddressHeaderFlags::Permanent;
            m.attributes.push(if local {
                AddressAttribute::Local(a)
            } else {
                AddressAttribute::Address(a)
            });
            m
        };
        let addrs = vec![
            addr(
                1,
                AddressFamily::Inet,
                "127.0.0.1".parse().unwrap(),
                8,
                AddressScope::Host,
                true,
            ),
            addr(
                2,
                AddressFamily::Inet,
                "10.0.2.20".parse().unwrap(),
                24,
                AddressScope::Universe,
                true,
            ),
            addr(
                2,
                AddressFamily::Inet6,
                "fe80::1".parse().unwrap(),
                64,
                AddressScope::Link,
                false,
            ),
            addr(
                7,
                AddressFamily::Inet,
                "10.9.9.9".parse().unwrap(),
                32,
                AddressScope::Universe,
                true,
            ),
        ];
        let typed = links_of(&links, &addrs, &names);
        assert_eq!(
            typed,
            iproute::parse_addrs(&addrs_json(&links, &addrs, &names)).unwrap()
        );
        assert_eq!(
            typed.len(),
            3,
            "an interface without a name is called by its index"
        );
        assert_eq!(typed[1].addresses.len(), 2);
    }
}
