//! `replay-execution`: lift a terminal execution back to `runnable`.
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 2 | the execution exists | `NotFound(execution)` |
//! | 3 | it is terminal (`completed`, `failed`, `cancelled`, `expired`, `skipped`) | `State(ExecutionNotTerminal)` |
//! | 4 | `raw_fields.replay_count` < the policy's `max_replay_count` (default 10) | `State(MaxReplaysExhausted)` |
//!
//! The **skipped flow member** branch applies when the execution is in a flow and its attempt
//! outcome or terminal outcome is `skipped`: its edge group's `fail_count`, `skip_count` and
//! `running_count` are reset (`success_count` kept, upstream's rule) and it waits for its
//! dependencies again (`blocked_by_dependencies`, public `waiting_children`). Otherwise the
//! **normal** branch makes it `eligible_now` (public `waiting`). Both set
//! `attempt_state = pending_replay_attempt` (the next claim starts a new attempt of type
//! `replay`), clear `terminal_at_ms`, `result`, `cancellation_reason`, `cancelled_by` and
//! `raw_fields.terminal_outcome`, count `raw_fields.replay_count` (a JSON number) and stamp
//! `last_mutation_at`; the current attempt row, if any, loses its outcome, end time, worker
//! and lease, and its epoch moves on (a stale holder's fence no longer matches). One
//! `replayed` operator event records the branch.

use super::record_operator_event;
use crate::db::{Db, DbExt, int};
use crate::exec::{Attempt, Exec, StateVector, update_exec};
use crate::flows::common::blocked_by_dependencies;
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::{EngineError, PublicState, StateKind};

/// How many replays an execution allows when its policy names no `max_replay_count` (ff-core's
/// `ExecutionPolicy` default).
pub const DEFAULT_MAX_REPLAY_COUNT: i64 = 10;

/// Runnable again after a replay, claimable at once.
const REPLAYED: StateVector = StateVector {
    lifecycle_phase: "runnable",
    ownership_state: "unowned",
    eligibility_state: "eligible_now",
    public_state: "waiting",
    attempt_state: "pending_replay_attempt",
    blocking_reason: Some("waiting_for_worker"),
};

/// The columns and `raw_fields` keys a replay resets, after the state vector.
const RESET: &str = ", terminal_at_ms = NULL, result = NULL, cancellation_reason = NULL, \
     cancelled_by = NULL, \
     raw_fields = json_set(json_remove(raw_fields, '$.terminal_outcome'), \
         '$.replay_count', ?9, '$.last_mutation_at', CAST(?10 AS TEXT))";

/// Replay a terminal execution; see the module docs. Returns its new public state.
pub fn replay_execution(
    db: &mut impl Db,
    execution_id: &str,
    now: i64,
) -> Result<PublicState, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let exec = Exec::require(db, &id)?;
    if !exec.is_terminal() {
        return Err(EngineError::State(StateKind::ExecutionNotTerminal));
    }
    let (replays, allowed) = replay_budget(db, &id)?;
    if replays >= allowed {
        return Err(EngineError::State(StateKind::MaxReplaysExhausted));
    }
    let attempt = Attempt::load(db, &id, exec.attempt_index)?;
    let in_flow = !matches!(exec.outbox.flow_id, Value::Null);
    let skipped = attempt.as_ref().and_then(|a| a.outcome.as_deref()) == Some("skipped")
        || exec.terminal_label() == "skipped";
    let (state, public_state, details) = if in_flow && skipped {
        let groups_reset = db.run(
            "UPDATE ff_edge_group SET skip_count = 0, fail_count = 0, running_count = 0 \
             WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3 \
               AND EXISTS (SELECT 1 FROM ff_edge AS e WHERE e.partition_key = ?1 \
                   AND e.flow_id = ?2 AND e.downstream_eid = ?3)",
            &[id.partition(), exec.outbox.flow_id.clone(), id.blob()],
        )?;
        (
            blocked_by_dependencies("pending_replay_attempt"),
            PublicState::WaitingChildren,
            format!("{{\"branch\":\"skipped_flow_member\",\"groups_reset\":{groups_reset}}}"),
        )
    } else {
        (
            REPLAYED,
            PublicState::Waiting,
            "{\"branch\":\"normal\"}".to_owned(),
        )
    };
    update_exec(db, &id, &state, RESET, &[int(replays + 1), int(now)])?;
    if let Some(attempt) = attempt {
        db.run(
            "UPDATE ff_attempt SET outcome = NULL, terminal_at_ms = NULL, worker_id = NULL, \
                 worker_instance_id = NULL, lease_expires_at_ms = NULL, lease_epoch = lease_epoch + 1 \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[id.partition(), id.blob(), int(attempt.index)],
        )?;
    }
    record_operator_event(db, &exec, "replayed", &details, now)?;
    Ok(public_state)
}

