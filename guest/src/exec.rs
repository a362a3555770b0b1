//! The execution and attempt rows as the operations see them, the state vectors every
//! operation writes, lease fencing, the `ExecutionNotActive` report, payload limits and the
//! outbox. Every operation module builds on these, so that all paths agree on what a state
//! means (docs/semantics.md).

use crate::db::{Db, DbExt, Row, int, text};
use crate::errors::{contention, not_active, payload_too_large};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::{ContentionKind, EngineError, Entity, LeaseFence};

/// The largest input or result payload an execution may carry (8 MiB); larger ones are
/// refused with `Validation { kind: PayloadTooLarge }`.
pub const MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// A new execution's `input_payload` is at most [`MAX_PAYLOAD_BYTES`], else
/// `Validation { PayloadTooLarge }`.
pub fn check_input_payload(payload: &[u8]) -> Result<(), EngineError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(payload_too_large(format!(
            "input_payload is {} bytes (max {MAX_PAYLOAD_BYTES})",
            payload.len()
        )));
    }
    Ok(())
}

/// A result payload (absent passes) is at most [`MAX_PAYLOAD_BYTES`], else
/// `Validation { PayloadTooLarge }`.
pub fn check_result_payload(payload: Option<&[u8]>) -> Result<(), EngineError> {
    match payload {
        Some(bytes) if bytes.len() > MAX_PAYLOAD_BYTES => Err(payload_too_large(format!(
            "result payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            bytes.len()
        ))),
        _ => Ok(()),
    }
}

/// One `ff_exec_core` row, with the `raw_fields` keys the logic reads.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The execution's id.
    pub id: ExecutionRef,
    /// `lane_id`.
    pub lane_id: String,
    /// `lifecycle_phase`, as stored (legacy literals included).
    pub lifecycle_phase: String,
    /// `ownership_state`, as stored.
    pub ownership_state: String,
    /// `eligibility_state`, as stored.
    pub eligibility_state: String,
    /// `public_state`, as stored.
    pub public_state: String,
    /// `attempt_state`, as stored.
    pub attempt_state: String,
    /// `blocking_reason`.
    pub blocking_reason: Option<String>,
    /// The current attempt: the one holding (or that last held) the lease.
    pub attempt_index: i64,
    /// `lease_reclaim_count`: reclaims so far.
    pub lease_reclaim_count: i64,
    /// `raw_fields.terminal_outcome`.
    pub terminal_outcome: Option<String>,
    /// `raw_fields.current_attempt_id`.
    pub current_attempt_id: Option<String>,
    /// `raw_fields.delay_until`: when a delayed execution becomes claimable.
    pub delay_until: Option<i64>,
    /// `raw_fields.retry_count`: retries scheduled so far.
    pub retry_count: i64,
    /// What the outbox rows copy from the execution.
    pub outbox: OutboxLabels,
}

/// The execution's values that its outbox rows (lease history, completions) copy, as stored:
/// loaded with the execution, so that recording an event looks nothing up again.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxLabels {
    /// `flow_id`.
    pub flow_id: Value,
    /// `raw_fields.namespace`.
    pub namespace: Value,
    /// `raw_fields.tags."cairn.instance_id"`.
    pub instance_tag: Value,
}

/// The query every operation starts with; a constant, so no operation formats SQL to load a row.
const LOAD_EXEC: &str = "SELECT lane_id, lifecycle_phase, ownership_state, eligibility_state, public_state, \
     attempt_state, blocking_reason, attempt_index, lease_reclaim_count, \
     json_extract(raw_fields, '$.terminal_outcome'), json_extract(raw_fields, '$.current_attempt_id'), \
     CAST(json_extract(raw_fields, '$.delay_until') AS INTEGER), \
     CAST(json_extract(raw_fields, '$.retry_count') AS INTEGER), \
     flow_id, json_extract(raw_fields, '$.namespace'), \
     json_extract(raw_fields, '$.tags.\"cairn.instance_id\"') \
     FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2";

impl Exec {
    /// Load the execution, or `None` if it does not exist.
    pub fn load(db: &mut impl Db, id: &ExecutionRef) -> Result<Option<Exec>, EngineError> {
        Ok(db
            .first_row(LOAD_EXEC, &id.key())?
            .map(|row| Exec::from_row(id.clone(), row)))
    }

    /// Load the execution, or fail with `NotFound(execution)`.
    pub fn require(db: &mut impl Db, id: &ExecutionRef) -> Result<Exec, EngineError> {
        Self::load(db, id)?.ok_or(EngineError::NotFound(Entity::Execution))
    }

