//! The built-in component: one `Guest` implementation per exported interface, each function
//! forwarding to the logic with the host's database ([`HostDb`]), the `export!` call and the
//! component's allocator.
//!
//! A custom guest can delegate to [`Component`] (`<Component as scheduling::Guest>::op(args)`)
//! for every operation it keeps; see `examples/custom-guest`.

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
use crate::bindings::reads::{ExecutionContext, ExecutionView};
use crate::bindings::recovery::{
    CancelExecutionArgs, ClaimResumedExecutionArgs, ExpiredLease, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ResumeExecutionArgs, ResumeGrantClaimArgs, RevokeLeaseArgs, RevokeLeaseOutcome,
};
use crate::bindings::scheduling::{
    ClaimArgs, ClaimExecutionArgs, ClaimGrantOutcome, CreateExecutionArgs, CreateExecutionOutcome,
    IssueClaimGrantArgs, IssueGrantAndClaimArgs,
};
use crate::bindings::{flows, lease_holder, reads, recovery, scheduling};
use crate::db::HostDb;
use crate::types::{ClaimedExecution, EngineError, PublicState, TimestampMs};

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
}

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints. Custom guests
// turn the `export` feature off to export their own implementation instead.
#[cfg(all(target_family = "wasm", feature = "export"))]
crate::bindings::export!(Component with_types_in crate::bindings);
