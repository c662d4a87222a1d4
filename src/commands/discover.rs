//! `routectl discover`: write a topology from what exists.

use std::path::Path;

use crate::cli::{DiscoverArgs, DiscoverSource, Global, TransportArg};
use crate::core::discover::{self, Discovery, Options, Source};
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

/// What the options ask for, settled before anything is read: where the instances come from,
/// the client that lists them, the transport and interface written. Pure: every rule between
/// options is here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settled {
    source: Source,
    program: &'static str,
    transport: TransportKind,
    interface: Option<String>,
}

/// The values that have rules of their own: `--interface`, `--project`.
fn check_values(a: &DiscoverArgs) -> Result<(), Error> {
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
    Ok(())
}

/// The option rules of `discover` (no I/O).
fn settle(a: &DiscoverArgs, transport: Option<TransportArg>) -> Result<Settled, Error> {
    check_values(a)?;
    let (source, program) = match a.from {
        DiscoverSource::Lxc => (Source::Lxc, "lxc"),
        DiscoverSource::Incus => (Source::Incus, "incus"),
        DiscoverSource::Kubernetes => (Source::Kubernetes, "kubectl"),
        DiscoverSource::Machines => (Source::Machines, "machines"),
    };
    let lxd_source = matches!(source, Source::Lxc | Source::Incus);
    for (given, option) in [
        (a.project.is_some(), "--project"),
        (!a.name_patterns.is_empty(), "--name"),
        (a.profile.is_some(), "--profile"),
        (a.member.is_some(), "--member"),
    ] {
        if given && !lxd_source {
            return Err(Error::OptionNotApplicable {
                option,
                applies_to: "--from lxc or --from incus",
                given: format!("--from {program}"),
            });
        }
    }
    if a.member.as_deref() == Some("local") && a.input.is_some() {
        return Err(Error::Member {
            member: "local".into(),
            why: "with FILE the instances come from a file, not from a daemon of this \
                  machine: name the member"
                .into(),
        });
    }
    let transport = match (transport, source) {
        (Some(TransportArg::Lxc), _) | (None, Source::Lxc | Source::Kubernetes) => {
            TransportKind::Lxc
        }
        (Some(TransportArg::Incus), _) | (None, Source::Incus) => TransportKind::Incus,
        (Some(TransportArg::Netns), _) => TransportKind::Netns,
        (Some(TransportArg::Ssh), _) | (None, Source::Machines) => TransportKind::Ssh,
    };
    let transport_rules = [
        (
            a.project.is_some() && !transport.is_lxd_like(),
            "--project",
            "transport lxc or incus",
        ),
        (
            a.ssh_config.is_some() && transport != TransportKind::Ssh,
            "--ssh-config",
            "transport ssh",
        ),
        (
            a.ssh_user.is_some() && transport != TransportKind::Ssh,
            "--ssh-user",
            "transport ssh",
        ),
    ];
    if let Some((_, option, applies_to)) = transport_rules.into_iter().find(|r| r.0) {
        return Err(Error::OptionNotApplicable {
            option,
            applies_to,
            given: format!("transport {transport}"),
        });
    }
    let interface = match (&a.interface, source) {
        (Some(i), _) => Some(i.clone()),
        (None, Source::Machines) => None,
        (None, _) => Some("eth1".to_string()),
    };
    Ok(Settled {
        source,
        program,
        transport,
        interface,
    })
}

/// The input's bytes and where they came from: FILE, or the instances listed on this host.
fn read_source(
    g: &Global,
    a: &DiscoverArgs,
    s: &Settled,
    project: Option<&str>,
) -> Result<(Vec<u8>, String), Error> {
    match (&a.input, s.source) {
        (Some(path), _) => Ok((read_input(path)?, path.display().to_string())),
        (None, Source::Kubernetes) => Err(Error::KubernetesInputMissing),
        (None, Source::Machines) => Err(Error::MachinesInputMissing),
        (None, _) => Ok((
            list_instances(s.program, project, g)?,
            match project {
                Some(p) => format!("{} list --format json --project {p}", s.program),
                None => format!("{} list --format json", s.program),
            },
        )),
    }
}

/// `--member`: a member's name as given, or `local` as the daemon of this machine names
/// itself (`LXD_DIR`/`INCUS_DIR`); off a cluster `local` is every instance (`None`).
fn resolve_member(g: &Global, s: &Settled, member: Option<&str>) -> Result<Option<String>, Error> {
    let Some(m) = member else { return Ok(None) };
    if m != "local" {
        return Ok(Some(m.to_string()));
    }
    let kind = match s.source {
        Source::Incus => TransportKind::Incus,
        _ => TransportKind::Lxc,
    };
    let socket = crate::node::lxd_api::socket_path(kind);
    let server = crate::node::lxd_api::server(&socket, g.timeout).map_err(|why| Error::Member {
        member: m.to_string(),
        why,
    })?;
    Ok(server.clustered.then_some(server.name))
}

