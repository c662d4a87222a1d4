//! Exit codes, in one place (documented in docs/exit-codes.md).

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
    /// `apply` was interrupted by SIGINT or SIGTERM while writing: the running commands were
    /// stopped and waited for, the nodes read back; changes may be half applied.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(ExitCode::Ok.code(), 0);
        assert_eq!(ExitCode::Error.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Changes.code(), 3);
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }
}
