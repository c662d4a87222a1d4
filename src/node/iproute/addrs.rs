//! `ip -j addr show` -> the node's interfaces and addresses (tolerant, like the route reader).

use std::net::IpAddr;
use std::str::FromStr;

use crate::core::link::{Link, LinkAddr, SCOPE_HOST, SCOPE_LINK, SCOPE_UNIVERSE};
use crate::error::ParseError;

use super::invalid;

/// Parses the output of one `ip -j addr show`: a JSON array of interface objects, each with
/// `ifname` and `addr_info` (`local`, `prefixlen`, `scope`). Tolerant like the route parser:
/// interfaces without a name and addresses that do not parse are skipped, unknown keys ignored.
pub fn parse_addrs(output: &[u8]) -> Result<Vec<Link>, ParseError> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_slice(output).map_err(|e| invalid(output, e.to_string()))?;
    let Some(items) = value.as_array() else {
        return Err(invalid(
            output,
            "expected a JSON array of interfaces".into(),
        ));
    };
    let scalar = |v: Option<&serde_json::Value>| -> Option<String> {
        match v? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut links = Vec::new();
    for item in items {
        let Some(name) = scalar(item.get("ifname")).filter(|n| !n.is_empty()) else {
            continue;
        };
        let mut addresses = Vec::new();
        for a in item
            .get("addr_info")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let addr = scalar(a.get("local")).and_then(|s| IpAddr::from_str(&s).ok());
            let prefix_len = scalar(a.get("prefixlen")).and_then(|s| s.parse::<u8>().ok());
            let (Some(addr), Some(prefix_len)) = (addr, prefix_len) else {
                continue;
            };
            let scope = scalar(a.get("scope"))
                .and_then(|s| s.parse::<u8>().ok().or_else(|| scope_number(&s)))
                .unwrap_or(SCOPE_UNIVERSE);
            addresses.push(LinkAddr {
                addr,
                prefix_len,
                scope,
            });
        }
        links.push(Link { name, addresses });
    }
    Ok(links)
}

/// A scope given by name (as an `ip` without `-N` prints it).
fn scope_number(name: &str) -> Option<u8> {
    match name {
        "global" | "universe" => Some(SCOPE_UNIVERSE),
        "site" => Some(200),
        "link" => Some(SCOPE_LINK),
        "host" => Some(SCOPE_HOST),
        "nowhere" => Some(255),
        _ => None,
    }
}
