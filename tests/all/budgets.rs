//! Budgets, quota policies and admission through the public `EngineBackend` API: upstream's
//! SQLite tests of the family (`wave9_budget.rs`, `typed_record_spend.rs`,
//! `typed_release_budget.rs`, `typed_check_admission.rs`), the Postgres tests of the paths
//! upstream SQLite leaves untested (`release_admission.rs`, `read_quota_policy_limits.rs`),
//! `wave9_reconciler.rs` re-expressed through [`SqliteBackend::budget_reset_pass`] and the
//! builder's background task, the worker path (`report_usage` through a handle), bad input, and
//! 64 concurrent reporters on a file database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{BackendTag, CapabilitySet, Handle, UsageDimensions};
use ff_core::contracts::{
    BlockExecutionForAdmissionArgs, BlockExecutionForAdmissionOutcome, BlockingReason,
    CheckAdmissionArgs, CheckAdmissionResult, CreateBudgetArgs, CreateBudgetResult,
    CreateQuotaPolicyArgs, CreateQuotaPolicyResult, QuotaPolicyLimits, RecordSpendArgs,
    ReleaseAdmissionArgs, ReleaseAdmissionResult, ReleaseBudgetArgs, ReportUsageAdminArgs,
    ReportUsageResult, ResetBudgetArgs, ResetBudgetResult, ScanEligibleArgs,
};
use ff_core::engine_backend::{EngineBackend, ReconcileCounts};
use ff_core::engine_error::{ContentionKind, EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionConfig, PartitionFamily};
use ff_core::types::{BudgetId, ExecutionId, LaneId, QuotaPolicyId, TimestampMs};
use serial_test::parallel;
use uuid::Uuid;

// ── Helpers ─────────────────────────────────────────────────────────────────────────────

/// Arguments creating `id` with one dimension, `tokens`, at `now`.
fn budget_args_at(
    id: &BudgetId,
    reset_interval_ms: u64,
    hard_tokens: u64,
    soft_tokens: u64,
    now: i64,
) -> CreateBudgetArgs {
    budget_with(
        id,
        reset_interval_ms,
        &[("tokens", hard_tokens, soft_tokens)],
        now,
    )
}

/// [`budget_args_at`] now.
fn budget_args(id: &BudgetId, reset_interval_ms: u64, hard: u64, soft: u64) -> CreateBudgetArgs {
    budget_args_at(id, reset_interval_ms, hard, soft, now_ms())
}

/// Arguments creating `id` with `(dimension, hard, soft)` limits.
fn budget_with(
    id: &BudgetId,
    reset_interval_ms: u64,
    dimensions: &[(&str, u64, u64)],
    now: i64,
) -> CreateBudgetArgs {
    CreateBudgetArgs {
        budget_id: id.clone(),
        scope_type: "flow".into(),
        scope_id: "flow-1".into(),
        enforcement_mode: "strict".into(),
        on_hard_limit: "fail".into(),
        on_soft_limit: "warn".into(),
        reset_interval_ms,
        dimensions: dimensions.iter().map(|d| d.0.to_owned()).collect(),
        hard_limits: dimensions.iter().map(|d| d.1).collect(),
        soft_limits: dimensions.iter().map(|d| d.2).collect(),
        now: TimestampMs(now),
    }
}

/// An operator's report of `delta` on `dimension`.
fn admin(dimension: &str, delta: u64) -> ReportUsageAdminArgs {
    ReportUsageAdminArgs::new(vec![dimension.into()], vec![delta], TimestampMs(now_ms()))
}

/// A spend of `deltas` by `execution` under `key`.
fn spend(
    budget: &BudgetId,
    execution: &ExecutionId,
    deltas: &[(&str, u64)],
    key: &str,
) -> RecordSpendArgs {
    let deltas: BTreeMap<String, u64> = deltas
        .iter()
        .map(|(dimension, delta)| ((*dimension).to_owned(), *delta))
        .collect();
    RecordSpendArgs::new(budget.clone(), execution.clone(), deltas, key)
}

/// An execution id on some partition, as upstream's record-spend tests mint them.
fn solo_execution() -> ExecutionId {
    ExecutionId::solo(&LaneId::new("budget-lane"), &PartitionConfig::default())
}

/// The usage counter of `dimension`, from `get_budget_status`.
async fn usage(backend: &SqliteBackend, budget: &BudgetId, dimension: &str) -> Option<u64> {
    backend
        .get_budget_status(budget)
        .await
        .expect("status")
        .usage
        .get(dimension)
        .copied()
}

/// The ledger total of `execution` on `dimension` (the ledger keys executions by bare UUID).
fn ledger(
    backend: &SqliteBackend,
    budget: &BudgetId,
    execution: &ExecutionId,
    dimension: &str,
) -> Option<i64> {
    backend
        .connection_for_test()
        .query_row(
            "SELECT delta_total FROM ff_budget_usage_by_exec \
             WHERE partition_key = 0 AND budget_id = ?1 AND execution_id = ?2 AND dimensions_key = ?3",
            rusqlite::params![budget.to_string(), uuid_of(execution).to_string(), dimension],
            |row| row.get(0),
        )
        .ok()
}

/// How many ledger rows `execution` has against `budget`.
fn ledger_rows(backend: &SqliteBackend, budget: &BudgetId, execution: &ExecutionId) -> i64 {
    backend
        .connection_for_test()
        .query_row(
            "SELECT count(*) FROM ff_budget_usage_by_exec \
             WHERE partition_key = 0 AND budget_id = ?1 AND execution_id = ?2",
            rusqlite::params![budget.to_string(), uuid_of(execution).to_string()],
            |row| row.get(0),
        )
        .unwrap()
}

/// `check_admission` arguments for a fresh execution at `now`.
fn admission(now: i64, rate_limit: u64, concurrency_cap: u64) -> CheckAdmissionArgs {
    CheckAdmissionArgs {
        execution_id: new_execution_id(),
        now: TimestampMs::from_millis(now),
        window_seconds: 60,
        rate_limit,
        concurrency_cap,
        jitter_ms: None,
    }
}