    /// Load the execution a claim takes over: it exists (`NotFound(execution)`), is
    /// `runnable` ([`Exec::not_active`]) and `unowned` (`Contention(LeaseConflict)`).
    pub fn require_runnable_unowned(
        db: &mut impl Db,
        id: &ExecutionRef,
    ) -> Result<Exec, EngineError> {
        let exec = Self::require(db, id)?;
        if exec.lifecycle_phase != "runnable" {
            return Err(exec.not_active(db)?);
        }
        if exec.ownership_state != "unowned" {
            return Err(contention(ContentionKind::LeaseConflict));
        }
        Ok(exec)
    }

    fn from_row(id: ExecutionRef, mut row: Row) -> Exec {
        Exec {
            id,
            lane_id: row.take_text(0).unwrap_or_default(),
            lifecycle_phase: row.take_text(1).unwrap_or_default(),
            ownership_state: row.take_text(2).unwrap_or_default(),
            eligibility_state: row.take_text(3).unwrap_or_default(),
            public_state: row.take_text(4).unwrap_or_default(),
            attempt_state: row.take_text(5).unwrap_or_default(),
            blocking_reason: row.take_text(6),
            attempt_index: row.integer(7).unwrap_or(0).max(0),
            lease_reclaim_count: row.integer(8).unwrap_or(0).max(0),
            terminal_outcome: row.take_text(9),
            current_attempt_id: row.take_text(10),
            delay_until: row.integer(11),
            retry_count: row.integer(12).unwrap_or(0).max(0),
            outbox: OutboxLabels {
                flow_id: row.take_value(13),
                namespace: row.take_value(14),
                instance_tag: row.take_value(15),
            },
        }
    }

    /// `runnable` and claimable now: eligible, or delayed with the delay passed (a due delay
    /// needs no promoter to run first).
    pub fn is_claimable_at(&self, now: i64) -> bool {
        self.lifecycle_phase == "runnable"
            && (self.eligibility_state == "eligible_now"
                || (self.eligibility_state == "not_eligible_until_time"
                    && self.delay_until.is_some_and(|until| until <= now)))
    }

    /// Terminal, whatever literal stored it (`cancelled` is upstream's legacy spelling).
    pub fn is_terminal(&self) -> bool {
        matches!(self.lifecycle_phase.as_str(), "terminal" | "cancelled")
    }

    /// `Contention(ExecutionNotActive)` with the observed state, the same on every operation:
    /// the recorded terminal outcome (`None` when none is recorded), the current attempt's lease
    /// epoch in decimal (`None` when that attempt has no row), the raw lifecycle and the current
    /// attempt id (`None` when none is recorded, or it is empty). Reads the current attempt; the
    /// outer `Err` is a storage failure.
    pub fn not_active(&self, db: &mut impl Db) -> Result<EngineError, EngineError> {
        let epoch = Attempt::load(db, &self.id, self.attempt_index)?
            .map(|attempt| attempt.lease_epoch.to_string());
        Ok(not_active(
            self.terminal_outcome.clone(),
            epoch,
            self.lifecycle_phase.clone(),
            self.current_attempt_id
                .clone()
                .filter(|attempt_id| !attempt_id.is_empty()),
        ))
    }

    /// The current attempt if it holds a lease: the execution is `active`, owned by a lease
    /// (`leased`, or `lease_expired_reclaimable` until someone reclaims it), and the attempt row
    /// names a worker instance.
    pub fn lease_holder(&self, db: &mut impl Db) -> Result<Option<Attempt>, EngineError> {
        if self.lifecycle_phase != "active"
            || !matches!(
                self.ownership_state.as_str(),
                "leased" | "lease_expired_reclaimable"
            )
        {
            return Ok(None);
        }
        Ok(
            Attempt::load(db, &self.id, self.attempt_index)?.filter(|attempt| {
                attempt
                    .worker_instance_id
                    .as_deref()
                    .is_some_and(|instance| !instance.is_empty())
            }),
        )
    }
}

/// One `ff_attempt` row, with the lease and attempt ids recorded at claim time.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `attempt_index`.
    pub index: i64,
    /// `worker_id` of the worker that last leased the attempt.
    pub worker_id: Option<String>,
    /// `worker_instance_id` of the lease holder; cleared when the lease is taken away.
    pub worker_instance_id: Option<String>,
    /// `lease_epoch`.
    pub lease_epoch: i64,
    /// `lease_expires_at_ms`; `None` when the attempt holds no live lease.
    pub lease_expires_at: Option<i64>,
    /// `outcome`, once the attempt ended.
    pub outcome: Option<String>,
    /// `raw_fields.lease_id`; absent on rows seeded without it.
    pub lease_id: Option<String>,
    /// `raw_fields.attempt_id`; absent on rows seeded without it.
    pub attempt_id: Option<String>,
}

