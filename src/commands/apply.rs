//! `routectl apply`: take the lock, plan (or re-check a saved plan), ask, apply, verify.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{ApplyArgs, Global};
use crate::core::canary;
use crate::core::guard;
use crate::core::plan::{Options, Plan};
use crate::core::saved;
use crate::core::topology::Topology;
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::lock;
use crate::node::transport::Transport;
use crate::node::{apply, probe};
use crate::report::{self, Format};

use super::{check_nodes, live_plan, out, out_json};

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
            let only = g.select(&t, &a.nodes, a.member.as_deref())?;
            let options = Options {
                adopt: a.adopt,
                take_over: a.take_over,
                only,
            };
            (t, options, None)
        }
    };
    for c in &a.canaries {
        let why = if topology.node(c).is_none() {
            format!("is not declared in {}", topology.source)
        } else if !options.only.is_empty() && !options.only.contains(c) {
            "is not among the nodes planned with --node".to_string()
        } else {
            continue;
        };
        return Err(Error::BadOption {
            option: "--canary",
            value: c.clone(),
            why,
        });
    }
    let what = format!("apply -f {}", topology.source);
    let lock_path = g.lock_path()?;
    let _lock = lock::acquire(&lock_path, g.lock_timeout, &what, |holder| {
        g.info(&format!(
            "routectl: waiting up to {:.0} s for the lock `{}` ({holder})",
            g.lock_timeout.as_secs_f64(),
            lock_path.display()
        ));
    })?;

    let transport = g.transport(&topology)?;
    let mut plan = live_plan(
        &topology,
        &options,
        &transport,
        g.parallelism(),
        g.progress(),
    );
    if let Some((binding, doc)) = &binding {
        saved::check_fresh(binding, &plan)?;
        // The fresh plan as the same kind of value the saved document was read into.
        let fresh = serde_json::to_value(report::plan_json(&plan, &topology)).map_err(|e| {
            Error::io(
                "comparing the saved plan with a fresh one",
                std::io::Error::from(e),
            )
        })?;
        saved::check_changes(doc, &fresh)?;
    }
    let style = g.style();
    if a.allow_mass_delete {
        plan.allow_mass_delete();
    }

    // What the mass-delete guard holds back is in the plan text; the rest is applied (and
    // nothing is asked when nothing else is to be done).
    let run = guard::runnable(&plan);
    if plan.operations() > 0 {
        if binding.is_none() && !a.auto_approve && run.operations() > 0 {
            crate::console::err(&report::plan_text(&plan, &g.stderr_style()));
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
    if !a.canaries.is_empty() {
        return canary_rollout(g, a, &topology, &plan, &transport);
    }
    let mut report = apply::apply(&run, &topology, &transport, g.parallelism());
    if crate::interrupt::requested() {
        apply::read_back_interrupted(&mut report, &run, &topology, &transport, g.parallelism());
        guard::settle(&mut report, &plan);
        let _ = finish(g, a, &topology, &plan, &report, &transport, None);
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
    guard::settle(&mut report, &plan);
    finish(g, a, &topology, &plan, &report, &transport, None)
}

/// The nodes of `plan` that `keep` accepts, as a plan of their own.
fn part(plan: &Plan, keep: impl Fn(&str) -> bool) -> Plan {
    Plan {
        nodes: plan
            .nodes
            .iter()
            .filter(|n| keep(&n.name))
            .cloned()
            .collect(),
        held_back: plan
            .held_back
            .iter()
            .filter(|h| keep(&h.node))
            .cloned()
            .collect(),
        ..plan.clone()
    }
}

/// `apply --canary`: the canaries first, their paths proven, then (only if every path answers)
/// the rest and the usual check.
fn canary_rollout(
    g: &Global,
    a: &ApplyArgs,
    topology: &Topology,
    plan: &Plan,
    transport: &dyn Transport,
) -> Result<Outcome, Error> {
    let is_canary = |n: &str| a.canaries.iter().any(|c| c == n);
    // Run without what the mass-delete guard holds back; reported with it.
    let run = guard::runnable(plan);
    let first = part(&run, is_canary);
    let rest = part(&run, |n| !is_canary(n));
    let first_shown = part(plan, is_canary);
    let canaries: Vec<String> = first.nodes.iter().map(|n| n.name.clone()).collect();
    g.info(&format!(
        "routectl: canary stage: applying {} first",
        canaries.join(", ")
    ));
    let mut first_report = apply::apply(&first, topology, transport, g.parallelism());
    guard::settle(&mut first_report, &first_shown);
    let not_converged: Vec<String> = first_report
        .nodes
        .iter()
        .filter(|n| !n.outcome.is_converged())
        .map(|n| n.name.clone())
        .collect();
    let proofs = if not_converged.is_empty() {
        probe::prove_canaries(topology, &canaries, g.parallelism(), transport)
    } else {
        Vec::new()
    };
    let mut verdict = canary::Verdict {
        canaries,
        not_converged,
        proofs,
        rollback: None,
    };
    if !verdict.passed() {
        if a.canary_rollback {
            let mut rb = canary::Rollback {
                restored: Vec::new(),
                failed: Vec::new(),
            };
            for (name, r) in apply::rollback(&first, topology, transport, g.parallelism()) {
                match r {
                    Ok(()) => rb.restored.push(name),
                    Err(why) => rb.failed.push((name, why)),
                }
            }
            verdict.rollback = Some(rb);
        }
        finish(
            g,
            a,
            topology,
            &first_shown,
            &first_report,
            transport,
            Some((&verdict, None)),
        )?;
        let mut msg = String::from(
            "routectl: the canary failed; the rollout stopped and no other node was changed",
        );
        if !verdict.not_converged.is_empty() {
            msg.push_str(&format!(
                "\n  not converged: {}",
                verdict.not_converged.join(", ")
            ));
        }
        for f in verdict.failures() {
            msg.push_str(&format!("\n  failed path: {f}"));
        }
        match &verdict.rollback {
            Some(rb) => {
                if !rb.restored.is_empty() {
                    msg.push_str(&format!(
                        "\n  put back as it was: {}",
                        rb.restored.join(", ")
                    ));
                }
                for (n, why) in &rb.failed {
                    msg.push_str(&format!("\n  NOT put back: {n}: {why}"));
                }
            }
            None => msg.push_str(
                "\n  the canary keeps the new routes; put it back with --canary-rollback, or fix the topology and apply again",
            ),
        }
        eprintln!("{msg}");
        return Ok(Outcome::Failed);
    }
    g.info(&format!(
        "routectl: canary passed ({} path{}); applying the other {} node{}",
        verdict.proofs.len(),
        if verdict.proofs.len() == 1 { "" } else { "s" },
        rest.nodes.len(),
        if rest.nodes.len() == 1 { "" } else { "s" }
    ));
    let mut rest_report = apply::apply(&rest, topology, transport, g.parallelism());
    guard::settle(&mut rest_report, plan);
    // One report in plan order.
    let mut nodes = Vec::with_capacity(plan.nodes.len());
    let (mut c, mut r) = (
        first_report.nodes.into_iter(),
        rest_report.nodes.into_iter(),
    );
    let (mut next_c, mut next_r) = (c.next(), r.next());
    for n in &plan.nodes {
        if next_c.as_ref().is_some_and(|x| x.name == n.name) {
            nodes.extend(next_c.take());
            next_c = c.next();
        } else if next_r.as_ref().is_some_and(|x| x.name == n.name) {
            nodes.extend(next_r.take());
            next_r = r.next();
        }
    }
    let report = apply::Report {
        nodes,
        adopt: plan.adopt,
        elapsed: first_report.elapsed + rest_report.elapsed,
    };
    let check = probe::run(topology, &options_nodes(plan), g.parallelism(), transport);
    let code = finish(
        g,
        a,
        topology,
        plan,
        &report,
        transport,
        Some((&verdict, Some(&check))),
    )?;
    Ok(match code {
        Outcome::Done | Outcome::HeldBack if check.summary().success => code,
        _ => Outcome::Failed,
    })
}

/// The command line as given (`routectl` and the arguments, quoted for a POSIX shell where
/// needed) with `--auto-approve` added: what the refusal without a terminal suggests, so that
/// no option given (`--adopt`, `--node`, `-f`) is lost.
fn with_auto_approve(args: impl Iterator<Item = std::ffi::OsString>) -> String {
    let mut line = "routectl".to_string();
    for a in args {
        let a = a.to_string_lossy();
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        line.push(' ');
        if plain {
            line.push_str(&a);
        } else {
            line.push_str(&format!("'{}'", a.replace('\'', "'\\''")));
        }
    }
    line.push_str(" --auto-approve");
    crate::core::text::escape(&line).into_owned()
}

/// The nodes a check after a rollout covers: those planned (all when the plan covers all).
fn options_nodes(plan: &Plan) -> Vec<String> {
    if plan.skipped.is_empty() {
        Vec::new()
    } else {
        plan.nodes.iter().map(|n| n.name.clone()).collect()
    }
}

fn confirm() -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NoApproval {
            command: with_auto_approve(std::env::args_os().skip(1)),
        });
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
    transport: &dyn Transport,
    canary: Option<(&canary::Verdict, Option<&crate::core::check::Report>)>,
) -> Result<Outcome, Error> {
    let commands = transport.commands_run();
    match a.output {
        Format::Json => out_json(
            g,
            &report::report_json_with(report, plan, t, commands, canary),
        )?,
        Format::Text | Format::Markdown => {
            if let Some((v, _)) = canary {
                out(&report::canary_text(v, &g.style()))?;
            }
            if let Some((v, _)) = canary
                && !v.passed()
            {
                out(&report::canary_failed_text(report, v, commands, &g.style()))?;
            } else if plan.operations() == 0 && report.success() {
                if !g.quiet {
                    let note = report::adoptable_note(report)
                        .map(|n| format!("; {n}"))
                        .unwrap_or_default();
                    out(&format!(
                        "No changes: {} node{} in sync{note}.\n",
                        plan.nodes.len(),
                        if plan.nodes.len() == 1 { "" } else { "s" }
                    ))?;
                }
            } else {
                out(&report::report_text(
                    report,
                    &plan.held_back,
                    commands,
                    &g.style(),
                ))?;
            }
            if let Some((_, Some(c))) = canary
                && !g.quiet
            {
                out(&report::check_text(c, &g.style()))?;
            }
        }
    }
    Ok(if !report.success() {
        Outcome::Failed
    } else if !plan.held_back.is_empty() {
        Outcome::HeldBack
    } else {
        Outcome::Done
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_keeps_every_option_given() {
        let args = [
            "-f",
            "my topo.toml",
            "apply",
            "--adopt",
            "--node",
            "worker-1",
        ];
        assert_eq!(
            super::with_auto_approve(args.iter().map(std::ffi::OsString::from)),
            "routectl -f 'my topo.toml' apply --adopt --node worker-1 --auto-approve"
        );
    }
}
