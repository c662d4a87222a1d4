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

Exit codes: 0 ok / in sync, 1 error, 2 usage, 3 changes pending (--detailed-exitcode), 4 applied
but deletions held back (the mass-delete guard).
Documentation: docs/ (topology format, ownership model, exit codes, operations).";

/// Declarative pod-network routes for Kubernetes nodes on LXD, Incus, network namespaces or
/// machines reached over SSH.
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
    #[arg(
        short = 'f',
        long = "topology",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub topology: Option<PathBuf>,

    /// How to reach the nodes, overriding the topology's `cluster.transport`.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "KIND"
    )]
    pub transport: Option<TransportArg>,

    /// How to read and write routes, overriding the topology's `cluster.access` (default exec):
    /// `host` reads and writes them from this host in the node's network namespace, with no
    /// process in the node (see docs/operations.md).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "ACCESS"
    )]
    pub access: Option<AccessArg>,

    /// How many nodes to work on at once.
    #[arg(
        short = 'j',
        long,
        global = true, help_heading = "Global options",
        env = "ROUTECTL_PARALLELISM",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=1024),
        value_name = "N"
    )]
    pub parallelism: u16,

    /// Time allowed for each command on a node (e.g. 500ms, 5s, 1m); it is killed after that.
    #[arg(long, global = true, help_heading = "Global options", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Print every command run on a node, with its batch script (-v), and timings (-vv).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors (and the requested output document).
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,

    /// The lock that keeps two applies from writing at once [default: $ROUTECTL_LOCK_FILE if
    /// set and not empty, else routectl.lock in the private runtime directory: $ROUTECTL_RUNTIME_DIR
    /// if set, else /run/routectl (root) or $XDG_RUNTIME_DIR/routectl, a directory only its owner
    /// can use]. It must be a regular file you own; a symlink is refused.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub lock_file: Option<PathBuf>,

    /// How long to wait for another routectl holding the lock (0 = fail at once).
    #[arg(long, global = true, help_heading = "Global options", default_value = "30s", value_parser = parse_wait, value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// When to use colour (NO_COLOR and CLICOLOR_FORCE are honoured with `auto`).
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Indent JSON documents (`--output json`, `plan --out`) even when stdout is not a
    /// terminal; without it they are compact unless stdout is a terminal.
    #[arg(long, global = true, help_heading = "Global options")]
    pub pretty: bool,
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
    /// `ssh ADDRESS` (machines reached over SSH).
    Ssh,
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

/// The default lock file of root (other users: `$XDG_RUNTIME_DIR/routectl/routectl.lock`).
pub const DEFAULT_LOCK_FILE: &str = "/run/routectl/routectl.lock";

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
    /// Marks: + add, - delete, ~ replace or adopt, ! conflict (a foreign route in the way),
    /// `>` take over (--take-over). A change marked `[drift]` undoes a change made outside
    /// routectl since its last apply on that node.
    #[command(
        after_help = "Examples:\n  routectl plan\n  routectl plan --detailed-exitcode --output markdown > plan.md\n  routectl plan --node worker-1 --adopt\n  routectl plan --out plan.json            (then: routectl apply plan.json)\n  routectl show --save snap/ && routectl plan --observed snap/"
    )]
    Plan(PlanArgs),
    /// Converge every node: run only the needed changes, then read back and verify.
    ///
    /// Per changed node one `ip -batch` with every change and a read-back; a node is converged
    /// only when its routes, read back, need nothing more. Exit 0 only when every node is.
    #[command(
        after_help = "Examples:\n  routectl apply                       (shows the plan, asks for 'yes')\n  routectl apply --auto-approve --adopt\n  routectl apply -y --take-over         (replace conflicting foreign routes)\n  routectl apply -y --canary worker-0 --canary-rollback\n  routectl apply plan.json              (a plan saved with `routectl plan --out`)\n  routectl -v apply -y                  (prints every command and batch script)"
    )]
    Apply(ApplyArgs),
    /// Show each node's routes, marked owned / foreign / kernel / desired-missing, and check the
    /// node's addresses against the topology.
    Show(ShowArgs),
    /// Prove pod-network reachability: ping every node's pod gateway from every other node's.
    Check(CheckArgs),
    /// Write a topology from what exists (LXD/Incus instances, Kubernetes nodes, machines.txt).
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

    /// Plan to replace foreign routes that stand in a desired route's way (conflicts) with the
    /// desired, owned ones. Foreign routes in no desired route's way are never touched.
    #[arg(long)]
    pub take_over: bool,

    /// Plan only this node (repeatable). Other nodes are neither read nor changed.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Only the nodes whose instance runs on this LXD/Incus cluster member (`local`: the member
    /// of the daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`); other members' nodes are
    /// neither read nor changed. With --node, those of its nodes that run there.
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

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

    /// Replace foreign routes that stand in a desired route's way (conflicts) with the desired,
    /// owned ones: exactly those routes, each deleted by its identity (or rewritten in place).
    #[arg(long)]
    pub take_over: bool,

    /// Apply to this node first (repeatable) and prove its new routes (ping from its internal IP
    /// to every other node's pod gateway) before any other node is changed. A failed path stops
    /// the rollout: no other node is changed, exit 1.
    #[arg(long = "canary", value_name = "NODE")]
    pub canaries: Vec<String>,

    /// With --canary: when a canary's paths fail, put the canary's routes back as they were.
    #[arg(long, requires = "canaries")]
    pub canary_rollback: bool,

    /// Apply only to this node (repeatable). Other nodes are neither read nor changed.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Only the nodes whose instance runs on this LXD/Incus cluster member (`local`: the member
    /// of the daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`); other members' nodes are
    /// neither read nor changed. With --node, those of its nodes that run there.
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

    /// Output format of the result.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Also apply deletions of a mass deletion (all of a node's owned routes, or more than half
    /// of the cluster's); without it they are held back, the rest is applied, and apply exits 4.
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// A plan saved with `routectl plan --out FILE`: applied without a prompt, and only if the
    /// topology and the nodes' routes are still those it was computed from.
    #[arg(value_name = "PLAN_FILE", conflicts_with_all = ["adopt", "take_over", "nodes", "member"])]
    pub plan_file: Option<PathBuf>,
}

