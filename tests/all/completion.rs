//! Integration tests: the lease holder's operations (`renew_lease`, `complete_execution`,
//! `fail_execution` and the handle-based `renew`, `progress`, `complete`, `fail`) through the
//! public `EngineBackend` API. Upstream's typed tests (reference §11.3) and hot-path handle
//! tests (§11.2) keep their names where they apply; the rest pin our decisions
//! (docs/semantics.md): ids are fenced, handle replays are refused, retries go through the
//! execution's policy, and an error writes nothing.

use crate::support::*;
use ff_core::backend::{BackendTag, FailOutcome, FailureClass, FailureReason, Handle, HandleKind};
use ff_core::contracts::{
    ClaimedExecution, CompleteExecutionArgs, CompleteExecutionResult, FailExecutionArgs,
    FailExecutionResult, RenewLeaseArgs, RenewLeaseResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, StateKind, ValidationKind};
use ff_core::handle_codec::{self, HandlePayload};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LeaseEpoch, LeaseFence, LeaseId,
};
use rusqlite::Connection;
use serial_test::parallel;

// ── Helpers ─────────────────────────────────────────────────────────────────────────────

/// The claim's handle re-encoded with another lease epoch.
fn handle_with_epoch(claim: &ClaimedExecution, epoch: u64) -> Handle {
    let decoded = handle_codec::decode(&claim.handle.opaque).expect("decodes");
    let p = decoded.payload;
    let payload = HandlePayload::new(
        p.execution_id,
        p.attempt_index,
        p.attempt_id,
        p.lease_id,
        LeaseEpoch(epoch),
        p.lease_ttl_ms,
        p.lane_id,
        p.worker_instance_id,
    );
    Handle::new(
        BackendTag::Sqlite,
        HandleKind::Fresh,
        handle_codec::encode(BackendTag::Sqlite, &payload),
    )
}

/// `raw_fields.<key>` of the execution as `<json type>:<value>`, or `absent`.
fn raw_field(conn: &Connection, eid: &ExecutionId, key: &str) -> String {
    exec_column(
        conn,
        eid,
        &format!(
            "COALESCE(json_type(raw_fields, '$.{key}') || ':' || json_extract(raw_fields, '$.{key}'), 'absent')"
        ),
    )
}

/// The six state columns of the execution, `|`-separated.
fn state_of(conn: &Connection, eid: &ExecutionId) -> String {
    exec_column(
        conn,
        eid,
        "lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
         public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL')",
    )
}

/// Assert `result` is `ExecutionNotActive` in lifecycle phase `phase`.
fn assert_not_active<T: std::fmt::Debug>(result: Result<T, EngineError>, phase: &str) {
    assert_eq!(not_active_payload(result.unwrap_err()).2, phase);
}

