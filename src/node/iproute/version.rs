//! `ip -V`: which iproute2 a node has (routectl needs 5.5 or newer).

use std::fmt;

/// An iproute2 version as `ip -V` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpVersion {
    /// `iproute2-6.1.0` and the like.
    Release(u32, u32),
    /// `iproute2-ss200127`: a snapshot date (YYMMDD); 5.5 was released as ss200127.
    Snapshot(u32),
}

impl IpVersion {
    /// The oldest iproute2 whose JSON route output is valid (multipath and metrics).
    pub fn is_supported(self) -> bool {
        match self {
            IpVersion::Release(major, minor) => (major, minor) >= (5, 5),
            IpVersion::Snapshot(date) => date >= 200127,
        }
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpVersion::Release(a, b) => write!(f, "{a}.{b}"),
            IpVersion::Snapshot(d) => write!(f, "ss{d:06}"),
        }
    }
}

/// Parses `ip -V` output (`ip utility, iproute2-6.1.0, libbpf 1.1.2`, `iproute2-ss190107`, or
/// `ip utility, iproute2-5.15.0, libbpf …`).
pub fn parse_version(output: &str) -> Option<IpVersion> {
    let (_, rest) = output.split_once("iproute2-")?;
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    if let Some(date) = token.strip_prefix("ss") {
        return date.get(..6)?.parse().ok().map(IpVersion::Snapshot);
    }
    let mut parts = token.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some(IpVersion::Release(major, minor))
}
