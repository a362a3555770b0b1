//! Usage reports (the check-and-apply algorithm of the module docs), the per-execution ledger
//! and its release.

use crate::bindings::budgets::{
    Breach, DimensionAmount, RecordSpendArgs, ReportUsageAdminArgs, ReportUsageArgs, UsageOutcome,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{corruption, invalid_input};
use crate::ids::ExecutionRef;
use crate::json;
use crate::lease_holder::lease_prelude;
use crate::types::{EngineError, StateKind};

use super::policy::Limits;
use super::{check_dimension_names, stored_amount};

/// How long a dedup row is meant to be remembered (written, not enforced; see
/// `docs/semantics.md`).
const DEDUP_TTL_MS: i64 = 86_400_000;

/// How a report treats a replay and whether it keeps a ledger.
enum Mode<'a> {
    /// `report-usage`, `report-usage-admin`: a replay returns the stored outcome.
    Report,
    /// `record-spend`: a replay is `already-applied`; deltas go to this execution's ledger
    /// (its bare UUID).
    Spend { execution_uuid: &'a str },
}

/// One checked delta: the dimension and the amount, as stored.
struct Delta<'a> {
    dimension: &'a str,
    amount: i64,
}

/// Check the deltas (count, distinct names, each at most `i64::MAX`) and order them by
/// dimension name (byte order).
fn checked_deltas<'a>(
    op: &str,
    deltas: impl ExactSizeIterator<Item = (&'a str, u64)> + Clone,
) -> Result<Vec<Delta<'a>>, EngineError> {
    check_dimension_names(op, deltas.clone().map(|(dimension, _)| dimension))?;
    let mut checked = deltas
        .map(|(dimension, amount)| {
            Ok(Delta {
                dimension,
                amount: stored_amount(op, &format!("delta for dim={dimension}"), amount)?,
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    checked.sort_unstable_by(|a, b| a.dimension.cmp(b.dimension));
    Ok(checked)
}

/// Report usage as an operator: `Validation(InvalidInput, "report_usage_admin: dimensions and
/// deltas length mismatch")` when the lists differ in length.
pub fn report_usage_admin(
    db: &mut impl Db,
    args: &ReportUsageAdminArgs,
) -> Result<UsageOutcome, EngineError> {
    const OP: &str = "report_usage_admin";
    if args.dimensions.len() != args.deltas.len() {
        return Err(invalid_input(
            "report_usage_admin: dimensions and deltas length mismatch",
        ));
    }
    let deltas = checked_deltas(
        OP,
        args.dimensions
            .iter()
            .map(String::as_str)
            .zip(args.deltas.iter().copied()),
    )?;
    apply_usage(
        db,
        &args.budget_id,
        &deltas,
        args.dedup_key.as_deref(),
        Mode::Report,
        args.now,
    )
}

/// Report usage as the worker holding the execution's lease: the lease must be the current
/// attempt's (the lease-holder's handle checks) and live at `now` (`State(LeaseExpired)`).
pub fn report_usage(db: &mut impl Db, args: &ReportUsageArgs) -> Result<UsageOutcome, EngineError> {
    let deltas = checked_deltas("report_usage", amounts(&args.deltas))?;
    let lease = &args.lease;
    let (_, attempt) = lease_prelude(
        db,
        &lease.execution_id,
        lease.attempt_index,
        lease.lease_epoch,
        &lease.lease_id,
        &lease.attempt_id,
    )?;
    if !attempt.lease_live_at(args.now) {
        return Err(EngineError::State(StateKind::LeaseExpired));
    }
    apply_usage(
        db,
        &args.budget_id,
        &deltas,
        args.dedup_key.as_deref(),
        Mode::Report,
        args.now,
    )
}

/// Report usage attributed to an execution: applied deltas also go to its ledger row.
pub fn record_spend(db: &mut impl Db, args: &RecordSpendArgs) -> Result<UsageOutcome, EngineError> {
    let execution = ExecutionRef::parse(&args.execution_id)?;
    let deltas = checked_deltas("record_spend", amounts(&args.deltas))?;
    let execution_uuid = execution.bare_uuid();
    apply_usage(
        db,
        &args.budget_id,
        &deltas,
        Some(args.idempotency_key.as_str()),
        Mode::Spend {
            execution_uuid: &execution_uuid,
        },
        args.now,
    )
}

fn amounts(deltas: &[DimensionAmount]) -> impl ExactSizeIterator<Item = (&str, u64)> + Clone + '_ {
    deltas
        .iter()
        .map(|delta| (delta.dimension.as_str(), delta.amount))
}

/// Subtract the execution's ledger from the budget's counters (floored at 0) and delete the
/// ledger; no ledger is a no-op.
pub fn release_budget(
    db: &mut impl Db,
    budget_id: &str,
    execution_id: &str,
    now: i64,
) -> Result<(), EngineError> {
    let execution_uuid = ExecutionRef::parse(execution_id)?.bare_uuid();
    db.run(
        "UPDATE ff_budget_usage SET \
             current_value = max(0, current_value - ledger.delta_total), updated_at_ms = ?3 \
         FROM (SELECT dimensions_key, delta_total FROM ff_budget_usage_by_exec \
               WHERE partition_key = 0 AND budget_id = ?1 AND execution_id = ?2) AS ledger \
         WHERE ff_budget_usage.partition_key = 0 AND ff_budget_usage.budget_id = ?1 \
             AND ff_budget_usage.dimensions_key = ledger.dimensions_key",
        &[text(budget_id), text(execution_uuid.as_str()), int(now)],
    )?;
    db.run(
        "DELETE FROM ff_budget_usage_by_exec \
         WHERE partition_key = 0 AND budget_id = ?1 AND execution_id = ?2",
        &[text(budget_id), text(execution_uuid)],
    )?;
    Ok(())
}

/// The check-and-apply algorithm (module docs), on checked, ordered deltas.
fn apply_usage(
    db: &mut impl Db,
    budget_id: &str,
    deltas: &[Delta<'_>],
    dedup_key: Option<&str>,
    mode: Mode<'_>,
    now: i64,
) -> Result<UsageOutcome, EngineError> {
    let limits = Limits::load(db, budget_id)?.unwrap_or_default();
    let dedup_key = dedup_key.filter(|key| !key.is_empty());
    if let Some(key) = dedup_key {
        let reserved = db.run(
            "INSERT INTO ff_budget_usage_dedup \
                 (partition_key, dedup_key, outcome_json, applied_at_ms, expires_at_ms) \
             VALUES (0, ?1, '{}', ?2, ?3) ON CONFLICT (partition_key, dedup_key) DO NOTHING",
            &[text(key), int(now), int(now.saturating_add(DEDUP_TTL_MS))],
        )?;
        if reserved == 0 {
            return match mode {
                Mode::Report => stored_outcome(db, key),
                Mode::Spend { .. } => Ok(UsageOutcome::AlreadyApplied),
            };
        }
    }
    let outcome = check_and_apply(db, budget_id, deltas, &limits, &mode, now)?;
    if let Some(key) = dedup_key {
        db.run(
            "UPDATE ff_budget_usage_dedup SET outcome_json = ?2 \
             WHERE partition_key = 0 AND dedup_key = ?1",
            &[text(key), text(outcome_json(&outcome))],
        )?;
    }
    Ok(outcome)
}

fn check_and_apply(
    db: &mut impl Db,
    budget_id: &str,
    deltas: &[Delta<'_>],
    limits: &Limits,
    mode: &Mode<'_>,
    now: i64,
) -> Result<UsageOutcome, EngineError> {
    let mut new_values = Vec::with_capacity(deltas.len());
    for delta in deltas {
        let current = db
            .first_row(
                "SELECT current_value FROM ff_budget_usage \
                 WHERE partition_key = 0 AND budget_id = ?1 AND dimensions_key = ?2",
                &[text(budget_id), text(delta.dimension)],
            )?
            .and_then(|row| row.integer(0))
            .unwrap_or(0)
            .max(0);
        let new = current.saturating_add(delta.amount);
        if let Some(hard) = limits.hard_limit(delta.dimension)
            && new as u64 > hard
        {
            db.run(
                "UPDATE ff_budget_policy SET breach_count = breach_count + 1, \
                     last_breach_at_ms = ?2, last_breach_dim = ?3, updated_at_ms = ?2 \
                 WHERE partition_key = 0 AND budget_id = ?1",
                &[text(budget_id), int(now), text(delta.dimension)],
            )?;
            return Ok(UsageOutcome::HardBreach(Breach {
                dimension: delta.dimension.to_owned(),
                current_usage: current as u64,
                limit: hard,
            }));
        }
        new_values.push(new);
    }
    let mut soft_breach = None;
    for (delta, &new) in deltas.iter().zip(&new_values) {
        db.run(
            "INSERT INTO ff_budget_usage \
                 (partition_key, budget_id, dimensions_key, current_value, last_reset_at_ms, updated_at_ms) \
             VALUES (0, ?1, ?2, ?3, NULL, ?4) \
             ON CONFLICT (partition_key, budget_id, dimensions_key) DO UPDATE SET \
                 current_value = excluded.current_value, updated_at_ms = excluded.updated_at_ms",
            &[text(budget_id), text(delta.dimension), int(new), int(now)],
        )?;
        if let Mode::Spend { execution_uuid } = mode {
            db.run(
                "INSERT INTO ff_budget_usage_by_exec \
                     (partition_key, budget_id, execution_id, dimensions_key, delta_total, updated_at_ms) \
                 VALUES (0, ?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (partition_key, budget_id, execution_id, dimensions_key) DO UPDATE SET \
                     delta_total = delta_total + excluded.delta_total, \
                     updated_at_ms = excluded.updated_at_ms",
                &[
                    text(budget_id),
                    text(*execution_uuid),
                    text(delta.dimension),
                    int(delta.amount),
                    int(now),
                ],
            )?;
        }
        if soft_breach.is_none()
            && let Some(soft) = limits.soft_limit(delta.dimension)
            && new as u64 > soft
        {
            soft_breach = Some(Breach {
                dimension: delta.dimension.to_owned(),
                current_usage: new as u64,
                limit: soft,
            });
        }
    }
    let Some(breach) = soft_breach else {
        return Ok(UsageOutcome::Ok);
    };
    db.run(
        "UPDATE ff_budget_policy SET soft_breach_count = soft_breach_count + 1, updated_at_ms = ?2 \
         WHERE partition_key = 0 AND budget_id = ?1",
        &[text(budget_id), int(now)],
    )?;
    Ok(UsageOutcome::SoftBreach(breach))
}

/// An outcome as upstream's `outcome_json` (`{"kind":…}` plus the breach's fields).
fn outcome_json(outcome: &UsageOutcome) -> String {
    let breach = |kind: &str, limit_name: &str, breach: &Breach| {
        format!(
            "{{\"kind\":\"{kind}\",\"dimension\":{},\"current_usage\":{},\"{limit_name}\":{}}}",
            json::string(&breach.dimension),
            breach.current_usage,
            breach.limit
        )
    };
    match outcome {
        UsageOutcome::Ok => "{\"kind\":\"Ok\"}".to_owned(),
        UsageOutcome::AlreadyApplied => "{\"kind\":\"AlreadyApplied\"}".to_owned(),
        UsageOutcome::SoftBreach(soft) => breach("SoftBreach", "soft_limit", soft),
        UsageOutcome::HardBreach(hard) => breach("HardBreach", "hard_limit", hard),
    }
}

/// The outcome stored with a dedup key; the placeholder `{}` is `already-applied`.
fn stored_outcome(db: &mut impl Db, key: &str) -> Result<UsageOutcome, EngineError> {
    let row = db
        .first_row(
            "SELECT json_valid(outcome_json), json_extract(doc, '$.kind'), \
                 json_extract(doc, '$.dimension'), json_extract(doc, '$.current_usage'), \
                 coalesce(json_extract(doc, '$.soft_limit'), json_extract(doc, '$.hard_limit')), \
                 outcome_json = '{}' \
             FROM (SELECT outcome_json, \
                       CASE WHEN json_valid(outcome_json) THEN outcome_json ELSE '{}' END AS doc \
                   FROM ff_budget_usage_dedup WHERE partition_key = 0 AND dedup_key = ?1)",
            &[text(key)],
        )?
        .ok_or_else(|| corruption("budget dedup row vanished during the report"))?;
    if row.integer(0) != Some(1) {
        return Err(corruption("dedup outcome_json decode: not valid JSON"));
    }
    if row.integer(5) == Some(1) {
        return Ok(UsageOutcome::AlreadyApplied);
    }
    let breach = || Breach {
        dimension: row.text_or_empty(2),
        current_usage: row.integer(3).map_or(0, |value| value.max(0) as u64),
        limit: row.integer(4).map_or(0, |value| value.max(0) as u64),
    };
    match row.text(1).as_deref() {
        None => Err(corruption("budget dedup outcome_json missing `kind`")),
        Some("Ok") => Ok(UsageOutcome::Ok),
        Some("AlreadyApplied") => Ok(UsageOutcome::AlreadyApplied),
        Some("SoftBreach") => Ok(UsageOutcome::SoftBreach(breach())),
        Some("HardBreach") => Ok(UsageOutcome::HardBreach(breach())),
        Some(other) => Err(corruption(format!(
            "budget dedup outcome_json unknown kind: {other}"
        ))),
    }
}
