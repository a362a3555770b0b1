//! Operators and recovery: cancel, revoke, resume, lease expiry and reclaim; the guest's
//! `recovery` interface.

use ff_core::backend::{Handle, HandleKind, ResumeToken};
use ff_core::contracts::{
    CancelExecutionArgs, CancelExecutionResult, ClaimResumedExecutionArgs,
    ClaimResumedExecutionResult, ClaimedResumedExecution, ExpiredLeaseInfo, ExpiredLeasesCursor,
    IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ListExpiredLeasesArgs,
    ListExpiredLeasesResult, ReclaimExecutionArgs, ReclaimExecutionOutcome, ReclaimGrant,
    ResumeExecutionArgs, ResumeExecutionResult, RevokeLeaseArgs, RevokeLeaseResult,
};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptId, AttemptIndex, ExecutionId, LaneId, LeaseEpoch, TimestampMs, WorkerInstanceId,
};

use crate::backend::SqliteBackend;
use crate::bindings::args::{self, validation};
use crate::bindings::recovery;
use crate::bindings::results::{self, Lease};
use crate::operation::Tx;

use super::inputs::{check_partition, fresh_ids, wall_clock};

/// The largest page `list_expired_leases` returns (ff-core's `LIST_EXPIRED_LEASES_MAX_LIMIT`).
const LIST_EXPIRED_LEASES_MAX_LIMIT: u32 = 10_000;
/// The page size when the caller gives none (ff-core's `LIST_EXPIRED_LEASES_DEFAULT_LIMIT`).
const LIST_EXPIRED_LEASES_DEFAULT_LIMIT: u32 = 1_000;

pub(super) async fn cancel_execution(
    backend: &SqliteBackend,
    args: CancelExecutionArgs,
) -> Result<CancelExecutionResult, EngineError> {
    let guest_args = args::cancel_execution(&args);
    backend
        .run("cancel_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_recovery()
                .call_cancel_execution(store, &guest_args)
        })
        .await?;
    Ok(CancelExecutionResult::Cancelled {
        execution_id: args.execution_id,
        public_state: PublicState::Cancelled,
    })
}

pub(super) async fn revoke_lease(
    backend: &SqliteBackend,
    args: RevokeLeaseArgs,
) -> Result<RevokeLeaseResult, EngineError> {
    let guest_args = args::revoke_lease(&args, wall_clock());
    let outcome = backend
        .run("revoke_lease", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_recovery()
                .call_revoke_lease(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        recovery::RevokeLeaseOutcome::Revoked(revoked) => RevokeLeaseResult::Revoked {
            lease_id: revoked.lease_id,
            lease_epoch: revoked.lease_epoch.to_string(),
        },
        recovery::RevokeLeaseOutcome::AlreadySatisfied(reason) => {
            RevokeLeaseResult::AlreadySatisfied { reason }
        }
    })
}

pub(super) async fn claim_resumed_execution(
    backend: &SqliteBackend,
    args: ClaimResumedExecutionArgs,
) -> Result<ClaimResumedExecutionResult, EngineError> {
    const OP: &str = "claim_resumed_execution";
    let guest_args = args::claim_resumed_execution(&args, AttemptId::new().to_string());
    let lease = backend
        .run_checked(
            OP,
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_recovery()
                    .call_claim_resumed_execution(store, &guest_args)
            },
            |claimed| Lease::parse(OP, claimed),
        )
        .await?;
    let handle = lease.handle(
        HandleKind::Resumed,
        args.lease_ttl_ms,
        &args.lane_id,
        &args.worker_instance_id,
    );
    Ok(ClaimResumedExecutionResult::Claimed(
        ClaimedResumedExecution::new(
            lease.execution_id,
            lease.lease_id,
            lease.lease_epoch,
            lease.attempt_index,
            lease.attempt_id,
            lease.lease_expires_at,
            handle,
        ),
    ))
}

pub(super) async fn resume_execution(
    backend: &SqliteBackend,
    args: ResumeExecutionArgs,
) -> Result<ResumeExecutionResult, EngineError> {
    let guest_args = args::resume_execution(&args, wall_clock());
    let state = backend
        .run("resume_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_recovery()
                .call_resume_execution(store, &guest_args)
        })
        .await?;
    Ok(ResumeExecutionResult::Resumed {
        public_state: results::public_state(state),
    })
}

pub(super) async fn mark_lease_expired_if_due(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
) -> Result<(), EngineError> {
    check_partition(&partition, execution_id)?;
    let id = execution_id.to_string();
    let now = wall_clock();
    backend
        .run(
            "mark_lease_expired_if_due",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_recovery()
                    .call_mark_lease_expired_if_due(store, &id, now)
            },
        )
        .await
}

