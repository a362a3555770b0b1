//! The `budgets` interface: budgets (limits, usage reports, the per-execution ledger, resets)
//! and quota policies (admission by rate and concurrency), with upstream SQLite's semantics
//! (`families/budgets.md`) except where `docs/semantics.md` records a decision.
//!
//! All rows have `partition_key = 0`. A budget's limits live in `ff_budget_policy.policy_json`
//! (written by [`create_budget`], read back with SQLite's JSON functions); its counters are one
//! `ff_budget_usage` row per dimension.
//!
//! # Usage reports ([`report_usage`], [`report_usage_admin`], [`record_spend`])
//!
//! Checks, all before the first write: deltas at most `i64::MAX`, at most
//! [`MAX_DIMENSIONS`] dimensions, no dimension named twice (`Validation(InvalidInput)`); the
//! worker path's lease is the execution's current, live lease (the lease-holder checks, then
//! `State(LeaseExpired)`); the stored policy is valid JSON (`Validation(Corruption)`). Then, in
//! one operation (the host serializes operations on a database, so no report can interleave):
//!
//! 1. a non-empty dedup key is reserved in `ff_budget_usage_dedup` (one namespace for all
//!    budgets and all three operations); a key already there makes the report a replay, which
//!    writes nothing and returns the stored outcome (`report-usage`, `report-usage-admin`) or
//!    `already-applied` (`record-spend`);
//! 2. dimensions in byte order of their names: the first whose new value (`current + delta`)
//!    is strictly above a non-zero hard limit rejects the whole report: `breach_count + 1`,
//!    `last_breach_at_ms`, `last_breach_dim` on the policy, no counter changes, outcome
//!    `hard-breach` with the counter before the report;
//! 3. otherwise every counter is set to its new value (rows created as needed), `record-spend`
//!    adds each delta to the execution's ledger row, and the first dimension whose new value is
//!    strictly above a non-zero soft limit makes the outcome `soft-breach` (with the new value)
//!    and bumps `soft_breach_count` once;
//! 4. the outcome is stored with the dedup key.
//!
//! # Quota admission ([`check_admission`])
//!
//! A live guard row (`expires_at_ms > now`) for the execution: `already-admitted`. Otherwise the
//! policy's window rows older than `now - window` are deleted; with a rate limit, a full window
//! is `rate-exceeded` (retry when the oldest row leaves the window, plus the whole jitter);
//! with a cap, `active_concurrency >= cap` is `concurrency-exceeded`; else one window row and
//! the guard (`expires_at_ms = now + window`) are written and, with a cap, the counter raised.

mod admission;
mod policy;
mod quotas;
mod usage;

#[cfg(test)]
mod tests;

pub use admission::{block_execution_for_admission, reconcile_budget_counters};
pub use policy::{
    create_budget, due_budget_resets, get_budget_status, read_budget_usage_and_limits,
    reset_budget, reset_budget_if_due,
};
pub use quotas::{
    check_admission, create_quota_policy, read_quota_policy_limits, reconcile_quota_counters,
    release_admission,
};
pub use usage::{record_spend, release_budget, report_usage, report_usage_admin};

use crate::errors::invalid_input;
use crate::types::EngineError;

/// The most dimensions one budget or one report may name (Valkey's `MAX_BUDGET_DIMENSIONS`).
pub const MAX_DIMENSIONS: usize = 64;

/// An amount as the `INTEGER` column stores it: `Validation(InvalidInput, "<op>: <what>
/// exceeds i64::MAX (<value>)")` above `i64::MAX`.
fn stored_amount(op: &str, what: &str, value: u64) -> Result<i64, EngineError> {
    i64::try_from(value)
        .map_err(|_| invalid_input(format!("{op}: {what} exceeds i64::MAX ({value})")))
}

/// Reject more than [`MAX_DIMENSIONS`] dimensions and any dimension named twice.
fn check_dimension_names<'a>(
    op: &str,
    names: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), EngineError> {
    if names.len() > MAX_DIMENSIONS {
        return Err(invalid_input(format!(
            "{op}: too many dimensions: limit={MAX_DIMENSIONS}, got={}",
            names.len()
        )));
    }
    let mut seen: Vec<&str> = names.collect();
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(invalid_input(format!(
            "{op}: dimension {:?} given twice",
            pair[0]
        )));
    }
    Ok(())
}
