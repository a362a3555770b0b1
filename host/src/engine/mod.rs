//! `impl EngineBackend for SqliteBackend`, dispatching each method to its family's module:
//! [`scheduling`], [`lease_holder`], [`recovery`], [`reads`], [`streams`] (one per guest
//! interface). Each
//! operation converts its arguments ([`crate::bindings::args`]), makes one guest call in one
//! transaction ([`SqliteBackend::run`]), and converts the result back
//! ([`crate::bindings::results`]). Operations not built return `EngineError::Unavailable`.

mod capabilities;
mod inputs;
mod lease_holder;
mod reads;
mod recovery;
mod scheduling;
mod streams;

use std::time::Duration;

use async_trait::async_trait;
use ff_core::backend::{
    AppendFrameOutcome, CancelFlowPolicy, CancelFlowWait, CapabilitySet, ClaimPolicy, FailOutcome,
    FailureClass, FailureReason, Frame, Handle, LeaseRenewal, PendingWaitpoint, PrepareOutcome,
    ResumeSignal, ResumeToken, UsageDimensions,
};
use ff_core::backend::{ScannerFilter, SummaryDocument, TailVisibility};
use ff_core::capability::Capabilities;
use ff_core::contracts::{
    CancelExecutionArgs, CancelExecutionResult, CancelFlowResult, ClaimExecutionArgs,
    ClaimExecutionResult, ClaimGrantOutcome, ClaimResumedExecutionArgs,
    ClaimResumedExecutionResult, CompleteExecutionArgs, CompleteExecutionResult,
    CreateExecutionArgs, CreateExecutionResult, ExecutionContext, ExecutionInfo, ExecutionSnapshot,
    FailExecutionArgs, FailExecutionResult, FlowSnapshot, IssueClaimGrantArgs,
    IssueClaimGrantOutcome, IssueGrantAndClaimArgs, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ListExpiredLeasesResult, ReclaimExecutionArgs,
    ReclaimExecutionOutcome, RenewLeaseArgs, RenewLeaseResult, ReportUsageResult,
    ResumeExecutionArgs, ResumeExecutionResult, RevokeLeaseArgs, RevokeLeaseResult, SuspendArgs,
    SuspendOutcome,
};
use ff_core::contracts::{StreamCursor, StreamFrames};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::partition::Partition;
use ff_core::state::PublicState;
use ff_core::stream_events::{CompletionSubscription, LeaseHistorySubscription};
use ff_core::stream_subscribe;
use ff_core::types::{AttemptIndex, BudgetId, ExecutionId, FlowId, LaneId, TimestampMs};

use crate::backend::SqliteBackend;
use crate::error::BACKEND_LABEL;

/// `Err(Unavailable { op })` for an operation this backend does not implement.
fn unavailable<T>(op: &'static str) -> Result<T, EngineError> {
    Err(EngineError::Unavailable { op })
}

#[async_trait]
impl EngineBackend for SqliteBackend {
    // ── Scheduling ──────────────────────────────────────────────────────────────────────────

    async fn create_execution(
        &self,
        args: CreateExecutionArgs,
    ) -> Result<CreateExecutionResult, EngineError> {
        scheduling::create_execution(self, args).await
    }

    async fn issue_claim_grant(
        &self,
        args: IssueClaimGrantArgs,
    ) -> Result<IssueClaimGrantOutcome, EngineError> {
        scheduling::issue_claim_grant(self, args).await
    }

    async fn claim_execution(
        &self,
        args: ClaimExecutionArgs,
    ) -> Result<ClaimExecutionResult, EngineError> {
        scheduling::claim_execution(self, args).await
    }

    async fn issue_grant_and_claim(
        &self,
        args: IssueGrantAndClaimArgs,
    ) -> Result<ClaimGrantOutcome, EngineError> {
        scheduling::issue_grant_and_claim(self, args).await
    }

    async fn claim(
        &self,
        lane: &LaneId,
        capabilities: &CapabilitySet,
        policy: ClaimPolicy,
    ) -> Result<Option<Handle>, EngineError> {
        scheduling::claim(self, lane, capabilities, policy).await
    }

    async fn promote_delayed(
        &self,
        partition: Partition,
        _lane: &LaneId,
        execution_id: &ExecutionId,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        scheduling::promote_delayed(self, partition, _lane, execution_id, now_ms).await
    }

    // ── The lease holder ────────────────────────────────────────────────────────────────────

    async fn renew_lease(&self, args: RenewLeaseArgs) -> Result<RenewLeaseResult, EngineError> {
        lease_holder::renew_lease(self, args).await
    }

    async fn complete_execution(
        &self,
        args: CompleteExecutionArgs,
    ) -> Result<CompleteExecutionResult, EngineError> {
        lease_holder::complete_execution(self, args).await
    }

    async fn fail_execution(
        &self,
        args: FailExecutionArgs,
    ) -> Result<FailExecutionResult, EngineError> {
        lease_holder::fail_execution(self, args).await
    }

    async fn renew(&self, handle: &Handle) -> Result<LeaseRenewal, EngineError> {
        lease_holder::renew(self, handle).await
    }

    async fn progress(
        &self,
        handle: &Handle,
        percent: Option<u8>,
        message: Option<String>,
    ) -> Result<(), EngineError> {
        lease_holder::progress(self, handle, percent, message).await
    }

    async fn complete(&self, handle: &Handle, payload: Option<Vec<u8>>) -> Result<(), EngineError> {
        lease_holder::complete(self, handle, payload).await
    }

    async fn fail(
        &self,
        handle: &Handle,
        reason: FailureReason,
        classification: FailureClass,
    ) -> Result<FailOutcome, EngineError> {
        lease_holder::fail(self, handle, reason, classification).await
    }

