//! RFC-024 reclaim: granting a worker the right to take over an execution whose lease expired
//! or was revoked (`issue-reclaim-grant`), and consuming that grant (`reclaim-execution`): a
//! new attempt with a higher epoch, or terminal failure once the reclaim cap is reached.
//! Validation tables: the parent module.

use crate::bindings::recovery::{
    IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ReclaimGrant,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{
    invalid_input, require_positive, require_worker_id, require_worker_instance_id,
};
use crate::exec::{
    Attempt, Exec, StateVector, clamp_u32, lease_expiry, next_attempt_index,
    record_completion_event, record_lease_event, update_exec,
};
use crate::ids::{ExecutionRef, random_uuid};
use crate::json;
use crate::lease::{LeaseRequest, acquire_lease, claimant_of};
use crate::sql::Value;
use crate::types::{AttemptType, EngineError};

/// ff-core's default `ExecutionPolicy::max_reclaim_count`.
const DEFAULT_MAX_RECLAIM_COUNT: i64 = 100;

/// Why the execution's lease cannot be reclaimed, or `None` when it can.
fn not_reclaimable_detail(exec: &Exec) -> Option<String> {
    if exec.lifecycle_phase != "active" {
        return Some(format!(
            "lifecycle_phase={} (expected active)",
            exec.lifecycle_phase
        ));
    }
    if !matches!(
        exec.ownership_state.as_str(),
        "lease_expired_reclaimable" | "lease_revoked"
    ) {
        return Some(format!(
            "ownership_state={} (expected lease_expired_reclaimable | lease_revoked)",
            exec.ownership_state
        ));
    }
    None
}

/// Grant `args.worker_id` the right to reclaim an execution whose lease expired or was
/// revoked. See the module docs of [`crate::recovery`] for the rules.
pub fn issue_reclaim_grant(
    db: &mut impl Db,
    args: &IssueReclaimGrantArgs,
) -> Result<IssueReclaimGrantOutcome, EngineError> {
    require_positive("grant_ttl_ms", args.grant_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if let Some(detail) = not_reclaimable_detail(&exec) {
        return Ok(IssueReclaimGrantOutcome::NotReclaimable(detail));
    }

    let grant_id = random_uuid(db)?;
    let expires_at = lease_expiry(args.now, args.grant_ttl_ms);
    let opt_text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::Text);
    db.run(
        "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
             worker_instance_id, lane_id, capability_hash, worker_capabilities, route_snapshot_json, \
             admission_summary, grant_ttl_ms, issued_at_ms, expires_at_ms) \
         VALUES (?1, ?3, ?2, 'reclaim', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        &[
            id.partition(),
            id.blob(),
            Value::Blob(grant_id.as_bytes().to_vec()),
            text(&args.worker_id),
            text(&args.worker_instance_id),
            text(&args.lane_id),
            opt_text(&args.capability_hash),
            text(json::string_array(
                args.worker_capabilities.iter().map(String::as_str),
            )),
            opt_text(&args.route_snapshot_json),
            opt_text(&args.admission_summary),
            int(i64::try_from(args.grant_ttl_ms).unwrap_or(i64::MAX)),
            int(args.now),
            int(expires_at),
        ],
    )?;
    Ok(IssueReclaimGrantOutcome::Granted(ReclaimGrant {
        grant_id: grant_id.hyphenated().to_string(),
        expires_at,
        lane_id: args.lane_id.clone(),
    }))
}

/// The reclaim cap: the argument, else the stored policy's `max_reclaim_count` (a
/// non-negative JSON integer), else 100.
fn reclaim_cap(
    db: &mut impl Db,
    id: &ExecutionRef,
    argument: Option<u32>,
) -> Result<i64, EngineError> {
    if let Some(cap) = argument {
        return Ok(i64::from(cap));
    }
    let stored = db
        .first_row(
            "SELECT CASE WHEN json_valid(policy) THEN \
                 CASE WHEN json_type(policy, '$.max_reclaim_count') = 'integer' \
                 THEN json_extract(policy, '$.max_reclaim_count') END END \
             FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .and_then(|row| row.integer(0))
        .filter(|cap| *cap >= 0);
    Ok(stored.unwrap_or(DEFAULT_MAX_RECLAIM_COUNT))
}

/// Consume the newest reclaim grant of the execution: a new attempt takes over with a higher
/// epoch, or the execution fails for good once its reclaim cap is reached. See the module
/// docs of [`crate::recovery`] for the rules.
pub fn reclaim_execution(
    db: &mut impl Db,
    args: &ReclaimExecutionArgs,
) -> Result<ReclaimExecutionOutcome, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    // Newest first; among grants issued in the same millisecond the last inserted wins.
    let Some(grant) = db.first_row(
        "SELECT grant_id, worker_id, expires_at_ms FROM ff_claim_grant \
         WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'reclaim' \
         ORDER BY issued_at_ms DESC, rowid DESC LIMIT 1",
        &id.key(),
    )?
    else {
        return Ok(ReclaimExecutionOutcome::GrantNotFound);
    };
    let grant_id = grant.0.first().cloned().unwrap_or(Value::Null);
    let grant_worker = grant.text_or_empty(1);
    if grant_worker != args.worker_id {
        return Err(invalid_input(format!(
            "reclaim_execution: grant worker_id={grant_worker} mismatches caller {}",
            args.worker_id
        )));
    }
    let delete_grant = "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND grant_id = ?2";
    if grant.integer(2).unwrap_or(0) <= args.now {
        db.run(delete_grant, &[id.partition(), grant_id])?;
        return Ok(ReclaimExecutionOutcome::GrantNotFound);
    }
    let exec = Exec::require(db, &id)?;
    if let Some(detail) = not_reclaimable_detail(&exec) {
        return Ok(ReclaimExecutionOutcome::NotReclaimable(detail));
    }

    let prior = Attempt::load(db, &id, exec.attempt_index)?;
    let prior_epoch = prior.as_ref().map_or(0, |attempt| attempt.lease_epoch);
    let prior_lease_id = prior.as_ref().and_then(|attempt| attempt.lease_id.clone());
    let at_cap = exec.lease_reclaim_count >= reclaim_cap(db, &id, args.max_reclaim_count)?;
    // The interrupted attempt ends and loses its lease on both branches; at the cap no attempt
    // takes over, so it also loses its worker (upstream clears the whole lease there).
    let clear_worker = if at_cap { "worker_id = NULL, " } else { "" };
    db.run(
        &format!(
            "UPDATE ff_attempt SET outcome = 'interrupted_reclaimed', {clear_worker}\
                 worker_instance_id = NULL, lease_expires_at_ms = NULL, terminal_at_ms = ?4 \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3"
        ),
        &[
            id.partition(),
            id.blob(),
            int(exec.attempt_index),
            int(args.now),
        ],
    )?;

    if at_cap {
        update_exec(
            db,
            &id,
            &StateVector::FAILED,
            ", terminal_at_ms = ?9, raw_fields = json_set(raw_fields, \
                 '$.terminal_outcome', 'failed', '$.failure_reason', 'reclaim cap exceeded', \
                 '$.last_mutation_at', CAST(?9 AS TEXT))",
            &[int(args.now)],
        )?;
        // A terminal execution keeps no grants (as after a cancel).
        db.run(
            "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?;
        record_completion_event(db, &exec, "failed", args.now)?;
        record_lease_event(db, &exec, "revoked", prior_lease_id.as_deref(), args.now)?;
        crate::flows::on_terminal(db, &exec, "failed", args.now)?;
        return Ok(ReclaimExecutionOutcome::ReclaimCapExceeded(clamp_u32(
            exec.lease_reclaim_count,
        )));
    }

    db.run(delete_grant, &[id.partition(), grant_id])?;
    let attempt_index = next_attempt_index(db, &id)?;
    let claimant = claimant_of!(args);
    let acquired = acquire_lease(
        db,
        &exec,
        &LeaseRequest {
            claimant,
            attempt_index,
            attempt_type: AttemptType::Reclaim,
            attempt_policy_json: args.attempt_policy_json.as_deref(),
            first_epoch: prior_epoch.saturating_add(1),
            execution_deadline_at: None,
            event: "reclaimed",
        },
    )?;
    db.run(
        "UPDATE ff_exec_core SET lease_reclaim_count = lease_reclaim_count + 1 \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    Ok(ReclaimExecutionOutcome::Claimed(
        acquired.claimed(id.canonical(), &claimant),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::mark_lease_expired_if_due;
    use crate::recovery::test_support::hand_leased;
    use crate::testing::{ATTEMPT, EXEC, EXEC_UUID, LEASE, NOW, TTL, TestDb};
    use crate::types::{ClaimedExecution, Entity, ValidationKind};

    const EXPIRES: i64 = NOW + TTL as i64;
    const NEW_LEASE: &str = "55555555-5555-4555-8555-555555555555";
    const NEW_ATTEMPT: &str = "66666666-6666-4666-8666-666666666666";

    fn grant_args(worker_id: &str, now: i64) -> IssueReclaimGrantArgs {
        IssueReclaimGrantArgs {
            execution_id: EXEC.into(),
            worker_id: worker_id.into(),
            worker_instance_id: format!("{worker_id}-instance"),
            lane_id: "lane-r".into(),
            capability_hash: Some("hash".into()),
            grant_ttl_ms: 10_000,
            route_snapshot_json: Some("{\"route\":1}".into()),
            admission_summary: None,
            worker_capabilities: vec!["a".into(), "b\"c".into()],
            now,
        }
    }

    fn reclaim_args(max: Option<u32>, now: i64) -> ReclaimExecutionArgs {
        ReclaimExecutionArgs {
            execution_id: EXEC.into(),
            worker_id: "worker-2".into(),
            worker_instance_id: "wi-2".into(),
            lane_id: "lane-r".into(),
            lease_id: NEW_LEASE.into(),
            lease_ttl_ms: TTL,
            attempt_id: NEW_ATTEMPT.into(),
            attempt_policy_json: Some("{\"p\":1}".into()),
            max_reclaim_count: max,
            now,
        }
    }

    /// [`EXEC`] leased, then its lease marked expired at `EXPIRES`.
    fn expired() -> TestDb {
        let mut db = TestDb::leased();
        mark_lease_expired_if_due(&mut db, EXEC, EXPIRES).unwrap();
        db
    }

    /// [`expired`] with a reclaim grant for worker-2 issued at `EXPIRES`.
    fn granted() -> TestDb {
        let mut db = expired();
        issue_reclaim_grant(&mut db, &grant_args("worker-2", EXPIRES)).unwrap();
        db
    }

    fn invalid_input_detail(result: Result<impl std::fmt::Debug, EngineError>) -> String {
        match result {
            Err(EngineError::Validation(v)) if v.kind == ValidationKind::InvalidInput => v.detail,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    // ---- issue_reclaim_grant ----

    #[test]
    fn issue_validation_rows() {
        let mut db = expired();
        let before = db.dump();
        let mut zero = grant_args("worker-2", EXPIRES);
        zero.grant_ttl_ms = 0;
        invalid_input_detail(issue_reclaim_grant(&mut db, &zero));
        assert!(matches!(
            issue_reclaim_grant(&mut TestDb::new(), &grant_args("worker-2", EXPIRES)),
            Err(EngineError::NotFound(Entity::Execution))
        ));
        assert_eq!(before, db.dump());
    }

    #[test]
    fn issue_empty_worker_id_is_invalid_input_and_writes_nothing() {
        let empty = grant_args("", EXPIRES);
        let err = expired().fails_unchanged(|db| issue_reclaim_grant(db, &empty));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
    }

    #[test]
    fn issue_for_an_unreclaimable_execution_says_why_and_writes_nothing() {
        let mut runnable = TestDb::new();
        runnable.seed_runnable(EXEC);
        let before = runnable.dump();
        assert_eq!(
            issue_reclaim_grant(&mut runnable, &grant_args("worker-2", NOW)).unwrap(),
            IssueReclaimGrantOutcome::NotReclaimable(
                "lifecycle_phase=runnable (expected active)".into()
            )
        );
        assert_eq!(before, runnable.dump());

        let mut live = TestDb::leased();
        let before = live.dump();
        assert_eq!(
            issue_reclaim_grant(&mut live, &grant_args("worker-2", NOW)).unwrap(),
            IssueReclaimGrantOutcome::NotReclaimable(
                "ownership_state=leased (expected lease_expired_reclaimable | lease_revoked)"
                    .into()
            )
        );
        assert_eq!(before, live.dump());
    }

    #[test]
    fn issue_writes_one_reclaim_grant_with_every_argument() {
        let mut db = expired();
        let IssueReclaimGrantOutcome::Granted(grant) =
            issue_reclaim_grant(&mut db, &grant_args("worker-2", EXPIRES)).unwrap()
        else {
            panic!("granted")
        };
        assert_eq!(grant.expires_at, EXPIRES + 10_000);
        assert_eq!(grant.lane_id, "lane-r");
        let parsed = uuid::Uuid::parse_str(&grant.grant_id).unwrap();
        assert_eq!(parsed.hyphenated().to_string(), grant.grant_id, "lowercase");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(
            db.one(
                "SELECT lower(hex(grant_id)) || '|' || kind || '|' || worker_id || '|' || worker_instance_id || '|' || \
                 lane_id || '|' || capability_hash || '|' || worker_capabilities || '|' || route_snapshot_json || '|' || \
                 COALESCE(admission_summary, 'NULL') || '|' || grant_ttl_ms || '|' || issued_at_ms || '|' || \
                 expires_at_ms || '|' || partition_key || '|' || lower(hex(execution_id)) FROM ff_claim_grant"
            ),
            format!(
                "{}|reclaim|worker-2|worker-2-instance|lane-r|hash|[\"a\",\"b\\\"c\"]|{{\"route\":1}}|NULL|10000|{EXPIRES}|{}|0|{}",
                grant.grant_id.replace('-', ""),
                EXPIRES + 10_000,
                EXEC_UUID.replace('-', "")
            )
        );
        // A second grant gets its own id; a revoked lease is reclaimable too.
        db.exec("UPDATE ff_exec_core SET ownership_state = 'lease_revoked'");
        let IssueReclaimGrantOutcome::Granted(second) =
            issue_reclaim_grant(&mut db, &grant_args("worker-3", EXPIRES)).unwrap()
        else {
            panic!("granted")
        };
        assert_ne!(second.grant_id, grant.grant_id);
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "2");
    }

    #[test]
    fn issue_saturates_a_huge_ttl() {
        let mut db = expired();
        let mut args = grant_args("worker-2", EXPIRES);
        args.grant_ttl_ms = u64::MAX;
        let IssueReclaimGrantOutcome::Granted(grant) = issue_reclaim_grant(&mut db, &args).unwrap()
        else {
            panic!("granted")
        };
        assert_eq!(grant.expires_at, i64::MAX);
        assert_eq!(
            db.one("SELECT grant_ttl_ms || '|' || expires_at_ms FROM ff_claim_grant"),
            format!("{}|{}", i64::MAX, i64::MAX)
        );
    }

    // ---- reclaim_execution ----

    #[test]
    fn reclaim_empty_worker_id_is_invalid_input_and_writes_nothing() {
        // Even a reclaim grant recorded for the empty worker does not make it a worker.
        let mut db = granted();
        db.exec("UPDATE ff_claim_grant SET worker_id = '' WHERE kind = 'reclaim'");
        let mut empty = reclaim_args(None, EXPIRES + 1);
        empty.worker_id = String::new();
        let err = db.fails_unchanged(|db| reclaim_execution(db, &empty));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
    }

    #[test]
    fn reclaim_zero_ttl_and_missing_grant() {
        let mut db = granted();
        let before = db.dump();
        let mut zero = reclaim_args(None, EXPIRES + 1);
        zero.lease_ttl_ms = 0;
        invalid_input_detail(reclaim_execution(&mut db, &zero));
        assert_eq!(before, db.dump());

        let mut db = expired();
        db.seed_grant(EXEC, "worker-2", 0); // a claim grant is not a reclaim grant
        let before = db.dump();
        assert_eq!(
            reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 1)).unwrap(),
            ReclaimExecutionOutcome::GrantNotFound
        );
        assert_eq!(before, db.dump());
    }

    #[test]
    fn reclaim_by_another_worker_than_the_newest_grant_names_is_invalid_input() {
        let mut db = granted();
        // Issued later than worker-2's: this one decides.
        issue_reclaim_grant(&mut db, &grant_args("worker-3", EXPIRES + 1)).unwrap();
        let before = db.dump();
        assert_eq!(
            invalid_input_detail(reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 2))),
            "reclaim_execution: grant worker_id=worker-3 mismatches caller worker-2"
        );
        assert_eq!(before, db.dump());
    }

    #[test]
    fn among_grants_issued_in_the_same_millisecond_the_last_one_decides() {
        let mut db = granted();
        issue_reclaim_grant(&mut db, &grant_args("worker-3", EXPIRES)).unwrap();
        assert_eq!(
            invalid_input_detail(reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 1))),
            "reclaim_execution: grant worker_id=worker-3 mismatches caller worker-2"
        );
    }

    #[test]
    fn an_expired_grant_is_deleted_and_reported_not_found() {
        let mut db = granted();
        let mut expected = db.dump();
        expected.retain(|row| !row.starts_with("ff_claim_grant:"));
        assert_eq!(
            reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 10_000)).unwrap(),
            ReclaimExecutionOutcome::GrantNotFound
        );
        assert_eq!(expected, db.dump(), "only the grant is gone");
    }

    #[test]
    fn reclaim_with_a_grant_for_a_missing_execution_is_not_found() {
        let mut db = TestDb::new();
        db.exec(&format!(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             VALUES (0, randomblob(16), X'{}', 'reclaim', 'worker-2', 'wi', 1, 0, {})",
            EXEC_UUID.replace('-', ""),
            EXPIRES + 10_000
        ));
        let before = db.dump();
        assert!(matches!(
            reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 1)),
            Err(EngineError::NotFound(Entity::Execution))
        ));
        assert_eq!(before, db.dump());
    }

    #[test]
    fn reclaim_of_an_unreclaimable_execution_keeps_the_grant() {
        for (mutation, detail) in [
            (
                "UPDATE ff_exec_core SET lifecycle_phase = 'terminal'",
                "lifecycle_phase=terminal (expected active)",
            ),
            (
                "UPDATE ff_exec_core SET ownership_state = 'leased'",
                "ownership_state=leased (expected lease_expired_reclaimable | lease_revoked)",
            ),
        ] {
            let mut db = granted();
            db.exec(mutation);
            let before = db.dump();
            assert_eq!(
                reclaim_execution(&mut db, &reclaim_args(None, EXPIRES + 1)).unwrap(),
                ReclaimExecutionOutcome::NotReclaimable(detail.into())
            );
            assert_eq!(before, db.dump());
        }
    }

    #[test]
    fn reclaim_starts_a_new_attempt_with_a_higher_epoch() {
        let mut db = granted();
        let now = EXPIRES + 1;
        let outcome = reclaim_execution(&mut db, &reclaim_args(None, now)).unwrap();
        assert_eq!(
            outcome,
            ReclaimExecutionOutcome::Claimed(ClaimedExecution {
                execution_id: EXEC.into(),
                lease_id: NEW_LEASE.into(),
                lease_epoch: 2,
                attempt_index: 1,
                attempt_id: NEW_ATTEMPT.into(),
                attempt_type: AttemptType::Reclaim,
                lease_expires_at: now + TTL as i64,
            })
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(row, ';') FROM (SELECT attempt_index || ',' || worker_id || ',' || \
                 COALESCE(worker_instance_id, 'NULL') || ',' || lease_epoch || ',' || \
                 COALESCE(lease_expires_at_ms, 'NULL') || ',' || started_at_ms || ',' || \
                 COALESCE(terminal_at_ms, 'NULL') || ',' || COALESCE(outcome, 'NULL') || ',' || \
                 COALESCE(policy, 'NULL') || ',' || raw_fields AS row FROM ff_attempt ORDER BY attempt_index)"
            ),
            format!(
                "0,worker-1,NULL,1,NULL,{NOW},{now},interrupted_reclaimed,NULL,\
                 {{\"attempt_type\":\"initial\",\"attempt_id\":\"{ATTEMPT}\",\"lease_id\":\"{LEASE}\"}};\
                 1,worker-2,wi-2,2,{},{now},NULL,NULL,{{\"p\":1}},\
                 {{\"attempt_type\":\"reclaim\",\"attempt_id\":\"{NEW_ATTEMPT}\",\"lease_id\":\"{NEW_LEASE}\"}}",
                now + TTL as i64
            )
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || attempt_index || '|' || lease_reclaim_count || '|' || \
                 started_at_ms || '|' || json_extract(raw_fields, '$.current_lease_id') || '|' || \
                 json_extract(raw_fields, '$.current_attempt_id') || '|' || \
                 json_extract(raw_fields, '$.total_attempt_count') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core"
            ),
            format!(
                "active|leased|not_applicable|active|running_attempt|1|1|{NOW}|{NEW_LEASE}|{NEW_ATTEMPT}|2|{now}"
            )
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one(
                "SELECT group_concat(event_type || ':' || lease_id || ':' || occurred_at_ms, ',') \
                 FROM (SELECT * FROM ff_lease_event ORDER BY event_id)"
            ),
            format!("acquired:{LEASE}:{NOW},expired:{LEASE}:{EXPIRES},reclaimed:{NEW_LEASE}:{now}")
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_completion_event"), "0");
    }

    #[test]
    fn reclaim_below_the_cap_boundary_succeeds() {
        let mut db = granted();
        db.exec("UPDATE ff_exec_core SET lease_reclaim_count = 1");
        assert!(matches!(
            reclaim_execution(&mut db, &reclaim_args(Some(2), EXPIRES + 1)).unwrap(),
            ReclaimExecutionOutcome::Claimed(_)
        ));
        assert_eq!(db.one("SELECT lease_reclaim_count FROM ff_exec_core"), "2");
    }

    #[test]
    fn reclaim_at_the_cap_fails_the_execution() {
        let mut db = granted();
        db.seed_grant(EXEC, "worker-9", 0);
        db.exec("UPDATE ff_exec_core SET lease_reclaim_count = 2");
        let now = EXPIRES + 1;
        assert_eq!(
            reclaim_execution(&mut db, &reclaim_args(Some(2), now)).unwrap(),
            ReclaimExecutionOutcome::ReclaimCapExceeded(2)
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 terminal_at_ms || '|' || attempt_index || '|' || lease_reclaim_count || '|' || \
                 json_extract(raw_fields, '$.terminal_outcome') || '|' || \
                 json_extract(raw_fields, '$.failure_reason') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core"
            ),
            format!(
                "terminal|unowned|not_applicable|failed|attempt_terminal|NULL|{now}|0|2|failed|reclaim cap exceeded|{now}"
            )
        );
        assert_eq!(
            db.one(
                "SELECT COUNT(*) || '|' || COALESCE(worker_id, 'NULL') || '|' || COALESCE(worker_instance_id, 'NULL') || '|' || \
                 COALESCE(lease_expires_at_ms, 'NULL') || '|' || lease_epoch || '|' || terminal_at_ms || '|' || \
                 outcome FROM ff_attempt"
            ),
            format!("1|NULL|NULL|NULL|1|{now}|interrupted_reclaimed")
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
        assert_eq!(
            db.one(
                "SELECT lower(hex(execution_id)) || '|' || outcome || '|' || occurred_at_ms || '|' || namespace || '|' || \
                 instance_tag || '|' || COUNT(*) FROM ff_completion_event"
            ),
            format!("{}|failed|{now}|ns|inst|1", EXEC_UUID.replace('-', ""))
        );
        assert_eq!(
            db.one(
                "SELECT event_type || ':' || lease_id || ':' || occurred_at_ms FROM ff_lease_event \
                 ORDER BY event_id DESC LIMIT 1"
            ),
            format!("revoked:{LEASE}:{now}")
        );
    }

    #[test]
    fn the_cap_comes_from_the_argument_then_the_policy_then_100() {
        let cases: [(Option<u32>, &str, i64, bool); 6] = [
            (None, "{\"max_reclaim_count\":1}", 1, true),
            (None, "{\"max_reclaim_count\":2}", 1, false),
            (Some(5), "{\"max_reclaim_count\":1}", 1, false),
            (None, "not json", 99, false),
            (None, "{\"max_reclaim_count\":\"1\"}", 99, false),
            (None, "{}", 100, true),
        ];
        for (argument, policy, count, exceeded) in cases {
            let mut db = granted();
            db.exec(&format!(
                "UPDATE ff_exec_core SET policy = '{policy}', lease_reclaim_count = {count}"
            ));
            let outcome = reclaim_execution(&mut db, &reclaim_args(argument, EXPIRES + 1)).unwrap();
            assert_eq!(
                matches!(outcome, ReclaimExecutionOutcome::ReclaimCapExceeded(_)),
                exceeded,
                "{argument:?} {policy} {count}: {outcome:?}"
            );
        }
    }

    #[test]
    fn reclaim_of_a_hand_seeded_lease_without_an_attempt_row_starts_at_epoch_one() {
        let mut db = hand_leased();
        db.exec(
            "DELETE FROM ff_attempt; UPDATE ff_exec_core SET ownership_state = 'lease_revoked', attempt_index = 3",
        );
        issue_reclaim_grant(&mut db, &grant_args("worker-2", NOW)).unwrap();
        let ReclaimExecutionOutcome::Claimed(claimed) =
            reclaim_execution(&mut db, &reclaim_args(None, NOW + 1)).unwrap()
        else {
            panic!("claimed")
        };
        assert_eq!((claimed.attempt_index, claimed.lease_epoch), (0, 1));
    }
}
