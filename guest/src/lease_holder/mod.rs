//! The `lease-holder` interface: the lease holder's operations: renew, complete, fail (with the
//! retry policy) and progress, through the typed API (fences, reference §8.5–§8.7) and through
//! worker handles (§8.16).
//!
//! The typed operations report a fence mismatch as `State(StaleLease)`, the handle operations
//! as `Contention(LeaseConflict)`. A fence matches when the epoch is equal and the lease and
//! attempt ids are equal wherever the attempt row recorded them ([`Attempt::fence_matches`]).
//! `ExecutionNotActive` always carries the terminal outcome, the current attempt's lease epoch,
//! the raw lifecycle and the current attempt id (each optional one `None` when absent;
//! [`Exec::not_active`]).
//!
//! # `renew-lease`
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | a fence is given (before any SQL) | `Validation { InvalidInput, "fence_required" }` |
//! | 2 | `lease_ttl_ms > 0` | `Validation { InvalidInput }` |
//! | 3 | attempt row `attempt_index` exists | `NotFound(attempt)` |
//! | 4 | the fence matches the attempt | `State(StaleLease)` |
//! | 5 | the execution exists | `NotFound(execution)` |
//! | 6 | `ownership_state != 'lease_revoked'` | `State(LeaseRevoked)` |
//! | 7 | `lifecycle_phase = 'active'` | `Contention(ExecutionNotActive)` |
//! | 8 | `ownership_state != 'lease_expired_reclaimable'` | `State(LeaseExpired)` |
//! | 9 | `attempt_index` is the execution's current attempt | `State(StaleLease)` |
//! | 10 | the lease is live (`lease_expires_at_ms > now`; NULL is not live) | `State(LeaseExpired)` |
//!
//! Writes: the attempt's `lease_expires_at_ms = now + lease_ttl_ms` (saturating; the epoch is
//! not bumped, the execution row is not touched); LE(`renewed`). Returns the new expiry.
//!
//! # `complete-execution`
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | a fence is given, or `source = operator-override` | `Validation { InvalidInput, "fence_required" }` |
//! | 2 | `result_payload` is at most [`MAX_PAYLOAD_BYTES`](crate::exec::MAX_PAYLOAD_BYTES) | `Validation { PayloadTooLarge }` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `ownership_state != 'lease_revoked'` | `State(LeaseRevoked)` |
//! | 5 | `lifecycle_phase = 'active'` (so a replay fails here) | `Contention(ExecutionNotActive)` |
//! | 6 | attempt row `attempt_index` exists | `NotFound(attempt)` |
//! | 7 | a given fence matches (even with `operator-override`) | `State(StaleLease)` |
//! | 8 | `attempt_index` is the current attempt | `State(StaleLease)` |
//! | 9 | unless `operator-override`: the lease has not lapsed (NULL passes; `<= now` lapsed) and was not marked expired (`ownership_state = 'lease_expired_reclaimable'`) | `State(LeaseExpired)` |
//!
//! Writes ([`writes::finish_successfully`]): attempt `terminal_at_ms`, outcome `success`, no
//! lease; execution COMPLETED, `terminal_at_ms`, `result`, `raw_fields.terminal_outcome`,
//! `last_mutation_at`, `result_encoding` (when given); CE(`success`), LE(`revoked`) with the
//! attempt's stored lease id (or the fence's).
//!
//! # `fail-execution`
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | a fence is given, or `source = operator-override` | `Validation { InvalidInput, "fence_required" }` |
//! | 2 | attempt row `attempt_index` exists | `NotFound(attempt)` |
//! | 3 | a given fence matches | `State(StaleLease)` |
//! | 4 | the execution exists | `NotFound(execution)` |
//! | 5 | `ownership_state != 'lease_revoked'` | `State(LeaseRevoked)` |
//! | 6 | `lifecycle_phase = 'active'` | `Contention(ExecutionNotActive)` |
//! | 7 | `attempt_index` is the current attempt | `State(StaleLease)` |
//!
//! No lease-expiry check: an expired but unreclaimed lease can still report its failure. The
//! retry policy is the argument's, else the stored one ([`policy`]; no stored retry policy →
//! no retries). A policy whose `retryable_categories` is not empty retries only a
//! `failure_category` it names (any other fails terminally); an empty list retries every
//! category. With `retry_count < max_retries` a retry is scheduled
//! ([`writes::schedule_retry`]: attempt outcome `retry`, RETRY_BACKOFF or RETRY_DUE when the
//! delay is 0, LE(`revoked`)); otherwise the execution fails ([`writes::fail_terminally`]:
//! attempt `failed`, FAILED, CE(`failed`), LE(`revoked`)).
//!
//! # Handle operations: `renew`, `progress`, `complete`, `fail`
//!
//! Common prelude:
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | attempt row `lease.attempt_index` exists | `NotFound(attempt)` |
//! | 2 | epoch, lease id and attempt id match the attempt | `Contention(LeaseConflict)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `lifecycle_phase = 'active'` and `ownership_state = 'leased'` | `Contention(ExecutionNotActive)` |
//! | 5 | `lease.attempt_index` is the current attempt | `Contention(LeaseConflict)` |
//!
//! Then, per operation (after the prelude):
//!
//! | op | check | error |
//! |---|---|---|
//! | `renew` | the lease is live at `now` | `State(LeaseExpired)` |
//! | `renew` | `lease.lease_ttl_ms > 0` | `Validation { InvalidInput }` |
//! | `progress` | `percent <= 100` | `Validation { InvalidInput }` |
//! | `complete` | the payload is at most [`MAX_PAYLOAD_BYTES`](crate::exec::MAX_PAYLOAD_BYTES) | `Validation { PayloadTooLarge }` |
//!
//! Writes: `renew` as `renew-lease` with the handle's TTL; `progress` sets
//! `raw_fields.progress_pct` (a JSON integer) and/or `progress_message` and `last_mutation_at`
//! (nothing at all when both are `None`; no outbox); `complete` as `complete-execution`
//! (no `result_encoding`); `fail` with `permanent`/`timeout`/`cancelled` fails terminally, with
//! `transient`/`infra-crash` retries under the stored retry policy (ff-core's
//! `RetryPolicy::default()` when the execution has no stored policy at all; a stored policy
//! without a retry policy means no retries) and fails terminally once the budget is spent;
//! both branches also set `raw_fields.last_failure_message` and `failure_reason` to the
//! message.

