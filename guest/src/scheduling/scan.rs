//! `claim`, the lane scanner; the rules are in the parent module's docs.

use super::lease_claimable;
use crate::bindings::scheduling::ClaimArgs;
use crate::db::{Db, DbExt, int, text};
use crate::errors::{corruption, require_positive, require_worker_id, require_worker_instance_id};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::json;
use crate::lease::claimant_of;
use crate::types::{ClaimedExecution, EngineError};

/// A lane scan statement: the first claimable execution of lane `?1` at time `?2` whose
/// required capabilities are all in the JSON array `?3` and that no unexpired claim grant
/// reserves for a worker other than `?4`, in the order given (SQL over the `ff_exec_core AS e`
/// columns, a string literal), returning `partition_key`, the hex execution id and whether
/// the execution has claim grants (which the claim then deletes). Custom guests that only
/// change which execution a worker gets pass their own order to
/// [`claim_first`](crate::scheduling::claim_first).
#[macro_export]
macro_rules! claimable_scan {
    ($order:literal) => {
        concat!(
            "SELECT partition_key, lower(hex(execution_id)), EXISTS (SELECT 1 FROM ff_claim_grant AS g \
                 WHERE g.partition_key = e.partition_key AND g.execution_id = e.execution_id \
                     AND g.kind = 'claim') \
             FROM ff_exec_core AS e \
             WHERE e.lane_id = ?1 AND e.lifecycle_phase = 'runnable' AND e.ownership_state = 'unowned' \
                 AND (e.eligibility_state = 'eligible_now' \
                     OR (e.eligibility_state = 'not_eligible_until_time' \
                         AND CAST(json_extract(e.raw_fields, '$.delay_until') AS INTEGER) <= ?2)) \
                 AND e.attempt_state IN ('attempt_interrupted', 'pending_first_attempt', 'pending', 'initial', \
                     'pending_retry_attempt', 'pending_replay_attempt') \
                 AND NOT EXISTS (SELECT 1 FROM ff_execution_capabilities AS c \
                     WHERE c.execution_id = e.execution_id AND c.capability <> '' \
                         AND c.capability NOT IN (SELECT value FROM json_each(?3))) \
                 AND NOT EXISTS (SELECT 1 FROM ff_claim_grant AS g \
                     WHERE g.partition_key = e.partition_key AND g.execution_id = e.execution_id \
                         AND g.kind = 'claim' AND g.worker_id <> ?4 \
                         AND NOT (g.expires_at_ms > 0 AND g.expires_at_ms < ?2)) \
             ORDER BY ",
            $order,
            " LIMIT 1"
        )
    };
}

/// The built-in order: highest priority first, then oldest; served by
/// `ff_exec_core_claim_scan_idx` (migration 0002).
const SCAN: &str =
    claimable_scan!("e.priority DESC, e.created_at_ms ASC, e.partition_key, e.execution_id");

/// Lease the best claimable execution of `args.lane_id` that the worker's capabilities cover;
/// `None` (nothing written) when there is none. See the module docs for the rules.
pub fn claim(db: &mut impl Db, args: &ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
    claim_first(db, args, SCAN)
}

