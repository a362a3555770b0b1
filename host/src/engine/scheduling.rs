//! Scheduling: creating executions, claim grants, claims (by id, by grant, by the lane
//! scanner) and promoting delayed executions; the guest's `scheduling` interface.

use ff_core::backend::{CapabilitySet, ClaimPolicy, Handle, HandleKind};
use ff_core::contracts::{
    ClaimExecutionArgs, ClaimExecutionResult, ClaimGrantOutcome, ClaimedExecution,
    CreateExecutionArgs, CreateExecutionResult, IssueClaimGrantArgs, IssueClaimGrantOutcome,
    IssueGrantAndClaimArgs,
};
use ff_core::engine_error::EngineError;
use ff_core::partition::Partition;
use ff_core::types::{AttemptIndex, ExecutionId, LaneId, LeaseEpoch, TimestampMs};

use crate::backend::SqliteBackend;
use crate::bindings::args;
use crate::bindings::results::{self, Lease};
use crate::bindings::scheduling;
use crate::operation::Tx;

use super::inputs::{check_partition, fresh_ids, wall_clock};

pub(super) async fn create_execution(
    backend: &SqliteBackend,
    args: CreateExecutionArgs,
) -> Result<CreateExecutionResult, EngineError> {
    backend.check_payload_fits_guest("input_payload", Some(&args.input_payload))?;
    let guest_args = args::create_execution(&args)?;
    let outcome = backend
        .run("create_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_scheduling()
                .call_create_execution(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        scheduling::CreateExecutionOutcome::Created(state) => CreateExecutionResult::Created {
            execution_id: args.execution_id,
            public_state: results::public_state(state),
        },
        scheduling::CreateExecutionOutcome::Duplicate(existing) => {
            CreateExecutionResult::Duplicate {
                execution_id: results::execution_id("create_execution", &existing)?,
            }
        }
    })
}

pub(super) async fn issue_claim_grant(
    backend: &SqliteBackend,
    args: IssueClaimGrantArgs,
) -> Result<IssueClaimGrantOutcome, EngineError> {
    check_partition(&args.partition, &args.execution_id)?;
    let guest_args = args::issue_claim_grant(&args);
    backend
        .run("issue_claim_grant", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_scheduling()
                .call_issue_claim_grant(store, &guest_args)
        })
        .await?;
    Ok(IssueClaimGrantOutcome::Granted {
        execution_id: args.execution_id,
    })
}

pub(super) async fn claim_execution(
    backend: &SqliteBackend,
    args: ClaimExecutionArgs,
) -> Result<ClaimExecutionResult, EngineError> {
    const OP: &str = "claim_execution";
    let guest_args = args::claim_execution(&args);
    let lease = backend
        .run_checked(
            OP,
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_scheduling()
                    .call_claim_execution(store, &guest_args)
            },
            |claimed| Lease::parse(OP, claimed),
        )
        .await?;
    let handle = lease.handle(
        HandleKind::Fresh,
        args.lease_ttl_ms,
        &args.lane_id,
        &args.worker_instance_id,
    );
    Ok(ClaimExecutionResult::Claimed(ClaimedExecution::new(
        lease.execution_id,
        lease.lease_id,
        lease.lease_epoch,
        lease.attempt_index,
        lease.attempt_id,
        lease.attempt_type,
        lease.lease_expires_at,
        handle,
    )))
}

pub(super) async fn issue_grant_and_claim(
    backend: &SqliteBackend,
    args: IssueGrantAndClaimArgs,
) -> Result<ClaimGrantOutcome, EngineError> {
    const OP: &str = "issue_grant_and_claim";
    let (lease_id, attempt_id) = fresh_ids();
    let guest_args = scheduling::IssueGrantAndClaimArgs {
        execution_id: args.execution_id.to_string(),
        lane_id: args.lane_id.to_string(),
        lease_duration_ms: args.lease_duration_ms,
        lease_id: lease_id.to_string(),
        attempt_id: attempt_id.to_string(),
        now: wall_clock(),
    };
    backend
        .run_checked(
            OP,
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_scheduling()
                    .call_issue_grant_and_claim(store, &guest_args)
            },
            |outcome| {
                Ok(ClaimGrantOutcome::new(
                    results::lease_id(OP, &outcome.lease_id)?,
                    LeaseEpoch::new(outcome.lease_epoch),
                    AttemptIndex::new(outcome.attempt_index),
                ))
            },
        )
        .await
}

pub(super) async fn claim(
    backend: &SqliteBackend,
    lane: &LaneId,
    capabilities: &CapabilitySet,
    policy: ClaimPolicy,
) -> Result<Option<Handle>, EngineError> {
    const OP: &str = "claim";
    let (lease_id, attempt_id) = fresh_ids();
    let guest_args = scheduling::ClaimArgs {
        lane_id: lane.to_string(),
        capabilities: capabilities.tokens.clone(),
        worker_id: policy.worker_id.to_string(),
        worker_instance_id: policy.worker_instance_id.to_string(),
        lease_ttl_ms: u64::from(policy.lease_ttl_ms),
        lease_id: lease_id.to_string(),
        attempt_id: attempt_id.to_string(),
        now: wall_clock(),
    };
    let lease = backend
        .run_checked(
            OP,
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_scheduling()
                    .call_claim(store, &guest_args)
            },
            |claimed| claimed.map(|claimed| Lease::parse(OP, claimed)).transpose(),
        )
        .await?;
    Ok(lease.map(|lease| {
        lease.handle(
            HandleKind::Fresh,
            u64::from(policy.lease_ttl_ms),
            lane,
            &policy.worker_instance_id,
        )
    }))
}

pub(super) async fn promote_delayed(
    backend: &SqliteBackend,
    partition: Partition,
    _lane: &LaneId,
    execution_id: &ExecutionId,
    now_ms: TimestampMs,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let id = execution_id.to_string();
    backend
        .run("promote_delayed", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_scheduling()
                .call_promote_delayed(store, &id, now_ms.0)
        })
        .await
}
