//! The `reads` interface: what the read operations report.
//!
//! One query gathers everything the host's read methods need (`describe_execution`,
//! `read_execution_state`, `read_execution_info`, `read_current_attempt_index`,
//! `read_total_attempt_count`). State literals are normalized to ff-core's serde names here, so
//! that rows written by upstream (or seeded by its tests) read the same as ours:
//!
//! | column | stored | reported |
//! |---|---|---|
//! | lifecycle_phase | `cancelled`, `terminal` / `pending`, `runnable`, `eligible`, `blocked` | `terminal` / `runnable` |
//! | ownership_state | `released`, `unowned` | `unowned` |
//! | eligibility_state | `cancelled` / `pending_claim` | `not_applicable` / `eligible_now` |
//! | attempt_state | `pending`, `pending_claim`, `initial` / `running` / `cancelled` | `pending_first_attempt` / `running_attempt` / `attempt_terminal` |
//! | public_state | `running`, `claimed` / `pending` | `active` / `waiting` |
//! | blocking_reason | `NULL`, empty, `none` | absent (`None`: ff-core's `none`) |
//! | `raw_fields.blocking_detail` | `NULL`, empty | absent (`None`) |
//! | terminal outcome | not terminal, or no outcome ff-core knows (`raw_fields.terminal_outcome`, else the current attempt's `outcome`) / lifecycle `cancelled` | absent (`None`: ff-core's `none`) / `cancelled` |
//!
//! Anything else passes through; the host refuses values ff-core does not know as
//! `Validation { kind: Corruption }`.

mod literals;

use crate::bindings::reads::{ExecutionContext, ExecutionView, LeaseSummary};
use crate::db::{Db, DbExt, Row};
use crate::errors::storage;
use crate::exec::clamp_u32;
use crate::ids::ExecutionRef;
use crate::types::EngineError;
use literals::{
    normalize_attempt_state, normalize_eligibility, normalize_lifecycle, normalize_ownership,
    normalize_public, terminal_outcome,
};

/// Everything reads report about an execution, or `None` when it does not exist.
pub fn read_execution(
    db: &mut impl Db,
    execution_id: &str,
    _now: i64,
) -> Result<Option<ExecutionView>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(row) = db.first_row(
        "SELECT c.lane_id, json_extract(c.raw_fields, '$.namespace'), \
             json_extract(c.raw_fields, '$.execution_kind'), c.priority, c.lifecycle_phase, \
             c.ownership_state, c.eligibility_state, c.public_state, c.attempt_state, c.blocking_reason, \
             json_extract(c.raw_fields, '$.blocking_detail'), json_extract(c.raw_fields, '$.terminal_outcome'), \
             c.attempt_index, c.created_at_ms, c.started_at_ms, c.terminal_at_ms, \
             CAST(json_extract(c.raw_fields, '$.last_mutation_at') AS INTEGER), \
             COALESCE(CAST(json_extract(c.raw_fields, '$.total_attempt_count') AS INTEGER), \
                 (SELECT COALESCE(MAX(x.attempt_index) + 1, 0) FROM ff_attempt x \
                  WHERE x.partition_key = c.partition_key AND x.execution_id = c.execution_id)), \
             lower(hex(c.flow_id)), \
             a.worker_instance_id, a.lease_epoch, a.lease_expires_at_ms, \
             json_extract(a.raw_fields, '$.lease_id'), \
             COALESCE(json_extract(a.raw_fields, '$.attempt_id'), json_extract(c.raw_fields, '$.current_attempt_id')), \
             a.outcome \
         FROM ff_exec_core c LEFT JOIN ff_attempt a ON a.partition_key = c.partition_key \
             AND a.execution_id = c.execution_id AND a.attempt_index = c.attempt_index \
         WHERE c.partition_key = ?1 AND c.execution_id = ?2",
        &id.key(),
    )?
    else {
        return Ok(None);
    };

    let raw_lifecycle = row.text_or_empty(4);
    let lifecycle_phase = normalize_lifecycle(&raw_lifecycle);
    let ownership_state = normalize_ownership(&row.text_or_empty(5));
    let terminal_outcome =
        terminal_outcome(&raw_lifecycle, lifecycle_phase, row.text(11), row.text(24));
    let attempt_index = clamp_u32(row.integer(12).unwrap_or(0));
    let created_at = row.integer(13).unwrap_or(0);

    Ok(Some(ExecutionView {
        lane_id: row.text_or_empty(0),
        namespace: row.text_or_empty(1),
        execution_kind: row.text_or_empty(2),
        priority: row.integer(3).unwrap_or(0),
        lifecycle_phase: lifecycle_phase.to_owned(),
        current_lease: current_lease(&row, &ownership_state, attempt_index),
        ownership_state,
        eligibility_state: normalize_eligibility(&row.text_or_empty(6)),
        public_state: normalize_public(&row.text_or_empty(7)),
        attempt_state: normalize_attempt_state(&row.text_or_empty(8)),
        blocking_reason: row
            .text(9)
            .filter(|reason| !reason.is_empty() && reason != "none"),
        blocking_detail: row.text(10).filter(|detail| !detail.is_empty()),
        terminal_outcome,
        attempt_index,
        attempt_id: row.text(23).filter(|id| !id.is_empty()),
        created_at,
        started_at: row.integer(14),
        completed_at: row.integer(15),
        last_mutation_at: row.integer(16).unwrap_or(created_at),
        total_attempt_count: clamp_u32(row.integer(17).unwrap_or(0)),
        flow_id: row
            .text(18)
            .filter(|hex| hex.len() == 32)
            .map(|hex| hyphenate(&hex)),
        tags: read_tags(db, &id)?,
    }))
}

