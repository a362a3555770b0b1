//! Operator operations and low-level reads: `change_priority`, `replay_execution`,
//! `read_exec_core_fields`, `list_lanes`, `list_executions`, `server_time_ms` (the database's
//! clock), and the scanner hooks `expire_execution`, `reconcile_execution_index`,
//! `trim_retention`; the guest's `operator` interface.

use std::collections::HashMap;

use ff_core::backend::ScannerFilter;
use ff_core::contracts::{
    ChangePriorityArgs, ChangePriorityResult, ListExecutionsPage, ListLanesPage,
    ReplayExecutionArgs, ReplayExecutionResult,
};
use ff_core::engine_backend::{ExpirePhase, ReconcileCounts};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::types::{ExecutionId, LaneId, TimestampMs};

use super::inputs::{check_partition, wall_clock};
use crate::bindings::results::public_state;

use crate::backend::SqliteBackend;
use crate::bindings::args::validation;
use crate::bindings::operator;
use crate::error::OperationFailure;
use crate::operation::Tx;

pub(super) async fn change_priority(
    backend: &SqliteBackend,
    args: ChangePriorityArgs,
) -> Result<ChangePriorityResult, EngineError> {
    let guest_args = operator::ChangePriorityArgs {
        execution_id: args.execution_id.to_string(),
        new_priority: args.new_priority,
        now: args.now.0,
    };
    backend
        .run("change_priority", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_change_priority(store, &guest_args)
        })
        .await?;
    Ok(ChangePriorityResult::Changed {
        execution_id: args.execution_id,
    })
}

pub(super) async fn read_exec_core_fields(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
    fields: &[&str],
) -> Result<HashMap<String, Option<String>>, EngineError> {
    if fields.is_empty() {
        return Ok(HashMap::new());
    }
    if partition.index != execution_id.partition() {
        return Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "read_exec_core_fields: partition mismatch (arg={}, eid={})",
                partition.index,
                execution_id.partition()
            ),
        ));
    }
    let id = execution_id.to_string();
    let names: Vec<String> = fields.iter().map(|name| (*name).to_owned()).collect();
    let asked = names.clone();
    let values = backend
        .run("read_exec_core_fields", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_read_exec_core_fields(store, &id, &asked)
        })
        .await?;
    Ok(names.into_iter().zip(values).collect())
}

pub(super) async fn list_lanes(
    backend: &SqliteBackend,
    cursor: Option<LaneId>,
    limit: usize,
) -> Result<ListLanesPage, EngineError> {
    let after = cursor.map(|lane| lane.to_string());
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let page = backend
        .run("list_lanes", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_list_lanes(store, after.as_deref(), limit)
        })
        .await?;
    let lane = |text: String| {
        LaneId::try_new(text.clone()).map_err(|_| {
            EngineError::from(OperationFailure::malformed("list_lanes", "lane_id", &text))
        })
    };
    Ok(ListLanesPage::new(
        page.lanes.into_iter().map(lane).collect::<Result<_, _>>()?,
        page.next_cursor.map(lane).transpose()?,
    ))
}

pub(super) async fn server_time_ms(backend: &SqliteBackend) -> Result<u64, EngineError> {
    let now = backend
        .run("server_time_ms", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_server_time_ms(store)
        })
        .await?;
    // The guest refuses a negative clock.
    Ok(u64::try_from(now).unwrap_or(0))
}

pub(super) async fn replay_execution(
    backend: &SqliteBackend,
    args: ReplayExecutionArgs,
) -> Result<ReplayExecutionResult, EngineError> {
    let id = args.execution_id.to_string();
    let now = args.now.0;
    let state = backend
        .run("replay_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_replay_execution(store, &id, now)
        })
        .await?;
    Ok(ReplayExecutionResult::Replayed {
        public_state: public_state(state),
    })
}

/// The most executions one `list_executions` page holds (Postgres' and Valkey's cap).
pub const MAX_EXECUTION_PAGE: usize = 1000;

