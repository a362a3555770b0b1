//! A custom guest component: FlowFabric's built-in engine logic with one policy changed. The
//! lane scanner (`claim`, in the `scheduling` interface) hands out the **oldest** claimable
//! execution of the lane first, ignoring priority; the built-in guest takes the highest priority
//! first. Every other operation delegates to the built-in guest
//! ([`ff_engine_guest::Component`]).
//!
//! The world exports one interface per operation family; a component implements each one's
//! `Guest` trait. This one changes one function of `scheduling` and delegates the rest of it,
//! and all of `lease-holder`, `recovery`, `reads`, `routing`, `workers`, `tags`, `operator`,
//! `suspension`, `streams` and `flows`, to the built-in guest.
//!
//! Build it with `cargo build -p ff-custom-guest-example --target wasm32-wasip2 --release` and
//! run it with `ffwasm demo --guest <path to ff_custom_guest_example.wasm>` or
//! `SqliteBackend::builder(uri).guest_file(path)`; see `README.md` beside this crate.

pub mod oldest_first;

use ff_engine_guest::Component as Builtin;
use ff_engine_guest::bindings::budgets::{
    self, AdmissionOutcome, BlockForAdmissionArgs, BlockForAdmissionOutcome, BudgetStatus,
    BudgetUsageAndLimits, CheckAdmissionArgs, CreateBudgetArgs, CreateOutcome,
    CreateQuotaPolicyArgs, QuotaPolicyLimits, ReconcileCounts, RecordSpendArgs,
    ReportUsageAdminArgs, ReportUsageArgs, UsageOutcome,
};
use ff_engine_guest::bindings::flows::{
    self, AddExecutionArgs, AddExecutionOutcome, ApplyDependencyArgs, ApplyDependencyOutcome,
    CancelFlowHeaderArgs, CancelFlowHeaderOutcome, CancelFlowOutcome, CancelFlowPolicy,
    CascadeOutcome, ChildWaitLease, CreateFlowArgs, CreateFlowOutcome, EdgeDirection,
    EdgeGroupPolicy, EdgeView, FlowPage, FlowView, ResolveDependencyArgs, ResolveOutcome,
    StageEdgeArgs, StageEdgeOutcome,
};
use ff_engine_guest::bindings::lease_holder::{
    self, CompleteExecutionArgs, FailExecutionArgs, FailOutcome, FailureClass, HandleLease,
    RenewLeaseArgs,
};
use ff_engine_guest::bindings::operator::{self, ChangePriorityArgs, LanePage};
use ff_engine_guest::bindings::reads::{self, ExecutionContext, ExecutionView};
use ff_engine_guest::bindings::recovery::{
    self, CancelExecutionArgs, ClaimResumedExecutionArgs, ExpiredLease, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ResumeExecutionArgs, ResumeGrantClaimArgs, RevokeLeaseArgs, RevokeLeaseOutcome,
};
use ff_engine_guest::bindings::routing::{
    self, BlockRouteArgs, BlockRouteOutcome, ClaimForWorkerArgs, ClaimGrant, ScanEligibleArgs,
    UnblockExecutionArgs,
};
use ff_engine_guest::bindings::scheduling::{
    self, ClaimArgs, ClaimExecutionArgs, ClaimGrantOutcome, CreateExecutionArgs,
    CreateExecutionOutcome, IssueClaimGrantArgs, IssueGrantAndClaimArgs,
};
use ff_engine_guest::bindings::streams::{
    self, AppendFrameArgs, AppendFrameOutcome, FramePage, FrameQuery, Heads, Outbox, OutboxFilter,
    OutboxPage, SummaryDocument,
};
use ff_engine_guest::bindings::suspension::{
    self, DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalOutcome,
    ListPendingWaitpointsArgs, ListSuspendedArgs, PendingWaitpointsPage, ResumeSignal,
    SignedWaitpoint, SuspendArgs, SuspendOutcome, SuspendedPage,
};
use ff_engine_guest::bindings::tags;
use ff_engine_guest::bindings::workers::{
    self, HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, MarkWorkerDeadArgs,
    MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome, WorkerPage,
};
use ff_engine_guest::db::HostDb;
use ff_engine_guest::types::{ClaimedExecution, EngineError, LeaseFence, PublicState, TimestampMs};

