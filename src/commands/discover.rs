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
fn list_instances(program: &str, g: &Global) -> Result<Vec<u8>, Error> {
    let argv: Vec<String> = [program, "list", "--format", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = transport::run_local(&argv, g.timeout)
        .and_then(|o| o.success())
        .map_err(Error::ListInstances)?;
    Ok(out.stdout)
}

/// Runs `discover`.
pub fn run(g: &Global, a: &DiscoverArgs) -> Result<Outcome, Error> {
    topology::check_interface(&a.interface).map_err(|why| Error::BadOption {
        option: "--interface",
        value: a.interface.clone(),
        why,
    })?;
    let (source, program) = match a.from {
        DiscoverSource::Lxc => (Source::Lxc, "lxc"),
        DiscoverSource::Incus => (Source::Incus, "incus"),
        DiscoverSource::Kubernetes => (Source::Kubernetes, "kubectl"),
    };
    let (bytes, origin) = match (&a.input, source) {
        (Some(path), _) => (read_input(path)?, path.display().to_string()),
        (None, Source::Kubernetes) => {
            return Err(Error::KubernetesInputMissing);
        }
        (None, _) => (
            list_instances(program, g)?,
            format!("{program} list --format json"),
        ),
    };
    let transport = match (g.transport, source) {
        (Some(TransportArg::Lxc), _) | (None, Source::Lxc | Source::Kubernetes) => {
            TransportKind::Lxc
        }
        (Some(TransportArg::Incus), _) | (None, Source::Incus) => TransportKind::Incus,
        (Some(TransportArg::Netns), _) => TransportKind::Netns,
    };
    let options = Options {
        interface: a.interface.clone(),
        pod_bridge: a.pod_bridge.clone(),
        transport,
        origin: origin.clone(),
    };
    let discovered = match source {
        Source::Kubernetes => discover::from_kubernetes(&bytes, options),
        _ => discover::from_lxc(&bytes, source, options),
    }
    .map_err(|why| {
        let expected = match source {
            Source::Kubernetes => "kubectl get nodes -o json",
            Source::Lxc => "lxc list --format json",
            Source::Incus => "incus list --format json",
        };
        Error::NotSourceOutput {
            origin: origin.clone(),
            expected,
            message: why,
        }
    })?;
    let text = discover::render(&discovered);
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
