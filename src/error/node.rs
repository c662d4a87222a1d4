//! Errors of reaching a node: a command that failed (with its argv, status and stderr), ssh's
//! own failures, and what a node's failure is in output (`NodeErrorJson`).

use serde::Serialize;

use super::ParseError;

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
    #[error(
        "`{argv}` did not finish within {} s and was killed{}",
        *.millis as f64 / 1000.0,
        if *.attempts > 1 { format!(" ({} tries)", .attempts) } else { String::new() }
    )]
    Timeout {
        /// The full command line.
        argv: String,
        /// The timeout in milliseconds (of each try).
        millis: u64,
        /// How many times it was run and timed out (a read is tried again once).
        attempts: u32,
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
    /// The node's instance runs on a cluster member that does not answer (the daemon lists the
    /// instance with status `Error`, or the member as offline): nothing was run, at once.
    #[error(
        "{argv}: not run: its cluster member `{member}` does not answer ({why}); the node is \
         unknown until the member is back"
    )]
    MemberDown {
        /// What was not run, and on which node.
        argv: String,
        /// The member that runs the instance.
        member: String,
        /// What the daemon said (`the instance's status is Error`, `member m2 is Offline`).
        why: String,
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
            | CommandError::Host { argv, .. }
            | CommandError::MemberDown { argv, .. } => argv,
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
    /// `lxc`/`incus` could not run the read because the instance is missing or stopped: the
    /// command's failure, and what to do about it.
    #[error("{error}; {hint}")]
    Instance {
        /// The failed command (kept whole: its argv, status and stderr).
        error: Box<CommandError>,
        /// What it means for the instance.
        hint: Box<InstanceHint>,
    },
    /// The node was read, but its interfaces and addresses cannot carry the routes the
    /// topology gives it (an internal IP it does not have, a route interface it lacks, a
    /// gateway not on-link): nothing is written to it.
    #[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Misfit {
        /// Every problem found, for people and programs.
        problems: Vec<crate::core::fit::Misfit>,
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
            NodeError::Command(CommandError::MemberDown { .. }) => "member_down",
            NodeError::Command(CommandError::Interrupted { .. }) => "interrupted",
            NodeError::Output { .. } => "bad_output",
            NodeError::OldIproute { .. } => "old_iproute",
            NodeError::Snapshot { .. } => "snapshot",
            NodeError::EmptyRead { .. } => "empty_output",
            NodeError::MissingIp { .. } => "missing_ip",
            NodeError::Persist { .. } => "persist",
            NodeError::Misfit { .. } => "addresses",
            NodeError::Instance { hint, .. } => match hint.as_ref() {
                InstanceHint::Missing { .. } => "no_instance",
                InstanceHint::Stopped { .. } => "not_running",
            },
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
            NodeError::Misfit { .. } => (String::new(), None, None),
            NodeError::Instance { error, .. } => match error.as_ref() {
                CommandError::Status {
                    argv,
                    status,
                    stderr,
                } => (argv.clone(), *status, Some(stderr.trim().to_string())),
                other => (other.argv().to_string(), None, None),
            },
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

/// What a failed `lxc exec`/`incus exec` says of the instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceHint {
    /// The daemon has no such instance in the project.
    #[error(
        "no instance `{}` in project {} (`{client} list{}` lists them; is `instance` or `name` mistyped?)",
        crate::core::text::shown(.instance),
        crate::core::text::shown(.project.as_deref().unwrap_or("default")),
        .project.as_deref().map(|p| format!(" --project {}", crate::core::text::shown(p))).unwrap_or_default()
    )]
    Missing {
        /// The instance as addressed.
        instance: String,
        /// Its project (`None`: the default one).
        project: Option<String>,
        /// `lxc` or `incus`.
        client: &'static str,
    },
    /// The instance exists but is not running.
    #[error(
        "instance `{}` is stopped: start it with `{client} start{} {}`",
        crate::core::text::shown(.instance),
        .project.as_deref().map(|p| format!(" --project {}", crate::core::text::shown(p))).unwrap_or_default(),
        crate::core::text::shown(.instance)
    )]
    Stopped {
        /// The instance as addressed.
        instance: String,
        /// Its project (`None`: the default one).
        project: Option<String>,
        /// `lxc` or `incus`.
        client: &'static str,
    },
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
