//! Semantics a hostile review found broken (issue 14, items 10, 12, 13 and 14), each through
//! the public `EngineBackend` API: a marked-expired lease cannot complete, a claim grant
//! reserves its execution from the lane scanner and no claim leaves grants behind, resume
//! grants of finished executions are `Ok(None)`, interrupted attempts redirect to
//! `claim_resumed_execution`, retry policies' `retryable_categories` are honoured and
//! `create_execution`'s idempotency key deduplicates resubmissions.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, ResumeToken};
use ff_core::contracts::{
    ClaimResumedExecutionArgs, ClaimResumedExecutionResult, CreateExecutionResult,
    FailExecutionResult, ResumeGrant, RevokeLeaseArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, StateKind};
use ff_core::handle_codec;
use ff_core::partition::PartitionKey;
use ff_core::types::{
    AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseId, Namespace, TimestampMs, WorkerId,
    WorkerInstanceId,
};
use serial_test::parallel;

/// One lane-scanner claim on lane `default` by `worker`; the claimed execution's id.
async fn scanner_claim(backend: &SqliteBackend, worker: &str) -> Option<ExecutionId> {
    let handle = backend
        .claim(
            &LaneId::new("default"),
            &CapabilitySet::default(),
            scanner_policy(worker),
        )
        .await
        .unwrap()?;
    Some(
        handle_codec::decode(&handle.opaque)
            .expect("our handle decodes")
            .payload
            .execution_id,
    )
}

// ── 10: a lease marked expired cannot complete; an operator can ─────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_holder_cannot_complete_after_its_lease_was_marked_expired_but_an_operator_can() {
    let backend = fresh_backend("review-marked-expired").await;
    let eid = new_execution_id();
    let then = now_ms() - 120_000;
    let claim = create_and_lease(
        &*backend,
        then,
        claim_args_at(eid.clone(), "worker-1", 0, then),
    )
    .await;
    backend
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .unwrap();
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "ownership_state"),
        "lease_expired_reclaimable"
    );
    let refused = rejected_without_writes(
        &backend,
        backend.complete_execution(complete_args(&eid, Some(fence_of(&claim)))),
    )
    .await;
    assert!(
        matches!(refused, EngineError::State(StateKind::LeaseExpired)),
        "{refused:?}"
    );
    let mut operator = complete_args(&eid, None);
    operator.source = CancelSource::OperatorOverride;
    backend.complete_execution(operator).await.unwrap();
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "public_state"),
        "completed"
    );
}

// ── 12: a grant reserves its execution; no claim leaves grants behind ─────────────────────

#[tokio::test]
#[parallel(process)]
async fn the_lane_scanner_leaves_a_granted_execution_to_its_worker_and_no_grant_behind() {
    let backend = fresh_backend("review-grant-scan").await;
    let eid = new_execution_id();
    backend
        .create_execution(create_args(eid.clone(), "default", now_ms()))
        .await
        .unwrap();
    backend
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now_ms()))
        .await
        .unwrap();
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(scanner_claim(&backend, "worker-2").await, None);
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    assert_eq!(scanner_claim(&backend, "worker-1").await, Some(eid.clone()));
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_claim_grant"),
        0
    );

    // An expired grant for another worker reserves nothing and is not left behind.
    let stale = new_execution_id();
    backend
        .create_execution(create_args(stale.clone(), "default", now_ms()))
        .await
        .unwrap();
    backend
        .issue_claim_grant(grant_args(stale.clone(), "worker-1", now_ms() - 120_000))
        .await
        .unwrap();
    assert_eq!(scanner_claim(&backend, "worker-2").await, Some(stale));
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_claim_grant"),
        0
    );
}

// ── 13: resume grants of finished executions; interrupted attempts redirect ──────────────

/// A resume token for `eid` (attempt 0) for `worker`.
fn resume_token(eid: &ExecutionId, worker: &str) -> ResumeToken {
    ResumeToken::new(
        ResumeGrant::new(
            eid.clone(),
            PartitionKey::from(&partition_of(eid)),
            "grant-key".into(),
            0,
            LaneId::new("default"),
        ),
        WorkerId::new(worker),
        WorkerInstanceId::new("wi-2"),
        30_000,
    )
}

