//! FlowFabric's own worker SDK (`ff-sdk`) as the client: a worker built with
//! `FlowFabricWorker::connect_with(config, our backend, None)` claims, reports progress, renews,
//! completes and fails executions, reports usage against budgets and writes output streams, the way an application does, claiming through a scheduler's
//! grant (`claim_from_grant`) and through the SDK's own claim loop (`claim_next_via_backend`:
//! `scan_eligible_executions`, `issue_claim_grant`, `claim_execution`, and `block_route` when
//! the worker lacks a required capability); a task suspends until a signaller delivers its
//! signal, and the resumed execution is claimed again through the same grant path (the SDK falls
//! back to `claim_resumed_execution`); a task delays or cancels itself.

use std::sync::Arc;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::FailOutcome;
use ff_core::contracts::{
    ClaimGrant, CreateBudgetArgs, DeliverSignalArgs, DeliverSignalResult, ExecutionSnapshot,
    IssueClaimGrantArgs, ReportUsageResult, ResumeCondition, ResumePolicy,
    SeedWaitpointHmacSecretArgs, SignalMatcher, SuspendOutcomeDetails, SuspensionReasonCode,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{PartitionConfig, PartitionKey};
use ff_core::policy::{ExecutionPolicy, RoutingRequirements};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptIndex, BudgetId, ExecutionId, LaneId, Namespace, SignalId, TimestampMs, WaitpointToken,
    WorkerId, WorkerInstanceId,
};
use ff_sdk::task::{ClaimedTask, TrySuspendOutcome};
use ff_sdk::{FlowFabricWorker, WorkerConfig};
use serial_test::parallel;

use crate::support::*;

/// The lane every execution of these tests runs on.
const LANE: &str = "sdk";

/// A worker on [`LANE`] over `backend`, as an application builds one for a non-Valkey backend.
async fn worker(backend: &Arc<SqliteBackend>, name: &str) -> FlowFabricWorker {
    capable_worker(backend, name, &[]).await
}

/// [`worker`] announcing `capabilities`.
async fn capable_worker(
    backend: &Arc<SqliteBackend>,
    name: &str,
    capabilities: &[&str],
) -> FlowFabricWorker {
    let config = WorkerConfig {
        backend: None,
        worker_id: WorkerId::new(name),
        worker_instance_id: WorkerInstanceId::new(format!("{name}-1")),
        namespace: Namespace::new("default"),
        lanes: vec![LaneId::new(LANE)],
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        lease_ttl_ms: 30_000,
        claim_poll_interval_ms: 10,
        max_concurrent_tasks: 4,
        // Our executions live on a few flow partitions; the scanner walks them all each poll.
        partition_config: Some(PartitionConfig {
            num_flow_partitions: 4,
            ..PartitionConfig::default()
        }),
    };
    let engine: Arc<dyn EngineBackend> = backend.clone();
    FlowFabricWorker::connect_with(config, engine, None)
        .await
        .expect("connect_with")
}

/// Create an execution on [`LANE`] with `input` as its payload.
async fn create(backend: &SqliteBackend, input: &[u8]) -> ExecutionId {
    let execution_id = new_execution_id();
    let mut args = create_args(execution_id.clone(), LANE, now_ms());
    args.input_payload = input.to_vec();
    backend.create_execution(args).await.expect("create");
    execution_id
}

/// The scheduler's side: grant `execution_id` to `worker` (whose instance is `<name>-1`), then
/// the worker claims it through the SDK.
async fn granted_task(
    backend: &SqliteBackend,
    worker: &FlowFabricWorker,
    name: &str,
    execution_id: &ExecutionId,
) -> ClaimedTask {
    backend
        .issue_claim_grant(IssueClaimGrantArgs::new(
            execution_id.clone(),
            LaneId::new(LANE),
            WorkerId::new(name),
            WorkerInstanceId::new(format!("{name}-1")),
            partition_of(execution_id),
            Default::default(),
            10_000,
            TimestampMs::now(),
        ))
        .await
        .expect("grant");
    let grant = ClaimGrant::new(
        execution_id.clone(),
        PartitionKey::from(&partition_of(execution_id)),
        String::new(),
        u64::try_from(now_ms()).unwrap() + 10_000,
    );
    worker
        .claim_from_grant(LaneId::new(LANE), grant)
        .await
        .expect("claim_from_grant")
}

