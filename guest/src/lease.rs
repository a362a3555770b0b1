//! Acquiring a lease: the one write path every claim takes (claim grants, the lane scanner,
//! operator claims, resumed and reclaimed executions), so that the attempt row, the execution
//! row and the outbox always change together and the same way.

use crate::db::{Db, DbExt, int, text};
use crate::engine::{AttemptType, EngineError};
use crate::errors::corruption;
use crate::exec::{StateVector, lease_expiry, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::sql::Value;

/// What a claim path asks for.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// The attempt row to create or re-arm.
    pub attempt_index: i64,
    pub worker_id: &'a str,
    pub worker_instance_id: &'a str,
    pub lease_id: &'a str,
    pub attempt_id: &'a str,
    pub attempt_type: AttemptType,
    /// The attempt policy JSON; empty keeps the stored one (or none).
    pub attempt_policy_json: &'a str,
    /// The epoch a newly created attempt row starts at (1, or one past the interrupted
    /// attempt's epoch for a reclaim). A re-armed row always gets its epoch plus one.
    pub first_epoch: i64,
    pub lease_ttl_ms: u64,
    pub now: i64,
    /// Replaces the execution deadline when given.
    pub execution_deadline_at: Option<i64>,
    /// The lease event to record: `acquired` or `reclaimed`.
    pub event: &'static str,
}

/// The lease a claim path acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredLease {
    pub lease_epoch: u64,
    pub lease_expires_at: i64,
}

/// Upsert the attempt row, mark the execution leased, record the lease event.
///
/// The attempt row keeps its `started_at_ms` when re-armed and records the lease and attempt
/// ids in its `raw_fields` (they fence every later call). The execution's `attempt_index`
/// becomes the leased attempt, `started_at_ms` is set on the first claim only, and
/// `raw_fields.total_attempt_count` is recomputed from the attempt rows.
pub fn acquire_lease(
    db: &mut impl Db,
    id: &ExecutionRef,
    request: &LeaseRequest<'_>,
) -> Result<AcquiredLease, EngineError> {
    let lease_expires_at = lease_expiry(request.now, request.lease_ttl_ms);
    let epoch = db
        .first_row(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
                 worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms, policy, raw_fields) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULLIF(?9, ''), \
                 json_object('attempt_type', ?10, 'attempt_id', ?11, 'lease_id', ?12)) \
             ON CONFLICT (partition_key, execution_id, attempt_index) DO UPDATE SET \
                 worker_id = excluded.worker_id, \
                 worker_instance_id = excluded.worker_instance_id, \
                 lease_epoch = ff_attempt.lease_epoch + 1, \
                 lease_expires_at_ms = excluded.lease_expires_at_ms, \
                 started_at_ms = COALESCE(ff_attempt.started_at_ms, excluded.started_at_ms), \
                 policy = COALESCE(excluded.policy, ff_attempt.policy), \
                 raw_fields = json_patch(ff_attempt.raw_fields, excluded.raw_fields), \
                 terminal_at_ms = NULL, \
                 outcome = NULL \
             RETURNING lease_epoch",
            &[
                id.partition(),
                id.blob(),
                int(request.attempt_index),
                text(request.worker_id),
                text(request.worker_instance_id),
                int(request.first_epoch),
                int(lease_expires_at),
                int(request.now),
                text(request.attempt_policy_json),
                text(attempt_type_literal(request.attempt_type)),
                text(request.attempt_id),
                text(request.lease_id),
            ],
        )?
        .and_then(|row| row.integer(0))
        .ok_or_else(|| corruption("ff_attempt upsert returned no lease_epoch"))?;

    update_exec(
        db,
        id,
        &StateVector::LEASED,
        ", attempt_index = ?9, started_at_ms = COALESCE(started_at_ms, ?10), \
         deadline_at_ms = COALESCE(?11, deadline_at_ms), \
         raw_fields = json_set(raw_fields, \
             '$.current_attempt_id', ?12, '$.current_lease_id', ?13, \
             '$.current_worker_id', ?14, '$.current_worker_instance_id', ?15, \
             '$.pending_retry_reason', '', '$.pending_replay_reason', '', \
             '$.pending_replay_requested_by', '', '$.pending_previous_attempt_index', '', \
             '$.last_mutation_at', CAST(?10 AS TEXT), \
             '$.total_attempt_count', (SELECT CAST(COALESCE(MAX(a.attempt_index) + 1, 0) AS TEXT) \
                 FROM ff_attempt a WHERE a.partition_key = ?1 AND a.execution_id = ?2))",
        &[
            int(request.attempt_index),
            int(request.now),
            request.execution_deadline_at.map_or(Value::Null, int),
            text(request.attempt_id),
            text(request.lease_id),
            text(request.worker_id),
            text(request.worker_instance_id),
        ],
    )?;

    record_lease_event(db, id, request.event, Some(request.lease_id), request.now)?;
    Ok(AcquiredLease {
        lease_epoch: u64::try_from(epoch).unwrap_or(0),
        lease_expires_at,
    })
}

/// The attempt type implied by the execution's `attempt_state` before a claim.
pub fn attempt_type_for(attempt_state: &str) -> AttemptType {
    match attempt_state {
        "pending_retry_attempt" => AttemptType::Retry,
        "pending_replay_attempt" => AttemptType::Replay,
        _ => AttemptType::Initial,
    }
}

/// The string form ff-core's serde uses for an attempt type.
pub fn attempt_type_literal(attempt_type: AttemptType) -> &'static str {
    match attempt_type {
        AttemptType::Initial => "initial",
        AttemptType::Retry => "retry",
        AttemptType::Reclaim => "reclaim",
        AttemptType::Replay => "replay",
        AttemptType::Fallback => "fallback",
    }
}