/// The stored result, or `None` when the execution does not exist or has no result yet.
pub fn get_execution_result(
    db: &mut impl Db,
    execution_id: &str,
) -> Result<Option<Vec<u8>>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let row = db.first_row(
        "SELECT result FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    Ok(row.and_then(|row| row.blob(0)))
}

/// Payload, kind and string-valued tags, or `None` when the execution does not exist.
pub fn read_execution_context(
    db: &mut impl Db,
    execution_id: &str,
) -> Result<Option<ExecutionContext>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(row) = db.first_row(
        "SELECT payload, json_extract(raw_fields, '$.execution_kind') FROM ff_exec_core \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(ExecutionContext {
        input_payload: row.blob(0).unwrap_or_default(),
        execution_kind: row.text_or_empty(1),
        tags: read_tags(db, &id)?,
    }))
}

/// The database answers a trivial query.
pub fn ping(db: &mut impl Db) -> Result<(), EngineError> {
    db.first_row("SELECT 1", &[])?;
    Ok(())
}

/// String-valued entries of `raw_fields.tags`, sorted by key (other value types are dropped).
fn read_tags(db: &mut impl Db, id: &ExecutionRef) -> Result<Vec<(String, String)>, EngineError> {
    let rows = db
        .query(
            "SELECT t.key, t.value FROM ff_exec_core c, json_each(c.raw_fields, '$.tags') t \
             WHERE c.partition_key = ?1 AND c.execution_id = ?2 AND t.type = 'text' ORDER BY t.key",
            &id.key(),
        )
        .map_err(storage)?;
    Ok(rows
        .into_iter()
        .map(Row)
        .map(|row| (row.text_or_empty(0), row.text_or_empty(1)))
        .collect())
}

/// The current attempt's lease, when the execution is leased (or its lease lapsed unreclaimed)
/// and the attempt recorded its lease id.
fn current_lease(row: &Row, ownership_state: &str, attempt_index: u32) -> Option<LeaseSummary> {
    if !matches!(ownership_state, "leased" | "lease_expired_reclaimable") {
        return None;
    }
    Some(LeaseSummary {
        worker_instance_id: row.text(19).filter(|wi| !wi.is_empty())?,
        lease_epoch: u64::try_from(row.integer(20)?).ok()?,
        expires_at: row.integer(21).unwrap_or(0),
        lease_id: row.text(22).filter(|id| !id.is_empty())?,
        attempt_index,
    })
}

