//! The flow rows: per-operation latency of `stage_dependency_edge`, `apply_dependency_to_child`
//! and completing a parent (`complete_execution`, which resolves the parent's edge in the same
//! transaction) in a fan-in flow of a given size, and the one operation in which a failing
//! parent skips its whole fan-out. Both sides build the same flows: through the backend, and
//! with the guest's logic run natively (one transaction per operation).
//!
//! Shape of a flow of `size` members: member 0 waits on members 1..size (a `size - 1`-edge
//! fan-in); a second flow of `size` members has member 0 gating members 1..size (the fan-out
//! whose parent fails). Small flows are built several times so that each row has samples; in a
//! large flow only the last [`SAMPLE`] edges (the flow already holding all its members and
//! nearly all its edges) and [`SAMPLE`] parent completions are measured.

use std::time::{Duration, Instant};

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::{
    AddExecutionToFlowArgs, ApplyDependencyToChildArgs, CreateFlowArgs, FailExecutionArgs,
    StageDependencyEdgeArgs, StageDependencyEdgeResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{
    AttemptIndex, CancelSource, EdgeId, ExecutionId, FlowId, Namespace, TimestampMs,
};
use ff_engine_guest::bindings::flows::{
    AddExecutionArgs, ApplyDependencyArgs, CreateFlowArgs as GuestCreateFlow, StageEdgeArgs,
    StageEdgeOutcome,
};
use ff_engine_guest::bindings::{lease_holder, types};
use rusqlite::Connection;

use crate::native::in_transaction;
use crate::stats::{Run, timed};
use crate::workload::{
    claim_args, claimed, complete_args, guest_claim, guest_complete, now_ms, seed,
    seed_through_backend,
};

/// Edges and completions measured per large flow.
pub const SAMPLE: usize = 500;

/// What one side measured for one flow size.
pub struct Figures {
    /// `stage_dependency_edge` latencies.
    pub stage: Run,
    /// `apply_dependency_to_child` latencies.
    pub apply: Run,
    /// `complete_execution` of a parent (resolving its edge) latencies.
    pub complete: Run,
    /// The failing parent's `fail_execution`, skipping `size - 1` children.
    pub skip_fan_out: Duration,
}

/// `count` fresh `{fp:0}` execution ids (flows hold partition-0 executions).
fn member_ids(count: usize) -> Vec<ExecutionId> {
    (0..count)
        .map(|_| {
            ExecutionId::parse(&format!("{{fp:0}}:{}", uuid::Uuid::new_v4()))
                .expect("a well-formed execution id")
        })
        .collect()
}

/// How many flows of `size` members a row builds, and from which edge index it measures.
fn plan(size: usize) -> (usize, usize) {
    let flows = (SAMPLE / (size - 1).max(1)).clamp(1, 50);
    let first_measured = (size - 1).saturating_sub(SAMPLE);
    (flows, first_measured)
}

// ── Through the backend ─────────────────────────────────────────────────────────────────────

/// A flow of `ids` through the backend (created, every id added); returns its id.
async fn backend_flow(backend: &SqliteBackend, ids: &[ExecutionId]) -> anyhow::Result<FlowId> {
    let flow_id = FlowId::new();
    backend
        .create_flow(CreateFlowArgs {
            flow_id: flow_id.clone(),
            flow_kind: "bench".into(),
            namespace: Namespace::new("bench"),
            now: TimestampMs::now(),
        })
        .await?;
    for id in ids {
        backend
            .add_execution_to_flow(AddExecutionToFlowArgs {
                flow_id: flow_id.clone(),
                execution_id: id.clone(),
                now: TimestampMs::now(),
            })
            .await?;
    }
    Ok(flow_id)
}

/// Stage and apply `up → down`; the latencies go to `stage` and `apply` when `measured`.
async fn backend_edge(
    backend: &SqliteBackend,
    flow_id: &FlowId,
    revision: u64,
    (up, down): (&ExecutionId, &ExecutionId),
    measured: Option<(&mut Vec<Duration>, &mut Vec<Duration>)>,
) -> anyhow::Result<u64> {
    let stage = StageDependencyEdgeArgs {
        flow_id: flow_id.clone(),
        edge_id: EdgeId::new(),
        upstream_execution_id: up.clone(),
        downstream_execution_id: down.clone(),
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        expected_graph_revision: revision,
        now: TimestampMs::now(),
    };
    let started = Instant::now();
    let StageDependencyEdgeResult::Staged {
        edge_id,
        new_graph_revision,
    } = backend.stage_dependency_edge(stage).await?;
    let staged = started.elapsed();
    let apply = ApplyDependencyToChildArgs {
        flow_id: flow_id.clone(),
        edge_id,
        downstream_execution_id: down.clone(),
        upstream_execution_id: up.clone(),
        graph_revision: new_graph_revision,
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        now: TimestampMs::now(),
    };
    let started = Instant::now();
    backend.apply_dependency_to_child(apply).await?;
    if let Some((stages, applies)) = measured {
        stages.push(staged);
        applies.push(started.elapsed());
    }
    Ok(new_graph_revision)
}

/// The flow rows' work at `size` members through the backend.
pub async fn through_backend(
    backend: &std::sync::Arc<SqliteBackend>,
    size: usize,
) -> anyhow::Result<Figures> {
    let (flows, first_measured) = plan(size);
    let (mut stages, mut applies, mut completes) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in 0..flows {
        let ids = member_ids(size);
        seed_through_backend(backend, &ids, true, 4).await?;
        let flow_id = backend_flow(backend, &ids).await?;
        let mut revision = size as u64;
        for (index, parent) in ids[1..].iter().enumerate() {
            let measured = (index >= first_measured).then_some((&mut stages, &mut applies));
            revision =
                backend_edge(backend, &flow_id, revision, (parent, &ids[0]), measured).await?;
        }
        for parent in &ids[1 + first_measured..] {
            let lease = claimed(backend.claim_execution(claim_args(parent)).await?);
            let args = complete_args(parent, &lease);
            let started = Instant::now();
            backend.complete_execution(args).await?;
            completes.push(started.elapsed());
        }
    }
    let elapsed = started.elapsed();

    let ids = member_ids(size);
    seed_through_backend(backend, &ids, true, 4).await?;
    let flow_id = backend_flow(backend, &ids).await?;
    let mut revision = size as u64;
    for child in &ids[1..] {
        revision = backend_edge(backend, &flow_id, revision, (&ids[0], child), None).await?;
    }
    let lease = claimed(backend.claim_execution(claim_args(&ids[0])).await?);
    let fail = FailExecutionArgs {
        execution_id: ids[0].clone(),
        fence: Some(crate::workload::fence(&lease)),
        attempt_index: AttemptIndex::new(0),
        failure_reason: "bench".into(),
        failure_category: "bench".into(),
        retry_policy_json: String::new(),
        next_attempt_policy_json: String::new(),
        source: CancelSource::LeaseHolder,
    };
    let started = Instant::now();
    backend.fail_execution(fail).await?;
    let skip_fan_out = started.elapsed();
    Ok(Figures {
        stage: Run::new(elapsed, stages),
        apply: Run::new(elapsed, applies),
        complete: Run::new(elapsed, completes),
        skip_fan_out,
    })
}

// ── Natively ────────────────────────────────────────────────────────────────────────────────

/// A flow of `ids` natively (created, every id added); returns its id text.
fn native_flow(conn: &Connection, ids: &[ExecutionId]) -> anyhow::Result<String> {
    let flow_id = FlowId::new().to_string();
    in_transaction(conn, |db| {
        ff_engine_guest::flows::create_flow(
            db,
            &GuestCreateFlow {
                flow_id: flow_id.clone(),
                flow_kind: "bench".into(),
                namespace: "bench".into(),
                now: now_ms(),
            },
        )
    })?;
    for id in ids {
        in_transaction(conn, |db| {
            ff_engine_guest::flows::add_execution_to_flow(
                db,
                &AddExecutionArgs {
                    flow_id: flow_id.clone(),
                    execution_id: id.to_string(),
                    now: now_ms(),
                },
            )
        })?;
    }
    Ok(flow_id)
}

/// Stage and apply `up → down` natively; latencies as [`backend_edge`].
fn native_edge(
    conn: &Connection,
    flow_id: &str,
    revision: u64,
    (up, down): (&ExecutionId, &ExecutionId),
    measured: Option<(&mut Vec<Duration>, &mut Vec<Duration>)>,
) -> anyhow::Result<u64> {
    let edge_id = EdgeId::new().to_string();
    let stage = StageEdgeArgs {
        flow_id: flow_id.into(),
        edge_id: edge_id.clone(),
        upstream_execution_id: up.to_string(),
        downstream_execution_id: down.to_string(),
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        expected_graph_revision: revision,
        now: now_ms(),
    };
    let started = Instant::now();
    let outcome = in_transaction(conn, |db| {
        ff_engine_guest::flows::stage_dependency_edge(db, &stage)
    })?;
    let staged = started.elapsed();
    let StageEdgeOutcome::Staged(new_revision) = outcome else {
        anyhow::bail!("native stage: the edge id already existed");
    };
    let apply = ApplyDependencyArgs {
        flow_id: flow_id.into(),
        edge_id,
        downstream_execution_id: down.to_string(),
        upstream_execution_id: up.to_string(),
        graph_revision: new_revision,
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        now: now_ms(),
    };
    let started = Instant::now();
    in_transaction(conn, |db| {
        ff_engine_guest::flows::apply_dependency_to_child(db, &apply)
    })?;
    if let Some((stages, applies)) = measured {
        stages.push(staged);
        applies.push(started.elapsed());
    }
    Ok(new_revision)
}

/// The flow rows' work at `size` members natively.
pub fn native(conn: &Connection, size: usize) -> anyhow::Result<Figures> {
    let (flows, first_measured) = plan(size);
    let (mut stages, mut applies, mut completes) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in 0..flows {
        let ids = member_ids(size);
        seed(conn, &ids, true)?;
        let flow_id = native_flow(conn, &ids)?;
        let mut revision = size as u64;
        for (index, parent) in ids[1..].iter().enumerate() {
            let measured = (index >= first_measured).then_some((&mut stages, &mut applies));
            revision = native_edge(conn, &flow_id, revision, (parent, &ids[0]), measured)?;
        }
        for parent in &ids[1 + first_measured..] {
            let lease = in_transaction(conn, |db| {
                ff_engine_guest::scheduling::claim_execution(db, &guest_claim(parent))
            })?;
            timed(&mut completes, || {
                in_transaction(conn, |db| {
                    ff_engine_guest::lease_holder::complete_execution(db, &guest_complete(&lease))
                })
            })?;
        }
    }
    let elapsed = started.elapsed();

    let ids = member_ids(size);
    seed(conn, &ids, true)?;
    let flow_id = native_flow(conn, &ids)?;
    let mut revision = size as u64;
    for child in &ids[1..] {
        revision = native_edge(conn, &flow_id, revision, (&ids[0], child), None)?;
    }
    let lease = in_transaction(conn, |db| {
        ff_engine_guest::scheduling::claim_execution(db, &guest_claim(&ids[0]))
    })?;
    let fail = lease_holder::FailExecutionArgs {
        execution_id: lease.execution_id.clone(),
        fence: Some(types::LeaseFence {
            lease_id: lease.lease_id.clone(),
            lease_epoch: lease.lease_epoch,
            attempt_id: lease.attempt_id.clone(),
        }),
        attempt_index: lease.attempt_index,
        failure_reason: "bench".into(),
        failure_category: "bench".into(),
        retry_policy: None,
        source: types::CancelSource::LeaseHolder,
        now: now_ms(),
    };
    let started = Instant::now();
    in_transaction(conn, |db| {
        ff_engine_guest::lease_holder::fail_execution(db, &fail)
    })?;
    let skip_fan_out = started.elapsed();
    Ok(Figures {
        stage: Run::new(elapsed, stages),
        apply: Run::new(elapsed, applies),
        complete: Run::new(elapsed, completes),
        skip_fan_out,
    })
}
