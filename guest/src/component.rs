//! The built-in component: one `Guest` implementation per exported interface, each function
//! forwarding to the logic with the host's database ([`HostDb`]), the `export!` call and the
//! component's allocator.
//!
//! A custom guest can delegate to [`Component`] (`<Component as scheduling::Guest>::op(args)`)
//! for every operation it keeps; see `examples/custom-guest`.

use crate::bindings::budgets::{
    AdmissionOutcome, BlockForAdmissionArgs, BlockForAdmissionOutcome, BudgetStatus,
    BudgetUsageAndLimits, CheckAdmissionArgs, CreateBudgetArgs, CreateOutcome,
    CreateQuotaPolicyArgs, QuotaPolicyLimits, ReconcileCounts, RecordSpendArgs,
    ReportUsageAdminArgs, ReportUsageArgs, UsageOutcome,
};
use crate::bindings::flows::{
    AddExecutionArgs, AddExecutionOutcome, ApplyDependencyArgs, ApplyDependencyOutcome,
    CancelFlowHeaderArgs, CancelFlowHeaderOutcome, CancelFlowOutcome, CancelFlowPolicy,
    CascadeOutcome, ChildWaitLease, CreateFlowArgs, CreateFlowOutcome, EdgeDirection,
    EdgeGroupPolicy, EdgeView, FlowPage, FlowView, ResolveDependencyArgs, ResolveOutcome,
    StageEdgeArgs, StageEdgeOutcome,
};
use crate::bindings::lease_holder::{
    CompleteExecutionArgs, FailExecutionArgs, FailOutcome, FailureClass, HandleLease,
    RenewLeaseArgs,
};
use crate::bindings::operator::{ChangePriorityArgs, LanePage};
use crate::bindings::reads::{ExecutionContext, ExecutionView};
use crate::bindings::recovery::{
    CancelExecutionArgs, ClaimResumedExecutionArgs, ExpiredLease, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ResumeExecutionArgs, ResumeGrantClaimArgs, RevokeLeaseArgs, RevokeLeaseOutcome,
};
use crate::bindings::routing::{
    BlockRouteArgs, BlockRouteOutcome, ClaimForWorkerArgs, ClaimGrant, ScanEligibleArgs,
    UnblockExecutionArgs,
};
use crate::bindings::scheduling::{
    ClaimArgs, ClaimExecutionArgs, ClaimGrantOutcome, CreateExecutionArgs, CreateExecutionOutcome,
    IssueClaimGrantArgs, IssueGrantAndClaimArgs,
};
use crate::bindings::streams::{
    AppendFrameArgs, AppendFrameOutcome, FramePage, FrameQuery, Heads, Outbox, OutboxFilter,
    OutboxPage, SummaryDocument,
};
use crate::bindings::suspension::{
    DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalOutcome, ListPendingWaitpointsArgs,
    ListSuspendedArgs, PendingWaitpointsPage, ResumeSignal, SignedWaitpoint, SuspendArgs,
    SuspendOutcome, SuspendedPage,
};
use crate::bindings::workers::{
    HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, MarkWorkerDeadArgs,
    MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome, WorkerPage,
};
use crate::bindings::{
    budgets, flows, lease_holder, operator, reads, recovery, routing, scheduling, streams,
    suspension, tags, workers,
};
use crate::db::HostDb;
use crate::suspension::tokens::HostTokens;
use crate::types::{ClaimedExecution, EngineError, LeaseFence, PublicState, TimestampMs};

/// The built-in component allocates through [`crate::small_blocks::SmallBlocks`].
#[cfg(all(
    feature = "export",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: crate::small_blocks::SmallBlocks = crate::small_blocks::SmallBlocks::new();

/// The built-in component: each export forwards to the logic with the host's database. A custom
/// guest can delegate to it (`<Component as scheduling::Guest>::op(args)`) for every operation
/// it keeps.
pub struct Component;

impl scheduling::Guest for Component {
    fn create_execution(args: CreateExecutionArgs) -> Result<CreateExecutionOutcome, EngineError> {
        crate::scheduling::create_execution(&mut HostDb, &args)
    }