// ── renew_lease (upstream typed_renew_lease.rs) ─────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn renew_lease_extends_expires_at_on_happy_path() {
    let (backend, eid) = seeded_lease_backend("renew-happy").await;
    let before = attempt_column(
        &backend.connection_for_test(),
        &eid,
        0,
        "lease_expires_at_ms",
    );
    let RenewLeaseResult::Renewed { expires_at } = backend
        .renew_lease(renew_args(&eid, Some(seeded_fence(1))))
        .await
        .expect("renew");
    let conn = backend.connection_for_test();
    let stored = attempt_column(&conn, &eid, 0, "lease_expires_at_ms");
    assert_eq!(stored, expires_at.0.to_string());
    assert!(expires_at.0 > before.parse::<i64>().unwrap());
    assert_eq!(attempt_column(&conn, &eid, 0, "lease_epoch"), "1");
    assert_eq!(lease_events(&conn, &eid), ["renewed"]);
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_rejects_missing_fence() {
    let (backend, eid) = seeded_lease_backend("renew-nofence").await;
    let error =
        rejected_without_writes(&backend, backend.renew_lease(renew_args(&eid, None))).await;
    assert_eq!(invalid_input_detail(error), "fence_required");
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_stale_lease_on_wrong_epoch() {
    let (backend, eid) = seeded_lease_backend("renew-stale").await;
    let error = rejected_without_writes(
        &backend,
        backend.renew_lease(renew_args(&eid, Some(seeded_fence(100)))),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::StaleLease)),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_expired_when_past_ttl() {
    let backend = fresh_backend("renew-expired").await;
    let eid = seed_active_lease(&backend.connection_for_test(), now_ms() - 1_000);
    let result = backend
        .renew_lease(renew_args(&eid, Some(seeded_fence(1))))
        .await;
    assert!(
        matches!(result, Err(EngineError::State(StateKind::LeaseExpired))),
        "{result:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_execution_not_active_on_terminal() {
    let (backend, eid) = seeded_lease_backend("renew-terminal").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "lifecycle_phase = 'terminal'",
    );
    let error = backend
        .renew_lease(renew_args(&eid, Some(seeded_fence(1))))
        .await
        .unwrap_err();
    let (terminal_outcome, lease_epoch, lifecycle_phase, attempt_id) = not_active_payload(error);
    assert_eq!(
        (
            terminal_outcome.as_str(),
            lease_epoch.as_str(),
            lifecycle_phase.as_str(),
            attempt_id.as_str()
        ),
        ("none", "1", "terminal", "")
    );
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_revoked_when_ownership_lease_revoked() {
    let (backend, eid) = seeded_lease_backend("renew-revoked").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "ownership_state = 'lease_revoked'",
    );
    let result = backend
        .renew_lease(renew_args(&eid, Some(seeded_fence(1))))
        .await;
    assert!(
        matches!(result, Err(EngineError::State(StateKind::LeaseRevoked))),
        "{result:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn renew_lease_zero_ttl_is_invalid_input_and_a_missing_attempt_is_not_found() {
    let (backend, eid) = seeded_lease_backend("renew-input").await;
    let zero = RenewLeaseArgs {
        lease_ttl_ms: 0,
        ..renew_args(&eid, Some(seeded_fence(1)))
    };
    invalid_input_detail(rejected_without_writes(&backend, backend.renew_lease(zero)).await);
    // Neither the execution nor the attempt exists: the attempt is looked up first.
    let error = rejected_without_writes(
        &backend,
        backend.renew_lease(renew_args(&new_execution_id(), Some(seeded_fence(1)))),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "attempt" }),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_claimed_lease_fences_its_lease_and_attempt_ids_not_only_the_epoch() {
    let (backend, eid, claim) = leased_backend("renew-ids").await;
    let other_lease = LeaseFence {
        lease_id: LeaseId::new(),
        ..fence_of(&claim)
    };
    let other_attempt = LeaseFence {
        attempt_id: AttemptId::new(),
        ..fence_of(&claim)
    };
    for fence in [other_lease, other_attempt] {
        let error =
            rejected_without_writes(&backend, backend.renew_lease(renew_args(&eid, Some(fence))))
                .await;
        assert!(
            matches!(error, EngineError::State(StateKind::StaleLease)),
            "{error:?}"
        );
    }
    backend
        .renew_lease(renew_args(&eid, Some(fence_of(&claim))))
        .await
        .expect("the real fence renews");
    // The renewal event names the lease.
    let lease_ids: Vec<Option<String>> = backend
        .connection_for_test()
        .prepare("SELECT lease_id FROM ff_lease_event ORDER BY event_id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        lease_ids,
        [
            Some(claim.lease_id.to_string()),
            Some(claim.lease_id.to_string())
        ]
    );
}

// ── complete_execution (upstream typed_complete_execution.rs) ───────────────────────────

#[tokio::test]
#[parallel(process)]
async fn complete_happy_path() {
    let (backend, eid) = seeded_lease_backend("complete-happy").await;
    let result = backend
        .complete_execution(complete_args(&eid, Some(seeded_fence(1))))
        .await
        .expect("complete");
    let CompleteExecutionResult::Completed {
        execution_id,
        public_state,
    } = result;
    assert_eq!(
        (execution_id, public_state),
        (eid.clone(), PublicState::Completed)
    );
    let conn = backend.connection_for_test();
    assert_eq!(
        state_of(&conn, &eid),
        "terminal|unowned|not_applicable|completed|attempt_terminal|NULL"
    );
    assert_eq!(exec_column(&conn, &eid, "result"), "result");
    assert_ne!(exec_column(&conn, &eid, "terminal_at_ms"), "NULL");
    assert_eq!(raw_field(&conn, &eid, "terminal_outcome"), "text:success");
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "success");
    assert_eq!(
        attempt_column(&conn, &eid, 0, "lease_expires_at_ms"),
        "NULL"
    );
    assert_eq!(completion_events(&conn, &eid), ["success"]);
    assert_eq!(lease_events(&conn, &eid), ["revoked"]);
}

#[tokio::test]
#[parallel(process)]
async fn complete_rejects_missing_fence_without_override() {
    let (backend, eid) = seeded_lease_backend("complete-nofence").await;
    let error = rejected_without_writes(
        &backend,
        backend.complete_execution(complete_args(&eid, None)),
    )
    .await;
    assert_eq!(invalid_input_detail(error), "fence_required");
}

#[tokio::test]
#[parallel(process)]
async fn complete_operator_override_skips_fence() {
    let (backend, eid) = seeded_lease_backend("complete-operator").await;
    let args = CompleteExecutionArgs {
        source: CancelSource::OperatorOverride,
        ..complete_args(&eid, None)
    };
    backend
        .complete_execution(args)
        .await
        .expect("operator complete");
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "lifecycle_phase"),
        "terminal"
    );
}

