//! Suspension, waitpoints and signals (the guest's `suspension` interface), and the waitpoint
//! keystore, which the host runs itself so that no secret reaches a guest
//! (`crate::storage::keystore`).

use std::time::Duration;

use ff_core::backend::{
    BackendTag, Handle, HandleKind, PendingWaitpoint, ResumeSignal, WaitpointHmac,
};
use ff_core::contracts::{
    AdditionalWaitpointBinding, DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalResult,
    ListPendingWaitpointsArgs, ListPendingWaitpointsResult, ListSuspendedPage,
    PendingWaitpointInfo, RotateWaitpointHmacSecretAllArgs, RotateWaitpointHmacSecretAllEntry,
    RotateWaitpointHmacSecretAllResult, RotateWaitpointHmacSecretOutcome, SeedOutcome,
    SeedWaitpointHmacSecretArgs, SuspendArgs, SuspendOutcome, SuspendOutcomeDetails,
    SuspendedExecutionEntry, WaitpointBinding,
};
use ff_core::engine_error::{ConflictKind, EngineError, ValidationKind};
use ff_core::handle_codec::{HandlePayload, encode};
use ff_core::partition::{Partition, PartitionKey};
use ff_core::types::{
    AttemptIndex, ExecutionId, LaneId, LeaseFence, SignalId, SuspensionId, TimestampMs,
    WaitpointId, WorkerInstanceId,
};

use crate::backend::SqliteBackend;
use crate::bindings::args::{handle_lease, validation};
use crate::bindings::{suspension, types};
use crate::error::OperationFailure;
use crate::operation::Tx;
use crate::storage::keystore::{self, Rotated, Seeded};

use super::inputs::{check_partition, wall_clock};

/// The lease of a worker handle, as the `suspension` interface takes it.
fn lease_of(handle: &Handle) -> Result<suspension::HandleLease, EngineError> {
    let (lease, _) = handle_lease(handle)?;
    Ok(suspension::HandleLease {
        execution_id: lease.execution_id,
        attempt_index: lease.attempt_index,
        attempt_id: lease.attempt_id,
        lease_id: lease.lease_id,
        lease_epoch: lease.lease_epoch,
    })
}

