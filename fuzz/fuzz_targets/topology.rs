//! Fuzzes the topology parser: any bytes -> a validated topology or problems, never a panic.
//! A topology that is accepted must satisfy the invariants the rest of routectl relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use routectl::core::topology::{self, TransportKind};

fuzz_target!(|data: &[u8]| {
    for transport in [None, Some(TransportKind::Netns)] {
        match topology::parse(data, "fuzz.toml", transport) {
            Ok(t) => {
                assert!(!t.nodes.is_empty(), "an accepted topology has nodes");
                for n in &t.nodes {
                    for name in [&n.name, &n.interface] {
                        assert!(
                            !name.is_empty()
                                && !name.starts_with('-')
                                && name
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                            "unsafe name accepted: {name:?}"
                        );
                    }
                    assert!(!n.internal_ips.is_empty());
                    assert!(n.pod_cidrs.iter().all(|c| c.trunc() == *c));
                    // Desired routes can be computed for every accepted node.
                    let _ = routectl::core::desired::routes_for(&t, n);
                }
            }
            Err(problems) => {
                assert!(
                    !problems.0.is_empty(),
                    "a refusal names at least one problem"
                );
                for p in &problems.0 {
                    assert!(p.line >= 1 && p.column >= 1);
                    let _ = p.to_string();
                }
            }
        }
    }
});