impl Attempt {
    /// Load attempt `index` of the execution, or `None`.
    pub fn load(
        db: &mut impl Db,
        id: &ExecutionRef,
        index: i64,
    ) -> Result<Option<Attempt>, EngineError> {
        let row = db.first_row(
            "SELECT attempt_index, worker_id, worker_instance_id, lease_epoch, lease_expires_at_ms, outcome, \
                 json_extract(raw_fields, '$.lease_id'), json_extract(raw_fields, '$.attempt_id') \
             FROM ff_attempt WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(index)],
        )?;
        Ok(row.map(|row| Attempt {
            index: row.integer(0).unwrap_or(index),
            worker_id: row.text(1),
            worker_instance_id: row.text(2),
            lease_epoch: row.integer(3).unwrap_or(0),
            lease_expires_at: row.integer(4),
            outcome: row.text(5),
            lease_id: row.text(6).filter(|id| !id.is_empty()),
            attempt_id: row.text(7).filter(|id| !id.is_empty()),
        }))
    }

    /// Load attempt `index`, or fail with `NotFound(attempt)`.
    pub fn require(
        db: &mut impl Db,
        id: &ExecutionRef,
        index: i64,
    ) -> Result<Attempt, EngineError> {
        Self::load(db, id, index)?.ok_or(EngineError::NotFound(Entity::Attempt))
    }

    /// Whether a caller presenting `epoch`, `lease_id` and `attempt_id` holds this attempt's
    /// lease: the epoch must be equal, and each id must be equal where the row recorded one
    /// (rows seeded by hand may carry neither). Ids compare case-insensitively (UUID text).
    pub fn fence_matches(&self, epoch: u64, lease_id: &str, attempt_id: &str) -> bool {
        let same = |stored: &Option<String>, given: &str| {
            stored
                .as_deref()
                .is_none_or(|stored| stored.eq_ignore_ascii_case(given))
        };
        u64::try_from(self.lease_epoch).is_ok_and(|stored| stored == epoch)
            && same(&self.lease_id, lease_id)
            && same(&self.attempt_id, attempt_id)
    }

    /// [`Attempt::fence_matches`] for a typed-API fence.
    pub fn matches_fence(&self, fence: &LeaseFence) -> bool {
        self.fence_matches(fence.lease_epoch, &fence.lease_id, &fence.attempt_id)
    }

    /// The lease is live at `now`: it has an expiry and the expiry is in the future.
    pub fn lease_live_at(&self, now: i64) -> bool {
        self.lease_expires_at.is_some_and(|expires| expires > now)
    }

    /// The lease id an outbox row names: the one this row recorded at claim time, else the
    /// one the caller presented (hand-seeded rows record none).
    pub fn event_lease_id(&self, presented: Option<&str>) -> Option<String> {
        self.lease_id
            .clone()
            .or_else(|| presented.map(str::to_owned))
    }
}

/// A stored index or count (attempt index, attempt count, reclaim count) as the WIT's `u32`:
/// negative is 0, too large is `u32::MAX`.
pub fn clamp_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// The six state columns of `ff_exec_core`, written together so that `public_state` always
/// agrees with the rest (ff-core's `derive_public_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateVector {
    /// `lifecycle_phase`.
    pub lifecycle_phase: &'static str,
    /// `ownership_state`.
    pub ownership_state: &'static str,
    /// `eligibility_state`.
    pub eligibility_state: &'static str,
    /// `public_state`.
    pub public_state: &'static str,
    /// `attempt_state`.
    pub attempt_state: &'static str,
    /// `blocking_reason` (`NULL` when `None`).
    pub blocking_reason: Option<&'static str>,
}

impl StateVector {
    /// SQL assigning the six columns from parameters `?3` to `?8` (after the key's `?1`, `?2`).
    pub const ASSIGN: &'static str = "lifecycle_phase = ?3, ownership_state = ?4, eligibility_state = ?5, \
         public_state = ?6, attempt_state = ?7, blocking_reason = ?8";

    /// The values for [`StateVector::ASSIGN`].
    pub fn params(&self) -> [Value; 6] {
        [
            text(self.lifecycle_phase),
            text(self.ownership_state),
            text(self.eligibility_state),
            text(self.public_state),
            text(self.attempt_state),
            self.blocking_reason.map_or(Value::Null, text),
        ]
    }

