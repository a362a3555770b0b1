//! The handle's `delay` and `cancel`, and the scanner hooks `close-waitpoint` and
//! `expire-suspension`; the rules are in the parent module's docs.

use super::suspend::uuid_blob;
use super::{WORKER_DELAYED, fenced_holder, interrupt_held_attempt, parse_waitpoint_id};
use crate::bindings::recovery::CancelExecutionArgs;
use crate::bindings::suspension::HandleLease;
use crate::db::{Db, DbExt, int, text};
use crate::errors::invalid_input;
use crate::exec::{Exec, StateVector, record_completion_event, update_exec};
use crate::ids::ExecutionRef;
use crate::types::{CancelSource, EngineError};

/// Public `expired`: the suspension timed out with behaviour `expire`.
const EXPIRED: StateVector = StateVector {
    lifecycle_phase: "terminal",
    ownership_state: "unowned",
    eligibility_state: "not_applicable",
    public_state: "expired",
    attempt_state: "attempt_terminal",
    blocking_reason: None,
};

/// Suspended, escalated to an operator after the timeout.
const ESCALATED: StateVector = StateVector {
    lifecycle_phase: "suspended",
    ownership_state: "unowned",
    eligibility_state: "not_applicable",
    public_state: "suspended",
    attempt_state: "attempt_interrupted",
    blocking_reason: Some("paused_by_operator"),
};

/// Release the handle's lease; the same attempt becomes claimable again at `delay_until`.
pub fn delay(
    db: &mut impl Db,
    lease: &HandleLease,
    delay_until: i64,
    now: i64,
) -> Result<(), EngineError> {
    if delay_until <= now {
        return Err(invalid_input("delay_until must be in the future"));
    }
    let id = ExecutionRef::parse(&lease.execution_id)?;
    let (exec, attempt) = fenced_holder(db, &id, lease)?;
    update_exec(
        db,
        &id,
        &WORKER_DELAYED,
        ", raw_fields = json_set(raw_fields, '$.delay_until', CAST(?9 AS TEXT), \
             '$.last_mutation_at', CAST(?10 AS TEXT))",
        &[int(delay_until), int(now)],
    )?;
    interrupt_held_attempt(db, &exec, &attempt, lease, now)
}

/// Cancel the handle's execution as its lease holder (`cancel-execution` with source
/// `lease_holder` and the handle's fence, after the handle's own fence check).
pub fn cancel(
    db: &mut impl Db,
    lease: &HandleLease,
    reason: &str,
    now: i64,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(&lease.execution_id)?;
    fenced_holder(db, &id, lease)?;
    crate::recovery::cancel_execution(
        db,
        &CancelExecutionArgs {
            execution_id: id.canonical(),
            reason: reason.into(),
            source: CancelSource::LeaseHolder,
            lease_id: Some(lease.lease_id.clone()),
            lease_epoch: Some(lease.lease_epoch),
            attempt_id: Some(lease.attempt_id.clone()),
            now,
        },
    )
}

/// Close a waitpoint (state `closed`): it accepts no more signals. Nothing when it does not
/// exist, belongs to another execution's partition, or is already closed.
pub fn close_waitpoint(
    db: &mut impl Db,
    execution_id: &str,
    waitpoint_id: &str,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let waitpoint_id = parse_waitpoint_id(waitpoint_id)?;
    db.run(
        "UPDATE ff_waitpoint_pending SET state = 'closed' \
         WHERE partition_key = ?1 AND waitpoint_id = ?2 AND execution_id = ?3 AND state <> 'closed'",
        &[id.partition(), uuid_blob(&waitpoint_id)?, id.blob()],
    )?;
    Ok(())
}

/// Apply a due suspension timeout (Valkey's `ff_expire_suspension`): nothing unless the
/// execution is suspended with a suspension whose `timeout_at_ms <= now`.
pub fn expire_suspension(
    db: &mut impl Db,
    execution_id: &str,
    now: i64,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(exec) = Exec::load(db, &id)? else {
        return Ok(());
    };
    if exec.lifecycle_phase != "suspended" {
        return Ok(());
    }
    let Some(row) = db.first_row(
        "SELECT timeout_at_ms, COALESCE(timeout_behavior, 'fail') FROM ff_suspension_current \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?
    else {
        return Ok(());
    };
    if row.integer(0).is_none_or(|at| at > now) {
        return Ok(());
    }
    let behavior = row.text_or_empty(1);
    let close_records = |db: &mut dyn FnMut(&str) -> Result<u64, EngineError>| {
        db("DELETE FROM ff_waitpoint_pending WHERE partition_key = ?1 AND execution_id = ?2")?;
        db("DELETE FROM ff_suspension_current WHERE partition_key = ?1 AND execution_id = ?2")
    };
    match behavior.as_str() {
        "auto_resume_with_timeout_signal" | "auto_resume" => {
            update_exec(
                db,
                &id,
                &StateVector::INTERRUPTED,
                ", raw_fields = json_set(raw_fields, '$.current_suspension_id', '', \
                     '$.current_waitpoint_id', '', '$.last_mutation_at', CAST(?9 AS TEXT))",
                &[int(now)],
            )?;
            close_records(&mut |sql| db.run(sql, &id.key()))?;
        }
        "escalate" => {
            update_exec(
                db,
                &id,
                &ESCALATED,
                ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
                &[int(now)],
            )?;
            db.run(
                "UPDATE ff_suspension_current SET timeout_at_ms = NULL, \
                     reason_code = 'waiting_for_operator_review' \
                 WHERE partition_key = ?1 AND execution_id = ?2",
                &id.key(),
            )?;
        }
        terminal => {
            let (state, outcome) = match terminal {
                "cancel" => (&StateVector::CANCELLED, "cancelled"),
                "expire" => (&EXPIRED, "expired"),
                _ => (&StateVector::FAILED, "failed"),
            };
            let reason = format!("suspension_timeout:{terminal}");
            update_exec(
                db,
                &id,
                state,
                ", terminal_at_ms = ?9, raw_fields = json_set(raw_fields, '$.terminal_outcome', ?10, \
                     '$.failure_reason', ?11, '$.last_mutation_at', CAST(?9 AS TEXT))",
                &[int(now), text(outcome), text(&reason)],
            )?;
            db.run(
                "UPDATE ff_attempt SET terminal_at_ms = ?4, outcome = ?5 \
                 WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
                &[
                    id.partition(),
                    id.blob(),
                    int(exec.attempt_index),
                    int(now),
                    text(outcome),
                ],
            )?;
            record_completion_event(db, &exec, outcome, now)?;
            close_records(&mut |sql| db.run(sql, &id.key()))?;
        }
    }
    Ok(())
}
