//! `list-executions`: one page of a partition's executions in UUID byte order.
//!
//! Read-only. The page is read from `ff_exec_core`'s primary key `(partition_key,
//! execution_id)`: a range seek after the cursor's 16 bytes, then `limit + 1` index entries (the
//! extra one only says whether more follow), so a page costs the same at a thousand executions
//! as at a million. The cursor is an execution id of the same partition (`Validation
//! (InvalidInput)` otherwise); it need not exist any more, so a page boundary survives the
//! deletion of the execution it names. Executions created after a page was read appear on a
//! later page exactly when their UUID sorts after the cursor.

use crate::bindings::operator::ExecutionPage;
use crate::db::{Db, Row, int};
use crate::errors::{corruption, invalid_input, storage};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

/// One page of `partition`'s executions after `after`; see the module docs.
pub fn list_executions(
    db: &mut impl Db,
    partition: u16,
    after: Option<&str>,
    limit: u32,
) -> Result<ExecutionPage, EngineError> {
    let cursor = match after {
        Some(text) => {
            let cursor = ExecutionRef::parse(text)?;
            if cursor.partition_number() != partition {
                return Err(invalid_input(format!(
                    "list_executions: cursor {text:?} is not in partition {partition}"
                )));
            }
            cursor.blob()
        }
        // The empty blob sorts before every 16-byte id.
        None => Value::Blob(Vec::new()),
    };
    if limit == 0 {
        return Ok(ExecutionPage {
            executions: Vec::new(),
            next_cursor: None,
        });
    }
    let rows = db
        .query(
            "SELECT execution_id FROM ff_exec_core \
             WHERE partition_key = ?1 AND execution_id > ?2 ORDER BY execution_id LIMIT ?3",
            &[int(partition), cursor, int(i64::from(limit) + 1)],
        )
        .map_err(storage)?;
    let more = rows.len() > limit as usize;
    let mut executions = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.into_iter().take(limit as usize) {
        let blob = Row(row).blob(0).unwrap_or_default();
        let id = ExecutionRef::from_stored(partition, &blob).ok_or_else(|| {
            corruption(format!(
                "list_executions: ff_exec_core holds an execution_id of {} bytes",
                blob.len()
            ))
        })?;
        executions.push(id.canonical());
    }
    let next_cursor = if more {
        executions.last().cloned()
    } else {
        None
    };
    Ok(ExecutionPage {
        executions,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Recording, TestDb};

    fn id(n: u8) -> String {
        format!("{{fp:0}}:{n:02x}000000-0000-4000-8000-000000000000")
    }

    #[test]
    fn pages_follow_uuid_order_with_a_cursor_only_when_more_follow() {
        let db = TestDb::new();
        for n in [3, 1, 2] {
            db.seed_runnable(&id(n));
        }
        db.seed_runnable(&id(4));
        db.exec("UPDATE ff_exec_core SET partition_key = 1 WHERE execution_id = X'04000000000040008000000000000000'");
        let mut db = db;
        let page = list_executions(&mut db, 0, None, 2).unwrap();
        assert_eq!(page.executions, vec![id(1), id(2)]);
        assert_eq!(page.next_cursor, Some(id(2)));
        let page = list_executions(&mut db, 0, Some(&id(2)), 2).unwrap();
        assert_eq!((page.executions, page.next_cursor), (vec![id(3)], None));
        // An exactly full last page carries no cursor.
        let page = list_executions(&mut db, 0, None, 3).unwrap();
        assert_eq!(page.next_cursor, None);
        // A cursor whose execution is gone still positions the page.
        db.exec("DELETE FROM ff_exec_core WHERE partition_key = 0 AND execution_id = X'02000000000040008000000000000000'");
        let page = list_executions(&mut db, 0, Some(&id(2)), 5).unwrap();
        assert_eq!(page.executions, vec![id(3)]);
        assert!(
            list_executions(&mut db, 0, None, 0)
                .unwrap()
                .executions
                .is_empty()
        );
    }

    #[test]
    fn a_cursor_from_another_partition_or_unparsable_is_invalid_input() {
        let mut db = TestDb::new();
        for cursor in ["{fp:1}:04000000-0000-4000-8000-000000000000", "nonsense"] {
            let err = list_executions(&mut db, 0, Some(cursor), 5).unwrap_err();
            assert!(
                matches!(err, EngineError::Validation(ref v) if v.kind == crate::types::ValidationKind::InvalidInput),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_page_is_an_index_range_scan() {
        let mut db = TestDb::new();
        db.seed_runnable(&id(1));
        let mut recording = Recording {
            db: &mut db,
            statements: Vec::new(),
        };
        list_executions(&mut recording, 0, Some(&id(1)), 5).unwrap();
        assert_eq!(recording.unindexed_steps(), Vec::<String>::new());
    }
}
