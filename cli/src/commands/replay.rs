//! `ffwasm replay <execution>`: lift a finished execution (completed, failed, cancelled,
//! expired or skipped) back to waiting through the backend (`replay_execution`; at most the
//! policy's `max_replay_count` times, default 10).

use anyhow::Context;
use clap::Args;
use ff_core::contracts::{ReplayExecutionArgs, ReplayExecutionResult};
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{ExecutionId, TimestampMs};

use super::priority::parse_execution_id;
use crate::database::{self, DatabaseArg};
use crate::output;

/// `ffwasm replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The execution, `{fp:N}:<uuid>`.
    #[arg(value_parser = parse_execution_id)]
    pub execution: ExecutionId,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// Replay the execution and print its new state.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let backend = database::open_backend(&args.database.db).await?;
    let ReplayExecutionResult::Replayed { public_state } = backend
        .replay_execution(ReplayExecutionArgs {
            execution_id: args.execution.clone(),
            now: TimestampMs::now(),
        })
        .await
        .with_context(|| format!("cannot replay {}", args.execution))?;
    output::println(&format!(
        "{}: replayed, now {}",
        args.execution,
        public_state.as_str()
    ))
}
