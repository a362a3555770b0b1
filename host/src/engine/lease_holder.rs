//! The lease holder's operations: renewing, completing and failing an attempt, by typed
//! arguments or through the worker's `Handle`; the guest's `lease-holder` interface.

use ff_core::backend::{FailOutcome, FailureClass, FailureReason, Handle, LeaseRenewal};
use ff_core::contracts::{
    CompleteExecutionArgs, CompleteExecutionResult, FailExecutionArgs, FailExecutionResult,
    RenewLeaseArgs, RenewLeaseResult,
};
use ff_core::engine_error::EngineError;
use ff_core::state::PublicState;
use ff_core::types::{AttemptIndex, TimestampMs};

use crate::backend::SqliteBackend;
use crate::bindings::args;
use crate::bindings::lease_holder;
use crate::operation::Tx;

use super::inputs::wall_clock;

pub(super) async fn renew_lease(
    backend: &SqliteBackend,
    args: RenewLeaseArgs,
) -> Result<RenewLeaseResult, EngineError> {
    let guest_args = args::renew_lease(&args, wall_clock());
    let expires_at = backend
        .run("renew_lease", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_lease_holder()
                .call_renew_lease(store, &guest_args)
        })
        .await?;
    Ok(RenewLeaseResult::Renewed {
        expires_at: TimestampMs::from_millis(expires_at),
    })
}

pub(super) async fn complete_execution(
    backend: &SqliteBackend,
    args: CompleteExecutionArgs,
) -> Result<CompleteExecutionResult, EngineError> {
    backend.check_payload_fits_guest("result_payload", args.result_payload.as_deref())?;
    let guest_args = args::complete_execution(&args);
    backend
        .run("complete_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_lease_holder()
                .call_complete_execution(store, &guest_args)
        })
        .await?;
    Ok(CompleteExecutionResult::Completed {
        execution_id: args.execution_id,
        public_state: PublicState::Completed,
    })
}

pub(super) async fn fail_execution(
    backend: &SqliteBackend,
    args: FailExecutionArgs,
) -> Result<FailExecutionResult, EngineError> {
    let guest_args = args::fail_execution(&args, wall_clock())?;
    let outcome = backend
        .run("fail_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_lease_holder()
                .call_fail_execution(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        lease_holder::FailOutcome::RetryScheduled(retry) => FailExecutionResult::RetryScheduled {
            delay_until: TimestampMs::from_millis(retry.delay_until),
            next_attempt_index: AttemptIndex::new(retry.next_attempt_index),
        },
        lease_holder::FailOutcome::TerminalFailed => FailExecutionResult::TerminalFailed,
    })
}

pub(super) async fn renew(
    backend: &SqliteBackend,
    handle: &Handle,
) -> Result<LeaseRenewal, EngineError> {
    let (lease, _) = args::handle_lease(handle)?;
    let epoch = lease.lease_epoch;
    let now = wall_clock();
    let expires_at = backend
        .run("renew", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_lease_holder()
                .call_renew(store, &lease, now)
        })
        .await?;
    Ok(LeaseRenewal::new(
        u64::try_from(expires_at).unwrap_or(0),
        epoch,
    ))
}

pub(super) async fn progress(
    backend: &SqliteBackend,
    handle: &Handle,
    percent: Option<u8>,
    message: Option<String>,
) -> Result<(), EngineError> {
    let (lease, _) = args::handle_lease(handle)?;
    let now = wall_clock();
    backend
        .run("progress", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_lease_holder().call_progress(
                store,
                &lease,
                percent,
                message.as_deref(),
                now,
            )
        })
        .await
}

pub(super) async fn complete(
    backend: &SqliteBackend,
    handle: &Handle,
    payload: Option<Vec<u8>>,
) -> Result<(), EngineError> {
    let (lease, _) = args::handle_lease(handle)?;
    backend.check_payload_fits_guest("payload", payload.as_deref())?;
    let now = wall_clock();
    backend
        .run("complete", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_lease_holder().call_complete(
                store,
                &lease,
                payload.as_deref(),
                now,
            )
        })
        .await
}

pub(super) async fn fail(
    backend: &SqliteBackend,
    handle: &Handle,
    reason: FailureReason,
    classification: FailureClass,
) -> Result<FailOutcome, EngineError> {
    let (lease, _) = args::handle_lease(handle)?;
    let class = args::failure_class(classification);
    let now = wall_clock();
    let outcome = backend
        .run("fail", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_lease_holder().call_fail(
                store,
                &lease,
                &reason.message,
                class,
                now,
            )
        })
        .await?;
    Ok(match outcome {
        lease_holder::FailOutcome::RetryScheduled(retry) => FailOutcome::RetryScheduled {
            delay_until: TimestampMs::from_millis(retry.delay_until),
        },
        lease_holder::FailOutcome::TerminalFailed => FailOutcome::TerminalFailed,
    })
}