fn suspend_args(args: &SuspendArgs) -> Result<suspension::SuspendArgs, EngineError> {
    let condition_json = serde_json::to_string(&args.resume_condition).map_err(|error| {
        validation(
            ValidationKind::InvalidInput,
            format!("resume_condition serialize: {error}"),
        )
    })?;
    let waitpoints = args
        .waitpoints
        .iter()
        .map(|binding| match binding {
            WaitpointBinding::Fresh {
                waitpoint_id,
                waitpoint_key,
            } => Ok(suspension::WaitpointBinding::Fresh(
                suspension::FreshWaitpoint {
                    waitpoint_id: waitpoint_id.to_string(),
                    waitpoint_key: waitpoint_key.clone(),
                },
            )),
            WaitpointBinding::UsePending { waitpoint_id } => Ok(
                suspension::WaitpointBinding::UsePending(waitpoint_id.to_string()),
            ),
            _ => Err(validation(
                ValidationKind::InvalidInput,
                "unsupported WaitpointBinding variant",
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(suspension::SuspendArgs {
        suspension_id: args.suspension_id.to_string(),
        waitpoints,
        condition_json,
        reason_code: args.reason_code.as_wire_str().into(),
        requested_by: args.requested_by.as_wire_str().into(),
        timeout_at: args.timeout_at.map(|at| at.0),
        timeout_behavior: args.timeout_behavior.as_wire_str().into(),
        idempotency_key: args
            .idempotency_key
            .as_ref()
            .map(|key| key.as_str().to_owned()),
        now: args.now.0,
    })
}

fn malformed(op: &'static str, field: &'static str, text: &str) -> EngineError {
    OperationFailure::malformed(op, field, text).into()
}

fn waitpoint_id(op: &'static str, text: &str) -> Result<WaitpointId, EngineError> {
    WaitpointId::parse(text).map_err(|_| malformed(op, "waitpoint_id", text))
}

/// The guest's outcome as ff-core's, with the `Suspended` handle: the caller's payload, kind
/// `Suspended` (upstream's shape).
fn suspend_outcome(
    op: &'static str,
    outcome: suspension::SuspendOutcome,
    payload: &HandlePayload,
) -> Result<SuspendOutcome, EngineError> {
    let (details, suspended) = match outcome {
        suspension::SuspendOutcome::Suspended(details) => (details, true),
        suspension::SuspendOutcome::AlreadySatisfied(details) => (details, false),
    };
    let suspension_id = SuspensionId::parse(&details.suspension_id)
        .map_err(|_| malformed(op, "suspension_id", &details.suspension_id))?;
    let mut waitpoints = details.waitpoints.into_iter();
    let primary = waitpoints
        .next()
        .ok_or_else(|| malformed(op, "waitpoints", "empty"))?;
    let extras = waitpoints
        .map(|extra| {
            Ok(AdditionalWaitpointBinding::new(
                waitpoint_id(op, &extra.waitpoint_id)?,
                extra.waitpoint_key,
                WaitpointHmac::new(extra.token),
            ))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let details = SuspendOutcomeDetails::new(
        suspension_id,
        waitpoint_id(op, &primary.waitpoint_id)?,
        primary.waitpoint_key,
        WaitpointHmac::new(primary.token),
    )
    .with_additional_waitpoints(extras);
    Ok(if suspended {
        SuspendOutcome::Suspended {
            details,
            handle: Handle::new(
                BackendTag::Sqlite,
                HandleKind::Suspended,
                encode(BackendTag::Sqlite, payload),
            ),
        }
    } else {
        SuspendOutcome::AlreadySatisfied { details }
    })
}

pub(super) async fn suspend(
    backend: &SqliteBackend,
    handle: &Handle,
    args: SuspendArgs,
) -> Result<SuspendOutcome, EngineError> {
    const OP: &str = "suspend";
    let lease = lease_of(handle)?;
    let payload = ff_core::handle_codec::decode(&handle.opaque)?.payload;
    let guest_args = suspend_args(&args)?;
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_suspend(store, &lease, &guest_args)
        })
        .await?;
    suspend_outcome(OP, outcome, &payload)
}

pub(super) async fn suspend_by_triple(
    backend: &SqliteBackend,
    exec_id: ExecutionId,
    triple: LeaseFence,
    args: SuspendArgs,
) -> Result<SuspendOutcome, EngineError> {
    const OP: &str = "suspend_by_triple";
    let guest_args = suspend_args(&args)?;
    let execution_id = exec_id.to_string();
    let fence = types::LeaseFence {
        lease_id: triple.lease_id.to_string(),
        lease_epoch: triple.lease_epoch.0,
        attempt_id: triple.attempt_id.to_string(),
    };
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_suspend_by_triple(store, &execution_id, &fence, &guest_args)
        })
        .await?;
    let attempt_index = match &outcome {
        suspension::SuspendOutcome::Suspended(details)
        | suspension::SuspendOutcome::AlreadySatisfied(details) => details.attempt_index,
    };
    // Upstream's synthetic payload: the triple, the current attempt, no ttl, lane or instance.
    let payload = HandlePayload::new(
        exec_id,
        AttemptIndex::new(attempt_index),
        triple.attempt_id,
        triple.lease_id,
        triple.lease_epoch,
        0,
        LaneId::new(""),
        WorkerInstanceId::new(""),
    );
    suspend_outcome(OP, outcome, &payload)
}

pub(super) async fn create_waitpoint(
    backend: &SqliteBackend,
    handle: &Handle,
    waitpoint_key: &str,
    expires_in: Duration,
) -> Result<PendingWaitpoint, EngineError> {
    const OP: &str = "create_waitpoint";
    let lease = lease_of(handle)?;
    let key = waitpoint_key.to_owned();
    let now = wall_clock();
    let expires_at = now.saturating_add(i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX));
    let created = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_create_waitpoint(store, &lease, &key, expires_at, now)
        })
        .await?;
    Ok(PendingWaitpoint::new(
        waitpoint_id(OP, &created.waitpoint_id)?,
        WaitpointHmac::new(created.token),
    ))
}

