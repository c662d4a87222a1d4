//! Topology -> the routes each node should have. Pure.
//!
//! Every node gets, for every *other* node's pod CIDR, `POD_CIDR via THAT_NODE_INTERNAL_IP dev
//! IFACE`, where the gateway is the other node's internal address of the CIDR's family and IFACE
//! is this node's interface. Nodes without a pod CIDR (controllers) still receive routes. A node
//! with no internal IP of a family receives no routes of that family: it has no address on the
//! node network to reach such a gateway, and the kernel would refuse them.

use crate::core::route::{Family, Route};
use crate::core::topology::{Node, Topology};

/// The desired routes of one node, sorted by destination.
pub fn routes_for(topology: &Topology, node: &Node) -> Vec<Route> {
    let protocol = topology.cluster.protocol;
    let mut routes: Vec<Route> = topology
        .nodes
        .iter()
        .filter(|other| other.name != node.name)
        .flat_map(|other| {
            other.pod_cidrs.iter().filter_map(move |cidr| {
                let family = Family::of_net(cidr);
                node.internal_ip(family)?;
                // The topology guarantees a gateway of the CIDR's family on its owner.
                let gateway = other.internal_ip(family)?;
                Some(Route::unicast(
                    *cidr,
                    gateway,
                    &node.interface,
                    protocol,
                    topology.metric(family),
                ))
            })
        })
        .collect();
    routes.sort();
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::parse;

    #[test]
    fn every_node_routes_every_other_pod_cidr() {
        let t = parse(
            br#"
[cluster]
interface = "eth1"
[[nodes]]
name = "controller-0"
internal_ip = ["10.0.2.10", "fd00::10"]
[[nodes]]
name = "worker-0"
internal_ip = ["10.0.2.20", "fd00::20"]
pod_cidr = ["10.1.0.0/24", "fd01:0::/64"]
interface = "eth9"
[[nodes]]
name = "worker-1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
"#,
            "t.toml",
            None,
        )
        .unwrap();
        let lines = |n: usize| -> Vec<String> {
            routes_for(&t, &t.nodes[n])
                .iter()
                .map(|r| r.to_string())
                .collect()
        };
        assert_eq!(
            lines(0),
            [
                "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
                "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "fd01::/64 via fd00::20 dev eth1 proto 211",
            ]
        );
        assert_eq!(lines(1), ["10.1.1.0/24 via 10.0.2.21 dev eth9 proto 211"]);
        // worker-1 has no IPv6 internal IP: it gets no IPv6 route.
        assert_eq!(lines(2), ["10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",]);
        assert_eq!(routes_for(&t, &t.nodes[0])[2].metric, 1024);
    }
}
