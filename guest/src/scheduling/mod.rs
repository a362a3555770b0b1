//! Creating executions, granting them to workers, the lane scanner and delays.
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
//! Writes: the `ff_exec_core` row (`ON CONFLICT DO NOTHING`; an existing id is `Duplicate`)
//! in [`StateVector::WAITING`](crate::exec::StateVector::WAITING), or
//! [`StateVector::DELAYED`](crate::exec::StateVector::DELAYED) with `raw_fields.delay_until`
//! when `delay_until` is in the future; on creation only, one `ff_execution_capabilities` row
//! per non-empty required capability; always, the lane in `ff_lane_registry`. No outbox rows.
//!
//! ## `issue-claim-grant` ([`issue_claim_grant`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `grant_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `runnable`, `unowned` and claimable now ([`Exec::is_claimable_at`]) | `Contention(ExecutionNotEligible)` |
//! | 5 | `attempt_state != 'running_attempt'` | `Conflict(ActiveAttemptExists)` |
//! | 6 | `attempt_state != 'attempt_interrupted'` | `Contention(ExecutionNotLeaseable)` |
//! | 7 | no unexpired `claim` grant exists (expired: `0 < expires_at_ms < now`) | `State(GrantAlreadyExists)` |
//! | 8 | every required capability (empty tokens ignored) is in `worker_capabilities` | `Validation(CapabilityMismatch)`, detail = sorted, comma-separated missing tokens |
//!
//! Writes: the execution's expired claim grants are deleted, then one `ff_claim_grant` row
//! (`kind = 'claim'`, random `grant_id`, `expires_at_ms = now + grant_ttl_ms` saturating) is
//! inserted: the row [`crate::claim::claim_execution`] consumes.
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
//! ## `claim`, the lane scanner ([`claim`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `lease_ttl_ms > 0` | `Validation(InvalidInput)` |
//!
//! One query finds the best candidate of the lane in every partition: `runnable`, `unowned`,
//! claimable now (eligible, or delayed with the delay passed), `attempt_state` one of the
//! states a claim accepts (`attempt_interrupted` and the pending states; rows in any other
//! state are skipped, never claimed), and no non-empty required capability missing from the
//! worker's set; ordered by `priority DESC, created_at_ms, partition_key, execution_id`,
//! served by `ff_exec_core_claim_scan_idx` (migration 0002). None → `Ok(None)`, nothing
//! written. Otherwise the lease is acquired as for `issue-grant-and-claim`, with the worker's
//! ids.
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

mod create;
mod delay;
mod grant;
mod operator;
mod scan;

pub use create::create_execution;
pub use delay::promote_delayed;
pub use grant::issue_claim_grant;
pub use operator::issue_grant_and_claim;
pub use scan::claim;

use crate::db::{Db, DbExt, int};
use crate::engine::{AttemptType, EngineError};
use crate::errors::not_active;
use crate::exec::{Attempt, Exec, next_attempt_index};
use crate::ids::ExecutionRef;
use crate::lease::{AcquiredLease, LeaseRequest, acquire_lease, attempt_type_for};

/// The `attempt_state` values from which a claim starts a new attempt: ours, and the legacy
/// literals upstream's create path and tests store.
const NEW_ATTEMPT_STATES: [&str; 5] = [
    "pending_first_attempt",
    "pending",
    "initial",
    "pending_retry_attempt",
    "pending_replay_attempt",
];

/// `Contention(ExecutionNotActive)` for `exec`, with the lease epoch of its current attempt
/// (empty when that attempt has no row).
fn not_active_error(db: &mut impl Db, exec: &Exec) -> Result<EngineError, EngineError> {
    let epoch = Attempt::load(db, &exec.id, exec.attempt_index)?
        .map(|attempt| attempt.lease_epoch.to_string())
        .unwrap_or_default();
    Ok(not_active(
        exec.terminal_outcome_or_none(),
        epoch,
        exec.lifecycle_phase.clone(),
        exec.current_attempt_id_or_empty(),
    ))
}

/// The type an existing attempt row recorded in `raw_fields.attempt_type`; `Initial` when the
/// row, the key or a known literal is missing.
fn recorded_attempt_type(
    db: &mut impl Db,
    id: &ExecutionRef,
    index: i64,
) -> Result<AttemptType, EngineError> {
    let literal = db
        .first_row(
            "SELECT json_extract(raw_fields, '$.attempt_type') FROM ff_attempt \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(index)],
        )?
        .and_then(|row| row.text(0));
    Ok(match literal.as_deref() {
        Some("retry") => AttemptType::Retry,
        Some("reclaim") => AttemptType::Reclaim,
        Some("replay") => AttemptType::Replay,
        Some("fallback") => AttemptType::Fallback,
        _ => AttemptType::Initial,
    })
}

