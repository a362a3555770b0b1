//! `impl EngineBackend for SqliteBackend`, dispatching each method to its family's module:
//! [`scheduling`], [`lease_holder`], [`recovery`], [`reads`], [`flows`] (one per guest
//! interface). Each
//! operation converts its arguments ([`crate::bindings::args`]), makes one guest call in one
//! transaction ([`SqliteBackend::run`]), and converts the result back
//! ([`crate::bindings::results`]). Operations not built return `EngineError::Unavailable`.

mod capabilities;
mod flows;
mod inputs;
mod lease_holder;
mod reads;
mod recovery;
mod scheduling;

use std::time::Duration;

use async_trait::async_trait;
use ff_core::backend::{
    AppendFrameOutcome, CancelFlowPolicy, CancelFlowWait, CapabilitySet, ClaimPolicy,
    CompletionPayload, FailOutcome, FailureClass, FailureReason, Frame, Handle, LeaseRenewal,
    PendingWaitpoint, PrepareOutcome, ResumeSignal, ResumeToken, UsageDimensions,
};
use ff_core::capability::Capabilities;
use ff_core::contracts::{
    AddExecutionToFlowArgs, AddExecutionToFlowResult, ApplyDependencyToChildArgs,
    ApplyDependencyToChildResult, CancelExecutionArgs, CancelExecutionResult, CancelFlowArgs,
    CancelFlowHeader, CancelFlowResult, CascadeOutcome, ClaimExecutionArgs, ClaimExecutionResult,
    ClaimGrantOutcome, ClaimResumedExecutionArgs, ClaimResumedExecutionResult,
    CompleteExecutionArgs, CompleteExecutionResult, CreateExecutionArgs, CreateExecutionResult,
    CreateFlowArgs, CreateFlowResult, EdgeDependencyPolicy, EdgeDirection, EdgeSnapshot,
    EvaluateFlowEligibilityArgs, EvaluateFlowEligibilityResult, ExecutionContext, ExecutionInfo,
    ExecutionSnapshot, FailExecutionArgs, FailExecutionResult, FlowSnapshot, IssueClaimGrantArgs,
    IssueClaimGrantOutcome, IssueGrantAndClaimArgs, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ListExpiredLeasesResult, ListFlowsPage,
    ReclaimExecutionArgs, ReclaimExecutionOutcome, RenewLeaseArgs, RenewLeaseResult,
    ReportUsageResult, ResolveDependencyArgs, ResolveDependencyOutcome, ResumeExecutionArgs,
    ResumeExecutionResult, RevokeLeaseArgs, RevokeLeaseResult, SetEdgeGroupPolicyResult,
    StageDependencyEdgeArgs, StageDependencyEdgeResult, SuspendArgs, SuspendOutcome,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::partition::{Partition, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{AttemptIndex, BudgetId, EdgeId, ExecutionId, FlowId, LaneId, TimestampMs};

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

    // ── Flows ───────────────────────────────────────────────────────────────────────────────

    async fn create_flow(&self, args: CreateFlowArgs) -> Result<CreateFlowResult, EngineError> {
        flows::create_flow(self, args).await
    }

    async fn add_execution_to_flow(
        &self,
        args: AddExecutionToFlowArgs,
    ) -> Result<AddExecutionToFlowResult, EngineError> {
        flows::add_execution_to_flow(self, args).await
    }

    async fn stage_dependency_edge(
        &self,
        args: StageDependencyEdgeArgs,
    ) -> Result<StageDependencyEdgeResult, EngineError> {
        flows::stage_dependency_edge(self, args).await
    }

    async fn apply_dependency_to_child(
        &self,
        args: ApplyDependencyToChildArgs,
    ) -> Result<ApplyDependencyToChildResult, EngineError> {
        flows::apply_dependency_to_child(self, args).await
    }

    async fn evaluate_flow_eligibility(
        &self,
        args: EvaluateFlowEligibilityArgs,
    ) -> Result<EvaluateFlowEligibilityResult, EngineError> {
        flows::evaluate_flow_eligibility(self, args).await
    }

    async fn describe_flow(&self, id: &FlowId) -> Result<Option<FlowSnapshot>, EngineError> {
        flows::describe_flow(self, id).await
    }

    async fn cancel_flow(
        &self,
        id: &FlowId,
        policy: CancelFlowPolicy,
        wait: CancelFlowWait,
    ) -> Result<CancelFlowResult, EngineError> {
        flows::cancel_flow(self, id, policy, wait).await
    }

    async fn cancel_flow_header(
        &self,
        args: CancelFlowArgs,
    ) -> Result<CancelFlowHeader, EngineError> {
        flows::cancel_flow_header(self, args).await
    }

    async fn ack_cancel_member(
        &self,
        flow_id: &FlowId,
        execution_id: &ExecutionId,
    ) -> Result<(), EngineError> {
        flows::ack_cancel_member(self, flow_id, execution_id).await
    }

    async fn set_flow_tag(
        &self,
        flow_id: &FlowId,
        key: &str,
        value: &str,
    ) -> Result<(), EngineError> {
        flows::set_flow_tag(self, flow_id, key, value).await
    }

    async fn get_flow_tag(
        &self,
        flow_id: &FlowId,
        key: &str,
    ) -> Result<Option<String>, EngineError> {
        flows::get_flow_tag(self, flow_id, key).await
    }

    async fn list_flows(
        &self,
        partition: PartitionKey,
        cursor: Option<FlowId>,
        limit: usize,
    ) -> Result<ListFlowsPage, EngineError> {
        flows::list_flows(self, partition, cursor, limit).await
    }

    async fn list_edges(
        &self,
        flow_id: &FlowId,
        direction: EdgeDirection,
    ) -> Result<Vec<EdgeSnapshot>, EngineError> {
        flows::list_edges(self, flow_id, direction).await
    }

    async fn describe_edge(
        &self,
        flow_id: &FlowId,
        edge_id: &EdgeId,
    ) -> Result<Option<EdgeSnapshot>, EngineError> {
        flows::describe_edge(self, flow_id, edge_id).await
    }

    async fn resolve_execution_flow_id(
        &self,
        eid: &ExecutionId,
    ) -> Result<Option<FlowId>, EngineError> {
        flows::resolve_execution_flow_id(self, eid).await
    }

    async fn set_edge_group_policy(
        &self,
        flow_id: &FlowId,
        downstream_execution_id: &ExecutionId,
        policy: EdgeDependencyPolicy,
    ) -> Result<SetEdgeGroupPolicyResult, EngineError> {
        flows::set_edge_group_policy(self, flow_id, downstream_execution_id, policy).await
    }

    async fn resolve_dependency(
        &self,
        args: ResolveDependencyArgs,
    ) -> Result<ResolveDependencyOutcome, EngineError> {
        flows::resolve_dependency(self, args).await
    }

    async fn cascade_completion(
        &self,
        payload: &CompletionPayload,
    ) -> Result<CascadeOutcome, EngineError> {
        flows::cascade_completion(self, payload).await
    }

    async fn wait_children(&self, handle: &Handle) -> Result<(), EngineError> {
        flows::wait_children(self, handle).await
    }

    fn capabilities(&self) -> Capabilities {
        capabilities::capabilities()
    }

    // ── Not built: suspension, streaming, budgets ────────────────────────────────────────

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

    async fn report_usage(
        &self,
        _handle: &Handle,
        _budget: &BudgetId,
        _dimensions: UsageDimensions,
    ) -> Result<ReportUsageResult, EngineError> {
        unavailable("report_usage")
    }
}
