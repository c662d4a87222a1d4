//! One module per subcommand: load the topology, run the pipeline, print, return the outcome
//! ([`crate::exit::Outcome`]; its exit code is chosen in [`crate::exit::exit_code`]). The glue
//! between the command line and the library; no route logic lives here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::{AccessArg, Cli, ColorChoice, Command, Global, TransportArg};
use crate::core::access::Accesses;
use crate::core::plan::{Options, Plan};
use crate::core::topology::{Access, Topology, TransportKind};
use crate::error::Error;
use crate::exit::Outcome;
use crate::node::cluster::{self, Located, View};
use crate::node::host::Host;
use crate::node::observe;
use crate::node::transport::{Process, Reach, Transport};
use crate::report::{Layout, Style};

mod apply;
mod check;
mod discover;
mod plan;
mod progress;
mod reconcile;
mod show;
mod validate;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Validate(a) => validate::run(g, a),
        Command::Plan(a) => plan::run(g, a),
        Command::Apply(a) => apply::run(g, a),
        Command::Show(a) => show::run(g, a),
        Command::Check(a) => check::run(g, a),
        Command::Discover(a) => discover::run(g, a),
        Command::Reconcile(a) => reconcile::run(g, a),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "routectl", &mut buf);
            out(&String::from_utf8_lossy(&buf))?;
            Ok(Outcome::Done)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Error::io("rendering the man page", e))?;
            out(&String::from_utf8_lossy(&buf))?;
            Ok(Outcome::Done)
        }
    }
}

impl TransportArg {
    fn kind(self) -> TransportKind {
        match self {
            TransportArg::Lxc => TransportKind::Lxc,
            TransportArg::Incus => TransportKind::Incus,
            TransportArg::Netns => TransportKind::Netns,
            TransportArg::Ssh => TransportKind::Ssh,
        }
    }
}

