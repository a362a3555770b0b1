//! The demo's approval jobs: executions on a lane of their own whose worker suspends each one
//! on a fresh waitpoint ("waiting for approval"), a signaller task that approves them (one
//! `deliver_signal` with the waitpoint's token each), and the worker resuming each execution
//! on the same attempt once the signal-delivery subscription reports its waitpoint satisfied,
//! then completing it. Everything goes through the public `EngineBackend` API.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, bail};
use ff_core::backend::{CapabilitySet, ClaimPolicy, Frame, FrameKind, ScannerFilter};
use ff_core::contracts::{
    ClaimResumedExecutionArgs, ClaimResumedExecutionResult, CompleteExecutionArgs,
    CreateExecutionArgs, DeliverSignalArgs, DeliverSignalResult, ResumeCondition, ResumePolicy,
    SeedWaitpointHmacSecretArgs, SignalMatcher, SuspendArgs, SuspensionReasonCode,
    WaitpointBinding,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::handle_codec;
use ff_core::stream_events::SignalDeliveryEffect;
use ff_core::stream_subscribe::StreamCursor;
use ff_core::types::{
    CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, Namespace, SignalId, SuspensionId,
    TimestampMs, WaitpointId, WaitpointToken, WorkerId, WorkerInstanceId,
};
use tokio_stream::StreamExt;

use super::plan::{LEASE_TTL_MS, NAMESPACE, Plan};
use crate::table::fields;

/// The approval jobs' lane.
pub const LANE: &str = "approvals";

/// The waitpoint key every approval job waits on, and the signal that satisfies it.
const WAITPOINT_KEY: &str = "approval";
const APPROVED: &str = "approved";

/// The kid the demo seeds the waitpoint keystore with (a database that already has one keeps
/// it; tokens are signed with whichever kid is active).
const KID: &str = "ffwasm-demo";

/// One suspended job the signaller approves.
struct Pending {
    execution_id: ExecutionId,
    waitpoint_id: WaitpointId,
    token: WaitpointToken,
}

/// What the approval jobs did.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// Jobs suspended on their waitpoint.
    suspended: u64,
    /// Signals the signaller delivered.
    signalled: u64,
    /// Deliveries the subscription reported as satisfying a waitpoint.
    satisfied: u64,
    /// Jobs resumed on their suspended attempt and completed.
    completed: u64,
}

impl Approvals {
    /// The summary's lines.
    pub fn render(&self) -> String {
        format!(
            "Approval jobs (lane {LANE})\n{}",
            fields(&[
                ("suspended", format!("{} on a waitpoint", self.suspended)),
                (
                    "signalled",
                    format!(
                        "{} by the signaller; {} reported satisfied by the subscription",
                        self.signalled, self.satisfied
                    ),
                ),
                (
                    "resumed",
                    format!("{} on the same attempt, then completed", self.completed),
                ),
            ])
        )
    }
}

/// Run `count` approval jobs (none when 0).
pub async fn run(
    engine: Arc<dyn EngineBackend>,
    plan: &Plan,
    count: u32,
) -> anyhow::Result<Approvals> {
    let mut done = Approvals::default();
    if count == 0 {
        return Ok(done);
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    engine
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret))
        .await
        .context("seeding the waitpoint keystore")?;
    let namespace = ScannerFilter::new().with_namespace(NAMESPACE);
    let mut deliveries = engine
        .subscribe_signal_delivery(StreamCursor::empty(), &namespace)
        .await
        .context("subscribing to signal deliveries")?;

    let lane = LaneId::new(LANE);
    let worker = WorkerId::new("demo-approver");
    let instance = WorkerInstanceId::new(format!("demo-approver@{}", plan.run));
    for _ in 0..count {
        let execution_id = ExecutionId::parse(&format!("{{fp:0}}:{}", uuid::Uuid::new_v4()))
            .context("an execution id")?;
        engine
            .create_execution(create_args(plan, execution_id.clone(), lane.clone()))
            .await
            .with_context(|| format!("creating approval job {execution_id}"))?;
    }
    // The worker claims each job and suspends it until it is approved.
    let mut waiting = HashSet::new();
    let mut pending = Vec::new();
    for _ in 0..count {
        let policy = ClaimPolicy::new(
            worker.clone(),
            instance.clone(),
            u32::try_from(LEASE_TTL_MS).unwrap_or(u32::MAX),
            None,
        );
        let Some(handle) = engine
            .claim(&lane, &CapabilitySet::default(), policy)
            .await
            .context("claiming an approval job")?
        else {
            bail!("the approvals lane had no job left to claim");
        };
        let execution_id = handle_codec::decode(&handle.opaque)
            .context("reading a handle")?
            .payload
            .execution_id;
        engine
            .append_frame(
                &handle,
                Frame::new(b"waiting for approval".to_vec(), FrameKind::Stdout),
            )
            .await
            .context("appending to an approval job's stream")?;
        let outcome = engine
            .suspend(&handle, suspend_args())
            .await
            .with_context(|| format!("suspending {execution_id}"))?;
        let details = outcome.details();
        done.suspended += 1;
        waiting.insert(execution_id.clone());
        pending.push(Pending {
            execution_id,
            waitpoint_id: details.waitpoint_id.clone(),
            token: WaitpointToken::from(details.waitpoint_token.as_str().to_owned()),
        });
    }

    // The signaller approves every suspended job from a task of its own, while the worker
    // resumes each job its subscription reports satisfied.
    let signaller = tokio::spawn({
        let engine = Arc::clone(&engine);
        async move {
            let mut signalled = 0;
            for job in pending {
                let execution_id = job.execution_id.clone();
                match engine
                    .deliver_signal(signal_args(job))
                    .await
                    .with_context(|| format!("approving {execution_id}"))?
                {
                    DeliverSignalResult::Accepted { .. } => signalled += 1,
                    other => bail!("approving {execution_id}: unexpected {other:?}"),
                }
            }
            anyhow::Ok(signalled)
        }
    });
    while !waiting.is_empty() {
        let event = deliveries
            .next()
            .await
            .context("the signal-delivery subscription ended")?
            .context("reading signal deliveries")?;
        if event.effect != SignalDeliveryEffect::Satisfied || !waiting.remove(&event.execution_id) {
            continue;
        }
        done.satisfied += 1;
        resume_and_complete(
            engine.as_ref(),
            &worker,
            &instance,
            &lane,
            &event.execution_id,
        )
        .await?;
        done.completed += 1;
    }
    done.signalled = signaller.await.context("the signaller task")??;
    Ok(done)
}

