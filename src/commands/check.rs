//! `routectl check`: pod-to-pod reachability matrix.

use crate::cli::{CheckArgs, Global};
use crate::error::Error;
use crate::exit::ExitCode;

/// Runs `check`.
pub fn run(_g: &Global, _a: &CheckArgs) -> Result<ExitCode, Error> {
    Err(Error::Refused(
        "`routectl check` is not available in this build".to_string(),
    ))
}
