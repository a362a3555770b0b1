//! Routing: the scheduler-side claim path (`scan_eligible_executions`, `block_route`,
//! `unblock_execution`) and the backend-routed `claim_for_worker`; the guest's `routing`
//! interface.

use ff_core::contracts::{
    BlockRouteArgs, BlockRouteOutcome, ClaimForWorkerArgs, ClaimForWorkerOutcome, ClaimGrant,
    ScanEligibleArgs,
};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::types::{ExecutionId, LaneId, TimestampMs};

use crate::backend::SqliteBackend;
use crate::bindings::args::validation;
use crate::bindings::results;
use crate::bindings::routing;
use crate::operation::Tx;

use super::inputs::{check_partition, wall_clock};

pub(super) async fn scan_eligible_executions(
    backend: &SqliteBackend,
    args: ScanEligibleArgs,
) -> Result<Vec<ExecutionId>, EngineError> {
    const OP: &str = "scan_eligible_executions";
    if !matches!(
        args.partition.family,
        PartitionFamily::Execution | PartitionFamily::Flow
    ) {
        return Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "scan_eligible_executions: {:?} partitions hold no executions",
                args.partition.family
            ),
        ));
    }
    let guest_args = routing::ScanEligibleArgs {
        lane_id: args.lane_id.to_string(),
        partition: args.partition.index,
        limit: args.limit,
        now: wall_clock(),
    };
    let ids = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_routing()
                .call_scan_eligible_executions(store, &guest_args)
        })
        .await?;
    ids.iter().map(|id| results::execution_id(OP, id)).collect()
}

pub(super) async fn block_route(
    backend: &SqliteBackend,
    args: BlockRouteArgs,
) -> Result<BlockRouteOutcome, EngineError> {
    check_partition(&args.partition, &args.execution_id)?;
    let guest_args = routing::BlockRouteArgs {
        execution_id: args.execution_id.to_string(),
        lane_id: args.lane_id.to_string(),
        reason_code: args.reason_code,
        reason_detail: args.reason_detail,
        now: args.now.0,
    };
    let outcome = backend
        .run("block_route", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_routing()
                .call_block_route(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        routing::BlockRouteOutcome::Blocked => BlockRouteOutcome::Blocked {
            execution_id: args.execution_id,
        },
        routing::BlockRouteOutcome::Rejected(message) => BlockRouteOutcome::LuaRejected { message },
    })
}

pub(super) async fn unblock_execution(
    backend: &SqliteBackend,
    partition: Partition,
    lane_id: &LaneId,
    execution_id: &ExecutionId,
    expected_blocking_reason: &str,
    now: TimestampMs,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let guest_args = routing::UnblockExecutionArgs {
        execution_id: execution_id.to_string(),
        lane_id: lane_id.to_string(),
        expected_blocking_reason: expected_blocking_reason.to_owned(),
        now: now.0,
    };
    backend
        .run("unblock_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_routing()
                .call_unblock_execution(store, &guest_args)
        })
        .await
}

pub(super) async fn claim_for_worker(
    backend: &SqliteBackend,
    args: ClaimForWorkerArgs,
) -> Result<ClaimForWorkerOutcome, EngineError> {
    const OP: &str = "claim_for_worker";
    let guest_args = routing::ClaimForWorkerArgs {
        lane_id: args.lane_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        worker_capabilities: args.worker_capabilities.into_iter().collect(),
        grant_ttl_ms: args.grant_ttl_ms,
        now: wall_clock(),
    };
    let grant = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_routing()
                .call_claim_for_worker(store, &guest_args)
        })
        .await?;
    let Some(grant) = grant else {
        return Ok(ClaimForWorkerOutcome::NoWork);
    };
    let execution_id = results::execution_id(OP, &grant.execution_id)?;
    let partition = Partition {
        family: PartitionFamily::Execution,
        index: execution_id.partition(),
    };
    Ok(ClaimForWorkerOutcome::Granted(ClaimGrant::new(
        execution_id,
        PartitionKey::from(&partition),
        grant.grant_key,
        u64::try_from(grant.expires_at_ms).unwrap_or(0),
    )))
}
