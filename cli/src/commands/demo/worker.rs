//! One worker of the demo fleet: it claims the execution the scheduler granted it, renews the
//! lease, reports the tokens it used against the run's budget through its handle, appends a
//! progress frame to the attempt's stream, then completes the execution or fails it (and the
//! retry policy decides what follows).

use std::time::{Duration, Instant};

use anyhow::Context;
use ff_core::backend::UsageDimensions;
use ff_core::backend::{Frame, FrameKind};
use ff_core::contracts::{
    ClaimExecutionArgs, ClaimExecutionResult, ClaimedExecution, CompleteExecutionArgs,
    FailExecutionArgs, FailExecutionResult, HeartbeatWorkerArgs, RegisterWorkerArgs,
    RenewLeaseArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, Namespace,
    TimestampMs, WorkerId, WorkerInstanceId,
};

use super::plan::{LEASE_TTL_MS, NAMESPACE, Plan};

/// One attempt the scheduler hands to a worker, after granting it the claim.
#[derive(Debug, Clone)]
pub struct Job {
    /// The execution's position in the plan.
    pub index: u32,
    /// The execution.
    pub id: ExecutionId,
    /// Its lane.
    pub lane: LaneId,
    /// The attempt the claim must start (0, then the index each retry names).
    pub attempt: AttemptIndex,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The execution completed.
    Completed,
    /// The execution failed with no retries left.
    Failed,
    /// The attempt failed; the execution may be claimed again from `due` as `next`.
    Retry {
        /// When the backoff ends.
        due: Instant,
        /// The attempt index of the retry.
        next: AttemptIndex,
    },
}

/// A finished attempt: how it ended and how long its claim took.
#[derive(Debug, Clone, Copy)]
pub struct Attempted {
    /// How the attempt ended.
    pub outcome: Outcome,
    /// The `claim_execution` round trip through the guest.
    pub claim_latency: Duration,
}

/// A worker's identity.
#[derive(Debug, Clone)]
pub struct Worker {
    /// The worker (`demo-worker-K`).
    pub id: WorkerId,
    /// This process's instance of it.
    pub instance: WorkerInstanceId,
}

impl Worker {
    /// Worker `number` of run `run`.
    pub fn new(number: u32, run: &str) -> Self {
        Self {
            id: WorkerId::new(format!("demo-worker-{number}")),
            instance: WorkerInstanceId::new(format!("demo-worker-{number}@{run}")),
        }
    }

    /// Announce the worker in the worker registry, serving every lane of the plan; it stays
    /// live for [`LEASE_TTL_MS`] after its last heartbeat.
    pub async fn register(&self, engine: &dyn EngineBackend, plan: &Plan) -> anyhow::Result<()> {
        engine
            .register_worker(RegisterWorkerArgs::new(
                self.id.clone(),
                self.instance.clone(),
                plan.lanes.iter().cloned().collect(),
                Default::default(),
                LEASE_TTL_MS,
                Namespace::new(NAMESPACE),
                TimestampMs::now(),
            ))
            .await
            .with_context(|| format!("registering worker {}", self.id))?;
        Ok(())
    }

    /// Tell the worker registry the worker is alive.
    pub async fn heartbeat(&self, engine: &dyn EngineBackend) -> anyhow::Result<()> {
        engine
            .heartbeat_worker(HeartbeatWorkerArgs::new(
                self.instance.clone(),
                Namespace::new(NAMESPACE),
                TimestampMs::now(),
            ))
            .await
            .with_context(|| format!("worker {} heartbeating", self.id))?;
        Ok(())
    }

