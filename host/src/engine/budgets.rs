//! Budgets, quota policies and admission: the guest's `budgets` interface. Each method converts
//! its arguments, makes one guest call and converts the result; the worker path decodes the
//! handle's lease first.

use std::collections::{BTreeMap, HashMap};

use ff_core::backend::{Handle, UsageDimensions};
use ff_core::contracts::{
    BlockExecutionForAdmissionArgs, BlockExecutionForAdmissionOutcome, BlockingReason,
    BudgetStatus, BudgetUsageAndLimits, CheckAdmissionArgs, CheckAdmissionResult, CreateBudgetArgs,
    CreateBudgetResult, CreateQuotaPolicyArgs, CreateQuotaPolicyResult, QuotaPolicyLimits,
    RecordSpendArgs, ReleaseAdmissionArgs, ReleaseAdmissionResult, ReleaseBudgetArgs,
    ReportUsageAdminArgs, ReportUsageResult, ResetBudgetArgs, ResetBudgetResult,
};
use ff_core::engine_backend::ReconcileCounts;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::types::{BudgetId, QuotaPolicyId, TimestampMs};

use crate::backend::SqliteBackend;
use crate::bindings::args;
use crate::bindings::budgets as wit;
use crate::operation::Tx;

use super::inputs::{check_partition, wall_clock};

pub(super) async fn create_budget(
    backend: &SqliteBackend,
    args: CreateBudgetArgs,
) -> Result<CreateBudgetResult, EngineError> {
    let guest_args = wit::CreateBudgetArgs {
        budget_id: args.budget_id.to_string(),
        scope_type: args.scope_type,
        scope_id: args.scope_id,
        enforcement_mode: args.enforcement_mode,
        on_hard_limit: args.on_hard_limit,
        on_soft_limit: args.on_soft_limit,
        reset_interval_ms: args.reset_interval_ms,
        dimensions: args.dimensions,
        hard_limits: args.hard_limits,
        soft_limits: args.soft_limits,
        now: args.now.0,
    };
    let outcome = backend
        .run("create_budget", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_create_budget(store, &guest_args)
        })
        .await?;
    let budget_id = args.budget_id;
    Ok(match outcome {
        wit::CreateOutcome::Created => CreateBudgetResult::Created { budget_id },
        wit::CreateOutcome::AlreadySatisfied => CreateBudgetResult::AlreadySatisfied { budget_id },
    })
}

pub(super) async fn reset_budget(
    backend: &SqliteBackend,
    args: ResetBudgetArgs,
) -> Result<ResetBudgetResult, EngineError> {
    let budget_id = args.budget_id.to_string();
    let now = args.now.0;
    let next_reset = backend
        .run("reset_budget", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_reset_budget(store, &budget_id, now)
        })
        .await?;
    Ok(ResetBudgetResult::Reset {
        next_reset_at: TimestampMs::from_millis(next_reset.unwrap_or(0)),
    })
}

pub(super) async fn get_budget_status(
    backend: &SqliteBackend,
    id: &BudgetId,
) -> Result<BudgetStatus, EngineError> {
    let budget_id = id.to_string();
    let status = backend
        .run("get_budget_status", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_get_budget_status(store, &budget_id)
        })
        .await?;
    let map = |entries: Vec<wit::DimensionAmount>| -> HashMap<String, u64> {
        entries
            .into_iter()
            .map(|entry| (entry.dimension, entry.amount))
            .collect()
    };
    Ok(BudgetStatus {
        budget_id: status.budget_id,
        scope_type: status.scope_type,
        scope_id: status.scope_id,
        enforcement_mode: status.enforcement_mode,
        usage: map(status.usage),
        hard_limits: map(status.hard_limits),
        soft_limits: map(status.soft_limits),
        breach_count: status.breach_count,
        soft_breach_count: status.soft_breach_count,
        last_breach_at: status.last_breach_at.map(|at| at.to_string()),
        last_breach_dim: status.last_breach_dim,
        next_reset_at: status.next_reset_at.map(|at| at.to_string()),
        created_at: Some(status.created_at.to_string()),
    })
}

pub(super) async fn report_usage_admin(
    backend: &SqliteBackend,
    budget: &BudgetId,
    args: ReportUsageAdminArgs,
) -> Result<ReportUsageResult, EngineError> {
    // `args.now` is not used: like upstream, usage is stamped with the host's clock.
    let guest_args = wit::ReportUsageAdminArgs {
        budget_id: budget.to_string(),
        dimensions: args.dimensions,
        deltas: args.deltas,
        dedup_key: args.dedup_key,
        now: wall_clock(),
    };
    let outcome = backend
        .run("report_usage_admin", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_report_usage_admin(store, &guest_args)
        })
        .await?;
    Ok(usage_result(outcome))
}