/// [`claim`] with another scan statement (built by [`claimable_scan!`]): validates the
/// arguments, leases the first execution `scan` returns the way every claim path does.
pub fn claim_first(
    db: &mut impl Db,
    args: &ClaimArgs,
    scan: &str,
) -> Result<Option<ClaimedExecution>, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    require_worker_instance_id(&args.worker_instance_id)?;
    let capabilities = json::string_array(args.capabilities.iter().map(String::as_str));
    let Some(row) = db.first_row(
        scan,
        &[
            text(&args.lane_id),
            int(args.now),
            text(capabilities),
            text(&args.worker_id),
        ],
    )?
    else {
        return Ok(None);
    };
    let (partition, uuid, granted) = (row.integer(0), row.text(1), row.integer(2) == Some(1));
    let id = match (partition, uuid) {
        (Some(partition), Some(uuid)) => ExecutionRef::parse(&format!("{{fp:{partition}}}:{uuid}"))
            .map_err(|_| {
                corruption(format!(
                    "claim: unreadable execution key {partition}:{uuid}"
                ))
            })?,
        _ => return Err(corruption("claim: execution key missing")),
    };
    let exec = Exec::require(db, &id)?;
    if granted {
        // This worker's grant, or expired ones: the claim consumes them (none is left stale).
        db.run(
            "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
            &id.key(),
        )?;
    }
    let claimant = claimant_of!(args);
    let leased = lease_claimable(db, &exec, &claimant)?.ok_or_else(|| {
        corruption(format!(
            "claim: unexpected attempt_state={}",
            exec.attempt_state
        ))
    })?;
    let attempt_index = u32::try_from(leased.attempt_index)
        .map_err(|_| corruption("attempt_index out of range"))?;
    Ok(Some(ClaimedExecution {
        attempt_index,
        ..leased.claimed(id.canonical(), &claimant)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Value;
    use crate::testing::{ATTEMPT, LEASE, NOW, TestDb};
    use crate::types::{AttemptType, ValidationKind};

    fn args(capabilities: &[&str]) -> ClaimArgs {
        ClaimArgs {
            lane_id: "default".into(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            lease_ttl_ms: 30_000,
            lease_id: LEASE.into(),
            attempt_id: ATTEMPT.into(),
            now: NOW,
        }
    }

    /// Seed a claimable execution `{fp:partition}:0000..00NN` with the given priority,
    /// creation time and required capabilities; returns its canonical id.
    fn seed(
        db: &TestDb,
        n: u8,
        partition: u16,
        priority: i64,
        created: i64,
        caps: &[&str],
    ) -> String {
        let hex = format!("{:032x}", n);
        db.exec(&format!(
            "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, attempt_index, lifecycle_phase, \
                 ownership_state, eligibility_state, public_state, attempt_state, priority, created_at_ms, raw_fields) \
             VALUES ({partition}, X'{hex}', 'default', 0, 'runnable', 'unowned', 'eligible_now', 'waiting', \
                 'pending_first_attempt', {priority}, {created}, '{{\"namespace\":\"ns\"}}')"
        ));
        for cap in caps {
            db.exec(&format!(
                "INSERT INTO ff_execution_capabilities VALUES (X'{hex}', '{cap}')"
            ));
        }
        ExecutionRef::parse(&format!("{{fp:{partition}}}:{}", uuid_text(n)))
            .unwrap()
            .canonical()
    }

    fn uuid_text(n: u8) -> String {
        uuid::Uuid::from_u128(u128::from(n))
            .hyphenated()
            .to_string()
    }

    fn claimed_id(db: &mut TestDb, args: &ClaimArgs) -> Option<String> {
        claim(db, args).unwrap().map(|c| c.execution_id)
    }

    #[test]
    fn happy_path_writes_attempt_exec_row_and_lease_event() {
        let mut db = TestDb::new();
        let id = seed(&db, 1, 3, 0, 10, &["gpu"]);
        db.exec("UPDATE ff_exec_core SET raw_fields = '{\"namespace\":\"ns\",\"tags\":{\"cairn.instance_id\":\"inst\"}}'");
        let claimed = claim(&mut db, &args(&["gpu", "cpu"]))
            .unwrap()
            .expect("claimed");
        assert_eq!(
            claimed,
            ClaimedExecution {
                execution_id: id.clone(),
                lease_id: LEASE.into(),
                lease_epoch: 1,
                attempt_index: 0,
                attempt_id: ATTEMPT.into(),
                attempt_type: AttemptType::Initial,
                lease_expires_at: NOW + 30_000,
            }
        );
        assert_eq!(id, "{fp:3}:00000000-0000-0000-0000-000000000001");
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 attempt_index || '|' || started_at_ms FROM ff_exec_core"
            ),
            format!("active|leased|not_applicable|active|running_attempt|NULL|0|{NOW}")
        );
        assert_eq!(
            db.one(
                "SELECT json_extract(raw_fields, '$.current_attempt_id') || '|' || \
                 json_extract(raw_fields, '$.current_lease_id') || '|' || \
                 json_extract(raw_fields, '$.current_worker_id') || '|' || \
                 json_extract(raw_fields, '$.current_worker_instance_id') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') || '|' || \
                 json_extract(raw_fields, '$.total_attempt_count') FROM ff_exec_core"
            ),
            format!("{ATTEMPT}|{LEASE}|worker-1|wi-1|{NOW}|1")
        );
        assert_eq!(
            db.one(
                "SELECT partition_key || '|' || attempt_index || '|' || worker_id || '|' || worker_instance_id || '|' || \
                 lease_epoch || '|' || lease_expires_at_ms || '|' || started_at_ms || '|' || \
                 COALESCE(policy, 'NULL') || '|' || COALESCE(outcome, 'NULL') || '|' || raw_fields FROM ff_attempt"
            ),
            format!(
                "3|0|worker-1|wi-1|1|{}|{NOW}|NULL|NULL|\
                 {{\"attempt_type\":\"initial\",\"attempt_id\":\"{ATTEMPT}\",\"lease_id\":\"{LEASE}\"}}",
                NOW + 30_000
            )
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(execution_id || '|' || lease_id || '|' || event_type || '|' || occurred_at_ms || \
                 '|' || partition_key || '|' || namespace || '|' || instance_tag, ';') FROM ff_lease_event"
            ),
            format!("00000000-0000-0000-0000-000000000001|{LEASE}|acquired|{NOW}|3|ns|inst")
        );
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_completion_event"), "0");
    }

    #[test]
    fn nothing_claimable_is_none_and_writes_nothing() {
        let mut db = TestDb::new();
        assert_eq!(claim(&mut db, &args(&[])).unwrap(), None);
        seed(&db, 1, 0, 0, 1, &["gpu"]);
        seed(&db, 2, 0, 0, 1, &[]);
        db.exec("UPDATE ff_exec_core SET lane_id = 'other' WHERE execution_id = X'00000000000000000000000000000002'");
        let before = db.dump();
        assert_eq!(claim(&mut db, &args(&["cpu"])).unwrap(), None);
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn zero_ttl_is_invalid_input_and_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let before = db.dump();
        let mut zero = args(&[]);
        zero.lease_ttl_ms = 0;
        match claim(&mut db, &zero) {
            Err(EngineError::Validation(v)) => assert_eq!(v.kind, ValidationKind::InvalidInput),
            other => panic!("{other:?}"),
        }
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn empty_worker_id_is_invalid_input_and_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let mut empty = args(&[]);
        empty.worker_id = String::new();
        let err = db.fails_unchanged(|db| claim(db, &empty));
        assert_eq!(
            err,
            crate::errors::invalid_input("worker_id must not be empty")
        );
    }

    #[test]
    fn order_is_priority_then_age_then_partition_then_id_across_partitions() {
        let mut db = TestDb::new();
        let old_low = seed(&db, 1, 0, 1, 5, &[]);
        let young_high = seed(&db, 2, 0, 9, 50, &[]);
        let old_high_p2 = seed(&db, 3, 2, 9, 10, &[]);
        let old_high_p1_b = seed(&db, 5, 1, 9, 10, &[]);
        let old_high_p1_a = seed(&db, 4, 1, 9, 10, &[]);
        let negative = seed(&db, 6, 0, -3, 0, &[]);
        let mut order = Vec::new();
        while let Some(id) = claimed_id(&mut db, &args(&[])) {
            order.push(id);
        }
        assert_eq!(
            order,
            [
                old_high_p1_a,
                old_high_p1_b,
                old_high_p2,
                young_high,
                old_low,
                negative
            ]
        );
    }

    #[test]
    fn a_capability_mismatch_is_walked_past_however_many_precede_the_match() {
        let mut db = TestDb::new();
        for n in 1..=20 {
            seed(&db, n, 0, 100, i64::from(n), &["gpu"]);
        }
        let match_ = seed(&db, 30, 0, 1, 1, &["cpu", ""]);
        seed(&db, 31, 0, 0, 1, &["cpu", "gpu"]);
        assert_eq!(claimed_id(&mut db, &args(&["cpu"])), Some(match_));
        assert_eq!(claimed_id(&mut db, &args(&["cpu"])), None);
    }

    #[test]
    fn ineligible_rows_are_skipped() {
        let skipped = [
            "lifecycle_phase = 'active'",
            "lifecycle_phase = 'terminal'",
            "ownership_state = 'leased'",
            "ownership_state = 'lease_revoked'",
            "eligibility_state = 'blocked_by_dependencies'",
            "eligibility_state = 'not_eligible_until_time'",
            &format!(
                "eligibility_state = 'not_eligible_until_time', raw_fields = '{{\"delay_until\":\"{}\"}}'",
                NOW + 1
            ),
            "attempt_state = 'running_attempt'",
            "attempt_state = 'attempt_terminal'",
            "attempt_state = 'bogus'",
        ];
        for mutation in skipped {
            let mut db = TestDb::new();
            seed(&db, 1, 0, 9, 1, &[]);
            let fallback = seed(&db, 2, 0, 0, 1, &[]);
            db.exec(&format!(
                "UPDATE ff_exec_core SET {mutation} WHERE execution_id = X'00000000000000000000000000000001'"
            ));
            assert_eq!(
                claimed_id(&mut db, &args(&[])),
                Some(fallback),
                "{mutation}"
            );
        }
    }

    #[test]
    fn a_due_delay_is_claimable_without_a_promoter() {
        for until in [NOW, NOW - 1_000] {
            let mut db = TestDb::new();
            let id = seed(&db, 1, 0, 0, 1, &[]);
            db.exec(&format!(
                "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', public_state = 'delayed', \
                 raw_fields = json_set(raw_fields, '$.delay_until', '{until}')"
            ));
            assert_eq!(claimed_id(&mut db, &args(&[])), Some(id));
        }
    }

    #[test]
    fn a_pending_retry_starts_the_next_attempt_as_a_retry() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        db.exec(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, outcome) \
             VALUES (0, X'00000000000000000000000000000001', 0, 2, 'failed'); \
             UPDATE ff_exec_core SET attempt_state = 'pending_retry_attempt'",
        );
        let claimed = claim(&mut db, &args(&[])).unwrap().unwrap();
        assert_eq!(
            (
                claimed.attempt_index,
                claimed.lease_epoch,
                claimed.attempt_type
            ),
            (1, 1, AttemptType::Retry)
        );
        assert_eq!(db.one("SELECT attempt_index FROM ff_exec_core"), "1");
    }

    #[test]
    fn an_interrupted_execution_rearms_its_current_attempt() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        db.exec(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, lease_epoch, raw_fields) \
             VALUES (0, X'00000000000000000000000000000001', 0, 'old', 1, '{\"attempt_type\":\"initial\"}'), \
                    (0, X'00000000000000000000000000000001', 1, 'old', 3, '{\"attempt_type\":\"replay\"}'); \
             UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted', attempt_index = 1",
        );
        let claimed = claim(&mut db, &args(&[])).unwrap().unwrap();
        assert_eq!(
            (
                claimed.attempt_index,
                claimed.lease_epoch,
                claimed.attempt_type
            ),
            (1, 4, AttemptType::Replay)
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(attempt_index || ':' || worker_id || ':' || lease_epoch, ',') \
                 FROM (SELECT * FROM ff_attempt ORDER BY attempt_index)"
            ),
            "0:old:1,1:worker-1:4"
        );
    }

    #[test]
    fn the_scan_is_served_by_the_claim_scan_index() {
        let mut db = TestDb::new();
        let plan = db
            .query(
                &format!("EXPLAIN QUERY PLAN {SCAN}"),
                &[text("default"), int(NOW), text("[]"), text("worker-1")],
            )
            .unwrap();
        let detail: Vec<String> = plan
            .iter()
            .filter_map(|row| match row.last() {
                Some(Value::Text(detail)) => Some(detail.clone()),
                _ => None,
            })
            .collect();
        let plan = detail.join("\n");
        assert!(
            plan.contains("USING INDEX ff_exec_core_claim_scan_idx (lane_id=?)"),
            "{plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE"),
            "the index should serve ORDER BY: {plan}"
        );
    }

    #[test]
    fn a_grant_reserves_its_execution_and_the_claim_leaves_no_grant_behind() {
        let mut db = TestDb::new();
        let id = seed(&db, 1, 0, 0, 10, &[]);
        db.seed_grant(&id, "worker-2", NOW + 60_000);
        let before = db.dump();
        assert_eq!(
            claimed_id(&mut db, &args(&[])),
            None,
            "reserved for worker-2"
        );
        assert_eq!(db.dump(), before);

        // The grant's own worker takes it and consumes the grant.
        let mut mine = args(&[]);
        mine.worker_id = "worker-2".into();
        assert_eq!(claimed_id(&mut db, &mine), Some(id));
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");

        // An expired grant for another worker reserves nothing, and is cleared.
        let mut db = TestDb::new();
        let id = seed(&db, 1, 0, 0, 10, &[]);
        db.seed_grant(&id, "worker-2", NOW - 1);
        assert_eq!(claimed_id(&mut db, &args(&[])), Some(id));
        assert_eq!(db.one("SELECT COUNT(*) FROM ff_claim_grant"), "0");
    }
}
