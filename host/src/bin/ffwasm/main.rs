//! `ffwasm`: the command line of FlowFabric's SQLite engine backend with its engine logic in a
//! WebAssembly guest.
//!
//! - `ffwasm demo`: the whole system on one database file, ending with a summary table;
//! - `ffwasm executions`, `ffwasm show <id>`, `ffwasm stats`: what a database holds;
//! - `ffwasm guest wit | check <file> | compile <file> -o <out>`: guest components.
//!
//! Modules, one concept each: [`args`] (the command line), [`demo`], [`inspect`], [`guest`]
//! (the commands), [`database`] (checking a file before use, read-only access), [`ids`]
//! (execution ids), [`table`], [`mod@format`] and [`output`] (what a command prints), [`errors`] (what
//! a failure prints).

mod args;
mod database;
mod demo;
mod errors;
mod format;
mod guest;
mod ids;
mod inspect;
mod output;
mod table;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use args::{Cli, Command};

fn main() -> ExitCode {
    // Invalid arguments exit here with clap's usage message and status 2.
    let cli = Cli::parse();
    init_logging();
    // SQLite backends are dev-only and refuse to start without this opt-in; ffwasm is a dev
    // tool, so it opts in for its own process (its `--help` says so).
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };

    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => errors::report(&error),
    }
}

/// Log to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(demo::run(args)),
        Command::Executions(args) => inspect::executions::run(&args),
        Command::Show(args) => inspect::show::run(&args),
        Command::Stats(args) => inspect::stats::run(&args),
        Command::Guest(command) => guest::run(&command),
    }
}
