//! The files routectl persists routes in, as text: networkd's drop-in (`[Route]` sections) and
//! the NetworkManager dispatcher script or ifupdown hook (`ip route replace` lines), rendered
//! from routes and read back into the routes they hold; and the base64 the read script carries
//! them in. Pure.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::Mechanism;
use crate::core::change::{Action, Change};
use crate::core::route::{Destination, NextHop, Route};

/// What stands for a file whose encoding in the read was damaged: the plan shows it replaced.
pub const UNREADABLE: &str = "# (could not be read)\n";

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as `base64 -w0` prints it.
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The text `encode_base64` (or `base64 -w0`) encoded; `None` when it is not valid base64.
/// Bytes that are not UTF-8 are replaced (the plan then rewrites the file).
pub fn decode_base64(text: &str) -> Option<String> {
    let text = text.trim_end();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 4 - pad => 0,
                c => BASE64.iter().position(|x| x == c)? as u32,
            };
            n = (n << 6) | v;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// One `[Route]` section, as written or read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DropinRoute {
    /// `Destination=`.
    pub destination: String,
    /// `Gateway=`.
    pub gateway: Option<String>,
    /// `Protocol=`.
    pub protocol: Option<String>,
    /// `Metric=`.
    pub metric: Option<String>,
}

/// The `[Route]` of a route routectl writes, when networkd can express it (a unicast route in
/// table main through one gateway).
fn dropin_route(r: &Route) -> Option<DropinRoute> {
    let Destination::Net(dst) = &r.dst else {
        return None;
    };
    let NextHop::Single(hop) = &r.next_hop else {
        return None;
    };
    let gw: IpAddr = hop.gateway?;
    Some(DropinRoute {
        destination: IpNet::to_string(dst),
        gateway: Some(gw.to_string()),
        protocol: Some(r.protocol.to_string()),
        metric: Some(r.metric.to_string()),
    })
}

/// The drop-in's content for a node's routes (the desired routes routectl owns on the node).
pub fn render(node: &str, routes: &[Route]) -> String {
    let mut sections: Vec<DropinRoute> = routes.iter().filter_map(dropin_route).collect();
    sections.sort();
    sections.dedup();
    let mut s = format!(
        "# Written by routectl for node {node}: its routes, so that systemd-networkd keeps them.\n\
         # routectl rewrites this file on apply; set persist = \"none\" and apply to remove it.\n"
    );
    for r in &sections {
        s.push_str("\n[Route]\n");
        let _ = writeln!(s, "Destination={}", r.destination);
        if let Some(g) = &r.gateway {
            let _ = writeln!(s, "Gateway={g}");
        }
        if let Some(p) = &r.protocol {
            let _ = writeln!(s, "Protocol={p}");
        }
        if let Some(m) = &r.metric {
            let _ = writeln!(s, "Metric={m}");
        }
    }
    s
}

/// The `[Route]` sections of a drop-in (as networkd reads them: `#`/`;` comments, keys of other
/// sections ignored; a later key in a section overrides an earlier one).
pub fn parse(content: &str) -> Vec<DropinRoute> {
    let mut out = Vec::new();
    let mut cur: Option<DropinRoute> = None;
    let flush = |cur: &mut Option<DropinRoute>, out: &mut Vec<DropinRoute>| {
        if let Some(r) = cur.take() {
            out.push(r);
        }
    };
    for raw in content.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            flush(&mut cur, &mut out);
            if line == "[Route]" {
                cur = Some(DropinRoute {
                    destination: String::new(),
                    gateway: None,
                    protocol: None,
                    metric: None,
                });
            }
            continue;
        }
        let (Some(r), Some((k, v))) = (cur.as_mut(), line.split_once('=')) else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "Destination" => r.destination = v,
            "Gateway" => r.gateway = Some(v),
            "Protocol" => r.protocol = Some(v),
            "Metric" => r.metric = Some(v),
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// The hook script for `mechanism` (NetworkManager or ifupdown): on the route interface's `up`,
/// every route with `ip route replace` (the line apply would send), all lines tried.
pub fn render_hook(mechanism: Mechanism, node: &str, iface: &str, routes: &[Route]) -> String {
    let mut lines: Vec<String> = routes
        .iter()
        .filter_map(|r| Change::new(Action::Replace, r.clone(), None).batch_line())
        .collect();
    lines.sort();
    lines.dedup();
    let (who, test) = match mechanism {
        Mechanism::NetworkManager => (
            "NetworkManager brings",
            format!("[ \"$1\" = '{iface}' ] && [ \"$2\" = up ] || exit 0"),
        ),
        _ => (
            "ifupdown brings",
            format!("[ \"$IFACE\" = '{iface}' ] && [ \"$MODE\" = start ] || exit 0"),
        ),
    };
    let mut s = format!(
        "#!/bin/sh\n# Written by routectl for node {node}: its routes, put back whenever {who} {iface} up\n\
         # (it removes routes it did not configure itself). routectl rewrites this file on apply;\n\
         # set persist = \"none\" and apply to remove it.\n{test}\n\
         exec ip -force -batch - <<'ROUTECTL'\n"
    );
    for l in &lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("ROUTECTL\n");
    s
}

/// The routes of a hook script (its `route replace` lines), in the drop-in's terms.
pub fn parse_hook(content: &str) -> Vec<DropinRoute> {
    content
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            if (words.next(), words.next()) != (Some("route"), Some("replace")) {
                return None;
            }
            let mut r = DropinRoute {
                destination: words.next()?.to_string(),
                gateway: None,
                protocol: None,
                metric: None,
            };
            while let Some(k) = words.next() {
                let v = words.next().map(str::to_string);
                match k {
                    "via" => r.gateway = v,
                    "proto" => r.protocol = v,
                    "metric" => r.metric = v,
                    _ => {}
                }
            }
            Some(r)
        })
        .collect()
}

/// The content of routectl's file for `mechanism`.
pub fn render_for(mechanism: Mechanism, node: &str, iface: &str, routes: &[Route]) -> String {
    match mechanism {
        Mechanism::Networkd => render(node, routes),
        m => render_hook(m, node, iface, routes),
    }
}
