//! Streams and subscriptions: `append_frame`, `read_stream`, `tail_stream`, `read_summary`,
//! `subscribe_completion`, `subscribe_lease_history`, `subscribe_signal_delivery` and
//! `subscribe_instance_tags`; the guest's `streams` interface.
//! Conversions and one guest call each here; the waits and the subscriptions' tasks live in
//! [`crate::streams`].

use std::collections::BTreeMap;

use ff_core::backend::{
    AppendFrameOutcome, Frame, FrameKind, Handle, PatchKind, ScannerFilter, StreamMode,
    SummaryDocument,
};
use ff_core::contracts::{StreamCursor, StreamFrame, StreamFrames};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::stream_events::{
    CompletionEvent, CompletionOutcome, CompletionSubscription, InstanceTagEvent,
    InstanceTagSubscription, LeaseHistoryEvent, LeaseHistorySubscription, SignalDeliveryEffect,
    SignalDeliveryEvent, SignalDeliverySubscription,
};
use ff_core::stream_subscribe::{self, decode_postgres_event_cursor};
use ff_core::types::{AttemptIndex, ExecutionId, LeaseId, SignalId, TimestampMs, WaitpointId};

use crate::backend::SqliteBackend;
use crate::bindings::args::{self, validation};
use crate::bindings::streams::{self, FramePosition, FrameQuery, Outbox, OutboxEvent};
use crate::operation::Tx;
use crate::streams::follow::{self, OutboxFollow, current_head};
use crate::streams::tail;

use super::inputs::wall_clock;

/// ff-core's `STREAM_READ_HARD_CAP`: the most frames one read or tail returns.
const STREAM_READ_HARD_CAP: u64 = 10_000;

/// The only tag key subscription filters can match: the outboxes store that tag's value.
const INSTANCE_TAG_KEY: &str = "cairn.instance_id";

pub(super) async fn append_frame(
    backend: &SqliteBackend,
    handle: &Handle,
    frame: Frame,
) -> Result<AppendFrameOutcome, EngineError> {
    let (lease, _kind) = args::handle_lease(handle)?;
    let (mode, best_effort) = match &frame.mode {
        StreamMode::DurableSummary { .. } => (streams::FrameMode::Summary, None),
        StreamMode::BestEffortLive { config } => (
            streams::FrameMode::BestEffort,
            Some(streams::BestEffortConfig {
                ttl_ms: config.ttl_ms,
                maxlen_floor: config.maxlen_floor,
                maxlen_ceiling: config.maxlen_ceiling,
                ema_alpha: config.ema_alpha,
            }),
        ),
        _ => (streams::FrameMode::Durable, None),
    };
    let frame_type = if frame.frame_type.is_empty() {
        kind_fallback(frame.kind).to_owned()
    } else {
        frame.frame_type
    };
    let key = (lease.execution_id.clone(), lease.attempt_index);
    let guest_args = streams::AppendFrameArgs {
        lease,
        payload: frame.bytes,
        frame_type,
        correlation_id: frame.correlation_id,
        mode,
        best_effort,
        now: wall_clock(),
    };
    let in_flight = backend.wakes().begin_append();
    let outcome = backend
        .run("append_frame", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_streams()
                .call_append_frame(store, &guest_args)
        })
        .await?;
    backend.wakes().appended(&key, outcome.row_id);
    drop(in_flight);
    let result = AppendFrameOutcome::new(outcome.stream_id, outcome.frame_count);
    Ok(match outcome.summary_version {
        Some(version) => result.with_summary_version(version),
        None => result,
    })
}

/// ff-core's fallback `frame_type` for a frame kind (any future kind is an event).
fn kind_fallback(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Stdout => "stdout",
        FrameKind::Stderr => "stderr",
        FrameKind::Blob => "blob",
        _ => "event",
    }
}

/// Which end of a range a cursor bounds: a bare `<ms>` covers the whole millisecond either way.
#[derive(Clone, Copy)]
enum Bound {
    Lower,
    Upper,
}

