//! A guest that implements the `engine-backend` world but misbehaves on request: the claim's
//! `worker-id` names the misbehaviour. The host must contain every one of them.
//!
//! | worker-id | what the guest does |
//! |---|---|
//! | `panic-after-write` | damages rows, then panics (a trap) |
//! | `error-after-write` | damages rows, then returns an engine error |
//! | anything else | returns `not-found(execution)` without touching the database |
//!
//! Every other export answers `not-found(execution)` and touches nothing.

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "engine-backend" });
}

use bindings::exports::flowfabric::backend::engine::*;
use bindings::flowfabric::backend::sql;

/// Writes that would corrupt the execution's state if they were ever committed.
fn damage_rows() {
    for statement in [
        "UPDATE ff_exec_core SET lifecycle_phase = 'hacked', raw_fields = 'garbage'",
        "DELETE FROM ff_claim_grant",
        "INSERT INTO ff_lease_event (execution_id, event_type, occurred_at_ms, partition_key) \
         VALUES ('forged', 'acquired', 0, 0)",
    ] {
        sql::execute(statement, &[]).expect("the host allows ordinary writes");
    }
}

/// The answer of every export that does not misbehave.
const NOT_FOUND: EngineError = EngineError::NotFound(Entity::Execution);

struct Hostile;

impl Guest for Hostile {
    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        match args.worker_id.as_str() {
            "panic-after-write" => {
                damage_rows();
                panic!("hostile guest: panicking after writing");
            }
            "error-after-write" => {
                damage_rows();
                Err(EngineError::Validation(ValidationError {
                    kind: ValidationKind::InvalidInput,
                    detail: "hostile guest: failing after writing".into(),
                }))
            }
            _ => Err(NOT_FOUND),
        }
    }

    fn create_execution(_: CreateExecutionArgs) -> Result<CreateExecutionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_claim_grant(_: IssueClaimGrantArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_grant_and_claim(_: IssueGrantAndClaimArgs) -> Result<ClaimGrantOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn renew_lease(_: RenewLeaseArgs) -> Result<TimestampMs, EngineError> {
        Err(NOT_FOUND)
    }
    fn complete_execution(_: CompleteExecutionArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn fail_execution(_: FailExecutionArgs) -> Result<FailOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn cancel_execution(_: CancelExecutionArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn revoke_lease(_: RevokeLeaseArgs) -> Result<RevokeLeaseOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim_resumed_execution(
        _: ClaimResumedExecutionArgs,
    ) -> Result<ClaimedExecution, EngineError> {
        Err(NOT_FOUND)
    }
    fn resume_execution(_: ResumeExecutionArgs) -> Result<PublicState, EngineError> {
        Err(NOT_FOUND)
    }
    fn mark_lease_expired_if_due(_: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn promote_delayed(_: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn list_expired_leases(_: ListExpiredLeasesArgs) -> Result<Vec<ExpiredLease>, EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_reclaim_grant(
        _: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn reclaim_execution(_: ReclaimExecutionArgs) -> Result<ReclaimExecutionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim_from_resume_grant(
        _: ResumeGrantClaimArgs,
    ) -> Result<Option<ClaimedExecution>, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim(_: ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
        Err(NOT_FOUND)
    }
    fn renew(_: HandleLease, _: TimestampMs) -> Result<TimestampMs, EngineError> {
        Err(NOT_FOUND)
    }
    fn progress(
        _: HandleLease,
        _: Option<u8>,
        _: Option<String>,
        _: TimestampMs,
    ) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn complete(_: HandleLease, _: Option<Vec<u8>>, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn fail(
        _: HandleLease,
        _: String,
        _: FailureClass,
        _: TimestampMs,
    ) -> Result<FailOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_execution(_: String, _: TimestampMs) -> Result<Option<ExecutionView>, EngineError> {
        Err(NOT_FOUND)
    }
    fn get_execution_result(_: String) -> Result<Option<Vec<u8>>, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_execution_context(_: String) -> Result<Option<ExecutionContext>, EngineError> {
        Err(NOT_FOUND)
    }
    fn ping() -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
}

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints.
#[cfg(target_family = "wasm")]
bindings::export!(Hostile with_types_in bindings);
