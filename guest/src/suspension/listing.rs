//! The reads: `read-waitpoint-token`, `list-pending-waitpoints`, `list-suspended`.

use super::parse_waitpoint_id;
use super::suspend::uuid_blob;
use crate::bindings::suspension::{
    ListPendingWaitpointsArgs, ListSuspendedArgs, PendingWaitpointInfo, PendingWaitpointsPage,
    SuspendedEntry, SuspendedPage,
};
use crate::db::{Db, DbExt, int};
use crate::errors::{corruption, invalid_input};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

/// The token of waitpoint `waitpoint_id` in `partition`, whatever its state; `None` when there
/// is no such waitpoint (or its token is empty).
pub fn read_waitpoint_token(
    db: &mut impl Db,
    partition: u16,
    waitpoint_id: &str,
) -> Result<Option<String>, EngineError> {
    let waitpoint_id = parse_waitpoint_id(waitpoint_id)?;
    Ok(db
        .first_row(
            "SELECT token FROM ff_waitpoint_pending WHERE partition_key = ?1 AND waitpoint_id = ?2",
            &[int(partition), uuid_blob(&waitpoint_id)?],
        )?
        .map(|row| row.text_or_empty(0))
        .filter(|token| !token.is_empty()))
}

/// The execution's `pending` and `active` waitpoints, by id, after `args.after`.
pub fn list_pending_waitpoints(
    db: &mut impl Db,
    args: &ListPendingWaitpointsArgs,
) -> Result<PendingWaitpointsPage, EngineError> {
    let id = ExecutionRef::parse(&args.execution_id)?;
    let after = match &args.after {
        Some(after) => uuid_blob(&parse_waitpoint_id(after)?)?,
        None => Value::Null,
    };
    let limit = args.limit.clamp(1, 1000);
    Exec::require(db, &id)?;
    let rows = db
        .query(
            "SELECT lower(hex(waitpoint_id)), waitpoint_key, state, required_signal_names, created_at_ms, \
                 activated_at_ms, expires_at_ms, token \
             FROM ff_waitpoint_pending \
             WHERE partition_key = ?1 AND execution_id = ?2 AND state IN ('pending', 'active') \
                 AND (?3 IS NULL OR waitpoint_id > ?3) \
             ORDER BY waitpoint_id LIMIT ?4",
            &[id.partition(), id.blob(), after, int(i64::from(limit) + 1)],
        )
        .map_err(crate::errors::storage)?;
    let more = rows.len() > limit as usize;
    let mut entries = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.into_iter().take(limit as usize) {
        let row = crate::db::Row(row);
        let hex = row.text_or_empty(0);
        let waitpoint_id = uuid::Uuid::parse_str(&hex)
            .map_err(|_| corruption(format!("waitpoint_pending: waitpoint_id {hex:?}")))?
            .hyphenated()
            .to_string();
        let names: Vec<String> = serde_json::from_str(&row.text_or_empty(3)).map_err(|error| {
            corruption(format!(
                "waitpoint_pending: required_signal_names not valid JSON: {error}"
            ))
        })?;
        let token = row.text_or_empty(7);
        let (token_kid, token_fingerprint) = match token.split_once(':') {
            Some((kid, digest)) if !kid.is_empty() && !digest.is_empty() => {
                (kid.to_owned(), digest.chars().take(16).collect::<String>())
            }
            _ => (String::new(), String::new()),
        };
        entries.push(PendingWaitpointInfo {
            waitpoint_id,
            waitpoint_key: row.text_or_empty(1),
            state: row.text_or_empty(2),
            required_signal_names: names,
            created_at: row.integer(4).unwrap_or(0),
            activated_at: row.integer(5),
            expires_at: row.integer(6),
            token_kid,
            token_fingerprint,
        });
    }
    let next_cursor = if more {
        entries.last().map(|entry| entry.waitpoint_id.clone())
    } else {
        None
    };
    Ok(PendingWaitpointsPage {
        entries,
        next_cursor,
    })
}

/// Suspended executions of `args.partition` (lifecycle `suspended` with a suspension row),
/// ordered by suspension time then id, after `args.after`.
pub fn list_suspended(
    db: &mut impl Db,
    args: &ListSuspendedArgs,
) -> Result<SuspendedPage, EngineError> {
    if args.limit == 0 {
        return Err(invalid_input("limit must be positive"));
    }
    let partition = int(args.partition);
    let (after_at, after_id) = match &args.after {
        None => (Value::Null, Value::Null),
        Some(after) => {
            let cursor = ExecutionRef::parse(after)?;
            if cursor.partition() != partition {
                return Err(invalid_input(format!(
                    "list_suspended: cursor {after:?} is not in partition {}",
                    args.partition
                )));
            }
            let at = db
                .first_row(
                    "SELECT suspended_at_ms FROM ff_suspension_current \
                     WHERE partition_key = ?1 AND execution_id = ?2",
                    &cursor.key(),
                )?
                .and_then(|row| row.integer(0));
            (at.map_or(Value::Null, Value::Integer), cursor.blob())
        }
    };
    let rows = db
        .query(
            "SELECT lower(hex(s.execution_id)), s.suspended_at_ms, COALESCE(s.reason_code, '') \
             FROM ff_suspension_current AS s JOIN ff_exec_core AS e \
                 ON e.partition_key = s.partition_key AND e.execution_id = s.execution_id \
             WHERE s.partition_key = ?1 AND e.lifecycle_phase = 'suspended' \
                 AND (?3 IS NULL OR (?2 IS NULL AND s.execution_id > ?3) \
                     OR s.suspended_at_ms > ?2 OR (s.suspended_at_ms = ?2 AND s.execution_id > ?3)) \
             ORDER BY s.suspended_at_ms, s.execution_id LIMIT ?4",
            &[
                partition,
                after_at,
                after_id,
                int(i64::from(args.limit) + 1),
            ],
        )
        .map_err(crate::errors::storage)?;
    let more = rows.len() > args.limit as usize;
    let mut entries = Vec::new();
    for row in rows.into_iter().take(args.limit as usize) {
        let row = crate::db::Row(row);
        let hex = row.text_or_empty(0);
        let uuid = uuid::Uuid::parse_str(&hex)
            .map_err(|_| corruption(format!("suspension_current: execution_id {hex:?}")))?;
        entries.push(SuspendedEntry {
            execution_id: format!("{{fp:{}}}:{}", args.partition, uuid.hyphenated()),
            suspended_at: row.integer(1).unwrap_or(0),
            reason: row.text_or_empty(2),
        });
    }
    let next_cursor = if more {
        entries.last().map(|entry| entry.execution_id.clone())
    } else {
        None
    };
    Ok(SuspendedPage {
        entries,
        next_cursor,
    })
}
