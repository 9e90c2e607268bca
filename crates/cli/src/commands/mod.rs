//! One function per command: parse is done, run it.

mod audit;
mod dataset;
mod org;
mod pipeline;
mod support_user;
mod vault;

use crate::args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args).await,
        Command::Vault(command) => vault::run(command).await,
        Command::Org(command) => org::run(command).await,
        Command::SupportUser(command) => support_user::run(command).await,
        Command::Audit(command) => audit::run(command).await,
        Command::Pipeline(command) => pipeline::run(command).await,
        Command::Dataset(command) => dataset::run(command).await,
        Command::Worker(args) => crate::serve::worker(args).await,
    }
}

/// The operator token from `--token`/`LOCKSTEP_TOKEN`, or from a prompt.
pub(crate) fn operator_token(given: Option<String>) -> anyhow::Result<String> {
    match given {
        Some(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => read_secret("Operator token: "),
    }
}

/// Reads a secret without echo from the terminal, or one line from standard input when it is
/// not a terminal (so scripts can pipe it). Never from the command line.
pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        anyhow::bail!("nothing was entered");
    }
    Ok(text)
}

/// The exit code of `lockstep pipeline run` when the run committed but rejected records: not
/// 0 (something needs a look), not 1 (the run did not fail).
pub const EXIT_REJECTIONS: u8 = 3;

/// An outcome that is not a failure of the command but still exits non-zero, with its own
/// code and a message of its own (no "error:" prefix).
#[derive(Debug)]
pub struct ExitWith {
    /// The process's exit code.
    pub code: u8,
    /// What to print on standard error.
    pub message: String,
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}
