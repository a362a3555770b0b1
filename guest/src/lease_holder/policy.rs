//! Retry policies: which one applies to a failure, and how long its backoff is.
//!
//! A typed `fail-execution` carries the caller's policy (parsed by the host); otherwise the
//! execution's stored policy applies. The stored policy is ff-core's `ExecutionPolicy` as JSON
//! in `ff_exec_core.policy`; its `retry_policy` member is read with SQLite's JSON functions
//! ([`read_stored`]) and resolved by the pure [`resolve_stored`] with ff-core's serde defaults:
//!
//! | stored | resolves to |
//! |---|---|
//! | `policy` NULL, empty or not valid JSON | [`StoredRetry::NoPolicy`] |
//! | `retry_policy` absent or `null` | [`StoredRetry::NoRetries`] |
//! | `max_retries` absent, `null` or not a number | 3 |
//! | `max_retries` negative | 0 |
//! | `backoff` absent or `null` | exponential 1000 / 60000 / 2.0 |
//! | `backoff.type = "fixed"` | fixed `delay_ms` (default 1000) |
//! | `backoff.type = "exponential"` | each of `initial_delay_ms` (1000), `max_delay_ms` (60000), `multiplier` (2.0) defaulted on its own |
//! | `backoff` with any other or no `type` | fixed 1000 (upstream's fallback for an unknown backoff) |
//!
//! The delay before a retry is [`backoff_delay`]: fixed → `delay_ms`; exponential →
//! `min(initial * multiplier^retry_count, max)` computed in `f64` and truncated. Jitter is not
//! applied.

use crate::bindings::lease_holder::{Backoff, ExponentialBackoff, RetryPolicy};
use crate::db::{Db, DbExt};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

/// ff-core's `RetryPolicy::default()`: 3 retries, exponential 1000 ms doubling up to 60 s.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: DEFAULT_MAX_RETRIES,
        backoff: default_backoff(),
        retryable_categories: Vec::new(),
    }
}

const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_FIXED_DELAY_MS: u64 = 1000;
const DEFAULT_INITIAL_DELAY_MS: u64 = 1000;
const DEFAULT_MAX_DELAY_MS: u64 = 60_000;
const DEFAULT_MULTIPLIER: f64 = 2.0;

fn default_backoff() -> Backoff {
    Backoff::Exponential(ExponentialBackoff {
        initial_delay_ms: DEFAULT_INITIAL_DELAY_MS,
        max_delay_ms: DEFAULT_MAX_DELAY_MS,
        multiplier: DEFAULT_MULTIPLIER,
    })
}

/// The `retry_policy` member of a stored execution policy, field by field, as SQLite's JSON
/// functions extracted it (`None` = absent or JSON `null`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredRetryFields {
    /// The policy column holds valid JSON.
    pub has_policy: bool,
    /// `json_type` of `$.retry_policy` (`None` when absent or `null`).
    pub retry_policy_type: Option<String>,
    /// `$.retry_policy.max_retries`.
    pub max_retries: Option<Value>,
    /// `$.retry_policy.backoff` is present and not `null`.
    pub has_backoff: bool,
    /// `$.retry_policy.backoff.type`.
    pub backoff_type: Option<String>,
    /// `$.retry_policy.backoff.delay_ms`.
    pub delay_ms: Option<Value>,
    /// `$.retry_policy.backoff.initial_delay_ms`.
    pub initial_delay_ms: Option<Value>,
    /// `$.retry_policy.backoff.max_delay_ms`.
    pub max_delay_ms: Option<Value>,
    /// `$.retry_policy.backoff.multiplier`.
    pub multiplier: Option<Value>,
    /// The text entries of `$.retry_policy.retryable_categories` (other entries ignored).
    pub retryable_categories: Vec<String>,
}

/// What an execution's stored policy says about retries.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredRetry {
    /// No usable stored policy at all.
    NoPolicy,
    /// A stored policy without a retry policy: no retries.
    NoRetries,
    /// A stored retry policy.
    Policy(RetryPolicy),
}

