//! Reading the sources: `lxc list --format json` (Incus prints the same), `kubectl get nodes
//! -o json` and the upstream tutorial's `machines.txt`, each entry to a [`Candidate`] or the
//! reason it is skipped.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::Value;

use super::{Candidate, Discovery, Options, Source, candidate, finish, first_per_family};
use crate::core::route::Family;

/// Reads `lxc list --format json` (or Incus's identical output).
pub fn from_lxc(json: &[u8], source: Source, options: Options) -> Result<Discovery, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let list = value
        .as_array()
        .ok_or("expected a JSON array of instances")?;
    let mut found = Vec::new();
    let mut filtered_out = 0;
    for inst in list {
        let Some(name) = inst.get("name").and_then(Value::as_str) else {
            continue;
        };
        let name_ok = options.name_patterns.is_empty()
            || options.name_patterns.iter().any(|p| glob_match(p, name));
        let profile_ok = options.profile.as_deref().is_none_or(|want| {
            inst.get("profiles")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(want)))
        });
        let member_ok = options
            .member
            .as_deref()
            .is_none_or(|want| location(inst) == Some(want));
        if !(name_ok && profile_ok && member_ok) {
            filtered_out += 1;
            continue;
        }
        found.push(lxc_instance(name, inst, &options));
    }
    let mut d = finish(source, options, found);
    d.filtered_out = filtered_out;
    Ok(d)
}

/// The cluster member an instance runs on (`None` off a cluster: LXD says `none`).
fn location(inst: &Value) -> Option<&str> {
    inst.get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty() && *l != "none")
}

/// A shell-style glob: `*` any run of characters, `?` one character, anything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if p.get(i).is_some_and(|c| *c == '?' || Some(c) == n.get(j)) {
            i += 1;
            j += 1;
        } else if p.get(i) == Some(&'*') {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p.get(i..).unwrap_or_default().iter().all(|c| *c == '*')
}

/// Reads the upstream tutorial's `machines.txt`: one machine per line, `IPV4_ADDRESS FQDN
/// HOSTNAME [POD_SUBNET]` separated by white space (the server's row has no subnet); `#`
/// comments and blank lines are ignored. A malformed row is an error naming its line.
pub fn from_machines(text: &[u8], options: Options) -> Result<Discovery, String> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let valid = text.get(..e.valid_up_to()).unwrap_or_default();
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        format!("line {line}: not UTF-8 text")
    })?;
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let bad = |why: String| format!("line {line}: {why}: `{}`", content.replace('\t', " "));
        let (addr, fqdn, host, subnet) = match fields.as_slice() {
            [a, f, h] => (*a, *f, *h, None),
            [a, f, h, s] => (*a, *f, *h, Some(*s)),
            _ => {
                return Err(bad(format!(
                    "expected `IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]`, found {}",
                    crate::core::text::count(fields.len(), "field", "fields")
                )));
            }
        };
        let addr =
            IpAddr::from_str(addr).map_err(|_| bad(format!("`{addr}` is not an IP address")))?;
        let mut notes = vec![format!("{fqdn}, line {line} of the machines file")];
        let mut pod_cidrs = Vec::new();
        if let Some(subnet) = subnet {
            let net = IpNet::from_str(subnet)
                .map_err(|_| bad(format!("`{subnet}` is not a CIDR such as 10.200.0.0/24")))?;
            if net.trunc() != net {
                return Err(bad(format!(
                    "pod subnet `{subnet}` has host bits set (did you mean {}?)",
                    net.trunc()
                )));
            }
            if Family::of_net(&net) != Family::of_addr(&addr) {
                return Err(bad(format!(
                    "pod subnet {net} and address {addr} are not of the same family"
                )));
            }
            pod_cidrs.push(net);
        } else {
            notes.push("no pod subnet: receives routes, runs no pods".to_string());
        }
        found.push(
            candidate(host, vec![addr], pod_cidrs, notes, options.transport)
                .map_err(|why| (host.to_string(), why)),
        );
    }
    Ok(finish(Source::Machines, options, found))
}

