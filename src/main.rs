//! The `routectl` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

use routectl::cli::Cli;
use routectl::exit::{Outcome, exit_code};

fn main() -> std::process::ExitCode {
    let result = match Cli::try_parse() {
        Ok(cli) => routectl::commands::run(cli),
        Err(e) => {
            let _ = e.print();
            // `--help` and `--version` are printed through the same path, on stdout.
            Ok(if e.use_stderr() {
                Outcome::Usage
            } else {
                Outcome::Done
            })
        }
    };
    if let Err(e) = &result {
        // An error may quote what a node printed: never raw on the terminal.
        let message = format!("routectl: error: {e}");
        routectl::console::errln(&routectl::core::text::escape_lines(&message));
    }
    exit_code(&result).into()
}
