//! The signal-delivery and instance-tag subscriptions: upstream's signal tests of
//! `subscribe.rs` (set-up changed only: our backend, executions created and claimed through
//! the API), then this backend's guarantees: every delivery exactly once in commit order with
//! its real effect, nothing from a delivery that failed, resuming from a cursor after a
//! restart, the end at `shutdown_prepare`, typed bad input; and the instance-tag events
//! `set_execution_tag` produces. (Another process's deliveries: `processes.rs`.)

use std::time::Duration;

use crate::support::*;
use crate::suspension::{
    KID, policy, secret_hex, seeded_backend, signal_args, suspend_args_on, suspend_args_single,
};
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, Handle, ScannerFilter};
use ff_core::contracts::{DeliverSignalResult, SeedWaitpointHmacSecretArgs, SignalMatcher};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::stream_events::{InstanceTagEvent, SignalDeliveryEffect, SignalDeliveryEvent};
use ff_core::stream_subscribe::{StreamCursor, encode_postgres_event_cursor};
use ff_core::types::{ExecutionId, LaneId, SignalId, WaitpointId};
use serial_test::parallel;
use tokio_stream::StreamExt;
use uuid::Uuid;

/// A safety net against a hung test (not an assertion on timing).
const PATIENCE: Duration = Duration::from_secs(20);

async fn next<T>(stream: &mut (impl tokio_stream::Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event within the patience window")
        .expect("the stream is open")
}

/// Create an execution on a lane of its own (so the lane scanner takes exactly it, not a
/// resumable execution of an earlier call), tagged `cairn.instance_id = instance` or untagged,
/// and claim it.
async fn create_and_claim_alone(
    backend: &SqliteBackend,
    instance: Option<&str>,
) -> (ExecutionId, Handle) {
    let lane = format!("lane-{}", Uuid::new_v4());
    let execution_id = new_execution_id();
    let mut args = create_args(execution_id.clone(), &lane, now_ms());
    args.tags.clear();
    if let Some(instance) = instance {
        args.tags
            .insert("cairn.instance_id".to_owned(), instance.to_owned());
    }
    backend.create_execution(args).await.expect("create");
    let handle = backend
        .claim(&LaneId::new(lane), &CapabilitySet::default(), policy("w1"))
        .await
        .expect("claim call")
        .expect("a handle");
    (execution_id, handle)
}

/// One delivered signal.
struct Delivered {
    execution_id: ExecutionId,
    signal_id: SignalId,
    waitpoint_id: WaitpointId,
}

/// Deliver a signal named `name` to the waitpoint; returns its id.
async fn deliver(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    waitpoint_id: &WaitpointId,
    token: &str,
    name: &str,
) -> SignalId {
    let args = signal_args(execution_id, waitpoint_id, token, name);
    let signal_id = args.signal_id.clone();
    let result = backend.deliver_signal(args).await.expect("deliver");
    assert!(matches!(result, DeliverSignalResult::Accepted { .. }));
    signal_id
}

/// Upstream's `suspend_and_deliver`: claim a fresh execution, suspend it on one waitpoint
/// (any signal satisfies it) and deliver one signal.
async fn suspend_and_deliver(backend: &SqliteBackend, instance: Option<&str>) -> Delivered {
    let (execution_id, handle) = create_and_claim_alone(backend, instance).await;
    let outcome = backend
        .suspend(&handle, suspend_args_single("wpk:sd"))
        .await
        .expect("suspend");
    let details = outcome.details().clone();
    let signal_id = deliver(
        backend,
        &execution_id,
        &details.waitpoint_id,
        details.waitpoint_token.as_str(),
        "ready",
    )
    .await;
    Delivered {
        execution_id,
        signal_id,
        waitpoint_id: details.waitpoint_id,
    }
}

fn is_invalid_input(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Validation {
            kind: ValidationKind::InvalidInput,
            ..
        }
    )
}

