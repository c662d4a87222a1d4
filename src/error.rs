//! Errors, as values with context (which file, node, command, status and stderr): one variant
//! per situation, never a formatted string. The exit code of each is decided in one place:
//! [`crate::exit::exit_code`].

use std::fmt;

use serde::Serialize;

/// Why `ip` output could not be read as a route table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing at all was printed (`ip -j` always prints at least `[]`).
    #[error("`ip` printed nothing (an empty read is never an empty table)")]
    Empty,
    /// Not JSON, truncated, or not an array of route objects.
    #[error("`ip` printed output that is not a JSON route list ({message}); it begins: {excerpt}")]
    Invalid {
        /// serde_json's message (with line and column).
        message: String,
        /// The first bytes of the output, for the report.
        excerpt: String,
    },
}

/// One problem found in a topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in a topology file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problems(pub Vec<Problem>);

impl std::error::Error for Problems {}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A command run on a node that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started.
    #[error("cannot run `{argv}`: {message}")]
    Spawn {
        /// The full command line.
        argv: String,
        /// Why (from the OS).
        message: String,
    },
    /// The command did not finish in time and was killed.
    #[error("`{argv}` did not finish within {} s and was killed", *.millis as f64 / 1000.0)]
    Timeout {
        /// The full command line.
        argv: String,
        /// The timeout in milliseconds.
        millis: u64,
    },
    /// The command printed more than routectl reads from one command.
    #[error("`{argv}` printed more than {limit_mib} MiB and was not read further")]
    OutputTooLarge {
        /// The full command line.
        argv: String,
        /// The limit in MiB.
        limit_mib: usize,
    },
    /// ssh itself failed (exit 255): the node is unknown.
    #[error("`{argv}`: {}{}", .failure.describe(), stderr_suffix(.stderr))]
    Ssh {
        /// The full command line.
        argv: String,
        /// What went wrong.
        failure: SshFailure,
        /// What ssh printed on stderr.
        stderr: String,
    },
    /// Host access (netlink in the node's network namespace, the LXD/Incus API) failed or
    /// refused the node.
    #[error("{argv}: {message}")]
    Host {
        /// What was attempted, and on which node (`host access to worker-0: route dump`).
        argv: String,
        /// Why.
        message: String,
    },
    /// routectl was interrupted (SIGINT/SIGTERM) and started no new command.
    #[error("`{argv}` was not started: routectl received {signal}")]
    Interrupted {
        /// The full command line.
        argv: String,
        /// The signal's name.
        signal: String,
    },
    /// The command exited unsuccessfully.
    #[error("`{argv}` {}{}", describe_status(*.status), stderr_suffix(.stderr))]
    Status {
        /// The full command line.
        argv: String,
        /// Exit status (`None` when killed by a signal).
        status: Option<i32>,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// Why ssh could not run a command on a node (it exited 255), as told by its stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SshFailure {
    /// The node's host key differs from the one in known_hosts.
    HostKeyChanged,
    /// known_hosts has no key for the node (and the configuration does not allow adding one).
    HostKeyUnknown,
    /// The node refused every key offered (or BatchMode forbade a password prompt).
    AuthRefused,
    /// Nothing listens on the port (sshd stopped).
    ConnectionRefused,
    /// The address cannot be reached in time (no route, no answer, no such name).
    Unreachable,
    /// Anything else ssh reported (including a remote command that itself exited 255).
    Other,
}

impl SshFailure {
    /// Tells what happened from ssh's stderr.
    pub fn classify(stderr: &str) -> SshFailure {
        let has = |s: &str| stderr.contains(s);
        if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || has("Host key for") && has("has changed")
        {
            SshFailure::HostKeyChanged
        } else if has("Host key verification failed")
            || has("No ED25519 host key is known")
            || has("host key is known for")
        {
            SshFailure::HostKeyUnknown
        } else if has("Permission denied") {
            SshFailure::AuthRefused
        } else if has("Connection refused") {
            SshFailure::ConnectionRefused
        } else if has("No route to host")
            || has("timed out")
            || has("Could not resolve hostname")
            || has("Network is unreachable")
        {
            SshFailure::Unreachable
        } else {
            SshFailure::Other
        }
    }

