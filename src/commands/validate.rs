//! `routectl validate`: check the topology, contact no node.

use crate::cli::Global;
use crate::error::Error;
use crate::exit::Outcome;
use crate::report::{self, Format};

use super::out;
use crate::cli::ValidateArgs;

/// Runs `validate`.
pub fn run(g: &Global, a: &ValidateArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    let routes: usize = t
        .nodes
        .iter()
        .map(|n| crate::core::desired::routes_for(&t, n).len())
        .sum();
    match a.output {
        Format::Json => out(&report::to_json_text(&serde_json::json!({
            "format_version": report::FORMAT_VERSION,
            "kind": "validate",
            "valid": true,
            "topology": { "path": t.source, "sha256": t.sha256 },
            "nodes": t.nodes.len(),
            "desired_routes": routes,
        })))?,
        _ => {
            if !g.quiet {
                out(&format!(
                    "{}: valid ({} nodes, {} desired routes, transport {}, protocol {})\n",
                    t.source,
                    t.nodes.len(),
                    routes,
                    t.cluster.transport,
                    t.cluster.protocol
                ))?;
            }
        }
    }
    Ok(Outcome::Done)
}
