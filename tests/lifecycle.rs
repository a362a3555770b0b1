//! Whole lifecycles through the public `EngineBackend` API only: no hand-written SQL moves an
//! execution along (upstream needed SQL to promote created executions and due retries).

mod support;

use ff_core::backend::{CapabilitySet, ClaimPolicy, FailureClass, FailureReason};
use ff_core::contracts::{
    CancelExecutionArgs, CompleteExecutionArgs, CreateExecutionResult, FailExecutionArgs,
    FailExecutionResult, IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ListExpiredLeasesArgs,
    ReclaimExecutionArgs, ReclaimExecutionOutcome, RenewLeaseArgs, RenewLeaseResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, StateKind};
use ff_core::handle_codec;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::state::{LifecyclePhase, PublicState};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, LaneId, LeaseId, TimestampMs, WorkerId, WorkerInstanceId,
};
use serial_test::serial;
use std::sync::Arc;
use support::*;

fn partition_of(eid: &ff_core::types::ExecutionId) -> Partition {
    Partition {
        family: PartitionFamily::Flow,
        index: eid.partition(),
    }
}

#[tokio::test]
#[serial(ff_dev_mode)]
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
            execution_id: eid.clone(),
            attempt_index: AttemptIndex::new(0),
            fence: Some(fence_of(&claimed)),
            lease_ttl_ms: 120_000,
            lease_history_grace_ms: 60_000,
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
            execution_id: eid.clone(),
            fence: Some(fence_of(&claimed)),
            attempt_index: AttemptIndex::new(0),
            result_payload: Some(b"done".to_vec()),
            result_encoding: None,
            source: CancelSource::LeaseHolder,
            now: TimestampMs::now(),
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
#[serial(ff_dev_mode)]
async fn fail_then_due_retry_is_claimed_again_and_completes() {
    let backend = fresh_backend("life-retry").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();
    engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now))
        .await
        .unwrap();
    let first = claimed(
        engine
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now))
            .await
            .unwrap(),
    );

    let failed = engine
        .fail_execution(FailExecutionArgs {
            execution_id: eid.clone(),
            fence: Some(fence_of(&first)),
            attempt_index: AttemptIndex::new(0),
            failure_reason: "boom".into(),
            failure_category: "test".into(),
            retry_policy_json: r#"{"max_retries":2,"backoff":{"type":"fixed","delay_ms":50}}"#
                .into(),
            next_attempt_policy_json: String::new(),
            source: CancelSource::LeaseHolder,
        })
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
            execution_id: eid.clone(),
            fence: Some(fence_of(&second)),
            attempt_index: AttemptIndex::new(1),
            result_payload: None,
            result_encoding: None,
            source: CancelSource::LeaseHolder,
            now: TimestampMs::from_millis(due + 1),
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
            execution_id: eid.clone(),
            attempt_index: AttemptIndex::new(0),
            fence: Some(fence_of(&first)),
            lease_ttl_ms: 1_000,
            lease_history_grace_ms: 0,
        })
        .await;
    assert!(stale.is_err(), "{stale:?}");
}

#[tokio::test]
#[serial(ff_dev_mode)]
async fn an_expired_lease_is_marked_and_reclaimed_with_a_higher_epoch() {
    let backend = fresh_backend("life-expiry").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();
    engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now))
        .await
        .unwrap();
    // A lease that has already lapsed by the time anyone looks (claimed in the past).
    let mut args = claim_args_at(eid.clone(), "worker-1", 0, now - 10_000);
    args.lease_ttl_ms = 1_000;
    let lapsed = claimed(engine.claim_execution(args).await.unwrap());

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
            execution_id: eid.clone(),
            attempt_index: AttemptIndex::new(0),
            fence: Some(fence_of(&lapsed)),
            lease_ttl_ms: 1_000,
            lease_history_grace_ms: 0,
        })
        .await;
    assert!(
        matches!(renew, Err(EngineError::State(StateKind::LeaseExpired))),
        "{renew:?}"
    );

    let grant = engine
        .issue_reclaim_grant(IssueReclaimGrantArgs::new(
            eid.clone(),
            WorkerId::new("worker-2"),
            WorkerInstanceId::new("wi-2"),
            LaneId::new("default"),
            None,
            60_000,
            None,
            None,
            Default::default(),
            TimestampMs::now(),
        ))
        .await
        .unwrap();
    assert!(
        matches!(grant, IssueReclaimGrantOutcome::Granted(_)),
        "{grant:?}"
    );
    let outcome = engine
        .reclaim_execution(ReclaimExecutionArgs::new(
            eid.clone(),
            WorkerId::new("worker-2"),
            WorkerInstanceId::new("wi-2"),
            LaneId::new("default"),
            None,
            LeaseId::new(),
            30_000,
            AttemptId::new(),
            String::new(),
            None,
            WorkerInstanceId::new("wi-1"),
            AttemptIndex::new(0),
        ))
        .await
        .unwrap();
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
#[serial(ff_dev_mode)]
async fn cancel_while_leased_revokes_the_lease() {
    let backend = fresh_backend("life-cancel").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let eid = new_execution_id();
    let now = now_ms();
    engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    engine
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now))
        .await
        .unwrap();
    let lease = claimed(
        engine
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now))
            .await
            .unwrap(),
    );

    engine
        .cancel_execution(CancelExecutionArgs {
            execution_id: eid.clone(),
            reason: "operator says stop".into(),
            source: CancelSource::OperatorOverride,
            lease_id: None,
            lease_epoch: None,
            attempt_id: None,
            now: TimestampMs::now(),
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
            execution_id: eid.clone(),
            fence: Some(fence_of(&lease)),
            attempt_index: AttemptIndex::new(0),
            result_payload: None,
            result_encoding: None,
            source: CancelSource::LeaseHolder,
            now: TimestampMs::now(),
        })
        .await;
    assert!(complete.is_err(), "{complete:?}");
    assert!(engine.renew(&lease.handle).await.is_err());
}

#[tokio::test]
#[serial(ff_dev_mode)]
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
    assert_eq!(
        backend
            .connection_for_test()
            .query_row("SELECT COUNT(*) FROM ff_attempt", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        1
    );
}
