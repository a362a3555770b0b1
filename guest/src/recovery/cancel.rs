//! `cancel-execution` and `revoke-lease`: an operator (or the lease holder) takes the
//! execution or its lease away. Validation tables: the parent module.

use crate::bindings::recovery::{
    CancelExecutionArgs, RevokeLeaseArgs, RevokeLeaseOutcome, RevokedLease,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::invalid_input;
use crate::exec::{Exec, StateVector, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::types::{CancelSource, EngineError, StateKind};

/// Upstream's synthetic lease id for `revoke_lease` on rows that recorded no lease id.
fn revoke_synthetic_lease_id(id: &ExecutionRef, attempt_index: i64, lease_epoch: i64) -> String {
    format!("sqlite:{}:{attempt_index}:{lease_epoch}", id.bare_uuid())
}

/// The `cancelled_by` text of a cancel source (ff-core's `CancelSource::as_str`).
fn source_literal(source: &CancelSource) -> &str {
    match source {
        CancelSource::OperatorOverride => "operator_override",
        CancelSource::LeaseHolder => "lease_holder",
        CancelSource::FlowCascade => "flow_cascade",
        CancelSource::SystemTimeout => "system_timeout",
        CancelSource::Custom(custom) => custom,
    }
}

/// Cancel `args.execution_id` (idempotent), revoking the lease it holds; see the module docs
/// of [`crate::recovery`] for the rules.
pub fn cancel_execution(db: &mut impl Db, args: &CancelExecutionArgs) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.is_terminal() {
        if exec.public_state == "cancelled" {
            return Ok(());
        }
        return Err(invalid_input(format!(
            "cancel_execution: execution_id={}: already terminal in state '{}'",
            id.canonical(),
            exec.public_state
        )));
    }

    let holder = exec.lease_holder(db)?;
    if let Some(attempt) = &holder
        && args.source != CancelSource::OperatorOverride
    {
        let Some(epoch) = args.lease_epoch else {
            return Err(invalid_input(format!(
                "cancel_execution: execution_id={}: lease_epoch required when source != \
                 operator_override and execution is active",
                id.canonical()
            )));
        };
        // An id the caller did not give is not compared.
        let lease_id = args
            .lease_id
            .as_deref()
            .or(attempt.lease_id.as_deref())
            .unwrap_or_default();
        let attempt_id = args
            .attempt_id
            .as_deref()
            .or(attempt.attempt_id.as_deref())
            .unwrap_or_default();
        if !attempt.fence_matches(epoch, lease_id, attempt_id) {
            return Err(EngineError::State(StateKind::StaleLease));
        }
    }

    update_exec(
        db,
        &id,
        &StateVector::CANCELLED,
        ", terminal_at_ms = COALESCE(terminal_at_ms, ?9), \
         cancellation_reason = COALESCE(cancellation_reason, ?10), \
         cancelled_by = COALESCE(cancelled_by, ?11), \
         raw_fields = json_set(raw_fields, '$.terminal_outcome', 'cancelled', \
             '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[
            int(args.now),
            text(&args.reason),
            text(source_literal(&args.source)),
        ],
    )?;
    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    if let Some(attempt) = holder {
        db.run(
            "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
                 lease_epoch = lease_epoch + 1, terminal_at_ms = ?4, outcome = 'cancelled' \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(attempt.index), int(args.now)],
        )?;
        record_lease_event(db, &exec, "revoked", attempt.lease_id.as_deref(), args.now)?;
    }
    crate::flows::on_terminal(db, &exec, "cancelled", args.now)
}

