//! `promote-delayed`; the rules are in the parent module's docs.

use crate::db::{Db, int};
use crate::exec::{Exec, StateVector, update_exec};
use crate::ids::ExecutionRef;
use crate::types::EngineError;

/// Make `execution_id` claimable if it is delayed and its delay has passed at `now`; nothing
/// otherwise. See the module docs for the rules.
pub fn promote_delayed(db: &mut impl Db, execution_id: &str, now: i64) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let exec = Exec::require(db, &id)?;
    let due = exec.lifecycle_phase == "runnable"
        && exec.eligibility_state == "not_eligible_until_time"
        && exec.delay_until.is_some_and(|until| until <= now);
    if !due {
        return Ok(());
    }
    let state = match exec.attempt_state.as_str() {
        "pending_retry_attempt" => &StateVector::RETRY_DUE,
        "attempt_interrupted" => &StateVector::INTERRUPTED,
        _ => &StateVector::WAITING,
    };
    update_exec(
        db,
        &id,
        state,
        ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb};
    use crate::types::{Entity, ValidationKind};

    /// A runnable execution delayed until `until` in `attempt_state`.
    fn delayed(until: i64, attempt_state: &str) -> TestDb {
        let db = TestDb::new();
        db.seed_runnable(EXEC);
        db.exec(&format!(
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', public_state = 'delayed', \
             attempt_state = '{attempt_state}', blocking_reason = 'waiting_for_delay', \
             raw_fields = json_set(raw_fields, '$.delay_until', '{until}', '$.last_mutation_at', '1')"
        ));
        db
    }

    fn state(db: &TestDb) -> String {
        db.one(
            "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || public_state || \
             '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
             json_extract(raw_fields, '$.last_mutation_at') || '|' || json_type(raw_fields, '$.last_mutation_at') || \
             '|' || json_extract(raw_fields, '$.delay_until') FROM ff_exec_core",
        )
    }

    #[test]
    fn a_due_first_attempt_becomes_waiting() {
        for until in [NOW, NOW - 1] {
            let mut db = delayed(until, "pending_first_attempt");
            let attempts = db.one("SELECT COUNT(*) FROM ff_attempt");
            promote_delayed(&mut db, EXEC, NOW).unwrap();
            assert_eq!(
                state(&db),
                format!(
                    "runnable|unowned|eligible_now|waiting|pending_first_attempt|waiting_for_worker|{NOW}|text|{until}"
                )
            );
            assert_eq!(db.one("SELECT COUNT(*) FROM ff_attempt"), attempts);
            assert_eq!(db.one("SELECT COUNT(*) FROM ff_lease_event"), "0");
        }
    }

    #[test]
    fn a_due_retry_becomes_retry_due() {
        let mut db = delayed(NOW, "pending_retry_attempt");
        promote_delayed(&mut db, EXEC, NOW).unwrap();
        assert_eq!(
            state(&db),
            format!(
                "runnable|unowned|eligible_now|waiting|pending_retry_attempt|waiting_for_worker|{NOW}|text|{NOW}"
            )
        );
    }

    #[test]
    fn a_due_interrupted_attempt_becomes_interrupted_and_claimable() {
        let mut db = delayed(NOW, "attempt_interrupted");
        promote_delayed(&mut db, EXEC, NOW).unwrap();
        assert_eq!(
            state(&db),
            format!(
                "runnable|unowned|eligible_now|waiting|attempt_interrupted|waiting_for_worker|{NOW}|text|{NOW}"
            )
        );
    }

    #[test]
    fn anything_not_due_is_left_alone() {
        let not_due: [(&str, i64); 5] = [
            // Delay not yet passed.
            ("", NOW + 1),
            // Not delayed.
            ("eligibility_state = 'eligible_now'", NOW - 1),
            // Not runnable.
            ("lifecycle_phase = 'active'", NOW - 1),
            ("lifecycle_phase = 'terminal'", NOW - 1),
            // Delayed without a recorded delay.
            (
                "raw_fields = json_remove(raw_fields, '$.delay_until')",
                NOW - 1,
            ),
        ];
        for (mutation, until) in not_due {
            let mut db = delayed(until, "pending_first_attempt");
            if !mutation.is_empty() {
                db.exec(&format!("UPDATE ff_exec_core SET {mutation}"));
            }
            let before = db.dump();
            promote_delayed(&mut db, EXEC, NOW).unwrap();
            assert_eq!(db.dump(), before, "{mutation}");
        }
    }

    #[test]
    fn missing_execution_is_not_found() {
        let mut db = TestDb::new();
        let before = db.dump();
        assert_eq!(
            promote_delayed(&mut db, EXEC, NOW),
            Err(EngineError::NotFound(Entity::Execution))
        );
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn a_malformed_id_is_invalid_input() {
        let mut db = delayed(NOW, "pending_first_attempt");
        let before = db.dump();
        match promote_delayed(&mut db, "{fp:x}:y", NOW) {
            Err(EngineError::Validation(v)) => assert_eq!(v.kind, ValidationKind::InvalidInput),
            other => panic!("{other:?}"),
        }
        assert_eq!(db.dump(), before);
    }
}