    /// Waiting for its first attempt, claimable now.
    pub const WAITING: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "eligible_now",
        public_state: "waiting",
        attempt_state: "pending_first_attempt",
        blocking_reason: Some("waiting_for_worker"),
    };

    /// Waiting for its first attempt, not before `delay_until`.
    pub const DELAYED: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "not_eligible_until_time",
        public_state: "delayed",
        attempt_state: "pending_first_attempt",
        blocking_reason: Some("waiting_for_delay"),
    };

    /// Leased to a worker, its attempt running.
    pub const LEASED: StateVector = StateVector {
        lifecycle_phase: "active",
        ownership_state: "leased",
        eligibility_state: "not_applicable",
        public_state: "active",
        attempt_state: "running_attempt",
        blocking_reason: None,
    };

    /// A retry is scheduled and its backoff has not passed.
    pub const RETRY_BACKOFF: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "not_eligible_until_time",
        public_state: "delayed",
        attempt_state: "pending_retry_attempt",
        blocking_reason: Some("waiting_for_retry_backoff"),
    };

    /// A retry is scheduled and claimable now.
    pub const RETRY_DUE: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "eligible_now",
        public_state: "waiting",
        attempt_state: "pending_retry_attempt",
        blocking_reason: Some("waiting_for_worker"),
    };

    /// The current attempt was interrupted (lease revoked, or resumed from suspension) and the
    /// execution is claimable again on the same attempt.
    pub const INTERRUPTED: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "eligible_now",
        public_state: "waiting",
        attempt_state: "attempt_interrupted",
        blocking_reason: Some("waiting_for_worker"),
    };

    /// Resumed from suspension with a delay: the same attempt continues after `delay_until`.
    pub const INTERRUPTED_DELAYED: StateVector = StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "not_eligible_until_time",
        public_state: "delayed",
        attempt_state: "attempt_interrupted",
        blocking_reason: Some("waiting_for_resume_delay"),
    };

    /// The lease expired while the attempt was running; reclaimable.
    pub const LEASE_EXPIRED: StateVector = StateVector {
        lifecycle_phase: "active",
        ownership_state: "lease_expired_reclaimable",
        eligibility_state: "not_applicable",
        public_state: "active",
        attempt_state: "attempt_interrupted",
        blocking_reason: None,
    };

    /// Finished successfully.
    pub const COMPLETED: StateVector = StateVector {
        lifecycle_phase: "terminal",
        ownership_state: "unowned",
        eligibility_state: "not_applicable",
        public_state: "completed",
        attempt_state: "attempt_terminal",
        blocking_reason: None,
    };

    /// Failed for good.
    pub const FAILED: StateVector = StateVector {
        lifecycle_phase: "terminal",
        ownership_state: "unowned",
        eligibility_state: "not_applicable",
        public_state: "failed",
        attempt_state: "attempt_terminal",
        blocking_reason: None,
    };

    /// Ended by a timer (an execution deadline, an attempt timeout, a suspension timeout with
    /// behaviour `expire`).
    pub const EXPIRED: StateVector = StateVector {
        lifecycle_phase: "terminal",
        ownership_state: "unowned",
        eligibility_state: "not_applicable",
        public_state: "expired",
        attempt_state: "attempt_terminal",
        blocking_reason: None,
    };

    /// Cancelled.
    pub const CANCELLED: StateVector = StateVector {
        lifecycle_phase: "terminal",
        ownership_state: "unowned",
        eligibility_state: "not_applicable",
        public_state: "cancelled",
        attempt_state: "attempt_terminal",
        blocking_reason: None,
    };
}

/// `UPDATE ff_exec_core SET <state>[, <extra>] WHERE <key>`: `extra_assignments` (starting
/// with `, `) may use parameters from `?9` on, bound from `extra_params`. Returns the number of
/// rows changed. The statement is built once per call site (see [`update_exec_formatted`] for
/// assignments built at run time).
pub fn update_exec(
    db: &mut impl Db,
    id: &ExecutionRef,
    state: &StateVector,
    extra_assignments: &'static str,
    extra_params: &[Value],
) -> Result<u64, EngineError> {
    let statement = update_exec_statement(extra_assignments);
    run_update_exec(db, id, state, statement, extra_params)
}

/// [`update_exec`] with assignments built at run time: the statement is formatted every call.
pub fn update_exec_formatted(
    db: &mut impl Db,
    id: &ExecutionRef,
    state: &StateVector,
    extra_assignments: &str,
    extra_params: &[Value],
) -> Result<u64, EngineError> {
    let statement = format_update_exec(extra_assignments);
    run_update_exec(db, id, state, &statement, extra_params)
}