    /// What to tell the user.
    pub fn describe(self) -> &'static str {
        match self {
            SshFailure::HostKeyChanged => {
                "the node's host key is not the one in known_hosts, so ssh refused to connect; \
                 routectl never accepts a changed key: if the machine was rebuilt, check its new \
                 key and replace the old one (ssh-keygen -R HOST), else something is \
                 impersonating it"
            }
            SshFailure::HostKeyUnknown => {
                "ssh has no host key for the node in known_hosts and BatchMode forbids asking; \
                 add the node's key to known_hosts (check it first)"
            }
            SshFailure::AuthRefused => "the node refused the ssh login (key not authorized?)",
            SshFailure::ConnectionRefused => "nothing accepts ssh connections there (sshd down?)",
            SshFailure::Unreachable => "the address cannot be reached",
            SshFailure::Other => "ssh failed",
        }
    }
}

fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".to_string(),
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        // What a node printed: its control characters are escaped, never printed raw.
        format!(
            ": {}",
            s.lines()
                .map(crate::core::text::escape)
                .collect::<Vec<_>>()
                .join(" / ")
        )
    }
}

impl CommandError {
    /// The command line.
    pub fn argv(&self) -> &str {
        match self {
            CommandError::Spawn { argv, .. }
            | CommandError::Timeout { argv, .. }
            | CommandError::OutputTooLarge { argv, .. }
            | CommandError::Ssh { argv, .. }
            | CommandError::Interrupted { argv, .. }
            | CommandError::Status { argv, .. }
            | CommandError::Host { argv, .. } => argv,
        }
    }
}

/// Why a node could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Running a command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The command ran but its output is not a route table.
    #[error("`{argv}`: {error}")]
    Output {
        /// The full command line.
        argv: String,
        /// What is wrong with the output.
        error: ParseError,
    },
    /// A saved snapshot of the node could not be read.
    #[error("cannot read snapshot `{path}`: {message}")]
    Snapshot {
        /// The snapshot file.
        path: String,
        /// Why.
        message: String,
    },
    /// Every read printed nothing.
    #[error(
        "`{argv}` printed nothing in {attempts} attempts (a known `lxc exec` fault under load); an \
         empty read is never taken as an empty route table"
    )]
    EmptyRead {
        /// The command line.
        argv: String,
        /// How often it was tried.
        attempts: usize,
    },
    /// `ip` is not installed in the node.
    #[error(
        "`{argv}`: `ip` was not found in the node ({stderr}); install iproute2 5.5 or newer there"
    )]
    MissingIp {
        /// The command line.
        argv: String,
        /// What the transport said.
        stderr: String,
    },
    /// The node's iproute2 is older than 5.5.
    #[error(
        "`{argv}`: the node has iproute2 {version}; routectl needs iproute2 5.5 or newer (older \
         versions print invalid JSON for multipath routes and metrics)"
    )]
    OldIproute {
        /// The command that failed.
        argv: String,
        /// The version found.
        version: String,
    },
    /// The node's routes cannot be persisted as the topology asks (`persist`), or writing its
    /// drop-in failed.
    #[error("{reason}")]
    Persist {
        /// The drop-in's path, when one is concerned.
        path: Option<String>,
        /// Why, for people.
        reason: String,
    },
}