/// The approval job's creation arguments.
fn create_args(plan: &Plan, execution_id: ExecutionId, lane: LaneId) -> CreateExecutionArgs {
    CreateExecutionArgs {
        execution_id,
        namespace: Namespace::new(NAMESPACE),
        execution_kind: "demo.approval".into(),
        lane_id: lane,
        input_payload: b"{\"needs\":\"approval\"}".to_vec(),
        payload_encoding: Some("json".into()),
        priority: 0,
        creator_identity: "ffwasm demo".into(),
        idempotency_key: None,
        tags: [("ffwasm.run".to_owned(), plan.run.clone())]
            .into_iter()
            .collect(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: 0,
        now: TimestampMs::now(),
    }
}

/// Suspend on one fresh waitpoint until an `approved` signal arrives.
fn suspend_args() -> SuspendArgs {
    SuspendArgs::new(
        SuspensionId::new(),
        WaitpointBinding::Fresh {
            waitpoint_id: WaitpointId::new(),
            waitpoint_key: WAITPOINT_KEY.to_owned(),
        },
        ResumeCondition::Single {
            waitpoint_key: WAITPOINT_KEY.to_owned(),
            matcher: SignalMatcher::ByName(APPROVED.to_owned()),
        },
        ResumePolicy::normal(),
        SuspensionReasonCode::WaitingForApproval,
        TimestampMs::now(),
    )
}

/// The signaller's approval of one job.
fn signal_args(job: Pending) -> DeliverSignalArgs {
    DeliverSignalArgs {
        execution_id: job.execution_id,
        waitpoint_id: job.waitpoint_id,
        signal_id: SignalId::new(),
        signal_name: APPROVED.into(),
        signal_category: "approval".into(),
        source_type: "operator".into(),
        source_identity: "demo-signaller".into(),
        payload: None,
        payload_encoding: None,
        correlation_id: None,
        idempotency_key: None,
        target_scope: "execution".into(),
        created_at: None,
        dedup_ttl_ms: None,
        resume_delay_ms: None,
        max_signals_per_execution: None,
        signal_maxlen: None,
        waitpoint_token: job.token,
        now: TimestampMs::now(),
    }
}

/// Take the resumed job back on its suspended attempt, record how many signals resumed it, and
/// complete it.
async fn resume_and_complete(
    engine: &dyn EngineBackend,
    worker: &WorkerId,
    instance: &WorkerInstanceId,
    lane: &LaneId,
    execution_id: &ExecutionId,
) -> anyhow::Result<()> {
    let attempt = engine
        .read_current_attempt_index(execution_id)
        .await
        .with_context(|| format!("reading the attempt of {execution_id}"))?;
    let ClaimResumedExecutionResult::Claimed(lease) = engine
        .claim_resumed_execution(ClaimResumedExecutionArgs {
            execution_id: execution_id.clone(),
            worker_id: worker.clone(),
            worker_instance_id: instance.clone(),
            lane_id: lane.clone(),
            lease_id: LeaseId::new(),
            lease_ttl_ms: LEASE_TTL_MS,
            current_attempt_index: attempt,
            remaining_attempt_timeout_ms: None,
            now: TimestampMs::now(),
        })
        .await
        .with_context(|| format!("resuming {execution_id}"))?;
    let signals = engine
        .observe_signals(&lease.handle)
        .await
        .with_context(|| format!("reading the signals that resumed {execution_id}"))?;
    engine
        .append_frame(
            &lease.handle,
            Frame::new(
                format!("resumed by {} signal(s)", signals.len()).into_bytes(),
                FrameKind::Stdout,
            ),
        )
        .await
        .with_context(|| format!("appending to {execution_id}'s stream"))?;
    engine
        .complete_execution(CompleteExecutionArgs {
            execution_id: execution_id.clone(),
            fence: Some(LeaseFence {
                lease_id: lease.lease_id.clone(),
                lease_epoch: lease.lease_epoch,
                attempt_id: lease.attempt_id.clone(),
            }),
            attempt_index: lease.attempt_index,
            result_payload: Some(b"approved".to_vec()),
            result_encoding: None,
            source: CancelSource::LeaseHolder,
            now: TimestampMs::now(),
        })
        .await
        .with_context(|| format!("completing {execution_id}"))?;
    Ok(())
}