/// Read the execution's stored retry policy fields (see the module docs).
pub fn read_stored(db: &mut impl Db, id: &ExecutionRef) -> Result<StoredRetryFields, EngineError> {
    // CASE short-circuits, so the JSON functions never see invalid JSON.
    let row = db.first_row(
        "SELECT v, \
             CASE WHEN v THEN NULLIF(json_type(policy, '$.retry_policy'), 'null') END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.max_retries') END, \
             CASE WHEN v THEN COALESCE(json_type(policy, '$.retry_policy.backoff'), 'null') != 'null' END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.backoff.type') END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.backoff.delay_ms') END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.backoff.initial_delay_ms') END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.backoff.max_delay_ms') END, \
             CASE WHEN v THEN json_extract(policy, '$.retry_policy.backoff.multiplier') END, \
             CASE WHEN v THEN json_array_length(policy, '$.retry_policy.retryable_categories') END \
         FROM (SELECT policy, COALESCE(json_valid(policy), 0) AS v FROM ff_exec_core \
               WHERE partition_key = ?1 AND execution_id = ?2)",
        &id.key(),
    )?;
    let Some(row) = row else {
        return Ok(StoredRetryFields::default());
    };
    let value = |index: usize| match row.0.get(index) {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.clone()),
    };
    // The categories are read only when there are some: no second statement otherwise.
    let retryable_categories = if row.integer(9).unwrap_or(0) > 0 {
        db.query(
            "SELECT value FROM ff_exec_core, json_each(policy, '$.retry_policy.retryable_categories') \
             WHERE partition_key = ?1 AND execution_id = ?2 AND type = 'text' ORDER BY key",
            &id.key(),
        )
        .map_err(crate::errors::storage)?
        .into_iter()
        .filter_map(|values| crate::db::Row(values).text(0))
        .collect()
    } else {
        Vec::new()
    };
    Ok(StoredRetryFields {
        has_policy: row.integer(0).unwrap_or(0) != 0,
        retry_policy_type: row.text(1),
        max_retries: value(2),
        has_backoff: row.integer(3).unwrap_or(0) != 0,
        backoff_type: row.text(4),
        delay_ms: value(5),
        initial_delay_ms: value(6),
        max_delay_ms: value(7),
        multiplier: value(8),
        retryable_categories,
    })
}

/// Resolve stored fields with ff-core's serde defaults (see the module docs).
pub fn resolve_stored(fields: &StoredRetryFields) -> StoredRetry {
    if !fields.has_policy {
        return StoredRetry::NoPolicy;
    }
    if fields.retry_policy_type.is_none() {
        return StoredRetry::NoRetries;
    }
    let max_retries = match fields.max_retries.as_ref().and_then(number) {
        Some(n) if n <= 0.0 => 0,
        Some(n) => n.min(f64::from(u32::MAX)) as u32,
        None => DEFAULT_MAX_RETRIES,
    };
    let backoff = if !fields.has_backoff {
        default_backoff()
    } else {
        match fields.backoff_type.as_deref() {
            Some("exponential") => Backoff::Exponential(ExponentialBackoff {
                initial_delay_ms: millis(&fields.initial_delay_ms, DEFAULT_INITIAL_DELAY_MS),
                max_delay_ms: millis(&fields.max_delay_ms, DEFAULT_MAX_DELAY_MS),
                multiplier: fields
                    .multiplier
                    .as_ref()
                    .and_then(number)
                    .unwrap_or(DEFAULT_MULTIPLIER),
            }),
            Some("fixed") => Backoff::Fixed(millis(&fields.delay_ms, DEFAULT_FIXED_DELAY_MS)),
            _ => Backoff::Fixed(DEFAULT_FIXED_DELAY_MS),
        }
    };
    StoredRetry::Policy(RetryPolicy {
        max_retries,
        backoff,
        retryable_categories: fields.retryable_categories.clone(),
    })
}

