//! `routectl show`: each node's routes, marked, and its addresses checked.

use crate::cli::{Global, ShowArgs};
use crate::error::Error;
use crate::exit::ExitCode;

/// Runs `show`.
pub fn run(_g: &Global, _a: &ShowArgs) -> Result<ExitCode, Error> {
    Err(Error::Refused(
        "`routectl show` is not available in this build".to_string(),
    ))
}