#[tokio::test]
#[parallel(process)]
async fn complete_stale_lease_on_wrong_epoch() {
    let (backend, eid) = seeded_lease_backend("complete-stale").await;
    let error = rejected_without_writes(
        &backend,
        backend.complete_execution(complete_args(&eid, Some(seeded_fence(8)))),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::StaleLease)),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn complete_execution_not_active_on_terminal() {
    let (backend, eid) = seeded_lease_backend("complete-terminal").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "lifecycle_phase = 'terminal'",
    );
    assert_not_active(
        backend
            .complete_execution(complete_args(&eid, Some(seeded_fence(1))))
            .await,
        "terminal",
    );
}

#[tokio::test]
#[parallel(process)]
async fn complete_lease_revoked_on_ownership_revoked() {
    let (backend, eid) = seeded_lease_backend("complete-revoked").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "ownership_state = 'lease_revoked'",
    );
    let result = backend
        .complete_execution(complete_args(&eid, Some(seeded_fence(1))))
        .await;
    assert!(
        matches!(result, Err(EngineError::State(StateKind::LeaseRevoked))),
        "{result:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn complete_lease_expired_on_past_ttl() {
    let backend = fresh_backend("complete-expired").await;
    let eid = seed_active_lease(&backend.connection_for_test(), now_ms() - 5_000);
    let error = rejected_without_writes(
        &backend,
        backend.complete_execution(complete_args(&eid, Some(seeded_fence(1)))),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::LeaseExpired)),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_completed_execution_cannot_be_completed_again() {
    let (backend, eid, claim) = leased_backend("complete-replay").await;
    backend
        .complete_execution(complete_args(&eid, Some(fence_of(&claim))))
        .await
        .expect("first completion");
    let replay = rejected_without_writes(
        &backend,
        backend.complete_execution(complete_args(&eid, Some(fence_of(&claim)))),
    )
    .await;
    assert_eq!(
        not_active_payload(replay),
        (
            "success".to_string(),
            "1".to_string(),
            "terminal".to_string(),
            claim.attempt_id.to_string()
        )
    );
    assert_eq!(
        completion_events(&backend.connection_for_test(), &eid),
        ["success"]
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_result_over_the_payload_limit_is_refused() {
    let (backend, eid) = seeded_lease_backend("complete-large").await;
    let args = CompleteExecutionArgs {
        result_payload: Some(vec![7; (8 << 20) + 1]),
        ..complete_args(&eid, Some(seeded_fence(1)))
    };
    let error = rejected_without_writes(&backend, backend.complete_execution(args)).await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::PayloadTooLarge,
                ..
            }
        ),
        "{error:?}"
    );
}

