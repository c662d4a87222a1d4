//! Synthetic clusters for the benchmarks: a topology of N nodes and, per node, the bytes that
//! `ip -N -d -j route show table all` would print on it.
//!
//! The capture shape is copied from a real namespace (iproute2 6.1, kernel 6.18): one line, no
//! spaces, keys in iproute2's order, IPv4 metric 0 omitted, every IPv6 route with `metric` and
//! `pref`, table local (255) entries for each address, link-local and multicast IPv6 routes.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Node `i`'s internal address: 10.0.0.10 + i, on eth1, inside 10.0.0.0/16.
pub fn internal_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 10)) + i as u32)
}

/// Node `i`'s pod CIDR: the i-th /24 of 10.64.0.0/10.
pub fn pod_net(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + ((i as u32) << 8))
}

/// The first host of node `i`'s pod CIDR (the cnio0 address).
pub fn pod_gateway(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(pod_net(i)) + 1)
}

/// Node `i`'s name.
pub fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

/// A topology of `n` nodes, each with an internal IPv4 address and a /24 pod CIDR.
/// `instance_prefix` (when given) names each node's instance `PREFIX-NNNNN`.
pub fn topology_text(n: usize, transport: &str, instance_prefix: Option<&str>) -> String {
    let mut t = format!(
        "[cluster]\ninterface = \"eth1\"\ntransport = \"{transport}\"\npod_cidr = \"10.64.0.0/10\"\n"
    );
    for i in 0..n {
        let _ = write!(
            t,
            "\n[[nodes]]\nname = \"{}\"\ninternal_ip = \"{}\"\npod_cidr = \"{}/24\"\n",
            node_name(i),
            internal_ip(i),
            pod_net(i)
        );
        if let Some(p) = instance_prefix {
            let _ = writeln!(t, "instance = \"{p}-{i:05}\"");
        }
    }
    t
}

/// What a node's table holds besides routectl's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every desired route present (owned): a plan of the cluster is empty.
    InSync,
    /// Only kernel routes: the plan adds every route.
    Empty,
    /// In sync except for every 10th peer: one in three of those missing, one with a wrong
    /// gateway, one owned route to a destination no longer in the topology.
    Drifted,
}

/// The bytes `ip -N -d -j route show table all` prints on node `i` of an `n`-node cluster.
pub fn capture(n: usize, i: usize, state: State) -> Vec<u8> {
    let mut objects = main_table(n, i, state);
    objects.extend(local_table(i));
    objects.extend(ipv6_routes());
    let mut s = String::with_capacity(160 * (n + 20));
    s.push('[');
    s.push_str(&objects.join(","));
    s.push_str("]\n");
    s.into_bytes()
}

/// Table main, IPv4, in the kernel's (address) order: connected subnets and the peers.
fn main_table(n: usize, i: usize, state: State) -> Vec<String> {
    let me = internal_ip(i);
    let gw = pod_gateway(i);
    let mut out = vec![format!(
        r#"{{"type":"1","dst":"10.0.0.0/16","dev":"eth1","table":"254","protocol":"2","scope":"253","prefsrc":"{me}","flags":[]}}"#
    )];
    for j in 0..n {
        if j == i {
            out.push(format!(
                r#"{{"type":"1","dst":"{}/24","dev":"cnio0","table":"254","protocol":"2","scope":"253","prefsrc":"{gw}","flags":[]}}"#,
                pod_net(i)
            ));
            continue;
        }
        let mut via = internal_ip(j);
        match state {
            State::InSync => {}
            State::Empty => continue,
            State::Drifted if j % 10 == 0 => match (j / 10) % 3 {
                0 => continue,
                1 => via = internal_ip((j + 1) % n),
                _ => {}
            },
            State::Drifted => {}
        }
        out.push(format!(
            r#"{{"type":"1","dst":"{}/24","gateway":"{via}","dev":"eth1","table":"254","protocol":"211","scope":"0","flags":[]}}"#,
            pod_net(j)
        ));
    }
    if state == State::Drifted {
        // A stale owned route (a node that left the cluster).
        out.push(
            r#"{"type":"1","dst":"10.127.255.0/24","gateway":"10.0.0.9","dev":"eth1","table":"254","protocol":"211","scope":"0","flags":[]}"#.to_string(),
        );
    }
    out
}

/// Table local, IPv4.
fn local_table(i: usize) -> Vec<String> {
    let me = internal_ip(i);
    let gw = pod_gateway(i);
    let mut out = Vec::new();
    for (kind, dst, dev, scope, src) in [
        ("2", me.to_string(), "eth1", "254", me),
        ("3", "10.0.255.255".to_string(), "eth1", "253", me),
        ("2", gw.to_string(), "cnio0", "254", gw),
        (
            "3",
            Ipv4Addr::from(u32::from(pod_net(i)) + 255).to_string(),
            "cnio0",
            "253",
            gw,
        ),
        (
            "2",
            "127.0.0.0/8".to_string(),
            "lo",
            "254",
            Ipv4Addr::LOCALHOST,
        ),
        (
            "2",
            "127.0.0.1".to_string(),
            "lo",
            "254",
            Ipv4Addr::LOCALHOST,
        ),
        (
            "3",
            "127.255.255.255".to_string(),
            "lo",
            "253",
            Ipv4Addr::LOCALHOST,
        ),
    ] {
        out.push(format!(
            r#"{{"type":"{kind}","dst":"{dst}","dev":"{dev}","table":"255","protocol":"2","scope":"{scope}","prefsrc":"{src}","flags":[]}}"#
        ));
    }
    out
}

/// IPv6: link-local per device, loopback, multicast.
fn ipv6_routes() -> Vec<String> {
    let mut out: Vec<String> = ["eth1", "cnio0"]
        .iter()
        .map(|dev| {
            format!(
                r#"{{"type":"1","dst":"fe80::/64","dev":"{dev}","table":"254","protocol":"2","scope":"0","metric":256,"flags":[],"pref":"medium"}}"#
            )
        })
        .collect();
    out.push(
        r#"{"type":"2","dst":"::1","dev":"lo","table":"255","protocol":"2","scope":"0","metric":0,"flags":[],"pref":"medium"}"#.to_string(),
    );
    for dev in ["eth1", "cnio0"] {
        out.push(format!(
            r#"{{"type":"5","dst":"ff00::/8","dev":"{dev}","table":"255","protocol":"2","scope":"0","metric":256,"flags":[],"pref":"medium"}}"#
        ));
    }
    out
}
