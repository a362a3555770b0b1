//! Integration tests: recovery (cancel, revoke, suspension resume, lease expiry and reclaim)
//! through the public `EngineBackend` API. Upstream's expectations (reference §11.3
//! `typed_resume_execution`, §11.4 `wave9_operator`) adapted to our semantics
//! (docs/semantics.md), plus the expiry → mark → reclaim path with a higher epoch.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{BackendTag, HandleKind, ResumeToken};
use ff_core::contracts::{
    CancelExecutionArgs, CancelExecutionResult, ClaimResumedExecutionArgs,
    ClaimResumedExecutionResult, ClaimedExecution, ExpiredLeasesCursor, IssueReclaimGrantOutcome,
    ListExpiredLeasesArgs, ReclaimExecutionOutcome, ResumeExecutionArgs, ResumeExecutionResult,
    ResumeGrant, RevokeLeaseArgs, RevokeLeaseResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, StateKind};
use ff_core::handle_codec;
use ff_core::partition::PartitionKey;
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseEpoch, LeaseId, Namespace, TimestampMs,
    WorkerId, WorkerInstanceId,
};
use rusqlite::Connection;
use serial_test::parallel;
use std::sync::Arc;
use uuid::Uuid;

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

/// A lease that expired a minute ago (claimed two minutes ago with a 60 s lease).
async fn expired_lease(backend: &SqliteBackend) -> (ExecutionId, ClaimedExecution) {
    seed_leased_at(backend, now_ms() - 120_000).await
}

fn revoke_args(
    eid: &ExecutionId,
    worker_instance_id: &str,
    expected_lease_id: Option<String>,
) -> RevokeLeaseArgs {
    RevokeLeaseArgs {
        execution_id: eid.clone(),
        expected_lease_id,
        worker_instance_id: WorkerInstanceId::new(worker_instance_id),
        reason: "operator".into(),
    }
}

fn resume_token(eid: &ExecutionId, worker_id: &str) -> ResumeToken {
    let grant = ResumeGrant::new(
        eid.clone(),
        PartitionKey::from(&partition_of(eid)),
        "grant-key".into(),
        0,
        LaneId::new("default"),
    );
    ResumeToken::new(
        grant,
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-2"),
        30_000,
    )
}

/// `ResumeExecutionArgs` for a `signal` trigger after `resume_delay_ms`.
fn resume_args(eid: &ExecutionId, resume_delay_ms: u64) -> ResumeExecutionArgs {
    ResumeExecutionArgs {
        execution_id: eid.clone(),
        trigger_type: "signal".into(),
        resume_delay_ms,
    }
}

/// A suspended execution with its suspension row, as upstream's resume tests seed it.
fn seed_suspended(conn: &Connection) -> ExecutionId {
    let (exec_uuid, eid) = seed_runnable_as(
        conn,
        "lifecycle_phase = 'suspended', ownership_state = 'released', \
         eligibility_state = 'not_applicable', public_state = 'suspended', attempt_state = 'attempt_suspended'",
    );
    conn.execute(
        "INSERT INTO ff_suspension_current (partition_key, execution_id, suspension_id, suspended_at_ms, condition) \
         VALUES (0, ?1, ?2, ?3, '{}')",
        rusqlite::params![blob(exec_uuid), blob(Uuid::new_v4()), now_ms()],
    )
    .unwrap();
    eid
}

