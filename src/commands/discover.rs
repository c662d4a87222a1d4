//! `routectl discover`: write a topology from what exists.

use std::path::Path;

use crate::cli::{DiscoverArgs, DiscoverSource, Global, TransportArg};
use crate::core::discover::{self, Options, Source};
use crate::core::topology::{self, TransportKind};
use crate::error::Error;
use crate::exit::Outcome;
use crate::local::files;
use crate::node::transport;

use super::out;

/// Reads FILE, or stdin for `-`, never more than [`files::MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    if path.as_os_str() == "-" {
        files::read_limited(std::io::stdin().lock(), files::MAX_INPUT_BYTES)
            .map_err(|e| Error::io("reading the input from stdin", e.into()))
    } else {
        files::read_bounded(path, files::MAX_INPUT_BYTES)
            .map_err(|e| Error::io(format!("reading `{}`", path.display()), e.into()))
    }
}

/// Runs `lxc list --format json` (or `incus …`) on this host.
fn list_instances(program: &str, project: Option<&str>, g: &Global) -> Result<Vec<u8>, Error> {
    let mut argv: Vec<String> = [program, "list", "--format", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(p) = project {
        argv.push("--project".to_string());
        argv.push(p.to_string());
    }
    let out = transport::run_local(&argv, g.timeout)
        .and_then(|o| o.success())
        .map_err(Error::ListInstances)?;
    Ok(out.stdout)
}

/// Runs `discover`.
// Over 80 lines: to be split with the rework of this file.
#[allow(clippy::too_many_lines)]
pub fn run(g: &Global, a: &DiscoverArgs) -> Result<Outcome, Error> {
    if let Some(i) = &a.interface {
        topology::check_interface(i).map_err(|why| Error::BadOption {
            option: "--interface",
            value: i.clone(),
            why,
        })?;
    }
    if let Some(p) = &a.project {
        topology::check_project(p).map_err(|why| Error::BadOption {
            option: "--project",
            value: p.clone(),
            why,
        })?;
    }
    let (source, program) = match a.from {
        DiscoverSource::Lxc => (Source::Lxc, "lxc"),
        DiscoverSource::Incus => (Source::Incus, "incus"),
        DiscoverSource::Kubernetes => (Source::Kubernetes, "kubectl"),
        DiscoverSource::Machines => (Source::Machines, "machines"),
    };
    if !matches!(source, Source::Lxc | Source::Incus) {
        for (given, option) in [
            (a.project.is_some(), "--project"),
            (!a.name_patterns.is_empty(), "--name"),
            (a.profile.is_some(), "--profile"),
        ] {
            if given {
                return Err(Error::OptionNotApplicable {
                    option,
                    applies_to: "--from lxc or --from incus",
                    given: format!("--from {program}"),
                });
            }
        }
    }
    let project = a.project.clone().or_else(|| file_project(g, a, source));
    let (bytes, origin) = match (&a.input, source) {
        (Some(path), _) => (read_input(path)?, path.display().to_string()),
        (None, Source::Kubernetes) => {
            return Err(Error::KubernetesInputMissing);
        }
        (None, Source::Machines) => return Err(Error::MachinesInputMissing),
        (None, _) => (
            list_instances(program, project.as_deref(), g)?,
            match &project {
                Some(p) => format!("{program} list --format json --project {p}"),
                None => format!("{program} list --format json"),
            },
        ),
    };
    let transport = match (g.transport, source) {
        (Some(TransportArg::Lxc), _) | (None, Source::Lxc | Source::Kubernetes) => {
            TransportKind::Lxc
        }
        (Some(TransportArg::Incus), _) | (None, Source::Incus) => TransportKind::Incus,
        (Some(TransportArg::Netns), _) => TransportKind::Netns,
        (Some(TransportArg::Ssh), _) | (None, Source::Machines) => TransportKind::Ssh,
    };
    if a.project.is_some() && !transport.is_lxd_like() {
        return Err(Error::OptionNotApplicable {
            option: "--project",
            applies_to: "transport lxc or incus",
            given: format!("transport {transport}"),
        });
    }
    for (given, option) in [
        (a.ssh_config.is_some(), "--ssh-config"),
        (a.ssh_user.is_some(), "--ssh-user"),
    ] {
        if given && transport != TransportKind::Ssh {
            return Err(Error::OptionNotApplicable {
                option,
                applies_to: "transport ssh",
                given: format!("transport {transport}"),
            });
        }
    }
    let interface = match (&a.interface, source) {
        (Some(i), _) => Some(i.clone()),
        (None, Source::Machines) => None,
        (None, _) => Some("eth1".to_string()),
    };
    let options = Options {
        interface,
        pod_bridge: a.pod_bridge.clone(),
        project: project.clone(),
        name_patterns: a.name_patterns.clone(),
        profile: a.profile.clone(),
        ssh_config: a.ssh_config.clone(),
        ssh_user: a.ssh_user.clone(),
        ..Options::new(transport, &origin)
    };
    let discovered = match source {
        Source::Kubernetes => discover::from_kubernetes(&bytes, options),
        Source::Machines => discover::from_machines(&bytes, options),
        _ => discover::from_lxc(&bytes, source, options),
    }
    .map_err(|why| {
        let expected = match source {
            Source::Kubernetes => "kubectl get nodes -o json",
            Source::Lxc => "lxc list --format json",
            Source::Incus => "incus list --format json",
            Source::Machines => {
                return Error::NotMachinesFile {
                    origin: origin.clone(),
                    message: why.clone(),
                };
            }
        };
        Error::NotSourceOutput {
            origin: origin.clone(),
            expected,
            message: why,
        }
    })?;
    let text = discover::render(&discovered);
    if let Some(w) = discover::subnets_warning(&discovered) {
        g.info(&format!("routectl: warning: {w}"));
    }
    if discovered.nodes().next().is_none() {
        return Err(Error::NothingDiscovered {
            origin,
            skipped: discovered.skipped_entries(),
        });
    }
    // Every node was checked on its own and against the others; this proves the whole file.
    topology::parse(text.as_bytes(), "discovered topology", None).map_err(|problems| {
        Error::DiscoveredInvalid {
            problems,
            text: text.clone(),
        }
    })?;
    match &a.out {
        None => out(&text)?,
        Some(path) => write_out(path, &text, a.force)?,
    }
    let nodes = discovered.nodes().count();
    let skipped = discovered.skipped();
    g.info(&format!(
        "Discovered {nodes} node{} from `{origin}`{}{}.",
        if nodes == 1 { "" } else { "s" },
        if skipped > 0 {
            format!("; {skipped} skipped (see the `# skipped` comments)")
        } else {
            String::new()
        },
        a.out
            .as_ref()
            .map(|p| format!("; written to {}", p.display()))
            .unwrap_or_default()
    ));
    Ok(Outcome::Done)
}

/// The project of the topology file (named with `-f` or `ROUTECTL_TOPOLOGY`, else
/// `topology.toml` when it exists) when every node of it is in one, for `discover` from the
/// instances without `--project`: so that `routectl discover | diff -u topology.toml -` compares
/// like with like. Said on stderr; an unreadable or invalid file gives none.
fn file_project(g: &Global, a: &DiscoverArgs, source: Source) -> Option<String> {
    if a.input.is_some() || !matches!(source, Source::Lxc | Source::Incus) {
        return None;
    }
    if g.topology_given().is_none() && !Path::new("topology.toml").exists() {
        return None;
    }
    let t = g.load().ok()?;
    let first = t.nodes.first()?.project.clone()?;
    if !t
        .nodes
        .iter()
        .all(|n| n.project.as_deref() == Some(first.as_str()))
    {
        return None;
    }
    g.info(&format!(
        "routectl: discovering project `{}`, the project of `{}` (--project overrides)",
        crate::core::text::shown(&first),
        g.topology_path().display()
    ));
    Some(first)
}

/// Writes the topology beside FILE, then renames it over FILE (only with `--force` when FILE
/// exists), so a half-written topology is never left behind.
fn write_out(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    if path.exists() && !force {
        return Err(Error::OutputExists {
            path: path.display().to_string(),
        });
    }
    let what = format!("writing `{}`", path.display());
    files::write_atomic(path, text.as_bytes(), force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::OutputExists {
                path: path.display().to_string(),
            }
        } else {
            Error::io(what, e)
        }
    })
}