/// `active_concurrency` of the policy.
fn active_concurrency(backend: &SqliteBackend, policy: &QuotaPolicyId) -> i64 {
    backend
        .connection_for_test()
        .query_row(
            "SELECT active_concurrency FROM ff_quota_policy WHERE quota_policy_id = ?1",
            [policy.to_string()],
            |row| row.get(0),
        )
        .unwrap()
}

/// `next_reset_at` from `get_budget_status`, parsed.
async fn next_reset(backend: &SqliteBackend, budget: &BudgetId) -> Option<i64> {
    backend
        .get_budget_status(budget)
        .await
        .unwrap()
        .next_reset_at
        .map(|at| at.parse().expect("decimal milliseconds"))
}

// ── wave9_budget.rs ─────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn create_budget_happy_path() {
    let backend = fresh_backend("budget-create").await;
    let id = BudgetId::new();
    assert!(matches!(
        backend
            .create_budget(budget_args(&id, 0, 100, 80))
            .await
            .unwrap(),
        CreateBudgetResult::Created { .. }
    ));
    assert!(matches!(
        backend
            .create_budget(budget_args(&id, 0, 100, 80))
            .await
            .unwrap(),
        CreateBudgetResult::AlreadySatisfied { .. }
    ));
}

#[tokio::test]
#[parallel(process)]
async fn create_budget_seeds_next_reset_with_interval() {
    let backend = fresh_backend("budget-create-interval").await;
    let id = BudgetId::new();
    let before = now_ms();
    backend
        .create_budget(budget_args(&id, 60_000, 100, 80))
        .await
        .unwrap();
    assert!(next_reset(&backend, &id).await.expect("scheduled") >= before + 60_000);
}

#[tokio::test]
#[parallel(process)]
async fn reset_budget_clears_counters_advances_next_reset() {
    let backend = fresh_backend("budget-reset").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 60_000, 100, 80))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 40))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(40));
    let t = now_ms();
    let ResetBudgetResult::Reset { next_reset_at } = backend
        .reset_budget(ResetBudgetArgs {
            budget_id: id.clone(),
            now: TimestampMs(t),
        })
        .await
        .unwrap();
    assert!(next_reset_at.0 >= t + 60_000);
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(0));
    assert!(status.last_breach_at.is_none());
    assert!(status.last_breach_dim.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn reset_budget_not_found_returns_notfound() {
    let backend = fresh_backend("budget-reset-missing").await;
    let error = rejected_without_writes(
        &backend,
        backend.reset_budget(ResetBudgetArgs {
            budget_id: BudgetId::new(),
            now: TimestampMs(now_ms()),
        }),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "budget" }),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn create_quota_policy_writes_policy_row_idempotent() {
    let backend = fresh_backend("quota-create").await;
    let args = CreateQuotaPolicyArgs {
        quota_policy_id: QuotaPolicyId::new(),
        window_seconds: 60,
        max_requests_per_window: 100,
        max_concurrent: 10,
        now: TimestampMs(now_ms()),
    };
    assert!(matches!(
        backend.create_quota_policy(args.clone()).await.unwrap(),
        CreateQuotaPolicyResult::Created { .. }
    ));
    assert!(matches!(
        backend.create_quota_policy(args).await.unwrap(),
        CreateQuotaPolicyResult::AlreadySatisfied { .. }
    ));
    let conn = backend.connection_for_test();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
    };
    assert_eq!(
        (count("ff_quota_window"), count("ff_quota_admitted")),
        (0, 0)
    );
}

#[tokio::test]
#[parallel(process)]
async fn get_budget_status_returns_limits_and_counters() {
    let backend = fresh_backend("budget-status").await;
    let id = BudgetId::new();
    assert!(matches!(
        backend.get_budget_status(&id).await.unwrap_err(),
        EngineError::NotFound { entity: "budget" }
    ));
    backend
        .create_budget(budget_args(&id, 0, 100, 80))
        .await
        .unwrap();
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.budget_id, id.to_string());
    assert_eq!(
        (status.scope_type.as_str(), status.scope_id.as_str()),
        ("flow", "flow-1")
    );
    assert_eq!(status.enforcement_mode, "strict");
    assert_eq!(status.hard_limits.get("tokens").copied(), Some(100));
    assert_eq!(status.soft_limits.get("tokens").copied(), Some(80));
    assert_eq!((status.breach_count, status.soft_breach_count), (0, 0));
    assert!(status.created_at.is_some());
    assert!(status.next_reset_at.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn report_usage_admin_ok_increments_usage() {
    let backend = fresh_backend("budget-admin-ok").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 80))
        .await
        .unwrap();
    assert_eq!(
        backend
            .report_usage_admin(&id, admin("tokens", 30))
            .await
            .unwrap(),
        ReportUsageResult::Ok
    );
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(30));
    assert_eq!((status.breach_count, status.soft_breach_count), (0, 0));
}

#[tokio::test]
#[parallel(process)]
async fn report_usage_admin_soft_breach_increments_soft_count() {
    let backend = fresh_backend("budget-admin-soft").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 50))
        .await
        .unwrap();
    assert_eq!(
        backend
            .report_usage_admin(&id, admin("tokens", 60))
            .await
            .unwrap(),
        ReportUsageResult::SoftBreach {
            dimension: "tokens".into(),
            current_usage: 60,
            soft_limit: 50
        }
    );
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(60));
    assert_eq!((status.soft_breach_count, status.breach_count), (1, 0));
}

#[tokio::test]
#[parallel(process)]
async fn report_usage_admin_hard_breach_rejects_and_increments_hard_count() {
    let backend = fresh_backend("budget-admin-hard").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 50))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 60))
        .await
        .unwrap();
    assert_eq!(
        backend
            .report_usage_admin(&id, admin("tokens", 60))
            .await
            .unwrap(),
        ReportUsageResult::HardBreach {
            dimension: "tokens".into(),
            current_usage: 60,
            hard_limit: 100
        }
    );
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(60));
    assert_eq!(status.breach_count, 1);
    assert_eq!(status.last_breach_dim.as_deref(), Some("tokens"));
}