/// Whether `policy` retries a failure of `category`: every category when the policy names
/// none (ff-core's default), else only those it names.
pub fn retries_category(policy: &RetryPolicy, category: &str) -> bool {
    policy.retryable_categories.is_empty()
        || policy
            .retryable_categories
            .iter()
            .any(|retryable| retryable == category)
}

/// The delay in milliseconds before the retry that follows `retry_count` earlier retries.
pub fn backoff_delay(backoff: &Backoff, retry_count: i64) -> u64 {
    match backoff {
        Backoff::Fixed(delay_ms) => *delay_ms,
        Backoff::Exponential(exp) => {
            let exponent = i32::try_from(retry_count.max(0)).unwrap_or(i32::MAX);
            let grown = exp.initial_delay_ms as f64 * exp.multiplier.powi(exponent);
            // `min` ignores NaN (a NaN product waits the maximum); `as` saturates.
            grown.min(exp.max_delay_ms as f64) as u64
        }
    }
}

/// Whether the policy allows another retry after `retry_count` retries.
pub fn can_retry(policy: &RetryPolicy, retry_count: i64) -> bool {
    retry_count < i64::from(policy.max_retries)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(int) => Some(*int as f64),
        Value::Real(real) if real.is_finite() => Some(*real),
        _ => None,
    }
}