    /// Claim `job`'s execution, renew the lease, report its usage, then complete or fail it as
    /// the plan says.
    pub async fn attempt(
        &self,
        engine: &dyn EngineBackend,
        plan: &Plan,
        job: &Job,
    ) -> anyhow::Result<Attempted> {
        let id = &job.id;
        let started = Instant::now();
        let lease = match engine
            .claim_execution(self.claim_args(job))
            .await
            .with_context(|| format!("worker {} claiming {id}", self.id))?
        {
            ClaimExecutionResult::Claimed(lease) => lease,
            other => anyhow::bail!(
                "worker {} claiming {id}: unexpected result {other:?}",
                self.id
            ),
        };
        let claim_latency = started.elapsed();
        self.heartbeat(engine).await?;

        engine
            .renew_lease(RenewLeaseArgs {
                execution_id: id.clone(),
                attempt_index: lease.attempt_index,
                fence: Some(fence(&lease)),
                lease_ttl_ms: LEASE_TTL_MS,
                lease_history_grace_ms: LEASE_TTL_MS,
            })
            .await
            .with_context(|| format!("worker {} renewing its lease on {id}", self.id))?;
        // A progress line on the attempt's output stream (`ffwasm watch` and stream readers see
        // it).
        let progress = Frame::new(
            format!("attempt {} running on {}", lease.attempt_index.0, self.id).into_bytes(),
            FrameKind::Stdout,
        );
        engine
            .append_frame(&lease.handle, progress)
            .await
            .with_context(|| format!("worker {} appending progress to {id}", self.id))?;

        let mut usage = UsageDimensions::new().with_dedup_key(format!("{id}/{}", job.attempt.0));
        usage
            .custom
            .insert("tokens".into(), plan.tokens(job.index, job.attempt.0));
        engine
            .report_usage(&lease.handle, &plan.budget, usage)
            .await
            .with_context(|| format!("worker {} reporting usage of {id}", self.id))?;

        let outcome = if plan.attempt_fails(job.index, job.attempt.0) {
            self.fail(engine, plan, id, &lease).await?
        } else {
            engine
                .complete_execution(CompleteExecutionArgs {
                    execution_id: id.clone(),
                    fence: Some(fence(&lease)),
                    attempt_index: lease.attempt_index,
                    result_payload: Some(format!("done by {}", self.id).into_bytes()),
                    result_encoding: None,
                    source: CancelSource::LeaseHolder,
                    now: TimestampMs::now(),
                })
                .await
                .with_context(|| format!("worker {} completing {id}", self.id))?;
            Outcome::Completed
        };
        Ok(Attempted {
            outcome,
            claim_latency,
        })
    }

    /// Report a failed attempt with the plan's retry policy.
    async fn fail(
        &self,
        engine: &dyn EngineBackend,
        plan: &Plan,
        id: &ExecutionId,
        lease: &ClaimedExecution,
    ) -> anyhow::Result<Outcome> {
        let result = engine
            .fail_execution(FailExecutionArgs {
                execution_id: id.clone(),
                fence: Some(fence(lease)),
                attempt_index: lease.attempt_index,
                failure_reason: format!("simulated failure of attempt {}", lease.attempt_index.0),
                failure_category: "demo".into(),
                retry_policy_json: plan.retry_policy_json(),
                next_attempt_policy_json: String::new(),
                source: CancelSource::LeaseHolder,
            })
            .await
            .with_context(|| format!("worker {} failing {id}", self.id))?;
        Ok(match result {
            FailExecutionResult::TerminalFailed => Outcome::Failed,
            FailExecutionResult::RetryScheduled {
                delay_until,
                next_attempt_index,
            } => {
                let wait = delay_until.0.saturating_sub(TimestampMs::now().0).max(0);
                // One extra millisecond: the grant is checked against the wall clock.
                let due = Instant::now() + Duration::from_millis(wait as u64 + 1);
                Outcome::Retry {
                    due,
                    next: next_attempt_index,
                }
            }
        })
    }

    fn claim_args(&self, job: &Job) -> ClaimExecutionArgs {
        ClaimExecutionArgs::new(
            job.id.clone(),
            self.id.clone(),
            self.instance.clone(),
            job.lane.clone(),
            LeaseId::new(),
            LEASE_TTL_MS,
            AttemptId::new(),
            job.attempt,
            String::new(),
            None,
            None,
            TimestampMs::now(),
        )
    }
}

/// The fence of a lease: what every later call of its holder proves.
fn fence(lease: &ClaimedExecution) -> LeaseFence {
    LeaseFence {
        lease_id: lease.lease_id.clone(),
        lease_epoch: lease.lease_epoch,
        attempt_id: lease.attempt_id.clone(),
    }
}
