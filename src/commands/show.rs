//! `routectl show`: each node's routes, marked, and its addresses checked.

use crate::cli::{Global, ShowArgs};
use crate::core::show;
use crate::error::Error;
use crate::exit::Outcome;
use crate::node::observe;
use crate::node::transport::Transport;
use crate::report::{self, Format};

use super::{Asked, check_nodes, out, out_json};

/// Runs `show`.
pub fn run(g: &Global, a: &ShowArgs) -> Result<Outcome, Error> {
    let t = g.load()?;
    check_nodes(&t, &a.nodes)?;
    let asked = Asked::default();
    let only = g.select(&t, &a.nodes, a.member.as_deref(), &asked)?;
    let (transport, access) = g.transport_with_access(&t, &asked)?;
    let started = std::time::Instant::now();
    let mut report = show::compute(&t, &only, g.parallelism(), |node| {
        observe::read_show(&transport, node)
    });
    report.access = access;
    if g.verbose > 0 {
        crate::console::errln(&format!(
            "routectl: read {} with {} node commands in {:.3} s",
            crate::core::text::nodes(report.nodes.len()),
            transport.commands_run(),
            started.elapsed().as_secs_f64()
        ));
    }
    if let Some(dir) = &a.save {
        // The whole directory at once: the readable nodes' snapshots (an unreadable node has
        // none, so it cannot be planned from an old one) replace the old snapshot together.
        // A node's last-applied record goes beside its routes.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for n in &report.nodes {
            let (Some(node), Ok(v)) = (t.node(&n.name), n.state.as_ref()) else {
                continue;
            };
            let file_name = |p: std::path::PathBuf| {
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            files.push((
                file_name(observe::snapshot_path(dir, node)),
                v.raw_routes.clone(),
            ));
            if let Some(r) = &v.last_applied {
                let body = serde_json::to_vec_pretty(r).map_err(|e| {
                    Error::io(
                        format!("writing the snapshot `{}`", dir.display()),
                        std::io::Error::other(e),
                    )
                })?;
                files.push((file_name(observe::snapshot_record_path(dir, node)), body));
            }
        }
        crate::local::files::replace_dir(dir, &files)
            .map_err(|e| Error::io(format!("writing the snapshot `{}`", dir.display()), e))?;
        let saved = report.nodes.iter().filter(|n| n.state.is_ok()).count();
        g.info(&format!(
            "Saved the routes of {} in {} (plan from them with `routectl plan --observed {}`).",
            crate::core::text::nodes(saved),
            dir.display(),
            dir.display()
        ));
    }
    match a.output {
        Format::Text => out(&report::show_text(&report, &g.style()))?,
        Format::Json => out_json(g, &report::show_json(&report, &t))?,
        Format::Markdown => out(&report::show_markdown(&report, &t))?,
    }
    Ok(if report.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}
