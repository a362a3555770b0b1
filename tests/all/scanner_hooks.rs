//! The scanner hooks through the public `EngineBackend` API: `expire_execution` (Valkey's
//! "expire to terminal" semantics, due-ness checked in the transaction), `trim_retention`
//! (Postgres' purge of terminal executions past retention) and `reconcile_execution_index`
//! (the lane registry, the one derived index SQLite does not maintain itself); the one-pass
//! entry points `expiry_pass` / `retention_pass` and the opt-in timers that run them.

use std::time::Duration;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::ScannerFilter;
use ff_core::engine_backend::{EngineBackend, ExpirePhase};
use ff_core::engine_error::EngineError;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::state::PublicState;
use ff_core::types::{LaneId, Namespace, TimestampMs};
use serial_test::parallel;

fn budget_partition() -> Partition {
    Partition {
        family: PartitionFamily::Budget,
        index: 0,
    }
}

#[tokio::test]
#[parallel(process)]
async fn a_passed_deadline_expires_a_leased_execution() {
    let backend = fresh_backend("hooks-expire").await;
    let execution_id = new_execution_id();
    let now = now_ms();
    let mut args = create_args(execution_id.clone(), "default", now);
    args.execution_deadline_at = Some(TimestampMs::from_millis(now + 60_000));
    backend.create_execution(args).await.unwrap();
    let partition = partition_of(&execution_id);
    // Not due: nothing happens.
    let before = snapshot(&backend.connection_for_test());
    backend
        .expire_execution(
            partition,
            &execution_id,
            ExpirePhase::ExecutionDeadline,
            TimestampMs::from_millis(now),
        )
        .await
        .unwrap();
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    backend
        .expire_execution(
            partition,
            &execution_id,
            ExpirePhase::ExecutionDeadline,
            TimestampMs::from_millis(now + 60_000),
        )
        .await
        .unwrap();
    {
        let conn = backend.connection_for_test();
        assert_eq!(exec_column(&conn, &execution_id, "public_state"), "expired");
        assert_eq!(
            exec_column(&conn, &execution_id, "lifecycle_phase"),
            "terminal"
        );
        assert_eq!(completion_events(&conn, &execution_id).len(), 1);
    }
    let state = backend
        .read_execution_state(&execution_id)
        .await
        .unwrap()
        .expect("state");
    assert_eq!(state, PublicState::Expired);
}

#[tokio::test]
#[parallel(process)]
async fn expire_execution_bad_partition_is_invalid_input_and_missing_is_nothing() {
    let backend = fresh_backend("hooks-expire-bad").await;
    let execution_id = new_execution_id();
    let now = TimestampMs::from_millis(now_ms());
    backend
        .expire_execution(
            partition_of(&execution_id),
            &execution_id,
            ExpirePhase::AttemptTimeout,
            now,
        )
        .await
        .expect("a missing execution is nothing to do");
    invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.expire_execution(
                budget_partition(),
                &execution_id,
                ExpirePhase::ExecutionDeadline,
                now,
            ),
        )
        .await,
    );
}

