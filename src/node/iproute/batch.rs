//! What `ip -batch` says on stderr about the lines that failed.

/// A failing line of an `ip -batch` run, read from its stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// 1-based line of the batch script.
    pub line: usize,
    /// What `ip` or the kernel said about it.
    pub message: String,
}

/// Reads `Command failed -:N` markers from an `ip -batch` stderr; the lines before each marker
/// (since the previous one) are that line's messages.
pub fn batch_failures(stderr: &str) -> Vec<BatchFailure> {
    let mut out = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    for line in stderr.lines() {
        if let Some(n) = line
            .strip_prefix("Command failed -:")
            .or_else(|| line.strip_prefix("Command failed :"))
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            out.push(BatchFailure {
                line: n,
                message: pending.join("; "),
            });
            pending.clear();
        } else if !line.trim().is_empty() {
            pending.push(line.trim());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tolerant raw form.