// ── cancel_execution (wave9_operator) ──────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_happy_path_revokes_the_lease() {
    let (backend, eid, claimed) = leased_backend("recovery-cancel").await;
    let result = backend
        .cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None))
        .await
        .expect("cancel");
    assert_eq!(
        result,
        CancelExecutionResult::Cancelled {
            execution_id: eid.clone(),
            public_state: PublicState::Cancelled
        }
    );
    let conn = backend.connection_for_test();
    // Ours stores lifecycle `terminal` (upstream: the legacy `cancelled` literal).
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "terminal");
    assert_eq!(exec_column(&conn, &eid, "public_state"), "cancelled");
    assert_eq!(
        exec_column(&conn, &eid, "cancelled_by"),
        "operator_override"
    );
    assert_eq!(
        exec_column(&conn, &eid, "cancellation_reason"),
        "operator said so"
    );
    assert_eq!(lease_events(&conn, &eid), ["acquired", "revoked"]);
    assert_eq!(
        attempt_column(
            &conn,
            &eid,
            0,
            "COALESCE(worker_instance_id, 'NULL') || '|' || lease_epoch || '|' || outcome"
        ),
        "NULL|2|cancelled"
    );
    let revoked_lease: String = conn
        .query_row(
            "SELECT lease_id FROM ff_lease_event WHERE event_type = 'revoked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(revoked_lease, claimed.lease_id.to_string());
    assert_eq!(count_rows(&conn, "ff_completion_event"), 0);
}

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_is_idempotent_when_already_cancelled() {
    let (backend, eid, _) = leased_backend("recovery-cancel-twice").await;
    backend
        .cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None))
        .await
        .expect("first");
    let before = snapshot(&backend.connection_for_test());
    let again = backend
        .cancel_execution(cancel_args(&eid, CancelSource::LeaseHolder, None))
        .await
        .expect("second cancel");
    assert_eq!(
        again,
        CancelExecutionResult::Cancelled {
            execution_id: eid,
            public_state: PublicState::Cancelled
        }
    );
    assert_eq!(
        before,
        snapshot(&backend.connection_for_test()),
        "a replay writes nothing"
    );
}

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_lease_fence_required_when_not_operator_override() {
    let (backend, eid, _) = leased_backend("recovery-cancel-fence").await;
    let error = rejected_without_writes(
        &backend,
        backend.cancel_execution(cancel_args(&eid, CancelSource::LeaseHolder, None)),
    )
    .await;
    assert_eq!(
        invalid_input_detail(error),
        format!(
            "cancel_execution: execution_id={eid}: lease_epoch required when source != operator_override and \
             execution is active"
        )
    );
}

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_stale_lease_fence_rejects_and_the_right_fence_cancels() {
    let (backend, eid, claimed) = leased_backend("recovery-cancel-stale").await;
    let stale = rejected_without_writes(
        &backend,
        backend.cancel_execution(cancel_args(&eid, CancelSource::LeaseHolder, Some(999_999))),
    )
    .await;
    assert!(
        matches!(stale, EngineError::State(StateKind::StaleLease)),
        "{stale:?}"
    );
    // The right epoch with another worker's lease id is stale too (ids are fenced as well).
    let wrong_id = CancelExecutionArgs {
        lease_id: Some(LeaseId::new()),
        ..cancel_args(&eid, CancelSource::LeaseHolder, Some(1))
    };
    let stale = rejected_without_writes(&backend, backend.cancel_execution(wrong_id)).await;
    assert!(
        matches!(stale, EngineError::State(StateKind::StaleLease)),
        "{stale:?}"
    );

    let fenced = CancelExecutionArgs {
        lease_id: Some(claimed.lease_id.clone()),
        attempt_id: Some(claimed.attempt_id.clone()),
        ..cancel_args(&eid, CancelSource::LeaseHolder, Some(claimed.lease_epoch.0))
    };
    backend
        .cancel_execution(fenced)
        .await
        .expect("the holder cancels");
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "cancelled_by"),
        "lease_holder"
    );
}

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_of_a_completed_execution_is_invalid_input() {
    let backend = fresh_backend("recovery-cancel-completed").await;
    let (_, eid) = seed_runnable_as(
        &backend.connection_for_test(),
        "lifecycle_phase = 'terminal', public_state = 'completed'",
    );
    let error = rejected_without_writes(
        &backend,
        backend.cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None)),
    )
    .await;
    assert_eq!(
        invalid_input_detail(error),
        format!("cancel_execution: execution_id={eid}: already terminal in state 'completed'")
    );
}

