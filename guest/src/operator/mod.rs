//! The `operator` interface: `change-priority`, `read-exec-core-fields`, `list-lanes`,
//! `server-time-ms`; `replay-execution` ([`replay`]), `list-executions` ([`listing`]), and the
//! scanner hooks `expire-execution` ([`expire`]), `reconcile-execution-index` and
//! `trim-retention` ([`retention`]), and what the host's timers read first ([`timers`]).
//!
//! ## `change-priority` ([`change_priority`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 2 | the execution exists | `NotFound(execution)` |
//! | 3 | `lifecycle_phase = 'runnable'` and `eligibility_state = 'eligible_now'` | `Contention(ExecutionNotEligible)` |
//!
//! Writes `priority = clamp(new_priority, 0, 9000)`, `raw_fields.last_mutation_at = now`, and
//! one `ff_operator_event` row (`priority_changed`, details `{"new_priority":p,"old_priority":o}`,
//! the execution's namespace and instance tag).
//!
//! ## `read-exec-core-fields` ([`read_exec_core_fields`])
//!
//! Read-only; one value per requested name, in order ([`projection`] lists the names). A
//! missing execution gives `None` for every name. `flow_id` is the hyphenated UUID (upstream
//! SQLite returned the BLOB's bytes); `required_capabilities` is sorted and comma-joined.
//!
//! ## `list-lanes` ([`list_lanes`])
//!
//! Read-only. `ff_lane_registry` lanes after `after` (exclusive, byte order, served by its
//! primary key), at most `limit` (`0` → an empty page); `limit + 1` are read so that
//! `next_cursor` is set only when more follow. A stored lane breaking ff-core's `LaneId` rules
//! is `Validation(Corruption)`.
//!
//! ## `server-time-ms` ([`server_time_ms`])
//!
//! SQLite's `julianday('now')` in Unix milliseconds; a negative value is `Validation(Corruption)`.

pub mod expire;
pub mod listing;
pub mod replay;
pub mod retention;
pub mod timers;

use crate::bindings::operator::{ChangePriorityArgs, LanePage};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{contention, corruption, storage};
use crate::exec::Exec;
use crate::ids::{ExecutionRef, validate_lane_id};
use crate::types::{ContentionKind, EngineError};

/// The highest priority `change-priority` stores (upstream's clamp).
pub const MAX_PRIORITY: i32 = 9000;

/// Change a runnable, eligible execution's priority; see the module docs.
pub fn change_priority(db: &mut impl Db, args: &ChangePriorityArgs) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "runnable" || exec.eligibility_state != "eligible_now" {
        return Err(contention(ContentionKind::ExecutionNotEligible));
    }
    let old = db
        .first_row(
            "SELECT priority FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .and_then(|row| row.integer(0))
        .ok_or_else(|| corruption("change_priority: unreadable priority"))?;
    let new = args.new_priority.clamp(0, MAX_PRIORITY);
    let mut params = id.key().to_vec();
    params.extend([int(new), int(args.now)]);
    db.run(
        "UPDATE ff_exec_core SET priority = ?3, \
             raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?4 AS TEXT)) \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &params,
    )?;
    record_operator_event(
        db,
        &exec,
        "priority_changed",
        &format!("{{\"new_priority\":{new},\"old_priority\":{old}}}"),
        args.now,
    )
}

/// Append one `ff_operator_event` row for `exec` (`details` is JSON text), with the namespace
/// and instance tag it was loaded with.
pub fn record_operator_event(
    db: &mut impl Db,
    exec: &Exec,
    event_type: &str,
    details: &str,
    now: i64,
) -> Result<(), EngineError> {
    db.run(
        "INSERT INTO ff_operator_event (execution_id, event_type, details, occurred_at_ms, \
             partition_key, namespace, instance_tag) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            exec.id.bare_text(),
            text(event_type),
            text(details),
            int(now),
            exec.id.partition(),
            exec.outbox.namespace.clone(),
            exec.outbox.instance_tag.clone(),
        ],
    )?;
    Ok(())
}

