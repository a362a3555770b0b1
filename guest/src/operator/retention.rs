//! The retention and index scanner hooks: `trim-retention` and `reconcile-execution-index`.
//!
//! ## `trim-retention` ([`trim_retention`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `lane_id` is a valid lane id | `Validation(InvalidInput)` |
//! | 2 | a filter tag key is a valid tag key (ff-core's `validate_tag_key`) | `Validation(InvalidInput)` |
//!
//! Postgres' semantics: `cutoff = now - retention_ms` (saturating); up to `batch_size` executions
//! of the partition and lane that are terminal with `terminal_at_ms <= cutoff` and match the
//! filter, oldest first (at most [`MAX_TRIM_BATCH`] per call), are purged with every row keyed by them, each table bound in the
//! form it stores the id in ([`PURGED`]). Returns how many executions were purged. A flow
//! member's edges and edge group stay: the flow owns them.
//!
//! ## `reconcile-execution-index` ([`reconcile_execution_index`])
//!
//! SQLite maintains every index itself, so nothing the claim path reads can drift (the reason
//! ff-core gives for SQL backends). The one derived registry is `ff_lane_registry`, which
//! `list-lanes` reads and which only `create-execution` writes: each given lane with an
//! execution in the partition matching the filter but no registry row is registered again.
//! `processed` counts them; `errors` is always zero.

use crate::bindings::operator::{ExecutionFilter, ReconcileCounts, TrimRetentionArgs};
use crate::db::{Db, DbExt, Row, int, text};
use crate::errors::storage;
use crate::ids::{ExecutionRef, validate_lane_id};
use crate::sql::Value;
use crate::tags::{tag_path, validate_tag_key};
use crate::types::EngineError;

/// The most executions one `trim-retention` call purges, whatever `batch_size` asks: each
/// purge statement binds every id (twice for text tables), well under SQLite's parameter limit.
pub const MAX_TRIM_BATCH: u32 = 1000;

/// How an id is bound when purging a table.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// The 16-byte UUID, with the execution's partition.
    Blob,
    /// The 16-byte UUID, no partition column.
    BlobAnyPartition,
    /// The bare UUID text, with the execution's partition.
    BareText,
    /// The full `{fp:N}:<uuid>` or the bare UUID text (budget, quota and flow-cancel tables
    /// live on their own partitions).
    AnyText,
}

/// Every table holding rows of an execution, and how its `execution_id` is bound;
/// `ff_exec_core` goes last.
const PURGED: [(&str, Key); 19] = [
    ("ff_attempt", Key::Blob),
    ("ff_claim_grant", Key::Blob),
    ("ff_completion_event", Key::Blob),
    ("ff_suspension_current", Key::Blob),
    ("ff_waitpoint_pending", Key::Blob),
    ("ff_suspend_dedup", Key::Blob),
    ("ff_signal_dedup", Key::Blob),
    ("ff_stream_frame", Key::Blob),
    ("ff_stream_summary", Key::Blob),
    ("ff_stream_meta", Key::Blob),
    ("ff_execution_capabilities", Key::BlobAnyPartition),
    ("ff_lease_event", Key::BareText),
    ("ff_operator_event", Key::BareText),
    ("ff_signal_event", Key::BareText),
    ("ff_cancel_backlog_member", Key::AnyText),
    ("ff_budget_usage_by_exec", Key::AnyText),
    ("ff_quota_window", Key::AnyText),
    ("ff_quota_admitted", Key::AnyText),
    ("ff_exec_core", Key::Blob),
];

/// The filter as SQL conditions over `ff_exec_core` (starting with ` AND `) with their
/// parameters, numbered from `first`.
fn filter_sql(filter: &ExecutionFilter, first: usize) -> Result<(String, Vec<Value>), EngineError> {
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Some(namespace) = &filter.namespace {
        sql.push_str(&format!(
            " AND json_extract(raw_fields, '$.namespace') = ?{}",
            first + params.len()
        ));
        params.push(text(namespace));
    }
    if let Some((key, value)) = &filter.tag {
        validate_tag_key(key)?;
        sql.push_str(&format!(
            " AND json_extract(raw_fields, ?{}) = ?{}",
            first + params.len(),
            first + params.len() + 1
        ));
        params.push(text(tag_path(key)));
        params.push(text(value));
    }
    Ok((sql, params))
}

