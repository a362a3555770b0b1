//! `block-route` and `unblock-execution`; the rules are in the parent module's docs.

use super::require_lane;
use crate::bindings::routing::{BlockRouteArgs, BlockRouteOutcome, UnblockExecutionArgs};
use crate::db::{Db, DbExt, int, text};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::types::{EngineError, ValidationError, ValidationKind};

/// The eligibility state each blocking reason puts an execution in.
fn blocked_eligibility(reason_code: &str) -> Option<&'static str> {
    Some(match reason_code {
        "waiting_for_budget" => "blocked_by_budget",
        "waiting_for_quota" => "blocked_by_quota",
        "waiting_for_capable_worker" => "blocked_by_route",
        "paused_by_operator" => "blocked_by_operator",
        "paused_by_policy" => "blocked_by_lane_state",
        _ => return None,
    })
}

/// The eligibility states `block-route` may leave (or refresh).
const BLOCKABLE: [&str; 6] = [
    "eligible_now",
    "blocked_by_budget",
    "blocked_by_quota",
    "blocked_by_route",
    "blocked_by_operator",
    "blocked_by_lane_state",
];

/// The reasons `unblock-execution` accepts.
const UNBLOCKABLE_REASONS: [&str; 3] = [
    "waiting_for_budget",
    "waiting_for_quota",
    "waiting_for_capable_worker",
];

/// The eligibility states `unblock-execution` leaves.
const UNBLOCKABLE: [&str; 4] = [
    "blocked_by_budget",
    "blocked_by_quota",
    "blocked_by_route",
    "blocked_by_operator",
];

fn invalid_blocking_reason(reason: &str) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::InvalidBlockingReason,
        detail: format!("invalid blocking reason: {reason:?}"),
    })
}