fn run_update_exec(
    db: &mut impl Db,
    id: &ExecutionRef,
    state: &StateVector,
    statement: &str,
    extra_params: &[Value],
) -> Result<u64, EngineError> {
    let mut params = Vec::with_capacity(8 + extra_params.len());
    params.extend(id.key());
    params.extend(state.params());
    params.extend_from_slice(extra_params);
    db.run(statement, &params)
}

fn format_update_exec(extra_assignments: &str) -> String {
    format!(
        "UPDATE ff_exec_core SET {}{extra_assignments} WHERE partition_key = ?1 AND execution_id = ?2",
        StateVector::ASSIGN
    )
}

/// The statement [`update_exec`] runs for the literal `extra_assignments`, built the first time
/// a call site runs and kept for the life of the instance (looked up by the literal's address:
/// comparing texts byte by byte would cost as much as formatting them).
fn update_exec_statement(extra_assignments: &'static str) -> &'static str {
    thread_local! {
        static BUILT: std::cell::RefCell<Vec<(&'static str, &'static str)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    BUILT.with_borrow_mut(|built| {
        let same = |extra: &&'static str| std::ptr::eq(*extra, extra_assignments);
        if let Some((_, statement)) = built.iter().find(|(extra, _)| same(extra)) {
            return *statement;
        }
        let statement: &'static str =
            Box::leak(format_update_exec(extra_assignments).into_boxed_str());
        built.push((extra_assignments, statement));
        statement
    })
}

/// The index a new attempt of this execution gets: one past the highest attempt row, or 0.
pub fn next_attempt_index(db: &mut impl Db, id: &ExecutionRef) -> Result<i64, EngineError> {
    Ok(db
        .first_row(
            "SELECT COALESCE(MAX(attempt_index) + 1, 0) FROM ff_attempt \
             WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .and_then(|row| row.integer(0))
        .unwrap_or(0))
}

/// `now + ttl`, saturating instead of overflowing.
pub fn lease_expiry(now: i64, ttl_ms: u64) -> i64 {
    now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
}

/// Append one row to the lease-history outbox (`acquired`, `renewed`, `revoked`, `expired`,
/// `reclaimed`), with the namespace and instance tag `exec` was loaded with.
pub fn record_lease_event(
    db: &mut impl Db,
    exec: &Exec,
    event_type: &str,
    lease_id: Option<&str>,
    now: i64,
) -> Result<(), EngineError> {
    // The labels come from the loaded row, not from subqueries: looking the execution up again
    // and parsing its `raw_fields` cost a fifth of a claim's SQL. No operation changes them
    // between loading the execution and recording its events.
    db.run(
        "INSERT INTO ff_lease_event (execution_id, lease_id, event_type, occurred_at_ms, \
             partition_key, namespace, instance_tag) \
         VALUES (?2, ?3, ?4, ?5, ?1, ?6, ?7)",
        &[
            exec.id.partition(),
            exec.id.bare_text(),
            lease_id.map_or(Value::Null, text),
            text(event_type),
            int(now),
            exec.outbox.namespace.clone(),
            exec.outbox.instance_tag.clone(),
        ],
    )?;
    Ok(())
}

/// Append one row to the completion outbox (`success`, `failed`), with the flow, namespace and
/// instance tag `exec` was loaded with (see [`record_lease_event`]).
pub fn record_completion_event(
    db: &mut impl Db,
    exec: &Exec,
    outcome: &str,
    now: i64,
) -> Result<(), EngineError> {
    db.run(
        "INSERT INTO ff_completion_event (partition_key, execution_id, flow_id, outcome, namespace, \
             instance_tag, occurred_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            exec.id.partition(),
            exec.id.blob(),
            exec.outbox.flow_id.clone(),
            text(outcome),
            exec.outbox.namespace.clone(),
            exec.outbox.instance_tag.clone(),
            int(now),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_statements_are_built_once_per_text() {
        let first = update_exec_statement(", priority = ?9");
        assert_eq!(
            first,
            format!(
                "UPDATE ff_exec_core SET {}, priority = ?9 WHERE partition_key = ?1 AND execution_id = ?2",
                StateVector::ASSIGN
            )
        );
        let again = update_exec_statement(", priority = ?9");
        assert!(std::ptr::eq(first, again), "reused, not rebuilt");
        assert_eq!(
            update_exec_statement(""),
            format_update_exec(""),
            "another call site, another statement"
        );
    }
}