/// Purge terminal executions past their retention; see the module docs.
pub fn trim_retention(db: &mut impl Db, args: &TrimRetentionArgs) -> Result<u32, EngineError> {
    validate_lane_id(&args.lane_id)?;
    let (filter, filter_params) = filter_sql(&args.filter, 5)?;
    if args.batch_size == 0 {
        return Ok(0);
    }
    let cutoff = args
        .now
        .saturating_sub(i64::try_from(args.retention_ms).unwrap_or(i64::MAX));
    let mut params = vec![
        int(args.partition),
        text(&args.lane_id),
        int(cutoff),
        int(args.batch_size.min(MAX_TRIM_BATCH)),
    ];
    params.extend(filter_params);
    let rows = db
        .query(
            &format!(
                "SELECT execution_id FROM ff_exec_core \
                 WHERE partition_key = ?1 AND lane_id = ?2 AND lifecycle_phase IN ('terminal', 'cancelled') \
                   AND terminal_at_ms IS NOT NULL AND terminal_at_ms <= ?3{filter} \
                 ORDER BY terminal_at_ms, execution_id LIMIT ?4"
            ),
            &params,
        )
        .map_err(storage)?;
    let ids: Vec<ExecutionRef> = rows
        .into_iter()
        .filter_map(|row| ExecutionRef::from_stored(args.partition, &Row(row).blob(0)?))
        .collect();
    let ((core, core_key), dependents) = PURGED.split_last().expect("PURGED is not empty");
    for &(table, key) in dependents {
        purge(db, table, key, args.partition, &ids)?;
    }
    let purged = purge(db, core, *core_key, args.partition, &ids)?;
    Ok(u32::try_from(purged).unwrap_or(u32::MAX))
}

/// Delete `ids`' rows from `table`; returns how many rows went.
fn purge(
    db: &mut impl Db,
    table: &str,
    key: Key,
    partition: u16,
    ids: &[ExecutionRef],
) -> Result<u64, EngineError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut params: Vec<Value> = match key {
        Key::Blob => ids.iter().map(ExecutionRef::blob).collect(),
        Key::BlobAnyPartition => ids.iter().map(ExecutionRef::blob).collect(),
        Key::BareText => ids.iter().map(ExecutionRef::bare_text).collect(),
        Key::AnyText => ids
            .iter()
            .map(|id| text(id.canonical()))
            .chain(ids.iter().map(ExecutionRef::bare_text))
            .collect(),
    };
    let list = (1..=params.len())
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let partition_condition = match key {
        Key::Blob | Key::BareText => {
            params.push(int(partition));
            format!("partition_key = ?{} AND ", params.len())
        }
        Key::BlobAnyPartition | Key::AnyText => String::new(),
    };
    db.run(
        &format!("DELETE FROM {table} WHERE {partition_condition}execution_id IN ({list})"),
        &params,
    )
}

