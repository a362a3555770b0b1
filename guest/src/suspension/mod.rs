//! The `suspension` interface: suspending an execution on waitpoints, signals that resume it,
//! and the reads and hooks around them (family spec `suspension.md`; decisions in
//! docs/semantics.md, "Suspension").
//!
//! Tokens are signed and verified by the host ([`tokens`]); the logic never sees a secret.
//! A token signs `<canonical execution id>:<canonical waitpoint id>`.
//!
//! # `suspend` (and `suspend-by-triple`)
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | at least one binding; Fresh keys non-empty; ids are UUIDs | `Validation(InvalidInput)` |
//! | 2 | the condition parses and passes Valkey's checks ([`condition::Condition::validate`]); a Fresh primary's key is a `Single` condition's key; `timeout_at` no more than 10 minutes in the past | `Validation(InvalidInput)` |
//! | 3 | a non-empty idempotency key with a stored, unexpired outcome for this execution: that outcome is returned, nothing written | — |
//! | 4 | (triple only) the execution exists | `NotFound(execution)` |
//! | 5 | the attempt exists, the fence (epoch, lease id, attempt id) matches | `NotFound(attempt)`, `Contention(LeaseConflict)` |
//! | 6 | the execution is `active` and `leased`, on that attempt | `Contention(ExecutionNotActive)`, `Contention(LeaseConflict)` |
//! | 7 | per binding: Fresh id unused; UsePending row exists, is this execution's, `pending`, unexpired | `Conflict(WaitpointAlreadyExists)`, `Contention(WaitpointNotFound)`, `Validation(InvalidWaitpointForExecution)`, `State(WaitpointNotPending)`, `State(PendingWaitpointExpired)` |
//! | 8 | the keystore has an active kid | `Validation(InvalidInput, "ff_waitpoint_hmac empty — seed a kid before suspend")` |
//!
//! Writes: each waitpoint `active` (Fresh: a new row with a new token; UsePending: its row,
//! token kept); the suspension row (member map emptied); the execution `suspended` / `unowned`
//! / `not_applicable` / public `suspended` / `attempt_interrupted`, blocking reason from the
//! reason code, `raw_fields.current_suspension_id` and `current_waitpoint_id`; the attempt's
//! lease cleared and its epoch raised; LE(`revoked`); the replay entry for the key.
//!
//! # `create-waitpoint`
//!
//! Key non-empty (`Validation(InvalidWaitpointKey)`), expiry after `now`, the handle fenced as in
//! `suspend` (5, 6), an active kid (8). Writes a `pending` row with a fresh id and token.
//!
//! # `deliver-signal`
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | signal name non-empty, token non-empty, `max_signals_per_execution` positive, ids parse | `Validation(InvalidInput)` / `Validation(InvalidToken, "missing_token")` |
//! | 2 | the waitpoint exists | `NotFound(waitpoint)` |
//! | 3 | it belongs to this execution | `Validation(InvalidInput, "waitpoint belongs to a different execution")` |
//! | 4 | the host verifies the token against the waitpoint's kid; it equals the stored token | `Validation(InvalidInput, "kid … missing from keystore" / "waitpoint_token verify: …" / "waitpoint_token does not match minted token")`, `Validation(InvalidToken, "token_expired: …")` |
//! | 5 | the execution is not terminal | `State(TargetNotSignalable)` |
//! | 6 | the waitpoint is not closed | `State(WaitpointClosed)` |
//! | 7 | the execution is suspended (a `pending` waitpoint of a live execution: no buffering) | `Contention(WaitpointPendingUseBufferScript)` / `State(TargetNotSignalable)` |
//! | 8 | a suspension row exists | `NotFound(suspension)` |
//! | 9 | a non-empty idempotency key seen on this execution within its TTL: `Duplicate`, nothing written | — |
//! | 10 | fewer than `max_signals_per_execution` (default 10 000) signals recorded | `Validation(SignalLimitExceeded)` |
//!
//! Writes: the signal appended to the suspension's member map under the waitpoint's key; when
//! the condition is then satisfied, the execution becomes `resumable` ([`RESUMABLE`]), every
//! waitpoint row of the execution is deleted and CE(`resumable`) recorded; always one
//! `ff_signal_event` row and the dedup entry. `deliver-approval-signal` checks the lane
//! (`lane_mismatch: …`), reads the stored token (`NotFound(waitpoint)`) and delivers an
//! `approval` signal from `operator` with key `approval:<name>:<suffix>`.
//!
//! # The rest
//!
//! `observe-signals`: every readable signal of the execution's suspension row (kept after
//! the resume, removed when the execution ends), no fence; `NotFound(execution)`.
//! `list-pending-waitpoints`: `pending`/`active` rows by id; `read-waitpoint-token`: any row.
//! `delay`: fenced as `suspend`; the execution becomes [`WORKER_DELAYED`] until `delay_until`
//! (which must be after `now`), the same attempt continues. `cancel`: fenced, then
//! `cancel-execution` as the lease holder. `close-waitpoint` and `expire-suspension` follow
//! Valkey's scripts; `list-suspended` lists executions whose lifecycle is `suspended`.