/// A stream cursor as a position; `Validation { InvalidInput }` when malformed.
fn position(cursor: &StreamCursor, bound: Bound) -> Result<FramePosition, EngineError> {
    let bad = |part: &str, text: &str| {
        validation(
            ValidationKind::InvalidInput,
            format!("bad stream cursor '{text}' ({part})"),
        )
    };
    let digits = |part: &str, text: &str, value: &str| {
        if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(bad(part, text));
        }
        value.parse::<i64>().map_err(|_| bad(part, text))
    };
    Ok(match cursor {
        StreamCursor::Start => FramePosition {
            ms: i64::MIN,
            seq: i64::MIN,
        },
        StreamCursor::End => FramePosition {
            ms: i64::MAX,
            seq: i64::MAX,
        },
        StreamCursor::At(text) => match text.split_once('-') {
            Some((ms, seq)) => FramePosition {
                ms: digits("ms", text, ms)?,
                seq: digits("seq", text, seq)?,
            },
            None => FramePosition {
                ms: digits("ms", text, text)?,
                seq: match bound {
                    Bound::Lower => 0,
                    Bound::Upper => i64::MAX,
                },
            },
        },
    })
}

/// The page size for a caller's `count_limit`: 0 is `Validation { InvalidInput }`, more than
/// [`STREAM_READ_HARD_CAP`] is capped.
fn frame_limit(count_limit: u64) -> Result<u32, EngineError> {
    if count_limit == 0 {
        return Err(validation(
            ValidationKind::InvalidInput,
            "count_limit must be at least 1",
        ));
    }
    Ok(u32::try_from(count_limit.min(STREAM_READ_HARD_CAP)).unwrap_or(u32::MAX))
}

/// A guest page as ff-core's frames, with the stream's closed marker.
fn stream_frames(page: streams::FramePage) -> StreamFrames {
    let (closed_at, closed_reason) = match page.closed {
        Some(closed) => (
            Some(TimestampMs::from_millis(closed.at)),
            Some(closed.reason),
        ),
        None => (None, None),
    };
    StreamFrames {
        frames: page
            .frames
            .into_iter()
            .map(|frame| StreamFrame {
                id: frame.id,
                fields: frame.fields.into_iter().collect::<BTreeMap<_, _>>(),
            })
            .collect(),
        closed_at,
        closed_reason,
    }
}

pub(super) async fn read_stream(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    attempt_index: AttemptIndex,
    from: StreamCursor,
    to: StreamCursor,
    count_limit: u64,
) -> Result<StreamFrames, EngineError> {
    let query = FrameQuery {
        execution_id: execution_id.to_string(),
        attempt_index: attempt_index.0,
        start: position(&from, Bound::Lower)?,
        start_inclusive: true,
        end: position(&to, Bound::Upper)?,
        limit: frame_limit(count_limit)?,
        exclude_best_effort: false,
        byte_budget: crate::streams::PAGE_BYTES,
    };
    Ok(stream_frames(tail::page(backend, &query).await?))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn tail_stream(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    attempt_index: AttemptIndex,
    after: StreamCursor,
    block_ms: u64,
    count_limit: u64,
    exclude_best_effort: bool,
) -> Result<StreamFrames, EngineError> {
    if !after.is_concrete() {
        return Err(validation(
            ValidationKind::InvalidInput,
            "tail_stream requires concrete after cursor",
        ));
    }
    let query = FrameQuery {
        execution_id: execution_id.to_string(),
        attempt_index: attempt_index.0,
        start: position(&after, Bound::Lower)?,
        start_inclusive: false,
        end: FramePosition {
            ms: i64::MAX,
            seq: i64::MAX,
        },
        limit: frame_limit(count_limit)?,
        exclude_best_effort,
        byte_budget: crate::streams::PAGE_BYTES,
    };
    Ok(stream_frames(tail::tail(backend, query, block_ms).await?))
}

pub(super) async fn read_summary(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    attempt_index: AttemptIndex,
) -> Result<Option<SummaryDocument>, EngineError> {
    let id = execution_id.to_string();
    let index = attempt_index.0;
    let document = backend
        .run("read_summary", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_streams()
                .call_read_summary(store, &id, index)
        })
        .await?;
    Ok(document.map(|document| {
        SummaryDocument::new(
            document.document_json.into_bytes(),
            document.version,
            PatchKind::JsonMergePatch,
            u64::try_from(document.last_updated_ms).unwrap_or(0),
            u64::try_from(document.first_applied_ms).unwrap_or(0),
        )
    }))
}

/// A subscription cursor as an event id (`None` = from now); a cursor of another backend is
/// `Validation { InvalidInput }`.
fn event_cursor(
    cursor: &stream_subscribe::StreamCursor,
    op: &'static str,
) -> Result<Option<i64>, EngineError> {
    decode_postgres_event_cursor(cursor).map_err(|_| {
        validation(
            ValidationKind::InvalidInput,
            format!("invalid event_id cursor for {op}"),
        )
    })
}

