//! `claim-execution`: consume a claim grant and lease the execution to the worker.
//!
//! Validation order (the first failing check decides the error):
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | the execution exists | `NotFound(execution)` |
//! | 2 | `lifecycle_phase = 'runnable'` | `Contention(ExecutionNotActive)` |
//! | 3 | `ownership_state = 'unowned'` | `Contention(LeaseConflict)` |
//! | 4 | `eligibility_state = 'eligible_now'` | `Contention(ExecutionNotLeaseable)` |
//! | 5 | `attempt_state != 'running_attempt'` | `Conflict(ActiveAttemptExists)` |
//! | 6 | `attempt_state != 'attempt_interrupted'` | `Contention(ExecutionNotLeaseable)` |
//! | 7 | a `claim` grant exists | `Contention(InvalidClaimGrant)` |
//! | 8 | the grant names this worker | `Contention(InvalidClaimGrant)` |
//! | 9 | the grant has not expired (`0 < expires_at_ms < now`) | `Contention(ClaimGrantExpired)` |
//!
//! Writes, all in the host's transaction: the execution's claim grants are deleted; the attempt
//! row at `expected_attempt_index` is inserted with lease epoch 1, or re-armed with its epoch
//! bumped by one; the execution becomes `active`/`leased`/`running_attempt` with
//! `attempt_index` = the claimed attempt; one `acquired` row goes to `ff_lease_event`.

use crate::db::{Db, DbExt, text};
use crate::engine::{
    ClaimExecutionArgs, ClaimedExecution, ConflictKind, ContentionKind, EngineError,
};
use crate::errors::{contention, invalid_input, not_active};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::lease::{LeaseRequest, acquire_lease, attempt_type_for};

