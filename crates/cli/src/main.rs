//! `lockstep`: runs the hub (`serve`), initializes its vault (`vault init`), and talks to a running
//! hub through its API for everything else (`vault status|unseal|seal`, `org …`).
//!
//! This crate is the output layer: it prints to the terminal, so `print_stdout` is allowed here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod client;
mod commands;
mod config;
mod credentials;
mod logs;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    lockstep_server::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<commands::ExitWith>() {
            Some(exit) => {
                eprintln!("{}", exit.message);
                ExitCode::from(exit.code)
            }
            None => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}
