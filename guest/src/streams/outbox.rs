//! Pages of the outboxes subscriptions follow, and the newest ids the host waits on.
//!
//! An outbox's `event_id` is its `INTEGER PRIMARY KEY AUTOINCREMENT`: a page reads
//! `event_id > after` by the table's own key (no scan), across every partition, in id order,
//! which is commit order (one writer per database). The filter is applied row by row here, so
//! that `last-scanned-id` advances past rows that do not match.

use crate::bindings::streams::{Heads, Outbox, OutboxEvent, OutboxFilter, OutboxPage};
use crate::db::{Db, DbExt, Row, int};
use crate::errors::{corruption, storage};
use crate::types::EngineError;

/// The completion outbox's rows after `?1`, at most `?2`.
const COMPLETION_PAGE: &str = "SELECT event_id, partition_key, lower(hex(execution_id)), outcome, \
         occurred_at_ms, NULL, namespace, instance_tag, length(execution_id) \
     FROM ff_completion_event WHERE event_id > ?1 ORDER BY event_id LIMIT ?2";

/// The lease-history outbox's rows after `?1`, at most `?2`.
const LEASE_HISTORY_PAGE: &str = "SELECT event_id, partition_key, execution_id, event_type, \
         occurred_at_ms, lease_id, namespace, instance_tag, 16 \
     FROM ff_lease_event WHERE event_id > ?1 ORDER BY event_id LIMIT ?2";

/// The rows of `source` after `after_event_id` matching `filter` (see the module docs).
pub fn read_outbox(
    db: &mut impl Db,
    source: Outbox,
    after_event_id: i64,
    limit: u32,
    byte_budget: u64,
    filter: &OutboxFilter,
) -> Result<OutboxPage, EngineError> {
    let statement = match source {
        Outbox::Completion => COMPLETION_PAGE,
        Outbox::LeaseHistory => LEASE_HISTORY_PAGE,
    };
    let rows = db
        .query(statement, &[int(after_event_id), int(limit)])
        .map_err(storage)?;
    let budget = usize::try_from(byte_budget).unwrap_or(usize::MAX);
    let mut page = OutboxPage {
        events: Vec::new(),
        last_scanned_id: after_event_id,
    };
    let mut bytes = 0usize;
    for row in rows {
        let mut row = Row(row);
        let event_id = row
            .integer(0)
            .ok_or_else(|| corruption("outbox row without an event_id"))?;
        if !matches(&row, filter) {
            page.last_scanned_id = event_id;
            continue;
        }
        let event = decode(&mut row, source, event_id)?;
        let size = event.execution_id.len()
            + event.kind.len()
            + event.lease_id.as_ref().map_or(0, String::len)
            + 16;
        if !page.events.is_empty() && bytes.saturating_add(size) > budget {
            break;
        }
        bytes = bytes.saturating_add(size);
        page.last_scanned_id = event_id;
        page.events.push(event);
    }
    Ok(page)
}

/// Whether the row's namespace and instance tag columns match `filter`.
fn matches(row: &Row, filter: &OutboxFilter) -> bool {
    let column_matches = |index: usize, wanted: &Option<String>| match wanted {
        None => true,
        Some(wanted) => row.text(index).as_deref() == Some(wanted.as_str()),
    };
    column_matches(6, &filter.namespace) && column_matches(7, &filter.instance_tag)
}

/// One page row as an event; a row whose execution id cannot be rebuilt is
/// `Validation { Corruption }`.
fn decode(row: &mut Row, source: Outbox, event_id: i64) -> Result<OutboxEvent, EngineError> {
    let partition = row.integer(1).unwrap_or(0);
    let stored = row.take_text(2).unwrap_or_default();
    let uuid = match source {
        Outbox::Completion if row.integer(8) == Some(16) => hyphenate(&stored),
        Outbox::LeaseHistory => uuid::Uuid::parse_str(&stored)
            .map(|uuid| uuid.hyphenated().to_string())
            .ok(),
        Outbox::Completion => None,
    }
    .ok_or_else(|| {
        corruption(format!(
            "outbox event {event_id}: execution_id {stored:?} is not a UUID"
        ))
    })?;
    Ok(OutboxEvent {
        event_id,
        execution_id: format!("{{fp:{partition}}}:{uuid}"),
        kind: row.take_text(3).unwrap_or_default(),
        at: row.integer(4).unwrap_or(0),
        lease_id: row.take_text(5),
    })
}

/// 32 hex digits as a hyphenated UUID.
fn hyphenate(hex: &str) -> Option<String> {
    uuid::Uuid::parse_str(hex)
        .ok()
        .map(|uuid| uuid.hyphenated().to_string())
}

/// The newest ids of the outboxes and of the frames (0 for an empty table).
pub fn change_heads(db: &mut impl Db) -> Result<Heads, EngineError> {
    let row = db
        .first_row(
            "SELECT (SELECT COALESCE(MAX(event_id), 0) FROM ff_completion_event), \
                 (SELECT COALESCE(MAX(event_id), 0) FROM ff_lease_event), \
                 (SELECT COALESCE(MAX(rowid), 0) FROM ff_stream_frame)",
            &[],
        )?
        .unwrap_or(Row(Vec::new()));
    Ok(Heads {
        outboxes: vec![
            (Outbox::Completion, row.integer(0).unwrap_or(0)),
            (Outbox::LeaseHistory, row.integer(1).unwrap_or(0)),
        ],
        frames: row.integer(2).unwrap_or(0),
    })
}
