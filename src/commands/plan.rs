//! `routectl plan`: read every node, show what would change.

use crate::cli::Global;
use crate::cli::PlanArgs;
use crate::core::plan::{Options, Plan};
use crate::core::topology::Topology;
use crate::error::Error;
use crate::exit::Outcome;
use crate::node::observe;
use crate::node::transport::Transport;
use crate::report::{self, Format};

use super::{check_nodes, live_plan, out};

pub(crate) fn print_plan(
    g: &Global,
    t: &Topology,
    plan: &Plan,
    format: Format,
) -> Result<(), Error> {
    match format {
        Format::Text => out(&report::plan_text(plan, &g.style())),
        Format::Json => out(&report::to_json_text(&report::plan_json(plan, t))),
        Format::Markdown => out(&report::plan_markdown(plan, t)),
    }
}

/// Runs `plan`.
pub fn run(g: &Global, a: &PlanArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let options = Options {
        adopt: a.adopt,
        take_over: a.take_over,
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
            let plan = live_plan(&t, &options, &transport, g.parallelism(), g.progress());
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
    if let Some(file) = &a.out {
        let doc = report::to_json_text(&report::saved_plan_json(&plan, &t, &options));
        std::fs::write(file, doc)
            .map_err(|e| Error::io(format!("writing the plan file `{}`", file.display()), e))?;
        g.info(&format!(
            "routectl: plan saved to {}; apply it with `routectl apply {}`",
            file.display(),
            file.display()
        ));
    }
    print_plan(g, &t, &plan, a.output)?;
    Ok(if plan.has_errors() {
        Outcome::Failed
    } else if a.detailed_exitcode && plan.has_pending() {
        let summary = plan.summary();
        Outcome::Pending {
            operations: plan.operations(),
            conflicts: summary.conflict,
        }
    } else {
        Outcome::Done
    })
}
