//! Whole lifecycles through the public `EngineBackend` API only: no hand-written SQL moves an
//! execution along (upstream needed SQL to promote created executions and due retries).

use crate::support::*;
use ff_core::backend::{CapabilitySet, ClaimPolicy, FailureClass, FailureReason};
use ff_core::contracts::{
    CancelExecutionArgs, CompleteExecutionArgs, CreateExecutionResult, FailExecutionResult,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionOutcome, RenewLeaseArgs,
    RenewLeaseResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, StateKind};
use ff_core::handle_codec;
use ff_core::state::{LifecyclePhase, PublicState};
use ff_core::types::{AttemptIndex, CancelSource, LaneId, TimestampMs, WorkerId, WorkerInstanceId};
use serial_test::parallel;
use std::sync::Arc;

#[tokio::test]
#[parallel(process)]
async fn create_grant_claim_renew_complete_with_reads_at_each_step() {
    let backend = fresh_backend("life-happy").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();

    let created = engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    assert!(matches!(
        created,
        CreateExecutionResult::Created {
            public_state: PublicState::Waiting,
            ..
        }
    ));
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Waiting)
    );
    let info = engine.read_execution_info(&eid).await.unwrap().unwrap();
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Runnable);
    assert_eq!(
        (info.namespace.as_str(), info.execution_kind.as_str()),
        ("ns1", "kind1")
    );
    assert_eq!(
        engine.read_total_attempt_count(&eid).await.unwrap(),
        AttemptIndex::new(0)
    );

    engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now))
        .await
        .unwrap();
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Waiting)
    );

    let claimed = claimed(
        engine
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now))
            .await
            .unwrap(),
    );
    assert_eq!(claimed.lease_epoch.0, 1);
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Active)
    );
    let snapshot = engine.describe_execution(&eid).await.unwrap().unwrap();
    let lease = snapshot.current_lease.expect("a live lease is described");
    assert_eq!(
        (lease.lease_id.clone(), lease.lease_epoch),
        (claimed.lease_id.clone(), claimed.lease_epoch)
    );
    assert_eq!(snapshot.total_attempt_count, 1);
    assert_eq!(
        engine.read_current_attempt_index(&eid).await.unwrap(),
        AttemptIndex::new(0)
    );
    let context = engine.read_execution_context(&eid).await.unwrap();
    assert_eq!(context.input_payload, b"input");

    let renewed = engine
        .renew_lease(RenewLeaseArgs {
            lease_ttl_ms: 120_000,
            ..renew_args(&eid, Some(fence_of(&claimed)))
        })
        .await
        .unwrap();
    let RenewLeaseResult::Renewed { expires_at } = renewed;
    assert!(expires_at > claimed.lease_expires_at);
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Active)
    );

    engine
        .complete_execution(CompleteExecutionArgs {
            result_payload: Some(b"done".to_vec()),
            ..complete_args(&eid, Some(fence_of(&claimed)))
        })
        .await
        .unwrap();
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Completed)
    );
    assert_eq!(
        engine.get_execution_result(&eid).await.unwrap().as_deref(),
        Some(&b"done"[..])
    );
    let info = engine.read_execution_info(&eid).await.unwrap().unwrap();
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Terminal);
    assert!(info.completed_at.is_some());
    assert_eq!(
        lease_events(&backend.connection_for_test(), &eid),
        ["acquired", "renewed", "revoked"]
    );
}

#[tokio::test]
#[parallel(process)]
async fn fail_then_due_retry_is_claimed_again_and_completes() {
    let (backend, eid, first) = created_leased_backend("life-retry").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();

    let failed = engine
        .fail_execution(fail_args(
            &eid,
            Some(fence_of(&first)),
            r#"{"max_retries":2,"backoff":{"type":"fixed","delay_ms":50}}"#,
        ))
        .await
        .unwrap();
    let FailExecutionResult::RetryScheduled {
        delay_until,
        next_attempt_index,
    } = failed
    else {
        panic!("expected a retry, got {failed:?}")
    };
    assert_eq!(next_attempt_index, AttemptIndex::new(1));
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Delayed)
    );

    // Before the backoff has passed nothing may claim it; once due, a grant and a claim work
    // without anyone promoting the row by hand.
    let early = engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-2", delay_until.0 - 40))
        .await;
    assert!(early.is_err(), "not eligible before the backoff: {early:?}");
    let due = delay_until.0 + 1;
    engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-2", due))
        .await
        .unwrap();
    let second = claimed(
        engine
            .claim_execution(claim_args_at(eid.clone(), "worker-2", 1, due))
            .await
            .unwrap(),
    );
    assert_eq!((second.attempt_index.0, second.lease_epoch.0), (1, 1));
    assert_eq!(
        engine.read_current_attempt_index(&eid).await.unwrap(),
        AttemptIndex::new(1)
    );
    assert_eq!(
        engine.read_total_attempt_count(&eid).await.unwrap(),
        AttemptIndex::new(2)
    );

    engine
        .complete_execution(CompleteExecutionArgs {
            attempt_index: AttemptIndex::new(1),
            result_payload: None,
            now: TimestampMs::from_millis(due + 1),
            ..complete_args(&eid, Some(fence_of(&second)))
        })
        .await
        .unwrap();
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Completed)
    );

    // The first attempt's fence is dead for good.
    let stale = engine
        .renew_lease(RenewLeaseArgs {
            lease_ttl_ms: 1_000,
            lease_history_grace_ms: 0,
            ..renew_args(&eid, Some(fence_of(&first)))
        })
        .await;
    assert!(stale.is_err(), "{stale:?}");
}

