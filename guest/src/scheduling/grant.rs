//! `issue-claim-grant`; the rules are in the parent module's docs.

use std::collections::BTreeSet;

use crate::bindings::scheduling::IssueClaimGrantArgs;
use crate::db::{Db, DbExt, int, text};
use crate::errors::{
    contention, require_positive, require_worker_id, require_worker_instance_id, storage,
};
use crate::exec::{Exec, lease_expiry};
use crate::ids::ExecutionRef;
use crate::json;
use crate::sql::Value;
use crate::types::{
    ConflictKind, ContentionKind, EngineError, StateKind, ValidationError, ValidationKind,
};

/// Grant `args.execution_id` to `args.worker_id`, writing the claim grant
/// [`crate::scheduling::claim_execution`] consumes. See the module docs for the rules.
pub fn issue_claim_grant(db: &mut impl Db, args: &IssueClaimGrantArgs) -> Result<(), EngineError> {
    require_positive("grant_ttl_ms", args.grant_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "runnable"
        || exec.ownership_state != "unowned"
        || !exec.is_claimable_at(args.now)
    {
        return Err(contention(ContentionKind::ExecutionNotEligible));
    }
    match exec.attempt_state.as_str() {
        "running_attempt" => return Err(EngineError::Conflict(ConflictKind::ActiveAttemptExists)),
        // A satisfied suspension may be granted: the grant's claim answers
        // `UseClaimResumedExecution` and the worker continues through `claim-resumed-execution`.
        "attempt_interrupted" if exec.public_state == "resumable" => {}
        "attempt_interrupted" => return Err(contention(ContentionKind::ExecutionNotLeaseable)),
        _ => {}
    }

    // Expired grants do not count; they are deleted below, once nothing can fail any more.
    let live_grant = db
        .first_row(
            "SELECT 1 FROM ff_claim_grant \
             WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim' \
                 AND NOT (expires_at_ms > 0 AND expires_at_ms < ?3) LIMIT 1",
            &[id.partition(), id.blob(), int(args.now)],
        )?
        .is_some();
    if live_grant {
        return Err(EngineError::State(StateKind::GrantAlreadyExists));
    }

    let worker: BTreeSet<&str> = args
        .worker_capabilities
        .iter()
        .map(String::as_str)
        .collect();
    let required = db
        .query(
            "SELECT capability FROM ff_execution_capabilities \
             WHERE execution_id = ?1 AND capability <> ''",
            &[id.blob()],
        )
        .map_err(storage)?;
    let missing: BTreeSet<String> = required
        .into_iter()
        .filter_map(|row| crate::db::Row(row).text(0))
        .filter(|capability| !worker.contains(capability.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::CapabilityMismatch,
            detail: missing.into_iter().collect::<Vec<_>>().join(","),
        }));
    }

    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 \
             AND kind = 'claim' AND expires_at_ms > 0 AND expires_at_ms < ?3",
        &[id.partition(), id.blob(), int(args.now)],
    )?;
    let optional = |value: &Option<String>| value.as_deref().map_or(Value::Null, text);
    db.run(
        "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
             worker_instance_id, lane_id, capability_hash, worker_capabilities, route_snapshot_json, \
             admission_summary, grant_ttl_ms, issued_at_ms, expires_at_ms) \
         VALUES (?1, randomblob(16), ?2, 'claim', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        &[
            id.partition(),
            id.blob(),
            text(&args.worker_id),
            text(&args.worker_instance_id),
            text(&args.lane_id),
            optional(&args.capability_hash),
            text(json::string_array(worker)),
            optional(&args.route_snapshot_json),
            optional(&args.admission_summary),
            int(i64::try_from(args.grant_ttl_ms).unwrap_or(i64::MAX)),
            int(args.now),
            int(lease_expiry(args.now, args.grant_ttl_ms)),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::scheduling::ClaimExecutionArgs;
    use crate::errors::invalid_input;
    use crate::scheduling::claim_execution;
    use crate::testing::{EXEC, NOW, TestDb, claim_args, hex};
    use crate::types::Entity;

    fn grant_args() -> IssueClaimGrantArgs {
        IssueClaimGrantArgs {
            execution_id: EXEC.into(),
            lane_id: "default".into(),
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            capability_hash: Some("hash".into()),
            route_snapshot_json: Some("{\"route\":1}".into()),
            admission_summary: Some("admitted".into()),
            worker_capabilities: vec!["gpu".into(), "cpu".into()],
            grant_ttl_ms: 60_000,
            now: NOW,
        }
    }

    fn require_caps(db: &TestDb, caps: &[&str]) {
        for cap in caps {
            db.exec(&format!(
                "INSERT INTO ff_execution_capabilities VALUES (X'{}', '{cap}')",
                hex(EXEC)
            ));
        }
    }

    #[test]
    fn grant_happy_path_writes_the_grant_row() {
        let mut db = TestDb::runnable();
        require_caps(&db, &["gpu"]);
        issue_claim_grant(&mut db, &grant_args()).unwrap();
        assert_eq!(
            db.one(
                "SELECT partition_key || '|' || lower(hex(execution_id)) || '|' || kind || '|' || worker_id || '|' || \
                 worker_instance_id || '|' || lane_id || '|' || capability_hash || '|' || worker_capabilities || '|' || \
                 route_snapshot_json || '|' || admission_summary || '|' || grant_ttl_ms || '|' || issued_at_ms || '|' || \
                 expires_at_ms || '|' || typeof(grant_id) || length(grant_id) FROM ff_claim_grant"
            ),
            format!(
                "0|{}|claim|worker-1|wi-1|default|hash|[\"cpu\",\"gpu\"]|{{\"route\":1}}|admitted|60000|{NOW}|{}|blob16",
                hex(EXEC),
                NOW + 60_000
            )
        );
        // The execution itself is untouched and still claimable.
        assert_eq!(
            db.one("SELECT lifecycle_phase || '|' || eligibility_state || '|' || raw_fields FROM ff_exec_core"),
            "runnable|eligible_now|{\"namespace\":\"ns\",\"tags\":{\"cairn.instance_id\":\"inst\"}}"
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_lease_event"), "0");
    }

    #[test]
    fn grant_optional_fields_are_null_and_ttl_saturates() {
        let mut db = TestDb::runnable();
        let mut args = grant_args();
        args.capability_hash = None;
        args.route_snapshot_json = None;
        args.admission_summary = None;
        args.worker_capabilities = Vec::new();
        args.grant_ttl_ms = u64::MAX;
        issue_claim_grant(&mut db, &args).unwrap();
        assert_eq!(
            db.one(
                "SELECT COALESCE(capability_hash, 'NULL') || '|' || COALESCE(route_snapshot_json, 'NULL') || '|' || \
                 COALESCE(admission_summary, 'NULL') || '|' || worker_capabilities || '|' || grant_ttl_ms || '|' || \
                 expires_at_ms FROM ff_claim_grant"
            ),
            format!("NULL|NULL|NULL|[]|{}|{}", i64::MAX, i64::MAX)
        );
    }

    #[test]
    fn a_grant_issued_here_is_accepted_by_claim_execution() {
        let mut db = TestDb::runnable();
        issue_claim_grant(&mut db, &grant_args()).unwrap();
        let claimed = claim_execution(
            &mut db,
            &ClaimExecutionArgs {
                now: NOW + 59_999,
                ..claim_args(EXEC)
            },
        )
        .expect("claim with the issued grant");
        assert_eq!(claimed.lease_epoch, 1);
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(db.one("SELECT ownership_state FROM ff_exec_core"), "leased");
    }

    #[test]
    fn grant_zero_ttl_is_invalid_input() {
        let mut db = TestDb::runnable();
        let mut args = grant_args();
        args.grant_ttl_ms = 0;
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &args));
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput),
            "{err:?}"
        );
    }

    #[test]
    fn grant_empty_worker_id_is_invalid_input_and_writes_nothing() {
        let mut db = TestDb::runnable();
        let mut args = grant_args();
        args.worker_id = String::new();
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &args));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
        args.execution_id = "bad".into();
        assert_eq!(
            issue_claim_grant(&mut db, &args).unwrap_err(),
            invalid_input("worker_id must not be empty")
        );
    }

    #[test]
    fn grant_malformed_id_is_invalid_input() {
        let mut db = TestDb::runnable();
        let mut args = grant_args();
        args.execution_id = "{fp:0}:x".into();
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &args));
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput),
            "{err:?}"
        );
    }

    #[test]
    fn grant_missing_execution_is_not_found() {
        let mut db = TestDb::new();
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &grant_args()));
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
    }

    #[test]
    fn grant_ineligible_executions_are_not_eligible() {
        for mutation in [
            "UPDATE ff_exec_core SET lifecycle_phase = 'terminal'",
            "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased'",
            "UPDATE ff_exec_core SET ownership_state = 'leased'",
            "UPDATE ff_exec_core SET eligibility_state = 'blocked_by_dependencies'",
            // Delayed and not yet due.
            &format!(
                "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', \
                 raw_fields = json_set(raw_fields, '$.delay_until', '{}')",
                NOW + 1
            ),
            // Delayed without a recorded delay.
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time'",
        ] {
            let mut db = TestDb::runnable();
            db.exec(mutation);
            let err = db.fails_unchanged(|db| issue_claim_grant(db, &grant_args()));
            assert_eq!(
                err,
                EngineError::Contention(ContentionKind::ExecutionNotEligible),
                "{mutation}"
            );
        }
    }

    #[test]
    fn grant_on_a_due_delayed_execution_is_allowed() {
        let mut db = TestDb::runnable();
        db.exec(&format!(
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', \
             raw_fields = json_set(raw_fields, '$.delay_until', '{NOW}')"
        ));
        issue_claim_grant(&mut db, &grant_args()).unwrap();
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "1");
    }

    #[test]
    fn grant_running_attempt_is_active_attempt_exists() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET attempt_state = 'running_attempt'");
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &grant_args()));
        assert_eq!(
            err,
            EngineError::Conflict(ConflictKind::ActiveAttemptExists)
        );
    }

    #[test]
    fn grant_interrupted_attempt_is_not_leaseable() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted'");
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &grant_args()));
        assert_eq!(
            err,
            EngineError::Contention(ContentionKind::ExecutionNotLeaseable)
        );
    }

    #[test]
    fn grant_live_grant_is_grant_already_exists() {
        // Any unexpired claim grant blocks, whoever it is for; `== now` and `<= 0` are live.
        for expires_at in [NOW + 1, NOW, 0, -5] {
            let mut db = TestDb::runnable();
            db.seed_grant(EXEC, "someone-else", expires_at);
            let err = db.fails_unchanged(|db| issue_claim_grant(db, &grant_args()));
            assert_eq!(
                err,
                EngineError::State(StateKind::GrantAlreadyExists),
                "{expires_at}"
            );
        }
    }

    #[test]
    fn grant_expired_grants_are_replaced_and_other_rows_kept() {
        let mut db = TestDb::runnable();
        db.seed_grant(EXEC, "stale-1", NOW - 1);
        db.seed_grant(EXEC, "stale-2", 1);
        // A reclaim grant and another execution's expired grant are not ours to delete.
        db.exec(&format!(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             VALUES (0, randomblob(16), X'{}', 'reclaim', 'reclaimer', 'wi', 1, 0, 1), \
                    (0, randomblob(16), X'00000000000000000000000000000001', 'claim', 'other', 'wi', 1, 0, 1)",
            hex(EXEC)
        ));
        issue_claim_grant(&mut db, &grant_args()).unwrap();
        assert_eq!(
            db.one(
                "SELECT group_concat(kind || ':' || worker_id, ',') \
                 FROM (SELECT * FROM ff_claim_grant ORDER BY worker_id)"
            ),
            "claim:other,reclaim:reclaimer,claim:worker-1"
        );
    }

    #[test]
    fn grant_capability_mismatch_lists_the_missing_tokens_sorted() {
        let mut db = TestDb::runnable();
        require_caps(&db, &["zeta", "gpu", "alpha", ""]);
        let mut args = grant_args();
        args.worker_capabilities = vec!["gpu".into()];
        let err = db.fails_unchanged(|db| issue_claim_grant(db, &args));
        assert_eq!(
            err,
            EngineError::Validation(ValidationError {
                kind: ValidationKind::CapabilityMismatch,
                detail: "alpha,zeta".into(),
            })
        );
    }

    #[test]
    fn grant_empty_required_tokens_are_ignored() {
        let mut db = TestDb::runnable();
        require_caps(&db, &[""]);
        let mut args = grant_args();
        args.worker_capabilities = Vec::new();
        issue_claim_grant(&mut db, &args).unwrap();
    }

    #[test]
    fn grant_validation_order() {
        // Ineligible beats a live grant and a capability mismatch; a live grant beats a mismatch.
        let mut db = TestDb::runnable();
        db.seed_grant(EXEC, "w", NOW + 1);
        require_caps(&db, &["missing"]);
        db.exec("UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted'");
        assert_eq!(
            issue_claim_grant(&mut db, &grant_args()).unwrap_err(),
            EngineError::Contention(ContentionKind::ExecutionNotLeaseable)
        );
        db.exec("UPDATE ff_exec_core SET attempt_state = 'pending_first_attempt'");
        assert_eq!(
            issue_claim_grant(&mut db, &grant_args()).unwrap_err(),
            EngineError::State(StateKind::GrantAlreadyExists)
        );
        db.exec(
            "UPDATE ff_exec_core SET ownership_state = 'leased', attempt_state = 'running_attempt'",
        );
        assert_eq!(
            issue_claim_grant(&mut db, &grant_args()).unwrap_err(),
            EngineError::Contention(ContentionKind::ExecutionNotEligible)
        );
        let mut zero = grant_args();
        zero.grant_ttl_ms = 0;
        zero.execution_id = "bad".into();
        assert!(matches!(
            issue_claim_grant(&mut db, &zero),
            Err(EngineError::Validation(v)) if v.detail == "grant_ttl_ms must be positive"
        ));
    }
}
