//! Streams and subscriptions: upstream's `stream_reader.rs`, `subscribe.rs` and the stream
//! tests of `hot_path.rs` with only the set-up changed (rusqlite seeding, our backend), then
//! this backend's own guarantees: exactly once in commit order across cursors, resuming after
//! a restart, prompt ends of dropped streams and on shutdown, typed bad input with nothing
//! written.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{
    BestEffortLiveConfig, CapabilitySet, ClaimPolicy, Frame, FrameKind, Handle, PatchKind,
    ScannerFilter, StreamMode, TailVisibility,
};
use ff_core::contracts::StreamCursor;
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, ValidationKind};
use ff_core::stream_events::{CompletionOutcome, LeaseHistoryEvent};
use ff_core::stream_subscribe::{self, encode_postgres_event_cursor};
use ff_core::types::{AttemptIndex, ExecutionId, LaneId, WorkerId, WorkerInstanceId};
use serial_test::parallel;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

/// A safety net against a hung test (not an assertion on timing).
const PATIENCE: Duration = Duration::from_secs(20);

fn claim_policy() -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new("test-worker"),
        WorkerInstanceId::new("test-worker-instance"),
        30_000,
        None,
    )
}

/// Seed a runnable execution and claim it through the lane scanner (upstream's
/// `seed_and_claim`).
async fn seed_and_claim(backend: &SqliteBackend) -> (ExecutionId, Handle) {
    let (_, eid) = seed_runnable(&backend.connection_for_test());
    let caps = CapabilitySet::new::<_, &str>([]);
    let handle = backend
        .claim(&LaneId::new("default"), &caps, claim_policy())
        .await
        .expect("claim")
        .expect("handle");
    (eid, handle)
}

fn payload(frame: &ff_core::contracts::StreamFrame) -> &str {
    frame
        .fields
        .get("payload")
        .map(String::as_str)
        .unwrap_or_default()
}

async fn next<T>(stream: &mut (impl tokio_stream::Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event within the patience window")
        .expect("the stream is open")
}

fn summary_frame(json: &str) -> Frame {
    Frame::new(json.as_bytes().to_vec(), FrameKind::Event).with_mode(StreamMode::DurableSummary {
        patch_kind: PatchKind::JsonMergePatch,
    })
}

// ── hot_path.rs (streams) ───────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn append_frame_durable_writes_frame_row() {
    let backend = fresh_backend("streams-append").await;
    let (_, handle) = seed_and_claim(&backend).await;
    let first = backend
        .append_frame(&handle, Frame::new(b"one".to_vec(), FrameKind::Stdout))
        .await
        .unwrap();
    assert_eq!(first.frame_count, 1);
    assert!(first.stream_id.contains('-'));
    assert_eq!(first.summary_version, None);
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_stream_frame"),
        1
    );
    let second = backend
        .append_frame(&handle, Frame::new(b"two".to_vec(), FrameKind::Stdout))
        .await
        .unwrap();
    assert_eq!(second.frame_count, 2);
}

