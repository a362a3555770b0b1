//! The `workers` interface: the worker registry (RFC-025). A registration is keyed by
//! `(namespace, worker_instance_id)` in `ff_worker_registry` (migration 0007) and is *live*
//! while `last_heartbeat_ms + liveness_ttl_ms > now`; a lapsed registration counts as absent
//! for every operation until [`sweep_expired_workers`] deletes it (at `<= now`, the exact
//! complement). Lanes and capabilities are stored as JSON arrays. Each change records one
//! `ff_worker_registry_event` row (insert-or-ignore: the same kind for the same instance in the
//! same millisecond is recorded once).
//!
//! ## `register-worker` ([`register_worker`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `worker_id` is not empty | `Validation(InvalidInput, "worker_id must not be empty")` |
//! | 2 | `worker_instance_id` is not empty | `Validation(InvalidInput, "worker_instance_id must not be empty")` |
//! | 3 | `1 <= liveness_ttl_ms <= i64::MAX` | `Validation(InvalidInput)` |
//! | 4 | no live registration of the instance by another `worker_id` | `Validation(InvalidInput, "instance_id reassigned")` |
//!
//! A live registration is overwritten (`worker_id`, lanes, capabilities, heartbeat = `now`,
//! TTL; `registered_at_ms` kept) → `Refreshed`; otherwise (none, or lapsed) a new one starts
//! with `registered_at_ms = now` → `Registered`. Event `registered`.
//!
//! ## `heartbeat-worker` ([`heartbeat_worker`])
//!
//! A live registration gets `last_heartbeat_ms = now` → `Refreshed(now + ttl)` (saturating),
//! event `heartbeat`; otherwise `NotRegistered`, nothing written.
//!
//! ## `mark-worker-dead` ([`mark_worker_dead`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `reason` is at most 256 bytes | `Validation(InvalidInput, "reason: exceeds 256 bytes (got <n>)")` |
//! | 2 | `reason` has no control character | `Validation(InvalidInput, "reason: must not contain control characters")` |
//!
//! A live registration is deleted → `Marked`, event `marked_dead` with the reason; otherwise
//! `NotRegistered`, nothing written.
//!
//! ## `list-workers` ([`list_workers`])
//!
//! The namespace's live registrations after `after` (exclusive, byte order), at most `limit`
//! (`0` → an empty page); `cursor` = the last entry's instance id only when more live
//! registrations follow. Read-only.
//!
//! ## `sweep-expired-workers` ([`sweep_expired_workers`])
//!
//! Deletes every registration with `last_heartbeat_ms + liveness_ttl_ms <= now` (every
//! namespace; served by `ff_worker_registry_expiry_idx`), event `ttl_swept` for each; returns
//! the count.

use crate::bindings::workers::{
    HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, MarkWorkerDeadArgs,
    MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome, WorkerInfo, WorkerPage,
};
use crate::db::{Db, DbExt, Row, int, text};
use crate::errors::{corruption, invalid_input, require_worker_id, storage};
use crate::json;
use crate::sql::Value;
use crate::types::EngineError;

/// The most bytes a `mark-worker-dead` reason may hold (ff-core's
/// `MARK_WORKER_DEAD_REASON_MAX_BYTES`).
pub const MARK_WORKER_DEAD_REASON_MAX_BYTES: usize = 256;

/// The registration of `(namespace, instance)` if it is live at `now`: its `worker_id` and
/// liveness TTL.
fn live_registration(
    db: &mut impl Db,
    namespace: &str,
    instance: &str,
    now: i64,
) -> Result<Option<(String, i64)>, EngineError> {
    let Some(row) = db.first_row(
        "SELECT worker_id, liveness_ttl_ms FROM ff_worker_registry \
         WHERE namespace = ?1 AND worker_instance_id = ?2 AND last_heartbeat_ms + liveness_ttl_ms > ?3",
        &[text(namespace), text(instance), int(now)],
    )?
    else {
        return Ok(None);
    };
    match (row.text(0), row.integer(1)) {
        (Some(worker_id), Some(ttl)) => Ok(Some((worker_id, ttl))),
        _ => Err(corruption("ff_worker_registry: unreadable registration")),
    }
}

