//! Whether a node can carry the routes the topology gives it: its route interface exists, its
//! internal IPs are its own, and every gateway of its desired routes is on-link on its route
//! interface. A node that fails one of these is an error of that node in the plan (nothing is
//! written to it), and `show` reports the same findings: one judgement for both.
//!
//! The judgement needs the node's interfaces and addresses. `show` reads them (`ip addr`); the
//! plan takes them from the route read itself ([`links_from_routes`]): the kernel keeps a
//! `local` route in table local for every address of an interface that is up, and a connected
//! route in table main for its prefix, so one `ip route show table all` tells both, at no cost.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::core::link::{Link, LinkAddr, SCOPE_HOST, SCOPE_LINK, SCOPE_UNIVERSE};
use crate::core::route::{Destination, Family, Hop, NextHop, Route, TABLE_MAIN};
use crate::core::text::escape;
use crate::core::topology::{Node, Topology};

/// Table local (`RT_TABLE_LOCAL`).
pub const TABLE_LOCAL: u32 = 255;
/// Route type `local` (`RTN_LOCAL`): an address of this host.
pub const TYPE_LOCAL: u8 = 2;

/// One reason a node cannot carry its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// The route interface does not exist on the node, or is down.
    NoInterface {
        /// The declared interface.
        interface: String,
        /// The interfaces the node has up.
        present: Vec<String>,
    },
    /// A declared internal IP is an address of no interface of the node.
    InternalIpAbsent {
        /// The declared address.
        address: IpAddr,
        /// The declared route interface, if any.
        interface: Option<String>,
        /// The addresses of that family the route interface has (`10.0.2.23/24`).
        has: Vec<String>,
    },
    /// A gateway (another node's internal IP) is not on-link on the route interface.
    GatewayOffLink {
        /// The gateway.
        gateway: IpAddr,
        /// The node whose internal IP it is.
        peer: String,
        /// The route interface.
        interface: String,
        /// The networks of the gateway's family connected to that interface.
        networks: Vec<String>,
    },
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| v.iter().map(|s| escape(s)).collect::<Vec<_>>().join(", ");
        match self {
            Misfit::NoInterface { interface, present } => write!(
                f,
                "the node has no interface {} that is up (it has {}); no route via it can be \
                 added",
                escape(interface),
                if present.is_empty() {
                    "none".to_string()
                } else {
                    list(present)
                }
            ),
            Misfit::InternalIpAbsent {
                address,
                interface,
                has,
            } => {
                write!(f, "internal_ip {address} is on no interface of the node")?;
                let family = Family::of_addr(address);
                match (interface, has.is_empty()) {
                    (Some(i), true) => write!(f, " ({} has no {family} address)", escape(i))?,
                    (Some(i), false) => write!(f, " ({} has {})", escape(i), list(has))?,
                    (None, _) => {}
                }
                write!(f, "; the other nodes would route to an address nobody has")
            }
            Misfit::GatewayOffLink {
                gateway,
                peer,
                interface,
                networks,
            } => {
                write!(
                    f,
                    "gateway {gateway} (internal_ip of {}) is not on-link on {} (",
                    escape(peer),
                    escape(interface)
                )?;
                if networks.is_empty() {
                    write!(f, "it has no {} network", Family::of_addr(gateway))?;
                } else {
                    write!(f, "its networks: {}", list(networks))?;
                }
                write!(
                    f,
                    "); host-gw routes need every node on one shared network segment"
                )
            }
        }
    }
}

/// The scope the kernel gives an address (loopback: host, link-local: link, else global).
fn scope_of(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(a) if a.is_loopback() => SCOPE_HOST,
        IpAddr::V4(a) if a.is_link_local() => SCOPE_LINK,
        IpAddr::V6(a) if a.is_loopback() => SCOPE_HOST,
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => SCOPE_LINK,
        _ => SCOPE_UNIVERSE,
    }
}

/// The single hop of a route without a gateway, on a device: a connected route.
fn connected_dev(r: &Route) -> Option<&str> {
    match &r.next_hop {
        NextHop::Single(Hop { gateway: None, dev }) => dev.as_deref(),
        _ => None,
    }
}

/// The devices of a route's hops.
fn devs(r: &Route) -> Vec<&str> {
    match &r.next_hop {
        NextHop::Single(h) => h.dev.as_deref().into_iter().collect(),
        NextHop::Multipath(hops) => hops.iter().filter_map(|h| h.dev.as_deref()).collect(),
    }
}

