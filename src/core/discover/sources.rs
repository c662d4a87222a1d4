//! Reading the sources: `lxc list --format json` (Incus prints the same) and `kubectl get nodes
//! -o json`, each entry to a [`Candidate`] or the reason it is skipped.

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
    for inst in list {
        let Some(name) = inst.get("name").and_then(Value::as_str) else {
            continue;
        };
        found.push(lxc_instance(name, inst, &options));
    }
    Ok(finish(source, options, found))
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
    let addrs = |iface: &str| -> Vec<(IpAddr, u8)> {
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
    };
    let mut notes = Vec::new();
    let (internal, extra) = first_per_family(&addrs(&o.interface), |(a, _)| Family::of_addr(a));
    let internal_ips: Vec<IpAddr> = internal.into_iter().map(|(a, _)| a).collect();
    for (a, len) in extra {
        notes.push(format!("{} also has {a}/{len} (not used)", o.interface));
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
        return skip(format!("no global address on {} ({has})", o.interface));
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
                "{} has {addr}/{len}, but {} has no {family} address: pod_cidr {net} left out",
                o.pod_bridge, o.interface
            ));
        }
    }
    candidate(name, internal_ips, pod_cidrs, notes, o.transport)
        .map_err(|why| (name.to_string(), why))
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