    fn issue_claim_grant(args: IssueClaimGrantArgs) -> Result<(), EngineError> {
        crate::scheduling::issue_claim_grant(&mut HostDb, &args)
    }

    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        crate::scheduling::claim_execution(&mut HostDb, &args)
    }

    fn issue_grant_and_claim(
        args: IssueGrantAndClaimArgs,
    ) -> Result<ClaimGrantOutcome, EngineError> {
        crate::scheduling::issue_grant_and_claim(&mut HostDb, &args)
    }

    fn claim(args: ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
        crate::scheduling::claim(&mut HostDb, &args)
    }

    fn promote_delayed(execution_id: String, now: TimestampMs) -> Result<(), EngineError> {
        crate::scheduling::promote_delayed(&mut HostDb, &execution_id, now)
    }
}

impl lease_holder::Guest for Component {
    fn renew_lease(args: RenewLeaseArgs) -> Result<TimestampMs, EngineError> {
        crate::lease_holder::renew_lease(&mut HostDb, &args)
    }

    fn complete_execution(args: CompleteExecutionArgs) -> Result<(), EngineError> {
        crate::lease_holder::complete_execution(&mut HostDb, &args)
    }

    fn fail_execution(args: FailExecutionArgs) -> Result<FailOutcome, EngineError> {
        crate::lease_holder::fail_execution(&mut HostDb, &args)
    }

    fn renew(lease: HandleLease, now: TimestampMs) -> Result<TimestampMs, EngineError> {
        crate::lease_holder::renew(&mut HostDb, &lease, now)
    }

    fn progress(
        lease: HandleLease,
        percent: Option<u8>,
        message: Option<String>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::lease_holder::progress(&mut HostDb, &lease, percent, message.as_deref(), now)
    }

    fn complete(
        lease: HandleLease,
        payload: Option<Vec<u8>>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::lease_holder::complete(&mut HostDb, &lease, payload.as_deref(), now)
    }

    fn fail(
        lease: HandleLease,
        message: String,
        class: FailureClass,
        now: TimestampMs,
    ) -> Result<FailOutcome, EngineError> {
        crate::lease_holder::fail(&mut HostDb, &lease, &message, class, now)
    }
}

impl recovery::Guest for Component {
    fn cancel_execution(args: CancelExecutionArgs) -> Result<(), EngineError> {
        crate::recovery::cancel_execution(&mut HostDb, &args)
    }

    fn revoke_lease(args: RevokeLeaseArgs) -> Result<RevokeLeaseOutcome, EngineError> {
        crate::recovery::revoke_lease(&mut HostDb, &args)
    }

    fn claim_resumed_execution(
        args: ClaimResumedExecutionArgs,
    ) -> Result<ClaimedExecution, EngineError> {
        crate::recovery::claim_resumed_execution(&mut HostDb, &args)
    }

    fn resume_execution(args: ResumeExecutionArgs) -> Result<PublicState, EngineError> {
        crate::recovery::resume_execution(&mut HostDb, &args)
    }

    fn mark_lease_expired_if_due(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::recovery::mark_lease_expired_if_due(&mut HostDb, &execution_id, now)
    }

    fn list_expired_leases(args: ListExpiredLeasesArgs) -> Result<Vec<ExpiredLease>, EngineError> {
        crate::recovery::list_expired_leases(&mut HostDb, &args)
    }

    fn issue_reclaim_grant(
        args: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        crate::recovery::issue_reclaim_grant(&mut HostDb, &args)
    }

    fn reclaim_execution(
        args: ReclaimExecutionArgs,
    ) -> Result<ReclaimExecutionOutcome, EngineError> {
        crate::recovery::reclaim_execution(&mut HostDb, &args)
    }

    fn claim_from_resume_grant(
        args: ResumeGrantClaimArgs,
    ) -> Result<Option<ClaimedExecution>, EngineError> {
        crate::recovery::claim_from_resume_grant(&mut HostDb, &args)
    }
}

impl reads::Guest for Component {
    fn read_execution(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<Option<ExecutionView>, EngineError> {
        crate::reads::read_execution(&mut HostDb, &execution_id, now)
    }

    fn get_execution_result(execution_id: String) -> Result<Option<Vec<u8>>, EngineError> {
        crate::reads::get_execution_result(&mut HostDb, &execution_id)
    }

    fn read_execution_context(
        execution_id: String,
    ) -> Result<Option<ExecutionContext>, EngineError> {
        crate::reads::read_execution_context(&mut HostDb, &execution_id)
    }

    fn ping() -> Result<(), EngineError> {
        crate::reads::ping(&mut HostDb)
    }
}

impl budgets::Guest for Component {
    fn create_budget(args: CreateBudgetArgs) -> Result<CreateOutcome, EngineError> {
        crate::budgets::create_budget(&mut HostDb, &args)
    }