/// The built-in guest's allocator (free lists of small blocks; see
/// [`ff_engine_guest::small_blocks`]): a library does not choose the allocator, the component
/// does.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: ff_engine_guest::small_blocks::SmallBlocks =
    ff_engine_guest::small_blocks::SmallBlocks::new();

/// The component: the built-in guest, with [`oldest_first::claim`] as the lane scanner.
pub struct OldestFirst;

impl scheduling::Guest for OldestFirst {
    fn claim(args: ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
        oldest_first::claim(&mut HostDb, &args)
    }

    // Everything below is the built-in guest's behaviour.

    fn create_execution(args: CreateExecutionArgs) -> Result<CreateExecutionOutcome, EngineError> {
        <Builtin as scheduling::Guest>::create_execution(args)
    }

    fn issue_claim_grant(args: IssueClaimGrantArgs) -> Result<(), EngineError> {
        <Builtin as scheduling::Guest>::issue_claim_grant(args)
    }

    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        <Builtin as scheduling::Guest>::claim_execution(args)
    }

    fn issue_grant_and_claim(
        args: IssueGrantAndClaimArgs,
    ) -> Result<ClaimGrantOutcome, EngineError> {
        <Builtin as scheduling::Guest>::issue_grant_and_claim(args)
    }

    fn promote_delayed(execution_id: String, now: TimestampMs) -> Result<(), EngineError> {
        <Builtin as scheduling::Guest>::promote_delayed(execution_id, now)
    }
}

/// The built-in guest's lease holder operations, unchanged.
impl lease_holder::Guest for OldestFirst {
    fn renew_lease(args: RenewLeaseArgs) -> Result<TimestampMs, EngineError> {
        <Builtin as lease_holder::Guest>::renew_lease(args)
    }

    fn complete_execution(args: CompleteExecutionArgs) -> Result<(), EngineError> {
        <Builtin as lease_holder::Guest>::complete_execution(args)
    }

    fn fail_execution(args: FailExecutionArgs) -> Result<FailOutcome, EngineError> {
        <Builtin as lease_holder::Guest>::fail_execution(args)
    }

    fn renew(lease: HandleLease, now: TimestampMs) -> Result<TimestampMs, EngineError> {
        <Builtin as lease_holder::Guest>::renew(lease, now)
    }

    fn progress(
        lease: HandleLease,
        percent: Option<u8>,
        message: Option<String>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as lease_holder::Guest>::progress(lease, percent, message, now)
    }

    fn complete(
        lease: HandleLease,
        payload: Option<Vec<u8>>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as lease_holder::Guest>::complete(lease, payload, now)
    }

    fn fail(
        lease: HandleLease,
        message: String,
        class: FailureClass,
        now: TimestampMs,
    ) -> Result<FailOutcome, EngineError> {
        <Builtin as lease_holder::Guest>::fail(lease, message, class, now)
    }
}

/// The built-in guest's operator and recovery operations, unchanged.
impl recovery::Guest for OldestFirst {
    fn cancel_execution(args: CancelExecutionArgs) -> Result<(), EngineError> {
        <Builtin as recovery::Guest>::cancel_execution(args)
    }

    fn revoke_lease(args: RevokeLeaseArgs) -> Result<RevokeLeaseOutcome, EngineError> {
        <Builtin as recovery::Guest>::revoke_lease(args)
    }

    fn claim_resumed_execution(
        args: ClaimResumedExecutionArgs,
    ) -> Result<ClaimedExecution, EngineError> {
        <Builtin as recovery::Guest>::claim_resumed_execution(args)
    }

    fn resume_execution(args: ResumeExecutionArgs) -> Result<PublicState, EngineError> {
        <Builtin as recovery::Guest>::resume_execution(args)
    }

    fn mark_lease_expired_if_due(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as recovery::Guest>::mark_lease_expired_if_due(execution_id, now)
    }

    fn list_expired_leases(args: ListExpiredLeasesArgs) -> Result<Vec<ExpiredLease>, EngineError> {
        <Builtin as recovery::Guest>::list_expired_leases(args)
    }

    fn issue_reclaim_grant(
        args: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        <Builtin as recovery::Guest>::issue_reclaim_grant(args)
    }

    fn reclaim_execution(
        args: ReclaimExecutionArgs,
    ) -> Result<ReclaimExecutionOutcome, EngineError> {
        <Builtin as recovery::Guest>::reclaim_execution(args)
    }

    fn claim_from_resume_grant(
        args: ResumeGrantClaimArgs,
    ) -> Result<Option<ClaimedExecution>, EngineError> {
        <Builtin as recovery::Guest>::claim_from_resume_grant(args)
    }
}

