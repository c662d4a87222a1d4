//! `routectl reconcile`: plan and apply every interval until stopped.

use crate::cli::{Global, ReconcileArgs};
use crate::error::Error;
use crate::exit::ExitCode;

/// Runs `reconcile`.
pub fn run(_g: &Global, _a: &ReconcileArgs) -> Result<ExitCode, Error> {
    Err(Error::Refused(
        "`routectl reconcile` is not available in this build".to_string(),
    ))
}