pub(super) async fn observe_signals(
    backend: &SqliteBackend,
    handle: &Handle,
) -> Result<Vec<ResumeSignal>, EngineError> {
    const OP: &str = "observe_signals";
    let lease = lease_of(handle)?;
    let signals = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_observe_signals(store, &lease)
        })
        .await?;
    signals
        .into_iter()
        .map(|signal| {
            Ok(ResumeSignal {
                signal_id: SignalId::parse(&signal.signal_id)
                    .map_err(|_| malformed(OP, "signal_id", &signal.signal_id))?,
                signal_name: signal.signal_name,
                signal_category: signal.signal_category,
                source_type: signal.source_type,
                source_identity: signal.source_identity,
                correlation_id: signal.correlation_id,
                accepted_at: TimestampMs::from_millis(signal.accepted_at),
                payload: signal.payload,
            })
        })
        .collect()
}

/// The partition index a `PartitionKey` names (upstream ignores its family).
fn partition_index(partition: &PartitionKey) -> Result<u16, EngineError> {
    partition
        .parse()
        .map(|partition| partition.index)
        .map_err(|error| {
            validation(
                ValidationKind::InvalidInput,
                format!("partition_key: {error}"),
            )
        })
}

pub(super) async fn read_waitpoint_token(
    backend: &SqliteBackend,
    partition: PartitionKey,
    waitpoint_id: &WaitpointId,
) -> Result<Option<String>, EngineError> {
    let index = partition_index(&partition)?;
    let waitpoint_id = waitpoint_id.to_string();
    backend
        .run("read_waitpoint_token", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_read_waitpoint_token(store, index, &waitpoint_id)
        })
        .await
}

fn deliver_result(
    op: &'static str,
    outcome: suspension::DeliverSignalOutcome,
) -> Result<DeliverSignalResult, EngineError> {
    Ok(match outcome {
        suspension::DeliverSignalOutcome::Accepted(accepted) => DeliverSignalResult::Accepted {
            signal_id: SignalId::parse(&accepted.signal_id)
                .map_err(|_| malformed(op, "signal_id", &accepted.signal_id))?,
            effect: accepted.effect,
        },
        suspension::DeliverSignalOutcome::Duplicate(existing) => DeliverSignalResult::Duplicate {
            existing_signal_id: SignalId::parse(&existing)
                .map_err(|_| malformed(op, "signal_id", &existing))?,
        },
    })
}

pub(super) async fn deliver_signal(
    backend: &SqliteBackend,
    args: DeliverSignalArgs,
) -> Result<DeliverSignalResult, EngineError> {
    const OP: &str = "deliver_signal";
    backend.check_payload_fits_guest("payload", args.payload.as_deref())?;
    let guest_args = suspension::DeliverSignalArgs {
        execution_id: args.execution_id.to_string(),
        waitpoint_id: args.waitpoint_id.to_string(),
        signal_id: args.signal_id.to_string(),
        signal_name: args.signal_name,
        signal_category: args.signal_category,
        source_type: args.source_type,
        source_identity: args.source_identity,
        payload: args.payload,
        correlation_id: args.correlation_id,
        idempotency_key: args.idempotency_key,
        dedup_ttl_ms: args.dedup_ttl_ms,
        max_signals_per_execution: args.max_signals_per_execution,
        waitpoint_token: args.waitpoint_token.as_str().to_owned(),
        now: args.now.0,
    };
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_deliver_signal(store, &guest_args)
        })
        .await?;
    deliver_result(OP, outcome)
}

pub(super) async fn deliver_approval_signal(
    backend: &SqliteBackend,
    args: DeliverApprovalSignalArgs,
) -> Result<DeliverSignalResult, EngineError> {
    const OP: &str = "deliver_approval_signal";
    let guest_args = suspension::DeliverApprovalSignalArgs {
        execution_id: args.execution_id.to_string(),
        lane_id: args.lane_id.to_string(),
        waitpoint_id: args.waitpoint_id.to_string(),
        signal_name: args.signal_name,
        idempotency_suffix: args.idempotency_suffix,
        signal_dedup_ttl_ms: args.signal_dedup_ttl_ms,
        max_signals_per_execution: args.max_signals_per_execution,
        signal_id: SignalId::new().to_string(),
        now: wall_clock(),
    };
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_deliver_approval_signal(store, &guest_args)
        })
        .await?;
    deliver_result(OP, outcome)
}