/// 32 hex digits as a hyphenated UUID.
fn hyphenate(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::claim_execution;
    use crate::testing::{EXEC, NOW, TestDb, claim_args};

    #[test]
    fn missing_execution_reads_as_none() {
        let mut db = TestDb::new();
        assert!(read_execution(&mut db, EXEC, NOW).unwrap().is_none());
        assert!(get_execution_result(&mut db, EXEC).unwrap().is_none());
        assert!(read_execution_context(&mut db, EXEC).unwrap().is_none());
    }

    #[test]
    fn upstream_literals_are_normalized() {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        db.exec(
            "UPDATE ff_exec_core SET lifecycle_phase = 'cancelled', ownership_state = 'released', \
             eligibility_state = 'cancelled', attempt_state = 'cancelled', public_state = 'running', blocking_reason = ''",
        );
        let view = read_execution(&mut db, EXEC, NOW).unwrap().unwrap();
        assert_eq!(
            (
                view.lifecycle_phase.as_str(),
                view.ownership_state.as_str(),
                view.eligibility_state.as_str(),
                view.attempt_state.as_str(),
                view.public_state.as_str(),
                view.blocking_reason.as_deref(),
                view.terminal_outcome.as_deref()
            ),
            (
                "terminal",
                "unowned",
                "not_applicable",
                "attempt_terminal",
                "active",
                None,
                Some("cancelled")
            )
        );
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'pending', public_state = 'pending', attempt_state = 'initial'");
        let view = read_execution(&mut db, EXEC, NOW).unwrap().unwrap();
        assert_eq!(
            (
                view.lifecycle_phase.as_str(),
                view.public_state.as_str(),
                view.attempt_state.as_str()
            ),
            ("runnable", "waiting", "pending_first_attempt")
        );
    }

    #[test]
    fn a_claimed_execution_reports_its_lease_tags_and_context() {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        db.seed_grant(EXEC, "worker-1", NOW + 60_000);
        db.exec("UPDATE ff_exec_core SET payload = X'0102', raw_fields = json_set(raw_fields, '$.execution_kind', 'kind1', '$.tags.zeta', 'z', '$.tags.num', 5)");
        claim_execution(&mut db, &claim_args(EXEC)).unwrap();
        let view = read_execution(&mut db, EXEC, NOW).unwrap().unwrap();
        assert_eq!(view.public_state, "active");
        assert_eq!(view.namespace, "ns");
        assert_eq!(view.total_attempt_count, 1);
        assert_eq!(view.started_at, Some(NOW));
        assert_eq!(view.last_mutation_at, NOW);
        assert_eq!(
            view.attempt_id.as_deref(),
            Some("22222222-2222-4222-8222-222222222222")
        );
        let lease = view.current_lease.expect("leased");
        assert_eq!(
            (
                lease.lease_id.as_str(),
                lease.lease_epoch,
                lease.worker_instance_id.as_str(),
                lease.expires_at
            ),
            (
                "11111111-1111-4111-8111-111111111111",
                1,
                "wi-1",
                NOW + 30_000
            )
        );
        assert_eq!(
            view.tags,
            [
                ("cairn.instance_id".to_string(), "inst".to_string()),
                ("zeta".into(), "z".into())
            ]
        );

        let context = read_execution_context(&mut db, EXEC).unwrap().unwrap();
        assert_eq!(
            (context.input_payload, context.execution_kind.as_str()),
            (vec![1, 2], "kind1")
        );
        assert_eq!(context.tags.len(), 2, "the numeric tag is dropped");
    }

    #[test]
    fn results_and_terminal_outcomes() {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        assert_eq!(get_execution_result(&mut db, EXEC).unwrap(), None);
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal', result = X'FF', flow_id = X'00112233445566778899AABBCCDDEEFF'");
        assert_eq!(
            get_execution_result(&mut db, EXEC).unwrap(),
            Some(vec![0xFF])
        );
        let view = read_execution(&mut db, EXEC, NOW).unwrap().unwrap();
        assert_eq!(
            view.terminal_outcome, None,
            "no recorded outcome and no attempt"
        );
        assert_eq!(
            view.flow_id.as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
        db.exec("UPDATE ff_exec_core SET raw_fields = json_set(raw_fields, '$.terminal_outcome', 'success')");
        assert_eq!(
            read_execution(&mut db, EXEC, NOW)
                .unwrap()
                .unwrap()
                .terminal_outcome
                .as_deref(),
            Some("success")
        );
    }

    #[test]
    fn ping_answers() {
        ping(&mut TestDb::new()).unwrap();
    }
}