/// Park an eligible (or already blocked) execution; see the module docs for the rules.
pub fn block_route(
    db: &mut impl Db,
    args: &BlockRouteArgs,
) -> Result<BlockRouteOutcome, EngineError> {
    if blocked_eligibility(&args.reason_code).is_none() {
        return Err(invalid_blocking_reason(&args.reason_code));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    require_lane(&exec, &args.lane_id)?;
    if exec.is_terminal() {
        return Ok(BlockRouteOutcome::Rejected("execution_not_active".into()));
    }
    if !is_blockable(&exec) {
        return Ok(BlockRouteOutcome::Rejected("execution_not_eligible".into()));
    }
    park(db, &exec, &args.reason_code, &args.reason_detail, args.now)?;
    Ok(BlockRouteOutcome::Blocked)
}

/// Whether `block-route` (and the budgets family's admission block) may park `exec`:
/// `runnable`, `unowned`, and eligible now or already parked for a reason.
pub(crate) fn is_blockable(exec: &Exec) -> bool {
    exec.lifecycle_phase == "runnable"
        && exec.ownership_state == "unowned"
        && BLOCKABLE.contains(&exec.eligibility_state.as_str())
}

/// Park `exec` for `reason_code` (one [`blocked_eligibility`] knows, else
/// `Validation(InvalidBlockingReason)`): the eligibility state the reason names,
/// `blocking_reason`, `public_state = rate_limited`, `raw_fields.blocking_detail` and
/// `raw_fields.last_mutation_at`. The caller has checked [`is_blockable`].
pub(crate) fn park(
    db: &mut impl Db,
    exec: &Exec,
    reason_code: &str,
    detail: &str,
    now: i64,
) -> Result<(), EngineError> {
    let eligibility =
        blocked_eligibility(reason_code).ok_or_else(|| invalid_blocking_reason(reason_code))?;
    let mut params = exec.id.key().to_vec();
    params.extend([text(eligibility), text(reason_code), text(detail), int(now)]);
    db.run(
        "UPDATE ff_exec_core SET eligibility_state = ?3, blocking_reason = ?4, \
             public_state = 'rate_limited', \
             raw_fields = json_set(raw_fields, '$.blocking_detail', ?5, \
                 '$.last_mutation_at', CAST(?6 AS TEXT)) \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &params,
    )?;
    Ok(())
}

/// Make a blocked execution eligible again; see the module docs for the rules.
pub fn unblock_execution(db: &mut impl Db, args: &UnblockExecutionArgs) -> Result<(), EngineError> {
    if !UNBLOCKABLE_REASONS.contains(&args.expected_blocking_reason.as_str()) {
        return Err(invalid_blocking_reason(&args.expected_blocking_reason));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    require_lane(&exec, &args.lane_id)?;
    let blocked = exec.lifecycle_phase == "runnable"
        && UNBLOCKABLE.contains(&exec.eligibility_state.as_str())
        && exec.blocking_reason.as_deref() == Some(args.expected_blocking_reason.as_str());
    if !blocked {
        return Ok(());
    }
    let mut params = id.key().to_vec();
    params.push(int(args.now));
    db.run(
        "UPDATE ff_exec_core SET eligibility_state = 'eligible_now', \
             blocking_reason = 'waiting_for_worker', public_state = 'waiting', \
             raw_fields = json_set(json_remove(raw_fields, '$.blocking_detail'), \
                 '$.last_mutation_at', CAST(?3 AS TEXT)) \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &params,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::invalid_input;
    use crate::routing::test_support::{id, seed};
    use crate::testing::{NOW, TestDb};
    use crate::types::Entity;

    fn block_args(execution_id: &str, reason: &str) -> BlockRouteArgs {
        BlockRouteArgs {
            execution_id: execution_id.into(),
            lane_id: "default".into(),
            reason_code: reason.into(),
            reason_detail: "no worker has gpu".into(),
            now: NOW,
        }
    }

    fn unblock_args(execution_id: &str, reason: &str) -> UnblockExecutionArgs {
        UnblockExecutionArgs {
            execution_id: execution_id.into(),
            lane_id: "default".into(),
            expected_blocking_reason: reason.into(),
            now: NOW + 5,
        }
    }

    fn state(db: &TestDb) -> String {
        db.one(
            "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || public_state || \
             '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
             COALESCE(json_extract(raw_fields, '$.blocking_detail'), 'NULL') || '|' || \
             json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core",
        )
    }

    #[test]
    fn every_reason_blocks_into_its_state_and_unblock_restores_eligibility() {
        for (reason, eligibility) in [
            ("waiting_for_budget", "blocked_by_budget"),
            ("waiting_for_quota", "blocked_by_quota"),
            ("waiting_for_capable_worker", "blocked_by_route"),
            ("paused_by_operator", "blocked_by_operator"),
            ("paused_by_policy", "blocked_by_lane_state"),
        ] {
            let mut db = TestDb::new();
            seed(&db, 1, 0, 0, 1, &[]);
            let exec = id(0, 1);
            assert_eq!(
                block_route(&mut db, &block_args(&exec, reason)).unwrap(),
                BlockRouteOutcome::Blocked
            );
            assert_eq!(
                state(&db),
                format!(
                    "runnable|unowned|{eligibility}|rate_limited|pending_first_attempt|{reason}|no worker has gpu|{NOW}"
                )
            );
            if UNBLOCKABLE_REASONS.contains(&reason) {
                unblock_execution(&mut db, &unblock_args(&exec, reason)).unwrap();
                assert_eq!(
                    state(&db),
                    format!(
                        "runnable|unowned|eligible_now|waiting|pending_first_attempt|waiting_for_worker|NULL|{}",
                        NOW + 5
                    )
                );
            }
        }
    }

    #[test]
    fn an_unblock_for_another_reason_or_of_an_unblocked_execution_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let exec = id(0, 1);
        let before = db.dump();
        unblock_execution(&mut db, &unblock_args(&exec, "waiting_for_capable_worker")).unwrap();
        assert_eq!(db.dump(), before);
        block_route(&mut db, &block_args(&exec, "waiting_for_budget")).unwrap();
        let blocked = db.dump();
        unblock_execution(&mut db, &unblock_args(&exec, "waiting_for_capable_worker")).unwrap();
        assert_eq!(db.dump(), blocked);
    }

    #[test]
    fn state_rejections_are_outcomes_and_write_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let exec = id(0, 1);
        for (lifecycle, eligibility, expected) in [
            ("terminal", "not_applicable", "execution_not_active"),
            ("cancelled", "cancelled", "execution_not_active"),
            ("active", "not_applicable", "execution_not_eligible"),
            (
                "runnable",
                "not_eligible_until_time",
                "execution_not_eligible",
            ),
            (
                "runnable",
                "blocked_by_dependencies",
                "execution_not_eligible",
            ),
        ] {
            db.exec(&format!(
                "UPDATE ff_exec_core SET lifecycle_phase = '{lifecycle}', eligibility_state = '{eligibility}'"
            ));
            let before = db.dump();
            assert_eq!(
                block_route(&mut db, &block_args(&exec, "waiting_for_capable_worker")).unwrap(),
                BlockRouteOutcome::Rejected(expected.into())
            );
            assert_eq!(db.dump(), before);
        }
    }

    #[test]
    fn bad_input_is_typed_and_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let exec = id(0, 1);
        let err = db.fails_unchanged(|db| block_route(db, &block_args(&exec, "because")));
        assert_eq!(err, invalid_blocking_reason("because"));
        let err = db.fails_unchanged(|db| {
            unblock_execution(db, &unblock_args(&exec, "paused_by_operator"))
        });
        assert_eq!(err, invalid_blocking_reason("paused_by_operator"));
        let err = db.fails_unchanged(|db| {
            block_route(db, &block_args("nonsense", "waiting_for_capable_worker"))
        });
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
        );
        let missing = id(0, 9);
        let err = db.fails_unchanged(|db| {
            block_route(db, &block_args(&missing, "waiting_for_capable_worker"))
        });
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
        let err = db.fails_unchanged(|db| {
            unblock_execution(db, &unblock_args(&missing, "waiting_for_quota"))
        });
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
        let mut other_lane = block_args(&exec, "waiting_for_capable_worker");
        other_lane.lane_id = "other".into();
        let err = db.fails_unchanged(|db| block_route(db, &other_lane));
        assert_eq!(
            err,
            invalid_input("lane_id \"other\" is not the execution's lane \"default\"")
        );
    }
}
