//! The `routectl` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

use routectl::cli::Cli;
use routectl::exit::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            }
            .into();
        }
    };
    match routectl::commands::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            routectl::console::errln(&format!("routectl: error: {e}"));
            e.exit_code().into()
        }
    }
}
