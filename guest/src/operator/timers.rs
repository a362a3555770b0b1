//! What the host's maintenance timers read before they act: `due-expirations` (for
//! `expire-execution`) and `retention-targets` (for `trim-retention`). Both read-only.

use crate::bindings::operator::{DueExpiration, ExpirePhase, RetentionTarget};
use crate::db::{Db, Row, int};
use crate::errors::storage;
use crate::ids::ExecutionRef;
use crate::types::EngineError;

/// Executions whose deadline or attempt timeout is due at `now`, at most `limit`, deadlines
/// first.
pub fn due_expirations(
    db: &mut impl Db,
    now: i64,
    limit: u32,
) -> Result<Vec<DueExpiration>, EngineError> {
    let mut due = Vec::new();
    let phases = [
        (
            ExpirePhase::ExecutionDeadline,
            "SELECT partition_key, execution_id FROM ff_exec_core \
             WHERE deadline_at_ms IS NOT NULL AND deadline_at_ms <= ?1 \
               AND lifecycle_phase NOT IN ('terminal', 'cancelled') LIMIT ?2",
        ),
        (
            ExpirePhase::AttemptTimeout,
            "SELECT e.partition_key, e.execution_id FROM ff_attempt AS a \
                 JOIN ff_exec_core AS e ON e.partition_key = a.partition_key \
                     AND e.execution_id = a.execution_id AND e.attempt_index = a.attempt_index \
             WHERE a.lease_expires_at_ms IS NOT NULL AND e.lifecycle_phase = 'active' \
               AND a.started_at_ms IS NOT NULL AND json_valid(e.policy) \
               AND json_type(e.policy, '$.timeout_policy.attempt_timeout_ms') = 'integer' \
               AND a.started_at_ms + json_extract(e.policy, '$.timeout_policy.attempt_timeout_ms') <= ?1 \
             LIMIT ?2",
        ),
    ];
    for (phase, statement) in phases {
        let room = i64::from(limit) - due.len() as i64;
        if room <= 0 {
            break;
        }
        let rows = db
            .query(statement, &[int(now), int(room)])
            .map_err(storage)?;
        for row in rows.into_iter().map(Row) {
            let partition = row.integer(0).and_then(|p| u16::try_from(p).ok());
            let blob = row.blob(1);
            if let (Some(partition), Some(blob)) = (partition, blob)
                && let Some(id) = ExecutionRef::from_stored(partition, &blob)
            {
                due.push(DueExpiration {
                    execution_id: id.canonical(),
                    phase,
                });
            }
        }
    }
    Ok(due)
}

/// Distinct (partition, lane) pairs with a terminal execution finished by `cutoff`, at most
/// `limit`.
pub fn retention_targets(
    db: &mut impl Db,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<RetentionTarget>, EngineError> {
    let rows = db
        .query(
            "SELECT DISTINCT partition_key, lane_id FROM ff_exec_core \
             WHERE lifecycle_phase IN ('terminal', 'cancelled') \
               AND terminal_at_ms IS NOT NULL AND terminal_at_ms <= ?1 LIMIT ?2",
            &[int(cutoff), int(limit)],
        )
        .map_err(storage)?;
    Ok(rows
        .into_iter()
        .map(Row)
        .filter_map(|row| {
            Some(RetentionTarget {
                partition: u16::try_from(row.integer(0)?).ok()?,
                lane_id: row.text(1)?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb};

    #[test]
    fn due_expirations_name_passed_deadlines_and_outlived_attempts() {
        let mut db = TestDb::leased();
        assert!(
            due_expirations(&mut db, NOW + 1_000_000, 10)
                .unwrap()
                .is_empty()
        );
        db.exec(
            "UPDATE ff_exec_core SET policy = '{\"timeout_policy\":{\"attempt_timeout_ms\":100}}'",
        );
        let started: i64 = db
            .one("SELECT started_at_ms FROM ff_attempt")
            .parse()
            .unwrap();
        assert!(
            due_expirations(&mut db, started + 99, 10)
                .unwrap()
                .is_empty()
        );
        let due = due_expirations(&mut db, started + 100, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].execution_id.as_str(), due[0].phase),
            (EXEC, ExpirePhase::AttemptTimeout)
        );
        db.exec(&format!(
            "UPDATE ff_exec_core SET deadline_at_ms = {}",
            started + 50
        ));
        let due = due_expirations(&mut db, started + 100, 1).unwrap();
        assert_eq!(due.len(), 1, "the limit holds");
        assert_eq!(due[0].phase, ExpirePhase::ExecutionDeadline);
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal'");
        assert!(
            due_expirations(&mut db, started + 100, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn retention_targets_are_the_lanes_with_old_terminal_executions() {
        let mut db = TestDb::runnable();
        assert!(retention_targets(&mut db, NOW, 10).unwrap().is_empty());
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal', terminal_at_ms = 5");
        assert!(retention_targets(&mut db, 4, 10).unwrap().is_empty());
        let targets = retention_targets(&mut db, 5, 10).unwrap();
        assert_eq!(
            targets
                .iter()
                .map(|t| (t.partition, t.lane_id.as_str()))
                .collect::<Vec<_>>(),
            vec![(0, "default")]
        );
    }
}