pub(super) async fn list_expired_leases(
    backend: &SqliteBackend,
    args: ListExpiredLeasesArgs,
) -> Result<ListExpiredLeasesResult, EngineError> {
    const OP: &str = "list_expired_leases";
    let limit = args.limit.unwrap_or(LIST_EXPIRED_LEASES_DEFAULT_LIMIT);
    if limit == 0 {
        return Err(validation(
            ValidationKind::InvalidInput,
            "list_expired_leases: limit must be positive",
        ));
    }
    let limit = limit.min(LIST_EXPIRED_LEASES_MAX_LIMIT);
    let guest_args = recovery::ListExpiredLeasesArgs {
        as_of: args.as_of.0,
        after: args
            .after
            .as_ref()
            .map(|cursor| recovery::ExpiredLeaseCursor {
                expires_at: cursor.expires_at_ms.0,
                execution_id: cursor.execution_id.to_string(),
            }),
        limit,
        namespace: args.namespace.as_ref().map(ToString::to_string),
    };
    let rows = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_recovery()
                .call_list_expired_leases(store, &guest_args)
        })
        .await?;
    let entries = rows
        .into_iter()
        .map(|row| {
            Ok(ExpiredLeaseInfo::new(
                results::execution_id(OP, &row.execution_id)?,
                results::lease_id(OP, &row.lease_id)?,
                LeaseEpoch::new(row.lease_epoch),
                WorkerInstanceId::new(row.worker_instance_id),
                TimestampMs::from_millis(row.expires_at),
                AttemptIndex::new(row.attempt_index),
            ))
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let full_page = entries.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let cursor = entries
        .last()
        .filter(|_| full_page)
        .map(|last| ExpiredLeasesCursor::new(last.expires_at_ms, last.execution_id.clone()));
    Ok(ListExpiredLeasesResult::new(entries, cursor))
}

pub(super) async fn issue_reclaim_grant(
    backend: &SqliteBackend,
    args: IssueReclaimGrantArgs,
) -> Result<IssueReclaimGrantOutcome, EngineError> {
    let guest_args = args::issue_reclaim_grant(&args);
    let outcome = backend
        .run("issue_reclaim_grant", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_recovery()
                .call_issue_reclaim_grant(store, &guest_args)
        })
        .await?;
    let execution_id = args.execution_id;
    Ok(match outcome {
        recovery::IssueReclaimGrantOutcome::Granted(grant) => {
            let partition = Partition {
                family: PartitionFamily::Flow,
                index: execution_id.partition(),
            };
            IssueReclaimGrantOutcome::Granted(ReclaimGrant::new(
                execution_id,
                PartitionKey::from(&partition),
                grant.grant_id,
                u64::try_from(grant.expires_at).unwrap_or(0),
                LaneId::new(grant.lane_id),
            ))
        }
        recovery::IssueReclaimGrantOutcome::NotReclaimable(detail) => {
            IssueReclaimGrantOutcome::NotReclaimable {
                execution_id,
                detail,
            }
        }
        recovery::IssueReclaimGrantOutcome::ReclaimCapExceeded(reclaim_count) => {
            IssueReclaimGrantOutcome::ReclaimCapExceeded {
                execution_id,
                reclaim_count,
            }
        }
    })
}

pub(super) async fn reclaim_execution(
    backend: &SqliteBackend,
    args: ReclaimExecutionArgs,
) -> Result<ReclaimExecutionOutcome, EngineError> {
    const OP: &str = "reclaim_execution";
    let guest_args = args::reclaim_execution(&args, wall_clock());
    let execution_id = args.execution_id.clone();
    let (lane_id, worker_instance_id) = (args.lane_id.clone(), args.worker_instance_id.clone());
    let lease_ttl_ms = args.lease_ttl_ms;
    backend
        .run_checked(
            OP,
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_recovery()
                    .call_reclaim_execution(store, &guest_args)
            },
            move |outcome| {
                let execution_id = execution_id.clone();
                Ok(match outcome {
                    recovery::ReclaimExecutionOutcome::Claimed(claimed) => {
                        ReclaimExecutionOutcome::Claimed(Lease::parse(OP, claimed)?.handle(
                            HandleKind::Reclaimed,
                            lease_ttl_ms,
                            &lane_id,
                            &worker_instance_id,
                        ))
                    }
                    recovery::ReclaimExecutionOutcome::NotReclaimable(detail) => {
                        ReclaimExecutionOutcome::NotReclaimable {
                            execution_id,
                            detail,
                        }
                    }
                    recovery::ReclaimExecutionOutcome::ReclaimCapExceeded(reclaim_count) => {
                        ReclaimExecutionOutcome::ReclaimCapExceeded {
                            execution_id,
                            reclaim_count,
                        }
                    }
                    recovery::ReclaimExecutionOutcome::GrantNotFound => {
                        ReclaimExecutionOutcome::GrantNotFound { execution_id }
                    }
                })
            },
        )
        .await
}

pub(super) async fn claim_from_resume_grant(
    backend: &SqliteBackend,
    token: ResumeToken,
) -> Result<Option<Handle>, EngineError> {
    const OP: &str = "claim_from_resume_grant";
    let (lease_id, attempt_id) = fresh_ids();
    let ttl = u64::from(token.lease_ttl_ms);
    let guest_args = recovery::ResumeGrantClaimArgs {
        execution_id: token.grant.execution_id.to_string(),
        worker_id: token.worker_id.to_string(),
        worker_instance_id: token.worker_instance_id.to_string(),
        lane_id: token.grant.lane_id.to_string(),
        lease_ttl_ms: ttl,
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
                    .flowfabric_backend_recovery()
                    .call_claim_from_resume_grant(store, &guest_args)
            },
            |claimed| claimed.map(|claimed| Lease::parse(OP, claimed)).transpose(),
        )
        .await?;
    Ok(lease.map(|lease| {
        lease.handle(
            HandleKind::Resumed,
            ttl,
            &token.grant.lane_id,
            &token.worker_instance_id,
        )
    }))
}