#[tokio::test]
#[parallel(process)]
async fn cancel_execution_of_an_unknown_execution_is_not_found() {
    let backend = fresh_backend("recovery-cancel-missing").await;
    let result = backend
        .cancel_execution(cancel_args(
            &new_execution_id(),
            CancelSource::OperatorOverride,
            None,
        ))
        .await;
    assert_execution_not_found(result.unwrap_err());
}

#[tokio::test]
#[parallel(process)]
async fn concurrent_cancel_serialization() {
    let (backend, eid, _) = leased_backend("recovery-cancel-concurrent").await;
    let (a, b) = tokio::join!(
        backend.cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None)),
        backend.cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None)),
    );
    for result in [a, b] {
        assert!(
            matches!(result, Ok(CancelExecutionResult::Cancelled { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        lease_events(&backend.connection_for_test(), &eid),
        ["acquired", "revoked"]
    );
}

// ── revoke_lease (wave9_operator) ──────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn revoke_lease_happy_path() {
    let (backend, eid, claimed) = leased_backend("recovery-revoke").await;
    let result = backend
        .revoke_lease(revoke_args(
            &eid,
            "wi-1",
            Some(claimed.lease_id.to_string()),
        ))
        .await
        .expect("revoke");
    assert_eq!(
        result,
        RevokeLeaseResult::Revoked {
            lease_id: claimed.lease_id.to_string(),
            lease_epoch: "2".into()
        }
    );
    let conn = backend.connection_for_test();
    assert_eq!(lease_events(&conn, &eid), ["acquired", "revoked"]);
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "runnable");
    // Ours: `waiting` (upstream left `running`, §10 Q2).
    assert_eq!(exec_column(&conn, &eid, "public_state"), "waiting");
    assert_eq!(
        exec_column(&conn, &eid, "attempt_state"),
        "attempt_interrupted"
    );
    assert_eq!(
        attempt_column(
            &conn,
            &eid,
            0,
            "COALESCE(worker_instance_id, 'NULL') || '|' || COALESCE(lease_expires_at_ms, 'NULL') || '|' || \
             lease_epoch"
        ),
        "NULL|NULL|2"
    );
}

#[tokio::test]
#[parallel(process)]
async fn revoke_lease_no_active_lease_returns_already_satisfied() {
    let backend = fresh_backend("recovery-revoke-none").await;
    let eid = seed_runnable(&backend.connection_for_test()).1;
    let before = snapshot(&backend.connection_for_test());
    let result = backend
        .revoke_lease(revoke_args(&eid, "", None))
        .await
        .unwrap();
    assert_eq!(
        result,
        RevokeLeaseResult::AlreadySatisfied {
            reason: "no_active_lease".into()
        }
    );
    assert_eq!(before, snapshot(&backend.connection_for_test()));
}

#[tokio::test]
#[parallel(process)]
async fn revoke_lease_different_worker_or_lease_returns_already_satisfied() {
    let (backend, eid, _) = leased_backend("recovery-revoke-other").await;
    let before = snapshot(&backend.connection_for_test());
    let result = backend
        .revoke_lease(revoke_args(&eid, "someone-else", None))
        .await
        .unwrap();
    assert_eq!(
        result,
        RevokeLeaseResult::AlreadySatisfied {
            reason: "different_worker_instance_id".into()
        }
    );
    let result = backend
        .revoke_lease(revoke_args(&eid, "wi-1", Some(LeaseId::new().to_string())))
        .await
        .unwrap();
    assert_eq!(
        result,
        RevokeLeaseResult::AlreadySatisfied {
            reason: "lease_id_mismatch".into()
        }
    );
    assert_eq!(before, snapshot(&backend.connection_for_test()));
}

#[tokio::test]
#[parallel(process)]
async fn revoke_lease_of_an_unknown_execution_is_not_found() {
    let backend = fresh_backend("recovery-revoke-missing").await;
    let result = backend
        .revoke_lease(revoke_args(&new_execution_id(), "", None))
        .await;
    assert_execution_not_found(result.unwrap_err());
}

// ── resume_execution (typed_resume_execution) ──────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn resume_happy_path_no_delay() {
    let backend = fresh_backend("recovery-resume").await;
    let eid = seed_suspended(&backend.connection_for_test());
    let result = backend
        .resume_execution(resume_args(&eid, 0))
        .await
        .expect("resume");
    assert_eq!(
        result,
        ResumeExecutionResult::Resumed {
            public_state: PublicState::Waiting
        }
    );
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "runnable");
    assert_eq!(exec_column(&conn, &eid, "public_state"), "waiting");
    assert_eq!(
        exec_column(&conn, &eid, "eligibility_state"),
        "eligible_now"
    );
    assert_eq!(count_rows(&conn, "ff_suspension_current"), 0);
    assert_eq!(outbox_rows(&conn), 0);
}

