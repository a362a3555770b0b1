//! The `streams` interface: attempt output streams and the pages subscriptions read.
//!
//! - [`append_frame`] (the one writer): the caller's lease is fenced like every handle
//!   operation, the payload is at most [`MAX_FRAME_PAYLOAD_BYTES`], and the frame gets the id
//!   `<ms>-<seq>` with `ms = max(now, the stream's last ms)`, so ids only grow even when the
//!   host's clock steps back. Summary frames merge their patch into the stream's document
//!   ([`summary`]); best-effort frames trim the stream's older best-effort frames
//!   ([`retention`]).
//! - [`read_frames`], [`read_summary`]: read-only pages of one stream, by primary key.
//! - [`read_outbox`], [`change_heads`]: read-only pages of the outboxes (found by id, which
//!   only grows in commit order) and the newest ids, for the host's subscriptions and wake-ups
//!   ([`outbox`]).
//!
//! Pages are bounded twice: by a row limit and by a byte budget. A page stops before the item
//! that would exceed the budget, but always holds at least one item when one exists, so a
//! caller that continues after the page's last item always advances.

mod outbox;
mod retention;
mod summary;
#[cfg(test)]
mod tests;

pub use outbox::{change_heads, read_outbox};

use crate::bindings::streams::{
    AppendFrameArgs, AppendFrameOutcome, FrameMode, FramePage, FrameQuery, StreamClosed,
    StreamFrame, SummaryDocument,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{invalid_input, storage};
use crate::ids::ExecutionRef;
use crate::json;
use crate::lease_holder::handle_prelude;
use crate::sql::Value;
use crate::types::{EngineError, ValidationError, ValidationKind};

/// The largest frame payload (64 KiB, Valkey's limit); larger frames are refused with
/// `Validation { RetentionLimitExceeded }`.
pub const MAX_FRAME_PAYLOAD_BYTES: usize = 64 << 10;

/// Frames fetched per query while filling a page: small enough that a chunk of maximal frames
/// stays far below the host's per-query byte limit.
const FRAMES_PER_QUERY: u32 = 16;

/// A stream's key columns: `?1` partition, `?2` execution blob, `?3` attempt index.
fn stream_key(id: &ExecutionRef, attempt_index: u32) -> [Value; 3] {
    let [partition, blob] = id.key();
    [partition, blob, int(attempt_index)]
}

/// Append one frame to the lease's attempt stream (see the module docs).
pub fn append_frame(
    db: &mut impl Db,
    args: &AppendFrameArgs,
) -> Result<AppendFrameOutcome, EngineError> {
    if args.payload.len() > MAX_FRAME_PAYLOAD_BYTES {
        return Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::RetentionLimitExceeded,
            detail: format!(
                "frame payload is {} bytes; the limit is {MAX_FRAME_PAYLOAD_BYTES}",
                args.payload.len()
            ),
        }));
    }
    let (exec, _attempt) = handle_prelude(db, &args.lease)?;
    let payload = String::from_utf8_lossy(&args.payload);
    let patch = match args.mode {
        FrameMode::Summary => Some(summary::checked_patch(db, &payload)?),
        FrameMode::Durable | FrameMode::BestEffort => None,
    };
    let key = stream_key(&exec.id, args.lease.attempt_index);
    let (ts, seq) = next_position(db, &key, args.now)?;

    let mut fields = vec![
        ("encoding", "utf8".to_owned()),
        ("frame_type", args.frame_type.clone()),
        ("payload", payload.into_owned()),
        ("source", "worker".to_owned()),
    ];
    if let Some(correlation) = &args.correlation_id {
        fields.insert(0, ("correlation_id", correlation.clone()));
    }
    let fields_json = format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(name, value)| format!("{}:{}", json::string(name), json::string(value)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut params = Vec::from(key.clone());
    params.extend([
        int(ts),
        int(seq),
        text(fields_json),
        text(mode_literal(args.mode)),
    ]);
    let row_id = db
        .execute(
            "INSERT INTO ff_stream_frame (partition_key, execution_id, attempt_index, ts_ms, seq, \
                 fields, mode, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4)",
            &params,
        )
        .map_err(storage)?
        .last_insert_rowid;

    let summary_version = match patch {
        Some(patch) => Some(summary::apply(db, &key, &patch, ts)?),
        None => None,
    };
    if let (FrameMode::BestEffort, Some(config)) = (args.mode, &args.best_effort) {
        retention::trim_best_effort(db, &key, config, ts)?;
    }
    let frame_count = db
        .first_row(
            "SELECT COUNT(*) FROM ff_stream_frame \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &key,
        )?
        .and_then(|row| row.integer(0))
        .unwrap_or(0);
    Ok(AppendFrameOutcome {
        stream_id: format!("{ts}-{seq}"),
        frame_count: u64::try_from(frame_count).unwrap_or(0),
        summary_version,
        row_id,
    })
}

