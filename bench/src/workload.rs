//! What the benchmark runs: execution ids, seeding (runnable executions with a claim grant,
//! written by the engine logic itself), and the arguments of each operation in both forms:
//! ff-core's (for the backend) and the guest's (for the native baseline).

use ff_core::contracts::{
    ClaimExecutionArgs, ClaimExecutionResult, ClaimedExecution, CompleteExecutionArgs,
    CreateExecutionArgs, IssueClaimGrantArgs, RenewLeaseArgs,
};
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, Namespace,
    TimestampMs, WorkerId, WorkerInstanceId,
};
use ff_engine_guest::bindings::{lease_holder, scheduling, types};
use rusqlite::Connection;

use crate::native::{NativeDb, in_transaction};

/// The worker every benchmark claim is for.
pub const WORKER: &str = "bench-worker";
/// The lane every benchmark execution runs on.
pub const LANE: &str = "default";
/// The namespace, kind, input, encoding and creator of every benchmark execution (the same on
/// both sides).
const NAMESPACE: &str = "bench";
const KIND: &str = "bench";
const INPUT: &[u8] = b"{\"n\":1}";
const ENCODING: &str = "json";
const CREATOR: &str = "ffbench";
/// Lease length of benchmark claims.
pub const LEASE_TTL_MS: u64 = 60_000;
/// How long seeded grants live: long enough for any run.
const GRANT_TTL_MS: u64 = 3_600_000;
/// Executions seeded per transaction.
const SEED_BATCH: usize = 10_000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    TimestampMs::now().0
}

/// `count` fresh execution ids spread over 256 partitions.
pub fn execution_ids(count: usize) -> Vec<ExecutionId> {
    (0..count)
        .map(|n| {
            ExecutionId::parse(&format!("{{fp:{}}}:{}", n % 256, uuid::Uuid::new_v4()))
                .expect("a well-formed execution id")
        })
        .collect()
}