#[tokio::test]
#[parallel(process)]
async fn token_budget_scenario_trips_hard_breach_via_counter() {
    let backend = fresh_backend("budget-token-scenario").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_with(
            &id,
            0,
            &[("tokens", 1_200, 800), ("cost_micros", 15_000, 10_000)],
            now_ms(),
        ))
        .await
        .unwrap();
    let (mut soft_seen, mut hard_seen) = (false, false);
    for attempt in 0..5 {
        let args = ReportUsageAdminArgs::new(
            vec!["tokens".into(), "cost_micros".into()],
            vec![350, 8],
            TimestampMs(now_ms()),
        )
        .with_dedup_key(format!("attempt-{attempt}"));
        match backend.report_usage_admin(&id, args).await.unwrap() {
            ReportUsageResult::Ok => {}
            ReportUsageResult::SoftBreach { .. } => soft_seen = true,
            ReportUsageResult::HardBreach { .. } => {
                hard_seen = true;
                break;
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert!(soft_seen && hard_seen);
    let status = backend.get_budget_status(&id).await.unwrap();
    assert!(status.breach_count >= 1 && status.soft_breach_count >= 1);
    assert!(status.usage.get("tokens").copied().unwrap_or(0) < 1_200);
}

#[tokio::test]
#[parallel(process)]
async fn report_usage_admin_dedup_replay_returns_cached_outcome() {
    let backend = fresh_backend("budget-admin-dedup").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 80))
        .await
        .unwrap();
    let args = admin("tokens", 10).with_dedup_key(format!("dedup-{}", Uuid::new_v4()));
    assert_eq!(
        backend.report_usage_admin(&id, args.clone()).await.unwrap(),
        ReportUsageResult::Ok
    );
    assert_eq!(
        backend.report_usage_admin(&id, args).await.unwrap(),
        ReportUsageResult::Ok
    );
    assert_eq!(usage(&backend, &id, "tokens").await, Some(10));
}

// ── typed_record_spend.rs ───────────────────────────────────────────────────────────────

/// A backend with `id` holding tokens 100/50 (and, with `with_cost`, cost_cents 1000/500).
async fn spend_backend(prefix: &str, with_cost: bool) -> (Arc<SqliteBackend>, BudgetId) {
    let backend = fresh_backend(prefix).await;
    let id = BudgetId::new();
    let mut dimensions = vec![("tokens", 100, 50)];
    if with_cost {
        dimensions.push(("cost_cents", 1_000, 500));
    }
    backend
        .create_budget(budget_with(&id, 0, &dimensions, now_ms()))
        .await
        .unwrap();
    (backend, id)
}

#[tokio::test]
#[parallel(process)]
async fn record_spend_ok_path() {
    let (backend, id) = spend_backend("spend-ok", true).await;
    let execution = solo_execution();
    assert_eq!(
        backend
            .record_spend(spend(
                &id,
                &execution,
                &[("tokens", 10), ("cost_cents", 20)],
                "ok-1"
            ))
            .await
            .unwrap(),
        ReportUsageResult::Ok
    );
    assert_eq!(ledger(&backend, &id, &execution, "tokens"), Some(10));
    assert_eq!(ledger(&backend, &id, &execution, "cost_cents"), Some(20));
}

#[tokio::test]
#[parallel(process)]
async fn record_spend_idempotent_replay() {
    let (backend, id) = spend_backend("spend-replay", false).await;
    let execution = solo_execution();
    let args = spend(&id, &execution, &[("tokens", 7)], "replay-me");
    assert_eq!(
        backend.record_spend(args.clone()).await.unwrap(),
        ReportUsageResult::Ok
    );
    assert_eq!(
        backend.record_spend(args).await.unwrap(),
        ReportUsageResult::AlreadyApplied
    );
    assert_eq!(ledger(&backend, &id, &execution, "tokens"), Some(7));
}

#[tokio::test]
#[parallel(process)]
async fn record_spend_soft_breach() {
    let (backend, id) = spend_backend("spend-soft", false).await;
    let execution = solo_execution();
    assert_eq!(
        backend
            .record_spend(spend(&id, &execution, &[("tokens", 60)], "soft-1"))
            .await
            .unwrap(),
        ReportUsageResult::SoftBreach {
            dimension: "tokens".into(),
            current_usage: 60,
            soft_limit: 50
        }
    );
    assert_eq!(ledger(&backend, &id, &execution, "tokens"), Some(60));
}

#[tokio::test]
#[parallel(process)]
async fn record_spend_hard_breach() {
    let (backend, id) = spend_backend("spend-hard", false).await;
    let execution = solo_execution();
    backend
        .record_spend(spend(&id, &execution, &[("tokens", 40)], "hard-1"))
        .await
        .unwrap();
    assert_eq!(
        backend
            .record_spend(spend(&id, &execution, &[("tokens", 80)], "hard-2"))
            .await
            .unwrap(),
        ReportUsageResult::HardBreach {
            dimension: "tokens".into(),
            current_usage: 40,
            hard_limit: 100
        }
    );
    assert_eq!(ledger(&backend, &id, &execution, "tokens"), Some(40));
}

// ── typed_release_budget.rs ─────────────────────────────────────────────────────────────

/// A backend with a limitless `tokens` budget.
async fn release_backend(prefix: &str) -> (Arc<SqliteBackend>, BudgetId) {
    let backend = fresh_backend(prefix).await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 0, 0))
        .await
        .unwrap();
    (backend, id)
}

#[tokio::test]
#[parallel(process)]
async fn release_after_record_zeros_aggregate() {
    let (backend, id) = release_backend("release-zero").await;
    let execution = solo_execution();
    backend
        .record_spend(spend(&id, &execution, &[("tokens", 5)], "r-1"))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(5));
    assert_eq!(ledger_rows(&backend, &id, &execution), 1);
    backend
        .release_budget(ReleaseBudgetArgs::new(id.clone(), execution.clone()))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(0));
    assert_eq!(ledger_rows(&backend, &id, &execution), 0);
}

#[tokio::test]
#[parallel(process)]
async fn release_reverses_accumulated_spends() {
    let (backend, id) = release_backend("release-accumulated").await;
    let execution = solo_execution();
    for (delta, key) in [(3, "a"), (7, "b"), (2, "c")] {
        backend
            .record_spend(spend(&id, &execution, &[("tokens", delta)], key))
            .await
            .unwrap();
    }
    assert_eq!(usage(&backend, &id, "tokens").await, Some(12));
    backend
        .release_budget(ReleaseBudgetArgs::new(id.clone(), execution.clone()))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(0));
    assert_eq!(ledger_rows(&backend, &id, &execution), 0);
}