// ── subscribe.rs (signal delivery) ──────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn subscribe_signal_delivery_tail_happy_path() {
    let backend = seeded_backend().await;
    let mut events = backend
        .subscribe_signal_delivery(StreamCursor::empty(), &ScannerFilter::NOOP)
        .await
        .expect("subscribe");
    let delivered = suspend_and_deliver(&backend, None).await;
    let event: SignalDeliveryEvent = next(&mut events).await.unwrap();
    assert_eq!(event.execution_id, delivered.execution_id);
    assert_eq!(event.signal_id, delivered.signal_id);
    assert_eq!(event.waitpoint_id, Some(delivered.waitpoint_id));
    assert_eq!(event.source_identity.as_deref(), Some("op-1"));
    assert_eq!(event.effect, SignalDeliveryEffect::Satisfied);
    assert!(event.at.0 > 0);
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_signal_delivery_cursor_resume() {
    let backend = seeded_backend().await;
    suspend_and_deliver(&backend, None).await; // before subscribing: not seen from "now"
    let mut events = backend
        .subscribe_signal_delivery(StreamCursor::empty(), &ScannerFilter::NOOP)
        .await
        .expect("subscribe 1");
    let first = suspend_and_deliver(&backend, None).await;
    let seen = next(&mut events).await.unwrap();
    assert_eq!(seen.signal_id, first.signal_id);
    drop(events);
    let second = suspend_and_deliver(&backend, None).await;
    let mut resumed = backend
        .subscribe_signal_delivery(seen.cursor.clone(), &ScannerFilter::NOOP)
        .await
        .expect("subscribe 2");
    assert_eq!(
        next(&mut resumed).await.unwrap().signal_id,
        second.signal_id,
        "resuming yields only the second signal"
    );
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_signal_delivery_filter_by_instance_tag() {
    let backend = seeded_backend().await;
    let filter = ScannerFilter::new().with_instance_tag("cairn.instance_id", "i-42");
    let mut events = backend
        .subscribe_signal_delivery(StreamCursor::empty(), &filter)
        .await
        .expect("subscribe");
    suspend_and_deliver(&backend, None).await; // untagged: dropped
    suspend_and_deliver(&backend, Some("i-7")).await; // another instance: dropped
    let tagged = suspend_and_deliver(&backend, Some("i-42")).await;
    assert_eq!(
        next(&mut events).await.unwrap().execution_id,
        tagged.execution_id
    );
}

// ── This backend's guarantees ───────────────────────────────────────────────────────────────

/// Every accepted delivery arrives once, in commit order, with the effect `deliver_signal`
/// answered (upstream reports every delivery as satisfied); a delivery that failed wrote no
/// row and arrives never; resuming after the last event yields exactly the next delivery.
#[tokio::test]
#[parallel(process)]
async fn signal_events_arrive_exactly_once_in_commit_order_with_their_effect() {
    let backend = seeded_backend().await;
    let mut events = backend
        .subscribe_signal_delivery(StreamCursor::empty(), &ScannerFilter::NOOP)
        .await
        .expect("subscribe");
    let mut expected = Vec::new();
    for _ in 0..8 {
        let (execution_id, handle) = create_and_claim_alone(&backend, None).await;
        let outcome = backend
            .suspend(
                &handle,
                suspend_args_on("wpk:named", SignalMatcher::ByName("ready".into())),
            )
            .await
            .expect("suspend");
        let details = outcome.details().clone();
        let token = details.waitpoint_token.as_str();
        let appended = deliver(
            &backend,
            &execution_id,
            &details.waitpoint_id,
            token,
            "other",
        )
        .await;
        expected.push((
            appended,
            SignalDeliveryEffect::Other("appended_to_waitpoint".into()),
        ));
        // A forged token: refused, nothing written, no event.
        let mut forged = signal_args(&execution_id, &details.waitpoint_id, token, "ready");
        forged.waitpoint_token = format!("{KID}:{}", "00".repeat(32)).into();
        rejected_without_writes(&backend, backend.deliver_signal(forged)).await;
        let satisfied = deliver(
            &backend,
            &execution_id,
            &details.waitpoint_id,
            token,
            "ready",
        )
        .await;
        expected.push((satisfied, SignalDeliveryEffect::Satisfied));
    }
    let mut previous: Option<Vec<u8>> = None;
    let mut last_cursor = StreamCursor::empty();
    for (signal_id, effect) in expected {
        let event = next(&mut events).await.unwrap();
        assert_eq!((event.signal_id, event.effect), (signal_id, effect));
        let cursor = event.cursor.as_bytes().to_vec();
        assert!(
            previous.as_ref().is_none_or(|p| *p < cursor),
            "cursors grow"
        );
        previous = Some(cursor);
        last_cursor = event.cursor;
    }
    drop(events);
    let after = suspend_and_deliver(&backend, None).await;
    let mut resumed = backend
        .subscribe_signal_delivery(last_cursor, &ScannerFilter::NOOP)
        .await
        .unwrap();
    assert_eq!(
        next(&mut resumed).await.unwrap().signal_id,
        after.signal_id,
        "nothing else was delivered in between"
    );
}

#[tokio::test]
#[parallel(process)]
async fn signal_subscriptions_resume_from_a_cursor_after_a_backend_restart() {
    dev_mode();
    let dir = ScratchDir::new("signal-events-restart");
    let path = dir.file("db.sqlite");
    let cursor;
    let after;
    {
        let backend = SqliteBackend::new(&path).await.unwrap();
        backend
            .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret_hex()))
            .await
            .unwrap();
        let mut events = backend
            .subscribe_signal_delivery(encode_postgres_event_cursor(0), &ScannerFilter::NOOP)
            .await
            .unwrap();
        suspend_and_deliver(&backend, None).await;
        cursor = next(&mut events).await.unwrap().cursor;
        after = suspend_and_deliver(&backend, None).await;
    }
    let backend = SqliteBackend::new(&path).await.unwrap();
    let mut events = backend
        .subscribe_signal_delivery(cursor, &ScannerFilter::NOOP)
        .await
        .unwrap();
    assert_eq!(next(&mut events).await.unwrap().signal_id, after.signal_id);
}

