//! The command line: clap derive types. Doc comments here are the `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Format;

const EXAMPLES: &str = "\
Examples:
  routectl validate -f topology.toml          check the file, touch no node
  routectl plan                               what would change, per node
  routectl plan --output json --detailed-exitcode
  routectl apply                              show the plan, ask, apply, verify
  routectl apply --auto-approve --adopt       for pipelines; take over identical manual routes
  routectl plan --out plan.json && routectl apply plan.json

Exit codes: 0 ok / in sync, 1 error, 2 usage, 3 changes pending (--detailed-exitcode).
Documentation: docs/ (topology format, ownership model, exit codes, operations).";

/// Declarative pod-network routes for Kubernetes nodes on LXD, Incus or network namespaces.
///
/// routectl reads a topology file (nodes, internal IPs, pod CIDRs), reads every node's real
/// routing table, and converges it: every node gets a route to every other node's pod CIDR via
/// that node's internal IP. It only ever changes routes it owns (marked with its own routing
/// protocol number in table main).
#[derive(Debug, Parser)]
#[command(name = "routectl", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct Global {
    /// The topology file [default: $ROUTECTL_TOPOLOGY if set and not empty, else topology.toml].
    #[arg(short = 'f', long = "topology", global = true, value_name = "FILE")]
    pub topology: Option<PathBuf>,

    /// How to reach the nodes, overriding the topology's `cluster.transport`.
    #[arg(long, global = true, value_enum, value_name = "KIND")]
    pub transport: Option<TransportArg>,

    /// How to read and write routes, overriding the topology's `cluster.access` (default exec):
    /// `host` reads and writes them from this host in the node's network namespace, with no
    /// process in the node (see docs/operations.md).
    #[arg(long, global = true, value_enum, value_name = "ACCESS")]
    pub access: Option<AccessArg>,

    /// How many nodes to work on at once.
    #[arg(
        short = 'j',
        long,
        global = true,
        env = "ROUTECTL_PARALLELISM",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=1024),
        value_name = "N"
    )]
    pub parallelism: u16,

    /// Time allowed for each command on a node (e.g. 500ms, 5s, 1m); it is killed after that.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Print every command run on a node, with its batch script (-v), and timings (-vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors (and the requested output document).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The lock that keeps two applies from writing at once.
    #[arg(
        long,
        global = true,
        env = "ROUTECTL_LOCK_FILE",
        default_value = DEFAULT_LOCK_FILE,
        value_name = "FILE"
    )]
    pub lock_file: PathBuf,

    /// How long to wait for another routectl holding the lock (0 = fail at once).
    #[arg(long, global = true, default_value = "30s", value_parser = parse_wait, value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// When to use colour (NO_COLOR and CLICOLOR_FORCE are honoured with `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// Transports, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// `lxc exec` (LXD).
    Lxc,
    /// `incus exec` (Incus).
    Incus,
    /// Network namespaces on this host.
    Netns,
}

/// Ways of reading and writing a node's routes, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessArg {
    /// Run `ip` inside the node through the transport.
    Exec,
    /// From the host, in the node's network namespace, over netlink (local LXD/Incus
    /// containers and network namespaces; needs root).
    Host,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when printing to a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The default lock file.
pub const DEFAULT_LOCK_FILE: &str = "/run/lock/routectl.lock";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the topology file without contacting any node.
    #[command(
        after_help = "Examples:\n  routectl validate -f topology.toml\n  routectl validate --output json"
    )]
    Validate(ValidateArgs),
    /// Read every node and show what would change, per node.
    ///
    /// Marks: + add, - delete, ~ replace or adopt, ! conflict (a foreign route in the way).
    #[command(
        after_help = "Examples:\n  routectl plan\n  routectl plan --detailed-exitcode --output markdown > plan.md\n  routectl plan --node worker-1 --adopt\n  routectl plan --out plan.json            (then: routectl apply plan.json)\n  routectl show --save snap/ && routectl plan --observed snap/"
    )]
    Plan(PlanArgs),
    /// Converge every node: run only the needed changes, then read back and verify.
    ///
    /// Per changed node one `ip -batch` with every change and a read-back; a node is converged
    /// only when its routes, read back, need nothing more. Exit 0 only when every node is.
    #[command(
        after_help = "Examples:\n  routectl apply                       (shows the plan, asks for 'yes')\n  routectl apply --auto-approve --adopt\n  routectl apply plan.json              (a plan saved with `routectl plan --out`)\n  routectl -v apply -y                  (prints every command and batch script)"
    )]
    Apply(ApplyArgs),
    /// Show each node's routes, marked owned / foreign / kernel / desired-missing, and check the
    /// node's addresses against the topology.
    Show(ShowArgs),
    /// Prove pod-network reachability: ping every node's pod gateway from every other node's.
    Check(CheckArgs),
    /// Write a topology from what exists (LXD/Incus instances or Kubernetes nodes).
    Discover(DiscoverArgs),
    /// Keep routes converged: plan and apply every interval until stopped.
    ///
    /// Each round re-reads the topology (an invalid file keeps the last valid one enforced),
    /// then plans and applies with every rule of `apply`. Nodes that fail back off. SIGINT or
    /// SIGTERM stops it after the current round, with exit 0.
    #[command(
        after_help = "Examples:\n  routectl reconcile --interval 30s --metrics-file /var/lib/node_exporter/textfile/routectl.prom\n  routectl reconcile --once --log-format json"
    )]
    Reconcile(ReconcileArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// `routectl validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// `routectl plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Exit 0 when in sync, 3 when changes are pending (or a conflict stands), 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Plan to take over foreign routes identical to desired ones.
    #[arg(long)]
    pub adopt: bool,

    /// Plan only this node (repeatable). Other nodes are neither read nor changed.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Also save the plan to FILE, bound to the topology and to the routes it was computed from;
    /// `routectl apply FILE` applies it only if neither changed.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Plan from a snapshot written by `routectl show --save DIR` instead of reading the nodes.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub observed: Option<PathBuf>,
}