#[tokio::test]
#[parallel(process)]
async fn release_without_prior_record_is_noop() {
    let (backend, id) = release_backend("release-noop").await;
    backend
        .record_spend(spend(&id, &solo_execution(), &[("tokens", 9)], "other"))
        .await
        .unwrap();
    backend
        .release_budget(ReleaseBudgetArgs::new(id.clone(), solo_execution()))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(9));
}

#[tokio::test]
#[parallel(process)]
async fn release_is_idempotent_and_isolated() {
    let (backend, id) = release_backend("release-isolated").await;
    let (first, second) = (solo_execution(), solo_execution());
    backend
        .record_spend(spend(&id, &first, &[("tokens", 5)], "e1"))
        .await
        .unwrap();
    backend
        .record_spend(spend(&id, &second, &[("tokens", 8)], "e2"))
        .await
        .unwrap();
    assert_eq!(usage(&backend, &id, "tokens").await, Some(13));
    for _ in 0..2 {
        backend
            .release_budget(ReleaseBudgetArgs::new(id.clone(), first.clone()))
            .await
            .unwrap();
        assert_eq!(usage(&backend, &id, "tokens").await, Some(8));
        assert_eq!(ledger_rows(&backend, &id, &first), 0);
        assert_eq!(ledger_rows(&backend, &id, &second), 1);
    }
}

// ── typed_check_admission.rs ────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn admits_first_request_in_window() {
    let backend = fresh_backend("admit-first").await;
    assert_eq!(
        backend
            .check_admission(&QuotaPolicyId::new(), "", admission(now_ms(), 10, 100))
            .await
            .unwrap(),
        CheckAdmissionResult::Admitted
    );
}

#[tokio::test]
#[parallel(process)]
async fn idempotent_second_admit_returns_already_admitted() {
    let backend = fresh_backend("admit-twice").await;
    let policy = QuotaPolicyId::new();
    let args = admission(now_ms(), 10, 100);
    assert_eq!(
        backend
            .check_admission(&policy, "", args.clone())
            .await
            .unwrap(),
        CheckAdmissionResult::Admitted
    );
    assert_eq!(
        backend.check_admission(&policy, "", args).await.unwrap(),
        CheckAdmissionResult::AlreadyAdmitted
    );
}

#[tokio::test]
#[parallel(process)]
async fn rate_exceeded_returns_retry_after() {
    let backend = fresh_backend("admit-rate").await;
    let policy = QuotaPolicyId::new();
    for _ in 0..3 {
        assert_eq!(
            backend
                .check_admission(&policy, "", admission(now_ms(), 3, 100))
                .await
                .unwrap(),
            CheckAdmissionResult::Admitted
        );
    }
    assert!(matches!(
        backend
            .check_admission(&policy, "", admission(now_ms(), 3, 100))
            .await
            .unwrap(),
        CheckAdmissionResult::RateExceeded { .. }
    ));
}

#[tokio::test]
#[parallel(process)]
async fn concurrency_cap_blocks_additional_admits() {
    let backend = fresh_backend("admit-cap").await;
    let policy = QuotaPolicyId::new();
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_quota_policy (partition_key, quota_policy_id, \
                 requests_per_window_seconds, max_requests_per_window, active_concurrency_cap, \
                 active_concurrency, created_at_ms, updated_at_ms) \
             VALUES (0, ?1, 60, 100, 2, 2, ?2, ?2)",
            rusqlite::params![policy.to_string(), now_ms()],
        )
        .unwrap();
    assert_eq!(
        backend
            .check_admission(&policy, "", admission(now_ms(), 100, 2))
            .await
            .unwrap(),
        CheckAdmissionResult::ConcurrencyExceeded
    );
}

/// The exact retry delay: until the oldest admission leaves the window, plus the whole jitter.
#[tokio::test]
#[parallel(process)]
async fn rate_exceeded_retry_after_is_exact() {
    let backend = fresh_backend("admit-retry-after").await;
    let policy = QuotaPolicyId::new();
    let t = 1_700_000_000_000;
    backend
        .check_admission(&policy, "", admission(t, 1, 0))
        .await
        .unwrap();
    let mut late = admission(t + 1_000, 1, 0);
    late.jitter_ms = Some(25);
    assert_eq!(
        backend.check_admission(&policy, "", late).await.unwrap(),
        CheckAdmissionResult::RateExceeded {
            retry_after_ms: 59_025
        }
    );
}

// ── Postgres: release_admission.rs, read_quota_policy_limits.rs ─────────────────────────

