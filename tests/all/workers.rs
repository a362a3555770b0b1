//! The worker registry through the public `EngineBackend` API: registration, heartbeats,
//! marking dead, listing with stable cursors, and the one-pass expiry sweep
//! (`SqliteBackend::sweep_expired_workers`). Lanes and capabilities read back as written
//! (commas included); a lapsed registration is neither live nor listed; bad input is typed and
//! writes nothing.

use std::collections::BTreeSet;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::{
    HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, ListWorkersResult,
    MarkWorkerDeadArgs, MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::types::{LaneId, Namespace, TimestampMs, WorkerId, WorkerInstanceId};
use serial_test::parallel;

const TTL: u64 = 30_000;

fn register_args(instance: &str, worker: &str, now: i64) -> RegisterWorkerArgs {
    RegisterWorkerArgs::new(
        WorkerId::new(worker),
        WorkerInstanceId::new(instance),
        [LaneId::new("default"), LaneId::new("eu,us")]
            .into_iter()
            .collect(),
        ["gpu".to_string(), "region=eu,us".to_string()]
            .into_iter()
            .collect(),
        TTL,
        Namespace::new("ns"),
        TimestampMs::from_millis(now),
    )
}

async fn heartbeat(backend: &SqliteBackend, instance: &str, now: i64) -> HeartbeatWorkerOutcome {
    backend
        .heartbeat_worker(HeartbeatWorkerArgs::new(
            WorkerInstanceId::new(instance),
            Namespace::new("ns"),
            TimestampMs::from_millis(now),
        ))
        .await
        .expect("heartbeat")
}

fn mark_args(instance: &str, reason: &str, now: i64) -> MarkWorkerDeadArgs {
    MarkWorkerDeadArgs::new(
        WorkerInstanceId::new(instance),
        Namespace::new("ns"),
        reason.to_owned(),
        TimestampMs::from_millis(now),
    )
}

async fn list(
    backend: &SqliteBackend,
    after: Option<&str>,
    limit: Option<u32>,
) -> ListWorkersResult {
    let mut args = ListWorkersArgs::new();
    args.namespace = Some(Namespace::new("ns"));
    args.after = after.map(WorkerInstanceId::new);
    args.limit = limit;
    backend.list_workers(args).await.expect("list")
}

fn instances(page: &ListWorkersResult) -> Vec<String> {
    page.entries
        .iter()
        .map(|entry| entry.worker_instance_id.to_string())
        .collect()
}

#[tokio::test]
#[parallel(process)]
async fn a_registered_worker_is_listed_with_its_lanes_and_capabilities_as_written() {
    let backend = fresh_backend("workers-register").await;
    let now = now_ms();
    assert_eq!(
        backend
            .register_worker(register_args("wi-1", "w", now))
            .await
            .unwrap(),
        RegisterWorkerOutcome::Registered
    );
    let page = list(&backend, None, None).await;
    assert_eq!(page.cursor, None);
    let [entry] = page.entries.as_slice() else {
        panic!("one worker: {page:?}");
    };
    assert_eq!(entry.worker_id, WorkerId::new("w"));
    assert_eq!(entry.namespace, Namespace::new("ns"));
    assert_eq!(
        entry.lanes,
        [LaneId::new("default"), LaneId::new("eu,us")]
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        entry.capabilities,
        ["gpu".to_string(), "region=eu,us".to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        (
            entry.last_heartbeat_ms.0,
            entry.registered_at_ms.0,
            entry.liveness_ttl_ms
        ),
        (now, now, TTL)
    );

    // Refreshing keeps the registration time; another worker id may not take the instance.
    assert_eq!(
        backend
            .register_worker(register_args("wi-1", "w", now + 1))
            .await
            .unwrap(),
        RegisterWorkerOutcome::Refreshed
    );
    assert_eq!(
        list(&backend, None, None).await.entries[0]
            .registered_at_ms
            .0,
        now
    );
    let detail = invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.register_worker(register_args("wi-1", "w2", now + 2)),
        )
        .await,
    );
    assert_eq!(detail, "instance_id reassigned");
}

#[tokio::test]
#[parallel(process)]
async fn heartbeats_keep_a_worker_live_and_a_lapsed_worker_is_not_listed() {
    let backend = fresh_backend("workers-lapse").await;
    let now = now_ms();
    backend
        .register_worker(register_args("wi-live", "w", now))
        .await
        .unwrap();
    // Registered long ago: lapsed already, though not swept.
    backend
        .register_worker(register_args("wi-lapsed", "w", now - 2 * TTL as i64))
        .await
        .unwrap();
    assert_eq!(
        instances(&list(&backend, None, None).await),
        vec!["wi-live"]
    );
    assert_eq!(
        heartbeat(&backend, "wi-live", now + 10).await,
        HeartbeatWorkerOutcome::Refreshed {
            next_expiry_ms: TimestampMs::from_millis(now + 10 + TTL as i64)
        }
    );
    assert_eq!(
        heartbeat(&backend, "wi-lapsed", now).await,
        HeartbeatWorkerOutcome::NotRegistered
    );
    // Re-registering a lapsed instance starts a new registration.
    assert_eq!(
        backend
            .register_worker(register_args("wi-lapsed", "another", now))
            .await
            .unwrap(),
        RegisterWorkerOutcome::Registered
    );
}