/// `(replays so far, replays allowed)`: `raw_fields.replay_count` (absent → 0) and the
/// policy's `max_replay_count` (absent or not a number → [`DEFAULT_MAX_REPLAY_COUNT`]).
fn replay_budget(db: &mut impl Db, id: &ExecutionRef) -> Result<(i64, i64), EngineError> {
    let row = db.first_row(
        "SELECT CAST(COALESCE(json_extract(raw_fields, '$.replay_count'), 0) AS INTEGER), \
             CASE WHEN json_valid(policy) AND json_type(policy, '$.max_replay_count') = 'integer' \
                 THEN json_extract(policy, '$.max_replay_count') END \
         FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    let replays = row.as_ref().and_then(|row| row.integer(0)).unwrap_or(0);
    let allowed = row
        .as_ref()
        .and_then(|row| row.integer(1))
        .unwrap_or(DEFAULT_MAX_REPLAY_COUNT);
    Ok((replays, allowed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, NOW, TestDb};
    use crate::types::Entity;

    /// [`TestDb::leased`] finished: terminal with `public_state`, the attempt ended `outcome`.
    fn finished(public_state: &str, outcome: &str) -> TestDb {
        let db = TestDb::leased();
        db.exec(&format!(
            "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', ownership_state = 'unowned', \
                 eligibility_state = 'not_applicable', public_state = '{public_state}', \
                 attempt_state = 'attempt_terminal', terminal_at_ms = 5, result = X'01', \
                 cancellation_reason = 'why', cancelled_by = 'op', \
                 raw_fields = json_set(raw_fields, '$.terminal_outcome', '{outcome}'); \
             UPDATE ff_attempt SET outcome = '{outcome}', terminal_at_ms = 5, lease_expires_at_ms = NULL;"
        ));
        db
    }

    #[test]
    fn a_cancelled_execution_replays_to_waiting_and_its_attempt_is_reset() {
        let mut db = finished("cancelled", "cancelled");
        assert_eq!(
            replay_execution(&mut db, EXEC, NOW).unwrap(),
            PublicState::Waiting
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || eligibility_state || '|' || public_state || '|' || \
                 attempt_state || '|' || COALESCE(terminal_at_ms, result, cancellation_reason, cancelled_by, 'cleared') \
                 || '|' || json_type(raw_fields, '$.replay_count') || json_extract(raw_fields, '$.replay_count') \
                 || '|' || COALESCE(json_extract(raw_fields, '$.terminal_outcome'), 'none') FROM ff_exec_core"
            ),
            "runnable|eligible_now|waiting|pending_replay_attempt|cleared|integer1|none"
        );
        assert_eq!(
            db.one(
                "SELECT COALESCE(outcome, terminal_at_ms, worker_id, worker_instance_id, lease_expires_at_ms, 'cleared') \
                 || '|' || lease_epoch FROM ff_attempt"
            ),
            "cleared|2"
        );
        assert_eq!(
            db.one("SELECT event_type || '|' || details || '|' || occurred_at_ms FROM ff_operator_event"),
            format!("replayed|{{\"branch\":\"normal\"}}|{NOW}")
        );
    }

    #[test]
    fn a_skipped_flow_member_waits_for_children_with_its_group_counters_reset() {
        let mut db = finished("skipped", "skipped");
        let member = crate::testing::hex(EXEC);
        db.exec(&format!(
            "UPDATE ff_exec_core SET flow_id = X'0123456789abcdef0123456789abcdef'; \
             INSERT INTO ff_edge (partition_key, flow_id, edge_id, upstream_eid, downstream_eid, policy) \
                 VALUES (0, X'0123456789abcdef0123456789abcdef', randomblob(16), randomblob(16), X'{member}', '{{}}'); \
             INSERT INTO ff_edge_group (partition_key, flow_id, downstream_eid, policy, k_target, \
                 success_count, fail_count, skip_count, running_count) \
                 VALUES (0, X'0123456789abcdef0123456789abcdef', X'{member}', '{{}}', 1, 3, 5, 7, 2);"
        ));
        assert_eq!(
            replay_execution(&mut db, EXEC, NOW).unwrap(),
            PublicState::WaitingChildren
        );
        assert_eq!(
            db.one("SELECT success_count || fail_count || skip_count || running_count FROM ff_edge_group"),
            "3000"
        );
        assert_eq!(
            db.one("SELECT eligibility_state || '|' || public_state FROM ff_exec_core"),
            "blocked_by_dependencies|waiting_children"
        );
        assert_eq!(
            db.one("SELECT details FROM ff_operator_event"),
            "{\"branch\":\"skipped_flow_member\",\"groups_reset\":1}"
        );
    }

    #[test]
    fn refusals_write_nothing() {
        let mut db = TestDb::new();
        let err = db.fails_unchanged(|db| replay_execution(db, EXEC, NOW));
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
        let err = db.fails_unchanged(|db| replay_execution(db, "bad", NOW));
        assert!(matches!(err, EngineError::Validation(_)), "{err:?}");
        let mut db = TestDb::runnable();
        let err = db.fails_unchanged(|db| replay_execution(db, EXEC, NOW));
        assert_eq!(err, EngineError::State(StateKind::ExecutionNotTerminal));
    }

    #[test]
    fn the_replay_limit_is_the_policys_or_ten() {
        let mut db = finished("completed", "success");
        db.exec("UPDATE ff_exec_core SET raw_fields = json_set(raw_fields, '$.replay_count', 10)");
        let err = db.fails_unchanged(|db| replay_execution(db, EXEC, NOW));
        assert_eq!(err, EngineError::State(StateKind::MaxReplaysExhausted));
        db.exec("UPDATE ff_exec_core SET policy = '{\"max_replay_count\":11}'");
        replay_execution(&mut db, EXEC, NOW).unwrap();
        db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal', public_state = 'completed'");
        let err = db.fails_unchanged(|db| replay_execution(db, EXEC, NOW));
        assert_eq!(err, EngineError::State(StateKind::MaxReplaysExhausted));
    }
}
