//! `ffwasm`: the command line of FlowFabric's SQLite engine backend with its engine logic in a
//! WebAssembly guest.
//!
//! - `ffwasm demo`: the whole system on one database file, ending with a summary table;
//! - `ffwasm executions`, `ffwasm show <id>`, `ffwasm stats`: what a database holds;
//! - `ffwasm priority <id> <n>`, `ffwasm replay <id>`: operator changes through the backend;
//! - `ffwasm watch completions|leases|signals|tags`: follow a subscription;
//! - `ffwasm guest wit | check <file> | compile <file> -o <out>`: guest components.
//!
//! This file holds the top-level parser and hands each command to its module under
//! [`commands`], which owns the command's arguments and runs it. Shared modules, one concept
//! each: [`help`] (the notes under every command's help), [`database`] (the `--db` argument,
//! checking a file before use, read-only access), [`ids`] (execution ids), [`table`],
//! [`mod@format`] and [`output`] (what a command prints), [`errors`] (what a failure prints).

mod commands;
mod compose;
mod database;
mod errors;
mod format;
mod help;
mod ids;
mod output;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use commands::demo::DemoArgs;
use commands::guest::GuestCommand;
use commands::inspect::budgets::BudgetsArgs;
use commands::inspect::executions::ExecutionsArgs;
use commands::inspect::flows::FlowsArgs;
use commands::inspect::show::ShowArgs;
use commands::inspect::stats::StatsArgs;
use commands::inspect::workers::WorkersArgs;
use commands::priority::PriorityArgs;
use commands::replay::ReplayArgs;
use commands::watch::WatchArgs;
use help::ENVIRONMENT;

/// FlowFabric's SQLite engine backend, with the engine logic in a WebAssembly guest: run it,
/// inspect what it wrote, and work with guest components.
#[derive(Debug, Parser)]
#[command(name = "ffwasm", version, after_help = ENVIRONMENT, propagate_version = true)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system: create executions across lanes, grant and claim them, renew,
    /// complete and fail them (with retries) through the guest, then summarize.
    #[command(after_help = commands::demo::HELP)]
    Demo(DemoArgs),
    /// List executions as a table, most recent first.
    #[command(after_help = ENVIRONMENT)]
    Executions(ExecutionsArgs),
    /// Show one execution (its state, attempts, stream frames, lease history and flow edges),
    /// or one flow (its members, edges and edge groups).
    #[command(after_help = ENVIRONMENT)]
    Show(ShowArgs),
    /// Summarize a database: executions by lane and state, attempts, retries, outbox events.
    #[command(after_help = ENVIRONMENT)]
    Stats(StatsArgs),
    /// List budgets (usage against limits, by dimension) and quota policies.
    #[command(after_help = ENVIRONMENT)]
    Budgets(BudgetsArgs),
    /// List the worker registry: live workers (with `--all`, lapsed ones too), their lanes,
    /// capabilities and last heartbeat.
    #[command(after_help = ENVIRONMENT)]
    Workers(WorkersArgs),
    /// Change a waiting execution's priority (through the backend: runnable and eligible
    /// executions only).
    #[command(after_help = ENVIRONMENT)]
    Priority(PriorityArgs),
    /// Replay a finished execution: it waits for a worker again (through the backend).
    #[command(after_help = ENVIRONMENT)]
    Replay(ReplayArgs),
    /// List flows: kind, state, members (counted by state) and edges.
    #[command(after_help = ENVIRONMENT)]
    Flows(FlowsArgs),
    /// Follow completions or lease events as they are committed (by any process), one line
    /// each, until Ctrl-C.
    #[command(after_help = ENVIRONMENT)]
    Watch(WatchArgs),
    /// Work with guest components: print the world's WIT, check or precompile a component.
    #[command(subcommand, after_help = ENVIRONMENT)]
    Guest(GuestCommand),
}

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

/// Run `command`; its module owns what it does.
fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(commands::demo::run(args)),
        Command::Executions(args) => commands::inspect::executions::run(&args),
        Command::Show(args) => commands::inspect::show::run(&args),
        Command::Stats(args) => commands::inspect::stats::run(&args),
        Command::Budgets(args) => commands::inspect::budgets::run(&args),
        Command::Workers(args) => commands::inspect::workers::run(&args),
        Command::Priority(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(commands::priority::run(args)),
        Command::Replay(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(commands::replay::run(args)),
        Command::Flows(args) => commands::inspect::flows::run(&args),
        Command::Watch(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(commands::watch::run(args)),
        Command::Guest(command) => commands::guest::run(&command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