// ── fail_execution (upstream typed_fail_execution.rs) ───────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn fail_terminal_when_no_retries() {
    let (backend, eid) = seeded_lease_backend("fail-terminal").await;
    let result = backend
        .fail_execution(fail_args(&eid, Some(seeded_fence(1)), ""))
        .await
        .expect("fail");
    assert_eq!(result, FailExecutionResult::TerminalFailed);
    let conn = backend.connection_for_test();
    assert_eq!(
        state_of(&conn, &eid),
        "terminal|unowned|not_applicable|failed|attempt_terminal|NULL"
    );
    assert_eq!(raw_field(&conn, &eid, "failure_reason"), "text:boom");
    assert_eq!(raw_field(&conn, &eid, "terminal_outcome"), "text:failed");
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "failed");
    assert_eq!(completion_events(&conn, &eid), ["failed"]);
    assert_eq!(lease_events(&conn, &eid), ["revoked"]);
}

#[tokio::test]
#[parallel(process)]
async fn fail_schedules_retry_when_budget_remains() {
    let (backend, eid) = seeded_lease_backend("fail-retry").await;
    let before = now_ms();
    let result = backend
        .fail_execution(fail_args(
            &eid,
            Some(seeded_fence(1)),
            r#"{"max_retries":3,"backoff":{"type":"fixed","delay_ms":500}}"#,
        ))
        .await
        .expect("fail");
    let after = now_ms();
    let FailExecutionResult::RetryScheduled {
        delay_until,
        next_attempt_index,
    } = result
    else {
        panic!("expected RetryScheduled, got {result:?}");
    };
    assert_eq!(next_attempt_index, AttemptIndex::new(1));
    assert!(
        (before + 500..=after + 500).contains(&delay_until.0),
        "{delay_until:?}"
    );
    let conn = backend.connection_for_test();
    assert_eq!(
        state_of(&conn, &eid),
        "runnable|unowned|not_eligible_until_time|delayed|pending_retry_attempt|waiting_for_retry_backoff"
    );
    assert_eq!(raw_field(&conn, &eid, "retry_count"), "text:1");
    assert_eq!(
        raw_field(&conn, &eid, "delay_until"),
        format!("text:{}", delay_until.0)
    );
    assert_eq!(exec_column(&conn, &eid, "attempt_index"), "0");
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "retry");
    assert!(completion_events(&conn, &eid).is_empty());
    assert_eq!(lease_events(&conn, &eid), ["revoked"]);
}

#[tokio::test]
#[parallel(process)]
async fn fail_rejects_missing_fence_without_override() {
    let (backend, eid) = seeded_lease_backend("fail-nofence").await;
    let error =
        rejected_without_writes(&backend, backend.fail_execution(fail_args(&eid, None, ""))).await;
    assert_eq!(invalid_input_detail(error), "fence_required");
}

#[tokio::test]
#[parallel(process)]
async fn fail_stale_lease_on_wrong_epoch() {
    let (backend, eid) = seeded_lease_backend("fail-stale").await;
    let error = rejected_without_writes(
        &backend,
        backend.fail_execution(fail_args(&eid, Some(seeded_fence(42)), "")),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::StaleLease)),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn fail_execution_not_active_on_terminal() {
    let (backend, eid) = seeded_lease_backend("fail-inactive").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "lifecycle_phase = 'terminal'",
    );
    assert_not_active(
        backend
            .fail_execution(fail_args(&eid, Some(seeded_fence(1)), ""))
            .await,
        "terminal",
    );
}