/// `routectl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Show only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Only the nodes whose instance runs on this LXD/Incus cluster member (`local`: the member
    /// of the daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`); other members' nodes are
    /// neither read nor changed. With --node, those of its nodes that run there.
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

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

    /// Only the nodes whose instance runs on this LXD/Incus cluster member (`local`: the member
    /// of the daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`); other members' nodes are
    /// neither read nor changed. With --node, those of its nodes that run there.
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

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
    /// The upstream tutorial's machines.txt (`IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]` per
    /// line; a file, or - for stdin); the nodes are reached over ssh.
    Machines,
}

/// `routectl discover`.
///
/// Running instances become nodes (internal IP from --interface, pod CIDR from the network of
/// the address on --pod-bridge); anything left out gets a `#` comment saying why. The result
/// passes `routectl validate`. The transport written is the source's (lxc or incus; lxc for
/// Kubernetes; ssh for machines) unless --transport is given.
///
/// From machines.txt no interface is written unless --interface is given: routes then carry no
/// `dev` and the kernel picks the device that reaches each gateway, as the tutorial's own `ip
/// route add` lines do.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Where to discover nodes.
    #[arg(long, value_enum, default_value_t = DiscoverSource::Lxc)]
    pub from: DiscoverSource,

    /// A file holding the source (- for stdin): machines.txt (required with `--from
    /// machines`), `kubectl get nodes -o json` (required with `--from kubernetes`), or a saved
    /// `lxc list --format json` / `incus list --format json` (instead of running it).
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Write the topology to FILE instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// With --out: replace FILE if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,

    /// The interface that carries each node's internal IP [default: eth1; none for machines].
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// The bridge whose network is the node's pod CIDR.
    #[arg(long, default_value = "cnio0", value_name = "IFACE")]
    pub pod_bridge: String,

    /// lxc/incus: list this project's instances (`--project`) and write it as
    /// `cluster.project`.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,

    /// lxc/incus: take only instances whose name matches this glob (`*`, `?`), e.g.
    /// 'worker-*'; repeat it to take instances matching any of them.
    #[arg(long = "name", value_name = "GLOB")]
    pub name_patterns: Vec<String>,

    /// Only the instances located on this LXD/Incus cluster member (`local`: the member of the
    /// daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`). Without it a cluster's instances of
    /// every member are listed, each with its member in a comment.
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

    /// lxc/incus: take only instances that use this profile.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// ssh: write `cluster.ssh_config = FILE` (relative to where the topology will be).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<String>,

    /// ssh: write each node's address as USER@INTERNAL_IP (else ssh's configuration picks
    /// the user).
    #[arg(long, value_name = "USER")]
    pub ssh_user: Option<String>,
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

    /// Also apply deletions of a mass deletion, which rounds otherwise hold back (see `apply
    /// --allow-mass-delete`).
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// Also react to changes at once: watch every node's routes and addresses (netlink with
    /// host access, `ip -j monitor` otherwise) and LXD/Incus lifecycle events, and reconcile
    /// the nodes that changed after a short debounce; the interval stays as a safety net.
    #[arg(long, conflicts_with = "once")]
    pub watch: bool,

    /// Only the nodes whose instance runs on this LXD/Incus cluster member (`local`: the member
    /// of the daemon routectl talks to, `LXD_DIR`/`INCUS_DIR`); other members' nodes are
    /// neither read nor changed; the instances that run
    /// there are found again every round (an instance moved in is picked up).
    #[arg(long, value_name = "NAME|local")]
    pub member: Option<String>,

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