/// Record a registry event (insert-or-ignore).
fn record_event(
    db: &mut impl Db,
    namespace: &str,
    instance: &str,
    kind: &str,
    now: i64,
    reason: Option<&str>,
) -> Result<(), EngineError> {
    db.run(
        "INSERT OR IGNORE INTO ff_worker_registry_event \
             (namespace, worker_instance_id, event_kind, event_at_ms, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            text(namespace),
            text(instance),
            text(kind),
            int(now),
            reason.map_or(Value::Null, text),
        ],
    )?;
    Ok(())
}

/// Register a worker instance or refresh its live registration; see the module docs.
pub fn register_worker(
    db: &mut impl Db,
    args: &RegisterWorkerArgs,
) -> Result<RegisterWorkerOutcome, EngineError> {
    require_worker_id(&args.worker_id)?;
    if args.worker_instance_id.is_empty() {
        return Err(invalid_input("worker_instance_id must not be empty"));
    }
    let ttl = i64::try_from(args.liveness_ttl_ms)
        .ok()
        .filter(|ttl| *ttl > 0)
        .ok_or_else(|| {
            invalid_input(format!(
                "liveness_ttl_ms must be between 1 and {} (got {})",
                i64::MAX,
                args.liveness_ttl_ms
            ))
        })?;
    let live = live_registration(db, &args.namespace, &args.worker_instance_id, args.now)?;
    if let Some((worker_id, _)) = &live
        && *worker_id != args.worker_id
    {
        return Err(invalid_input("instance_id reassigned"));
    }
    let lanes = json::string_array(args.lanes.iter().map(String::as_str));
    let capabilities = json::string_array(args.capabilities.iter().map(String::as_str));
    let params = [
        text(&args.namespace),
        text(&args.worker_instance_id),
        text(&args.worker_id),
        text(lanes),
        text(capabilities),
        int(args.now),
        int(ttl),
    ];
    let outcome = if live.is_some() {
        db.run(
            "UPDATE ff_worker_registry SET worker_id = ?3, lanes = ?4, capabilities = ?5, \
                 last_heartbeat_ms = ?6, liveness_ttl_ms = ?7 \
             WHERE namespace = ?1 AND worker_instance_id = ?2",
            &params,
        )?;
        RegisterWorkerOutcome::Refreshed
    } else {
        db.run(
            "INSERT OR REPLACE INTO ff_worker_registry (namespace, worker_instance_id, worker_id, lanes, \
                 capabilities, last_heartbeat_ms, liveness_ttl_ms, registered_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
            &params,
        )?;
        RegisterWorkerOutcome::Registered
    };
    record_event(
        db,
        &args.namespace,
        &args.worker_instance_id,
        "registered",
        args.now,
        None,
    )?;
    Ok(outcome)
}

/// Extend a live registration; see the module docs.
pub fn heartbeat_worker(
    db: &mut impl Db,
    args: &HeartbeatWorkerArgs,
) -> Result<HeartbeatWorkerOutcome, EngineError> {
    let Some((_, ttl)) =
        live_registration(db, &args.namespace, &args.worker_instance_id, args.now)?
    else {
        return Ok(HeartbeatWorkerOutcome::NotRegistered);
    };
    db.run(
        "UPDATE ff_worker_registry SET last_heartbeat_ms = ?3 \
         WHERE namespace = ?1 AND worker_instance_id = ?2",
        &[
            text(&args.namespace),
            text(&args.worker_instance_id),
            int(args.now),
        ],
    )?;
    record_event(
        db,
        &args.namespace,
        &args.worker_instance_id,
        "heartbeat",
        args.now,
        None,
    )?;
    Ok(HeartbeatWorkerOutcome::Refreshed(
        args.now.saturating_add(ttl),
    ))
}

/// Delete a live registration; see the module docs.
pub fn mark_worker_dead(
    db: &mut impl Db,
    args: &MarkWorkerDeadArgs,
) -> Result<MarkWorkerDeadOutcome, EngineError> {
    if args.reason.len() > MARK_WORKER_DEAD_REASON_MAX_BYTES {
        return Err(invalid_input(format!(
            "reason: exceeds {MARK_WORKER_DEAD_REASON_MAX_BYTES} bytes (got {})",
            args.reason.len()
        )));
    }
    if args.reason.chars().any(char::is_control) {
        return Err(invalid_input("reason: must not contain control characters"));
    }
    if live_registration(db, &args.namespace, &args.worker_instance_id, args.now)?.is_none() {
        return Ok(MarkWorkerDeadOutcome::NotRegistered);
    }
    db.run(
        "DELETE FROM ff_worker_registry WHERE namespace = ?1 AND worker_instance_id = ?2",
        &[text(&args.namespace), text(&args.worker_instance_id)],
    )?;
    record_event(
        db,
        &args.namespace,
        &args.worker_instance_id,
        "marked_dead",
        args.now,
        Some(&args.reason),
    )?;
    Ok(MarkWorkerDeadOutcome::Marked)
}

