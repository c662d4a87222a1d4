//! Errors, as values with context (which file, node, command, status and stderr): one variant
//! per situation, never a formatted string. The exit code of each is decided in one place:
//! [`crate::exit::exit_code`].

use std::fmt;

mod node;
mod parse;

pub use node::{CommandError, InstanceHint, NodeError, NodeErrorJson, SshFailure};
pub use parse::{ParseError, Problem, Problems};

/// Everything that stops a command of routectl as a whole. Each situation is its own variant,
/// with the fields a user (or a caller) needs; the exit code of each is decided in
/// [`crate::exit::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file cannot be read.
    #[error(
        "cannot read topology file `{path}`: {source}{}",
        if .source.kind() == std::io::ErrorKind::NotFound {
            " (name it with -f or ROUTECTL_TOPOLOGY, or write one from your instances: \
             `routectl discover > topology.toml`)"
        } else {
            ""
        }
    )]
    TopologyRead {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The topology file is invalid (every problem, one per line).
    #[error("invalid topology:\n{0}")]
    Topology(Problems),

    // --- The command line asks for something impossible (exit 2).
    /// `--node` names nodes the topology does not declare.
    #[error("--node names {} not declared in {topology}", quoted_list(.names))]
    UndeclaredNodes {
        /// The names given that are not nodes.
        names: Vec<String>,
        /// The topology's source.
        topology: String,
    },
    /// `--member` names a member that cannot be served.
    #[error("--member `{member}`: {why}")]
    Member {
        /// The member given (`local` or a name).
        member: String,
        /// Why (the daemon cannot be asked, not a cluster, …).
        why: String,
    },
    /// An option's value breaks the rule for its kind (for example an interface name).
    #[error("{option} `{value}` {why}")]
    BadOption {
        /// The option, as written (`--interface`).
        option: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused, and the rule.
        why: String,
    },
    /// `discover --from kubernetes` without the output of `kubectl get nodes -o json`.
    #[error(
        "--from kubernetes needs the output of `kubectl get nodes -o json`: give its file, or - \
         to read it from stdin (`kubectl get nodes -o json | routectl discover --from kubernetes \
         -`)"
    )]
    KubernetesInputMissing,
    /// `discover --from machines` without the machines file.
    #[error(
        "--from machines needs the machines file: `routectl discover --from machines machines.txt`"
    )]
    MachinesInputMissing,
    /// An option given with a source or transport it does not apply to.
    #[error("{option} is for {applies_to}, not {given}")]
    OptionNotApplicable {
        /// The option, as written (`--project`).
        option: &'static str,
        /// What it is for (`--from lxc or --from incus`).
        applies_to: &'static str,
        /// What was given instead.
        given: String,
    },

    // --- Local files and streams.
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },

    // --- Saved plans that cannot be applied.
    /// The plan file is not JSON.
    #[error("`{file}` is not a saved plan: not JSON ({message})")]
    PlanNotJson {
        /// The plan file.
        file: String,
        /// serde_json's message (with line and column).
        message: String,
    },
    /// The plan file is JSON but not a plan document.
    #[error(
        "`{file}` is not a saved plan (no `\"kind\": \"plan\"`); write one with `routectl plan \
         --out FILE`"
    )]
    NotAPlan {
        /// The plan file.
        file: String,
    },
    /// The file is a plan printed with `--output json`, which carries no binding.
    #[error(
        "`{file}` is a plan printed with --output json, not a saved plan: write one with \
         `routectl plan --out FILE`"
    )]
    PrintedPlan {
        /// The plan file.
        file: String,
    },
    /// The saved part of the plan does not read as routectl writes it, or does not agree with
    /// itself.
    #[error(
        "`{file}`: the saved plan is damaged or was edited ({message}); make a new plan with \
         `routectl plan --out FILE` and review it"
    )]
    DamagedPlan {
        /// The plan file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The plan is of another document format than the one this routectl reads.
    #[error(
        "`{file}` is a plan of format_version {found}, this routectl reads format_version \
         {reads}: make the plan again with `routectl plan --out FILE`"
    )]
    PlanFormat {
        /// The plan file.
        file: String,
        /// Its `format_version` as written (`none` when it has none).
        found: String,
        /// The version this routectl reads.
        reads: u32,
    },
    /// The plan was made by another version of routectl.
    #[error(
        "`{file}` was made by routectl {made_by}, this is routectl {running}: make the plan again"
    )]
    PlanVersion {
        /// The plan file.
        file: String,
        /// The version that wrote it.
        made_by: String,
        /// This version.
        running: &'static str,
    },
    /// A saved plan no longer matches the topology or the nodes.
    #[error("the saved plan is stale, nothing was changed:\n{0}")]
    StalePlan(StaleReasons),

    // --- Refusals of apply and reconcile.
    /// `apply` without `--auto-approve` and no terminal to ask on.
    #[error(
        "refusing to change routes without approval: stdin is not a terminal. Review the plan \
         with `routectl plan`, then run `{command}` (or save it with `routectl plan --out FILE` \
         and run `routectl apply FILE`)"
    )]
    NoApproval {
        /// The command as it was given, with `--auto-approve` added.
        command: String,
    },
    /// Another routectl holds the lock.
    #[error(
        "another routectl holds the lock `{path}` ({holder}); gave up after {:.1} s (raise \
         --lock-timeout to wait longer)", .waited.as_secs_f64()
    )]
    Locked {
        /// The lock file.
        path: String,
        /// Who holds it, as far as known.
        holder: String,
        /// How long routectl waited.
        waited: std::time::Duration,
    },

    /// The lock file is not one routectl may use (a symlink, not a regular file, not the user's).
    #[error(
        "refusing the lock file `{path}`: {why}. A lock file must be a regular file owned by you \
         that routectl created (or an empty one); name another with --lock-file"
    )]
    BadLockFile {
        /// The lock file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// No private runtime directory: not root and no `XDG_RUNTIME_DIR`, or a relative
    /// `ROUTECTL_RUNTIME_DIR`.
    #[error(
        "routectl has no private runtime directory for its lock and ssh's shared connections: \
         {}. Set ROUTECTL_RUNTIME_DIR to an absolute directory only you can use, or name a lock \
         file in a directory only you can write with --lock-file or ROUTECTL_LOCK_FILE",
        match .relative {
            Some(dir) => format!(
                "ROUTECTL_RUNTIME_DIR `{}` is not an absolute path",
                crate::core::text::shown(dir)
            ),
            None => format!(
                "routectl is not running as root ({root_dir} is root's) and XDG_RUNTIME_DIR is \
                 not set to an absolute path"
            ),
        }
    )]
    NoRuntimeDir {
        /// root's runtime directory.
        root_dir: String,
        /// The relative `ROUTECTL_RUNTIME_DIR`, when that is the cause.
        relative: Option<String>,
    },
    /// The LXD or Incus daemon's socket refuses this user: every node would fail the same way.
    #[error(
        "cannot use {daemon} as this user: its socket `{socket}` refused the connection \
         (permission denied). Add yourself to the `{group}` group (`sudo usermod -aG {group} \
         \"$USER\"`, then log in again) or run routectl as root"
    )]
    DaemonAccess {
        /// `LXD` or `Incus`.
        daemon: &'static str,
        /// The daemon's socket.
        socket: String,
        /// The group whose members may use it.
        group: &'static str,
    },
    /// Host access without root: it enters the nodes' network namespaces, which needs root.
    #[error(
        "host access needs root: it enters each node's network namespace from this host (and \
         reads the containers' files). Run routectl as root, or use `--access exec`"
    )]
    HostAccessNeedsRoot,
    /// The runtime directory (or its `ssh/` for connection sockets) is not private.
    #[error(
        "refusing the runtime directory `{path}`: it {why}. routectl keeps its lock and ssh's \
         connection sockets there: remove it (routectl creates it again, mode 0700), set \
         ROUTECTL_RUNTIME_DIR to another directory or name a lock file with --lock-file"
    )]
    BadRuntimeDir {
        /// The directory.
        path: String,
        /// What is wrong with it.
        why: String,
    },

    // --- discover.
    /// `lxc list` / `incus list` failed.
    #[error("cannot list the instances: {0}")]
    ListInstances(CommandError),
    /// A machines file with a malformed row (the message names the line).
    #[error(
        "`{origin}` is not a machines file (`IPV4_ADDRESS FQDN HOSTNAME [POD_SUBNET]` per line): \
         {message}"
    )]
    NotMachinesFile {
        /// Where the input came from.
        origin: String,
        /// What is wrong, with the line.
        message: String,
    },
    /// The input is not what the source prints.
    #[error("`{origin}` is not the output of `{expected}`: {message}")]
    NotSourceOutput {
        /// Where the input came from (a file, stdin, or the command run).
        origin: String,
        /// The command whose output was expected.
        expected: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Discovery found no node it could write.
    #[error(
        "no usable node found in `{origin}`; what was there and why it was left out:\n{}",
        skipped_list(.skipped)
    )]
    NothingDiscovered {
        /// Where the input came from.
        origin: String,
        /// Each entry left out, with why.
        skipped: Vec<(String, String)>,
    },
    /// The discovered topology fails its own validation (a bug in routectl).
    #[error(
        "the discovered topology does not validate (a bug in routectl discover):\n{problems}\n\n{text}"
    )]
    DiscoveredInvalid {
        /// What the checker found.
        problems: Problems,
        /// The text that was not written.
        text: String,
    },
    /// The output file exists and `--force` was not given.
    #[error(
        "`{path}` exists; refusing to overwrite it (use --force, or write elsewhere and compare)"
    )]
    OutputExists {
        /// The file.
        path: String,
    },
}