    // ── Operators and recovery ──────────────────────────────────────────────────────────────

    async fn cancel_execution(
        &self,
        args: CancelExecutionArgs,
    ) -> Result<CancelExecutionResult, EngineError> {
        recovery::cancel_execution(self, args).await
    }

    async fn revoke_lease(&self, args: RevokeLeaseArgs) -> Result<RevokeLeaseResult, EngineError> {
        recovery::revoke_lease(self, args).await
    }

    async fn claim_resumed_execution(
        &self,
        args: ClaimResumedExecutionArgs,
    ) -> Result<ClaimResumedExecutionResult, EngineError> {
        recovery::claim_resumed_execution(self, args).await
    }

    async fn resume_execution(
        &self,
        args: ResumeExecutionArgs,
    ) -> Result<ResumeExecutionResult, EngineError> {
        recovery::resume_execution(self, args).await
    }

    async fn mark_lease_expired_if_due(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
    ) -> Result<(), EngineError> {
        recovery::mark_lease_expired_if_due(self, partition, execution_id).await
    }

    async fn list_expired_leases(
        &self,
        args: ListExpiredLeasesArgs,
    ) -> Result<ListExpiredLeasesResult, EngineError> {
        recovery::list_expired_leases(self, args).await
    }

    async fn issue_reclaim_grant(
        &self,
        args: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        recovery::issue_reclaim_grant(self, args).await
    }

    async fn reclaim_execution(
        &self,
        args: ReclaimExecutionArgs,
    ) -> Result<ReclaimExecutionOutcome, EngineError> {
        recovery::reclaim_execution(self, args).await
    }

    async fn claim_from_resume_grant(
        &self,
        token: ResumeToken,
    ) -> Result<Option<Handle>, EngineError> {
        recovery::claim_from_resume_grant(self, token).await
    }

    // ── Reads ───────────────────────────────────────────────────────────────────────────────

    async fn describe_execution(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<ExecutionSnapshot>, EngineError> {
        reads::describe_execution(self, id).await
    }

    async fn read_execution_state(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<PublicState>, EngineError> {
        reads::read_execution_state(self, id).await
    }

    async fn read_execution_info(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<ExecutionInfo>, EngineError> {
        reads::read_execution_info(self, id).await
    }

    async fn read_current_attempt_index(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<AttemptIndex, EngineError> {
        reads::read_current_attempt_index(self, execution_id).await
    }

    async fn read_total_attempt_count(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<AttemptIndex, EngineError> {
        reads::read_total_attempt_count(self, execution_id).await
    }

    async fn get_execution_result(&self, id: &ExecutionId) -> Result<Option<Vec<u8>>, EngineError> {
        reads::get_execution_result(self, id).await
    }

    async fn read_execution_context(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<ExecutionContext, EngineError> {
        reads::read_execution_context(self, execution_id).await
    }

    // ── The backend itself ────────────────────────────────────────────────────────────────

    async fn ping(&self) -> Result<(), EngineError> {
        reads::ping(self).await
    }

    async fn prepare(&self) -> Result<PrepareOutcome, EngineError> {
        // Migrations already ran when the backend was opened.
        Ok(PrepareOutcome::NoOp)
    }

    fn backend_label(&self) -> &'static str {
        BACKEND_LABEL
    }

    fn capabilities(&self) -> Capabilities {
        capabilities::capabilities()
    }

    // ── Streams and subscriptions ────────────────────────────────────────────────────────

    async fn append_frame(
        &self,
        handle: &Handle,
        frame: Frame,
    ) -> Result<AppendFrameOutcome, EngineError> {
        streams::append_frame(self, handle, frame).await
    }

    async fn read_stream(
        &self,
        execution_id: &ExecutionId,
        attempt_index: AttemptIndex,
        from: StreamCursor,
        to: StreamCursor,
        count_limit: u64,
    ) -> Result<StreamFrames, EngineError> {
        streams::read_stream(self, execution_id, attempt_index, from, to, count_limit).await
    }

    async fn tail_stream(
        &self,
        execution_id: &ExecutionId,
        attempt_index: AttemptIndex,
        after: StreamCursor,
        block_ms: u64,
        count_limit: u64,
        visibility: TailVisibility,
    ) -> Result<StreamFrames, EngineError> {
        let exclude_best_effort = matches!(visibility, TailVisibility::ExcludeBestEffort);
        streams::tail_stream(
            self,
            execution_id,
            attempt_index,
            after,
            block_ms,
            count_limit,
            exclude_best_effort,
        )
        .await
    }

    async fn read_summary(
        &self,
        execution_id: &ExecutionId,
        attempt_index: AttemptIndex,
    ) -> Result<Option<SummaryDocument>, EngineError> {
        streams::read_summary(self, execution_id, attempt_index).await
    }

    async fn subscribe_completion(
        &self,
        cursor: stream_subscribe::StreamCursor,
        filter: &ScannerFilter,
    ) -> Result<CompletionSubscription, EngineError> {
        streams::subscribe_completion(self, cursor, filter).await
    }

    async fn subscribe_lease_history(
        &self,
        cursor: stream_subscribe::StreamCursor,
        filter: &ScannerFilter,
    ) -> Result<LeaseHistorySubscription, EngineError> {
        streams::subscribe_lease_history(self, cursor, filter).await
    }

    /// Ends this backend's tails (each returns what a last page finds) and subscriptions (each
    /// yields `StreamDisconnected` with its cursor); operations keep working.
    async fn shutdown_prepare(&self, _grace: Duration) -> Result<(), EngineError> {
        self.begin_shutdown();
        Ok(())
    }

    // ── Not built: suspension, flows, budgets ────────────────────────────────────────────

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
