//! `ffwasm priority <execution> <priority>`: change a waiting execution's priority through the
//! backend (`change_priority`: runnable and eligible executions only; clamped to 0..=9000).

use anyhow::Context;
use clap::Args;
use ff_core::contracts::ChangePriorityArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{ExecutionId, LaneId, TimestampMs};

use crate::database::{self, DatabaseArg};
use crate::output;

/// `ffwasm priority`.
#[derive(Debug, Args)]
pub struct PriorityArgs {
    /// The execution, `{fp:N}:<uuid>`.
    #[arg(value_parser = parse_execution_id)]
    pub execution: ExecutionId,
    /// The new priority (higher is claimed first; stored clamped to 0..=9000).
    #[arg(allow_negative_numbers = true)]
    pub priority: i32,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// An execution id as ff-core parses it, with its error as clap's message.
pub fn parse_execution_id(text: &str) -> Result<ExecutionId, String> {
    ExecutionId::parse(text.trim()).map_err(|error| format!("{error} (expected {{fp:N}}:<uuid>)"))
}

/// Change the priority and print the stored value.
pub async fn run(args: PriorityArgs) -> anyhow::Result<()> {
    let backend = database::open_backend(&args.database.db).await?;
    backend
        .change_priority(ChangePriorityArgs {
            execution_id: args.execution.clone(),
            new_priority: args.priority,
            // Not used by this backend (the execution's own lane applies).
            lane_id: LaneId::new("default"),
            now: TimestampMs::now(),
        })
        .await
        .with_context(|| format!("cannot change the priority of {}", args.execution))?;
    let partition = ff_core::partition::Partition {
        family: ff_core::partition::PartitionFamily::Flow,
        index: args.execution.partition(),
    };
    let stored = backend
        .read_exec_core_fields(partition, &args.execution, &["priority"])
        .await?
        .remove("priority")
        .flatten()
        .unwrap_or_default();
    output::println(&format!("{}: priority {stored}", args.execution))
}
