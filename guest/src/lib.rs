//! FlowFabric's engine logic as a WebAssembly component.
//!
//! The host (`ff-backend-sqlite-wasm`) owns SQLite, the transaction and the clock; this crate
//! decides. Each exported operation validates its arguments and the stored state in
//! upstream's order, then writes through the host's `sql` import. The host commits only when
//! the operation returns `Ok`.
//!
//! Layout:
//! - [`bindings`]: the wit-bindgen glue (the `engine-backend` world's generated types and the
//!   `export!` macro custom guests use);
//! - [`db`], the small [`db::Db`] trait the logic talks to, and its implementation over the
//!   host's `sql` import ([`packed`]: the parameters and rows as it sends them);
//! - [`ids`], execution id parsing;
//! - [`exec`], the execution and attempt rows, the state vectors, fencing, the outbox;
//! - [`lease`], the one write path every claim takes;
//! - [`claim`], `claim-execution`;
//! - [`scheduling`], creating executions, granting, the lane scanner, delays;
//! - [`completion`], the lease holder's operations: renew, complete, fail, progress;
//! - [`recovery`], cancel, revoke, suspension resume, lease expiry and reclaim;
//! - [`reads`], what the read operations report;
//! - [`small_blocks`], the component's allocator (free lists of small blocks);
//! - `native_db` (feature `native-db`), the logic's [`db::Db`] over rusqlite, to run it
//!   natively.
//!
//! The logic modules depend only on [`db::Db`], so they are unit-tested natively against a
//! real SQLite database (see `tests` in each module).

/// The wit-bindgen glue: the `engine-backend` world's generated types, and the `export!` macro
/// a custom guest uses to export its own implementation of the world
/// (`ff_engine_guest::bindings::export!(MyGuest with_types_in ff_engine_guest::bindings)`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "engine-backend",
        additional_derives: [PartialEq],
        pub_export_macro: true,
    });
}

pub mod claim;
pub mod completion;
pub mod db;
pub mod errors;
pub mod exec;
pub mod ids;
pub mod json;
pub mod lease;
#[cfg(feature = "native-db")]
pub mod native_db;
pub mod packed;
pub mod reads;
pub mod recovery;
pub mod scheduling;
pub mod small_blocks;
#[cfg(test)]
mod testing;

/// The built-in component allocates through [`small_blocks::SmallBlocks`].
#[cfg(all(
    feature = "export",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: small_blocks::SmallBlocks = small_blocks::SmallBlocks::new();

pub use bindings::exports::flowfabric::backend::engine;
pub use bindings::flowfabric::backend::sql;

use db::HostDb;
use engine::*;

/// The built-in component: each export forwards to the logic with the host's database. A custom
/// guest can delegate to it (`<Component as Guest>::op(args)`) for every operation it keeps.
pub struct Component;

impl Guest for Component {
    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        claim::claim_execution(&mut HostDb, &args)
    }

    fn create_execution(args: CreateExecutionArgs) -> Result<CreateExecutionOutcome, EngineError> {
        scheduling::create_execution(&mut HostDb, &args)
    }

    fn issue_claim_grant(args: IssueClaimGrantArgs) -> Result<(), EngineError> {
        scheduling::issue_claim_grant(&mut HostDb, &args)
    }

    fn issue_grant_and_claim(
        args: IssueGrantAndClaimArgs,
    ) -> Result<ClaimGrantOutcome, EngineError> {
        scheduling::issue_grant_and_claim(&mut HostDb, &args)
    }

    fn claim(args: ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
        scheduling::claim(&mut HostDb, &args)
    }

    fn promote_delayed(execution_id: String, now: TimestampMs) -> Result<(), EngineError> {
        scheduling::promote_delayed(&mut HostDb, &execution_id, now)
    }

    fn renew_lease(args: RenewLeaseArgs) -> Result<TimestampMs, EngineError> {
        completion::renew_lease(&mut HostDb, &args)
    }

    fn complete_execution(args: CompleteExecutionArgs) -> Result<(), EngineError> {
        completion::complete_execution(&mut HostDb, &args)
    }

    fn fail_execution(args: FailExecutionArgs) -> Result<FailOutcome, EngineError> {
        completion::fail_execution(&mut HostDb, &args)
    }

    fn renew(lease: HandleLease, now: TimestampMs) -> Result<TimestampMs, EngineError> {
        completion::renew(&mut HostDb, &lease, now)
    }

    fn progress(
        lease: HandleLease,
        percent: Option<u8>,
        message: Option<String>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        completion::progress(&mut HostDb, &lease, percent, message.as_deref(), now)
    }

    fn complete(
        lease: HandleLease,
        payload: Option<Vec<u8>>,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        completion::complete(&mut HostDb, &lease, payload.as_deref(), now)
    }

    fn fail(
        lease: HandleLease,
        message: String,
        class: FailureClass,
        now: TimestampMs,
    ) -> Result<FailOutcome, EngineError> {
        completion::fail(&mut HostDb, &lease, &message, class, now)
    }

    fn cancel_execution(args: CancelExecutionArgs) -> Result<(), EngineError> {
        recovery::cancel_execution(&mut HostDb, &args)
    }

    fn revoke_lease(args: RevokeLeaseArgs) -> Result<RevokeLeaseOutcome, EngineError> {
        recovery::revoke_lease(&mut HostDb, &args)
    }

    fn claim_resumed_execution(
        args: ClaimResumedExecutionArgs,
    ) -> Result<ClaimedExecution, EngineError> {
        recovery::claim_resumed_execution(&mut HostDb, &args)
    }

    fn resume_execution(args: ResumeExecutionArgs) -> Result<PublicState, EngineError> {
        recovery::resume_execution(&mut HostDb, &args)
    }

    fn mark_lease_expired_if_due(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<(), EngineError> {
        recovery::mark_lease_expired_if_due(&mut HostDb, &execution_id, now)
    }

    fn list_expired_leases(args: ListExpiredLeasesArgs) -> Result<Vec<ExpiredLease>, EngineError> {
        recovery::list_expired_leases(&mut HostDb, &args)
    }

    fn issue_reclaim_grant(
        args: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        recovery::issue_reclaim_grant(&mut HostDb, &args)
    }

    fn reclaim_execution(
        args: ReclaimExecutionArgs,
    ) -> Result<ReclaimExecutionOutcome, EngineError> {
        recovery::reclaim_execution(&mut HostDb, &args)
    }

    fn claim_from_resume_grant(
        args: ResumeGrantClaimArgs,
    ) -> Result<Option<ClaimedExecution>, EngineError> {
        recovery::claim_from_resume_grant(&mut HostDb, &args)
    }

    fn read_execution(
        execution_id: String,
        now: TimestampMs,
    ) -> Result<Option<ExecutionView>, EngineError> {
        reads::read_execution(&mut HostDb, &execution_id, now)
    }

    fn get_execution_result(execution_id: String) -> Result<Option<Vec<u8>>, EngineError> {
        reads::get_execution_result(&mut HostDb, &execution_id)
    }

    fn read_execution_context(
        execution_id: String,
    ) -> Result<Option<ExecutionContext>, EngineError> {
        reads::read_execution_context(&mut HostDb, &execution_id)
    }

    fn ping() -> Result<(), EngineError> {
        reads::ping(&mut HostDb)
    }
}

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints. Custom guests
// turn the `export` feature off to export their own implementation instead.
#[cfg(all(target_family = "wasm", feature = "export"))]
bindings::export!(Component with_types_in bindings);