/// Who takes the lease and on what terms (the parts of a [`LeaseRequest`] a scheduling claim
/// chooses; the attempt is chosen by [`lease_claimable`]).
struct Claimant<'a> {
    worker_id: &'a str,
    worker_instance_id: &'a str,
    lease_id: &'a str,
    attempt_id: &'a str,
    lease_ttl_ms: u64,
    now: i64,
}

/// A lease acquired on a claimable execution: which attempt and of what type.
struct Leased {
    attempt_index: i64,
    attempt_type: AttemptType,
    lease: AcquiredLease,
}

/// Lease an execution already checked to be claimable: an interrupted execution re-arms its
/// current attempt (keeping the recorded attempt type); a pending one starts a new attempt at
/// the next index. `None` when `attempt_state` is neither (the caller decides what that means).
fn lease_claimable(
    db: &mut impl Db,
    exec: &Exec,
    claimant: &Claimant<'_>,
) -> Result<Option<Leased>, EngineError> {
    let (attempt_index, attempt_type) = if exec.attempt_state == "attempt_interrupted" {
        let index = exec.attempt_index;
        (index, recorded_attempt_type(db, &exec.id, index)?)
    } else if NEW_ATTEMPT_STATES.contains(&exec.attempt_state.as_str()) {
        (
            next_attempt_index(db, &exec.id)?,
            attempt_type_for(&exec.attempt_state),
        )
    } else {
        return Ok(None);
    };
    let lease = acquire_lease(
        db,
        &exec.id,
        &LeaseRequest {
            attempt_index,
            worker_id: claimant.worker_id,
            worker_instance_id: claimant.worker_instance_id,
            lease_id: claimant.lease_id,
            attempt_id: claimant.attempt_id,
            attempt_type,
            attempt_policy_json: "",
            first_epoch: 1,
            lease_ttl_ms: claimant.lease_ttl_ms,
            now: claimant.now,
            execution_deadline_at: None,
            event: "acquired",
        },
    )?;
    Ok(Some(Leased {
        attempt_index,
        attempt_type,
        lease,
    }))
}

#[cfg(test)]
mod test_support {
    //! Seeding and inspection shared by the scheduling tests.

    use crate::db::Db;
    use crate::engine::EngineError;
    use crate::testing::TestDb;

    /// The execution most tests use.
    pub const EXEC: &str = "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c";
    /// Its bare UUID text.
    pub const EXEC_UUID: &str = "53ad96d2-6b08-4d0c-86e3-36598db2291c";
    /// The time of the operation under test.
    pub const NOW: i64 = 1_700_000_000_000;
    /// The lease id claims in the tests mint.
    pub const LEASE: &str = "11111111-1111-4111-8111-111111111111";
    /// The attempt id claims in the tests mint.
    pub const ATTEMPT: &str = "22222222-2222-4222-8222-222222222222";

    /// A database holding [`EXEC`], runnable, unowned and eligible.
    pub fn runnable() -> TestDb {
        let db = TestDb::new();
        db.seed_runnable(EXEC);
        db
    }

    /// Run `op` on `db` expecting an error; assert that nothing changed and return the error.
    pub fn fails_cleanly<T: std::fmt::Debug>(
        db: &mut TestDb,
        op: impl FnOnce(&mut TestDb) -> Result<T, EngineError>,
    ) -> EngineError {
        let before = dump(db);
        let err = op(db).expect_err("expected an error");
        assert_eq!(dump(db), before, "{err:?} changed the database");
        err
    }

    /// Every row of every table, rendered and sorted: equal dumps mean an unchanged database.
    pub fn dump(db: &mut TestDb) -> Vec<String> {
        let tables = db
            .query(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                &[],
            )
            .expect("tables");
        let mut out = Vec::new();
        for table in tables.rows {
            let crate::sql::Value::Text(name) = &table[0] else {
                panic!("table name")
            };
            let rows = db
                .query(&format!("SELECT * FROM \"{name}\""), &[])
                .expect("rows");
            let mut rendered: Vec<String> = rows
                .rows
                .iter()
                .map(|row| format!("{name}: {row:?}"))
                .collect();
            rendered.sort();
            out.extend(rendered);
        }
        out
    }

    /// The hex of the execution's UUID, for `X'..'` literals.
    pub fn hex(execution_id: &str) -> String {
        execution_id
            .split_once("}:")
            .expect("id")
            .1
            .replace('-', "")
    }
}
