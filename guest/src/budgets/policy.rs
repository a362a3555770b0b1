//! Budget policies: creating, reading and resetting budgets, and the policy document's limits.

use crate::bindings::budgets::{
    BudgetStatus, BudgetUsageAndLimits, CreateBudgetArgs, CreateOutcome, DimensionAmount,
};
use crate::db::{Db, DbExt, int, opt_int, text};
use crate::errors::{corruption, invalid_input};
use crate::json;
use crate::types::{EngineError, Entity};

use super::{check_dimension_names, stored_amount};

/// The usage dimension Valkey's legacy code created as a placeholder; never reported.
const HIDDEN_DIMENSION: &str = "_init";

/// A budget's limits, read from its `policy_json`: the entries of `hard_limits` and
/// `soft_limits` whose value is a non-negative integer, and `reset_interval_ms` (0 when absent
/// or not an integer).
#[derive(Debug, Default)]
pub(super) struct Limits {
    pub hard: Vec<DimensionAmount>,
    pub soft: Vec<DimensionAmount>,
    pub reset_interval_ms: i64,
}

impl Limits {
    /// The limits of `budget_id`: `None` without a policy row; `Validation(Corruption)` when its
    /// `policy_json` is not valid JSON.
    pub fn load(db: &mut impl Db, budget_id: &str) -> Result<Option<Limits>, EngineError> {
        let Some(row) = db.first_row(
            "SELECT json_valid(policy_json), \
                 CASE WHEN json_valid(policy_json) \
                     AND json_type(policy_json, '$.reset_interval_ms') = 'integer' \
                 THEN json_extract(policy_json, '$.reset_interval_ms') ELSE 0 END \
             FROM ff_budget_policy WHERE partition_key = 0 AND budget_id = ?1",
            &[text(budget_id)],
        )?
        else {
            return Ok(None);
        };
        if row.integer(0) != Some(1) {
            return Err(corruption(format!(
                "budget {budget_id}: ff_budget_policy.policy_json is not valid JSON"
            )));
        }
        let mut limits = Limits {
            reset_interval_ms: row.integer(1).unwrap_or(0),
            ..Limits::default()
        };
        let rows = db
            .query(
                "SELECT 'hard', key, value FROM ff_budget_policy, json_each(policy_json, '$.hard_limits') \
                 WHERE partition_key = 0 AND budget_id = ?1 \
                     AND json_type(policy_json, '$.hard_limits') = 'object' \
                     AND type = 'integer' AND value >= 0 \
                 UNION ALL \
                 SELECT 'soft', key, value FROM ff_budget_policy, json_each(policy_json, '$.soft_limits') \
                 WHERE partition_key = 0 AND budget_id = ?1 \
                     AND json_type(policy_json, '$.soft_limits') = 'object' \
                     AND type = 'integer' AND value >= 0 \
                 ORDER BY 1, 2",
                &[text(budget_id)],
            )
            .map_err(crate::errors::storage)?;
        for values in rows {
            let row = crate::db::Row(values);
            let entry = DimensionAmount {
                dimension: row.text_or_empty(1),
                amount: row.integer(2).map_or(0, |value| value.max(0) as u64),
            };
            if row.text(0).as_deref() == Some("hard") {
                limits.hard.push(entry);
            } else {
                limits.soft.push(entry);
            }
        }
        Ok(Some(limits))
    }

    /// The hard limit of `dimension`, if one is set (> 0).
    pub fn hard_limit(&self, dimension: &str) -> Option<u64> {
        find_limit(&self.hard, dimension)
    }

    /// The soft limit of `dimension`, if one is set (> 0).
    pub fn soft_limit(&self, dimension: &str) -> Option<u64> {
        find_limit(&self.soft, dimension)
    }
}

fn find_limit(limits: &[DimensionAmount], dimension: &str) -> Option<u64> {
    limits
        .iter()
        .find(|limit| limit.dimension == dimension)
        .map(|limit| limit.amount)
        .filter(|amount| *amount > 0)
}

