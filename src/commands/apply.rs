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
use crate::node::apply;
use crate::node::rollout::{self, Rollout};
use crate::node::transport::Transport;
use crate::report::{self, Format};

use super::{Asked, check_nodes, live_plan, out, out_json};

/// A saved plan's binding to the state it was made from, and its document.
type Binding = Option<(saved::Binding, serde_json::Value)>;

/// Runs `apply`.
pub fn run(g: &Global, a: &ApplyArgs) -> Result<Outcome, Error> {
    // Load and validate everything before touching the lock or any node.
    let (topology, options, binding, mut asked) = load(g, a)?;
    check_canaries(&topology, &options, &a.canaries)?;
    let what = format!("apply -f {}", topology.source);
    let lock_path = g.lock_path()?;
    let mut waited = false;
    let _lock = lock::acquire(&lock_path, g.lock_timeout, &what, |holder| {
        waited = true;
        g.info(&format!(
            "routectl: waiting up to {:.0} s for the lock `{}` ({holder})",
            g.lock_timeout.as_secs_f64(),
            lock_path.display()
        ));
    })?;
    if waited {
        // Instances may have moved while another run held the lock: ask the daemon again.
        asked = Asked::default();
    }
    let (transport, access) = g.transport_with_access(&topology, &asked)?;
    // Nothing is asked between the read and the write: each node's read waits for its write.
    let hold = (a.auto_approve || binding.is_some()) && a.canaries.is_empty();
    let held = Holding::start(&transport, hold);
    let mut plan = live_plan(
        &topology,
        &options,
        &transport,
        g.parallelism(),
        g.progress(),
    );
    plan.access = access;
    held.keep(&plan);
    if let Some((binding, doc)) = &binding {
        check_saved(binding, doc, &plan, &topology)?;
    }
    if a.allow_mass_delete {
        plan.allow_mass_delete();
    }

    // What the mass-delete guard holds back is in the plan text; the rest is applied (and
    // nothing is asked when nothing else is to be done).
    let run = guard::runnable(&plan);
    if !approved(g, a, &plan, &run, binding.is_some())? {
        g.info("Apply cancelled; nothing was changed.");
        return Ok(Outcome::Declined);
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
        crate::console::errln(&interrupted(&report));
        return Ok(Outcome::Interrupted);
    }
    guard::settle(&mut report, &plan);
    finish(g, a, &topology, &plan, &report, &transport, None)
}

/// The reads held for the writes that follow them (see [`crate::node::transport::held`]):
/// released when the apply is over, whatever its end.
struct Holding<'a>(&'a dyn Transport);

impl<'a> Holding<'a> {
    fn start(transport: &'a dyn Transport, on: bool) -> Holding<'a> {
        if on {
            transport.hold_reads();
        }
        Holding(transport)
    }

    /// Holds no further read, and lets go of every node the plan could not read.
    fn keep(&self, plan: &Plan) {
        let keep: Vec<String> = plan
            .nodes
            .iter()
            .filter(|n| n.state.is_ok())
            .map(|n| n.instance.clone())
            .collect();
        self.0.release_held(&keep);
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.release_held(&[]);
    }
}

/// The topology and options of the apply: a saved plan's (its topology checked against the
/// file given with it), or the file's and the command line's; and what the daemon said when
/// `--member` selected the nodes (shared with the transport).
fn load(g: &Global, a: &ApplyArgs) -> Result<(Topology, Options, Binding, Asked), Error> {
    if let Some(file) = &a.plan_file {
        let s = crate::local::files::load_saved_plan(file)?;
        if g.topology_given().is_some() {
            saved::check_topology(&s.binding, &g.load()?)?;
        }
        return Ok((
            s.topology,
            s.options,
            Some((s.binding, s.doc)),
            Asked::default(),
        ));
    }
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let asked = Asked::default();
    let only = g.select(&t, &a.nodes, a.member.as_deref(), &asked)?;
    let options = Options {
        adopt: a.adopt,
        take_over: a.take_over,
        only,
    };
    Ok((t, options, None, asked))
}

/// Every `--canary` is a node of the topology among those planned.
fn check_canaries(
    topology: &Topology,
    options: &Options,
    canaries: &[String],
) -> Result<(), Error> {
    for c in canaries {
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
    Ok(())
}

/// A saved plan still describes what a fresh one would do.
fn check_saved(
    binding: &saved::Binding,
    doc: &serde_json::Value,
    plan: &Plan,
    topology: &Topology,
) -> Result<(), Error> {
    saved::check_fresh(binding, plan)?;
    // The fresh plan as the same kind of value the saved document was read into.
    let fresh = serde_json::to_value(report::plan_json(plan, topology)).map_err(|e| {
        Error::io(
            "comparing the saved plan with a fresh one",
            std::io::Error::from(e),
        )
    })?;
    saved::check_changes(doc, &fresh)?;
    Ok(())
}

/// Whether to go on: a plan with changes is shown and asked about (not with a saved plan or
/// `--auto-approve`, nor when only held-back deletions are left), else shown as text.
fn approved(
    g: &Global,
    a: &ApplyArgs,
    plan: &Plan,
    run: &Plan,
    saved: bool,
) -> Result<bool, Error> {
    if plan.operations() == 0 {
        return Ok(true);
    }
    if !saved && !a.auto_approve && run.operations() > 0 {
        crate::console::err(&report::plan_text(plan, &g.stderr_style()));
        return confirm();
    }
    if a.output == Format::Text && !g.quiet {
        out(&report::plan_text(plan, &g.style()))?;
    }
    Ok(true)
}

/// What stderr says after SIGINT/SIGTERM stopped an apply.
fn interrupted(report: &apply::Report) -> String {
    let cut: Vec<&str> = report
        .nodes
        .iter()
        .filter(|n| n.interrupted() && !n.sent.is_empty())
        .map(|n| n.name.as_str())
        .collect();
    format!(
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
    )
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
    let info = |line: &str| g.info(line);
    let rollout = rollout::canary(
        topology,
        plan,
        &a.canaries,
        a.canary_rollback,
        g.parallelism(),
        transport,
        &info,
    );
    match rollout {
        Rollout::Stopped {
            shown,
            report,
            verdict,
        } => {
            let canary = Some((&verdict, None));
            finish(g, a, topology, &shown, &report, transport, canary)?;
            eprintln!("{}", report::canary_stopped(&verdict));
            Ok(Outcome::Failed)
        }
        Rollout::Done {
            report,
            verdict,
            check,
        } => {
            let canary = Some((&verdict, Some(&check)));
            let code = finish(g, a, topology, plan, &report, transport, canary)?;
            Ok(match code {
                Outcome::Done | Outcome::HeldBack if check.summary().success => code,
                _ => Outcome::Failed,
            })
        }
    }
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
                        "No changes: {} in sync{note}.\n",
                        crate::core::text::nodes(plan.nodes.len())
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
