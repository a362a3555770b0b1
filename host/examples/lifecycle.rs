//! The main job, end to end through the wasm guest: create executions, grant each to a worker,
//! claim it, renew the lease, then complete it — or fail it once and let the retry policy bring
//! it back — and read the state at every step. A second claim of a leased execution is refused
//! with a typed error.
//!
//! Run with: `cargo run -p ff-backend-sqlite-wasm --example lifecycle [DATABASE]`
//! (default: `ffwasm-lifecycle.sqlite` in the working directory; rerunning adds more executions).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::{
    ClaimExecutionArgs, ClaimExecutionResult, ClaimedExecution, CompleteExecutionArgs,
    CreateExecutionArgs, FailExecutionArgs, FailExecutionResult, IssueClaimGrantArgs,
    RenewLeaseArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, Namespace,
    TimestampMs, WorkerId, WorkerInstanceId,
};

type Error = Box<dyn std::error::Error>;

/// The retry policy of the execution that fails once.
const RETRY_POLICY: &str = r#"{"max_retries":2,"backoff":{"type":"fixed","delay_ms":100}}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ffwasm-lifecycle.sqlite".to_owned());
    // SQLite backends are dev-only; the backend refuses to start without this opt-in.
    // SAFETY: set before the runtime starts any other work.
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };

    let started = Instant::now();
    let engine: Arc<dyn EngineBackend> = SqliteBackend::new(&path).await?;
    println!(
        "opened {path} in {:.1?} (guest compiled and pre-instantiated)\n",
        started.elapsed()
    );

    // One execution that succeeds at once, one that fails once and succeeds on its retry.
    for fail_first in [false, true] {
        let id = ExecutionId::parse(&format!("{{fp:0}}:{}", uuid::Uuid::new_v4()))?;
        run(engine.as_ref(), &id, fail_first).await?;
        println!();
    }
    Ok(())
}

async fn run(engine: &dyn EngineBackend, id: &ExecutionId, fail_first: bool) -> Result<(), Error> {
    engine
        .create_execution(create(id, TimestampMs::now()))
        .await?;
    report(engine, id, "created").await?;

    let mut attempt = 0;
    loop {
        let now = TimestampMs::now();
        engine.issue_claim_grant(grant(id, now)).await?;
        let started = Instant::now();
        let ClaimExecutionResult::Claimed(lease) =
            engine.claim_execution(claim(id, attempt, now)).await?
        else {
            unreachable!("claim_execution has one success variant")
        };
        println!(
            "  claimed attempt {attempt} in {:.1?}: lease epoch {}",
            started.elapsed(),
            lease.lease_epoch
        );
        if let Err(refused) = engine.claim_execution(claim(id, attempt, now)).await {
            println!("  a second claim is refused: {refused}");
        }
        engine.renew_lease(renew(id, &lease)).await?;
        report(engine, id, "renewed").await?;

        if fail_first && attempt == 0 {
            let outcome = engine.fail_execution(fail(id, &lease)).await?;
            if let FailExecutionResult::RetryScheduled {
                delay_until,
                next_attempt_index,
            } = outcome
            {
                report(engine, id, "failed, retry scheduled").await?;
                let wait = u64::try_from(delay_until.0 - TimestampMs::now().0).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(wait + 1)).await;
                attempt = next_attempt_index.0;
                continue;
            }
        }
        engine.complete_execution(complete(id, &lease)).await?;
        report(engine, id, "completed").await?;
        let result = engine.get_execution_result(id).await?.unwrap_or_default();
        println!("  result: {}", String::from_utf8_lossy(&result));
        return Ok(());
    }
}

async fn report(engine: &dyn EngineBackend, id: &ExecutionId, step: &str) -> Result<(), Error> {
    let info = engine
        .read_execution_info(id)
        .await?
        .ok_or("the execution vanished")?;
    println!(
        "{id}  {step:<24} public={:?} lifecycle={:?} attempt={}",
        info.public_state, info.state_vector.lifecycle_phase, info.current_attempt_index
    );
    Ok(())
}

fn create(id: &ExecutionId, now: TimestampMs) -> CreateExecutionArgs {
    CreateExecutionArgs {
        execution_id: id.clone(),
        namespace: Namespace::new("demo"),
        lane_id: LaneId::new("default"),
        execution_kind: "example".into(),
        input_payload: b"hello".to_vec(),
        payload_encoding: None,
        priority: 0,
        creator_identity: "lifecycle example".into(),
        idempotency_key: None,
        tags: Default::default(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: 0,
        now,
    }
}

fn grant(id: &ExecutionId, now: TimestampMs) -> IssueClaimGrantArgs {
    let partition = Partition {
        family: PartitionFamily::Flow,
        index: id.partition(),
    };
    IssueClaimGrantArgs::new(
        id.clone(),
        LaneId::new("default"),
        WorkerId::new("worker-1"),
        WorkerInstanceId::new("wi-1"),
        partition,
        Default::default(),
        10_000,
        now,
    )
}

fn claim(id: &ExecutionId, attempt: u32, now: TimestampMs) -> ClaimExecutionArgs {
    ClaimExecutionArgs::new(
        id.clone(),
        WorkerId::new("worker-1"),
        WorkerInstanceId::new("wi-1"),
        LaneId::new("default"),
        LeaseId::new(),
        30_000,
        AttemptId::new(),
        AttemptIndex::new(attempt),
        String::new(),
        None,
        None,
        now,
    )
}

fn fence(lease: &ClaimedExecution) -> LeaseFence {
    LeaseFence {
        lease_id: lease.lease_id.clone(),
        lease_epoch: lease.lease_epoch,
        attempt_id: lease.attempt_id.clone(),
    }
}

fn renew(id: &ExecutionId, lease: &ClaimedExecution) -> RenewLeaseArgs {
    RenewLeaseArgs {
        execution_id: id.clone(),
        attempt_index: lease.attempt_index,
        fence: Some(fence(lease)),
        lease_ttl_ms: 60_000,
        lease_history_grace_ms: 60_000,
    }
}

fn fail(id: &ExecutionId, lease: &ClaimedExecution) -> FailExecutionArgs {
    FailExecutionArgs {
        execution_id: id.clone(),
        fence: Some(fence(lease)),
        attempt_index: lease.attempt_index,
        failure_reason: "simulated failure".into(),
        failure_category: "example".into(),
        retry_policy_json: RETRY_POLICY.into(),
        next_attempt_policy_json: String::new(),
        source: CancelSource::LeaseHolder,
    }
}

fn complete(id: &ExecutionId, lease: &ClaimedExecution) -> CompleteExecutionArgs {
    CompleteExecutionArgs {
        execution_id: id.clone(),
        fence: Some(fence(lease)),
        attempt_index: lease.attempt_index,
        result_payload: Some(b"done".to_vec()),
        result_encoding: None,
        source: CancelSource::LeaseHolder,
        now: TimestampMs::now(),
    }
}