/// The SQL expression (over `ff_exec_core AS e`) a field name reads; `None` for names that read
/// nothing.
pub fn projection(name: &str) -> Option<&'static str> {
    Some(match name {
        "lane_id" => "e.lane_id",
        "lifecycle_phase" => "e.lifecycle_phase",
        "ownership_state" => "e.ownership_state",
        "eligibility_state" => "e.eligibility_state",
        "public_state" => "e.public_state",
        "attempt_state" => "e.attempt_state",
        "blocking_reason" => "e.blocking_reason",
        "cancellation_reason" | "cancel_reason" => "e.cancellation_reason",
        "cancelled_by" => "e.cancelled_by",
        "attempt_index" | "current_attempt_index" => "CAST(e.attempt_index AS TEXT)",
        "priority" => "CAST(e.priority AS TEXT)",
        "created_at_ms" => "CAST(e.created_at_ms AS TEXT)",
        "terminal_at_ms" | "completed_at" => "CAST(e.terminal_at_ms AS TEXT)",
        "deadline_at_ms" => "CAST(e.deadline_at_ms AS TEXT)",
        "flow_id" => {
            "CASE WHEN e.flow_id IS NULL THEN NULL ELSE lower(substr(hex(e.flow_id), 1, 8) || '-' || \
             substr(hex(e.flow_id), 9, 4) || '-' || substr(hex(e.flow_id), 13, 4) || '-' || \
             substr(hex(e.flow_id), 17, 4) || '-' || substr(hex(e.flow_id), 21)) END"
        }
        "required_capabilities" => {
            "(SELECT group_concat(capability, ',') FROM (SELECT c.capability FROM ff_execution_capabilities AS c \
             WHERE c.execution_id = e.execution_id AND c.capability <> '' ORDER BY c.capability))"
        }
        "current_waitpoint_id" => {
            "CAST(json_extract(e.raw_fields, '$.current_waitpoint_id') AS TEXT)"
        }
        "current_worker_instance_id" => {
            "CAST(json_extract(e.raw_fields, '$.current_worker_instance_id') AS TEXT)"
        }
        "budget_ids" => "CAST(json_extract(e.raw_fields, '$.budget_ids') AS TEXT)",
        "quota_policy_id" => "CAST(json_extract(e.raw_fields, '$.quota_policy_id') AS TEXT)",
        _ => return None,
    })
}

/// The requested fields of an execution; see the module docs.
pub fn read_exec_core_fields(
    db: &mut impl Db,
    execution_id: &str,
    fields: &[String],
) -> Result<Vec<Option<String>>, EngineError> {
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let id = ExecutionRef::parse(execution_id)?;
    let columns: Vec<&str> = fields
        .iter()
        .map(|name| projection(name).unwrap_or("NULL"))
        .collect();
    let statement = format!(
        "SELECT {} FROM ff_exec_core AS e WHERE e.partition_key = ?1 AND e.execution_id = ?2",
        columns.join(", ")
    );
    let Some(row) = db.first_row(&statement, &id.key())? else {
        return Ok(vec![None; fields.len()]);
    };
    Ok((0..fields.len()).map(|i| row.text(i)).collect())
}

/// One page of lanes; see the module docs.
pub fn list_lanes(
    db: &mut impl Db,
    after: Option<&str>,
    limit: u32,
) -> Result<LanePage, EngineError> {
    if limit == 0 {
        return Ok(LanePage {
            lanes: Vec::new(),
            next_cursor: None,
        });
    }
    let rows = db
        .query(
            // No cursor: after `''`, which sorts before every valid (non-empty) lane id.
            "SELECT lane_id FROM ff_lane_registry WHERE lane_id > ?1 ORDER BY lane_id LIMIT ?2",
            &[text(after.unwrap_or("")), int(i64::from(limit) + 1)],
        )
        .map_err(storage)?;
    let more = rows.len() > limit as usize;
    let mut lanes = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.into_iter().take(limit as usize) {
        let lane = crate::db::Row(row)
            .text(0)
            .ok_or_else(|| corruption("list_lanes: ff_lane_registry: lane_id is not text"))?;
        validate_lane_id(&lane).map_err(|_| {
            corruption(format!(
                "list_lanes: ff_lane_registry: lane_id {lane:?} is not a valid LaneId"
            ))
        })?;
        lanes.push(lane);
    }
    let next_cursor = if more { lanes.last().cloned() } else { None };
    Ok(LanePage { lanes, next_cursor })
}

