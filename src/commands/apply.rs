//! `routectl apply`: take the lock, plan (or re-check a saved plan), ask, apply, verify.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{ApplyArgs, Global};
use crate::core::plan::{Options, Plan};
use crate::core::saved;
use crate::core::topology::Topology;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::local::lock;
use crate::node::apply;
use crate::node::transport::Transport;
use crate::report::{self, Format, Style};

use super::{check_nodes, live_plan, out};

/// Runs `apply`.
pub fn run(g: &Global, a: &ApplyArgs) -> Result<ExitCode, Error> {
    // Load and validate everything before touching the lock or any node.
    let (topology, options, binding) = match &a.plan_file {
        Some(file) => {
            let (binding, topology, options) = crate::local::files::load_saved_plan(file)?;
            if g.topology_given().is_some() {
                saved::check_topology(&binding, &g.load()?)?;
            }
            (topology, options, Some(binding))
        }
        None => {
            let t = g.load()?;
            check_nodes(&t, &a.nodes)?;
            let options = Options {
                adopt: a.adopt,
                only: a.nodes.clone(),
            };
            (t, options, None)
        }
    };
    let what = format!("apply -f {}", topology.source);
    let _lock = lock::acquire(&g.lock_file, g.lock_timeout, &what, |holder| {
        g.info(&format!(
            "routectl: waiting up to {:.0} s for the lock `{}` ({holder})",
            g.lock_timeout.as_secs_f64(),
            g.lock_file.display()
        ));
    })?;

    let transport = g.transport(&topology);
    let plan = live_plan(
        &topology,
        &options,
        &transport,
        g.parallelism(),
        g.progress(),
    );
    if let Some(binding) = &binding {
        saved::check_fresh(binding, &plan)?;
    }
    let style = g.style();

    if plan.operations() > 0 {
        if let Some(why) = plan.mass_delete().filter(|_| !a.allow_mass_delete) {
            if a.output == Format::Text {
                eprint!("{}", report::plan_text(&plan, &stderr_style(g, &style)));
            }
            return Err(Error::Refused(format!(
                "refusing a mass deletion, nothing was changed: {why}. A truncated or wrong \
                 topology is the usual cause; if the deletions are intended, run again with \
                 --allow-mass-delete"
            )));
        }
        if binding.is_none() && !a.auto_approve {
            eprint!("{}", report::plan_text(&plan, &stderr_style(g, &style)));
            if !confirm()? {
                g.info("Apply cancelled; nothing was changed.");
                return Ok(ExitCode::Error);
            }
        } else if a.output == Format::Text && !g.quiet {
            out(&report::plan_text(&plan, &style))?;
        }
    }
    let report = apply::apply(&plan, &topology, &transport, g.parallelism());
    finish(g, a, &topology, &plan, &report, &transport)
}

fn stderr_style(g: &Global, style: &Style) -> Style {
    Style {
        color: style.color
            && (g.color == crate::cli::ColorChoice::Always || std::io::stderr().is_terminal()),
    }
}

fn confirm() -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "refusing to change routes without approval: stdin is not a terminal. Review the \
             plan with `routectl plan`, then run `routectl apply --auto-approve` (or save it with \
             `routectl plan --out FILE` and run `routectl apply FILE`)"
                .to_string(),
        ));
    }
    eprint!("\nApply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer from stdin", e))?;
    Ok(answer.trim() == "yes")
}

fn finish(
    g: &Global,
    a: &ApplyArgs,
    t: &Topology,
    plan: &Plan,
    report: &apply::Report,
    transport: &dyn Transport,
) -> Result<ExitCode, Error> {
    let commands = transport.commands_run();
    match a.output {
        Format::Json => out(&report::to_json_text(&report::report_json(
            report, plan, t, commands,
        )))?,
        Format::Text | Format::Markdown => {
            if plan.operations() == 0 && report.success() {
                if !g.quiet {
                    out(&format!(
                        "No changes: {} node{} in sync.\n",
                        plan.nodes.len(),
                        if plan.nodes.len() == 1 { "" } else { "s" }
                    ))?;
                }
            } else {
                out(&report::report_text(report, commands, &g.style()))?;
            }
        }
    }
    Ok(if report.success() {
        ExitCode::Ok
    } else {
        ExitCode::Error
    })
}
