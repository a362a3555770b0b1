//! A guest that traps or fails after writing: the caller gets an `EngineError` (never a panic),
//! every write is rolled back, and the backend keeps serving on a fresh instance.

use crate::support::*;
use ff_backend_sqlite_wasm::{OperationFailure, SqliteBackend};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use serial_test::parallel;
use std::sync::Arc;

const HOSTILE_GUEST: &str = env!("FF_HOSTILE_GUEST_WASM");

async fn hostile_backend(uri: &str) -> Arc<SqliteBackend> {
    dev_mode();
    SqliteBackend::builder(uri)
        .guest_file(HOSTILE_GUEST)
        .open()
        .await
        .expect("hostile guest loads")
}

#[tokio::test]
#[parallel(process)]
async fn a_trap_after_writes_rolls_back_and_the_next_claim_succeeds() {
    let uri = memory_uri("trap");
    let hostile = hostile_backend(&uri).await;
    let (_, eid) = seed_granted(&hostile.connection_for_test(), "worker-1");
    let before = snapshot(&hostile.connection_for_test());

    let engine: Arc<dyn EngineBackend> = hostile.clone();
    let error = engine
        .claim_execution(claim_args(eid.clone(), "panic-after-write"))
        .await
        .expect_err("trap");
    let EngineError::Transport {
        backend: "sqlite-wasm",
        source,
    } = &error
    else {
        panic!("a trap is a transport error, got {error:?}")
    };
    match source.downcast_ref::<OperationFailure>() {
        Some(OperationFailure::GuestTrapped {
            op: "claim_execution",
            detail,
            ..
        }) => {
            assert!(
                detail.contains("panicking after writing"),
                "the guest's panic message is reported: {detail}"
            );
        }
        other => panic!("expected GuestTrapped, got {other:?}"),
    }
    assert_eq!(
        before,
        snapshot(&hostile.connection_for_test()),
        "every write rolled back"
    );

    // The same backend enters a fresh instance: the hostile guest's ordinary answer comes back.
    let again = engine
        .claim_execution(claim_args(eid.clone(), "anyone"))
        .await;
    assert_execution_not_found(again.unwrap_err());

    // The real guest on the same database claims normally.
    dev_mode();
    let builtin = SqliteBackend::new(&uri).await.unwrap();
    let claimed = claimed(
        builtin
            .claim_execution(claim_args(eid.clone(), "worker-1"))
            .await
            .expect("claim after trap"),
    );
    assert_eq!(claimed.lease_epoch.0, 1);
    assert_eq!(
        exec_column(&builtin.connection_for_test(), &eid, "lifecycle_phase"),
        "active"
    );
}

#[tokio::test]
#[parallel(process)]
async fn an_error_value_after_writes_rolls_back() {
    let hostile = hostile_backend(&memory_uri("error-after-write")).await;
    let (_, eid) = seed_granted(&hostile.connection_for_test(), "worker-1");
    let error = rejected_without_writes(
        &hostile,
        hostile.claim_execution(claim_args(eid, "error-after-write")),
    )
    .await;
    let detail = invalid_input_detail(error);
    assert!(detail.contains("hostile"), "{detail}");
}

/// The call number the hostile guest's `count-calls` claim reports.
async fn call_number(backend: &SqliteBackend, eid: &ff_core::types::ExecutionId) -> String {
    let error = backend
        .claim_execution(claim_args(eid.clone(), "count-calls"))
        .await
        .unwrap_err();
    invalid_input_detail(error)
}

#[tokio::test]
#[parallel(process)]
async fn an_instance_serves_operations_until_it_traps_unless_each_gets_a_fresh_one() {
    let reused = hostile_backend(&memory_uri("reuse")).await;
    let (_, eid) = seed_granted(&reused.connection_for_test(), "worker-1");
    assert!(call_number(&reused, &eid).await.contains("call 1 "));
    assert!(
        call_number(&reused, &eid).await.contains("call 2 "),
        "memory survived"
    );
    // A trap drops the instance: the next operation starts from a fresh one.
    reused
        .claim_execution(claim_args(eid.clone(), "panic-after-write"))
        .await
        .unwrap_err();
    assert!(call_number(&reused, &eid).await.contains("call 1 "));

    dev_mode();
    let fresh = SqliteBackend::builder(memory_uri("fresh"))
        .guest_file(HOSTILE_GUEST)
        .fresh_instance_per_operation()
        .open()
        .await
        .unwrap();
    let (_, eid) = seed_granted(&fresh.connection_for_test(), "worker-1");
    for _ in 0..3 {
        assert!(
            call_number(&fresh, &eid).await.contains("call 1 "),
            "nothing survives"
        );
    }
}