/// The built-in guest's reads, unchanged.
impl reads::Guest for OldestFirst {
    fn read_execution(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<Option<ExecutionView>, EngineError> {
        <Builtin as reads::Guest>::read_execution(execution_id, now)
    }

    fn get_execution_result(execution_id: String) -> Result<Option<Vec<u8>>, EngineError> {
        <Builtin as reads::Guest>::get_execution_result(execution_id)
    }

    fn read_execution_context(
        execution_id: String,
    ) -> Result<Option<ExecutionContext>, EngineError> {
        <Builtin as reads::Guest>::read_execution_context(execution_id)
    }

    fn ping() -> Result<(), EngineError> {
        <Builtin as reads::Guest>::ping()
    }
}

/// The built-in budgets and quotas, unchanged.
impl budgets::Guest for OldestFirst {
    fn create_budget(args: CreateBudgetArgs) -> Result<CreateOutcome, EngineError> {
        <Builtin as budgets::Guest>::create_budget(args)
    }

    fn reset_budget(
        budget_id: String,
        now: TimestampMs,
    ) -> Result<Option<TimestampMs>, EngineError> {
        <Builtin as budgets::Guest>::reset_budget(budget_id, now)
    }

    fn get_budget_status(budget_id: String) -> Result<BudgetStatus, EngineError> {
        <Builtin as budgets::Guest>::get_budget_status(budget_id)
    }

    fn report_usage_admin(args: ReportUsageAdminArgs) -> Result<UsageOutcome, EngineError> {
        <Builtin as budgets::Guest>::report_usage_admin(args)
    }

    fn report_usage(args: ReportUsageArgs) -> Result<UsageOutcome, EngineError> {
        <Builtin as budgets::Guest>::report_usage(args)
    }

    fn record_spend(args: RecordSpendArgs) -> Result<UsageOutcome, EngineError> {
        <Builtin as budgets::Guest>::record_spend(args)
    }

    fn release_budget(
        budget_id: String,
        execution_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as budgets::Guest>::release_budget(budget_id, execution_id, now)
    }

    fn read_budget_usage_and_limits(
        budget_id: String,
    ) -> Result<BudgetUsageAndLimits, EngineError> {
        <Builtin as budgets::Guest>::read_budget_usage_and_limits(budget_id)
    }

    fn due_budget_resets(now: TimestampMs, limit: u32) -> Result<Vec<String>, EngineError> {
        <Builtin as budgets::Guest>::due_budget_resets(now, limit)
    }

    fn reset_budget_if_due(budget_id: String, now: TimestampMs) -> Result<bool, EngineError> {
        <Builtin as budgets::Guest>::reset_budget_if_due(budget_id, now)
    }

    fn create_quota_policy(args: CreateQuotaPolicyArgs) -> Result<CreateOutcome, EngineError> {
        <Builtin as budgets::Guest>::create_quota_policy(args)
    }

    fn check_admission(args: CheckAdmissionArgs) -> Result<AdmissionOutcome, EngineError> {
        <Builtin as budgets::Guest>::check_admission(args)
    }

    fn read_quota_policy_limits(
        quota_policy_id: String,
    ) -> Result<Option<QuotaPolicyLimits>, EngineError> {
        <Builtin as budgets::Guest>::read_quota_policy_limits(quota_policy_id)
    }

    fn release_admission(quota_policy_id: String, execution_id: String) -> Result<(), EngineError> {
        <Builtin as budgets::Guest>::release_admission(quota_policy_id, execution_id)
    }

    fn reconcile_quota_counters(now: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        <Builtin as budgets::Guest>::reconcile_quota_counters(now)
    }

    fn block_execution_for_admission(
        args: BlockForAdmissionArgs,
    ) -> Result<BlockForAdmissionOutcome, EngineError> {
        <Builtin as budgets::Guest>::block_execution_for_admission(args)
    }

    fn reconcile_budget_counters(now: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        <Builtin as budgets::Guest>::reconcile_budget_counters(now)
    }
}

/// The built-in guest's routing, unchanged.
impl routing::Guest for OldestFirst {
    fn scan_eligible_executions(args: ScanEligibleArgs) -> Result<Vec<String>, EngineError> {
        <Builtin as routing::Guest>::scan_eligible_executions(args)
    }

