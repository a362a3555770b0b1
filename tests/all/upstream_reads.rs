//! Upstream's `wave9_reads.rs` (`read_execution_state`, `read_execution_info`,
//! `get_execution_result`), every test kept by name with only the set-up changed: sqlx → our
//! backend and `connection_for_test()`, executions created and claimed through
//! `support::create_and_claim_on_own_lane`.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::CancelExecutionArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::state::{LifecyclePhase, PublicState, TerminalOutcome};
use ff_core::types::{CancelSource, ExecutionId, LaneId, TimestampMs};
use serial_test::parallel;
use std::sync::Arc;
use uuid::Uuid;

/// A fresh backend with one execution leased by `w1` through the lane scanner.
async fn claimed(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId) {
    let backend = fresh_backend(prefix).await;
    let (eid, _, _) = create_and_claim_on_own_lane(&backend, "w1").await;
    (backend, eid)
}

// ── read_execution_state ────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn read_execution_state_missing_returns_none() {
    let backend = fresh_backend("w9reads-state-missing").await;
    let got = backend
        .read_execution_state(&new_execution_id())
        .await
        .expect("ok");
    assert!(got.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn read_execution_state_happy_path_submitted() {
    let backend = fresh_backend("w9reads-state-created").await;
    let eid = new_execution_id();
    let mut args = upstream_create_args(&eid, &LaneId::new(format!("lane-{}", Uuid::new_v4())));
    args.input_payload = Vec::new();
    backend.create_execution(args).await.expect("create");
    let got = backend
        .read_execution_state(&eid)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(got, PublicState::Waiting);
}

/// The storage literal `running` reads as `Active`.
#[tokio::test]
#[parallel(process)]
async fn read_execution_state_normalizes_running_to_active() {
    let (backend, eid) = claimed("w9reads-state-running").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "public_state = 'running'",
    );
    let got = backend
        .read_execution_state(&eid)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(got, PublicState::Active);
}

// ── read_execution_info ─────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn read_execution_info_missing_returns_none() {
    let backend = fresh_backend("w9reads-info-missing").await;
    assert!(
        backend
            .read_execution_info(&new_execution_id())
            .await
            .expect("ok")
            .is_none()
    );
}

#[tokio::test]
#[parallel(process)]
async fn read_execution_info_happy_path_post_claim() {
    let (backend, eid) = claimed("w9reads-info-claimed").await;
    let info = backend
        .read_execution_info(&eid)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(info.execution_id, eid);
    assert_eq!(info.namespace, "default");
    assert_eq!(info.execution_kind, "op");
    assert_eq!(info.public_state, PublicState::Active);
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Active);
    assert_eq!(
        info.state_vector.terminal_outcome,
        TerminalOutcome::None,
        "active row is not terminal"
    );
    assert!(
        info.started_at.is_some(),
        "claim set started_at on attempt 0"
    );
    assert!(info.completed_at.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn read_execution_info_terminal_cancelled_derives_outcome() {
    let (backend, eid) = claimed("w9reads-info-cancelled").await;
    backend
        .cancel_execution(CancelExecutionArgs {
            execution_id: eid.clone(),
            reason: "test".into(),
            source: CancelSource::OperatorOverride,
            lease_id: None,
            lease_epoch: None,
            attempt_id: None,
            now: TimestampMs::from_millis(now_ms()),
        })
        .await
        .expect("cancel");
    let info = backend
        .read_execution_info(&eid)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Terminal);
    assert_eq!(info.public_state, PublicState::Cancelled);
    assert_eq!(
        info.state_vector.terminal_outcome,
        TerminalOutcome::Cancelled
    );
    assert!(
        info.completed_at.is_some(),
        "terminal_at_ms populated by cancel"
    );
}

// ── get_execution_result ────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn get_execution_result_missing_returns_none() {
    let backend = fresh_backend("w9reads-result-missing").await;
    let got = backend
        .get_execution_result(&new_execution_id())
        .await
        .expect("ok");
    assert!(got.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn get_execution_result_active_returns_none() {
    let (backend, eid) = claimed("w9reads-result-active").await;
    let got = backend.get_execution_result(&eid).await.expect("ok");
    assert!(got.is_none(), "active exec has no result payload");
}

/// The `result` column seeded by hand, as upstream does.
#[tokio::test]
#[parallel(process)]
async fn get_execution_result_terminal_returns_payload() {
    let (backend, eid) = claimed("w9reads-result-terminal").await;
    let payload = b"the-result-bytes".to_vec();
    backend
        .connection_for_test()
        .execute(
            "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', public_state = 'completed', \
             result = ?1 WHERE partition_key = 0 AND execution_id = ?2",
            rusqlite::params![payload, blob(uuid_of(&eid))],
        )
        .unwrap();
    let got = backend
        .get_execution_result(&eid)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(got, payload);
}