pub(super) async fn list_executions(
    backend: &SqliteBackend,
    partition: PartitionKey,
    cursor: Option<ExecutionId>,
    limit: usize,
) -> Result<ListExecutionsPage, EngineError> {
    let parsed = partition.parse().map_err(|error| {
        validation(
            ValidationKind::InvalidInput,
            format!("list_executions: partition: '{partition}': {error}"),
        )
    })?;
    let index = execution_partition("list_executions", &parsed)?;
    let after = cursor.map(|id| id.to_string());
    // At most 1000, so the conversion cannot fail.
    let limit = u32::try_from(limit.min(MAX_EXECUTION_PAGE)).unwrap_or(0);
    let page = backend
        .run("list_executions", Tx::Read, move |guest, store| {
            guest.flowfabric_backend_operator().call_list_executions(
                store,
                index,
                after.as_deref(),
                limit,
            )
        })
        .await?;
    let id = |text: String| {
        ExecutionId::parse(&text).map_err(|_| {
            EngineError::from(OperationFailure::malformed(
                "list_executions",
                "execution_id",
                &text,
            ))
        })
    };
    Ok(ListExecutionsPage::new(
        page.executions
            .into_iter()
            .map(id)
            .collect::<Result<_, _>>()?,
        page.next_cursor.map(id).transpose()?,
    ))
}

/// The partition index of an execution-holding (`Flow`/`Execution` family) partition;
/// `Validation { InvalidInput }` for the budget and quota families.
fn execution_partition(op: &str, partition: &Partition) -> Result<u16, EngineError> {
    if matches!(
        partition.family,
        PartitionFamily::Flow | PartitionFamily::Execution
    ) {
        Ok(partition.index)
    } else {
        Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "{op}: partition {partition:?} holds no executions (flow/execution family only)"
            ),
        ))
    }
}

pub(super) async fn expire_execution(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
    phase: ExpirePhase,
    now: TimestampMs,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let id = execution_id.to_string();
    let phase = match phase {
        ExpirePhase::AttemptTimeout => operator::ExpirePhase::AttemptTimeout,
        ExpirePhase::ExecutionDeadline => operator::ExpirePhase::ExecutionDeadline,
    };
    backend
        .run("expire_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_expire_execution(store, &id, phase, now.0)
        })
        .await
}

/// ff-core's scanner filter as the guest's.
fn execution_filter(filter: &ScannerFilter) -> operator::ExecutionFilter {
    operator::ExecutionFilter {
        namespace: filter
            .namespace
            .as_ref()
            .map(|namespace| namespace.to_string()),
        tag: filter.instance_tag.clone(),
    }
}

pub(super) async fn reconcile_execution_index(
    backend: &SqliteBackend,
    partition: Partition,
    lanes: &[LaneId],
    filter: &ScannerFilter,
) -> Result<ReconcileCounts, EngineError> {
    let index = execution_partition("reconcile_execution_index", &partition)?;
    let lanes: Vec<String> = lanes.iter().map(|lane| lane.to_string()).collect();
    let filter = execution_filter(filter);
    let now = wall_clock();
    let counts = backend
        .run(
            "reconcile_execution_index",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_operator()
                    .call_reconcile_execution_index(store, index, &lanes, &filter, now)
            },
        )
        .await?;
    Ok(ReconcileCounts {
        processed: counts.processed,
        errors: counts.errors,
    })
}

/// `trim_retention`'s arguments (ff-core passes them separately).
pub(super) struct TrimRetention<'a> {
    pub partition: Partition,
    pub lane_id: &'a LaneId,
    pub retention_ms: u64,
    pub now: TimestampMs,
    pub batch_size: u32,
    pub filter: &'a ScannerFilter,
}

pub(super) async fn trim_retention(
    backend: &SqliteBackend,
    request: TrimRetention<'_>,
) -> Result<u32, EngineError> {
    let args = operator::TrimRetentionArgs {
        partition: execution_partition("trim_retention", &request.partition)?,
        lane_id: request.lane_id.to_string(),
        retention_ms: request.retention_ms,
        now: request.now.0,
        batch_size: request.batch_size,
        filter: execution_filter(request.filter),
    };
    backend
        .run("trim_retention", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_trim_retention(store, &args)
        })
        .await
}
