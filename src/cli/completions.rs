//! `smartproxy completions <shell>`: completion scripts generated from the clap definitions. The
//! copies in `completions/` are checked by a test to stay current.

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use crate::printer;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate for.
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn render(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "smartproxy", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    printer::out(&render(args.shell));
    Ok(0)
}
