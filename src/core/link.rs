//! A node's interfaces and their addresses, as `show` and `check` judge them.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Address scopes as `ip -N` prints them (`RT_SCOPE_*`).
pub const SCOPE_UNIVERSE: u8 = 0;
/// `scope link` (IPv6 `fe80::/10`, IPv4 `169.254.0.0/16`).
pub const SCOPE_LINK: u8 = 253;
/// `scope host` (loopback).
pub const SCOPE_HOST: u8 = 254;

/// One interface of a node, as `ip -j addr show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface name (`eth1`, `cnio0`).
    pub name: String,
    /// Its addresses, in the order printed.
    pub addresses: Vec<LinkAddr>,
}

/// One address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddr {
    /// The address (`local`).
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Its scope number (0 global, 253 link, 254 host; names are read too).
    pub scope: u8,
}

impl LinkAddr {
    /// The network the address lies in (`10.1.0.1/24` -> `10.1.0.0/24`).
    pub fn network(&self) -> Option<IpNet> {
        IpNet::new(self.addr, self.prefix_len)
            .ok()
            .map(|n| n.trunc())
    }

    /// True for an address other nodes can reach (neither link-local nor host scope).
    pub fn is_global(&self) -> bool {
        self.scope < SCOPE_LINK
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}
