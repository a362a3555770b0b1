//! The main job, end to end: a scheduler (here: raw SQL on its own connection) marks an
//! execution runnable and grants it to a worker; the worker claims it through the wasm backend
//! and gets a lease; a second claim of the same execution is refused with a typed error.
//!
//! Run with: `cargo run -p ff-backend-sqlite-wasm --example claim [DATABASE]`
//! (default database: `ffwasm-claim-example.sqlite` in the working directory; reusing it adds
//! another execution each run).

use std::sync::Arc;
use std::time::Instant;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::{ClaimExecutionArgs, ClaimExecutionResult};
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{
    AttemptId, AttemptIndex, ExecutionId, LaneId, LeaseId, TimestampMs, WorkerId, WorkerInstanceId,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ffwasm-claim-example.sqlite".to_owned());
    // SQLite backends are dev-only; the backend refuses to start without this opt-in.
    // SAFETY: set before any other thread exists.
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };

    let started = Instant::now();
    let backend = SqliteBackend::new(&path).await?;
    let engine: Arc<dyn EngineBackend> = backend;
    println!(
        "opened {path} in {:.1?} (guest compiled and pre-instantiated)",
        started.elapsed()
    );

    // The scheduler's side: a runnable execution and a claim grant for worker-1.
    let uuid = uuid::Uuid::new_v4();
    let now = TimestampMs::now().0;
    let scheduler = rusqlite::Connection::open(&path)?;
    scheduler.busy_timeout(std::time::Duration::from_secs(5))?;
    scheduler.execute(
        "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, lifecycle_phase, ownership_state, \
             eligibility_state, public_state, attempt_state, created_at_ms) \
         VALUES (0, ?1, 'default', 'runnable', 'unowned', 'eligible_now', 'waiting', 'pending_first_attempt', ?2)",
        rusqlite::params![uuid.as_bytes().as_slice(), now],
    )?;
    scheduler.execute(
        "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, worker_instance_id, \
             lane_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
         VALUES (0, ?1, ?2, 'claim', 'worker-1', 'wi-1', 'default', 60000, ?3, ?4)",
        rusqlite::params![uuid::Uuid::new_v4().as_bytes().as_slice(), uuid.as_bytes().as_slice(), now, now + 60_000],
    )?;
    let execution_id = ExecutionId::parse(&format!("{{fp:0}}:{uuid}"))?;
    println!("scheduler: execution {execution_id} is runnable and granted to worker-1");

    // The worker's side.
    let args = || {
        ClaimExecutionArgs::new(
            execution_id.clone(),
            WorkerId::new("worker-1"),
            WorkerInstanceId::new("wi-1"),
            LaneId::new("default"),
            LeaseId::new(),
            30_000,
            AttemptId::new(),
            AttemptIndex::new(0),
            String::new(),
            None,
            None,
            TimestampMs::now(),
        )
    };
    let started = Instant::now();
    let ClaimExecutionResult::Claimed(claimed) = engine.claim_execution(args()).await? else {
        unreachable!("claim_execution has one success variant")
    };
    println!(
        "worker-1: claimed in {:.1?}: lease {} epoch {} on attempt {}, expires at {}",
        started.elapsed(),
        claimed.lease_id,
        claimed.lease_epoch,
        claimed.attempt_index,
        claimed.lease_expires_at
    );

    match engine.claim_execution(args()).await {
        Err(error) => println!("worker-1 again: refused as expected: {error}"),
        Ok(_) => return Err("a second claim of a leased execution must fail".into()),
    }
    Ok(())
}