/// Claim `args.execution_id` for `args.worker_id`; see the module docs for the rules.
pub fn claim_execution(
    db: &mut impl Db,
    args: &ClaimExecutionArgs,
) -> Result<ClaimedExecution, EngineError> {
    if args.lease_ttl_ms == 0 {
        return Err(invalid_input("lease_ttl_ms must be positive"));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "runnable" {
        return Err(not_active(
            exec.terminal_outcome_or_none(),
            String::new(),
            exec.lifecycle_phase.clone(),
            exec.current_attempt_id_or_empty(),
        ));
    }
    if exec.ownership_state != "unowned" {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    if !exec.is_claimable_at(args.now) {
        return Err(contention(ContentionKind::ExecutionNotLeaseable));
    }
    match exec.attempt_state.as_str() {
        "running_attempt" => return Err(EngineError::Conflict(ConflictKind::ActiveAttemptExists)),
        "attempt_interrupted" => return Err(contention(ContentionKind::ExecutionNotLeaseable)),
        _ => {}
    }

    // Several grants may exist; this worker's, if any, is the one that counts.
    let grant = db
        .first_row(
            "SELECT worker_id, expires_at_ms FROM ff_claim_grant \
             WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim' \
             ORDER BY worker_id = ?3 DESC, expires_at_ms DESC LIMIT 1",
            &[id.partition(), id.blob(), text(&args.worker_id)],
        )?
        .ok_or(contention(ContentionKind::InvalidClaimGrant))?;
    if grant.text(0).as_deref() != Some(args.worker_id.as_str()) {
        return Err(contention(ContentionKind::InvalidClaimGrant));
    }
    let grant_expires_at = grant.integer(1).unwrap_or(0);
    if grant_expires_at > 0 && grant_expires_at < args.now {
        return Err(contention(ContentionKind::ClaimGrantExpired));
    }

    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
        &id.key(),
    )?;

    let attempt_type = attempt_type_for(&exec.attempt_state);
    let lease = acquire_lease(
        db,
        &id,
        &LeaseRequest {
            attempt_index: i64::from(args.expected_attempt_index),
            worker_id: &args.worker_id,
            worker_instance_id: &args.worker_instance_id,
            lease_id: &args.lease_id,
            attempt_id: &args.attempt_id,
            attempt_type,
            attempt_policy_json: &args.attempt_policy_json,
            first_epoch: 1,
            lease_ttl_ms: args.lease_ttl_ms,
            now: args.now,
            execution_deadline_at: args.execution_deadline_at,
            event: "acquired",
        },
    )?;

    Ok(ClaimedExecution {
        execution_id: args.execution_id.clone(),
        lease_id: args.lease_id.clone(),
        lease_epoch: lease.lease_epoch,
        attempt_index: args.expected_attempt_index,
        attempt_id: args.attempt_id.clone(),
        attempt_type,
        lease_expires_at: lease.lease_expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AttemptType, Entity};
    use crate::exec::lease_expiry;
    use crate::testing::TestDb;

    const EXEC: &str = "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c";
    const NOW: i64 = 1_700_000_000_000;

    fn args() -> ClaimExecutionArgs {
        ClaimExecutionArgs {
            execution_id: EXEC.into(),
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            lane_id: "default".into(),
            lease_id: "11111111-1111-4111-8111-111111111111".into(),
            lease_ttl_ms: 30_000,
            attempt_id: "22222222-2222-4222-8222-222222222222".into(),
            expected_attempt_index: 0,
            attempt_policy_json: String::new(),
            attempt_timeout_ms: None,
            execution_deadline_at: None,
            now: NOW,
        }
    }

    fn runnable_with_grant(grant_expires_at: i64) -> TestDb {
        let db = TestDb::new();
        db.seed_runnable(EXEC);
        db.seed_grant(EXEC, "worker-1", grant_expires_at);
        db
    }

    #[test]
    fn happy_path_writes_attempt_exec_row_and_lease_event() {
        let mut db = runnable_with_grant(NOW + 60_000);
        let claimed = claim_execution(&mut db, &args()).expect("claim");
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
                args().attempt_id,
                args().lease_id
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one("SELECT execution_id || '|' || event_type || '|' || lease_id || '|' || occurred_at_ms FROM ff_lease_event"),
            format!("53ad96d2-6b08-4d0c-86e3-36598db2291c|acquired|{}|{NOW}", args().lease_id)
        );
    }

    #[test]
    fn reclaiming_an_existing_attempt_index_bumps_the_epoch() {
        let mut db = runnable_with_grant(NOW + 60_000);
        db.exec(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, outcome) \
             SELECT 0, execution_id, 0, 4, 'failed' FROM ff_exec_core",
        );
        db.exec("UPDATE ff_exec_core SET attempt_state = 'pending_retry_attempt'");
        let claimed = claim_execution(&mut db, &args()).expect("claim");
        assert_eq!(claimed.lease_epoch, 5);
        assert_eq!(claimed.attempt_type, AttemptType::Retry);
        assert_eq!(
            db.one("SELECT COALESCE(outcome, 'live') FROM ff_attempt"),
            "live"
        );
    }

    #[test]
    fn validation_order_matches_the_table() {
        type Expect = fn(&EngineError) -> bool;
        let cases: [(&str, Expect); 5] = [
            (
                "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', ownership_state = 'leased'",
                |e| matches!(e, EngineError::Contention(ContentionKind::ExecutionNotActive(n)) if n.lifecycle_phase == "terminal" && n.terminal_outcome == "none"),
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
                        EngineError::Contention(ContentionKind::ExecutionNotLeaseable)
                    )
                },
            ),
        ];
        for (mutation, expected) in cases {
            let mut db = runnable_with_grant(NOW + 60_000);
            db.exec(mutation);
            let err = claim_execution(&mut db, &args()).expect_err(mutation);
            assert!(expected(&err), "{mutation}: {err:?}");
        }
    }

    #[test]
    fn grant_checks() {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        assert!(matches!(
            claim_execution(&mut db, &args()),
            Err(EngineError::Contention(ContentionKind::InvalidClaimGrant))
        ));
        db.seed_grant(EXEC, "someone-else", NOW + 60_000);
        assert!(matches!(
            claim_execution(&mut db, &args()),
            Err(EngineError::Contention(ContentionKind::InvalidClaimGrant))
        ));
        db.seed_grant(EXEC, "worker-1", NOW - 1);
        assert!(matches!(
            claim_execution(&mut db, &args()),
            Err(EngineError::Contention(ContentionKind::ClaimGrantExpired))
        ));
    }

    #[test]
    fn grant_expiring_exactly_now_or_never_is_valid() {
        for expires_at in [NOW, 0, -5] {
            let mut db = runnable_with_grant(expires_at);
            claim_execution(&mut db, &args()).unwrap_or_else(|e| panic!("{expires_at}: {e:?}"));
        }
    }

    #[test]
    fn missing_execution_and_bad_input() {
        let mut db = TestDb::new();
        assert!(matches!(
            claim_execution(&mut db, &args()),
            Err(EngineError::NotFound(Entity::Execution))
        ));
        let mut zero_ttl = args();
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
        let mut with_deadline = args();
        with_deadline.execution_deadline_at = Some(99);
        claim_execution(&mut db, &with_deadline).unwrap();
        assert_eq!(db.one("SELECT deadline_at_ms FROM ff_exec_core"), "99");

        let mut db = runnable_with_grant(NOW + 60_000);
        db.exec("UPDATE ff_exec_core SET deadline_at_ms = 7");
        claim_execution(&mut db, &args()).unwrap();
        assert_eq!(db.one("SELECT deadline_at_ms FROM ff_exec_core"), "7");
    }

    #[test]
    fn huge_ttl_saturates() {
        assert_eq!(lease_expiry(NOW, u64::MAX), i64::MAX);
        assert_eq!(lease_expiry(i64::MAX - 1, 5), i64::MAX);
    }
}
