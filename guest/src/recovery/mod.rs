//! The `recovery` interface: cancel, revoke, suspension resume, lease expiry and reclaim.
//!
//! Every operation runs inside the host's transaction; every check below happens before the
//! first write, so an error leaves the database as it was. The first failing check decides the
//! result. "Lease held" (used by cancel and revoke) means: the execution is `active`, its
//! ownership is `leased` or `lease_expired_reclaimable`, and its CURRENT attempt
//! (`ff_exec_core.attempt_index`) exists with a non-empty `worker_instance_id`
//! ([`Exec::lease_holder`](crate::exec::Exec::lease_holder)). The "stored
//! lease id" is the current attempt's `raw_fields.lease_id`; lease events carry it (or `NULL`
//! on rows seeded without one).
//!
//! ## `cancel-execution`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | the execution id parses | `Validation(InvalidInput)` |
//! | 2 | the execution exists | `NotFound(execution)` |
//! | 3 | terminal with `public_state = 'cancelled'` | `Ok(())`, nothing written (idempotent) |
//! | 4 | terminal otherwise | `Validation(InvalidInput, "cancel_execution: execution_id=<id>: already terminal in state '<public_state>'")` |
//! | 5 | lease held, source not `operator-override`, no `lease_epoch` | `Validation(InvalidInput, "… lease_epoch required when source != operator_override and execution is active")` |
//! | 6 | lease held, source not `operator-override`, epoch differs, or a given lease/attempt id differs from the stored one | `State(StaleLease)` |
//!
//! Writes: the execution becomes `CANCELLED` (first `terminal_at_ms`, `cancellation_reason` and
//! `cancelled_by` win), `raw_fields.terminal_outcome = 'cancelled'`; all of its claim and
//! reclaim grants are deleted; with a lease held, the attempt loses its lease (instance and
//! expiry `NULL`, epoch + 1, `outcome = 'cancelled'`, `terminal_at_ms`) and one `revoked`
//! lease event is recorded. No completion event.
//!
//! ## `revoke-lease`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 2 | a lease is held | `AlreadySatisfied("no_active_lease")` |
//! | 3 | `worker_instance_id` empty or equal to the holder's | `AlreadySatisfied("different_worker_instance_id")` |
//! | 4 | `expected_lease_id` absent, empty or equal to the stored lease id (upstream's synthetic `sqlite:<uuid>:<attempt>:<epoch>` when none is stored) | `AlreadySatisfied("lease_id_mismatch")` |
//! | 5 | the attempt's epoch is still the observed one (compare-and-set) | `AlreadySatisfied("epoch_moved")` |
//!
//! Writes: the attempt loses its lease (instance and expiry `NULL`, epoch + 1); the execution
//! becomes `INTERRUPTED` (public `waiting`); one `revoked` lease event. Returns the lease id
//! (stored or synthetic) and the new epoch.
//!
//! ## `claim-resumed-execution`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `lease_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 4 | `public_state = 'resumable'`, or `runnable` with `attempt_state = 'attempt_interrupted'` and claimable at `now` (a revoked lease's execution, as Valkey) | `Contention(NotAResumedExecution)` |
//! | 5 | `ownership_state = 'unowned'` | `Contention(LeaseConflict)` |
//!
//! Writes: [`crate::lease::acquire_lease`] on the current attempt (re-armed with epoch + 1, or
//! created with epoch 1), keeping the attempt's type; event `acquired`.
//!
//! ## `resume-execution`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 2 | `lifecycle_phase = 'suspended'` | `State(ExecutionNotSuspended)` |
//! | 3 | an `ff_suspension_current` row exists | `State(ExecutionNotSuspended)` |
//!
//! Writes: `INTERRUPTED_DELAYED` with `raw_fields.delay_until = now + delay` when
//! `resume_delay_ms > 0` (claimable once due), else `INTERRUPTED`; the current suspension and
//! waitpoint ids are cleared; the suspension row is deleted. No outbox.
//!
//! ## `mark-lease-expired-if-due`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 2 | `active`, `leased`, current attempt's `lease_expires_at_ms` set and `<= now` | otherwise `Ok(())`, nothing written |
//!
//! Writes: `LEASE_EXPIRED` with `raw_fields.lease_expired_at_ms = now`; the attempt's
//! `lease_expires_at_ms` becomes `NULL` (its holder can no longer renew); one `expired` event.
//!
//! ## `list-expired-leases`
//!
//! Read-only. Current attempts (`attempt_index = ff_exec_core.attempt_index`) of `active`,
//! `leased` executions whose lease expired at or before `as_of` and that have a worker
//! instance; optionally one namespace; strictly after the cursor; ordered by expiry, then the
//! canonical execution id text; at most `limit` rows. A cursor whose execution id does not
//! parse is `Validation(InvalidInput)`. The lease id is the stored one, or upstream's
//! synthetic derivation from the execution UUID, attempt index and epoch.
//!
//! ## `issue-reclaim-grant`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `grant_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 4 | `lifecycle_phase = 'active'` | `NotReclaimable("lifecycle_phase=<x> (expected active)")` |
//! | 5 | ownership `lease_expired_reclaimable` or `lease_revoked` | `NotReclaimable("ownership_state=<x> (expected lease_expired_reclaimable \| lease_revoked)")` |
//!
//! Writes: one `reclaim` grant (random version-4 grant id, expiry `now + ttl`).
//!
//! ## `reclaim-execution`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `lease_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | the execution id parses | `Validation(InvalidInput)` |
//! | 4 | a `reclaim` grant exists (the newest by `issued_at_ms` decides) | `GrantNotFound` |
//! | 5 | the grant names this worker | `Validation(InvalidInput, "reclaim_execution: grant worker_id=<g> mismatches caller <w>")` |
//! | 6 | the grant has not expired (`expires_at_ms > now`) | the grant is deleted, `GrantNotFound` |
//! | 7 | the execution exists | `NotFound(execution)` |
//! | 8 | reclaimable (as `issue-reclaim-grant` 4–5) | `NotReclaimable(..)`, nothing written |
//! | 9 | `lease_reclaim_count < cap` (argument, else the policy's `max_reclaim_count`, else 100) | cap exceeded (below) |
//!
//! Cap exceeded: the execution becomes `FAILED` (`terminal_outcome = 'failed'`, `failure_reason
//! = 'reclaim cap exceeded'`), the current attempt ends `interrupted_reclaimed` without a lease or
//! worker (`worker_id`, `worker_instance_id` and the expiry cleared), the execution's grants are
//! deleted, then a `failed` completion event and a `revoked` lease event. Otherwise the current attempt ends `interrupted_reclaimed`, a new `reclaim` attempt
//! takes the lease through [`crate::lease::acquire_lease`] with epoch = prior epoch + 1 (event
//! `reclaimed`), `lease_reclaim_count` goes up by one and the grant is deleted.
//!
//! ## `claim-from-resume-grant`
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `lease_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | the execution id parses / exists | `Validation(InvalidInput)` / `NotFound(execution)` |
//! | 4 | not terminal | `Ok(None)`, nothing written (ff-core: no longer resumable) |
//! | 4b | `lifecycle_phase = 'active'` | `Contention(ExecutionNotActive)` |
//! | 5 | the current attempt exists | `NotFound(attempt)` |
//! | 6 | not (`leased` and the lease live at `now`) | `Ok(None)`, nothing written |
//!
//! Writes: the same attempt re-armed through [`crate::lease::acquire_lease`] (epoch + 1,
//! attempt type kept), event `reclaimed`.

mod cancel;
mod expiry;
mod reclaim;
mod resume;
#[cfg(test)]
mod test_support;

pub use cancel::{cancel_execution, revoke_lease};
pub use expiry::{list_expired_leases, mark_lease_expired_if_due};
pub use reclaim::{issue_reclaim_grant, reclaim_execution};
pub use resume::{claim_from_resume_grant, claim_resumed_execution, resume_execution};
