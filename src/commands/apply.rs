//! `routectl apply`: plan, ask, apply, verify.

use std::io::{BufRead, IsTerminal, Write};

use crate::apply;
use crate::cli::ApplyArgs;
use crate::cli::Global;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::plan::{Options, Plan};
use crate::render::{self, Format, Style};
use crate::topology::Topology;
use crate::transport::{Process, Transport};

use super::{check_nodes, live_plan, out};

fn confirm(g: &Global) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "refusing to change routes without approval: stdin is not a terminal. Review the \
             plan with `routectl plan`, then run `routectl apply --auto-approve` (or save it with \
             `routectl plan --out FILE` and run `routectl apply FILE`)"
                .to_string(),
        ));
    }
    let _ = g;
    eprint!("\nApply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer from stdin", e))?;
    Ok(answer.trim() == "yes")
}

/// Runs `apply`.
pub fn run(g: &Global, a: &ApplyArgs) -> Result<ExitCode, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let options = Options {
        adopt: a.adopt,
        only: a.nodes.clone(),
    };
    let transport = g.transport(&t);
    let plan = live_plan(&t, &options, &transport, g.parallelism());
    let style = g.style();

    if plan.operations() == 0 {
        // Nothing to run: report what is, and exit by it.
        let report = apply::apply(&plan, &t, &transport, g.parallelism());
        return finish(g, a, &t, &plan, &report, &transport);
    }

    if !a.auto_approve {
        let text = render::plan_text(
            &plan,
            &Style {
                color: style.color && std::io::stderr().is_terminal(),
            },
        );
        eprint!("{text}");
        if !confirm(g)? {
            g.info("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::Error);
        }
    } else if a.output == Format::Text && !g.quiet {
        out(&render::plan_text(&plan, &style))?;
    }
    let report = apply::apply(&plan, &t, &transport, g.parallelism());
    finish(g, a, &t, &plan, &report, &transport)
}

fn finish(
    g: &Global,
    a: &ApplyArgs,
    t: &Topology,
    plan: &Plan,
    report: &apply::Report,
    transport: &Process,
) -> Result<ExitCode, Error> {
    let commands = transport.commands_run();
    match a.output {
        Format::Json => out(&render::to_json_text(&render::report_json(
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
                out(&render::report_text(report, commands, &g.style()))?;
            }
        }
    }
    Ok(if report.success() {
        ExitCode::Ok
    } else {
        ExitCode::Error
    })
}
