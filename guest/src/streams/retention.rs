//! Best-effort retention: a best-effort append updates the stream's append rate (an
//! exponential moving average) and keeps only the newest `K` best-effort frames, `K` sized to
//! cover the frames' time to live at that rate, between the configured floor and ceiling (the
//! ceiling wins). Unlike upstream, durable and summary frames are never trimmed.

use crate::bindings::streams::BestEffortConfig;
use crate::db::{Db, DbExt, Row, int};
use crate::sql::Value;
use crate::types::EngineError;

/// Update the stream's rate and trim its best-effort frames to the retained count.
pub fn trim_best_effort(
    db: &mut impl Db,
    key: &[Value; 3],
    config: &BestEffortConfig,
    ts: i64,
) -> Result<(), EngineError> {
    let (previous_rate, last_ts) = db
        .first_row(
            "SELECT ema_rate_hz, last_append_ts_ms FROM ff_stream_meta \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            key,
        )?
        .map(|row| (real(&row, 0), row.integer(1).unwrap_or(0)))
        .unwrap_or((0.0, 0));
    let keep = retained_count(config, previous_rate, last_ts, ts);
    let rate = updated_rate(config, previous_rate, last_ts, ts);
    let mut params = Vec::from(key.clone());
    params.extend([Value::Real(rate), int(ts), int(keep)]);
    db.run(
        "INSERT INTO ff_stream_meta (partition_key, execution_id, attempt_index, ema_rate_hz, \
             last_append_ts_ms, maxlen_applied_last) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (partition_key, execution_id, attempt_index) DO UPDATE SET \
             ema_rate_hz = excluded.ema_rate_hz, last_append_ts_ms = excluded.last_append_ts_ms, \
             maxlen_applied_last = excluded.maxlen_applied_last",
        &params,
    )?;
    let mut params = Vec::from(key.clone());
    params.push(int(keep));
    db.run(
        "DELETE FROM ff_stream_frame \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 \
           AND mode = 'best_effort' AND (ts_ms, seq) < ( \
             SELECT ts_ms, seq FROM ff_stream_frame \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3 \
               AND mode = 'best_effort' \
             ORDER BY ts_ms DESC, seq DESC LIMIT 1 OFFSET ?4 - 1)",
        &params,
    )?;
    Ok(())
}

/// The new moving average of the append rate, in appends per second.
fn updated_rate(config: &BestEffortConfig, previous: f64, last_ts: i64, ts: i64) -> f64 {
    let instant = if last_ts > 0 && ts > last_ts {
        1000.0 / (ts - last_ts) as f64
    } else {
        0.0
    };
    let alpha = if config.ema_alpha > 0.0 && config.ema_alpha <= 1.0 {
        config.ema_alpha
    } else {
        0.2
    };
    alpha * instant + (1.0 - alpha) * previous
}

/// How many best-effort frames to keep: twice the frames expected within the time to live,
/// at least the floor, at most the ceiling (the ceiling wins), and at least one.
fn retained_count(config: &BestEffortConfig, previous: f64, last_ts: i64, ts: i64) -> i64 {
    let rate = updated_rate(config, previous, last_ts, ts);
    let expected = (rate * f64::from(config.ttl_ms) / 1000.0).ceil() as i64 * 2;
    expected
        .max(i64::from(config.maxlen_floor))
        .min(i64::from(config.maxlen_ceiling))
        .max(1)
}

/// A REAL column (or an integer one) as `f64`; 0 when absent.
fn real(row: &Row, index: usize) -> f64 {
    match row.0.get(index) {
        Some(Value::Real(value)) => *value,
        Some(Value::Integer(value)) => *value as f64,
        _ => 0.0,
    }
}