#[tokio::test]
#[parallel(process)]
async fn trim_retention_purges_terminal_executions_past_retention() {
    let (backend, finished, claim) = created_leased_backend("hooks-trim").await;
    backend
        .complete_execution(complete_args(&finished, Some(fence_of(&claim))))
        .await
        .unwrap();
    let running = new_execution_id();
    backend
        .create_execution(create_args(running.clone(), "default", now_ms()))
        .await
        .unwrap();
    let partition = partition_of(&finished);
    let lane = LaneId::new("default");
    let later = TimestampMs::from_millis(now_ms() + 120_000);
    let mut filter = ScannerFilter::default();
    filter.namespace = Some(Namespace::new("someone-else"));
    let trim = |retention_ms: u64, filter: ScannerFilter| {
        let backend = backend.clone();
        let lane = lane.clone();
        async move {
            backend
                .trim_retention(partition, &lane, retention_ms, later, 100, &filter)
                .await
        }
    };
    assert_eq!(trim(600_000, ScannerFilter::default()).await.unwrap(), 0);
    assert_eq!(trim(60_000, filter).await.unwrap(), 0);
    assert_eq!(trim(60_000, ScannerFilter::default()).await.unwrap(), 1);
    {
        let conn = backend.connection_for_test();
        assert_eq!(count_rows(&conn, "ff_exec_core"), 1);
        assert_eq!(count_rows(&conn, "ff_attempt"), 0);
        assert_eq!(count_rows(&conn, "ff_lease_event"), 0);
        assert_eq!(count_rows(&conn, "ff_completion_event"), 0);
    }
    assert!(
        backend
            .read_execution_state(&finished)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend
            .read_execution_state(&running)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
#[parallel(process)]
async fn trim_retention_bad_input_is_invalid_input_with_nothing_written() {
    let (backend, execution_id, _) = created_leased_backend("hooks-trim-bad").await;
    let later = TimestampMs::from_millis(now_ms() + 120_000);
    let mut bad_tag = ScannerFilter::default();
    bad_tag.instance_tag = Some(("Not A Key".into(), "v".into()));
    for (partition, filter) in [
        (budget_partition(), ScannerFilter::default()),
        (partition_of(&execution_id), bad_tag),
    ] {
        invalid_input_detail(
            rejected_without_writes(
                &backend,
                backend.trim_retention(partition, &LaneId::new("default"), 0, later, 10, &filter),
            )
            .await,
        );
    }
}

#[tokio::test]
#[parallel(process)]
async fn reconcile_execution_index_re_registers_a_lost_lane() {
    let backend = fresh_backend("hooks-reconcile").await;
    let execution_id = new_execution_id();
    backend
        .create_execution(create_args(execution_id.clone(), "reports", now_ms()))
        .await
        .unwrap();
    backend
        .connection_for_test()
        .execute("DELETE FROM ff_lane_registry", [])
        .unwrap();
    assert!(backend.list_lanes(None, 10).await.unwrap().lanes.is_empty());
    let lanes = [LaneId::new("reports"), LaneId::new("idle")];
    let partition = partition_of(&execution_id);
    let counts = backend
        .reconcile_execution_index(partition, &lanes, &ScannerFilter::default())
        .await
        .unwrap();
    assert_eq!((counts.processed, counts.errors), (1, 0));
    assert_eq!(
        backend.list_lanes(None, 10).await.unwrap().lanes,
        vec![LaneId::new("reports")]
    );
    let again = backend
        .reconcile_execution_index(partition, &lanes, &ScannerFilter::default())
        .await
        .unwrap();
    assert_eq!(again.processed, 0);
    let err = rejected_without_writes(
        &backend,
        backend.reconcile_execution_index(budget_partition(), &lanes, &ScannerFilter::default()),
    )
    .await;
    assert!(matches!(err, EngineError::Validation { .. }), "{err:?}");
}

// ── The opt-in timers and their one-pass entry points ──────────────────────────────────────────

/// A backend whose execution `create_args` made has the deadline `deadline` (ms).
async fn execution_with_deadline(
    backend: &SqliteBackend,
    deadline: i64,
) -> ff_core::types::ExecutionId {
    let execution_id = new_execution_id();
    let mut args = create_args(execution_id.clone(), "default", now_ms());
    args.execution_deadline_at = Some(TimestampMs::from_millis(deadline));
    backend.create_execution(args).await.unwrap();
    execution_id
}

#[tokio::test]
#[parallel(process)]
async fn the_expiry_and_retention_passes_act_on_what_is_due_at_their_now() {
    let backend = fresh_backend("hooks-passes").await;
    let now = now_ms();
    let soon = execution_with_deadline(&backend, now + 1_000).await;
    let later = execution_with_deadline(&backend, now + 60_000).await;
    let counts = backend
        .expiry_pass(TimestampMs::from_millis(now + 1_000))
        .await
        .unwrap();
    assert_eq!((counts.processed, counts.errors), (1, 0));
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &soon, "public_state"), "expired");
    assert_eq!(exec_column(&conn, &later, "public_state"), "waiting");
    drop(conn);
    // Retention: the expired one finished at now + 1 s.
    let retention = Duration::from_secs(10);
    let kept = backend
        .retention_pass(TimestampMs::from_millis(now + 10_999), retention)
        .await
        .unwrap();
    assert_eq!(kept.processed, 0);
    let purged = backend
        .retention_pass(TimestampMs::from_millis(now + 11_000), retention)
        .await
        .unwrap();
    assert_eq!((purged.processed, purged.errors), (1, 0));
    assert!(backend.read_execution_state(&soon).await.unwrap().is_none());
    assert!(
        backend
            .read_execution_state(&later)
            .await
            .unwrap()
            .is_some()
    );
}

/// The timers are off unless asked for; asked for, the expiry timer expires a due execution on
/// its own, and `shutdown_prepare` stops every timer. The loop only waits for the expiry
/// (bounded generously so a broken timer fails the test instead of hanging it).
#[tokio::test]
#[parallel(process)]
async fn the_expiry_timer_runs_until_shutdown_prepare() {
    dev_mode();
    let backend = SqliteBackend::builder(memory_uri("hooks-timer"))
        .expiry_interval(Duration::from_millis(20))
        .worker_sweep_interval(Duration::from_millis(20))
        .retention(Duration::from_secs(3_600), Duration::from_secs(3_600))
        .open()
        .await
        .expect("construct");
    let due = execution_with_deadline(&backend, now_ms() - 1).await;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while backend.read_execution_state(&due).await.unwrap() != Some(PublicState::Expired) {
        assert!(
            tokio::time::Instant::now() < give_up,
            "the expiry timer never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    backend
        .shutdown_prepare(Duration::from_secs(2))
        .await
        .unwrap();
    // Stopped: an execution due now stays as it is.
    let after = execution_with_deadline(&backend, now_ms() - 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        backend.read_execution_state(&after).await.unwrap(),
        Some(PublicState::Waiting)
    );
}