/// The interfaces and addresses a route read shows: every device a route uses (an interface
/// that is up), with the addresses of its `local` routes in table local, each given the length
/// of the longest connected route of table main on that device that contains it. `None` when
/// the read holds no route of table local (a read that is not the whole of `table all`): then
/// the addresses are not known.
pub fn links_from_routes(routes: &[Route]) -> Option<Vec<Link>> {
    if !routes.iter().any(|r| r.table == TABLE_LOCAL) {
        return None;
    }
    let mut links: BTreeMap<&str, Vec<LinkAddr>> = BTreeMap::new();
    for r in routes {
        for d in devs(r) {
            links.entry(d).or_default();
        }
    }
    for r in routes
        .iter()
        .filter(|r| r.table == TABLE_LOCAL && r.kind == TYPE_LOCAL)
    {
        let (Destination::Net(net), Some(dev)) = (&r.dst, connected_dev(r)) else {
            continue;
        };
        let addr = net.addr();
        let prefix_len = routes
            .iter()
            .filter(|m| m.table == TABLE_MAIN && connected_dev(m) == Some(dev))
            .filter_map(|m| match &m.dst {
                Destination::Net(n) if n.contains(&addr) => Some(n.prefix_len()),
                _ => None,
            })
            .max()
            .unwrap_or(net.max_prefix_len());
        links.entry(dev).or_default().push(LinkAddr {
            addr,
            prefix_len,
            scope: scope_of(&addr),
        });
    }
    Some(
        links
            .into_iter()
            .map(|(name, addresses)| Link {
                name: name.to_string(),
                addresses,
            })
            .collect(),
    )
}

/// True when `gateway` is on-link on `dev`: a connected route of table main on `dev` contains
/// it (what the kernel asks of `ip route add … via GATEWAY dev DEV`).
pub fn on_link(routes: &[Route], gateway: IpAddr, dev: &str) -> bool {
    routes.iter().any(|r| {
        r.table == TABLE_MAIN
            && connected_dev(r) == Some(dev)
            && matches!(&r.dst, Destination::Net(n) if n.contains(&gateway))
    })
}