#[tokio::test]
#[parallel(process)]
async fn fail_without_a_policy_argument_uses_the_stored_policy_and_the_retry_runs_next() {
    let (backend, eid, claim) = leased_backend("fail-stored").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        r#"policy = '{"retry_policy":{"max_retries":1,"backoff":{"type":"fixed","delay_ms":0}}}'"#,
    );
    let result = backend
        .fail_execution(fail_args(&eid, Some(fence_of(&claim)), ""))
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            FailExecutionResult::RetryScheduled { next_attempt_index, .. } if next_attempt_index == AttemptIndex::new(1)
        ),
        "{result:?}"
    );
    assert_eq!(
        state_of(&backend.connection_for_test(), &eid),
        "runnable|unowned|eligible_now|waiting|pending_retry_attempt|waiting_for_worker"
    );
    // The retry is claimable at once, as attempt 1 with a fresh epoch.
    seed_grant(
        &backend.connection_for_test(),
        uuid_of(&eid),
        "worker-1",
        now_ms() + 60_000,
    );
    let retry = claimed(
        backend
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 1, now_ms()))
            .await
            .expect("claim the retry"),
    );
    assert_eq!(
        (retry.attempt_index, retry.lease_epoch),
        (AttemptIndex::new(1), LeaseEpoch(1))
    );
    // The budget (one retry) is spent: the next failure is terminal.
    let second = FailExecutionArgs {
        attempt_index: AttemptIndex::new(1),
        ..fail_args(&eid, Some(fence_of(&retry)), "")
    };
    assert_eq!(
        backend.fail_execution(second).await.unwrap(),
        FailExecutionResult::TerminalFailed
    );
}

// ── Handle operations (upstream hot_path.rs) ────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn complete_writes_terminal_and_clears_lease() {
    let (backend, eid, claim) = leased_backend("handle-complete").await;
    backend
        .complete(&claim.handle, Some(b"out".to_vec()))
        .await
        .expect("complete");
    let conn = backend.connection_for_test();
    assert_eq!(
        state_of(&conn, &eid),
        "terminal|unowned|not_applicable|completed|attempt_terminal|NULL"
    );
    assert_eq!(raw_field(&conn, &eid, "terminal_outcome"), "text:success");
    assert_eq!(exec_column(&conn, &eid, "result"), "out");
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "success");
    assert_eq!(
        attempt_column(&conn, &eid, 0, "lease_expires_at_ms"),
        "NULL"
    );
    assert_eq!(completion_events(&conn, &eid), ["success"]);
}

#[tokio::test]
#[parallel(process)]
async fn complete_fence_mismatch_returns_contention() {
    let (backend, eid, claim) = leased_backend("handle-complete-fence").await;
    let error = rejected_without_writes(
        &backend,
        backend.complete(&handle_with_epoch(&claim, 999), None),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::LeaseConflict)
        ),
        "{error:?}"
    );
    backend
        .complete(&claim.handle, None)
        .await
        .expect("the good handle completes");
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "lifecycle_phase"),
        "terminal"
    );
}

#[tokio::test]
#[parallel(process)]
async fn handle_from_valkey_rejected_on_complete() {
    let (backend, _, claim) = leased_backend("handle-valkey").await;
    let valkey = Handle::new(
        BackendTag::Valkey,
        HandleKind::Fresh,
        claim.handle.opaque.clone(),
    );
    match backend.complete(&valkey, None).await {
        Err(EngineError::Validation {
            kind: ValidationKind::HandleFromOtherBackend,
            detail,
        }) => assert!(detail.contains("Valkey"), "{detail}"),
        other => panic!("expected HandleFromOtherBackend, got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn fail_transient_schedules_retry_and_reruns_runnable() {
    let (backend, eid, claim) = leased_backend("handle-fail-transient").await;
    let before = now_ms();
    let outcome = backend
        .fail(
            &claim.handle,
            FailureReason::new("flaky"),
            FailureClass::Transient,
        )
        .await
        .expect("fail");
    let after = now_ms();
    // No stored policy: ff-core's default policy, whose first backoff is 1 s.
    let FailOutcome::RetryScheduled { delay_until } = outcome else {
        panic!("expected RetryScheduled, got {outcome:?}");
    };
    assert!(
        (before + 1_000..=after + 1_000).contains(&delay_until.0),
        "{delay_until:?}"
    );
    {
        let conn = backend.connection_for_test();
        assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "runnable");
        assert_eq!(
            state_of(&conn, &eid),
            "runnable|unowned|not_eligible_until_time|delayed|pending_retry_attempt|waiting_for_retry_backoff"
        );
        // The current attempt stays 0 until the retry is claimed (docs/semantics.md, Q1).
        assert_eq!(exec_column(&conn, &eid, "attempt_index"), "0");
        assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "retry");
        assert_eq!(raw_field(&conn, &eid, "last_failure_message"), "text:flaky");
        assert_eq!(raw_field(&conn, &eid, "retry_count"), "text:1");
        assert_eq!(lease_events(&conn, &eid), ["acquired", "revoked"]);
        assert!(completion_events(&conn, &eid).is_empty());
        seed_grant(&conn, uuid_of(&eid), "worker-1", 0);
    }
    // Once the backoff has passed the retry runs as attempt 1.
    let retry = claimed(
        backend
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 1, delay_until.0))
            .await
            .expect("claim the retry"),
    );
    assert_eq!(
        (retry.attempt_index, retry.lease_epoch),
        (AttemptIndex::new(1), LeaseEpoch(1))
    );
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "attempt_index"),
        "1"
    );
}

