//! A custom guest component: FlowFabric's built-in engine logic with one policy changed. The
//! lane scanner (`claim`, in the `scheduling` interface) hands out the **oldest** claimable
//! execution of the lane first, ignoring priority; the built-in guest takes the highest priority
//! first. Every other operation delegates to the built-in guest
//! ([`ff_engine_guest::Component`]).
//!
//! The world exports one interface per operation family; a component implements each one's
//! `Guest` trait. This one changes one function of `scheduling` and delegates the rest of it,
//! and all of `lease-holder`, `recovery`, `reads` and `flows`, to the built-in guest.
//!
//! Build it with `cargo build -p ff-custom-guest-example --target wasm32-wasip2 --release` and
//! run it with `ffwasm demo --guest <path to ff_custom_guest_example.wasm>` or
//! `SqliteBackend::builder(uri).guest_file(path)`; see `README.md` beside this crate.

pub mod oldest_first;

use ff_engine_guest::Component as Builtin;
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
use ff_engine_guest::bindings::reads::{self, ExecutionContext, ExecutionView};
use ff_engine_guest::bindings::recovery::{
    self, CancelExecutionArgs, ClaimResumedExecutionArgs, ExpiredLease, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ResumeExecutionArgs, ResumeGrantClaimArgs, RevokeLeaseArgs, RevokeLeaseOutcome,
};
use ff_engine_guest::bindings::scheduling::{
    self, ClaimArgs, ClaimExecutionArgs, ClaimGrantOutcome, CreateExecutionArgs,
    CreateExecutionOutcome, IssueClaimGrantArgs, IssueGrantAndClaimArgs,
};
use ff_engine_guest::db::HostDb;
use ff_engine_guest::types::{ClaimedExecution, EngineError, PublicState, TimestampMs};

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
}

// Only a component build exports: the export names are not valid native symbols.
#[cfg(target_family = "wasm")]
ff_engine_guest::bindings::export!(OldestFirst with_types_in ff_engine_guest::bindings);