    fn block_route(args: BlockRouteArgs) -> Result<BlockRouteOutcome, EngineError> {
        <Builtin as routing::Guest>::block_route(args)
    }

    fn unblock_execution(args: UnblockExecutionArgs) -> Result<(), EngineError> {
        <Builtin as routing::Guest>::unblock_execution(args)
    }

    fn claim_for_worker(args: ClaimForWorkerArgs) -> Result<Option<ClaimGrant>, EngineError> {
        <Builtin as routing::Guest>::claim_for_worker(args)
    }
}

/// The built-in guest's worker registry, unchanged.
impl workers::Guest for OldestFirst {
    fn register_worker(args: RegisterWorkerArgs) -> Result<RegisterWorkerOutcome, EngineError> {
        <Builtin as workers::Guest>::register_worker(args)
    }

    fn heartbeat_worker(args: HeartbeatWorkerArgs) -> Result<HeartbeatWorkerOutcome, EngineError> {
        <Builtin as workers::Guest>::heartbeat_worker(args)
    }

    fn mark_worker_dead(args: MarkWorkerDeadArgs) -> Result<MarkWorkerDeadOutcome, EngineError> {
        <Builtin as workers::Guest>::mark_worker_dead(args)
    }

    fn list_workers(args: ListWorkersArgs) -> Result<WorkerPage, EngineError> {
        <Builtin as workers::Guest>::list_workers(args)
    }

    fn sweep_expired_workers(now: TimestampMs) -> Result<u32, EngineError> {
        <Builtin as workers::Guest>::sweep_expired_workers(now)
    }
}

/// The built-in guest's tags, unchanged.
impl tags::Guest for OldestFirst {
    fn set_execution_tag(
        execution_id: String,
        key: String,
        value: String,
    ) -> Result<(), EngineError> {
        <Builtin as tags::Guest>::set_execution_tag(execution_id, key, value)
    }

    fn get_execution_tag(execution_id: String, key: String) -> Result<Option<String>, EngineError> {
        <Builtin as tags::Guest>::get_execution_tag(execution_id, key)
    }

    fn get_execution_namespace(execution_id: String) -> Result<Option<String>, EngineError> {
        <Builtin as tags::Guest>::get_execution_namespace(execution_id)
    }
}

/// The built-in guest's operator operations, unchanged.
impl operator::Guest for OldestFirst {
    fn change_priority(args: ChangePriorityArgs) -> Result<(), EngineError> {
        <Builtin as operator::Guest>::change_priority(args)
    }

    fn read_exec_core_fields(
        execution_id: String,
        fields: Vec<String>,
    ) -> Result<Vec<Option<String>>, EngineError> {
        <Builtin as operator::Guest>::read_exec_core_fields(execution_id, fields)
    }

    fn list_lanes(after: Option<String>, limit: u32) -> Result<LanePage, EngineError> {
        <Builtin as operator::Guest>::list_lanes(after, limit)
    }

    fn server_time_ms() -> Result<TimestampMs, EngineError> {
        <Builtin as operator::Guest>::server_time_ms()
    }

    fn replay_execution(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<PublicState, EngineError> {
        <Builtin as operator::Guest>::replay_execution(execution_id, now)
    }

    fn list_executions(
        partition: u16,
        after: Option<String>,
        limit: u32,
    ) -> Result<operator::ExecutionPage, EngineError> {
        <Builtin as operator::Guest>::list_executions(partition, after, limit)
    }

    fn expire_execution(
        execution_id: String,
        phase: operator::ExpirePhase,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as operator::Guest>::expire_execution(execution_id, phase, now)
    }

    fn reconcile_execution_index(
        partition: u16,
        lanes: Vec<String>,
        filter: operator::ExecutionFilter,
        now: TimestampMs,
    ) -> Result<operator::ReconcileCounts, EngineError> {
        <Builtin as operator::Guest>::reconcile_execution_index(partition, lanes, filter, now)
    }

    fn trim_retention(args: operator::TrimRetentionArgs) -> Result<u32, EngineError> {
        <Builtin as operator::Guest>::trim_retention(args)
    }

    fn due_expirations(
        now: TimestampMs,
        limit: u32,
    ) -> Result<Vec<operator::DueExpiration>, EngineError> {
        <Builtin as operator::Guest>::due_expirations(now, limit)
    }

    fn retention_targets(
        cutoff: TimestampMs,
        limit: u32,
    ) -> Result<Vec<operator::RetentionTarget>, EngineError> {
        <Builtin as operator::Guest>::retention_targets(cutoff, limit)
    }
}

/// The built-in guest's suspension family, unchanged (its tokens are signed by the host).
impl suspension::Guest for OldestFirst {
    fn suspend(
        lease: suspension::HandleLease,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        <Builtin as suspension::Guest>::suspend(lease, args)
    }