pub(super) async fn list_pending_waitpoints(
    backend: &SqliteBackend,
    args: ListPendingWaitpointsArgs,
) -> Result<ListPendingWaitpointsResult, EngineError> {
    const OP: &str = "list_pending_waitpoints";
    let execution_id = args.execution_id.clone();
    let guest_args = suspension::ListPendingWaitpointsArgs {
        execution_id: args.execution_id.to_string(),
        after: args.after.map(|after| after.to_string()),
        limit: args.limit.unwrap_or(100).clamp(1, 1000),
    };
    let page = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_list_pending_waitpoints(store, &guest_args)
        })
        .await?;
    let entries = page
        .entries
        .into_iter()
        .map(|entry| {
            let mut info = PendingWaitpointInfo::new(
                waitpoint_id(OP, &entry.waitpoint_id)?,
                entry.waitpoint_key,
                entry.state,
                TimestampMs::from_millis(entry.created_at),
                execution_id.clone(),
                entry.token_kid,
                entry.token_fingerprint,
            );
            if let Some(at) = entry.activated_at {
                info = info.with_activated_at(TimestampMs::from_millis(at));
            }
            if let Some(at) = entry.expires_at {
                info = info.with_expires_at(TimestampMs::from_millis(at));
            }
            if !entry.required_signal_names.is_empty() {
                info = info.with_required_signal_names(entry.required_signal_names);
            }
            Ok(info)
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let mut result = ListPendingWaitpointsResult::new(entries);
    if let Some(cursor) = page.next_cursor {
        result = result.with_next_cursor(waitpoint_id(OP, &cursor)?);
    }
    Ok(result)
}

pub(super) async fn delay(
    backend: &SqliteBackend,
    handle: &Handle,
    delay_until: TimestampMs,
) -> Result<(), EngineError> {
    let lease = lease_of(handle)?;
    let now = wall_clock();
    backend
        .run("delay", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_delay(store, &lease, delay_until.0, now)
        })
        .await
}

pub(super) async fn cancel(
    backend: &SqliteBackend,
    handle: &Handle,
    reason: &str,
) -> Result<(), EngineError> {
    let lease = lease_of(handle)?;
    let reason = reason.to_owned();
    let now = wall_clock();
    backend
        .run("cancel", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_cancel(store, &lease, &reason, now)
        })
        .await
}

pub(super) async fn close_waitpoint(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
    waitpoint_id: &str,
    now: TimestampMs,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let execution_id = execution_id.to_string();
    let waitpoint_id = waitpoint_id.to_owned();
    backend
        .run("close_waitpoint", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_suspension().call_close_waitpoint(
                store,
                &execution_id,
                &waitpoint_id,
                now.0,
            )
        })
        .await
}

pub(super) async fn expire_suspension(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
    now: TimestampMs,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let execution_id = execution_id.to_string();
    backend
        .run("expire_suspension", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_expire_suspension(store, &execution_id, now.0)
        })
        .await
}