pub(super) async fn report_usage(
    backend: &SqliteBackend,
    handle: &Handle,
    budget: &BudgetId,
    dimensions: UsageDimensions,
) -> Result<ReportUsageResult, EngineError> {
    let (lease, _) = args::handle_lease(handle)?;
    let guest_args = wit::ReportUsageArgs {
        lease: wit::UsageLease {
            execution_id: lease.execution_id,
            attempt_index: lease.attempt_index,
            lease_id: lease.lease_id,
            lease_epoch: lease.lease_epoch,
            attempt_id: lease.attempt_id,
        },
        budget_id: budget.to_string(),
        deltas: amounts(dimensions.custom),
        dedup_key: dimensions.dedup_key,
        now: wall_clock(),
    };
    let outcome = backend
        .run("report_usage", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_report_usage(store, &guest_args)
        })
        .await?;
    Ok(usage_result(outcome))
}

pub(super) async fn record_spend(
    backend: &SqliteBackend,
    args: RecordSpendArgs,
) -> Result<ReportUsageResult, EngineError> {
    let guest_args = wit::RecordSpendArgs {
        budget_id: args.budget_id.to_string(),
        execution_id: args.execution_id.to_string(),
        deltas: amounts(args.deltas),
        idempotency_key: args.idempotency_key,
        now: wall_clock(),
    };
    let outcome = backend
        .run("record_spend", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_record_spend(store, &guest_args)
        })
        .await?;
    Ok(usage_result(outcome))
}

pub(super) async fn release_budget(
    backend: &SqliteBackend,
    args: ReleaseBudgetArgs,
) -> Result<(), EngineError> {
    let budget_id = args.budget_id.to_string();
    let execution_id = args.execution_id.to_string();
    let now = wall_clock();
    backend
        .run("release_budget", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_budgets().call_release_budget(
                store,
                &budget_id,
                &execution_id,
                now,
            )
        })
        .await
}

pub(super) async fn read_budget_usage_and_limits(
    backend: &SqliteBackend,
    id: &BudgetId,
) -> Result<BudgetUsageAndLimits, EngineError> {
    let budget_id = id.to_string();
    let read = backend
        .run(
            "read_budget_usage_and_limits",
            Tx::Read,
            move |guest, store| {
                guest
                    .flowfabric_backend_budgets()
                    .call_read_budget_usage_and_limits(store, &budget_id)
            },
        )
        .await?;
    let limits = read
        .hard_limits
        .into_iter()
        .map(|limit| {
            (
                format!("hard:{}", limit.dimension),
                limit.amount.to_string(),
            )
        })
        .chain(read.soft_limits.into_iter().map(|limit| {
            (
                format!("soft:{}", limit.dimension),
                limit.amount.to_string(),
            )
        }))
        .collect();
    let usage = read
        .usage
        .into_iter()
        .map(|entry| (entry.dimension, entry.amount))
        .collect();
    Ok(BudgetUsageAndLimits::new(limits, usage))
}

pub(super) async fn create_quota_policy(
    backend: &SqliteBackend,
    args: CreateQuotaPolicyArgs,
) -> Result<CreateQuotaPolicyResult, EngineError> {
    let guest_args = wit::CreateQuotaPolicyArgs {
        quota_policy_id: args.quota_policy_id.to_string(),
        window_seconds: args.window_seconds,
        max_requests_per_window: args.max_requests_per_window,
        max_concurrent: args.max_concurrent,
        now: args.now.0,
    };
    let outcome = backend
        .run("create_quota_policy", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_create_quota_policy(store, &guest_args)
        })
        .await?;
    let quota_policy_id = args.quota_policy_id;
    Ok(match outcome {
        wit::CreateOutcome::Created => CreateQuotaPolicyResult::Created { quota_policy_id },
        wit::CreateOutcome::AlreadySatisfied => {
            CreateQuotaPolicyResult::AlreadySatisfied { quota_policy_id }
        }
    })
}

pub(super) async fn check_admission(
    backend: &SqliteBackend,
    quota_policy_id: &QuotaPolicyId,
    args: CheckAdmissionArgs,
) -> Result<CheckAdmissionResult, EngineError> {
    // The dimension is not part of the call: every admission of a policy shares one window,
    // as upstream's SQL backends do.
    let guest_args = wit::CheckAdmissionArgs {
        quota_policy_id: quota_policy_id.to_string(),
        execution_id: args.execution_id.to_string(),
        window_seconds: args.window_seconds,
        rate_limit: args.rate_limit,
        concurrency_cap: args.concurrency_cap,
        jitter_ms: args.jitter_ms.unwrap_or(0),
        now: args.now.0,
    };
    let outcome = backend
        .run("check_admission", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_check_admission(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        wit::AdmissionOutcome::Admitted => CheckAdmissionResult::Admitted,
        wit::AdmissionOutcome::AlreadyAdmitted => CheckAdmissionResult::AlreadyAdmitted,
        wit::AdmissionOutcome::RateExceeded(retry_after_ms) => {
            CheckAdmissionResult::RateExceeded { retry_after_ms }
        }
        wit::AdmissionOutcome::ConcurrencyExceeded => CheckAdmissionResult::ConcurrencyExceeded,
    })
}