    fn reset_budget(
        budget_id: String,
        now: TimestampMs,
    ) -> Result<Option<TimestampMs>, EngineError> {
        crate::budgets::reset_budget(&mut HostDb, &budget_id, now)
    }

    fn get_budget_status(budget_id: String) -> Result<BudgetStatus, EngineError> {
        crate::budgets::get_budget_status(&mut HostDb, &budget_id)
    }

    fn report_usage_admin(args: ReportUsageAdminArgs) -> Result<UsageOutcome, EngineError> {
        crate::budgets::report_usage_admin(&mut HostDb, &args)
    }

    fn report_usage(args: ReportUsageArgs) -> Result<UsageOutcome, EngineError> {
        crate::budgets::report_usage(&mut HostDb, &args)
    }

    fn record_spend(args: RecordSpendArgs) -> Result<UsageOutcome, EngineError> {
        crate::budgets::record_spend(&mut HostDb, &args)
    }

    fn release_budget(
        budget_id: String,
        execution_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::budgets::release_budget(&mut HostDb, &budget_id, &execution_id, now)
    }

    fn read_budget_usage_and_limits(
        budget_id: String,
    ) -> Result<BudgetUsageAndLimits, EngineError> {
        crate::budgets::read_budget_usage_and_limits(&mut HostDb, &budget_id)
    }

    fn due_budget_resets(now: TimestampMs, limit: u32) -> Result<Vec<String>, EngineError> {
        crate::budgets::due_budget_resets(&mut HostDb, now, limit)
    }

    fn reset_budget_if_due(budget_id: String, now: TimestampMs) -> Result<bool, EngineError> {
        crate::budgets::reset_budget_if_due(&mut HostDb, &budget_id, now)
    }

    fn create_quota_policy(args: CreateQuotaPolicyArgs) -> Result<CreateOutcome, EngineError> {
        crate::budgets::create_quota_policy(&mut HostDb, &args)
    }

    fn check_admission(args: CheckAdmissionArgs) -> Result<AdmissionOutcome, EngineError> {
        crate::budgets::check_admission(&mut HostDb, &args)
    }

    fn read_quota_policy_limits(
        quota_policy_id: String,
    ) -> Result<Option<QuotaPolicyLimits>, EngineError> {
        crate::budgets::read_quota_policy_limits(&mut HostDb, &quota_policy_id)
    }

    fn release_admission(quota_policy_id: String, execution_id: String) -> Result<(), EngineError> {
        crate::budgets::release_admission(&mut HostDb, &quota_policy_id, &execution_id)
    }

    fn reconcile_quota_counters(now: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        crate::budgets::reconcile_quota_counters(&mut HostDb, now)
    }

    fn block_execution_for_admission(
        args: BlockForAdmissionArgs,
    ) -> Result<BlockForAdmissionOutcome, EngineError> {
        crate::budgets::block_execution_for_admission(&mut HostDb, &args)
    }

    fn reconcile_budget_counters(now: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        crate::budgets::reconcile_budget_counters(&mut HostDb, now)
    }
}

impl routing::Guest for Component {
    fn scan_eligible_executions(args: ScanEligibleArgs) -> Result<Vec<String>, EngineError> {
        crate::routing::scan_eligible_executions(&mut HostDb, &args)
    }

    fn block_route(args: BlockRouteArgs) -> Result<BlockRouteOutcome, EngineError> {
        crate::routing::block_route(&mut HostDb, &args)
    }

    fn unblock_execution(args: UnblockExecutionArgs) -> Result<(), EngineError> {
        crate::routing::unblock_execution(&mut HostDb, &args)
    }

    fn claim_for_worker(args: ClaimForWorkerArgs) -> Result<Option<ClaimGrant>, EngineError> {
        crate::routing::claim_for_worker(&mut HostDb, &args)
    }
}

impl workers::Guest for Component {
    fn register_worker(args: RegisterWorkerArgs) -> Result<RegisterWorkerOutcome, EngineError> {
        crate::workers::register_worker(&mut HostDb, &args)
    }

