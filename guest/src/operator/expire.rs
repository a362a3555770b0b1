//! `expire-execution`: the attempt-timeout and execution-deadline scanner hook.
//!
//! Valkey's semantics (spec §6.8, the "intended" choice over Postgres' retry on attempt
//! timeout): whichever timer fires, the execution ends for good with public state and
//! `terminal_outcome` `expired` and `failure_reason` naming the phase. A scanner hook: an
//! execution that is missing, already terminal, or not due is left alone and the call is `Ok`.
//!
//! | phase | due when |
//! |---|---|
//! | `attempt-timeout` | `active`, and the current attempt started at least the policy's `timeout_policy.attempt_timeout_ms` before `now` (no such policy: never) |
//! | `execution-deadline` | not terminal, and `deadline_at_ms <= now` |
//!
//! Writes: a live lease is revoked (attempt epoch + 1, worker instance and expiry cleared,
//! LE(`expired`)); the current attempt, if it has not ended, ends with outcome `expired`;
//! grants are dropped; the row becomes terminal (`terminal_at_ms = now`); CE(`expired`); a flow
//! member's outgoing edges resolve as failed. A suspended execution's suspension is closed by
//! the schema's terminal trigger.

use crate::bindings::operator::ExpirePhase;
use crate::db::{Db, DbExt, int, text};
use crate::exec::{Exec, StateVector, record_completion_event, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::types::EngineError;

/// The phase's name as ff-core's `ExpirePhase::as_str` spells it.
pub fn phase_name(phase: ExpirePhase) -> &'static str {
    match phase {
        ExpirePhase::AttemptTimeout => "attempt_timeout",
        ExpirePhase::ExecutionDeadline => "execution_deadline",
    }
}

/// Expire the execution if its `phase` timer is due at `now`; see the module docs.
pub fn expire_execution(
    db: &mut impl Db,
    execution_id: &str,
    phase: ExpirePhase,
    now: i64,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(exec) = Exec::load(db, &id)? else {
        return Ok(());
    };
    if exec.is_terminal() || !is_due(db, &exec, phase, now)? {
        return Ok(());
    }
    let holder = exec.lease_holder(db)?;
    if let Some(attempt) = &holder {
        db.run(
            "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
                 lease_epoch = lease_epoch + 1 \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(attempt.index)],
        )?;
        record_lease_event(db, &exec, "expired", attempt.lease_id.as_deref(), now)?;
    }
    db.run(
        "UPDATE ff_attempt SET outcome = 'expired', terminal_at_ms = ?4 \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 AND outcome IS NULL",
        &[id.partition(), id.blob(), int(exec.attempt_index), int(now)],
    )?;
    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    update_exec(
        db,
        &id,
        &StateVector::EXPIRED,
        ", terminal_at_ms = ?9, \
         raw_fields = json_set(raw_fields, '$.terminal_outcome', 'expired', \
             '$.failure_reason', ?10, '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now), text(phase_name(phase))],
    )?;
    record_completion_event(db, &exec, "expired", now)?;
    crate::flows::on_terminal(db, &exec, "expired", now)
}