/// ff-core's filter as the guest's; an instance-tag filter on a key other than
/// `cairn.instance_id` is `Validation { InvalidInput }` (the outboxes store only that tag).
fn outbox_filter(filter: &ScannerFilter) -> Result<streams::OutboxFilter, EngineError> {
    let instance_tag = match &filter.instance_tag {
        None => None,
        Some((key, value)) if key == INSTANCE_TAG_KEY => Some(value.clone()),
        Some((key, _)) => {
            return Err(validation(
                ValidationKind::InvalidInput,
                format!(
                    "subscriptions filter instance tags by {INSTANCE_TAG_KEY} only, not {key:?}"
                ),
            ));
        }
    };
    Ok(streams::OutboxFilter {
        namespace: filter
            .namespace
            .as_ref()
            .map(|namespace| namespace.to_string()),
        instance_tag,
    })
}

/// Where a subscription starts: after the cursor's event, or after the newest event now.
async fn start_after(
    backend: &SqliteBackend,
    op: &'static str,
    outbox: Outbox,
    cursor: &stream_subscribe::StreamCursor,
) -> Result<i64, EngineError> {
    match event_cursor(cursor, op)? {
        Some(event_id) => Ok(event_id),
        None => current_head(backend, op, outbox).await,
    }
}

/// An outbox row's execution id; a malformed one is `Validation { Corruption }`.
fn event_execution(event: &OutboxEvent) -> Result<ExecutionId, EngineError> {
    ExecutionId::parse(&event.execution_id).map_err(|error| {
        validation(
            ValidationKind::Corruption,
            format!("outbox execution_id {:?}: {error}", event.execution_id),
        )
    })
}

pub(super) async fn subscribe_completion(
    backend: &SqliteBackend,
    cursor: stream_subscribe::StreamCursor,
    filter: &ScannerFilter,
) -> Result<CompletionSubscription, EngineError> {
    const OP: &str = "subscribe_completion";
    let filter = outbox_filter(filter)?;
    let after = start_after(backend, OP, Outbox::Completion, &cursor).await?;
    Ok(follow::follow(
        backend,
        OutboxFollow {
            op: OP,
            outbox: Outbox::Completion,
            filter,
            decode: completion_event,
        },
        after,
    ))
}

/// A completion row as ff-core's event: the stored outcome through ff-core's `from_wire`,
/// except that the outboxes' `failed` is `Failure` (ff-core's name for it).
fn completion_event(
    event: OutboxEvent,
    cursor: stream_subscribe::StreamCursor,
) -> Result<Option<CompletionEvent>, EngineError> {
    let outcome = match event.kind.as_str() {
        "failed" => CompletionOutcome::Failure,
        other => CompletionOutcome::from_wire(other),
    };
    Ok(Some(CompletionEvent::new(
        cursor,
        event_execution(&event)?,
        outcome,
        TimestampMs::from_millis(event.at),
    )))
}

pub(super) async fn subscribe_lease_history(
    backend: &SqliteBackend,
    cursor: stream_subscribe::StreamCursor,
    filter: &ScannerFilter,
) -> Result<LeaseHistorySubscription, EngineError> {
    const OP: &str = "subscribe_lease_history";
    let filter = outbox_filter(filter)?;
    let after = start_after(backend, OP, Outbox::LeaseHistory, &cursor).await?;
    Ok(follow::follow(
        backend,
        OutboxFollow {
            op: OP,
            outbox: Outbox::LeaseHistory,
            filter,
            decode: lease_event,
        },
        after,
    ))
}

/// A lease-history row as ff-core's event; unknown event types are skipped.
fn lease_event(
    event: OutboxEvent,
    cursor: stream_subscribe::StreamCursor,
) -> Result<Option<LeaseHistoryEvent>, EngineError> {
    let execution_id = event_execution(&event)?;
    let lease_id = event
        .lease_id
        .as_deref()
        .map(|text| {
            LeaseId::parse(text).map_err(|error| {
                validation(
                    ValidationKind::Corruption,
                    format!("lease_id parse '{text}': {error}"),
                )
            })
        })
        .transpose()?;
    let at = TimestampMs::from_millis(event.at);
    Ok(Some(match event.kind.as_str() {
        "acquired" => LeaseHistoryEvent::Acquired {
            cursor,
            execution_id,
            lease_id,
            worker_instance_id: None,
            at,
        },
        "renewed" => LeaseHistoryEvent::Renewed {
            cursor,
            execution_id,
            lease_id,
            worker_instance_id: None,
            at,
        },
        "expired" => LeaseHistoryEvent::Expired {
            cursor,
            execution_id,
            lease_id,
            prev_owner: None,
            at,
        },
        "reclaimed" => LeaseHistoryEvent::Reclaimed {
            cursor,
            execution_id,
            new_lease_id: lease_id,
            new_owner: None,
            at,
        },
        "revoked" => LeaseHistoryEvent::Revoked {
            cursor,
            execution_id,
            lease_id,
            revoked_by: "operator".to_owned(),
            at,
        },
        other => {
            tracing::warn!(event_type = other, "skipping an unknown lease event type");
            return Ok(None);
        }
    }))
}