/// The stored `mode` literal (ff-core's `StreamMode::wire_str`).
fn mode_literal(mode: FrameMode) -> &'static str {
    match mode {
        FrameMode::Durable => "durable",
        FrameMode::Summary => "summary",
        FrameMode::BestEffort => "best_effort",
    }
}

/// The next frame's `(ms, seq)`: `now` with seq 0, or, when the stream already holds a frame at
/// `now` or later, that frame's ms with the next seq.
fn next_position(db: &mut impl Db, key: &[Value; 3], now: i64) -> Result<(i64, i64), EngineError> {
    let last = db.first_row(
        "SELECT ts_ms, seq FROM ff_stream_frame \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 \
         ORDER BY ts_ms DESC, seq DESC LIMIT 1",
        key,
    )?;
    Ok(match last.map(|row| (row.integer(0), row.integer(1))) {
        Some((Some(ts), Some(seq))) if ts >= now => (ts, seq.saturating_add(1)),
        _ => (now, 0),
    })
}

/// A page of one stream's frames in `(ms, seq)` order (see [`FrameQuery`]), with the stream's
/// closed marker when the page reached the end of the range and the stream is closed
/// ([`stream_closed`]); an unknown stream has no frames and is open.
pub fn read_frames(db: &mut impl Db, query: &FrameQuery) -> Result<FramePage, EngineError> {
    let id = ExecutionRef::parse(&query.execution_id)?;
    let (frames, reached_end) = frames_from(db, &id, query)?;
    let closed = if reached_end {
        stream_closed(db, &id, query.attempt_index)?
    } else {
        None
    };
    Ok(FramePage { frames, closed })
}

/// Whether the attempt's stream is closed, and when and why: the attempt ended (its row has a
/// terminal time), the execution ended, or the execution went on to a later attempt. A stream
/// takes no frames once closed (appends need the attempt's live lease).
fn stream_closed(
    db: &mut impl Db,
    id: &ExecutionRef,
    attempt_index: u32,
) -> Result<Option<StreamClosed>, EngineError> {
    let Some(mut row) = db.first_row(
        "SELECT c.lifecycle_phase = 'terminal', c.attempt_index, c.terminal_at_ms, \
             json_extract(c.raw_fields, '$.terminal_outcome'), a.terminal_at_ms, a.outcome, \
             (SELECT n.started_at_ms FROM ff_attempt n WHERE n.partition_key = ?1 \
                 AND n.execution_id = ?2 AND n.attempt_index > ?3 ORDER BY n.attempt_index LIMIT 1) \
         FROM ff_exec_core c LEFT JOIN ff_attempt a ON a.partition_key = c.partition_key \
             AND a.execution_id = c.execution_id AND a.attempt_index = ?3 \
         WHERE c.partition_key = ?1 AND c.execution_id = ?2",
        &stream_key(id, attempt_index),
    )?
    else {
        return Ok(None);
    };
    let execution_ended = row.integer(0) == Some(1);
    let superseded = row
        .integer(1)
        .is_some_and(|current| current > i64::from(attempt_index));
    let attempt_ended_at = row.integer(4);
    if !(execution_ended || superseded || attempt_ended_at.is_some()) {
        return Ok(None);
    }
    let at = attempt_ended_at
        .or(if execution_ended {
            row.integer(2)
        } else {
            None
        })
        .or(row.integer(6))
        .unwrap_or(0);
    let reason = row
        .take_text(5)
        .or_else(|| row.take_text(3))
        .unwrap_or_else(|| "superseded".to_owned());
    Ok(Some(StreamClosed { at, reason }))
}