/// Create each execution (runnable now) and, with `grant`, issue it a claim grant for
/// [`WORKER`], through the engine logic on `conn`, [`SEED_BATCH`] executions per transaction.
pub fn seed(conn: &Connection, ids: &[ExecutionId], grant: bool) -> anyhow::Result<()> {
    let now = now_ms();
    for chunk in ids.chunks(SEED_BATCH) {
        in_transaction(conn, |db: &mut NativeDb<'_>| {
            for id in chunk {
                ff_engine_guest::scheduling::create_execution(db, &guest_create(id, now))?;
                if grant {
                    ff_engine_guest::scheduling::issue_claim_grant(db, &guest_grant(id, now))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// [`seed`] through the backend's own API (`create_execution`, then `issue_claim_grant` with
/// `grant`), from `tasks` concurrent tasks: the rows are written by the backend's writer
/// thread, as a native program writes its rows from its own thread.
pub async fn seed_through_backend(
    backend: &std::sync::Arc<ff_backend_sqlite_wasm::SqliteBackend>,
    ids: &[ExecutionId],
    grant: bool,
    tasks: usize,
) -> anyhow::Result<()> {
    use ff_core::engine_backend::EngineBackend;
    let chunk = ids.len().div_ceil(tasks.max(1)).max(1);
    let mut workers = tokio::task::JoinSet::new();
    for part in ids.chunks(chunk) {
        let backend = std::sync::Arc::clone(backend);
        let part = part.to_vec();
        workers.spawn(async move {
            for id in &part {
                backend.create_execution(create_args(id)).await?;
                if grant {
                    backend.issue_claim_grant(grant_args(id)).await?;
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    Ok(())
}

// ── ff-core arguments (the backend) ─────────────────────────────────────────────────────────

/// Create `id` on lane [`LANE`], runnable now (what [`guest_create`] is for the baseline).
pub fn create_args(id: &ExecutionId) -> CreateExecutionArgs {
    CreateExecutionArgs {
        execution_id: id.clone(),
        namespace: Namespace::new(NAMESPACE),
        lane_id: LaneId::new(LANE),
        execution_kind: KIND.into(),
        input_payload: INPUT.to_vec(),
        payload_encoding: Some(ENCODING.into()),
        priority: 0,
        creator_identity: CREATOR.into(),
        idempotency_key: None,
        tags: Default::default(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: id.partition(),
        now: TimestampMs::now(),
    }
}

/// Claim `id` for [`WORKER`] as attempt 0.
pub fn claim_args(id: &ExecutionId) -> ClaimExecutionArgs {
    ClaimExecutionArgs::new(
        id.clone(),
        WorkerId::new(WORKER),
        WorkerInstanceId::new("bench-instance"),
        LaneId::new(LANE),
        LeaseId::new(),
        LEASE_TTL_MS,
        AttemptId::new(),
        AttemptIndex::new(0),
        String::new(),
        None,
        None,
        TimestampMs::now(),
    )
}

/// A claim grant on `id` for [`WORKER`].
pub fn grant_args(id: &ExecutionId) -> IssueClaimGrantArgs {
    IssueClaimGrantArgs::new(
        id.clone(),
        LaneId::new(LANE),
        WorkerId::new(WORKER),
        WorkerInstanceId::new("bench-instance"),
        Partition {
            family: PartitionFamily::Flow,
            index: id.partition(),
        },
        Default::default(),
        GRANT_TTL_MS,
        TimestampMs::now(),
    )
}

/// The claimed execution, or a panic naming what the claim returned instead.
pub fn claimed(result: ClaimExecutionResult) -> ClaimedExecution {
    match result {
        ClaimExecutionResult::Claimed(claimed) => claimed,
        other => panic!("claim did not lease: {other:?}"),
    }
}

/// The fence of a lease.
pub fn fence(claimed: &ClaimedExecution) -> LeaseFence {
    LeaseFence {
        lease_id: claimed.lease_id.clone(),
        lease_epoch: claimed.lease_epoch,
        attempt_id: claimed.attempt_id.clone(),
    }
}

/// Renew the lease on `id`.
pub fn renew_args(id: &ExecutionId, claimed: &ClaimedExecution) -> RenewLeaseArgs {
    RenewLeaseArgs {
        execution_id: id.clone(),
        attempt_index: claimed.attempt_index,
        fence: Some(fence(claimed)),
        lease_ttl_ms: LEASE_TTL_MS,
        lease_history_grace_ms: 60_000,
    }
}

/// Complete `id` with a small result.
pub fn complete_args(id: &ExecutionId, claimed: &ClaimedExecution) -> CompleteExecutionArgs {
    CompleteExecutionArgs {
        execution_id: id.clone(),
        fence: Some(fence(claimed)),
        attempt_index: claimed.attempt_index,
        result_payload: Some(b"{\"ok\":true}".to_vec()),
        result_encoding: Some("json".into()),
        source: CancelSource::LeaseHolder,
        now: TimestampMs::now(),
    }
}

// ── Guest arguments (the native baseline) ───────────────────────────────────────────────────

/// What the backend passes the guest for `create_execution`.
pub fn guest_create(id: &ExecutionId, now: i64) -> scheduling::CreateExecutionArgs {
    scheduling::CreateExecutionArgs {
        execution_id: id.to_string(),
        namespace: NAMESPACE.into(),
        lane_id: LANE.into(),
        execution_kind: KIND.into(),
        input_payload: INPUT.to_vec(),
        payload_encoding: Some(ENCODING.into()),
        priority: 0,
        creator_identity: CREATOR.into(),
        idempotency_key: None,
        tags: Vec::new(),
        policy_json: None,
        required_capabilities: Vec::new(),
        delay_until: None,
        execution_deadline_at: None,
        now,
    }
}

/// What the backend passes the guest for `issue_claim_grant`.
pub fn guest_grant(id: &ExecutionId, now: i64) -> scheduling::IssueClaimGrantArgs {
    scheduling::IssueClaimGrantArgs {
        execution_id: id.to_string(),
        lane_id: LANE.into(),
        worker_id: WORKER.into(),
        worker_instance_id: "bench-instance".into(),
        capability_hash: None,
        route_snapshot_json: None,
        admission_summary: None,
        worker_capabilities: Vec::new(),
        grant_ttl_ms: GRANT_TTL_MS,
        now,
    }
}

/// What the backend passes the guest for `claim_execution` (fresh lease and attempt ids).
pub fn guest_claim(id: &ExecutionId) -> scheduling::ClaimExecutionArgs {
    scheduling::ClaimExecutionArgs {
        execution_id: id.to_string(),
        worker_id: WORKER.into(),
        worker_instance_id: "bench-instance".into(),
        lane_id: LANE.into(),
        lease_id: LeaseId::new().to_string(),
        lease_ttl_ms: LEASE_TTL_MS,
        attempt_id: AttemptId::new().to_string(),
        expected_attempt_index: 0,
        attempt_policy_json: None,
        attempt_timeout_ms: None,
        execution_deadline_at: None,
        now: now_ms(),
    }
}

/// The guest's fence for a native lease.
fn guest_fence(claimed: &types::ClaimedExecution) -> types::LeaseFence {
    types::LeaseFence {
        lease_id: claimed.lease_id.clone(),
        lease_epoch: claimed.lease_epoch,
        attempt_id: claimed.attempt_id.clone(),
    }
}

/// What the backend passes the guest for `renew_lease`.
pub fn guest_renew(claimed: &types::ClaimedExecution) -> lease_holder::RenewLeaseArgs {
    lease_holder::RenewLeaseArgs {
        execution_id: claimed.execution_id.clone(),
        attempt_index: claimed.attempt_index,
        fence: Some(guest_fence(claimed)),
        lease_ttl_ms: LEASE_TTL_MS,
        now: now_ms(),
    }
}

/// What the backend passes the guest for `complete_execution`.
pub fn guest_complete(claimed: &types::ClaimedExecution) -> lease_holder::CompleteExecutionArgs {
    lease_holder::CompleteExecutionArgs {
        execution_id: claimed.execution_id.clone(),
        fence: Some(guest_fence(claimed)),
        attempt_index: claimed.attempt_index,
        result_payload: Some(b"{\"ok\":true}".to_vec()),
        result_encoding: Some("json".into()),
        source: types::CancelSource::LeaseHolder,
        now: now_ms(),
    }
}