/// One page of the namespace's live registrations; see the module docs.
pub fn list_workers(db: &mut impl Db, args: &ListWorkersArgs) -> Result<WorkerPage, EngineError> {
    if args.limit == 0 {
        return Ok(WorkerPage {
            entries: Vec::new(),
            cursor: None,
        });
    }
    let page_params = [
        text(&args.namespace),
        // No cursor: after `''`, which sorts before every instance id (never empty).
        text(args.after.as_deref().unwrap_or("")),
        int(args.now),
        int(i64::from(args.limit) + 1),
    ];
    const PAGE: &str = "SELECT worker_instance_id, worker_id, last_heartbeat_ms, liveness_ttl_ms, \
             registered_at_ms, lanes, capabilities FROM ff_worker_registry \
         WHERE namespace = ?1 AND worker_instance_id > ?2 \
             AND last_heartbeat_ms + liveness_ttl_ms > ?3 \
         ORDER BY worker_instance_id LIMIT ?4";
    let rows = db.query(PAGE, &page_params).map_err(storage)?;
    let more = rows.len() > args.limit as usize;
    let mut entries = Vec::with_capacity(rows.len().min(args.limit as usize));
    for row in rows.into_iter().take(args.limit as usize) {
        let row = Row(row);
        let unreadable = || corruption("ff_worker_registry: unreadable registration");
        let (lanes, capabilities) = (
            row.text(5).ok_or_else(unreadable)?,
            row.text(6).ok_or_else(unreadable)?,
        );
        entries.push(WorkerInfo {
            worker_instance_id: row.text(0).ok_or_else(unreadable)?,
            worker_id: row.text(1).ok_or_else(unreadable)?,
            namespace: args.namespace.clone(),
            lanes: string_list(db, &lanes)?,
            capabilities: string_list(db, &capabilities)?,
            last_heartbeat_ms: row.integer(2).ok_or_else(unreadable)?,
            liveness_ttl_ms: u64::try_from(row.integer(3).ok_or_else(unreadable)?).unwrap_or(0),
            registered_at_ms: row.integer(4).ok_or_else(unreadable)?,
        });
    }
    let cursor = more
        .then(|| entries.last().map(|e| e.worker_instance_id.clone()))
        .flatten();
    Ok(WorkerPage { entries, cursor })
}

/// The strings of a stored JSON array, sorted.
fn string_list(db: &mut impl Db, array: &str) -> Result<Vec<String>, EngineError> {
    let rows = db
        .query(
            "SELECT value FROM json_each(?1) ORDER BY value",
            &[text(array)],
        )
        .map_err(|_| corruption(format!("ff_worker_registry: not a JSON array: {array}")))?;
    rows.into_iter()
        .map(|row| {
            Row(row).text(0).ok_or_else(|| {
                corruption(format!("ff_worker_registry: not a string list: {array}"))
            })
        })
        .collect()
}

/// Delete every registration lapsed at `now`; see the module docs.
pub fn sweep_expired_workers(db: &mut impl Db, now: i64) -> Result<u32, EngineError> {
    let lapsed = db
        .query(
            "SELECT namespace, worker_instance_id FROM ff_worker_registry \
             WHERE last_heartbeat_ms + liveness_ttl_ms <= ?1",
            &[int(now)],
        )
        .map_err(storage)?;
    let mut swept = 0u32;
    for row in lapsed {
        let row = Row(row);
        let (Some(namespace), Some(instance)) = (row.text(0), row.text(1)) else {
            return Err(corruption(
                "ff_worker_registry: unreadable registration key",
            ));
        };
        db.run(
            "DELETE FROM ff_worker_registry WHERE namespace = ?1 AND worker_instance_id = ?2",
            &[text(&namespace), text(&instance)],
        )?;
        record_event(db, &namespace, &instance, "ttl_swept", now, None)?;
        swept = swept.saturating_add(1);
    }
    Ok(swept)
}

#[cfg(test)]
mod tests;