/// Whether `exec` (not terminal) is due to expire in `phase` at `now`.
fn is_due(
    db: &mut impl Db,
    exec: &Exec,
    phase: ExpirePhase,
    now: i64,
) -> Result<bool, EngineError> {
    let id = &exec.id;
    let due = match phase {
        ExpirePhase::ExecutionDeadline => db.first_row(
            "SELECT 1 FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2 \
               AND deadline_at_ms IS NOT NULL AND deadline_at_ms <= ?3",
            &[id.partition(), id.blob(), int(now)],
        )?,
        ExpirePhase::AttemptTimeout if exec.lifecycle_phase == "active" => db.first_row(
            "SELECT 1 FROM ff_exec_core AS e JOIN ff_attempt AS a \
                 ON a.partition_key = e.partition_key AND a.execution_id = e.execution_id \
                 AND a.attempt_index = e.attempt_index \
             WHERE e.partition_key = ?1 AND e.execution_id = ?2 AND json_valid(e.policy) \
               AND json_type(e.policy, '$.timeout_policy.attempt_timeout_ms') = 'integer' \
               AND a.started_at_ms IS NOT NULL \
               AND a.started_at_ms + json_extract(e.policy, '$.timeout_policy.attempt_timeout_ms') <= ?3",
            &[id.partition(), id.blob(), int(now)],
        )?,
        ExpirePhase::AttemptTimeout => None,
    };
    Ok(due.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb};

    fn state(db: &TestDb) -> String {
        db.one(
            "SELECT lifecycle_phase || '|' || public_state || '|' || COALESCE(terminal_at_ms, '-') || '|' || \
             COALESCE(json_extract(raw_fields, '$.failure_reason'), '-') FROM ff_exec_core",
        )
    }

    #[test]
    fn a_passed_deadline_expires_a_leased_execution_for_good() {
        let mut db = TestDb::leased();
        db.exec(&format!(
            "UPDATE ff_exec_core SET deadline_at_ms = {}",
            NOW + 10
        ));
        expire_execution(&mut db, EXEC, ExpirePhase::ExecutionDeadline, NOW + 9).unwrap();
        assert_eq!(state(&db), "active|active|-|-", "not due yet");
        expire_execution(&mut db, EXEC, ExpirePhase::ExecutionDeadline, NOW + 10).unwrap();
        assert_eq!(
            state(&db),
            format!("terminal|expired|{}|execution_deadline", NOW + 10)
        );
        assert_eq!(
            db.one(
                "SELECT outcome || '|' || lease_epoch || '|' || COALESCE(worker_instance_id, lease_expires_at_ms, 'none') FROM ff_attempt"
            ),
            "expired|2|none"
        );
        assert_eq!(
            db.one("SELECT group_concat(event_type) FROM ff_lease_event"),
            "acquired,expired"
        );
        assert_eq!(db.one("SELECT outcome FROM ff_completion_event"), "expired");
        // Terminal now: a second call changes nothing.
        let before = db.dump();
        expire_execution(&mut db, EXEC, ExpirePhase::ExecutionDeadline, NOW + 99).unwrap();
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn an_attempt_times_out_only_under_its_policy_and_only_while_active() {
        let mut db = TestDb::leased();
        let started: i64 = db
            .one("SELECT started_at_ms FROM ff_attempt")
            .parse()
            .unwrap();
        let before = db.dump();
        expire_execution(&mut db, EXEC, ExpirePhase::AttemptTimeout, i64::MAX / 2).unwrap();
        assert_eq!(db.dump(), before, "no attempt timeout in the policy");
        db.exec(
            "UPDATE ff_exec_core SET policy = '{\"timeout_policy\":{\"attempt_timeout_ms\":100}}'",
        );
        expire_execution(&mut db, EXEC, ExpirePhase::AttemptTimeout, started + 99).unwrap();
        assert_eq!(state(&db), "active|active|-|-");
        expire_execution(&mut db, EXEC, ExpirePhase::AttemptTimeout, started + 100).unwrap();
        assert_eq!(
            state(&db),
            format!("terminal|expired|{}|attempt_timeout", started + 100)
        );
        let mut runnable = TestDb::runnable();
        runnable.exec(
            "UPDATE ff_exec_core SET policy = '{\"timeout_policy\":{\"attempt_timeout_ms\":1}}'",
        );
        let before = runnable.dump();
        expire_execution(&mut runnable, EXEC, ExpirePhase::AttemptTimeout, NOW).unwrap();
        assert_eq!(
            runnable.dump(),
            before,
            "a runnable execution has no running attempt"
        );
    }

    #[test]
    fn a_missing_execution_is_nothing_to_do_and_a_bad_id_is_invalid_input() {
        let mut db = TestDb::new();
        expire_execution(&mut db, EXEC, ExpirePhase::ExecutionDeadline, NOW).unwrap();
        let err = db.fails_unchanged(|db| {
            expire_execution(db, "nonsense", ExpirePhase::ExecutionDeadline, NOW)
        });
        assert!(matches!(err, EngineError::Validation(_)), "{err:?}");
    }
}
