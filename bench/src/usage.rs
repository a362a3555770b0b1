//! The `report_usage` rows: one worker holding one lease reports token usage against one budget,
//! each report under its own dedup key, through the backend (with the lease's handle) and with
//! the engine logic run natively (one transaction per report).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{Handle, UsageDimensions};
use ff_core::contracts::CreateBudgetArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{BudgetId, TimestampMs};
use ff_engine_guest::bindings::{budgets, types};
use rusqlite::Connection;

use crate::native::in_transaction;
use crate::stats::{Run, timed};
use crate::workload::{
    claim_args, claimed, execution_ids, guest_claim, now_ms, seed, seed_through_backend,
};

/// The tokens each report adds.
const TOKENS: u64 = 3;

/// The budget every report goes to: `tokens`, no hard limit (reports never stop), a soft limit.
fn budget_args(id: &BudgetId) -> CreateBudgetArgs {
    CreateBudgetArgs {
        budget_id: id.clone(),
        scope_type: "bench".into(),
        scope_id: "ffbench".into(),
        enforcement_mode: "strict".into(),
        on_hard_limit: "fail".into(),
        on_soft_limit: "warn".into(),
        reset_interval_ms: 0,
        dimensions: vec!["tokens".into()],
        hard_limits: vec![0],
        soft_limits: vec![1_000_000_000],
        now: TimestampMs::now(),
    }
}

/// The backend's side: a leased execution's handle and a budget.
pub async fn prepare_backend(backend: &Arc<SqliteBackend>) -> anyhow::Result<(Handle, BudgetId)> {
    let ids = execution_ids(1);
    seed_through_backend(backend, &ids, true, 1).await?;
    let lease = claimed(backend.claim_execution(claim_args(&ids[0])).await?);
    let budget = BudgetId::new();
    backend.create_budget(budget_args(&budget)).await?;
    Ok((lease.handle, budget))
}

/// The native side: a leased execution and a budget, through the same logic.
pub fn prepare_native(conn: &Connection) -> anyhow::Result<(types::ClaimedExecution, String)> {
    let ids = execution_ids(1);
    seed(conn, &ids, true)?;
    let lease = in_transaction(conn, |db| {
        ff_engine_guest::scheduling::claim_execution(db, &guest_claim(&ids[0]))
    })?;
    let budget = BudgetId::new();
    let args = budget_args(&budget);
    let guest_args = budgets::CreateBudgetArgs {
        budget_id: budget.to_string(),
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
    in_transaction(conn, |db| {
        ff_engine_guest::budgets::create_budget(db, &guest_args)
    })?;
    Ok((lease, budget.to_string()))
}

/// The dedup keys `first..first + count`, one per report.
pub fn keys(first: usize, count: usize) -> Vec<String> {
    (first..first + count)
        .map(|n| format!("report-{n}"))
        .collect()
}

/// One report per key through the backend, from `tasks` concurrent tokio tasks.
pub async fn through_backend(
    backend: &Arc<SqliteBackend>,
    handle: &Handle,
    budget: &BudgetId,
    keys: Vec<String>,
    tasks: usize,
) -> Run {
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (backend, handle, budget) = (Arc::clone(backend), handle.clone(), budget.clone());
            let (keys, next) = (Arc::clone(&keys), Arc::clone(&next));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while let Some(key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut usage = UsageDimensions::new().with_dedup_key(key.clone());
                    usage.custom.insert("tokens".into(), TOKENS);
                    let started = Instant::now();
                    backend
                        .report_usage(&handle, &budget, usage)
                        .await
                        .expect("report_usage");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("a benchmark task panicked"));
    }
    Run::new(started.elapsed(), latencies)
}

/// One report per key with the logic run natively on `conn`, from `threads` threads taking
/// turns on the one connection (the calling thread alone when `threads` is 1).
pub fn native(
    conn: &Mutex<Connection>,
    lease: &types::ClaimedExecution,
    budget: &str,
    keys: Vec<String>,
    threads: usize,
) -> Run {
    let next = AtomicUsize::new(0);
    let report = |latencies: &mut Vec<_>| {
        while let Some(key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
            let args = budgets::ReportUsageArgs {
                lease: budgets::UsageLease {
                    execution_id: lease.execution_id.clone(),
                    attempt_index: lease.attempt_index,
                    lease_id: lease.lease_id.clone(),
                    lease_epoch: lease.lease_epoch,
                    attempt_id: lease.attempt_id.clone(),
                },
                budget_id: budget.to_owned(),
                deltas: vec![budgets::DimensionAmount {
                    dimension: "tokens".into(),
                    amount: TOKENS,
                }],
                dedup_key: Some(key.clone()),
                now: now_ms(),
            };
            timed(latencies, || {
                let conn = conn.lock().expect("connection lock");
                in_transaction(&conn, |db| {
                    ff_engine_guest::budgets::report_usage(db, &args)
                })
                .expect("native report_usage");
            });
        }
    };
    let started = Instant::now();
    let latencies = if threads == 1 {
        let mut latencies = Vec::new();
        report(&mut latencies);
        latencies
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut latencies = Vec::new();
                        report(&mut latencies);
                        latencies
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a benchmark thread panicked"))
                .collect()
        })
    };
    Run::new(started.elapsed(), latencies)
}