/// The database clock; see the module docs.
pub fn server_time_ms(db: &mut impl Db) -> Result<i64, EngineError> {
    let rows = db
        .query(
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            &[],
        )
        .map_err(storage)?;
    let now = rows
        .into_iter()
        .next()
        .and_then(|row| crate::db::Row(row).integer(0))
        .ok_or_else(|| corruption("server_time_ms: no clock value"))?;
    if now < 0 {
        return Err(corruption("server_time_ms: negative epoch"));
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb};
    use crate::types::Entity;

    fn args(priority: i32) -> ChangePriorityArgs {
        ChangePriorityArgs {
            execution_id: EXEC.into(),
            new_priority: priority,
            now: NOW,
        }
    }

    #[test]
    fn change_priority_clamps_stamps_and_records_an_event() {
        let mut db = TestDb::runnable();
        change_priority(&mut db, &args(42)).unwrap();
        change_priority(&mut db, &args(100_000)).unwrap();
        change_priority(&mut db, &args(-5)).unwrap();
        assert_eq!(
            db.one("SELECT priority || '|' || json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core"),
            format!("0|{NOW}")
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(execution_id || '|' || event_type || '|' || details || '|' || occurred_at_ms || \
                 '|' || partition_key || '|' || namespace || '|' || instance_tag, ';') FROM ff_operator_event"
            ),
            [
                "{\"new_priority\":42,\"old_priority\":0}",
                "{\"new_priority\":9000,\"old_priority\":42}",
                "{\"new_priority\":0,\"old_priority\":9000}",
            ]
            .map(|d| format!("53ad96d2-6b08-4d0c-86e3-36598db2291c|priority_changed|{d}|{NOW}|0|ns|inst"))
            .join(";")
        );
    }

    #[test]
    fn change_priority_refuses_what_is_not_eligible_and_writes_nothing() {
        let mut db = TestDb::new();
        let err = db.fails_unchanged(|db| change_priority(db, &args(1)));
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
        db.seed_runnable(EXEC);
        for assignment in [
            "eligibility_state = 'not_eligible_until_time'",
            "lifecycle_phase = 'active', eligibility_state = 'not_applicable'",
        ] {
            db.exec(&format!("UPDATE ff_exec_core SET {assignment}"));
            let err = db.fails_unchanged(|db| change_priority(db, &args(1)));
            assert_eq!(err, contention(ContentionKind::ExecutionNotEligible));
        }
    }

    #[test]
    fn read_fields_in_order_with_unknown_names_and_missing_executions_as_none() {
        let mut db = TestDb::runnable();
        db.exec(&format!(
            "UPDATE ff_exec_core SET flow_id = X'0123456789abcdef0123456789abcdef', \
             raw_fields = json_set(raw_fields, '$.current_worker_instance_id', 'wi-9'); \
             INSERT INTO ff_execution_capabilities VALUES (X'{}', 'zeta'), (X'{}', 'alpha,beta');",
            crate::testing::hex(EXEC),
            crate::testing::hex(EXEC)
        ));
        let names: Vec<String> = [
            "lane_id",
            "flow_id",
            "required_capabilities",
            "current_attempt_index",
            "nonsense",
            "current_worker_instance_id",
            "terminal_at_ms",
            "priority",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            read_exec_core_fields(&mut db, EXEC, &names).unwrap(),
            vec![
                Some("default".into()),
                Some("01234567-89ab-cdef-0123-456789abcdef".into()),
                Some("alpha,beta,zeta".into()),
                Some("0".into()),
                None,
                Some("wi-9".into()),
                None,
                Some("0".into()),
            ]
        );
        assert!(
            read_exec_core_fields(&mut db, EXEC, &[])
                .unwrap()
                .is_empty()
        );
        let mut empty = TestDb::new();
        assert_eq!(
            read_exec_core_fields(&mut empty, EXEC, &names[..2]).unwrap(),
            vec![None, None]
        );
    }

    #[test]
    fn lanes_page_in_byte_order_with_a_cursor_only_when_more_follow() {
        let mut db = TestDb::new();
        db.exec(
            "INSERT INTO ff_lane_registry VALUES ('b', 1, 't'), ('a', 1, 't'), ('c', 1, 't'), ('B', 1, 't')",
        );
        let page = list_lanes(&mut db, None, 2).unwrap();
        assert_eq!(
            (page.lanes, page.next_cursor.as_deref()),
            (vec!["B".to_string(), "a".to_string()], Some("a"))
        );
        let page = list_lanes(&mut db, Some("a"), 2).unwrap();
        assert_eq!(
            (page.lanes, page.next_cursor),
            (vec!["b".to_string(), "c".to_string()], None)
        );
        assert!(list_lanes(&mut db, None, 0).unwrap().lanes.is_empty());
        let mut recording = crate::testing::Recording {
            db: &mut db,
            statements: Vec::new(),
        };
        list_lanes(&mut recording, Some("a"), 5).unwrap();
        assert_eq!(recording.unindexed_steps(), Vec::<String>::new());
    }

    #[test]
    fn a_stored_lane_that_is_not_a_lane_id_is_corruption() {
        let mut db = TestDb::new();
        db.exec("INSERT INTO ff_lane_registry VALUES ('bad\tlane', 1, 't')");
        let err = list_lanes(&mut db, None, 10).unwrap_err();
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == crate::types::ValidationKind::Corruption),
            "{err:?}"
        );
    }

    #[test]
    fn the_server_clock_is_the_databases() {
        let mut db = TestDb::new();
        let now = server_time_ms(&mut db).unwrap();
        // 2020-09-13 .. 2286: the clock is a plausible Unix time in milliseconds.
        assert!(
            (1_600_000_000_000..10_000_000_000_000).contains(&now),
            "{now}"
        );
    }
}
