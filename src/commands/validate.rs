//! `routectl validate`: check the topology, contact no node.

use crate::cli::Global;
use crate::error::Error;
use crate::exit::Outcome;
use crate::report::{self, Format};

use super::{out, out_json};
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
        Format::Json => out_json(g, &report::validate_json(&t, routes))?,
        _ => {
            if !g.quiet {
                out(&format!(
                    "{}: valid ({}, {}, transport {}, protocol {})\n",
                    t.source,
                    crate::core::text::nodes(t.nodes.len()),
                    crate::core::text::count(routes, "desired route", "desired routes"),
                    t.cluster.transport,
                    t.cluster.protocol
                ))?;
            }
        }
    }
    Ok(Outcome::Done)
}
