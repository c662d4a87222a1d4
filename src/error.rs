//! Errors, as values with context (which file, node, command, status and stderr). The exit code
//! of each is decided in one place: [`Error::exit_code`].

use std::fmt;

use serde::Serialize;

use crate::exit::ExitCode;

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
    /// Host access (netlink in the node's network namespace, the LXD/Incus API) failed or
    /// refused the node.
    #[error("{argv}: {message}")]
    Host {
        /// What was attempted, and on which node (`host access to worker-0: route dump`).
        argv: String,
        /// Why.
        message: String,
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
        format!(": {}", s.lines().collect::<Vec<_>>().join(" / "))
    }
}

impl CommandError {
    /// The command line.
    pub fn argv(&self) -> &str {
        match self {
            CommandError::Spawn { argv, .. }
            | CommandError::Timeout { argv, .. }
            | CommandError::OutputTooLarge { argv, .. }
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
}

impl NodeError {
    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Command(CommandError::Spawn { .. }) => "spawn_failed",
            NodeError::Command(CommandError::Timeout { .. }) => "timeout",
            NodeError::Command(CommandError::Status { .. }) => "command_failed",
            NodeError::Command(CommandError::OutputTooLarge { .. }) => "output_too_large",
            NodeError::Command(CommandError::Host { .. }) => "host_access",
            NodeError::Output { .. } => "bad_output",
            NodeError::OldIproute { .. } => "old_iproute",
            NodeError::Snapshot { .. } => "snapshot",
            NodeError::EmptyRead { .. } => "empty_output",
            NodeError::MissingIp { .. } => "missing_ip",
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
            NodeError::Command(c) => (c.argv().to_string(), None, None),
            NodeError::Output { argv, .. } | NodeError::OldIproute { argv, .. } => {
                (argv.clone(), None, None)
            }
            NodeError::Snapshot { path, .. } => (path.clone(), None, None),
            NodeError::EmptyRead { argv, .. } => (argv.clone(), None, None),
            NodeError::MissingIp { argv, stderr } => {
                (argv.clone(), Some(127), Some(stderr.trim().to_string()))
            }
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
    /// `spawn_failed`, `timeout`, `command_failed`, `bad_output` or `old_iproute`.
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

/// Everything that stops a command of routectl as a whole.
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
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// routectl refused to act (it says why and what to do).
    #[error("{0}")]
    Refused(String),
    /// A saved plan no longer matches the topology or the nodes.
    #[error("the saved plan is stale, nothing was changed:\n{0}")]
    StalePlan(StaleReasons),
    /// Another routectl holds the lock.
    #[error("{0}")]
    Locked(String),
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
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            _ => ExitCode::Error,
        }
    }

    /// Shorthand for an I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
