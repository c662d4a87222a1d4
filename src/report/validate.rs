//! `routectl validate`: the `validate` JSON document (the text is one line, printed by the
//! command).

use serde::Serialize;

use super::{FORMAT_VERSION, TopologyDoc};
use crate::core::topology::Topology;

/// The `validate` document (docs/json.md). An invalid topology prints none.
#[derive(Serialize)]
pub struct ValidateDoc<'a> {
    format_version: u32,
    kind: &'static str,
    valid: bool,
    topology: TopologyDoc<'a>,
    nodes: usize,
    desired_routes: usize,
}

/// The document of a valid topology with `desired_routes` routes in all.
pub fn validate_json(topology: &Topology, desired_routes: usize) -> ValidateDoc<'_> {
    ValidateDoc {
        format_version: FORMAT_VERSION,
        kind: "validate",
        valid: true,
        topology: TopologyDoc::of(topology),
        nodes: topology.nodes.len(),
        desired_routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::samples::fixtures::topology;

    #[test]
    fn document_fields_in_order() {
        let t = topology();
        let doc = serde_json::to_string(&validate_json(&t, 6)).unwrap();
        assert_eq!(
            doc,
            format!(
                r#"{{"format_version":1,"kind":"validate","valid":true,"topology":{{"path":"t.toml","sha256":"{}"}},"nodes":3,"desired_routes":6}}"#,
                t.sha256
            )
        );
    }
}