    fn suspend_by_triple(
        execution_id: String,
        fence: LeaseFence,
        args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        <Builtin as suspension::Guest>::suspend_by_triple(execution_id, fence, args)
    }

    fn create_waitpoint(
        lease: suspension::HandleLease,
        waitpoint_key: String,
        expires_at: TimestampMs,
        now: TimestampMs,
    ) -> Result<SignedWaitpoint, EngineError> {
        <Builtin as suspension::Guest>::create_waitpoint(lease, waitpoint_key, expires_at, now)
    }

    fn observe_signals(lease: suspension::HandleLease) -> Result<Vec<ResumeSignal>, EngineError> {
        <Builtin as suspension::Guest>::observe_signals(lease)
    }

    fn read_waitpoint_token(
        partition: u16,
        waitpoint_id: String,
    ) -> Result<Option<String>, EngineError> {
        <Builtin as suspension::Guest>::read_waitpoint_token(partition, waitpoint_id)
    }

    fn deliver_signal(args: DeliverSignalArgs) -> Result<DeliverSignalOutcome, EngineError> {
        <Builtin as suspension::Guest>::deliver_signal(args)
    }

    fn deliver_approval_signal(
        args: DeliverApprovalSignalArgs,
    ) -> Result<DeliverSignalOutcome, EngineError> {
        <Builtin as suspension::Guest>::deliver_approval_signal(args)
    }

    fn list_pending_waitpoints(
        args: ListPendingWaitpointsArgs,
    ) -> Result<PendingWaitpointsPage, EngineError> {
        <Builtin as suspension::Guest>::list_pending_waitpoints(args)
    }

    fn delay(
        lease: suspension::HandleLease,
        delay_until: TimestampMs,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as suspension::Guest>::delay(lease, delay_until, now)
    }

    fn cancel(
        lease: suspension::HandleLease,
        reason: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as suspension::Guest>::cancel(lease, reason, now)
    }

    fn close_waitpoint(
        execution_id: String,
        waitpoint_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        <Builtin as suspension::Guest>::close_waitpoint(execution_id, waitpoint_id, now)
    }

    fn expire_suspension(execution_id: String, now: TimestampMs) -> Result<(), EngineError> {
        <Builtin as suspension::Guest>::expire_suspension(execution_id, now)
    }

    fn list_suspended(args: ListSuspendedArgs) -> Result<SuspendedPage, EngineError> {
        <Builtin as suspension::Guest>::list_suspended(args)
    }
}

/// The built-in guest's streams and outbox pages, unchanged.
impl streams::Guest for OldestFirst {
    fn append_frame(args: AppendFrameArgs) -> Result<AppendFrameOutcome, EngineError> {
        <Builtin as streams::Guest>::append_frame(args)
    }

    fn read_frames(query: FrameQuery) -> Result<FramePage, EngineError> {
        <Builtin as streams::Guest>::read_frames(query)
    }

    fn read_summary(
        execution_id: String,
        attempt_index: u32,
    ) -> Result<Option<SummaryDocument>, EngineError> {
        <Builtin as streams::Guest>::read_summary(execution_id, attempt_index)
    }

    fn read_outbox(
        source: Outbox,
        after_event_id: i64,
        limit: u32,
        byte_budget: u64,
        filter: OutboxFilter,
    ) -> Result<OutboxPage, EngineError> {
        <Builtin as streams::Guest>::read_outbox(source, after_event_id, limit, byte_budget, filter)
    }

    fn change_heads() -> Result<Heads, EngineError> {
        <Builtin as streams::Guest>::change_heads()
    }
}

/// The built-in guest's flows, unchanged.
impl flows::Guest for OldestFirst {
    fn create_flow(args: CreateFlowArgs) -> Result<CreateFlowOutcome, EngineError> {
        <Builtin as flows::Guest>::create_flow(args)
    }

    fn add_execution_to_flow(args: AddExecutionArgs) -> Result<AddExecutionOutcome, EngineError> {
        <Builtin as flows::Guest>::add_execution_to_flow(args)
    }