#[tokio::test]
#[parallel(process)]
async fn an_expired_lease_is_marked_and_reclaimed_with_a_higher_epoch() {
    let backend = fresh_backend("life-expiry").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();
    // A lease that has already lapsed by the time anyone looks (claimed in the past).
    let mut args = claim_args_at(eid.clone(), "worker-1", 0, now - 10_000);
    args.lease_ttl_ms = 1_000;
    let lapsed = create_and_lease(&*engine, now, args).await;

    let expired = engine
        .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::now()))
        .await
        .unwrap();
    assert_eq!(expired.entries.len(), 1);
    assert_eq!(expired.entries[0].execution_id, eid);
    assert_eq!(expired.entries[0].lease_id, lapsed.lease_id);

    engine
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .unwrap();
    let info = engine.read_execution_info(&eid).await.unwrap().unwrap();
    assert_eq!(
        format!("{:?}", info.state_vector.ownership_state),
        "LeaseExpiredReclaimable"
    );
    assert!(
        engine
            .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::now()))
            .await
            .unwrap()
            .entries
            .is_empty()
    );

    // The old holder is fenced out.
    let renew = engine
        .renew_lease(RenewLeaseArgs {
            lease_ttl_ms: 1_000,
            lease_history_grace_ms: 0,
            ..renew_args(&eid, Some(fence_of(&lapsed)))
        })
        .await;
    assert!(
        matches!(renew, Err(EngineError::State(StateKind::LeaseExpired))),
        "{renew:?}"
    );

    let mut reclaim_grant = reclaim_grant_args(&eid, "worker-2");
    reclaim_grant.worker_instance_id = WorkerInstanceId::new("wi-2");
    reclaim_grant.worker_capabilities = Default::default();
    let grant = engine.issue_reclaim_grant(reclaim_grant).await.unwrap();
    assert!(
        matches!(grant, IssueReclaimGrantOutcome::Granted(_)),
        "{grant:?}"
    );
    let mut reclaim = reclaim_args(&eid, "worker-2", None);
    reclaim.lease_ttl_ms = 30_000;
    let outcome = engine.reclaim_execution(reclaim).await.unwrap();
    let ReclaimExecutionOutcome::Claimed(handle) = outcome else {
        panic!("expected Claimed, got {outcome:?}")
    };
    let payload = handle_codec::decode(&handle.opaque).unwrap().payload;
    assert!(
        payload.lease_epoch > lapsed.lease_epoch,
        "{:?} > {:?}",
        payload.lease_epoch,
        lapsed.lease_epoch
    );
    assert_eq!(payload.attempt_index, AttemptIndex::new(1));
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Active)
    );

    // The reclaimed lease works with the handle API.
    engine
        .complete(&handle, Some(b"ok".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Completed)
    );
    assert_eq!(
        lease_events(&backend.connection_for_test(), &eid),
        ["acquired", "expired", "reclaimed", "revoked"]
    );
}

#[tokio::test]
#[parallel(process)]
async fn cancel_while_leased_revokes_the_lease() {
    let (backend, eid, lease) = created_leased_backend("life-cancel").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();

    engine
        .cancel_execution(CancelExecutionArgs {
            reason: "operator says stop".into(),
            ..cancel_args(&eid, CancelSource::OperatorOverride, None)
        })
        .await
        .unwrap();
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Cancelled)
    );
    let info = engine.read_execution_info(&eid).await.unwrap().unwrap();
    assert_eq!(info.state_vector.lifecycle_phase, LifecyclePhase::Terminal);
    assert_eq!(
        format!("{:?}", info.state_vector.terminal_outcome),
        "Cancelled"
    );
    assert_eq!(
        lease_events(&backend.connection_for_test(), &eid),
        ["acquired", "revoked"]
    );

    // The former holder can no longer complete, renew or fail.
    let complete = engine
        .complete_execution(CompleteExecutionArgs {
            result_payload: None,
            ..complete_args(&eid, Some(fence_of(&lease)))
        })
        .await;
    assert!(complete.is_err(), "{complete:?}");
    assert!(engine.renew(&lease.handle).await.is_err());
}

#[tokio::test]
#[parallel(process)]
async fn the_lane_scanner_and_worker_handles_run_a_whole_lifecycle() {
    let backend = fresh_backend("life-handles").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    engine
        .create_execution(create_args(eid.clone(), "lane-h", now_ms()))
        .await
        .unwrap();
    let policy = ClaimPolicy::new(
        WorkerId::new("w"),
        WorkerInstanceId::new("wi"),
        30_000,
        None,
    );
    let handle = engine
        .claim(
            &LaneId::new("lane-h"),
            &CapabilitySet::default(),
            policy.clone(),
        )
        .await
        .unwrap()
        .expect("the created execution is claimable");
    engine
        .progress(&handle, Some(50), Some("half".into()))
        .await
        .unwrap();
    let renewal = engine.renew(&handle).await.unwrap();
    assert_eq!(renewal.lease_epoch, 1);
    let outcome = engine
        .fail(
            &handle,
            FailureReason::new("flaky"),
            FailureClass::Transient,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ff_core::backend::FailOutcome::RetryScheduled { .. }
        ),
        "{outcome:?}"
    );
    // A replay of the same handle is refused: the attempt is over.
    assert!(engine.complete(&handle, None).await.is_err());
    assert_eq!(
        engine.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Delayed)
    );
    assert_eq!(count_rows(&backend.connection_for_test(), "ff_attempt"), 1);
}
