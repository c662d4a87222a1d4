//! The lab topologies of the unit tests, written once: the example lab (`topology.example.toml`:
//! a controller and three workers on `eth1`, IPv4) and a dual-stack variant of it.

use super::{Topology, parse};

/// The example lab: `controller-0` without pods, `worker-0..2` with 10.1.N.0/24 inside the
/// cluster's 10.1.0.0/16.
pub const LAB: &str = r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"
[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "worker-1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "worker-2"
internal_ip = "10.0.2.22"
pod_cidr = "10.1.2.0/24"
"#;

/// The lab with `worker-0` and `worker-1` dual-stack (fd00::2N, fd01:0:N::/64) and `worker-2`
/// IPv4 only; no cluster range.
pub const DUAL_STACK: &str = r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"
[[nodes]]
name = "worker-0"
internal_ip = ["10.0.2.20", "fd00::20"]
pod_cidr = ["10.1.0.0/24", "fd01:0:0::/64"]
[[nodes]]
name = "worker-1"
internal_ip = ["10.0.2.21", "fd00::21"]
pod_cidr = ["10.1.1.0/24", "fd01:0:1::/64"]
[[nodes]]
name = "worker-2"
internal_ip = "10.0.2.22"
pod_cidr = "10.1.2.0/24"
"#;

/// [`LAB`], parsed.
pub fn lab() -> Topology {
    parse(LAB.as_bytes(), "t.toml", None).expect("the lab topology")
}

/// [`DUAL_STACK`], parsed.
pub fn dual_stack() -> Topology {
    parse(DUAL_STACK.as_bytes(), "t.toml", None).expect("the dual-stack lab topology")
}
