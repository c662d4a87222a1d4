//! `routectl plan`: read every node, show what would change.

use crate::cli::Global;
use crate::cli::PlanArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::plan::{Options, Plan};
use crate::render::{self, Format};
use crate::topology::Topology;
use crate::observe;
use crate::transport::Transport;

use super::{check_nodes, live_plan, out};

pub(crate) fn print_plan(
    g: &Global,
    t: &Topology,
    plan: &Plan,
    format: Format,
) -> Result<(), Error> {
    match format {
        Format::Text => out(&render::plan_text(plan, &g.style())),
        Format::Json => out(&render::to_json_text(&render::plan_json(plan, t))),
        Format::Markdown => out(&render::plan_markdown(plan, t)),
    }
}

/// Runs `plan`.
pub fn run(g: &Global, a: &PlanArgs) -> Result<ExitCode, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let options = Options {
        adopt: a.adopt,
        only: a.nodes.clone(),
    };
    let started = std::time::Instant::now();
    let (plan, commands) = match &a.observed {
        Some(dir) => (
            Plan::compute(&t, &options, g.parallelism(), |node| {
                observe::read_saved(dir, node)
            }),
            0,
        ),
        None => {
            let transport = g.transport(&t);
            let plan = live_plan(&t, &options, &transport, g.parallelism());
            (plan, transport.commands_run())
        }
    };
    if g.verbose > 0 {
        eprintln!(
            "routectl: planned {} nodes with {commands} node commands in {:.3} s",
            plan.nodes.len(),
            started.elapsed().as_secs_f64()
        );
    }
    print_plan(g, &t, &plan, a.output)?;
    Ok(if plan.has_errors() {
        ExitCode::Error
    } else if a.detailed_exitcode && plan.has_pending() {
        ExitCode::Changes
    } else {
        ExitCode::Ok
    })
}