    fn heartbeat_worker(args: HeartbeatWorkerArgs) -> Result<HeartbeatWorkerOutcome, EngineError> {
        crate::workers::heartbeat_worker(&mut HostDb, &args)
    }

    fn mark_worker_dead(args: MarkWorkerDeadArgs) -> Result<MarkWorkerDeadOutcome, EngineError> {
        crate::workers::mark_worker_dead(&mut HostDb, &args)
    }

    fn list_workers(args: ListWorkersArgs) -> Result<WorkerPage, EngineError> {
        crate::workers::list_workers(&mut HostDb, &args)
    }

    fn sweep_expired_workers(now: TimestampMs) -> Result<u32, EngineError> {
        crate::workers::sweep_expired_workers(&mut HostDb, now)
    }
}

impl tags::Guest for Component {
    fn set_execution_tag(
        execution_id: String,
        key: String,
        value: String,
    ) -> Result<(), EngineError> {
        crate::tags::set_execution_tag(&mut HostDb, &execution_id, &key, &value)
    }

    fn get_execution_tag(execution_id: String, key: String) -> Result<Option<String>, EngineError> {
        crate::tags::get_execution_tag(&mut HostDb, &execution_id, &key)
    }

    fn get_execution_namespace(execution_id: String) -> Result<Option<String>, EngineError> {
        crate::tags::get_execution_namespace(&mut HostDb, &execution_id)
    }
}

impl operator::Guest for Component {
    fn change_priority(args: ChangePriorityArgs) -> Result<(), EngineError> {
        crate::operator::change_priority(&mut HostDb, &args)
    }

    fn read_exec_core_fields(
        execution_id: String,
        fields: Vec<String>,
    ) -> Result<Vec<Option<String>>, EngineError> {
        crate::operator::read_exec_core_fields(&mut HostDb, &execution_id, &fields)
    }

    fn list_lanes(after: Option<String>, limit: u32) -> Result<LanePage, EngineError> {
        crate::operator::list_lanes(&mut HostDb, after.as_deref(), limit)
    }

    fn server_time_ms() -> Result<TimestampMs, EngineError> {
        crate::operator::server_time_ms(&mut HostDb)
    }

    fn replay_execution(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<crate::types::PublicState, EngineError> {
        crate::operator::replay::replay_execution(&mut HostDb, &execution_id, now)
    }

    fn list_executions(
        partition: u16,
        after: Option<String>,
        limit: u32,
    ) -> Result<operator::ExecutionPage, EngineError> {
        crate::operator::listing::list_executions(&mut HostDb, partition, after.as_deref(), limit)
    }

    fn expire_execution(
        execution_id: String,
        phase: operator::ExpirePhase,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::operator::expire::expire_execution(&mut HostDb, &execution_id, phase, now)
    }

    fn reconcile_execution_index(
        partition: u16,
        lanes: Vec<String>,
        filter: operator::ExecutionFilter,
        now: TimestampMs,
    ) -> Result<operator::ReconcileCounts, EngineError> {
        crate::operator::retention::reconcile_execution_index(
            &mut HostDb,
            partition,
            &lanes,
            &filter,
            now,
        )
    }

    fn trim_retention(args: operator::TrimRetentionArgs) -> Result<u32, EngineError> {
        crate::operator::retention::trim_retention(&mut HostDb, &args)
    }

    fn due_expirations(
        now: TimestampMs,
        limit: u32,
    ) -> Result<Vec<operator::DueExpiration>, EngineError> {
        crate::operator::timers::due_expirations(&mut HostDb, now, limit)
    }

    fn retention_targets(
        cutoff: TimestampMs,
        limit: u32,
    ) -> Result<Vec<operator::RetentionTarget>, EngineError> {
        crate::operator::timers::retention_targets(&mut HostDb, cutoff, limit)
    }
}

impl suspension::Guest for Component {
    fn suspend(
        lease: suspension::HandleLease,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        crate::suspension::suspend(&mut HostDb, &mut HostTokens, &lease, &args)
    }

    fn suspend_by_triple(
        execution_id: String,
        fence: LeaseFence,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        crate::suspension::suspend_by_triple(
            &mut HostDb,
            &mut HostTokens,
            &execution_id,
            &fence,
            &args,
        )
    }