fn quoted_list(names: &[String]) -> String {
    crate::core::text::list(names, true)
}

fn skipped_list(skipped: &[(String, String)]) -> String {
    use crate::core::text::{LIST_CAP, shown, shown_message};
    let mut lines: Vec<String> = skipped
        .iter()
        .take(LIST_CAP)
        .map(|(name, why)| format!("  `{}`: {}", shown(name), shown_message(why)))
        .collect();
    if skipped.len() > LIST_CAP {
        lines.push(format!("  and {} more", skipped.len() - LIST_CAP));
    }
    lines.join("\n")
}

/// Why a saved plan is stale, one reason per line.
#[derive(Debug)]
pub struct StaleReasons(pub Vec<String>);

impl fmt::Display for StaleReasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {r}")?;
        }
        Ok(())
    }
}

impl Error {
    /// Shorthand for an I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_failures_are_told_apart_from_what_ssh_prints() {
        for (stderr, want) in [
            (
                "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 Host key verification failed.\n",
                SshFailure::HostKeyChanged,
            ),
            (
                "No ED25519 host key is known for 10.0.4.20 and you have requested strict \
                 checking.\nHost key verification failed.\n",
                SshFailure::HostKeyUnknown,
            ),
            (
                "root@10.0.4.20: Permission denied (publickey).\n",
                SshFailure::AuthRefused,
            ),
            (
                "ssh: connect to host 10.0.4.21 port 22: Connection refused\n",
                SshFailure::ConnectionRefused,
            ),
            (
                "ssh: connect to host 10.0.4.99 port 22: No route to host\n",
                SshFailure::Unreachable,
            ),
            (
                "ssh: connect to host 10.0.4.99 port 22: Connection timed out\n",
                SshFailure::Unreachable,
            ),
            ("Error: ??? prefix is expected.\n", SshFailure::Other),
        ] {
            assert_eq!(SshFailure::classify(stderr), want, "{stderr}");
        }
    }
}