#[tokio::test]
#[parallel(process)]
async fn resume_with_delay_becomes_delayed_until_a_stored_time() {
    let backend = fresh_backend("recovery-resume-delay").await;
    let eid = seed_suspended(&backend.connection_for_test());
    let before = now_ms();
    let result = backend
        .resume_execution(resume_args(&eid, 5_000))
        .await
        .expect("resume");
    let after = now_ms();
    assert_eq!(
        result,
        ResumeExecutionResult::Resumed {
            public_state: PublicState::Delayed
        }
    );
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &eid, "public_state"), "delayed");
    assert_eq!(
        exec_column(&conn, &eid, "eligibility_state"),
        "not_eligible_until_time"
    );
    assert_eq!(
        exec_column(&conn, &eid, "blocking_reason"),
        "waiting_for_resume_delay"
    );
    // Ours keeps the delay (upstream discarded it, §10 Q5), so the execution becomes claimable.
    let delay_until: i64 = exec_column(&conn, &eid, "json_extract(raw_fields, '$.delay_until')")
        .parse()
        .unwrap();
    assert!(
        (before + 5_000..=after + 5_000).contains(&delay_until),
        "{delay_until}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn resume_rejects_non_suspended() {
    let (backend, eid, _) = leased_backend("recovery-resume-active").await;
    let error =
        rejected_without_writes(&backend, backend.resume_execution(resume_args(&eid, 0))).await;
    assert!(
        matches!(error, EngineError::State(StateKind::ExecutionNotSuspended)),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn resume_not_found_without_exec_core() {
    let backend = fresh_backend("recovery-resume-missing").await;
    let result = backend
        .resume_execution(resume_args(&new_execution_id(), 0))
        .await;
    assert_execution_not_found(result.unwrap_err());
}

// ── claim_resumed_execution ────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn claim_resumed_execution_leases_the_current_attempt_once() {
    let backend = fresh_backend("recovery-claim-resumed").await;
    let eid = {
        let conn = backend.connection_for_test();
        // What a satisfied suspension leaves behind: resumable, on attempt 0 at epoch 4.
        let (exec_uuid, eid) = seed_runnable_as(
            &conn,
            "public_state = 'resumable', attempt_state = 'attempt_interrupted'",
        );
        conn.execute(
            "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, lease_epoch) \
             VALUES (0, ?1, 0, 'worker-1', 4)",
            [blob(exec_uuid)],
        )
        .unwrap();
        eid
    };
    let args = ClaimResumedExecutionArgs {
        execution_id: eid.clone(),
        worker_id: WorkerId::new("worker-2"),
        worker_instance_id: WorkerInstanceId::new("wi-2"),
        lane_id: LaneId::new("default"),
        lease_id: LeaseId::new(),
        lease_ttl_ms: 30_000,
        current_attempt_index: AttemptIndex::new(0),
        remaining_attempt_timeout_ms: None,
        now: TimestampMs::now(),
    };
    let ClaimResumedExecutionResult::Claimed(claimed) = backend
        .claim_resumed_execution(args.clone())
        .await
        .expect("claim resumed");
    assert_eq!(claimed.execution_id, eid);
    assert_eq!(claimed.lease_epoch, LeaseEpoch::new(5));
    assert_eq!(claimed.attempt_index, AttemptIndex::new(0));
    assert_eq!(claimed.lease_id, args.lease_id);
    assert_eq!(claimed.lease_expires_at.0, args.now.0 + 30_000);
    assert_eq!(
        (claimed.handle.backend, claimed.handle.kind),
        (BackendTag::Sqlite, HandleKind::Resumed)
    );
    let decoded = handle_codec::decode(&claimed.handle.opaque).expect("decodes");
    assert_eq!(decoded.payload.lease_epoch, LeaseEpoch::new(5));
    assert_eq!(decoded.payload.attempt_id, claimed.attempt_id);
    {
        let conn = backend.connection_for_test();
        assert_eq!(exec_column(&conn, &eid, "public_state"), "active");
        assert_eq!(exec_column(&conn, &eid, "ownership_state"), "leased");
        assert_eq!(
            attempt_column(&conn, &eid, 0, "json_extract(raw_fields, '$.attempt_id')"),
            claimed.attempt_id.to_string(),
            "the minted attempt id is persisted (upstream: returned only)"
        );
        assert_eq!(lease_events(&conn, &eid), ["acquired"]);
    }
    let again = rejected_without_writes(&backend, backend.claim_resumed_execution(args)).await;
    assert!(
        matches!(
            again,
            EngineError::Contention(ContentionKind::NotAResumedExecution)
        ),
        "{again:?}"
    );
}

// ── lease expiry → mark → reclaim ──────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn an_expired_lease_is_listed_marked_and_reclaimed_with_a_higher_epoch() {
    let backend = fresh_backend("recovery-expiry").await;
    let (eid, claimed) = expired_lease(&backend).await;
    let engine: Arc<dyn EngineBackend> = backend.clone();

    // Listed: a lease taken by claim_execution (public `active`) is visible (§10 Q3 fixed).
    let listed = engine
        .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::now()))
        .await
        .unwrap();
    assert_eq!(listed.entries.len(), 1);
    let entry = &listed.entries[0];
    assert_eq!(entry.execution_id, eid);
    assert_eq!(entry.lease_id, claimed.lease_id);
    assert_eq!(entry.lease_epoch, LeaseEpoch::new(1));
    assert_eq!(entry.worker_instance_id, WorkerInstanceId::new("wi-1"));
    assert_eq!(entry.expires_at_ms, claimed.lease_expires_at);
    assert_eq!(entry.attempt_index, AttemptIndex::new(0));
    assert!(listed.cursor.is_none());

    // No reclaim while the lease is merely lapsed but not marked.
    let not_yet = engine
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    assert!(
        matches!(not_yet, IssueReclaimGrantOutcome::NotReclaimable { .. }),
        "{not_yet:?}"
    );

    // Marked expired.
    engine
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .expect("mark");
    {
        let conn = backend.connection_for_test();
        assert_eq!(
            exec_column(&conn, &eid, "ownership_state"),
            "lease_expired_reclaimable"
        );
        assert_eq!(lease_events(&conn, &eid), ["acquired", "expired"]);
    }
    assert!(
        engine
            .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::now()))
            .await
            .unwrap()
            .entries
            .is_empty(),
        "a marked lease is no longer listed"
    );

    // Granted and reclaimed: a new attempt with a higher epoch.
    let IssueReclaimGrantOutcome::Granted(grant) = engine
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap()
    else {
        panic!("granted")
    };
    assert_eq!(grant.execution_id, eid);
    assert_eq!(
        Uuid::parse_str(&grant.grant_key).unwrap().get_version_num(),
        4
    );
    let args = reclaim_args(&eid, "worker-2", None);
    let ReclaimExecutionOutcome::Claimed(handle) =
        engine.reclaim_execution(args.clone()).await.unwrap()
    else {
        panic!("claimed")
    };
    assert_eq!(
        (handle.backend, handle.kind),
        (BackendTag::Sqlite, HandleKind::Reclaimed)
    );
    let decoded = handle_codec::decode(&handle.opaque)
        .expect("decodes")
        .payload;
    assert_eq!(decoded.execution_id, eid);
    assert_eq!(decoded.attempt_index, AttemptIndex::new(1));
    assert_eq!(decoded.lease_epoch, LeaseEpoch::new(2));
    assert_eq!(decoded.lease_id, args.lease_id);
    assert_eq!(decoded.attempt_id, args.attempt_id);

    let conn = backend.connection_for_test();
    assert_eq!(
        lease_events(&conn, &eid),
        ["acquired", "expired", "reclaimed"]
    );
    assert_eq!(exec_column(&conn, &eid, "ownership_state"), "leased");
    assert_eq!(exec_column(&conn, &eid, "attempt_index"), "1");
    assert_eq!(exec_column(&conn, &eid, "lease_reclaim_count"), "1");
    assert_eq!(
        attempt_column(&conn, &eid, 0, "outcome"),
        "interrupted_reclaimed"
    );
    assert_eq!(count_rows(&conn, "ff_claim_grant"), 0);
    drop(conn);

    // The old holder's fence no longer holds.
    let stale = engine
        .cancel_execution(cancel_args(&eid, CancelSource::LeaseHolder, Some(1)))
        .await;
    assert!(
        matches!(stale, Err(EngineError::State(StateKind::StaleLease))),
        "{stale:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn mark_lease_expired_if_due_leaves_a_live_lease_alone() {
    let (backend, eid, _) = leased_backend("recovery-mark-live").await;
    let before = snapshot(&backend.connection_for_test());
    backend
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .expect("mark");
    assert_eq!(before, snapshot(&backend.connection_for_test()));
    let missing = new_execution_id();
    let result = backend
        .mark_lease_expired_if_due(partition_of(&missing), &missing)
        .await;
    assert_execution_not_found(result.unwrap_err());
}

