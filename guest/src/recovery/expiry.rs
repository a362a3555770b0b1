//! Lease expiry: marking one execution's lapsed lease (`mark-lease-expired-if-due`) and
//! listing lapsed leases (`list-expired-leases`). Validation rules: the parent module.

use crate::bindings::recovery::{ExpiredLease, ListExpiredLeasesArgs};
use crate::db::{Db, DbExt, Row, int, text};
use crate::errors::{corruption, storage};
use crate::exec::{Attempt, Exec, StateVector, clamp_u32, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

/// If the execution's lease has lapsed at `now` (active, leased, the current attempt's expiry
/// set and not after `now`), mark it `lease_expired_reclaimable` and drop the attempt's
/// expiry; otherwise do nothing. See the module docs of [`crate::recovery`].
pub fn mark_lease_expired_if_due(
    db: &mut impl Db,
    execution_id: &str,
    now: i64,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "active" || exec.ownership_state != "leased" {
        return Ok(());
    }
    let Some(attempt) = Attempt::load(db, &id, exec.attempt_index)? else {
        return Ok(());
    };
    if attempt.lease_expires_at.is_none_or(|expires| expires > now) {
        return Ok(());
    }
    update_exec(
        db,
        &id,
        &StateVector::LEASE_EXPIRED,
        ", raw_fields = json_set(raw_fields, '$.lease_expired_at_ms', CAST(?9 AS TEXT), \
             '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now)],
    )?;
    db.run(
        "UPDATE ff_attempt SET lease_expires_at_ms = NULL \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        &[id.partition(), id.blob(), int(attempt.index)],
    )?;
    record_lease_event(db, &exec, "expired", attempt.lease_id.as_deref(), now)?;
    Ok(())
}

/// The canonical `{fp:N}:<uuid>` text of `c.execution_id`, built in SQL so that ordering and
/// the cursor compare the same text the caller sees.
const CANONICAL_ID_SQL: &str = "'{fp:' || c.partition_key || '}:' || lower(\
     substr(hex(c.execution_id), 1, 8) || '-' || substr(hex(c.execution_id), 9, 4) || '-' || \
     substr(hex(c.execution_id), 13, 4) || '-' || substr(hex(c.execution_id), 17, 4) || '-' || \
     substr(hex(c.execution_id), 21))";

/// Live leases (current attempts of active, leased executions) whose expiry is at or before
/// `args.as_of`, oldest first, strictly after the cursor. See the module docs of
/// [`crate::recovery`].
pub fn list_expired_leases(
    db: &mut impl Db,
    args: &ListExpiredLeasesArgs,
) -> Result<Vec<ExpiredLease>, EngineError> {
    let (cursor_expires, cursor_id) = match &args.after {
        Some(cursor) => (
            int(cursor.expires_at),
            text(ExecutionRef::parse(&cursor.execution_id)?.canonical()),
        ),
        None => (Value::Null, Value::Null),
    };
    let statement = format!(
        "SELECT eid, execution_id, lease_id, lease_epoch, worker_instance_id, expires_at, attempt_index \
         FROM (SELECT {CANONICAL_ID_SQL} AS eid, c.execution_id, \
                   json_extract(a.raw_fields, '$.lease_id') AS lease_id, a.lease_epoch, \
                   a.worker_instance_id, a.lease_expires_at_ms AS expires_at, a.attempt_index \
               FROM ff_attempt a JOIN ff_exec_core c \
                   ON a.partition_key = c.partition_key AND a.execution_id = c.execution_id \
                   AND a.attempt_index = c.attempt_index \
               WHERE c.lifecycle_phase = 'active' AND c.ownership_state = 'leased' \
                   AND a.lease_expires_at_ms IS NOT NULL AND a.lease_expires_at_ms <= ?1 \
                   AND a.worker_instance_id IS NOT NULL AND a.worker_instance_id <> '' \
                   AND (?2 IS NULL OR json_extract(c.raw_fields, '$.namespace') = ?2)) \
         WHERE ?3 IS NULL OR expires_at > ?3 OR (expires_at = ?3 AND eid > ?4) \
         ORDER BY expires_at, eid LIMIT ?5"
    );
    let rows = db
        .query(
            &statement,
            &[
                int(args.as_of),
                args.namespace.clone().map_or(Value::Null, Value::Text),
                cursor_expires,
                cursor_id,
                int(args.limit),
            ],
        )
        .map_err(storage)?;
    rows.into_iter()
        .map(|values| expired_lease(&Row(values)))
        .collect()
}

fn expired_lease(row: &Row) -> Result<ExpiredLease, EngineError> {
    let uuid = match row.0.get(1) {
        Some(Value::Blob(bytes)) => uuid::Uuid::from_slice(bytes).ok(),
        _ => None,
    }
    .ok_or_else(|| corruption("ff_exec_core.execution_id is not a 16-byte UUID"))?;
    let attempt_index = row.integer(6).unwrap_or(0);
    let lease_epoch = row.integer(3).unwrap_or(0);
    let lease_id = row
        .text(2)
        .filter(|lease_id| !lease_id.is_empty())
        .unwrap_or_else(|| synthetic_lease_id(uuid, attempt_index, lease_epoch));
    Ok(ExpiredLease {
        execution_id: row.text_or_empty(0),
        lease_id,
        lease_epoch: u64::try_from(lease_epoch).unwrap_or(0),
        worker_instance_id: row.text_or_empty(4),
        expires_at: row.integer(5).unwrap_or(0),
        attempt_index: clamp_u32(attempt_index),
    })
}

/// Upstream's lease id for a lease that recorded none (shared with the Postgres backend): the
/// execution UUID with bytes 8..12 XOR the big-endian attempt index (`i32`) and bytes 0..8 XOR
/// the big-endian epoch (`i64`), as a hyphenated UUID.
fn synthetic_lease_id(execution: uuid::Uuid, attempt_index: i64, lease_epoch: i64) -> String {
    let mut bytes = *execution.as_bytes();
    // Upstream casts the index with `as i32`; indexes never exceed it in practice.
    let index = (attempt_index as i32).to_be_bytes();
    for (byte, mask) in bytes[8..12].iter_mut().zip(index) {
        *byte ^= mask;
    }
    for (byte, mask) in bytes[0..8].iter_mut().zip(lease_epoch.to_be_bytes()) {
        *byte ^= mask;
    }
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::recovery::ExpiredLeaseCursor;
    use crate::testing::{EXEC, EXEC_UUID, LEASE, NOW, TTL, TestDb};
    use crate::types::{Entity, ValidationKind};

    const EXPIRES: i64 = NOW + TTL as i64;

    // ---- mark_lease_expired_if_due ----

    #[test]
    fn mark_bad_id_or_missing_execution() {
        let mut db = TestDb::new();
        assert!(matches!(
            mark_lease_expired_if_due(&mut db, "{fp:0}", NOW),
            Err(EngineError::Validation(v)) if v.kind == ValidationKind::InvalidInput
        ));
        assert!(matches!(
            mark_lease_expired_if_due(&mut db, EXEC, NOW),
            Err(EngineError::NotFound(Entity::Execution))
        ));
    }

    #[test]
    fn mark_does_nothing_unless_a_leased_lease_has_lapsed() {
        let cases: [(&str, i64); 6] = [
            ("", EXPIRES - 1),
            ("UPDATE ff_attempt SET lease_expires_at_ms = NULL", EXPIRES),
            (
                "UPDATE ff_exec_core SET ownership_state = 'lease_revoked'",
                EXPIRES,
            ),
            (
                "UPDATE ff_exec_core SET lifecycle_phase = 'runnable'",
                EXPIRES,
            ),
            ("UPDATE ff_exec_core SET attempt_index = 1", EXPIRES),
            (
                "UPDATE ff_exec_core SET ownership_state = 'lease_expired_reclaimable'",
                EXPIRES,
            ),
        ];
        for (mutation, now) in cases {
            let mut db = TestDb::leased();
            db.exec(mutation);
            let before = db.dump();
            mark_lease_expired_if_due(&mut db, EXEC, now).expect(mutation);
            assert_eq!(before, db.dump(), "{mutation}");
        }
    }

    #[test]
    fn mark_at_the_expiry_makes_the_lease_reclaimable() {
        let mut db = TestDb::leased();
        mark_lease_expired_if_due(&mut db, EXEC, EXPIRES).expect("mark");
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
                 attempt_index || '|' || json_type(raw_fields, '$.lease_expired_at_ms') || ':' || \
                 json_extract(raw_fields, '$.lease_expired_at_ms') || '|' || \
                 json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core"
            ),
            format!(
                "active|lease_expired_reclaimable|not_applicable|active|attempt_interrupted|NULL|0|text:{EXPIRES}|{EXPIRES}"
            )
        );
        assert_eq!(
            db.one(
                "SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || \
                 COALESCE(lease_expires_at_ms, 'NULL') || '|' || COALESCE(outcome, 'NULL') FROM ff_attempt"
            ),
            "worker-1|wi-1|1|NULL|NULL"
        );
        assert_eq!(
            db.one(
                "SELECT execution_id || '|' || event_type || '|' || lease_id || '|' || occurred_at_ms || '|' || \
                 namespace FROM ff_lease_event ORDER BY event_id DESC LIMIT 1"
            ),
            format!("{EXEC_UUID}|expired|{LEASE}|{EXPIRES}|ns")
        );
        // Marked once: a second call finds nothing to do.
        let before = db.dump();
        mark_lease_expired_if_due(&mut db, EXEC, EXPIRES + 1).unwrap();
        assert_eq!(before, db.dump());
    }

    // ---- list_expired_leases ----

    fn list_args(as_of: i64, limit: u32) -> ListExpiredLeasesArgs {
        ListExpiredLeasesArgs {
            as_of,
            after: None,
            limit,
            namespace: None,
        }
    }

    const A: &str = "{fp:0}:aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "{fp:0}:bbbbbbbb-0000-4000-8000-000000000002";
    const C: &str = "{fp:1}:0ccccccc-0000-4000-8000-000000000003";

    /// Three leases expiring at NOW + TTL (A, B) and NOW + TTL + 5 (C, partition 1).
    fn three_leases() -> TestDb {
        let mut db = TestDb::new();
        for id in [A, B] {
            db.claim(id);
        }
        db.seed_runnable(C);
        db.exec("UPDATE ff_exec_core SET partition_key = 1 WHERE hex(execution_id) LIKE '0CCC%'");
        db.exec(&format!(
            "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased', \
                 eligibility_state = 'not_applicable', public_state = 'running', attempt_state = 'running_attempt', \
                 raw_fields = json_set(raw_fields, '$.namespace', 'other') WHERE partition_key = 1;
             INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_instance_id, lease_epoch, \
                 lease_expires_at_ms) SELECT 1, execution_id, 0, 'wi-c', 1, {} FROM ff_exec_core WHERE partition_key = 1",
            EXPIRES + 5
        ));
        db
    }

    fn ids(leases: &[ExpiredLease]) -> Vec<&str> {
        leases
            .iter()
            .map(|lease| lease.execution_id.as_str())
            .collect()
    }

    #[test]
    fn lists_current_expired_leases_oldest_first_then_by_id() {
        let mut db = three_leases();
        let before = db.dump();
        let all = list_expired_leases(&mut db, &list_args(EXPIRES + 5, 100)).unwrap();
        assert_eq!(ids(&all), [A, B, C]);
        assert_eq!(
            all[0],
            ExpiredLease {
                execution_id: A.into(),
                lease_id: LEASE.into(),
                lease_epoch: 1,
                worker_instance_id: "wi-1".into(),
                expires_at: EXPIRES,
                attempt_index: 0,
            }
        );
        assert_eq!(before, db.dump(), "read-only");

        assert_eq!(
            ids(&list_expired_leases(&mut db, &list_args(EXPIRES + 4, 100)).unwrap()),
            [A, B]
        );
        assert!(
            list_expired_leases(&mut db, &list_args(EXPIRES - 1, 100))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(&list_expired_leases(&mut db, &list_args(EXPIRES + 5, 1)).unwrap()),
            [A]
        );
    }

    #[test]
    fn the_cursor_is_strictly_after_and_accepts_any_id_spelling() {
        let mut db = three_leases();
        let mut args = list_args(EXPIRES + 5, 100);
        args.after = Some(ExpiredLeaseCursor {
            expires_at: EXPIRES,
            execution_id: A.to_uppercase().replace("{FP:", "{fp:"),
        });
        assert_eq!(ids(&list_expired_leases(&mut db, &args).unwrap()), [B, C]);
        args.after = Some(ExpiredLeaseCursor {
            expires_at: EXPIRES,
            execution_id: B.into(),
        });
        assert_eq!(ids(&list_expired_leases(&mut db, &args).unwrap()), [C]);
        args.after = Some(ExpiredLeaseCursor {
            expires_at: EXPIRES + 5,
            execution_id: C.into(),
        });
        assert!(list_expired_leases(&mut db, &args).unwrap().is_empty());
        args.after = Some(ExpiredLeaseCursor {
            expires_at: EXPIRES,
            execution_id: "garbage".into(),
        });
        assert!(matches!(
            list_expired_leases(&mut db, &args),
            Err(EngineError::Validation(v)) if v.kind == ValidationKind::InvalidInput
        ));
    }

    #[test]
    fn the_namespace_filter_uses_the_executions_namespace() {
        let mut db = three_leases();
        let mut args = list_args(EXPIRES + 5, 100);
        args.namespace = Some("other".into());
        assert_eq!(ids(&list_expired_leases(&mut db, &args).unwrap()), [C]);
        args.namespace = Some("ns".into());
        assert_eq!(ids(&list_expired_leases(&mut db, &args).unwrap()), [A, B]);
    }

    #[test]
    fn only_current_attempts_of_leased_executions_with_an_instance_are_listed() {
        let mut db = three_leases();
        db.exec(
            "UPDATE ff_exec_core SET ownership_state = 'lease_expired_reclaimable' WHERE hex(execution_id) LIKE 'AAAA%';
             UPDATE ff_attempt SET worker_instance_id = '' WHERE hex(execution_id) LIKE 'BBBB%';
             UPDATE ff_exec_core SET attempt_index = 1 WHERE partition_key = 1",
        );
        assert!(
            list_expired_leases(&mut db, &list_args(EXPIRES + 5, 100))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_execution_id_that_is_not_16_bytes_is_corruption() {
        let mut db = three_leases();
        db.exec(
            "UPDATE ff_attempt SET execution_id = X'0CCC' WHERE partition_key = 1;
             UPDATE ff_exec_core SET execution_id = X'0CCC' WHERE partition_key = 1",
        );
        assert!(matches!(
            list_expired_leases(&mut db, &list_args(EXPIRES + 5, 100)),
            Err(EngineError::Validation(v)) if v.kind == ValidationKind::Corruption
        ));
    }

    #[test]
    fn leases_without_a_stored_id_get_upstreams_synthetic_id() {
        let mut db = three_leases();
        let listed = list_expired_leases(&mut db, &list_args(EXPIRES + 5, 100)).unwrap();
        // C: uuid 0ccccccc-0000-4000-8000-000000000003, attempt 0, epoch 1 → byte 7 ^= 1.
        assert_eq!(listed[2].lease_id, "0ccccccc-0000-4001-8000-000000000003");
        assert_eq!(
            synthetic_lease_id(uuid::Uuid::nil(), 1, 2),
            "00000000-0000-0002-0000-000100000000"
        );
        assert_eq!(
            synthetic_lease_id(uuid::Uuid::nil(), -1, -1),
            "ffffffff-ffff-ffff-ffff-ffff00000000"
        );
    }
}