#[tokio::test]
#[parallel(process)]
async fn fail_permanent_writes_terminal_failed() {
    let (backend, eid, claim) = leased_backend("handle-fail-permanent").await;
    let outcome = backend
        .fail(
            &claim.handle,
            FailureReason::new("bad input"),
            FailureClass::Permanent,
        )
        .await
        .expect("fail");
    assert_eq!(outcome, FailOutcome::TerminalFailed);
    let conn = backend.connection_for_test();
    assert_eq!(
        state_of(&conn, &eid),
        "terminal|unowned|not_applicable|failed|attempt_terminal|NULL"
    );
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "failed");
    assert_eq!(
        raw_field(&conn, &eid, "last_failure_message"),
        "text:bad input"
    );
    assert_eq!(raw_field(&conn, &eid, "terminal_outcome"), "text:failed");
    assert_eq!(completion_events(&conn, &eid), ["failed"]);
}

#[tokio::test]
#[parallel(process)]
async fn transient_failures_stop_retrying_when_the_budget_is_spent() {
    let (backend, eid, claim) = leased_backend("handle-fail-budget").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "raw_fields = json_set(raw_fields, '$.retry_count', '3')",
    );
    let outcome = backend
        .fail(
            &claim.handle,
            FailureReason::new("flaky"),
            FailureClass::Transient,
        )
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::TerminalFailed);
    assert_eq!(
        exec_column(&backend.connection_for_test(), &eid, "public_state"),
        "failed"
    );
}

#[tokio::test]
#[parallel(process)]
async fn claim_and_complete_emit_lease_events() {
    let (backend, eid, claim) = leased_backend("handle-events").await;
    backend.complete(&claim.handle, None).await.unwrap();
    assert_eq!(
        lease_events(&backend.connection_for_test(), &eid),
        ["acquired", "revoked"]
    );
}

#[tokio::test]
#[parallel(process)]
async fn progress_writes_pct_and_message_to_raw_fields() {
    let (backend, eid, claim) = leased_backend("handle-progress").await;
    backend
        .progress(&claim.handle, Some(42), Some("halfway".into()))
        .await
        .expect("progress");
    let conn = backend.connection_for_test();
    assert_eq!(raw_field(&conn, &eid, "progress_pct"), "integer:42");
    assert_eq!(raw_field(&conn, &eid, "progress_message"), "text:halfway");
    assert_eq!(exec_column(&conn, &eid, "public_state"), "active");
    assert_eq!(lease_events(&conn, &eid), ["acquired"]);
}