async fn describe(backend: &SqliteBackend, execution_id: &ExecutionId) -> ExecutionSnapshot {
    backend
        .describe_execution(execution_id)
        .await
        .expect("describe")
        .expect("the execution exists")
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_claims_reports_progress_renews_and_completes() {
    let backend = fresh_backend("sdk-complete").await;
    let execution_id = create(&backend, b"input").await;
    let worker = worker(&backend, "sdk-worker").await;

    let task = granted_task(&backend, &worker, "sdk-worker", &execution_id).await;
    assert_eq!(task.execution_id(), &execution_id);
    assert_eq!(task.input_payload(), b"input");
    task.update_progress(50, "half way")
        .await
        .expect("progress");
    task.renew_lease().await.expect("renew");
    task.complete(Some(b"done".to_vec()))
        .await
        .expect("complete");

    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Completed
    );
    assert_eq!(
        backend.get_execution_result(&execution_id).await.unwrap(),
        Some(b"done".to_vec())
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_fails_a_task_terminally_without_a_retry_policy() {
    let backend = fresh_backend("sdk-fail").await;
    let execution_id = create(&backend, b"input").await;
    let worker = worker(&backend, "sdk-worker").await;

    let task = granted_task(&backend, &worker, "sdk-worker", &execution_id).await;
    let outcome = task.fail("boom", "permanent").await.expect("fail");
    assert!(
        matches!(outcome, FailOutcome::TerminalFailed),
        "{outcome:?}"
    );
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Failed
    );
}

/// A task reports usage against a budget as an application does (`ClaimedTask::report_usage`):
/// applied, replayed by its dedup key (no double count), stopped at the hard limit, and the
/// task completes normally afterwards.
#[tokio::test]
#[parallel(process)]
async fn a_task_reports_usage_against_a_budget() {
    let backend = fresh_backend("sdk-usage").await;
    let budget = BudgetId::new();
    backend
        .create_budget(CreateBudgetArgs {
            budget_id: budget.clone(),
            scope_type: "flow".into(),
            scope_id: "sdk".into(),
            enforcement_mode: "strict".into(),
            on_hard_limit: "fail".into(),
            on_soft_limit: "warn".into(),
            reset_interval_ms: 0,
            dimensions: vec!["tokens".into()],
            hard_limits: vec![100],
            soft_limits: vec![0],
            now: TimestampMs::now(),
        })
        .await
        .expect("create_budget");
    let execution_id = create(&backend, b"input").await;
    let worker = worker(&backend, "sdk-worker").await;
    let task = granted_task(&backend, &worker, "sdk-worker", &execution_id).await;

    let report = |delta: u64, key: &'static str| {
        let (task, budget) = (&task, &budget);
        async move {
            task.report_usage(budget, &[("tokens", delta)], Some(key))
                .await
                .expect("report_usage")
        }
    };
    assert_eq!(report(70, "step-1").await, ReportUsageResult::Ok);
    assert_eq!(report(70, "step-1").await, ReportUsageResult::Ok);
    assert_eq!(
        report(31, "step-2").await,
        ReportUsageResult::HardBreach {
            dimension: "tokens".into(),
            current_usage: 70,
            hard_limit: 100
        }
    );
    let status = backend.get_budget_status(&budget).await.unwrap();
    assert_eq!(status.usage.get("tokens").copied(), Some(70));
    assert_eq!(status.breach_count, 1);
    task.complete(None).await.expect("complete");
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_claims_through_its_own_claim_loop() {
    let backend = fresh_backend("sdk-claim-next").await;
    let execution_id = create(&backend, b"scanned").await;
    let worker = worker(&backend, "sdk-scanner").await;

    let task = worker
        .claim_next_via_backend()
        .await
        .expect("claim_next_via_backend")
        .expect("a task");
    assert_eq!(task.execution_id(), &execution_id);
    assert_eq!(task.input_payload(), b"scanned");
    // Nothing else is eligible: the loop comes back empty-handed.
    assert!(
        worker
            .claim_next_via_backend()
            .await
            .expect("claim_next_via_backend")
            .is_none()
    );
    task.update_progress(10, "started").await.expect("progress");
    task.renew_lease().await.expect("renew");
    task.complete(Some(b"ok".to_vec())).await.expect("complete");
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Completed
    );
    assert!(
        worker
            .claim_next_via_backend()
            .await
            .expect("claim_next_via_backend")
            .is_none()
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_without_a_required_capability_blocks_the_route_and_a_capable_one_gets_it_once_unblocked()
 {
    let backend = fresh_backend("sdk-block-route").await;
    let execution_id = new_execution_id();
    let mut args = create_args(execution_id.clone(), LANE, now_ms());
    args.policy = Some(ExecutionPolicy {
        routing_requirements: Some(RoutingRequirements {
            required_capabilities: ["gpu".to_string()].into_iter().collect(),
            ..Default::default()
        }),
        ..Default::default()
    });
    backend.create_execution(args).await.expect("create");

    let cpu = capable_worker(&backend, "sdk-cpu", &["cpu"]).await;
    assert!(
        cpu.claim_next_via_backend()
            .await
            .expect("claim_next_via_backend")
            .is_none()
    );
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::RateLimited
    );
    // Blocked: even a capable worker's scan no longer sees it ...
    let gpu = capable_worker(&backend, "sdk-gpu", &["gpu"]).await;
    assert!(
        gpu.claim_next_via_backend()
            .await
            .expect("claim_next_via_backend")
            .is_none()
    );
    // ... until the unblock hook runs.
    backend
        .unblock_execution(
            partition_of(&execution_id),
            &LaneId::new(LANE),
            &execution_id,
            "waiting_for_capable_worker",
            TimestampMs::now(),
        )
        .await
        .expect("unblock");
    let task = gpu
        .claim_next_via_backend()
        .await
        .expect("claim_next_via_backend")
        .expect("the gpu worker gets the task");
    assert_eq!(task.execution_id(), &execution_id);
    task.complete(None).await.expect("complete");
}

/// A signaller delivers `name` to the waitpoint a suspension returned.
async fn signal(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    details: &SuspendOutcomeDetails,
    name: &str,
) -> DeliverSignalResult {
    backend
        .deliver_signal(DeliverSignalArgs {
            execution_id: execution_id.clone(),
            waitpoint_id: details.waitpoint_id.clone(),
            signal_id: SignalId::new(),
            signal_name: name.into(),
            signal_category: "external".into(),
            source_type: "webhook".into(),
            source_identity: "payments".into(),
            payload: Some(b"paid".to_vec()),
            payload_encoding: None,
            correlation_id: None,
            idempotency_key: None,
            target_scope: "execution".into(),
            created_at: None,
            dedup_ttl_ms: None,
            resume_delay_ms: None,
            max_signals_per_execution: None,
            signal_maxlen: None,
            waitpoint_token: WaitpointToken::from(details.waitpoint_token.as_str().to_owned()),
            now: TimestampMs::now(),
        })
        .await
        .expect("deliver_signal")
}

#[tokio::test]
#[parallel(process)]
async fn a_task_suspends_is_signalled_and_is_claimed_again() {
    let backend = fresh_backend("sdk-suspend").await;
    backend
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(
            "kid-1",
            "cafebabe".repeat(8),
        ))
        .await
        .expect("seed");
    let execution_id = create(&backend, b"input").await;
    let worker = worker(&backend, "sdk-worker").await;

    let task = granted_task(&backend, &worker, "sdk-worker", &execution_id).await;
    let condition = ResumeCondition::Single {
        waitpoint_key: "wpk:payment".into(),
        matcher: SignalMatcher::ByName("paid".into()),
    };
    let suspended = match task
        .try_suspend(
            SuspensionReasonCode::WaitingForCallback,
            condition,
            None,
            ResumePolicy::normal(),
        )
        .await
        .expect("try_suspend")
    {
        TrySuspendOutcome::Suspended(suspended) => suspended,
        TrySuspendOutcome::AlreadySatisfied { .. } => panic!("nothing was delivered yet"),
    };
    assert_eq!(suspended.details.waitpoint_key, "wpk:payment");
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Suspended
    );

    // An unrelated signal is recorded; the matching one resumes the execution.
    let DeliverSignalResult::Accepted { effect, .. } =
        signal(&backend, &execution_id, &suspended.details, "reminder").await
    else {
        panic!("accepted")
    };
    assert_eq!(effect, "appended_to_waitpoint");
    let DeliverSignalResult::Accepted { effect, .. } =
        signal(&backend, &execution_id, &suspended.details, "paid").await
    else {
        panic!("accepted")
    };
    assert_eq!(effect, "resume_condition_satisfied");
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Resumable
    );

    // The scheduler grants it again; `claim_from_grant` is told to use the resumed-claim path
    // and continues the same attempt.
    let resumed = granted_task(&backend, &worker, "sdk-worker", &execution_id).await;
    assert_eq!(resumed.execution_id(), &execution_id);
    assert_eq!(
        backend
            .read_current_attempt_index(&execution_id)
            .await
            .unwrap(),
        AttemptIndex::new(0)
    );
    let signals = resumed.resume_signals().await.expect("resume_signals");
    let paid = signals
        .iter()
        .find(|s| s.signal_name == "paid")
        .expect("the satisfying signal");
    assert_eq!(paid.payload.as_deref(), Some(&b"paid"[..]));
    assert_eq!(paid.source_identity, "payments");
    resumed
        .complete(Some(b"shipped".to_vec()))
        .await
        .expect("complete");
    assert_eq!(
        describe(&backend, &execution_id).await.public_state,
        PublicState::Completed
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_task_delays_itself_and_another_cancels_itself() {
    let backend = fresh_backend("sdk-delay-cancel").await;
    let worker = worker(&backend, "sdk-worker").await;

    let delayed = create(&backend, b"later").await;
    let task = granted_task(&backend, &worker, "sdk-worker", &delayed).await;
    task.delay_execution(TimestampMs::from_millis(now_ms() + 60_000))
        .await
        .expect("delay_execution");
    assert_eq!(
        describe(&backend, &delayed).await.public_state,
        PublicState::Delayed
    );

    let cancelled = create(&backend, b"never mind").await;
    let task = granted_task(&backend, &worker, "sdk-worker", &cancelled).await;
    task.cancel("the order was withdrawn")
        .await
        .expect("cancel");
    assert_eq!(
        describe(&backend, &cancelled).await.public_state,
        PublicState::Cancelled
    );
}

/// A task writes its output stream through the SDK (`append_frame`, a summary patch with
/// `append_frame_with_mode`) while a reader, as an application would, waits on the stream with
/// `tail_stream` and then reads it whole with `read_stream` and `read_summary`.
#[tokio::test]
#[parallel(process)]
async fn a_task_appends_frames_that_a_reader_tails_and_reads() {
    use ff_core::backend::{PatchKind, StreamMode, TailVisibility};
    use ff_core::contracts::StreamCursor;
    use ff_core::types::AttemptIndex;

    let backend = fresh_backend("sdk-stream").await;
    let execution_id = create(&backend, b"input").await;
    let worker = worker(&backend, "sdk-streamer").await;
    let task = granted_task(&backend, &worker, "sdk-streamer", &execution_id).await;

    let reader_backend = backend.clone();
    let reader_id = execution_id.clone();
    let reader = tokio::spawn(async move {
        reader_backend
            .tail_stream(
                &reader_id,
                AttemptIndex::new(0),
                StreamCursor::from_beginning(),
                20_000,
                100,
                TailVisibility::All,
            )
            .await
    });
    let first = task
        .append_frame("log", b"step 1", Some("corr-1"))
        .await
        .expect("append");
    assert_eq!(first.frame_count, 1);
    task.append_frame("log", b"step 2", None)
        .await
        .expect("append");
    let summary = task
        .append_frame_with_mode(
            "progress",
            br#"{"done":2}"#,
            None,
            StreamMode::DurableSummary {
                patch_kind: PatchKind::JsonMergePatch,
            },
        )
        .await
        .expect("summary append");
    assert_eq!(summary.summary_version, Some(1));

    let tailed = reader.await.unwrap().expect("tail");
    assert_eq!(tailed.frames[0].id, first.stream_id);
    assert_eq!(tailed.frames[0].fields["payload"], "step 1");
    assert_eq!(tailed.frames[0].fields["correlation_id"], "corr-1");

    let all = backend
        .read_stream(
            &execution_id,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            100,
        )
        .await
        .expect("read_stream");
    let seen: Vec<(&str, &str)> = all
        .frames
        .iter()
        .map(|frame| {
            (
                frame.fields["frame_type"].as_str(),
                frame.fields["payload"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("log", "step 1"),
            ("log", "step 2"),
            ("progress", r#"{"done":2}"#)
        ]
    );
    let document = backend
        .read_summary(&execution_id, AttemptIndex::new(0))
        .await
        .expect("read_summary")
        .expect("a summary");
    assert_eq!(document.document_json, br#"{"done":2}"#);

    task.complete(None).await.expect("complete");
}

/// A two-parent flow built through the backend; the parents run and complete through the SDK,
/// and the child becomes claimable only when both did.
#[tokio::test]
#[parallel(process)]
async fn a_parent_completed_through_the_sdk_releases_its_child() {
    use ff_core::contracts::{
        AddExecutionToFlowArgs, ApplyDependencyToChildArgs, CreateFlowArgs,
        StageDependencyEdgeArgs, StageDependencyEdgeResult,
    };
    use ff_core::types::{EdgeId, FlowId};

    let backend = fresh_backend("sdk-flow").await;
    let flow_id = FlowId::new();
    backend
        .create_flow(CreateFlowArgs {
            flow_id: flow_id.clone(),
            flow_kind: "dag".into(),
            namespace: Namespace::new("default"),
            now: TimestampMs::now(),
        })
        .await
        .expect("create_flow");
    let parents = [create(&backend, b"p1").await, create(&backend, b"p2").await];
    let child = create(&backend, b"child").await;
    for member in parents.iter().chain([&child]) {
        backend
            .add_execution_to_flow(AddExecutionToFlowArgs {
                flow_id: flow_id.clone(),
                execution_id: member.clone(),
                now: TimestampMs::now(),
            })
            .await
            .expect("add");
    }
    for (revision, parent) in [3, 4].into_iter().zip(&parents) {
        let StageDependencyEdgeResult::Staged { edge_id, .. } = backend
            .stage_dependency_edge(StageDependencyEdgeArgs {
                flow_id: flow_id.clone(),
                edge_id: EdgeId::new(),
                upstream_execution_id: parent.clone(),
                downstream_execution_id: child.clone(),
                dependency_kind: "success_only".into(),
                data_passing_ref: None,
                expected_graph_revision: revision,
                now: TimestampMs::now(),
            })
            .await
            .expect("stage");
        backend
            .apply_dependency_to_child(ApplyDependencyToChildArgs {
                flow_id: flow_id.clone(),
                edge_id,
                downstream_execution_id: child.clone(),
                upstream_execution_id: parent.clone(),
                graph_revision: revision + 1,
                dependency_kind: "success_only".into(),
                data_passing_ref: None,
                now: TimestampMs::now(),
            })
            .await
            .expect("apply");
    }
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::WaitingChildren
    );

    let worker = worker(&backend, "sdk-worker").await;
    let first = granted_task(&backend, &worker, "sdk-worker", &parents[0]).await;
    first.complete(None).await.expect("complete p1");
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::WaitingChildren,
        "one parent of two is not enough"
    );
    let second = granted_task(&backend, &worker, "sdk-worker", &parents[1]).await;
    second.complete(None).await.expect("complete p2");
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::Waiting
    );
    let task = granted_task(&backend, &worker, "sdk-worker", &child).await;
    task.complete(Some(b"done".to_vec()))
        .await
        .expect("complete child");
}

/// `move_to_waiting_children` parks a running child whose parent has not finished; the parent's
/// completion releases it, and the same attempt runs again (taken by the lane scanner).
#[tokio::test]
#[parallel(process)]
async fn a_task_moved_to_waiting_children_resumes_when_its_parent_completes() {
    use ff_core::contracts::{
        AddExecutionToFlowArgs, ApplyDependencyToChildArgs, CreateFlowArgs,
        StageDependencyEdgeArgs, StageDependencyEdgeResult,
    };
    use ff_core::types::{EdgeId, FlowId};

    let backend = fresh_backend("sdk-wait-children").await;
    let flow_id = FlowId::new();
    backend
        .create_flow(CreateFlowArgs {
            flow_id: flow_id.clone(),
            flow_kind: "dag".into(),
            namespace: Namespace::new("default"),
            now: TimestampMs::now(),
        })
        .await
        .expect("create_flow");
    let parent = create(&backend, b"parent").await;
    let child = create(&backend, b"child").await;
    for member in [&parent, &child] {
        backend
            .add_execution_to_flow(AddExecutionToFlowArgs {
                flow_id: flow_id.clone(),
                execution_id: member.clone(),
                now: TimestampMs::now(),
            })
            .await
            .expect("add");
    }
    let worker = worker(&backend, "sdk-worker").await;
    // The child starts first; the dependency is applied while it runs.
    let running_child = granted_task(&backend, &worker, "sdk-worker", &child).await;
    let StageDependencyEdgeResult::Staged { edge_id, .. } = backend
        .stage_dependency_edge(StageDependencyEdgeArgs {
            flow_id: flow_id.clone(),
            edge_id: EdgeId::new(),
            upstream_execution_id: parent.clone(),
            downstream_execution_id: child.clone(),
            dependency_kind: "success_only".into(),
            data_passing_ref: None,
            expected_graph_revision: 2,
            now: TimestampMs::now(),
        })
        .await
        .expect("stage");
    backend
        .apply_dependency_to_child(ApplyDependencyToChildArgs {
            flow_id: flow_id.clone(),
            edge_id,
            downstream_execution_id: child.clone(),
            upstream_execution_id: parent.clone(),
            graph_revision: 3,
            dependency_kind: "success_only".into(),
            data_passing_ref: None,
            now: TimestampMs::now(),
        })
        .await
        .expect("apply");
    running_child
        .move_to_waiting_children()
        .await
        .expect("move_to_waiting_children");
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::WaitingChildren
    );
    let parent_task = granted_task(&backend, &worker, "sdk-worker", &parent).await;
    parent_task.complete(None).await.expect("complete parent");
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::Waiting
    );
    // The same attempt continues: an interrupted attempt is taken by the lane scanner (a
    // grant is for a fresh attempt; `issue_claim_grant` refuses an interrupted one).
    let handle = backend
        .claim(
            &LaneId::new(LANE),
            &ff_core::backend::CapabilitySet::default(),
            ff_core::backend::ClaimPolicy::new(
                WorkerId::new("sdk-worker"),
                WorkerInstanceId::new("sdk-worker-1"),
                30_000,
                None,
            ),
        )
        .await
        .expect("claim")
        .expect("the released child is claimable");
    backend
        .complete(&handle, None)
        .await
        .expect("complete child");
    assert_eq!(
        describe(&backend, &child).await.public_state,
        PublicState::Completed
    );
}
