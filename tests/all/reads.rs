//! The read operations: missing executions, upstream's literals, corruption, and `ping`.

use crate::support::*;
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::state::{AttemptState, LifecyclePhase, OwnershipState, PublicState};
use ff_core::types::AttemptIndex;
use serial_test::parallel;
use std::sync::Arc;

#[tokio::test]
#[parallel(process)]
async fn a_missing_execution_reads_as_none_or_invalid_input_as_ff_core_documents() {
    let backend = fresh_backend("reads-missing").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    assert!(engine.describe_execution(&eid).await.unwrap().is_none());
    assert!(engine.read_execution_state(&eid).await.unwrap().is_none());
    assert!(engine.read_execution_info(&eid).await.unwrap().is_none());
    assert!(engine.get_execution_result(&eid).await.unwrap().is_none());
    for result in [
        engine.read_execution_context(&eid).await.map(|_| ()),
        engine.read_current_attempt_index(&eid).await.map(|_| ()),
        engine.read_total_attempt_count(&eid).await.map(|_| ()),
    ] {
        let detail = invalid_input_detail(result.expect_err("InvalidInput"));
        assert!(detail.contains("execution not found"), "{detail}");
    }
}

#[tokio::test]
#[parallel(process)]
async fn upstream_seeded_rows_read_with_normalized_literals() {
    let backend = fresh_backend("reads-upstream").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let (_, eid) = seed_runnable_as(
        &backend.connection_for_test(),
        "lifecycle_phase = 'active', ownership_state = 'leased', \
         eligibility_state = 'not_applicable', public_state = 'running', attempt_state = 'running'",
    );
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Active)
    );
    let info = engine.read_execution_info(&eid).await.unwrap().unwrap();
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Active);
    assert_eq!(info.state_vector.ownership_state, OwnershipState::Leased);
    assert_eq!(
        info.state_vector.attempt_state,
        AttemptState::RunningAttempt
    );
    assert_eq!(info.current_attempt_index, 0);
    assert_eq!(
        engine.read_current_attempt_index(&eid).await.unwrap(),
        AttemptIndex::new(0)
    );
}

#[tokio::test]
#[parallel(process)]
async fn an_unknown_state_literal_is_reported_as_corruption() {
    let backend = fresh_backend("reads-corrupt").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let (_, eid) = seed_runnable_as(&backend.connection_for_test(), "public_state = 'bogus'");
    match engine.read_execution_state(&eid).await {
        Err(EngineError::Validation {
            kind: ValidationKind::Corruption,
            detail,
        }) => {
            assert!(
                detail.contains("public_state") && detail.contains("bogus"),
                "{detail}"
            )
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn describe_reports_tags_namespace_and_no_lease_before_a_claim() {
    let backend = fresh_backend("reads-describe").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();
    engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    let snapshot = engine.describe_execution(&eid).await.unwrap().unwrap();
    assert_eq!(snapshot.namespace.as_str(), "ns1");
    assert_eq!(snapshot.public_state, PublicState::Waiting);
    assert_eq!(snapshot.created_at.0, now);
    assert_eq!(snapshot.last_mutation_at.0, now);
    assert!(snapshot.current_lease.is_none() && snapshot.current_attempt.is_none());
    assert_eq!(
        snapshot.tags.get("cairn.instance_id").map(String::as_str),
        Some("inst-1")
    );
    assert_eq!(snapshot.total_attempt_count, 0);
    let context = engine.read_execution_context(&eid).await.unwrap();
    assert_eq!(
        (
            context.input_payload.as_slice(),
            context.execution_kind.as_str()
        ),
        (&b"input"[..], "kind1")
    );
}

#[tokio::test]
#[parallel(process)]
async fn ping_answers_and_scanner_hooks_check_the_partition() {
    let backend = fresh_backend("reads-ping").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    engine.ping().await.unwrap();
    let eid = new_execution_id();
    let wrong = Partition {
        family: PartitionFamily::Flow,
        index: 7,
    };
    invalid_input_detail(
        engine
            .mark_lease_expired_if_due(wrong, &eid)
            .await
            .expect_err("InvalidInput"),
    );
}
