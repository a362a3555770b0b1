//! The three ways a lease holder's attempt ends, shared by the typed and handle operations:
//! [`finish_successfully`], [`schedule_retry`] and [`fail_terminally`]. Each writes the attempt
//! row, then the execution row (through [`update_exec`]), then the outbox in reference §9's
//! order. `raw_fields` values are JSON strings, as upstream writes them.

use crate::bindings::lease_holder::{FailOutcome, RetryScheduled};
use crate::db::{Db, DbExt, int, text};
use crate::exec::{
    Exec, StateVector, clamp_u32, record_completion_event, record_lease_event,
    update_exec_formatted,
};
use crate::sql::Value;
use crate::types::EngineError;

/// The attempt whose lease ends, and the lease id its outbox rows carry.
#[derive(Debug, Clone, Copy)]
pub struct EndingLease<'a> {
    /// The execution, as loaded by the operation.
    pub exec: &'a Exec,
    /// The attempt that held the lease (the execution's current attempt).
    pub attempt_index: i64,
    /// The lease id for the `revoked` lease event; `None` only for a hand-seeded attempt row
    /// completed or failed by an operator without a fence.
    pub lease_id: Option<&'a str>,
    /// The time of the operation.
    pub now: i64,
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// Stored as `raw_fields.failure_reason` (and `pending_retry_reason` on a retry).
    pub reason: &'a str,
    /// Stored as `raw_fields.last_failure_message` when given (handle `fail`).
    pub last_failure_message: Option<&'a str>,
}

/// Close the attempt row: `terminal_at_ms = now`, `outcome`, no lease (epoch unchanged).
fn end_attempt(
    db: &mut impl Db,
    lease: &EndingLease<'_>,
    outcome: &str,
) -> Result<(), EngineError> {
    db.run(
        "UPDATE ff_attempt SET terminal_at_ms = ?4, outcome = ?5, lease_expires_at_ms = NULL \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        &[
            lease.exec.id.partition(),
            lease.exec.id.blob(),
            int(lease.attempt_index),
            int(lease.now),
            text(outcome),
        ],
    )?;
    Ok(())
}

/// When `value` is given, bind it as the next extra parameter of [`update_exec`] (`params` holds
/// the extra parameters, numbered from `?9`) and return the `json_set` pair storing it at
/// `raw_fields.<key>` (starting with `, `); otherwise return nothing.
fn optional_raw_field(params: &mut Vec<Value>, key: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => {
            params.push(text(value));
            format!(", '$.{key}', ?{}", params.len() + 8)
        }
        None => String::new(),
    }
}

/// Attempt `success`; execution COMPLETED with `terminal_at_ms = now`, `result` = `payload`
/// (NULL when `None`), `raw_fields.terminal_outcome = "success"`, `last_mutation_at` and
/// `result_encoding` (only when given); then CE(`success`), LE(`revoked`); then the flow
/// edges leaving it resolve ([`crate::flows::on_terminal`]).
pub fn finish_successfully(
    db: &mut impl Db,
    lease: &EndingLease<'_>,
    payload: Option<&[u8]>,
    result_encoding: Option<&str>,
) -> Result<(), EngineError> {
    end_attempt(db, lease, "success")?;
    let mut params = vec![
        int(lease.now),
        payload.map_or(Value::Null, |bytes| Value::Blob(bytes.to_vec())),
    ];
    let encoding = optional_raw_field(&mut params, "result_encoding", result_encoding);
    update_exec_formatted(
        db,
        &lease.exec.id,
        &StateVector::COMPLETED,
        &format!(
            ", terminal_at_ms = ?9, result = ?10, raw_fields = json_set(raw_fields, \
                 '$.terminal_outcome', 'success', '$.last_mutation_at', CAST(?9 AS TEXT){encoding})"
        ),
        &params,
    )?;
    record_completion_event(db, lease.exec, "success", lease.now)?;
    record_lease_event(db, lease.exec, "revoked", lease.lease_id, lease.now)?;
    crate::flows::on_terminal(db, lease.exec, "success", lease.now)
}

/// Attempt `retry`; execution RETRY_BACKOFF (`delay_ms > 0`) or RETRY_DUE (`delay_ms == 0`),
/// `attempt_index` unchanged, `raw_fields`: `pending_retry_reason`,
/// `pending_previous_attempt_index`, `retry_count` (+1), `delay_until`, `failure_reason`,
/// `last_mutation_at` (and `last_failure_message` when given); then LE(`revoked`).
///
/// Returns `RetryScheduled { delay_until: now + delay_ms, next_attempt_index: attempt + 1 }`.
pub fn schedule_retry(
    db: &mut impl Db,
    lease: &EndingLease<'_>,
    failure: &Failure<'_>,
    retry_count: i64,
    delay_ms: u64,
) -> Result<FailOutcome, EngineError> {
    let delay_until = crate::exec::lease_expiry(lease.now, delay_ms);
    end_attempt(db, lease, "retry")?;
    let state = if delay_ms > 0 {
        StateVector::RETRY_BACKOFF
    } else {
        StateVector::RETRY_DUE
    };
    let mut params = vec![
        text(failure.reason),
        text(lease.attempt_index.to_string()),
        text(retry_count.saturating_add(1).to_string()),
        text(delay_until.to_string()),
        text(lease.now.to_string()),
    ];
    let message = optional_raw_field(
        &mut params,
        "last_failure_message",
        failure.last_failure_message,
    );
    update_exec_formatted(
        db,
        &lease.exec.id,
        &state,
        &format!(
            ", raw_fields = json_set(raw_fields, '$.pending_retry_reason', ?9, \
                 '$.pending_previous_attempt_index', ?10, '$.retry_count', ?11, \
                 '$.delay_until', ?12, '$.failure_reason', ?9, '$.last_mutation_at', ?13{message})"
        ),
        &params,
    )?;
    record_lease_event(db, lease.exec, "revoked", lease.lease_id, lease.now)?;
    Ok(FailOutcome::RetryScheduled(RetryScheduled {
        delay_until,
        next_attempt_index: clamp_u32(lease.attempt_index).saturating_add(1),
    }))
}

/// Attempt `failed`; execution FAILED with `terminal_at_ms = now`, `raw_fields`:
/// `failure_reason`, `terminal_outcome = "failed"`, `last_mutation_at` (and
/// `last_failure_message` when given); `result` untouched; then CE(`failed`), LE(`revoked`);
/// then the flow edges leaving it resolve ([`crate::flows::on_terminal`]).
pub fn fail_terminally(
    db: &mut impl Db,
    lease: &EndingLease<'_>,
    failure: &Failure<'_>,
) -> Result<FailOutcome, EngineError> {
    end_attempt(db, lease, "failed")?;
    let mut params = vec![int(lease.now), text(failure.reason)];
    let message = optional_raw_field(
        &mut params,
        "last_failure_message",
        failure.last_failure_message,
    );
    update_exec_formatted(
        db,
        &lease.exec.id,
        &StateVector::FAILED,
        &format!(
            ", terminal_at_ms = ?9, raw_fields = json_set(raw_fields, '$.failure_reason', ?10, \
                 '$.terminal_outcome', 'failed', '$.last_mutation_at', CAST(?9 AS TEXT){message})"
        ),
        &params,
    )?;
    record_completion_event(db, lease.exec, "failed", lease.now)?;
    record_lease_event(db, lease.exec, "revoked", lease.lease_id, lease.now)?;
    crate::flows::on_terminal(db, lease.exec, "failed", lease.now)?;
    Ok(FailOutcome::TerminalFailed)
}
