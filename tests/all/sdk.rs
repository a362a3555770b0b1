//! FlowFabric's own worker SDK (`ff-sdk`) as the client: a worker built with
//! `FlowFabricWorker::connect_with(config, our backend, None)` claims, reports progress, renews,
//! completes and fails executions and writes their output streams the way an application does, claiming through a scheduler's
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
