//! `routectl apply`: take the lock, plan (or re-check a saved plan), ask, apply, verify.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{ApplyArgs, Global};
use crate::core::plan::{Options, Plan};
use crate::core::saved;
use crate::core::topology::Topology;
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::lock;
use crate::node::apply;
use crate::node::transport::{Process, Transport};
use crate::report::{self, Format, Style};

use super::{check_nodes, live_plan, out};

/// Runs `apply`.
pub fn run(g: &Global, a: &ApplyArgs) -> Result<Outcome, Error> {
    // Load and validate everything before touching the lock or any node.
    let (topology, options, binding) = match &a.plan_file {
        Some(file) => {
            let s = crate::local::files::load_saved_plan(file)?;
            if g.topology_given().is_some() {
                saved::check_topology(&s.binding, &g.load()?)?;
            }
            (s.topology, s.options, Some((s.binding, s.doc)))
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
    let lock_path = g.lock_path()?;
    let _lock = lock::acquire(&lock_path, g.lock_timeout, &what, |holder| {
        g.info(&format!(
            "routectl: waiting up to {:.0} s for the lock `{}` ({holder})",
            g.lock_timeout.as_secs_f64(),
            lock_path.display()
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
    if let Some((binding, doc)) = &binding {
        saved::check_fresh(binding, &plan)?;
        saved::check_changes(doc, &report::plan_json(&plan, &topology))?;
    }
    let style = g.style();

    if plan.operations() > 0 {
        if let Some(why) = plan.mass_delete().filter(|_| !a.allow_mass_delete) {
            if a.output == Format::Text {
                crate::console::err(&report::plan_text(&plan, &stderr_style(g, &style)));
            }
            return Err(Error::MassDelete { why });
        }
        if binding.is_none() && !a.auto_approve {
            crate::console::err(&report::plan_text(&plan, &stderr_style(g, &style)));
            if !confirm()? {
                g.info("Apply cancelled; nothing was changed.");
                return Ok(Outcome::Declined);
            }
        } else if a.output == Format::Text && !g.quiet {
            out(&report::plan_text(&plan, &style))?;
        }
    }
    // From here on a SIGINT/SIGTERM does not end routectl at once: no new command starts, the
    // running ones get the signal and are waited for (the lock is held until they are gone),
    // and the touched nodes are read back and reported.
    crate::interrupt::install(crate::node::transport::forward)
        .map_err(|e| Error::io("installing the SIGINT/SIGTERM handlers", e))?;
    let mut report = apply::apply(&plan, &topology, &transport, g.parallelism());
    if crate::interrupt::requested() {
        apply::read_back_interrupted(&mut report, &plan, &topology, &transport, g.parallelism());
        let _ = finish(g, a, &topology, &plan, &report, &transport);
        let cut: Vec<&str> = report
            .nodes
            .iter()
            .filter(|n| n.interrupted() && !n.sent.is_empty())
            .map(|n| n.name.as_str())
            .collect();
        crate::console::errln(&format!(
            "routectl: interrupted by {}: no new command was started and the running ones were \
             stopped and waited for; {}. Run `routectl apply` again to finish.",
            crate::interrupt::signal_name(),
            if cut.is_empty() {
                "no node's write had started".to_string()
            } else {
                format!(
                    "the writes to {} were cut short and may be half applied (read back above)",
                    cut.join(", ")
                )
            }
        ));
        return Ok(Outcome::Interrupted);
    }
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
        return Err(Error::NoApproval);
    }
    crate::console::err("\nApply these changes? Only 'yes' is accepted: ");
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
    transport: &Process,
) -> Result<Outcome, Error> {
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
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
