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

use super::{Asked, check_nodes, live_plan, out, out_with};

pub(crate) fn print_plan(
    g: &Global,
    t: &Topology,
    plan: &Plan,
    format: Format,
) -> Result<(), Error> {
    match format {
        Format::Text => out_with(|w| report::write_plan_text(w, plan, &g.style())),
        Format::Json => {
            let layout = g.json_layout();
            out_with(|w| report::write_plan_json(w, plan, t, g.parallelism(), layout))
        }
        Format::Markdown => out(&report::plan_markdown(plan, t)),
    }
}

/// A node as `--observed DIR` saw it: its snapshot of `ip -j route` and, when there is one, of
/// its last-applied record.
fn snapshot(
    dir: &std::path::Path,
    node: &crate::core::topology::Node,
) -> Result<crate::core::plan::Observed, crate::error::NodeError> {
    use crate::local::files::{MAX_SNAPSHOT_BYTES, ReadError, read_bounded};
    let path = observe::snapshot_path(dir, node);
    let bytes =
        read_bounded(&path, MAX_SNAPSHOT_BYTES).map_err(|e| crate::error::NodeError::Snapshot {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let record_path = observe::snapshot_record_path(dir, node);
    let record = match read_bounded(&record_path, MAX_SNAPSHOT_BYTES) {
        Ok(b) => Some(b),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(crate::error::NodeError::Snapshot {
                path: record_path.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    observe::parse_saved(
        &path,
        &bytes,
        record.as_deref().map(|b| (record_path.as_path(), b)),
    )
}

/// `plan --out FILE`: the saved plan, written atomically (a full disk or a crash leaves the old
/// file, or none, never a part of one).
fn save(
    g: &Global,
    file: &std::path::Path,
    plan: &Plan,
    t: &Topology,
    options: &Options,
) -> Result<(), Error> {
    let mut doc = Vec::new();
    let saved = report::saved_plan_json(plan, t, options);
    report::write_json(&mut doc, &saved, g.file_layout())
        .map_err(|e| Error::io(format!("writing the plan file `{}`", file.display()), e))?;
    crate::local::files::write_atomic(file, &doc, true)
        .map_err(|e| Error::io(format!("writing the plan file `{}`", file.display()), e))?;
    g.info(&format!(
        "routectl: plan saved to {}; apply it with `routectl apply {}`",
        file.display(),
        file.display()
    ));
    Ok(())
}

/// Runs `plan`.
pub fn run(g: &Global, a: &PlanArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let asked = Asked::default();
    let only = g.select(&t, &a.nodes, a.member.as_deref(), &asked)?;
    let options = Options {
        adopt: a.adopt,
        take_over: a.take_over,
        only,
    };
    let started = std::time::Instant::now();
    let (plan, commands) = match &a.observed {
        Some(dir) => {
            let plan = Plan::compute(&t, &options, g.parallelism(), |node| snapshot(dir, node));
            (plan, 0)
        }
        None => {
            let (transport, access) = g.transport_with_access(&t, &asked)?;
            let mut plan = live_plan(&t, &options, &transport, g.parallelism(), g.progress());
            plan.access = access;
            (plan, transport.commands_run())
        }
    };
    if g.verbose > 0 {
        crate::console::errln(&format!(
            "routectl: planned {} with {commands} node commands in {:.3} s",
            crate::core::text::nodes(plan.nodes.len()),
            started.elapsed().as_secs_f64()
        ));
    }
    if let Some(file) = &a.out {
        save(g, file, &plan, &t, &options)?;
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