#[tokio::test]
#[parallel(process)]
async fn release_admission_idempotent() {
    let backend = fresh_backend("release-admission").await;
    let policy = QuotaPolicyId::new();
    let execution = new_execution_id();
    {
        let conn = backend.connection_for_test();
        conn.execute(
            "INSERT INTO ff_quota_admitted (partition_key, quota_policy_id, execution_id, \
                 admitted_at_ms, expires_at_ms) VALUES (0, ?1, ?2, 1000000, 1060000)",
            rusqlite::params![policy.to_string(), execution.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ff_quota_policy (partition_key, quota_policy_id, \
                 requests_per_window_seconds, max_requests_per_window, active_concurrency_cap, \
                 active_concurrency, created_at_ms, updated_at_ms) \
             VALUES (0, ?1, 0, 0, 0, 1, 1000000, 1000000)",
            [policy.to_string()],
        )
        .unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            backend
                .release_admission(ReleaseAdmissionArgs::new(policy.clone(), execution.clone()))
                .await
                .unwrap(),
            ReleaseAdmissionResult::Released
        );
        assert_eq!(active_concurrency(&backend, &policy), 0);
        let guards: i64 = backend
            .connection_for_test()
            .query_row("SELECT count(*) FROM ff_quota_admitted", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(guards, 0);
    }
}

#[tokio::test]
#[parallel(process)]
async fn read_quota_policy_limits_roundtrip() {
    let backend = fresh_backend("quota-limits").await;
    let policy = QuotaPolicyId::new();
    assert_eq!(
        backend.read_quota_policy_limits(&policy).await.unwrap(),
        None
    );
    backend
        .create_quota_policy(CreateQuotaPolicyArgs {
            quota_policy_id: policy.clone(),
            window_seconds: 60,
            max_requests_per_window: 100,
            max_concurrent: 5,
            now: TimestampMs(now_ms()),
        })
        .await
        .unwrap();
    let limits = backend
        .read_quota_policy_limits(&policy)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(limits, QuotaPolicyLimits::new(100, 60, 5, 0));
    assert!(!limits.is_unlimited());
}

/// A policy row `check_admission` created as a placeholder takes the limits of a later
/// `create_quota_policy` (`docs/semantics.md`, admission's source of truth).
#[tokio::test]
#[parallel(process)]
async fn create_quota_policy_fills_a_placeholder_left_by_admission() {
    let backend = fresh_backend("quota-placeholder").await;
    let policy = QuotaPolicyId::new();
    backend
        .check_admission(&policy, "", admission(now_ms(), 0, 3))
        .await
        .unwrap();
    assert!(
        backend
            .read_quota_policy_limits(&policy)
            .await
            .unwrap()
            .expect("placeholder")
            .is_unlimited()
    );
    assert!(matches!(
        backend
            .create_quota_policy(CreateQuotaPolicyArgs {
                quota_policy_id: policy.clone(),
                window_seconds: 30,
                max_requests_per_window: 10,
                max_concurrent: 3,
                now: TimestampMs(now_ms()),
            })
            .await
            .unwrap(),
        CreateQuotaPolicyResult::Created { .. }
    ));
    assert_eq!(
        backend.read_quota_policy_limits(&policy).await.unwrap(),
        Some(QuotaPolicyLimits::new(10, 30, 3, 0))
    );
    assert_eq!(
        active_concurrency(&backend, &policy),
        1,
        "the slot taken is kept"
    );
}

/// Slots of admissions whose window ended return on a reconcile pass (`docs/semantics.md`,
/// slot lifetime).
#[tokio::test]
#[parallel(process)]
async fn reconcile_quota_counters_returns_slots_of_ended_windows() {
    let backend = fresh_backend("quota-reconcile").await;
    let policy = QuotaPolicyId::new();
    let t = 1_700_000_000_000;
    backend
        .check_admission(&policy, "", admission(t, 0, 1))
        .await
        .unwrap();
    assert_eq!(
        backend
            .check_admission(&policy, "", admission(t + 1, 0, 1))
            .await
            .unwrap(),
        CheckAdmissionResult::ConcurrencyExceeded
    );
    let partition = Partition {
        family: PartitionFamily::Quota,
        index: 0,
    };
    assert_eq!(
        backend
            .reconcile_quota_counters(partition, TimestampMs(t + 59_999))
            .await
            .unwrap(),
        ReconcileCounts::default()
    );
    assert_eq!(
        backend
            .reconcile_quota_counters(partition, TimestampMs(t + 60_000))
            .await
            .unwrap()
            .processed,
        1
    );
    assert_eq!(
        backend
            .check_admission(&policy, "", admission(t + 60_001, 0, 1))
            .await
            .unwrap(),
        CheckAdmissionResult::Admitted
    );
}

// ── read_budget_usage_and_limits (Valkey's semantics) ───────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn usage_and_limits_name_limits_as_valkey_does() {
    let backend = fresh_backend("budget-usage-limits").await;
    let id = BudgetId::new();
    assert_eq!(
        backend.read_budget_usage_and_limits(&id).await.unwrap(),
        Default::default()
    );
    backend
        .create_budget(budget_with(
            &id,
            0,
            &[("tokens", 100, 80), ("calls", 0, 5)],
            now_ms(),
        ))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 30))
        .await
        .unwrap();
    let read = backend.read_budget_usage_and_limits(&id).await.unwrap();
    let limits: Vec<(&str, &str)> = read
        .limits
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        limits,
        [
            ("hard:calls", "0"),
            ("hard:tokens", "100"),
            ("soft:calls", "5"),
            ("soft:tokens", "80")
        ]
    );
    assert_eq!(
        read.hard_limits_with_usage().collect::<Vec<_>>(),
        [("tokens", 30, 100)]
    );
}

// ── wave9_reconciler.rs through the public API ──────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn budget_reset_reconciler_fires_on_due_row() {
    let backend = fresh_backend("reset-pass-due").await;
    let id = BudgetId::new();
    let t = now_ms();
    backend
        .create_budget(budget_args_at(&id, 60_000, 1_000, 800, t - 61_000))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 200))
        .await
        .unwrap();
    assert_eq!(
        backend.budget_reset_pass(TimestampMs(t)).await.unwrap(),
        ReconcileCounts {
            processed: 1,
            errors: 0
        }
    );
    let status = backend.get_budget_status(&id).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(0));
    assert_eq!(next_reset(&backend, &id).await, Some(t + 60_000));
    assert!(status.last_breach_at.is_none() && status.last_breach_dim.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn budget_reset_reconciler_skips_not_due() {
    let backend = fresh_backend("reset-pass-not-due").await;
    let id = BudgetId::new();
    let t = now_ms();
    backend
        .create_budget(budget_args_at(&id, 60_000, 1_000, 800, t))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 150))
        .await
        .unwrap();
    assert_eq!(
        backend.budget_reset_pass(TimestampMs(t)).await.unwrap(),
        ReconcileCounts::default()
    );
    assert_eq!(usage(&backend, &id, "tokens").await, Some(150));
    assert_eq!(next_reset(&backend, &id).await, Some(t + 60_000));
}

#[tokio::test]
#[parallel(process)]
async fn budget_reset_reconciler_skips_null_schedule() {
    let backend = fresh_backend("reset-pass-null").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 1_000, 800))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 42))
        .await
        .unwrap();
    assert_eq!(
        backend
            .budget_reset_pass(TimestampMs(now_ms() + 10_000_000))
            .await
            .unwrap(),
        ReconcileCounts::default()
    );
    assert_eq!(usage(&backend, &id, "tokens").await, Some(42));
    assert_eq!(next_reset(&backend, &id).await, None);
}

