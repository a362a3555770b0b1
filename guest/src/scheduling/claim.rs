//! `claim-execution`; the rules are in the parent module's docs.

use crate::bindings::scheduling::ClaimExecutionArgs;
use crate::db::{Db, DbExt, text};
use crate::errors::{
    contention, invalid_input, require_positive, require_worker_id, require_worker_instance_id,
};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::lease::{LeaseRequest, acquire_lease, attempt_type_for, claimant_of};
use crate::types::{ClaimedExecution, ConflictKind, ContentionKind, EngineError};

/// Claim `args.execution_id` for `args.worker_id`; see the module docs for the rules.
pub fn claim_execution(
    db: &mut impl Db,
    args: &ClaimExecutionArgs,
) -> Result<ClaimedExecution, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require_runnable_unowned(db, &id)?;
    if !exec.is_claimable_at(args.now) {
        return Err(contention(ContentionKind::ExecutionNotLeaseable));
    }
    match exec.attempt_state.as_str() {
        "running_attempt" => return Err(EngineError::Conflict(ConflictKind::ActiveAttemptExists)),
        // An interrupted attempt (a satisfied suspension, a revoked lease) is continued by
        // `claim-resumed-execution`, as ff-core documents (docs/semantics.md).
        "attempt_interrupted" => {
            return Err(contention(ContentionKind::UseClaimResumedExecution));
        }
        _ => {}
    }
    // The claim opens the execution's next attempt (ff-core: the index is pre-read from the
    // attempt count); any other index would overwrite an older attempt's row.
    let next_attempt = db
        .first_row(
            "SELECT COALESCE(MAX(attempt_index) + 1, 0) FROM ff_attempt \
             WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .and_then(|row| row.integer(0))
        .unwrap_or(0);
    if i64::from(args.expected_attempt_index) != next_attempt {
        return Err(invalid_input(format!(
            "expected_attempt_index {} is not the execution's next attempt {next_attempt}",
            args.expected_attempt_index
        )));
    }

    // Several grants may exist; this worker's latest is the one that counts (a grant for
    // another worker is as good as none). An aggregate, not `ORDER BY … LIMIT 1`: no sort, so
    // no temporary b-tree per claim.
    let grant_expires_at = db
        .first_row(
            "SELECT MAX(expires_at_ms) FROM ff_claim_grant \
             WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim' AND worker_id = ?3",
            &[id.partition(), id.blob(), text(&args.worker_id)],
        )?
        .and_then(|row| row.integer(0))
        .ok_or(contention(ContentionKind::InvalidClaimGrant))?;
    if grant_expires_at > 0 && grant_expires_at < args.now {
        return Err(contention(ContentionKind::ClaimGrantExpired));
    }

    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
        &id.key(),
    )?;

    let claimant = claimant_of!(args);
    let lease = acquire_lease(
        db,
        &exec,
        &LeaseRequest {
            claimant,
            attempt_index: i64::from(args.expected_attempt_index),
            attempt_type: attempt_type_for(&exec.attempt_state),
            attempt_policy_json: args.attempt_policy_json.as_deref(),
            first_epoch: 1,
            execution_deadline_at: args.execution_deadline_at,
            event: "acquired",
        },
    )?;
    Ok(lease.claimed(args.execution_id.clone(), &claimant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::lease_expiry;
    use crate::testing::{ATTEMPT, EXEC, LEASE, NOW, Recording, TestDb, claim_args};
    use crate::types::{AttemptType, Entity, ExecutionNotActive};

    fn runnable_with_grant(grant_expires_at: i64) -> TestDb {
        let db = TestDb::runnable();
        db.seed_grant(EXEC, "worker-1", grant_expires_at);
        db
    }

    #[test]
    fn every_statement_of_a_claim_is_served_by_an_index() {
        // Claim latency must not grow with the number of executions: no full scans, no sorts.
        let mut db = runnable_with_grant(NOW + 60_000);
        let mut recording = Recording {
            db: &mut db,
            statements: Vec::new(),
        };
        claim_execution(&mut recording, &claim_args(EXEC)).expect("claim");
        assert!(
            recording.statements.len() >= 5,
            "{:?}",
            recording.statements
        );
        assert_eq!(recording.unindexed_steps(), Vec::<String>::new());
    }

    #[test]
    fn happy_path_writes_attempt_exec_row_and_lease_event() {
        let mut db = runnable_with_grant(NOW + 60_000);
        let claimed = claim_execution(&mut db, &claim_args(EXEC)).expect("claim");
        assert_eq!(claimed.lease_epoch, 1);
        assert_eq!(claimed.attempt_index, 0);
        assert_eq!(claimed.attempt_type, AttemptType::Initial);
        assert_eq!(claimed.lease_expires_at, NOW + 30_000);

        assert_eq!(
            db.one("SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                    attempt_state || '|' || public_state || '|' || attempt_index || '|' || started_at_ms FROM ff_exec_core"),
            format!("active|leased|not_applicable|running_attempt|active|0|{NOW}")
        );
        assert_eq!(
            db.one("SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || \
                    lease_expires_at_ms || '|' || started_at_ms || '|' || raw_fields FROM ff_attempt"),
            format!(
                "worker-1|wi-1|1|{}|{NOW}|{{\"attempt_type\":\"initial\",\"attempt_id\":\"{}\",\"lease_id\":\"{}\"}}",
                NOW + 30_000,
                ATTEMPT,
                LEASE
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one("SELECT execution_id || '|' || event_type || '|' || lease_id || '|' || occurred_at_ms FROM ff_lease_event"),
            format!("53ad96d2-6b08-4d0c-86e3-36598db2291c|acquired|{}|{NOW}", LEASE)
        );
    }

    #[test]
    fn an_attempt_index_other_than_the_next_is_refused_and_writes_nothing() {
        let mut db = runnable_with_grant(NOW + 60_000);
        db.exec(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, outcome) \
             SELECT 0, execution_id, 0, 4, 'failed' FROM ff_exec_core",
        );
        db.exec("UPDATE ff_exec_core SET attempt_state = 'pending_retry_attempt'");
        // Attempt 0 exists: claiming it again would overwrite its row; 2 would skip one.
        for stale in [0, 2] {
            let mut args = claim_args(EXEC);
            args.expected_attempt_index = stale;
            let err = db.fails_unchanged(|db| claim_execution(db, &args));
            assert_eq!(
                err,
                invalid_input(format!(
                    "expected_attempt_index {stale} is not the execution's next attempt 1"
                ))
            );
        }
        let mut args = claim_args(EXEC);
        args.expected_attempt_index = 1;
        let claimed = claim_execution(&mut db, &args).expect("the next attempt");
        assert_eq!((claimed.attempt_index, claimed.lease_epoch), (1, 1));
        assert_eq!(claimed.attempt_type, AttemptType::Retry);
        assert_eq!(
            db.one("SELECT attempt_index || '|' || lease_epoch || '|' || outcome FROM ff_attempt WHERE attempt_index = 0"),
            "0|4|failed",
            "the older attempt is untouched"
        );
    }

    #[test]
    fn validation_order_matches_the_table() {
        type Expect = fn(&EngineError) -> bool;
        let cases: [(&str, Expect); 5] = [
            (
                "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', ownership_state = 'leased'",
                |e| matches!(e, EngineError::Contention(ContentionKind::ExecutionNotActive(n)) if n.lifecycle_phase == "terminal" && n.terminal_outcome.is_none() && n.lease_epoch.is_none()),
            ),
            (
                "UPDATE ff_exec_core SET ownership_state = 'leased', eligibility_state = 'x'",
                |e| matches!(e, EngineError::Contention(ContentionKind::LeaseConflict)),
            ),
            (
                "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', attempt_state = 'running_attempt'",
                |e| {
                    matches!(
                        e,
                        EngineError::Contention(ContentionKind::ExecutionNotLeaseable)
                    )
                },
            ),
            (
                "UPDATE ff_exec_core SET attempt_state = 'running_attempt'",
                |e| matches!(e, EngineError::Conflict(ConflictKind::ActiveAttemptExists)),
            ),
            (
                "UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted'",
                |e| {
                    matches!(
                        e,
                        EngineError::Contention(ContentionKind::UseClaimResumedExecution)
                    )
                },
            ),
        ];
        for (mutation, expected) in cases {
            let mut db = runnable_with_grant(NOW + 60_000);
            db.exec(mutation);
            let err = claim_execution(&mut db, &claim_args(EXEC)).expect_err(mutation);
            assert!(expected(&err), "{mutation}: {err:?}");
        }
    }

    #[test]
    fn not_active_reports_the_current_attempts_epoch() {
        let mut db = runnable_with_grant(NOW + 60_000);
        claim_execution(&mut db, &claim_args(EXEC)).expect("claim");
        db.seed_grant(EXEC, "worker-1", NOW + 60_000);
        let err = claim_execution(&mut db, &claim_args(EXEC)).expect_err("claimed twice");
        assert_eq!(
            err,
            EngineError::Contention(ContentionKind::ExecutionNotActive(ExecutionNotActive {
                terminal_outcome: None,
                lease_epoch: Some("1".into()),
                lifecycle_phase: "active".into(),
                attempt_id: Some(ATTEMPT.into()),
            }))
        );
    }

    #[test]
    fn grant_checks() {
        let mut db = TestDb::runnable();
        assert!(matches!(
            claim_execution(&mut db, &claim_args(EXEC)),
            Err(EngineError::Contention(ContentionKind::InvalidClaimGrant))
        ));
        db.seed_grant(EXEC, "someone-else", NOW + 60_000);
        assert!(matches!(
            claim_execution(&mut db, &claim_args(EXEC)),
            Err(EngineError::Contention(ContentionKind::InvalidClaimGrant))
        ));
        db.seed_grant(EXEC, "worker-1", NOW - 1);
        assert!(matches!(
            claim_execution(&mut db, &claim_args(EXEC)),
            Err(EngineError::Contention(ContentionKind::ClaimGrantExpired))
        ));
    }

    #[test]
    fn grant_expiring_exactly_now_or_never_is_valid() {
        for expires_at in [NOW, 0, -5] {
            let mut db = runnable_with_grant(expires_at);
            claim_execution(&mut db, &claim_args(EXEC))
                .unwrap_or_else(|e| panic!("{expires_at}: {e:?}"));
        }
    }

    #[test]
    fn missing_execution_and_bad_input() {
        let mut db = TestDb::new();
        assert!(matches!(
            claim_execution(&mut db, &claim_args(EXEC)),
            Err(EngineError::NotFound(Entity::Execution))
        ));
        let mut zero_ttl = claim_args(EXEC);
        zero_ttl.lease_ttl_ms = 0;
        assert!(matches!(
            claim_execution(&mut db, &zero_ttl),
            Err(EngineError::Validation(_))
        ));
    }

    #[test]
    fn deadline_argument_replaces_the_stored_one_only_when_given() {
        let mut db = runnable_with_grant(NOW + 60_000);
        db.exec("UPDATE ff_exec_core SET deadline_at_ms = 7");
        let mut with_deadline = claim_args(EXEC);
        with_deadline.execution_deadline_at = Some(99);
        claim_execution(&mut db, &with_deadline).unwrap();
        assert_eq!(db.one("SELECT deadline_at_ms FROM ff_exec_core"), "99");

        let mut db = runnable_with_grant(NOW + 60_000);
        db.exec("UPDATE ff_exec_core SET deadline_at_ms = 7");
        claim_execution(&mut db, &claim_args(EXEC)).unwrap();
        assert_eq!(db.one("SELECT deadline_at_ms FROM ff_exec_core"), "7");
    }

    #[test]
    fn empty_worker_id_is_invalid_input_and_writes_nothing() {
        // Even a grant recorded for the empty worker does not make it a worker.
        let mut db = runnable_with_grant(NOW + 60_000);
        db.seed_grant(EXEC, "", NOW + 60_000);
        let mut args = claim_args(EXEC);
        args.worker_id = String::new();
        let err = db.fails_unchanged(|db| claim_execution(db, &args));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
        // After the TTL check, before the id is parsed.
        args.execution_id = "bad".into();
        assert_eq!(
            claim_execution(&mut db, &args).unwrap_err(),
            invalid_input("worker_id must not be empty")
        );
        args.lease_ttl_ms = 0;
        assert_eq!(
            claim_execution(&mut db, &args).unwrap_err(),
            invalid_input("lease_ttl_ms must be positive")
        );
    }

    #[test]
    fn huge_ttl_saturates() {
        assert_eq!(lease_expiry(NOW, u64::MAX), i64::MAX);
        assert_eq!(lease_expiry(i64::MAX - 1, 5), i64::MAX);
    }
}