#[tokio::test]
#[parallel(process)]
async fn a_resume_grant_of_a_finished_execution_is_none() {
    let (backend, eid, claim) = created_leased_backend("review-resume-terminal").await;
    backend
        .complete_execution(complete_args(&eid, Some(fence_of(&claim))))
        .await
        .unwrap();
    let before = snapshot(&backend.connection_for_test());
    assert!(
        backend
            .claim_from_resume_grant(resume_token(&eid, "worker-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
}

#[tokio::test]
#[parallel(process)]
async fn a_grant_holder_is_sent_to_claim_resumed_execution_for_a_revoked_attempt() {
    let backend = fresh_backend("review-revoked-redirect").await;
    let eid = new_execution_id();
    let now = now_ms();
    // worker-1 holds the lease and an operator revokes it: the attempt is interrupted.
    let first = create_and_lease(
        &*backend,
        now,
        claim_args_at(eid.clone(), "worker-1", 0, now),
    )
    .await;
    backend
        .revoke_lease(RevokeLeaseArgs {
            execution_id: eid.clone(),
            expected_lease_id: None,
            worker_instance_id: WorkerInstanceId::new(""),
            reason: "operator".into(),
        })
        .await
        .unwrap();
    let refused = rejected_without_writes(
        &backend,
        backend.claim_execution(claim_args_at(eid.clone(), "worker-2", 1, now_ms())),
    )
    .await;
    assert!(
        matches!(
            refused,
            EngineError::Contention(ContentionKind::UseClaimResumedExecution)
        ),
        "ff-core: an interrupted attempt is continued by claim_resumed_execution: {refused:?}"
    );
    let ClaimResumedExecutionResult::Claimed(resumed) = backend
        .claim_resumed_execution(ClaimResumedExecutionArgs {
            execution_id: eid.clone(),
            worker_id: WorkerId::new("worker-2"),
            worker_instance_id: WorkerInstanceId::new("wi-2"),
            lane_id: LaneId::new("default"),
            lease_id: LeaseId::new(),
            lease_ttl_ms: 30_000,
            current_attempt_index: AttemptIndex::new(0),
            remaining_attempt_timeout_ms: None,
            now: TimestampMs::now(),
        })
        .await
        .expect("the revoked attempt continues");
    assert_eq!(resumed.attempt_index, AttemptIndex::new(0));
    assert!(resumed.lease_epoch.0 > first.lease_epoch.0);
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "ownership_state"),
        "leased"
    );
}

// ── 14: retryable categories ─────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn fail_execution_retries_only_the_categories_its_policy_names() {
    for (categories, retried) in [
        (r#"["provider_error","test"]"#, true),
        (r#"["provider_error"]"#, false),
        ("[]", true),
    ] {
        let (backend, eid, claim) = created_leased_backend("review-categories").await;
        let policy = format!(
            r#"{{"max_retries":2,"backoff":{{"type":"fixed","delay_ms":10}},"retryable_categories":{categories}}}"#
        );
        // `fail_args` reports category `test`.
        let outcome = backend
            .fail_execution(fail_args(&eid, Some(fence_of(&claim)), &policy))
            .await
            .unwrap();
        assert_eq!(
            matches!(outcome, FailExecutionResult::RetryScheduled { .. }),
            retried,
            "{categories}: {outcome:?}"
        );
        let expected = if retried { "delayed" } else { "failed" };
        assert_eq!(
            exec_column(&backend.connection_for_test(), &eid, "public_state"),
            expected
        );
    }
}

// ── 14: create_execution's idempotency key ───────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_resubmission_with_the_same_idempotency_key_is_a_duplicate_of_the_first() {
    let backend = fresh_backend("review-idempotency").await;
    let keyed = |execution_id: ExecutionId, namespace: &str| {
        let mut args = create_args(execution_id, "default", now_ms());
        args.namespace = Namespace::new(namespace);
        args.idempotency_key = Some("order-42".into());
        args
    };
    let first = new_execution_id();
    assert!(matches!(
        backend
            .create_execution(keyed(first.clone(), "ns1"))
            .await
            .unwrap(),
        CreateExecutionResult::Created { .. }
    ));
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        backend
            .create_execution(keyed(new_execution_id(), "ns1"))
            .await
            .unwrap(),
        CreateExecutionResult::Duplicate {
            execution_id: first.clone()
        }
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_exec_core"),
        1
    );
    // The key is per namespace.
    assert!(matches!(
        backend
            .create_execution(keyed(new_execution_id(), "ns2"))
            .await
            .unwrap(),
        CreateExecutionResult::Created { .. }
    ));
}