/// Create a budget (insert-if-absent; an existing one is left as it is).
///
/// Checks: the three lists have the same length (`Validation(InvalidInput, "create_budget:
/// dimensions / hard_limits / soft_limits length mismatch")`), at most
/// [`super::MAX_DIMENSIONS`] distinct dimensions, limits and the interval at most `i64::MAX`.
pub fn create_budget(
    db: &mut impl Db,
    args: &CreateBudgetArgs,
) -> Result<CreateOutcome, EngineError> {
    const OP: &str = "create_budget";
    if args.dimensions.len() != args.hard_limits.len()
        || args.dimensions.len() != args.soft_limits.len()
    {
        return Err(invalid_input(
            "create_budget: dimensions / hard_limits / soft_limits length mismatch",
        ));
    }
    check_dimension_names(OP, args.dimensions.iter().map(String::as_str))?;
    let interval = stored_amount(OP, "reset_interval_ms", args.reset_interval_ms)?;
    let mut hard = Vec::with_capacity(args.dimensions.len());
    let mut soft = Vec::with_capacity(args.dimensions.len());
    for ((dimension, &hard_limit), &soft_limit) in args
        .dimensions
        .iter()
        .zip(&args.hard_limits)
        .zip(&args.soft_limits)
    {
        let key = json::string(dimension);
        let hard_limit = stored_amount(OP, &format!("hard limit for dim={dimension}"), hard_limit)?;
        let soft_limit = stored_amount(OP, &format!("soft limit for dim={dimension}"), soft_limit)?;
        hard.push(format!("{key}:{hard_limit}"));
        soft.push(format!("{key}:{soft_limit}"));
    }
    let policy_json = format!(
        "{{\"hard_limits\":{{{}}},\"soft_limits\":{{{}}},\"reset_interval_ms\":{interval},\
         \"on_hard_limit\":{},\"on_soft_limit\":{}}}",
        hard.join(","),
        soft.join(","),
        json::string(&args.on_hard_limit),
        json::string(&args.on_soft_limit),
    );
    let next_reset = next_reset_at(args.now, interval);
    let inserted = db.run(
        "INSERT INTO ff_budget_policy (partition_key, budget_id, policy_json, created_at_ms, \
             updated_at_ms, scope_type, scope_id, enforcement_mode, breach_count, \
             soft_breach_count, last_breach_at_ms, last_breach_dim, next_reset_at_ms) \
         VALUES (0, ?1, ?2, ?3, ?3, ?4, ?5, ?6, 0, 0, NULL, NULL, ?7) \
         ON CONFLICT (partition_key, budget_id) DO NOTHING",
        &[
            text(args.budget_id.as_str()),
            text(policy_json),
            int(args.now),
            text(args.scope_type.as_str()),
            text(args.scope_id.as_str()),
            text(args.enforcement_mode.as_str()),
            opt_int(next_reset),
        ],
    )?;
    Ok(if inserted == 1 {
        CreateOutcome::Created
    } else {
        CreateOutcome::AlreadySatisfied
    })
}

/// `now + interval` when the budget has a reset interval (saturating), else `None`.
fn next_reset_at(now: i64, interval: i64) -> Option<i64> {
    (interval > 0).then(|| now.saturating_add(interval))
}

/// Reset a budget now, whether or not it is due: `NotFound(budget)` without a policy row.
/// Returns the next automatic reset, `None` without a schedule.
pub fn reset_budget(
    db: &mut impl Db,
    budget_id: &str,
    now: i64,
) -> Result<Option<i64>, EngineError> {
    let limits = Limits::load(db, budget_id)?.ok_or(EngineError::NotFound(Entity::Budget))?;
    apply_reset(db, budget_id, limits.reset_interval_ms, now)
}

/// The writes of a reset: every counter to 0 (`last_reset_at_ms = now`); the policy's latest
/// breach cleared and its next reset at `now + interval` (or none). Breach counts, dedup rows
/// and the ledger are kept.
fn apply_reset(
    db: &mut impl Db,
    budget_id: &str,
    interval: i64,
    now: i64,
) -> Result<Option<i64>, EngineError> {
    db.run(
        "UPDATE ff_budget_usage SET current_value = 0, last_reset_at_ms = ?2, updated_at_ms = ?2 \
         WHERE partition_key = 0 AND budget_id = ?1",
        &[text(budget_id), int(now)],
    )?;
    let next_reset = next_reset_at(now, interval);
    db.run(
        "UPDATE ff_budget_policy SET last_breach_at_ms = NULL, last_breach_dim = NULL, \
             updated_at_ms = ?2, next_reset_at_ms = ?3 \
         WHERE partition_key = 0 AND budget_id = ?1",
        &[text(budget_id), int(now), opt_int(next_reset)],
    )?;
    Ok(next_reset)
}

/// The budgets whose automatic reset is due at `now` (`next_reset_at_ms <= now`), earliest
/// first, at most `limit`.
pub fn due_budget_resets(
    db: &mut impl Db,
    now: i64,
    limit: u32,
) -> Result<Vec<String>, EngineError> {
    let rows = db
        .query(
            "SELECT budget_id FROM ff_budget_policy \
             WHERE partition_key = 0 AND next_reset_at_ms IS NOT NULL AND next_reset_at_ms <= ?1 \
             ORDER BY next_reset_at_ms, budget_id LIMIT ?2",
            &[int(now), int(limit)],
        )
        .map_err(crate::errors::storage)?;
    Ok(rows
        .into_iter()
        .map(|values| crate::db::Row(values).text_or_empty(0))
        .collect())
}

