//! `issue-grant-and-claim`; the rules are in the parent module's docs.

use super::{NEW_ATTEMPT_STATES, lease_claimable};
use crate::bindings::scheduling::{ClaimGrantOutcome, IssueGrantAndClaimArgs};
use crate::db::{Db, DbExt};
use crate::errors::{contention, corruption, require_positive};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::lease::Claimant;
use crate::types::{ConflictKind, ContentionKind, EngineError};

/// The identity an operator claim leases under (worker and worker instance).
const OPERATOR: &str = "operator";

/// Grant and claim `args.execution_id` in one step as the `operator` worker. See the module
/// docs for the rules.
pub fn issue_grant_and_claim(
    db: &mut impl Db,
    args: &IssueGrantAndClaimArgs,
) -> Result<ClaimGrantOutcome, EngineError> {
    require_positive("lease_duration_ms", args.lease_duration_ms)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require_runnable_unowned(db, &id)?;
    if !exec.is_claimable_at(args.now) && exec.eligibility_state != "pending_claim" {
        return Err(contention(ContentionKind::ExecutionNotLeaseable));
    }
    if exec.attempt_state == "running_attempt" {
        return Err(EngineError::Conflict(ConflictKind::ActiveAttemptExists));
    }
    let unrecognized = || {
        corruption(format!(
            "issue_grant_and_claim: unrecognized attempt_state={}",
            exec.attempt_state
        ))
    };
    if exec.attempt_state != "attempt_interrupted"
        && !NEW_ATTEMPT_STATES.contains(&exec.attempt_state.as_str())
    {
        return Err(unrecognized());
    }

    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
        &id.key(),
    )?;
    let leased = lease_claimable(
        db,
        &exec,
        &Claimant {
            worker_id: OPERATOR,
            worker_instance_id: OPERATOR,
            lease_id: &args.lease_id,
            attempt_id: &args.attempt_id,
            lease_ttl_ms: args.lease_duration_ms,
            now: args.now,
        },
    )?
    .ok_or_else(unrecognized)?;
    Ok(ClaimGrantOutcome {
        lease_id: args.lease_id.clone(),
        lease_epoch: leased.lease_epoch,
        attempt_index: u32::try_from(leased.attempt_index)
            .map_err(|_| corruption("attempt_index out of range"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ATTEMPT, EXEC, EXEC_UUID, LEASE, NOW, TestDb, hex};
    use crate::types::{Entity, ValidationError, ValidationKind};

    fn operator_args() -> IssueGrantAndClaimArgs {
        IssueGrantAndClaimArgs {
            execution_id: EXEC.into(),
            lane_id: "IGNORED".into(),
            lease_duration_ms: 30_000,
            lease_id: LEASE.into(),
            attempt_id: ATTEMPT.into(),
            now: NOW,
        }
    }

    #[test]
    fn operator_claim_happy_path_writes_attempt_exec_row_and_lease_event() {
        let mut db = TestDb::runnable();
        db.seed_grant(EXEC, "worker-1", NOW + 60_000);
        let outcome = issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        assert_eq!(
            outcome,
            ClaimGrantOutcome {
                lease_id: LEASE.into(),
                lease_epoch: 1,
                attempt_index: 0,
            }
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 attempt_index || '|' || started_at_ms || '|' || COALESCE(deadline_at_ms, 'NULL') FROM ff_exec_core"
            ),
            format!("active|leased|not_applicable|active|running_attempt|NULL|0|{NOW}|NULL")
        );
        assert_eq!(
            db.one(
                "SELECT json_extract(raw_fields, '$.current_attempt_id') || '|' || \
                 json_extract(raw_fields, '$.current_lease_id') || '|' || \
                 json_extract(raw_fields, '$.current_worker_id') || '|' || \
                 json_extract(raw_fields, '$.current_worker_instance_id') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') || '|' || \
                 json_extract(raw_fields, '$.total_attempt_count') || '|' || \
                 json_extract(raw_fields, '$.pending_retry_reason') || '|' || \
                 json_extract(raw_fields, '$.namespace') FROM ff_exec_core"
            ),
            format!("{ATTEMPT}|{LEASE}|operator|operator|{NOW}|1||ns")
        );
        assert_eq!(
            db.one(
                "SELECT attempt_index || '|' || worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || \
                 lease_expires_at_ms || '|' || started_at_ms || '|' || COALESCE(policy, 'NULL') || '|' || \
                 COALESCE(outcome, 'NULL') || '|' || raw_fields FROM ff_attempt"
            ),
            format!(
                "0|operator|operator|1|{}|{NOW}|NULL|NULL|\
                 {{\"attempt_type\":\"initial\",\"attempt_id\":\"{ATTEMPT}\",\"lease_id\":\"{LEASE}\"}}",
                NOW + 30_000
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one(
                "SELECT group_concat(execution_id || '|' || lease_id || '|' || event_type || '|' || \
                 occurred_at_ms || '|' || partition_key || '|' || namespace || '|' || instance_tag, ';') \
                 FROM ff_lease_event"
            ),
            format!("{EXEC_UUID}|{LEASE}|acquired|{NOW}|0|ns|inst")
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_completion_event"), "0");
    }

    #[test]
    fn operator_claim_accepts_upstreams_pending_literals_and_pending_claim() {
        for (eligibility, attempt_state) in [
            ("eligible_now", "pending"),
            ("eligible_now", "initial"),
            ("pending_claim", "pending_first_attempt"),
        ] {
            let mut db = TestDb::runnable();
            db.exec(&format!(
                "UPDATE ff_exec_core SET eligibility_state = '{eligibility}', attempt_state = '{attempt_state}'"
            ));
            let outcome = issue_grant_and_claim(&mut db, &operator_args())
                .unwrap_or_else(|e| panic!("{eligibility}/{attempt_state}: {e:?}"));
            assert_eq!((outcome.lease_epoch, outcome.attempt_index), (1, 0));
            assert_eq!(
                db.one("SELECT json_extract(raw_fields, '$.attempt_type') FROM ff_attempt"),
                "initial"
            );
        }
    }

    #[test]
    fn operator_claim_of_a_retry_starts_the_next_attempt() {
        let mut db = TestDb::runnable();
        db.exec(&format!(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, outcome) \
             VALUES (0, X'{}', 0, 3, 'failed'); \
             UPDATE ff_exec_core SET attempt_state = 'pending_retry_attempt'",
            hex(EXEC)
        ));
        let outcome = issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        assert_eq!((outcome.lease_epoch, outcome.attempt_index), (1, 1));
        assert_eq!(
            db.one(
                "SELECT group_concat(attempt_index || ':' || lease_epoch || ':' || COALESCE(outcome, 'live') || ':' || \
                 COALESCE(json_extract(raw_fields, '$.attempt_type'), '-'), ',') \
                 FROM (SELECT * FROM ff_attempt ORDER BY attempt_index)"
            ),
            "0:3:failed:-,1:1:live:retry"
        );
        assert_eq!(
            db.one("SELECT attempt_index || '|' || json_extract(raw_fields, '$.total_attempt_count') FROM ff_exec_core"),
            "1|2"
        );
    }

    #[test]
    fn operator_claim_of_an_interrupted_execution_rearms_the_current_attempt() {
        let mut db = TestDb::runnable();
        db.exec(&format!(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, worker_instance_id, \
                 lease_epoch, started_at_ms, raw_fields) \
             VALUES (0, X'{}', 1, 'w', 'wi', 4, 5, '{{\"attempt_type\":\"retry\",\"attempt_id\":\"old\",\"lease_id\":\"old\"}}'); \
             UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted', attempt_index = 1",
            hex(EXEC)
        ));
        let outcome = issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        assert_eq!((outcome.lease_epoch, outcome.attempt_index), (5, 1));
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || lease_epoch || '|' || started_at_ms || '|' || raw_fields FROM ff_attempt"
            ),
            format!(
                "operator|5|5|{{\"attempt_type\":\"retry\",\"attempt_id\":\"{ATTEMPT}\",\"lease_id\":\"{LEASE}\"}}"
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_attempt"), "1");
        assert_eq!(
            db.one("SELECT attempt_index || '|' || attempt_state FROM ff_exec_core"),
            "1|running_attempt"
        );
    }

    #[test]
    fn operator_claim_of_an_interrupted_execution_without_its_attempt_row_creates_it() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted', attempt_index = 2");
        let outcome = issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        assert_eq!((outcome.lease_epoch, outcome.attempt_index), (1, 2));
        assert_eq!(
            db.one("SELECT attempt_index || '|' || json_extract(raw_fields, '$.attempt_type') FROM ff_attempt"),
            "2|initial"
        );
    }

    #[test]
    fn operator_claim_supersedes_existing_claim_grants_only() {
        let mut db = TestDb::runnable();
        db.seed_grant(EXEC, "worker-1", NOW + 60_000);
        db.seed_grant(EXEC, "worker-2", 0);
        db.exec(&format!(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             VALUES (0, randomblob(16), X'{}', 'reclaim', 'reclaimer', 'wi', 1, 0, 0)",
            hex(EXEC)
        ));
        issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        assert_eq!(
            db.one("SELECT group_concat(kind, ',') FROM ff_claim_grant"),
            "reclaim"
        );
    }

    #[test]
    fn operator_claim_of_a_due_delayed_execution_is_allowed() {
        let mut db = TestDb::runnable();
        db.exec(&format!(
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', \
             raw_fields = json_set(raw_fields, '$.delay_until', '{NOW}')"
        ));
        issue_grant_and_claim(&mut db, &operator_args()).unwrap();
    }

    #[test]
    fn operator_claim_zero_lease_is_invalid_input() {
        let mut db = TestDb::runnable();
        let mut args = operator_args();
        args.lease_duration_ms = 0;
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &args));
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput),
            "{err:?}"
        );
    }

    #[test]
    fn operator_claim_malformed_id_is_invalid_input() {
        let mut db = TestDb::runnable();
        let mut args = operator_args();
        args.execution_id = "nope".into();
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &args));
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput),
            "{err:?}"
        );
    }

    #[test]
    fn operator_claim_missing_execution_is_not_found() {
        let mut db = TestDb::new();
        db.seed_grant(EXEC, "worker-1", 0);
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
    }

    #[test]
    fn operator_claim_not_runnable_is_not_active_with_the_observed_state() {
        let mut db = TestDb::runnable();
        db.seed_grant(EXEC, "worker-1", 0);
        db.exec(&format!(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch) VALUES (0, X'{}', 0, 3); \
             UPDATE ff_exec_core SET lifecycle_phase = 'terminal', attempt_state = 'attempt_interrupted', \
                 raw_fields = json_set(raw_fields, '$.terminal_outcome', 'success', '$.current_attempt_id', 'a-1')",
            hex(EXEC)
        ));
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
        match err {
            EngineError::Contention(ContentionKind::ExecutionNotActive(n)) => {
                assert_eq!(
                    (
                        n.terminal_outcome.as_deref(),
                        n.lease_epoch.as_deref(),
                        n.lifecycle_phase.as_str(),
                        n.attempt_id.as_deref()
                    ),
                    (Some("success"), Some("3"), "terminal", Some("a-1"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operator_claim_not_active_without_attempt_or_outcome_reports_defaults() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'cancelled'");
        match db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args())) {
            EngineError::Contention(ContentionKind::ExecutionNotActive(n)) => {
                assert_eq!(
                    (
                        n.terminal_outcome.as_deref(),
                        n.lease_epoch.as_deref(),
                        n.lifecycle_phase.as_str(),
                        n.attempt_id.as_deref()
                    ),
                    (None, None, "cancelled", None)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operator_claim_owned_is_lease_conflict() {
        let mut db = TestDb::runnable();
        // Checked for interrupted executions too (upstream skipped the checks for them).
        db.exec("UPDATE ff_exec_core SET ownership_state = 'leased', attempt_state = 'attempt_interrupted'");
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
        assert_eq!(err, EngineError::Contention(ContentionKind::LeaseConflict));
    }

    #[test]
    fn operator_claim_ineligible_is_not_leaseable() {
        for mutation in [
            "UPDATE ff_exec_core SET eligibility_state = 'blocked_by_operator'",
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', attempt_state = 'attempt_interrupted'",
            &format!(
                "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', \
                 raw_fields = json_set(raw_fields, '$.delay_until', '{}')",
                NOW + 1
            ),
        ] {
            let mut db = TestDb::runnable();
            db.exec(mutation);
            let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
            assert_eq!(
                err,
                EngineError::Contention(ContentionKind::ExecutionNotLeaseable),
                "{mutation}"
            );
        }
    }

    #[test]
    fn operator_claim_running_attempt_is_active_attempt_exists() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET attempt_state = 'running_attempt'");
        let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
        assert_eq!(
            err,
            EngineError::Conflict(ConflictKind::ActiveAttemptExists)
        );
    }

    #[test]
    fn operator_claim_unknown_attempt_state_is_corruption() {
        for state in ["attempt_terminal", "pending_claim", "weird"] {
            let mut db = TestDb::runnable();
            db.seed_grant(EXEC, "worker-1", 0);
            db.exec(&format!(
                "UPDATE ff_exec_core SET attempt_state = '{state}'"
            ));
            let err = db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args()));
            assert_eq!(
                err,
                EngineError::Validation(ValidationError {
                    kind: ValidationKind::Corruption,
                    detail: format!("issue_grant_and_claim: unrecognized attempt_state={state}"),
                })
            );
        }
    }

    #[test]
    fn operator_claim_twice_is_not_active() {
        let mut db = TestDb::runnable();
        issue_grant_and_claim(&mut db, &operator_args()).unwrap();
        match db.fails_unchanged(|db| issue_grant_and_claim(db, &operator_args())) {
            EngineError::Contention(ContentionKind::ExecutionNotActive(n)) => {
                assert_eq!(n.lifecycle_phase, "active");
                assert_eq!(n.lease_epoch.as_deref(), Some("1"));
                assert_eq!(n.attempt_id.as_deref(), Some(ATTEMPT));
            }
            other => panic!("{other:?}"),
        }
    }
}
