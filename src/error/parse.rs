//! Errors of reading text: `ip` output and snapshots that are not a route table, and the
//! problems of a topology file (each with its file, line and column).

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