/// One `lxc list` entry -> a candidate, or why it is skipped.
fn lxc_instance(name: &str, inst: &Value, o: &Options) -> Result<Candidate, (String, String)> {
    let skip = |why: String| Err((name.to_string(), why));
    let status = inst.get("status").and_then(Value::as_str).unwrap_or("");
    if !status.eq_ignore_ascii_case("running") {
        let status = if status.is_empty() { "unknown" } else { status };
        return skip(format!(
            "not running (status {status}): only running instances show their addresses"
        ));
    }
    let Some(network) = inst
        .get("state")
        .and_then(|s| s.get("network"))
        .and_then(Value::as_object)
    else {
        return skip("no network state reported".to_string());
    };
    let addrs = |iface: &str| global_addrs(network, iface);
    let mut notes: Vec<String> = location(inst)
        .map(|m| format!("on cluster member {m}"))
        .into_iter()
        .collect();
    let iface = o.lxc_interface();
    let (internal, extra) = first_per_family(&addrs(iface), |(a, _)| Family::of_addr(a));
    let networks: Vec<IpNet> = internal
        .iter()
        .filter_map(|(a, len)| IpNet::new(*a, *len).ok().map(|n| n.trunc()))
        .collect();
    let internal_ips: Vec<IpAddr> = internal.into_iter().map(|(a, _)| a).collect();
    for (a, len) in extra {
        notes.push(format!("{iface} also has {a}/{len} (not used)"));
    }
    if internal_ips.is_empty() {
        let mut others: Vec<&str> = network
            .keys()
            .map(String::as_str)
            .filter(|i| *i != "lo" && !addrs(i).is_empty())
            .collect();
        others.sort();
        let has = if others.is_empty() {
            "it has no global address at all".to_string()
        } else {
            format!("it has addresses on {}", others.join(", "))
        };
        return skip(format!("no global address on {iface} ({has})"));
    }
    let (bridge, extra) = first_per_family(&addrs(&o.pod_bridge), |(a, _)| Family::of_addr(a));
    for (a, len) in extra {
        notes.push(format!("{} also has {a}/{len} (not used)", o.pod_bridge));
    }
    let mut pod_cidrs = Vec::new();
    for (addr, len) in bridge {
        let Some(net) = IpNet::new(addr, len).ok().map(|n| n.trunc()) else {
            continue;
        };
        let family = Family::of_addr(&addr);
        if internal_ips.iter().any(|a| Family::of_addr(a) == family) {
            pod_cidrs.push(net);
        } else {
            notes.push(format!(
                "{} has {addr}/{len}, but {iface} has no {family} address: pod_cidr {net} left out",
                o.pod_bridge
            ));
        }
    }
    candidate(name, internal_ips, pod_cidrs, notes, o.transport)
        .map(|c| Candidate { networks, ..c })
        .map_err(|why| (name.to_string(), why))
}

/// The global addresses (with prefix lengths) of one interface in an `lxc list` entry's
/// network state.
fn global_addrs(network: &serde_json::Map<String, Value>, iface: &str) -> Vec<(IpAddr, u8)> {
    network
        .get(iface)
        .and_then(|n| n.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| {
            let scope = a.get("scope").and_then(Value::as_str).unwrap_or("global");
            scope != "link" && scope != "local" && scope != "host"
        })
        .filter_map(|a| {
            let addr = IpAddr::from_str(a.get("address")?.as_str()?).ok()?;
            let len = netmask_len(a.get("netmask")?, &addr)?;
            Some((addr, len))
        })
        .collect()
}

/// LXD prints the netmask as a prefix length in a string (`"24"`); accept a number or a dotted
/// IPv4 mask too.
fn netmask_len(v: &Value, addr: &IpAddr) -> Option<u8> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => s.parse::<u8>().ok().or_else(|| {
            let mask = std::net::Ipv4Addr::from_str(s).ok()?;
            let bits = u32::from(mask);
            (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
        }),
        _ => None,
    }?;
    (len <= max).then_some(len)
}

/// Reads `kubectl get nodes -o json`: `spec.podCIDRs` (or `spec.podCIDR`) and the `InternalIP`
/// entries of `status.addresses`, both families.
pub fn from_kubernetes(json: &[u8], options: Options) -> Result<Discovery, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = match (&value, value.get("items")) {
        (_, Some(Value::Array(items))) => items.clone(),
        (Value::Object(_), None) if value.get("kind").and_then(Value::as_str) == Some("Node") => {
            vec![value.clone()]
        }
        _ => return Err("expected a NodeList with `items` (kubectl get nodes -o json)".into()),
    };
    let mut found = Vec::new();
    for node in &items {
        let Some(name) = node
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        found.push(kube_node(name, node, &options));
    }
    Ok(finish(Source::Kubernetes, options, found))
}

fn kube_node(name: &str, node: &Value, o: &Options) -> Result<Candidate, (String, String)> {
    let mut notes = Vec::new();
    let internal: Vec<IpAddr> = node
        .get("status")
        .and_then(|s| s.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .filter_map(|a| IpAddr::from_str(a.get("address")?.as_str()?).ok())
        .collect();
    let (internal_ips, extra) = first_per_family(&internal, Family::of_addr);
    for a in extra {
        notes.push(format!("another InternalIP {a} (not used)"));
    }
    if internal_ips.is_empty() {
        return Err((
            name.to_string(),
            "no InternalIP in status.addresses".to_string(),
        ));
    }
    let spec = node.get("spec");
    let mut texts: Vec<String> = spec
        .and_then(|s| s.get("podCIDRs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if texts.is_empty()
        && let Some(c) = spec.and_then(|s| s.get("podCIDR")).and_then(Value::as_str)
    {
        texts.push(c.to_string());
    }
    let mut pod_cidrs: Vec<IpNet> = Vec::new();
    for t in texts {
        match IpNet::from_str(&t) {
            Ok(net) => {
                let family = Family::of_net(&net);
                if pod_cidrs.iter().any(|c| Family::of_net(c) == family) {
                    notes.push(format!("another {family} pod CIDR {net} (not used)"));
                } else if !internal_ips.iter().any(|a| Family::of_addr(a) == family) {
                    notes.push(format!(
                        "pod CIDR {net} left out: the node has no {family} InternalIP"
                    ));
                } else {
                    pod_cidrs.push(net.trunc());
                }
            }
            Err(_) => notes.push(format!("pod CIDR `{t}` is not a CIDR (not used)")),
        }
    }
    pod_cidrs.sort_by_key(Family::of_net);
    candidate(name, internal_ips, pod_cidrs, notes, o.transport)
        .map_err(|why| (name.to_string(), why))
}