#[tokio::test]
#[parallel(process)]
async fn progress_preserves_prior_values_on_partial_update() {
    let (backend, eid, claim) = leased_backend("handle-progress-partial").await;
    backend
        .progress(&claim.handle, Some(10), Some("start".into()))
        .await
        .unwrap();
    backend
        .progress(&claim.handle, Some(20), None)
        .await
        .unwrap();
    {
        let conn = backend.connection_for_test();
        assert_eq!(raw_field(&conn, &eid, "progress_pct"), "integer:20");
        assert_eq!(raw_field(&conn, &eid, "progress_message"), "text:start");
    }
    backend
        .progress(&claim.handle, None, Some("later".into()))
        .await
        .unwrap();
    let conn = backend.connection_for_test();
    assert_eq!(raw_field(&conn, &eid, "progress_pct"), "integer:20");
    assert_eq!(raw_field(&conn, &eid, "progress_message"), "text:later");
}

#[tokio::test]
#[parallel(process)]
async fn progress_partial_update_leaves_absent_field_absent() {
    let (backend, eid, claim) = leased_backend("handle-progress-absent").await;
    backend
        .progress(&claim.handle, Some(5), None)
        .await
        .unwrap();
    let conn = backend.connection_for_test();
    assert_eq!(raw_field(&conn, &eid, "progress_pct"), "integer:5");
    assert_eq!(raw_field(&conn, &eid, "progress_message"), "absent");
}

#[tokio::test]
#[parallel(process)]
async fn progress_both_none_is_no_op() {
    let (backend, eid, claim) = leased_backend("handle-progress-none").await;
    let before = snapshot(&backend.connection_for_test());
    backend.progress(&claim.handle, None, None).await.unwrap();
    let conn = backend.connection_for_test();
    assert_eq!(snapshot(&conn), before);
    assert_eq!(raw_field(&conn, &eid, "progress_pct"), "absent");
}

#[tokio::test]
#[parallel(process)]
async fn progress_fence_mismatch_returns_contention() {
    let (backend, _, claim) = leased_backend("handle-progress-fence").await;
    let error = rejected_without_writes(
        &backend,
        backend.progress(&handle_with_epoch(&claim, 999), Some(1), None),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::LeaseConflict)
        ),
        "{error:?}"
    );
    // Over 100 % is bad input.
    invalid_input_detail(
        rejected_without_writes(&backend, backend.progress(&claim.handle, Some(101), None)).await,
    );
}

#[tokio::test]
#[parallel(process)]
async fn renew_advances_lease_expiry_and_emits_event() {
    let (backend, eid, claim) = leased_backend("handle-renew").await;
    // A renewal in the claim's own millisecond would expire exactly when the claim did: let the
    // clock move so that the advance shows.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let renewal = backend.renew(&claim.handle).await.expect("renew");
    assert!(renewal.expires_at_ms as i64 > claim.lease_expires_at.0);
    assert_eq!(renewal.lease_epoch, 1);
    let conn = backend.connection_for_test();
    assert_eq!(
        attempt_column(&conn, &eid, 0, "lease_expires_at_ms"),
        renewal.expires_at_ms.to_string()
    );
    assert_eq!(lease_events(&conn, &eid), ["acquired", "renewed"]);
}

#[tokio::test]
#[parallel(process)]
async fn renew_fence_mismatch_returns_contention() {
    let (backend, _, claim) = leased_backend("handle-renew-fence").await;
    let error =
        rejected_without_writes(&backend, backend.renew(&handle_with_epoch(&claim, 999))).await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::LeaseConflict)
        ),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_handle_cannot_complete_renew_or_fail_twice() {
    let (backend, eid, claim) = leased_backend("handle-replay").await;
    backend
        .complete(&claim.handle, None)
        .await
        .expect("first completion");
    let before = snapshot(&backend.connection_for_test());
    assert_not_active(backend.complete(&claim.handle, None).await, "terminal");
    assert_not_active(backend.renew(&claim.handle).await, "terminal");
    assert_not_active(
        backend
            .fail(
                &claim.handle,
                FailureReason::new("late"),
                FailureClass::Permanent,
            )
            .await,
        "terminal",
    );
    let conn = backend.connection_for_test();
    assert_eq!(snapshot(&conn), before);
    assert_eq!(completion_events(&conn, &eid), ["success"]);
    assert_eq!(lease_events(&conn, &eid), ["acquired", "revoked"]);
}
