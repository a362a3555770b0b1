//! The `scheduling` interface: creating executions, granting them to workers, leasing them
//! (`claim-execution`, `issue-grant-and-claim`, the lane scanner) and delays.
//!
//! Every operation validates before it writes, so an error leaves the database as it was even
//! outside the host's transaction (the native unit tests check this with a full dump).
//!
//! ## `create-execution` ([`create_execution`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `lane_id` is 1..=64 bytes of printable ASCII (`0x20..=0x7e`) | `Validation(InvalidInput)` |
//! | 2 | `input_payload` is at most [`crate::exec::MAX_PAYLOAD_BYTES`] | `Validation(PayloadTooLarge)` |
//! | 3 | `execution_id` parses | `Validation(InvalidInput)` |
//!
//! A non-empty `idempotency_key` live in `ff_execution_idempotency` for the namespace (created
//! less than [`IDEMPOTENCY_TTL_MS`] ago) under another execution id makes the create
//! `Duplicate` of that execution, with nothing written.
//!
//! Writes: the `ff_exec_core` row (`ON CONFLICT DO NOTHING`; an existing id is `Duplicate`)
//! in [`StateVector::WAITING`](crate::exec::StateVector::WAITING), or
//! [`StateVector::DELAYED`](crate::exec::StateVector::DELAYED) with `raw_fields.delay_until`
//! when `delay_until` is in the future; on creation only, one `ff_execution_capabilities` row
//! per non-empty required capability and, with a key, the key's `ff_execution_idempotency`
//! row (live for a day); always, the lane in `ff_lane_registry`. No outbox rows.
//!
//! ## `issue-claim-grant` ([`issue_claim_grant`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `grant_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 4 | the execution exists | `NotFound(execution)` |
//! | 5 | `runnable`, `unowned` and claimable now ([`Exec::is_claimable_at`]) | `Contention(ExecutionNotEligible)` |
//! | 6 | `attempt_state != 'running_attempt'` | `Conflict(ActiveAttemptExists)` |
//! | 7 | `attempt_state != 'attempt_interrupted'`, unless public `resumable` (a satisfied suspension) | `Contention(ExecutionNotLeaseable)` |
//! | 8 | no unexpired `claim` grant exists (expired: `0 < expires_at_ms < now`) | `State(GrantAlreadyExists)` |
//! | 9 | every required capability (empty tokens ignored) is in `worker_capabilities` | `Validation(CapabilityMismatch)`, detail = sorted, comma-separated missing tokens |
//!
//! Writes: the execution's expired claim grants are deleted, then one `ff_claim_grant` row
//! (`kind = 'claim'`, random `grant_id`, `expires_at_ms = now + grant_ttl_ms` saturating) is
//! inserted: the row [`claim_execution`] consumes.
//!
//! ## `claim-execution` ([`claim_execution`])
//!
//! Consume a claim grant and lease the execution to the worker.
//!
//! Validation order (the first failing check decides the error). Before anything is read:
//! `lease_ttl_ms > 0`, then a non-empty `worker_id` (`Validation(InvalidInput, "worker_id must
//! not be empty")`) and `worker_instance_id`, then an execution id that parses, each
//! `Validation(InvalidInput)`. Then:
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | the execution exists | `NotFound(execution)` |
//! | 2 | `lifecycle_phase = 'runnable'` | `Contention(ExecutionNotActive)` |
//! | 3 | `ownership_state = 'unowned'` | `Contention(LeaseConflict)` |
//! | 4 | `eligibility_state = 'eligible_now'` | `Contention(ExecutionNotLeaseable)` |
//! | 5 | `attempt_state != 'running_attempt'` | `Conflict(ActiveAttemptExists)` |
//! | 6 | `attempt_state != 'attempt_interrupted'` (continue it with `claim-resumed-execution`) | `Contention(UseClaimResumedExecution)` |
//! | 6b | `expected_attempt_index` is the execution's next attempt (one past its highest attempt row, 0 without one) | `Validation(InvalidInput, "expected_attempt_index N is not the execution's next attempt M")` |
//! | 7 | a `claim` grant exists | `Contention(InvalidClaimGrant)` |
//! | 8 | the grant names this worker | `Contention(InvalidClaimGrant)` |
//! | 9 | the grant has not expired (`0 < expires_at_ms < now`) | `Contention(ClaimGrantExpired)` |
//!
//! `ExecutionNotActive` carries the observed state as on every operation
//! ([`Exec::not_active`](crate::exec::Exec::not_active)).
//!
//! Writes, all in the host's transaction: the execution's claim grants are deleted; the attempt
//! row at `expected_attempt_index` (a new one, see 6b) is inserted with lease epoch 1; the execution becomes `active`/`leased`/`running_attempt` with
//! `attempt_index` = the claimed attempt; one `acquired` row goes to `ff_lease_event`.
//!
//! ## `issue-grant-and-claim` ([`issue_grant_and_claim`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `lease_duration_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `lifecycle_phase = 'runnable'` | `Contention(ExecutionNotActive)` |
//! | 5 | `ownership_state = 'unowned'` | `Contention(LeaseConflict)` |
//! | 6 | claimable now, or `eligibility_state = 'pending_claim'` | `Contention(ExecutionNotLeaseable)` |
//! | 7 | `attempt_state != 'running_attempt'` | `Conflict(ActiveAttemptExists)` |
//! | 8 | `attempt_state` is `attempt_interrupted` or one of the pending states | `Validation(Corruption)`, `issue_grant_and_claim: unrecognized attempt_state=<value>` |
//!
//! Checks 4–7 apply to every execution, interrupted ones included. Writes: the execution's
//! `claim` grants are deleted (an operator claim supersedes them; no transient grant is
//! written); the lease is acquired through [`crate::lease::acquire_lease`] for worker and
//! instance `operator`: an interrupted execution re-arms its current attempt (keeping the
//! attempt's recorded type), any other a new attempt at [`crate::exec::next_attempt_index`].
//!
//! ## `claim`, the lane scanner ([`claim()`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `lease_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//!
//! One query finds the best candidate of the lane in every partition: `runnable`, `unowned`,
//! claimable now (eligible, or delayed with the delay passed), `attempt_state` one of the
//! states a claim accepts (`attempt_interrupted` and the pending states; rows in any other
//! state are skipped, never claimed), no non-empty required capability missing from the
//! worker's set, and no unexpired claim grant for another worker (a grant reserves its
//! execution for its worker); ordered by `priority DESC, created_at_ms, partition_key, execution_id`,
//! served by `ff_exec_core_claim_scan_idx` (migration 0002). None → `Ok(None)`, nothing
//! written. Otherwise the execution's claim grants (this worker's, or expired ones) are
//! deleted and the lease is acquired as for `issue-grant-and-claim`, with the worker's ids.
//!
//! ## `promote-delayed` ([`promote_delayed`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 2 | the execution exists | `NotFound(execution)` |
//!
//! A `runnable` execution in `not_eligible_until_time` whose `raw_fields.delay_until` is at or
//! before `now` becomes claimable: [`StateVector::RETRY_DUE`](crate::exec::StateVector::RETRY_DUE)
//! for a pending retry, [`StateVector::INTERRUPTED`](crate::exec::StateVector::INTERRUPTED)
//! for an interrupted attempt, [`StateVector::WAITING`](crate::exec::StateVector::WAITING)
//! otherwise. Anything else (not delayed, not yet due) is `Ok(())` with no writes.