    fn create_waitpoint(
        lease: suspension::HandleLease,
        waitpoint_key: String,
        expires_at: TimestampMs,
        now: TimestampMs,
    ) -> Result<SignedWaitpoint, EngineError> {
        crate::suspension::create_waitpoint(
            &mut HostDb,
            &mut HostTokens,
            &lease,
            &waitpoint_key,
            expires_at,
            now,
        )
    }

    fn observe_signals(lease: suspension::HandleLease) -> Result<Vec<ResumeSignal>, EngineError> {
        crate::suspension::observe_signals(&mut HostDb, &lease)
    }

    fn read_waitpoint_token(
        partition: u16,
        waitpoint_id: String,
    ) -> Result<Option<String>, EngineError> {
        crate::suspension::read_waitpoint_token(&mut HostDb, partition, &waitpoint_id)
    }

    fn deliver_signal(args: DeliverSignalArgs) -> Result<DeliverSignalOutcome, EngineError> {
        crate::suspension::deliver_signal(&mut HostDb, &mut HostTokens, &args)
    }

    fn deliver_approval_signal(
        args: DeliverApprovalSignalArgs,
    ) -> Result<DeliverSignalOutcome, EngineError> {
        crate::suspension::deliver_approval_signal(&mut HostDb, &mut HostTokens, &args)
    }

    fn list_pending_waitpoints(
        args: ListPendingWaitpointsArgs,
    ) -> Result<PendingWaitpointsPage, EngineError> {
        crate::suspension::list_pending_waitpoints(&mut HostDb, &args)
    }

    fn delay(
        lease: suspension::HandleLease,
        delay_until: TimestampMs,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::suspension::delay(&mut HostDb, &lease, delay_until, now)
    }

    fn cancel(
        lease: suspension::HandleLease,
        reason: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::suspension::cancel(&mut HostDb, &lease, &reason, now)
    }

    fn close_waitpoint(
        execution_id: String,
        waitpoint_id: String,
        _now: TimestampMs,
    ) -> Result<(), EngineError> {
        crate::suspension::close_waitpoint(&mut HostDb, &execution_id, &waitpoint_id)
    }

    fn expire_suspension(execution_id: String, now: TimestampMs) -> Result<(), EngineError> {
        crate::suspension::expire_suspension(&mut HostDb, &execution_id, now)
    }

    fn list_suspended(args: ListSuspendedArgs) -> Result<SuspendedPage, EngineError> {
        crate::suspension::list_suspended(&mut HostDb, &args)
    }
}

impl streams::Guest for Component {
    fn append_frame(args: AppendFrameArgs) -> Result<AppendFrameOutcome, EngineError> {
        crate::streams::append_frame(&mut HostDb, &args)
    }

    fn read_frames(query: FrameQuery) -> Result<FramePage, EngineError> {
        crate::streams::read_frames(&mut HostDb, &query)
    }

    fn read_summary(
        execution_id: String,
        attempt_index: u32,
    ) -> Result<Option<SummaryDocument>, EngineError> {
        crate::streams::read_summary(&mut HostDb, &execution_id, attempt_index)
    }

    fn read_outbox(
        source: Outbox,
        after_event_id: i64,
        limit: u32,
        byte_budget: u64,
        filter: OutboxFilter,
    ) -> Result<OutboxPage, EngineError> {
        crate::streams::read_outbox(
            &mut HostDb,
            source,
            after_event_id,
            limit,
            byte_budget,
            &filter,
        )
    }

    fn change_heads() -> Result<Heads, EngineError> {
        crate::streams::change_heads(&mut HostDb)
    }
}

impl flows::Guest for Component {
    fn create_flow(args: CreateFlowArgs) -> Result<CreateFlowOutcome, EngineError> {
        crate::flows::create_flow(&mut HostDb, &args)
    }

    fn add_execution_to_flow(args: AddExecutionArgs) -> Result<AddExecutionOutcome, EngineError> {
        crate::flows::add_execution_to_flow(&mut HostDb, &args)
    }

    fn stage_dependency_edge(args: StageEdgeArgs) -> Result<StageEdgeOutcome, EngineError> {
        crate::flows::stage_dependency_edge(&mut HostDb, &args)
    }

