//! `impl EngineBackend for SqliteBackend`: each operation converts its arguments
//! ([`crate::bindings::args`]), makes one guest call in one transaction, and converts the
//! result back ([`crate::bindings::results`]). Operations that ff-core's arguments give no
//! clock or fresh ids for get them here (`TimestampMs::now()`, `LeaseId::new()`, ...), so the
//! guest stays deterministic. Operations not built return `EngineError::Unavailable`.

use std::time::Duration;

use async_trait::async_trait;
use ff_core::backend::{
    AppendFrameOutcome, CancelFlowPolicy, CancelFlowWait, CapabilitySet, ClaimPolicy, FailOutcome,
    FailureClass, FailureReason, Frame, Handle, HandleKind, LeaseRenewal, PendingWaitpoint,
    PrepareOutcome, ResumeSignal, ResumeToken, UsageDimensions,
};
use ff_core::capability::{BackendIdentity, Capabilities, Supports};
use ff_core::contracts::{
    CancelExecutionArgs, CancelExecutionResult, CancelFlowResult, ClaimExecutionArgs,
    ClaimExecutionResult, ClaimGrantOutcome, ClaimResumedExecutionArgs,
    ClaimResumedExecutionResult, ClaimedExecution, ClaimedResumedExecution, CompleteExecutionArgs,
    CompleteExecutionResult, CreateExecutionArgs, CreateExecutionResult, ExecutionContext,
    ExecutionInfo, ExecutionSnapshot, ExpiredLeaseInfo, ExpiredLeasesCursor, FailExecutionArgs,
    FailExecutionResult, FlowSnapshot, IssueClaimGrantArgs, IssueClaimGrantOutcome,
    IssueGrantAndClaimArgs, IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ListExpiredLeasesArgs,
    ListExpiredLeasesResult, ReclaimExecutionArgs, ReclaimExecutionOutcome, ReclaimGrant,
    RenewLeaseArgs, RenewLeaseResult, ReportUsageResult, ResumeExecutionArgs,
    ResumeExecutionResult, RevokeLeaseArgs, RevokeLeaseResult, SuspendArgs, SuspendOutcome,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptId, AttemptIndex, BudgetId, ExecutionId, FlowId, LaneId, LeaseEpoch, LeaseId,
    TimestampMs, WorkerInstanceId,
};

use crate::BACKEND_LABEL;
use crate::backend::{SqliteBackend, Tx, crate_version};
use crate::bindings::args::{self, validation};
use crate::bindings::results::{self, Lease};
use crate::bindings::wit;

/// The largest page `list_expired_leases` returns (ff-core's `LIST_EXPIRED_LEASES_MAX_LIMIT`).
const LIST_EXPIRED_LEASES_MAX_LIMIT: u32 = 10_000;
/// The page size when the caller gives none (ff-core's `LIST_EXPIRED_LEASES_DEFAULT_LIMIT`).
const LIST_EXPIRED_LEASES_DEFAULT_LIMIT: u32 = 1_000;

/// `Err(Unavailable { op })` for an operation this backend does not implement.
fn unavailable<T>(op: &'static str) -> Result<T, EngineError> {
    Err(EngineError::Unavailable { op })
}

/// The wall clock, for operations whose ff-core arguments carry no `now`.
fn wall_clock() -> i64 {
    TimestampMs::now().0
}

/// `Validation { InvalidInput }` unless `partition` is the execution id's own (flow/execution)
/// partition.
fn check_partition(partition: &Partition, execution_id: &ExecutionId) -> Result<(), EngineError> {
    let execution_family = matches!(
        partition.family,
        PartitionFamily::Flow | PartitionFamily::Execution
    );
    if execution_family && partition.index == execution_id.partition() {
        Ok(())
    } else {
        Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "partition {} does not hold execution {execution_id}",
                partition.index
            ),
        ))
    }
}

