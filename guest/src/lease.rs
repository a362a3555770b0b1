//! Acquiring a lease: the one write path every claim takes (claim grants, the lane scanner,
//! operator claims, resumed and reclaimed executions), so that the attempt row, the execution
//! row and the outbox always change together and the same way. [`lease_current_attempt`]
//! re-arms the current attempt for the paths that continue it (interrupted, resumed).

use crate::db::{Db, DbExt, int, text};
use crate::errors::corruption;
use crate::exec::{Exec, StateVector, clamp_u32, lease_expiry, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::{AttemptType, ClaimedExecution, EngineError};

/// Who takes the lease and on what terms: the parts of a [`LeaseRequest`] the caller of a
/// claim operation chooses.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    /// The worker taking the lease.
    pub worker_id: &'a str,
    /// The worker instance taking the lease (the lease holder).
    pub worker_instance_id: &'a str,
    /// The lease id, recorded on the attempt row; it fences every later call.
    pub lease_id: &'a str,
    /// The attempt id, recorded on the attempt row; it fences every later call.
    pub attempt_id: &'a str,
    /// How long the lease lasts from `now`.
    pub lease_ttl_ms: u64,
    /// The time of the claim.
    pub now: i64,
}

/// The [`Claimant`] named by a claim operation's arguments `$args`: any record with the
/// `worker_id`, `worker_instance_id`, `lease_id`, `attempt_id`, `lease_ttl_ms` and `now`
/// fields (the WIT gives each claim operation its own record type).
macro_rules! claimant_of {
    ($args:ident) => {
        $crate::lease::Claimant {
            worker_id: &$args.worker_id,
            worker_instance_id: &$args.worker_instance_id,
            lease_id: &$args.lease_id,
            attempt_id: &$args.attempt_id,
            lease_ttl_ms: $args.lease_ttl_ms,
            now: $args.now,
        }
    };
}
pub(crate) use claimant_of;

/// What a claim path asks for.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// Who takes the lease.
    pub claimant: Claimant<'a>,
    /// The attempt row to create or re-arm.
    pub attempt_index: i64,
    /// The attempt's type, recorded in its `raw_fields.attempt_type`.
    pub attempt_type: AttemptType,
    /// The attempt policy JSON; `None` (or an empty string) keeps the one a re-armed attempt
    /// row stored (a new row then has none).
    pub attempt_policy_json: Option<&'a str>,
    /// The epoch a newly created attempt row starts at (1, or one past the interrupted
    /// attempt's epoch for a reclaim). A re-armed row always gets its epoch plus one.
    pub first_epoch: i64,
    /// Replaces the execution deadline when given.
    pub execution_deadline_at: Option<i64>,
    /// The lease event to record: `acquired` or `reclaimed`.
    pub event: &'static str,
}

/// The lease a claim path acquired.
#[derive(Debug, Clone, Copy)]
pub struct AcquiredLease {
    /// The attempt that holds the lease.
    pub attempt_index: i64,
    /// That attempt's type.
    pub attempt_type: AttemptType,
    /// The lease's epoch on that attempt.
    pub lease_epoch: u64,
    /// When the lease expires.
    pub lease_expires_at: i64,
}

impl AcquiredLease {
    /// The lease as the claim operations return it to `claimant`, naming the execution as
    /// `execution_id`.
    pub fn claimed(&self, execution_id: String, claimant: &Claimant<'_>) -> ClaimedExecution {
        ClaimedExecution {
            execution_id,
            lease_id: claimant.lease_id.to_string(),
            lease_epoch: self.lease_epoch,
            attempt_index: clamp_u32(self.attempt_index),
            attempt_id: claimant.attempt_id.to_string(),
            attempt_type: self.attempt_type,
            lease_expires_at: self.lease_expires_at,
        }
    }
}

/// Upsert the attempt row, mark the execution leased, record the lease event.
///
/// The attempt row keeps its `started_at_ms` when re-armed and records the lease and attempt
/// ids in its `raw_fields` (they fence every later call). The execution's `attempt_index`
/// becomes the leased attempt, `started_at_ms` is set on the first claim only, and
/// `raw_fields.total_attempt_count` is recomputed from the attempt rows.
pub fn acquire_lease(
    db: &mut impl Db,
    exec: &Exec,
    request: &LeaseRequest<'_>,
) -> Result<AcquiredLease, EngineError> {
    let id = &exec.id;
    let claimant = &request.claimant;
    let lease_expires_at = lease_expiry(claimant.now, claimant.lease_ttl_ms);
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
                text(claimant.worker_id),
                text(claimant.worker_instance_id),
                int(request.first_epoch),
                int(lease_expires_at),
                int(claimant.now),
                text(request.attempt_policy_json.unwrap_or_default()),
                text(attempt_type_literal(request.attempt_type)),
                text(claimant.attempt_id),
                text(claimant.lease_id),
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
            int(claimant.now),
            request.execution_deadline_at.map_or(Value::Null, int),
            text(claimant.attempt_id),
            text(claimant.lease_id),
            text(claimant.worker_id),
            text(claimant.worker_instance_id),
        ],
    )?;

    record_lease_event(
        db,
        exec,
        request.event,
        Some(claimant.lease_id),
        claimant.now,
    )?;
    Ok(AcquiredLease {
        attempt_index: request.attempt_index,
        attempt_type: request.attempt_type,
        lease_epoch: u64::try_from(epoch).unwrap_or(0),
        lease_expires_at,
    })
}

/// Re-arm the execution's current attempt for `claimant` (epoch + 1, or a new row at epoch 1
/// when the attempt has none), keeping the type the attempt recorded; records `event`.
pub fn lease_current_attempt(
    db: &mut impl Db,
    exec: &Exec,
    claimant: &Claimant<'_>,
    event: &'static str,
) -> Result<AcquiredLease, EngineError> {
    let attempt_type = recorded_attempt_type(db, &exec.id, exec.attempt_index)?;
    acquire_lease(
        db,
        exec,
        &LeaseRequest {
            claimant: *claimant,
            attempt_index: exec.attempt_index,
            attempt_type,
            attempt_policy_json: None,
            first_epoch: 1,
            execution_deadline_at: None,
            event,
        },
    )
}

/// The type attempt `index` recorded in `raw_fields.attempt_type`; `Initial` when the row,
/// the key or a known literal is missing.
fn recorded_attempt_type(
    db: &mut impl Db,
    id: &ExecutionRef,
    index: i64,
) -> Result<AttemptType, EngineError> {
    let literal = db
        .first_row(
            "SELECT json_extract(raw_fields, '$.attempt_type') FROM ff_attempt \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(index)],
        )?
        .and_then(|row| row.text(0));
    Ok(match literal.as_deref() {
        Some("retry") => AttemptType::Retry,
        Some("reclaim") => AttemptType::Reclaim,
        Some("replay") => AttemptType::Replay,
        Some("fallback") => AttemptType::Fallback,
        _ => AttemptType::Initial,
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