/// The frames of [`read_frames`], and whether the page reached the end of the range (rather
/// than stopping at its limit or byte budget).
fn frames_from(
    db: &mut impl Db,
    id: &ExecutionRef,
    query: &FrameQuery,
) -> Result<(Vec<StreamFrame>, bool), EngineError> {
    let (mut ms, mut seq) = (query.start.ms, query.start.seq);
    if !query.start_inclusive {
        (ms, seq) = match seq.checked_add(1) {
            Some(next) => (ms, next),
            None if ms == i64::MAX => return Ok((Vec::new(), true)),
            None => (ms + 1, i64::MIN),
        };
    }
    let statement = if query.exclude_best_effort {
        READ_FRAMES_EXCLUDING_BEST_EFFORT
    } else {
        READ_FRAMES
    };
    let budget = usize::try_from(query.byte_budget).unwrap_or(usize::MAX);
    let mut frames = Vec::new();
    let mut bytes = 0usize;
    while frames.len() < query.limit as usize {
        let want = FRAMES_PER_QUERY.min(query.limit - frames.len() as u32);
        let mut params = Vec::from(stream_key(id, query.attempt_index));
        params.extend([
            int(ms),
            int(seq),
            int(query.end.ms),
            int(query.end.seq),
            int(want),
        ]);
        let rows = db.query(statement, &params).map_err(storage)?;
        let chunk = group_frames(rows);
        let fetched = chunk.len();
        for (position, frame) in chunk {
            let size = frame_bytes(&frame);
            if !frames.is_empty() && bytes.saturating_add(size) > budget {
                return Ok((frames, false));
            }
            bytes = bytes.saturating_add(size);
            frames.push(frame);
            (ms, seq) = position;
            if bytes >= budget {
                return Ok((frames, false));
            }
        }
        if fetched < want as usize {
            return Ok((frames, true));
        }
        (ms, seq) = match seq.checked_add(1) {
            Some(next) => (ms, next),
            None if ms == i64::MAX => return Ok((frames, true)),
            None => (ms + 1, i64::MIN),
        };
    }
    Ok((frames, false))
}

/// The frames of one stream from `(?4, ?5)` to `(?6, ?7)` inclusive, at most `?8`, one row per
/// field (a frame whose `fields` is not a JSON object has one row with a `NULL` name).
const READ_FRAMES: &str = "SELECT f.ts_ms, f.seq, j.key, \
         CASE j.type WHEN 'text' THEN j.value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
             WHEN 'null' THEN 'null' ELSE CAST(j.value AS TEXT) END \
     FROM (SELECT ts_ms, seq, fields FROM ff_stream_frame \
           WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 \
             AND (ts_ms, seq) >= (?4, ?5) AND (ts_ms, seq) <= (?6, ?7) \
           ORDER BY ts_ms, seq LIMIT ?8) f \
     LEFT JOIN json_each(CASE WHEN NOT json_valid(f.fields) THEN '{}' WHEN json_type(f.fields) = 'object' \
         THEN f.fields ELSE '{}' END) j \
     ORDER BY f.ts_ms, f.seq, j.key";

/// [`READ_FRAMES`] without best-effort frames.
const READ_FRAMES_EXCLUDING_BEST_EFFORT: &str = "SELECT f.ts_ms, f.seq, j.key, \
         CASE j.type WHEN 'text' THEN j.value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
             WHEN 'null' THEN 'null' ELSE CAST(j.value AS TEXT) END \
     FROM (SELECT ts_ms, seq, fields FROM ff_stream_frame \
           WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 \
             AND (ts_ms, seq) >= (?4, ?5) AND (ts_ms, seq) <= (?6, ?7) AND mode <> 'best_effort' \
           ORDER BY ts_ms, seq LIMIT ?8) f \
     LEFT JOIN json_each(CASE WHEN NOT json_valid(f.fields) THEN '{}' WHEN json_type(f.fields) = 'object' \
         THEN f.fields ELSE '{}' END) j \
     ORDER BY f.ts_ms, f.seq, j.key";

/// Rows of [`READ_FRAMES`] grouped into frames, each with its position.
fn group_frames(rows: Vec<Vec<Value>>) -> Vec<((i64, i64), StreamFrame)> {
    let mut frames: Vec<((i64, i64), StreamFrame)> = Vec::new();
    for row in rows {
        let mut row = crate::db::Row(row);
        let position = (row.integer(0).unwrap_or(0), row.integer(1).unwrap_or(0));
        if frames.last().is_none_or(|(last, _)| *last != position) {
            frames.push((
                position,
                StreamFrame {
                    id: format!("{}-{}", position.0, position.1),
                    fields: Vec::new(),
                },
            ));
        }
        if let (Some(name), Some(value)) = (row.take_text(2), row.take_text(3))
            && let Some((_, frame)) = frames.last_mut()
        {
            frame.fields.push((name, value));
        }
    }
    frames
}

/// What a frame costs against a page's byte budget.
fn frame_bytes(frame: &StreamFrame) -> usize {
    frame.id.len()
        + frame
            .fields
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

/// The stream's summary document, or `None` when no summary frame was appended.
pub fn read_summary(
    db: &mut impl Db,
    execution_id: &str,
    attempt_index: u32,
) -> Result<Option<SummaryDocument>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    summary::read(db, &stream_key(&id, attempt_index))
}

/// `Validation { InvalidInput }` for a summary patch that is not a JSON object.
fn not_an_object() -> EngineError {
    invalid_input("summary patch must be a JSON object")
}
