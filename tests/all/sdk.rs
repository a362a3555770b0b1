//! FlowFabric's own worker SDK (`ff-sdk`) as the client: a worker built with
//! `FlowFabricWorker::connect_with(config, our backend, None)` claims, reports progress, renews,
//! completes and fails executions the way an application does, claiming through a scheduler's
//! grant (`claim_from_grant`). (The SDK's own lane scan, `claim_next_via_backend`, needs
//! `scan_eligible_executions`, which is not built yet.)

use std::sync::Arc;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::FailOutcome;
use ff_core::contracts::{ClaimGrant, ExecutionSnapshot, IssueClaimGrantArgs};
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{PartitionConfig, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{ExecutionId, LaneId, Namespace, TimestampMs, WorkerId, WorkerInstanceId};
use ff_sdk::task::ClaimedTask;
use ff_sdk::{FlowFabricWorker, WorkerConfig};
use serial_test::parallel;

use crate::support::*;

/// The lane every execution of these tests runs on.
const LANE: &str = "sdk";

/// A worker on [`LANE`] over `backend`, as an application builds one for a non-Valkey backend.
async fn worker(backend: &Arc<SqliteBackend>, name: &str) -> FlowFabricWorker {
    let config = WorkerConfig {
        backend: None,
        worker_id: WorkerId::new(name),
        worker_instance_id: WorkerInstanceId::new(format!("{name}-1")),
        namespace: Namespace::new("default"),
        lanes: vec![LaneId::new(LANE)],
        capabilities: Vec::new(),
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