/// Re-register lanes missing from `ff_lane_registry`; see the module docs.
pub fn reconcile_execution_index(
    db: &mut impl Db,
    partition: u16,
    lanes: &[String],
    filter: &ExecutionFilter,
    now: i64,
) -> Result<ReconcileCounts, EngineError> {
    for lane in lanes {
        validate_lane_id(lane)?;
    }
    let (filter, filter_params) = filter_sql(filter, 3)?;
    let statement = format!(
        "SELECT 1 FROM ff_exec_core WHERE partition_key = ?1 AND lane_id = ?2{filter} \
           AND NOT EXISTS (SELECT 1 FROM ff_lane_registry AS r WHERE r.lane_id = ?2) LIMIT 1"
    );
    let mut processed = 0;
    for lane in lanes {
        let mut params = vec![int(partition), text(lane)];
        params.extend(filter_params.iter().cloned());
        if db.first_row(&statement, &params)?.is_some() {
            processed += db.run(
                "INSERT INTO ff_lane_registry (lane_id, registered_at_ms, registered_by) \
                 VALUES (?1, ?2, 'reconcile_execution_index') ON CONFLICT (lane_id) DO NOTHING",
                &[text(lane), int(now)],
            )?;
        }
    }
    Ok(ReconcileCounts {
        processed: u32::try_from(processed).unwrap_or(u32::MAX),
        errors: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb, hex};

    const OTHER: &str = "{fp:0}:0e000000-0000-4000-8000-000000000000";

    fn args(retention_ms: u64, batch_size: u32, filter: ExecutionFilter) -> TrimRetentionArgs {
        TrimRetentionArgs {
            partition: 0,
            lane_id: "default".into(),
            retention_ms,
            now: NOW,
            batch_size,
            filter,
        }
    }

    fn no_filter() -> ExecutionFilter {
        ExecutionFilter {
            namespace: None,
            tag: None,
        }
    }

    /// [`EXEC`] leased then terminal at `NOW - 1000`, with rows in several keyed tables;
    /// [`OTHER`] runnable.
    fn seeded() -> TestDb {
        let db = TestDb::leased();
        db.exec(&format!(
            "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', public_state = 'completed', \
                 terminal_at_ms = {at}; \
             INSERT INTO ff_operator_event (execution_id, event_type, details, occurred_at_ms, partition_key) \
                 VALUES ('53ad96d2-6b08-4d0c-86e3-36598db2291c', 'replayed', '{{}}', 1, 0); \
             INSERT INTO ff_completion_event (partition_key, execution_id, outcome, occurred_at_ms) \
                 VALUES (0, X'{exec}', 'success', 1); \
             INSERT INTO ff_quota_admitted (partition_key, quota_policy_id, execution_id, admitted_at_ms, expires_at_ms) \
                 VALUES (0, 'q', '{EXEC}', 1, 2); \
             INSERT INTO ff_execution_capabilities VALUES (X'{exec}', 'gpu');",
            at = NOW - 1000,
            exec = hex(EXEC),
        ));
        db.seed_runnable(OTHER);
        db
    }

    #[test]
    fn terminal_executions_past_retention_go_with_their_rows() {
        let mut db = seeded();
        assert_eq!(
            trim_retention(&mut db, &args(1001, 10, no_filter())).unwrap(),
            0
        );
        assert_eq!(
            trim_retention(&mut db, &args(1000, 0, no_filter())).unwrap(),
            0
        );
        assert_eq!(
            trim_retention(&mut db, &args(1000, 10, no_filter())).unwrap(),
            1
        );
        for table in [
            "ff_attempt",
            "ff_lease_event",
            "ff_operator_event",
            "ff_completion_event",
            "ff_quota_admitted",
            "ff_execution_capabilities",
        ] {
            assert_eq!(
                db.one(&format!("SELECT COUNT(*) FROM {table}")),
                "0",
                "{table}"
            );
        }
        assert_eq!(
            db.one("SELECT COUNT(*) FROM ff_exec_core"),
            "1",
            "the runnable one stays"
        );
    }

    #[test]
    fn the_filter_selects_by_namespace_and_tag() {
        let mut db = seeded();
        let other_namespace = ExecutionFilter {
            namespace: Some("elsewhere".into()),
            tag: None,
        };
        assert_eq!(
            trim_retention(&mut db, &args(0, 10, other_namespace)).unwrap(),
            0
        );
        let tagged = ExecutionFilter {
            namespace: Some("ns".into()),
            tag: Some(("cairn.instance_id".into(), "inst".into())),
        };
        assert_eq!(trim_retention(&mut db, &args(0, 10, tagged)).unwrap(), 1);
    }

    #[test]
    fn bad_lanes_and_tag_keys_are_invalid_input_with_nothing_written() {
        let mut db = seeded();
        let mut bad_lane = args(0, 10, no_filter());
        bad_lane.lane_id = String::new();
        let err = db.fails_unchanged(|db| trim_retention(db, &bad_lane));
        assert!(matches!(err, EngineError::Validation(_)), "{err:?}");
        let bad_key = ExecutionFilter {
            namespace: None,
            tag: Some(("Bad Key".into(), "v".into())),
        };
        let err = db.fails_unchanged(|db| trim_retention(db, &args(0, 10, bad_key.clone())));
        assert!(matches!(err, EngineError::Validation(_)), "{err:?}");
        let err = db.fails_unchanged(|db| {
            reconcile_execution_index(db, 0, &["default".into()], &bad_key, NOW)
        });
        assert!(matches!(err, EngineError::Validation(_)), "{err:?}");
    }

    #[test]
    fn reconcile_registers_lanes_missing_from_the_registry_once() {
        let mut db = seeded();
        db.exec("DELETE FROM ff_lane_registry");
        let lanes = ["default".to_string(), "unused".to_string()];
        let counts = reconcile_execution_index(&mut db, 0, &lanes, &no_filter(), NOW).unwrap();
        assert_eq!((counts.processed, counts.errors), (1, 0));
        assert_eq!(
            db.one("SELECT group_concat(lane_id || '|' || registered_by) FROM ff_lane_registry"),
            "default|reconcile_execution_index"
        );
        let counts = reconcile_execution_index(&mut db, 0, &lanes, &no_filter(), NOW).unwrap();
        assert_eq!(counts.processed, 0);
    }
}
