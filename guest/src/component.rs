//! The built-in component: one `Guest` implementation per exported interface, each function
//! forwarding to the logic with the host's database ([`HostDb`]), the `export!` call and the
//! component's allocator.
//!
//! A custom guest can delegate to [`Component`] (`<Component as scheduling::Guest>::op(args)`)
//! for every operation it keeps; see `examples/custom-guest`.

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
use crate::bindings::streams::{
    AppendFrameArgs, AppendFrameOutcome, FrameQuery, Heads, Outbox, OutboxFilter, OutboxPage,
    StreamFrame, SummaryDocument,
};
use crate::bindings::{lease_holder, reads, recovery, scheduling, streams};
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

impl streams::Guest for Component {
    fn append_frame(args: AppendFrameArgs) -> Result<AppendFrameOutcome, EngineError> {
        crate::streams::append_frame(&mut HostDb, &args)
    }

    fn read_frames(query: FrameQuery) -> Result<Vec<StreamFrame>, EngineError> {
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

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints. Custom guests
// turn the `export` feature off to export their own implementation instead.
#[cfg(all(target_family = "wasm", feature = "export"))]
crate::bindings::export!(Component with_types_in crate::bindings);
