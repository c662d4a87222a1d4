//! Exit codes, in one place (documented in docs/exit-codes.md). Commands return an [`Outcome`]
//! (or an [`Error`]); [`exit_code`] is the one function that turns either into the process's
//! exit code.

use crate::error::Error;

/// How a command that ran to its end came out. Its report is already printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything as asked: valid, in sync, converged, every path working, written.
    Done,
    /// A plan with changes pending (only returned with `--detailed-exitcode`).
    Pending {
        /// Operations `apply` would run.
        operations: usize,
        /// Desired routes a foreign route stands in the way of.
        conflicts: usize,
    },
    /// The command ran, and its report says what did not work: a node that could not be read
    /// or did not converge, a failed path.
    Failed,
    /// The user answered something other than `yes` at the prompt: nothing was changed.
    Declined,
    /// Everything was applied and verified except what the mass-delete guard held back (the
    /// report names the nodes, why, and `--allow-mass-delete`).
    HeldBack,
    /// Stopped by SIGINT or SIGTERM before its work was done (what is known was reported).
    Interrupted,
    /// The command line could not be parsed (clap printed why).
    Usage,
}

/// routectl's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success: in sync, converged, valid.
    Ok = 0,
    /// Something failed: invalid topology, unreadable or unconverged node, refusal.
    Error = 1,
    /// The command line is wrong.
    Usage = 2,
    /// Changes are pending (only with `--detailed-exitcode`).
    Changes = 3,
    /// Applied, except deletions the mass-delete guard held back.
    HeldBack = 4,
    /// Interrupted by a signal (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

/// The exit code of a command's result. The only place an exit code is chosen.
pub fn exit_code(result: &Result<Outcome, Error>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::Ok,
        Ok(Outcome::Pending { .. }) => ExitCode::Changes,
        Ok(Outcome::Failed | Outcome::Declined) => ExitCode::Error,
        Ok(Outcome::HeldBack) => ExitCode::HeldBack,
        Ok(Outcome::Interrupted) => ExitCode::Interrupted,
        Ok(Outcome::Usage) => ExitCode::Usage,
        // What the command line asked for cannot be done, whatever the files and nodes say.
        Err(
            Error::UndeclaredNodes { .. }
            | Error::Member { .. }
            | Error::BadOption { .. }
            | Error::KubernetesInputMissing
            | Error::MachinesInputMissing
            | Error::OptionNotApplicable { .. },
        ) => ExitCode::Usage,
        Err(
            Error::TopologyRead { .. }
            | Error::Topology(_)
            | Error::Io { .. }
            | Error::PlanNotJson { .. }
            | Error::NotAPlan { .. }
            | Error::PrintedPlan { .. }
            | Error::DamagedPlan { .. }
            | Error::PlanFormat { .. }
            | Error::PlanVersion { .. }
            | Error::StalePlan(_)
            | Error::NoApproval { .. }
            | Error::Locked { .. }
            | Error::BadLockFile { .. }
            | Error::NoRuntimeDir { .. }
            | Error::BadRuntimeDir { .. }
            | Error::DaemonAccess { .. }
            | Error::HostAccessNeedsRoot
            | Error::NotMachinesFile { .. }
            | Error::ListInstances(_)
            | Error::NotSourceOutput { .. }
            | Error::NothingDiscovered { .. }
            | Error::DiscoveredInvalid { .. }
            | Error::OutputExists { .. },
        ) => ExitCode::Error,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{Problem, Problems, StaleReasons};

    #[test]
    fn codes_are_stable() {
        assert_eq!(ExitCode::Ok.code(), 0);
        assert_eq!(ExitCode::Error.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Changes.code(), 3);
        assert_eq!(ExitCode::HeldBack.code(), 4);
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }

    #[test]
    fn outcomes() {
        let code = |o: Outcome| exit_code(&Ok(o));
        assert_eq!(code(Outcome::Done), ExitCode::Ok);
        let pending = Outcome::Pending {
            operations: 3,
            conflicts: 0,
        };
        assert_eq!(code(pending), ExitCode::Changes);
        assert_eq!(code(Outcome::Failed), ExitCode::Error);
        assert_eq!(code(Outcome::Declined), ExitCode::Error);
        assert_eq!(code(Outcome::HeldBack), ExitCode::HeldBack);
        assert_eq!(code(Outcome::Interrupted), ExitCode::Interrupted);
        assert_eq!(code(Outcome::Usage), ExitCode::Usage);
    }

    #[test]
    fn command_line_errors_are_usage_the_rest_errors() {
        let code = |e: Error| exit_code(&Err(e));
        assert_eq!(
            code(Error::UndeclaredNodes {
                names: vec!["w9".into()],
                topology: "t.toml".into()
            }),
            ExitCode::Usage
        );
        assert_eq!(
            code(Error::BadOption {
                option: "--interface",
                value: "eth 1".into(),
                why: "is not valid".into()
            }),
            ExitCode::Usage
        );
        assert_eq!(code(Error::KubernetesInputMissing), ExitCode::Usage);
        assert_eq!(
            code(Error::Topology(Problems(vec![Problem {
                file: "t.toml".into(),
                line: 1,
                column: 1,
                message: "no nodes declared".into()
            }]))),
            ExitCode::Error
        );
        assert_eq!(
            code(Error::NoApproval {
                command: String::new()
            }),
            ExitCode::Error
        );
        assert_eq!(
            code(Error::StalePlan(StaleReasons(vec!["changed".into()]))),
            ExitCode::Error
        );
        assert_eq!(
            code(Error::Locked {
                path: "/run/lock/routectl.lock".into(),
                holder: "pid 1".into(),
                waited: Duration::from_secs(30)
            }),
            ExitCode::Error
        );
    }
}