/// Reset the budget if its automatic reset is still due at `now`; `false` (nothing written)
/// when it is gone, has no schedule, or was rescheduled past `now` meanwhile.
pub fn reset_budget_if_due(
    db: &mut impl Db,
    budget_id: &str,
    now: i64,
) -> Result<bool, EngineError> {
    let due = db.first_row(
        "SELECT 1 FROM ff_budget_policy \
         WHERE partition_key = 0 AND budget_id = ?1 AND next_reset_at_ms <= ?2",
        &[text(budget_id), int(now)],
    )?;
    if due.is_none() {
        return Ok(false);
    }
    let Some(limits) = Limits::load(db, budget_id)? else {
        return Ok(false);
    };
    apply_reset(db, budget_id, limits.reset_interval_ms, now)?;
    Ok(true)
}

/// A budget's policy and counters: `NotFound(budget)` without a policy row. Counters named
/// `_init` are hidden; a policy document that is not valid JSON reports no limits.
pub fn get_budget_status(db: &mut impl Db, budget_id: &str) -> Result<BudgetStatus, EngineError> {
    let row = db
        .first_row(
            "SELECT scope_type, scope_id, enforcement_mode, breach_count, soft_breach_count, \
                 last_breach_at_ms, last_breach_dim, next_reset_at_ms, created_at_ms \
             FROM ff_budget_policy WHERE partition_key = 0 AND budget_id = ?1",
            &[text(budget_id)],
        )?
        .ok_or(EngineError::NotFound(Entity::Budget))?;
    let limits = match Limits::load(db, budget_id) {
        Ok(limits) => limits.unwrap_or_default(),
        Err(EngineError::Validation(_)) => Limits::default(),
        Err(other) => return Err(other),
    };
    let usage = usage_rows(db, budget_id)?
        .into_iter()
        .filter(|entry| entry.dimension != HIDDEN_DIMENSION)
        .collect();
    let count = |index| row.integer(index).map_or(0, |value| value.max(0) as u64);
    Ok(BudgetStatus {
        budget_id: budget_id.to_owned(),
        scope_type: row.text_or_empty(0),
        scope_id: row.text_or_empty(1),
        enforcement_mode: row.text_or_empty(2),
        usage,
        hard_limits: limits.hard,
        soft_limits: limits.soft,
        breach_count: count(3),
        soft_breach_count: count(4),
        last_breach_at: row.integer(5),
        last_breach_dim: row.text(6),
        next_reset_at: row.integer(7),
        created_at: row.integer(8).unwrap_or(0),
    })
}

/// Every usage counter of the budget, by dimension name (negative stored values as 0).
pub(super) fn usage_rows(
    db: &mut impl Db,
    budget_id: &str,
) -> Result<Vec<DimensionAmount>, EngineError> {
    let rows = db
        .query(
            "SELECT dimensions_key, current_value FROM ff_budget_usage \
             WHERE partition_key = 0 AND budget_id = ?1 ORDER BY dimensions_key",
            &[text(budget_id)],
        )
        .map_err(crate::errors::storage)?;
    Ok(rows
        .into_iter()
        .map(|values| {
            let row = crate::db::Row(values);
            DimensionAmount {
                dimension: row.text_or_empty(0),
                amount: row.integer(1).map_or(0, |value| value.max(0) as u64),
            }
        })
        .collect())
}

/// A budget's limits and the usage of its hard-limited dimensions (0 without a counter); all
/// lists empty for an unknown budget. `Validation(Corruption)` for an unreadable policy.
pub fn read_budget_usage_and_limits(
    db: &mut impl Db,
    budget_id: &str,
) -> Result<BudgetUsageAndLimits, EngineError> {
    let Some(limits) = Limits::load(db, budget_id)? else {
        return Ok(BudgetUsageAndLimits {
            hard_limits: Vec::new(),
            soft_limits: Vec::new(),
            usage: Vec::new(),
        });
    };
    let counters = usage_rows(db, budget_id)?;
    let usage = limits
        .hard
        .iter()
        .map(|limit| DimensionAmount {
            dimension: limit.dimension.clone(),
            amount: counters
                .iter()
                .find(|counter| counter.dimension == limit.dimension)
                .map_or(0, |counter| counter.amount),
        })
        .collect();
    Ok(BudgetUsageAndLimits {
        hard_limits: limits.hard,
        soft_limits: limits.soft,
        usage,
    })
}