impl NodeError {
    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Command(CommandError::Spawn { .. }) => "spawn_failed",
            NodeError::Command(CommandError::Timeout { .. }) => "timeout",
            NodeError::Command(CommandError::Status { .. }) => "command_failed",
            NodeError::Command(CommandError::Ssh {
                failure: SshFailure::HostKeyChanged | SshFailure::HostKeyUnknown,
                ..
            }) => "ssh_host_key",
            NodeError::Command(CommandError::Ssh { .. }) => "ssh_failed",
            NodeError::Command(CommandError::OutputTooLarge { .. }) => "output_too_large",
            NodeError::Command(CommandError::Host { .. }) => "host_access",
            NodeError::Command(CommandError::Interrupted { .. }) => "interrupted",
            NodeError::Output { .. } => "bad_output",
            NodeError::OldIproute { .. } => "old_iproute",
            NodeError::Snapshot { .. } => "snapshot",
            NodeError::EmptyRead { .. } => "empty_output",
            NodeError::MissingIp { .. } => "missing_ip",
            NodeError::Persist { .. } => "persist",
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> NodeErrorJson {
        let (command, status, stderr) = match self {
            NodeError::Command(CommandError::Status {
                argv,
                status,
                stderr,
            }) => (argv.clone(), *status, Some(stderr.trim().to_string())),
            NodeError::Command(CommandError::Ssh { argv, stderr, .. }) => {
                (argv.clone(), Some(255), Some(stderr.trim().to_string()))
            }
            NodeError::Command(c) => (c.argv().to_string(), None, None),
            NodeError::Output { argv, .. } | NodeError::OldIproute { argv, .. } => {
                (argv.clone(), None, None)
            }
            NodeError::Snapshot { path, .. } => (path.clone(), None, None),
            NodeError::EmptyRead { argv, .. } => (argv.clone(), None, None),
            NodeError::MissingIp { argv, stderr } => {
                (argv.clone(), Some(127), Some(stderr.trim().to_string()))
            }
            NodeError::Persist { path, .. } => (path.clone().unwrap_or_default(), None, None),
        };
        NodeErrorJson {
            kind: self.kind(),
            message: self.to_string(),
            command,
            exit_status: status,
            stderr,
        }
    }
}

/// A node error as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct NodeErrorJson {
    /// `spawn_failed`, `timeout`, `command_failed`, `ssh_failed`, `ssh_host_key`, `bad_output`, …
    pub kind: &'static str,
    /// The whole message.
    pub message: String,
    /// The command line.
    pub command: String,
    /// Its exit status, when it exited unsuccessfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// Its stderr, when it exited unsuccessfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// Everything that stops a command of routectl as a whole. Each situation is its own variant,
/// with the fields a user (or a caller) needs; the exit code of each is decided in
/// [`crate::exit::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file cannot be read.
    #[error("cannot read topology file `{path}`: {source}")]
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
    /// The plan deletes too much to be applied without `--allow-mass-delete`.
    #[error(
        "refusing a mass deletion, nothing was changed: {why}. A truncated or wrong topology is \
         the usual cause; if the deletions are intended, run again with --allow-mass-delete"
    )]
    MassDelete {
        /// Which nodes lose what.
        why: String,
    },
    /// `apply` without `--auto-approve` and no terminal to ask on.
    #[error(
        "refusing to change routes without approval: stdin is not a terminal. Review the plan \
         with `routectl plan`, then run `routectl apply --auto-approve` (or save it with \
         `routectl plan --out FILE` and run `routectl apply FILE`)"
    )]
    NoApproval,
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
         ROUTECTL_RUNTIME_DIR is relative, or routectl is not running as root and XDG_RUNTIME_DIR \
         is not set (or not absolute) ({root_dir} is root's). Set ROUTECTL_RUNTIME_DIR to an \
         absolute directory only you can use, or name a lock file in a directory only you can \
         write with --lock-file or ROUTECTL_LOCK_FILE"
    )]
    NoRuntimeDir {
        /// root's runtime directory.
        root_dir: String,
    },
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
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn skipped_list(skipped: &[(String, String)]) -> String {
    skipped
        .iter()
        .map(|(name, why)| format!("  `{}`: {why}", name.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n")
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
