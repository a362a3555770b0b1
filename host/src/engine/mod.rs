//! `impl EngineBackend for SqliteBackend`, dispatching each method to its family's module:
//! [`scheduling`], [`lease_holder`], [`recovery`], [`reads`], [`budgets`], [`routing`],
//! [`workers`], [`tags`], [`operator`], [`suspension`], [`streams`], [`flows`] (one per guest
//! interface). Each
//! operation converts its arguments ([`crate::bindings::args`]), makes one guest call in one
//! transaction ([`SqliteBackend::run`]), and converts the result back
//! ([`crate::bindings::results`]). Every method of the trait is built here.

mod budgets;
mod capabilities;
mod flows;
mod inputs;
mod lease_holder;
mod operator;
mod reads;
mod recovery;
mod routing;
mod scheduling;
mod streams;
mod suspension;
mod tags;
mod workers;

use std::time::Duration;

use async_trait::async_trait;
use ff_core::backend::{
    AppendFrameOutcome, CancelFlowPolicy, CancelFlowWait, CapabilitySet, ClaimPolicy,
    CompletionPayload, FailOutcome, FailureClass, FailureReason, Frame, Handle, LeaseRenewal,
    PendingWaitpoint, PrepareOutcome, ResumeSignal, ResumeToken, UsageDimensions,
};
use ff_core::backend::{ScannerFilter, SummaryDocument, TailVisibility};
use ff_core::capability::Capabilities;
use ff_core::contracts::{
    AddExecutionToFlowArgs, AddExecutionToFlowResult, ApplyDependencyToChildArgs,
    ApplyDependencyToChildResult, BlockRouteArgs, BlockRouteOutcome, BudgetStatus,
    BudgetUsageAndLimits, CancelExecutionArgs, CancelExecutionResult, CancelFlowArgs,
    CancelFlowHeader, CancelFlowResult, CascadeOutcome, ChangePriorityArgs, ChangePriorityResult,
    CheckAdmissionArgs, CheckAdmissionResult, ClaimExecutionArgs, ClaimExecutionResult,
    ClaimForWorkerArgs, ClaimForWorkerOutcome, ClaimGrantOutcome, ClaimResumedExecutionArgs,
    ClaimResumedExecutionResult, CompleteExecutionArgs, CompleteExecutionResult, CreateBudgetArgs,
    CreateBudgetResult, CreateExecutionArgs, CreateExecutionResult, CreateFlowArgs,
    CreateFlowResult, CreateQuotaPolicyArgs, CreateQuotaPolicyResult, DeliverApprovalSignalArgs,
    DeliverSignalArgs, DeliverSignalResult, EdgeDependencyPolicy, EdgeDirection, EdgeSnapshot,
    EvaluateFlowEligibilityArgs, EvaluateFlowEligibilityResult, ExecutionContext, ExecutionInfo,
    ExecutionSnapshot, FailExecutionArgs, FailExecutionResult, FlowSnapshot, HeartbeatWorkerArgs,
    HeartbeatWorkerOutcome, IssueClaimGrantArgs, IssueClaimGrantOutcome, IssueGrantAndClaimArgs,
    IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ListExpiredLeasesArgs,
    ListExpiredLeasesResult, ListFlowsPage, ListLanesPage, ListPendingWaitpointsArgs,
    ListPendingWaitpointsResult, ListSuspendedPage, ListWorkersArgs, ListWorkersResult,
    MarkWorkerDeadArgs, MarkWorkerDeadOutcome, QuotaPolicyLimits, ReclaimExecutionArgs,
    ReclaimExecutionOutcome, RecordSpendArgs, RegisterWorkerArgs, RegisterWorkerOutcome,
    ReleaseAdmissionArgs, ReleaseAdmissionResult, ReleaseBudgetArgs, RenewLeaseArgs,
    RenewLeaseResult, ReportUsageAdminArgs, ReportUsageResult, ResetBudgetArgs, ResetBudgetResult,
    ResolveDependencyArgs, ResolveDependencyOutcome, ResumeExecutionArgs, ResumeExecutionResult,
    RevokeLeaseArgs, RevokeLeaseResult, RotateWaitpointHmacSecretAllArgs,
    RotateWaitpointHmacSecretAllResult, ScanEligibleArgs, SeedOutcome, SeedWaitpointHmacSecretArgs,
    SetEdgeGroupPolicyResult, StageDependencyEdgeArgs, StageDependencyEdgeResult, SuspendArgs,
    SuspendOutcome,
};
use ff_core::contracts::{
    BlockExecutionForAdmissionArgs, BlockExecutionForAdmissionOutcome, ListExecutionsPage,
    ReplayExecutionArgs, ReplayExecutionResult, StreamCursor, StreamFrames,
};
use ff_core::engine_backend::{
    EngineBackend, ExpirePhase, ReconcileCounts, SiblingCancelReconcileAction,
};
use ff_core::engine_error::EngineError;
use ff_core::partition::{Partition, PartitionKey};
use ff_core::state::PublicState;
use ff_core::stream_events::{
    CompletionSubscription, InstanceTagSubscription, LeaseHistorySubscription,
    SignalDeliverySubscription,
};
use ff_core::stream_subscribe;
use ff_core::types::{
    AttemptIndex, BudgetId, EdgeId, ExecutionId, FlowId, LaneId, LeaseFence, QuotaPolicyId,
    TimestampMs, WaitpointId,
};