#[tokio::test]
#[parallel(process)]
async fn list_expired_leases_pages_with_a_cursor_and_filters_by_namespace() {
    let backend = fresh_backend("recovery-list").await;
    let mut eids = Vec::new();
    let base = now_ms() - 120_000;
    for offset in [0, 0, 1_000] {
        let (eid, _) = seed_leased_at(&backend, base - offset).await;
        let namespace = if offset == 0 { "ns-a" } else { "ns-b" };
        update_exec(
            &backend.connection_for_test(),
            &eid,
            &format!("raw_fields = json_set(raw_fields, '$.namespace', '{namespace}')"),
        );
        eids.push(eid);
    }
    // Expected order: the oldest expiry first, then the canonical id text.
    let mut same_expiry = [eids[0].clone(), eids[1].clone()];
    same_expiry.sort_by_key(|eid| eid.to_string());
    let expected = [
        eids[2].clone(),
        same_expiry[0].clone(),
        same_expiry[1].clone(),
    ];

    let mut args = ListExpiredLeasesArgs::new(TimestampMs::now());
    args.limit = Some(2);
    let first = backend.list_expired_leases(args.clone()).await.unwrap();
    let first_ids: Vec<_> = first
        .entries
        .iter()
        .map(|e| e.execution_id.clone())
        .collect();
    assert_eq!(first_ids, expected[..2]);
    let cursor: ExpiredLeasesCursor = first.cursor.expect("a full page has a cursor");
    args.after = Some(cursor);
    let second = backend.list_expired_leases(args).await.unwrap();
    let second_ids: Vec<_> = second
        .entries
        .iter()
        .map(|e| e.execution_id.clone())
        .collect();
    assert_eq!(second_ids, expected[2..]);
    assert!(second.cursor.is_none());

    let mut by_namespace = ListExpiredLeasesArgs::new(TimestampMs::now());
    by_namespace.namespace = Some(Namespace::new("ns-b"));
    let only_b = backend.list_expired_leases(by_namespace).await.unwrap();
    let only_b: Vec<_> = only_b
        .entries
        .iter()
        .map(|e| e.execution_id.clone())
        .collect();
    assert_eq!(only_b, [eids[2].clone()]);

    let early = backend
        .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::from_millis(0)))
        .await
        .unwrap();
    assert!(early.entries.is_empty());
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_refusals() {
    let backend = fresh_backend("recovery-reclaim-refusals").await;
    let (eid, _) = expired_lease(&backend).await;
    backend
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .unwrap();

    let before = snapshot(&backend.connection_for_test());
    let none = backend
        .reclaim_execution(reclaim_args(&eid, "worker-2", None))
        .await
        .unwrap();
    assert_eq!(
        none,
        ReclaimExecutionOutcome::GrantNotFound {
            execution_id: eid.clone()
        }
    );
    assert_eq!(before, snapshot(&backend.connection_for_test()));

    backend
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    let error = rejected_without_writes(
        &backend,
        backend.reclaim_execution(reclaim_args(&eid, "worker-3", None)),
    )
    .await;
    assert_eq!(
        invalid_input_detail(error),
        "reclaim_execution: grant worker_id=worker-2 mismatches caller worker-3"
    );

    let mut zero_ttl = reclaim_args(&eid, "worker-2", None);
    zero_ttl.lease_ttl_ms = 0;
    invalid_input_detail(
        rejected_without_writes(&backend, backend.reclaim_execution(zero_ttl)).await,
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_at_the_cap_fails_the_execution() {
    let backend = fresh_backend("recovery-reclaim-cap").await;
    let (eid, _) = expired_lease(&backend).await;
    backend
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .unwrap();
    backend
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "lease_reclaim_count = 3",
    );
    let outcome = backend
        .reclaim_execution(reclaim_args(&eid, "worker-2", Some(3)))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ReclaimExecutionOutcome::ReclaimCapExceeded {
            execution_id: eid.clone(),
            reclaim_count: 3
        }
    );
    {
        let conn = backend.connection_for_test();
        assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "terminal");
        assert_eq!(exec_column(&conn, &eid, "public_state"), "failed");
        assert_eq!(
            exec_column(&conn, &eid, "json_extract(raw_fields, '$.failure_reason')"),
            "reclaim cap exceeded"
        );
        assert_eq!(
            lease_events(&conn, &eid),
            ["acquired", "expired", "revoked"]
        );
        assert_eq!(completion_events(&conn, &eid), ["failed"]);
    }
}

