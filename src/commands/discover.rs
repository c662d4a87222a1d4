//! `routectl discover`: write a topology from what exists.

use crate::cli::{DiscoverArgs, Global};
use crate::error::Error;
use crate::exit::ExitCode;

/// Runs `discover`.
pub fn run(_g: &Global, _a: &DiscoverArgs) -> Result<ExitCode, Error> {
    Err(Error::Refused(
        "`routectl discover` is not available in this build".to_string(),
    ))
}