mod claim;
mod create;
mod delay;
mod grant;
mod operator;
mod scan;

pub use claim::claim_execution;
pub use create::{IDEMPOTENCY_TTL_MS, create_execution};
pub use delay::promote_delayed;
pub use grant::issue_claim_grant;
pub use operator::issue_grant_and_claim;
pub use scan::{claim, claim_first};

use crate::db::Db;
use crate::exec::{Exec, next_attempt_index};
use crate::lease::{
    AcquiredLease, Claimant, LeaseRequest, acquire_lease, attempt_type_for, lease_current_attempt,
};
use crate::types::EngineError;

/// The `attempt_state` values from which a claim starts a new attempt: ours, and the legacy
/// literals upstream's create path and tests store.
const NEW_ATTEMPT_STATES: [&str; 5] = [
    "pending_first_attempt",
    "pending",
    "initial",
    "pending_retry_attempt",
    "pending_replay_attempt",
];

/// Lease an execution already checked to be claimable: an interrupted execution re-arms its
/// current attempt (keeping the recorded attempt type); a pending one starts a new attempt at
/// the next index. `None` when `attempt_state` is neither (the caller decides what that means).
/// Public for custom guests that change which execution is claimed but not how.
pub fn lease_claimable(
    db: &mut impl Db,
    exec: &Exec,
    claimant: &Claimant<'_>,
) -> Result<Option<AcquiredLease>, EngineError> {
    if exec.attempt_state == "attempt_interrupted" {
        return lease_current_attempt(db, exec, claimant, "acquired").map(Some);
    }
    if !NEW_ATTEMPT_STATES.contains(&exec.attempt_state.as_str()) {
        return Ok(None);
    }
    let attempt_index = next_attempt_index(db, &exec.id)?;
    acquire_lease(
        db,
        exec,
        &LeaseRequest {
            claimant: *claimant,
            attempt_index,
            attempt_type: attempt_type_for(&exec.attempt_state),
            attempt_policy_json: None,
            first_epoch: 1,
            execution_deadline_at: None,
            event: "acquired",
        },
    )
    .map(Some)
}
