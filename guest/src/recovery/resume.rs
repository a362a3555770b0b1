//! Suspension resume (`resume-execution`, `claim-resumed-execution`) and taking over an
//! expired lease on the same attempt (`claim-from-resume-grant`). Validation tables: the
//! parent module.

use crate::bindings::recovery::{
    ClaimResumedExecutionArgs, ResumeExecutionArgs, ResumeGrantClaimArgs,
};
use crate::db::{Db, DbExt, int};
use crate::errors::{contention, require_positive, require_worker_id, require_worker_instance_id};
use crate::exec::{Attempt, Exec, StateVector, lease_expiry, update_exec_formatted};
use crate::ids::ExecutionRef;
use crate::lease::{claimant_of, lease_current_attempt};
use crate::types::{ClaimedExecution, ContentionKind, EngineError, PublicState, StateKind};

/// Lease an execution whose suspension was satisfied (`public_state = 'resumable'`) on its
/// current attempt. See the module docs of [`crate::recovery`] for the rules.
pub fn claim_resumed_execution(
    db: &mut impl Db,
    args: &ClaimResumedExecutionArgs,
) -> Result<ClaimedExecution, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    // A satisfied suspension, or (as Valkey) any interrupted attempt claimable now, such as a
    // revoked lease's: `claim-execution` sends both here with `UseClaimResumedExecution`.
    let interrupted = exec.lifecycle_phase == "runnable"
        && exec.attempt_state == "attempt_interrupted"
        && exec.is_claimable_at(args.now);
    if exec.public_state != "resumable" && !interrupted {
        return Err(contention(ContentionKind::NotAResumedExecution));
    }
    if exec.ownership_state != "unowned" {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    let claimant = claimant_of!(args);
    let lease = lease_current_attempt(db, &exec, &claimant, "acquired")?;
    // A grant issued for the resumable execution was meant for this claim.
    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
        &id.key(),
    )?;
    Ok(lease.claimed(id.canonical(), &claimant))
}