impl Global {
    /// The topology file named with `-f` or `ROUTECTL_TOPOLOGY` (an empty variable is unset).
    pub fn topology_given(&self) -> Option<PathBuf> {
        self.topology.clone().or_else(|| {
            std::env::var_os("ROUTECTL_TOPOLOGY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// The topology file's path.
    pub fn topology_path(&self) -> PathBuf {
        self.topology_given()
            .unwrap_or_else(|| PathBuf::from("topology.toml"))
    }

    /// The lock file: `--lock-file`, else `ROUTECTL_LOCK_FILE` (an empty variable is unset),
    /// else `routectl.lock` in the private runtime directory (created if needed).
    pub fn lock_path(&self) -> Result<PathBuf, Error> {
        match self.lock_file.clone().or_else(|| {
            std::env::var_os("ROUTECTL_LOCK_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        }) {
            Some(p) => Ok(p),
            None => crate::local::lock::default_path(),
        }
    }

    /// Loads and validates the topology file.
    pub fn load(&self) -> Result<Topology, Error> {
        crate::local::files::load_topology(
            &self.topology_path(),
            self.transport.map(TransportArg::kind),
        )
    }

    /// How the nodes' routes are read and written: `--access`, else the topology's.
    pub fn access(&self, t: &Topology) -> Access {
        match self.access {
            Some(AccessArg::Exec) => Access::Exec,
            Some(AccessArg::Host) => Access::Host,
            None => t.cluster.access,
        }
    }

    /// How a topology's nodes are reached besides the transport's kind: their projects and,
    /// for ssh, the client configuration and routectl's private directory of connection
    /// masters.
    pub fn reach(&self, t: &Topology) -> Result<Reach, Error> {
        let mut reach = Reach {
            projects: Reach::projects_of(t),
            ..Reach::default()
        };
        if t.cluster.transport == TransportKind::Ssh {
            reach.ssh_config = t.cluster.ssh_config.as_ref().map(PathBuf::from);
            reach.control_dir = Some(crate::local::runtime::ssh_control_dir()?);
        }
        Ok(reach)
    }

    /// The transport for a topology: `ip` inside the nodes through lxc, incus, ip netns or
    /// ssh ([`Global::reach`]), or host access.
    ///
    /// For LXD and Incus the daemon is asked first where the instances run ([`View::fetch`]): on
    /// a cluster, a node whose member does not answer is refused at once ([`Located`]), and host
    /// access takes the instance lists from the same answer.
    pub fn transport(&self, t: &Topology, asked: &Asked) -> Result<Box<dyn Transport>, Error> {
        self.transport_with_access(t, asked)
            .map(|(transport, _)| transport)
    }

    /// [`Global::transport`], and which access each node gets and where it runs (from the same
    /// answer of the daemon), for the reports.
    pub fn transport_with_access(
        &self,
        t: &Topology,
        asked: &Asked,
    ) -> Result<(Box<dyn Transport>, Accesses), Error> {
        common_cause(t, self.access(t))?;
        let reach = self.reach(t)?;
        let kind = t.cluster.transport;
        let verbose = self.verbose > 0;
        let view = asked.view(self, t).and_then(|v| v.as_ref().ok()).cloned();
        let inner: Box<dyn Transport> = match self.access(t) {
            Access::Exec => Box::new(Process::new(kind, self.timeout, verbose).with_reach(reach)),
            Access::Host => {
                let host = Host::new(kind, self.timeout, verbose).with_reach(reach);
                Box::new(match &view {
                    Some(v) => host.with_view(v),
                    None => host,
                })
            }
        };
        let access = cluster::accesses(t, self.access(t), view.as_ref());
        let transport = match view.filter(|v| v.server.clustered) {
            Some(v) => Box::new(Located::new(inner, v)),
            None => inner,
        };
        Ok((transport, access))
    }

    /// The nodes a command runs on: `--node`'s, narrowed by `--member` to those running there
    /// (none running there is an error: an empty selection would mean every node).
    pub(crate) fn select(
        &self,
        t: &Topology,
        nodes: &[String],
        member: Option<&str>,
        asked: &Asked,
    ) -> Result<Vec<String>, Error> {
        let Some(m) = member else {
            return Ok(nodes.to_vec());
        };
        let mine = self.member_nodes(t, m, nodes, asked)?;
        if mine.is_empty() {
            return Err(Error::Member {
                member: m.to_string(),
                why: "no selected node of the topology runs on it".into(),
            });
        }
        Ok(mine)
    }

    /// `--member NAME|local`: the topology's nodes whose instance runs on that member, in the
    /// order of `--node` when given (and only those of it).
    pub fn member_nodes(
        &self,
        t: &Topology,
        member: &str,
        only: &[String],
        asked: &Asked,
    ) -> Result<Vec<String>, Error> {
        let refuse = |why: String| Error::Member {
            member: member.to_string(),
            why,
        };
        let Some(answer) = asked.view(self, t) else {
            return Err(refuse(format!(
                "the topology's transport is {}; members are those of an LXD or Incus cluster",
                t.cluster.transport.name()
            )));
        };
        let view = answer.as_ref().map_err(|e| refuse(e.clone()))?;
        if !view.server.clustered && member != "local" {
            return Err(refuse(
                "the daemon is not a member of a cluster (use --member local, or no --member)"
                    .into(),
            ));
        }
        Ok(t.nodes
            .iter()
            .filter(|n| only.is_empty() || only.contains(&n.name))
            .filter(|n| view.on_member(&n.instance, member))
            .map(|n| n.name.clone())
            .collect())
    }

    /// `--color` for anstream, which applies `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`,
    /// `TERM=dumb` and "is it a terminal" to `auto`.
    fn color_choice(&self) -> anstream::ColorChoice {
        match self.color {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        }
    }

    /// Colours for stdout.
    pub fn style(&self) -> Style {
        Style::for_stdout(self.color_choice())
    }

    /// Colours for stderr (the plan shown before the question of `apply`).
    pub fn stderr_style(&self) -> Style {
        Style::for_stderr(self.color_choice())
    }

    /// How to lay out a JSON document on stdout: indented for a terminal or with `--pretty`,
    /// compact for programs.
    pub(crate) fn json_layout(&self) -> Layout {
        if self.pretty || std::io::stdout().is_terminal() {
            Layout::Pretty
        } else {
            Layout::Compact
        }
    }

    /// How to lay out a JSON file (a saved plan): compact unless `--pretty`.
    pub(crate) fn file_layout(&self) -> Layout {
        if self.pretty {
            Layout::Pretty
        } else {
            Layout::Compact
        }
    }

    pub(crate) fn parallelism(&self) -> usize {
        usize::from(self.parallelism)
    }

    /// Whether to show progress (stderr is a terminal and not `--quiet`).
    pub(crate) fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    pub(crate) fn info(&self, msg: &str) {
        if !self.quiet {
            crate::console::errln(&crate::core::text::escape_lines(msg));
        }
    }
}

/// What the LXD/Incus daemon says of a topology's instances ([`View`]), asked at most once and
/// only when needed: the node selection (`--member`) and the transport of one command (or one
/// `reconcile` round) share the one answer, so a daemon that hangs costs one timeout, not two.
#[derive(Debug, Default)]
pub struct Asked(std::cell::OnceCell<Option<Result<View, String>>>);

impl Asked {
    /// The daemon's answer for `t` (asked now if not yet): `None` for transports other than
    /// LXD and Incus, `Err` why the daemon could not be asked (the transport then reports each
    /// node on its own).
    pub fn view(&self, g: &Global, t: &Topology) -> Option<&Result<View, String>> {
        self.0
            .get_or_init(|| {
                let kind = t.cluster.transport;
                matches!(kind, TransportKind::Lxc | TransportKind::Incus)
                    .then(|| View::fetch(kind, t, g.timeout))
            })
            .as_ref()
    }
}

/// What would fail every node the same way, found once before any node is tried: host access
/// without root, or an LXD/Incus daemon whose socket refuses this user (when some node is on
/// this host's daemon).
fn common_cause(t: &Topology, access: Access) -> Result<(), Error> {
    if access == Access::Host && crate::local::runtime::euid() != 0 {
        return Err(Error::HostAccessNeedsRoot);
    }
    let (daemon, group) = match t.cluster.transport {
        TransportKind::Lxc => ("LXD", "lxd"),
        TransportKind::Incus => ("Incus", "incus-admin"),
        _ => return Ok(()),
    };
    // A node on a remote (`remote:name`) is reached through the client's configuration.
    if t.nodes.iter().all(|n| n.instance.contains(':')) {
        return Ok(());
    }
    let socket = crate::node::lxd_api::socket_path(t.cluster.transport);
    match std::os::unix::net::UnixStream::connect(&socket) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::DaemonAccess {
            daemon,
            socket: socket.display().to_string(),
            group,
        }),
        // Anything else (no daemon here, a snap's socket elsewhere) is the client's to report.
        _ => Ok(()),
    }
}

pub(crate) use crate::console::err;

pub(crate) fn out(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    written(
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush()),
    )
}

/// Streams a text report to stdout as `write` renders it.
pub(crate) fn out_with(
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    written(write(&mut w).and_then(|_| w.flush()))
}

/// Writes a JSON document to stdout as it is serialised (no copy of the whole document).
pub(crate) fn out_json<T: serde::Serialize>(g: &Global, doc: &T) -> Result<(), Error> {
    let layout = g.json_layout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    written(crate::report::write_json(&mut w, doc, layout).and_then(|_| w.flush()))
}

/// The result of writing to stdout.
fn written(result: std::io::Result<()>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        // A closed pipe (`routectl plan | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("writing to stdout", e)),
    }
}

pub(crate) fn check_nodes(t: &Topology, nodes: &[String]) -> Result<(), Error> {
    let undeclared = t.undeclared(nodes);
    if undeclared.is_empty() {
        Ok(())
    } else {
        Err(Error::UndeclaredNodes {
            names: undeclared.into_iter().map(str::to_string).collect(),
            topology: t.source.clone(),
        })
    }
}

/// Reads the selected nodes through `transport` and plans them. With `progress` (a terminal),
/// a live line on stderr names the nodes still awaited once the reads take longer than a
/// second, and a read tried again after a timeout is said (`progress::Progress`).
pub fn live_plan(
    t: &Topology,
    options: &Options,
    transport: &dyn Transport,
    parallelism: usize,
    progress: bool,
) -> Plan {
    if !progress {
        return Plan::compute(t, options, parallelism, |node| {
            observe::read_observed(transport, node)
        });
    }
    let selected = t.selected(&options.only);
    let live = progress::Progress::new(selected.iter().copied());
    let watched = progress::Watched {
        inner: transport,
        progress: &live,
    };
    std::thread::scope(|s| {
        s.spawn(|| live.paint(selected.len()));
        let plan = Plan::compute(t, options, parallelism, |node| {
            live.start(&node.name);
            let seen = observe::read_observed(&watched, node);
            live.end(&node.name);
            seen
        });
        live.finish();
        plan
    })
}