/// The source's bytes as a discovered topology, or what they are not.
fn parse(bytes: &[u8], source: Source, options: Options, origin: &str) -> Result<Discovery, Error> {
    let discovered = match source {
        Source::Kubernetes => discover::from_kubernetes(bytes, options),
        Source::Machines => discover::from_machines(bytes, options),
        _ => discover::from_lxc(bytes, source, options),
    };
    discovered.map_err(|message| {
        let expected = match source {
            Source::Kubernetes => "kubectl get nodes -o json",
            Source::Lxc => "lxc list --format json",
            Source::Incus => "incus list --format json",
            Source::Machines => {
                return Error::NotMachinesFile {
                    origin: origin.to_string(),
                    message,
                };
            }
        };
        Error::NotSourceOutput {
            origin: origin.to_string(),
            expected,
            message,
        }
    })
}

/// Runs `discover`.
pub fn run(g: &Global, a: &DiscoverArgs) -> Result<Outcome, Error> {
    let s = settle(a, g.transport)?;
    let project = a.project.clone().or_else(|| file_project(g, a, s.source));
    let (bytes, origin) = read_source(g, a, &s, project.as_deref())?;
    let options = Options {
        interface: s.interface.clone(),
        pod_bridge: a.pod_bridge.clone(),
        project,
        name_patterns: a.name_patterns.clone(),
        profile: a.profile.clone(),
        ssh_config: a.ssh_config.clone(),
        ssh_user: a.ssh_user.clone(),
        member: resolve_member(g, &s, a.member.as_deref())?,
        ..Options::new(s.transport, &origin)
    };
    let discovered = parse(&bytes, s.source, options, &origin)?;
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
    g.info(&said(&discovered, &origin, a.out.as_deref()));
    Ok(Outcome::Done)
}

/// `Discovered 5 nodes from `lxc list --format json`; 1 skipped (…); written to FILE.`
fn said(d: &Discovery, origin: &str, out: Option<&Path>) -> String {
    let nodes = d.nodes().count();
    let skipped = d.skipped();
    format!(
        "Discovered {nodes} node{} from `{origin}`{}{}.",
        if nodes == 1 { "" } else { "s" },
        if skipped > 0 {
            format!("; {skipped} skipped (see the `# skipped` comments)")
        } else {
            String::new()
        },
        out.map(|p| format!("; written to {}", p.display()))
            .unwrap_or_default()
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `routectl ARGS` as `settle` sees them.
    fn settled(args: &[&str]) -> Result<Settled, Error> {
        let cli = crate::cli::Cli::try_parse_from(["routectl"].iter().chain(args)).unwrap();
        let crate::cli::Command::Discover(a) = &cli.command else {
            panic!("not discover: {args:?}")
        };
        settle(a, cli.global.transport)
    }

    #[test]
    fn member_applies_to_lxd_and_incus_and_local_needs_the_daemon() {
        let s = settled(&["discover", "--member", "m1"]).unwrap();
        assert_eq!((s.source, s.transport), (Source::Lxc, TransportKind::Lxc));
        assert_eq!(s.interface.as_deref(), Some("eth1"));
        assert!(settled(&["discover", "--from", "incus", "--member", "local"]).is_ok());
        assert!(settled(&["discover", "f.json", "--member", "m1"]).is_ok());
        match settled(&["discover", "f.json", "--member", "local"]) {
            Err(Error::Member { member, .. }) => assert_eq!(member, "local"),
            other => panic!("{other:?}"),
        }
        match settled(&["discover", "--from", "kubernetes", "--member", "m1"]) {
            Err(Error::OptionNotApplicable { option, .. }) => assert_eq!(option, "--member"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_other_option_rules_hold_as_before() {
        let s = settled(&["discover", "--from", "machines"]).unwrap();
        assert_eq!((s.transport, s.interface), (TransportKind::Ssh, None));
        let refused = |args: &[&str], want: &str| match settled(args) {
            Err(Error::OptionNotApplicable { option, .. }) => assert_eq!(option, want, "{args:?}"),
            other => panic!("{args:?}: {other:?}"),
        };
        refused(
            &["discover", "--from", "machines", "--project", "p"],
            "--project",
        );
        refused(
            &["discover", "--transport", "netns", "--project", "p"],
            "--project",
        );
        refused(&["discover", "--ssh-user", "k"], "--ssh-user");
        refused(&["discover", "--ssh-config", "c"], "--ssh-config");
        assert!(matches!(
            settled(&["discover", "--interface", "a b"]),
            Err(Error::BadOption {
                option: "--interface",
                ..
            })
        ));
    }
}
