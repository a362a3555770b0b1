//! The worker registry: `register_worker`, `heartbeat_worker`, `mark_worker_dead`,
//! `list_workers`; the guest's `workers` interface. The expiry sweep
//! ([`SqliteBackend::sweep_expired_workers`]) lives with the other timer passes in
//! [`crate::backend`].

use ff_core::contracts::{
    HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, ListWorkersResult,
    MarkWorkerDeadArgs, MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome,
    WorkerInfo,
};
use ff_core::engine_error::EngineError;
use ff_core::types::{LaneId, Namespace, TimestampMs, WorkerId, WorkerInstanceId};

use crate::backend::SqliteBackend;
use crate::bindings::workers;
use crate::operation::Tx;

use super::inputs::wall_clock;

/// `list_workers`' page size when the caller gives none (upstream's default).
const DEFAULT_LIST_LIMIT: u32 = 1000;

pub(super) async fn register_worker(
    backend: &SqliteBackend,
    args: RegisterWorkerArgs,
) -> Result<RegisterWorkerOutcome, EngineError> {
    let guest_args = workers::RegisterWorkerArgs {
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        lanes: args.lanes.iter().map(ToString::to_string).collect(),
        capabilities: args.capabilities.into_iter().collect(),
        liveness_ttl_ms: args.liveness_ttl_ms,
        namespace: args.namespace.to_string(),
        now: args.now.0,
    };
    let outcome = backend
        .run("register_worker", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_workers()
                .call_register_worker(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        workers::RegisterWorkerOutcome::Registered => RegisterWorkerOutcome::Registered,
        workers::RegisterWorkerOutcome::Refreshed => RegisterWorkerOutcome::Refreshed,
    })
}

pub(super) async fn heartbeat_worker(
    backend: &SqliteBackend,
    args: HeartbeatWorkerArgs,
) -> Result<HeartbeatWorkerOutcome, EngineError> {
    let guest_args = workers::HeartbeatWorkerArgs {
        worker_instance_id: args.worker_instance_id.to_string(),
        namespace: args.namespace.to_string(),
        now: args.now.0,
    };
    let outcome = backend
        .run("heartbeat_worker", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_workers()
                .call_heartbeat_worker(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        workers::HeartbeatWorkerOutcome::Refreshed(next_expiry_ms) => {
            HeartbeatWorkerOutcome::Refreshed {
                next_expiry_ms: TimestampMs::from_millis(next_expiry_ms),
            }
        }
        workers::HeartbeatWorkerOutcome::NotRegistered => HeartbeatWorkerOutcome::NotRegistered,
    })
}

pub(super) async fn mark_worker_dead(
    backend: &SqliteBackend,
    args: MarkWorkerDeadArgs,
) -> Result<MarkWorkerDeadOutcome, EngineError> {
    let guest_args = workers::MarkWorkerDeadArgs {
        worker_instance_id: args.worker_instance_id.to_string(),
        namespace: args.namespace.to_string(),
        reason: args.reason,
        now: args.now.0,
    };
    let outcome = backend
        .run("mark_worker_dead", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_workers()
                .call_mark_worker_dead(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        workers::MarkWorkerDeadOutcome::Marked => MarkWorkerDeadOutcome::Marked,
        workers::MarkWorkerDeadOutcome::NotRegistered => MarkWorkerDeadOutcome::NotRegistered,
    })
}

pub(super) async fn list_workers(
    backend: &SqliteBackend,
    args: ListWorkersArgs,
) -> Result<ListWorkersResult, EngineError> {
    // Upstream's answer: the cursor is an instance id, which is unique only within a namespace.
    let Some(namespace) = args.namespace else {
        return Err(EngineError::Unavailable {
            op: "list_workers (cross-namespace on SQLite — pass namespace explicitly)",
        });
    };
    let guest_args = workers::ListWorkersArgs {
        namespace: namespace.to_string(),
        after: args.after.map(|after| after.to_string()),
        limit: args.limit.unwrap_or(DEFAULT_LIST_LIMIT),
        now: wall_clock(),
    };
    let page = backend
        .run("list_workers", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_workers()
                .call_list_workers(store, &guest_args)
        })
        .await?;
    let entries = page
        .entries
        .into_iter()
        .map(|entry| {
            WorkerInfo::new(
                WorkerId::new(entry.worker_id),
                WorkerInstanceId::new(entry.worker_instance_id),
                Namespace::new(entry.namespace),
                entry.lanes.into_iter().map(LaneId::new).collect(),
                entry.capabilities.into_iter().collect(),
                TimestampMs::from_millis(entry.last_heartbeat_ms),
                entry.liveness_ttl_ms,
                TimestampMs::from_millis(entry.registered_at_ms),
            )
        })
        .collect();
    Ok(ListWorkersResult::new(
        entries,
        page.cursor.map(WorkerInstanceId::new),
    ))
}