// ── claim_from_resume_grant ────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn claim_from_resume_grant_waits_for_a_live_lease_then_takes_over() {
    let (backend, live_eid, _) = leased_backend("recovery-resume-grant").await;
    let before = snapshot(&backend.connection_for_test());
    assert!(
        backend
            .claim_from_resume_grant(resume_token(&live_eid, "worker-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(before, snapshot(&backend.connection_for_test()));

    let (eid, _) = expired_lease(&backend).await;
    let handle = backend
        .claim_from_resume_grant(resume_token(&eid, "worker-2"))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(
        (handle.backend, handle.kind),
        (BackendTag::Sqlite, HandleKind::Resumed)
    );
    let decoded = handle_codec::decode(&handle.opaque).unwrap().payload;
    assert_eq!(decoded.execution_id, eid);
    assert_eq!(decoded.attempt_index, AttemptIndex::new(0));
    assert_eq!(decoded.lease_epoch, LeaseEpoch::new(2));
    assert_eq!(decoded.worker_instance_id, WorkerInstanceId::new("wi-2"));
    let conn = backend.connection_for_test();
    assert_eq!(lease_events(&conn, &eid), ["acquired", "reclaimed"]);
    assert_eq!(
        exec_column(
            &conn,
            &eid,
            "json_extract(raw_fields, '$.current_worker_id')"
        ),
        "worker-2"
    );
}

#[tokio::test]
#[parallel(process)]
async fn claim_from_resume_grant_never_resurrects_a_terminal_execution() {
    // ff-core: a grant whose execution is no longer resumable is `Ok(None)` (issue 14, item
    // 13; this test expected `ExecutionNotActive` before).
    let backend = fresh_backend("recovery-resume-grant-terminal").await;
    let (eid, _claimed) = expired_lease(&backend).await;
    backend
        .cancel_execution(cancel_args(&eid, CancelSource::OperatorOverride, None))
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
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "public_state"),
        "cancelled"
    );
}