/// Resume a suspended execution, at once (`waiting`) or after `resume_delay_ms` (`delayed`,
/// claimable once the delay passed). See the module docs of [`crate::recovery`].
pub fn resume_execution(
    db: &mut impl Db,
    args: &ResumeExecutionArgs,
) -> Result<PublicState, EngineError> {
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "suspended" {
        return Err(EngineError::State(StateKind::ExecutionNotSuspended));
    }
    let suspended = db
        .first_row(
            "SELECT 1 FROM ff_suspension_current WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .is_some();
    if !suspended {
        return Err(EngineError::State(StateKind::ExecutionNotSuspended));
    }

    let cleared = "'$.current_suspension_id', '', '$.current_waitpoint_id', '', \
                   '$.last_mutation_at', CAST(?9 AS TEXT)";
    let public_state = if args.resume_delay_ms > 0 {
        update_exec_formatted(
            db,
            &id,
            &StateVector::INTERRUPTED_DELAYED,
            &format!(
                ", raw_fields = json_set(raw_fields, {cleared}, '$.delay_until', CAST(?10 AS TEXT))"
            ),
            &[
                int(args.now),
                int(lease_expiry(args.now, args.resume_delay_ms)),
            ],
        )?;
        PublicState::Delayed
    } else {
        update_exec_formatted(
            db,
            &id,
            &StateVector::INTERRUPTED,
            &format!(", raw_fields = json_set(raw_fields, {cleared})"),
            &[int(args.now)],
        )?;
        PublicState::Waiting
    };
    db.run(
        "DELETE FROM ff_suspension_current WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    Ok(public_state)
}

/// Take over the current attempt of an active execution whose lease is not live (expired,
/// marked expired, or revoked): `None` while the lease is still live. See the module docs of
/// [`crate::recovery`] for the rules.
pub fn claim_from_resume_grant(
    db: &mut impl Db,
    args: &ResumeGrantClaimArgs,
) -> Result<Option<ClaimedExecution>, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    // ff-core: a grant whose execution is no longer resumable (finished, among others) is
    // `Ok(None)`, not an error.
    if exec.is_terminal() {
        return Ok(None);
    }
    if exec.lifecycle_phase != "active" {
        return Err(exec.not_active(db)?);
    }
    let attempt = Attempt::require(db, &id, exec.attempt_index)?;
    if exec.ownership_state == "leased" && attempt.lease_live_at(args.now) {
        return Ok(None);
    }
    let claimant = claimant_of!(args);
    let lease = lease_current_attempt(db, &exec, &claimant, "reclaimed")?;
    Ok(Some(lease.claimed(id.canonical(), &claimant)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::invalid_input;
    use crate::testing::{EXEC, LEASE, NOW, TTL, TestDb};
    use crate::types::{AttemptType, Entity, ExecutionNotActive};

    const NEW_LEASE: &str = "33333333-3333-4333-8333-333333333333";
    const NEW_ATTEMPT: &str = "44444444-4444-4444-8444-444444444444";

    fn resumed_args() -> ClaimResumedExecutionArgs {
        ClaimResumedExecutionArgs {
            execution_id: EXEC.to_uppercase().replace("{FP:", "{fp:"),
            worker_id: "worker-2".into(),
            worker_instance_id: "wi-2".into(),
            lane_id: "default".into(),
            lease_id: NEW_LEASE.into(),
            lease_ttl_ms: TTL,
            attempt_id: NEW_ATTEMPT.into(),
            now: NOW + 10,
        }
    }

    fn grant_args(now: i64) -> ResumeGrantClaimArgs {
        ResumeGrantClaimArgs {
            execution_id: EXEC.into(),
            worker_id: "worker-2".into(),
            worker_instance_id: "wi-2".into(),
            lane_id: "default".into(),
            lease_ttl_ms: TTL,
            lease_id: NEW_LEASE.into(),
            attempt_id: NEW_ATTEMPT.into(),
            now,
        }
    }

    fn resume_args(delay: u64) -> ResumeExecutionArgs {
        ResumeExecutionArgs {
            execution_id: EXEC.into(),
            trigger_type: "signal".into(),
            resume_delay_ms: delay,
            now: NOW + 10,
        }
    }

    /// An execution a signal made resumable, on attempt 0 (epoch 4, a retry attempt).
    fn resumable() -> TestDb {
        let db = TestDb::new();
        db.seed_runnable(EXEC);
        db.exec(
            "UPDATE ff_exec_core SET public_state = 'resumable', attempt_state = 'attempt_interrupted';
             INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, lease_epoch, \
                 started_at_ms, raw_fields) \
             SELECT 0, execution_id, 0, 'worker-1', 4, 5, '{\"attempt_type\":\"retry\",\"lease_id\":\"old\"}' \
             FROM ff_exec_core",
        );
        db
    }

    /// A suspended execution with its suspension row.
    fn suspended() -> TestDb {
        let db = TestDb::new();
        db.seed_runnable(EXEC);
        db.exec(
            "UPDATE ff_exec_core SET lifecycle_phase = 'suspended', ownership_state = 'released', \
                 eligibility_state = 'not_applicable', public_state = 'suspended', \
                 attempt_state = 'attempt_suspended', blocking_reason = 'waiting_for_signal', \
                 raw_fields = json_set(raw_fields, '$.current_suspension_id', 'susp-1', '$.current_waitpoint_id', 'wp-1');
             INSERT INTO ff_suspension_current (partition_key, execution_id, suspension_id, suspended_at_ms, condition) \
             SELECT 0, execution_id, randomblob(16), 1, '{}' FROM ff_exec_core",
        );
        db
    }

    fn assert_error_writes_nothing(
        db: &mut TestDb,
        run: impl FnOnce(&mut TestDb) -> Result<(), EngineError>,
        expected: impl Fn(&EngineError) -> bool,
    ) {
        let err = db.fails_unchanged(run);
        assert!(expected(&err), "{err:?}");
    }

    // ---- claim_resumed_execution ----

    #[test]
    fn claim_resumed_validation_rows() {
        let mut zero = resumed_args();
        zero.lease_ttl_ms = 0;
        assert_error_writes_nothing(
            &mut resumable(),
            |db| claim_resumed_execution(db, &zero).map(drop),
            |e| matches!(e, EngineError::Validation(v) if v.kind == crate::types::ValidationKind::InvalidInput),
        );
        assert_error_writes_nothing(
            &mut TestDb::new(),
            |db| claim_resumed_execution(db, &resumed_args()).map(drop),
            |e| matches!(e, EngineError::NotFound(Entity::Execution)),
        );
        let mut waiting = resumable();
        waiting.exec(
            "UPDATE ff_exec_core SET public_state = 'waiting', attempt_state = 'pending_retry_attempt'",
        );
        assert_error_writes_nothing(
            &mut waiting,
            |db| claim_resumed_execution(db, &resumed_args()).map(drop),
            |e| {
                matches!(
                    e,
                    EngineError::Contention(ContentionKind::NotAResumedExecution)
                )
            },
        );
        let mut owned = resumable();
        owned.exec("UPDATE ff_exec_core SET ownership_state = 'leased'");
        assert_error_writes_nothing(
            &mut owned,
            |db| claim_resumed_execution(db, &resumed_args()).map(drop),
            |e| matches!(e, EngineError::Contention(ContentionKind::LeaseConflict)),
        );
    }

    #[test]
    fn claim_resumed_empty_worker_id_is_invalid_input_and_writes_nothing() {
        let mut empty = resumed_args();
        empty.worker_id = String::new();
        let err = resumable().fails_unchanged(|db| claim_resumed_execution(db, &empty));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
    }

    #[test]
    fn claim_resumed_re_arms_the_current_attempt_and_keeps_its_type() {
        let mut db = resumable();
        let claimed = claim_resumed_execution(&mut db, &resumed_args()).expect("claim");
        let now = NOW + 10;
        assert_eq!(
            claimed,
            ClaimedExecution {
                execution_id: EXEC.into(),
                lease_id: NEW_LEASE.into(),
                lease_epoch: 5,
                attempt_index: 0,
                attempt_id: NEW_ATTEMPT.into(),
                attempt_type: AttemptType::Retry,
                lease_expires_at: now + TTL as i64,
            }
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 attempt_index || '|' || started_at_ms || '|' || json_extract(raw_fields, '$.current_lease_id') || '|' || \
                 json_extract(raw_fields, '$.current_attempt_id') || '|' || json_extract(raw_fields, '$.last_mutation_at') \
                 FROM ff_exec_core"
            ),
            format!("active|leased|not_applicable|active|running_attempt|NULL|0|{now}|{NEW_LEASE}|{NEW_ATTEMPT}|{now}")
        );
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || lease_expires_at_ms || '|' || \
                 started_at_ms || '|' || raw_fields FROM ff_attempt"
            ),
            format!(
                "worker-2|wi-2|5|{}|5|{{\"attempt_type\":\"retry\",\"lease_id\":\"{NEW_LEASE}\",\"attempt_id\":\"{NEW_ATTEMPT}\"}}",
                now + TTL as i64
            )
        );
        assert_eq!(
            db.one(
                "SELECT event_type || '|' || lease_id || '|' || occurred_at_ms FROM ff_lease_event"
            ),
            format!("acquired|{NEW_LEASE}|{now}")
        );
    }

    #[test]
    fn claim_resumed_creates_a_missing_attempt_row_at_epoch_one() {
        let mut db = resumable();
        db.exec("DELETE FROM ff_attempt; UPDATE ff_exec_core SET attempt_index = 2");
        let claimed = claim_resumed_execution(&mut db, &resumed_args()).expect("claim");
        assert_eq!(
            (
                claimed.lease_epoch,
                claimed.attempt_index,
                claimed.attempt_type
            ),
            (1, 2, AttemptType::Initial)
        );
        assert_eq!(
            db.one("SELECT attempt_index || '|' || lease_epoch FROM ff_attempt"),
            "2|1"
        );
    }

    // ---- resume_execution ----

    #[test]
    fn resume_validation_rows() {
        assert_error_writes_nothing(
            &mut TestDb::new(),
            |db| resume_execution(db, &resume_args(0)).map(drop),
            |e| matches!(e, EngineError::NotFound(Entity::Execution)),
        );
        let mut active = suspended();
        active.exec("UPDATE ff_exec_core SET lifecycle_phase = 'active'");
        assert_error_writes_nothing(
            &mut active,
            |db| resume_execution(db, &resume_args(0)).map(drop),
            |e| matches!(e, EngineError::State(StateKind::ExecutionNotSuspended)),
        );
        let mut no_row = suspended();
        no_row.exec("DELETE FROM ff_suspension_current");
        assert_error_writes_nothing(
            &mut no_row,
            |db| resume_execution(db, &resume_args(0)).map(drop),
            |e| matches!(e, EngineError::State(StateKind::ExecutionNotSuspended)),
        );
    }

    #[test]
    fn resume_without_delay_makes_the_execution_waiting() {
        let mut db = suspended();
        assert_eq!(
            resume_execution(&mut db, &resume_args(0)).unwrap(),
            PublicState::Waiting
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || blocking_reason || '|' || \
                 json_extract(raw_fields, '$.current_suspension_id') || '|' || \
                 json_extract(raw_fields, '$.current_waitpoint_id') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') || '|' || \
                 COALESCE(json_extract(raw_fields, '$.delay_until'), 'none') FROM ff_exec_core"
            ),
            format!(
                "runnable|unowned|eligible_now|waiting|attempt_interrupted|waiting_for_worker|||{}|none",
                NOW + 10
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_suspension_current"), "0");
        assert_eq!(
            db.one("SELECT (SELECT COUNT(*) FROM ff_lease_event) + (SELECT COUNT(*) FROM ff_completion_event)"),
            "0"
        );
    }

    #[test]
    fn resume_with_delay_is_delayed_and_claimable_once_due() {
        let mut db = suspended();
        assert_eq!(
            resume_execution(&mut db, &resume_args(5_000)).unwrap(),
            PublicState::Delayed
        );
        let due = NOW + 10 + 5_000;
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || blocking_reason || '|' || \
                 json_type(raw_fields, '$.delay_until') || ':' || json_extract(raw_fields, '$.delay_until') || '|' || \
                 json_extract(raw_fields, '$.current_suspension_id') FROM ff_exec_core"
            ),
            format!(
                "runnable|unowned|not_eligible_until_time|delayed|attempt_interrupted|waiting_for_resume_delay|text:{due}|"
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_suspension_current"), "0");
        let exec = Exec::require(&mut db, &ExecutionRef::parse(EXEC).unwrap()).unwrap();
        assert!(!exec.is_claimable_at(due - 1));
        assert!(exec.is_claimable_at(due));
    }

    // ---- claim_from_resume_grant ----

    #[test]
    fn claim_from_resume_grant_validation_rows() {
        let mut zero = grant_args(NOW + TTL as i64);
        zero.lease_ttl_ms = 0;
        assert_error_writes_nothing(
            &mut TestDb::leased(),
            |db| claim_from_resume_grant(db, &zero).map(drop),
            |e| matches!(e, EngineError::Validation(v) if v.kind == crate::types::ValidationKind::InvalidInput),
        );
        assert_error_writes_nothing(
            &mut TestDb::new(),
            |db| claim_from_resume_grant(db, &grant_args(NOW)).map(drop),
            |e| matches!(e, EngineError::NotFound(Entity::Execution)),
        );
        let mut no_attempt = TestDb::leased();
        no_attempt.exec("UPDATE ff_exec_core SET attempt_index = 1");
        assert_error_writes_nothing(
            &mut no_attempt,
            |db| claim_from_resume_grant(db, &grant_args(NOW)).map(drop),
            |e| matches!(e, EngineError::NotFound(Entity::Attempt)),
        );
    }

    #[test]
    fn claim_from_resume_grant_empty_worker_id_is_invalid_input_and_writes_nothing() {
        // The lease has lapsed: with a worker id, this claim would take it over.
        let mut empty = grant_args(NOW + TTL as i64);
        empty.worker_id = String::new();
        let err = TestDb::leased().fails_unchanged(|db| claim_from_resume_grant(db, &empty));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
    }

    #[test]
    fn claim_from_resume_grant_refuses_inactive_executions_with_the_observed_state() {
        // A finished execution is no longer resumable: `Ok(None)`, as ff-core documents.
        let mut cancelled = TestDb::leased();
        crate::recovery::cancel_execution(
            &mut cancelled,
            &crate::bindings::recovery::CancelExecutionArgs {
                execution_id: EXEC.into(),
                reason: "r".into(),
                source: crate::types::CancelSource::OperatorOverride,
                lease_id: None,
                lease_epoch: None,
                attempt_id: None,
                now: NOW,
            },
        )
        .unwrap();
        let before = cancelled.dump();
        assert_eq!(
            claim_from_resume_grant(&mut cancelled, &grant_args(NOW + 1)).unwrap(),
            None
        );
        assert_eq!(cancelled.dump(), before);
        let mut runnable = TestDb::new();
        runnable.seed_runnable(EXEC);
        assert_error_writes_nothing(
            &mut runnable,
            |db| claim_from_resume_grant(db, &grant_args(NOW)).map(drop),
            |e| {
                *e == EngineError::Contention(ContentionKind::ExecutionNotActive(
                    ExecutionNotActive {
                        terminal_outcome: None,
                        lease_epoch: None,
                        lifecycle_phase: "runnable".into(),
                        attempt_id: None,
                    },
                ))
            },
        );
    }

    #[test]
    fn claim_from_resume_grant_is_none_while_the_lease_is_live() {
        let mut db = TestDb::leased();
        let before = db.dump();
        assert_eq!(
            claim_from_resume_grant(&mut db, &grant_args(NOW + TTL as i64 - 1)).unwrap(),
            None
        );
        assert_eq!(before, db.dump());
    }

    #[test]
    fn claim_from_resume_grant_takes_over_an_expired_lease_on_the_same_attempt() {
        let expires = NOW + TTL as i64;
        let mut db = TestDb::leased();
        let claimed = claim_from_resume_grant(&mut db, &grant_args(expires))
            .unwrap()
            .expect("expired at now: taken over");
        assert_eq!(
            claimed,
            ClaimedExecution {
                execution_id: EXEC.into(),
                lease_id: NEW_LEASE.into(),
                lease_epoch: 2,
                attempt_index: 0,
                attempt_id: NEW_ATTEMPT.into(),
                attempt_type: AttemptType::Initial,
                lease_expires_at: expires + TTL as i64,
            }
        );
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || lease_expires_at_ms || '|' || \
                 started_at_ms || '|' || json_extract(raw_fields, '$.lease_id') || '|' || \
                 json_extract(raw_fields, '$.attempt_id') || '|' || COUNT(*) FROM ff_attempt"
            ),
            format!("worker-2|wi-2|2|{}|{NOW}|{NEW_LEASE}|{NEW_ATTEMPT}|1", expires + TTL as i64)
        );
        assert_eq!(
            db.one(
                "SELECT public_state || '|' || ownership_state || '|' || attempt_index || '|' || \
                 json_extract(raw_fields, '$.current_worker_instance_id') FROM ff_exec_core"
            ),
            "active|leased|0|wi-2"
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(event_type || ':' || lease_id, ',') \
                 FROM (SELECT * FROM ff_lease_event ORDER BY event_id)"
            ),
            format!("acquired:{LEASE},reclaimed:{NEW_LEASE}")
        );
    }

    #[test]
    fn claim_from_resume_grant_takes_over_a_lease_marked_expired_or_revoked() {
        for ownership in ["lease_expired_reclaimable", "lease_revoked"] {
            let mut db = TestDb::leased();
            db.exec(&format!(
                "UPDATE ff_exec_core SET ownership_state = '{ownership}'"
            ));
            let claimed = claim_from_resume_grant(&mut db, &grant_args(NOW + 1))
                .unwrap()
                .unwrap_or_else(|| panic!("{ownership}"));
            assert_eq!(claimed.lease_epoch, 2);
            assert_eq!(db.one("SELECT ownership_state FROM ff_exec_core"), "leased");
        }
    }
}