pub mod condition;
mod lifecycle;
mod listing;
mod signals;
mod suspend;
#[cfg(test)]
mod tests;
pub mod tokens;

pub use lifecycle::{cancel, close_waitpoint, delay, expire_suspension};
pub use listing::{list_pending_waitpoints, list_suspended, read_waitpoint_token};
pub use signals::{
    EFFECT_APPENDED, EFFECT_SATISFIED, deliver_approval_signal, deliver_signal, observe_signals,
};
pub use suspend::{create_waitpoint, suspend, suspend_by_triple};

use crate::bindings::suspension::HandleLease;
use crate::db::{Db, DbExt, int};
use crate::errors::{contention, invalid_input};
use crate::exec::{Attempt, Exec, StateVector, record_lease_event};
use crate::ids::ExecutionRef;
use crate::types::{ContentionKind, EngineError};

/// Signals a suspension accepts unless the caller says otherwise (Valkey's default).
pub const DEFAULT_MAX_SIGNALS: u64 = 10_000;
/// How long a signal's idempotency key is remembered unless the caller says otherwise: a day.
pub const DEFAULT_SIGNAL_DEDUP_TTL_MS: u64 = 86_400_000;
/// The longest a suspend replay entry lives: 7 days.
pub const SUSPEND_DEDUP_MAX_MS: i64 = 604_800_000;

/// Satisfied: the suspended attempt is waiting for `claim-resumed-execution`. The one state
/// vector whose public state is not ff-core's `derive_public_state` of the rest (which says
/// `waiting`): `resumable` is what tells `claim-resumed-execution` the execution is its to take.
pub const RESUMABLE: StateVector = StateVector {
    lifecycle_phase: "runnable",
    ownership_state: "unowned",
    eligibility_state: "eligible_now",
    public_state: "resumable",
    attempt_state: "attempt_interrupted",
    blocking_reason: Some("waiting_for_worker"),
};

/// The lease holder delayed its own execution: the same attempt continues after `delay_until`.
pub const WORKER_DELAYED: StateVector = StateVector {
    lifecycle_phase: "runnable",
    ownership_state: "unowned",
    eligibility_state: "not_eligible_until_time",
    public_state: "delayed",
    attempt_state: "attempt_interrupted",
    blocking_reason: Some("waiting_for_delay"),
};

/// The state a suspension leaves the execution in; the blocking reason follows the reason code
/// as Valkey maps it.
pub fn suspended_vector(reason_code: &str) -> StateVector {
    let blocking_reason = match reason_code {
        "waiting_for_approval" => "waiting_for_approval",
        "waiting_for_callback" => "waiting_for_callback",
        "waiting_for_tool_result" => "waiting_for_tool_result",
        "waiting_for_operator_review" | "manual_pause" => "paused_by_operator",
        "paused_by_policy" => "paused_by_policy",
        "paused_by_budget" => "waiting_for_budget",
        _ => "waiting_for_signal",
    };
    StateVector {
        lifecycle_phase: "suspended",
        ownership_state: "unowned",
        eligibility_state: "not_applicable",
        public_state: "suspended",
        attempt_state: "attempt_interrupted",
        blocking_reason: Some(blocking_reason),
    }
}

/// A waitpoint id in canonical form (lowercase, hyphenated), or `Validation(InvalidInput)`.
pub fn parse_waitpoint_id(text: &str) -> Result<String, EngineError> {
    uuid::Uuid::parse_str(text)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| invalid_input(format!("waitpoint_id is not a UUID: {text:?}")))
}

/// The handle's lease, checked as every handle operation checks it: the attempt exists
/// (`NotFound(attempt)`), the fence matches (`Contention(LeaseConflict)`), the execution is
/// `active` and `leased` (`Contention(ExecutionNotActive)`) on that attempt
/// (`Contention(LeaseConflict)`).
pub fn fenced_holder(
    db: &mut impl Db,
    id: &ExecutionRef,
    lease: &HandleLease,
) -> Result<(Exec, Attempt), EngineError> {
    let index = i64::from(lease.attempt_index);
    let attempt = Attempt::require(db, id, index)?;
    if !attempt.fence_matches(lease.lease_epoch, &lease.lease_id, &lease.attempt_id) {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    let exec = Exec::require(db, id)?;
    if exec.lifecycle_phase != "active" || exec.ownership_state != "leased" {
        return Err(exec.not_active(db)?);
    }
    if index != exec.attempt_index {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    Ok((exec, attempt))
}

/// End the holder's lease on its attempt without ending the attempt (suspend, delay): the lease
/// is cleared and its epoch bumped, the attempt becomes `attempt_interrupted` (so that the same
/// attempt continues later), and a `revoked` lease event is recorded.
pub fn interrupt_held_attempt(
    db: &mut impl Db,
    exec: &Exec,
    attempt: &Attempt,
    lease: &HandleLease,
    now: i64,
) -> Result<(), EngineError> {
    db.run(
        "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
             lease_epoch = lease_epoch + 1, outcome = 'attempt_interrupted' \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        &[exec.id.partition(), exec.id.blob(), int(attempt.index)],
    )?;
    record_lease_event(
        db,
        exec,
        "revoked",
        attempt.event_lease_id(Some(&lease.lease_id)).as_deref(),
        now,
    )
}