use crate::backend::SqliteBackend;
use crate::error::BACKEND_LABEL;

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

    // ── Routing ────────────────────────────────────────────────────────────────────────────

    async fn scan_eligible_executions(
        &self,
        args: ScanEligibleArgs,
    ) -> Result<Vec<ExecutionId>, EngineError> {
        routing::scan_eligible_executions(self, args).await
    }

    async fn block_route(&self, args: BlockRouteArgs) -> Result<BlockRouteOutcome, EngineError> {
        routing::block_route(self, args).await
    }

    async fn unblock_execution(
        &self,
        partition: Partition,
        lane_id: &LaneId,
        execution_id: &ExecutionId,
        expected_blocking_reason: &str,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        routing::unblock_execution(
            self,
            partition,
            lane_id,
            execution_id,
            expected_blocking_reason,
            now_ms,
        )
        .await
    }

    async fn claim_for_worker(
        &self,
        args: ClaimForWorkerArgs,
    ) -> Result<ClaimForWorkerOutcome, EngineError> {
        routing::claim_for_worker(self, args).await
    }

    // ── Worker registry ──────────────────────────────────────────────────────────────────

    async fn register_worker(
        &self,
        args: RegisterWorkerArgs,
    ) -> Result<RegisterWorkerOutcome, EngineError> {
        workers::register_worker(self, args).await
    }

    async fn heartbeat_worker(
        &self,
        args: HeartbeatWorkerArgs,
    ) -> Result<HeartbeatWorkerOutcome, EngineError> {
        workers::heartbeat_worker(self, args).await
    }

    async fn mark_worker_dead(
        &self,
        args: MarkWorkerDeadArgs,
    ) -> Result<MarkWorkerDeadOutcome, EngineError> {
        workers::mark_worker_dead(self, args).await
    }

    async fn list_workers(&self, args: ListWorkersArgs) -> Result<ListWorkersResult, EngineError> {
        workers::list_workers(self, args).await
    }

    // ── Tags and namespace ───────────────────────────────────────────────────────────────

    async fn set_execution_tag(
        &self,
        execution_id: &ExecutionId,
        key: &str,
        value: &str,
    ) -> Result<(), EngineError> {
        tags::set_execution_tag(self, execution_id, key, value).await
    }

    async fn get_execution_tag(
        &self,
        execution_id: &ExecutionId,
        key: &str,
    ) -> Result<Option<String>, EngineError> {
        tags::get_execution_tag(self, execution_id, key).await
    }

    async fn get_execution_namespace(
        &self,
        execution_id: &ExecutionId,
    ) -> Result<Option<String>, EngineError> {
        tags::get_execution_namespace(self, execution_id).await
    }

    // ── Operator ops and low-level reads ─────────────────────────────────────────────────

    async fn change_priority(
        &self,
        args: ChangePriorityArgs,
    ) -> Result<ChangePriorityResult, EngineError> {
        operator::change_priority(self, args).await
    }

    async fn read_exec_core_fields(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
        fields: &[&str],
    ) -> Result<std::collections::HashMap<String, Option<String>>, EngineError> {
        operator::read_exec_core_fields(self, partition, execution_id, fields).await
    }

    async fn list_lanes(
        &self,
        cursor: Option<LaneId>,
        limit: usize,
    ) -> Result<ListLanesPage, EngineError> {
        operator::list_lanes(self, cursor, limit).await
    }

    async fn server_time_ms(&self) -> Result<u64, EngineError> {
        operator::server_time_ms(self).await
    }

    async fn replay_execution(
        &self,
        args: ReplayExecutionArgs,
    ) -> Result<ReplayExecutionResult, EngineError> {
        operator::replay_execution(self, args).await
    }

    async fn list_executions(
        &self,
        partition: PartitionKey,
        cursor: Option<ExecutionId>,
        limit: usize,
    ) -> Result<ListExecutionsPage, EngineError> {
        operator::list_executions(self, partition, cursor, limit).await
    }

    async fn expire_execution(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
        phase: ExpirePhase,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        operator::expire_execution(self, partition, execution_id, phase, now_ms).await
    }

    async fn reconcile_execution_index(
        &self,
        partition: Partition,
        lanes: &[LaneId],
        filter: &ScannerFilter,
    ) -> Result<ReconcileCounts, EngineError> {
        operator::reconcile_execution_index(self, partition, lanes, filter).await
    }

    async fn trim_retention(
        &self,
        partition: Partition,
        lane_id: &LaneId,
        retention_ms: u64,
        now_ms: TimestampMs,
        batch_size: u32,
        filter: &ScannerFilter,
    ) -> Result<u32, EngineError> {
        operator::trim_retention(
            self,
            operator::TrimRetention {
                partition,
                lane_id,
                retention_ms,
                now: now_ms,
                batch_size,
                filter,
            },
        )
        .await
    }

    // ── Suspension, waitpoints and signals ──────────────────────────────────────────────────

    async fn suspend(
        &self,
        handle: &Handle,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        suspension::suspend(self, handle, args).await
    }

    async fn suspend_by_triple(
        &self,
        exec_id: ExecutionId,
        triple: LeaseFence,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        suspension::suspend_by_triple(self, exec_id, triple, args).await
    }

    async fn create_waitpoint(
        &self,
        handle: &Handle,
        waitpoint_key: &str,
        expires_in: Duration,
    ) -> Result<PendingWaitpoint, EngineError> {
        suspension::create_waitpoint(self, handle, waitpoint_key, expires_in).await
    }

    async fn observe_signals(&self, handle: &Handle) -> Result<Vec<ResumeSignal>, EngineError> {
        suspension::observe_signals(self, handle).await
    }

    async fn read_waitpoint_token(
        &self,
        partition: PartitionKey,
        waitpoint_id: &WaitpointId,
    ) -> Result<Option<String>, EngineError> {
        suspension::read_waitpoint_token(self, partition, waitpoint_id).await
    }

    async fn deliver_signal(
        &self,
        args: DeliverSignalArgs,
    ) -> Result<DeliverSignalResult, EngineError> {
        suspension::deliver_signal(self, args).await
    }

    async fn deliver_approval_signal(
        &self,
        args: DeliverApprovalSignalArgs,
    ) -> Result<DeliverSignalResult, EngineError> {
        suspension::deliver_approval_signal(self, args).await
    }

    async fn list_pending_waitpoints(
        &self,
        args: ListPendingWaitpointsArgs,
    ) -> Result<ListPendingWaitpointsResult, EngineError> {
        suspension::list_pending_waitpoints(self, args).await
    }

    async fn seed_waitpoint_hmac_secret(
        &self,
        args: SeedWaitpointHmacSecretArgs,
    ) -> Result<SeedOutcome, EngineError> {
        suspension::seed_waitpoint_hmac_secret(self, args).await
    }

    async fn rotate_waitpoint_hmac_secret_all(
        &self,
        args: RotateWaitpointHmacSecretAllArgs,
    ) -> Result<RotateWaitpointHmacSecretAllResult, EngineError> {
        suspension::rotate_waitpoint_hmac_secret_all(self, args).await
    }

    async fn delay(&self, handle: &Handle, delay_until: TimestampMs) -> Result<(), EngineError> {
        suspension::delay(self, handle, delay_until).await
    }

    async fn cancel(&self, handle: &Handle, reason: &str) -> Result<(), EngineError> {
        suspension::cancel(self, handle, reason).await
    }

    async fn close_waitpoint(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
        waitpoint_id: &str,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        suspension::close_waitpoint(self, partition, execution_id, waitpoint_id, now_ms).await
    }

    async fn expire_suspension(
        &self,
        partition: Partition,
        execution_id: &ExecutionId,
        now_ms: TimestampMs,
    ) -> Result<(), EngineError> {
        suspension::expire_suspension(self, partition, execution_id, now_ms).await
    }

    async fn list_suspended(
        &self,
        partition: PartitionKey,
        cursor: Option<ExecutionId>,
        limit: usize,
    ) -> Result<ListSuspendedPage, EngineError> {
        suspension::list_suspended(self, partition, cursor, limit).await
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

    /// This backend, so that a holder of `Arc<dyn EngineBackend>` can reach
    /// [`SqliteBackend`]'s own methods (`downcast_ref::<SqliteBackend>()`).
    fn as_any(&self) -> &(dyn std::any::Any + 'static) {
        self
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

    async fn drain_sibling_cancel_group(
        &self,
        flow_partition: Partition,
        flow_id: &FlowId,
        downstream_eid: &ExecutionId,
    ) -> Result<(), EngineError> {
        flows::drain_sibling_cancel_group(self, flow_partition, flow_id, downstream_eid).await
    }

    async fn reconcile_sibling_cancel_group(
        &self,
        flow_partition: Partition,
        flow_id: &FlowId,
        downstream_eid: &ExecutionId,
    ) -> Result<SiblingCancelReconcileAction, EngineError> {
        flows::reconcile_sibling_cancel_group(self, flow_partition, flow_id, downstream_eid).await
    }

    async fn project_flow_summary(
        &self,
        partition: Partition,
        flow_id: &FlowId,
        now_ms: TimestampMs,
    ) -> Result<bool, EngineError> {
        flows::project_flow_summary(self, partition, flow_id, now_ms).await
    }

    fn capabilities(&self) -> Capabilities {
        capabilities::capabilities()
    }

    /// Ends this backend's tails (each returns what a last page finds) and subscriptions (each
    /// yields `StreamDisconnected` with its cursor), and stops its background tasks within
    /// `grace`; operations keep working.
    async fn shutdown_prepare(&self, grace: Duration) -> Result<(), EngineError> {
        self.begin_shutdown();
        let aborted = self.stop_timers(grace).await;
        if aborted > 0 {
            tracing::warn!(
                aborted,
                "shutdown_prepare: background tasks did not stop in time"
            );
        }
        Ok(())
    }

    // ── Budgets, quota policies and admission ────────────────────────────────────────────

    async fn create_budget(
        &self,
        args: CreateBudgetArgs,
    ) -> Result<CreateBudgetResult, EngineError> {
        budgets::create_budget(self, args).await
    }

    async fn reset_budget(&self, args: ResetBudgetArgs) -> Result<ResetBudgetResult, EngineError> {
        budgets::reset_budget(self, args).await
    }

    async fn get_budget_status(&self, id: &BudgetId) -> Result<BudgetStatus, EngineError> {
        budgets::get_budget_status(self, id).await
    }

    async fn report_usage(
        &self,
        handle: &Handle,
        budget: &BudgetId,
        dimensions: UsageDimensions,
    ) -> Result<ReportUsageResult, EngineError> {
        budgets::report_usage(self, handle, budget, dimensions).await
    }

    async fn report_usage_admin(
        &self,
        budget: &BudgetId,
        args: ReportUsageAdminArgs,
    ) -> Result<ReportUsageResult, EngineError> {
        budgets::report_usage_admin(self, budget, args).await
    }

    async fn record_spend(&self, args: RecordSpendArgs) -> Result<ReportUsageResult, EngineError> {
        budgets::record_spend(self, args).await
    }

    async fn release_budget(&self, args: ReleaseBudgetArgs) -> Result<(), EngineError> {
        budgets::release_budget(self, args).await
    }

    async fn read_budget_usage_and_limits(
        &self,
        budget_id: &BudgetId,
    ) -> Result<BudgetUsageAndLimits, EngineError> {
        budgets::read_budget_usage_and_limits(self, budget_id).await
    }

    async fn create_quota_policy(
        &self,
        args: CreateQuotaPolicyArgs,
    ) -> Result<CreateQuotaPolicyResult, EngineError> {
        budgets::create_quota_policy(self, args).await
    }

    async fn check_admission(
        &self,
        quota_policy_id: &QuotaPolicyId,
        _dimension: &str,
        args: CheckAdmissionArgs,
    ) -> Result<CheckAdmissionResult, EngineError> {
        budgets::check_admission(self, quota_policy_id, args).await
    }

    async fn read_quota_policy_limits(
        &self,
        quota_policy_id: &QuotaPolicyId,
    ) -> Result<Option<QuotaPolicyLimits>, EngineError> {
        budgets::read_quota_policy_limits(self, quota_policy_id).await
    }

    async fn release_admission(
        &self,
        args: ReleaseAdmissionArgs,
    ) -> Result<ReleaseAdmissionResult, EngineError> {
        budgets::release_admission(self, args).await
    }

    /// Every policy is reconciled whichever partition is named: this backend keeps all quota
    /// rows in one partition.
    async fn reconcile_quota_counters(
        &self,
        _partition: Partition,
        now_ms: TimestampMs,
    ) -> Result<ReconcileCounts, EngineError> {
        budgets::reconcile_quota_counters(self, now_ms).await
    }

    /// Every budget is reconciled whichever partition is named: this backend keeps all budget
    /// rows in one partition.
    async fn reconcile_budget_counters(
        &self,
        _partition: Partition,
        now_ms: TimestampMs,
    ) -> Result<ReconcileCounts, EngineError> {
        budgets::reconcile_budget_counters(self, now_ms).await
    }

    async fn block_execution_for_admission(
        &self,
        args: BlockExecutionForAdmissionArgs,
    ) -> Result<BlockExecutionForAdmissionOutcome, EngineError> {
        budgets::block_execution_for_admission(self, args).await
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

    async fn subscribe_signal_delivery(
        &self,
        cursor: stream_subscribe::StreamCursor,
        filter: &ScannerFilter,
    ) -> Result<SignalDeliverySubscription, EngineError> {
        streams::subscribe_signal_delivery(self, cursor, filter).await
    }

    async fn subscribe_instance_tags(
        &self,
        cursor: stream_subscribe::StreamCursor,
    ) -> Result<InstanceTagSubscription, EngineError> {
        streams::subscribe_instance_tags(self, cursor).await
    }
}