/// Why `node` cannot carry `desired` (its desired routes), given its interfaces (`links`) and
/// its routes: empty when it can.
pub fn misfits(
    topology: &Topology,
    node: &Node,
    desired: &[Route],
    links: &[Link],
    routes: &[Route],
) -> Vec<Misfit> {
    let mut out = Vec::new();
    let iface = node.interface.as_deref();
    let declared = iface.and_then(|i| links.iter().find(|l| l.name == i));
    if let Some(i) = iface
        && declared.is_none()
    {
        out.push(Misfit::NoInterface {
            interface: i.to_string(),
            present: links.iter().map(|l| l.name.clone()).collect(),
        });
    }
    for ip in &node.internal_ips {
        if links
            .iter()
            .any(|l| l.addresses.iter().any(|a| a.addr == *ip))
        {
            continue;
        }
        let family = Family::of_addr(ip);
        out.push(Misfit::InternalIpAbsent {
            address: *ip,
            interface: iface.map(str::to_string),
            has: declared
                .map(|l| {
                    l.addresses
                        .iter()
                        .filter(|a| Family::of_addr(&a.addr) == family && a.is_global())
                        .map(LinkAddr::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    if let (Some(dev), Some(_)) = (iface, declared) {
        out.extend(off_link(topology, dev, desired, routes));
    }
    out
}

/// The gateways of `desired` not on-link on `dev`, each once.
fn off_link(topology: &Topology, dev: &str, desired: &[Route], routes: &[Route]) -> Vec<Misfit> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for r in desired {
        let NextHop::Single(Hop {
            gateway: Some(g), ..
        }) = &r.next_hop
        else {
            continue;
        };
        if seen.contains(g) || on_link(routes, *g, dev) {
            continue;
        }
        seen.push(*g);
        let family = Family::of_addr(g);
        out.push(Misfit::GatewayOffLink {
            gateway: *g,
            peer: topology
                .nodes
                .iter()
                .find(|n| n.internal_ips.contains(g))
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            interface: dev.to_string(),
            networks: routes
                .iter()
                .filter(|m| m.table == TABLE_MAIN && connected_dev(m) == Some(dev))
                .filter_map(|m| match &m.dst {
                    Destination::Net(n)
                        if Family::of_addr(&n.addr()) == family
                            && scope_of(&n.addr()) == SCOPE_UNIVERSE =>
                    {
                        Some(n.to_string())
                    }
                    _ => None,
                })
                .collect(),
        });
    }
    out
}

/// The internal IPs that `misfits` found on no interface of their node: routes of other nodes
/// via them are not planned.
pub fn absent_ips(misfits: &[Misfit]) -> Vec<IpAddr> {
    misfits
        .iter()
        .filter_map(|m| match m {
            Misfit::InternalIpAbsent { address, .. } => Some(*address),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::desired;
    use crate::core::topology::parse;

    const LAB: &str = r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "worker-1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
"#;

    /// A connected route of table main, or a `local` route of table local.
    fn route(dst: &str, dev: &str, local: bool) -> Route {
        let mut r = Route::unicast(
            dst.parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            None,
            2,
            0,
        );
        r.next_hop = NextHop::Single(Hop {
            gateway: None,
            dev: Some(dev.to_string()),
        });
        if local {
            r.table = TABLE_LOCAL;
            r.kind = TYPE_LOCAL;
        }
        r
    }

    /// worker-0 with `addr/24` on `dev` (and loopback).
    fn node_routes(addr: &str, net: &str, dev: &str) -> Vec<Route> {
        vec![
            route(net, dev, false),
            route(&format!("{addr}/32"), dev, true),
            route("127.0.0.1/32", "lo", true),
        ]
    }

    fn misfits_of(toml: &str, routes: &[Route]) -> Vec<String> {
        let t = parse(toml.as_bytes(), "t.toml", None).unwrap();
        let node = &t.nodes[0];
        let desired = desired::routes_for(&t, node);
        let links = links_from_routes(routes).unwrap();
        misfits(&t, node, &desired, &links, routes)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_node_as_declared_fits() {
        let routes = node_routes("10.0.2.20", "10.0.2.0/24", "eth1");
        let links = links_from_routes(&routes).unwrap();
        let eth1 = links.iter().find(|l| l.name == "eth1").unwrap();
        assert_eq!(eth1.addresses[0].to_string(), "10.0.2.20/24");
        assert!(misfits_of(LAB, &routes).is_empty());
        // Without table local the addresses are unknown: nothing is judged.
        assert!(links_from_routes(&routes[..1]).is_none());
    }

    #[test]
    fn a_wrong_internal_ip_names_what_the_interface_has() {
        let routes = node_routes("10.0.2.23", "10.0.2.0/24", "eth1");
        assert_eq!(
            misfits_of(LAB, &routes),
            vec![
                "internal_ip 10.0.2.20 is on no interface of the node (eth1 has 10.0.2.23/24); \
                 the other nodes would route to an address nobody has"
            ]
        );
        let m = misfits(
            &parse(LAB.as_bytes(), "t.toml", None).unwrap(),
            &parse(LAB.as_bytes(), "t.toml", None).unwrap().nodes[0],
            &[],
            &links_from_routes(&routes).unwrap(),
            &routes,
        );
        assert_eq!(absent_ips(&m), vec!["10.0.2.20".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_missing_interface_and_an_off_link_gateway() {
        let typo = LAB.replace("\"eth1\"", "\"eht1\"");
        let routes = node_routes("10.0.2.20", "10.0.2.0/24", "eth1");
        let found = misfits_of(&typo, &routes);
        assert_eq!(
            found[0],
            "the node has no interface eht1 that is up (it has eth1, lo); no route via it can be \
             added"
        );
        assert_eq!(found.len(), 1, "{found:?}");
        // Another segment: worker-1's address is not on-link on worker-0's eth1.
        let routes = node_routes("10.0.2.20", "10.0.2.0/28", "eth1");
        let other = LAB.replace("10.0.2.21", "10.0.3.21");
        assert_eq!(
            misfits_of(&other, &routes),
            vec![
                "gateway 10.0.3.21 (internal_ip of worker-1) is not on-link on eth1 (its \
                 networks: 10.0.2.0/28); host-gw routes need every node on one shared network \
                 segment"
            ]
        );
    }

    #[test]
    fn dual_stack_declared_before_the_nodes_have_ipv6() {
        let dual = LAB
            .replace("\"10.0.2.20\"", "[\"10.0.2.20\", \"fd00::20\"]")
            .replace("\"10.0.2.21\"", "[\"10.0.2.21\", \"fd00::21\"]")
            .replace("\"10.1.1.0/24\"", "[\"10.1.1.0/24\", \"fd01:1::/64\"]")
            .replace("\"10.1.0.0/24\"", "[\"10.1.0.0/24\", \"fd01::/64\"]");
        let mut routes = node_routes("10.0.2.20", "10.0.2.0/24", "eth1");
        routes.push(route("fe80::/64", "eth1", false));
        routes.push(route("fe80::1/128", "eth1", true));
        assert_eq!(
            misfits_of(&dual, &routes),
            vec![
                "internal_ip fd00::20 is on no interface of the node (eth1 has no IPv6 address); \
                 the other nodes would route to an address nobody has",
                "gateway fd00::21 (internal_ip of worker-1) is not on-link on eth1 (it has no \
                 IPv6 network); host-gw routes need every node on one shared network segment",
            ]
        );
    }
}