#[tokio::test]
#[parallel(process)]
async fn append_frame_summary_merges_document_and_bumps_version() {
    let backend = fresh_backend("streams-summary").await;
    let (_, handle) = seed_and_claim(&backend).await;
    let first = backend
        .append_frame(&handle, summary_frame(r#"{"a":1}"#))
        .await
        .unwrap();
    assert_eq!(first.summary_version, Some(1));
    let second = backend
        .append_frame(&handle, summary_frame(r#"{"b":2}"#))
        .await
        .unwrap();
    assert_eq!(second.summary_version, Some(2));
    let conn = backend.connection_for_test();
    let (document, version): (String, i64) = conn
        .query_row(
            "SELECT document_json, version FROM ff_stream_summary",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(document["a"], 1);
    assert_eq!(document["b"], 2);
    assert_eq!(version, 2);
}

#[tokio::test]
#[parallel(process)]
async fn append_frame_fence_mismatch_returns_contention() {
    let backend = fresh_backend("streams-fence").await;
    let (_, handle) = seed_and_claim(&backend).await;
    // Upstream presents a handle at epoch 999; moving the stored epoch is the same mismatch.
    backend
        .connection_for_test()
        .execute("UPDATE ff_attempt SET lease_epoch = 999", [])
        .unwrap();
    let error = rejected_without_writes(&backend, async {
        backend
            .append_frame(&handle, Frame::new(b"x".to_vec(), FrameKind::Stdout))
            .await
    })
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::LeaseConflict)
        ),
        "{error:?}"
    );
}

// ── stream_reader.rs ────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn read_stream_happy_path_returns_frames_in_order() {
    let backend = fresh_backend("streams-read").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    for i in 0..3 {
        let frame = Frame::new(format!("payload-{i}").into_bytes(), FrameKind::Stdout);
        backend.append_frame(&handle, frame).await.unwrap();
    }
    let frames = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            100,
        )
        .await
        .unwrap();
    let payloads: Vec<&str> = frames.frames.iter().map(payload).collect();
    assert_eq!(payloads, ["payload-0", "payload-1", "payload-2"]);
    assert!(frames.closed_at.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn read_stream_cursor_pagination_resumes() {
    let backend = fresh_backend("streams-pages").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    for i in 0..5 {
        let frame = Frame::new(format!("p{i}").into_bytes(), FrameKind::Stdout);
        backend.append_frame(&handle, frame).await.unwrap();
    }
    let page1 = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            2,
        )
        .await
        .unwrap();
    assert_eq!(page1.frames.len(), 2);
    let last_id = page1.frames.last().unwrap().id.clone();
    let page2 = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::At(last_id.clone()),
            StreamCursor::End,
            100,
        )
        .await
        .unwrap();
    assert!(page2.frames.len() >= 3);
    assert_eq!(page2.frames.first().unwrap().id, last_id);
}

