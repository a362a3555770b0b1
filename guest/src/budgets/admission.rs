//! Admission blocking and the budget counter reconciler (Valkey's semantics; upstream SQLite
//! leaves both `Unavailable`).

use crate::bindings::budgets::{
    AdmissionBlockReason, BlockForAdmissionArgs, BlockForAdmissionOutcome, ReconcileCounts,
};
use crate::db::{Db, DbExt, int, text};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::routing::{is_blockable, park, require_lane};
use crate::types::{ContentionKind, EngineError};

use super::policy::{Limits, usage_rows};

/// The `blocking_reason` code of an admission block (ff-core's `BlockingReason::reason_code`).
fn reason_code(reason: AdmissionBlockReason) -> &'static str {
    match reason {
        AdmissionBlockReason::WaitingForBudget => "waiting_for_budget",
        AdmissionBlockReason::WaitingForQuota => "waiting_for_quota",
        AdmissionBlockReason::WaitingForCapableWorker => "waiting_for_capable_worker",
    }
}

/// Park an eligible execution for an admission reason.
///
/// `Validation(InvalidInput)` for an id that does not parse or a lane that is not the
/// execution's. Rejections (nothing written), with Valkey's script error text: a missing
/// execution, a terminal one (`execution_not_active: …` with its outcome, the current
/// attempt's lease epoch and attempt id), and one that is not `runnable`, `unowned` and either
/// eligible now or already parked (`execution_not_eligible: state changed`; Valkey parks any
/// runnable execution, which would lose a delay or a dependency gate). Otherwise the
/// execution is parked as `block-route` parks it; `unblock-execution` with the same reason
/// makes it eligible again.
pub fn block_execution_for_admission(
    db: &mut impl Db,
    args: &BlockForAdmissionArgs,
) -> Result<BlockForAdmissionOutcome, EngineError> {
    let id = ExecutionRef::parse(&args.execution_id)?;
    let Some(exec) = Exec::load(db, &id)? else {
        return Ok(BlockForAdmissionOutcome::Rejected(
            "execution_not_found: execution does not exist".into(),
        ));
    };
    require_lane(&exec, &args.lane_id)?;
    if exec.is_terminal() {
        let state = match exec.not_active(db)? {
            EngineError::Contention(ContentionKind::ExecutionNotActive(state)) => state,
            other => return Err(other),
        };
        return Ok(BlockForAdmissionOutcome::Rejected(format!(
            "execution_not_active: lifecycle_phase={} terminal_outcome={} lease_epoch={} attempt_id={}",
            state.lifecycle_phase,
            state.terminal_outcome.unwrap_or_default(),
            state.lease_epoch.unwrap_or_default(),
            state.attempt_id.unwrap_or_default(),
        )));
    }
    if !is_blockable(&exec) {
        return Ok(BlockForAdmissionOutcome::Rejected(
            "execution_not_eligible: state changed".into(),
        ));
    }
    park(
        db,
        &exec,
        reason_code(args.reason),
        args.reason_detail.as_deref().unwrap_or_default(),
        args.now,
    )?;
    Ok(BlockForAdmissionOutcome::Blocked)
}

/// One pass of Valkey's budget reconciler over every budget (all budget rows are in partition
/// 0). Budgets with a reset schedule, and budgets without any limit, are skipped. A budget is
/// *breached* when some counter is strictly above its non-zero hard limit (reports refuse to
/// get there, so only an out-of-band write or a lowered limit can do it); its policy document's
/// `breached_at_ms` records when a pass first saw that, and a pass that finds it no longer
/// breached removes it. `processed` counts budgets whose mark changed; a budget whose policy
/// is not valid JSON counts in `errors` and is left alone.
pub fn reconcile_budget_counters(
    db: &mut impl Db,
    now: i64,
) -> Result<ReconcileCounts, EngineError> {
    let budgets = db
        .query(
            "SELECT budget_id, CASE WHEN json_valid(policy_json) \
                 THEN json_type(policy_json, '$.breached_at_ms') IS NOT NULL ELSE 0 END \
             FROM ff_budget_policy WHERE partition_key = 0 ORDER BY budget_id",
            &[],
        )
        .map_err(crate::errors::storage)?;
    let mut counts = ReconcileCounts {
        processed: 0,
        errors: 0,
    };
    for values in budgets {
        let row = crate::db::Row(values);
        let budget_id = row.text_or_empty(0);
        let marked = row.integer(1) == Some(1);
        let limits = match Limits::load(db, &budget_id) {
            Ok(Some(limits)) => limits,
            Ok(None) => continue,
            Err(EngineError::Validation(_)) => {
                counts.errors += 1;
                continue;
            }
            Err(other) => return Err(other),
        };
        if limits.reset_interval_ms != 0 || (limits.hard.is_empty() && limits.soft.is_empty()) {
            continue;
        }
        let usage = usage_rows(db, &budget_id)?;
        let breached = usage.iter().any(|counter| {
            limits
                .hard_limit(&counter.dimension)
                .is_some_and(|limit| counter.amount > limit)
        });
        if breached == marked {
            continue;
        }
        let sql = if breached {
            "UPDATE ff_budget_policy SET policy_json = json_set(policy_json, '$.breached_at_ms', ?2) \
             WHERE partition_key = 0 AND budget_id = ?1"
        } else {
            "UPDATE ff_budget_policy SET policy_json = json_remove(policy_json, '$.breached_at_ms') \
             WHERE partition_key = 0 AND budget_id = ?1"
        };
        let params = if breached {
            vec![text(&budget_id), int(now)]
        } else {
            vec![text(&budget_id)]
        };
        db.run(sql, &params)?;
        counts.processed += 1;
    }
    Ok(counts)
}