/// `routectl apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking (for pipelines). Without a terminal, apply refuses unless given.
    #[arg(long, short = 'y')]
    pub auto_approve: bool,

    /// Also take over foreign routes identical to desired ones (re-marking them as routectl's).
    #[arg(long)]
    pub adopt: bool,

    /// Apply only to this node (repeatable). Other nodes are neither read nor changed.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Output format of the result.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Allow a plan that deletes many owned routes (all of a node's, or more than half of the
    /// cluster's); without it such a plan is refused.
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// A plan saved with `routectl plan --out FILE`: applied without a prompt, and only if the
    /// topology and the nodes' routes are still those it was computed from.
    #[arg(value_name = "PLAN_FILE", conflicts_with_all = ["adopt", "nodes"])]
    pub plan_file: Option<PathBuf>,
}

/// `routectl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Show only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Also store each node's raw `ip` output in DIR (for `routectl plan --observed DIR`).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

/// `routectl check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only paths from or to this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Where `discover` reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiscoverSource {
    /// `lxc list --format json`.
    Lxc,
    /// `incus list --format json`.
    Incus,
    /// The output of `kubectl get nodes -o json` (a file, or - for stdin).
    Kubernetes,
}

/// `routectl discover`.
///
/// Running instances become nodes (internal IP from --interface, pod CIDR from the network of
/// the address on --pod-bridge); anything left out gets a `#` comment saying why. The result
/// passes `routectl validate`. The transport written is the source's (lxc or incus; lxc for
/// Kubernetes) unless --transport is given.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Where to discover nodes.
    #[arg(long, value_enum, default_value_t = DiscoverSource::Lxc)]
    pub from: DiscoverSource,

    /// A file holding the source's JSON (- for stdin): `kubectl get nodes -o json` (required
    /// with `--from kubernetes`), or a saved `lxc list --format json` / `incus list --format
    /// json` (instead of running it).
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Write the topology to FILE instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// With --out: replace FILE if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,

    /// The interface that carries each node's internal IP.
    #[arg(long, default_value = "eth1", value_name = "IFACE")]
    pub interface: String,

    /// The bridge whose network is the node's pod CIDR.
    #[arg(long, default_value = "cnio0", value_name = "IFACE")]
    pub pod_bridge: String,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per round for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// `routectl reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Time between rounds.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// Run one round and exit (0 when converged, 1 otherwise).
    #[arg(long)]
    pub once: bool,

    /// Log format (stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Write Prometheus text-format metrics to FILE after every round.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Also take over foreign routes identical to desired ones.
    #[arg(long)]
    pub adopt: bool,

    /// Allow rounds that delete many owned routes (see `apply --allow-mass-delete`).
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// Also react to changes at once: watch every node's routes and addresses (netlink with
    /// host access, `ip -j monitor` otherwise) and LXD/Incus lifecycle events, and reconcile
    /// the nodes that changed after a short debounce; the interval stays as a safety net.
    #[arg(long, conflicts_with = "once")]
    pub watch: bool,

    /// How long the watch waits for a burst of events to end before reconciling.
    #[arg(long, default_value = "150ms", value_parser = parse_duration, value_name = "DURATION")]
    pub debounce: Duration,
}

/// `routectl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 500ms, 5s, 2m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86400.0 {
        return Err(format!(
            "`{s}` is out of range (more than 0, at most a week)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse_duration`], but `0` means "do not wait".
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    if s.trim()
        .trim_end_matches(['s', 'm', 'h'])
        .trim_end_matches("ms")
        == "0"
    {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("2s"), Ok(Duration::from_secs(2)));
    }
}