#[tokio::test]
#[parallel(process)]
async fn read_stream_isolates_per_attempt_index() {
    let backend = fresh_backend("streams-attempts").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    for i in 0..2 {
        let frame = Frame::new(format!("a0-{i}").into_bytes(), FrameKind::Stdout);
        backend.append_frame(&handle, frame).await.unwrap();
    }
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_stream_frame (partition_key, execution_id, attempt_index, ts_ms, seq, \
                 fields, mode, created_at_ms) VALUES (0, ?1, 1, 100, 0, ?2, 'durable', 100)",
            rusqlite::params![
                blob(uuid_of(&eid)),
                r#"{"frame_type":"stdout","payload":"a1-only","encoding":"utf8","source":"worker"}"#
            ],
        )
        .unwrap();
    let read = |index| {
        let backend = backend.clone();
        let eid = eid.clone();
        async move {
            backend
                .read_stream(
                    &eid,
                    AttemptIndex::new(index),
                    StreamCursor::Start,
                    StreamCursor::End,
                    100,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(read(0).await.frames.len(), 2);
    let a1 = read(1).await;
    assert_eq!(a1.frames.len(), 1);
    assert_eq!(payload(&a1.frames[0]), "a1-only");
}

#[tokio::test]
#[parallel(process)]
async fn read_summary_returns_merged_document() {
    let backend = fresh_backend("streams-read-summary").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    backend
        .append_frame(&handle, summary_frame(r#"{"a":1}"#))
        .await
        .unwrap();
    backend
        .append_frame(&handle, summary_frame(r#"{"b":2}"#))
        .await
        .unwrap();
    let summary = backend
        .read_summary(&eid, AttemptIndex::new(0))
        .await
        .unwrap()
        .expect("summary present");
    assert_eq!(summary.version, 2);
    let doc: serde_json::Value = serde_json::from_slice(&summary.document_json).unwrap();
    assert_eq!(doc["a"], 1);
    assert_eq!(doc["b"], 2);
    assert!(summary.last_updated_ms > 0);
    assert!(summary.first_applied_ms > 0);
}

#[tokio::test]
#[parallel(process)]
async fn read_summary_missing_returns_none() {
    let backend = fresh_backend("streams-no-summary").await;
    let (eid, _handle) = seed_and_claim(&backend).await;
    assert!(
        backend
            .read_summary(&eid, AttemptIndex::new(0))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
#[parallel(process)]
async fn tail_stream_fast_path_returns_existing_frames() {
    let backend = fresh_backend("streams-tail-fast").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    backend
        .append_frame(&handle, Frame::new(b"first".to_vec(), FrameKind::Stdout))
        .await
        .unwrap();
    let frames = backend
        .tail_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::At("0-0".into()),
            0,
            100,
            TailVisibility::All,
        )
        .await
        .unwrap();
    assert_eq!(frames.frames.len(), 1);
    assert_eq!(payload(&frames.frames[0]), "first");
}

/// Upstream also asserts the elapsed time; this port asserts what the tail returns (the frame
/// appended while it waited), and that it returned before its 20 s block ended.
#[tokio::test]
#[parallel(process)]
async fn tail_stream_blocks_and_wakes_on_append() {
    let backend = fresh_backend("streams-tail-wake").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    let producer_backend = backend.clone();
    let produce = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(80)).await;
        producer_backend
            .append_frame(&handle, Frame::new(b"late".to_vec(), FrameKind::Stdout))
            .await
            .unwrap();
    });
    let frames = backend
        .tail_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::At("0-0".into()),
            20_000,
            100,
            TailVisibility::All,
        )
        .await
        .unwrap();
    produce.await.unwrap();
    assert_eq!(frames.frames.len(), 1);
    assert_eq!(payload(&frames.frames[0]), "late");
}

#[tokio::test]
#[parallel(process)]
async fn tail_stream_timeout_returns_empty_open() {
    let backend = fresh_backend("streams-tail-timeout").await;
    let (eid, _handle) = seed_and_claim(&backend).await;
    let frames = backend
        .tail_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::At("0-0".into()),
            150,
            100,
            TailVisibility::All,
        )
        .await
        .unwrap();
    assert!(frames.frames.is_empty());
    assert!(frames.closed_at.is_none());
}

/// A stream closes when its attempt ends: `read_stream` and `tail_stream` report `closed_at`
/// and the attempt's outcome once they reached the stream's end (a page cut short by its
/// count does not), and a tail of a closed stream returns at once instead of blocking.
#[tokio::test]
#[parallel(process)]
async fn a_stream_reports_closed_once_its_attempt_ends() {
    let backend = fresh_backend("streams-closed").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    for text in ["one", "two"] {
        backend
            .append_frame(
                &handle,
                Frame::new(text.as_bytes().to_vec(), FrameKind::Stdout),
            )
            .await
            .unwrap();
    }
    let open = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            10,
        )
        .await
        .unwrap();
    assert!(!open.is_closed());
    backend.complete(&handle, None).await.unwrap();
    let closed = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            10,
        )
        .await
        .unwrap();
    assert_eq!(closed.frames.len(), 2);
    assert!(closed.is_closed());
    assert!(closed.closed_at.is_some_and(|at| at.0 > 0));
    assert_eq!(closed.closed_reason.as_deref(), Some("success"));
    let partial = backend
        .read_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::Start,
            StreamCursor::End,
            1,
        )
        .await
        .unwrap();
    assert_eq!(partial.frames.len(), 1);
    assert!(!partial.is_closed(), "more frames follow this page");
    let last = closed.frames[1].id.clone();
    let tail = tokio::time::timeout(
        PATIENCE,
        backend.tail_stream(
            &eid,
            AttemptIndex::new(0),
            StreamCursor::At(last),
            3_600_000,
            10,
            TailVisibility::All,
        ),
    )
    .await
    .expect("a tail of a closed stream does not block")
    .unwrap();
    assert!(tail.frames.is_empty());
    assert_eq!(tail.closed_reason.as_deref(), Some("success"));
}

#[tokio::test]
#[parallel(process)]
async fn tail_stream_rejects_open_cursors() {
    let backend = fresh_backend("streams-tail-open").await;
    let (eid, _handle) = seed_and_claim(&backend).await;
    for cursor in [StreamCursor::Start, StreamCursor::End] {
        let error = backend
            .tail_stream(
                &eid,
                AttemptIndex::new(0),
                cursor,
                0,
                100,
                TailVisibility::All,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, EngineError::Validation { .. }), "{error:?}");
    }
}

