//! `lockstep`: runs the hub (`serve`), initializes its vault (`vault init`), and talks to a running
//! hub through its API for everything else (`vault status|unseal|seal`, `org …`).
//!
//! This crate is the output layer: it prints to the terminal, so `print_stdout` is allowed here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod client;
mod commands;
mod config;
mod confine;
mod credentials;
mod logs;
mod serve;

use clap::Parser;
use std::process::ExitCode;

/// The hub's allocator. A pull decodes, compares and seals on three threads at once, and runs
/// and requests on others; glibc's malloc keeps an arena per thread and holds on to what each
/// freed, so the hub's resident size grew with the number of threads at work rather than with
/// the work (BENCHMARKS.md, data sets). jemalloc keeps a few arenas and gives unused pages back.
/// (The `system-allocator` feature leaves glibc's, for heap profilers that hook malloc.)
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `one` for a count of 1, `many` otherwise: "1 entry", "3 entries".
pub(crate) fn plural<'a>(count: u64, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    lockstep_server::tls::install_crypto_provider();
    // Before the runtime starts its threads: only threads created after it are confined.
    let confined = match &cli.command {
        args::Command::Serve(args) => serve::create_private_dir(&args.data).map(|()| {
            confine::confine(&confine::Allowed::serve(args), args.runner.no_confine);
        }),
        args::Command::Worker(args) => {
            confine::confine(&confine::Allowed::worker(args), args.runner.no_confine);
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(err) = confined {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
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