/// The longest duration accepted anywhere (a timeout or interval beyond it is a typo).
const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

const DURATION_EXAMPLES: &str = "examples: 500ms, 5s, 1m30s, or a bare number of seconds";

/// Parses a duration as `humantime` does (`500ms`, `1.5s`, `2m`, `1h 30m`), or a bare number of
/// seconds (`5`, `0.5`); zero is returned as zero, whatever its spelling (`0`, `0s`, `0.0s`).
fn parse_any(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bare = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let parsed = if bare {
        humantime::parse_duration(&format!("{t}s"))
    } else {
        humantime::parse_duration(t)
    };
    let d = parsed.map_err(|e| match e {
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("`{t}` has an unknown unit `{unit}` (use ms, s, m or h; {DURATION_EXAMPLES})")
        }
        humantime::DurationError::Empty => format!("a duration is needed ({DURATION_EXAMPLES})"),
        // `humantime` keeps nanoseconds: a longer fraction, or a huge number, overflows.
        humantime::DurationError::NumberOverflow if has_long_fraction(t) => {
            format!("`{t}` is finer than 1 ms, the smallest duration routectl can use")
        }
        humantime::DurationError::NumberOverflow => {
            format!("`{t}` is more than a week, the longest accepted")
        }
        other => format!("`{t}` is not a duration: {other} ({DURATION_EXAMPLES})"),
    })?;
    if d > MAX_DURATION {
        return Err(format!("`{t}` is more than a week, the longest accepted"));
    }
    // A value that is not zero but shorter than a millisecond would be used as 0 ms (timeouts
    // and intervals are counted in milliseconds): refused rather than silently made zero.
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(format!(
            "`{t}` is shorter than 1 ms, the smallest duration routectl can use"
        ));
    }
    // A spelling of zero with digits that are not all zero (`0.0000000001s`, below what
    // `humantime` keeps) is not zero: refused like any duration under 1 ms.
    if d.is_zero() && t.chars().any(|c| c.is_ascii_digit() && c != '0') {
        return Err(format!(
            "`{t}` is shorter than 1 ms, the smallest duration routectl can use"
        ));
    }
    Ok(d)
}

/// Whether a number in `s` has more decimals than nanoseconds hold.
fn has_long_fraction(s: &str) -> bool {
    s.split('.')
        .skip(1)
        .any(|f| f.chars().take_while(char::is_ascii_digit).count() > 9)
}

/// A duration where zero makes no sense (a timeout, an interval): more than 0, at most a week.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_any(s)?;
    if d.is_zero() {
        return Err(format!(
            "`{}` is zero: this duration must be more than 0 ({DURATION_EXAMPLES})",
            s.trim()
        ));
    }
    Ok(d)
}

/// Like [`parse_duration`], but zero (in any spelling) means "do not wait".
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    parse_any(s)
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
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        // Bare numbers are seconds.
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(" 5 "), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        // Every spelling of zero is zero, refused where zero makes no sense.
        for zero in ["0", "0s", "0.0s", "0ms", "0.0", "0m"] {
            let e = parse_duration(zero).unwrap_err();
            assert!(e.contains("is zero"), "{zero}: {e}");
            assert_eq!(parse_wait(zero), Ok(Duration::ZERO), "{zero}");
        }
        // Not zero, but it would be used as 0 ms.
        for tiny in ["0.0000000001s", "500us", "0.0001", "1ns"] {
            let e = parse_duration(tiny).unwrap_err();
            assert!(e.contains("1 ms"), "{tiny}: {e}");
            assert!(parse_wait(tiny).is_err(), "{tiny}");
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(
            parse_duration("8d")
                .unwrap_err()
                .contains("more than a week")
        );
        assert_eq!(parse_wait("2s"), Ok(Duration::from_secs(2)));
    }
}