mod policy;
mod writes;

#[cfg(test)]
mod tests;

use crate::bindings::lease_holder::{
    CompleteExecutionArgs, FailExecutionArgs, FailOutcome, FailureClass, HandleLease,
    RenewLeaseArgs, RetryPolicy,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{contention, invalid_input, require_positive};
use crate::exec::{Attempt, Exec, check_result_payload, lease_expiry, record_lease_event};
use crate::ids::ExecutionRef;
use crate::types::{CancelSource, ContentionKind, EngineError, LeaseFence, StateKind};
use policy::StoredRetry;
use writes::{EndingLease, Failure};

/// The exact detail of the error for a missing fence.
const FENCE_REQUIRED: &str = "fence_required";

/// Extend the fenced lease of attempt `args.attempt_index`; returns the new expiry. See the
/// module docs for the checks.
pub fn renew_lease(db: &mut impl Db, args: &RenewLeaseArgs) -> Result<i64, EngineError> {
    let fence = args
        .fence
        .as_ref()
        .ok_or_else(|| invalid_input(FENCE_REQUIRED))?;
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let index = i64::from(args.attempt_index);
    let attempt = Attempt::require(db, &id, index)?;
    if !attempt.matches_fence(fence) {
        return Err(EngineError::State(StateKind::StaleLease));
    }
    let exec = active_exec(db, &id)?;
    if exec.ownership_state == "lease_expired_reclaimable" {
        return Err(EngineError::State(StateKind::LeaseExpired));
    }
    if index != exec.attempt_index {
        return Err(EngineError::State(StateKind::StaleLease));
    }
    if !attempt.lease_live_at(args.now) {
        return Err(EngineError::State(StateKind::LeaseExpired));
    }
    extend_lease(
        db,
        &exec,
        &attempt,
        &fence.lease_id,
        args.lease_ttl_ms,
        args.now,
    )
}

/// Finish the execution successfully with `args.result_payload`. See the module docs for the
/// checks.
pub fn complete_execution(
    db: &mut impl Db,
    args: &CompleteExecutionArgs,
) -> Result<(), EngineError> {
    let operator = matches!(args.source, CancelSource::OperatorOverride);
    if args.fence.is_none() && !operator {
        return Err(invalid_input(FENCE_REQUIRED));
    }
    check_result_payload(args.result_payload.as_deref())?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = active_exec(db, &id)?;
    let index = i64::from(args.attempt_index);
    let attempt = Attempt::require(db, &id, index)?;
    check_given_fence(&attempt, args.fence.as_ref())?;
    if index != exec.attempt_index {
        return Err(EngineError::State(StateKind::StaleLease));
    }
    // A lease marked expired (`mark-lease-expired-if-due` drops the attempt's expiry) is as
    // lapsed as one past its expiry: its holder lost it, an operator may still finish.
    let lapsed = exec.ownership_state == "lease_expired_reclaimable"
        || attempt.lease_expires_at.is_some_and(|at| at <= args.now);
    if !operator && lapsed {
        return Err(EngineError::State(StateKind::LeaseExpired));
    }
    let lease_id = attempt.event_lease_id(args.fence.as_ref().map(|f| f.lease_id.as_str()));
    writes::finish_successfully(
        db,
        &EndingLease {
            exec: &exec,
            attempt_index: index,
            lease_id: lease_id.as_deref(),
            now: args.now,
        },
        args.result_payload.as_deref(),
        args.result_encoding.as_deref(),
    )
}

/// Fail attempt `args.attempt_index`: schedule a retry when the policy allows one, else fail
/// the execution. See the module docs for the checks and the policy.
pub fn fail_execution(
    db: &mut impl Db,
    args: &FailExecutionArgs,
) -> Result<FailOutcome, EngineError> {
    if args.fence.is_none() && !matches!(args.source, CancelSource::OperatorOverride) {
        return Err(invalid_input(FENCE_REQUIRED));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let index = i64::from(args.attempt_index);
    let attempt = Attempt::require(db, &id, index)?;
    check_given_fence(&attempt, args.fence.as_ref())?;
    let exec = active_exec(db, &id)?;
    if index != exec.attempt_index {
        return Err(EngineError::State(StateKind::StaleLease));
    }
    let retry_policy = match &args.retry_policy {
        Some(policy) => Some(policy.clone()),
        None => match policy::resolve_stored(&policy::read_stored(db, &id)?) {
            StoredRetry::Policy(policy) => Some(policy),
            StoredRetry::NoPolicy | StoredRetry::NoRetries => None,
        },
    }
    // A policy that names its retryable categories retries only those.
    .filter(|policy| policy::retries_category(policy, &args.failure_category));
    let lease_id = attempt.event_lease_id(args.fence.as_ref().map(|f| f.lease_id.as_str()));
    end_with_failure(
        db,
        &exec,
        &EndingLease {
            exec: &exec,
            attempt_index: index,
            lease_id: lease_id.as_deref(),
            now: args.now,
        },
        &Failure {
            reason: &args.failure_reason,
            last_failure_message: None,
        },
        retry_policy.as_ref(),
    )
}

/// Renew the handle's lease for `lease.lease_ttl_ms` from `now`; returns the new expiry.
pub fn renew(db: &mut impl Db, lease: &HandleLease, now: i64) -> Result<i64, EngineError> {
    let (exec, attempt) = handle_prelude(db, lease)?;
    if !attempt.lease_live_at(now) {
        return Err(EngineError::State(StateKind::LeaseExpired));
    }
    require_positive("lease_ttl_ms", lease.lease_ttl_ms)?;
    extend_lease(
        db,
        &exec,
        &attempt,
        &lease.lease_id,
        lease.lease_ttl_ms,
        now,
    )
}

/// Record progress on the handle's execution: `raw_fields.progress_pct` (JSON integer, at most
/// 100) and/or `progress_message`; both `None` changes nothing.
pub fn progress(
    db: &mut impl Db,
    lease: &HandleLease,
    percent: Option<u8>,
    message: Option<&str>,
    now: i64,
) -> Result<(), EngineError> {
    let (exec, _attempt) = handle_prelude(db, lease)?;
    if percent.is_some_and(|pct| pct > 100) {
        return Err(invalid_input("progress percent must be at most 100"));
    }
    if percent.is_none() && message.is_none() {
        return Ok(());
    }
    let mut assignments = String::from("'$.last_mutation_at', ?3");
    let mut params = Vec::from(exec.id.key());
    params.push(text(now.to_string()));
    if let Some(pct) = percent {
        params.push(int(pct));
        assignments.push_str(&format!(", '$.progress_pct', ?{}", params.len()));
    }
    if let Some(message) = message {
        params.push(text(message));
        assignments.push_str(&format!(", '$.progress_message', ?{}", params.len()));
    }
    db.run(
        &format!(
            "UPDATE ff_exec_core SET raw_fields = json_set(raw_fields, {assignments}) \
             WHERE partition_key = ?1 AND execution_id = ?2"
        ),
        &params,
    )?;
    Ok(())
}

/// Complete the handle's execution with `payload`.
pub fn complete(
    db: &mut impl Db,
    lease: &HandleLease,
    payload: Option<&[u8]>,
    now: i64,
) -> Result<(), EngineError> {
    let (exec, attempt) = handle_prelude(db, lease)?;
    check_result_payload(payload)?;
    let lease_id = attempt.event_lease_id(Some(&lease.lease_id));
    writes::finish_successfully(
        db,
        &EndingLease {
            exec: &exec,
            attempt_index: attempt.index,
            lease_id: lease_id.as_deref(),
            now,
        },
        payload,
        None,
    )
}

/// Fail the handle's attempt: `transient` and `infra-crash` retry under the execution's stored
/// policy while its budget lasts; everything else fails the execution.
pub fn fail(
    db: &mut impl Db,
    lease: &HandleLease,
    message: &str,
    class: FailureClass,
    now: i64,
) -> Result<FailOutcome, EngineError> {
    let (exec, attempt) = handle_prelude(db, lease)?;
    let retry_policy = match class {
        FailureClass::Permanent | FailureClass::Timeout | FailureClass::Cancelled => None,
        FailureClass::Transient | FailureClass::InfraCrash => {
            match policy::resolve_stored(&policy::read_stored(db, &exec.id)?) {
                StoredRetry::Policy(policy) => Some(policy),
                StoredRetry::NoPolicy => Some(policy::default_policy()),
                StoredRetry::NoRetries => None,
            }
        }
    };
    let lease_id = attempt.event_lease_id(Some(&lease.lease_id));
    end_with_failure(
        db,
        &exec,
        &EndingLease {
            exec: &exec,
            attempt_index: attempt.index,
            lease_id: lease_id.as_deref(),
            now,
        },
        &Failure {
            reason: message,
            last_failure_message: Some(message),
        },
        retry_policy.as_ref(),
    )
}

/// Retry when `policy` allows another retry, else fail terminally.
fn end_with_failure(
    db: &mut impl Db,
    exec: &Exec,
    lease: &EndingLease<'_>,
    failure: &Failure<'_>,
    policy: Option<&RetryPolicy>,
) -> Result<FailOutcome, EngineError> {
    match policy {
        Some(policy) if policy::can_retry(policy, exec.retry_count) => {
            let delay = policy::backoff_delay(&policy.backoff, exec.retry_count);
            writes::schedule_retry(db, lease, failure, exec.retry_count, delay)
        }
        _ => writes::fail_terminally(db, lease, failure),
    }
}

/// The handle operations' common checks (module docs); returns the execution and the attempt.
pub(crate) fn handle_prelude(
    db: &mut impl Db,
    lease: &HandleLease,
) -> Result<(Exec, Attempt), EngineError> {
    lease_prelude(
        db,
        &lease.execution_id,
        lease.attempt_index,
        lease.lease_epoch,
        &lease.lease_id,
        &lease.attempt_id,
    )
}

/// The checks every handle operation starts with, on the lease's parts: the execution id
/// parses, the attempt exists and matches the lease (`Contention(LeaseConflict)`), the
/// execution is `active` and `leased` (`Contention(ExecutionNotActive)`), and the attempt is
/// the current one. Returns the execution and the attempt; the caller checks liveness.
pub fn lease_prelude(
    db: &mut impl Db,
    execution_id: &str,
    attempt_index: u32,
    lease_epoch: u64,
    lease_id: &str,
    attempt_id: &str,
) -> Result<(Exec, Attempt), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let index = i64::from(attempt_index);
    let attempt = Attempt::require(db, &id, index)?;
    if !attempt.fence_matches(lease_epoch, lease_id, attempt_id) {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "active" || exec.ownership_state != "leased" {
        return Err(exec.not_active(db)?);
    }
    if index != exec.attempt_index {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    Ok((exec, attempt))
}

/// Set the attempt's expiry to `now + ttl_ms` and record LE(`renewed`); returns the expiry.
fn extend_lease(
    db: &mut impl Db,
    exec: &Exec,
    attempt: &Attempt,
    presented_lease_id: &str,
    ttl_ms: u64,
    now: i64,
) -> Result<i64, EngineError> {
    let expires_at = lease_expiry(now, ttl_ms);
    db.run(
        "UPDATE ff_attempt SET lease_expires_at_ms = ?4 \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        &[
            exec.id.partition(),
            exec.id.blob(),
            int(attempt.index),
            int(expires_at),
        ],
    )?;
    let lease_id = attempt.event_lease_id(Some(presented_lease_id));
    record_lease_event(db, exec, "renewed", lease_id.as_deref(), now)?;
    Ok(expires_at)
}

/// A typed operation's fence, when given, matches the attempt, else `State(StaleLease)`.
fn check_given_fence(attempt: &Attempt, fence: Option<&LeaseFence>) -> Result<(), EngineError> {
    if fence.is_some_and(|fence| !attempt.matches_fence(fence)) {
        return Err(EngineError::State(StateKind::StaleLease));
    }
    Ok(())
}

/// The typed operations' execution checks: the execution exists (`NotFound(execution)`), its
/// lease was not revoked (`State(LeaseRevoked)`) and it is active (`ExecutionNotActive`).
fn active_exec(db: &mut impl Db, id: &ExecutionRef) -> Result<Exec, EngineError> {
    let exec = Exec::require(db, id)?;
    if exec.ownership_state == "lease_revoked" {
        return Err(EngineError::State(StateKind::LeaseRevoked));
    }
    if exec.lifecycle_phase != "active" {
        return Err(exec.not_active(db)?);
    }
    Ok(exec)
}