/// One pass handles at most 20 due budgets, earliest first; the rest wait for the next pass.
#[tokio::test]
#[parallel(process)]
async fn a_reset_pass_handles_twenty_budgets_earliest_first() {
    let backend = fresh_backend("reset-pass-batch").await;
    let t = now_ms();
    let ids: Vec<BudgetId> = (0..21).map(|_| BudgetId::new()).collect();
    for (age, id) in ids.iter().enumerate() {
        backend
            .create_budget(budget_args_at(id, 1_000, 0, 0, t - 100_000 + age as i64))
            .await
            .unwrap();
    }
    assert_eq!(
        backend
            .budget_reset_pass(TimestampMs(t))
            .await
            .unwrap()
            .processed,
        20
    );
    assert_eq!(
        next_reset(&backend, &ids[20]).await,
        Some(t - 100_000 + 20 + 1_000)
    );
    assert_eq!(next_reset(&backend, &ids[0]).await, Some(t + 1_000));
    assert_eq!(
        backend
            .budget_reset_pass(TimestampMs(t))
            .await
            .unwrap()
            .processed,
        1
    );
}

/// A backend on a fresh database whose background reset task runs every `interval`.
async fn backend_with_resets(prefix: &str, interval: Duration) -> Arc<SqliteBackend> {
    dev_mode();
    SqliteBackend::builder(memory_uri(prefix))
        .budget_reset_interval(interval)
        .open()
        .await
        .expect("construct")
}

#[tokio::test]
#[parallel(process)]
async fn supervisor_starts_and_stops_cleanly() {
    let backend = backend_with_resets("reset-task-stop", Duration::from_millis(100)).await;
    backend
        .shutdown_prepare(Duration::from_secs(2))
        .await
        .unwrap();
    backend
        .shutdown_prepare(Duration::from_secs(2))
        .await
        .unwrap();
}

#[tokio::test]
#[parallel(process)]
async fn supervisor_shutdown_drains_immediately_after_install() {
    let backend = backend_with_resets("reset-task-drain", Duration::from_secs(3_600)).await;
    backend
        .shutdown_prepare(Duration::from_secs(2))
        .await
        .unwrap();
}

#[tokio::test]
#[parallel(process)]
async fn supervisor_zero_interval_is_disabled_not_panic() {
    let backend = backend_with_resets("reset-task-zero", Duration::ZERO).await;
    backend
        .shutdown_prepare(Duration::from_secs(1))
        .await
        .unwrap();
}

/// The background task resets a due budget on its own, and stops on `shutdown_prepare`. The
/// loop only waits for the reset (bounded generously so a broken task fails the test instead of
/// hanging it).
#[tokio::test]
#[parallel(process)]
async fn supervisor_tick_advances_on_cadence() {
    let backend = backend_with_resets("reset-task-tick", Duration::from_millis(50)).await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args_at(&id, 60_000, 0, 0, now_ms() - 120_000))
        .await
        .unwrap();
    backend
        .report_usage_admin(&id, admin("tokens", 300))
        .await
        .unwrap();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while usage(&backend, &id, "tokens").await != Some(0) {
        assert!(
            tokio::time::Instant::now() < give_up,
            "the background reset never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backend
        .shutdown_prepare(Duration::from_secs(2))
        .await
        .unwrap();
    // Stopped: a budget due now stays as it is (no pass runs after shutdown_prepare).
    let other = BudgetId::new();
    backend
        .create_budget(budget_args_at(&other, 1, 0, 0, now_ms() - 10_000))
        .await
        .unwrap();
    backend
        .report_usage_admin(&other, admin("tokens", 5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(usage(&backend, &other, "tokens").await, Some(5));
}

// ── The worker path: report_usage through a handle ──────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_worker_reports_usage_through_its_handle() {
    let (backend, _, claim) = created_leased_backend("worker-report").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 50))
        .await
        .unwrap();
    let mut dimensions = UsageDimensions::new().with_dedup_key("step-1");
    dimensions.custom.insert("tokens".into(), 60);
    let soft = ReportUsageResult::SoftBreach {
        dimension: "tokens".into(),
        current_usage: 60,
        soft_limit: 50,
    };
    assert_eq!(
        backend
            .report_usage(&claim.handle, &id, dimensions.clone())
            .await
            .unwrap(),
        soft
    );
    assert_eq!(
        backend
            .report_usage(&claim.handle, &id, dimensions)
            .await
            .unwrap(),
        soft,
        "a replay returns the stored outcome"
    );
    let mut more = UsageDimensions::new();
    more.custom.insert("tokens".into(), 41);
    assert_eq!(
        backend
            .report_usage(&claim.handle, &id, more)
            .await
            .unwrap(),
        ReportUsageResult::HardBreach {
            dimension: "tokens".into(),
            current_usage: 60,
            hard_limit: 100
        }
    );
    assert_eq!(usage(&backend, &id, "tokens").await, Some(60));
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_without_the_current_lease_cannot_report() {
    let (backend, eid, claim) = created_leased_backend("worker-report-stale").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 0, 0))
        .await
        .unwrap();
    let mut dimensions = UsageDimensions::new();
    dimensions.custom.insert("tokens".into(), 1);
    let foreign = Handle::new(
        BackendTag::Valkey,
        claim.handle.kind,
        claim.handle.opaque.clone(),
    );
    match rejected_without_writes(
        &backend,
        backend.report_usage(&foreign, &id, dimensions.clone()),
    )
    .await
    {
        EngineError::Validation {
            kind: ValidationKind::HandleFromOtherBackend,
            ..
        } => {}
        other => panic!("expected HandleFromOtherBackend, got {other:?}"),
    }
    backend
        .complete(&claim.handle, None)
        .await
        .expect("complete");
    let error = rejected_without_writes(
        &backend,
        backend.report_usage(&claim.handle, &id, dimensions),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::ExecutionNotActive { .. })
        ),
        "{eid}: {error:?}"
    );
}