#[tokio::test]
#[parallel(process)]
async fn shutdown_prepare_ends_signal_subscriptions_with_their_cursor() {
    let backend = seeded_backend().await;
    let mut events = backend
        .subscribe_signal_delivery(StreamCursor::empty(), &ScannerFilter::NOOP)
        .await
        .unwrap();
    suspend_and_deliver(&backend, None).await;
    let seen = next(&mut events).await.unwrap();
    backend
        .shutdown_prepare(Duration::from_secs(1))
        .await
        .unwrap();
    match next(&mut events).await {
        Err(EngineError::StreamDisconnected { cursor }) => assert_eq!(cursor, seen.cursor),
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
async fn bad_subscription_input_is_typed_and_writes_nothing() {
    let backend = seeded_backend().await;
    suspend_and_deliver(&backend, None).await;
    for cursor in [
        StreamCursor::new(vec![0x01u8; 17]),
        StreamCursor::new(vec![0x02u8, 1]),
        StreamCursor::new(b"not a cursor".to_vec()),
    ] {
        let error = rejected_without_writes(&backend, async {
            backend
                .subscribe_signal_delivery(cursor.clone(), &ScannerFilter::NOOP)
                .await
                .map(drop)
        })
        .await;
        assert!(is_invalid_input(&error), "{cursor:?}: {error:?}");
        let error = rejected_without_writes(&backend, async {
            backend
                .subscribe_instance_tags(cursor.clone())
                .await
                .map(drop)
        })
        .await;
        assert!(is_invalid_input(&error), "{cursor:?}: {error:?}");
    }
    let error = rejected_without_writes(&backend, async {
        backend
            .subscribe_signal_delivery(
                StreamCursor::empty(),
                &ScannerFilter::new().with_instance_tag("team", "a"),
            )
            .await
            .map(drop)
    })
    .await;
    assert!(is_invalid_input(&error), "{error:?}");
}

// ── Instance tags ───────────────────────────────────────────────────────────────────────────

/// `set_execution_tag` produces the events: `Attached` `<key>=<value>`, preceded by `Cleared`
/// of the old pair when a value is replaced; setting the same value again produces nothing
/// (seen by resuming after the last event: the next event is a later change).
#[tokio::test]
#[parallel(process)]
async fn instance_tag_events_follow_set_execution_tag() {
    let backend = fresh_backend("instance-tags").await;
    let execution_id = new_execution_id();
    backend
        .create_execution(create_args(execution_id.clone(), "tags", now_ms()))
        .await
        .unwrap();
    let mut events = backend
        .subscribe_instance_tags(StreamCursor::empty())
        .await
        .unwrap();
    // Creation tags (`cairn.instance_id = inst-1`) are part of the creation, not events.
    backend
        .set_execution_tag(&execution_id, "cairn.instance_id", "inst-2")
        .await
        .unwrap();
    backend
        .set_execution_tag(&execution_id, "cairn.instance_id", "inst-2")
        .await
        .unwrap();
    backend
        .set_execution_tag(&execution_id, "cairn.team", "blue")
        .await
        .unwrap();
    let describe = |event: &InstanceTagEvent| match event {
        InstanceTagEvent::Attached {
            execution_id: id,
            tag,
            ..
        } => {
            assert_eq!(*id, execution_id);
            format!("attached {tag}")
        }
        InstanceTagEvent::Cleared {
            execution_id: id,
            tag,
            ..
        } => {
            assert_eq!(*id, execution_id);
            format!("cleared {tag}")
        }
        other => panic!("unexpected {other:?}"),
    };
    let mut seen = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let event = next(&mut events).await.unwrap();
        seen.push(describe(&event));
        last = Some(event);
    }
    assert_eq!(
        seen,
        [
            "cleared cairn.instance_id=inst-1",
            "attached cairn.instance_id=inst-2",
            "attached cairn.team=blue"
        ]
    );
    let cursor = match last.unwrap() {
        InstanceTagEvent::Attached { cursor, .. } | InstanceTagEvent::Cleared { cursor, .. } => {
            cursor
        }
        other => panic!("unexpected {other:?}"),
    };
    drop(events);
    backend
        .set_execution_tag(&execution_id, "cairn.team", "red")
        .await
        .unwrap();
    let mut resumed = backend.subscribe_instance_tags(cursor).await.unwrap();
    assert_eq!(
        describe(&next(&mut resumed).await.unwrap()),
        "cleared cairn.team=blue"
    );
    // A tag write that fails writes no event.
    let error = rejected_without_writes(
        &backend,
        backend.set_execution_tag(&new_execution_id(), "cairn.team", "x"),
    )
    .await;
    assert!(matches!(error, EngineError::NotFound { .. }), "{error:?}");
}