#[tokio::test]
#[parallel(process)]
async fn mark_dead_removes_a_live_worker_once_and_validates_the_reason() {
    let backend = fresh_backend("workers-dead").await;
    let now = now_ms();
    backend
        .register_worker(register_args("wi-1", "w", now))
        .await
        .unwrap();
    let detail = invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.mark_worker_dead(mark_args("wi-1", &"x".repeat(257), now)),
        )
        .await,
    );
    assert_eq!(detail, "reason: exceeds 256 bytes (got 257)");
    let detail = invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.mark_worker_dead(mark_args("wi-1", "tab\there", now)),
        )
        .await,
    );
    assert_eq!(detail, "reason: must not contain control characters");
    assert_eq!(
        backend
            .mark_worker_dead(mark_args("wi-1", "drained", now + 1))
            .await
            .unwrap(),
        MarkWorkerDeadOutcome::Marked
    );
    assert!(list(&backend, None, None).await.entries.is_empty());
    assert_eq!(
        backend
            .mark_worker_dead(mark_args("wi-1", "drained", now + 2))
            .await
            .unwrap(),
        MarkWorkerDeadOutcome::NotRegistered
    );
    assert_eq!(
        heartbeat(&backend, "wi-1", now + 3).await,
        HeartbeatWorkerOutcome::NotRegistered
    );
    let reason: String = backend
        .connection_for_test()
        .query_row(
            "SELECT reason FROM ff_worker_registry_event WHERE event_kind = 'marked_dead'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(reason, "drained");
}

#[tokio::test]
#[parallel(process)]
async fn listing_pages_with_a_cursor_only_while_more_follow() {
    let backend = fresh_backend("workers-pages").await;
    let now = now_ms();
    for instance in ["wi-c", "wi-a", "wi-e", "wi-b", "wi-d"] {
        backend
            .register_worker(register_args(instance, "w", now))
            .await
            .unwrap();
    }
    let mut other = register_args("wi-0", "w", now);
    other.namespace = Namespace::new("other");
    backend.register_worker(other).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = list(&backend, cursor.as_deref(), Some(2)).await;
        seen.extend(instances(&page));
        match page.cursor {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec!["wi-a", "wi-b", "wi-c", "wi-d", "wi-e"]);
    // An exactly full last page has no cursor.
    let page = list(&backend, Some("wi-c"), Some(2)).await;
    assert_eq!(
        (instances(&page), page.cursor),
        (vec!["wi-d".into(), "wi-e".into()], None)
    );
    assert!(list(&backend, None, Some(0)).await.entries.is_empty());

    let error = backend
        .list_workers(ListWorkersArgs::new())
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Unavailable { op } if op.starts_with("list_workers")));
}

#[tokio::test]
#[parallel(process)]
async fn the_sweep_deletes_lapsed_registrations_in_one_pass() {
    let backend = fresh_backend("workers-sweep").await;
    let now = now_ms();
    backend
        .register_worker(register_args("wi-old", "w", now - 2 * TTL as i64))
        .await
        .unwrap();
    backend
        .register_worker(register_args("wi-new", "w", now))
        .await
        .unwrap();
    assert_eq!(
        backend
            .sweep_expired_workers(TimestampMs::from_millis(now))
            .await
            .unwrap(),
        1
    );
    let conn = backend.connection_for_test();
    let left: String = conn
        .query_row(
            "SELECT group_concat(worker_instance_id) FROM ff_worker_registry",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(left, "wi-new");
    let swept: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ff_worker_registry_event WHERE event_kind = 'ttl_swept' AND worker_instance_id = 'wi-old'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(swept, 1);
    drop(conn);
    assert_eq!(
        backend
            .sweep_expired_workers(TimestampMs::from_millis(now))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
#[parallel(process)]
async fn registration_bad_input_is_typed_and_writes_nothing() {
    let backend = fresh_backend("workers-bad").await;
    let now = now_ms();
    let detail = invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.register_worker(register_args("wi-1", "", now)),
        )
        .await,
    );
    assert_eq!(detail, "worker_id must not be empty");
    let detail = invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.register_worker(register_args("", "w", now)),
        )
        .await,
    );
    assert_eq!(detail, "worker_instance_id must not be empty");
    for ttl in [0, u64::MAX] {
        let mut args = register_args("wi-1", "w", now);
        args.liveness_ttl_ms = ttl;
        let detail = invalid_input_detail(
            rejected_without_writes(&backend, backend.register_worker(args)).await,
        );
        assert!(detail.contains("liveness_ttl_ms"), "{detail}");
    }
}