fn millis(value: &Option<Value>, default: u64) -> u64 {
    match value.as_ref().and_then(number) {
        Some(n) if n <= 0.0 => 0,
        Some(n) => n as u64,
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, TestDb};

    fn exponential(initial: u64, max: u64, multiplier: f64) -> Backoff {
        Backoff::Exponential(ExponentialBackoff {
            initial_delay_ms: initial,
            max_delay_ms: max,
            multiplier,
        })
    }

    fn stored(policy: Option<&str>) -> StoredRetry {
        let mut db = TestDb::new();
        db.seed_runnable(EXEC);
        if let Some(policy) = policy {
            db.exec(&format!(
                "UPDATE ff_exec_core SET policy = '{}'",
                policy.replace('\'', "''")
            ));
        }
        let id = ExecutionRef::parse(EXEC).unwrap();
        resolve_stored(&read_stored(&mut db, &id).unwrap())
    }

    fn policy(max_retries: u32, backoff: Backoff) -> StoredRetry {
        StoredRetry::Policy(RetryPolicy {
            max_retries,
            backoff,
            retryable_categories: Vec::new(),
        })
    }

    #[test]
    fn fixed_delay_is_the_same_for_every_retry() {
        for retry_count in [0, 1, 2, 50] {
            assert_eq!(backoff_delay(&Backoff::Fixed(500), retry_count), 500);
        }
        assert_eq!(backoff_delay(&Backoff::Fixed(0), 0), 0);
    }

    #[test]
    fn exponential_delay_grows_with_the_retry_count() {
        let backoff = exponential(1000, 60_000, 2.0);
        assert_eq!(backoff_delay(&backoff, 0), 1000);
        assert_eq!(backoff_delay(&backoff, 1), 2000);
        assert_eq!(backoff_delay(&backoff, 2), 4000);
        let fractional = exponential(100, 60_000, 1.5);
        assert_eq!(backoff_delay(&fractional, 1), 150);
        assert_eq!(backoff_delay(&fractional, 3), 337); // 337.5 truncated
    }

    #[test]
    fn exponential_delay_is_capped_at_the_maximum() {
        let backoff = exponential(1000, 5000, 2.0);
        assert_eq!(backoff_delay(&backoff, 2), 4000);
        assert_eq!(backoff_delay(&backoff, 3), 5000);
        assert_eq!(backoff_delay(&backoff, 1_000_000), 5000);
        let huge = exponential(u64::MAX, u64::MAX, 10.0);
        assert_eq!(backoff_delay(&huge, 40), u64::MAX);
        // `f64::min` ignores NaN: a nonsensical multiplier waits the maximum.
        let nan = exponential(1000, 5000, f64::NAN);
        assert_eq!(backoff_delay(&nan, 1), 5000);
    }

    #[test]
    fn the_budget_counts_retries_not_attempts() {
        let three = default_policy();
        assert!(can_retry(&three, 0));
        assert!(can_retry(&three, 2));
        assert!(!can_retry(&three, 3));
        let none = RetryPolicy {
            max_retries: 0,
            backoff: Backoff::Fixed(1),
            retryable_categories: Vec::new(),
        };
        assert!(!can_retry(&none, 0));
    }

    #[test]
    fn default_policy_is_ff_cores() {
        assert_eq!(default_policy().max_retries, 3);
        assert_eq!(default_policy().backoff, exponential(1000, 60_000, 2.0));
    }

    #[test]
    fn no_usable_policy_column_is_no_policy() {
        assert_eq!(stored(None), StoredRetry::NoPolicy);
        assert_eq!(stored(Some("")), StoredRetry::NoPolicy);
        assert_eq!(stored(Some("{not json")), StoredRetry::NoPolicy);
        let mut db = TestDb::new();
        let id = ExecutionRef::parse(EXEC).unwrap();
        assert_eq!(
            resolve_stored(&read_stored(&mut db, &id).unwrap()),
            StoredRetry::NoPolicy
        );
    }

    #[test]
    fn a_policy_without_retry_policy_means_no_retries() {
        assert_eq!(
            stored(Some(r#"{"priority":0,"max_reclaim_count":100}"#)),
            StoredRetry::NoRetries
        );
        assert_eq!(
            stored(Some(r#"{"retry_policy":null}"#)),
            StoredRetry::NoRetries
        );
    }

    #[test]
    fn missing_retry_fields_take_ff_cores_serde_defaults() {
        assert_eq!(
            stored(Some(r#"{"retry_policy":{}}"#)),
            policy(3, exponential(1000, 60_000, 2.0))
        );
        assert_eq!(
            stored(Some(r#"{"retry_policy":{"max_retries":5}}"#)),
            policy(5, exponential(1000, 60_000, 2.0))
        );
        assert_eq!(
            stored(Some(r#"{"retry_policy":{"max_retries":5,"backoff":null}}"#)),
            policy(5, exponential(1000, 60_000, 2.0))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":"x","backoff":{"type":"fixed"}}}"#
            )),
            policy(3, Backoff::Fixed(1000))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"backoff":{"type":"exponential","max_delay_ms":9000}}}"#
            )),
            policy(3, exponential(1000, 9000, 2.0))
        );
    }

    #[test]
    fn stored_fixed_and_exponential_backoffs_are_read() {
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":2,"backoff":{"type":"fixed","delay_ms":500}}}"#
            )),
            policy(2, Backoff::Fixed(500))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":4,"backoff":{"type":"exponential","initial_delay_ms":250,"max_delay_ms":8000,"multiplier":3,"jitter":true}},"priority":1}"#
            )),
            policy(4, exponential(250, 8000, 3.0))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"backoff":{"type":"exponential","multiplier":1.5}}}"#
            )),
            policy(3, exponential(1000, 60_000, 1.5))
        );
    }

    #[test]
    fn odd_stored_values_are_clamped_or_fall_back() {
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":-2,"backoff":{"type":"fixed","delay_ms":-5}}}"#
            )),
            policy(0, Backoff::Fixed(0))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":2.9,"backoff":{"type":"linear","delay_ms":7}}}"#
            )),
            policy(2, Backoff::Fixed(1000))
        );
        assert_eq!(
            stored(Some(
                r#"{"retry_policy":{"max_retries":99999999999,"backoff":{}}}"#
            )),
            policy(u32::MAX, Backoff::Fixed(1000))
        );
    }
}