pub(super) async fn read_quota_policy_limits(
    backend: &SqliteBackend,
    quota_policy_id: &QuotaPolicyId,
) -> Result<Option<QuotaPolicyLimits>, EngineError> {
    let id = quota_policy_id.to_string();
    let limits = backend
        .run("read_quota_policy_limits", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_budgets()
                .call_read_quota_policy_limits(store, &id)
        })
        .await?;
    // No jitter is stored: it is always 0.
    Ok(limits.map(|limits| {
        QuotaPolicyLimits::new(
            limits.max_requests_per_window,
            limits.requests_per_window_seconds,
            limits.active_concurrency_cap,
            0,
        )
    }))
}

pub(super) async fn release_admission(
    backend: &SqliteBackend,
    args: ReleaseAdmissionArgs,
) -> Result<ReleaseAdmissionResult, EngineError> {
    let quota_policy_id = args.quota_policy_id.to_string();
    let execution_id = args.execution_id.to_string();
    backend
        .run("release_admission", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_budgets().call_release_admission(
                store,
                &quota_policy_id,
                &execution_id,
            )
        })
        .await?;
    Ok(ReleaseAdmissionResult::Released)
}

pub(super) async fn reconcile_quota_counters(
    backend: &SqliteBackend,
    now: TimestampMs,
) -> Result<ReconcileCounts, EngineError> {
    let now = now.0;
    reconcile_counts(
        backend
            .run(
                "reconcile_quota_counters",
                Tx::Write,
                move |guest, store| {
                    guest
                        .flowfabric_backend_budgets()
                        .call_reconcile_quota_counters(store, now)
                },
            )
            .await?,
    )
}

pub(super) async fn block_execution_for_admission(
    backend: &SqliteBackend,
    args: BlockExecutionForAdmissionArgs,
) -> Result<BlockExecutionForAdmissionOutcome, EngineError> {
    let reason = match args.reason {
        BlockingReason::WaitingForBudget => wit::AdmissionBlockReason::WaitingForBudget,
        BlockingReason::WaitingForQuota => wit::AdmissionBlockReason::WaitingForQuota,
        BlockingReason::WaitingForCapableWorker => {
            wit::AdmissionBlockReason::WaitingForCapableWorker
        }
        other => {
            return Err(args::validation(
                ValidationKind::InvalidInput,
                format!("block_execution_for_admission: unsupported reason {other:?}"),
            ));
        }
    };
    check_partition(&args.partition, &args.execution_id)?;
    let guest_args = wit::BlockForAdmissionArgs {
        execution_id: args.execution_id.to_string(),
        lane_id: args.lane_id.to_string(),
        reason,
        reason_detail: args.reason_detail,
        now: args.now.0,
    };
    let outcome = backend
        .run(
            "block_execution_for_admission",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_budgets()
                    .call_block_execution_for_admission(store, &guest_args)
            },
        )
        .await?;
    Ok(match outcome {
        wit::BlockForAdmissionOutcome::Blocked => BlockExecutionForAdmissionOutcome::Blocked {
            execution_id: args.execution_id,
            reason: args.reason,
        },
        wit::BlockForAdmissionOutcome::Rejected(message) => {
            BlockExecutionForAdmissionOutcome::LuaRejected { message }
        }
    })
}

pub(super) async fn reconcile_budget_counters(
    backend: &SqliteBackend,
    now: TimestampMs,
) -> Result<ReconcileCounts, EngineError> {
    let now = now.0;
    reconcile_counts(
        backend
            .run(
                "reconcile_budget_counters",
                Tx::Write,
                move |guest, store| {
                    guest
                        .flowfabric_backend_budgets()
                        .call_reconcile_budget_counters(store, now)
                },
            )
            .await?,
    )
}

/// A reconcile pass's counts as ff-core's.
fn reconcile_counts(counts: wit::ReconcileCounts) -> Result<ReconcileCounts, EngineError> {
    Ok(ReconcileCounts {
        processed: counts.processed,
        errors: counts.errors,
    })
}

/// A dimension → delta map as the guest's list.
fn amounts(deltas: BTreeMap<String, u64>) -> Vec<wit::DimensionAmount> {
    deltas
        .into_iter()
        .map(|(dimension, amount)| wit::DimensionAmount { dimension, amount })
        .collect()
}

/// The guest's usage outcome as ff-core's.
fn usage_result(outcome: wit::UsageOutcome) -> ReportUsageResult {
    match outcome {
        wit::UsageOutcome::Ok => ReportUsageResult::Ok,
        wit::UsageOutcome::SoftBreach(breach) => ReportUsageResult::SoftBreach {
            dimension: breach.dimension,
            current_usage: breach.current_usage,
            soft_limit: breach.limit,
        },
        wit::UsageOutcome::HardBreach(breach) => ReportUsageResult::HardBreach {
            dimension: breach.dimension,
            current_usage: breach.current_usage,
            hard_limit: breach.limit,
        },
        wit::UsageOutcome::AlreadyApplied => ReportUsageResult::AlreadyApplied,
    }
}