// ── Bad input: a typed error, nothing written ───────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn bad_budget_input_is_refused_without_writes() {
    let backend = fresh_backend("budget-bad-input").await;
    let id = BudgetId::new();
    let mut mismatch = budget_args(&id, 0, 1, 1);
    mismatch.soft_limits.clear();
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(&backend, backend.create_budget(mismatch)).await
        ),
        "create_budget: dimensions / hard_limits / soft_limits length mismatch"
    );
    let repeated = budget_with(&id, 0, &[("tokens", 1, 1), ("tokens", 2, 2)], now_ms());
    invalid_input_detail(rejected_without_writes(&backend, backend.create_budget(repeated)).await);
    let huge_limit = budget_args(&id, 0, u64::MAX, 1);
    invalid_input_detail(
        rejected_without_writes(&backend, backend.create_budget(huge_limit)).await,
    );
    let huge_interval = budget_args(&id, u64::MAX, 1, 1);
    invalid_input_detail(
        rejected_without_writes(&backend, backend.create_budget(huge_interval)).await,
    );

    backend
        .create_budget(budget_args(&id, 0, 100, 0))
        .await
        .unwrap();
    let mismatch = ReportUsageAdminArgs::new(vec!["tokens".into()], vec![], TimestampMs(now_ms()));
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(&backend, backend.report_usage_admin(&id, mismatch)).await
        ),
        "report_usage_admin: dimensions and deltas length mismatch"
    );
    let huge = admin("tokens", u64::MAX).with_dedup_key("huge".into());
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(&backend, backend.report_usage_admin(&id, huge)).await
        ),
        format!(
            "report_usage_admin: delta for dim=tokens exceeds i64::MAX ({})",
            u64::MAX
        )
    );
    let huge_spend = spend(&id, &solo_execution(), &[("tokens", u64::MAX)], "huge");
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(&backend, backend.record_spend(huge_spend)).await
        ),
        format!(
            "record_spend: delta for dim=tokens exceeds i64::MAX ({})",
            u64::MAX
        )
    );
    assert!(matches!(
        rejected_without_writes(&backend, backend.get_budget_status(&BudgetId::new())).await,
        EngineError::NotFound { entity: "budget" }
    ));
    let huge_quota = CreateQuotaPolicyArgs {
        quota_policy_id: QuotaPolicyId::new(),
        window_seconds: u64::MAX,
        max_requests_per_window: 1,
        max_concurrent: 1,
        now: TimestampMs(now_ms()),
    };
    invalid_input_detail(
        rejected_without_writes(&backend, backend.create_quota_policy(huge_quota)).await,
    );
    assert_eq!(usage(&backend, &id, "tokens").await, None);
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_report_with_a_huge_delta_is_refused_without_writes() {
    let (backend, _, claim) = created_leased_backend("worker-report-huge").await;
    let id = BudgetId::new();
    let mut dimensions = UsageDimensions::new();
    dimensions.custom.insert("tokens".into(), u64::MAX);
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(
                &backend,
                backend.report_usage(&claim.handle, &id, dimensions)
            )
            .await
        ),
        format!(
            "report_usage: delta for dim=tokens exceeds i64::MAX ({})",
            u64::MAX
        )
    );
}

// ── Admission blocking and the budget reconciler (Valkey's semantics) ────────────────────

/// `block_execution_for_admission` arguments for `eid` on lane `default` at `now`.
fn admission_block(eid: &ExecutionId, reason: BlockingReason) -> BlockExecutionForAdmissionArgs {
    BlockExecutionForAdmissionArgs::new(
        eid.clone(),
        LaneId::new("default"),
        partition_of(eid),
        reason,
        Some("budget tokens exhausted".into()),
        TimestampMs(now_ms()),
    )
}

#[tokio::test]
#[parallel(process)]
async fn an_admission_blocked_execution_is_claimed_by_no_path_until_unblocked() {
    let backend = fresh_backend("admission-block").await;
    let lane = LaneId::new("default");
    for reason in [
        BlockingReason::WaitingForBudget,
        BlockingReason::WaitingForQuota,
        BlockingReason::WaitingForCapableWorker,
    ] {
        let eid = new_execution_id();
        backend
            .create_execution(create_args(eid.clone(), "default", now_ms()))
            .await
            .unwrap();
        // A grant issued before the block (the scheduler's race) does not get it claimed.
        backend
            .issue_claim_grant(grant_args(eid.clone(), "worker-1", now_ms()))
            .await
            .unwrap();
        assert_eq!(
            backend
                .block_execution_for_admission(admission_block(&eid, reason))
                .await
                .unwrap(),
            BlockExecutionForAdmissionOutcome::Blocked {
                execution_id: eid.clone(),
                reason,
            }
        );
        let conn = backend.connection_for_test();
        assert_eq!(
            exec_column(&conn, &eid, "blocking_reason"),
            reason.reason_code()
        );
        assert_eq!(exec_column(&conn, &eid, "public_state"), "rate_limited");
        drop(conn);
        assert!(matches!(
            backend
                .claim_execution(claim_args(eid.clone(), "worker-1"))
                .await
                .unwrap_err(),
            EngineError::Contention(ContentionKind::ExecutionNotLeaseable)
        ));
        assert!(
            backend
                .claim(&lane, &CapabilitySet::default(), scanner_policy("scanner"))
                .await
                .unwrap()
                .is_none(),
            "the lane scanner skips it"
        );
        assert!(
            backend
                .scan_eligible_executions(ScanEligibleArgs::new(
                    lane.clone(),
                    partition_of(&eid),
                    10
                ))
                .await
                .unwrap()
                .is_empty()
        );
        // A second block (say, the other admission check) keeps it parked: no error.
        assert!(matches!(
            backend
                .block_execution_for_admission(admission_block(&eid, reason))
                .await
                .unwrap(),
            BlockExecutionForAdmissionOutcome::Blocked { .. }
        ));
        // The unblock scanner's hook (routing's `unblock_execution`) releases it.
        backend
            .unblock_execution(
                partition_of(&eid),
                &lane,
                &eid,
                reason.reason_code(),
                TimestampMs(now_ms()),
            )
            .await
            .unwrap();
        // The grant issued before the block still reserves it for worker-1 (the lane scanner
        // leaves it alone), and worker-1 now claims it with that grant.
        assert!(
            backend
                .claim(&lane, &CapabilitySet::default(), scanner_policy("scanner"))
                .await
                .unwrap()
                .is_none()
        );
        claimed(
            backend
                .claim_execution(claim_args(eid.clone(), "worker-1"))
                .await
                .expect("claimable again once unblocked"),
        );
        assert_eq!(
            exec_column(&backend.connection_for_test(), &eid, "lifecycle_phase"),
            "active"
        );
    }
}