pub(super) async fn subscribe_signal_delivery(
    backend: &SqliteBackend,
    cursor: stream_subscribe::StreamCursor,
    filter: &ScannerFilter,
) -> Result<SignalDeliverySubscription, EngineError> {
    const OP: &str = "subscribe_signal_delivery";
    let filter = outbox_filter(filter)?;
    let after = start_after(backend, OP, Outbox::SignalDelivery, &cursor).await?;
    Ok(follow::follow(
        backend,
        OutboxFollow {
            op: OP,
            outbox: Outbox::SignalDelivery,
            filter,
            decode: signal_delivery_event,
        },
        after,
    ))
}

/// A signal-delivery row as ff-core's event. The stored effect is `deliver_signal`'s answer:
/// `resume_condition_satisfied` is `Satisfied`, anything else goes through ff-core's
/// `from_wire` (`appended_to_waitpoint` is `Other`); a row without one (written before the
/// effect was recorded) is `Satisfied`, as upstream reports every delivery.
fn signal_delivery_event(
    event: OutboxEvent,
    cursor: stream_subscribe::StreamCursor,
) -> Result<Option<SignalDeliveryEvent>, EngineError> {
    let execution_id = event_execution(&event)?;
    let Some(signal) = event.signal else {
        return Err(validation(
            ValidationKind::Corruption,
            format!("signal event {} carries no signal", event.event_id),
        ));
    };
    let corrupt = |column: &str, text: &str, error: uuid::Error| {
        validation(
            ValidationKind::Corruption,
            format!("ff_signal_event.{column} parse '{text}': {error}"),
        )
    };
    let signal_id = SignalId::parse(&signal.signal_id)
        .map_err(|error| corrupt("signal_id", &signal.signal_id, error))?;
    let waitpoint_id = signal
        .waitpoint_id
        .as_deref()
        .map(|text| WaitpointId::parse(text).map_err(|error| corrupt("waitpoint_id", text, error)))
        .transpose()?;
    let effect = match signal.effect.as_deref() {
        None | Some("resume_condition_satisfied") => SignalDeliveryEffect::Satisfied,
        Some(other) => SignalDeliveryEffect::from_wire(other),
    };
    Ok(Some(SignalDeliveryEvent::new(
        cursor,
        execution_id,
        signal_id,
        waitpoint_id,
        signal.source_identity,
        effect,
        TimestampMs::from_millis(event.at),
    )))
}

pub(super) async fn subscribe_instance_tags(
    backend: &SqliteBackend,
    cursor: stream_subscribe::StreamCursor,
) -> Result<InstanceTagSubscription, EngineError> {
    const OP: &str = "subscribe_instance_tags";
    let after = start_after(backend, OP, Outbox::InstanceTags, &cursor).await?;
    Ok(follow::follow(
        backend,
        OutboxFollow {
            op: OP,
            outbox: Outbox::InstanceTags,
            filter: streams::OutboxFilter {
                namespace: None,
                instance_tag: None,
            },
            decode: instance_tag_event,
        },
        after,
    ))
}

/// An instance-tag row as ff-core's event (`tag` = `<key>=<value>`); unknown types are skipped.
fn instance_tag_event(
    event: OutboxEvent,
    cursor: stream_subscribe::StreamCursor,
) -> Result<Option<InstanceTagEvent>, EngineError> {
    let execution_id = event_execution(&event)?;
    let tag = event.tag.unwrap_or_default();
    let at = TimestampMs::from_millis(event.at);
    Ok(match event.kind.as_str() {
        "attached" => Some(InstanceTagEvent::Attached {
            cursor,
            execution_id,
            tag,
            at,
        }),
        "cleared" => Some(InstanceTagEvent::Cleared {
            cursor,
            execution_id,
            tag,
            at,
        }),
        other => {
            tracing::warn!(
                event_type = other,
                "skipping an unknown instance-tag event type"
            );
            None
        }
    })
}
