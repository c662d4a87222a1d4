//! `routectl check`: pod-to-pod reachability matrix.

use crate::cli::{CheckArgs, Global};
use crate::error::Error;
use crate::exit::Outcome;
use crate::node::transport::Transport;
use crate::report::{self, Format};

use super::{Asked, check_nodes, out, out_json};

/// Runs `check`.
pub fn run(g: &Global, a: &CheckArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let asked = Asked::default();
    let only = g.select(&t, &a.nodes, a.member.as_deref(), &asked)?;
    let transport = g.transport(&t, &asked)?;
    let started = std::time::Instant::now();
    let report = crate::node::probe::run(&t, &only, g.parallelism(), &transport);
    if g.verbose > 0 {
        crate::console::errln(&format!(
            "routectl: checked {} paths with {} node commands in {:.3} s",
            report.paths.len(),
            transport.commands_run(),
            started.elapsed().as_secs_f64()
        ));
    }
    match a.output {
        Format::Text => out(&report::check_text(&report, &g.style()))?,
        Format::Json => out_json(g, &report::check_json(&report, &t))?,
        Format::Markdown => out(&report::check_markdown(&report, &t))?,
    }
    Ok(if report.summary().success {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
