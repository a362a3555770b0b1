//! Quota policies and admission: the sliding window, the admission guard and the concurrency
//! counter.

use crate::bindings::budgets::{
    AdmissionOutcome, CheckAdmissionArgs, CreateOutcome, CreateQuotaPolicyArgs, QuotaPolicyLimits,
    ReconcileCounts,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::corruption;
use crate::types::EngineError;

use super::stored_amount;

/// Create a quota policy (insert-if-absent). A row `check-admission` created as a placeholder
/// (all three limits 0) takes the given limits when any of them is non-zero, and counts as
/// created; any other existing row is left as it is (`already-satisfied`). Values above
/// `i64::MAX` are `Validation(InvalidInput)`.
pub fn create_quota_policy(
    db: &mut impl Db,
    args: &CreateQuotaPolicyArgs,
) -> Result<CreateOutcome, EngineError> {
    const OP: &str = "create_quota_policy";
    let window = stored_amount(OP, "window_seconds", args.window_seconds)?;
    let max_requests = stored_amount(OP, "max_requests_per_window", args.max_requests_per_window)?;
    let cap = stored_amount(OP, "max_concurrent", args.max_concurrent)?;
    let written = db.run(
        "INSERT INTO ff_quota_policy (partition_key, quota_policy_id, requests_per_window_seconds, \
             max_requests_per_window, active_concurrency_cap, active_concurrency, created_at_ms, \
             updated_at_ms) \
         VALUES (0, ?1, ?2, ?3, ?4, 0, ?5, ?5) \
         ON CONFLICT (partition_key, quota_policy_id) DO UPDATE SET \
             requests_per_window_seconds = excluded.requests_per_window_seconds, \
             max_requests_per_window = excluded.max_requests_per_window, \
             active_concurrency_cap = excluded.active_concurrency_cap, \
             updated_at_ms = excluded.updated_at_ms \
         WHERE requests_per_window_seconds = 0 AND max_requests_per_window = 0 \
             AND active_concurrency_cap = 0 \
             AND (excluded.requests_per_window_seconds <> 0 \
                  OR excluded.max_requests_per_window <> 0 \
                  OR excluded.active_concurrency_cap <> 0)",
        &[
            text(args.quota_policy_id.as_str()),
            int(window),
            int(max_requests),
            int(cap),
            int(args.now),
        ],
    )?;
    Ok(if written == 1 {
        CreateOutcome::Created
    } else {
        CreateOutcome::AlreadySatisfied
    })
}

/// Admit the execution under the caller's limits (see the module docs of
/// [`crate::budgets`]). The `dimension` is not part of the arguments: every admission of a
/// policy shares one window.
pub fn check_admission(
    db: &mut impl Db,
    args: &CheckAdmissionArgs,
) -> Result<AdmissionOutcome, EngineError> {
    let policy = text(args.quota_policy_id.as_str());
    let execution = text(args.execution_id.as_str());
    let now = args.now;
    let window_ms = i64::try_from(args.window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let guard = db.first_row(
        "SELECT 1 FROM ff_quota_admitted \
         WHERE partition_key = 0 AND quota_policy_id = ?1 AND execution_id = ?2 \
             AND expires_at_ms > ?3",
        &[policy.clone(), execution.clone(), int(now)],
    )?;
    if guard.is_some() {
        return Ok(AdmissionOutcome::AlreadyAdmitted);
    }
    db.run(
        "DELETE FROM ff_quota_window \
         WHERE partition_key = 0 AND quota_policy_id = ?1 AND admitted_at_ms < ?2",
        &[policy.clone(), int(now.saturating_sub(window_ms))],
    )?;
    if args.rate_limit > 0 {
        let row = db
            .first_row(
                "SELECT count(*), min(admitted_at_ms) FROM ff_quota_window \
                 WHERE partition_key = 0 AND quota_policy_id = ?1",
                std::slice::from_ref(&policy),
            )?
            .expect("an aggregate returns one row");
        let count = row.integer(0).unwrap_or(0).max(0) as u64;
        if count >= args.rate_limit {
            let wait = row.integer(1).map_or(0, |oldest| {
                oldest.saturating_add(window_ms).saturating_sub(now).max(0) as u64
            });
            return Ok(AdmissionOutcome::RateExceeded(
                wait.saturating_add(args.jitter_ms),
            ));
        }
    }
    if args.concurrency_cap > 0 {
        let active = db
            .first_row(
                "SELECT active_concurrency FROM ff_quota_policy \
                 WHERE partition_key = 0 AND quota_policy_id = ?1",
                std::slice::from_ref(&policy),
            )?
            .and_then(|row| row.integer(0))
            .unwrap_or(0)
            .max(0) as u64;
        if active >= args.concurrency_cap {
            return Ok(AdmissionOutcome::ConcurrencyExceeded);
        }
    }
    db.run(
        "INSERT INTO ff_quota_window \
             (partition_key, quota_policy_id, dimension, admitted_at_ms, execution_id) \
         VALUES (0, ?1, '', ?2, ?3) ON CONFLICT DO NOTHING",
        &[policy.clone(), int(now), execution.clone()],
    )?;
    db.run(
        "INSERT INTO ff_quota_admitted \
             (partition_key, quota_policy_id, execution_id, admitted_at_ms, expires_at_ms) \
         VALUES (0, ?1, ?2, ?3, ?4) \
         ON CONFLICT (partition_key, quota_policy_id, execution_id) DO UPDATE SET \
             admitted_at_ms = excluded.admitted_at_ms, expires_at_ms = excluded.expires_at_ms",
        &[
            policy.clone(),
            execution,
            int(now),
            int(now.saturating_add(window_ms)),
        ],
    )?;
    if args.concurrency_cap > 0 {
        db.run(
            "INSERT INTO ff_quota_policy (partition_key, quota_policy_id, \
                 requests_per_window_seconds, max_requests_per_window, active_concurrency_cap, \
                 active_concurrency, created_at_ms, updated_at_ms) \
             VALUES (0, ?1, 0, 0, 0, 1, ?2, ?2) \
             ON CONFLICT (partition_key, quota_policy_id) DO UPDATE SET \
                 active_concurrency = active_concurrency + 1, updated_at_ms = excluded.updated_at_ms",
            &[policy, int(now)],
        )?;
    }
    Ok(AdmissionOutcome::Admitted)
}

/// A stored policy's limits; `None` without a row. A negative stored value is
/// `Validation(Corruption, "read_quota_policy_limits: quota_policy=<id> field=<name> value=<v>
/// (negative)")`, fields checked in the order of the result.
pub fn read_quota_policy_limits(
    db: &mut impl Db,
    quota_policy_id: &str,
) -> Result<Option<QuotaPolicyLimits>, EngineError> {
    let Some(row) = db.first_row(
        "SELECT max_requests_per_window, requests_per_window_seconds, active_concurrency_cap \
         FROM ff_quota_policy WHERE partition_key = 0 AND quota_policy_id = ?1",
        &[text(quota_policy_id)],
    )?
    else {
        return Ok(None);
    };
    let field = |index: usize, name: &str| {
        let value = row.integer(index).unwrap_or(0);
        u64::try_from(value).map_err(|_| {
            corruption(format!(
                "read_quota_policy_limits: quota_policy={quota_policy_id} field={name} value={value} (negative)"
            ))
        })
    };
    Ok(Some(QuotaPolicyLimits {
        max_requests_per_window: field(0, "max_requests_per_window")?,
        requests_per_window_seconds: field(1, "requests_per_window_seconds")?,
        active_concurrency_cap: field(2, "active_concurrency_cap")?,
    }))
}

/// Give back the execution's admission: deletes its guard and, if there was one, lowers the
/// policy's concurrency counter by one (never below 0). Idempotent; window rows stay.
pub fn release_admission(
    db: &mut impl Db,
    quota_policy_id: &str,
    execution_id: &str,
) -> Result<(), EngineError> {
    let deleted = db.run(
        "DELETE FROM ff_quota_admitted \
         WHERE partition_key = 0 AND quota_policy_id = ?1 AND execution_id = ?2",
        &[text(quota_policy_id), text(execution_id)],
    )?;
    if deleted > 0 {
        db.run(
            "UPDATE ff_quota_policy SET active_concurrency = max(active_concurrency - 1, 0) \
             WHERE partition_key = 0 AND quota_policy_id = ?1",
            &[text(quota_policy_id)],
        )?;
    }
    Ok(())
}

/// One reconcile pass at `now`: guards whose window ended (`expires_at_ms <= now`) are
/// deleted (their concurrency slots return), window rows older than the policy's stored window
/// are trimmed, and every policy whose `active_concurrency` differs from its live guards is set
/// to that count; `processed` counts those policies.
pub fn reconcile_quota_counters(
    db: &mut impl Db,
    now: i64,
) -> Result<ReconcileCounts, EngineError> {
    db.run(
        "DELETE FROM ff_quota_admitted WHERE partition_key = 0 AND expires_at_ms <= ?1",
        &[int(now)],
    )?;
    db.run(
        "DELETE FROM ff_quota_window AS w WHERE w.partition_key = 0 AND EXISTS ( \
             SELECT 1 FROM ff_quota_policy AS p \
             WHERE p.partition_key = 0 AND p.quota_policy_id = w.quota_policy_id \
                 AND p.requests_per_window_seconds > 0 \
                 AND w.admitted_at_ms < ?1 - min(p.requests_per_window_seconds, 9223372036854775) * 1000)",
        &[int(now)],
    )?;
    let recounted = db.run(
        "UPDATE ff_quota_policy AS p SET active_concurrency = ( \
             SELECT count(*) FROM ff_quota_admitted AS a \
             WHERE a.partition_key = 0 AND a.quota_policy_id = p.quota_policy_id), \
             updated_at_ms = ?1 \
         WHERE p.partition_key = 0 AND p.active_concurrency <> ( \
             SELECT count(*) FROM ff_quota_admitted AS a \
             WHERE a.partition_key = 0 AND a.quota_policy_id = p.quota_policy_id)",
        &[int(now)],
    )?;
    Ok(ReconcileCounts {
        processed: u32::try_from(recounted).unwrap_or(u32::MAX),
        errors: 0,
    })
}