    fn stage_dependency_edge(args: StageEdgeArgs) -> Result<StageEdgeOutcome, EngineError> {
        <Builtin as flows::Guest>::stage_dependency_edge(args)
    }

    fn apply_dependency_to_child(
        args: ApplyDependencyArgs,
    ) -> Result<ApplyDependencyOutcome, EngineError> {
        <Builtin as flows::Guest>::apply_dependency_to_child(args)
    }

    fn evaluate_flow_eligibility(execution_id: String) -> Result<String, EngineError> {
        <Builtin as flows::Guest>::evaluate_flow_eligibility(execution_id)
    }

    fn cancel_flow(
        flow_id: String,
        policy: CancelFlowPolicy,
        now: TimestampMs,
    ) -> Result<CancelFlowOutcome, EngineError> {
        <Builtin as flows::Guest>::cancel_flow(flow_id, policy, now)
    }

    fn cancel_flow_header(
        args: CancelFlowHeaderArgs,
    ) -> Result<CancelFlowHeaderOutcome, EngineError> {
        <Builtin as flows::Guest>::cancel_flow_header(args)
    }

    fn ack_cancel_member(flow_id: String, execution_id: String) -> Result<(), EngineError> {
        <Builtin as flows::Guest>::ack_cancel_member(flow_id, execution_id)
    }

    fn set_flow_tag(flow_id: String, key: String, value: String) -> Result<(), EngineError> {
        <Builtin as flows::Guest>::set_flow_tag(flow_id, key, value)
    }

    fn get_flow_tag(flow_id: String, key: String) -> Result<Option<String>, EngineError> {
        <Builtin as flows::Guest>::get_flow_tag(flow_id, key)
    }

    fn describe_flow(flow_id: String) -> Result<Option<FlowView>, EngineError> {
        <Builtin as flows::Guest>::describe_flow(flow_id)
    }

    fn list_flows(
        partition: u16,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<FlowPage, EngineError> {
        <Builtin as flows::Guest>::list_flows(partition, cursor, limit)
    }

    fn list_edges(flow_id: String, direction: EdgeDirection) -> Result<Vec<EdgeView>, EngineError> {
        <Builtin as flows::Guest>::list_edges(flow_id, direction)
    }

    fn describe_edge(flow_id: String, edge_id: String) -> Result<Option<EdgeView>, EngineError> {
        <Builtin as flows::Guest>::describe_edge(flow_id, edge_id)
    }

    fn resolve_execution_flow_id(execution_id: String) -> Result<Option<String>, EngineError> {
        <Builtin as flows::Guest>::resolve_execution_flow_id(execution_id)
    }

    fn set_edge_group_policy(
        flow_id: String,
        downstream_execution_id: String,
        policy: EdgeGroupPolicy,
    ) -> Result<bool, EngineError> {
        <Builtin as flows::Guest>::set_edge_group_policy(flow_id, downstream_execution_id, policy)
    }

    fn resolve_dependency(args: ResolveDependencyArgs) -> Result<ResolveOutcome, EngineError> {
        <Builtin as flows::Guest>::resolve_dependency(args)
    }

    fn cascade_completion(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<CascadeOutcome, EngineError> {
        <Builtin as flows::Guest>::cascade_completion(execution_id, now)
    }

    fn wait_children(lease: ChildWaitLease, now: TimestampMs) -> Result<(), EngineError> {
        <Builtin as flows::Guest>::wait_children(lease, now)
    }

    fn drain_sibling_cancel_group(
        flow_id: String,
        downstream_execution_id: String,
        now: TimestampMs,
    ) -> Result<u32, EngineError> {
        <Builtin as flows::Guest>::drain_sibling_cancel_group(flow_id, downstream_execution_id, now)
    }

    fn reconcile_sibling_cancel_group(
        flow_id: String,
        downstream_execution_id: String,
    ) -> Result<flows::SiblingCancelAction, EngineError> {
        <Builtin as flows::Guest>::reconcile_sibling_cancel_group(flow_id, downstream_execution_id)
    }

    fn project_flow_summary(flow_id: String, now: TimestampMs) -> Result<bool, EngineError> {
        <Builtin as flows::Guest>::project_flow_summary(flow_id, now)
    }
}

// Only a component build exports: the export names are not valid native symbols.
#[cfg(target_family = "wasm")]
ff_engine_guest::bindings::export!(OldestFirst with_types_in ff_engine_guest::bindings);