#[tokio::test]
#[parallel(process)]
async fn admission_block_rejections_are_outcomes_and_bad_input_is_typed_without_writes() {
    let backend = fresh_backend("admission-block-bad").await;
    let missing = new_execution_id();
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        backend
            .block_execution_for_admission(admission_block(
                &missing,
                BlockingReason::WaitingForQuota
            ))
            .await
            .unwrap(),
        BlockExecutionForAdmissionOutcome::LuaRejected {
            message: "execution_not_found: execution does not exist".into()
        }
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    let eid = new_execution_id();
    let now = now_ms();
    let claim = create_and_lease(
        &*backend,
        now,
        claim_args_at(eid.clone(), "worker-1", 0, now),
    )
    .await;
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        backend
            .block_execution_for_admission(admission_block(&eid, BlockingReason::WaitingForBudget))
            .await
            .unwrap(),
        BlockExecutionForAdmissionOutcome::LuaRejected {
            message: "execution_not_eligible: state changed".into()
        }
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    backend
        .complete_execution(complete_args(&eid, Some(fence_of(&claim))))
        .await
        .unwrap();
    let before = snapshot(&backend.connection_for_test());
    let BlockExecutionForAdmissionOutcome::LuaRejected { message } = backend
        .block_execution_for_admission(admission_block(&eid, BlockingReason::WaitingForBudget))
        .await
        .unwrap()
    else {
        panic!("a finished execution is not blocked");
    };
    assert_eq!(
        message,
        format!(
            "execution_not_active: lifecycle_phase=terminal terminal_outcome=success lease_epoch=1 attempt_id={}",
            claim.attempt_id
        )
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);

    let waiting = new_execution_id();
    backend
        .create_execution(create_args(waiting.clone(), "default", now_ms()))
        .await
        .unwrap();
    let mut wrong_partition = admission_block(&waiting, BlockingReason::WaitingForBudget);
    wrong_partition.partition = Partition {
        family: PartitionFamily::Budget,
        index: wrong_partition.partition.index,
    };
    assert!(
        invalid_input_detail(
            rejected_without_writes(
                &backend,
                backend.block_execution_for_admission(wrong_partition)
            )
            .await
        )
        .contains("does not hold execution")
    );
    let mut wrong_lane = admission_block(&waiting, BlockingReason::WaitingForBudget);
    wrong_lane.lane_id = LaneId::new("elsewhere");
    assert_eq!(
        invalid_input_detail(
            rejected_without_writes(&backend, backend.block_execution_for_admission(wrong_lane))
                .await
        ),
        "lane_id \"elsewhere\" is not the execution's lane \"default\""
    );
    let supports = backend.capabilities().supports;
    assert!(supports.block_execution_for_admission && supports.release_admission);
}

#[tokio::test]
#[parallel(process)]
async fn reconcile_budget_counters_marks_and_clears_an_out_of_band_breach() {
    let backend = fresh_backend("budget-reconcile").await;
    let id = BudgetId::new();
    backend
        .create_budget(budget_args(&id, 0, 100, 50))
        .await
        .unwrap();
    let partition = Partition {
        family: PartitionFamily::Budget,
        index: 0,
    };
    let pass = |at: i64| backend.reconcile_budget_counters(partition, TimestampMs(at));
    let counts = |processed, errors| ReconcileCounts { processed, errors };
    backend
        .report_usage_admin(&id, admin("tokens", 100))
        .await
        .unwrap();
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        pass(now_ms()).await.unwrap(),
        counts(0, 0),
        "at the limit is no breach"
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    backend
        .connection_for_test()
        .execute(
            "UPDATE ff_budget_usage SET current_value = 150 WHERE budget_id = ?1",
            [id.to_string()],
        )
        .unwrap();
    assert_eq!(pass(now_ms()).await.unwrap(), counts(1, 0));
    assert_eq!(pass(now_ms()).await.unwrap(), counts(0, 0), "marked once");
    backend
        .reset_budget(ResetBudgetArgs {
            budget_id: id.clone(),
            now: TimestampMs(now_ms()),
        })
        .await
        .unwrap();
    assert_eq!(
        pass(now_ms()).await.unwrap(),
        counts(1, 0),
        "the mark is cleared"
    );
    assert_eq!(pass(now_ms()).await.unwrap(), counts(0, 0));
}

// ── Concurrency ─────────────────────────────────────────────────────────────────────────

/// 64 reporters against one budget on a file database: every increment lands, and the hard
/// limit is never passed (exactly as many reports as fit are applied; the rest are breaches).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[parallel(process)]
async fn concurrent_reporters_lose_nothing_and_never_pass_the_hard_limit() {
    const REPORTERS: u64 = 64;
    const REPORTS_EACH: u64 = 20;
    const HARD: u64 = 1_000;
    dev_mode();
    let dir = ScratchDir::new("budget-concurrency");
    let backend = SqliteBackend::new(&dir.file("budgets.db"))
        .await
        .expect("construct");
    let (limited, unlimited) = (BudgetId::new(), BudgetId::new());
    backend
        .create_budget(budget_args(&limited, 0, HARD, 0))
        .await
        .unwrap();
    backend
        .create_budget(budget_args(&unlimited, 0, 0, 0))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..REPORTERS)
        .map(|_| {
            let backend = Arc::clone(&backend);
            let (limited, unlimited) = (limited.clone(), unlimited.clone());
            tokio::spawn(async move {
                let mut applied = 0u64;
                for _ in 0..REPORTS_EACH {
                    backend
                        .report_usage_admin(&unlimited, admin("tokens", 1))
                        .await
                        .unwrap();
                    match backend
                        .report_usage_admin(&limited, admin("tokens", 1))
                        .await
                        .unwrap()
                    {
                        ReportUsageResult::Ok => applied += 1,
                        ReportUsageResult::HardBreach { current_usage, .. } => {
                            assert_eq!(current_usage, HARD);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                applied
            })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        applied += task.await.unwrap();
    }
    let total = REPORTERS * REPORTS_EACH;
    assert_eq!(usage(&backend, &unlimited, "tokens").await, Some(total));
    assert_eq!(applied, HARD);
    let status = backend.get_budget_status(&limited).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(HARD));
    assert_eq!(status.breach_count, total - HARD);
}
