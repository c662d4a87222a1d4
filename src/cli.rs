//! The command line: clap derive types. Doc comments here are the `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::render::Format;

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
    /// The topology file.
    #[arg(
        short = 'f',
        long = "topology",
        env = "ROUTECTL_TOPOLOGY",
        default_value = "topology.toml",
        global = true,
        value_name = "FILE"
    )]
    pub topology: PathBuf,

    /// How to reach the nodes, overriding the topology's `cluster.transport`.
    #[arg(long, global = true, value_enum, value_name = "KIND")]
    pub transport: Option<TransportArg>,

    /// How many nodes to work on at once.
    #[arg(
        short = 'j',
        long,
        global = true,
        env = "ROUTECTL_PARALLELISM",
        default_value_t = 16,
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

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the topology file without contacting any node.
    Validate(ValidateArgs),
    /// Read every node and show what would change, per node.
    Plan(PlanArgs),
    /// Converge every node: run only the needed changes, then read back and verify.
    Apply(ApplyArgs),
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
    }
}