#[tokio::test]
#[parallel(process)]
async fn tail_stream_exclude_best_effort_filters_frames() {
    let backend = fresh_backend("streams-tail-visibility").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    backend
        .append_frame(&handle, Frame::new(b"durable".to_vec(), FrameKind::Stdout))
        .await
        .unwrap();
    let live =
        Frame::new(b"live".to_vec(), FrameKind::Stdout).with_mode(StreamMode::BestEffortLive {
            config: BestEffortLiveConfig::with_ttl(60_000),
        });
    backend.append_frame(&handle, live).await.unwrap();
    let tail = |visibility| {
        let backend = backend.clone();
        let eid = eid.clone();
        async move {
            backend
                .tail_stream(
                    &eid,
                    AttemptIndex::new(0),
                    StreamCursor::At("0-0".into()),
                    0,
                    100,
                    visibility,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(tail(TailVisibility::All).await.frames.len(), 2);
    let durable = tail(TailVisibility::ExcludeBestEffort).await;
    assert_eq!(durable.frames.len(), 1);
    assert_eq!(payload(&durable.frames[0]), "durable");
}

// ── subscribe.rs ────────────────────────────────────────────────────────────────────────────

async fn complete(backend: &SqliteBackend) -> ExecutionId {
    let (eid, handle) = seed_and_claim(backend).await;
    backend.complete(&handle, None).await.expect("complete");
    eid
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_completion_tail_happy_path() {
    let backend = fresh_backend("subscribe-completion").await;
    let mut events = backend
        .subscribe_completion(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let eid = complete(&backend).await;
    let event = next(&mut events).await.unwrap();
    assert_eq!(event.execution_id, eid);
    assert_eq!(event.outcome, CompletionOutcome::Success);
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_completion_cursor_resume() {
    let backend = fresh_backend("subscribe-resume").await;
    complete(&backend).await; // before subscribing: not seen from "now"
    let mut events = backend
        .subscribe_completion(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let second = complete(&backend).await;
    let third = complete(&backend).await;
    let seen = next(&mut events).await.unwrap();
    assert_eq!(seen.execution_id, second);
    drop(events);
    let mut resumed = backend
        .subscribe_completion(seen.cursor.clone(), &ScannerFilter::default())
        .await
        .unwrap();
    assert_eq!(next(&mut resumed).await.unwrap().execution_id, third);
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_completion_filter_by_instance_tag_receives_events() {
    let backend = fresh_backend("subscribe-tag").await;
    let filter = ScannerFilter::new().with_instance_tag("cairn.instance_id", "i-42");
    let mut events = backend
        .subscribe_completion(stream_subscribe::StreamCursor::empty(), &filter)
        .await
        .unwrap();
    complete(&backend).await; // untagged: dropped
    let (_, tagged) = seed_runnable(&backend.connection_for_test());
    update_exec(
        &backend.connection_for_test(),
        &tagged,
        "raw_fields = '{\"tags\":{\"cairn.instance_id\":\"i-42\"}}'",
    );
    let caps = CapabilitySet::new::<_, &str>([]);
    let handle = backend
        .claim(&LaneId::new("default"), &caps, claim_policy())
        .await
        .unwrap()
        .unwrap();
    backend.complete(&handle, None).await.unwrap();
    assert_eq!(next(&mut events).await.unwrap().execution_id, tagged);
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_lease_history_tail_happy_path() {
    let backend = fresh_backend("subscribe-lease").await;
    let mut events = backend
        .subscribe_lease_history(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let (eid, handle) = seed_and_claim(&backend).await;
    backend.renew(&handle).await.unwrap();
    backend.complete(&handle, None).await.unwrap();
    let acquired = next(&mut events).await.unwrap();
    assert!(
        matches!(&acquired, LeaseHistoryEvent::Acquired { execution_id, .. } if *execution_id == eid),
        "{acquired:?}"
    );
    let renewed = next(&mut events).await.unwrap();
    assert!(
        matches!(renewed, LeaseHistoryEvent::Renewed { .. }),
        "{renewed:?}"
    );
    let revoked = next(&mut events).await.unwrap();
    assert!(
        matches!(revoked, LeaseHistoryEvent::Revoked { .. }),
        "{revoked:?}"
    );

    // subscribe_lease_history_cursor_resume: after `Acquired` comes only `Renewed` first.
    let mut resumed = backend
        .subscribe_lease_history(acquired.cursor().clone(), &ScannerFilter::default())
        .await
        .unwrap();
    assert!(matches!(
        next(&mut resumed).await.unwrap(),
        LeaseHistoryEvent::Renewed { .. }
    ));
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_completion_lagged_recovery() {
    let backend = fresh_backend("subscribe-many").await;
    let mut events = backend
        .subscribe_completion(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let mut completed = Vec::new();
    for _ in 0..300 {
        completed.push(complete(&backend).await);
    }
    let mut previous: Option<Vec<u8>> = None;
    for expected in completed {
        let event = next(&mut events).await.unwrap();
        assert_eq!(
            event.execution_id, expected,
            "exactly once, in commit order"
        );
        let cursor = event.cursor.as_bytes().to_vec();
        assert!(previous.as_ref().is_none_or(|p| *p < cursor));
        previous = Some(cursor);
    }
}

// ── This backend's guarantees ───────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_failed_completion_carries_failure() {
    let backend = fresh_backend("subscribe-failed").await;
    let mut events = backend
        .subscribe_completion(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let (_, handle) = seed_and_claim(&backend).await;
    backend
        .fail(
            &handle,
            ff_core::backend::FailureReason::new("boom"),
            ff_core::backend::FailureClass::Permanent,
        )
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await.unwrap().outcome,
        CompletionOutcome::Failure
    );
}

#[tokio::test]
#[parallel(process)]
async fn subscriptions_resume_from_a_cursor_after_a_backend_restart() {
    dev_mode();
    let dir = std::env::temp_dir().join(format!("ff-streams-restart-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sqlite");
    let path = path.to_str().unwrap().to_owned();
    let cursor;
    let after;
    {
        let backend = SqliteBackend::new(&path).await.unwrap();
        let mut events = backend
            .subscribe_completion(encode_postgres_event_cursor(0), &ScannerFilter::default())
            .await
            .unwrap();
        complete(&backend).await;
        cursor = next(&mut events).await.unwrap().cursor;
        after = complete(&backend).await;
    }
    let backend = SqliteBackend::new(&path).await.unwrap();
    let mut events = backend
        .subscribe_completion(cursor, &ScannerFilter::default())
        .await
        .unwrap();
    assert_eq!(next(&mut events).await.unwrap().execution_id, after);
    drop(events);
    drop(backend);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[parallel(process)]
async fn shutdown_prepare_ends_subscriptions_with_their_cursor_and_wakes_tails() {
    let backend = fresh_backend("streams-shutdown").await;
    let (eid, _handle) = seed_and_claim(&backend).await;
    let mut events = backend
        .subscribe_lease_history(encode_postgres_event_cursor(0), &ScannerFilter::default())
        .await
        .unwrap();
    let acquired = next(&mut events).await.unwrap();
    let tail_backend = backend.clone();
    let tail = tokio::spawn(async move {
        tail_backend
            .tail_stream(
                &eid,
                AttemptIndex::new(0),
                StreamCursor::At("0-0".into()),
                3_600_000,
                10,
                TailVisibility::All,
            )
            .await
    });
    tokio::task::yield_now().await;
    backend
        .shutdown_prepare(Duration::from_secs(1))
        .await
        .unwrap();
    let ended = tokio::time::timeout(PATIENCE, tail)
        .await
        .expect("the tail returned")
        .unwrap();
    assert!(ended.unwrap().frames.is_empty());
    match next(&mut events).await {
        Err(EngineError::StreamDisconnected { cursor }) => assert_eq!(cursor, *acquired.cursor()),
        other => panic!("expected StreamDisconnected, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
#[parallel(process)]
async fn bad_input_is_typed_and_writes_nothing() {
    let backend = fresh_backend("streams-bad-input").await;
    let (eid, handle) = seed_and_claim(&backend).await;
    // An oversized frame.
    let error = rejected_without_writes(&backend, async {
        backend
            .append_frame(&handle, Frame::new(vec![b'x'; 65_537], FrameKind::Stdout))
            .await
    })
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::RetentionLimitExceeded,
                ..
            }
        ),
        "{error:?}"
    );
    // A summary patch that is not an object.
    let error = rejected_without_writes(&backend, async {
        backend.append_frame(&handle, summary_frame("[1]")).await
    })
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::InvalidInput,
                ..
            }
        ),
        "{error:?}"
    );
    // A handle of another backend.
    let mut foreign = handle.clone();
    foreign.backend = ff_core::backend::BackendTag::Valkey;
    let error = rejected_without_writes(&backend, async {
        backend
            .append_frame(&foreign, Frame::new(b"x".to_vec(), FrameKind::Stdout))
            .await
    })
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::HandleFromOtherBackend,
                ..
            }
        ),
        "{error:?}"
    );
    // Malformed stream cursors and a zero count.
    for (from, count) in [
        (StreamCursor::At("abc".into()), 10),
        (StreamCursor::At("1-x".into()), 10),
        (StreamCursor::At("-5".into()), 10),
        (StreamCursor::Start, 0),
    ] {
        let error = backend
            .read_stream(
                &eid,
                AttemptIndex::new(0),
                from.clone(),
                StreamCursor::End,
                count,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                EngineError::Validation {
                    kind: ValidationKind::InvalidInput,
                    ..
                }
            ),
            "{from:?}: {error:?}"
        );
    }
    // Subscription cursors of another backend, and tag filters on another key.
    for cursor in [
        stream_subscribe::StreamCursor::new(vec![0x01u8; 17]),
        stream_subscribe::StreamCursor::new(vec![0x02u8, 1]),
    ] {
        let error = backend
            .subscribe_completion(cursor, &ScannerFilter::default())
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(
                error,
                EngineError::Validation {
                    kind: ValidationKind::InvalidInput,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    let error = backend
        .subscribe_lease_history(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::new().with_instance_tag("team", "a"),
        )
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::InvalidInput,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn capabilities_report_streams_and_every_subscription() {
    let backend = fresh_backend("streams-caps").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let supports = engine.capabilities().supports;
    assert!(supports.stream_durable_summary && supports.stream_best_effort_live);
    assert!(supports.subscribe_completion && supports.subscribe_lease_history);
    assert!(supports.subscribe_instance_tags && supports.subscribe_signal_delivery);
}

/// A dropped subscription ends its task: the task holds the database open, so once it (and
/// the change watcher, which stops when nobody waits) ended, the in-memory database closes
/// with the last backend and a new backend on the same URI finds it empty.
#[tokio::test]
#[parallel(process)]
async fn a_dropped_subscription_ends_its_task() {
    dev_mode();
    let uri = memory_uri("streams-drop");
    let backend = SqliteBackend::new(&uri).await.unwrap();
    let events = backend
        .subscribe_lease_history(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await
        .unwrap();
    let (eid, _) = seed_and_claim(&backend).await;
    drop(events);
    drop(backend);
    let closed = async {
        loop {
            let reopened = SqliteBackend::new(&uri).await.unwrap();
            if count_rows(&reopened.connection_for_test(), "ff_exec_core") == 0 {
                return;
            }
            drop(reopened);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, closed)
        .await
        .unwrap_or_else(|_| panic!("the subscription task kept the database ({eid}) open"));
}

/// An append wakes only the tails of its own stream: a tail parked on one stream reads no page
/// while another stream gets twenty appends, and one page when its own stream gets one.
#[tokio::test]
#[parallel(process)]
async fn an_append_wakes_only_the_tails_of_its_stream() {
    let backend = fresh_backend("streams-wake-one").await;
    let (parked_eid, parked_handle) = seed_and_claim(&backend).await;
    let (_, busy_handle) = seed_and_claim(&backend).await;
    let tail_backend = backend.clone();
    let tail = tokio::spawn(async move {
        tail_backend
            .tail_stream(
                &parked_eid,
                AttemptIndex::new(0),
                StreamCursor::At("0-0".into()),
                3_600_000,
                10,
                TailVisibility::All,
            )
            .await
    });
    while backend.tail_pages_for_test() == 0 {
        tokio::task::yield_now().await;
    }
    // Let the tail park (its first page answered, nothing found).
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    for i in 0..20 {
        let frame = Frame::new(format!("busy-{i}").into_bytes(), FrameKind::Stdout);
        backend.append_frame(&busy_handle, frame).await.unwrap();
    }
    assert_eq!(
        backend.tail_pages_for_test(),
        1,
        "the other stream's appends woke nobody"
    );
    backend
        .append_frame(
            &parked_handle,
            Frame::new(b"mine".to_vec(), FrameKind::Stdout),
        )
        .await
        .unwrap();
    let frames = tokio::time::timeout(PATIENCE, tail)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(payload(&frames.frames[0]), "mine");
    assert_eq!(backend.tail_pages_for_test(), 2);
}