/// `Validation { InvalidInput, "<op>: execution not found: <id>" }`, for the reads ff-core
/// documents that way.
fn execution_not_found(op: &str, execution_id: &ExecutionId) -> EngineError {
    validation(
        ValidationKind::InvalidInput,
        format!("{op}: execution not found: {execution_id}"),
    )
}

impl SqliteBackend {
    /// The execution as reads report it.
    async fn read_view(
        &self,
        op: &'static str,
        id: &ExecutionId,
    ) -> Result<Option<wit::ExecutionView>, EngineError> {
        let execution_id = id.to_string();
        let now = wall_clock();
        self.run(op, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_read_execution(store, &execution_id, now)
        })
        .await
    }

    /// A fresh lease id and attempt id, as text.
    fn fresh_ids() -> (LeaseId, AttemptId) {
        (LeaseId::new(), AttemptId::new())
    }
}

#[async_trait]
impl EngineBackend for SqliteBackend {
    // ── Scheduling ────────────────────────────────────────────────────────────────────────

    async fn create_execution(
        &self,
        args: CreateExecutionArgs,
    ) -> Result<CreateExecutionResult, EngineError> {
        self.check_payload_fits_guest("input_payload", Some(&args.input_payload))?;
        let guest_args = args::create_execution(&args)?;
        let outcome = self
            .run("create_execution", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_create_execution(store, &guest_args)
            })
            .await?;
        Ok(match outcome {
            wit::CreateExecutionOutcome::Created(state) => CreateExecutionResult::Created {
                execution_id: args.execution_id,
                public_state: results::public_state(state),
            },
            wit::CreateExecutionOutcome::Duplicate => CreateExecutionResult::Duplicate {
                execution_id: args.execution_id,
            },
        })
    }

    async fn issue_claim_grant(
        &self,
        args: IssueClaimGrantArgs,
    ) -> Result<IssueClaimGrantOutcome, EngineError> {
        check_partition(&args.partition, &args.execution_id)?;
        let guest_args = args::issue_claim_grant(&args);
        self.run("issue_claim_grant", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_issue_claim_grant(store, &guest_args)
        })
        .await?;
        Ok(IssueClaimGrantOutcome::Granted {
            execution_id: args.execution_id,
        })
    }

    async fn claim_execution(
        &self,
        args: ClaimExecutionArgs,
    ) -> Result<ClaimExecutionResult, EngineError> {
        const OP: &str = "claim_execution";
        let guest_args = args::claim_execution(&args);
        let claimed = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_claim_execution(store, &guest_args)
            })
            .await?;
        let lease = Lease::parse(OP, claimed)?;
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

    async fn issue_grant_and_claim(
        &self,
        args: IssueGrantAndClaimArgs,
    ) -> Result<ClaimGrantOutcome, EngineError> {
        const OP: &str = "issue_grant_and_claim";
        let (lease_id, attempt_id) = Self::fresh_ids();
        let guest_args = wit::IssueGrantAndClaimArgs {
            execution_id: args.execution_id.to_string(),
            lane_id: args.lane_id.to_string(),
            lease_duration_ms: args.lease_duration_ms,
            lease_id: lease_id.to_string(),
            attempt_id: attempt_id.to_string(),
            now: wall_clock(),
        };
        let outcome = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_issue_grant_and_claim(store, &guest_args)
            })
            .await?;
        Ok(ClaimGrantOutcome::new(
            results::lease_id(OP, &outcome.lease_id)?,
            LeaseEpoch::new(outcome.lease_epoch),
            AttemptIndex::new(outcome.attempt_index),
        ))
    }

    async fn claim(
        &self,
        lane: &LaneId,
        capabilities: &CapabilitySet,
        policy: ClaimPolicy,
    ) -> Result<Option<Handle>, EngineError> {
        const OP: &str = "claim";
        let (lease_id, attempt_id) = Self::fresh_ids();
        let guest_args = wit::ClaimArgs {
            lane_id: lane.to_string(),
            capabilities: capabilities.tokens.clone(),
            worker_id: policy.worker_id.to_string(),
            worker_instance_id: policy.worker_instance_id.to_string(),
            lease_ttl_ms: u64::from(policy.lease_ttl_ms),
            lease_id: lease_id.to_string(),
            attempt_id: attempt_id.to_string(),
            now: wall_clock(),
        };
        let claimed = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_claim(store, &guest_args)
            })
            .await?;
        claimed
            .map(|claimed| {
                let lease = Lease::parse(OP, claimed)?;
                Ok(lease.handle(
                    HandleKind::Fresh,
                    u64::from(policy.lease_ttl_ms),
                    lane,
                    &policy.worker_instance_id,
                ))
            })
            .transpose()
    }

    async fn promote_delayed(
        &self,
        partition: Partition,
        _lane: &LaneId,
        execution_id: &ExecutionId,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        check_partition(&partition, execution_id)?;
        let id = execution_id.to_string();
        self.run("promote_delayed", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_promote_delayed(store, &id, now_ms.0)
        })
        .await
    }

    // ── The lease holder ──────────────────────────────────────────────────────────────────

    async fn renew_lease(&self, args: RenewLeaseArgs) -> Result<RenewLeaseResult, EngineError> {
        let guest_args = args::renew_lease(&args, wall_clock());
        let expires_at = self
            .run("renew_lease", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_renew_lease(store, &guest_args)
            })
            .await?;
        Ok(RenewLeaseResult::Renewed {
            expires_at: TimestampMs::from_millis(expires_at),
        })
    }

    async fn complete_execution(
        &self,
        args: CompleteExecutionArgs,
    ) -> Result<CompleteExecutionResult, EngineError> {
        self.check_payload_fits_guest("result_payload", args.result_payload.as_deref())?;
        let guest_args = args::complete_execution(&args);
        self.run("complete_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_complete_execution(store, &guest_args)
        })
        .await?;
        Ok(CompleteExecutionResult::Completed {
            execution_id: args.execution_id,
            public_state: PublicState::Completed,
        })
    }

    async fn fail_execution(
        &self,
        args: FailExecutionArgs,
    ) -> Result<FailExecutionResult, EngineError> {
        let guest_args = args::fail_execution(&args, wall_clock())?;
        let outcome = self
            .run("fail_execution", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_fail_execution(store, &guest_args)
            })
            .await?;
        Ok(match outcome {
            wit::FailOutcome::RetryScheduled(retry) => FailExecutionResult::RetryScheduled {
                delay_until: TimestampMs::from_millis(retry.delay_until),
                next_attempt_index: AttemptIndex::new(retry.next_attempt_index),
            },
            wit::FailOutcome::TerminalFailed => FailExecutionResult::TerminalFailed,
        })
    }

    async fn renew(&self, handle: &Handle) -> Result<LeaseRenewal, EngineError> {
        let (lease, _) = args::handle_lease(handle)?;
        let epoch = lease.lease_epoch;
        let now = wall_clock();
        let expires_at = self
            .run("renew", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_renew(store, &lease, now)
            })
            .await?;
        Ok(LeaseRenewal::new(
            u64::try_from(expires_at).unwrap_or(0),
            epoch,
        ))
    }

    async fn progress(
        &self,
        handle: &Handle,
        percent: Option<u8>,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        let (lease, _) = args::handle_lease(handle)?;
        let now = wall_clock();
        self.run("progress", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_engine().call_progress(
                store,
                &lease,
                percent,
                message.as_deref(),
                now,
            )
        })
        .await
    }

    async fn complete(&self, handle: &Handle, payload: Option<Vec<u8>>) -> Result<(), EngineError> {
        let (lease, _) = args::handle_lease(handle)?;
        self.check_payload_fits_guest("payload", payload.as_deref())?;
        let now = wall_clock();
        self.run("complete", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_complete(store, &lease, payload.as_deref(), now)
        })
        .await
    }

    async fn fail(
        &self,
        handle: &Handle,
        reason: FailureReason,
        classification: FailureClass,
    ) -> Result<FailOutcome, EngineError> {
        let (lease, _) = args::handle_lease(handle)?;
        let class = args::failure_class(classification);
        let now = wall_clock();
        let outcome = self
            .run("fail", Tx::Write, move |guest, store| {
                guest.flowfabric_backend_engine().call_fail(
                    store,
                    &lease,
                    &reason.message,
                    class,
                    now,
                )
            })
            .await?;
        Ok(match outcome {
            wit::FailOutcome::RetryScheduled(retry) => FailOutcome::RetryScheduled {
                delay_until: TimestampMs::from_millis(retry.delay_until),
            },
            wit::FailOutcome::TerminalFailed => FailOutcome::TerminalFailed,
        })
    }

    // ── Operators and recovery ────────────────────────────────────────────────────────────

    async fn cancel_execution(
        &self,
        args: CancelExecutionArgs,
    ) -> Result<CancelExecutionResult, EngineError> {
        let guest_args = args::cancel_execution(&args);
        self.run("cancel_execution", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_cancel_execution(store, &guest_args)
        })
        .await?;
        Ok(CancelExecutionResult::Cancelled {
            execution_id: args.execution_id,
            public_state: PublicState::Cancelled,
        })
    }

    async fn revoke_lease(&self, args: RevokeLeaseArgs) -> Result<RevokeLeaseResult, EngineError> {
        let guest_args = args::revoke_lease(&args, wall_clock());
        let outcome = self
            .run("revoke_lease", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_revoke_lease(store, &guest_args)
            })
            .await?;
        Ok(match outcome {
            wit::RevokeLeaseOutcome::Revoked(revoked) => RevokeLeaseResult::Revoked {
                lease_id: revoked.lease_id,
                lease_epoch: revoked.lease_epoch.to_string(),
            },
            wit::RevokeLeaseOutcome::AlreadySatisfied(reason) => {
                RevokeLeaseResult::AlreadySatisfied { reason }
            }
        })
    }

    async fn claim_resumed_execution(
        &self,
        args: ClaimResumedExecutionArgs,
    ) -> Result<ClaimResumedExecutionResult, EngineError> {
        const OP: &str = "claim_resumed_execution";
        let guest_args = args::claim_resumed_execution(&args, AttemptId::new().to_string());
        let claimed = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_claim_resumed_execution(store, &guest_args)
            })
            .await?;
        let lease = Lease::parse(OP, claimed)?;
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

    async fn resume_execution(
        &self,
        args: ResumeExecutionArgs,
    ) -> Result<ResumeExecutionResult, EngineError> {
        let guest_args = args::resume_execution(&args, wall_clock());
        let state = self
            .run("resume_execution", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_resume_execution(store, &guest_args)
            })
            .await?;
        Ok(ResumeExecutionResult::Resumed {
            public_state: results::public_state(state),
        })
    }

    async fn mark_lease_expired_if_due(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
    ) -> Result<(), EngineError> {
        check_partition(&partition, execution_id)?;
        let id = execution_id.to_string();
        let now = wall_clock();
        self.run(
            "mark_lease_expired_if_due",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_mark_lease_expired_if_due(store, &id, now)
            },
        )
        .await
    }

    async fn list_expired_leases(
        &self,
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
        let guest_args = wit::ListExpiredLeasesArgs {
            as_of: args.as_of.0,
            after: args.after.as_ref().map(|cursor| wit::ExpiredLeaseCursor {
                expires_at: cursor.expires_at_ms.0,
                execution_id: cursor.execution_id.to_string(),
            }),
            limit,
            namespace: args.namespace.as_ref().map(ToString::to_string),
        };
        let rows = self
            .run(OP, Tx::Read, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
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

    async fn issue_reclaim_grant(
        &self,
        args: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        let guest_args = args::issue_reclaim_grant(&args);
        let outcome = self
            .run("issue_reclaim_grant", Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_issue_reclaim_grant(store, &guest_args)
            })
            .await?;
        let execution_id = args.execution_id;
        Ok(match outcome {
            wit::IssueReclaimGrantOutcome::Granted(grant) => {
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
            wit::IssueReclaimGrantOutcome::NotReclaimable(detail) => {
                IssueReclaimGrantOutcome::NotReclaimable {
                    execution_id,
                    detail,
                }
            }
            wit::IssueReclaimGrantOutcome::ReclaimCapExceeded(reclaim_count) => {
                IssueReclaimGrantOutcome::ReclaimCapExceeded {
                    execution_id,
                    reclaim_count,
                }
            }
        })
    }

    async fn reclaim_execution(
        &self,
        args: ReclaimExecutionArgs,
    ) -> Result<ReclaimExecutionOutcome, EngineError> {
        const OP: &str = "reclaim_execution";
        let guest_args = args::reclaim_execution(&args, wall_clock());
        let outcome = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_reclaim_execution(store, &guest_args)
            })
            .await?;
        let execution_id = args.execution_id.clone();
        Ok(match outcome {
            wit::ReclaimExecutionOutcome::Claimed(claimed) => {
                let lease = Lease::parse(OP, claimed)?;
                ReclaimExecutionOutcome::Claimed(lease.handle(
                    HandleKind::Reclaimed,
                    args.lease_ttl_ms,
                    &args.lane_id,
                    &args.worker_instance_id,
                ))
            }
            wit::ReclaimExecutionOutcome::NotReclaimable(detail) => {
                ReclaimExecutionOutcome::NotReclaimable {
                    execution_id,
                    detail,
                }
            }
            wit::ReclaimExecutionOutcome::ReclaimCapExceeded(reclaim_count) => {
                ReclaimExecutionOutcome::ReclaimCapExceeded {
                    execution_id,
                    reclaim_count,
                }
            }
            wit::ReclaimExecutionOutcome::GrantNotFound => {
                ReclaimExecutionOutcome::GrantNotFound { execution_id }
            }
        })
    }

    async fn claim_from_resume_grant(
        &self,
        token: ResumeToken,
    ) -> Result<Option<Handle>, EngineError> {
        const OP: &str = "claim_from_resume_grant";
        let (lease_id, attempt_id) = Self::fresh_ids();
        let ttl = u64::from(token.lease_ttl_ms);
        let guest_args = wit::ResumeGrantClaimArgs {
            execution_id: token.grant.execution_id.to_string(),
            worker_id: token.worker_id.to_string(),
            worker_instance_id: token.worker_instance_id.to_string(),
            lane_id: token.grant.lane_id.to_string(),
            lease_ttl_ms: ttl,
            lease_id: lease_id.to_string(),
            attempt_id: attempt_id.to_string(),
            now: wall_clock(),
        };
        let claimed = self
            .run(OP, Tx::Write, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_claim_from_resume_grant(store, &guest_args)
            })
            .await?;
        claimed
            .map(|claimed| {
                let lease = Lease::parse(OP, claimed)?;
                Ok(lease.handle(
                    HandleKind::Resumed,
                    ttl,
                    &token.grant.lane_id,
                    &token.worker_instance_id,
                ))
            })
            .transpose()
    }

    // ── Reads ─────────────────────────────────────────────────────────────────────────────

    async fn describe_execution(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<ExecutionSnapshot>, EngineError> {
        self.read_view("describe_execution", id)
            .await?
            .map(|view| results::execution_snapshot(id, view))
            .transpose()
    }

    async fn read_execution_state(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<PublicState>, EngineError> {
        self.read_view("read_execution_state", id)
            .await?
            .map(|view| results::view_public_state(&view))
            .transpose()
    }

    async fn read_execution_info(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<ExecutionInfo>, EngineError> {
        self.read_view("read_execution_info", id)
            .await?
            .map(|view| results::execution_info(id, view))
            .transpose()
    }

    async fn read_current_attempt_index(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<AttemptIndex, EngineError> {
        const OP: &str = "read_current_attempt_index";
        let view = self.read_view(OP, execution_id).await?;
        view.map(|view| AttemptIndex::new(view.attempt_index))
            .ok_or_else(|| execution_not_found(OP, execution_id))
    }

    async fn read_total_attempt_count(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<AttemptIndex, EngineError> {
        const OP: &str = "read_total_attempt_count";
        let view = self.read_view(OP, execution_id).await?;
        view.map(|view| AttemptIndex::new(view.total_attempt_count))
            .ok_or_else(|| execution_not_found(OP, execution_id))
    }

    async fn get_execution_result(&self, id: &ExecutionId) -> Result<Option<Vec<u8>>, EngineError> {
        let execution_id = id.to_string();
        self.run("get_execution_result", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_engine()
                .call_get_execution_result(store, &execution_id)
        })
        .await
    }

    async fn read_execution_context(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<ExecutionContext, EngineError> {
        const OP: &str = "read_execution_context";
        let id = execution_id.to_string();
        let context = self
            .run(OP, Tx::Read, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_read_execution_context(store, &id)
            })
            .await?
            .ok_or_else(|| execution_not_found(OP, execution_id))?;
        Ok(ExecutionContext::new(
            context.input_payload,
            context.execution_kind,
            context.tags.into_iter().collect(),
        ))
    }

    // ── The backend itself ────────────────────────────────────────────────────────────────

    async fn ping(&self) -> Result<(), EngineError> {
        self.run("ping", Tx::Read, |guest, store| {
            guest.flowfabric_backend_engine().call_ping(store)
        })
        .await
    }

    async fn prepare(&self) -> Result<PrepareOutcome, EngineError> {
        // Migrations already ran when the backend was opened.
        Ok(PrepareOutcome::NoOp)
    }

    fn backend_label(&self) -> &'static str {
        BACKEND_LABEL
    }

    fn capabilities(&self) -> Capabilities {
        let mut supports = Supports::none();
        supports.cancel_execution = true;
        supports.revoke_lease = true;
        supports.read_execution_state = true;
        supports.read_execution_info = true;
        supports.get_execution_result = true;
        supports.issue_reclaim_grant = true;
        supports.prepare = true;
        supports.list_expired_leases = true;
        Capabilities::new(
            BackendIdentity::new(BACKEND_LABEL, crate_version(), "unknown"),
            supports,
        )
    }

    // ── Not built: suspension, streaming, flows, budgets ─────────────────────────────────

    async fn append_frame(
        &self,
        _handle: &Handle,
        _frame: Frame,
    ) -> Result<AppendFrameOutcome, EngineError> {
        unavailable("append_frame")
    }

    async fn cancel(&self, _handle: &Handle, _reason: &str) -> Result<(), EngineError> {
        unavailable("cancel")
    }

    async fn suspend(
        &self,
        _handle: &Handle,
        _args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        unavailable("suspend")
    }

    async fn create_waitpoint(
        &self,
        _handle: &Handle,
        _waitpoint_key: &str,
        _expires_in: Duration,
    ) -> Result<PendingWaitpoint, EngineError> {
        unavailable("create_waitpoint")
    }

    async fn observe_signals(&self, _handle: &Handle) -> Result<Vec<ResumeSignal>, EngineError> {
        unavailable("observe_signals")
    }

    async fn delay(&self, _handle: &Handle, _delay_until: TimestampMs) -> Result<(), EngineError> {
        unavailable("delay")
    }

    async fn wait_children(&self, _handle: &Handle) -> Result<(), EngineError> {
        unavailable("wait_children")
    }

    async fn describe_flow(&self, _id: &FlowId) -> Result<Option<FlowSnapshot>, EngineError> {
        unavailable("describe_flow")
    }

    async fn cancel_flow(
        &self,
        _id: &FlowId,
        _policy: CancelFlowPolicy,
        _wait: CancelFlowWait,
    ) -> Result<CancelFlowResult, EngineError> {
        unavailable("cancel_flow")
    }

    async fn report_usage(
        &self,
        _handle: &Handle,
        _budget: &BudgetId,
        _dimensions: UsageDimensions,
    ) -> Result<ReportUsageResult, EngineError> {
        unavailable("report_usage")
    }
}
