//! The `smartproxy` binary: parse arguments, set up logging, dispatch, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use smartproxy::cli::{self, Cli};
use smartproxy::printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = smartproxy::telemetry::init(cli.log_level());
    match cli::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            printer::error(&format!("{err:#}"));
            ExitCode::from(cli::EXIT_FAILURE)
        }
    }
}