/// Take the lease away from its holder; the execution becomes claimable again (`waiting`).
/// See the module docs of [`crate::recovery`] for the rules.
pub fn revoke_lease(
    db: &mut impl Db,
    args: &RevokeLeaseArgs,
) -> Result<RevokeLeaseOutcome, EngineError> {
    let satisfied = |reason: &str| Ok(RevokeLeaseOutcome::AlreadySatisfied(reason.into()));
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    let Some(attempt) = exec.lease_holder(db)? else {
        return satisfied("no_active_lease");
    };
    if !args.worker_instance_id.is_empty()
        && attempt.worker_instance_id.as_deref() != Some(args.worker_instance_id.as_str())
    {
        return satisfied("different_worker_instance_id");
    }
    let lease_id = attempt
        .lease_id
        .clone()
        .unwrap_or_else(|| revoke_synthetic_lease_id(&id, attempt.index, attempt.lease_epoch));
    if let Some(expected) = args.expected_lease_id.as_deref()
        && !expected.is_empty()
        && !expected.eq_ignore_ascii_case(&lease_id)
    {
        return satisfied("lease_id_mismatch");
    }

    let changed = db.run(
        "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
             lease_epoch = lease_epoch + 1 \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 AND lease_epoch = ?4",
        &[
            id.partition(),
            id.blob(),
            int(attempt.index),
            int(attempt.lease_epoch),
        ],
    )?;
    if changed == 0 {
        return satisfied("epoch_moved");
    }
    update_exec(
        db,
        &id,
        &StateVector::INTERRUPTED,
        ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(args.now)],
    )?;
    record_lease_event(db, &exec, "revoked", attempt.lease_id.as_deref(), args.now)?;
    Ok(RevokeLeaseOutcome::Revoked(RevokedLease {
        lease_id,
        lease_epoch: u64::try_from(attempt.lease_epoch.saturating_add(1)).unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::test_support::hand_leased;
    use crate::testing::{ATTEMPT, EXEC, EXEC_UUID, Interloper, LEASE, NOW, TTL, TestDb};
    use crate::types::{Entity, ValidationKind};

    fn cancel_args(source: CancelSource, lease_epoch: Option<u64>) -> CancelExecutionArgs {
        CancelExecutionArgs {
            execution_id: EXEC.into(),
            reason: "operator said so".into(),
            source,
            lease_id: None,
            lease_epoch,
            attempt_id: None,
            now: NOW + 1,
        }
    }

    fn revoke_args(worker_instance_id: &str, expected: Option<&str>) -> RevokeLeaseArgs {
        RevokeLeaseArgs {
            execution_id: EXEC.into(),
            expected_lease_id: expected.map(String::from),
            worker_instance_id: worker_instance_id.into(),
            reason: "ignored".into(),
            now: NOW + 1,
        }
    }

    fn invalid_input_detail(err: EngineError) -> String {
        match err {
            EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput => v.detail,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    // ---- cancel_execution ----

    #[test]
    fn cancel_bad_id_or_missing_execution() {
        let mut db = TestDb::new();
        let mut bad = cancel_args(CancelSource::OperatorOverride, None);
        bad.execution_id = "nope".into();
        invalid_input_detail(cancel_execution(&mut db, &bad).unwrap_err());
        assert!(matches!(
            cancel_execution(&mut db, &cancel_args(CancelSource::OperatorOverride, None)),
            Err(EngineError::NotFound(Entity::Execution))
        ));
    }

    #[test]
    fn cancel_of_a_cancelled_execution_is_ok_and_writes_nothing() {
        for lifecycle in ["terminal", "cancelled"] {
            let mut db = TestDb::leased();
            cancel_execution(&mut db, &cancel_args(CancelSource::OperatorOverride, None))
                .expect("first cancel");
            db.exec(&format!(
                "UPDATE ff_exec_core SET lifecycle_phase = '{lifecycle}'"
            ));
            let before = db.dump();
            let mut again = cancel_args(CancelSource::LeaseHolder, None);
            again.reason = "second".into();
            cancel_execution(&mut db, &again).expect("idempotent");
            assert_eq!(before, db.dump(), "{lifecycle}");
        }
    }

    #[test]
    fn cancel_of_another_terminal_state_is_invalid_input_and_writes_nothing() {
        let mut db = TestDb::leased();
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal', public_state = 'completed'");
        let before = db.dump();
        let err = cancel_execution(&mut db, &cancel_args(CancelSource::OperatorOverride, None))
            .unwrap_err();
        assert_eq!(
            invalid_input_detail(err),
            format!("cancel_execution: execution_id={EXEC}: already terminal in state 'completed'")
        );
        assert_eq!(before, db.dump());
    }

    #[test]
    fn cancel_by_a_non_operator_needs_the_lease_epoch() {
        let mut db = TestDb::leased();
        let before = db.dump();
        let err =
            cancel_execution(&mut db, &cancel_args(CancelSource::LeaseHolder, None)).unwrap_err();
        assert_eq!(
            invalid_input_detail(err),
            format!(
                "cancel_execution: execution_id={EXEC}: lease_epoch required when source != \
                 operator_override and execution is active"
            )
        );
        assert_eq!(before, db.dump());
    }

    #[test]
    fn cancel_with_a_stale_fence_is_stale_lease_and_writes_nothing() {
        let wrong_epoch = cancel_args(CancelSource::LeaseHolder, Some(2));
        let mut wrong_lease = cancel_args(CancelSource::SystemTimeout, Some(1));
        wrong_lease.lease_id = Some("99999999-1111-4111-8111-111111111111".into());
        let mut wrong_attempt = cancel_args(CancelSource::Custom("reaper".into()), Some(1));
        wrong_attempt.attempt_id = Some("99999999-2222-4222-8222-222222222222".into());
        for args in [wrong_epoch, wrong_lease, wrong_attempt] {
            let mut db = TestDb::leased();
            let before = db.dump();
            assert!(
                matches!(
                    cancel_execution(&mut db, &args),
                    Err(EngineError::State(StateKind::StaleLease))
                ),
                "{args:?}"
            );
            assert_eq!(before, db.dump());
        }
    }

    #[test]
    fn cancel_with_the_full_fence_in_any_case_succeeds() {
        let mut db = TestDb::leased();
        let mut args = cancel_args(CancelSource::LeaseHolder, Some(1));
        args.lease_id = Some(LEASE.to_uppercase());
        args.attempt_id = Some(ATTEMPT.into());
        cancel_execution(&mut db, &args).expect("cancel");
        assert_eq!(
            db.one("SELECT cancelled_by FROM ff_exec_core"),
            "lease_holder"
        );
    }

    #[test]
    fn cancel_compares_ids_only_where_the_attempt_recorded_them() {
        let mut db = hand_leased();
        let mut args = cancel_args(CancelSource::FlowCascade, Some(3));
        args.lease_id = Some(LEASE.into());
        args.attempt_id = Some(ATTEMPT.into());
        cancel_execution(&mut db, &args).expect("cancel");
        assert_eq!(
            db.one("SELECT lease_epoch || '|' || outcome FROM ff_attempt"),
            "4|cancelled"
        );
        assert_eq!(
            db.one("SELECT event_type || '|' || COALESCE(lease_id, 'NULL') FROM ff_lease_event"),
            "revoked|NULL"
        );
    }

    #[test]
    fn cancel_of_a_leased_execution_writes_exec_attempt_grants_and_one_revoked_event() {
        let mut db = TestDb::leased();
        db.seed_grant(EXEC, "worker-2", NOW + 60_000);
        db.exec(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             SELECT 0, randomblob(16), execution_id, 'reclaim', 'worker-3', 'wi', 1, 0, 0 FROM ff_exec_core",
        );
        cancel_execution(&mut db, &cancel_args(CancelSource::OperatorOverride, None))
            .expect("cancel");
        let later = NOW + 1;
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 terminal_at_ms || '|' || cancellation_reason || '|' || cancelled_by || '|' || attempt_index || '|' || \
                 json_extract(raw_fields, '$.terminal_outcome') || '|' || \
                 json_type(raw_fields, '$.last_mutation_at') || ':' || json_extract(raw_fields, '$.last_mutation_at') \
                 FROM ff_exec_core"
            ),
            format!(
                "terminal|unowned|not_applicable|cancelled|attempt_terminal|NULL|{later}|operator said so|\
                 operator_override|0|cancelled|text:{later}"
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || COALESCE(worker_instance_id, 'NULL') || '|' || \
                 COALESCE(lease_expires_at_ms, 'NULL') || '|' || lease_epoch || '|' || terminal_at_ms || '|' || \
                 outcome || '|' || json_extract(raw_fields, '$.lease_id') FROM ff_attempt"
            ),
            format!("worker-1|NULL|NULL|2|{later}|cancelled|{LEASE}")
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(execution_id || ',' || event_type || ',' || lease_id || ',' || \
                 occurred_at_ms || ',' || namespace || ',' || instance_tag, ';') \
                 FROM (SELECT * FROM ff_lease_event ORDER BY event_id)"
            ),
            format!("{EXEC_UUID},acquired,{LEASE},{NOW},ns,inst;{EXEC_UUID},revoked,{LEASE},{later},ns,inst")
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_completion_event"), "0");
    }

    #[test]
    fn cancel_without_a_lease_needs_no_fence_and_records_no_event() {
        for (lifecycle, ownership) in [
            ("runnable", "unowned"),
            ("suspended", "released"),
            ("active", "lease_revoked"),
        ] {
            let mut db = TestDb::new();
            db.seed_runnable(EXEC);
            db.exec(&format!(
                "UPDATE ff_exec_core SET lifecycle_phase = '{lifecycle}', ownership_state = '{ownership}', \
                     blocking_reason = 'waiting_for_signal';
                 INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_instance_id, lease_epoch) \
                 SELECT 0, execution_id, 0, 'wi-1', 5 FROM ff_exec_core"
            ));
            cancel_execution(&mut db, &cancel_args(CancelSource::LeaseHolder, None))
                .unwrap_or_else(|e| panic!("{lifecycle}: {e:?}"));
            assert_eq!(
                db.one("SELECT public_state || '|' || COALESCE(blocking_reason, 'NULL') FROM ff_exec_core"),
                "cancelled|NULL"
            );
            assert_eq!(
                db.one("SELECT lease_epoch || '|' || COALESCE(outcome, 'NULL') FROM ff_attempt"),
                "5|NULL",
                "{lifecycle}"
            );
            assert_eq!(db.one("SELECT COUNT(*) FROM ff_lease_event"), "0");
        }
    }

    #[test]
    fn cancel_keeps_the_first_reason_source_and_terminal_time_and_stores_custom_sources() {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        db.exec("UPDATE ff_exec_core SET cancellation_reason = 'flow cancelled', cancelled_by = 'flow_cascade', terminal_at_ms = 5");
        cancel_execution(&mut db, &cancel_args(CancelSource::OperatorOverride, None)).unwrap();
        assert_eq!(
            db.one("SELECT cancellation_reason || '|' || cancelled_by || '|' || terminal_at_ms FROM ff_exec_core"),
            "flow cancelled|flow_cascade|5"
        );

        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        cancel_execution(
            &mut db,
            &cancel_args(CancelSource::Custom("janitor".into()), None),
        )
        .unwrap();
        assert_eq!(db.one("SELECT cancelled_by FROM ff_exec_core"), "janitor");
    }

    #[test]
    fn a_lease_marked_expired_still_needs_the_fence_to_cancel() {
        let mut db = TestDb::leased();
        crate::recovery::mark_lease_expired_if_due(&mut db, EXEC, NOW + TTL as i64).unwrap();
        assert!(matches!(
            cancel_execution(&mut db, &cancel_args(CancelSource::LeaseHolder, None)),
            Err(EngineError::Validation(_))
        ));
        cancel_execution(&mut db, &cancel_args(CancelSource::LeaseHolder, Some(1))).unwrap();
        assert_eq!(
            db.one("SELECT group_concat(event_type, ',') FROM (SELECT * FROM ff_lease_event ORDER BY event_id)"),
            "acquired,expired,revoked"
        );
    }

    // ---- revoke_lease ----

    #[test]
    fn revoke_bad_id_or_missing_execution() {
        let mut db = TestDb::new();
        let mut bad = revoke_args("", None);
        bad.execution_id = "{fp:0}:zz".into();
        invalid_input_detail(revoke_lease(&mut db, &bad).unwrap_err());
        assert!(matches!(
            revoke_lease(&mut db, &revoke_args("", None)),
            Err(EngineError::NotFound(Entity::Execution))
        ));
    }

    fn assert_satisfied(db: &mut TestDb, args: &RevokeLeaseArgs, reason: &str) {
        let before = db.dump();
        assert_eq!(
            revoke_lease(db, args).unwrap(),
            RevokeLeaseOutcome::AlreadySatisfied(reason.into())
        );
        assert_eq!(before, db.dump(), "{reason}");
    }

    #[test]
    fn revoke_without_a_held_lease_is_already_satisfied() {
        let mut unclaimed = TestDb::new();
        unclaimed.seed_runnable(EXEC);
        assert_satisfied(&mut unclaimed, &revoke_args("", None), "no_active_lease");

        let mut no_instance = TestDb::leased();
        no_instance.exec("UPDATE ff_attempt SET worker_instance_id = ''");
        assert_satisfied(&mut no_instance, &revoke_args("", None), "no_active_lease");

        let mut not_current = TestDb::leased();
        not_current.exec("UPDATE ff_exec_core SET attempt_index = 1");
        assert_satisfied(&mut not_current, &revoke_args("", None), "no_active_lease");

        let mut revoked = TestDb::leased();
        revoked.exec("UPDATE ff_exec_core SET ownership_state = 'lease_revoked'");
        assert_satisfied(&mut revoked, &revoke_args("", None), "no_active_lease");
    }

    #[test]
    fn revoke_for_another_instance_or_lease_is_already_satisfied() {
        let mut db = TestDb::leased();
        assert_satisfied(
            &mut db,
            &revoke_args("wi-2", None),
            "different_worker_instance_id",
        );
        assert_satisfied(
            &mut db,
            &revoke_args("wi-1", Some("99999999-1111-4111-8111-111111111111")),
            "lease_id_mismatch",
        );
        let mut hand = hand_leased();
        assert_satisfied(
            &mut hand,
            &revoke_args("", Some(LEASE)),
            "lease_id_mismatch",
        );
    }

    #[test]
    fn revoke_loses_the_race_when_the_epoch_moved() {
        let mut db = TestDb::leased();
        let mut interloper = Interloper {
            db: &mut db,
            trigger: "lease_epoch = lease_epoch + 1",
            sql: "UPDATE ff_attempt SET lease_epoch = 7",
            fired: false,
        };
        assert_eq!(
            revoke_lease(&mut interloper, &revoke_args("", None)).unwrap(),
            RevokeLeaseOutcome::AlreadySatisfied("epoch_moved".into())
        );
        assert!(interloper.fired);
        assert_eq!(
            db.one("SELECT public_state || '|' || (SELECT COUNT(*) FROM ff_lease_event) FROM ff_exec_core"),
            "active|1"
        );
    }

    #[test]
    fn revoke_clears_the_lease_and_makes_the_execution_waiting() {
        let mut db = TestDb::leased();
        let outcome = revoke_lease(&mut db, &revoke_args("", Some(&LEASE.to_uppercase()))).unwrap();
        assert_eq!(
            outcome,
            RevokeLeaseOutcome::Revoked(RevokedLease {
                lease_id: LEASE.into(),
                lease_epoch: 2
            })
        );
        let later = NOW + 1;
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || blocking_reason || '|' || attempt_index || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') || '|' || COALESCE(terminal_at_ms, 'NULL') \
                 FROM ff_exec_core"
            ),
            format!("runnable|unowned|eligible_now|waiting|attempt_interrupted|waiting_for_worker|0|{later}|NULL")
        );
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || COALESCE(worker_instance_id, 'NULL') || '|' || \
                 COALESCE(lease_expires_at_ms, 'NULL') || '|' || lease_epoch || '|' || COALESCE(outcome, 'NULL') \
                 FROM ff_attempt"
            ),
            "worker-1|NULL|NULL|2|NULL"
        );
        assert_eq!(
            db.one(
                "SELECT event_type || '|' || lease_id || '|' || occurred_at_ms FROM ff_lease_event \
                 ORDER BY event_id DESC LIMIT 1"
            ),
            format!("revoked|{LEASE}|{later}")
        );
        // The lease is gone: a second revoke has nothing to do.
        assert_satisfied(&mut db, &revoke_args("", None), "no_active_lease");
    }

    #[test]
    fn revoke_of_a_hand_seeded_lease_uses_upstreams_synthetic_lease_id() {
        let mut db = hand_leased();
        let synthetic = format!("sqlite:{EXEC_UUID}:0:3");
        assert_eq!(
            revoke_lease(&mut db, &revoke_args("wi-h", Some(&synthetic))).unwrap(),
            RevokeLeaseOutcome::Revoked(RevokedLease {
                lease_id: synthetic,
                lease_epoch: 4
            })
        );
        assert_eq!(
            db.one("SELECT event_type || '|' || COALESCE(lease_id, 'NULL') FROM ff_lease_event"),
            "revoked|NULL"
        );
    }
}
