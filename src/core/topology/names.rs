//! The rules for names and values in a topology: node names, instance names, interface
//! names, internal addresses and pod CIDRs. Each rule is written once and used both for a file's
//! text ([`super::check`]) and for values built in code (`routectl discover`).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::TransportKind;

/// Parses an address the topology accepts as an internal IP.
pub fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let a = IpAddr::from_str(s.trim()).map_err(|_| {
        if s.contains('/') {
            "is a prefix, not an address: write the address without /length".to_string()
        } else {
            "is not an IPv4 or IPv6 address".to_string()
        }
    })?;
    if s.trim() != s {
        return Err("has surrounding spaces".to_string());
    }
    check_addr(a)?;
    Ok(a)
}

/// An address a node can use as its internal IP: unicast, not loopback, not broadcast.
pub fn check_addr(a: IpAddr) -> Result<(), String> {
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err("is not a unicast address a node can use".to_string());
    }
    if let IpAddr::V4(v4) = a
        && v4.is_broadcast()
    {
        return Err("is the broadcast address".to_string());
    }
    Ok(())
}

/// Parses a prefix the topology accepts as a pod CIDR.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if !s.contains('/') {
        return Err("is not a CIDR: add the prefix length (e.g. 10.1.0.0/24)".to_string());
    }
    let net = IpNet::from_str(s).map_err(|_| "is not a valid CIDR".to_string())?;
    check_cidr(net)?;
    Ok(net)
}

/// A prefix that can be a pod CIDR: not everything, no host bits.
pub fn check_cidr(net: IpNet) -> Result<(), String> {
    if net.prefix_len() == 0 {
        return Err("covers every address: a pod CIDR must be a real prefix".to_string());
    }
    if net.trunc() != net {
        return Err(format!("has host bits set: did you mean {}?", net.trunc()));
    }
    Ok(())
}

/// A node's name: a label that is safe in argv, in messages and as a file name.
pub fn check_node_name(s: &str) -> Result<(), String> {
    check_token(s, 63)
}

fn check_token(s: &str, max: usize) -> Result<(), String> {
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if s.is_empty() {
        return Err("is empty".to_string());
    }
    if !first_ok || !rest_ok || s.len() > max {
        return Err(format!(
            "is not valid: use letters, digits, `-`, `_` and `.`, starting with a letter or \
             digit, at most {max} characters"
        ));
    }
    Ok(())
}

/// What a transport addresses: an LXD/Incus instance (optionally `remote:instance`) or a
/// network namespace.
pub fn check_instance(s: &str, transport: TransportKind) -> Result<(), String> {
    match transport {
        TransportKind::Netns => {
            if s.contains(':') {
                return Err("has a remote prefix, which the netns transport cannot use".into());
            }
            check_token(s, 63)
        }
        TransportKind::Lxc | TransportKind::Incus => {
            let (remote, name) = match s.split_once(':') {
                Some((r, n)) => (Some(r), n),
                None => (None, s),
            };
            if let Some(r) = remote {
                check_token(r, 63).map_err(|why| format!("has a remote name that {why}"))?;
            }
            let ok = !name.is_empty()
                && name.len() <= 63
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && !name.ends_with('-');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "is not a valid {transport} instance name: letters, digits and `-`, \
                     starting with a letter, not ending with `-`, at most 63 characters"
                ))
            }
        }
    }
}

/// A Linux interface name that is also safe inside an `ip -batch` line.
pub fn check_interface(s: &str) -> Result<(), String> {
    check_token(s, 15).map_err(|_| {
        "is not a valid interface name: letters, digits, `-`, `_` and `.`, starting with a letter \
         or digit, at most 15 characters"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_node_name("worker-0.lab").is_ok());
        assert!(check_node_name("-x").is_err());
        assert!(check_node_name("").unwrap_err().contains("empty"));
        assert!(check_instance("lab:worker-0", TransportKind::Lxc).is_ok());
        assert!(check_instance("lab:worker-0", TransportKind::Netns).is_err());
        assert!(check_instance("worker_0", TransportKind::Incus).is_err());
        assert!(check_interface("eth1").is_ok());
        assert!(
            check_interface("eth 1")
                .unwrap_err()
                .contains("not a valid interface name")
        );
        assert!(check_interface("a-very-long-name0").is_err());
    }

    #[test]
    fn values() {
        assert!(parse_addr("10.0.2.20").is_ok());
        assert!(parse_addr(" 10.0.2.20").unwrap_err().contains("spaces"));
        assert!(parse_addr("10.0.2.0/24").unwrap_err().contains("prefix"));
        assert!(check_addr("127.0.0.1".parse().unwrap()).is_err());
        assert!(check_addr("255.255.255.255".parse().unwrap()).is_err());
        assert!(
            parse_cidr("10.1.0.0")
                .unwrap_err()
                .contains("prefix length")
        );
        assert!(
            parse_cidr("0.0.0.0/0")
                .unwrap_err()
                .contains("every address")
        );
        assert_eq!(
            parse_cidr("10.1.0.1/24").unwrap_err(),
            "has host bits set: did you mean 10.1.0.0/24?"
        );
    }
}
