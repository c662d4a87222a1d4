//! `routectl show`: each node's routes, marked, and its addresses checked.

use crate::cli::{Global, ShowArgs};
use crate::core::show;
use crate::error::Error;
use crate::exit::Outcome;
use crate::node::observe;
use crate::node::transport::Transport;
use crate::report::{self, Format};

use super::{check_nodes, out};

/// Runs `show`.
pub fn run(g: &Global, a: &ShowArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    if let Some(dir) = &a.save {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::io(
                format!("creating snapshot directory `{}`", dir.display()),
                e,
            )
        })?;
    }
    let transport = g.transport(&t);
    let started = std::time::Instant::now();
    let report = show::compute(&t, &a.nodes, g.parallelism(), |node| {
        observe::read_show(&transport, node)
    });
    if g.verbose > 0 {
        eprintln!(
            "routectl: read {} nodes with {} node commands in {:.3} s",
            report.nodes.len(),
            transport.commands_run(),
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &a.save {
        for n in &report.nodes {
            let Some(node) = t.node(&n.name) else {
                continue;
            };
            let path = crate::node::observe::snapshot_path(dir, node);
            let result = match &n.state {
                Ok(v) => observe::save_snapshot(dir, node, &v.raw_routes, v.last_applied.as_ref()),
                // An old snapshot of a node that cannot be read now must not be planned from.
                Err(_) => observe::remove_snapshot(dir, node),
            };
            result.map_err(|e| Error::io(format!("writing snapshot `{}`", path.display()), e))?;
        }
        let saved = report.nodes.iter().filter(|n| n.state.is_ok()).count();
        g.info(&format!(
            "Saved the routes of {saved} node{} in {} (plan from them with `routectl plan --observed {}`).",
            if saved == 1 { "" } else { "s" },
            dir.display(),
            dir.display()
        ));
    }
    match a.output {
        Format::Text => out(&report::show_text(&report, &g.style()))?,
        Format::Json => out(&report::to_json_text(&report::show_json(&report, &t)))?,
        Format::Markdown => out(&report::show_markdown(&report, &t))?,
    }
    Ok(if report.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}