    fn apply_dependency_to_child(
        args: ApplyDependencyArgs,
    ) -> Result<ApplyDependencyOutcome, EngineError> {
        crate::flows::apply_dependency_to_child(&mut HostDb, &args)
    }

    fn evaluate_flow_eligibility(execution_id: String) -> Result<String, EngineError> {
        crate::flows::evaluate_flow_eligibility(&mut HostDb, &execution_id)
    }

    fn cancel_flow(
        flow_id: String,
        policy: CancelFlowPolicy,
        now: TimestampMs,
    ) -> Result<CancelFlowOutcome, EngineError> {
        crate::flows::cancel_flow(&mut HostDb, &flow_id, policy, now)
    }

    fn cancel_flow_header(
        args: CancelFlowHeaderArgs,
    ) -> Result<CancelFlowHeaderOutcome, EngineError> {
        crate::flows::cancel_flow_header(&mut HostDb, &args)
    }

    fn ack_cancel_member(flow_id: String, execution_id: String) -> Result<(), EngineError> {
        crate::flows::ack_cancel_member(&mut HostDb, &flow_id, &execution_id)
    }

    fn set_flow_tag(flow_id: String, key: String, value: String) -> Result<(), EngineError> {
        crate::flows::set_flow_tag(&mut HostDb, &flow_id, &key, &value)
    }

    fn get_flow_tag(flow_id: String, key: String) -> Result<Option<String>, EngineError> {
        crate::flows::get_flow_tag(&mut HostDb, &flow_id, &key)
    }

    fn describe_flow(flow_id: String) -> Result<Option<FlowView>, EngineError> {
        crate::flows::describe_flow(&mut HostDb, &flow_id)
    }

    fn list_flows(
        partition: u16,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<FlowPage, EngineError> {
        crate::flows::list_flows(&mut HostDb, partition, cursor.as_deref(), limit)
    }

    fn list_edges(flow_id: String, direction: EdgeDirection) -> Result<Vec<EdgeView>, EngineError> {
        crate::flows::list_edges(&mut HostDb, &flow_id, &direction)
    }

    fn describe_edge(flow_id: String, edge_id: String) -> Result<Option<EdgeView>, EngineError> {
        crate::flows::describe_edge(&mut HostDb, &flow_id, &edge_id)
    }

    fn resolve_execution_flow_id(execution_id: String) -> Result<Option<String>, EngineError> {
        crate::flows::resolve_execution_flow_id(&mut HostDb, &execution_id)
    }

    fn set_edge_group_policy(
        flow_id: String,
        downstream_execution_id: String,
        policy: EdgeGroupPolicy,
    ) -> Result<bool, EngineError> {
        crate::flows::set_edge_group_policy(
            &mut HostDb,
            &flow_id,
            &downstream_execution_id,
            &policy,
        )
    }

    fn resolve_dependency(args: ResolveDependencyArgs) -> Result<ResolveOutcome, EngineError> {
        crate::flows::resolve_dependency(&mut HostDb, &args)
    }

    fn cascade_completion(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<CascadeOutcome, EngineError> {
        crate::flows::cascade_completion(&mut HostDb, &execution_id, now)
    }

    fn wait_children(lease: ChildWaitLease, now: TimestampMs) -> Result<(), EngineError> {
        crate::flows::wait_children(&mut HostDb, &lease, now)
    }

    fn drain_sibling_cancel_group(
        flow_id: String,
        downstream_execution_id: String,
        now: TimestampMs,
    ) -> Result<u32, EngineError> {
        crate::flows::drain_sibling_cancel_group(
            &mut HostDb,
            &flow_id,
            &downstream_execution_id,
            now,
        )
    }

    fn reconcile_sibling_cancel_group(
        flow_id: String,
        downstream_execution_id: String,
    ) -> Result<flows::SiblingCancelAction, EngineError> {
        crate::flows::reconcile_sibling_cancel_group(
            &mut HostDb,
            &flow_id,
            &downstream_execution_id,
        )
    }

    fn project_flow_summary(flow_id: String, now: TimestampMs) -> Result<bool, EngineError> {
        crate::flows::project_flow_summary(&mut HostDb, &flow_id, now)
    }
}

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints. Custom guests
// turn the `export` feature off to export their own implementation instead.
#[cfg(all(target_family = "wasm", feature = "export"))]
crate::bindings::export!(Component with_types_in crate::bindings);
