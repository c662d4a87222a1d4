//! One function per subcommand: load the topology, run the pipeline, print, pick the exit code.
//! The glue between the command line and the library; no route logic lives here.

use std::io::{BufRead, IsTerminal, Write};

use crate::apply;
use crate::cli::{
    ApplyArgs, Cli, ColorChoice, Command, Global, PlanArgs, TransportArg, ValidateArgs,
};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::observe;
use crate::plan::{Options, Plan};
use crate::render::{self, Format, Style};
use crate::topology::{self, Topology, TransportKind};
use crate::transport::{Process, Transport};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Validate(a) => validate(g, a),
        Command::Plan(a) => plan(g, a),
        Command::Apply(a) => apply(g, a),
    }
}

impl TransportArg {
    fn kind(self) -> TransportKind {
        match self {
            TransportArg::Lxc => TransportKind::Lxc,
            TransportArg::Incus => TransportKind::Incus,
            TransportArg::Netns => TransportKind::Netns,
        }
    }
}

impl Global {
    /// Loads and validates the topology file.
    pub fn load(&self) -> Result<Topology, Error> {
        topology::load(&self.topology, self.transport.map(TransportArg::kind))
    }

    /// The transport for a topology.
    pub fn transport(&self, t: &Topology) -> Process {
        Process::new(t.cluster.transport, self.timeout, self.verbose > 0)
    }

    /// Colours for stdout.
    pub fn style(&self) -> Style {
        let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                if env("CLICOLOR_FORCE") {
                    true
                } else if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                    false
                } else {
                    std::io::stdout().is_terminal()
                }
            }
        };
        Style { color }
    }

    fn parallelism(&self) -> usize {
        usize::from(self.parallelism)
    }

    fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

fn out(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        // A closed pipe (`routectl plan | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("writing to stdout", e)),
    }
}

fn validate(g: &Global, a: &ValidateArgs) -> Result<ExitCode, Error> {
    let t = g.load()?;
    let routes: usize = t
        .nodes
        .iter()
        .map(|n| crate::desired::routes_for(&t, n).len())
        .sum();
    match a.output {
        Format::Json => out(&render::to_json_text(&serde_json::json!({
            "format_version": render::FORMAT_VERSION,
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
    Ok(ExitCode::Ok)
}

fn check_nodes(t: &Topology, nodes: &[String]) -> Result<(), Error> {
    let unknown: Vec<&str> = nodes
        .iter()
        .filter(|n| t.node(n).is_none())
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--node names {} not declared in {}",
            unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            t.source
        )))
    }
}

/// Reads the selected nodes through `transport` and plans them.
pub fn live_plan(
    t: &Topology,
    options: &Options,
    transport: &dyn Transport,
    parallelism: usize,
) -> Plan {
    Plan::compute(t, options, parallelism, |node| {
        observe::read_node(transport, node)
    })
}

fn print_plan(g: &Global, t: &Topology, plan: &Plan, format: Format) -> Result<(), Error> {
    match format {
        Format::Text => out(&render::plan_text(plan, &g.style())),
        Format::Json => out(&render::to_json_text(&render::plan_json(plan, t))),
        Format::Markdown => out(&render::plan_markdown(plan, t)),
    }
}

fn plan(g: &Global, a: &PlanArgs) -> Result<ExitCode, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let options = Options {
        adopt: a.adopt,
        only: a.nodes.clone(),
    };
    let transport = g.transport(&t);
    let started = std::time::Instant::now();
    let plan = live_plan(&t, &options, &transport, g.parallelism());
    if g.verbose > 1 {
        eprintln!(
            "routectl: read {} nodes with {} node commands in {:.3} s",
            plan.nodes.len(),
            transport.commands_run(),
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

fn apply(g: &Global, a: &ApplyArgs) -> Result<ExitCode, Error> {
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
