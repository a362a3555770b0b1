//! Pages of the outboxes subscriptions follow (completions, lease history, signal deliveries,
//! instance tags), and the newest ids the host waits on.
//!
//! An outbox's `event_id` is its `INTEGER PRIMARY KEY AUTOINCREMENT`: a page reads
//! `event_id > after` by the table's own key (no scan), across every partition, in id order,
//! which is commit order (one writer per database). The filter is applied row by row here, so
//! that `last-scanned-id` advances past rows that do not match.

use crate::bindings::streams::{
    Heads, Outbox, OutboxEvent, OutboxFilter, OutboxPage, SignalDeliveryDetail,
};
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

/// The signal-delivery outbox's rows after `?1`, at most `?2`; columns 9–12 are the signal's.
const SIGNAL_DELIVERY_PAGE: &str = "SELECT event_id, partition_key, execution_id, '', \
         delivered_at_ms, NULL, namespace, instance_tag, 16, signal_id, waitpoint_id, \
         source_identity, effect \
     FROM ff_signal_event WHERE event_id > ?1 ORDER BY event_id LIMIT ?2";

/// The instance-tag outbox's rows after `?1`, at most `?2`; column 9 is the tag. The rows carry
/// no labels (the subscription takes no filter).
const INSTANCE_TAGS_PAGE: &str = "SELECT event_id, partition_key, execution_id, event_type, \
         occurred_at_ms, NULL, NULL, NULL, 16, tag \
     FROM ff_instance_tag_event WHERE event_id > ?1 ORDER BY event_id LIMIT ?2";

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
        Outbox::SignalDelivery => SIGNAL_DELIVERY_PAGE,
        Outbox::InstanceTags => INSTANCE_TAGS_PAGE,
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
        let size = event_bytes(&event);
        if !page.events.is_empty() && bytes.saturating_add(size) > budget {
            break;
        }
        bytes = bytes.saturating_add(size);
        page.last_scanned_id = event_id;
        page.events.push(event);
    }
    Ok(page)
}

/// What an event costs against a page's byte budget.
fn event_bytes(event: &OutboxEvent) -> usize {
    let optional = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    let signal = event.signal.as_ref().map_or(0, |signal| {
        signal.signal_id.len()
            + optional(&signal.waitpoint_id)
            + optional(&signal.source_identity)
            + optional(&signal.effect)
    });
    event.execution_id.len()
        + event.kind.len()
        + optional(&event.lease_id)
        + optional(&event.tag)
        + signal
        + 16
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
        Outbox::Completion => None,
        Outbox::LeaseHistory | Outbox::SignalDelivery | Outbox::InstanceTags => {
            uuid::Uuid::parse_str(&stored)
                .map(|uuid| uuid.hyphenated().to_string())
                .ok()
        }
    }
    .ok_or_else(|| {
        corruption(format!(
            "outbox event {event_id}: execution_id {stored:?} is not a UUID"
        ))
    })?;
    let (signal, tag) = match source {
        Outbox::SignalDelivery => (
            Some(SignalDeliveryDetail {
                signal_id: row.take_text(9).unwrap_or_default(),
                waitpoint_id: row.take_text(10),
                source_identity: row.take_text(11),
                effect: row.take_text(12),
            }),
            None,
        ),
        Outbox::InstanceTags => (None, row.take_text(9)),
        Outbox::Completion | Outbox::LeaseHistory => (None, None),
    };
    Ok(OutboxEvent {
        event_id,
        execution_id: format!("{{fp:{partition}}}:{uuid}"),
        kind: row.take_text(3).unwrap_or_default(),
        at: row.integer(4).unwrap_or(0),
        lease_id: row.take_text(5),
        signal,
        tag,
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
                 (SELECT COALESCE(MAX(rowid), 0) FROM ff_stream_frame), \
                 (SELECT COALESCE(MAX(event_id), 0) FROM ff_signal_event), \
                 (SELECT COALESCE(MAX(event_id), 0) FROM ff_instance_tag_event)",
            &[],
        )?
        .unwrap_or(Row(Vec::new()));
    Ok(Heads {
        outboxes: vec![
            (Outbox::Completion, row.integer(0).unwrap_or(0)),
            (Outbox::LeaseHistory, row.integer(1).unwrap_or(0)),
            (Outbox::SignalDelivery, row.integer(3).unwrap_or(0)),
            (Outbox::InstanceTags, row.integer(4).unwrap_or(0)),
        ],
        frames: row.integer(2).unwrap_or(0),
    })
}