pub(super) async fn list_suspended(
    backend: &SqliteBackend,
    partition: PartitionKey,
    cursor: Option<ExecutionId>,
    limit: usize,
) -> Result<ListSuspendedPage, EngineError> {
    const OP: &str = "list_suspended";
    let index = partition_index(&partition)?;
    if limit == 0 {
        return Ok(ListSuspendedPage::new(Vec::new(), None));
    }
    let guest_args = suspension::ListSuspendedArgs {
        partition: index,
        after: cursor.map(|cursor| cursor.to_string()),
        limit: u32::try_from(limit).unwrap_or(u32::MAX).min(10_000),
    };
    let page = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_suspension()
                .call_list_suspended(store, &guest_args)
        })
        .await?;
    let parse =
        |text: &str| ExecutionId::parse(text).map_err(|_| malformed(OP, "execution_id", text));
    let entries = page
        .entries
        .into_iter()
        .map(|entry| {
            Ok(SuspendedExecutionEntry::new(
                parse(&entry.execution_id)?,
                entry.suspended_at,
                entry.reason,
            ))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let next = page.next_cursor.as_deref().map(parse).transpose()?;
    Ok(ListSuspendedPage::new(entries, next))
}

/// Upstream's kid rules: non-empty, no `:` (the token is `<kid>:<hex>`).
fn validate_kid(kid: &str) -> Result<(), EngineError> {
    if kid.is_empty() {
        return Err(validation(
            ValidationKind::InvalidInput,
            "kid must be non-empty",
        ));
    }
    if kid.contains(':') {
        return Err(validation(
            ValidationKind::InvalidInput,
            "kid must not contain ':' (token wire shape is `<kid>:<hex>`)",
        ));
    }
    Ok(())
}

/// Upstream's secret rule: exactly 64 hex characters (256 bits); the decoded bytes.
fn decode_secret(hex: &str) -> Result<Vec<u8>, EngineError> {
    let invalid = || {
        validation(
            ValidationKind::InvalidInput,
            "secret_hex must be 64 hex characters (256-bit secret)",
        )
    };
    if hex.len() != 64 {
        return Err(invalid());
    }
    (0..64)
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).map_err(|_| invalid()))
        .collect()
}

fn keystore_failure(op: &'static str, error: rusqlite::Error) -> EngineError {
    OperationFailure::Storage {
        op,
        detail: error.to_string(),
    }
    .into()
}

pub(super) async fn seed_waitpoint_hmac_secret(
    backend: &SqliteBackend,
    args: SeedWaitpointHmacSecretArgs,
) -> Result<SeedOutcome, EngineError> {
    const OP: &str = "seed_waitpoint_hmac_secret";
    validate_kid(&args.kid)?;
    let secret = decode_secret(&args.secret_hex)?;
    let kid = args.kid.clone();
    let now = wall_clock();
    let seeded = backend
        .run_host(OP, move |connection| {
            keystore::seed(connection, &kid, &secret, now).map_err(|e| keystore_failure(OP, e))
        })
        .await?;
    match seeded {
        Seeded::Installed => Ok(SeedOutcome::Seeded { kid: args.kid }),
        Seeded::AlreadyThere { same_secret } => Ok(SeedOutcome::AlreadySeeded {
            kid: args.kid,
            same_secret,
        }),
        Seeded::OtherKidActive(active) => Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "seed_waitpoint_hmac_secret: a different kid {active:?} is already active; \
                 use rotate_waitpoint_hmac_secret_all to change kid"
            ),
        )),
    }
}

pub(super) async fn rotate_waitpoint_hmac_secret_all(
    backend: &SqliteBackend,
    args: RotateWaitpointHmacSecretAllArgs,
) -> Result<RotateWaitpointHmacSecretAllResult, EngineError> {
    const OP: &str = "rotate_waitpoint_hmac_secret_all";
    validate_kid(&args.new_kid)?;
    let secret = decode_secret(&args.new_secret_hex)?;
    let kid = args.new_kid.clone();
    let grace_ms = args.grace_ms;
    let now = wall_clock();
    let rotated = backend
        .run_host(OP, move |connection| {
            keystore::rotate(connection, &kid, &secret, grace_ms, now)
                .map_err(|e| keystore_failure(OP, e))
        })
        .await?;
    let result = match rotated {
        Rotated::Installed { previous_kid } => Ok(RotateWaitpointHmacSecretOutcome::Rotated {
            previous_kid,
            new_kid: args.new_kid,
            gc_count: 0,
        }),
        Rotated::Noop => Ok(RotateWaitpointHmacSecretOutcome::Noop { kid: args.new_kid }),
        Rotated::Conflict => Err(EngineError::Conflict(ConflictKind::RotationConflict(
            format!(
                "kid {} already installed with a different secret",
                args.new_kid
            ),
        ))),
    };
    Ok(RotateWaitpointHmacSecretAllResult::new(vec![
        RotateWaitpointHmacSecretAllEntry::new(0, result),
    ]))
}
