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

use crate::db::{Db, DbExt, int, opt_int, text};
use crate::engine::{
    AttemptType, ClaimExecutionArgs, ClaimedExecution, ConflictKind, ContentionKind, EngineError,
    Entity,
};
use crate::errors::{contention, corruption, invalid_input, not_active};
use crate::ids::ExecutionRef;

/// Claim `args.execution_id` for `args.worker_id`; see the module docs for the rules.
pub fn claim_execution(
    db: &mut impl Db,
    args: &ClaimExecutionArgs,
) -> Result<ClaimedExecution, EngineError> {
    if args.lease_ttl_ms == 0 {
        return Err(invalid_input("lease_ttl_ms must be positive"));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let key = [id.partition(), id.blob()];

    let exec = db
        .first_row(
            "SELECT lifecycle_phase, ownership_state, eligibility_state, attempt_state, \
                    json_extract(raw_fields, '$.terminal_outcome'), \
                    json_extract(raw_fields, '$.current_attempt_id') \
             FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            &key,
        )?
        .ok_or(EngineError::NotFound(Entity::Execution))?;
    let lifecycle_phase = exec.text_or_empty(0);
    let attempt_state = exec.text_or_empty(3);
    if lifecycle_phase != "runnable" {
        return Err(not_active(
            exec.text(4).unwrap_or_else(|| "none".into()),
            String::new(),
            lifecycle_phase,
            exec.text_or_empty(5),
        ));
    }
    if exec.text_or_empty(1) != "unowned" {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    if exec.text_or_empty(2) != "eligible_now" {
        return Err(contention(ContentionKind::ExecutionNotLeaseable));
    }
    match attempt_state.as_str() {
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
        &key,
    )?;

    let attempt_type = attempt_type_for(&attempt_state);
    let lease_expires_at = lease_expiry(args.now, args.lease_ttl_ms);
    let attempt_index = i64::from(args.expected_attempt_index);
    let lease_epoch = db
        .first_row(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
                 worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms, policy, raw_fields) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, NULLIF(?8, ''), \
                 json_object('attempt_type', ?9, 'attempt_id', ?10, 'lease_id', ?11)) \
             ON CONFLICT (partition_key, execution_id, attempt_index) DO UPDATE SET \
                 worker_id = excluded.worker_id, \
                 worker_instance_id = excluded.worker_instance_id, \
                 lease_epoch = ff_attempt.lease_epoch + 1, \
                 lease_expires_at_ms = excluded.lease_expires_at_ms, \
                 started_at_ms = COALESCE(ff_attempt.started_at_ms, excluded.started_at_ms), \
                 policy = excluded.policy, \
                 raw_fields = json_patch(ff_attempt.raw_fields, excluded.raw_fields), \
                 terminal_at_ms = NULL, \
                 outcome = NULL \
             RETURNING lease_epoch",
            &[
                id.partition(),
                id.blob(),
                int(attempt_index),
                text(&args.worker_id),
                text(&args.worker_instance_id),
                int(lease_expires_at),
                int(args.now),
                text(&args.attempt_policy_json),
                text(attempt_type_literal(attempt_type)),
                text(&args.attempt_id),
                text(&args.lease_id),
            ],
        )?
        .and_then(|row| row.integer(0))
        .ok_or_else(|| corruption("ff_attempt upsert returned no lease_epoch"))?;

    db.run(
        "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased', \
             eligibility_state = 'not_applicable', attempt_state = 'running_attempt', \
             public_state = 'active', blocking_reason = NULL, attempt_index = ?3, \
             started_at_ms = COALESCE(started_at_ms, ?4), \
             deadline_at_ms = COALESCE(?5, deadline_at_ms), \
             raw_fields = json_set(raw_fields, \
                 '$.current_attempt_id', ?6, '$.current_lease_id', ?7, \
                 '$.current_worker_id', ?8, '$.current_worker_instance_id', ?9, \
                 '$.pending_retry_reason', '', '$.pending_replay_reason', '', \
                 '$.pending_replay_requested_by', '', '$.pending_previous_attempt_index', '') \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &[
            id.partition(),
            id.blob(),
            int(attempt_index),
            int(args.now),
            opt_int(args.execution_deadline_at),
            text(&args.attempt_id),
            text(&args.lease_id),
            text(&args.worker_id),
            text(&args.worker_instance_id),
        ],
    )?;

    record_lease_event(db, &id, "acquired", Some(&args.lease_id), args.now)?;

    Ok(ClaimedExecution {
        execution_id: args.execution_id.clone(),
        lease_id: args.lease_id.clone(),
        lease_epoch: u64::try_from(lease_epoch).unwrap_or(0),
        attempt_index: args.expected_attempt_index,
        attempt_id: args.attempt_id.clone(),
        attempt_type,
        lease_expires_at,
    })
}

/// Append one row to the lease-history outbox, copying namespace and instance tag from the
/// execution row.
pub fn record_lease_event(
    db: &mut impl Db,
    id: &ExecutionRef,
    event_type: &str,
    lease_id: Option<&str>,
    now: i64,
) -> Result<(), EngineError> {
    db.run(
        "INSERT INTO ff_lease_event (execution_id, lease_id, event_type, occurred_at_ms, \
             partition_key, namespace, instance_tag) \
         SELECT ?3, ?4, ?5, ?6, ?1, json_extract(raw_fields, '$.namespace'), \
             json_extract(raw_fields, '$.tags.\"cairn.instance_id\"') \
         FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &[
            id.partition(),
            id.blob(),
            id.bare_text(),
            lease_id.map_or(crate::sql::Value::Null, text),
            text(event_type),
            int(now),
        ],
    )?;
    Ok(())
}

/// `now + ttl`, saturating instead of overflowing.
fn lease_expiry(now: i64, ttl_ms: u64) -> i64 {
    now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
}

/// The attempt type implied by the execution's `attempt_state` before the claim.
fn attempt_type_for(attempt_state: &str) -> AttemptType {
    match attempt_state {
        "pending_retry_attempt" => AttemptType::Retry,
        "pending_replay_attempt" => AttemptType::Replay,
        _ => AttemptType::Initial,
    }
}

/// The string form ff-core's serde uses for an attempt type.
fn attempt_type_literal(attempt_type: AttemptType) -> &'static str {
    match attempt_type {
        AttemptType::Initial => "initial",
        AttemptType::Retry => "retry",
        AttemptType::Reclaim => "reclaim",
        AttemptType::Replay => "replay",
        AttemptType::Fallback => "fallback",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }
}
