//! The command line: every command, flag and default, with the help text `--help` shows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ids::ExecutionKey;

/// The database every command uses unless `--db` says otherwise.
pub const DEFAULT_DB: &str = "ffwasm-demo.sqlite";

/// The environment and exit-status notes shown under every command's help.
macro_rules! environment_help {
    () => {
        "Environment:
  RUST_LOG     log filter for messages on stderr (default: warn), e.g. RUST_LOG=info
  FF_DEV_MODE  ffwasm sets FF_DEV_MODE=1 for its own process: SQLite backends are dev-only and
               refuse to start without it

Exit status: 0 on success, 1 when the command failed, 2 for invalid arguments."
    };
}

/// Shown under every command's help.
const ENVIRONMENT: &str = environment_help!();

/// FlowFabric's SQLite engine backend, with the engine logic in a WebAssembly guest: run it,
/// inspect what it wrote, and work with guest components.
#[derive(Debug, Parser)]
#[command(name = "ffwasm", version, after_help = ENVIRONMENT, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole system: create executions across lanes, grant and claim them, renew,
    /// complete and fail them (with retries) through the guest, then summarize.
    #[command(after_help = DEMO_HELP)]
    Demo(DemoArgs),
    /// List executions as a table, most recent first.
    #[command(after_help = ENVIRONMENT)]
    Executions(ExecutionsArgs),
    /// Show one execution: its state, its attempts and its lease history.
    #[command(after_help = ENVIRONMENT)]
    Show(ShowArgs),
    /// Summarize a database: executions by lane and state, attempts, retries, outbox events.
    #[command(after_help = ENVIRONMENT)]
    Stats(DatabaseArg),
    /// Work with guest components: print the world's WIT, check or precompile a component.
    #[command(subcommand, after_help = ENVIRONMENT)]
    Guest(GuestCommand),
}

/// Shown under `ffwasm demo --help`.
const DEMO_HELP: &str = concat!(
    "The database file is created when it does not exist. Running the demo again on the same file
reuses it: the new executions are added next to the earlier ones, the summary covers this run,
and `ffwasm stats` covers them all. A file that is not a FlowFabric SQLite database (or comes
from a newer build) is refused and left untouched.

",
    environment_help!()
);

/// The database a command works on.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArg {
    /// The SQLite database file.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// `ffwasm demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// How many executions to create.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub executions: u32,
    /// How many worker tasks claim and run them.
    #[arg(short, long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// How many lanes the executions are spread across.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=crate::demo::LANE_NAMES.len() as i64))]
    pub lanes: u32,
    /// The probability that an attempt fails, from 0 to 1. A failed attempt is retried with
    /// backoff until its execution runs out of retries.
    #[arg(long, value_name = "P", default_value_t = 0.2, value_parser = probability)]
    pub failure_rate: f64,
    /// How many times a failed execution is retried before it fails for good.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub max_retries: u32,
    /// Seed for the failure decisions, to repeat a run (default: random).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// The guest to run.
    #[command(flatten)]
    pub guest: GuestChoice,
}

/// Which guest component the backend runs.
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
pub struct GuestChoice {
    /// Run this guest component (a wasm32-wasip2 component of the engine-backend world)
    /// instead of the built-in guest.
    #[arg(long, value_name = "FILE.wasm")]
    pub guest: Option<PathBuf>,
    /// Run a guest precompiled by `ffwasm guest compile` (only files you made yourself: they
    /// contain machine code).
    #[arg(long, value_name = "FILE")]
    pub guest_precompiled: Option<PathBuf>,
}

/// `ffwasm executions`.
#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Only executions of this lane (repeat for several).
    #[arg(long, value_name = "LANE")]
    pub lane: Vec<String>,
    /// Only executions in this public state (repeat for several).
    #[arg(long, value_name = "STATE")]
    pub state: Vec<PublicState>,
    /// At most this many rows, most recent first (0: all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
}

/// `ffwasm show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// The execution: `{fp:N}:<uuid>` as the other commands print it, or just the UUID.
    #[arg(value_name = "EXECUTION-ID")]
    pub execution: ExecutionKey,
}

/// `ffwasm guest …`.
#[derive(Debug, Subcommand)]
pub enum GuestCommand {
    /// Print the WIT of the world every guest implements (the built-in guest's).
    #[command(after_help = ENVIRONMENT)]
    Wit,
    /// Check a component against the world without running it; lists every mismatch.
    #[command(after_help = ENVIRONMENT)]
    Check {
        /// The component (.wasm).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
    },
    /// Check and precompile a component for this build, so that `ffwasm demo
    /// --guest-precompiled` starts without compiling it.
    #[command(after_help = ENVIRONMENT)]
    Compile {
        /// The component (.wasm).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        /// Where to write the precompiled artifact.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
}

/// ff-core's public execution states, as the database stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum PublicState {
    /// Eligible and waiting for a worker.
    Waiting,
    /// Waiting for a time (a retry's backoff, or a delayed start).
    Delayed,
    /// Blocked by a rate limit.
    RateLimited,
    /// Blocked on child executions.
    WaitingChildren,
    /// Leased to a worker.
    Active,
    /// Paused until a signal.
    Suspended,
    /// Resumed, waiting to be claimed again.
    Resumable,
    /// Finished successfully.
    Completed,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Past its deadline.
    Expired,
    /// Skipped.
    Skipped,
}

impl PublicState {
    /// The literal stored in `ff_exec_core.public_state`.
    pub fn literal(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// A probability: a number from 0 to 1.
fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be between 0 and 1".into()),
        Err(_) => Err("must be a number between 0 and 1 (e.g. 0.2)".into()),
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

    #[test]
    fn state_literals_are_the_stored_ones() {
        assert_eq!(PublicState::WaitingChildren.literal(), "waiting_children");
        assert_eq!(PublicState::Completed.literal(), "completed");
    }

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("1.5").is_err());
        assert!(probability("often").is_err());
    }
}
